import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { encodeCanonical } from '../../kernel/index.ts';
import { developmentPolicy, PRODUCTION_POLICY } from '../policy.ts';
import type { Evidence } from '../types.ts';
import {
  createSimRoot,
  decodeSimAttester,
  decodeSimRoot,
  encodeSimAttester,
  encodeSimRoot,
  issueSimAttester,
  SimBackend,
  SimVerifier,
} from './index.ts';

const measurement = new Uint8Array(randomBytes(32));
const reportData = new Uint8Array(randomBytes(64));
const now = new Date('2026-11-23T12:00:00Z');

async function setup() {
  const root = createSimRoot();
  const attester = issueSimAttester(root, { now });
  const backend = new SimBackend({ attester, measurement, now: () => now });
  const evidence = await backend.collect(reportData);
  return { root, attester, evidence, verifier: new SimVerifier({ roots: [root.publicKey] }) };
}

const codes = (a: { reasons: { code: string }[] }) => a.reasons.map((r) => r.code);

test('sim evidence is marked simulation in every field and accepted only as a warning', async () => {
  const { evidence, verifier } = await setup();
  assert.equal(evidence.kind, 'sim');
  assert.equal(evidence.body.simulation, true);
  assert.equal(evidence.body.debug, true);
  assert.equal(evidence.body.tcbStatus, 'Simulation');
  const a = await verifier.appraise(evidence, {
    policy: developmentPolicy(),
    now,
    expectedReportData: reportData,
  });
  assert.deepEqual([a.valid, a.accepted, a.status], [true, true, 'warning']);
  assert.equal(a.debug, true);
  assert.equal(a.claims.simulation, true);
  assert.equal(a.measurement, Buffer.from(measurement).toString('hex'));
});

test('a production policy rejects sim evidence', async () => {
  const { evidence, verifier } = await setup();
  const a = await verifier.appraise(evidence, { policy: PRODUCTION_POLICY, now });
  assert.equal(a.valid, true);
  assert.equal(a.accepted, false);
  assert.equal(a.status, 'contraindicated');
  assert.ok(codes(a).includes('ATTESTATION_SIMULATION_NOT_ALLOWED'));
  assert.ok(codes(a).includes('ATTESTATION_DEBUG_ENABLED'));
});

test('policy checks: binding, measurement reference values, age', async () => {
  const { evidence, verifier } = await setup();
  const dev = developmentPolicy();
  const other = new Uint8Array(64).fill(9);
  assert.deepEqual(
    codes(await verifier.appraise(evidence, { policy: dev, now, expectedReportData: other })),
    ['ATTESTATION_REPORT_DATA_MISMATCH'],
  );
  const pinned = { ...dev, referenceValues: { sim: { measurement: ['00'.repeat(32)] } } };
  assert.deepEqual(codes(await verifier.appraise(evidence, { policy: pinned, now })), [
    'ATTESTATION_MEASUREMENT_MISMATCH',
  ]);
  const ok = {
    ...dev,
    referenceValues: { sim: { measurement: [Buffer.from(measurement).toString('hex')] } },
  };
  assert.equal((await verifier.appraise(evidence, { policy: ok, now })).accepted, true);
  const later = new Date(now.getTime() + (dev.maxEvidenceAgeSeconds + 5) * 1000);
  assert.deepEqual(codes(await verifier.appraise(evidence, { policy: dev, now: later })), [
    'ATTESTATION_STALE',
  ]);
});

test('validity: unknown root, forged certificate, tampered quote, wrong shape', async () => {
  const { evidence, verifier, attester } = await setup();
  const dev = developmentPolicy();
  const stranger = new SimVerifier({ roots: [createSimRoot().publicKey] });
  const a = await stranger.appraise(evidence, { policy: dev, now });
  assert.equal(a.valid, false);
  assert.deepEqual(codes(a), ['ATTESTATION_CHAIN_INVALID']);

  // An attester certified by a root the verifier does not know, presenting the trusted root's key.
  const rogue = issueSimAttester({ ...createSimRoot() }, { now });
  const forgedBody = { ...evidence.body, cert: rogue.cert, certSignature: rogue.certSignature };
  assert.equal(
    (await verifier.appraise({ ...evidence, body: forgedBody }, { policy: dev, now })).valid,
    false,
  );

  const tampered: Evidence = { ...evidence, reportData: Uint8Array.from(reportData).fill(1, 0, 1) };
  tampered.reportData[0] ^= 0xff;
  const t = await verifier.appraise(tampered, { policy: dev, now });
  assert.ok(codes(t).includes('ATTESTATION_SIGNATURE_INVALID'));
  const older = await verifier.appraise(
    { ...evidence, body: { ...evidence.body, timestamp: (evidence.body.timestamp as number) - 1 } },
    { policy: dev, now },
  );
  assert.ok(codes(older).includes('ATTESTATION_SIGNATURE_INVALID'));
  const notSim = await verifier.appraise(
    { ...evidence, body: { ...evidence.body, simulation: false } },
    { policy: dev, now },
  );
  assert.deepEqual(codes(notSim), ['ATTESTATION_MALFORMED']);
  const expired = await verifier.appraise(evidence, {
    policy: dev,
    now: new Date(now.getTime() + 400 * 86400e3),
  });
  assert.ok(codes(expired).includes('ATTESTATION_CHAIN_INVALID'));
  assert.equal(attester.publicKey.length, 32);
});

test('root and attester encode and decode', () => {
  const root = createSimRoot();
  assert.deepEqual(decodeSimRoot(encodeSimRoot(root)), root);
  const a = issueSimAttester(root);
  assert.deepEqual(decodeSimAttester(encodeSimAttester(a)), a);
  assert.throws(() => decodeSimRoot(encodeCanonical(['ferry/sim-root/v1', {}])));
  assert.throws(() => new SimBackend({ attester: a, measurement: new Uint8Array(3) }), /measurement/);
});
