/**
 * The stage rules as tables: the deadline of every status (docs/protocol.md §12, Tasks.timeout),
 * the stage of every Tasks event, the words `ferry task show` uses, and the requester's
 * progress folded attempt by attempt.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ATTEMPT_END_REASONS, TASK_STATES, type TaskState, tasksAbi } from '../chain/index.ts';
import {
  attemptEndReason,
  describeTaskEvent,
  FINAL_STATES,
  fraudKind,
  isFinal,
  PROGRESS_STAGES,
  ProgressTimeline,
  progressOfEvent,
  type StageEventInput,
  stageDeadline,
  stageDue,
  stageOfEvent,
  TASK_STAGES,
  type TaskClock,
  timeoutDue,
} from './stages.ts';

function table<I, O>(rows: [string, I, O][], f: (i: I) => O): void {
  for (const [name, input, want] of rows) assert.deepEqual(f(input), want, name);
}

const clock = (o: Partial<TaskClock> & { status: TaskState }): TaskClock => ({
  deadline: 1000,
  expiresAt: 5000,
  windows: { evidence: 30 },
  ...o,
});

const ev = (eventName: string, args: Record<string, unknown> = {}): StageEventInput => ({ eventName, args });

test('stageDeadline: every status, as Tasks.timeout reads it (§12), capped by the expiry', () => {
  table(
    [
      [
        'created: waits for a seed until the expiry',
        clock({ status: 'created', deadline: 0 }),
        { kind: 'expiry', at: 5000 },
      ],
      [
        'rejected: the next seed, until the expiry',
        clock({ status: 'rejected' }),
        { kind: 'expiry', at: 5000 },
      ],
      ['seeded: the claim deadline', clock({ status: 'seeded' }), { kind: 'claim', at: 1000 }],
      [
        'claimed: claim deadline + evidence window',
        clock({ status: 'claimed' }),
        { kind: 'evidence', at: 1030 },
      ],
      [
        'attesting: the vote deadline',
        clock({ status: 'attesting', deadline: 2000 }),
        { kind: 'vote', at: 2000 },
      ],
      [
        'attested: the run deadline',
        clock({ status: 'attested', deadline: 3000 }),
        { kind: 'run', at: 3000 },
      ],
      ['running: the run deadline', clock({ status: 'running', deadline: 3060 }), { kind: 'run', at: 3060 }],
      [
        'running past the expiry: the expiry',
        clock({ status: 'running', deadline: 6000 }),
        { kind: 'expiry', at: 5000 },
      ],
      [
        'claimed, window past the expiry',
        clock({ status: 'claimed', deadline: 4990 }),
        { kind: 'expiry', at: 5000 },
      ],
      [
        'seeded, deadline at the expiry: the claim',
        clock({ status: 'seeded', deadline: 5000 }),
        { kind: 'claim', at: 5000 },
      ],
      ['completed: none', clock({ status: 'completed' }), null],
      ['failed: none', clock({ status: 'failed' }), null],
      ['expired: none', clock({ status: 'expired' }), null],
    ],
    stageDeadline,
  );
  assert.throws(
    () => stageDeadline(clock({ status: 'bogus' as TaskState })),
    /status: expected one of created/,
  );
});

test('timeoutDue: only strictly after the deadline (TooEarly until then), never once final', () => {
  table(
    [
      ['seeded, at the claim deadline: too early', { t: clock({ status: 'seeded' }), now: 1000 }, false],
      ['seeded, a second after', { t: clock({ status: 'seeded' }), now: 1001 }, true],
      [
        'claimed, at the claim deadline: the executor still has its evidence window',
        { t: clock({ status: 'claimed' }), now: 1001 },
        false,
      ],
      ['claimed, at the end of the evidence window', { t: clock({ status: 'claimed' }), now: 1030 }, false],
      ['claimed, after the evidence window', { t: clock({ status: 'claimed' }), now: 1031 }, true],
      [
        'created, long after its deadline field (0): only the expiry counts',
        { t: clock({ status: 'created', deadline: 0 }), now: 4000 },
        false,
      ],
      ['created, after the expiry', { t: clock({ status: 'created', deadline: 0 }), now: 5001 }, true],
      ['running, after the expiry', { t: clock({ status: 'running', deadline: 9000 }), now: 5001 }, true],
      ['completed, ever', { t: clock({ status: 'completed' }), now: 1e12 }, false],
      ['expired, ever', { t: clock({ status: 'expired' }), now: 1e12 }, false],
    ],
    ({ t, now }) => timeoutDue(t, now),
  );
  assert.equal(stageDue(clock({ status: 'failed' })), Number.POSITIVE_INFINITY);
  assert.equal(stageDue(clock({ status: 'claimed' })), 1030);
});

test('final statuses: completed, failed, expired; every other status has a deadline', () => {
  assert.deepEqual([...FINAL_STATES].sort(), ['completed', 'expired', 'failed']);
  for (const s of TASK_STATES) {
    assert.equal(isFinal(s), FINAL_STATES.has(s), s);
    assert.equal(stageDeadline(clock({ status: s })) === null, isFinal(s), s);
  }
});

test('stageOfEvent: every Tasks event of the ABI marks a stage or is named as marking none', () => {
  const names = tasksAbi.filter((i) => i.type === 'event').map((i) => (i as { name: string }).name);
  const want: Record<string, string | null> = {
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
    // Payments mark no stage; StatusChanged: by its status, below.
    Credited: null,
    Paid: null,
    Withdrawn: null,
    StatusChanged: null,
  };
  // A new event in the contract fails here until its stage (or none) is decided.
  assert.deepEqual([...names].sort(), Object.keys(want).sort());
  for (const n of names) {
    if (n !== 'StatusChanged') assert.equal(stageOfEvent(ev(n)), want[n], n);
  }
  const marked = Object.values(want).filter((s) => s !== null);
  assert.deepEqual([...marked, 'running', 'rejected'].sort(), [...TASK_STAGES].sort());
  table(
    TASK_STATES.map((s, i): [string, number, string | null] => [
      `StatusChanged to ${s}`,
      i,
      s === 'running' || s === 'rejected' ? s : null,
    ]),
    (status) => stageOfEvent(ev('StatusChanged', { status })),
  );
  // Other contracts' events, and unknown names, mark none.
  assert.equal(stageOfEvent(ev('NodeRegistered')), null);
  assert.equal(stageOfEvent(ev('toString')), null);
});

test('attempt end reasons and fraud kinds by code, fraud (8) included; unknown codes are null', () => {
  assert.equal(attemptEndReason(8n), 'fraud');
  assert.equal(attemptEndReason(3), 'evidence-rejected');
  for (const bad of [9, -1, 1.5, 'x', undefined]) assert.equal(attemptEndReason(bad), null, String(bad));
  assert.equal(ATTEMPT_END_REASONS.length, 9);
  table(
    [
      ['1: claim-vrf', 1, 'claim-vrf'],
      ['2: vote-vrf', 2n, 'vote-vrf'],
      ['3: vote-seats', 3, 'vote-seats'],
      ['0: none (1-based)', 0, null],
      ['4: unknown', 4, null],
    ],
    fraudKind,
  );
});

test('describeTaskEvent: the words of ferry task show, fraud proofs and fraud endings included', () => {
  const liar = '0x00000000000000000000000000000000000000aa';
  const by = '0x00000000000000000000000000000000000000bb';
  table(
    [
      [
        'a pass vote',
        ev('VoteCast', { pass: true, verifier: by, seats: 3n }),
        `pass vote by ${by}, 3 seat(s)`,
      ],
      ['a status', ev('StatusChanged', { status: 5 }), 'status running'],
      [
        'a fraud ending',
        ev('AttemptEnded', { reason: 8, slashed: 7n }),
        'attempt ended: fraud, executor slashed 7 wei',
      ],
      ['an ending without slash', ev('AttemptEnded', { reason: 1, slashed: 0n }), 'attempt ended: no-claim'],
      [
        'a fraud proof restoring its victim',
        ev('FraudProven', { liar, challenger: by, fraud: 3, slashed: 5n, restored: true }),
        `fraud proven (vote-seats): ${liar} lied, slashed 5 wei; challenger ${by}; its victim restored`,
      ],
      [
        'a fraud proof against a claim',
        ev('FraudProven', { liar, challenger: by, fraud: 1, slashed: 5n, restored: false }),
        `fraud proven (claim-vrf): ${liar} lied, slashed 5 wei; challenger ${by}`,
      ],
      ['no words of its own', ev('Withdrawn'), 'Withdrawn'],
    ],
    describeTaskEvent,
  );
});

test('progressOfEvent: the requester sees votes summed up, keys, the run, the receipt and every ending', () => {
  const task = { tau: 10, threshold: 7 };
  table(
    [
      [
        'seeded',
        ev('TaskSeeded', { seed: `0x${'ab'.repeat(32)}` }),
        { stage: 'seeded', detail: 'seed 0xababababab…' },
      ],
      ['a vote: no line', ev('VoteCast', { pass: true }), null],
      [
        'attested: the pass voters and seats',
        ev('TaskAttested', { passSeats: 8 }),
        { stage: 'votes', detail: '2 verifier(s) voted pass: 8 of 10 seats (threshold 7)' },
      ],
      [
        'running',
        ev('StatusChanged', { status: 5 }),
        { stage: 'running', detail: 'every key released; the enclave runs' },
      ],
      ['rejected: no line (the ending says why)', ev('StatusChanged', { status: 7 }), null],
      ['a fraud ending', ev('AttemptEnded', { reason: 8 }), { stage: 'attempt-ended', detail: 'fraud' }],
      [
        'an unknown ending',
        ev('AttemptEnded', { reason: 42 }),
        { stage: 'attempt-ended', detail: 'reason 42' },
      ],
      [
        'abandoned',
        ev('AttemptAbandoned', { cause: 'ENCLAVE_LOST' }),
        { stage: 'attempt-ended', detail: 'abandoned by the executor: ENCLAVE_LOST' },
      ],
      ['a fraud proof: no line of its own', ev('FraudProven', { fraud: 2 }), null],
      ['payments: none', ev('Paid'), null],
    ],
    (e) => progressOfEvent(e, task, 2),
  );
});

test('ProgressTimeline: each stage once per attempt, times restart with an attempt, endings kept', () => {
  const task = { tau: 10, threshold: 1 };
  const p = new ProgressTimeline(1);
  const seq: [StageEventInput, number][] = [
    [ev('TaskSeeded', { attempt: 1n, seed: '0x01' }), 10],
    [ev('TaskClaimed', { attempt: 1n, executor: '0xaa' }), 20],
    // A better claim: the stage was shown already.
    [ev('TaskClaimed', { attempt: 1n, executor: '0xbb' }), 25],
    [ev('AttemptEnded', { attempt: 1n, reason: 8 }), 30],
    [ev('TaskSeeded', { attempt: 2n, seed: '0x02' }), 40],
    [ev('VoteCast', { attempt: 1n, pass: true }), 41],
    [ev('VoteCast', { attempt: 2n, pass: true }), 42],
    [ev('VoteCast', { attempt: 2n, pass: false }), 43],
    [ev('TaskAttested', { attempt: 2n, passSeats: 1 }), 50],
  ];
  const shown = seq.map(([e, ms]) => p.add(e, task, ms)?.stage ?? null);
  assert.deepEqual(shown, ['seeded', 'claimed', null, 'attempt-ended', 'seeded', null, null, null, 'votes']);
  assert.deepEqual(p.stagesMs, { seeded: 40, votes: 50 });
  assert.deepEqual(
    p.timeline.map((l) => `${l.attempt}:${l.stage}:${l.ms}`),
    ['1:seeded:10', '1:claimed:20', '1:attempt-ended:30', '2:seeded:40', '2:votes:50'],
  );
  // Only the attempt's own pass votes count.
  assert.equal(p.timeline[4].detail, '1 verifier(s) voted pass: 1 of 10 seats (threshold 1)');
  assert.deepEqual(PROGRESS_STAGES, [
    'seeded',
    'claimed',
    'evidence',
    'votes',
    'keysReleased',
    'running',
    'receipt',
    'done',
  ]);
});
