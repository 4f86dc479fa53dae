/**
 * Fraud proofs from the challenger's side (docs/protocol.md section 11.5): find what the chain
 * recorded for a vote or a best claim, judge it the way the contract will (so a challenge that
 * would fail is never sent), and build the proof the contract takes.
 *
 * A vote is false when its VRF proof does not verify under the voter's key (as registered
 * before the task) for the verifier alpha, or gives another output, or when its seats are
 * provably more than sortition gives (`seatsProvablyTooMany`, section 4.1). A claim is false
 * when its VRF proof fails the same way for the claim alpha.
 */
import type { Address, Hex } from 'viem';
import {
  type ChainReader,
  type ClaimProof,
  claimRecord,
  type FerryEvent,
  type FraudKind,
  getTask,
  getTaskEvents,
  type TaskInfo,
  type VoteProof,
} from '../chain/index.ts';
import { claimAlpha, verifierAlpha } from '../crypto/vrf/index.ts';
import { FerryError } from '../kernel/index.ts';
import { hexBytes, STAKE_UNIT, vrfProofMatches } from './checks.ts';
import { seatsProvablyTooMany } from './seat-proof.ts';
import { nodeAtCreation } from './snapshot.ts';

export type VoteCase = {
  kind: 'vote';
  taskId: bigint;
  attempt: number;
  node: Address;
  /** The node's VRF public key (fixed at registration). */
  vrfKey: Hex;
  proof: VoteProof;
  /** What is false about it, or null when it is true (a challenge would fail: CHAIN_NO_FRAUD). */
  fraud: FraudKind | null;
};

export type ClaimCase = {
  kind: 'claim';
  taskId: bigint;
  attempt: number;
  node: Address;
  vrfKey: Hex;
  proof: ClaimProof;
  fraud: FraudKind | null;
  /** The claim is the task's recorded best claim (only that one can be challenged). */
  recorded: boolean;
};

function same(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

async function taskOrThrow(c: ChainReader, taskId: bigint): Promise<TaskInfo> {
  const task = await getTask(c, taskId);
  if (!task) throw new FerryError('CHAIN_NOT_FOUND', `task ${taskId} does not exist`);
  return task;
}

/** A task and the events of one of its attempts, read once (`attemptRecord`). */
export type AttemptRecord = { task: TaskInfo; attempt: number; events: FerryEvent[] };

/**
 * The task and the events of `attempt`, read once from the task's creation block by the task's
 * and the attempt's indexed topics: what `voteCase` and `claimCase` judge. CHAIN_NOT_FOUND when
 * there is no such task.
 */
export async function attemptRecord(
  c: ChainReader,
  p: { taskId: bigint; attempt: number } | { task: TaskInfo; attempt: number },
): Promise<AttemptRecord> {
  const task = 'task' in p ? p.task : await taskOrThrow(c, p.taskId);
  const events = await getTaskEvents(c, task.taskId, { fromBlock: task.createdBlock, attempt: p.attempt });
  return { task, attempt: p.attempt, events };
}

function seedOf(events: Awaited<ReturnType<typeof getTaskEvents>>): Hex {
  const seeded = events.find((e) => e.eventName === 'TaskSeeded');
  if (!seeded) throw new FerryError('CHAIN_NOT_FOUND', 'the attempt was never seeded');
  return seeded.args.seed as Hex;
}

/**
 * Judges a vote by the contract's rule. `stake` and `vrfKey` are the voter's before the task;
 * `tau` and `totalVerifierStake` the task's.
 */
export function judgeVote(
  p: { chainId: number; taskId: bigint; attempt: number; tau: number; totalVerifierStake: bigint },
  v: Pick<VoteProof, 'seats' | 'stake' | 'seed' | 'vrfOutput' | 'vrfProof'> & { vrfKey: Uint8Array | Hex },
): FraudKind | null {
  const alpha = verifierAlpha({
    chainId: BigInt(p.chainId),
    taskId: p.taskId,
    attempt: p.attempt,
    seed: bytesOf(v.seed),
  });
  const output = bytesOf(v.vrfOutput);
  if (!vrfProofMatches(bytesOf(v.vrfKey), alpha, bytesOf(v.vrfProof), output)) return 'vote-vrf';
  const bigW = p.totalVerifierStake / STAKE_UNIT;
  let w = v.stake / STAKE_UNIT;
  if (w > bigW) w = bigW;
  const x = BigInt(`0x${Buffer.from(output.subarray(0, 8)).toString('hex')}`);
  const tooMany = seatsProvablyTooMany({ x, w, W: bigW, tau: BigInt(p.tau), seats: BigInt(v.seats) });
  return tooMany ? 'vote-seats' : null;
}

/** Judges a claim by the contract's rule. */
export function judgeClaim(
  p: { chainId: number; taskId: bigint; attempt: number },
  cl: ClaimProof & { vrfKey: Uint8Array | Hex },
): FraudKind | null {
  const alpha = claimAlpha({
    chainId: BigInt(p.chainId),
    taskId: p.taskId,
    attempt: p.attempt,
    seed: bytesOf(cl.seed),
  });
  return vrfProofMatches(bytesOf(cl.vrfKey), alpha, bytesOf(cl.vrfProof), bytesOf(cl.vrfOutput))
    ? null
    : 'claim-vrf';
}

function bytesOf(v: Uint8Array | Hex): Uint8Array {
  return v instanceof Uint8Array ? v : hexBytes(v);
}

/**
 * What the chain recorded for `voter`'s vote in `attempt`, judged. CHAIN_NOT_FOUND when there
 * is no such vote; the voter's key and stake are read as of the end of block createdBlock - 1
 * (nodeAtCreation), as the contract recorded them.
 */
export async function voteCase(
  c: ChainReader,
  chainId: number,
  p: { taskId: bigint; attempt: number; voter: Address },
  /** The attempt as already read (`attemptRecord`), so a caller judging many votes reads it once. */
  record?: AttemptRecord,
): Promise<VoteCase> {
  const { task, events } = await recordFor(c, p, record);
  const cast = events.find((e) => e.eventName === 'VoteCast' && same(String(e.args.verifier), p.voter));
  if (!cast) {
    throw new FerryError(
      'CHAIN_NOT_FOUND',
      `${p.voter} cast no vote in task ${p.taskId} attempt ${p.attempt}`,
    );
  }
  const committed = events.find((e) => e.eventName === 'EvidenceCommitted');
  if (!committed) throw new FerryError('CHAIN_NOT_FOUND', 'the attempt has no evidence commitment');
  const node = await nodeAtCreation(c, p.voter, task);
  if (!node) throw new FerryError('CHAIN_NOT_FOUND', `${p.voter} was not registered before the task`);
  const proof: VoteProof = {
    pass: cast.args.pass === true,
    seats: Number(cast.args.seats),
    stake: node.stake,
    seed: seedOf(events),
    executor: committed.args.executor as Address,
    vrfOutput: cast.args.vrfOutput as Hex,
    vrfProof: cast.args.vrfProof as Hex,
  };
  const fraud = judgeVote(
    {
      chainId,
      taskId: p.taskId,
      attempt: p.attempt,
      tau: task.tau,
      totalVerifierStake: task.totalVerifierStake,
    },
    { ...proof, vrfKey: node.vrfPublicKey },
  );
  return {
    kind: 'vote',
    taskId: p.taskId,
    attempt: p.attempt,
    node: p.voter,
    vrfKey: node.vrfPublicKey,
    proof,
    fraud,
  };
}

/**
 * The best claim of `attempt` (the claimant's last TaskClaimed with best = true), judged.
 * `recorded` says whether the task still records it (bestOutput), which a challenge needs.
 */
export async function claimCase(
  c: ChainReader,
  chainId: number,
  p: { taskId: bigint; attempt: number },
  /** The attempt as already read (`attemptRecord`). */
  record?: AttemptRecord,
): Promise<ClaimCase> {
  const { task, events } = await recordFor(c, p, record);
  const best = events.filter((e) => e.eventName === 'TaskClaimed' && e.args.best === true).at(-1);
  if (!best) throw new FerryError('CHAIN_NOT_FOUND', `task ${p.taskId} attempt ${p.attempt} has no claim`);
  const claimant = best.args.executor as Address;
  const node = await nodeAtCreation(c, claimant, task);
  if (!node) throw new FerryError('CHAIN_NOT_FOUND', `${claimant} was not registered before the task`);
  const proof: ClaimProof = {
    seed: seedOf(events),
    vrfOutput: best.args.vrfOutput as Hex,
    vrfProof: best.args.vrfProof as Hex,
  };
  const recorded = task.bestOutput.toLowerCase() === claimRecord(p.attempt, claimant, proof).toLowerCase();
  const fraud = judgeClaim(
    { chainId, taskId: p.taskId, attempt: p.attempt },
    { ...proof, vrfKey: node.vrfPublicKey },
  );
  return {
    kind: 'claim',
    taskId: p.taskId,
    attempt: p.attempt,
    node: claimant,
    vrfKey: node.vrfPublicKey,
    proof,
    fraud,
    recorded,
  };
}

async function recordFor(
  c: ChainReader,
  p: { taskId: bigint; attempt: number },
  record: AttemptRecord | undefined,
): Promise<AttemptRecord> {
  if (!record) return attemptRecord(c, p);
  if (record.task.taskId !== p.taskId || record.attempt !== p.attempt) {
    throw new FerryError('INTERNAL', 'the attempt record is of another task or attempt');
  }
  return record;
}
