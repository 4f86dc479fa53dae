import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isFerryError, toHex } from '../../kernel/index.ts';
import { parseCollateral, TdxVerifier } from '../dcap/verify.ts';
import { developmentPolicy, parsePolicy } from '../policy.ts';
import { SevSnpVerifier } from '../sev-snp/verify.ts';
import { parsePemCertificates } from '../sev-snp/roots.ts';
import { buildSnpCertTable, parseSnpCertTable, reportDataOf, SNP_CERT_GUIDS, TsmBackend } from './backend.ts';
import { FakeTsm } from './fake-tsm.ts';

const V = new URL('../../../test/vectors/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, V)));
const TDX_QUOTE = read('intel-dcap/tdx_quote');
const SNP_REPORT = read('sev-snp-milan/attestation.bin');
const VCEK = read('sev-snp-milan/vcek.der');
const [ASK, ARK] = parsePemCertificates(read('sev-snp-milan/ask_ark_milan.pem'), 'chain');
const AT = new Date('2025-07-01T00:00:00Z');
const TDX_RD = TDX_QUOTE.slice(568, 632);
const SNP_RD = SNP_REPORT.slice(0x50, 0x90);

test('tdx over the fake configfs-tsm tree: protocol, evidence, appraisal', async () => {
  const fake = await new FakeTsm({ provider: 'tdx_guest', outblob: () => TDX_QUOTE }).mount();
  const backend = new TsmBackend({ kind: 'tdx', root: fake.root, fs: fake.fs });
  const ev = await backend.collect(TDX_RD);
  assert.equal(ev.kind, 'tdx');
  assert.equal(toHex(ev.body.quote as Uint8Array), toHex(TDX_QUOTE));
  assert.deepEqual(
    fake.log.map((l) => l.split(' ')[0]),
    ['mkdir', 'write', 'rmdir'],
  );
  const coll = parseCollateral(readFileSync(new URL('intel-dcap/tdx_quote_collateral.json', V), 'utf8'));
  const verifier = new TdxVerifier({ collateralProvider: async () => coll });
  const ctx = { now: AT, expectedReportData: TDX_RD };
  const unpinned = await verifier.appraise(ev, { ...ctx, policy: developmentPolicy() });
  assert.deepEqual(
    [unpinned.valid, ...unpinned.reasons.map((r) => r.code)],
    [true, 'ATTESTATION_NO_REFERENCE_VALUES'],
  );
  const c = unpinned.claims as Record<string, string>;
  const pinned = parsePolicy({
    ...developmentPolicy(),
    referenceValues: { tdx: { mrTd: [c.mrTd], rtmr0: [c.rtmr0], rtmr1: [c.rtmr1], rtmr2: [c.rtmr2] } },
  });
  const a = await verifier.appraise(ev, { ...ctx, policy: pinned });
  assert.equal(a.accepted, true, JSON.stringify(a.reasons));
});

test('sev-snp over the fake tree: auxblob certificate table becomes vcek and chain', async () => {
  const aux = buildSnpCertTable([
    { guid: SNP_CERT_GUIDS.vcek, der: VCEK },
    { guid: SNP_CERT_GUIDS.ask, der: new Uint8Array(ASK.raw) },
    { guid: SNP_CERT_GUIDS.ark, der: new Uint8Array(ARK.raw) },
  ]);
  assert.equal(parseSnpCertTable(aux).size, 3);
  const fake = await new FakeTsm({ provider: 'sev_guest', outblob: () => SNP_REPORT, auxblob: aux }).mount();
  const backend = new TsmBackend({ kind: 'sev-snp', root: fake.root, fs: fake.fs, privlevel: 0 });
  const ev = await backend.collect(SNP_RD);
  assert.equal(toHex(ev.body.vcek as Uint8Array), toHex(VCEK));
  assert.match(
    new TextDecoder().decode(ev.body.chain as Uint8Array),
    /BEGIN CERTIFICATE[\s\S]*BEGIN CERTIFICATE/,
  );
  assert.deepEqual(
    fake.log.map((l) =>
      l
        .split(' ')
        .slice(0, 2)
        .join(' ')
        .replace(/ ferry-.*/, ''),
    ),
    ['mkdir', 'write privlevel', 'write inblob', 'rmdir'],
  );
  const ctx = { now: AT, expectedReportData: SNP_RD };
  const unpinned = await new SevSnpVerifier().appraise(ev, { ...ctx, policy: developmentPolicy() });
  assert.deepEqual(
    [unpinned.valid, ...unpinned.reasons.map((r) => r.code)],
    [true, 'ATTESTATION_NO_REFERENCE_VALUES'],
  );
  const pinned = parsePolicy({
    ...developmentPolicy(),
    referenceValues: { 'sev-snp': { measurement: [unpinned.measurement] } },
  });
  const a = await new SevSnpVerifier().appraise(ev, { ...ctx, policy: pinned });
  assert.deepEqual([a.valid, a.accepted], [true, true]);
  assert.equal(a.claims.product, 'Milan');
});

test('generation mismatch is retried, and gives up after maxAttempts', async () => {
  const fake = await new FakeTsm({ provider: 'tdx_guest', outblob: () => TDX_QUOTE }).mount();
  fake.interfere = 2;
  const ev = await new TsmBackend({ kind: 'tdx', root: fake.root, fs: fake.fs, maxAttempts: 3 }).collect(
    TDX_RD,
  );
  assert.equal(ev.kind, 'tdx');
  assert.equal(fake.log.filter((l) => l.startsWith('mkdir')).length, 3);
  assert.equal(fake.log.filter((l) => l.startsWith('rmdir')).length, 3);
  fake.interfere = 5;
  await assert.rejects(
    new TsmBackend({ kind: 'tdx', root: fake.root, fs: fake.fs, maxAttempts: 2 }).collect(TDX_RD),
    (e) => isFerryError(e, 'ATTESTATION_BACKEND_UNAVAILABLE') && /generation/.test(e.message),
  );
});

test('missing tree, wrong provider, wrong echo, bad arguments, abort', async () => {
  const fake = new FakeTsm({ provider: 'tdx_guest', outblob: () => TDX_QUOTE }); // not mounted
  await assert.rejects(new TsmBackend({ kind: 'tdx', root: fake.root, fs: fake.fs }).collect(TDX_RD), (e) =>
    isFerryError(e, 'ATTESTATION_BACKEND_UNAVAILABLE'),
  );
  await assert.rejects(
    new TsmBackend({ kind: 'tdx', root: '/nonexistent/ferry/tsm/report' }).collect(TDX_RD),
    (e) => isFerryError(e, 'ATTESTATION_BACKEND_UNAVAILABLE'),
  );
  await fake.mount();
  await assert.rejects(
    new TsmBackend({ kind: 'sev-snp', root: fake.root, fs: fake.fs }).collect(SNP_RD),
    (e) => isFerryError(e, 'ATTESTATION_BACKEND_UNAVAILABLE') && /provider/.test(e.message),
  );
  await assert.rejects(
    new TsmBackend({ kind: 'tdx', root: fake.root, fs: fake.fs }).collect(new Uint8Array(64)),
    (e) => isFerryError(e, 'ATTESTATION_REPORT_DATA_MISMATCH'),
  );
  await assert.rejects(
    new TsmBackend({ kind: 'tdx', root: fake.root, fs: fake.fs }).collect(new Uint8Array(32)),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  await assert.rejects(
    new TsmBackend({ kind: 'tdx', root: fake.root, fs: fake.fs }).collect(TDX_RD, AbortSignal.abort()),
    (e) => (e as Error).name === 'AbortError',
  );
  assert.throws(
    () => new TsmBackend({ kind: 'sgx' as never }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  assert.throws(
    () => new TsmBackend({ kind: 'tdx', privlevel: 1 }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  assert.equal(reportDataOf('tdx', new Uint8Array(10)), null);
  assert.throws(
    () => parseSnpCertTable(new Uint8Array(30).fill(1)),
    (e) => isFerryError(e, 'ATTESTATION_MALFORMED'),
  );
});
