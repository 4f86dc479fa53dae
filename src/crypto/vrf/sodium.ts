/**
 * The native fast path: libsodium's edwards25519 point operations through the optional
 * `sodium-native` package. Loaded once, lazily; when the package is missing or fails to load,
 * `loadSodium()` returns null and Ferry uses the pure-JS path (`pure.ts`).
 *
 * libsodium refuses some inputs that RFC 9381 accepts: `crypto_scalarmult_ed25519_noclamp`
 * rejects points outside the prime-order subgroup (a public key or Gamma with a small-order
 * component), a zero scalar and an identity result. Every function here therefore returns
 * null ("cannot decide here") instead of guessing, and the caller recomputes on the pure-JS
 * path, which implements the RFC for every input. A non-null result is always exact.
 */
import { createRequire } from 'node:module';
import {
  bytesToNumberLE,
  C_LEN,
  challengeBytes,
  encodeToCurveHash,
  isNonCanonicalEncoding,
  nonceBytes,
  numberToBytesLE,
  Q,
} from './suite.ts';

/** The subset of sodium-native used here (it ships no type declarations). */
type SodiumNative = {
  crypto_core_ed25519_add(r: Uint8Array, p: Uint8Array, q: Uint8Array): void;
  crypto_core_ed25519_sub(r: Uint8Array, p: Uint8Array, q: Uint8Array): void;
  crypto_scalarmult_ed25519_noclamp(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_scalarmult_ed25519_base_noclamp(q: Uint8Array, n: Uint8Array): void;
};

let loaded: SodiumNative | null | undefined;

/** sodium-native, or null when it is not installed or does not load on this platform. */
export function loadSodium(): SodiumNative | null {
  if (loaded === undefined) {
    try {
      const m = createRequire(import.meta.url)('sodium-native') as SodiumNative;
      loaded = typeof m.crypto_scalarmult_ed25519_noclamp === 'function' ? m : null;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/** Calls a libsodium function that signals refusal by throwing; returns false on refusal. */
function attempt(f: () => void): boolean {
  try {
    f();
    return true;
  } catch {
    return false;
  }
}

/** 8 * P by three doublings (libsodium's add checks that P decodes and is on the curve). */
function mulCofactor(na: SodiumNative, p: Uint8Array): Uint8Array | null {
  const a = new Uint8Array(32);
  if (!attempt(() => na.crypto_core_ed25519_add(a, p, p))) return null;
  na.crypto_core_ed25519_add(a, a, a);
  na.crypto_core_ed25519_add(a, a, a);
  return a;
}

/**
 * encode_to_curve, try-and-increment (RFC 9381 section 5.4.1.1): H (cofactor cleared) and the
 * counter. Candidates that are non-canonical or not on the curve are skipped, as the RFC's
 * string_to_point says. Null if 256 counters fail (probability about 2^-256).
 */
export function sodiumEncodeToCurve(
  na: SodiumNative,
  pk: Uint8Array,
  alpha: Uint8Array,
): { H: Uint8Array; ctr: number } | null {
  for (let ctr = 0; ctr < 256; ctr++) {
    const cand = encodeToCurveHash(pk, alpha, ctr).subarray(0, 32);
    if (isNonCanonicalEncoding(cand)) continue;
    const H = mulCofactor(na, cand);
    if (H !== null) return { H, ctr };
  }
  return null;
}

/** Encoding of cofactor * Gamma for proof_to_hash; null if Gamma is not a curve point. */
export function sodiumCofactorGamma(na: SodiumNative, gamma: Uint8Array): Uint8Array | null {
  if (isNonCanonicalEncoding(gamma)) return null;
  return mulCofactor(na, gamma);
}

/** Y = x*B for the clamped secret scalar bytes x (constant time in libsodium). */
export function sodiumPublicKey(na: SodiumNative, xBytes: Uint8Array): Uint8Array | null {
  const y = new Uint8Array(32);
  return attempt(() => na.crypto_scalarmult_ed25519_base_noclamp(y, xBytes)) ? y : null;
}

export type ProveParts = {
  H: Uint8Array;
  ctr: number;
  Gamma: Uint8Array;
  k: Uint8Array;
  kModQ: bigint;
  U: Uint8Array;
  V: Uint8Array;
  c: bigint;
  s: bigint;
};

/**
 * ECVRF_prove (section 5.1) with libsodium's constant-time scalar multiplications for the
 * secret x and nonce k. `xBytes` is the clamped scalar, `prefix` the second half of
 * SHA-512(SK), `pk` the encoded public key. The scalar s = k + c*x mod q is computed with
 * bigint arithmetic (not constant time, as in @noble/curves' Ed25519 signing).
 * Null when libsodium refuses (H is the identity: probability about 2^-250).
 */
export function sodiumProve(
  na: SodiumNative,
  x: bigint,
  xBytes: Uint8Array,
  prefix: Uint8Array,
  pk: Uint8Array,
  alpha: Uint8Array,
): ProveParts | null {
  const e = sodiumEncodeToCurve(na, pk, alpha);
  if (e === null) return null;
  const { H, ctr } = e;
  const Gamma = new Uint8Array(32);
  if (!attempt(() => na.crypto_scalarmult_ed25519_noclamp(Gamma, xBytes, H))) return null;
  const k = nonceBytes(prefix, H);
  const kModQ = bytesToNumberLE(k) % Q;
  const kb = numberToBytesLE(kModQ, 32);
  const U = new Uint8Array(32);
  const V = new Uint8Array(32);
  const ok =
    attempt(() => na.crypto_scalarmult_ed25519_base_noclamp(U, kb)) &&
    attempt(() => na.crypto_scalarmult_ed25519_noclamp(V, kb, H));
  kb.fill(0);
  if (!ok) return null;
  const c = bytesToNumberLE(challengeBytes(pk, H, Gamma, U, V));
  const s = (kModQ + c * x) % Q;
  return { H, ctr, Gamma, k, kModQ, U, V, c, s };
}

/**
 * The verification equation of ECVRF_verify (section 5.3, steps 6-9) on already decoded and
 * range-checked parts: U = s*B - c*Y, V = s*H - c*Gamma, and c == challenge(Y, H, Gamma, U, V).
 * Returns true or false, or null when libsodium refuses an input (Y or Gamma outside the
 * prime-order subgroup, Gamma not on the curve, c = 0 or s = 0, an identity product).
 * Variable-time use of public data only.
 */
export function sodiumVerifyEquationUnsafe(
  na: SodiumNative,
  pk: Uint8Array,
  alpha: Uint8Array,
  gamma: Uint8Array,
  cBytes: Uint8Array,
  sBytes: Uint8Array,
): boolean | null {
  const e = sodiumEncodeToCurve(na, pk, alpha);
  if (e === null) return null;
  const c32 = new Uint8Array(32);
  c32.set(cBytes.subarray(0, C_LEN));
  const sB = new Uint8Array(32);
  const cY = new Uint8Array(32);
  const sH = new Uint8Array(32);
  const cG = new Uint8Array(32);
  if (
    !attempt(() => na.crypto_scalarmult_ed25519_noclamp(cG, c32, gamma)) ||
    !attempt(() => na.crypto_scalarmult_ed25519_base_noclamp(sB, sBytes)) ||
    !attempt(() => na.crypto_scalarmult_ed25519_noclamp(cY, c32, pk)) ||
    !attempt(() => na.crypto_scalarmult_ed25519_noclamp(sH, sBytes, e.H))
  ) {
    return null;
  }
  na.crypto_core_ed25519_sub(sB, sB, cY); // U
  na.crypto_core_ed25519_sub(sH, sH, cG); // V
  const c2 = challengeBytes(pk, e.H, gamma, sB, sH);
  let d = 0;
  for (let i = 0; i < C_LEN; i++) d |= c2[i] ^ cBytes[i];
  return d === 0;
}
