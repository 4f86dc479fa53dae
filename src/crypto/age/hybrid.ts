/**
 * The post-quantum hybrid recipient type of age v1.3 (C2SP age spec, "mlkem768x25519
 * recipient stanza"), interoperable with age and typage:
 *
 *     -> mlkem768x25519 base64(enc, 1120 bytes)
 *     base64(ChaCha20-Poly1305(key, base_nonce, file key))      ; 32 bytes
 *
 * where (enc, ss) = MLKEM768X25519.Encap(recipient) (the hybrid KEM of
 * draft-ietf-hpke-pq / draft-irtf-cfrg-hybrid-kems, via @noble/post-quantum) and
 * key / base_nonce come from the HPKE (RFC 9180) base-mode key schedule with KEM id 0x647a,
 * HKDF-SHA256, ChaCha20-Poly1305 and info = "age-encryption.org/mlkem768x25519".
 * Recipients are `age1pq1...` (1216-byte public key), identities `AGE-SECRET-KEY-PQ-1...`
 * (32-byte seed).
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { MLKEM768X25519 } from '@noble/post-quantum/hybrid.js';
import { FerryError } from '../../kernel/index.ts';
import { bech32Decode, bech32Encode } from './bech32.ts';
import { decodeB64Canonical, encodeB64, type Stanza } from './format.ts';
import { FILE_KEY_SIZE, type Identity, type Recipient } from './recipients.ts';

const STANZA_TYPE = 'mlkem768x25519';
const INFO = Buffer.from('age-encryption.org/mlkem768x25519', 'latin1');
const RECIPIENT_HRP = 'age1pq';
const IDENTITY_HRP = 'AGE-SECRET-KEY-PQ-';
const PUBLIC_KEY_SIZE = 1216;
const ENC_SIZE = 1120;
// "HPKE" || kem 0x647a || kdf 0x0001 (HKDF-SHA256) || aead 0x0003 (ChaCha20-Poly1305)
const SUITE_ID = Buffer.concat([
  Buffer.from('HPKE', 'latin1'),
  Buffer.from([0x64, 0x7a, 0x00, 0x01, 0x00, 0x03]),
]);
const HPKE_V1 = Buffer.from('HPKE-v1', 'latin1');

function labeledExtract(salt: Uint8Array, label: string, ikm: Uint8Array): Buffer {
  const key = salt.length === 0 ? Buffer.alloc(32) : salt;
  return createHmac('sha256', key)
    .update(Buffer.concat([HPKE_V1, SUITE_ID, Buffer.from(label, 'latin1'), ikm]))
    .digest();
}

/** HKDF-Expand for L <= 32 (one block). */
function labeledExpand(prk: Uint8Array, label: string, info: Uint8Array, length: number): Buffer {
  const l = Buffer.from([length >> 8, length & 0xff]);
  const labeledInfo = Buffer.concat([l, HPKE_V1, SUITE_ID, Buffer.from(label, 'latin1'), info]);
  return createHmac('sha256', prk)
    .update(Buffer.concat([labeledInfo, Buffer.from([1])]))
    .digest()
    .subarray(0, length);
}

/** HPKE base-mode key schedule: the AEAD key and base nonce for `sharedSecret`. */
function keySchedule(sharedSecret: Uint8Array): { key: Buffer; nonce: Buffer } {
  const empty = new Uint8Array(0);
  const pskIdHash = labeledExtract(empty, 'psk_id_hash', empty);
  const infoHash = labeledExtract(empty, 'info_hash', INFO);
  const context = Buffer.concat([Buffer.from([0]), pskIdHash, infoHash]);
  const secret = labeledExtract(sharedSecret, 'secret', empty);
  const key = labeledExpand(secret, 'key', context, 32);
  const nonce = labeledExpand(secret, 'base_nonce', context, 12);
  secret.fill(0);
  return { key, nonce };
}

/**
 * FIPS 203 section 7.2 modulus check on the ML-KEM-768 encapsulation key, the first 1184 bytes
 * of the hybrid key: its 1152-byte vector must decode (12 bits per coefficient) to values below q.
 */
function mlkemKeyInRange(pk: Uint8Array): boolean {
  for (let i = 0; i + 3 <= 1152; i += 3) {
    const b0 = pk[i] as number;
    const b1 = pk[i + 1] as number;
    const b2 = pk[i + 2] as number;
    if ((b0 | ((b1 & 0x0f) << 8)) >= 3329 || ((b1 >> 4) | (b2 << 4)) >= 3329) return false;
  }
  return true;
}

/** An `age1pq1...` recipient. */
export class HybridRecipient implements Recipient {
  readonly publicKey: Uint8Array;

  /** From an `age1pq1...` string or the 1216-byte public key; throws AGE_INVALID_RECIPIENT. */
  constructor(publicKey: string | Uint8Array) {
    let pk: Uint8Array | null = null;
    if (typeof publicKey === 'string') {
      const d = bech32Decode(publicKey);
      if (d !== null && d.hrp === RECIPIENT_HRP && d.data.length === PUBLIC_KEY_SIZE) pk = d.data;
    } else if (publicKey instanceof Uint8Array && publicKey.length === PUBLIC_KEY_SIZE) {
      pk = Uint8Array.from(publicKey);
    }
    if (pk === null) {
      throw new FerryError('AGE_INVALID_RECIPIENT', 'not a valid hybrid (ML-KEM-768 + X25519) recipient', {
        hints: [`expected: age1pq1... (lowercase Bech32 of ${PUBLIC_KEY_SIZE} bytes)`],
      });
    }
    if (!mlkemKeyInRange(pk)) {
      throw new FerryError('AGE_INVALID_RECIPIENT', 'hybrid recipient: the ML-KEM-768 key is not reduced', {
        hints: ['expected: every 12-bit coefficient below q = 3329 (FIPS 203 section 7.2, modulus check)'],
      });
    }
    this.publicKey = pk;
  }

  toString(): string {
    return bech32Encode(RECIPIENT_HRP, this.publicKey);
  }

  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    let enc: { cipherText: Uint8Array; sharedSecret: Uint8Array };
    try {
      enc = MLKEM768X25519.encapsulate(this.publicKey);
    } catch (e) {
      // noble refuses an X25519 part that is a low-order point (an all-zero shared secret).
      throw new FerryError('AGE_X25519_LOW_ORDER', 'hybrid recipient: the X25519 key is a low-order point', {
        cause: e,
      });
    }
    const { cipherText, sharedSecret } = enc;
    const { key, nonce } = keySchedule(sharedSecret);
    sharedSecret.fill(0);
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    const body = Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
    key.fill(0);
    return [{ type: STANZA_TYPE, args: [encodeB64(cipherText)], body: new Uint8Array(body) }];
  }
}

/** An `AGE-SECRET-KEY-PQ-1...` identity. */
export class HybridIdentity implements Identity {
  readonly #seed: Uint8Array;

  /** From an `AGE-SECRET-KEY-PQ-1...` string or the 32-byte seed; throws AGE_INVALID_IDENTITY. */
  constructor(secretKey: string | Uint8Array) {
    let seed: Uint8Array | null = null;
    if (typeof secretKey === 'string') {
      const d = bech32Decode(secretKey);
      if (d !== null && d.hrp === IDENTITY_HRP && d.data.length === 32) seed = d.data;
    } else if (secretKey instanceof Uint8Array && secretKey.length === 32) {
      seed = Uint8Array.from(secretKey);
    }
    if (seed === null) {
      throw new FerryError('AGE_INVALID_IDENTITY', 'not a valid hybrid (ML-KEM-768 + X25519) identity', {
        hints: ['expected: AGE-SECRET-KEY-PQ-1... (uppercase Bech32 of 32 bytes)'],
      });
    }
    this.#seed = seed;
  }

  get recipient(): HybridRecipient {
    return new HybridRecipient(MLKEM768X25519.getPublicKey(this.#seed));
  }

  /** The `AGE-SECRET-KEY-PQ-1...` encoding. Secret: never log it. */
  toString(): string {
    return bech32Encode(IDENTITY_HRP, this.#seed, true);
  }

  /**
   * Returns the file key from the first mlkem768x25519 stanza that opens, or null. Throws
   * AGE_STANZA_INVALID for wrong arguments or sizes and AGE_X25519_LOW_ORDER when the
   * X25519 half of the share is rejected by the KEM.
   */
  unwrapFileKey(stanzas: Stanza[]): Uint8Array | null {
    for (const s of stanzas) {
      if (s.type !== STANZA_TYPE) continue;
      if (s.args.length !== 1) {
        throw new FerryError('AGE_STANZA_INVALID', 'mlkem768x25519 stanza must have exactly one argument', {
          hints: [`got: ${s.args.length} arguments`],
        });
      }
      const enc = decodeB64Canonical(s.args[0]);
      if (enc === null || enc.length !== ENC_SIZE) {
        throw new FerryError(
          'AGE_STANZA_INVALID',
          `mlkem768x25519 share must be ${ENC_SIZE} bytes of canonical base64`,
        );
      }
      if (s.body.length !== FILE_KEY_SIZE + 16) {
        throw new FerryError('AGE_STANZA_INVALID', 'mlkem768x25519 stanza body must be 32 bytes', {
          hints: [`got: ${s.body.length} bytes`],
        });
      }
      let ss: Uint8Array;
      try {
        ss = MLKEM768X25519.decapsulate(enc, this.#seed);
      } catch (e) {
        throw new FerryError('AGE_X25519_LOW_ORDER', 'mlkem768x25519 share has a low-order X25519 part', {
          cause: e,
        });
      }
      const { key, nonce } = keySchedule(ss);
      ss.fill(0);
      const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
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
