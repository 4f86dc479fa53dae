/**
 * Provably too many seats (docs/protocol.md section 4.1): an integer-only rule, evaluable by
 * the EVM bit for bit (`contracts/SeatProof.sol` performs exactly these operations), that a
 * vote claimed more seats than binomial sortition (section 4) gives it.
 *
 * Sortition is normative in binary64 with libm log/exp, which the EVM cannot recompute. This
 * rule instead computes L, a lower bound of the exact BinomCDF(seats - 1; w, tau / W), in
 * truncating fixed-point and software-float arithmetic, and flags the claim only when the
 * VRF fraction lies below L by more than a band that bounds the error of the binary64
 * computation. So an honest voter is never flagged, and a liar escapes only when its VRF
 * output lies within the band just below the CDF value (a tiny probability, section 4.1).
 *
 * - `seatsProvablyTooMany({ x, w, W, tau, seats })`: the rule (a boolean).
 * - `seatProofLimit({ w, W, tau, seats })`: the smallest x that is NOT flagged (a claim is
 *   flagged iff x < the limit): what a challenger computes off chain before challenging.
 *
 * Errors: SORTITION_INVALID_PARAMETERS naming the bad argument (expected vs got).
 */
import { FerryError } from '../kernel/index.ts';

/** The largest tau the rule accepts (the contract's uint16). */
export const SEAT_PROOF_MAX_TAU = 65535n;
/** The largest seat count the rule accepts (a vote's uint16). */
export const SEAT_PROOF_MAX_SEATS = 65535n;

const TWO_64 = 1n << 64n;
const TWO_128 = 1n << 128n;
/** Mantissa width of the loop's software float: m in [2^111, 2^112). */
const MANT = 112n;
/** Fixed point of the sum: S = sum of floor(pmf_i * 2^192). */
const SUM_BITS = 192n;

export type SeatProofParams = {
  /** The first 8 bytes of the vote's VRF output, big-endian: 0 <= x < 2^64. */
  x: bigint;
  /** The voter's stake in whole STAKE_UNITs: 1 <= w <= W. */
  w: bigint;
  /** The task's total verifier stake in whole STAKE_UNITs: 1 <= W < 2^128. */
  W: bigint;
  /** Expected committee size: 1 <= tau <= 65535. */
  tau: bigint;
  /** The seats the vote claims: 1 <= seats <= min(w, 65535). */
  seats: bigint;
};

function bad(what: string, expected: string, got: unknown): FerryError {
  const g = typeof got === 'bigint' || typeof got === 'number' ? String(got) : typeof got;
  return new FerryError('SORTITION_INVALID_PARAMETERS', `invalid ${what}`, {
    hints: [`expected: ${expected}`, `got: ${g}`],
  });
}

function check(p: Omit<SeatProofParams, 'x'>): void {
  if (p === null || typeof p !== 'object') throw bad('parameters', 'an object {x, w, W, tau, seats}', p);
  const { w, W, tau, seats } = p;
  if (typeof W !== 'bigint' || W < 1n || W >= TWO_128) throw bad('W', 'a bigint in [1, 2^128)', W);
  if (typeof w !== 'bigint' || w < 1n || w > W) throw bad('w', `a bigint in [1, W = ${W}]`, w);
  if (typeof tau !== 'bigint' || tau < 1n || tau > SEAT_PROOF_MAX_TAU) {
    throw bad('tau', 'a bigint in [1, 65535]', tau);
  }
  const maxSeats = w < SEAT_PROOF_MAX_SEATS ? w : SEAT_PROOF_MAX_SEATS;
  if (typeof seats !== 'bigint' || seats < 1n || seats > maxSeats) {
    throw bad('seats', `a bigint in [1, min(w, 65535) = ${maxSeats}]`, seats);
  }
}

function bitlen(v: bigint): bigint {
  return v === 0n ? 0n : BigInt(v.toString(2).length);
}

// --- the 256-bit float for pmf(0) = q^w: m in [2^255, 2^256), value m * 2^e ---------------------

/** a * b, truncated to 256 bits: the product of two normalised mantissas is in [2^510, 2^512). */
function mul256(am: bigint, ae: bigint, bm: bigint, be: bigint): [bigint, bigint] {
  const p = am * bm;
  return p >> 511n !== 0n ? [p >> 256n, ae + be + 256n] : [p >> 255n, ae + be + 255n];
}

/** floor-rounded q^w, q = (W - tau) / W, as a 112-bit float [m, e] (section 4.1 steps 2-3). */
function pmf0(w: bigint, W: bigint, tau: bigint): [bigint, bigint] {
  // q = floor((W - tau) * 2^256 / W), normalised by a left shift.
  const f = ((W - tau) << 256n) / W;
  const z = 256n - bitlen(f);
  const qm = f << z;
  const qe = -256n - z;
  let m = qm;
  let e = qe;
  for (let b = bitlen(w) - 2n; b >= 0n; b--) {
    [m, e] = mul256(m, e, m, e);
    if ((w >> b) & 1n) [m, e] = mul256(m, e, qm, qe);
  }
  return [m >> 144n, e + 144n];
}

/** floor(m * 2^e * 2^192), for a 112-bit float of value at most 1. */
function fixed(m: bigint, e: bigint): bigint {
  const s = e + SUM_BITS;
  return s >= 0n ? m << s : m >> -s;
}

/** The smallest x (0 <= x <= 2^64) that is not flagged; inputs already checked. */
function limit(w: bigint, W: bigint, tau: bigint, seats: bigint): bigint {
  if (tau >= W) return 0n; // p >= 1: sortition gives w seats; never flagged
  const k = seats - 1n;
  const M = (w * tau + (W - tau) - 1n) / (W - tau); // ceil(w tau / (W - tau))
  // band = 2^-40 + (k + 1)(M + 64) 2^-49, in units of 2^-192.
  const band = (1n << 152n) + (((k + 1n) * (M + 64n)) << 143n);
  let [m, e] = pmf0(w, W, tau);
  let sum = fixed(m, e);
  for (let i = 0n; i < k; i++) {
    // pmf(i + 1) = pmf(i) * ((w - i) tau) / ((i + 1)(W - tau)), each step truncating.
    let p = m * ((w - i) * tau);
    let s = bitlen(p) - MANT;
    m = p >> s;
    e = e + s;
    p = (m << 144n) / ((i + 1n) * (W - tau));
    s = bitlen(p) - MANT;
    m = p >> s;
    e = e - 144n + s;
    sum += fixed(m, e);
  }
  // Flagged iff x * 2^128 + band < sum, i.e. x < ceil((sum - band) / 2^128).
  if (sum <= band) return 0n;
  const t = sum - band;
  return (t + TWO_128 - 1n) >> 128n;
}

/**
 * The rule of docs/protocol.md section 4.1: true iff the vote provably claims more seats than
 * sortition gives it, x / 2^64 < L(seats - 1) - band. Never true for an honest voter (its
 * seats from sortitionSeats), never true when tau >= W (sortition then gives w seats).
 * Throws SORTITION_INVALID_PARAMETERS unless 0 <= x < 2^64, 1 <= w <= W < 2^128,
 * 1 <= tau <= 65535 and 1 <= seats <= min(w, 65535), all bigints.
 */
export function seatsProvablyTooMany(p: SeatProofParams): boolean {
  check(p);
  if (typeof p.x !== 'bigint' || p.x < 0n || p.x >= TWO_64) throw bad('x', 'a bigint in [0, 2^64)', p.x);
  return p.x < limit(p.w, p.W, p.tau, p.seats);
}

/**
 * The smallest x (in 0..2^64) for which the claim of `seats` is NOT provably too many: the claim
 * is flagged iff x < the result (0: never flagged). Same checks and errors as
 * seatsProvablyTooMany, without x.
 */
export function seatProofLimit(p: Omit<SeatProofParams, 'x'>): bigint {
  check(p);
  return limit(p.w, p.W, p.tau, p.seats);
}
