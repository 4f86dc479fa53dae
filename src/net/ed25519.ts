/**
 * Ed25519 request-signing keys on node:crypto (RFC 8032, pure Ed25519). A node, an agent or
 * a profile holds one; its 32-byte raw public key is its `keyId` on the wire.
 *
 * Private keys are 32-byte seeds. They never appear in messages, logs or `toJSON`.
 */
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign, verify } from 'node:crypto';
import { describe, FerryError } from '../kernel/index.ts';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Something that signs request envelopes. `keyId` is the raw 32-byte Ed25519 public key. */
export interface RequestSigner {
  readonly keyId: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

function privateKeyObject(seed: Uint8Array): KeyObject {
  const der = Buffer.concat([PKCS8_PREFIX, seed]);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

/** An Ed25519 signing key held as a node:crypto KeyObject. */
export class Ed25519Signer implements RequestSigner {
  readonly keyId: Uint8Array;
  readonly #key: KeyObject;

  /** From a 32-byte private seed; throws SIGNATURE_KEY_INVALID naming the bad argument. */
  constructor(seed: Uint8Array) {
    if (!(seed instanceof Uint8Array) || seed.length !== 32) {
      throw new FerryError('SIGNATURE_KEY_INVALID', 'an Ed25519 private key is a 32-byte seed', {
        hints: ['expected: Uint8Array(32)', `got: ${describe(seed)}`],
      });
    }
    this.#key = privateKeyObject(seed);
    const spki = createPublicKey(this.#key).export({ format: 'der', type: 'spki' });
    this.keyId = new Uint8Array(spki.subarray(SPKI_PREFIX.length));
  }

  /** A fresh random key and its seed (the caller stores the seed, mode 0600). */
  static generate(): { signer: Ed25519Signer; seed: Uint8Array } {
    const seed = new Uint8Array(randomBytes(32));
    return { signer: new Ed25519Signer(seed), seed };
  }

  sign(message: Uint8Array): Uint8Array {
    return new Uint8Array(sign(null, message, this.#key));
  }

  toJSON(): { keyId: string } {
    return { keyId: Buffer.from(this.keyId).toString('hex') };
  }
}

/**
 * Verifies an Ed25519 signature. Returns false for a bad signature, a malformed public key or
 * a signature of the wrong length; never throws for bad input.
 */
export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
  } catch {
    return false;
  }
  try {
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}
