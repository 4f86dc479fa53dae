/**
 * The X25519 recipient type (C2SP age spec, "X25519 recipient stanza"):
 *
 *     -> X25519 base64(ephemeral share)
 *     base64(ChaCha20-Poly1305(wrap key, nonce 0^12, file key))
 *
 * wrap key = HKDF-SHA256(ikm = X25519(eph, recipient), salt = share || recipient,
 * info = "age-encryption.org/v1/X25519"). Recipients are Bech32 `age1...` (lowercase);
 * identities `AGE-SECRET-KEY-1...` (uppercase). X25519 runs on node:crypto.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { FerryError } from '../../kernel/index.ts';
import { bech32Decode, bech32Encode } from './bech32.ts';
import { decodeB64Canonical, encodeB64, hkdf32, type Stanza } from './format.ts';
import { FILE_KEY_SIZE, type Identity, type Recipient } from './recipients.ts';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const INFO = 'age-encryption.org/v1/X25519';
const RECIPIENT_HRP = 'age';
const IDENTITY_HRP = 'AGE-SECRET-KEY-';
const ZERO_NONCE = Buffer.alloc(12);

function publicKeyObject(pub: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' });
}

function privateKeyObject(sk: Uint8Array): KeyObject {
  const der = Buffer.concat([PKCS8_PREFIX, sk]);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

function rawPublic(key: KeyObject): Uint8Array {
  const spki = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(SPKI_PREFIX.length));
}

/** X25519 that refuses an all-zero shared secret (low-order share) with AGE_X25519_LOW_ORDER. */
function sharedSecret(
  privateKey: KeyObject,
  share: Uint8Array | KeyObject,
  what = 'X25519 share',
): Uint8Array {
  let s: Buffer;
  try {
    s = diffieHellman({
      privateKey,
      publicKey: share instanceof Uint8Array ? publicKeyObject(share) : share,
    });
  } catch (e) {
    throw new FerryError('AGE_X25519_LOW_ORDER', `${what} is a low-order point`, { cause: e });
  }
  let acc = 0;
  for (const b of s) acc |= b;
  if (acc === 0) throw new FerryError('AGE_X25519_LOW_ORDER', `${what} is a low-order point`);
  return new Uint8Array(s);
}

/** An `age1...` recipient. */
export class X25519Recipient implements Recipient {
  readonly publicKey: Uint8Array;
  readonly #key: KeyObject;

  /** From a 32-byte public key or an `age1...` string; throws AGE_INVALID_RECIPIENT. */
  constructor(publicKey: Uint8Array | string) {
    let pk: Uint8Array;
    if (typeof publicKey === 'string') {
      const d = bech32Decode(publicKey);
      if (d === null || d.hrp !== RECIPIENT_HRP || d.data.length !== 32) {
        throw new FerryError('AGE_INVALID_RECIPIENT', 'not a valid X25519 recipient', {
          hints: ['expected: age1... (lowercase Bech32 of 32 bytes)'],
        });
      }
      pk = d.data;
    } else if (publicKey instanceof Uint8Array && publicKey.length === 32) {
      pk = Uint8Array.from(publicKey);
    } else {
      throw new FerryError('AGE_INVALID_RECIPIENT', 'X25519 public key must be 32 bytes', {
        hints: ['expected: Uint8Array(32) or age1... string'],
      });
    }
    this.publicKey = pk;
    this.#key = publicKeyObject(pk);
  }

  toString(): string {
    return bech32Encode(RECIPIENT_HRP, this.publicKey);
  }

  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    const eph = generateKeyPairSync('x25519');
    const share = rawPublic(eph.publicKey);
    // A low-order recipient key gives an all-zero shared secret: refuse it, as age does.
    const shared = sharedSecret(eph.privateKey, this.#key, 'X25519 recipient key');
    const salt = new Uint8Array(64);
    salt.set(share);
    salt.set(this.publicKey, 32);
    const wrapKey = hkdf32(shared, salt, INFO);
    const c = createCipheriv('chacha20-poly1305', wrapKey, ZERO_NONCE, { authTagLength: 16 });
    const body = Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
    shared.fill(0);
    wrapKey.fill(0);
    return [{ type: 'X25519', args: [encodeB64(share)], body: new Uint8Array(body) }];
  }
}

/** An `AGE-SECRET-KEY-1...` identity. */
export class X25519Identity implements Identity {
  readonly #sk: Uint8Array;
  readonly #key: KeyObject;
  readonly publicKey: Uint8Array;

  /** From a 32-byte secret key or an `AGE-SECRET-KEY-1...` string; throws AGE_INVALID_IDENTITY. */
  constructor(secretKey: Uint8Array | string) {
    let sk: Uint8Array;
    if (typeof secretKey === 'string') {
      const d = bech32Decode(secretKey);
      if (d === null || d.hrp !== IDENTITY_HRP || d.data.length !== 32) {
        throw new FerryError('AGE_INVALID_IDENTITY', 'not a valid X25519 identity', {
          hints: ['expected: AGE-SECRET-KEY-1... (uppercase Bech32 of 32 bytes)'],
        });
      }
      sk = d.data;
    } else if (secretKey instanceof Uint8Array && secretKey.length === 32) {
      sk = Uint8Array.from(secretKey);
    } else {
      throw new FerryError('AGE_INVALID_IDENTITY', 'X25519 secret key must be 32 bytes', {
        hints: ['expected: Uint8Array(32) or AGE-SECRET-KEY-1... string'],
      });
    }
    this.#sk = sk;
    this.#key = privateKeyObject(sk);
    this.publicKey = rawPublic(createPublicKey(this.#key));
  }

  /** The matching recipient. */
  get recipient(): X25519Recipient {
    return new X25519Recipient(this.publicKey);
  }

  /** The `AGE-SECRET-KEY-1...` encoding. Secret: never log it. */
  toString(): string {
    return bech32Encode(IDENTITY_HRP, this.#sk, true);
  }

  /**
   * Returns the file key from the first X25519 stanza that opens, or null. Throws
   * AGE_STANZA_INVALID for an X25519 stanza with wrong arguments or body size, and
   * AGE_X25519_LOW_ORDER for a low-order share.
   */
  unwrapFileKey(stanzas: Stanza[]): Uint8Array | null {
    for (const s of stanzas) {
      if (s.type !== 'X25519') continue;
      if (s.args.length !== 1) {
        throw new FerryError('AGE_STANZA_INVALID', 'X25519 stanza must have exactly one argument', {
          hints: [`got: ${s.args.length} arguments`],
        });
      }
      const share = decodeB64Canonical(s.args[0]);
      if (share === null || share.length !== 32) {
        throw new FerryError('AGE_STANZA_INVALID', 'X25519 share must be 32 bytes of canonical base64');
      }
      if (s.body.length !== FILE_KEY_SIZE + 16) {
        throw new FerryError('AGE_STANZA_INVALID', 'X25519 stanza body must be 32 bytes', {
          hints: [`got: ${s.body.length} bytes`],
        });
      }
      const shared = sharedSecret(this.#key, share);
      const salt = new Uint8Array(64);
      salt.set(share);
      salt.set(this.publicKey, 32);
      const wrapKey = hkdf32(shared, salt, INFO);
      shared.fill(0);
      const d = createDecipheriv('chacha20-poly1305', wrapKey, ZERO_NONCE, { authTagLength: 16 });
      d.setAuthTag(s.body.subarray(FILE_KEY_SIZE));
      const fileKey = d.update(s.body.subarray(0, FILE_KEY_SIZE));
      wrapKey.fill(0);
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

/** A fresh X25519 identity and its recipient, as strings. */
export function generateX25519Identity(): { identity: string; recipient: string } {
  const { privateKey } = generateKeyPairSync('x25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const sk = new Uint8Array(pkcs8.subarray(PKCS8_PREFIX.length));
  pkcs8.fill(0);
  const id = new X25519Identity(sk);
  sk.fill(0);
  return { identity: id.toString(), recipient: id.recipient.toString() };
}
