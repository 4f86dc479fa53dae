import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { isFerryError } from '../kernel/index.ts';
import { schemaVersion } from '../daemon/index.ts';
import { NodeState } from './state.ts';

const TX1 = `0x${'ab'.repeat(32)}`;
const TX2 = `0x${'cd'.repeat(32)}`;
const out = new Uint8Array(64).fill(1);
const proof = new Uint8Array(80).fill(2);

function tmp(): { dir: string; db: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-node-state-'));
  return { dir, db: join(dir, 'node', 'state.db') };
}

test('claims: one per (task, attempt); intent -> sent -> outcome; conflicts refused', () => {
  const s = NodeState.open(':memory:');
  const a = s.beginClaim({ task: 7n, attempt: 1, vrfOutput: out, vrfProof: proof });
  assert.equal(a.fresh, true);
  assert.equal(a.claim.status, 'intent');
  const again = s.beginClaim({ task: '7', attempt: 1, vrfOutput: new Uint8Array(64), vrfProof: proof });
  assert.equal(again.fresh, false);
  assert.deepEqual(again.claim.vrfOutput, out, 'the first intent is kept');
  assert.equal(s.beginClaim({ task: '0x7', attempt: 2, vrfOutput: out, vrfProof: proof }).fresh, true);
  s.markClaimSent(7, 1, TX1);
  s.markClaimSent(7, 1, TX1); // idempotent
  assert.throws(
    () => s.markClaimSent(7, 1, TX2),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  s.markClaimOutcome(7, 1, 'confirmed');
  s.markClaimOutcome(7, 1, 'confirmed');
  assert.throws(
    () => s.markClaimOutcome(7, 1, 'reverted'),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  // A confirmed claim another claimant beat is settled lost; lost is final.
  s.markClaimOutcome(7, 1, 'lost');
  assert.throws(
    () => s.markClaimOutcome(7, 1, 'confirmed'),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  assert.throws(
    () => s.markClaimSent(9, 1, TX1),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  assert.deepEqual(
    s.listClaims('intent').map((c) => [c.task, c.attempt]),
    [['7', 2]],
  );
  assert.equal(s.getClaim(7n, 1)?.txHash, TX1);
  s.close();
});

test('votes: one per (task, attempt); failed is final, an intent is sent once', () => {
  const s = NodeState.open(':memory:');
  const v = {
    task: 1n,
    attempt: 1,
    verdict: 'pass' as const,
    resultHash: new Uint8Array(32),
    vrfProof: proof,
    seats: 2,
  };
  assert.equal(s.beginVote(v).fresh, true);
  assert.equal(s.beginVote({ ...v, verdict: 'fail' }).fresh, false);
  assert.equal(s.getVote(1n, 1)?.verdict, 'pass');
  s.markVoteOutcome(1n, 1, 'failed', 'the attempt moved on');
  assert.throws(
    () => s.markVoteSent(1n, 1, TX1),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
    'a failed vote is never sent',
  );
  // A retryable send failure leaves the intent (src/node/decisions.ts sendFailure): sent later.
  assert.equal(s.beginVote({ ...v, attempt: 3 }).fresh, true);
  s.markVoteSent(1n, 3, TX1);
  s.markVoteOutcome(1n, 3, 'confirmed');
  assert.equal(s.getVote(1n, 3)?.status, 'confirmed');
  assert.equal(s.getVote(1n, 1)?.status, 'failed');
  assert.throws(
    () => s.beginVote({ ...v, verdict: 'maybe' as never, attempt: 2 }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  s.close();
});

test('bad task ids, attempts and transaction hashes are refused', () => {
  const s = NodeState.open(':memory:');
  for (const task of [-1, '1.5', 'abc', 2n ** 256n, Number.MAX_SAFE_INTEGER + 2]) {
    assert.throws(
      () => s.beginClaim({ task: task as never, attempt: 1, vrfOutput: out, vrfProof: proof }),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
    );
  }
  for (const attempt of [0, -1, 1.5, 2 ** 32]) {
    assert.throws(
      () => s.beginClaim({ task: 1, attempt, vrfOutput: out, vrfProof: proof }),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
    );
  }
  s.beginClaim({ task: 1, attempt: 1, vrfOutput: out, vrfProof: proof });
  assert.throws(
    () => s.markClaimSent(1, 1, '0x1234'),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  s.close();
});

test('registration resumes for the same chain and refuses another', () => {
  const s = NodeState.open(':memory:');
  const r = { chainId: 31337, registry: '0xAbC', address: '0x01', params: { stake: '10', region: 'DE' } };
  assert.equal(s.beginRegistration(r).fresh, true);
  const again = s.beginRegistration({ ...r, registry: '0xabc' });
  assert.equal(again.fresh, false);
  assert.deepEqual(again.registration.params, r.params);
  assert.throws(
    () => s.beginRegistration({ ...r, chainId: 1 }),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  s.markRegistrationSent(TX1);
  s.markRegistrationOutcome('confirmed');
  assert.equal(s.getRegistration()?.status, 'confirmed');
  s.close();
});

test('cursor moves forward only (unless rewinding for a reorg)', () => {
  const s = NodeState.open(':memory:');
  assert.equal(s.getCursor(), null);
  s.setCursor('chain', 10, '0xaa');
  s.setCursor('chain', 12);
  assert.throws(
    () => s.setCursor('chain', 11),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  s.setCursor('chain', 9, '0xbb', true);
  assert.deepEqual(s.getCursor('chain'), { block: 9, blockHash: '0xbb' });
  s.close();
});

test('evidence, results, receipts and key deliveries are written once', () => {
  const s = NodeState.open(':memory:');
  const ev = new Uint8Array([1, 2, 3]);
  s.saveEvidence(5, 1, ev, new Uint8Array(32).fill(9));
  s.saveEvidence(5, 1, ev, new Uint8Array(32).fill(9));
  assert.throws(
    () => s.saveEvidence(5, 1, new Uint8Array([4]), new Uint8Array(32)),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  const res = { resultPath: '/r', resultHash: new Uint8Array(32).fill(3), receipt: new Uint8Array([7, 7]) };
  s.saveResult(5, 1, res);
  const got = s.getAttempt(5, 1)!;
  assert.deepEqual(got.evidence, ev);
  assert.equal(got.receiptStatus, 'intent');
  assert.equal(s.pendingReceipts().length, 1);
  s.markReceiptSent(5, 1, TX1);
  s.markReceiptOutcome(5, 1, 'confirmed');
  assert.equal(s.pendingReceipts().length, 0);
  assert.throws(
    () => s.saveResult(5, 1, { ...res, receipt: new Uint8Array([8]) }),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  const d = { task: '5', attempt: 1, asset: 'dataset-1', sender: 'aa', sealed: new Uint8Array([1]) };
  assert.equal(s.saveKeyDelivery(d).fresh, true);
  assert.equal(s.saveKeyDelivery(d).fresh, false);
  assert.throws(
    () => s.saveKeyDelivery({ ...d, sealed: new Uint8Array([2]) }),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  assert.equal(s.listKeyDeliveries(5, 1).length, 1);
  s.close();
});

test('abandonments: attempts without a result are listed; the first cause stays; settled once; never with a result', () => {
  const s = NodeState.open(':memory:');
  s.saveEvidence(6, 1, new Uint8Array([1]), new Uint8Array(32).fill(1));
  s.saveEvidence(6, 2, new Uint8Array([2]), new Uint8Array(32).fill(2));
  s.saveEvidence(7, 1, new Uint8Array([3]), new Uint8Array(32).fill(3));
  s.saveResult(7, 1, {
    resultPath: '/r',
    resultHash: new Uint8Array(32).fill(4),
    receipt: new Uint8Array([5]),
  });
  assert.deepEqual(
    s.attemptsWithoutResult().map((a) => `${a.task}/${a.attempt}`),
    ['6/1', '6/2'],
  );
  const a = s.beginAbandon(6, 1, 'AGE_HEADER_INVALID: the stream is not age');
  assert.equal(a.abandonStatus, 'intent');
  assert.equal(
    s.beginAbandon(6, 1, 'ENCLAVE_LOST: later').abandonCause,
    'AGE_HEADER_INVALID: the stream is not age',
  );
  assert.deepEqual(
    s.pendingAbandons().map((x) => `${x.task}/${x.attempt}`),
    ['6/1'],
  );
  assert.deepEqual(
    s.attemptsWithoutResult().map((x) => `${x.task}/${x.attempt}`),
    ['6/2'],
  );
  s.markAbandonOutcome(6, 1, 'confirmed');
  s.markAbandonOutcome(6, 1, 'confirmed');
  assert.equal(s.pendingAbandons().length, 0);
  assert.throws(
    () => s.markAbandonOutcome(6, 1, 'reverted'),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  assert.throws(
    () => s.markAbandonOutcome(6, 2, 'lost'),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  assert.throws(
    () => s.beginAbandon(7, 1, 'X: y'),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  s.close();
});

test("schema: versioned, refuses a newer schema and another program's database", () => {
  const { dir, db } = tmp();
  try {
    const s = NodeState.open(db);
    assert.equal(schemaVersion(s.db), 8);
    s.close();
    const raw = new DatabaseSync(db);
    raw.prepare("INSERT INTO schema_version (version, app, applied_at) VALUES (99, 'node', 0)").run();
    raw.close();
    assert.throws(
      () => NodeState.open(db),
      (e) => isFerryError(e, 'STATE_SCHEMA_TOO_NEW'),
    );
    const raw2 = new DatabaseSync(db);
    raw2.exec("DELETE FROM schema_version WHERE version = 99; UPDATE schema_version SET app = 'agent'");
    raw2.close();
    assert.throws(
      () => NodeState.open(db),
      (e) => isFerryError(e, 'STATE_UNAVAILABLE'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a node killed (SIGKILL) right after writing a claim intent finds it on restart', async () => {
  const { dir, db } = tmp();
  try {
    const stateUrl = new URL('./state.ts', import.meta.url).href;
    const script = `
      import { NodeState } from ${JSON.stringify(stateUrl)};
      const s = NodeState.open(${JSON.stringify(db)});
      s.beginClaim({ task: 42n, attempt: 3, vrfOutput: new Uint8Array(64), vrfProof: new Uint8Array(80) });
      s.beginVote({ task: 43n, attempt: 1, verdict: 'fail', resultHash: new Uint8Array(32), vrfProof: new Uint8Array(80), seats: 1 });
      s.markVoteSent(43n, 1, '0x${'ef'.repeat(32)}');
      process.stdout.write('written\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module-typescript', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('written')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child exited early: ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const s = NodeState.open(db);
    const again = s.beginClaim({
      task: 42n,
      attempt: 3,
      vrfOutput: new Uint8Array(64),
      vrfProof: new Uint8Array(80),
    });
    assert.equal(again.fresh, false, 'the restarted node must not claim again');
    assert.equal(again.claim.status, 'intent');
    assert.equal(s.getVote(43n, 1)?.status, 'sent');
    assert.equal(s.getVote(43n, 1)?.txHash, `0x${'ef'.repeat(32)}`);
    s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('claims awaiting evidence: confirmed without evidence or with evidence not yet committed; a lost claim is settled once', () => {
  const { dir, db } = tmp();
  const s = NodeState.open(db);
  for (const task of [1n, 2n, 3n]) {
    s.beginClaim({ task, attempt: 1, vrfOutput: out, vrfProof: proof });
    s.markClaimOutcome(task, 1, 'confirmed');
  }
  s.beginClaim({ task: 4n, attempt: 1, vrfOutput: out, vrfProof: proof });
  s.saveEvidence(2n, 1, new Uint8Array([1]), new Uint8Array(32), {
    x25519Pub: new Uint8Array(32),
    ed25519Pub: new Uint8Array(32),
    seed: new Uint8Array(32),
  });
  // Task 2's evidence is stored but its commitment not confirmed: it still awaits.
  assert.equal(s.getAttempt(2n, 1)?.evidenceCommitted, false);
  assert.deepEqual(
    s.claimsAwaitingEvidence().map((c) => c.task),
    ['1', '2', '3'],
  );
  s.markEvidenceCommitted(2n, 1);
  assert.equal(s.getAttempt(2n, 1)?.evidenceCommitted, true);
  assert.throws(
    () => s.markEvidenceCommitted(1n, 1),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  assert.deepEqual(
    s.claimsAwaitingEvidence().map((c) => c.task),
    ['1', '3'],
  );
  s.markClaimLost(3n, 1, 'another claimant won');
  assert.equal(s.getClaim(3n, 1)?.status, 'lost');
  assert.deepEqual(
    s.claimsAwaitingEvidence().map((c) => c.task),
    ['1'],
  );
  // Only a confirmed claim can be lost.
  assert.throws(
    () => s.markClaimLost(3n, 1),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  assert.throws(
    () => s.markClaimLost(4n, 1),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  s.close();
  rmSync(dir, { recursive: true, force: true });
});

test('key deliveries keep the owner address and signature they were accepted with', () => {
  const { dir, db } = tmp();
  const s = NodeState.open(db);
  const sealed = new Uint8Array(65).fill(3);
  sealed[0] = 0;
  const signature = `0x${'ab'.repeat(65)}`;
  const sender = `0x${'cd'.repeat(20)}`;
  assert.equal(
    s.saveKeyDelivery({ task: 1n as never, attempt: 1, asset: 'dataset:3', sender, sealed, signature }).fresh,
    true,
  );
  assert.equal(
    s.saveKeyDelivery({ task: '1', attempt: 1, asset: 'dataset:3', sender, sealed, signature }).fresh,
    false,
  );
  const [d] = s.listKeyDeliveries(1n, 1);
  assert.equal(d.sender, sender);
  assert.equal(d.signature, signature);
  s.close();
  rmSync(dir, { recursive: true, force: true });
});

test('attempts to judge: recorded once, listed, removed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-state-judge-'));
  const s = NodeState.open(join(dir, 'state.db'));
  try {
    s.addToJudge(7n, 1, '0xabc', 'http://127.0.0.1:9/v1/tasks/7/attempts/1/evidence');
    s.addToJudge(7n, 1, '0xdef', 'http://other');
    s.addToJudge(8n, 2, '0xabc', 'http://127.0.0.1:9/v1/tasks/8/attempts/2/evidence');
    assert.deepEqual(
      s.listToJudge().map((r) => [r.task, r.attempt, r.executor]),
      [
        ['7', 1, '0xabc'],
        ['8', 2, '0xabc'],
      ],
    );
    s.removeToJudge(7n, 1);
    assert.deepEqual(
      s.listToJudge().map((r) => r.task),
      ['8'],
    );
  } finally {
    s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
