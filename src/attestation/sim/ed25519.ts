/**
 * Ed25519 helpers for the sim attester and the enclave's receipts, on src/crypto/sign.ts
 * (docs/protocol.md §7): the signature of object T with body B is Ed25519(sk, encodeTagged(T, B)).
 * Secret keys are 32-byte seeds.
 */
import {
  ed25519Sign,
  ed25519Verify,
  generateSigningKeyPair,
  signingPublicKey,
  signTagged,
} from '../../crypto/sign.ts';
import type { CanonicalValue } from '../../kernel/index.ts';

/** A fresh key pair: `secretKey` is the 32-byte seed, `publicKey` the 32-byte point. */
export function ed25519KeyPair(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  return generateSigningKeyPair();
}

export function ed25519PublicKeyOf(secretKey: Uint8Array): Uint8Array {
  return signingPublicKey(secretKey);
}

/** Ed25519 signature over encodeTagged(tag, body). */
export function signTaggedEd25519(secretKey: Uint8Array, tag: string, body: CanonicalValue): Uint8Array {
  return signTagged(secretKey, tag, body);
}

/** Signature over already-encoded bytes (e.g. a tagged object as received). */
export function signBytesEd25519(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return ed25519Sign(secretKey, message);
}

/**
 * True when `signature` is a valid Ed25519 signature of `message` under `publicKey`; false for
 * anything else, including a malformed public key or signature (never throws for bad input).
 */
export function verifyBytesEd25519(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    return ed25519Verify(publicKey, message, signature);
  } catch {
    return false;
  }
}
