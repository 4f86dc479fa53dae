/**
 * The claim-eligibility rule (docs/protocol.md §11.3, "Claim eligibility"): which executors may
 * claim an attempt, so that about `target` (k, default 3) of them claim however many executors
 * the network has, stake-weighted, relaxed within the claim window when nobody claimed, and
 * checkable by the contract in integer arithmetic. Pure: no I/O, no clock (the caller passes
 * the elapsed time).
 *
 * With `x` the first 8 bytes of the claim VRF output as a big-endian u64, `w` the executor's
 * stake and `W` the task's total executor stake (TaskCreated `totalExecutorStake`, both in wei,
 * or any one unit), the threshold in round r is
 *
 *     T(r) = floor((k * w) << (64 + 2 r) / W)     for r < CLAIM_ROUNDS - 1   (k, 4k, ..., 256k)
 *     T(r) = 2^64                                  for r = CLAIM_ROUNDS - 1   (every eligible node)
 *
 * and the executor may claim in round r iff `w > 0` and `x < T(r)`. Round r is
 * `min(CLAIM_ROUNDS - 1, floor(elapsed * CLAIM_ROUNDS / claimWindow))`, `elapsed` = seconds
 * since the attempt was seeded. Claims rank by `x / w` (cross-multiplied, `compareClaims`),
 * not by the raw output, so splitting stake over many nodes does not help win either.
 *
 * Errors: SORTITION_INVALID_PARAMETERS naming the bad argument (expected vs got).
 */
import { describe, FerryError } from '../kernel/index.ts';

/** Expected claimants per attempt when every executor is eligible (task parameter k). */
export const CLAIM_TARGET_DEFAULT = 3;
/** The largest target (a uint8 on chain). */
export const CLAIM_TARGET_MAX = 255;
/** Rounds of a claim window; the last one admits every eligible executor. */
export const CLAIM_ROUNDS = 6;
/** log2 of the per-round growth of the expected claimants (x4 per round). */
export const CLAIM_ROUND_GROWTH_LOG2 = 2;
/** 2^64: the fixed-point one of the u64 comparison. */
export const CLAIM_ONE = 1n << 64n;
/** Stakes must stay below 2^128 so that every product fits a uint256 in the contract. */
const MAX_STAKE = 1n << 128n;

function bad(what: string, expected: string, got: unknown): FerryError {
  const g = typeof got === 'number' || typeof got === 'bigint' ? String(got) : describe(got);
  return new FerryError('SORTITION_INVALID_PARAMETERS', `invalid ${what}`, {
    hints: [`expected: ${expected}`, `got: ${g}`],
  });
}

export type ClaimStake = {
  /** The executor's stake (wei, frozen since before the task was created). */
  stake: bigint;
  /** The task's total executor stake (TaskCreated `totalExecutorStake`), same unit. */
  totalStake: bigint;
  /** Expected claimants in round 0 when every executor is eligible: 1..255 (default 3). */
  target: number;
};

export type ClaimParams = ClaimStake & {
  /** The relaxation round, 0..CLAIM_ROUNDS - 1 (`claimRound`). */
  round: number;
};

export type ClaimEligibility = {
  mayClaim: boolean;
  /** T(round): the claim is allowed iff value < threshold (>= 2^64 means always). */
  threshold: bigint;
  /** x: the first 8 bytes of beta, big-endian. */
  value: bigint;
  round: number;
};

function checkStake(p: ClaimStake): void {
  if (p === null || typeof p !== 'object')
    throw bad('parameters', 'an object {stake, totalStake, target}', p);
  const { stake, totalStake, target } = p;
  if (typeof totalStake !== 'bigint' || totalStake <= 0n || totalStake >= MAX_STAKE) {
    throw bad('totalStake', 'a bigint in (0, 2^128)', totalStake);
  }
  if (typeof stake !== 'bigint' || stake < 0n || stake > totalStake) {
    throw bad('stake', `a bigint in [0, totalStake (${totalStake})]`, stake);
  }
  if (!Number.isInteger(target) || target < 1 || target > CLAIM_TARGET_MAX) {
    throw bad('target', `an integer in 1..${CLAIM_TARGET_MAX}`, target);
  }
}

function checkRound(round: number): void {
  if (!Number.isInteger(round) || round < 0 || round >= CLAIM_ROUNDS) {
    throw bad('round', `an integer in 0..${CLAIM_ROUNDS - 1}`, round);
  }
}

/**
 * x: the first 8 bytes of a claim VRF output as a big-endian unsigned integer. Throws
 * SORTITION_INVALID_PARAMETERS unless `beta` is a 64-byte Uint8Array (an ECVRF output).
 */
export function claimValue(beta: Uint8Array): bigint {
  if (!(beta instanceof Uint8Array) || beta.length !== 64) {
    throw bad('beta', 'a VRF output (Uint8Array of 64 bytes)', beta);
  }
  let x = 0n;
  for (let i = 0; i < 8; i++) x = (x << 8n) | BigInt(beta[i]);
  return x;
}

/**
 * The relaxation round at `elapsed` seconds after the attempt was seeded, for a claim window
 * of `claimWindow` seconds: min(CLAIM_ROUNDS - 1, floor(elapsed * CLAIM_ROUNDS / claimWindow)).
 * On chain, elapsed = block.timestamp - (deadline - claimWindow). Throws
 * SORTITION_INVALID_PARAMETERS for a negative or non-integer elapsed or a window < 1.
 */
export function claimRound(elapsed: number, claimWindow: number): number {
  if (!Number.isSafeInteger(claimWindow) || claimWindow < 1) {
    throw bad('claimWindow', 'an integer number of seconds >= 1', claimWindow);
  }
  if (!Number.isSafeInteger(elapsed) || elapsed < 0) {
    throw bad('elapsed', 'an integer number of seconds >= 0', elapsed);
  }
  return Math.min(CLAIM_ROUNDS - 1, Math.floor((elapsed * CLAIM_ROUNDS) / claimWindow));
}

/**
 * T(round) for an executor (see the module comment): floor((k * w) << (64 + 2 round) / W)
 * before the last round, 2^64 in it; 0 for zero stake. A value x is eligible iff x < T, so
 * the probability of claiming is min(1, T / 2^64) ~ k 4^round w / W.
 */
export function claimThreshold(p: ClaimParams): bigint {
  checkStake(p);
  checkRound(p.round);
  if (p.stake === 0n) return 0n;
  if (p.round === CLAIM_ROUNDS - 1) return CLAIM_ONE;
  const shift = 64n + BigInt(CLAIM_ROUND_GROWTH_LOG2 * p.round);
  return ((BigInt(p.target) * p.stake) << shift) / p.totalStake;
}

/** Whether an executor with VRF output `beta` may claim in `p.round`, with the threshold used. */
export function claimEligibility(beta: Uint8Array, p: ClaimParams): ClaimEligibility {
  const value = claimValue(beta);
  const threshold = claimThreshold(p);
  return { mayClaim: value < threshold, threshold, value, round: p.round };
}

/**
 * The first round in which an executor may claim (0..CLAIM_ROUNDS - 1), or -1 for zero stake:
 * the node rule is to claim at the start of that round unless a claim of the attempt is
 * already on chain (an earlier-round claim always ranks before it, see compareClaims).
 */
export function firstClaimRound(beta: Uint8Array, p: ClaimStake): number {
  const value = claimValue(beta);
  checkStake(p);
  if (p.stake === 0n) return -1;
  for (let round = 0; round < CLAIM_ROUNDS; round++) {
    if (value < claimThreshold({ ...p, round })) return round;
  }
  return CLAIM_ROUNDS - 1; // unreachable: the last threshold is 2^64 > any u64
}

/**
 * Orders two claims of one attempt: negative when `a` ranks before `b` (it would become the
 * best claim), positive when after, 0 on a tie (the earlier claim stays best). The rank is
 * x / w, compared as x_a * w_b vs x_b * w_a (integers below 2^192). Ranking by x / w rather than
 * by x keeps winning stake-proportional: a claim's x is uniform below its threshold, which is
 * proportional to w, so x / w is on the same scale for every claimant; by raw x, stake split
 * over many small nodes (small thresholds, small x) would win more often than its share.
 * Throws SORTITION_INVALID_PARAMETERS for a bad beta or a stake that is not positive.
 */
export function compareClaims(
  a: { beta: Uint8Array; stake: bigint },
  b: { beta: Uint8Array; stake: bigint },
): number {
  for (const [name, c] of [
    ['a', a],
    ['b', b],
  ] as const) {
    if (c === null || typeof c !== 'object') throw bad(name, 'an object {beta, stake}', c);
    if (typeof c.stake !== 'bigint' || c.stake <= 0n || c.stake >= MAX_STAKE) {
      throw bad(`${name}.stake`, 'a bigint in (0, 2^128)', c.stake);
    }
  }
  const l = claimValue(a.beta) * b.stake;
  const r = claimValue(b.beta) * a.stake;
  return l < r ? -1 : l > r ? 1 : 0;
}

/**
 * The expected number of claimants in `round` among executors with the given stakes (all
 * eligible for the task): sum of min(1, T_i / 2^64). With every executor eligible and stakes
 * summing to totalStake this is at most k * 4^round (less when thresholds are floored, or
 * capped at 2^64 for a node holding more than 1 / (k 4^round) of the stake).
 */
export function expectedClaimants(stakes: readonly bigint[], p: Omit<ClaimParams, 'stake'>): number {
  let sum = 0;
  for (const stake of stakes) {
    const t = claimThreshold({ ...p, stake });
    sum += t >= CLAIM_ONE ? 1 : Number(t) / 2 ** 64;
  }
  return sum;
}
