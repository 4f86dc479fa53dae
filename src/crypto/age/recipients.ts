/**
 * The extension points of age: a `Recipient` wraps a file key into stanzas, an `Identity`
 * unwraps one from the stanzas of a header. New key types (hardware keys, key release)
 * plug in here without touching the header or payload code.
 */
import { FerryError } from '../../kernel/index.ts';
import type { Stanza } from './format.ts';

export type { Stanza };

export const FILE_KEY_SIZE = 16;

/** Something a file can be encrypted to. */
export interface Recipient {
  /**
   * Wraps the 16-byte file key into one or more stanzas. Must not keep or log the key.
   * Throws on failure (the encryption is aborted).
   */
  wrapFileKey(fileKey: Uint8Array): Stanza[] | Promise<Stanza[]>;
}

/** Something that can open a file. */
export interface Identity {
  /**
   * Given all stanzas of a header, returns the 16-byte file key, or null when none of them
   * is addressed to this identity ("not mine": wrong type, or an AEAD that does not open).
   * Throws a FerryError only for malformed stanzas of its own type (header failure codes).
   */
  unwrapFileKey(stanzas: Stanza[]): Uint8Array | null | Promise<Uint8Array | null>;
}

/**
 * An identity holding the raw 16-byte file key itself, for example a key that was released
 * to an enclave sealed with HPKE and opened there. It returns the key for any header; the
 * header MAC then decides (a wrong key fails with AGE_HMAC_INVALID).
 */
export class FileKeyIdentity implements Identity {
  readonly #fileKey: Uint8Array;

  /** Throws AGE_INVALID_IDENTITY unless `fileKey` is a 16-byte Uint8Array (it is copied). */
  constructor(fileKey: Uint8Array) {
    if (!(fileKey instanceof Uint8Array) || fileKey.length !== FILE_KEY_SIZE) {
      throw new FerryError('AGE_INVALID_IDENTITY', 'a file key identity needs the 16-byte file key', {
        hints: [
          'expected: Uint8Array(16)',
          `got: ${fileKey instanceof Uint8Array ? `Uint8Array(${fileKey.length})` : typeof fileKey}`,
        ],
      });
    }
    this.#fileKey = Uint8Array.from(fileKey);
  }

  unwrapFileKey(_stanzas: Stanza[]): Uint8Array {
    return Uint8Array.from(this.#fileKey);
  }

  /** Overwrites the held key. The identity returns zeros afterwards (which fail the MAC). */
  wipe(): void {
    this.#fileKey.fill(0);
  }
}
