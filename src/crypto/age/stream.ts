/**
 * The age v1 payload: a 16-byte nonce, then STREAM (ChaCha20-Poly1305, 64 KiB chunks) under
 * payload_key = HKDF-SHA256(ikm = file key, salt = nonce, info = "payload").
 *
 * Chunk i (from 0) is sealed with the 12-byte nonce `u88be(i) || flag`, flag 0x01 on the
 * last chunk and 0x00 otherwise. Every chunk but the last holds exactly 64 KiB of plaintext;
 * the last holds 0..64 KiB and may be empty only when it is the only chunk (empty payload).
 * Nothing may follow the last chunk.
 *
 * The AEAD is node:crypto's native ChaCha20-Poly1305. Chunks that arrive whole inside an
 * input buffer are decrypted from a subarray (no copy); only chunks straddling two input
 * buffers are assembled in one preallocated buffer. Plaintext is handed out only after the
 * chunk's tag has been verified.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { FerryError } from '../../kernel/index.ts';
import { hkdf32 } from './format.ts';

export const CHUNK_SIZE = 64 * 1024;
export const TAG_SIZE = 16;
export const ENC_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
export const NONCE_SIZE = 16;

/** Derives the payload key object from the file key and the payload nonce. */
export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): KeyObject {
  const raw = hkdf32(fileKey, nonce, 'payload');
  const key = createSecretKey(raw);
  raw.fill(0);
  return key;
}

/** Writes the chunk counter into bytes 0..10 of the 12-byte nonce (byte 11 is the flag). */
function setCounter(nonce: Buffer, counter: number): void {
  // Counters beyond 2^53 chunks (2^69 bytes) are unreachable; the top 3 bytes stay zero.
  nonce.writeUIntBE(Math.floor(counter / 2 ** 32), 3, 4);
  nonce.writeUInt32BE(counter >>> 0, 7);
}

/** The STREAM nonce of chunk `counter`: 11 bytes of big-endian counter, then the last-chunk flag. */
export function streamNonce(counter: number, last: boolean): Buffer<ArrayBuffer> {
  const iv = Buffer.alloc(12) as Buffer<ArrayBuffer>;
  setCounter(iv, counter);
  iv[11] = last ? 1 : 0;
  return iv;
}

/**
 * Opens one encrypted chunk (ciphertext ‖ 16-byte tag) under `nonce`: the plaintext, or null
 * when the tag does not verify (the partial plaintext is zeroed, never returned).
 */
export function openChunk(key: Uint8Array | KeyObject, nonce: Uint8Array, chunk: Uint8Array): Buffer | null {
  if (chunk.length < TAG_SIZE) return null;
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE });
  d.setAuthTag(chunk.subarray(chunk.length - TAG_SIZE));
  const pt = d.update(chunk.subarray(0, chunk.length - TAG_SIZE));
  try {
    d.final();
  } catch {
    pt.fill(0);
    return null;
  }
  return pt;
}

/** Seals one chunk under `nonce`: the ciphertext and the 16-byte tag, in that order. */
export function sealChunk(key: Uint8Array | KeyObject, nonce: Uint8Array, pt: Uint8Array): [Buffer, Buffer] {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_SIZE });
  const ct = c.update(pt);
  c.final();
  return [ct, c.getAuthTag()];
}

/**
 * STREAM decryption state machine over the bytes after the header (nonce included).
 * `push` and `end` call `emit` with authenticated plaintext only; on failure they throw
 * AGE_HEADER_INVALID (nonce missing), AGE_PAYLOAD_TRUNCATED (no final chunk) or
 * AGE_PAYLOAD_INVALID (bad tag, empty last chunk, trailing data).
 */
export class PayloadDecryptor {
  readonly #fileKey: Uint8Array;
  readonly #emit: (plaintext: Buffer) => void;
  #key: KeyObject | null = null;
  readonly #nonceBuf = Buffer.alloc(NONCE_SIZE);
  #nonceLen = 0;
  readonly #iv = Buffer.alloc(12);
  #counter = 0;
  #pending: Buffer | null = null;
  #pendingLen = 0;
  #done = false;
  #failed = false;
  /** Total plaintext bytes emitted. */
  bytes = 0;

  constructor(fileKey: Uint8Array, emit: (plaintext: Buffer) => void) {
    this.#fileKey = Uint8Array.from(fileKey);
    this.#emit = emit;
  }

  push(data: Uint8Array): void {
    if (this.#failed) throw new FerryError('AGE_PAYLOAD_INVALID', 'payload decryption already failed');
    let off = 0;
    if (this.#key === null) {
      const take = Math.min(NONCE_SIZE - this.#nonceLen, data.length);
      this.#nonceBuf.set(data.subarray(0, take), this.#nonceLen);
      this.#nonceLen += take;
      off = take;
      if (this.#nonceLen < NONCE_SIZE) return;
      this.#key = payloadKey(this.#fileKey, this.#nonceBuf);
      this.#fileKey.fill(0);
    }
    if (off >= data.length) return;
    if (this.#done) this.#fail('AGE_PAYLOAD_INVALID', 'trailing data after the final payload chunk');
    if (this.#pendingLen > 0) {
      const take = Math.min(ENC_CHUNK_SIZE - this.#pendingLen, data.length - off);
      this.#pending!.set(data.subarray(off, off + take), this.#pendingLen);
      this.#pendingLen += take;
      off += take;
      if (this.#pendingLen < ENC_CHUNK_SIZE) return;
      this.#pendingLen = 0;
      this.#fullChunk(this.#pending!);
    }
    while (data.length - off >= ENC_CHUNK_SIZE) {
      if (this.#done) this.#fail('AGE_PAYLOAD_INVALID', 'trailing data after the final payload chunk');
      this.#fullChunk(data.subarray(off, off + ENC_CHUNK_SIZE));
      off += ENC_CHUNK_SIZE;
    }
    if (off < data.length) {
      if (this.#done) this.#fail('AGE_PAYLOAD_INVALID', 'trailing data after the final payload chunk');
      this.#pending ??= Buffer.allocUnsafe(ENC_CHUNK_SIZE);
      this.#pending.set(data.subarray(off), 0);
      this.#pendingLen = data.length - off;
    }
  }

  /** At EOF: decrypts the last (short) chunk or throws if the payload is incomplete. */
  end(): void {
    if (this.#failed) throw new FerryError('AGE_PAYLOAD_INVALID', 'payload decryption already failed');
    if (this.#key === null) {
      throw new FerryError('AGE_HEADER_INVALID', 'file ends before the 16-byte payload nonce', {
        hints: [`got: ${this.#nonceLen} nonce bytes`],
      });
    }
    if (this.#done) return;
    if (this.#pendingLen === 0) {
      this.#fail(
        'AGE_PAYLOAD_TRUNCATED',
        this.#counter === 0 ? 'payload has no chunks' : 'payload ends without a final chunk',
      );
    }
    if (this.#counter > 0 && this.#pendingLen === TAG_SIZE) {
      this.#fail('AGE_PAYLOAD_INVALID', 'last payload chunk is empty but is not the only chunk');
    }
    const chunk = this.#pending!.subarray(0, this.#pendingLen);
    this.#pendingLen = 0;
    const pt = this.#open(chunk, true);
    if (pt === null) this.#fail('AGE_PAYLOAD_INVALID', 'payload chunk failed authentication');
    this.#done = true;
    this.#release(pt);
  }

  #fullChunk(chunk: Uint8Array): void {
    let pt = this.#open(chunk, false);
    if (pt === null) {
      pt = this.#open(chunk, true);
      if (pt === null) this.#fail('AGE_PAYLOAD_INVALID', 'payload chunk failed authentication');
      this.#done = true;
    }
    this.#release(pt);
  }

  #release(pt: Buffer): void {
    this.#counter++;
    if (pt.length > 0) {
      this.bytes += pt.length;
      this.#emit(pt);
    }
  }

  #open(chunk: Uint8Array, last: boolean): Buffer | null {
    setCounter(this.#iv, this.#counter);
    this.#iv[11] = last ? 1 : 0;
    return openChunk(this.#key!, this.#iv, chunk);
  }

  #fail(code: 'AGE_PAYLOAD_INVALID' | 'AGE_PAYLOAD_TRUNCATED', message: string): never {
    this.#failed = true;
    throw new FerryError(code, message, { hints: [`at payload chunk ${this.#counter}`] });
  }
}

/**
 * STREAM encryption. `push` plaintext in any sizes; `end` seals the final chunk. `emit`
 * receives ciphertext pieces in order (the nonce first). A full 64 KiB chunk is sealed as
 * non-final only once more plaintext is known to follow it.
 */
export class PayloadEncryptor {
  readonly #key: KeyObject;
  readonly #emit: (ciphertext: Buffer) => void;
  readonly #iv = Buffer.alloc(12);
  #counter = 0;
  readonly #pending = Buffer.allocUnsafe(CHUNK_SIZE);
  #pendingLen = 0;
  #ended = false;
  /** Total ciphertext bytes emitted (nonce included). */
  bytes = 0;

  constructor(fileKey: Uint8Array, nonce: Uint8Array, emit: (ciphertext: Buffer) => void) {
    if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_SIZE) {
      throw new FerryError('INVALID_ARGUMENT', 'payload nonce must be 16 bytes');
    }
    this.#key = payloadKey(fileKey, nonce);
    this.#emit = emit;
    this.#out(Buffer.from(nonce));
  }

  push(data: Uint8Array): void {
    if (this.#ended) throw new FerryError('INVALID_ARGUMENT', 'push after end');
    let off = 0;
    if (this.#pendingLen > 0) {
      if (this.#pendingLen === CHUNK_SIZE && data.length > 0) {
        this.#seal(this.#pending, false);
        this.#pendingLen = 0;
      } else {
        const take = Math.min(CHUNK_SIZE - this.#pendingLen, data.length);
        this.#pending.set(data.subarray(0, take), this.#pendingLen);
        this.#pendingLen += take;
        off = take;
        if (off < data.length) {
          this.#seal(this.#pending, false);
          this.#pendingLen = 0;
        }
      }
    }
    // A whole chunk is sealed in place only when more plaintext follows it in this buffer.
    while (data.length - off > CHUNK_SIZE) {
      this.#seal(data.subarray(off, off + CHUNK_SIZE), false);
      off += CHUNK_SIZE;
    }
    if (off < data.length) {
      this.#pending.set(data.subarray(off), this.#pendingLen);
      this.#pendingLen += data.length - off;
    }
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#seal(this.#pending.subarray(0, this.#pendingLen), true);
    this.#pending.fill(0);
  }

  #seal(pt: Uint8Array, last: boolean): void {
    setCounter(this.#iv, this.#counter);
    this.#iv[11] = last ? 1 : 0;
    const [ct, tag] = sealChunk(this.#key, this.#iv, pt);
    this.#out(ct);
    this.#out(tag);
    this.#counter++;
  }

  #out(b: Buffer): void {
    if (b.length === 0) return;
    this.bytes += b.length;
    this.#emit(b);
  }
}
