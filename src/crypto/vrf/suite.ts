/**
 * Constants and byte-level helpers of the suite ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381
 * section 5.5). Shared by the fast implementation (`ecvrf.ts`) and the straightforward
 * reference (`reference.ts`); nothing here touches secret data except `clampSecretScalar`.
 */
import { createHash } from 'node:crypto';

/** suite_string for ECVRF-EDWARDS25519-SHA512-TAI. */
export const SUITE = 0x03;
/** Field prime p = 2^255 - 19. */
export const P = (1n << 255n) - 19n;
/** Prime order q of the base point (RFC 8032 "L"). */
export const Q = (1n << 252n) + 27742317777372353535851937790883648493n;
export const COFACTOR = 8n;
/** Byte lengths: secret key (seed), public key / point, challenge, scalar, proof, output. */
export const SK_LEN = 32;
export const PT_LEN = 32;
export const C_LEN = 16;
export const Q_LEN = 32;
export const PROOF_LEN = PT_LEN + C_LEN + Q_LEN;
export const BETA_LEN = 64;

/** Domain separator bytes of RFC 9381. */
export const DS_ENCODE_TO_CURVE_FRONT = 0x01;
export const DS_CHALLENGE_FRONT = 0x02;
export const DS_PROOF_TO_HASH_FRONT = 0x03;
export const DS_BACK = 0x00;

/** SHA-512 via node:crypto. */
export function sha512(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** Little-endian bytes to bigint (string_to_int for this suite). */
export function bytesToNumberLE(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  return n;
}

/** bigint to `len` little-endian bytes (int_to_string for this suite). Caller ensures range. */
export function numberToBytesLE(n: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

export function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r >= 0n ? r : r + m;
}

/**
 * The secret scalar x of RFC 9381 section 5.5 / RFC 8032 section 5.1.5: the first 32 bytes of
 * SHA-512(SK), clamped, read little-endian (not reduced mod q). Also returns the second half of
 * the hash, used by nonce generation (section 5.4.2.2). The caller wipes both.
 */
export function expandSecretKey(sk: Uint8Array): { x: bigint; xBytes: Uint8Array; prefix: Uint8Array } {
  const h = sha512(sk);
  const xBytes = h.slice(0, 32);
  xBytes[0] &= 248;
  xBytes[31] &= 127;
  xBytes[31] |= 64;
  const prefix = h.slice(32, 64);
  h.fill(0);
  return { x: bytesToNumberLE(xBytes), xBytes, prefix };
}

/** The hash input of one try-and-increment step (section 5.4.1.1), for counter `ctr`. */
export function encodeToCurveHash(pk: Uint8Array, alpha: Uint8Array, ctr: number): Uint8Array {
  return sha512(Uint8Array.of(SUITE, DS_ENCODE_TO_CURVE_FRONT), pk, alpha, Uint8Array.of(ctr, DS_BACK));
}

/** ECVRF_challenge_generation (section 5.4.3) over encoded points: first 16 bytes of the hash. */
export function challengeBytes(
  y: Uint8Array,
  h: Uint8Array,
  gamma: Uint8Array,
  u: Uint8Array,
  v: Uint8Array,
): Uint8Array {
  return sha512(Uint8Array.of(SUITE, DS_CHALLENGE_FRONT), y, h, gamma, u, v, Uint8Array.of(DS_BACK)).slice(
    0,
    C_LEN,
  );
}

/** ECVRF_nonce_generation_RFC8032 (section 5.4.2.2): k_string = SHA-512(prefix || H). */
export function nonceBytes(prefix: Uint8Array, h: Uint8Array): Uint8Array {
  return sha512(prefix, h);
}

/** proof_to_hash (section 5.2) given the encoding of cofactor * Gamma. */
export function betaFromCofactorGamma(gamma8: Uint8Array): Uint8Array {
  return sha512(Uint8Array.of(SUITE, DS_PROOF_TO_HASH_FRONT), gamma8, Uint8Array.of(DS_BACK));
}

/**
 * Classifies a 32-byte point encoding against the RFC 8032 section 5.1.3 canonical rules
 * without decoding it: `y >= p`, or x = 0 (y = 1 or y = p - 1) with the sign bit set.
 * Returns true when the encoding is non-canonical.
 */
export function isNonCanonicalEncoding(b: Uint8Array): boolean {
  const sign = b[31] & 0x80;
  // y >= p  <=>  y in [2^255 - 19, 2^255 - 1]: bytes 1..30 are 0xff, byte 31 (masked) is 0x7f
  // and byte 0 >= 0xed.
  let allFF = true;
  for (let i = 1; i < 31; i++) {
    if (b[i] !== 0xff) {
      allFF = false;
      break;
    }
  }
  if (allFF && (b[31] & 0x7f) === 0x7f && b[0] >= 0xed) return true;
  if (sign === 0) return false;
  // x = 0 exactly when y = 1 or y = p - 1 (y^2 = 1); then the sign bit must be 0.
  let rest0 = true;
  for (let i = 1; i < 31; i++) {
    if (b[i] !== 0) {
      rest0 = false;
      break;
    }
  }
  if (rest0 && (b[31] & 0x7f) === 0 && b[0] === 0x01) return true; // y = 1
  if (allFF && (b[31] & 0x7f) === 0x7f && b[0] === 0xec) return true; // y = p - 1
  return false;
}
