/**
 * The scrypt (passphrase) recipient type (C2SP age spec, "scrypt recipient stanza"):
 *
 *     -> scrypt base64(salt, 16 bytes) log2(N)
 *     base64(ChaCha20-Poly1305(wrap key, nonce 0^12, file key))
 *
 * wrap key = scrypt(passphrase, "age-encryption.org/v1/scrypt" || salt, N, r = 8, p = 1, 32).
 * An scrypt stanza must be the only stanza of its header (AGE_SCRYPT_NOT_ALONE, checked by
 * the decryptor). The work factor is a decimal without leading zeros or sign; identities
 * refuse work factors above their limit (default 22) with AGE_SCRYPT_WORK_FACTOR.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { FerryError } from '../../kernel/index.ts';
import { decodeB64Canonical, encodeB64, type Stanza } from './format.ts';
import { FILE_KEY_SIZE, type Identity, type Recipient } from './recipients.ts';

const LABEL = Buffer.from('age-encryption.org/v1/scrypt', 'latin1');
const ZERO_NONCE = Buffer.alloc(12);
export const DEFAULT_SCRYPT_WORK_FACTOR = 18;
export const MAX_SCRYPT_WORK_FACTOR = 22;

function deriveKey(passphrase: string, salt: Uint8Array, logN: number): Promise<Buffer> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) => {
    scrypt(
      Buffer.from(passphrase, 'utf8'),
      Buffer.concat([LABEL, salt]),
      32,
      { N, r: 8, p: 1, maxmem: 128 * N * 8 + 32 * 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

function checkPassphrase(p: unknown, code: 'AGE_INVALID_IDENTITY' | 'AGE_INVALID_RECIPIENT'): string {
  if (typeof p !== 'string' || p.length === 0) {
    throw new FerryError(code, 'passphrase must be a non-empty string', {
      hints: [`got: ${typeof p === 'string' ? 'empty string' : typeof p}`],
    });
  }
  return p;
}

/** Encrypts to a passphrase. */
export class ScryptRecipient implements Recipient {
  readonly #passphrase: string;
  readonly #logN: number;

  constructor(passphrase: string, workFactor = DEFAULT_SCRYPT_WORK_FACTOR) {
    this.#passphrase = checkPassphrase(passphrase, 'AGE_INVALID_RECIPIENT');
    if (!Number.isInteger(workFactor) || workFactor < 1 || workFactor > MAX_SCRYPT_WORK_FACTOR) {
      throw new FerryError('AGE_SCRYPT_WORK_FACTOR', 'scrypt work factor out of range', {
        hints: [`expected: integer 1..${MAX_SCRYPT_WORK_FACTOR}`, `got: ${String(workFactor)}`],
      });
    }
    this.#logN = workFactor;
  }

  async wrapFileKey(fileKey: Uint8Array): Promise<Stanza[]> {
    const salt = new Uint8Array(randomBytes(16));
    const key = await deriveKey(this.#passphrase, salt, this.#logN);
    const c = createCipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: 16 });
    const body = Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
    key.fill(0);
    return [{ type: 'scrypt', args: [encodeB64(salt), String(this.#logN)], body: new Uint8Array(body) }];
  }
}

/** Decrypts passphrase-encrypted files. */
export class ScryptIdentity implements Identity {
  readonly #passphrase: string;
  readonly #maxWorkFactor: number;

  constructor(passphrase: string, options: { maxWorkFactor?: number } = {}) {
    this.#passphrase = checkPassphrase(passphrase, 'AGE_INVALID_IDENTITY');
    const max = options.maxWorkFactor ?? MAX_SCRYPT_WORK_FACTOR;
    if (!Number.isInteger(max) || max < 1 || max > 30) {
      throw new FerryError('INVALID_ARGUMENT', 'maxWorkFactor out of range', {
        hints: ['expected: integer 1..30', `got: ${String(max)}`],
      });
    }
    this.#maxWorkFactor = max;
  }

  /**
   * Returns the file key from an scrypt stanza that opens, or null (wrong passphrase or no
   * scrypt stanza). Throws AGE_STANZA_INVALID for a malformed scrypt stanza and
   * AGE_SCRYPT_WORK_FACTOR for a work factor of 0 or above the limit.
   */
  async unwrapFileKey(stanzas: Stanza[]): Promise<Uint8Array | null> {
    for (const s of stanzas) {
      if (s.type !== 'scrypt') continue;
      if (s.args.length !== 2) {
        throw new FerryError('AGE_STANZA_INVALID', 'scrypt stanza must have exactly two arguments', {
          hints: [`got: ${s.args.length} arguments`],
        });
      }
      const salt = decodeB64Canonical(s.args[0]);
      if (salt === null || salt.length !== 16) {
        throw new FerryError('AGE_STANZA_INVALID', 'scrypt salt must be 16 bytes of canonical base64');
      }
      if (!/^[1-9][0-9]*$/.test(s.args[1])) {
        throw new FerryError(
          'AGE_STANZA_INVALID',
          'scrypt work factor must be a decimal without leading zeros',
        );
      }
      const logN = Number(s.args[1]);
      if (logN > this.#maxWorkFactor) {
        throw new FerryError('AGE_SCRYPT_WORK_FACTOR', 'scrypt work factor is above the limit', {
          hints: [`expected: at most ${this.#maxWorkFactor}`, `got: ${s.args[1].slice(0, 20)}`],
        });
      }
      if (s.body.length !== FILE_KEY_SIZE + 16) {
        throw new FerryError('AGE_STANZA_INVALID', 'scrypt stanza body must be 32 bytes', {
          hints: [`got: ${s.body.length} bytes`],
        });
      }
      const key = await deriveKey(this.#passphrase, salt, logN);
      const d = createDecipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: 16 });
      d.setAuthTag(s.body.subarray(FILE_KEY_SIZE));
      const fileKey = d.update(s.body.subarray(0, FILE_KEY_SIZE));
      key.fill(0);
      try {
        d.final();
      } catch {
        fileKey.fill(0);
        continue;
      }
      return new Uint8Array(fileKey);
    }
    return null;
  }
}
