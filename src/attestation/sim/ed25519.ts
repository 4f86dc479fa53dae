/**
 * Ed25519 over tagged canonical objects on node:crypto: the signature of object T with body B
 * is Ed25519(sk, encodeTagged(T, B)) (docs/protocol.md §2). Secret keys are 32-byte seeds.
 * Used by the sim attester and the enclave's receipts.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { type CanonicalValue, concatBytes, describe, encodeTagged, FerryError } from '../../kernel/index.ts';

const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

function keyArg(k: unknown, what: string): Uint8Array {
  if (!(k instanceof Uint8Array) || k.length !== 32) {
    throw new FerryError('SIGNATURE_KEY_INVALID', `${what} must be 32 bytes`, {
      hints: ['expected: Uint8Array(32)', `got: ${describe(k)}`],
    });
  }
  return k;
}

function privateKey(secretKey: Uint8Array): KeyObject {
  const der = concatBytes(PKCS8_PREFIX, keyArg(secretKey, 'secretKey'));
  try {
    return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  return createPublicKey({
    key: Buffer.from(concatBytes(SPKI_PREFIX, keyArg(publicKey, 'publicKey'))),
    format: 'der',
    type: 'spki',
  });
}

/** A fresh key pair: `secretKey` is the 32-byte seed, `publicKey` the 32-byte point. */
export function ed25519KeyPair(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const { privateKey: sk, publicKey: pk } = generateKeyPairSync('ed25519');
  const der = sk.export({ format: 'der', type: 'pkcs8' });
  const secretKey = Uint8Array.from(der.subarray(der.length - 32));
  der.fill(0);
  const spki = pk.export({ format: 'der', type: 'spki' });
  return { secretKey, publicKey: Uint8Array.from(spki.subarray(spki.length - 32)) };
}

export function ed25519PublicKeyOf(secretKey: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKey(secretKey)).export({ format: 'der', type: 'spki' });
  return Uint8Array.from(spki.subarray(spki.length - 32));
}

/** Ed25519 signature over encodeTagged(tag, body). */
export function signTaggedEd25519(secretKey: Uint8Array, tag: string, body: CanonicalValue): Uint8Array {
  return new Uint8Array(sign(null, encodeTagged(tag, body), privateKey(secretKey)));
}

/** Signature over already-encoded tagged bytes. */
export function signBytesEd25519(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, privateKey(secretKey)));
}

/** True when `signature` is a valid Ed25519 signature of `message`; false otherwise (never throws for bad signatures). */
export function verifyBytesEd25519(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  let pk: KeyObject;
  try {
    pk = publicKeyObject(publicKey);
  } catch {
    return false;
  }
  return verify(null, message, pk, signature);
}
