/**
 * The pure-JS path on @noble/curves, used when sodium-native is unavailable and for the inputs
 * libsodium refuses (see sodium.ts). It implements RFC 9381 for every input. Levers over the
 * straightforward version (`reference.ts`): SHA-512 from node:crypto, the base point's
 * precomputed window table, one joint (Straus) multiplication for V = s*H - c*Gamma, and one
 * field inversion for the four points hashed by the challenge.
 */
import { mulAddUnsafe, normalizeZ } from '@noble/curves/abstract/curve.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  bytesToNumberLE,
  challengeBytes,
  COFACTOR,
  encodeToCurveHash,
  isNonCanonicalEncoding,
  nonceBytes,
  Q,
} from './suite.ts';

export const Point = ed25519.Point;
export type Pt = InstanceType<typeof Point>;

const BASE = Point.BASE;
// The window table is built on the first multiplication, not at import: building it costs
// ~100 ms, which every command that merely imports this module would pay at start-up.
BASE.precompute(8);

/**
 * string_to_point (RFC 8032 section 5.1.3, strict): 'non-canonical' for y >= p or x = 0 with
 * the sign bit set, 'not-on-curve' when no x exists, else the point.
 */
export function decodePoint(b: Uint8Array): Pt | 'non-canonical' | 'not-on-curve' {
  if (isNonCanonicalEncoding(b)) return 'non-canonical';
  try {
    return Point.fromBytes(b, false);
  } catch {
    return 'not-on-curve';
  }
}

/** encode_to_curve, try-and-increment (section 5.4.1.1). Null after 256 failed counters. */
export function pureEncodeToCurve(pk: Uint8Array, alpha: Uint8Array): { H: Pt; ctr: number } | null {
  for (let ctr = 0; ctr < 256; ctr++) {
    const p = decodePoint(encodeToCurveHash(pk, alpha, ctr).subarray(0, 32));
    if (typeof p !== 'string') return { H: p.multiplyUnsafe(COFACTOR), ctr };
  }
  return null;
}

/** Y = x*B (constant time); x is the clamped scalar, reduced mod q here. */
export function purePublicKey(x: bigint): Uint8Array {
  return BASE.multiply(x % Q).toBytes();
}

/** Encodes several points with one field inversion. */
function encodeAll(points: Pt[]): Uint8Array[] {
  return normalizeZ(Point, points).map((p) => p.toBytes());
}

/** k*P with the constant-time ladder; k = 0 gives the identity (multiply refuses 0). */
function mulSecret(p: Pt, k: bigint): Pt {
  return k === 0n ? Point.ZERO : p.multiply(k);
}

/**
 * ECVRF_prove (section 5.1): constant-time multiplications by x and k; s = k + c*x mod q in
 * bigint arithmetic. Null only if encode_to_curve fails (probability about 2^-256).
 */
export function pureProve(x: bigint, prefix: Uint8Array, pk: Uint8Array, alpha: Uint8Array) {
  const e = pureEncodeToCurve(pk, alpha);
  if (e === null) return null;
  const xq = x % Q;
  const Hb = e.H.toBytes();
  const k = nonceBytes(prefix, Hb);
  const kModQ = bytesToNumberLE(k) % Q;
  const [Gamma, U, V] = encodeAll([mulSecret(e.H, xq), mulSecret(BASE, kModQ), mulSecret(e.H, kModQ)]);
  const c = bytesToNumberLE(challengeBytes(pk, Hb, Gamma, U, V));
  const s = (kModQ + c * x) % Q;
  return { H: Hb, ctr: e.ctr, Gamma, k, kModQ, U, V, c, s };
}

/**
 * Steps 6-9 of ECVRF_verify (section 5.3) on decoded parts: U = s*B - c*Y (base table plus a
 * 128-bit multiplication), V = s*H - c*Gamma (one joint multiplication), challenge compare.
 * Variable time: public data only. Null only if encode_to_curve fails.
 */
export function pureVerifyEquationUnsafe(
  Y: Pt,
  pk: Uint8Array,
  alpha: Uint8Array,
  Gamma: Pt,
  gamma: Uint8Array,
  c: bigint,
  s: bigint,
): boolean | null {
  const e = pureEncodeToCurve(pk, alpha);
  if (e === null) return null;
  const U = BASE.multiplyUnsafe(s).subtract(Y.multiplyUnsafe(c));
  const V = mulAddUnsafe(Point, [e.H, Gamma.negate()], [s, c]);
  const [Hb, Ub, Vb] = encodeAll([e.H, U, V]);
  return bytesToNumberLE(challengeBytes(pk, Hb, gamma, Ub, Vb)) === c;
}

/** Encoding of cofactor * Gamma for proof_to_hash. */
export function pureCofactorGamma(Gamma: Pt): Uint8Array {
  return Gamma.multiplyUnsafe(COFACTOR).toBytes();
}
