/**
 * Stake-weighted sortition (Algorand-style binomial self-selection) and committee security
 * figures. See docs/protocol.md section 4, which fixes the computation operation by operation:
 * every relying party recomputes a verifier's seat count from its VRF output and must get the
 * same integer.
 *
 * - `vrfFraction(beta)`: the VRF output as a number in [0, 1).
 * - `sortitionSeats(beta, stake, totalStake, tau)`: the seats a node holds in a committee of
 *   expected size tau.
 * - `committeeCapture({tau, threshold, adversary})`: with adversarial stake fraction f, the
 *   probability that the adversary alone reaches the threshold (capture) and that the honest
 *   seats fall short of it (liveness failure), in the many-small-stakes (Poisson) limit.
 *
 * Errors: SORTITION_INVALID_PARAMETERS naming the bad argument (expected vs got).
 */
import { describe, FerryError } from '../kernel/index.ts';

function bad(what: string, expected: string, got: unknown): FerryError {
  const g = typeof got === 'number' || typeof got === 'bigint' ? String(got) : describe(got);
  return new FerryError('SORTITION_INVALID_PARAMETERS', `invalid ${what}`, {
    hints: [`expected: ${expected}`, `got: ${g}`],
  });
}

const TWO_POW_53 = 2 ** 53;

/** The largest tau sortition accepts (bounds the seat loop; real committees are far smaller). */
export const MAX_TAU = 1_000_000;

/**
 * The VRF output as a fraction: the first 8 bytes of `beta` as a big-endian unsigned integer x,
 * truncated to its top 53 bits, over 2^53 — i.e. floor(x / 2^11) / 2^53. Exactly representable
 * as a double and always in [0, 1) (a plain x / 2^64 would round up to 1 for x near 2^64).
 * Throws SORTITION_INVALID_PARAMETERS if `beta` is not a Uint8Array of at least 8 bytes.
 */
export function vrfFraction(beta: Uint8Array): number {
  if (!(beta instanceof Uint8Array) || beta.length < 8) {
    throw bad('beta', 'a VRF output (Uint8Array of at least 8 bytes; 64 for ECVRF)', beta);
  }
  // Top 32 bits and the next 21 bits: hi * 2^21 + (lo >>> 11) is floor(x / 2^11) < 2^53.
  const hi = ((beta[0] << 24) | (beta[1] << 16) | (beta[2] << 8) | beta[3]) >>> 0;
  const lo = ((beta[4] << 24) | (beta[5] << 16) | (beta[6] << 8) | beta[7]) >>> 0;
  return (hi * 2 ** 21 + (lo >>> 11)) / TWO_POW_53;
}

function stakeArg(v: unknown, what: string): number {
  if (typeof v !== 'bigint' || v < 0n || v >= BigInt(TWO_POW_53)) {
    throw bad(what, 'a bigint in [0, 2^53) (whole stake units)', v);
  }
  return Number(v);
}

/**
 * The number of committee seats of a node with `stake` units out of `totalStake`, for expected
 * committee size `tau`, given its VRF output `beta` (docs/protocol.md section 4): each of the
 * node's w stake units is a sub-user selected with probability p = tau / W, and the node holds
 * the smallest j in 0..w with r < BinomCDF(j; w, p), r = vrfFraction(beta). The binomial CDF is
 * summed in log space, in double precision, in the exact order written in the specification.
 *
 * Throws SORTITION_INVALID_PARAMETERS unless 0 <= stake <= totalStake < 2^53 (bigints),
 * totalStake > 0, and 0 < tau <= MAX_TAU. Returns 0 for zero stake and w when tau >= W.
 */
export function sortitionSeats(beta: Uint8Array, stake: bigint, totalStake: bigint, tau: number): number {
  const r = vrfFraction(beta);
  const w = stakeArg(stake, 'stake');
  const W = stakeArg(totalStake, 'totalStake');
  if (W === 0) throw bad('totalStake', 'a positive total stake', totalStake);
  if (w > W) throw bad('stake', `at most totalStake (${W})`, stake);
  if (typeof tau !== 'number' || !Number.isFinite(tau) || tau <= 0 || tau > MAX_TAU) {
    throw bad('tau', `a number in (0, ${MAX_TAU}]`, tau);
  }
  if (w === 0) return 0;
  const p = tau / W;
  if (p >= 1) return w;
  const lq = Math.log1p(-p);
  const lodds = Math.log(p) - lq;
  const mean = w * p;
  let lpmf = w * lq;
  let cdf = Math.exp(lpmf);
  let j = 0;
  for (;;) {
    if (r < cdf) return j;
    if (j === w) return w;
    lpmf = lpmf + (Math.log((w - j) / (j + 1)) + lodds);
    j = j + 1;
    const term = Math.exp(lpmf);
    // Past the mean, once a term no longer changes the sum, the remaining mass is below double
    // resolution: r lies in that sliver and the node gets j seats.
    if (j > mean && cdf + term === cdf) return j;
    cdf = cdf + term;
  }
}

// --- Poisson probabilities ---------------------------------------------------------------------

const LN_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * stirlerr(n) = ln(n!) - ((n + 1/2) ln n - n + ln sqrt(2 pi)), the error of Stirling's formula
 * (C. Loader, "Fast and Accurate Computation of Binomial Probabilities", 2000). For n <= 15 from
 * the exact n! (a double up to 15!); above, the asymptotic series.
 */
function stirlerr(n: number): number {
  if (n <= 15) {
    let f = 1;
    for (let i = 2; i <= n; i++) f *= i;
    return Math.log(f) - ((n + 0.5) * Math.log(n) - n + LN_SQRT_2PI);
  }
  const S0 = 1 / 12;
  const S1 = 1 / 360;
  const S2 = 1 / 1260;
  const S3 = 1 / 1680;
  const S4 = 1 / 1188;
  const nn = n * n;
  if (n > 500) return (S0 - S1 / nn) / n;
  if (n > 80) return (S0 - (S1 - S2 / nn) / nn) / n;
  if (n > 35) return (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n;
  return (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n;
}

/** bd0(x, m) = x ln(x/m) + m - x, computed without cancellation near x = m (Loader). */
function bd0(x: number, m: number): number {
  if (Math.abs(x - m) < 0.1 * (x + m)) {
    let v = (x - m) / (x + m);
    let s = (x - m) * v;
    let ej = 2 * x * v;
    v = v * v;
    for (let j = 1; j < 1000; j++) {
      ej *= v;
      const s1 = s + ej / (2 * j + 1);
      if (s1 === s) return s1;
      s = s1;
    }
    return s;
  }
  return x * Math.log(x / m) + m - x;
}

/** P[X = k] for X ~ Poisson(lambda), k a non-negative integer, lambda > 0 (Loader's method). */
function poissonPmf(k: number, lambda: number): number {
  if (k === 0) return Math.exp(-lambda);
  return Math.exp(-stirlerr(k) - bd0(k, lambda)) / Math.sqrt(2 * Math.PI * k);
}

/** sum_{i >= k} P[X = i]; requires k > lambda (terms then decrease geometrically). */
function sumUp(lambda: number, k: number): number {
  let term = poissonPmf(k, lambda);
  let sum = term;
  for (let i = k; term > 0; i++) {
    const ratio = lambda / (i + 1);
    term *= ratio;
    sum += term;
    // Every later ratio is smaller, so the rest is at most term * ratio / (1 - ratio).
    if ((term * ratio) / (1 - ratio) <= sum * 1e-17) break;
  }
  return sum;
}

/** sum_{i = 0..k} P[X = i]; requires k < lambda (terms decrease going down). */
function sumDown(lambda: number, k: number): number {
  let term = poissonPmf(k, lambda);
  let sum = term;
  for (let i = k; i > 0 && term > 0; i--) {
    const ratio = i / lambda;
    term *= ratio;
    sum += term;
    const next = (i - 1) / lambda;
    if ((term * next) / (1 - next) <= sum * 1e-17) break;
  }
  return sum;
}

function poissonArgs(lambda: number, t: number): void {
  if (typeof lambda !== 'number' || !Number.isFinite(lambda) || lambda < 0) {
    throw bad('lambda', 'a finite number >= 0', lambda);
  }
  if (!Number.isSafeInteger(t)) throw bad('t', 'an integer', t);
}

/**
 * P[X >= t] for X ~ Poisson(lambda), summed directly on the small side (never 1 - CDF of a
 * tiny tail): accurate to about 1e-13 relative down to the smallest normal doubles.
 */
export function poissonAtLeast(lambda: number, t: number): number {
  poissonArgs(lambda, t);
  if (t <= 0) return 1;
  if (lambda === 0) return 0;
  if (t > lambda) return sumUp(lambda, t);
  return Math.max(0, 1 - sumDown(lambda, t - 1));
}

/** P[X < t] for X ~ Poisson(lambda), summed directly on the small side (see poissonAtLeast). */
export function poissonBelow(lambda: number, t: number): number {
  poissonArgs(lambda, t);
  if (t <= 0) return 0;
  if (lambda === 0) return 1;
  if (t - 1 < lambda) return sumDown(lambda, t - 1);
  return Math.max(0, 1 - sumUp(lambda, t));
}

// --- thresholds and committee security -------------------------------------------------------------

/** The largest tau committeeCapture accepts. */
export const MAX_COMMITTEE_TAU = 10_000_000;

/**
 * The seat threshold for a fraction of the expected committee: t = ceil(fraction * tau),
 * computed exactly on the rational fraction numerator/denominator (no rounding: 2/3 of 30 is
 * 20, and 0.6 of 10 is 6). Throws SORTITION_INVALID_PARAMETERS unless 0 < fraction <= 1.
 */
export function thresholdSeats(fraction: { numerator: bigint; denominator: bigint }, tau: number): number {
  const { numerator: a, denominator: b } = fraction;
  if (typeof a !== 'bigint' || typeof b !== 'bigint' || b <= 0n || a <= 0n || a > b) {
    throw bad(
      'threshold',
      'a fraction in (0, 1]',
      typeof a === 'bigint' && typeof b === 'bigint' ? `${a}/${b}` : fraction,
    );
  }
  if (!Number.isSafeInteger(tau) || tau < 1) throw bad('tau', 'an integer >= 1', tau);
  const x = a * BigInt(tau);
  return Number((x + b - 1n) / b);
}

/** The exact rational value of a finite double (every double is m * 2^e). */
function doubleToFraction(x: number): { numerator: bigint; denominator: bigint } {
  let den = 1n;
  let v = x;
  while (!Number.isInteger(v)) {
    v *= 2;
    den *= 2n;
  }
  return { numerator: BigInt(v), denominator: den };
}

/**
 * Parses a threshold as written by a person: a plain integer ("7") is a seat count; a decimal
 * ("0.6667", "1.0") or a ratio ("2/3") is a fraction of tau, turned into seats with
 * thresholdSeats (exact rational arithmetic). Returns the seat count, at least 1. Throws
 * SORTITION_INVALID_PARAMETERS for anything else.
 */
export function parseThreshold(text: string, tau: number): number {
  const s = typeof text === 'string' ? text.trim() : '';
  let m = /^([0-9]+)$/.exec(s);
  if (m) {
    const n = Number(m[1]);
    if (!Number.isSafeInteger(n) || n < 1)
      throw bad('threshold', 'a seat count >= 1 or a fraction in (0, 1]', text);
    return n;
  }
  m = /^([0-9]+)\s*\/\s*([0-9]+)$/.exec(s);
  if (m) return thresholdSeats({ numerator: BigInt(m[1]), denominator: BigInt(m[2]) }, tau);
  m = /^([0-9]*)\.([0-9]+)$/.exec(s);
  if (m) {
    return thresholdSeats(
      { numerator: BigInt((m[1] || '0') + m[2]), denominator: 10n ** BigInt(m[2].length) },
      tau,
    );
  }
  throw bad('threshold', 'a seat count like 7, or a fraction like 2/3 or 0.6667', text);
}

export type CommitteeParams = {
  /** Expected committee size (seats). */
  tau: number;
  /**
   * The number of seats that decides. An integer >= 1 is a seat count; a non-integer in (0, 1)
   * is a fraction of tau: seats = ceil(fraction * tau), computed exactly on the shortest decimal
   * that round-trips to the double (so 0.1 means 1/10).
   */
  threshold: number;
  /** The adversary's fraction of the stake, in [0, 1). */
  adversary: number;
};

export type CommitteeSecurity = {
  /** P[adversarial seats >= t]: the adversary alone reaches the threshold. */
  capture: number;
  /** P[honest seats < t]: the honest seats cannot reach the threshold. */
  livenessFailure: number;
};

/** The threshold of CommitteeParams as a seat count (see CommitteeParams.threshold). */
export function committeeThresholdSeats(p: Pick<CommitteeParams, 'tau' | 'threshold'>): number {
  const { tau, threshold } = p;
  if (typeof tau !== 'number' || !Number.isFinite(tau) || tau <= 0 || tau > MAX_COMMITTEE_TAU) {
    throw bad('tau', `a number in (0, ${MAX_COMMITTEE_TAU}]`, tau);
  }
  if (typeof threshold !== 'number' || !Number.isFinite(threshold) || threshold <= 0) {
    throw bad('threshold', 'a seat count >= 1 or a fraction in (0, 1)', threshold);
  }
  if (Number.isInteger(threshold)) {
    if (!Number.isSafeInteger(threshold)) throw bad('threshold', 'a safe integer seat count', threshold);
    return threshold;
  }
  if (threshold >= 1) throw bad('threshold', 'a whole seat count, or a fraction in (0, 1)', threshold);
  if (!Number.isInteger(tau)) throw bad('tau', 'an integer when the threshold is a fraction', tau);
  // The fraction a person wrote: the shortest decimal that round-trips to this double (0.1 is
  // 1/10, not 0.1000000000000000055...), or the double's exact value in exponent notation.
  const text = String(threshold);
  return /e/i.test(text) ? thresholdSeats(doubleToFraction(threshold), tau) : parseThreshold(text, tau);
}

/**
 * Committee security in the many-small-stakes limit, where seat counts are Poisson: with
 * adversarial stake fraction f, capture = P[Poisson(f tau) >= t] and livenessFailure =
 * P[Poisson((1 - f) tau) < t]. Tails are summed directly (never 1 - CDF of a small tail), so
 * values down to ~1e-300 keep about 13 significant digits. Throws SORTITION_INVALID_PARAMETERS
 * for tau outside (0, 1e7], adversary outside [0, 1), or a bad threshold.
 */
export function committeeCapture(p: CommitteeParams): CommitteeSecurity {
  if (p === null || typeof p !== 'object')
    throw bad('parameters', 'an object {tau, threshold, adversary}', p);
  const t = committeeThresholdSeats(p);
  const f = p.adversary;
  if (typeof f !== 'number' || !Number.isFinite(f) || f < 0 || f >= 1) {
    throw bad('adversary', 'a stake fraction in [0, 1)', f);
  }
  return {
    capture: poissonAtLeast(f * p.tau, t),
    livenessFailure: poissonBelow((1 - f) * p.tau, t),
  };
}

// --- exact binomial model for a known total stake --------------------------------------------------

/** P[X = k] for X ~ Binomial(n, p), q = 1 - p, 0 <= k <= n, 0 < p < 1 (Loader's method). */
function binomialPmf(k: number, n: number, p: number, q: number): number {
  if (k === 0) return Math.exp(n * Math.log1p(-p));
  if (k === n) return Math.exp(n * Math.log(p));
  const lc = stirlerr(n) - stirlerr(k) - stirlerr(n - k) - bd0(k, n * p) - bd0(n - k, n * q);
  const lf = Math.log(2 * Math.PI) + Math.log(k) + Math.log1p(-k / n);
  return Math.exp(lc - 0.5 * lf);
}

/** sum_{i = k..n} P[X = i]; requires k > n p (terms then decrease). */
function binomialSumUp(n: number, p: number, q: number, k: number): number {
  let term = binomialPmf(k, n, p, q);
  let sum = term;
  const odds = p / q;
  for (let i = k; i < n && term > 0; i++) {
    const ratio = ((n - i) / (i + 1)) * odds;
    term *= ratio;
    sum += term;
    if ((term * ratio) / (1 - ratio) <= sum * 1e-17) break;
  }
  return sum;
}

/** sum_{i = 0..k} P[X = i]; requires k < n p (terms decrease going down). */
function binomialSumDown(n: number, p: number, q: number, k: number): number {
  let term = binomialPmf(k, n, p, q);
  let sum = term;
  const inv = q / p;
  for (let i = k; i > 0 && term > 0; i--) {
    const ratio = (i / (n - i + 1)) * inv;
    term *= ratio;
    sum += term;
    const next = ((i - 1) / (n - i + 2)) * inv;
    if ((term * next) / (1 - next) <= sum * 1e-17) break;
  }
  return sum;
}

/**
 * P[X >= t] for X ~ Binomial(n, p), summed on the small side like poissonAtLeast. `n` is a
 * non-negative safe integer, `p` in [0, 1].
 */
export function binomialAtLeast(n: number, p: number, t: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw bad('n', 'an integer >= 0', n);
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw bad('p', 'a probability in [0, 1]', p);
  if (!Number.isSafeInteger(t)) throw bad('t', 'an integer', t);
  if (t <= 0) return 1;
  if (t > n || p === 0) return 0;
  if (p === 1) return 1;
  const q = 1 - p;
  if (t > n * p) return binomialSumUp(n, p, q, t);
  return Math.max(0, 1 - binomialSumDown(n, p, q, t - 1));
}

/** P[X < t] for X ~ Binomial(n, p), summed on the small side. */
export function binomialBelow(n: number, p: number, t: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw bad('n', 'an integer >= 0', n);
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw bad('p', 'a probability in [0, 1]', p);
  if (!Number.isSafeInteger(t)) throw bad('t', 'an integer', t);
  if (t <= 0) return 0;
  if (t > n || p === 0) return 1;
  if (p === 1) return 0;
  const q = 1 - p;
  if (t - 1 < n * p) return binomialSumDown(n, p, q, t - 1);
  return Math.max(0, 1 - binomialSumUp(n, p, q, t));
}

/**
 * Committee security for a known total stake, exact under the sortition rule: every stake unit
 * is a sub-user selected with p = tau / W, so the adversary's seats are Binomial(A, p) and the
 * honest seats Binomial(W - A, p), however the stake is split among nodes. capture =
 * P[Binomial(A, p) >= t], livenessFailure = P[Binomial(W - A, p) < t]. Throws
 * SORTITION_INVALID_PARAMETERS unless 0 <= adversaryStake < totalStake < 2^53 (bigints) and
 * tau, threshold are valid as for committeeCapture with tau <= totalStake.
 */
export function committeeCaptureForStake(p: {
  tau: number;
  threshold: number;
  adversaryStake: bigint;
  totalStake: bigint;
}): CommitteeSecurity {
  if (p === null || typeof p !== 'object') {
    throw bad('parameters', 'an object {tau, threshold, adversaryStake, totalStake}', p);
  }
  const t = committeeThresholdSeats(p);
  const W = stakeArg(p.totalStake, 'totalStake');
  const A = stakeArg(p.adversaryStake, 'adversaryStake');
  if (A >= W) throw bad('adversaryStake', `less than totalStake (${W})`, p.adversaryStake);
  if (p.tau > W) throw bad('tau', `at most totalStake (${W})`, p.tau);
  const prob = p.tau / W;
  return { capture: binomialAtLeast(A, prob, t), livenessFailure: binomialBelow(W - A, prob, t) };
}
