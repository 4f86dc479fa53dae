import assert from 'node:assert/strict';
import { createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isFerryError, toHex } from '../../kernel/index.ts';
import { developmentPolicy, parsePolicy, PRODUCTION_POLICY } from '../policy.ts';
import type { AppraisalPolicy } from '../types.ts';
import { parseSnpReport, SIGNED_LENGTH } from './report.ts';
import { AMD_ROOT_CHAINS, builtInChains, parsePemCertificates } from './roots.ts';
import { appraiseSevSnp, SevSnpVerifier, verifySnpReport } from './verify.ts';

const V = new URL('../../../test/vectors/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, V)));
const REPORT = read('sev-snp-milan/attestation.bin');
const VCEK = read('sev-snp-milan/vcek.der');
const MILAN_CHAIN = read('sev-snp-milan/ask_ark_milan.pem');
const GENOA_CHAIN = read('amd-roots/ask_ark_genoa.pem');
const NOW = new Date('2025-07-01T00:00:00Z');
const MEASUREMENT =
  'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01';
const REPORT_DATA = '0102030405' + '00'.repeat(59);

const appraise = (policy: AppraisalPolicy, report = REPORT, vcek = VCEK, chain?: Uint8Array) =>
  appraiseSevSnp(
    {
      kind: 'sev-snp',
      reportData: report.slice(0x50, 0x90),
      body: chain ? { report, vcek, chain } : { report, vcek },
    },
    { policy, now: NOW },
  );

test('built-in roots equal the AMD chain files', () => {
  const files: Record<string, string> = {
    'Milan vcek': 'ask_ark_milan.pem',
    'Milan vlek': 'ask_ark_milan_vlek.pem',
    'Genoa vcek': 'ask_ark_genoa.pem',
    'Genoa vlek': 'ask_ark_genoa_vlek.pem',
    'Turin vcek': 'ask_ark_turin_vcek.pem',
    'Turin vlek': 'ask_ark_turin_vlek.pem',
  };
  assert.equal(AMD_ROOT_CHAINS.length, 6);
  for (const c of AMD_ROOT_CHAINS) {
    const file = new TextDecoder().decode(read(`amd-roots/${files[`${c.product} ${c.key}`]}`));
    // The Turin files use CRLF line ends; the built-in strings use LF.
    assert.equal(c.pem.trim(), file.replace(/\r\n/g, '\n').trim(), `${c.product} ${c.key}`);
  }
  for (const c of builtInChains()) {
    assert.ok(c.ark.verify(c.ark.publicKey), `${c.product} ARK self-signed`);
    assert.ok(c.ask.verify(c.ark.publicKey), `${c.product} ${c.key} ASK signed by ARK`);
  }
});

test('report v2 fields at their offsets', () => {
  const r = parseSnpReport(REPORT);
  assert.equal(r.version, 2);
  assert.equal(r.policy.raw, 0xb0000n);
  assert.equal(r.policy.debug, true);
  assert.equal(r.policy.smt, true);
  assert.equal(r.policy.migrationAgent, false);
  assert.equal(r.vmpl, 0);
  assert.equal(r.signatureAlgo, 1);
  assert.equal(toHex(r.measurement), MEASUREMENT);
  assert.equal(toHex(r.reportData), REPORT_DATA);
  assert.equal(toHex(r.hostData), '00'.repeat(32));
  for (const t of [r.currentTcb, r.reportedTcb, r.launchTcb]) {
    assert.deepEqual(t, { bootloader: 2, tee: 0, snp: 5, microcode: 68, fmc: null });
  }
  assert.equal(r.cpuidFamily, null);
  assert.equal(r.launchMitVector, null);
});

test('report v3 and v5 layouts: CPUID family selects the Turin TCB layout; v5 mitigation vectors', () => {
  const b = Uint8Array.from(REPORT);
  new DataView(b.buffer).setUint32(0, 5, true);
  b[0x188] = 0x1a; // Turin
  b[0x189] = 0x02;
  b[0x18a] = 0x01;
  new DataView(b.buffer).setBigUint64(0x1f8, 0x1234n, true);
  new DataView(b.buffer).setBigUint64(0x200, 0x5678n, true);
  // Turin TCB_VERSION: fmc, bootloader, tee, snp, 3 reserved, microcode.
  b.set([1, 2, 3, 4, 0, 0, 0, 9], 0x180);
  const r = parseSnpReport(b);
  assert.deepEqual([r.version, r.cpuidFamily, r.cpuidModel, r.cpuidStepping], [5, 0x1a, 2, 1]);
  assert.deepEqual(r.reportedTcb, { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 9 });
  assert.equal(r.launchMitVector, 0x1234n);
  assert.equal(r.currentMitVector, 0x5678n);
  new DataView(b.buffer).setUint32(0, 3, true);
  b[0x188] = 0x19; // Milan/Genoa family
  const r3 = parseSnpReport(b);
  assert.equal(r3.launchMitVector, null);
  assert.deepEqual(r3.reportedTcb, { bootloader: 1, tee: 2, snp: 0, microcode: 9, fmc: null });
  new DataView(b.buffer).setUint32(0, 1, true);
  assert.throws(
    () => parseSnpReport(b),
    (e) => isFerryError(e, 'ATTESTATION_MALFORMED'),
  );
  assert.throws(
    () => parseSnpReport(REPORT.subarray(1)),
    (e) => isFerryError(e, 'ATTESTATION_MALFORMED'),
  );
});

test('Milan sample: valid; refused without reference values and for DEBUG; a debug-allowing policy pinning its measurement accepts it', () => {
  const v = verifySnpReport({ report: REPORT, vcek: VCEK, now: NOW });
  assert.equal(v.product, 'Milan');
  assert.equal(v.productName, 'Milan-B0');
  assert.equal(v.keyKind, 'vcek');
  const viaChain = verifySnpReport({ report: REPORT, vcek: VCEK, chain: MILAN_CHAIN, now: NOW });
  assert.equal(viaChain.product, 'Milan');

  const prod = appraise(PRODUCTION_POLICY);
  assert.equal(prod.valid, true);
  assert.equal(prod.accepted, false);
  assert.equal(prod.status, 'contraindicated');
  assert.equal(prod.measurement, MEASUREMENT);
  assert.equal(prod.reportData, REPORT_DATA);
  assert.equal(prod.debug, true);
  assert.equal(prod.tcbStatus, 'UpToDate');
  assert.deepEqual(
    prod.reasons.map((r) => r.code),
    ['ATTESTATION_NO_REFERENCE_VALUES', 'ATTESTATION_DEBUG_ENABLED'],
  );
  const pin = { 'sev-snp': { measurement: [MEASUREMENT] } };
  const pinnedProd = parsePolicy({ ...PRODUCTION_POLICY, name: 'pinned', referenceValues: pin });
  assert.deepEqual(
    appraise(pinnedProd).reasons.map((r) => r.code),
    ['ATTESTATION_DEBUG_ENABLED'],
  );
  const allowDebug = parsePolicy({ ...pinnedProd, name: 'debug-ok', allowDebug: true });
  const ok = appraise(allowDebug);
  assert.deepEqual([ok.valid, ok.accepted, ok.status], [true, true, 'affirming']);
  // The attacker's case: debug allowed, every TCB tolerated, but no measurement pinned.
  const dev = appraise(developmentPolicy());
  assert.deepEqual(
    [dev.accepted, ...dev.reasons.map((r) => r.code)],
    [false, 'ATTESTATION_NO_REFERENCE_VALUES'],
  );
  assert.ok(appraise(parsePolicy({ ...developmentPolicy(), referenceValues: pin })).accepted);
});

test('policy reference values, minimum TCB, VMPL, SMT and binding', () => {
  const base = { ...PRODUCTION_POLICY, allowDebug: true };
  const p = (rv: object) => parsePolicy({ ...base, name: 'x', referenceValues: { 'sev-snp': rv } });
  assert.ok(appraise(p({ measurement: [MEASUREMENT], hostData: ['00'.repeat(32)], maxVmpl: 0 })).accepted);
  const codes = (rv: object) => appraise(p(rv)).reasons.map((r) => r.code);
  assert.deepEqual(codes({ measurement: ['00'.repeat(48)] }), ['ATTESTATION_MEASUREMENT_MISMATCH']);
  const m = { measurement: [MEASUREMENT] };
  assert.deepEqual(codes({ ...m, hostData: ['11'.repeat(32)] }), ['ATTESTATION_MEASUREMENT_MISMATCH']);
  // host_data is chosen by the host: it does not identify the software.
  assert.deepEqual(codes({ hostData: ['00'.repeat(32)] }), ['ATTESTATION_NO_REFERENCE_VALUES']);
  assert.deepEqual(codes({ ...m, allowSmt: false }), ['ATTESTATION_CONFIGURATION_REJECTED']);
  assert.deepEqual(codes({ ...m, minTcb: { bootloader: 2, tee: 0, snp: 5, microcode: 68 } }), []);
  const old = appraise(p({ ...m, minTcb: { bootloader: 2, tee: 0, snp: 6, microcode: 68 } }));
  assert.equal(old.tcbStatus, 'OutOfDate');
  assert.equal(old.valid, true);
  assert.ok(old.reasons.every((r) => r.code === 'ATTESTATION_TCB_OUT_OF_DATE'));
  const bound = appraiseSevSnp(
    { kind: 'sev-snp', reportData: REPORT.slice(0x50, 0x90), body: { report: REPORT, vcek: VCEK } },
    { policy: p(m), now: NOW, expectedReportData: new Uint8Array(64) },
  );
  assert.deepEqual(
    bound.reasons.map((r) => r.code),
    ['ATTESTATION_REPORT_DATA_MISMATCH'],
  );
});

test('single bit flips anywhere in the signed region or the signature are rejected', () => {
  const policy = developmentPolicy();
  // Deterministic sample: every 7th bit of the signed region plus every bit of r's first bytes.
  const positions: number[] = [];
  for (let bit = 0; bit < SIGNED_LENGTH * 8; bit += 7) positions.push(bit);
  for (let bit = SIGNED_LENGTH * 8; bit < (SIGNED_LENGTH + 144) * 8; bit += 5) positions.push(bit);
  assert.ok(positions.length > 900);
  for (const bit of positions) {
    const b = Uint8Array.from(REPORT);
    b[bit >> 3] ^= 1 << (bit & 7);
    const a = appraise(policy, b);
    assert.equal(a.valid, false, `bit ${bit} (byte 0x${(bit >> 3).toString(16)})`);
    assert.equal(a.accepted, false);
  }
});

test('a wrong chain (Genoa) or a non-AMD ARK is rejected', () => {
  const genoa = appraise(developmentPolicy(), REPORT, VCEK, GENOA_CHAIN);
  assert.equal(genoa.valid, false);
  assert.equal(genoa.reasons[0].code, 'ATTESTATION_CHAIN_INVALID');
  const testChain = read('sev-snp-milan/synthetic/ask_ark_test.pem');
  const untrusted = appraise(developmentPolicy(), REPORT, VCEK, testChain);
  assert.equal(untrusted.reasons[0].code, 'ATTESTATION_CHAIN_INVALID');
  assert.match(untrusted.reasons[0].message, /not an AMD root/);
});

test('certificates are judged at now: before the VCEK or after it expired is rejected', () => {
  for (const now of [new Date('2021-01-01T00:00:00Z'), new Date('2030-01-01T00:00:00Z')]) {
    assert.throws(
      () => verifySnpReport({ report: REPORT, vcek: VCEK, now }),
      (e) => isFerryError(e, 'ATTESTATION_COLLATERAL_EXPIRED'),
    );
  }
});

// Synthetic PKI (generated by us, see test/vectors/sev-snp-milan/synthetic/README.md).
const SYN = 'sev-snp-milan/synthetic/';
const testChain = read(`${SYN}ask_ark_test.pem`);
// The synthetic certificates were issued on 2026-11-23 for 100 years.
const SYN_NOW = new Date('2027-01-01T00:00:00Z');
const testArk = parsePemCertificates(testChain, 'test chain')[1];
function resign(report: Uint8Array): Uint8Array {
  const key = createPrivateKey(readFileSync(new URL(`${SYN}vcek.key`, V)));
  const sig = sign('sha384', report.subarray(0, SIGNED_LENGTH), { key, dsaEncoding: 'ieee-p1363' });
  const out = Uint8Array.from(report);
  out.fill(0, SIGNED_LENGTH, SIGNED_LENGTH + 144);
  out.set(Uint8Array.from(sig.subarray(0, 48)).reverse(), SIGNED_LENGTH);
  out.set(Uint8Array.from(sig.subarray(48)).reverse(), SIGNED_LENGTH + 72);
  return out;
}

test('synthetic chain: a matching VCEK verifies; a VCEK whose TCB or hwID does not match is rejected', () => {
  const report = resign(REPORT);
  const run = (vcek: string, r = report) =>
    verifySnpReport({
      report: r,
      vcek: read(SYN + vcek),
      chain: testChain,
      now: SYN_NOW,
      trustAnchors: [testArk],
    });
  assert.equal(run('vcek-good.der').keyKind, 'vcek');
  assert.throws(
    () => run('vcek-bl3.der'),
    (e) => isFerryError(e, 'ATTESTATION_CHAIN_INVALID') && /TCB does not match/.test(e.message),
  );
  assert.throws(
    () => run('vcek-badhwid.der'),
    (e) => isFerryError(e, 'ATTESTATION_CHAIN_INVALID') && /hwID/.test(e.message),
  );
  // A report whose reported_tcb changed (re-signed) no longer matches the good VCEK.
  const changed = Uint8Array.from(REPORT);
  changed[0x180] = 3;
  assert.throws(
    () => run('vcek-good.der', resign(changed)),
    (e) => isFerryError(e, 'ATTESTATION_CHAIN_INVALID'),
  );
  // Non-zero padding above r is refused even though r itself is intact.
  const padded = Uint8Array.from(report);
  padded[SIGNED_LENGTH + 60] = 1;
  assert.throws(
    () => run('vcek-good.der', padded),
    (e) => isFerryError(e, 'ATTESTATION_SIGNATURE_INVALID'),
  );
  // The real VCEK does not chain to the test ARK.
  assert.throws(
    () => verifySnpReport({ report, vcek: VCEK, chain: testChain, now: SYN_NOW, trustAnchors: [testArk] }),
    (e) => isFerryError(e, 'ATTESTATION_CHAIN_INVALID'),
  );
  assert.ok(testArk instanceof X509Certificate);
});

test('malformed bodies are reported, not thrown', () => {
  const bad = appraiseSevSnp(
    { kind: 'sev-snp', reportData: new Uint8Array(64), body: { report: new Uint8Array(10), vcek: VCEK } },
    { policy: PRODUCTION_POLICY, now: NOW },
  );
  assert.equal(bad.reasons[0].code, 'ATTESTATION_MALFORMED');
  const noVcek = appraiseSevSnp(
    { kind: 'sev-snp', reportData: new Uint8Array(64), body: { report: REPORT } },
    { policy: PRODUCTION_POLICY, now: NOW },
  );
  assert.equal(noVcek.reasons[0].code, 'ATTESTATION_MALFORMED');
  const wrongKind = appraiseSevSnp(
    { kind: 'tdx', reportData: new Uint8Array(64), body: { report: REPORT, vcek: VCEK } },
    { policy: PRODUCTION_POLICY, now: NOW },
  );
  assert.equal(wrongKind.reasons[0].code, 'ATTESTATION_MALFORMED');
  const shortRd = appraiseSevSnp(
    { kind: 'sev-snp', reportData: new Uint8Array(8), body: { report: REPORT, vcek: VCEK } },
    { policy: PRODUCTION_POLICY, now: NOW },
  );
  assert.equal(shortRd.reasons[0].code, 'ATTESTATION_MALFORMED');
  const garbage = appraise(PRODUCTION_POLICY, REPORT, new Uint8Array([1, 2, 3]));
  assert.equal(garbage.reasons[0].code, 'ATTESTATION_MALFORMED');
});

test('synthetic chain: a VLEK-signed report (signing_key 1) needs no hwID; a VLEK report is not checked against a VCEK chain', () => {
  const b = Uint8Array.from(REPORT);
  b[0x48] = 1 << 2; // signing_key = 1 (VLEK)
  const report = resign(b);
  const v = verifySnpReport({
    report,
    vcek: read(`${SYN}vcek-badhwid.der`),
    chain: testChain,
    now: SYN_NOW,
    trustAnchors: [testArk],
  });
  assert.equal(v.keyKind, 'vlek');
  // Without a chain only the built-in VLEK chains are tried, and none signs this key.
  assert.throws(
    () => verifySnpReport({ report, vcek: read(`${SYN}vcek-good.der`), now: SYN_NOW }),
    (e) => isFerryError(e, 'ATTESTATION_CHAIN_INVALID') && /VLEK/.test(e.message),
  );
  const none = Uint8Array.from(REPORT);
  none[0x48] = 7 << 2;
  assert.throws(
    () => verifySnpReport({ report: none, vcek: VCEK, now: NOW }),
    (e) => isFerryError(e, 'ATTESTATION_MALFORMED'),
  );
});

test('guest policy: migration agent and VMPL against the appraisal policy (synthetic chain)', async () => {
  const b = Uint8Array.from(REPORT);
  b[0x0a] |= 0x04; // policy bit 18: MIGRATE_MA
  b[0x30] = 2; // VMPL 2
  const report = resign(b);
  const verifier = new SevSnpVerifier({ trustAnchors: [testArk] });
  const ev = {
    kind: 'sev-snp' as const,
    reportData: report.slice(0x50, 0x90),
    body: { report, vcek: read(`${SYN}vcek-good.der`), chain: testChain },
  };
  const p = (rv: object) =>
    parsePolicy({
      ...developmentPolicy(),
      name: 'x',
      referenceValues: { 'sev-snp': { measurement: [MEASUREMENT], ...rv } },
    });
  const dflt = await verifier.appraise(ev, { policy: p({}), now: SYN_NOW });
  assert.equal(dflt.valid, true);
  assert.deepEqual(
    dflt.reasons.map((r) => r.code),
    ['ATTESTATION_CONFIGURATION_REJECTED'],
  );
  assert.equal(dflt.claims.migrationAgent, true);
  assert.equal(dflt.claims.vmpl, 2);
  const ok = await verifier.appraise(ev, {
    policy: p({ allowMigrationAgent: true, maxVmpl: 2 }),
    now: SYN_NOW,
  });
  assert.equal(ok.accepted, true, JSON.stringify(ok.reasons));
  const vmpl = await verifier.appraise(ev, {
    policy: p({ allowMigrationAgent: true, maxVmpl: 1 }),
    now: SYN_NOW,
  });
  assert.deepEqual(
    vmpl.reasons.map((r) => r.code),
    ['ATTESTATION_CONFIGURATION_REJECTED'],
  );
  assert.match(vmpl.reasons[0].message, /VMPL 2/);
  // The default verifier trusts only AMD: the same evidence is invalid there.
  const amdOnly = await new SevSnpVerifier().appraise(ev, {
    policy: p({ allowMigrationAgent: true }),
    now: SYN_NOW,
  });
  assert.equal(amdOnly.valid, false);
});

test('synthetic chain signed with PKCS#1 v1.5 instead of RSASSA-PSS is refused', () => {
  const chain = read(`${SYN}ask_ark_test_pkcs1.pem`);
  const ark = parsePemCertificates(chain, 'pkcs1 chain')[1];
  assert.throws(
    () =>
      verifySnpReport({
        report: resign(REPORT),
        vcek: read(`${SYN}vcek-pkcs1.der`),
        chain,
        now: SYN_NOW,
        trustAnchors: [ark],
      }),
    (e) => isFerryError(e, 'ATTESTATION_CHAIN_INVALID'),
  );
});
