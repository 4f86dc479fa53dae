/**
 * The stages of a task as the chain sees them (docs/protocol.md §12), defined once: whether a
 * status is final, which deadline closes the current stage and when `timeout` may be called
 * (the rules of `Tasks.timeout`), which stage each Tasks event marks, and the words for it.
 * Pure: the node's stage timeouts, the requester's wait (`src/requester`), `ferry task show`
 * and the dashboard's timeline all read a task through these functions.
 */
import {
  ATTEMPT_END_REASONS,
  type FerryEvent,
  FRAUD_KINDS,
  TASK_STATES,
  type TaskInfo,
  type TaskState,
} from '../chain/index.ts';

// --- statuses and deadlines -------------------------------------------------------------

/** The statuses after which nothing happens to a task (settled or refunded). */
export const FINAL_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['completed', 'failed', 'expired']);

/** Whether a task in `status` is final: no event, timeout or vote changes it any more. */
export function isFinal(status: TaskState): boolean {
  return FINAL_STATES.has(status);
}

/**
 * Which deadline closes a stage (§12): the claim deadline (`seeded`), the claim deadline plus
 * the evidence window (`claimed`), the vote deadline (`attesting`), the run deadline
 * (`attested`, `running`), or the task's expiry (`created` and `rejected`, which wait for a
 * seed, and any stage whose own deadline lies after the expiry).
 */
export type DeadlineKind = 'claim' | 'evidence' | 'vote' | 'run' | 'expiry';

export type StageDeadline = { kind: DeadlineKind /** Unix seconds (chain time). */; at: number };

/** The fields of a task the deadline rules read. */
export type TaskClock = Pick<TaskInfo, 'status' | 'deadline' | 'expiresAt'> & {
  windows: Pick<TaskInfo['windows'], 'evidence'>;
};

/**
 * The deadline of the task's current stage: after it (chain time strictly greater) anyone may
 * call `timeout`, which ends the attempt or expires the task. Null for a final task. The
 * expiry caps every stage: when it comes first, it is the deadline (kind `expiry`).
 */
export function stageDeadline(t: TaskClock): StageDeadline | null {
  const expiry: StageDeadline = { kind: 'expiry', at: t.expiresAt };
  let own: StageDeadline;
  switch (t.status) {
    case 'completed':
    case 'failed':
    case 'expired':
      return null;
    case 'created':
    case 'rejected':
      return expiry;
    case 'seeded':
      own = { kind: 'claim', at: t.deadline };
      break;
    case 'claimed':
      own = { kind: 'evidence', at: t.deadline + t.windows.evidence };
      break;
    case 'attesting':
      own = { kind: 'vote', at: t.deadline };
      break;
    case 'attested':
    case 'running':
      own = { kind: 'run', at: t.deadline };
      break;
    default:
      throw new TypeError(`status: expected one of ${TASK_STATES.join(', ')}, got ${String(t.status)}`);
  }
  return own.at <= expiry.at ? own : expiry;
}

/**
 * The chain time after which the current stage may be timed out (`stageDeadline(t).at`);
 * +Infinity for a final task (nothing is ever due).
 */
export function stageDue(t: TaskClock): number {
  return stageDeadline(t)?.at ?? Number.POSITIVE_INFINITY;
}

/** Whether `timeout(taskId)` succeeds at chain time `now` (else it reverts TooEarly or WrongState). */
export function timeoutDue(t: TaskClock, now: number): boolean {
  return now > stageDue(t);
}

// --- events and stages ------------------------------------------------------------------

/** The stages Tasks events mark in a task's timeline, named as the dashboard shows them. */
export const TASK_STAGES = [
  'created',
  'seeded',
  'reanchored',
  'claimed',
  'evidence',
  'vote',
  'attested',
  'keyReleased',
  'running',
  'abandoned',
  'fraud',
  'attempt-ended',
  'rejected',
  'completed',
  'failed',
  'expired',
] as const;
export type TaskStage = (typeof TASK_STAGES)[number];

const STAGE_OF_EVENT: Record<string, TaskStage> = {
  TaskCreated: 'created',
  TaskSeeded: 'seeded',
  SeedReanchored: 'reanchored',
  TaskClaimed: 'claimed',
  EvidenceCommitted: 'evidence',
  VoteCast: 'vote',
  TaskAttested: 'attested',
  KeyReleased: 'keyReleased',
  AttemptAbandoned: 'abandoned',
  FraudProven: 'fraud',
  AttemptEnded: 'attempt-ended',
  TaskCompleted: 'completed',
  TaskFailed: 'failed',
  TaskExpired: 'expired',
};

/** An event as the stage rules read it (a FerryEvent, or its name and decoded arguments). */
export type StageEventInput = Pick<FerryEvent, 'eventName' | 'args'>;

/**
 * The stage a Tasks event marks, or null when it marks none: `StatusChanged` marks `running`
 * (every key released) and `rejected` (an attempt ended, the next awaits its seed) only, the
 * other statuses having their own events; payments (`Paid`, `Credited`, `Withdrawn`) and the
 * other contracts' events mark none.
 */
export function stageOfEvent(e: StageEventInput): TaskStage | null {
  if (e.eventName === 'StatusChanged') {
    const status = TASK_STATES[Number(e.args.status)];
    return status === 'running' || status === 'rejected' ? status : null;
  }
  return Object.hasOwn(STAGE_OF_EVENT, e.eventName) ? STAGE_OF_EVENT[e.eventName] : null;
}

/** An attempt's end reason by its on-chain code (AttemptEnded.reason), or null for an unknown code. */
export function attemptEndReason(code: unknown): (typeof ATTEMPT_END_REASONS)[number] | null {
  const n = Number(code);
  return Number.isInteger(n) ? (ATTEMPT_END_REASONS[n] ?? null) : null;
}

/** What a fraud proof proved by its on-chain code (FraudProven.fraud, 1-based), or null. */
export function fraudKind(code: unknown): (typeof FRAUD_KINDS)[number] | null {
  const n = Number(code);
  return Number.isInteger(n) && n >= 1 ? (FRAUD_KINDS[n - 1] ?? null) : null;
}

/**
 * One Tasks event in words, as `ferry task show` lists it (e.g. `pass vote by 0x…, 3 seat(s)`);
 * the event name for an event with no words of its own.
 */
export function describeTaskEvent(e: StageEventInput): string {
  const a = e.args;
  switch (e.eventName) {
    case 'TaskCreated':
      return `created by ${a.requester}, fee ${a.fee} wei`;
    case 'StatusChanged':
      return `status ${TASK_STATES[Number(a.status)]}`;
    case 'TaskSeeded':
      return `seed ${String(a.seed).slice(0, 18)}…`;
    case 'TaskClaimed':
      return `claimed by ${a.executor}${a.best ? ' (best so far)' : ''}`;
    case 'EvidenceCommitted':
      return `evidence ${String(a.evidenceHash).slice(0, 18)}… at ${a.evidenceLocation}`;
    case 'VoteCast':
      return `${a.pass ? 'pass' : 'fail'} vote by ${a.verifier}, ${a.seats} seat(s)`;
    case 'TaskAttested':
      return `attested: ${a.passSeats} pass / ${a.failSeats} fail seats`;
    case 'KeyReleased':
      return `key of asset ${a.assetIndex} released by ${a.owner}`;
    case 'TaskCompleted':
      return `receipt posted; result at ${a.resultLocation}`;
    case 'AttemptEnded':
      return `attempt ended: ${ATTEMPT_END_REASONS[Number(a.reason)]}${a.slashed ? `, executor slashed ${a.slashed} wei` : ''}`;
    case 'AttemptAbandoned':
      return `the executor abandoned the attempt: ${a.cause}`;
    case 'FraudProven':
      return `fraud proven (${fraudKind(a.fraud) ?? `kind ${a.fraud}`}): ${a.liar} lied, slashed ${a.slashed} wei; challenger ${a.challenger}${a.restored ? '; its victim restored' : ''}`;
    case 'TaskFailed':
      return `failed after ${a.attempts} attempt(s); refund ${a.refund} wei`;
    case 'Paid':
      return `paid ${a.amount} wei to ${a.account}`;
    case 'Credited':
      return `credited ${a.amount} wei to ${a.account}`;
    case 'TaskExpired':
      return `expired; refund ${a.refund} wei`;
    default:
      return e.eventName;
  }
}

// --- the requester's progress -------------------------------------------------------------

/**
 * The stages a requester sees its task go through, in order (the `stagesMs` keys of
 * `ferry task run --wait --json`): `done` is the requester's own last step (result fetched,
 * verified, decrypted), the others are marked by events.
 */
export const PROGRESS_STAGES = [
  'seeded',
  'claimed',
  'evidence',
  'votes',
  'keysReleased',
  'running',
  'receipt',
  'done',
] as const;
export type ProgressStage = (typeof PROGRESS_STAGES)[number];

/** A line of the requester's progress. */
export type ProgressEvent = {
  stage: ProgressStage | 'attempt-ended';
  attempt: number;
  /** Milliseconds since the task was created (observed by the follower). */
  ms: number;
  detail: string;
};

const PROGRESS_OF_STAGE: Partial<Record<TaskStage, ProgressStage | 'attempt-ended'>> = {
  seeded: 'seeded',
  claimed: 'claimed',
  evidence: 'evidence',
  attested: 'votes',
  keyReleased: 'keysReleased',
  running: 'running',
  completed: 'receipt',
  abandoned: 'attempt-ended',
  'attempt-ended': 'attempt-ended',
};

/**
 * The progress line an event makes, or null when it makes none (votes are summed up by
 * `TaskAttested`; a fraud proof that ends the attempt shows as its AttemptEnded, reason fraud).
 * `passVoters` counts the attempt's pass votes seen so far.
 */
export function progressOfEvent(
  e: StageEventInput,
  task: Pick<TaskInfo, 'tau' | 'threshold'>,
  passVoters: number,
): { stage: ProgressStage | 'attempt-ended'; detail: string } | null {
  const stage = stageOfEvent(e);
  const progress = stage ? PROGRESS_OF_STAGE[stage] : undefined;
  if (!progress) return null;
  const a = e.args;
  switch (e.eventName) {
    case 'TaskSeeded':
      return { stage: progress, detail: `seed ${String(a.seed).slice(0, 12)}…` };
    case 'TaskClaimed':
      return { stage: progress, detail: `by ${String(a.executor).slice(0, 10)}…` };
    case 'EvidenceCommitted':
      return { stage: progress, detail: `hash ${String(a.evidenceHash).slice(0, 12)}…` };
    case 'TaskAttested':
      return {
        stage: progress,
        detail: `${passVoters} verifier(s) voted pass: ${a.passSeats} of ${task.tau} seats (threshold ${task.threshold})`,
      };
    case 'KeyReleased':
      return { stage: progress, detail: `asset ${a.assetIndex} by ${String(a.owner).slice(0, 10)}…` };
    case 'StatusChanged':
      return { stage: progress, detail: 'every key released; the enclave runs' };
    case 'TaskCompleted':
      return { stage: progress, detail: `result ${String(a.resultHash).slice(0, 12)}…` };
    case 'AttemptEnded':
      return { stage: progress, detail: attemptEndReason(a.reason) ?? `reason ${a.reason}` };
    case 'AttemptAbandoned':
      return { stage: progress, detail: `abandoned by the executor: ${a.cause}` };
    default:
      return null;
  }
}

/**
 * The requester's progress, folded event by event: each stage once per attempt (the first
 * event marking it), the times restarting with each new attempt, every attempt's end kept.
 * `timeline` holds every line made; `stagesMs` the latest attempt's stage times.
 */
export class ProgressTimeline {
  readonly timeline: ProgressEvent[] = [];
  stagesMs: Partial<Record<ProgressStage, number>> = {};
  readonly #events: StageEventInput[] = [];
  #attempt: number;

  /** `attempt`: the task's attempt when following starts. */
  constructor(attempt: number) {
    this.#attempt = attempt;
  }

  /**
   * Adds an event of the task (in chain order) seen `ms` after its creation; returns the
   * progress line it makes, or null (no stage, or a stage of this attempt already shown).
   */
  add(e: StageEventInput, task: Pick<TaskInfo, 'tau' | 'threshold'>, ms: number): ProgressEvent | null {
    this.#events.push(e);
    const passVoters = this.#events.filter(
      (v) => v.eventName === 'VoteCast' && v.args.pass === true && v.args.attempt === e.args.attempt,
    ).length;
    const s = progressOfEvent(e, task, passVoters);
    if (!s) return null;
    const attempt = Number(e.args.attempt);
    if (attempt !== this.#attempt) {
      this.#attempt = attempt;
      this.stagesMs = {};
    }
    if (s.stage !== 'attempt-ended' && this.stagesMs[s.stage] !== undefined) return null;
    if (s.stage !== 'attempt-ended') this.stagesMs[s.stage] = ms;
    const line: ProgressEvent = { stage: s.stage, attempt, ms, detail: s.detail };
    this.timeline.push(line);
    return line;
  }
}
