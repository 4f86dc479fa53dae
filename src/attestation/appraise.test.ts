import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { FerryError } from '../kernel/index.ts';
import { appraiseEvidence, defaultVerifiers, VerifierRegistry } from './appraise.ts';
import { developmentPolicy, PRODUCTION_POLICY } from './policy.ts';
import { createSimRoot, issueSimAttester, SimBackend } from './sim/index.ts';
import type { Evidence, Verifier } from './types.ts';

const V = new URL('../../test/vectors/', import.meta.url);
const AT = new Date('2025-07-01T00:00:00Z');
const report = new Uint8Array(readFileSync(new URL('sev-snp-milan/attestation.bin', V)));
const vcek = new Uint8Array(readFileSync(new URL('sev-snp-milan/vcek.der', V)));
const quote = new Uint8Array(readFileSync(new URL('intel-dcap/tdx_quote', V)));
const collateral = readFileSync(new URL('intel-dcap/tdx_quote_collateral.json', V), 'utf8');

test('dispatches by kind to the default verifiers', async () => {
  const snp = await appraiseEvidence(
    { kind: 'sev-snp', reportData: report.slice(0x50, 0x90), body: { report, vcek } },
    { policy: PRODUCTION_POLICY, now: AT },
  );
  assert.deepEqual([snp.kind, snp.valid, snp.accepted], ['sev-snp', true, false]);
  const tdx = await appraiseEvidence(
    { kind: 'tdx', reportData: quote.slice(568, 632), body: { quote, collateral } },
    { policy: PRODUCTION_POLICY, now: AT },
  );
  assert.deepEqual([tdx.kind, tdx.valid, tdx.accepted], ['tdx', true, true]);
  assert.deepEqual(defaultVerifiers().kinds().sort(), ['sev-snp', 'sgx', 'tdx']);
});

test('malformed envelopes and unconfigured kinds are reported, not thrown', async () => {
  const ctx = { policy: developmentPolicy(), now: AT };
  const codes = async (e: unknown) => (await appraiseEvidence(e as Evidence, ctx)).reasons[0].code;
  assert.equal(
    await codes({ kind: 'nope', reportData: new Uint8Array(64), body: {} }),
    'ATTESTATION_MALFORMED',
  );
  assert.equal(
    await codes({ kind: 'tdx', reportData: new Uint8Array(63), body: {} }),
    'ATTESTATION_MALFORMED',
  );
  assert.equal(
    await codes({ kind: 'tdx', reportData: new Uint8Array(64), body: null }),
    'ATTESTATION_MALFORMED',
  );
  assert.equal(await codes(null), 'ATTESTATION_MALFORMED');
  assert.equal(
    await codes({ kind: 'tpm2', reportData: new Uint8Array(64), body: {} }),
    'ATTESTATION_KIND_NOT_ALLOWED',
  );
  const sim = await appraiseEvidence(
    { kind: 'sim', reportData: new Uint8Array(64), body: {} },
    { policy: PRODUCTION_POLICY, now: AT },
  );
  assert.equal(sim.reasons[0].code, 'ATTESTATION_SIMULATION_NOT_ALLOWED');
});

test('a registered verifier is used; its FerryErrors become reasons', async () => {
  const throwing: Verifier = {
    kind: 'sim',
    appraise: async () => {
      throw new FerryError('ATTESTATION_SIGNATURE_INVALID', 'bad sim signature');
    },
  };
  const reg = new VerifierRegistry([throwing]);
  const a = await appraiseEvidence(
    { kind: 'sim', reportData: new Uint8Array(64), body: {} },
    { policy: developmentPolicy(), now: AT },
    reg,
  );
  assert.deepEqual([a.valid, a.reasons[0].code], [false, 'ATTESTATION_SIGNATURE_INVALID']);
  assert.throws(
    () => reg.register({ kind: 'x' } as unknown as Verifier),
    (e) => e instanceof FerryError,
  );
  await assert.rejects(
    appraiseEvidence(
      { kind: 'sim', reportData: new Uint8Array(64), body: {} },
      { policy: developmentPolicy(), now: new Date(Number.NaN) },
      reg,
    ),
  );
});

test('sim evidence: verified when a sim root is configured, accepted only by a policy that allows sim', async () => {
  const root = createSimRoot();
  const now = new Date();
  const backend = new SimBackend({
    attester: issueSimAttester(root, { now }),
    measurement: new Uint8Array(32).fill(3),
    now: () => now,
  });
  const rd = new Uint8Array(64).fill(9);
  const ev = await backend.collect(rd);
  const reg = defaultVerifiers({ sim: { roots: [root.publicKey] } });
  assert.deepEqual(reg.kinds().sort(), ['sev-snp', 'sgx', 'sim', 'tdx']);
  const dev = await appraiseEvidence(ev, { policy: developmentPolicy(), now, expectedReportData: rd }, reg);
  assert.deepEqual([dev.valid, dev.accepted, dev.status], [true, true, 'warning']);
  const prod = await appraiseEvidence(ev, { policy: PRODUCTION_POLICY, now }, reg);
  assert.equal(prod.accepted, false);
  assert.ok(prod.reasons.some((r) => r.code === 'ATTESTATION_SIMULATION_NOT_ALLOWED'));
  const otherRoot = defaultVerifiers({ sim: { roots: [createSimRoot().publicKey] } });
  assert.equal((await appraiseEvidence(ev, { policy: developmentPolicy(), now }, otherRoot)).valid, false);
});
