import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import { encodeTagged, toHex } from '../kernel/index.ts';
import { isFerryError } from '../kernel/errors.ts';
import {
  checkDebug,
  checkKind,
  checkReference,
  checkReportData,
  checkSoftwareIdentified,
  checkTcb,
  decodePolicyDocument,
  developmentPolicy,
  encodePolicyDocument,
  finishAppraisal,
  parsePolicy,
  PRODUCTION_POLICY,
  policyHash,
} from './policy.ts';

const base = {
  version: 1,
  name: 'p',
  allowedKinds: ['tdx'],
  allowDebug: false,
  allowedTcbStatuses: ['UpToDate'],
  maxEvidenceAgeSeconds: 60,
  referenceValues: {},
};

test('production policy: every kind but sim, no debug, UpToDate only', () => {
  assert.deepEqual([...PRODUCTION_POLICY.allowedKinds].sort(), ['sev-snp', 'sgx', 'tdx', 'tpm2']);
  assert.equal(PRODUCTION_POLICY.allowDebug, false);
  assert.deepEqual(PRODUCTION_POLICY.allowedTcbStatuses, ['UpToDate']);
  assert.equal(checkKind(PRODUCTION_POLICY, 'sim')?.code, 'ATTESTATION_SIMULATION_NOT_ALLOWED');
  assert.equal(checkKind(developmentPolicy(), 'sim'), null);
  assert.ok(Object.isFrozen(PRODUCTION_POLICY));
});

test('parsePolicy normalizes hex and lists; equal policies hash equally', () => {
  const a = parsePolicy({
    ...base,
    allowedKinds: ['tdx', 'sgx', 'tdx'],
    referenceValues: { sgx: { mrSigner: ['0x' + 'AB'.repeat(32), '01'.repeat(32)] } },
  });
  assert.deepEqual(a.allowedKinds, ['sgx', 'tdx']);
  assert.deepEqual(a.referenceValues.sgx?.mrSigner, ['01'.repeat(32), 'ab'.repeat(32)]);
  const b = parsePolicy(
    JSON.stringify({
      ...base,
      allowedKinds: ['sgx', 'tdx'],
      referenceValues: { sgx: { mrSigner: ['ab'.repeat(32), '01'.repeat(32)] } },
    }),
  );
  assert.equal(toHex(policyHash(a)), toHex(policyHash(b)));
  assert.notEqual(toHex(policyHash(a)), toHex(policyHash(PRODUCTION_POLICY)));
  assert.equal(policyHash(a).length, 32);
});

test('parsePolicy errors name the offending path', () => {
  const bad: [unknown, RegExp][] = [
    ['{not json', /JSON/],
    [{ ...base, version: 2 }, /version/],
    [{ ...base, allowedKinds: ['bogus'] }, /allowedKinds\.0/],
    [{ ...base, allowedTcbStatuses: ['Fine'] }, /allowedTcbStatuses\.0/],
    [{ ...base, extra: 1 }, /extra|root/],
    [{ ...base, referenceValues: { tdx: { mrTd: ['abcd'] } } }, /referenceValues\.tdx\.mrTd\.0/],
    [{ ...base, referenceValues: { 'sev-snp': { maxVmpl: 4 } } }, /maxVmpl/],
    [{ ...base, maxEvidenceAgeSeconds: -1 }, /maxEvidenceAgeSeconds/],
    [null, /root/],
  ];
  for (const [input, re] of bad) {
    assert.throws(
      () => parsePolicy(input),
      (e) => isFerryError(e, 'ATTESTATION_POLICY_INVALID') && re.test([e.message, ...e.hints].join('\n')),
      String(JSON.stringify(input)),
    );
  }
});

test('policy checks', () => {
  const p = parsePolicy({ ...base, allowedAdvisoryIds: ['INTEL-SA-00289'] });
  assert.equal(checkDebug(p, true)?.code, 'ATTESTATION_DEBUG_ENABLED');
  assert.equal(checkDebug(p, null)?.code, 'ATTESTATION_DEBUG_ENABLED');
  assert.equal(checkDebug(p, false), null);
  assert.equal(checkTcb(p, 'UpToDate', []).length, 0);
  assert.equal(checkTcb(p, 'OutOfDate', [])[0].code, 'ATTESTATION_TCB_OUT_OF_DATE');
  assert.equal(checkTcb(p, null, []).length, 1);
  assert.equal(checkTcb(p, 'UpToDate', ['INTEL-SA-00289']).length, 0);
  assert.equal(checkTcb(p, 'UpToDate', ['INTEL-SA-00615']).length, 1);
  assert.equal(checkReference('mr_td', undefined, 'aa'), null);
  assert.equal(checkReference('mr_td', ['aa'], 'aa'), null);
  assert.equal(checkReference('mr_td', ['aa'], 'bb')?.code, 'ATTESTATION_MEASUREMENT_MISMATCH');
  assert.equal(checkReportData(undefined, new Uint8Array(64)), null);
  assert.equal(checkReportData(new Uint8Array(64), new Uint8Array(64)), null);
  assert.equal(
    checkReportData(new Uint8Array(64).fill(1), new Uint8Array(64))?.code,
    'ATTESTATION_REPORT_DATA_MISMATCH',
  );
});

test('finishAppraisal: valid / accepted / status', () => {
  const facts = {
    kind: 'tdx' as const,
    tcbStatus: 'UpToDate',
    advisoryIds: [],
    measurement: 'aa',
    reportData: 'bb',
    debug: false,
    reasons: [],
    claims: {},
  };
  const ok = finishAppraisal(facts);
  assert.deepEqual([ok.valid, ok.accepted, ok.status], [true, true, 'affirming']);
  const warn = finishAppraisal({ ...facts, tcbStatus: 'SWHardeningNeeded' });
  assert.deepEqual([warn.valid, warn.accepted, warn.status], [true, true, 'warning']);
  const rej = finishAppraisal({ ...facts, reasons: [{ code: 'ATTESTATION_DEBUG_ENABLED', message: 'x' }] });
  assert.deepEqual([rej.valid, rej.accepted, rej.status], [true, false, 'contraindicated']);
  const inv = finishAppraisal({
    ...facts,
    validityReasons: [{ code: 'ATTESTATION_SIGNATURE_INVALID', message: 'y' }],
    reasons: [{ code: 'ATTESTATION_DEBUG_ENABLED', message: 'x' }],
  });
  assert.deepEqual([inv.valid, inv.accepted, inv.status], [false, false, 'contraindicated']);
  assert.deepEqual(
    inv.reasons.map((r) => r.code),
    ['ATTESTATION_SIGNATURE_INVALID', 'ATTESTATION_DEBUG_ENABLED'],
  );
});

test('policyHash is SHA-256 of the tagged canonical CBOR of the normal form (docs/protocol.md §9)', () => {
  // The production policy's normal form written out by hand: lists sorted, no optional keys.
  const normal = {
    version: 1,
    name: 'production',
    allowedKinds: ['sev-snp', 'sgx', 'tdx', 'tpm2'],
    allowDebug: false,
    allowedTcbStatuses: ['UpToDate'],
    maxEvidenceAgeSeconds: 600,
    referenceValues: {},
  };
  const expected = createHash('sha256')
    .update(encodeTagged('ferry/appraisal-policy/v1', normal))
    .digest('hex');
  assert.equal(toHex(policyHash(PRODUCTION_POLICY)), expected);
  // Optional lists appear only when present, sorted and deduplicated.
  const p = parsePolicy({
    ...normal,
    allowedAdvisoryIds: ['B', 'A', 'B'],
    referenceValues: { sgx: { isvProdId: [3, 1] } },
  });
  const expected2 = createHash('sha256')
    .update(
      encodeTagged('ferry/appraisal-policy/v1', {
        ...normal,
        allowedAdvisoryIds: ['A', 'B'],
        referenceValues: { sgx: { isvProdId: [1, 3] } },
      }),
    )
    .digest('hex');
  assert.equal(toHex(policyHash(p)), expected2);
});

test('policy documents: encode is the hashed bytes; decode round-trips and refuses anything else', async () => {
  const { createHash: h } = await import('node:crypto');
  const {
    decodePolicyDocument,
    encodePolicyDocument,
    MAX_POLICY_DOCUMENT,
    POLICY_TAG,
    policyCanonicalValue,
  } = await import('./policy.ts');
  for (const p of [
    PRODUCTION_POLICY,
    developmentPolicy(),
    parsePolicy({ ...base, referenceValues: { sim: { measurement: ['ab'.repeat(32)] } } }),
  ]) {
    const doc = encodePolicyDocument(p);
    assert.equal(toHex(new Uint8Array(h('sha256').update(doc).digest())), toHex(policyHash(p)));
    const back = decodePolicyDocument(doc);
    assert.deepEqual(back, p);
    assert.ok(Object.isFrozen(back));
    assert.deepEqual(encodePolicyDocument(back), doc);
  }
  const bad = (bytes: Uint8Array, what: string) =>
    assert.throws(
      () => decodePolicyDocument(bytes),
      (e) => isFerryError(e, 'ATTESTATION_POLICY_DOCUMENT_INVALID'),
      what,
    );
  bad(new Uint8Array(0), 'empty');
  bad(new Uint8Array(MAX_POLICY_DOCUMENT + 1), 'too large');
  bad(new Uint8Array([0xff, 0x00]), 'not CBOR');
  bad(encodeTagged('ferry/receipt/v1', policyCanonicalValue(PRODUCTION_POLICY)), 'wrong tag');
  bad(encodeTagged(POLICY_TAG, { ...base, extra: 1 }), 'schema: unknown key');
  bad(encodeTagged(POLICY_TAG, { ...base, maxEvidenceAgeSeconds: -1 }), 'schema: negative age');
  // Valid for the schema but not normalized: unsorted list, upper-case hex, 0x prefix.
  bad(encodeTagged(POLICY_TAG, { ...base, allowedKinds: ['tdx', 'sgx'] }), 'unsorted');
  bad(
    encodeTagged(POLICY_TAG, { ...base, referenceValues: { sim: { measurement: ['AB'.repeat(32)] } } }),
    'upper-case hex',
  );
  bad(
    encodeTagged(POLICY_TAG, {
      ...base,
      referenceValues: { sim: { measurement: [`0x${'ab'.repeat(32)}`] } },
    }),
    '0x prefix',
  );
  // Non-canonical CBOR of a valid policy: the same map with its keys in another order.
  const { encode } = await import('cborg');
  const doc = encodePolicyDocument(PRODUCTION_POLICY);
  const reordered = encode([POLICY_TAG, Object.fromEntries(Object.entries(PRODUCTION_POLICY).reverse())], {
    mapSorter: () => 0,
  });
  assert.notDeepEqual(new Uint8Array(reordered), doc);
  bad(new Uint8Array(reordered), 'map keys not in canonical order');
  assert.throws(
    () => decodePolicyDocument('x' as unknown as Uint8Array),
    (e) => isFerryError(e, 'ATTESTATION_POLICY_DOCUMENT_INVALID'),
  );
  assert.throws(
    () => encodePolicyDocument({ ...PRODUCTION_POLICY, allowedKinds: [] }),
    (e) => isFerryError(e, 'ATTESTATION_POLICY_INVALID'),
  );
  const huge = parsePolicy({
    ...base,
    referenceValues: {
      sim: { measurement: Array.from({ length: 300 }, (_, i) => i.toString(16).padStart(64, '0')) },
    },
  });
  assert.throws(
    () => encodePolicyDocument(huge),
    (e) => isFerryError(e, 'ATTESTATION_POLICY_INVALID') && /too large/.test(e.message),
  );
});

test('tpm2.events: strict shape, order kept (it is the log order), hashed, in the document', () => {
  const ev = (type: string, fill: string, what?: string) => ({
    type,
    digest: `0x${fill.repeat(32).toUpperCase()}`,
    ...(what ? { what } : {}),
  });
  const doc = (events: unknown) => ({
    ...base,
    allowedKinds: ['tpm2'],
    referenceValues: { tpm2: { events } },
  });
  const p = parsePolicy(
    doc({
      sha256: { '9': [ev('EV_EVENT_TAG', 'bb', 'cmdline'), ev('EV_EVENT_TAG', 'aa', 'initrd')], '8': [] },
    }),
  );
  const seq = p.referenceValues.tpm2?.events?.sha256?.['9'];
  assert.deepEqual(seq, [
    { type: 'EV_EVENT_TAG', digest: 'bb'.repeat(32), what: 'cmdline' },
    { type: 'EV_EVENT_TAG', digest: 'aa'.repeat(32), what: 'initrd' },
  ]);
  assert.deepEqual(p.referenceValues.tpm2?.events?.sha256?.['8'], []);
  // Events alone identify the software (§9.1).
  assert.equal(checkSoftwareIdentified(p, 'tpm2'), null);
  // Another order, another description: another policy.
  const swapped = parsePolicy(
    doc({ sha256: { '9': [ev('EV_EVENT_TAG', 'aa', 'initrd'), ev('EV_EVENT_TAG', 'bb', 'cmdline')] } }),
  );
  assert.notEqual(toHex(policyHash(swapped)), toHex(policyHash(p)));
  const renamed = parsePolicy(
    doc({
      sha256: {
        '9': [ev('EV_EVENT_TAG', 'bb', 'command line'), ev('EV_EVENT_TAG', 'aa', 'initrd')],
        '8': [],
      },
    }),
  );
  assert.notEqual(toHex(policyHash(renamed)), toHex(policyHash(p)));
  assert.deepEqual(decodePolicyDocument(encodePolicyDocument(p)), p);
  for (const [what, events] of [
    [
      'sha1 digest in the sha256 bank',
      { sha256: { '9': [{ type: 'EV_EVENT_TAG', digest: 'aa'.repeat(20) }] } },
    ],
    ['unknown bank', { sm3: { '9': [] } }],
    ['PCR 24', { sha256: { '24': [] } }],
    ['type not a name', { sha256: { '9': [{ type: 'tag', digest: 'aa'.repeat(32) }] } }],
    ['unknown key', { sha256: { '9': [{ type: 'EV_EVENT_TAG', digest: 'aa'.repeat(32), pcr: 9 }] } }],
    ['empty what', { sha256: { '9': [{ type: 'EV_EVENT_TAG', digest: 'aa'.repeat(32), what: '' }] } }],
  ] as const) {
    assert.throws(
      () => parsePolicy(doc(events)),
      (e) => isFerryError(e) && e.code === 'ATTESTATION_POLICY_INVALID',
      what,
    );
  }
});
