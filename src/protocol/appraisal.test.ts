import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import {
  createSimRoot,
  defaultVerifiers,
  developmentPolicy,
  issueSimAttester,
  parsePolicy,
  SimBackend,
} from '../attestation/index.ts';
import type { AppraisalPolicy } from '../attestation/types.ts';
import { encodeTagged, toHex } from '../kernel/index.ts';
import { type ApplicablePolicy, appraiseAttempt, refusalCode, refusalsOf } from './appraisal.ts';
import {
  buildAttemptResult,
  decodeSignedAttemptResult,
  encodeSignedAttemptResult,
  signAttemptResult,
} from './attempt-result.ts';
import { reportDataFor } from './binding.ts';
import { commitmentsHash, type TaskCommitments } from './commitments.ts';
import { ed25519KeyPair } from '../attestation/sim/ed25519.ts';

const b = (n: number) => new Uint8Array(32).fill(n);
const commitments: TaskCommitments = {
  chainId: 31337n,
  taskId: 7n,
  attempt: 1,
  seed: b(1),
  appId: 1n,
  appMeasurement: b(2),
  inputHash: b(3),
  resultRecipient: b(4),
  datasets: [{ id: 1n, ciphertextHash: b(5) }],
};
const root = createSimRoot();
const registry = defaultVerifiers({ sim: { roots: [root.publicKey] } });
const runtime = b(9);
const keys = { x25519Pub: b(0x11), ed25519Pub: b(0x22) };

async function evidenceFor(c: TaskCommitments, measurement = runtime): Promise<Uint8Array> {
  const backend = new SimBackend({ attester: issueSimAttester(root), measurement });
  const ev = await backend.collect(reportDataFor({ commitments: c, ...keys }));
  return Uint8Array.from(
    encodeTagged('ferry/evidence/v1', { kind: ev.kind, reportData: ev.reportData, body: ev.body }),
  );
}
const sha = (u: Uint8Array) => new Uint8Array(createHash('sha256').update(u).digest());
const pinned = (m: Uint8Array): AppraisalPolicy =>
  parsePolicy({
    ...developmentPolicy(),
    name: 'pinned-test',
    referenceValues: { sim: { measurement: [toHex(m)] } },
  });
const both = (app: AppraisalPolicy, ds: AppraisalPolicy): ApplicablePolicy[] => [
  { assetKind: 'app', assetId: 1n, policy: app },
  { assetKind: 'dataset', assetId: 1n, policy: ds },
];

async function run(over: Partial<Parameters<typeof appraiseAttempt>[0]> & { evidenceBytes: Uint8Array }) {
  return appraiseAttempt({
    commitments,
    committedEvidenceHash: sha(over.evidenceBytes),
    ...keys,
    taskKinds: ['sim'],
    executorKinds: ['sim'],
    policies: both(pinned(runtime), pinned(runtime)),
    registry,
    now: new Date(),
    ...over,
  });
}

test('appraiseAttempt: accepted only when every policy accepts the evidence bound to the commitments', async () => {
  const evidenceBytes = await evidenceFor(commitments);
  const ok = await run({ evidenceBytes });
  assert.equal(ok.accepted, true, refusalsOf(ok).join('; '));
  assert.equal(ok.entries.length, 2);
  assert.equal(refusalCode(ok), null);
});

test('appraiseAttempt: evidence bound to another recipient (a host that names its own) is refused', async () => {
  const evidenceBytes = await evidenceFor({ ...commitments, resultRecipient: b(0x66) });
  const a = await run({ evidenceBytes });
  assert.equal(a.accepted, false);
  assert.equal(refusalCode(a), 'ATTESTATION_REPORT_DATA_MISMATCH');
});

test('appraiseAttempt: evidence bound to another app measurement is refused', async () => {
  const evidenceBytes = await evidenceFor({ ...commitments, appMeasurement: b(0x67) });
  const a = await run({ evidenceBytes });
  assert.equal(refusalCode(a), 'ATTESTATION_REPORT_DATA_MISMATCH');
});

test("appraiseAttempt: the app owner's stricter policy refuses what the dataset's accepts", async () => {
  const evidenceBytes = await evidenceFor(commitments);
  const a = await run({ evidenceBytes, policies: both(pinned(b(0x70)), pinned(runtime)) });
  assert.equal(a.accepted, false);
  assert.equal(a.entries[0].appraisal.accepted, false);
  assert.equal(a.entries[1].appraisal.accepted, true);
  assert.equal(refusalCode(a), 'ATTESTATION_MEASUREMENT_MISMATCH');
  assert.match(refusalsOf(a)[0], /app 1 policy pinned-test/);
});

test('appraiseAttempt: a kind the task or the executor does not allow is refused', async () => {
  const evidenceBytes = await evidenceFor(commitments);
  const notTask = await run({ evidenceBytes, taskKinds: ['tdx'] });
  assert.equal(refusalCode(notTask), 'ATTESTATION_KIND_NOT_ALLOWED');
  assert.match(refusalsOf(notTask)[0], /task allows tdx/);
  const notExec = await run({ evidenceBytes, executorKinds: ['tpm2'] });
  assert.equal(refusalCode(notExec), 'ATTESTATION_KIND_NOT_ALLOWED');
  assert.match(refusalsOf(notExec)[0], /executor registered tpm2/);
});

test('appraiseAttempt: evidence that is not the committed evidence, malformed, or without a policy is refused', async () => {
  const evidenceBytes = await evidenceFor(commitments);
  const other = await run({ evidenceBytes, committedEvidenceHash: b(0) });
  assert.equal(refusalCode(other), 'ATTESTATION_EVIDENCE_NOT_COMMITTED');
  const nul = Uint8Array.from(encodeTagged('ferry/evidence/v1', null));
  assert.equal(refusalCode(await run({ evidenceBytes: nul })), 'ATTESTATION_MALFORMED');
  const junk = new Uint8Array([1, 2, 3]);
  assert.equal(refusalCode(await run({ evidenceBytes: junk })), 'ATTESTATION_MALFORMED');
  assert.equal(refusalCode(await run({ evidenceBytes, policies: [] })), 'ATTESTATION_POLICY_NOT_FOUND');
});

test('attempt result v2: one entry per policy; accepted is the verdict; signed and verified', async () => {
  const evidenceBytes = await evidenceFor(commitments);
  const verifier = ed25519KeyPair();
  for (const [policies, verdict] of [
    [both(pinned(runtime), pinned(runtime)), true],
    [both(pinned(b(0x70)), pinned(runtime)), false],
  ] as const) {
    const a = await run({ evidenceBytes, policies: [...policies] });
    const r = buildAttemptResult(a, {
      commitments: commitmentsHash(commitments),
      verifierId: '0xverifier',
      verifierKey: verifier.publicKey,
      issuedAt: new Date(),
    });
    assert.equal(r.accepted, verdict);
    assert.equal(r.status, verdict ? 'affirming' : 'contraindicated');
    assert.equal(r.policies.length, 2);
    assert.deepEqual(
      r.policies.map((p) => `${p.assetKind}:${p.assetId}:${p.result.accepted}`),
      ['app:1:' + String(verdict), 'dataset:1:true'],
    );
    const wire = encodeSignedAttemptResult(signAttemptResult(r, verifier.secretKey));
    assert.equal(decodeSignedAttemptResult(wire, verifier.publicKey).result.accepted, verdict);
    const tampered = Uint8Array.from(wire);
    tampered[tampered.length - 1] ^= 1;
    assert.throws(() => decodeSignedAttemptResult(tampered), /SIGNATURE_INVALID|does not verify|signature/i);
  }
});
