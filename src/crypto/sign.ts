/**
 * Ed25519 signatures (RFC 8032, pure Ed25519) over canonical tagged protocol objects, on
 * node:crypto. A signature over an object of type T is a signature over its tagged canonical
 * encoding `[tag, body]` (docs/protocol.md sections 2 and 7), so the tag separates domains: a
 * signature on a receipt never verifies as an attestation result.
 *
 * Keys are raw: a secret key is the 32-byte RFC 8032 seed, a public key the 32-byte encoded
 * point, a signature 64 bytes. Errors: SIGNATURE_KEY_INVALID for a malformed key (wrong type or
 * length, or a public key that is not a valid point); verification returns false, never
 * throws, for a signature that does not verify (including one of the wrong length).
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  type CanonicalValue,
  concatBytes,
  describe,
  encodeTagged,
  FerryError,
  toHex,
} from '../kernel/index.ts';

const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

export const ED25519_SECRET_KEY_LENGTH = 32;
export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

function keyBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== 32) {
    throw new FerryError('SIGNATURE_KEY_INVALID', `${what} must be a 32-byte Ed25519 key`, {
      hints: ['expected: Uint8Array(32)', `got: ${describe(value)}`],
    });
  }
  return value;
}

function bytesArg(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new FerryError('INVALID_ARGUMENT', `${what} must be a Uint8Array`, {
      hints: [`got: ${describe(value)}`],
    });
  }
  return value;
}

// Public KeyObjects are cached (verifiers check many signatures by the same few keys); secret
// keys are not cached, so no secret outlives the call in our own structures.
const PUBLIC_CACHE_MAX = 1024;
const publicCache = new Map<string, KeyObject>();

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  keyBytes(publicKey, 'publicKey');
  const id = toHex(publicKey);
  const hit = publicCache.get(id);
  if (hit) return hit;
  // node:crypto (OpenSSL) accepts any 32 bytes here; decode the point to refuse malformed keys.
  try {
    ed25519.Point.fromBytes(publicKey);
  } catch (e) {
    throw new FerryError('SIGNATURE_KEY_INVALID', 'publicKey is not a valid Ed25519 point', {
      cause: e,
      hints: ['expected: the 32-byte RFC 8032 encoding of a curve point'],
    });
  }
  const key = createPublicKey({
    key: Buffer.from(concatBytes(SPKI_PREFIX, publicKey)),
    format: 'der',
    type: 'spki',
  });
  if (publicCache.size >= PUBLIC_CACHE_MAX) publicCache.delete(publicCache.keys().next().value as string);
  publicCache.set(id, key);
  return key;
}

function secretKeyObject(secretKey: Uint8Array): KeyObject {
  keyBytes(secretKey, 'secretKey');
  return createPrivateKey({
    key: Buffer.from(concatBytes(PKCS8_PREFIX, secretKey)),
    format: 'der',
    type: 'pkcs8',
  });
}

function rawPublic(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - 32));
}

/** A fresh Ed25519 key pair: the 32-byte seed and the 32-byte public key. */
export function generateSigningKeyPair(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  return { secretKey: new Uint8Array(der.subarray(der.length - 32)), publicKey: rawPublic(publicKey) };
}

/** The public key of a 32-byte seed. Throws SIGNATURE_KEY_INVALID for a bad seed. */
export function signingPublicKey(secretKey: Uint8Array): Uint8Array {
  return rawPublic(createPublicKey(secretKeyObject(secretKey)));
}

/**
 * Ed25519 signature of a raw message (RFC 8032 section 5.1.6). Protocol code signs tagged
 * objects with `signTagged`; this raw form exists for standard vectors and interop. Throws
 * SIGNATURE_KEY_INVALID for a bad seed and INVALID_ARGUMENT for a non-byte message.
 */
export function ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  bytesArg(message, 'message');
  return new Uint8Array(nodeSign(null, message, secretKeyObject(secretKey)));
}

/**
 * Verifies an Ed25519 signature of a raw message (RFC 8032 section 5.1.7, as OpenSSL does it:
 * cofactorless, canonical S required). Returns false for a signature that does not verify or is
 * not 64 bytes; throws SIGNATURE_KEY_INVALID for a malformed public key.
 */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const key = publicKeyObject(publicKey);
  bytesArg(message, 'message');
  bytesArg(signature, 'signature');
  if (signature.length !== ED25519_SIGNATURE_LENGTH) return false;
  return nodeVerify(null, message, key, signature);
}

/**
 * Signs the tagged canonical encoding of `body` (encodeTagged(tag, body)); returns the 64-byte
 * signature. Throws SIGNATURE_KEY_INVALID for a bad seed, and the canonical encoder's errors
 * (INVALID_ARGUMENT for a bad tag, CBOR_UNSUPPORTED_TYPE for a bad body).
 */
export function signTagged(secretKey: Uint8Array, tag: string, body: CanonicalValue): Uint8Array {
  const key = secretKeyObject(secretKey);
  return new Uint8Array(nodeSign(null, encodeTagged(tag, body), key));
}

/**
 * Verifies a signature over encodeTagged(tag, body). Returns true only for a valid signature by
 * `publicKey` over exactly this tag and body; false otherwise (including a signature of the
 * wrong length). Throws SIGNATURE_KEY_INVALID for a malformed public key.
 */
export function verifyTagged(
  publicKey: Uint8Array,
  tag: string,
  body: CanonicalValue,
  signature: Uint8Array,
): boolean {
  const key = publicKeyObject(publicKey);
  bytesArg(signature, 'signature');
  if (signature.length !== ED25519_SIGNATURE_LENGTH) return false;
  return nodeVerify(null, encodeTagged(tag, body), key, signature);
}

/**
 * Like verifyTagged, but throws SIGNATURE_INVALID (naming `what`) instead of returning false.
 * For call sites that must stop on a bad signature.
 */
export function assertTaggedSignature(
  publicKey: Uint8Array,
  tag: string,
  body: CanonicalValue,
  signature: Uint8Array,
  what = 'signature',
): void {
  if (!verifyTagged(publicKey, tag, body, signature)) {
    throw new FerryError('SIGNATURE_INVALID', `${what} does not verify`, {
      hints: [`expected: an Ed25519 signature over a ${tag} object by the given key`],
    });
  }
}
