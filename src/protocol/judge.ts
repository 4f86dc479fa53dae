/**
 * The one rule for a recorded claim and a recorded vote (docs/protocol.md §9.5, §11.3), as pure
 * judgements with reasons. They never read the chain and never throw: the caller reads the
 * registry entries as they were before the task was created (`nodeAtCreation`) and decides
 * what a judgement means — a relying party refuses (`checkClaim`, `checkVotes`), the auditor
 * reports a failed check, the dashboard shows the reason.
 *
 * An input the caller could not learn is `undefined` (a registry entry) or `null` (an alpha,
 * when the attempt's seed is unknown); what depends on it is then `null` ("unchecked") and the
 * event is not valid. A registry entry that is `null` means the node was not registered then.
 */
import { type NodeInfo, sameOperator, type TaskInfo } from '../chain/index.ts';
import { hexBytes, seatsFor, vrfProofMatches } from './stake.ts';
import { compareClaims } from './claim.ts';
import { eligibleAtCreation } from './snapshot.ts';

/** Why a recorded vote counts for nothing (the dashboard's `invalidReason`). */
export type VoteReason = 'not-eligible' | 'executor-operator' | 'vrf-proof' | 'seats' | 'unchecked';

export type VoteJudgement = {
  /** True only when eligible, the VRF proof verifies and the seats are within sortition's. */
  valid: boolean;
  /** null when valid. */
  reason: VoteReason | null;
  /** An active verifier then, not the executor, not of its operator; null when unchecked. */
  eligible: boolean | null;
  /** null when not checked (ineligible voter, or its key or the alpha unknown). */
  vrfProofValid: boolean | null;
  /** Seats sortition gives the voter's stake then; null when its proof was not verified. */
  maxSeats: number | null;
  /** At least one seat and at most `maxSeats`; null when `maxSeats` is. */
  seatsValid: boolean | null;
};

/**
 * A recorded vote (§9.5, §11.3): its voter was an active verifier at the task's creation
 * (`node`, from nodeAtCreation), is not the attempt's `executor` and does not share its operator
 * (`executorNode`, or the executor's own address when it was not registered then); its VRF proof
 * verifies under the key registered then over the verifier `alpha` and gives its output; it
 * claims at least one seat and no more than sortition gives its stake then.
 */
export function judgeVoteEvent(p: {
  /** The voter's entry at creation; null: not registered then; undefined: unknown. */
  node: NodeInfo | null | undefined;
  voter: string;
  /** The attempt's executor; null: unknown. */
  executor: string | null;
  /** The executor's entry at creation; null: not registered then; undefined: unknown. */
  executorNode: Pick<NodeInfo, 'operator'> | null | undefined;
  /** verifierAlpha of the attempt; null when its seed is unknown. */
  alpha: Uint8Array | null;
  task: Pick<TaskInfo, 'totalVerifierStake' | 'tau'>;
  vote: { seats: number; vrfOutput: Uint8Array; vrfProof: Uint8Array };
}): VoteJudgement {
  const { node, vote } = p;
  let eligible: boolean | null = null;
  let reason: VoteReason | null = null;
  if (node === null || (node !== undefined && !eligibleAtCreation(node, 'verifier'))) {
    eligible = false;
    reason = 'not-eligible';
  } else if (node !== undefined && p.executor !== null && p.executorNode !== undefined) {
    const executorOperator = { operator: (p.executorNode?.operator ?? p.executor) as NodeInfo['operator'] };
    if (p.voter.toLowerCase() === p.executor.toLowerCase() || sameOperator(node, executorOperator)) {
      eligible = false;
      reason = 'executor-operator';
    } else eligible = true;
  }
  let vrfProofValid: boolean | null = null;
  let maxSeats: number | null = null;
  if (node && p.alpha && reason === null) {
    vrfProofValid = vrfProofMatches(hexBytes(node.vrfPublicKey), p.alpha, vote.vrfProof, vote.vrfOutput);
    // Sortition is only meaningful for an output the proof vouches for.
    maxSeats = vrfProofValid ? seatsFor(vote.vrfOutput, node.stake, p.task) : null;
    if (!vrfProofValid) reason = 'vrf-proof';
  }
  const seatsValid = maxSeats === null ? null : vote.seats >= 1 && vote.seats <= maxSeats;
  if (reason === null && seatsValid === false) reason = 'seats';
  const valid = eligible === true && vrfProofValid === true && seatsValid === true;
  if (!valid && reason === null) reason = 'unchecked';
  return { valid, reason, eligible, vrfProofValid, maxSeats, seatsValid };
}

/** Why a recorded claim counts for nothing. */
export type ClaimReason = 'not-eligible' | 'vrf-proof' | 'late' | 'unchecked';

export type ClaimJudgement = {
  valid: boolean;
  /** null when valid. */
  reason: ClaimReason | null;
  /** An active executor with stake at the task's creation; null when unknown. */
  eligible: boolean | null;
  /** False also when the claimant had no registered key then; null when unchecked. */
  vrfProofValid: boolean | null;
};

/**
 * A recorded claim (§11.3): its claimant was an active executor with stake at the task's
 * creation (`node`, from nodeAtCreation), its VRF proof verifies under the key registered then
 * over the claim `alpha` and gives its output, and — when the caller knows the claim's block
 * time and the attempt's claim deadline — it was made by the deadline (the contract refuses a
 * later claim, so a recorded one never is). Ranking among claims: `judgeWinningClaim`.
 */
export function judgeClaimEvent(p: {
  /** The claimant's entry at creation; null: not registered then; undefined: unknown. */
  node: NodeInfo | null | undefined;
  /** claimAlpha of the attempt; null when its seed is unknown. */
  alpha: Uint8Array | null;
  claim: { vrfOutput: Uint8Array; vrfProof: Uint8Array };
  /** The claim's block time and the attempt's claim deadline, unix seconds, when known. */
  window?: { claimedAt: number; claimDeadline: number } | null;
}): ClaimJudgement {
  const { node, claim } = p;
  const eligible = node === undefined ? null : eligibleAtCreation(node, 'executor') && node.stake > 0n;
  const vrfProofValid =
    node === null
      ? false
      : node === undefined || p.alpha === null
        ? null
        : vrfProofMatches(hexBytes(node.vrfPublicKey), p.alpha, claim.vrfProof, claim.vrfOutput);
  let reason: ClaimReason | null = null;
  if (eligible === false) reason = 'not-eligible';
  else if (vrfProofValid === false) reason = 'vrf-proof';
  else if (p.window && p.window.claimedAt > p.window.claimDeadline) reason = 'late';
  else if (eligible === null || vrfProofValid === null) reason = 'unchecked';
  return { valid: reason === null, reason, eligible, vrfProofValid };
}

/** Why the attempt's winning claim does not stand. */
export type WinnerReason = 'no-executor' | 'not-found' | ClaimReason | 'not-lowest';

/** A recorded claim with its claimant's entry at creation and its judgement. */
export type JudgedClaim = {
  executor: string;
  vrfOutput: Uint8Array;
  node: NodeInfo | null | undefined;
  judgement: ClaimJudgement;
  /** claimRecord of the claim (§11.5): what the task stores as `bestOutput` for its best claim. */
  record: string | null;
};

/**
 * The attempt's winning claim: the claim by `task.executor` whose claimRecord is the task's
 * `bestOutput`, valid (judgeClaimEvent), and ranking lowest by output / stake (compareClaims)
 * among the attempt's valid claims — as the contract ranks them, so a worse claim never stands
 * as the best. `valid` / `invalid` count the attempt's claims by judgement.
 */
export function judgeWinningClaim(
  task: { executor: string | null; bestOutput: string },
  claims: readonly JudgedClaim[],
): { reason: WinnerReason | null; winner: JudgedClaim | null; valid: number; invalid: number } {
  const valid = claims.filter((c) => c.judgement.valid);
  const counts = { valid: valid.length, invalid: claims.length - valid.length };
  const executor = task.executor;
  if (!executor) return { reason: 'no-executor', winner: null, ...counts };
  const winner =
    claims.find(
      (c) =>
        c.executor.toLowerCase() === executor.toLowerCase() &&
        c.record !== null &&
        c.record.toLowerCase() === task.bestOutput.toLowerCase(),
    ) ?? null;
  if (!winner) return { reason: 'not-found', winner: null, ...counts };
  if (!winner.judgement.valid) return { reason: winner.judgement.reason, winner, ...counts };
  const w = { beta: winner.vrfOutput, stake: (winner.node as NodeInfo).stake };
  const lowest = valid.every(
    (v) => compareClaims(w, { beta: v.vrfOutput, stake: (v.node as NodeInfo).stake }) <= 0,
  );
  return { reason: lowest ? null : 'not-lowest', winner, ...counts };
}
