/**
 * Decryption: armor detection, header parsing, file key unwrapping, header MAC check and
 * the STREAM payload, as one incremental state machine (`Decryptor`) behind three faces:
 * `decrypt` (whole buffer), `createDecryptStream` (a Transform in constant memory) and
 * `readFileKey` (header only).
 *
 * Armor detection: input that starts with the binary version prefix "age-encryption.org/"
 * is binary; any other non-empty input is parsed as armor. Empty input is AGE_HEADER_INVALID.
 */
import { timingSafeEqual } from 'node:crypto';
import { Transform } from 'node:stream';
import { describe, FerryError } from '../../kernel/index.ts';
import { ArmorDecoder } from './armor.ts';
import { type Header, HeaderParser, headerMac } from './format.ts';
import { FILE_KEY_SIZE, type Identity } from './recipients.ts';
import { PayloadDecryptor } from './stream.ts';

const BINARY_PREFIX = Buffer.from('age-encryption.org/', 'latin1');

export function checkIdentities(identities: unknown): Identity[] {
  if (!Array.isArray(identities) || identities.length === 0) {
    throw new FerryError('INVALID_ARGUMENT', 'identities must be a non-empty array of Identity', {
      hints: ['expected: Identity[] with at least one element', `got: ${describe(identities)}`],
    });
  }
  identities.forEach((id, i) => {
    if (id === null || typeof id !== 'object' || typeof (id as Identity).unwrapFileKey !== 'function') {
      throw new FerryError('INVALID_ARGUMENT', `identities[${i}] is not an Identity`, {
        hints: ['expected: an object with unwrapFileKey(stanzas)', `got: ${describe(id)}`],
      });
    }
  });
  return identities as Identity[];
}

/** Finds the file key for `header` and checks the MAC. Throws AGE_NO_MATCH / AGE_HMAC_INVALID. */
export async function unwrapHeader(identities: Identity[], header: Header): Promise<Uint8Array> {
  const { stanzas } = header;
  if (stanzas.some((s) => s.type === 'scrypt') && stanzas.length !== 1) {
    throw new FerryError('AGE_SCRYPT_NOT_ALONE', 'an scrypt stanza must be the only stanza in the header', {
      hints: [`got: ${stanzas.length} stanzas`],
    });
  }
  let fileKey: Uint8Array | null = null;
  for (const id of identities) {
    fileKey = await id.unwrapFileKey(stanzas);
    if (fileKey !== null) break;
  }
  if (fileKey === null) {
    throw new FerryError('AGE_NO_MATCH', 'no identity matched any of the recipients', {
      hints: [
        `stanza types: ${[...new Set(stanzas.map((s) => s.type))].join(', ').slice(0, 200) || '(none)'}`,
        `identities tried: ${identities.length}`,
      ],
    });
  }
  if (!(fileKey instanceof Uint8Array) || fileKey.length !== FILE_KEY_SIZE) {
    throw new FerryError('INVALID_ARGUMENT', 'an identity returned a file key of the wrong size', {
      hints: [`expected: Uint8Array(${FILE_KEY_SIZE})`, `got: ${describe(fileKey)}`],
    });
  }
  const mac = headerMac(fileKey, header.headerNoMac);
  if (!timingSafeEqual(mac, header.mac)) {
    fileKey.fill(0);
    throw new FerryError('AGE_HMAC_INVALID', 'header MAC does not match', {
      hints: ['the header was modified, or the file key is wrong'],
    });
  }
  return fileKey;
}

export type DecryptorOptions = {
  /** Stop after the header: unwrap and MAC-check the file key, then ignore the payload. */
  headerOnly?: boolean;
};

/**
 * Incremental decryptor. `write` bytes in order (await it when it returns a promise), then
 * `end`. Authenticated plaintext goes to `emit`, chunk by chunk. Throws FerryErrors with
 * AGE_* codes; after a throw the instance is unusable.
 */
export class Decryptor {
  readonly #identities: Identity[];
  readonly #emit: (plaintext: Buffer) => void;
  readonly #headerOnly: boolean;
  #mode: 'detect' | 'armor' | 'binary' = 'detect';
  #detectBuf = new Uint8Array(0);
  #armor: ArmorDecoder | null = null;
  #header: HeaderParser | null = new HeaderParser();
  #payload: PayloadDecryptor | null = null;
  /** The file key, kept only with headerOnly (for readFileKey). */
  fileKey: Uint8Array | null = null;

  constructor(identities: Identity[], emit: (plaintext: Buffer) => void, options: DecryptorOptions = {}) {
    this.#identities = checkIdentities(identities);
    this.#emit = emit;
    this.#headerOnly = options.headerOnly === true;
  }

  /** True once the header has been authenticated. */
  get headerDone(): boolean {
    return this.#header === null;
  }

  /** Plaintext bytes emitted so far. */
  get bytes(): number {
    return this.#payload?.bytes ?? 0;
  }

  write(data: Uint8Array): void | Promise<void> {
    if (this.#mode === 'binary') return this.#binary(data);
    if (this.#mode === 'armor') return this.#binary(this.#armor!.push(data));
    let buf = data;
    if (this.#detectBuf.length > 0) {
      buf = new Uint8Array(this.#detectBuf.length + data.length);
      buf.set(this.#detectBuf);
      buf.set(data, this.#detectBuf.length);
    }
    const n = Math.min(buf.length, BINARY_PREFIX.length);
    let binary = true;
    for (let i = 0; i < n; i++) if (buf[i] !== BINARY_PREFIX[i]) binary = false;
    if (binary && n < BINARY_PREFIX.length) {
      this.#detectBuf = Uint8Array.from(buf);
      return;
    }
    this.#detectBuf = new Uint8Array(0);
    if (binary) {
      this.#mode = 'binary';
      return this.#binary(buf);
    }
    this.#mode = 'armor';
    this.#armor = new ArmorDecoder();
    return this.#binary(this.#armor.push(buf));
  }

  async end(): Promise<void> {
    if (this.#mode === 'detect') {
      this.#mode = 'binary';
      if (this.#detectBuf.length > 0) await this.#binary(this.#detectBuf);
    } else if (this.#mode === 'armor') {
      await this.#binary(this.#armor!.end());
    }
    if (this.#header !== null) this.#header.end();
    if (!this.#headerOnly) this.#payload!.end();
  }

  #binary(data: Uint8Array): void | Promise<void> {
    if (this.#header === null) {
      if (!this.#headerOnly && data.length > 0) this.#payload!.push(data);
      return;
    }
    if (data.length === 0) return;
    const r = this.#header.push(data);
    if (r === null) return;
    return this.#onHeader(r.header, r.rest);
  }

  async #onHeader(header: Header, rest: Uint8Array): Promise<void> {
    const fileKey = await unwrapHeader(this.#identities, header);
    this.#header = null;
    if (this.#headerOnly) {
      this.fileKey = fileKey;
      return;
    }
    this.#payload = new PayloadDecryptor(fileKey, this.#emit);
    fileKey.fill(0);
    if (rest.length > 0) this.#payload.push(rest);
  }
}

/**
 * Decrypts a whole age file (binary or armored). Returns the plaintext; throws a FerryError
 * with an AGE_* code on any failure (no partial plaintext is returned).
 */
export async function decrypt(identities: Identity[], ciphertext: Uint8Array): Promise<Uint8Array> {
  if (!(ciphertext instanceof Uint8Array)) {
    throw new FerryError('INVALID_ARGUMENT', 'ciphertext must be a Uint8Array', {
      hints: [`got: ${describe(ciphertext)}`],
    });
  }
  const parts: Buffer[] = [];
  const d = new Decryptor(identities, (p) => parts.push(p));
  await d.write(ciphertext);
  await d.end();
  const out = Buffer.concat(parts);
  for (const p of parts) p.fill(0);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * A Transform from age ciphertext (binary or armored) to plaintext, in constant memory.
 * It pushes only authenticated plaintext, one chunk at a time, and errors with a FerryError
 * (AGE_* code) on failure; plaintext pushed before a later failure was authenticated, but a
 * consumer must treat the output as incomplete unless the stream ends without error.
 */
export function createDecryptStream(identities: Identity[]): Transform {
  let d: Decryptor;
  const t = new Transform({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb) {
      let r: void | Promise<void>;
      try {
        r = d.write(chunk);
      } catch (e) {
        cb(e as Error);
        return;
      }
      if (r) r.then(() => cb(), cb);
      else cb();
    },
    flush(cb) {
      d.end().then(() => cb(), cb);
    },
  });
  d = new Decryptor(identities, (p) => t.push(p));
  return t;
}

/**
 * Parses the header at the start of an age file (binary or armored), unwraps the file key
 * with `identities` and verifies the header MAC. Returns the 16-byte file key. Throws
 * AGE_HEADER_INVALID when `ciphertextHead` does not contain the whole header, and the usual
 * AGE_* codes otherwise. The caller owns (and should wipe) the returned key.
 */
export async function readFileKey(identities: Identity[], ciphertextHead: Uint8Array): Promise<Uint8Array> {
  if (!(ciphertextHead instanceof Uint8Array)) {
    throw new FerryError('INVALID_ARGUMENT', 'ciphertextHead must be a Uint8Array', {
      hints: [`got: ${describe(ciphertextHead)}`],
    });
  }
  const d = new Decryptor(identities, () => {}, { headerOnly: true });
  await d.write(ciphertextHead);
  if (!d.headerDone) {
    throw new FerryError('AGE_HEADER_INVALID', 'the bytes given do not contain the whole age header', {
      hints: [`got: ${ciphertextHead.length} bytes; pass more of the file`],
    });
  }
  return d.fileKey!;
}
