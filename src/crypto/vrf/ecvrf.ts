/**
 * RFC 9381 ECVRF-EDWARDS25519-SHA512-TAI: key generation, prove, verify with full key
 * validation, proof_to_hash. See docs/protocol.md section 3.
 *
 * Two implementations of the curve arithmetic sit behind this one boundary: libsodium's
 * (sodium-native, optional; 4 to 8 times faster here) and @noble/curves'. Input validation, decoding
 * and error codes live here, so both give the same answer and the same code for every input;
 * inputs libsodium refuses (points outside the prime-order subgroup, zero scalars) are
 * recomputed on the pure-JS path.
 */
import { randomBytes } from 'node:crypto';
import { describe, FerryError, toHex } from '../../kernel/index.ts';
import {
  decodePoint,
  Point,
  type Pt,
  pureCofactorGamma,
  pureProve,
  purePublicKey,
  pureVerifyEquationUnsafe,
} from './pure.ts';
import {
  loadSodium,
  sodiumCofactorGamma,
  sodiumProve,
  sodiumPublicKey,
  sodiumVerifyEquationUnsafe,
} from './sodium.ts';
import {
  BETA_LEN,
  betaFromCofactorGamma,
  bytesToNumberLE,
  C_LEN,
  COFACTOR,
  expandSecretKey,
  isNonCanonicalEncoding,
  numberToBytesLE,
  PROOF_LEN,
  PT_LEN,
  Q,
  SK_LEN,
} from './suite.ts';

export type VrfBackendName = 'sodium-native' | 'js';

let preferNative = true;

/**
 * Chooses the arithmetic: 'auto' (sodium-native when it loads, else JS), or forces 'js'.
 * 'sodium-native' throws INVALID_ARGUMENT when the package does not load. For tests and
 * benchmarks; results are identical either way.
 */
export function useVrfBackend(name: 'auto' | VrfBackendName): VrfBackendName {
  if (name !== 'auto' && name !== 'sodium-native' && name !== 'js') {
    throw new FerryError('INVALID_ARGUMENT', 'unknown VRF backend', {
      hints: ['expected: "auto", "sodium-native" or "js"', `got: ${describe(name)}`],
    });
  }
  if (name === 'sodium-native' && loadSodium() === null) {
    throw new FerryError('INVALID_ARGUMENT', 'sodium-native is not available', {
      hints: ['install it with: npm install sodium-native', 'or use the "js" backend'],
    });
  }
  preferNative = name !== 'js';
  return vrfBackend();
}

/** The arithmetic in use now. */
export function vrfBackend(): VrfBackendName {
  return preferNative && loadSodium() !== null ? 'sodium-native' : 'js';
}

function native() {
  return preferNative ? loadSodium() : null;
}

function requireBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new FerryError('INVALID_ARGUMENT', `${what}: expected a Uint8Array`, {
      hints: ['expected: Uint8Array', `got: ${describe(value)}`],
    });
  }
  return value;
}

function checkSecretKey(sk: unknown): Uint8Array {
  if (!(sk instanceof Uint8Array) || sk.length !== SK_LEN) {
    throw new FerryError('VRF_INVALID_SECRET_KEY', 'sk: expected a 32-byte VRF secret key (seed)', {
      hints: [`expected: Uint8Array(${SK_LEN})`, `got: ${describe(sk)}`],
    });
  }
  return sk;
}

// ---- public keys ------------------------------------------------------------------------

type ValidKey = { bytes: Uint8Array; point: Pt };

const KEY_CACHE_SIZE = 1024;
const keyCache = new Map<string, ValidKey>();

/**
 * ECVRF_validate_key (RFC 9381 section 5.4.5) with the stricter RFC 8032 decoding: the key
 * must be 32 bytes (VRF_INVALID_PUBLIC_KEY), a canonical encoding (y < p, no "negative zero":
 * VRF_PUBLIC_KEY_NON_CANONICAL), a curve point (VRF_INVALID_PUBLIC_KEY) and not of small
 * order, i.e. 8*Y != identity (VRF_PUBLIC_KEY_SMALL_ORDER). Points with a small-order
 * component but a large-order part are valid keys, as in the RFC. Valid keys are cached
 * (least recently used, 1024 entries).
 */
function validatePublicKey(pk: unknown): ValidKey {
  const bytes = requireBytes(pk, 'pk');
  if (bytes.length !== PT_LEN) {
    throw new FerryError('VRF_INVALID_PUBLIC_KEY', 'pk: expected a 32-byte VRF public key', {
      hints: [`expected: Uint8Array(${PT_LEN})`, `got: ${describe(pk)}`],
    });
  }
  const id = toHex(bytes);
  const hit = keyCache.get(id);
  if (hit !== undefined) {
    keyCache.delete(id);
    keyCache.set(id, hit);
    return hit;
  }
  const p = decodePoint(bytes);
  if (p === 'non-canonical') {
    throw new FerryError('VRF_PUBLIC_KEY_NON_CANONICAL', 'pk is not a canonical point encoding', {
      hints: ['RFC 8032 section 5.1.3: y must be < 2^255 - 19, and x = 0 must have sign bit 0'],
    });
  }
  if (p === 'not-on-curve') {
    throw new FerryError('VRF_INVALID_PUBLIC_KEY', 'pk is not a point on edwards25519', {
      hints: ['expected: a compressed edwards25519 point (RFC 8032)'],
    });
  }
  if (p.multiplyUnsafe(COFACTOR).is0()) {
    throw new FerryError('VRF_PUBLIC_KEY_SMALL_ORDER', 'pk is a point of small order', {
      hints: ['RFC 9381 section 5.4.5: cofactor * Y must not be the identity'],
    });
  }
  const key = { bytes: Uint8Array.from(bytes), point: p };
  if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value!);
  keyCache.set(id, key);
  return key;
}

/**
 * Checks a public key as vrfVerify does; throws VRF_INVALID_PUBLIC_KEY,
 * VRF_PUBLIC_KEY_NON_CANONICAL or VRF_PUBLIC_KEY_SMALL_ORDER (INVALID_ARGUMENT for a non-Uint8Array).
 */
export function vrfValidatePublicKey(pk: Uint8Array): void {
  validatePublicKey(pk);
}

// ---- proofs -----------------------------------------------------------------------------

type ProofParts = { gamma: Uint8Array; cBytes: Uint8Array; sBytes: Uint8Array; c: bigint; s: bigint };

/**
 * The cheap half of ECVRF_decode_proof (section 5.4.4): the length and a canonical Gamma
 * encoding. The callers establish that Gamma lies on the curve and that s < q, Gamma first.
 */
function splitProof(pi: unknown): ProofParts {
  const b = requireBytes(pi, 'pi');
  if (b.length !== PROOF_LEN) {
    throw new FerryError('VRF_PROOF_WRONG_LENGTH', 'pi: expected an 80-byte proof', {
      hints: [`expected: ${PROOF_LEN} bytes (Gamma 32 || c 16 || s 32)`, `got: ${b.length} bytes`],
    });
  }
  const gamma = b.slice(0, PT_LEN);
  if (isNonCanonicalEncoding(gamma)) throw invalidGamma('not a canonical point encoding');
  const cBytes = b.slice(PT_LEN, PT_LEN + C_LEN);
  const sBytes = b.slice(PT_LEN + C_LEN);
  // c has 16 bytes, so c < 2^128 < q always: VRF_PROOF_C_OUT_OF_RANGE cannot occur in this suite.
  return { gamma, cBytes, sBytes, c: bytesToNumberLE(cBytes), s: bytesToNumberLE(sBytes) };
}

function invalidGamma(why: string): FerryError {
  return new FerryError('VRF_PROOF_INVALID_GAMMA', `proof's Gamma is ${why}`, {
    hints: ['expected: a canonical compressed edwards25519 point (RFC 8032 section 5.1.3)'],
  });
}

function sOutOfRange(): FerryError {
  return new FerryError('VRF_PROOF_S_OUT_OF_RANGE', "proof's s is not below the group order q", {
    hints: ['RFC 9381 section 5.4.4: s must be < q = 2^252 + 27742317777372353535851937790883648493'],
  });
}

/** Full ECVRF_decode_proof on the JS path: Gamma decoded (or INVALID_GAMMA), then s < q. */
function decodeProofJs(parts: ProofParts): Pt {
  const G = decodePoint(parts.gamma);
  if (typeof G === 'string') throw invalidGamma(G === 'non-canonical' ? 'not canonical' : 'not on the curve');
  if (parts.s >= Q) throw sOutOfRange();
  return G;
}

/**
 * ECVRF_proof_to_hash (section 5.2): the 64-byte output beta of a proof, WITHOUT verifying it.
 * Decodes the proof and throws VRF_PROOF_WRONG_LENGTH, VRF_PROOF_INVALID_GAMMA or
 * VRF_PROOF_S_OUT_OF_RANGE when it is malformed (INVALID_ARGUMENT for a non-Uint8Array).
 * Use vrfVerify for a beta you can trust.
 */
export function vrfProofToHash(pi: Uint8Array): Uint8Array {
  const parts = splitProof(pi);
  const na = native();
  if (na !== null && parts.s < Q) {
    const g8 = sodiumCofactorGamma(na, parts.gamma);
    if (g8 !== null) return betaFromCofactorGamma(g8);
  }
  return betaFromCofactorGamma(pureCofactorGamma(decodeProofJs(parts)));
}

/**
 * ECVRF_verify (section 5.3) with validate_key = TRUE. Returns the 64-byte beta when `pi` is a
 * valid proof for `alpha` under `pk`. Throws, in this order of checks:
 * INVALID_ARGUMENT (an argument is not a Uint8Array); VRF_INVALID_PUBLIC_KEY,
 * VRF_PUBLIC_KEY_NON_CANONICAL, VRF_PUBLIC_KEY_SMALL_ORDER (see vrfValidatePublicKey);
 * VRF_PROOF_WRONG_LENGTH, VRF_PROOF_INVALID_GAMMA, VRF_PROOF_S_OUT_OF_RANGE (malformed
 * proof); VRF_PROOF_INVALID (well-formed but wrong: another key, alpha or a forged proof).
 */
export function vrfVerify(pk: Uint8Array, alpha: Uint8Array, pi: Uint8Array): Uint8Array {
  const key = validatePublicKey(pk);
  requireBytes(alpha, 'alpha');
  const parts = splitProof(pi);
  const na = native();
  let ok: boolean | null = null;
  let g8: Uint8Array | null = null;
  if (na !== null && parts.s < Q) {
    ok = sodiumVerifyEquationUnsafe(na, key.bytes, alpha, parts.gamma, parts.cBytes, parts.sBytes);
    if (ok === true) g8 = sodiumCofactorGamma(na, parts.gamma);
  }
  if (ok === null || (ok && g8 === null)) {
    const G = decodeProofJs(parts);
    ok = pureVerifyEquationUnsafe(key.point, key.bytes, alpha, G, parts.gamma, parts.c, parts.s);
    if (ok === null) throw encodeToCurveFailed();
    if (ok) g8 = pureCofactorGamma(G);
  }
  if (!ok || g8 === null) {
    throw new FerryError('VRF_PROOF_INVALID', 'VRF proof does not verify', {
      hints: ['the proof was made for another public key or alpha, or it was altered'],
    });
  }
  return betaFromCofactorGamma(g8);
}

function encodeToCurveFailed(): FerryError {
  // Probability about 2^-256 per input: a failure here is a bug or a broken hash.
  return new FerryError('INTERNAL', 'encode_to_curve found no point after 256 tries');
}

// ---- keys and proving -------------------------------------------------------------------

/** The 32-byte public key of a 32-byte secret key (seed). Throws VRF_INVALID_SECRET_KEY. */
export function vrfPublicKey(sk: Uint8Array): Uint8Array {
  checkSecretKey(sk);
  const { x, xBytes, prefix } = expandSecretKey(sk);
  prefix.fill(0);
  const na = native();
  const y = (na !== null ? sodiumPublicKey(na, xBytes) : null) ?? purePublicKey(x);
  xBytes.fill(0);
  return y;
}

/** A fresh key pair: sk is 32 random bytes (the RFC 8032 seed), pk its public key. */
export function vrfKeygen(): { sk: Uint8Array; pk: Uint8Array } {
  const sk = new Uint8Array(randomBytes(SK_LEN));
  return { sk, pk: vrfPublicKey(sk) };
}

/**
 * Every intermediate value of one ECVRF_prove run, named as in RFC 9381 and the test vectors.
 * Contains secrets (x, k): for tests and audits only, never log it.
 */
export type VrfProofDetails = {
  /** Clamped secret scalar, 32 bytes little-endian, not reduced mod q. */
  x: Uint8Array;
  Y: Uint8Array;
  /** encode_to_curve output (cofactor cleared) and the try-and-increment counter. */
  H: Uint8Array;
  ctr: number;
  /** k_string, 64 bytes, and k = k_string mod q (32 bytes little-endian). */
  k: Uint8Array;
  kModQ: Uint8Array;
  U: Uint8Array;
  V: Uint8Array;
  Gamma: Uint8Array;
  /** c (16 bytes) and s (32 bytes), little-endian. */
  c: Uint8Array;
  s: Uint8Array;
  pi: Uint8Array;
  beta: Uint8Array;
};

/**
 * ECVRF_prove (section 5.1) returning every intermediate value. Throws VRF_INVALID_SECRET_KEY
 * for a bad sk and INVALID_ARGUMENT for a non-Uint8Array alpha.
 */
export function vrfProveDetailed(sk: Uint8Array, alpha: Uint8Array): VrfProofDetails {
  checkSecretKey(sk);
  requireBytes(alpha, 'alpha');
  const { x, xBytes, prefix } = expandSecretKey(sk);
  try {
    const na = native();
    let Y: Uint8Array | null = null;
    let r = null;
    if (na !== null) {
      Y = sodiumPublicKey(na, xBytes);
      if (Y !== null) r = sodiumProve(na, x, xBytes, prefix, Y, alpha);
    }
    if (r === null) {
      Y = purePublicKey(x);
      r = pureProve(x, prefix, Y, alpha);
    }
    if (r === null || Y === null) throw encodeToCurveFailed();
    const c = numberToBytesLE(r.c, C_LEN);
    const s = numberToBytesLE(r.s, 32);
    const pi = new Uint8Array(PROOF_LEN);
    pi.set(r.Gamma, 0);
    pi.set(c, PT_LEN);
    pi.set(s, PT_LEN + C_LEN);
    const g8 =
      (na !== null ? sodiumCofactorGamma(na, r.Gamma) : null) ?? pureCofactorGamma(Point.fromBytes(r.Gamma));
    return {
      x: Uint8Array.from(xBytes),
      Y,
      H: r.H,
      ctr: r.ctr,
      k: r.k,
      kModQ: numberToBytesLE(r.kModQ, 32),
      U: r.U,
      V: r.V,
      Gamma: r.Gamma,
      c,
      s,
      pi,
      beta: betaFromCofactorGamma(g8),
    };
  } finally {
    xBytes.fill(0);
    prefix.fill(0);
  }
}

/**
 * ECVRF_prove (section 5.1): the 80-byte proof pi = Gamma || c || s for `alpha` under the
 * 32-byte secret key `sk`. Deterministic. Throws VRF_INVALID_SECRET_KEY for a bad sk and
 * INVALID_ARGUMENT for a non-Uint8Array alpha.
 */
export function vrfProve(sk: Uint8Array, alpha: Uint8Array): Uint8Array {
  const d = vrfProveDetailed(sk, alpha);
  d.x.fill(0);
  d.k.fill(0);
  d.kModQ.fill(0);
  return d.pi;
}

/** Output length in bytes (beta). */
export const VRF_OUTPUT_LENGTH = BETA_LEN;
