/**
 * Task actions (protocol.md sections 11.3 and 12): create, seed, claim, evidence, vote, key
 * release, receipt, timeout, withdraw, and readers. Writes resolve once mined; refusals are
 * FerryErrors with CHAIN_* codes (e.g. CHAIN_WRONG_STATE, CHAIN_NOT_ELIGIBLE).
 *
 * The contract does not verify VRF proofs or seat counts when they arrive; callers relying on a
 * claim or a vote must verify them off chain (section 11, "What the contracts do not check"),
 * and anyone may prove a false one afterwards (fraud.ts).
 */
import { type Address, decodeEventLog, type Hex } from 'viem';
import { FerryError } from '../kernel/index.ts';
import { tasksAbi } from './abi.ts';
import { sendTx } from './client.ts';
import { address, hexBytes, smallUint, text, uint } from './encode.ts';
import { toChainError } from './errors.ts';
import {
  type ChainReader,
  type ChainWriter,
  maskToTeeKinds,
  TASK_STATES,
  type TaskState,
  type TeeKind,
  type TxResult,
} from './types.ts';

export type CreateTaskParams = {
  appId: bigint;
  /** 1 to 7 dataset ids, strictly ascending. */
  datasetIds: bigint[];
  /** SHA-256 of the task input, 32 bytes. */
  inputHash: Uint8Array | Hex;
  /** The requester's X25519 (age) public key, 32 bytes: results are sealed to it. */
  resultRecipient: Uint8Array | Hex;
  /** Where the executor fetches the input (may be empty). */
  inputLocation: string;
  /** Escrowed fee, wei (>= app price + dataset prices). */
  fee: bigint;
  /** Unix seconds; the task expires (refund) if not completed by then. */
  expiresAt: number;
  /** Stage windows, seconds (section 12), each within TASK_WINDOW_BOUNDS. */
  claimWindow: number;
  evidenceWindow: number;
  voteWindow: number;
  /** Key releases after attestation; the receipt is due max(runWindow, MIN_RUN_TIME) after the last one. */
  runWindow: number;
  /** Expected claimants per attempt in the first claim round (k, 1..255); default 3. */
  claimTarget?: number;
};

/**
 * The bounds the contract enforces on a task's windows and expiry, seconds (protocol.md section
 * 11.3, "Window bounds"); outside them createTask rejects with CHAIN_INVALID_PARAMETER naming
 * the field (`claimWindow`, ..., `expiresAt`: now + ttl).
 */
export const TASK_WINDOW_BOUNDS = {
  claimWindow: { min: 3, max: 3600 },
  evidenceWindow: { min: 10, max: 3600 },
  voteWindow: { min: 5, max: 3600 },
  runWindow: { min: 5, max: 86_400 },
  ttl: { min: 10, max: 30 * 86_400 },
} as const;

/** The least time an executor has between the last key release and its receipt deadline, seconds. */
export const MIN_RUN_TIME = 60;

/** The claim target (k) a task gets when CreateTaskParams.claimTarget is absent or 0. */
export const DEFAULT_CLAIM_TARGET = 3;

const STAKE_UNIT = 10n ** 15n;

/**
 * The most seats the contract accepts in one vote (Tasks.seatBound, protocol.md section 11.3):
 * with w and W the voter's and the task's total verifier stake in whole units of 10^15 wei (w
 * capped at W) and m = ceil(tau w / W): min(w, m + isqrt(64 m) + 8); 0 when w or W is 0.
 */
export function seatBound(stakeWei: bigint, totalStakeWei: bigint, tau: number): number {
  const bigW = uint(totalStakeWei, 'totalStakeWei') / STAKE_UNIT;
  let w = uint(stakeWei, 'stakeWei') / STAKE_UNIT;
  const t = uint(tau, 'tau', 65535n);
  if (w > bigW) w = bigW;
  if (w === 0n) return 0;
  const m = (t * w + bigW - 1n) / bigW;
  const b = m + isqrt(64n * m) + 8n;
  return Number(b < w ? b : w);
}

function isqrt(a: bigint): bigint {
  if (a < 2n) return a;
  let r = a;
  let y = (a + 1n) / 2n;
  while (y < r) {
    r = y;
    y = (a / y + y) / 2n;
  }
  return r;
}

/** The arguments of the first Tasks event `eventName` among a transaction's logs. */
export function taskEvent(logs: readonly { topics: readonly Hex[]; data: Hex }[], eventName: string) {
  for (const log of logs) {
    try {
      const ev = decodeEventLog({ abi: tasksAbi, data: log.data, topics: log.topics as [Hex, ...Hex[]] });
      if (ev.eventName === eventName) return ev.args as Record<string, unknown>;
    } catch {
      // a log of another contract or event
    }
  }
  return undefined;
}

function tx(r: TxResult): TxResult {
  return { hash: r.hash, blockNumber: r.blockNumber, gasUsed: r.gasUsed };
}

/** Gas added to a vote's estimate (see `vote`): covers the deciding paths with many datasets. */
export const VOTE_GAS_HEADROOM = 400_000n;

/** Creates a task with `fee` in escrow; resolves with its id. */
export async function createTask(
  c: ChainWriter,
  p: CreateTaskParams,
): Promise<TxResult & { taskId: bigint }> {
  if (!Array.isArray(p.datasetIds) || p.datasetIds.length === 0) {
    throw new FerryError('INVALID_ARGUMENT', 'datasetIds: expected at least one dataset id');
  }
  const r = await sendTx(c, {
    address: c.contracts.Tasks,
    abi: tasksAbi,
    functionName: 'createTask',
    args: [
      {
        appId: uint(p.appId, 'appId'),
        datasetIds: p.datasetIds.map((d, i) => uint(d, `datasetIds[${i}]`)),
        inputHash: hexBytes(p.inputHash, 'inputHash', 32),
        resultRecipient: hexBytes(p.resultRecipient, 'resultRecipient', 32),
        inputLocation: text(p.inputLocation, 'inputLocation', 1024, true),
        expiresAt: smallUint(p.expiresAt, 'expiresAt', 2 ** 40 - 1),
        claimWindow: smallUint(p.claimWindow, 'claimWindow', 2 ** 32 - 1),
        evidenceWindow: smallUint(p.evidenceWindow, 'evidenceWindow', 2 ** 32 - 1),
        voteWindow: smallUint(p.voteWindow, 'voteWindow', 2 ** 32 - 1),
        runWindow: smallUint(p.runWindow, 'runWindow', 2 ** 32 - 1),
        claimTarget: smallUint(p.claimTarget ?? 0, 'claimTarget', 255),
      },
    ],
    value: uint(p.fee, 'fee', 2n ** 128n - 1n),
  });
  const ev = taskEvent(r.logs, 'TaskCreated');
  if (!ev) throw new FerryError('INTERNAL', 'TaskCreated event missing from the receipt');
  return { ...tx(r), taskId: ev.taskId as bigint };
}

/**
 * Fixes the current attempt's seed (anyone; once the block after the anchor exists). Resolves
 * with the seed, or null when the anchor block hash had expired and the task was re-anchored
 * (call again in the next block).
 */
export async function seedTask(c: ChainWriter, taskId: bigint): Promise<TxResult & { seed: Hex | null }> {
  const r = await sendTx(c, {
    address: c.contracts.Tasks,
    abi: tasksAbi,
    functionName: 'seed',
    args: [uint(taskId, 'taskId')],
  });
  const ev = taskEvent(r.logs, 'TaskSeeded');
  return { ...tx(r), seed: ev ? (ev.seed as Hex) : null };
}

/**
 * Claims an attempt with the node's VRF output (64 bytes) and proof (80 bytes). Refused with
 * CHAIN_ALREADY_CLAIMED for a second claim of the node in the attempt, and CHAIN_NOT_ELIGIBLE
 * (`details.args[1] === 10`) when the output is not below the node's claim threshold in the
 * current round (src/protocol/claim.ts): claim again in a later round of the window.
 */
export async function claimTask(
  c: ChainWriter,
  p: { taskId: bigint; attempt: number; vrfOutput: Uint8Array | Hex; vrfProof: Uint8Array | Hex },
): Promise<TxResult & { best: boolean }> {
  const r = await sendTx(c, {
    address: c.contracts.Tasks,
    abi: tasksAbi,
    functionName: 'claim',
    args: [
      uint(p.taskId, 'taskId'),
      uint(p.attempt, 'attempt'),
      hexBytes(p.vrfOutput, 'vrfOutput', 64),
      hexBytes(p.vrfProof, 'vrfProof', 80),
    ],
    // Its claim window is seconds: sent before the account's other waiting transactions.
    urgent: true,
  });
  return { ...tx(r), best: taskEvent(r.logs, 'TaskClaimed')?.best === true };
}

/** The winning executor commits its evidence hash and where to fetch the evidence. */
export async function commitEvidence(
  c: ChainWriter,
  p: { taskId: bigint; attempt: number; evidenceHash: Uint8Array | Hex; location: string },
): Promise<TxResult> {
  return tx(
    await sendTx(c, {
      address: c.contracts.Tasks,
      abi: tasksAbi,
      functionName: 'commitEvidence',
      args: [
        uint(p.taskId, 'taskId'),
        uint(p.attempt, 'attempt'),
        hexBytes(p.evidenceHash, 'evidenceHash', 32),
        text(p.location, 'location', 1024),
      ],
    }),
  );
}

export type VoteParams = {
  taskId: bigint;
  attempt: number;
  pass: boolean;
  /** SHA-256 of the verifier's `ferry/attestation-result/v1`. */
  resultHash: Uint8Array | Hex;
  /** Seats won by sortition, >= 1. */
  seats: number;
  vrfOutput: Uint8Array | Hex;
  vrfProof: Uint8Array | Hex;
};

/** Casts a verifier's vote; resolves with the task status after it. */
export async function vote(c: ChainWriter, p: VoteParams): Promise<TxResult & { status: TaskState }> {
  const r = await sendTx(c, {
    address: c.contracts.Tasks,
    abi: tasksAbi,
    functionName: 'vote',
    args: [
      uint(p.taskId, 'taskId'),
      uint(p.attempt, 'attempt'),
      p.pass === true,
      hexBytes(p.resultHash, 'resultHash', 32),
      smallUint(p.seats, 'seats', 65535),
      hexBytes(p.vrfOutput, 'vrfOutput', 64),
      hexBytes(p.vrfProof, 'vrfProof', 80),
    ],
    // A vote estimated as an ordinary one (about 76k gas) may be mined as the deciding one:
    // attested, or rejected (end the attempt, exclude the executor, unlock its stake, return the
    // uses: about 166k with one dataset, measured in test/devnet-adversarial.test.ts).
    gasHeadroom: VOTE_GAS_HEADROOM,
    // Its vote window is seconds: sent before the account's other waiting transactions.
    urgent: true,
  });
  const changed = taskEvent(r.logs, 'StatusChanged');
  return { ...tx(r), status: changed ? TASK_STATES[Number(changed.status)] : 'attesting' };
}

/**
 * The owner of asset `assetIndex` (0: the app, i: the i-th dataset) records its key release;
 * `releaseHash` identifies the sealed key it delivered (32 bytes).
 */
export async function recordKeyRelease(
  c: ChainWriter,
  p: { taskId: bigint; attempt: number; assetIndex: number; releaseHash: Uint8Array | Hex },
): Promise<TxResult> {
  return tx(
    await sendTx(c, {
      address: c.contracts.Tasks,
      abi: tasksAbi,
      functionName: 'recordKeyRelease',
      args: [
        uint(p.taskId, 'taskId'),
        uint(p.attempt, 'attempt'),
        uint(p.assetIndex, 'assetIndex', 7n),
        hexBytes(p.releaseHash, 'releaseHash', 32),
      ],
    }),
  );
}

/**
 * Posts the enclave's receipt and completes the task (executor only); the executor's share
 * is paid to it in the same transaction.
 */
export async function submitReceipt(
  c: ChainWriter,
  p: {
    taskId: bigint;
    attempt: number;
    receipt: Uint8Array | Hex;
    signature: Uint8Array | Hex;
    resultHash: Uint8Array | Hex;
    resultLocation: string;
  },
): Promise<TxResult & { receiptHash: Hex; paid: bigint }> {
  const r = await sendTx(c, {
    address: c.contracts.Tasks,
    abi: tasksAbi,
    functionName: 'submitReceipt',
    args: [
      uint(p.taskId, 'taskId'),
      uint(p.attempt, 'attempt'),
      hexBytes(p.receipt, 'receipt'),
      hexBytes(p.signature, 'signature', 64),
      hexBytes(p.resultHash, 'resultHash', 32),
      text(p.resultLocation, 'resultLocation', 1024, true),
    ],
  });
  const ev = taskEvent(r.logs, 'TaskCompleted');
  return {
    ...tx(r),
    receiptHash: ev?.receiptHash as Hex,
    paid: (taskEvent(r.logs, 'Paid')?.amount as bigint) ?? 0n,
  };
}

/** Longest abandonment cause the contract accepts, in UTF-8 bytes. */
export const MAX_ABANDON_CAUSE = 256;

/**
 * The executor gives up its attested or running attempt, saying why ("CODE: message", cut to
 * 256 bytes on a character boundary); resolves with the task's status after it (rejected or
 * failed).
 */
export async function abandonAttempt(
  c: ChainWriter,
  p: { taskId: bigint; attempt: number; cause: string },
): Promise<TxResult & { status: TaskState }> {
  const r = await sendTx(c, {
    address: c.contracts.Tasks,
    abi: tasksAbi,
    functionName: 'abandon',
    args: [uint(p.taskId, 'taskId'), uint(p.attempt, 'attempt'), abandonCause(p.cause)],
  });
  return { ...tx(r), status: statusAfter(r.logs, 'rejected') };
}

/** A cause as the contract takes it: non-empty, at most MAX_ABANDON_CAUSE UTF-8 bytes. */
export function abandonCause(cause: string): string {
  let out = '';
  let bytes = 0;
  for (const ch of cause.trim() || 'ABANDONED: no cause given') {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > MAX_ABANDON_CAUSE) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** A pass voter of a completed task collects its reward (paid at once); resolves with the amount. */
export async function claimVoteReward(
  c: ChainWriter,
  taskId: bigint,
): Promise<TxResult & { amount: bigint }> {
  const r = await sendTx(c, {
    address: c.contracts.Tasks,
    abi: tasksAbi,
    functionName: 'claimVoteReward',
    args: [uint(taskId, 'taskId')],
  });
  return { ...tx(r), amount: (taskEvent(r.logs, 'Paid')?.amount as bigint) ?? 0n };
}

/** Ends the current stage after its deadline (anyone); resolves with the new status. */
export async function timeoutTask(c: ChainWriter, taskId: bigint): Promise<TxResult & { status: TaskState }> {
  const r = await sendTx(c, {
    address: c.contracts.Tasks,
    abi: tasksAbi,
    functionName: 'timeout',
    args: [uint(taskId, 'taskId')],
  });
  return { ...tx(r), status: statusAfter(r.logs, 'rejected') };
}

/** The last StatusChanged of a transaction's logs, or `fallback`. */
function statusAfter(logs: readonly { data: Hex; topics: readonly Hex[] }[], fallback: TaskState): TaskState {
  let status = fallback;
  for (const log of logs) {
    try {
      const ev = decodeEventLog({ abi: tasksAbi, data: log.data, topics: log.topics as [Hex, ...Hex[]] });
      if (ev.eventName === 'StatusChanged') status = TASK_STATES[Number(ev.args.status)];
    } catch {
      // not ours
    }
  }
  return status;
}

/** Withdraws everything credited to the writer's account; resolves with the amount. */
export async function withdraw(c: ChainWriter): Promise<TxResult & { amount: bigint }> {
  const r = await sendTx(c, {
    address: c.contracts.Tasks,
    abi: tasksAbi,
    functionName: 'withdraw',
    args: [],
  });
  return { ...tx(r), amount: (taskEvent(r.logs, 'Withdrawn')?.amount as bigint) ?? 0n };
}

export type TaskInfo = {
  taskId: bigint;
  requester: Address;
  status: TaskState;
  attempt: number;
  appId: bigint;
  datasetIds: bigint[];
  tau: number;
  threshold: number;
  teeKinds: TeeKind[];
  executor: Address | null;
  /** The current stage's deadline, unix seconds (0 before the seed). */
  deadline: number;
  passSeats: number;
  failSeats: number;
  passVoters: number;
  releasedMask: number;
  keysEverReleased: boolean;
  anchorBlock: bigint;
  createdBlock: bigint;
  fee: bigint;
  expiresAt: number;
  windows: { claim: number; evidence: number; vote: number; run: number };
  totalVerifierStake: bigint;
  /** Snapshot of the active executor stake at creation: W of the claim threshold. */
  totalExecutorStake: bigint;
  /** Expected claimants in the first claim round (k). */
  claimTarget: number;
  /** Each pass voter's reward, set when the task completes. */
  voterReward: bigint;
  seed: Hex;
  /** The best claim's record (claimRecord, §11.5): its output's first 8 bytes, then a hash. */
  bestOutput: Hex;
  /** Attempts fraud proofs gave back, on top of the deployment's maxAttempts. */
  graceAttempts: number;
  evidenceHash: Hex;
  receiptHash: Hex;
};

const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';

/**
 * The task, or null when no task has this id (at that block). `opts.blockNumber`: read the state
 * as of that block; the endpoint must keep it, else CHAIN_UNAVAILABLE.
 */
export async function getTask(
  c: ChainReader,
  taskId: bigint,
  opts: { blockNumber?: bigint } = {},
): Promise<TaskInfo | null> {
  let t: Awaited<ReturnType<typeof readTask>>;
  try {
    t = await readTask(
      c,
      uint(taskId, 'taskId'),
      opts.blockNumber === undefined ? undefined : uint(opts.blockNumber, 'blockNumber'),
    );
  } catch (e) {
    throw toChainError(e, 'getTask');
  }
  if (t.requester === ZERO_ADDRESS) return null;
  return {
    taskId,
    requester: t.requester,
    status: TASK_STATES[t.status],
    attempt: t.attempt,
    appId: t.appId,
    datasetIds: t.datasetIds.slice(0, t.assetCount - 1),
    tau: t.tau,
    threshold: t.threshold,
    teeKinds: maskToTeeKinds(t.teeKinds),
    executor: t.executor === ZERO_ADDRESS ? null : t.executor,
    deadline: t.deadline,
    passSeats: t.passSeats,
    failSeats: t.failSeats,
    passVoters: t.passVoters,
    releasedMask: t.releasedMask,
    keysEverReleased: t.keysEverReleased,
    anchorBlock: t.anchorBlock,
    createdBlock: t.createdBlock,
    fee: t.fee,
    expiresAt: t.expiresAt,
    windows: { claim: t.claimWindow, evidence: t.evidenceWindow, vote: t.voteWindow, run: t.runWindow },
    totalVerifierStake: t.totalVerifierStake,
    totalExecutorStake: t.totalExecutorStake,
    claimTarget: t.claimTarget,
    voterReward: t.voterReward,
    seed: t.seed,
    bestOutput: t.bestOutput,
    graceAttempts: t.graceAttempts,
    evidenceHash: t.evidenceHash,
    receiptHash: t.receiptHash,
  };
}

function readTask(c: ChainReader, taskId: bigint, blockNumber?: bigint) {
  return c.public.readContract({
    address: c.contracts.Tasks,
    abi: tasksAbi,
    functionName: 'getTask',
    args: [taskId],
    ...(blockNumber === undefined ? {} : { blockNumber }),
  });
}

/** How many tasks were ever created, as of `opts.blockNumber` or the head: their ids are 1..count. */
export async function getTaskCount(c: ChainReader, opts: { blockNumber?: bigint } = {}): Promise<bigint> {
  try {
    return await c.public.readContract({
      address: c.contracts.Tasks,
      abi: tasksAbi,
      functionName: 'taskCount',
      ...(opts.blockNumber === undefined ? {} : { blockNumber: uint(opts.blockNumber, 'blockNumber') }),
    });
  } catch (e) {
    throw toChainError(e, 'getTaskCount');
  }
}

/** Wei credited to an account and not yet withdrawn. */
export async function getCredits(c: ChainReader, account: Address): Promise<bigint> {
  try {
    return await c.public.readContract({
      address: c.contracts.Tasks,
      abi: tasksAbi,
      functionName: 'credits',
      args: [address(account, 'account')],
    });
  } catch (e) {
    throw toChainError(e, 'getCredits');
  }
}

/**
 * A verifier's recorded vote for an attempt: null (none), 'fail', 'pass', 'pass-paid' (reward
 * claimed) or 'discarded' (proven false by a fraud proof, section 11.5).
 */
export async function getVote(
  c: ChainReader,
  p: { taskId: bigint; attempt: number; verifier: Address },
): Promise<'pass' | 'pass-paid' | 'fail' | 'discarded' | null> {
  try {
    const v = await c.public.readContract({
      address: c.contracts.Tasks,
      abi: tasksAbi,
      functionName: 'voteOf',
      args: [uint(p.taskId, 'taskId'), uint(p.attempt, 'attempt'), address(p.verifier, 'verifier')],
    });
    return v === 4 ? 'discarded' : v === 3 ? 'pass-paid' : v === 2 ? 'pass' : v === 1 ? 'fail' : null;
  } catch (e) {
    throw toChainError(e, 'getVote');
  }
}

/** True when `node` has claimed attempt `attempt` of the task (one claim per node per attempt). */
export async function hasClaimed(
  c: ChainReader,
  p: { taskId: bigint; attempt: number; node: Address },
): Promise<boolean> {
  try {
    return await c.public.readContract({
      address: c.contracts.Tasks,
      abi: tasksAbi,
      functionName: 'hasClaimed',
      args: [uint(p.taskId, 'taskId'), uint(p.attempt, 'attempt'), address(p.node, 'node')],
    });
  } catch (e) {
    throw toChainError(e, 'hasClaimed');
  }
}

export async function isExcluded(c: ChainReader, p: { taskId: bigint; node: Address }): Promise<boolean> {
  try {
    return await c.public.readContract({
      address: c.contracts.Tasks,
      abi: tasksAbi,
      functionName: 'isExcluded',
      args: [uint(p.taskId, 'taskId'), address(p.node, 'node')],
    });
  } catch (e) {
    throw toChainError(e, 'isExcluded');
  }
}

/** The pass voters of an attempt, from VoteCast events since the task's creation block. */
export async function getPassVoters(c: ChainReader, taskId: bigint, attempt: number): Promise<Address[]> {
  const task = await getTask(c, taskId);
  if (!task) throw new FerryError('CHAIN_NOT_FOUND', `task ${taskId} does not exist`);
  try {
    const logs = await c.public.getContractEvents({
      address: c.contracts.Tasks,
      abi: tasksAbi,
      eventName: 'VoteCast',
      args: { taskId, attempt: BigInt(attempt) },
      fromBlock: task.createdBlock,
      toBlock: 'latest',
    });
    return logs.filter((l) => l.args.pass === true).map((l) => l.args.verifier as Address);
  } catch (e) {
    throw toChainError(e, 'getPassVoters');
  }
}
