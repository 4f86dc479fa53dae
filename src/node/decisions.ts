/**
 * The node's decisions, as pure functions: what to do with a chain event, whether and when to
 * claim, which step each reconcile finds due for a recorded intent, an enclave or an orphaned
 * attempt, when to heartbeat or leave jail, how long a run may take and what a failure turns
 * into. No I/O: the components (duties.ts, executor.ts, verifier-duty.ts) read the chain and
 * the state, ask these functions, and act. Each branch is covered by decisions.test.ts.
 */
import { createHash } from 'node:crypto';
import { TASK_STATES, TASK_WINDOW_BOUNDS, type TaskInfo } from '../chain/index.ts';
import type { BackendSpec } from '../enclave/index.ts';
import { FerryError, isRetryable } from '../kernel/index.ts';
import { CLAIM_ROUNDS, FINAL_STATES, stageDue, timeoutDue } from '../protocol/index.ts';
import type { NodeConfig } from './config.ts';

/** Chain seconds between heartbeats (the registry's heartbeat TTL is a day by default). */
export const HEARTBEAT_EVERY_SECONDS = 3600;
/**
 * Chain seconds before the run deadline at which an attempt still missing a key is abandoned:
 * time to send the abandonment (§11.3: the contract gives at least MIN_RUN_TIME after the last
 * release, so owners have the rest to deliver).
 */
export const KEYS_WAIT_MARGIN_SECONDS = 20;
/** Chain seconds an app's run leaves before the run deadline, to seal the result and post the receipt. */
export const RECEIPT_MARGIN_SECONDS = 15;
/** How often, chain seconds, a node that is not jailed checks whether it was jailed. */
export const JAIL_CHECK_EVERY_SECONDS = 60;

/** Statuses after which nothing happens to a task. */
/** The final statuses (src/protocol/stages.ts). */
export const FINAL: ReadonlySet<string> = FINAL_STATES;
/** Stages in which an attempt's enclave may still be needed. */
export const ENCLAVE_STAGES: ReadonlySet<string> = new Set(['claimed', 'attesting', 'attested', 'running']);

/** The cause written on chain for an attempt whose enclave died with the previous process (§13.8). */
export const ENCLAVE_LOST_CAUSE = 'ENCLAVE_LOST: the node restarted and the enclave of this attempt is gone';

/** The lane and deduplication key of a task attempt: `task/attempt`. */
export function attemptKey(task: bigint | string, attempt: number): string {
  return `${task}/${attempt}`;
}

const same = (a: string | null | undefined, b: string) => a?.toLowerCase() === b.toLowerCase();

// --- tasks and deadlines ------------------------------------------------------------------

/** When the task's current stage is due (the one rule, src/protocol/stages.ts, §12). */
export { stageDue };

/** A task row as last read, with the chain time after which something is due for it. */
export type CachedTask = { row: TaskInfo | null; due: number };

/** The cache entry of a row just read. */
export function cacheEntry(row: TaskInfo | null): CachedTask {
  return { row, due: row ? stageDue(row) : Number.MAX_SAFE_INTEGER };
}

/**
 * Whether a cached row may be used at `now` instead of reading the chain: the task is unknown
 * or final (nothing changes it but an event, which drops the entry) or its stage is not due.
 */
export function cacheFresh(c: CachedTask | undefined, now: number): c is CachedTask {
  return c !== undefined && (c.row === null || FINAL.has(c.row.status) || now <= c.due);
}

/** The shortest stage window the contract allows, seconds (TASK_WINDOW_BOUNDS: the claim window). */
export const MIN_STAGE_SECONDS = TASK_WINDOW_BOUNDS.claimWindow.min;

/**
 * After an event changed a task at chain time ≥ `now`, a lower bound of when any of its stages
 * can be due: an event that starts a stage gives it a deadline at least MIN_STAGE_SECONDS
 * later (every window is at least that), one that does not leaves the old stage's (`c.due`);
 * the expiry is in both. Kept as the lowest of successive changes (`prior`); undefined when the
 * row was never read (no bound: read it). Final or unknown rows have no stage: undefined too.
 */
export function dueFloorAfterChange(
  c: CachedTask | undefined,
  prior: number | undefined,
  now: number,
): number | undefined {
  if (c === undefined || c.row === null || FINAL.has(c.row.status)) return prior;
  const floor = Math.min(c.due, now + MIN_STAGE_SECONDS);
  return prior === undefined ? floor : Math.min(prior, floor);
}

/** A watched task at a reconcile: forgotten once gone or final; timed out once its stage is due. */
export function liveStep(t: TaskInfo | null, now: number): 'drop' | 'timeout' | 'wait' {
  if (!t || FINAL.has(t.status)) return 'drop';
  return timeoutDue(t, now) ? 'timeout' : 'wait';
}

/** Whether a task waits for its next attempt's seed (anyone may seed it). */
export function awaitsSeed(t: TaskInfo | null): t is TaskInfo {
  return t !== null && (t.status === 'created' || t.status === 'rejected');
}

// --- duties anyone may do: one designated node, the others as fallbacks (§12) -----------------

/** Seconds each rank below the designated node waits before it does a duty itself. */
export const DUTY_FALLBACK_SECONDS = 2;
/** Ranks from this one on all wait the same (the longest wait when the first nodes are absent). */
export const DUTY_MAX_RANK = 3;

/**
 * This node's rank for a duty of a task attempt that anyone may do (seeding it, timing out a
 * stage): the known nodes (this one included) sorted by the hex SHA-256 of the UTF-8 text
 * `ferry/duty/v1/{duty}/{task}/{attempt}/{lowercase address}`, lowest first. Every node computes the same order from the same set, so
 * one node is designated (rank 0) and does it at once; rank r waits `dutyDelayMs(r)`, so a
 * designated node that is absent or hostile (it never does it) delays the task by at most
 * DUTY_FALLBACK_SECONDS per rank. Nodes with different views of the set at worst both act,
 * which the contract makes harmless (the second call reverts).
 */
export function dutyRank(
  duty: 'seed' | 'timeout',
  taskId: bigint,
  attempt: number,
  me: string,
  nodes: Iterable<string>,
): number {
  const score = (a: string) =>
    createHash('sha256')
      .update(`ferry/duty/v1/${duty}/${taskId}/${attempt}/${a.toLowerCase()}`)
      .digest('hex');
  const mine = score(me);
  const others = new Set([...nodes].map((n) => n.toLowerCase()));
  others.delete(me.toLowerCase());
  let rank = 0;
  for (const n of others) {
    const s = score(n);
    if (s < mine || (s === mine && n < me.toLowerCase())) rank++;
  }
  return rank;
}

/** How long a node of this rank waits, ms from when it first saw the duty due, before doing it. */
export function dutyDelayMs(rank: number): number {
  return Math.min(rank, DUTY_MAX_RANK) * DUTY_FALLBACK_SECONDS * 1000;
}

/** Whether a duty first seen due at `since` (local ms) is this node's to do at `nowMs`. */
export function dutyDue(rank: number, since: number, nowMs: number): boolean {
  return nowMs - since >= dutyDelayMs(rank);
}

// --- chain events -------------------------------------------------------------------------

/** What an event asks of this node, in order. */
export type EventStep =
  /** Drop the task's cached row: the event changed it. */
  | { kind: 'forget'; taskId: bigint }
  /** Watch the task's stage deadlines (every node enforces them with `timeout`). */
  | { kind: 'watch'; taskId: bigint }
  /** Seed the task's next attempt once possible (executors do). */
  | { kind: 'seed'; taskId: bigint }
  /** Self-select for the attempt and claim it if selected (executors). */
  | { kind: 'claim'; taskId: bigint; attempt: number }
  /** Judge the attempt's evidence and vote if selected (verifiers). */
  | { kind: 'judge'; taskId: bigint; attempt: number; executor: string; location: string }
  /** Look for false votes in an attempt this node executed that a lie could have ended (§11.5). */
  | { kind: 'challenge-votes'; taskId: bigint; attempt: number }
  /** Check another node's best claim of an attempt this node may have claimed too (§11.5). */
  | { kind: 'check-claim'; taskId: bigint; attempt: number; claimant: string }
  /** The attempt is running: post its receipt now if this node holds the result (executors). */
  | { kind: 'receipt'; taskId: bigint; attempt: number };

/** StatusChanged's status code of `running`. */
const RUNNING = TASK_STATES.indexOf('running');

/** AttemptEnded reasons a lie can cause without the executor's fault: evidence rejected, votes or keys missed. */
export const LIE_END_REASONS: readonly number[] = [3, 4, 6];

/** The steps a chain event asks of a node with these roles (and this address, for its own attempts). */
export function eventSteps(
  e: { eventName: string; args: Record<string, unknown> },
  roles: readonly string[],
  self = '',
): EventStep[] {
  const a = e.args;
  const steps: EventStep[] = [];
  if (typeof a.taskId !== 'bigint') return steps;
  const taskId = a.taskId;
  steps.push({ kind: 'forget', taskId });
  if (e.eventName === 'TaskCreated') steps.push({ kind: 'watch', taskId });
  if ((e.eventName === 'TaskCreated' || e.eventName === 'AttemptEnded') && roles.includes('executor')) {
    steps.push({ kind: 'seed', taskId });
  } else if (e.eventName === 'TaskSeeded' && roles.includes('executor')) {
    steps.push({ kind: 'claim', taskId, attempt: Number(a.attempt) });
  } else if (e.eventName === 'EvidenceCommitted' && roles.includes('verifier')) {
    steps.push({
      kind: 'judge',
      taskId,
      attempt: Number(a.attempt),
      executor: String(a.executor),
      location: String(a.evidenceLocation),
    });
  }
  if (!roles.includes('executor') || self === '') return steps;
  const mine = (who: unknown) => String(who).toLowerCase() === self.toLowerCase();
  if (e.eventName === 'AttemptEnded' && mine(a.executor) && LIE_END_REASONS.includes(Number(a.reason))) {
    steps.push({ kind: 'challenge-votes', taskId, attempt: Number(a.attempt) });
  } else if (e.eventName === 'TaskClaimed' && a.best === true && !mine(a.executor)) {
    steps.push({ kind: 'check-claim', taskId, attempt: Number(a.attempt), claimant: String(a.executor) });
  } else if (e.eventName === 'StatusChanged' && Number(a.status) === RUNNING) {
    steps.push({ kind: 'receipt', taskId, attempt: Number(a.attempt) });
  }
  return steps;
}

// --- claiming (§11.3) ----------------------------------------------------------------------

/** Whether the task is at `attempt`, open to claims, and asks for this node's TEE kind. */
export function claimOpen(t: TaskInfo | null, attempt: number, tee: string): t is TaskInfo {
  if (!t || t.attempt !== attempt || (t.status !== 'seeded' && t.status !== 'claimed')) return false;
  return (t.teeKinds as readonly string[]).includes(tee);
}

/** Whether a dataset (null: not registered) lets a node of `region` run it. */
export function regionAllows(
  ds: { policy: { allowedRegions: readonly string[] } } | null,
  region: string,
): boolean {
  return ds !== null && (ds.policy.allowedRegions.length === 0 || ds.policy.allowedRegions.includes(region));
}

/**
 * Whether a task's windows are within the node's bounds: enough evidence window to create the
 * enclave and commit, a run window no longer than the node keeps an enclave for.
 */
export function windowsWithinBounds(
  windows: { evidence: number; run: number },
  bounds: Pick<NodeConfig, 'minEvidenceWindow' | 'maxRunWindow'>,
): boolean {
  return windows.evidence >= bounds.minEvidenceWindow && windows.run <= bounds.maxRunWindow;
}

/** The chain time at which claim round `round` opens (the claim window split in CLAIM_ROUNDS). */
export function claimRoundOpensAt(
  t: { deadline: number; windows: { claim: number } },
  round: number,
): number {
  const window = t.windows.claim;
  return t.deadline - window + Math.ceil((round * window) / CLAIM_ROUNDS);
}

export type ClaimTiming = { kind: 'closed' } | { kind: 'wait'; seconds: number } | { kind: 'now' };

/** Whether this node's claim round (from firstClaimRound, ≥ 0) is open at `now`, to come, or over. */
export function claimTiming(
  t: { deadline: number; windows: { claim: number } },
  round: number,
  now: number,
): ClaimTiming {
  if (now >= t.deadline) return { kind: 'closed' };
  const opensAt = claimRoundOpensAt(t, round);
  return now < opensAt ? { kind: 'wait', seconds: opensAt - now } : { kind: 'now' };
}

/**
 * How a claim or vote transaction that failed is recorded: a revert is final (`reverted`); a
 * retryable failure (the chain or a peer unavailable: it may or may not have gone out) leaves
 * the intent in place (`retry`), so the reconcile looks it up on chain and sends it again while
 * the attempt takes it; anything else cannot succeed later (`failed`).
 */
export function sendFailure(code: string): 'reverted' | 'retry' | 'failed' {
  if (code === 'CHAIN_REVERTED') return 'reverted';
  return isRetryable(code) ? 'retry' : 'failed';
}

// --- the executor's reconcile ---------------------------------------------------------------

/** A claim intent left by a crash: resumed while its attempt takes claims, failed once it does not. */
export function claimIntentStep(
  t: TaskInfo | null,
  attempt: number,
  now: number,
): 'resume' | 'fail' | 'wait' {
  if (!t) return 'wait';
  if (t.attempt === attempt && (t.status === 'seeded' || t.status === 'claimed') && now <= t.deadline) {
    return 'resume';
  }
  return 'fail';
}

/**
 * A confirmed claim without evidence, on the cached row: wait (claim window open, or not yet
 * decided), commit the evidence (this node won and the claim window closed), or read the task
 * again to settle it (it looks lost).
 */
export function evidenceStep(
  t: TaskInfo | null,
  attempt: number,
  me: string,
  now: number,
): 'wait' | 'commit' | 'recheck' {
  if (!t) return 'wait';
  if (t.attempt === attempt && t.status === 'seeded') return 'wait';
  if (t.attempt === attempt && t.status === 'claimed' && same(t.executor, me)) {
    return now <= t.deadline ? 'wait' : 'commit';
  }
  return 'recheck';
}

/**
 * A claim that looked lost, on a fresh row: still open (wait), committed (its evidence got the
 * attempt past `claimed` before the commitment was recorded), or lost (another claimant won, or
 * its stage closed).
 */
export function settleClaim(
  t: TaskInfo | null,
  attempt: number,
  me: string,
  hasEvidence: boolean,
): 'wait' | 'committed' | 'lost' {
  if (!t) return 'wait';
  const won = same(t.executor, me);
  if (t.attempt === attempt && (t.status === 'seeded' || (t.status === 'claimed' && won))) return 'wait';
  if (hasEvidence && won && t.attempt === attempt) return 'committed';
  return 'lost';
}

export type EnclaveStep =
  | { kind: 'destroy' }
  | { kind: 'wait' }
  | { kind: 'run' }
  | { kind: 'abandon'; why: 'keys-late' | 'keys-undelivered'; cause: string };

/**
 * What becomes of a live enclave at a reconcile. Its attempt ended (another attempt, or a stage
 * where no enclave is needed): destroy it. Attested with keys still missing `keysWaitSeconds`
 * after the node first saw it attested (`attestedSince`): abandon (an owner that never releases
 * cannot pin it). Running with a key released on chain but not delivered, within
 * KEYS_WAIT_MARGIN_SECONDS of the run deadline: abandon rather than miss the receipt. Running
 * otherwise: (re)start the run. Else wait.
 */
export function enclaveStep(p: {
  task: TaskInfo | null;
  attempt: number;
  /** This node's address: an enclave of an attempt another node holds is destroyed. */
  me: string;
  now: number;
  attestedSince: number;
  missing: readonly string[];
  keysWaitSeconds: number;
}): EnclaveStep {
  const t = p.task;
  if (!t || t.attempt !== p.attempt || !ENCLAVE_STAGES.has(t.status)) return { kind: 'destroy' };
  // An enclave prepared while the claim window runs (§11.3) whose claim was displaced by a
  // better one: it will never be the attempt's, so it goes at once.
  if (!same(t.executor, p.me)) return { kind: 'destroy' };
  if (t.status === 'attested') {
    if (p.now - p.attestedSince >= p.keysWaitSeconds && p.missing.length > 0) {
      return {
        kind: 'abandon',
        why: 'keys-late',
        cause: `ENCLAVE_KEYS_MISSING: no key within ${p.keysWaitSeconds} s of the attestation: ${p.missing.join(', ')}`,
      };
    }
    return { kind: 'wait' };
  }
  if (t.status === 'running') {
    if (p.missing.length > 0 && p.now >= t.deadline - KEYS_WAIT_MARGIN_SECONDS) {
      return {
        kind: 'abandon',
        why: 'keys-undelivered',
        cause: `ENCLAVE_KEYS_MISSING: released on chain but not delivered: ${p.missing.join(', ')}`,
      };
    }
    return { kind: 'run' };
  }
  return { kind: 'wait' };
}

/**
 * An attempt found at start with evidence from this node but no result (its enclave died with
 * the previous process): forgotten once it is not this node's live attempt, abandoned once
 * attested or running (§13.8), else waited on.
 */
export function orphanStep(t: TaskInfo | null, attempt: number, me: string): 'drop' | 'abandon' | 'wait' {
  if (!t || t.attempt !== attempt || !same(t.executor, me) || !ENCLAVE_STAGES.has(t.status)) return 'drop';
  return t.status === 'attested' || t.status === 'running' ? 'abandon' : 'wait';
}

/**
 * An abandonment intent: wait while the attempt is still being judged; lost when the attempt is
 * not this node's, not attested or running, or past its deadline; else send it.
 */
export function abandonStep(
  t: TaskInfo | null,
  attempt: number,
  me: string,
  now: number,
): 'wait' | 'lost' | 'send' {
  const mine = t !== null && t.attempt === attempt && same(t.executor, me);
  if (mine && (t.status === 'claimed' || t.status === 'attesting')) return 'wait';
  if (!t || !mine || (t.status !== 'attested' && t.status !== 'running') || now > t.deadline) return 'lost';
  return 'send';
}

/** An abandonment that failed: a chain that did not answer keeps the intent; anything else reverted. */
export function abandonFailure(code: string): 'reverted' | 'retry' {
  return code === 'CHAIN_UNAVAILABLE' ? 'retry' : 'reverted';
}

/** A receipt intent at a reconcile: post it while the attempt runs; confirmed once the task completed. */
export function receiptStep(
  t: TaskInfo | null,
  attempt: number,
  receiptStatus: string | null | undefined,
): 'post' | 'confirm' | 'none' {
  if (!t || t.attempt !== attempt || receiptStatus !== 'intent') return 'none';
  if (t.status === 'running') return 'post';
  if (t.status === 'completed') return 'confirm';
  return 'none';
}

/** A receipt that failed: a revert is final; anything else keeps the intent for the next tick. */
export function receiptFailure(code: string): 'reverted' | 'retry' {
  return code === 'CHAIN_REVERTED' ? 'reverted' : 'retry';
}

/**
 * The time limit of an app's run, seconds: what the run window leaves (running: the fixed
 * deadline; attested, the last release not yet recorded: at least max(runWindow, minRunTime),
 * §12) less RECEIPT_MARGIN_SECONDS, at most `maxSeconds`. Throws ENCLAVE_LIMIT_TIME when that
 * leaves less than a second.
 */
export function runSeconds(t: TaskInfo, now: number, minRunTime: number, maxSeconds: number): number {
  const left = t.status === 'running' ? t.deadline - now : Math.max(t.windows.run, minRunTime);
  const seconds = Math.min(left - RECEIPT_MARGIN_SECONDS, maxSeconds);
  if (seconds < 1) {
    throw new FerryError('ENCLAVE_LIMIT_TIME', 'the run window leaves no time to run the app', {
      hints: [
        `${left} s left before the run deadline; ${RECEIPT_MARGIN_SECONDS} s are kept to post the receipt`,
      ],
    });
  }
  return seconds;
}

/**
 * A run that failed: rethrown when the node is stopping (the enclave dies with the process; the
 * next start abandons the attempt); retried when the chain could not be read before the enclave
 * got a key (nothing spent); else the attempt is abandoned.
 */
export function runFailure(
  code: string,
  p: { stopping: boolean; planned: boolean },
): 'rethrow' | 'retry' | 'abandon' {
  if (p.stopping) return 'rethrow';
  if (code === 'CHAIN_UNAVAILABLE' && !p.planned) return 'retry';
  return 'abandon';
}

/** The assets of an attempt whose sealed key has not been delivered (`app 1`, `dataset 2`). */
export function missingKeys(
  t: Pick<TaskInfo, 'appId' | 'datasetIds'>,
  delivered: readonly { assetKind: string; assetId: bigint }[],
): string[] {
  const has = (kind: string, id: bigint) => delivered.some((d) => d.assetKind === kind && d.assetId === id);
  return [
    ...(has('app', t.appId) ? [] : [`app ${t.appId}`]),
    ...t.datasetIds.filter((d) => !has('dataset', d)).map((d) => `dataset ${d}`),
  ];
}

// --- the verifier's reconcile ---------------------------------------------------------------

/** An attempt recorded to judge: retried while attesting and not voted; dropped otherwise. */
export function judgeStep(
  t: TaskInfo | null,
  attempt: number,
  vote: { status: string } | null,
): 'retry' | 'drop' {
  if (!t || t.attempt !== attempt || t.status !== 'attesting' || (vote && vote.status !== 'intent'))
    return 'drop';
  return 'retry';
}

/** A vote intent left by a crash: resumed while its attempt is attesting, failed once it is not. */
export function voteIntentStep(t: TaskInfo | null, attempt: number): 'resume' | 'fail' | 'wait' {
  if (!t) return 'wait';
  return t.attempt === attempt && t.status === 'attesting' && t.executor ? 'resume' : 'fail';
}

/** Whether a verifier judges an attempt at all: not its own executor's, and not voted already. */
export function judgeable(p: { executor: string; me: string; prior: { status: string } | null }): boolean {
  return !same(p.executor, p.me) && !(p.prior && p.prior.status !== 'intent');
}

// --- every node -----------------------------------------------------------------------------

/** The last heartbeat to count from when none is known: the registry's, else now. */
export function knownHeartbeat(me: { lastHeartbeat: number } | null, now: number): number {
  return me ? Math.max(me.lastHeartbeat, 1) : now;
}

/** Whether a heartbeat is due. */
export function heartbeatDue(now: number, last: number): boolean {
  return now - last >= HEARTBEAT_EVERY_SECONDS;
}

/**
 * Jailed is not forever (§11.1): leave jail once it has ended; while jailed, look again when it
 * ends; not jailed, look again after JAIL_CHECK_EVERY_SECONDS.
 */
export function jailStep(
  me: { status: string; jailedUntil: number } | null,
  now: number,
): { kind: 'unjail' } | { kind: 'check'; at: number } {
  if (me?.status === 'jailed') {
    return now >= me.jailedUntil ? { kind: 'unjail' } : { kind: 'check', at: me.jailedUntil };
  }
  return { kind: 'check', at: now + JAIL_CHECK_EVERY_SECONDS };
}

/** An unjail that failed: a chain that did not answer is retried; anything else waits an hour. */
export function unjailFailure(code: string, now: number): { kind: 'retry' } | { kind: 'check'; at: number } {
  return code === 'CHAIN_UNAVAILABLE'
    ? { kind: 'retry' }
    : { kind: 'check', at: now + HEARTBEAT_EVERY_SECONDS };
}

/** The chain TEE kind of a node's `tee`: a `vm` node's enclaves give tpm2 evidence (§17.5). */
export function chainTeeKind(tee: string): string {
  return tee === 'vm' ? 'tpm2' : tee;
}

/** The enclave backend of a node's TEE kind, from its configuration; ATTESTATION_BACKEND_UNAVAILABLE if none. */
export function backendSpec(
  c: Pick<
    NodeConfig,
    'tee' | 'simAttester' | 'tpm2Tcti' | 'tpm2AkHandle' | 'tpm2Activation' | 'tpm2EkCert' | 'tpm2EkChain'
  >,
): BackendSpec {
  if (c.tee === 'sim' && c.simAttester) return { kind: 'sim', attesterFile: c.simAttester };
  if (c.tee === 'tpm2' && c.tpm2Tcti) {
    return {
      kind: 'tpm2',
      tcti: c.tpm2Tcti,
      akHandle: c.tpm2AkHandle,
      activationRecordFile: c.tpm2Activation,
      ekCertFile: c.tpm2EkCert,
      ekChainFiles: c.tpm2EkChain.length > 0 ? [...c.tpm2EkChain] : undefined,
    };
  }
  throw new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', `this node cannot create ${c.tee} enclaves`, {
    hints: ['sim needs --sim-attester FILE; tpm2 needs --tpm2-tcti TCTI (and a provisioned AK)'],
  });
}
