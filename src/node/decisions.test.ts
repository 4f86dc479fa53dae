// Table tests of the node's decisions (decisions.ts): pure, no chain, no state.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TaskInfo } from '../chain/index.ts';
import { isFerryError } from '../kernel/index.ts';
import { CLAIM_ROUNDS } from '../protocol/index.ts';
import {
  abandonFailure,
  abandonStep,
  attemptKey,
  awaitsSeed,
  backendSpec,
  cacheEntry,
  cacheFresh,
  claimIntentStep,
  claimOpen,
  claimRoundOpensAt,
  claimTiming,
  dueFloorAfterChange,
  DUTY_FALLBACK_SECONDS,
  DUTY_MAX_RANK,
  dutyDelayMs,
  dutyDue,
  dutyRank,
  enclaveStep,
  eventSteps,
  evidenceStep,
  HEARTBEAT_EVERY_SECONDS,
  heartbeatDue,
  JAIL_CHECK_EVERY_SECONDS,
  jailStep,
  judgeable,
  judgeStep,
  KEYS_WAIT_MARGIN_SECONDS,
  knownHeartbeat,
  liveStep,
  MIN_STAGE_SECONDS,
  missingKeys,
  orphanStep,
  RECEIPT_MARGIN_SECONDS,
  receiptFailure,
  receiptStep,
  regionAllows,
  runFailure,
  runSeconds,
  sendFailure,
  settleClaim,
  stageDue,
  unjailFailure,
  voteIntentStep,
  windowsWithinBounds,
} from './decisions.ts';

const ME = '0x00000000000000000000000000000000000000aa';
const OTHER = '0x00000000000000000000000000000000000000bb';

/** A task row at attempt 1; fields not given are those of a seeded task of this node's kind. */
function task(over: Partial<TaskInfo> = {}): TaskInfo {
  return taskRow(over);
}

function taskRow(over: Partial<TaskInfo> = {}): TaskInfo {
  return {
    taskId: 7n,
    requester: OTHER,
    status: 'seeded',
    attempt: 1,
    appId: 1n,
    datasetIds: [2n, 3n],
    tau: 1,
    threshold: 1,
    teeKinds: ['sim'],
    executor: null,
    deadline: 1000,
    passSeats: 0,
    failSeats: 0,
    passVoters: 0,
    releasedMask: 0,
    keysEverReleased: false,
    anchorBlock: 1n,
    createdBlock: 1n,
    fee: 0n,
    expiresAt: 5000,
    windows: { claim: 60, evidence: 30, vote: 30, run: 120 },
    totalVerifierStake: 1n,
    totalExecutorStake: 1n,
    claimTarget: 1,
    voterReward: 0n,
    seed: `0x${'11'.repeat(32)}`,
    bestOutput: `0x${'00'.repeat(32)}`,
    evidenceHash: `0x${'00'.repeat(32)}`,
    receiptHash: `0x${'00'.repeat(32)}`,
    ...over,
  } as TaskInfo;
}

/** Runs `fn` on each row's input and checks its expected output, naming the row on failure. */
function table<I>(rows: [name: string, input: I, expected: unknown][], fn: (input: I) => unknown): void {
  for (const [name, input, expected] of rows) assert.deepEqual(fn(input), expected, name);
}

test('stageDue: expiry before the seed; deadline plus the evidence window while claimed; capped by expiry', () => {
  table(
    [
      ['created: the expiry', task({ status: 'created' }), 5000],
      ['rejected: the expiry', task({ status: 'rejected' }), 5000],
      ['seeded: the claim deadline', task({ status: 'seeded' }), 1000],
      ['claimed: deadline + evidence window', task({ status: 'claimed' }), 1030],
      ['attesting: the vote deadline', task({ status: 'attesting', deadline: 2000 }), 2000],
      ['running past expiry: the expiry', task({ status: 'running', deadline: 6000 }), 5000],
      ['claimed near expiry: the expiry', task({ status: 'claimed', deadline: 4990 }), 5000],
    ],
    stageDue,
  );
});

test('the task cache: a row is reused until its stage is due; unknown and final rows until an event', () => {
  const seeded = cacheEntry(task());
  table(
    [
      ['nothing cached', { c: undefined, now: 0 }, false],
      ['before the stage is due', { c: seeded, now: 1000 }, true],
      ['once due', { c: seeded, now: 1001 }, false],
      ['unknown task', { c: cacheEntry(null), now: 1e12 }, true],
      ['final task', { c: cacheEntry(task({ status: 'completed' })), now: 1e12 }, true],
    ],
    ({ c, now }) => cacheFresh(c, now),
  );
  assert.equal(cacheEntry(null).due, Number.MAX_SAFE_INTEGER);
});

test('watched tasks: dropped when gone or final, timed out once due, else waited on', () => {
  table(
    [
      ['gone', { t: null, now: 0 }, 'drop'],
      ['completed', { t: task({ status: 'completed' }), now: 0 }, 'drop'],
      ['failed', { t: task({ status: 'failed' }), now: 0 }, 'drop'],
      ['expired', { t: task({ status: 'expired' }), now: 0 }, 'drop'],
      ['at the deadline', { t: task(), now: 1000 }, 'wait'],
      ['past the deadline', { t: task(), now: 1001 }, 'timeout'],
    ],
    ({ t, now }) => liveStep(t, now),
  );
  table(
    [
      ['created', task({ status: 'created' }), true],
      ['rejected (next attempt)', task({ status: 'rejected' }), true],
      ['seeded', task(), false],
      ['gone', null, false],
    ],
    awaitsSeed,
  );
});

test('events: each names its steps, by role; an event without a task id, or unknown, asks nothing', () => {
  const both = ['executor', 'verifier'];
  const ev = (eventName: string, args: Record<string, unknown>) => ({ eventName, args });
  table(
    [
      [
        'TaskCreated, executor: forget, watch, seed',
        { e: ev('TaskCreated', { taskId: 7n }), roles: both },
        [
          { kind: 'forget', taskId: 7n },
          { kind: 'watch', taskId: 7n },
          { kind: 'seed', taskId: 7n },
        ],
      ],
      [
        'TaskCreated, verifier: forget, watch (every node enforces deadlines)',
        { e: ev('TaskCreated', { taskId: 7n }), roles: ['verifier'] },
        [
          { kind: 'forget', taskId: 7n },
          { kind: 'watch', taskId: 7n },
        ],
      ],
      [
        'AttemptEnded, executor: seed the next attempt',
        { e: ev('AttemptEnded', { taskId: 7n, attempt: 1n }), roles: ['executor'] },
        [
          { kind: 'forget', taskId: 7n },
          { kind: 'seed', taskId: 7n },
        ],
      ],
      [
        'TaskSeeded, executor: claim',
        { e: ev('TaskSeeded', { taskId: 7n, attempt: 2n }), roles: ['executor'] },
        [
          { kind: 'forget', taskId: 7n },
          { kind: 'claim', taskId: 7n, attempt: 2 },
        ],
      ],
      [
        'TaskSeeded, verifier: no claim',
        { e: ev('TaskSeeded', { taskId: 7n, attempt: 2n }), roles: ['verifier'] },
        [{ kind: 'forget', taskId: 7n }],
      ],
      [
        'EvidenceCommitted, verifier: judge',
        {
          e: ev('EvidenceCommitted', {
            taskId: 7n,
            attempt: 1n,
            executor: OTHER,
            evidenceLocation: 'http://x/e',
          }),
          roles: ['verifier'],
        },
        [
          { kind: 'forget', taskId: 7n },
          { kind: 'judge', taskId: 7n, attempt: 1, executor: OTHER, location: 'http://x/e' },
        ],
      ],
      [
        'EvidenceCommitted, executor only: no judging',
        { e: ev('EvidenceCommitted', { taskId: 7n, attempt: 1n }), roles: ['executor'] },
        [{ kind: 'forget', taskId: 7n }],
      ],
      [
        'VoteCast: forget only',
        { e: ev('VoteCast', { taskId: 7n }), roles: both },
        [{ kind: 'forget', taskId: 7n }],
      ],
      [
        'AttemptEnded of my attempt, rejected: seed, and look for false votes',
        {
          e: ev('AttemptEnded', { taskId: 7n, attempt: 1n, executor: ME.toUpperCase(), reason: 3 }),
          roles: ['executor'],
        },
        [
          { kind: 'forget', taskId: 7n },
          { kind: 'seed', taskId: 7n },
          { kind: 'challenge-votes', taskId: 7n, attempt: 1 },
        ],
      ],
      [
        'AttemptEnded of my attempt, keys missed: look for false votes',
        { e: ev('AttemptEnded', { taskId: 7n, attempt: 2n, executor: ME, reason: 6 }), roles: both },
        [
          { kind: 'forget', taskId: 7n },
          { kind: 'seed', taskId: 7n },
          { kind: 'challenge-votes', taskId: 7n, attempt: 2 },
        ],
      ],
      [
        'AttemptEnded of my attempt, receipt missed (my own fault): no challenge',
        { e: ev('AttemptEnded', { taskId: 7n, attempt: 1n, executor: ME, reason: 5 }), roles: ['executor'] },
        [
          { kind: 'forget', taskId: 7n },
          { kind: 'seed', taskId: 7n },
        ],
      ],
      [
        "AttemptEnded of another node's attempt: no challenge",
        {
          e: ev('AttemptEnded', { taskId: 7n, attempt: 1n, executor: OTHER, reason: 3 }),
          roles: ['executor'],
        },
        [
          { kind: 'forget', taskId: 7n },
          { kind: 'seed', taskId: 7n },
        ],
      ],
      [
        "TaskClaimed, another node's best claim: check it",
        {
          e: ev('TaskClaimed', { taskId: 7n, attempt: 1n, executor: OTHER, best: true }),
          roles: ['executor'],
        },
        [
          { kind: 'forget', taskId: 7n },
          { kind: 'check-claim', taskId: 7n, attempt: 1, claimant: OTHER },
        ],
      ],
      [
        'TaskClaimed, my own best claim, or a claim that is not best: nothing',
        { e: ev('TaskClaimed', { taskId: 7n, attempt: 1n, executor: ME, best: true }), roles: ['executor'] },
        [{ kind: 'forget', taskId: 7n }],
      ],
      [
        'TaskClaimed, a verifier: nothing',
        {
          e: ev('TaskClaimed', { taskId: 7n, attempt: 1n, executor: OTHER, best: true }),
          roles: ['verifier'],
        },
        [{ kind: 'forget', taskId: 7n }],
      ],
      [
        'StatusChanged to running, an executor: post the receipt if the result is here',
        { e: ev('StatusChanged', { taskId: 7n, attempt: 1n, status: 5 }), roles: ['executor'] },
        [
          { kind: 'forget', taskId: 7n },
          { kind: 'receipt', taskId: 7n, attempt: 1 },
        ],
      ],
      [
        'StatusChanged to attested, or to running for a verifier: nothing',
        { e: ev('StatusChanged', { taskId: 7n, attempt: 1n, status: 4 }), roles: ['executor'] },
        [{ kind: 'forget', taskId: 7n }],
      ],
      [
        'StatusChanged to running, a verifier: nothing',
        { e: ev('StatusChanged', { taskId: 7n, attempt: 1n, status: 5 }), roles: ['verifier'] },
        [{ kind: 'forget', taskId: 7n }],
      ],
      ['NodeRegistered (no task): nothing', { e: ev('NodeRegistered', { node: ME }), roles: both }, []],
      [
        'a task id that is not a bigint: nothing',
        { e: ev('TaskSeeded', { taskId: '7', attempt: 1n }), roles: both },
        [],
      ],
    ],
    ({ e, roles }) => eventSteps(e, roles, ME),
  );
});

test('claimOpen: the task at that attempt, seeded or claimed, asking for this TEE kind', () => {
  table(
    [
      ['seeded, sim', { t: task(), attempt: 1, tee: 'sim' }, true],
      [
        'claimed (later rounds may still claim)',
        { t: task({ status: 'claimed' }), attempt: 1, tee: 'sim' },
        true,
      ],
      ['another attempt', { t: task(), attempt: 2, tee: 'sim' }, false],
      ['attesting', { t: task({ status: 'attesting' }), attempt: 1, tee: 'sim' }, false],
      ['created', { t: task({ status: 'created' }), attempt: 1, tee: 'sim' }, false],
      ['another TEE kind', { t: task(), attempt: 1, tee: 'tpm2' }, false],
      ['gone', { t: null, attempt: 1, tee: 'sim' }, false],
    ],
    ({ t, attempt, tee }) => claimOpen(t, attempt, tee),
  );
});

test('regionAllows: no regions listed allows any; a listed region only its own; an unregistered dataset none', () => {
  const ds = (allowedRegions: string[]) => ({ policy: { allowedRegions } });
  table(
    [
      ['no restriction', { d: ds([]), region: 'DE' }, true],
      ['listed', { d: ds(['DE', 'FR']), region: 'DE' }, true],
      ['not listed', { d: ds(['FR']), region: 'DE' }, false],
      ['unregistered dataset', { d: null, region: 'DE' }, false],
    ],
    ({ d, region }) => regionAllows(d, region),
  );
});

test('windowsWithinBounds: a requester cannot make the node hold an enclave longer, or commit faster, than it allows', () => {
  const bounds = { minEvidenceWindow: 10, maxRunWindow: 3600 };
  table(
    [
      ['within', { evidence: 10, run: 3600 }, true],
      ['evidence window too short', { evidence: 9, run: 60 }, false],
      ['run window too long (an enclave pinned for a day)', { evidence: 30, run: 86_400 }, false],
    ],
    (w) => windowsWithinBounds(w, bounds),
  );
});

test('claim rounds: round r opens r/CLAIM_ROUNDS into the claim window; closed at the deadline', () => {
  const t = { deadline: 1000, windows: { claim: 60 } };
  assert.equal(claimRoundOpensAt(t, 0), 940);
  assert.equal(claimRoundOpensAt(t, CLAIM_ROUNDS), 1000);
  assert.equal(
    claimRoundOpensAt({ deadline: 1000, windows: { claim: 7 } }, 1),
    993 + Math.ceil(7 / CLAIM_ROUNDS),
  );
  const r1 = claimRoundOpensAt(t, 1);
  table(
    [
      ['round 0 at the window start', { round: 0, now: 940 }, { kind: 'now' }],
      ['round 1 before it opens', { round: 1, now: 940 }, { kind: 'wait', seconds: r1 - 940 }],
      ['round 1 when it opens', { round: 1, now: r1 }, { kind: 'now' }],
      ['at the deadline', { round: 0, now: 1000 }, { kind: 'closed' }],
      ['past the deadline', { round: 1, now: 2000 }, { kind: 'closed' }],
    ],
    ({ round, now }) => claimTiming(t, round, now),
  );
});

test('a failed claim, vote, receipt or abandonment: which failures are final', () => {
  table(
    [
      ['send: reverted', 'CHAIN_REVERTED', 'reverted'],
      [
        'send: the chain unavailable (it may have gone out): retried from the intent',
        'CHAIN_UNAVAILABLE',
        'retry',
      ],
      ['send: a bad argument can never succeed', 'INVALID_ARGUMENT', 'failed'],
    ],
    sendFailure,
  );
  table(
    [
      ['receipt: reverted is final', 'CHAIN_REVERTED', 'reverted'],
      ['receipt: unavailable is retried', 'CHAIN_UNAVAILABLE', 'retry'],
    ],
    receiptFailure,
  );
  table(
    [
      ['abandon: unavailable keeps the intent', 'CHAIN_UNAVAILABLE', 'retry'],
      ['abandon: a revert is final', 'CHAIN_REVERTED', 'reverted'],
      ['abandon: anything else is final', 'INTERNAL', 'reverted'],
    ],
    abandonFailure,
  );
});

test('claim intents after a crash: resumed while the attempt takes claims, failed once it does not', () => {
  table(
    [
      ['gone: nothing', { t: null, now: 0 }, 'wait'],
      ['seeded, in time', { t: task(), now: 1000 }, 'resume'],
      ['claimed, in time', { t: task({ status: 'claimed' }), now: 999 }, 'resume'],
      ['past the claim deadline', { t: task(), now: 1001 }, 'fail'],
      ['another attempt', { t: task({ attempt: 2 }), now: 0 }, 'fail'],
      ['attesting', { t: task({ status: 'attesting' }), now: 0 }, 'fail'],
    ],
    ({ t, now }) => claimIntentStep(t, 1, now),
  );
});

test('evidence for a claim: wait, commit once the claim window closed on our win, or settle on a fresh read', () => {
  table(
    [
      ['gone', { t: null, now: 0 }, 'wait'],
      ['seeded', { t: task(), now: 2000 }, 'wait'],
      ['won, claim window open', { t: task({ status: 'claimed', executor: ME }), now: 1000 }, 'wait'],
      ['won, claim window closed', { t: task({ status: 'claimed', executor: ME }), now: 1001 }, 'commit'],
      [
        'won, address in other case',
        { t: task({ status: 'claimed', executor: ME.toUpperCase() as `0x${string}` }), now: 1001 },
        'commit',
      ],
      ['another claimant leads', { t: task({ status: 'claimed', executor: OTHER }), now: 1001 }, 'recheck'],
      ['moved on', { t: task({ attempt: 2 }), now: 0 }, 'recheck'],
    ],
    ({ t, now }) => evidenceStep(t, 1, ME, now),
  );
  table(
    [
      ['gone', { t: null, ev: false }, 'wait'],
      ['still seeded', { t: task(), ev: false }, 'wait'],
      ['won and claimed', { t: task({ status: 'claimed', executor: ME }), ev: false }, 'wait'],
      [
        'our evidence got it to attesting',
        { t: task({ status: 'attesting', executor: ME }), ev: true },
        'committed',
      ],
      [
        'attesting without our evidence',
        { t: task({ status: 'attesting', executor: ME }), ev: false },
        'lost',
      ],
      ['another won', { t: task({ status: 'attesting', executor: OTHER }), ev: true }, 'lost'],
      ['another attempt, evidence of ours', { t: task({ attempt: 2, executor: ME }), ev: true }, 'lost'],
    ],
    ({ t, ev }) => settleClaim(t, 1, ME, ev),
  );
});

test('live enclaves: destroyed once their attempt ended; abandoned when keys do not come; run once they all did', () => {
  const base = {
    attempt: 1,
    me: ME,
    now: 1000,
    attestedSince: 1000,
    missing: [] as string[],
    keysWaitSeconds: 300,
  };
  const task = (over: Partial<TaskInfo> = {}) => taskRow({ executor: ME, ...over });
  const keysLate = {
    kind: 'abandon',
    why: 'keys-late',
    cause: 'ENCLAVE_KEYS_MISSING: no key within 300 s of the attestation: dataset 3',
  };
  const undelivered = {
    kind: 'abandon',
    why: 'keys-undelivered',
    cause: 'ENCLAVE_KEYS_MISSING: released on chain but not delivered: app 1, dataset 2',
  };
  const running = task({ status: 'running', deadline: 2000 });
  table(
    [
      ['gone', { ...base, task: null }, { kind: 'destroy' }],
      ['another attempt', { ...base, task: task({ attempt: 2, status: 'claimed' }) }, { kind: 'destroy' }],
      ['rejected', { ...base, task: task({ status: 'rejected' }) }, { kind: 'destroy' }],
      ['completed', { ...base, task: task({ status: 'completed' }) }, { kind: 'destroy' }],
      ['claimed: wait', { ...base, task: task({ status: 'claimed' }) }, { kind: 'wait' }],
      [
        'claimed, our claim displaced by a better one: destroyed at once',
        { ...base, task: task({ status: 'claimed', executor: OTHER }) },
        { kind: 'destroy' },
      ],
      [
        'attested for another executor: destroyed, never waits for keys',
        { ...base, task: task({ status: 'attested', executor: OTHER }) },
        { kind: 'destroy' },
      ],
      [
        'running for another executor: destroyed, never runs',
        { ...base, task: task({ status: 'running', executor: OTHER }) },
        { kind: 'destroy' },
      ],
      ['attesting: wait', { ...base, task: task({ status: 'attesting' }) }, { kind: 'wait' }],
      [
        'attested, keys missing, within the wait',
        { ...base, task: task({ status: 'attested' }), attestedSince: 701, missing: ['dataset 3'] },
        { kind: 'wait' },
      ],
      [
        'attested, keys missing past the wait',
        { ...base, task: task({ status: 'attested' }), attestedSince: 700, missing: ['dataset 3'] },
        keysLate,
      ],
      [
        'attested past the wait, every key in: wait for the release on chain',
        { ...base, task: task({ status: 'attested' }), attestedSince: 0 },
        { kind: 'wait' },
      ],
      ['running, every key in: run', { ...base, task: running }, { kind: 'run' }],
      [
        'running, a key missing, before the margin: run (keysArrived checks)',
        { ...base, task: running, now: 2000 - KEYS_WAIT_MARGIN_SECONDS - 1, missing: ['app 1', 'dataset 2'] },
        { kind: 'run' },
      ],
      [
        'running, a key missing, at the margin',
        { ...base, task: running, now: 2000 - KEYS_WAIT_MARGIN_SECONDS, missing: ['app 1', 'dataset 2'] },
        undelivered,
      ],
    ],
    enclaveStep,
  );
});

test('orphaned attempts: only this node’s live attempt is abandoned, and only once attested or running', () => {
  table(
    [
      ['gone', null, 'drop'],
      ['another attempt', task({ attempt: 2, status: 'attested', executor: ME }), 'drop'],
      [
        'another executor’s attempt is never abandoned as ours',
        task({ status: 'attested', executor: OTHER }),
        'drop',
      ],
      ['ended', task({ status: 'completed', executor: ME }), 'drop'],
      ['claimed', task({ status: 'claimed', executor: ME }), 'wait'],
      ['attesting', task({ status: 'attesting', executor: ME }), 'wait'],
      ['attested', task({ status: 'attested', executor: ME }), 'abandon'],
      ['running', task({ status: 'running', executor: ME }), 'abandon'],
    ],
    (t) => orphanStep(t, 1, ME),
  );
});

test('abandonments: wait while judged; lost unless ours and attested or running in time; else send', () => {
  table(
    [
      ['gone', { t: null, now: 0 }, 'lost'],
      ['claimed (judging ahead)', { t: task({ status: 'claimed', executor: ME }), now: 0 }, 'wait'],
      ['attesting', { t: task({ status: 'attesting', executor: ME }), now: 0 }, 'wait'],
      ['attested, in time', { t: task({ status: 'attested', executor: ME }), now: 1000 }, 'send'],
      ['running, in time', { t: task({ status: 'running', executor: ME }), now: 1000 }, 'send'],
      ['running, past the deadline', { t: task({ status: 'running', executor: ME }), now: 1001 }, 'lost'],
      ['not ours', { t: task({ status: 'running', executor: OTHER }), now: 0 }, 'lost'],
      ['another attempt', { t: task({ attempt: 2, status: 'running', executor: ME }), now: 0 }, 'lost'],
      ['completed', { t: task({ status: 'completed', executor: ME }), now: 0 }, 'lost'],
    ],
    ({ t, now }) => abandonStep(t, 1, ME, now),
  );
});

test('receipt intents: posted while running, confirmed once completed, else nothing', () => {
  table(
    [
      ['running, intent', { t: task({ status: 'running' }), s: 'intent' }, 'post'],
      ['completed, intent', { t: task({ status: 'completed' }), s: 'intent' }, 'confirm'],
      ['failed, intent', { t: task({ status: 'failed' }), s: 'intent' }, 'none'],
      ['running, already sent', { t: task({ status: 'running' }), s: 'confirmed' }, 'none'],
      ['another attempt', { t: task({ status: 'running', attempt: 2 }), s: 'intent' }, 'none'],
      ['gone', { t: null, s: 'intent' }, 'none'],
    ],
    ({ t, s }) => receiptStep(t, 1, s),
  );
});

test('runSeconds: the run deadline less the receipt margin, capped; attested counts from the run window', () => {
  table(
    [
      ['running: deadline - now - margin', { t: task({ status: 'running', deadline: 1100 }), now: 1000 }, 85],
      [
        'attested: the run window',
        { t: task({ status: 'attested' }), now: 1000 },
        120 - RECEIPT_MARGIN_SECONDS,
      ],
      [
        'attested, short run window: at least minRunTime',
        { t: task({ status: 'attested', windows: { claim: 60, evidence: 30, vote: 30, run: 5 } }), now: 0 },
        60 - RECEIPT_MARGIN_SECONDS,
      ],
      ['capped', { t: task({ status: 'running', deadline: 1e6 }), now: 0 }, 600],
      ['exactly a second', { t: task({ status: 'running', deadline: 1016 }), now: 1000 }, 1],
    ],
    ({ t, now }) => runSeconds(t, now, 60, 600),
  );
  assert.throws(
    () => runSeconds(task({ status: 'running', deadline: 1015 }), 1000, 60, 600),
    (e) => isFerryError(e, 'ENCLAVE_LIMIT_TIME'),
  );
});

test('runFailure: rethrown when stopping, retried before the plan, else abandoned', () => {
  table(
    [
      ['stopping', { code: 'ENCLAVE_CRASHED', stopping: true, planned: true }, 'rethrow'],
      ['stopping, unplanned', { code: 'CHAIN_UNAVAILABLE', stopping: true, planned: false }, 'rethrow'],
      ['chain down before the plan', { code: 'CHAIN_UNAVAILABLE', stopping: false, planned: false }, 'retry'],
      ['chain down after the keys', { code: 'CHAIN_UNAVAILABLE', stopping: false, planned: true }, 'abandon'],
      ['other failure before the plan', { code: 'TASK_FAILED', stopping: false, planned: false }, 'abandon'],
      ['a peer failed mid-run', { code: 'PEER_UNAVAILABLE', stopping: false, planned: true }, 'abandon'],
    ],
    ({ code, stopping, planned }) => runFailure(code, { stopping, planned }),
  );
});

test('missingKeys: the app and each dataset without a delivered key; a key for another asset does not count', () => {
  const t = { appId: 1n, datasetIds: [2n, 3n] };
  table(
    [
      ['none delivered', [], ['app 1', 'dataset 2', 'dataset 3']],
      [
        'all delivered',
        [
          { assetKind: 'app', assetId: 1n },
          { assetKind: 'dataset', assetId: 2n },
          { assetKind: 'dataset', assetId: 3n },
        ],
        [],
      ],
      [
        'a dataset key offered as the app’s does not count',
        [
          { assetKind: 'dataset', assetId: 1n },
          { assetKind: 'dataset', assetId: 2n },
        ],
        ['app 1', 'dataset 3'],
      ],
    ],
    (delivered) => missingKeys(t, delivered),
  );
});

test('the verifier: judge only others’ attempts not yet voted; retry while attesting; resume intents', () => {
  table(
    [
      ['another executor, no vote', { executor: OTHER, prior: null }, true],
      ['another executor, an intent', { executor: OTHER, prior: { status: 'intent' } }, true],
      ['already voted', { executor: OTHER, prior: { status: 'confirmed' } }, false],
      ['its own attempt', { executor: ME, prior: null }, false],
      ['its own attempt, address in other case', { executor: ME.toUpperCase(), prior: null }, false],
    ],
    (p) => judgeable({ ...p, me: ME }),
  );
  table(
    [
      ['attesting, not voted', { t: task({ status: 'attesting' }), vote: null }, 'retry'],
      ['attesting, intent', { t: task({ status: 'attesting' }), vote: { status: 'intent' } }, 'retry'],
      ['attesting, voted', { t: task({ status: 'attesting' }), vote: { status: 'confirmed' } }, 'drop'],
      ['attested', { t: task({ status: 'attested' }), vote: null }, 'drop'],
      ['another attempt', { t: task({ status: 'attesting', attempt: 2 }), vote: null }, 'drop'],
      ['gone', { t: null, vote: null }, 'drop'],
    ],
    ({ t, vote }) => judgeStep(t, 1, vote),
  );
  table(
    [
      ['gone', null, 'wait'],
      ['attesting with an executor', task({ status: 'attesting', executor: OTHER }), 'resume'],
      ['attesting without an executor', task({ status: 'attesting' }), 'fail'],
      ['attested', task({ status: 'attested', executor: OTHER }), 'fail'],
      ['another attempt', task({ status: 'attesting', attempt: 2, executor: OTHER }), 'fail'],
    ],
    (t) => voteIntentStep(t, 1),
  );
});

test('heartbeat and jail: hourly heartbeats; leave jail once it ended; look again when it ends', () => {
  table(
    [
      ['registered: its last heartbeat', { me: { lastHeartbeat: 500 }, now: 900 }, 500],
      ['registered at block time 0: 1 (0 means unknown)', { me: { lastHeartbeat: 0 }, now: 900 }, 1],
      ['not found: now', { me: null, now: 900 }, 900],
    ],
    ({ me, now }) => knownHeartbeat(me, now),
  );
  table(
    [
      ['an hour after', HEARTBEAT_EVERY_SECONDS, true],
      ['a second early', HEARTBEAT_EVERY_SECONDS - 1, false],
    ],
    (elapsed) => heartbeatDue(1000 + elapsed, 1000),
  );
  table(
    [
      ['jailed, ended', { me: { status: 'jailed', jailedUntil: 100 }, now: 100 }, { kind: 'unjail' }],
      [
        'jailed, not ended',
        { me: { status: 'jailed', jailedUntil: 500 }, now: 100 },
        { kind: 'check', at: 500 },
      ],
      [
        'active',
        { me: { status: 'active', jailedUntil: 0 }, now: 100 },
        { kind: 'check', at: 100 + JAIL_CHECK_EVERY_SECONDS },
      ],
      ['not registered', { me: null, now: 100 }, { kind: 'check', at: 100 + JAIL_CHECK_EVERY_SECONDS }],
    ],
    ({ me, now }) => jailStep(me, now),
  );
  table(
    [
      ['chain unavailable: retried', 'CHAIN_UNAVAILABLE', { kind: 'retry' }],
      [
        'refused (stake too low): an hour later',
        'CHAIN_REVERTED',
        { kind: 'check', at: 100 + HEARTBEAT_EVERY_SECONDS },
      ],
    ],
    (code) => unjailFailure(code, 100),
  );
});

test('backendSpec: sim needs an attester file, tpm2 a TCTI; anything else cannot create enclaves', () => {
  const none = {
    simAttester: undefined,
    tpm2Tcti: undefined,
    tpm2AkHandle: 0x81010002,
    tpm2Activation: undefined,
    tpm2EkCert: undefined,
    tpm2EkChain: [] as string[],
  };
  table(
    [
      ['sim', { ...none, tee: 'sim', simAttester: '/a.json' }, { kind: 'sim', attesterFile: '/a.json' }],
      [
        'tpm2 without a chain',
        { ...none, tee: 'tpm2', tpm2Tcti: 'swtpm:port=1', tpm2EkCert: '/ek.der' },
        {
          kind: 'tpm2',
          tcti: 'swtpm:port=1',
          akHandle: 0x81010002,
          activationRecordFile: undefined,
          ekCertFile: '/ek.der',
          ekChainFiles: undefined,
        },
      ],
      [
        'tpm2 with a chain',
        { ...none, tee: 'tpm2', tpm2Tcti: 'swtpm:port=1', tpm2EkChain: ['/ca.der'] },
        {
          kind: 'tpm2',
          tcti: 'swtpm:port=1',
          akHandle: 0x81010002,
          activationRecordFile: undefined,
          ekCertFile: undefined,
          ekChainFiles: ['/ca.der'],
        },
      ],
    ],
    (c) => backendSpec(c as Parameters<typeof backendSpec>[0]),
  );
  for (const c of [
    { ...none, tee: 'sim' },
    { ...none, tee: 'tpm2' },
    { ...none, tee: 'tdx', simAttester: '/a.json', tpm2Tcti: 'x' },
  ]) {
    assert.throws(
      () => backendSpec(c as Parameters<typeof backendSpec>[0]),
      (e) => isFerryError(e, 'ATTESTATION_BACKEND_UNAVAILABLE'),
      c.tee,
    );
  }
});

test('attemptKey: task/attempt', () => {
  assert.equal(attemptKey(7n, 2), '7/2');
  assert.equal(attemptKey('7', 2), '7/2');
});

test('duties anyone may do: one node designated per task attempt and duty, the others after their fallback delay', () => {
  const nodes = Array.from({ length: 6 }, (_, i) => `0x${String(i + 1).repeat(40)}`);
  for (const duty of ['seed', 'timeout'] as const) {
    for (let task = 1n; task <= 40n; task++) {
      // Every node computes the same order: the ranks are a permutation of 0..n-1.
      const ranks = nodes.map((me) => dutyRank(duty, task, 1, me, nodes));
      assert.deepEqual([...ranks].sort(), [0, 1, 2, 3, 4, 5]);
      // The address's case and whether the node lists itself do not matter.
      const me = nodes[2];
      assert.equal(dutyRank(duty, task, 1, me.toUpperCase().replace('0X', '0x'), nodes), ranks[2]);
      assert.equal(
        dutyRank(
          duty,
          task,
          1,
          me,
          nodes.filter((n) => n !== me),
        ),
        ranks[2],
      );
    }
  }
  // The designation moves with the task, the attempt and the duty: no node is designated for all.
  const designated = new Set<string>();
  for (let task = 1n; task <= 40n; task++) {
    for (const attempt of [1, 2]) {
      designated.add(nodes.find((me) => dutyRank('seed', task, attempt, me, nodes) === 0)!);
    }
  }
  assert.equal(designated.size, nodes.length);
  // A node that knows no other is designated (it acts at once, as every node did before).
  assert.equal(dutyRank('seed', 7n, 1, nodes[0], []), 0);
  // The delays: rank 0 at once; each rank one fallback later, capped.
  assert.equal(dutyDelayMs(0), 0);
  assert.equal(dutyDelayMs(1), DUTY_FALLBACK_SECONDS * 1000);
  assert.equal(dutyDelayMs(DUTY_MAX_RANK + 5), DUTY_MAX_RANK * DUTY_FALLBACK_SECONDS * 1000);
  assert.equal(dutyDue(0, 1000, 1000), true);
  assert.equal(dutyDue(1, 1000, 1000 + DUTY_FALLBACK_SECONDS * 1000 - 1), false);
  assert.equal(dutyDue(1, 1000, 1000 + DUTY_FALLBACK_SECONDS * 1000), true);
});

test('after an event, no stage is due before the old due or the shortest window from then, whichever is first', () => {
  // task(): seeded, its claim deadline (the cached due) at 1000.
  const seeded = cacheEntry(task());
  assert.equal(seeded.due, 1000);
  // An event at 900 may have started a stage (claim window at least MIN_STAGE_SECONDS) or not (due stays 1000).
  assert.equal(dueFloorAfterChange(seeded, undefined, 900), 900 + MIN_STAGE_SECONDS);
  // An event just before the due: the old due is the bound (a stage that did not change is due then).
  assert.equal(dueFloorAfterChange(seeded, undefined, 999), 1000);
  // Successive events keep the lowest bound; a second event with no row read since keeps the first.
  assert.equal(dueFloorAfterChange(seeded, 950, 990), 950);
  assert.equal(dueFloorAfterChange(undefined, 950, 990), 950);
  // Never read, unknown or final: no bound (the row is read).
  assert.equal(dueFloorAfterChange(undefined, undefined, 900), undefined);
  assert.equal(dueFloorAfterChange(cacheEntry(null), undefined, 900), undefined);
  assert.equal(dueFloorAfterChange(cacheEntry(task({ status: 'completed' })), undefined, 900), undefined);
  assert.ok(MIN_STAGE_SECONDS >= 1);
});
