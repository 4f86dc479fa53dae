import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PRODUCTION_POLICY } from '../../attestation/policy.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const V = join(ROOT, 'test/vectors');
const AT = '2025-07-01T00:00:00Z';
const TMP = mkdtempSync(join(tmpdir(), 'ferry-attest-cli-'));

function ferry(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(join(ROOT, 'bin/ferry'), args, { cwd: ROOT }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const KEYS = [
  'kind',
  'valid',
  'accepted',
  'status',
  'tcbStatus',
  'advisoryIds',
  'measurement',
  'reportData',
  'debug',
  'reasons',
];
const tdx = [
  'attest',
  'verify',
  'tdx',
  '--quote',
  `${V}/intel-dcap/tdx_quote`,
  '--collateral',
  `${V}/intel-dcap/tdx_quote_collateral.json`,
];
const sgx = [
  'attest',
  'verify',
  'sgx',
  '--quote',
  `${V}/intel-dcap/sgx_quote`,
  '--collateral',
  `${V}/intel-dcap/sgx_quote_collateral.json`,
];
const snp = [
  'attest',
  'verify',
  'sev-snp',
  '--report',
  `${V}/sev-snp-milan/attestation.bin`,
  '--vcek',
  `${V}/sev-snp-milan/vcek.der`,
];

function policyFile(name: string, extra: object): string {
  const p = join(TMP, `${name}.json`);
  writeFileSync(p, JSON.stringify({ ...PRODUCTION_POLICY, name, ...extra }));
  return p;
}

test('attest verify: JSON shape and exit codes 0 / 3 / 2 for tdx, sgx and sev-snp', async () => {
  // Each sample's real reference values (see the kinds' verify tests).
  const tdxPinned = policyFile('tdx-pinned', {
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
  });
  const allowSgx = policyFile('sgx-ok', {
    allowedTcbStatuses: ['UpToDate', 'ConfigurationAndSWHardeningNeeded'],
    referenceValues: {
      sgx: { mrEnclave: ['33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb'] },
    },
  });
  const allowDebug = policyFile('debug-ok', {
    allowDebug: true,
    referenceValues: {
      'sev-snp': {
        measurement: [
          'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01',
        ],
      },
    },
  });
  const badPolicy = join(TMP, 'bad.json');
  writeFileSync(badPolicy, '{"version": 2}');
  const runs = await Promise.all([
    ferry([...tdx, '--now', AT, '--policy', tdxPinned, '--json']),
    ferry([...tdx, '--json']),
    ferry([...sgx, '--now', AT, '--json']),
    ferry([...sgx, '--now', AT, '--policy', allowSgx, '--json']),
    ferry([...snp, '--now', AT, '--json']),
    ferry([...snp, '--now', AT, '--policy', allowDebug, '--json']),
    ferry([
      ...snp,
      '--chain',
      `${V}/amd-roots/ask_ark_genoa.pem`,
      '--now',
      AT,
      '--policy',
      allowDebug,
      '--json',
    ]),
    ferry([...tdx, '--now', 'not-a-date', '--json']),
    ferry([...snp, '--policy', badPolicy, '--json']),
    ferry([
      'attest',
      'verify',
      'sgx',
      '--quote',
      join(TMP, 'missing'),
      '--collateral',
      `${V}/intel-dcap/sgx_quote_collateral.json`,
      '--json',
    ]),
    ferry(['attest', 'verify', 'sev-snp', '--report', `${V}/sev-snp-milan/attestation.bin`, '--json']),
    ferry([...tdx, '--now', AT, '--policy', tdxPinned]),
    ferry([...tdx, '--now', AT, '--json']),
  ]);
  const [
    tdxOk,
    tdxToday,
    sgxProd,
    sgxOk,
    snpProd,
    snpDebug,
    snpGenoa,
    badNow,
    badPol,
    missing,
    noVcek,
    text,
    tdxUnpinned,
  ] = runs;
  const j = (r: { stdout: string }) => JSON.parse(r.stdout);

  assert.equal(tdxOk.code, 0, tdxOk.stdout + tdxOk.stderr);
  assert.deepEqual(Object.keys(j(tdxOk)), KEYS);
  assert.equal(tdxOk.stdout.trim().split('\n').length, 1);
  assert.deepEqual([j(tdxOk).valid, j(tdxOk).accepted, j(tdxOk).tcbStatus], [true, true, 'UpToDate']);
  assert.equal(j(tdxOk).measurement.slice(0, 8), '91eb2b44');

  // The default policy (production settings) pins no software: valid, never accepted.
  assert.equal(tdxUnpinned.code, 3);
  assert.deepEqual([j(tdxUnpinned).valid, j(tdxUnpinned).accepted], [true, false]);
  assert.equal(j(tdxUnpinned).reasons[0].code, 'ATTESTATION_NO_REFERENCE_VALUES');

  assert.equal(tdxToday.code, 3);
  assert.equal(j(tdxToday).reasons[0].code, 'ATTESTATION_COLLATERAL_EXPIRED');
  assert.equal(j(tdxToday).valid, false);

  assert.equal(sgxProd.code, 3);
  assert.deepEqual([j(sgxProd).valid, j(sgxProd).accepted], [true, false]);
  assert.deepEqual(j(sgxProd).advisoryIds, ['INTEL-SA-00289', 'INTEL-SA-00615']);
  assert.equal(sgxOk.code, 0);
  assert.equal(j(sgxOk).status, 'warning');

  assert.equal(snpProd.code, 3);
  assert.deepEqual([j(snpProd).valid, j(snpProd).accepted, j(snpProd).debug], [true, false, true]);
  assert.deepEqual(
    j(snpProd).reasons.map((r: { code: string }) => r.code),
    ['ATTESTATION_NO_REFERENCE_VALUES', 'ATTESTATION_DEBUG_ENABLED'],
  );
  assert.equal(snpDebug.code, 0);
  assert.equal(snpGenoa.code, 3);
  assert.equal(j(snpGenoa).reasons[0].code, 'ATTESTATION_CHAIN_INVALID');

  for (const [r, code] of [
    [badNow, 'USAGE_INVALID_ARGUMENT'],
    [badPol, 'ATTESTATION_POLICY_INVALID'],
    [missing, 'USAGE_INVALID_ARGUMENT'],
    [noVcek, 'USAGE_MISSING_ARGUMENT'],
  ] as const) {
    assert.equal(r.code, 2, r.stdout);
    assert.equal(j(r).error.code, code);
  }
  assert.equal(text.code, 0);
  assert.match(text.stdout, /tdx: ACCEPTED/);
});
