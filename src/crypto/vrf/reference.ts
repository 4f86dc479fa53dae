/**
 * A straightforward ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381 section 5) on @noble/curves and
 * @noble/hashes, written to read like the RFC: no precomputed tables, no joint
 * multiplication, no caches, JavaScript SHA-512. It is the benchmark baseline and an
 * independent cross-check for the fast implementation in `ecvrf.ts`; production code must
 * use `index.ts`.
 *
 * It returns `null` where the RFC outputs "INVALID" and throws only on wrong argument types
 * or lengths (plain `Error`: this module is not a public boundary).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { C_LEN, COFACTOR, P, PROOF_LEN, Q, SUITE } from './suite.ts';

const Point = ed25519.Point;
type Pt = InstanceType<typeof Point>;

function le(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  return n;
}

function toLE(n: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function check(b: Uint8Array, len: number | undefined, what: string): void {
  if (!(b instanceof Uint8Array) || (len !== undefined && b.length !== len)) {
    throw new Error(`${what}: expected Uint8Array${len === undefined ? '' : `(${len})`}`);
  }
}

/** RFC 8032 section 5.1.3 decoding (strict: y < p, no "negative zero"); null if invalid. */
export function stringToPoint(b: Uint8Array): Pt | null {
  try {
    return Point.fromBytes(b, false);
  } catch {
    return null;
  }
}

/** Section 5.4.1.1, try-and-increment. Returns H (cofactor cleared) and the counter used. */
export function encodeToCurveTai(pk: Uint8Array, alpha: Uint8Array): { H: Pt; ctr: number } {
  for (let ctr = 0; ctr < 256; ctr++) {
    const hash = sha512(cat(Uint8Array.of(SUITE, 0x01), pk, alpha, Uint8Array.of(ctr, 0x00)));
    const pt = stringToPoint(hash.subarray(0, 32));
    if (pt !== null) return { H: pt.multiplyUnsafe(COFACTOR), ctr };
  }
  throw new Error('encode_to_curve: no valid point after 256 tries');
}

function challenge(...points: Pt[]): bigint {
  const enc = points.map((p) => p.toBytes());
  return le(sha512(cat(Uint8Array.of(SUITE, 0x02), ...enc, Uint8Array.of(0x00))).subarray(0, C_LEN));
}

export type ReferenceProof = {
  x: bigint;
  Y: Uint8Array;
  H: Uint8Array;
  ctr: number;
  k: Uint8Array;
  kModQ: bigint;
  U: Uint8Array;
  V: Uint8Array;
  Gamma: Uint8Array;
  c: bigint;
  s: bigint;
  pi: Uint8Array;
  beta: Uint8Array;
};

/** ECVRF_prove (section 5.1) with every intermediate value. */
export function referenceProve(sk: Uint8Array, alpha: Uint8Array): ReferenceProof {
  check(sk, 32, 'sk');
  check(alpha, undefined, 'alpha');
  const h = sha512(sk);
  const xb = h.slice(0, 32);
  xb[0] &= 248;
  xb[31] &= 127;
  xb[31] |= 64;
  const x = le(xb);
  const Y = Point.BASE.multiply(x % Q);
  const pk = Y.toBytes();
  const { H, ctr } = encodeToCurveTai(pk, alpha);
  const Gamma = H.multiply(x % Q);
  const k = sha512(cat(h.subarray(32, 64), H.toBytes()));
  const kModQ = le(k) % Q;
  const U = Point.BASE.multiply(kModQ);
  const V = H.multiply(kModQ);
  const c = challenge(Y, H, Gamma, U, V);
  const s = (kModQ + c * x) % Q;
  const pi = cat(Gamma.toBytes(), toLE(c, C_LEN), toLE(s, 32));
  return {
    x,
    Y: pk,
    H: H.toBytes(),
    ctr,
    k,
    kModQ,
    U: U.toBytes(),
    V: V.toBytes(),
    Gamma: Gamma.toBytes(),
    c,
    s,
    pi,
    beta: referenceProofToHash(pi)!,
  };
}

/** ECVRF_decode_proof (section 5.4.4); null if invalid. */
export function decodeProof(pi: Uint8Array): { Gamma: Pt; c: bigint; s: bigint } | null {
  if (pi.length !== PROOF_LEN) return null;
  const Gamma = stringToPoint(pi.subarray(0, 32));
  if (Gamma === null) return null;
  const c = le(pi.subarray(32, 48));
  const s = le(pi.subarray(48, 80));
  if (s >= Q) return null;
  return { Gamma, c, s };
}

/** ECVRF_proof_to_hash (section 5.2); null if the proof does not decode. */
export function referenceProofToHash(pi: Uint8Array): Uint8Array | null {
  check(pi, undefined, 'pi');
  const d = decodeProof(pi);
  if (d === null) return null;
  return sha512(
    cat(Uint8Array.of(SUITE, 0x03), d.Gamma.multiplyUnsafe(COFACTOR).toBytes(), Uint8Array.of(0)),
  );
}

/** ECVRF_validate_key (section 5.4.5): decodes and rejects small-order points; null if invalid. */
export function validateKey(pk: Uint8Array): Pt | null {
  const Y = stringToPoint(pk);
  if (Y === null || Y.multiplyUnsafe(COFACTOR).is0()) return null;
  return Y;
}

/** ECVRF_verify (section 5.3) with validate_key = TRUE; beta, or null for INVALID. */
export function referenceVerify(pk: Uint8Array, alpha: Uint8Array, pi: Uint8Array): Uint8Array | null {
  check(pk, undefined, 'pk');
  check(alpha, undefined, 'alpha');
  check(pi, undefined, 'pi');
  const Y = pk.length === 32 ? validateKey(pk) : null;
  if (Y === null) return null;
  const d = decodeProof(pi);
  if (d === null) return null;
  const { H } = encodeToCurveTai(pk, alpha);
  const U = Point.BASE.multiplyUnsafe(d.s).subtract(Y.multiplyUnsafe(d.c));
  const V = H.multiplyUnsafe(d.s).subtract(d.Gamma.multiplyUnsafe(d.c));
  if (challenge(Y, H, d.Gamma, U, V) !== d.c) return null;
  return referenceProofToHash(pi);
}

/** Exposed for tests: the field prime, to build non-canonical encodings. */
export const FIELD_P = P;
