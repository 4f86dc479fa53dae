/**
 * Encryption: a fresh 16-byte file key wrapped to every recipient, the header with its
 * MAC, a fresh 16-byte payload nonce, and the STREAM payload. `encrypt` works on a whole
 * buffer; `createEncryptStream` is a Transform in constant memory (optionally armored).
 */
import { randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { describe, FerryError } from '../../kernel/index.ts';
import { ArmorEncoder } from './armor.ts';
import { encodeHeader, type Stanza } from './format.ts';
import { FILE_KEY_SIZE, type Recipient } from './recipients.ts';
import { CHUNK_SIZE, ENC_CHUNK_SIZE, NONCE_SIZE, PayloadEncryptor, TAG_SIZE } from './stream.ts';

function checkRecipients(recipients: unknown): Recipient[] {
  if (!Array.isArray(recipients) || recipients.length === 0) {
    throw new FerryError('INVALID_ARGUMENT', 'recipients must be a non-empty array of Recipient', {
      hints: ['expected: Recipient[] with at least one element', `got: ${describe(recipients)}`],
    });
  }
  recipients.forEach((r, i) => {
    if (r === null || typeof r !== 'object' || typeof (r as Recipient).wrapFileKey !== 'function') {
      throw new FerryError('INVALID_ARGUMENT', `recipients[${i}] is not a Recipient`, {
        hints: ['expected: an object with wrapFileKey(fileKey)', `got: ${describe(r)}`],
      });
    }
  });
  return recipients as Recipient[];
}

/**
 * Wraps a fresh file key to all recipients; returns the header bytes and the file key (the
 * caller wipes it once the payload key is derived). A passphrase recipient must be alone.
 */
export async function makeHeader(
  recipients: Recipient[],
): Promise<{ header: Uint8Array; fileKey: Uint8Array }> {
  const fileKey = new Uint8Array(randomBytes(FILE_KEY_SIZE));
  const stanzas: Stanza[] = [];
  for (const r of recipients) {
    if (r === null || typeof r !== 'object' || typeof r.wrapFileKey !== 'function') {
      throw new FerryError('INVALID_ARGUMENT', 'a recipient is not a Recipient', {
        hints: ['expected: an object with wrapFileKey(fileKey)', `got: ${describe(r)}`],
      });
    }
    const s = await r.wrapFileKey(Uint8Array.from(fileKey));
    if (!Array.isArray(s)) {
      throw new FerryError('INVALID_ARGUMENT', 'a recipient returned no stanza array', {
        hints: [`got: ${describe(s)}`],
      });
    }
    stanzas.push(...s);
  }
  if (stanzas.some((s) => s.type === 'scrypt') && stanzas.length !== 1) {
    throw new FerryError('AGE_SCRYPT_NOT_ALONE', 'a passphrase recipient must be the only recipient', {
      hints: [`got: ${stanzas.length} stanzas`],
    });
  }
  return { header: encodeHeader(stanzas, fileKey), fileKey };
}

/** The size of the age file (without armor) for a plaintext of `n` bytes and a given header. */
export function ciphertextSize(headerSize: number, n: number): number {
  const chunks = Math.max(1, Math.ceil(n / CHUNK_SIZE));
  return headerSize + NONCE_SIZE + n + chunks * TAG_SIZE;
}

/** Encrypts a whole buffer to `recipients`; returns the binary age file. */
export async function encrypt(recipients: Recipient[], plaintext: Uint8Array): Promise<Uint8Array> {
  checkRecipients(recipients);
  if (!(plaintext instanceof Uint8Array)) {
    throw new FerryError('INVALID_ARGUMENT', 'plaintext must be a Uint8Array', {
      hints: [`got: ${describe(plaintext)}`],
    });
  }
  const { header, fileKey } = await makeHeader(recipients);
  const out = new Uint8Array(ciphertextSize(header.length, plaintext.length));
  out.set(header);
  let o = header.length;
  const enc = new PayloadEncryptor(fileKey, randomBytes(NONCE_SIZE), (b) => {
    out.set(b, o);
    o += b.length;
  });
  fileKey.fill(0);
  enc.push(plaintext);
  enc.end();
  if (o !== out.length) throw new FerryError('INTERNAL', 'age ciphertext size mismatch');
  return out;
}

export type EncryptStreamOptions = {
  /** Write the ASCII armor instead of binary. */
  armor?: boolean;
};

/** A Transform from plaintext to an age file (binary, or armored with `armor: true`). */
export function createEncryptStream(recipients: Recipient[], options: EncryptStreamOptions = {}): Transform {
  checkRecipients(recipients);
  const armor = options.armor === true ? new ArmorEncoder() : null;
  let enc: PayloadEncryptor | null = null;
  let init: Promise<void> | null = null;
  let t: Transform;
  const out = (b: Buffer) => {
    if (armor) {
      const a = armor.push(b);
      if (a.length > 0) t.push(a);
    } else {
      t.push(b);
    }
  };
  // Output is batched into ~1 MiB pieces to keep the per-push overhead low.
  let batch: Buffer | null = null;
  let batchLen = 0;
  const BATCH = 16 * ENC_CHUNK_SIZE;
  const emit = (b: Buffer) => {
    if (b.length >= BATCH) {
      flushBatch();
      out(b);
      return;
    }
    if (batch === null) batch = Buffer.allocUnsafe(BATCH);
    if (batchLen + b.length > BATCH) flushBatch();
    batch ??= Buffer.allocUnsafe(BATCH);
    b.copy(batch, batchLen);
    batchLen += b.length;
  };
  const flushBatch = () => {
    if (batch !== null && batchLen > 0) {
      out(batch.subarray(0, batchLen));
      batch = null;
      batchLen = 0;
    }
  };
  const start = (): Promise<void> => {
    init ??= makeHeader(recipients).then(({ header, fileKey }) => {
      out(Buffer.from(header));
      enc = new PayloadEncryptor(fileKey, randomBytes(NONCE_SIZE), emit);
      fileKey.fill(0);
    });
    return init;
  };
  t = new Transform({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, cb) {
      const go = () => {
        try {
          enc!.push(chunk);
          if (batchLen >= BATCH - ENC_CHUNK_SIZE) flushBatch();
          cb();
        } catch (e) {
          cb(e as Error);
        }
      };
      if (enc) go();
      else start().then(go, cb);
    },
    flush(cb) {
      start().then(() => {
        try {
          enc!.end();
          flushBatch();
          if (armor) t.push(armor.end());
          cb();
        } catch (e) {
          cb(e as Error);
        }
      }, cb);
    },
  });
  return t;
}
