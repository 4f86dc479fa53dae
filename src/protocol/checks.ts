/**
 * Checks a verifier and an owner agent both make before trusting an attempt: the claimant's
 * VRF proof, each voter's VRF proof and seat count (the committee threshold), and the evidence
 * itself (hash, binding to the enclave's keys, appraisal against a policy).
 *
 * Stake enters sortition in whole units of 10^15 wei (docs/protocol.md §13.8): a node's stake
 * and the task's total verifier stake are both divided by STAKE_UNIT and floored.
 */
import { createHash } from 'node:crypto';
import type { Hex } from 'viem';
import {
  type ChainReader,
  claimRecord,
  getTaskEvents,
  type NodeInfo,
  type TaskInfo,
} from '../chain/index.ts';
import { claimAlpha, verifierAlpha } from '../crypto/vrf/index.ts';
import { encodeCanonical, equalBytes, FerryError } from '../kernel/index.ts';
import {
  type JudgedClaim,
  judgeClaimEvent,
  judgeVoteEvent,
  judgeWinningClaim,
  type WinnerReason,
} from './judge.ts';
import { nodeAtCreation } from './snapshot.ts';
import { hexBytes } from './stake.ts';

export { hexBytes, STAKE_UNIT, seatsFor, stakeUnits, vrfProofMatches } from './stake.ts';

export type ClaimEvent = {
  executor: string;
  vrfOutput: Uint8Array;
  vrfProof: Uint8Array;
  blockNumber: bigint;
};
export type VoteEvent = {
  verifier: string;
  pass: boolean;
  resultHash: Uint8Array;
  seats: number;
  vrfOutput: Uint8Array;
  vrfProof: Uint8Array;
};

/**
 * TaskClaimed and VoteCast events of one attempt, read by the task's (and the attempt's) indexed
 * topics from the task's creation block on (getTaskEvents: cost independent of other tasks'
 * traffic). The task's input and result recipient are in its TaskCreated (commitments-chain.ts).
 */
export async function attemptEvents(
  c: ChainReader,
  task: TaskInfo,
  attempt: number,
): Promise<{ claims: ClaimEvent[]; votes: VoteEvent[] }> {
  const claims: ClaimEvent[] = [];
  const votes: VoteEvent[] = [];
  for (const e of await getTaskEvents(c, task.taskId, { fromBlock: task.createdBlock, attempt })) {
    const a = e.args;
    if (a.taskId !== task.taskId || Number(a.attempt) !== attempt) continue;
    if (e.eventName === 'TaskClaimed') {
      claims.push({
        executor: String(a.executor),
        vrfOutput: hexBytes(a.vrfOutput as Hex),
        vrfProof: hexBytes(a.vrfProof as Hex),
        blockNumber: e.blockNumber,
      });
    } else if (e.eventName === 'VoteCast') {
      votes.push({
        verifier: String(a.verifier),
        pass: a.pass === true,
        resultHash: hexBytes(a.resultHash as Hex),
        seats: Number(a.seats),
        vrfOutput: hexBytes(a.vrfOutput as Hex),
        vrfProof: hexBytes(a.vrfProof as Hex),
      });
    }
  }
  return { claims, votes };
}

const DATA_JSON_PREFIX = 'data:application/json,';

/**
 * The task's input arguments from its TaskCreated `inputLocation` (docs/protocol.md §15):
 * empty means no arguments; `data:application/json,<URI-encoded JSON array of strings>`
 * carries them inline. The arguments must hash to the task's `inputHash`
 * (SHA-256 of their canonical CBOR array), so an executor never runs an app on an input the
 * requester did not commit to. Throws TASK_FAILED for another scheme, a malformed array or a
 * hash mismatch.
 */
export function decodeTaskInput(location: string, inputHash: Uint8Array): string[] {
  let args: string[];
  if (location === '') args = [];
  else if (location.startsWith(DATA_JSON_PREFIX)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(decodeURIComponent(location.slice(DATA_JSON_PREFIX.length)));
    } catch (e) {
      throw new FerryError('TASK_FAILED', 'the task input is not valid JSON', { cause: e });
    }
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
      throw new FerryError('TASK_FAILED', 'the task input is not a JSON array of strings');
    }
    args = parsed;
  } else {
    throw new FerryError('TASK_FAILED', 'the task input location is not supported', {
      hints: [
        'expected: empty, or data:application/json,<array of strings>',
        `got: ${location.slice(0, 32)}`,
      ],
    });
  }
  const h = new Uint8Array(createHash('sha256').update(encodeCanonical(args)).digest());
  if (!equalBytes(h, inputHash)) {
    throw new FerryError('TASK_FAILED', "the task input does not match the task's input hash", {
      hints: ['the requester committed to another input; the executor refuses to run'],
    });
  }
  return args;
}

/**
 * Checks the winning claim of the attempt (protocol judgeWinningClaim): the claim by
 * `task.executor` whose claimRecord is the task's best output, by an executor that was active
 * with stake before the task was created (nodeAtCreation), with a valid VRF proof over the claim
 * alpha under the VRF key it had registered then, and ranking lowest by output / stake among the
 * attempt's valid claims. A claimant other than the executor whose entry then cannot be read
 * counts as an invalid claim. Throws POLICY_DENIED naming what failed.
 */
export async function checkClaim(
  c: ChainReader,
  chainId: number,
  task: TaskInfo,
  claims: ClaimEvent[],
): Promise<void> {
  if (!task.executor) throw new FerryError('POLICY_DENIED', 'the attempt has no executor');
  const executor = task.executor;
  const node = await nodeAtCreation(c, executor, task);
  if (!node) throw new FerryError('POLICY_DENIED', 'the executor was not registered before the task');
  const alpha = claimAlpha({
    chainId: BigInt(chainId),
    taskId: task.taskId,
    attempt: task.attempt,
    seed: hexBytes(task.seed),
  });
  const nodes = new Map<string, NodeInfo | null>([[executor.toLowerCase(), node]]);
  const judged: JudgedClaim[] = [];
  for (const x of claims) {
    const who = x.executor.toLowerCase();
    if (!nodes.has(who)) nodes.set(who, await nodeAtCreation(c, x.executor, task).catch(() => null));
    const n = nodes.get(who) ?? null;
    judged.push({
      executor: x.executor,
      vrfOutput: x.vrfOutput,
      node: n,
      judgement: judgeClaimEvent({ node: n, alpha, claim: x }),
      // The task records its best claim as claimRecord (§11.5): the output's first 8 bytes and
      // a hash of the claim, its claimant, key and seed.
      record: claimRecord(task.attempt, x.executor as Hex, {
        seed: task.seed,
        vrfOutput: x.vrfOutput,
        vrfProof: x.vrfProof,
      }),
    });
  }
  const { reason } = judgeWinningClaim(task, judged);
  if (reason === null) return;
  throw new FerryError('POLICY_DENIED', WINNER_DENIED[reason]);
}

const WINNER_DENIED: Record<WinnerReason, string> = {
  'no-executor': 'the attempt has no executor',
  'not-found': "the executor's winning claim was not found",
  'not-eligible': 'the executor was not an active executor with stake before the task',
  'vrf-proof': "the executor's VRF claim proof does not verify",
  late: "the executor's winning claim was made after the claim deadline",
  unchecked: "the executor's winning claim could not be checked",
  'not-lowest': "the executor's winning claim does not rank lowest among the attempt's valid claims",
};

/**
 * Recomputes every pass vote against the registry as it was before the task was created
 * (nodeAtCreation: stake, VRF key and operator at the end of block createdBlock - 1) by the
 * one rule for a recorded vote (protocol judgeVoteEvent): the voter was then an active
 * verifier, is not the executor and does not share the executor's operator, its VRF proof
 * verifies under its key then over the verifier alpha, and it claims no more seats than
 * sortition gives its stake then. Returns the seats of valid pass votes; POLICY_DENIED when
 * they do not reach the task's threshold.
 */
export async function checkVotes(
  c: ChainReader,
  chainId: number,
  task: TaskInfo,
  votes: VoteEvent[],
): Promise<{ validPassSeats: number; invalidVoters: string[] }> {
  const alpha = verifierAlpha({
    chainId: BigInt(chainId),
    taskId: task.taskId,
    attempt: task.attempt,
    seed: hexBytes(task.seed),
  });
  const executorNode = task.executor ? await nodeAtCreation(c, task.executor, task) : null;
  let validPassSeats = 0;
  const invalidVoters: string[] = [];
  for (const v of votes.filter((x) => x.pass)) {
    const node = await nodeAtCreation(c, v.verifier, task);
    const { valid } = judgeVoteEvent({
      node,
      voter: v.verifier,
      executor: task.executor ?? null,
      executorNode,
      alpha,
      task,
      vote: v,
    });
    if (valid) validPassSeats += v.seats;
    else invalidVoters.push(v.verifier);
  }
  if (validPassSeats < task.threshold) {
    throw new FerryError('POLICY_DENIED', 'valid pass votes do not reach the threshold', {
      hints: [
        `valid pass seats: ${validPassSeats}`,
        `threshold: ${task.threshold}`,
        `invalid voters: ${invalidVoters.length}`,
      ],
    });
  }
  return { validPassSeats, invalidVoters };
}
