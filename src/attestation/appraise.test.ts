import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { FerryError, fromHex, toHex } from '../kernel/index.ts';
import { appraiseEvidence, defaultVerifiers, VerifierRegistry } from './appraise.ts';
import { developmentPolicy, PRODUCTION_POLICY, parsePolicy } from './policy.ts';
import { AR4SI, buildAttestationResult, ed25519PublicKey } from './result.ts';
import { createSimRoot, issueSimAttester, SimBackend } from './sim/index.ts';
import type { AppraisalPolicy, Evidence, Verifier } from './types.ts';

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
  assert.deepEqual([tdx.kind, tdx.valid, tdx.accepted], ['tdx', true, false]);
  assert.deepEqual(defaultVerifiers().kinds().sort(), ['sev-snp', 'sgx', 'tdx']);
});

// Every kind's real sample (test/vectors, provenance in each README) with the reference values
// read from the sample by hand (the kinds' own verify tests check those claims field by field).
const sgxQuote = new Uint8Array(readFileSync(new URL('intel-dcap/sgx_quote', V)));
const sgxCollateral = readFileSync(new URL('intel-dcap/sgx_quote_collateral.json', V), 'utf8');
const T = new URL('tpm2/ecc-sha256/', V);
const tpm2Pcrs = JSON.parse(readFileSync(new URL('pcrs.json', T), 'utf8')).sha256 as Record<string, string>;
const tpm2Evidence: Evidence = {
  kind: 'tpm2',
  reportData: fromHex(readFileSync(new URL('tpm2/report-data.hex', V), 'utf8').trim()),
  body: {
    quote: new Uint8Array(readFileSync(new URL('quote.msg', T))),
    signature: new Uint8Array(readFileSync(new URL('quote.sig', T))),
    akPublic: new Uint8Array(readFileSync(new URL('ak.tpm2b', T))),
    ekCert: null,
    akCert: null,
    pcrs: { sha256: Object.fromEntries(Object.entries(tpm2Pcrs).map(([i, v]) => [i, fromHex(v)])) },
  },
};
const SAMPLES: { evidence: Evidence; referenceValues: AppraisalPolicy['referenceValues'] }[] = [
  {
    evidence: { kind: 'sev-snp', reportData: report.slice(0x50, 0x90), body: { report, vcek } },
    referenceValues: {
      'sev-snp': {
        measurement: [
          'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01',
        ],
      },
    },
  },
  {
    evidence: { kind: 'tdx', reportData: quote.slice(568, 632), body: { quote, collateral } },
    referenceValues: {
      tdx: {
        mrTd: [
          '91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7',
        ],
        rtmr0: [
          '44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0',
        ],
        rtmr1: [
          '0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378',
        ],
        rtmr2: [
          'd833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132',
        ],
      },
    },
  },
  {
    evidence: {
      kind: 'sgx',
      reportData: sgxQuote.slice(368, 432),
      body: { quote: sgxQuote, collateral: sgxCollateral },
    },
    referenceValues: {
      sgx: { mrEnclave: ['33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb'] },
    },
  },
  { evidence: tpm2Evidence, referenceValues: { tpm2: { pcrs: { sha256: { '23': [tpm2Pcrs['23']] } } } } },
];

test('every hardware kind: a real sample is refused without reference values, accepted when they are pinned', async () => {
  const registry = defaultVerifiers({ tpm2: { trustedCas: [], requireAkProof: false } });
  // The sample's tolerances: the SEV-SNP sample is a debug guest, the SGX sample's TCB needs
  // configuration; everything else is production.
  const settings = {
    ...PRODUCTION_POLICY,
    name: 'sample-settings',
    allowDebug: true,
    allowedTcbStatuses: ['UpToDate', 'ConfigurationAndSWHardeningNeeded'],
  };
  for (const { evidence, referenceValues } of SAMPLES) {
    const k = evidence.kind;
    for (const policy of [parsePolicy(settings), developmentPolicy(), PRODUCTION_POLICY]) {
      const a = await appraiseEvidence(evidence, { policy, now: AT }, registry);
      assert.equal(a.valid, true, `${k}: ${JSON.stringify(a.reasons)}`);
      assert.equal(a.accepted, false, k);
      assert.ok(
        a.reasons.some((r) => r.code === 'ATTESTATION_NO_REFERENCE_VALUES'),
        `${k} under ${policy.name}: ${JSON.stringify(a.reasons)}`,
      );
      // The EAR-shaped result carries the reason and calls the runtime unrecognized.
      const ear = buildAttestationResult(a, {
        evidence,
        policy,
        verifierId: 'v',
        verifierKey: ed25519PublicKey(new Uint8Array(32).fill(1)),
        issuedAt: AT,
      });
      assert.equal(ear.status, 'contraindicated');
      assert.ok(ear.reasons.some((r) => r.code === 'ATTESTATION_NO_REFERENCE_VALUES'));
      assert.equal(ear.trustVector.executables, AR4SI.executables.unrecognizedRuntime);
    }
    // Reference values of another kind do not identify this one.
    const other = k === 'tdx' ? SAMPLES[0].referenceValues : SAMPLES[1].referenceValues;
    const wrongKind = parsePolicy({ ...settings, referenceValues: other });
    assert.equal(
      (await appraiseEvidence(evidence, { policy: wrongKind, now: AT }, registry)).accepted,
      false,
    );
    const pinned = parsePolicy({ ...settings, referenceValues });
    const ok = await appraiseEvidence(evidence, { policy: pinned, now: AT }, registry);
    assert.deepEqual([k, ok.accepted], [k, true], JSON.stringify(ok.reasons));
    const ear = buildAttestationResult(ok, {
      evidence,
      policy: pinned,
      verifierId: 'v',
      verifierKey: ed25519PublicKey(new Uint8Array(32).fill(1)),
      issuedAt: AT,
    });
    assert.equal(ear.trustVector.executables, AR4SI.executables.approvedRuntime);
  }
});

test('a registered verifier that ignores reference values cannot accept unidentified software', async () => {
  const lax: Verifier = {
    kind: 'sev-snp',
    appraise: async (ev) => ({
      kind: 'sev-snp',
      valid: true,
      accepted: true,
      status: 'affirming',
      tcbStatus: 'UpToDate',
      advisoryIds: [],
      measurement: '00'.repeat(48),
      reportData: toHex(ev.reportData),
      debug: false,
      reasons: [],
      claims: {},
    }),
  };
  const ev: Evidence = { kind: 'sev-snp', reportData: new Uint8Array(64), body: {} };
  const a = await appraiseEvidence(ev, { policy: PRODUCTION_POLICY, now: AT }, new VerifierRegistry([lax]));
  assert.deepEqual(
    [a.accepted, a.status, a.reasons.map((r) => r.code)],
    [false, 'contraindicated', ['ATTESTATION_NO_REFERENCE_VALUES']],
  );
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
  // sim goes without reference values (only allowSim parties, on development chains, accept it).
  assert.deepEqual([dev.valid, dev.accepted, dev.status], [true, true, 'warning']);
  const prod = await appraiseEvidence(ev, { policy: PRODUCTION_POLICY, now }, reg);
  assert.equal(prod.accepted, false);
  assert.ok(prod.reasons.some((r) => r.code === 'ATTESTATION_SIMULATION_NOT_ALLOWED'));
  const otherRoot = defaultVerifiers({ sim: { roots: [createSimRoot().publicKey] } });
  assert.equal((await appraiseEvidence(ev, { policy: developmentPolicy(), now }, otherRoot)).valid, false);
});
