import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { constants, Quote } from '@phala/dcap-qvl';
import { isFerryError, toHex } from '../../kernel/index.ts';
import { developmentPolicy, parsePolicy, PRODUCTION_POLICY } from '../policy.ts';
import type { AppraisalPolicy, Evidence } from '../types.ts';
import { INTEL_SGX_ROOT_CA_PEM, intelSgxRootCaDer } from './roots.ts';
import {
  classifyDcapError,
  DcapCache,
  parseCollateral,
  postSignatureRefusal,
  SgxVerifier,
  TdxVerifier,
  verifyDcapQuote,
} from './verify.ts';

const V = new URL('../../../test/vectors/intel-dcap/', import.meta.url);
const TDX_QUOTE = new Uint8Array(readFileSync(new URL('tdx_quote', V)));
const TDX_COLL = readFileSync(new URL('tdx_quote_collateral.json', V), 'utf8');
const SGX_QUOTE = new Uint8Array(readFileSync(new URL('sgx_quote', V)));
const SGX_COLL = readFileSync(new URL('sgx_quote_collateral.json', V), 'utf8');
const AT = new Date('2025-07-01T00:00:00Z');

const MR_TD =
  '91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7';
const RTMR0 =
  '44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0';
const RTMR1 =
  '0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378';
const RTMR2 =
  'd833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132';
const TDX_RD =
  '9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20';
const MR_ENCLAVE = '33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb';
const MR_SIGNER = '815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6';
const SGX_RD = toHex(new TextEncoder().encode('Hello, world!')) + '00'.repeat(64 - 13);

const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
const tdxEvidence = (quote = TDX_QUOTE, collateral = TDX_COLL): Evidence => ({
  kind: 'tdx',
  reportData: hex(TDX_RD),
  body: { quote, collateral },
});
const sgxEvidence = (quote = SGX_QUOTE, collateral = SGX_COLL): Evidence => ({
  kind: 'sgx',
  reportData: hex(SGX_RD),
  body: { quote, collateral },
});
const tdx = new TdxVerifier();
/** The production settings pinning the TDX sample's real firmware and RTMR 0-2 values. */
const TDX_PINNED = parsePolicy({
  ...PRODUCTION_POLICY,
  name: 'tdx-sample',
  referenceValues: { tdx: { mrTd: [MR_TD], rtmr0: [RTMR0], rtmr1: [RTMR1], rtmr2: [RTMR2] } },
});
const sgx = new SgxVerifier();

test("the built-in Intel SGX Root CA equals dcap-qvl's and the collateral chains' root", () => {
  assert.ok(intelSgxRootCaDer().equals(constants.TRUSTED_ROOT_CA_DER));
  const chain = JSON.parse(TDX_COLL).tcb_info_issuer_chain as string;
  const last = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)?.at(-1);
  assert.ok(last);
  assert.equal(
    new X509Certificate(last).fingerprint256,
    new X509Certificate(INTEL_SGX_ROOT_CA_PEM).fingerprint256,
  );
});

test('TDX sample at 2025-07-01: valid, UpToDate, no advisories, accepted when its values are pinned', async () => {
  const a = await tdx.appraise(tdxEvidence(), {
    policy: TDX_PINNED,
    now: AT,
    expectedReportData: hex(TDX_RD),
  });
  assert.equal(a.valid, true);
  assert.equal(a.accepted, true, JSON.stringify(a.reasons));
  assert.equal(a.status, 'affirming');
  assert.equal(a.tcbStatus, 'UpToDate');
  assert.deepEqual(a.advisoryIds, []);
  assert.equal(a.measurement, MR_TD);
  assert.equal(a.reportData, TDX_RD);
  assert.equal(a.debug, false);
  assert.equal(a.claims.rtmr0, RTMR0);
  assert.equal(a.claims.rtmr3, '00'.repeat(48));
  assert.equal(a.claims.tdAttributes, '0000001000000000');
  // The attacker's case: the same genuine quote under a policy that identifies no software.
  for (const policy of [PRODUCTION_POLICY, developmentPolicy()]) {
    const u = await tdx.appraise(tdxEvidence(), { policy, now: AT, expectedReportData: hex(TDX_RD) });
    assert.deepEqual([u.valid, u.accepted, u.status], [true, false, 'contraindicated']);
    assert.deepEqual(
      u.reasons.map((r) => r.code),
      ['ATTESTATION_NO_REFERENCE_VALUES'],
    );
  }
});

test('TDX reference values and binding', async () => {
  const base = { mrTd: [MR_TD], rtmr0: [RTMR0], rtmr1: [RTMR1], rtmr2: [RTMR2] };
  const p = (rv: object) => parsePolicy({ ...PRODUCTION_POLICY, name: 'x', referenceValues: { tdx: rv } });
  const codes = async (policy: AppraisalPolicy, expectedReportData?: Uint8Array) =>
    (await tdx.appraise(tdxEvidence(), { policy, now: AT, expectedReportData })).reasons.map((r) => r.code);
  assert.deepEqual(await codes(p({ ...base, rtmr3: ['00'.repeat(48)] })), []);
  assert.deepEqual(await codes(p({ ...base, mrTd: ['00'.repeat(48)] })), [
    'ATTESTATION_MEASUREMENT_MISMATCH',
  ]);
  assert.deepEqual(await codes(p({ ...base, rtmr0: [MR_TD] })), ['ATTESTATION_MEASUREMENT_MISMATCH']);
  // mr_td alone (any OS that firmware boots) or RTMRs alone (written by unidentified firmware)
  // do not identify the software.
  assert.deepEqual(await codes(p({ mrTd: [MR_TD] })), ['ATTESTATION_NO_REFERENCE_VALUES']);
  assert.deepEqual(await codes(p({ rtmr0: [RTMR0], rtmr1: [RTMR1], rtmr2: [RTMR2] })), [
    'ATTESTATION_NO_REFERENCE_VALUES',
  ]);
  assert.deepEqual(await codes(p({ ...base, rtmr2: [] })), [
    'ATTESTATION_NO_REFERENCE_VALUES',
    'ATTESTATION_MEASUREMENT_MISMATCH',
  ]);
  assert.deepEqual(await codes(TDX_PINNED, new Uint8Array(64)), ['ATTESTATION_REPORT_DATA_MISMATCH']);
  const envelope = await tdx.appraise(
    { ...tdxEvidence(), reportData: new Uint8Array(64) },
    { policy: TDX_PINNED, now: AT },
  );
  assert.deepEqual(
    envelope.reasons.map((r) => r.code),
    ['ATTESTATION_REPORT_DATA_MISMATCH'],
  );
  const noTdx = parsePolicy({ ...PRODUCTION_POLICY, name: 'x', allowedKinds: ['sgx'] });
  assert.deepEqual(await codes(noTdx), ['ATTESTATION_KIND_NOT_ALLOWED']);
});

test('SGX sample at 2025-07-01: valid, ConfigurationAndSWHardeningNeeded, two advisories; production rejects, a tolerant policy accepts', async () => {
  const a = await sgx.appraise(sgxEvidence(), { policy: PRODUCTION_POLICY, now: AT });
  assert.equal(a.valid, true);
  assert.equal(a.accepted, false);
  assert.equal(a.tcbStatus, 'ConfigurationAndSWHardeningNeeded');
  assert.deepEqual([...a.advisoryIds].sort(), ['INTEL-SA-00289', 'INTEL-SA-00615']);
  assert.deepEqual(
    a.reasons.map((r) => r.code),
    ['ATTESTATION_NO_REFERENCE_VALUES', 'ATTESTATION_TCB_OUT_OF_DATE'],
  );
  assert.equal(a.measurement, MR_ENCLAVE);
  assert.equal(a.claims.mrSigner, MR_SIGNER);
  assert.equal(a.reportData, SGX_RD);
  assert.equal(a.debug, false);
  const tolerant = parsePolicy({
    ...PRODUCTION_POLICY,
    name: 'tolerant',
    allowedTcbStatuses: ['UpToDate', 'ConfigurationAndSWHardeningNeeded'],
    referenceValues: {
      sgx: { mrEnclave: [MR_ENCLAVE], mrSigner: [MR_SIGNER], isvProdId: [0], minIsvSvn: 0 },
    },
  });
  const ok = await sgx.appraise(sgxEvidence(), { policy: tolerant, now: AT });
  assert.deepEqual([ok.valid, ok.accepted, ok.status], [true, true, 'warning']);
  const strictAdvisories = parsePolicy({ ...tolerant, allowedAdvisoryIds: ['INTEL-SA-00289'] });
  const no = await sgx.appraise(sgxEvidence(), { policy: strictAdvisories, now: AT });
  assert.equal(no.accepted, false);
  assert.match(no.reasons[0].message, /INTEL-SA-00615/);
  const minSvn = parsePolicy({
    ...tolerant,
    referenceValues: { sgx: { mrEnclave: [MR_ENCLAVE], minIsvSvn: 1 } },
  });
  assert.equal((await sgx.appraise(sgxEvidence(), { policy: minSvn, now: AT })).accepted, false);
  // A tolerant policy that identifies no enclave, or only its signer without a product id,
  // accepts nothing; the signer with its product id, or the enclave alone, is enough.
  const sgxCodes = async (sgxRv: object) =>
    (
      await sgx.appraise(sgxEvidence(), {
        policy: parsePolicy({ ...tolerant, referenceValues: { sgx: sgxRv } }),
        now: AT,
      })
    ).reasons.map((r) => r.code);
  assert.deepEqual(await sgxCodes({}), ['ATTESTATION_NO_REFERENCE_VALUES']);
  assert.deepEqual(await sgxCodes({ mrSigner: [MR_SIGNER] }), ['ATTESTATION_NO_REFERENCE_VALUES']);
  assert.deepEqual(await sgxCodes({ mrSigner: [MR_SIGNER], isvProdId: [0] }), []);
  assert.deepEqual(await sgxCodes({ mrEnclave: [MR_ENCLAVE] }), []);
});

test("Intel samples at today's real time: collateral expired", async () => {
  for (const [v, e] of [
    [tdx, tdxEvidence()],
    [sgx, sgxEvidence()],
  ] as const) {
    const a = await v.appraise(e, { policy: developmentPolicy(), now: new Date() });
    assert.equal(a.valid, false);
    assert.equal(a.accepted, false);
    assert.equal(a.reasons[0].code, 'ATTESTATION_COLLATERAL_EXPIRED');
  }
});

test('the wrong kind, missing collateral and garbage are rejected with codes', async () => {
  const wrong = await tdx.appraise(
    { ...sgxEvidence(), kind: 'tdx' },
    { policy: developmentPolicy(), now: AT },
  );
  assert.equal(wrong.reasons[0].code, 'ATTESTATION_MALFORMED');
  const none = await tdx.appraise(
    { kind: 'tdx', reportData: new Uint8Array(64), body: { quote: TDX_QUOTE } },
    { policy: developmentPolicy(), now: AT },
  );
  assert.equal(none.reasons[0].code, 'ATTESTATION_MALFORMED');
  const provided = new TdxVerifier({ collateralProvider: async () => parseCollateral(TDX_COLL) });
  const viaProvider = await provided.appraise(
    { kind: 'tdx', reportData: hex(TDX_RD), body: { quote: TDX_QUOTE } },
    { policy: TDX_PINNED, now: AT },
  );
  assert.equal(viaProvider.accepted, true);
  const garbage = await tdx.appraise(tdxEvidence(TDX_QUOTE.subarray(0, 100)), {
    policy: developmentPolicy(),
    now: AT,
  });
  assert.equal(garbage.reasons[0].code, 'ATTESTATION_MALFORMED');
  assert.throws(
    () => parseCollateral('{"tcb_info": 1}'),
    (e) => isFerryError(e, 'ATTESTATION_MALFORMED'),
  );
  assert.throws(
    () => verifyDcapQuote('tdx', TDX_QUOTE, parseCollateral(TDX_COLL), new Date(Number.NaN)),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  assert.equal(
    classifyDcapError('Certificate is expired or not yet valid'),
    'ATTESTATION_COLLATERAL_EXPIRED',
  );
  assert.equal(
    classifyDcapError('Failed to verify certificate chain - leaf signature invalid'),
    'ATTESTATION_CHAIN_INVALID',
  );
  assert.equal(classifyDcapError('TCB status is invalid: Revoked'), 'ATTESTATION_TCB_OUT_OF_DATE');
});

/**
 * The byte ranges of a quote that signatures cover: the signed header and body, the quote's
 * ECDSA signature and attestation key (bound by the QE report's hash), the QE report, its
 * signature and the QE auth data (hashed into the QE report). Framing fields (lengths,
 * certification-data type) and the PEM text of the PCK chain are not in this list.
 */
function signedRegions(quote: Uint8Array): [number, number][] {
  const signed = Quote.parse(quote).signedLength();
  const version = quote[0] | (quote[1] << 8);
  let o = signed + 4; // u32 signature data length
  const regions: [number, number][] = [
    [0, signed],
    [o, o + 128],
  ];
  o += 128;
  if (version >= 4) o += 6; // certification data type (u16) and size (u32)
  regions.push([o, o + 384 + 64]);
  o += 384 + 64;
  const authLen = quote[o] | (quote[o + 1] << 8);
  regions.push([o + 2, o + 2 + authLen]);
  return regions;
}

test('single bit flips across every signed region of each quote are rejected', async () => {
  for (const [kind, q, c] of [
    ['tdx', TDX_QUOTE, TDX_COLL],
    ['sgx', SGX_QUOTE, SGX_COLL],
  ] as const) {
    let n = 0;
    for (const [from, to] of signedRegions(q)) {
      // Deterministic sample: every 23rd bit of each region, starting at a different offset.
      for (let bit = from * 8 + (n % 8); bit < to * 8; bit += 23) {
        const b = Uint8Array.from(q);
        b[bit >> 3] ^= 1 << (bit & 7);
        const ev = kind === 'tdx' ? tdxEvidence(b, c) : sgxEvidence(b, c);
        const a = await (kind === 'tdx' ? tdx : sgx).appraise(ev, { policy: developmentPolicy(), now: AT });
        assert.equal(a.valid, false, `${kind} bit ${bit} (byte ${bit >> 3})`);
        assert.equal(a.accepted, false);
        n++;
      }
    }
    assert.ok(n > 300, `${kind}: ${n} flips`);
  }
});

test('a flipped byte in the signed collateral (tcb_info) is rejected', async () => {
  const c = JSON.parse(TDX_COLL);
  c.tcb_info = c.tcb_info.replace('"UpToDate"', '"UpToDatf"');
  const a = await tdx.appraise(tdxEvidence(TDX_QUOTE, JSON.stringify(c)), {
    policy: developmentPolicy(),
    now: AT,
  });
  assert.equal(a.valid, false);
});

test('refusals after the signatures: debug report vs debug QE, TD attributes', () => {
  assert.equal(postSignatureRefusal('Debug mode is enabled', true, false)?.code, 'ATTESTATION_DEBUG_ENABLED');
  // The QE's own debug flag fails before the quote signature is checked: not valid.
  assert.equal(postSignatureRefusal('Debug mode is enabled', true, true), null);
  assert.equal(postSignatureRefusal('Debug mode is enabled', false, false), null);
  assert.equal(
    postSignatureRefusal('SEPT_VE_DISABLE is not enabled', false, false)?.code,
    'ATTESTATION_CONFIGURATION_REJECTED',
  );
  assert.equal(postSignatureRefusal('ISV enclave report signature is invalid', true, false), null);
});

test('attacker against the cache (Intel samples): after a cached acceptance, tampering, a later time and a bad CRL are still refused', async () => {
  const cache = new DcapCache();
  const v = new TdxVerifier({ cache });
  const ctx = { policy: TDX_PINNED, now: AT, expectedReportData: hex(TDX_RD) };
  assert.equal((await v.appraise(tdxEvidence(), ctx)).accepted, true);
  assert.equal(cache.collateral.size, 1);
  assert.equal(cache.pckChains.size, 1);
  assert.equal(cache.crls.size, 1);
  assert.equal(cache.parsed.size, 1);
  // The attestation key's signature (first bytes after the auth data size) and report_data.
  const sigAt = 48 + 584 + 4;
  for (const [off, code] of [
    [sigAt + 3, 'ATTESTATION_SIGNATURE_INVALID'],
    [48 + 520 + 1, 'ATTESTATION_SIGNATURE_INVALID'],
  ] as const) {
    const q = Uint8Array.from(TDX_QUOTE);
    q[off] ^= 0x40;
    const a = await v.appraise(tdxEvidence(q), ctx);
    assert.equal(a.valid, false);
    assert.equal(a.reasons[0]?.code, code);
  }
  // The binding to the caller's report_data is checked every time.
  const other = await v.appraise(tdxEvidence(), { ...ctx, expectedReportData: new Uint8Array(64) });
  assert.deepEqual(
    other.reasons.map((r) => r.code),
    ['ATTESTATION_REPORT_DATA_MISMATCH'],
  );
  // Accepted at AT, expired a month later: the cached collateral's dates are checked again.
  const later = await v.appraise(tdxEvidence(), { ...ctx, now: new Date('2025-07-20T00:00:00Z') });
  assert.equal(later.valid, false);
  assert.equal(later.reasons[0]?.code, 'ATTESTATION_COLLATERAL_EXPIRED');
  // A PCK CRL whose signature is broken, after the good one was cached.
  const c = JSON.parse(TDX_COLL);
  c.pck_crl = c.pck_crl.slice(0, -4) + (c.pck_crl.slice(-4) === '0000' ? '0101' : '0000');
  const badCrl = await v.appraise(tdxEvidence(TDX_QUOTE, JSON.stringify(c)), ctx);
  assert.equal(badCrl.valid, false);
  assert.equal(badCrl.reasons[0]?.code, 'ATTESTATION_CHAIN_INVALID');
  // Without a cache, the same answers.
  const plain = new TdxVerifier({ cache: null });
  assert.equal((await plain.appraise(tdxEvidence(), ctx)).accepted, true);
  assert.equal((await v.appraise(tdxEvidence(), ctx)).accepted, true);
});
