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
  const allowSgx = policyFile('sgx-ok', {
    allowedTcbStatuses: ['UpToDate', 'ConfigurationAndSWHardeningNeeded'],
  });
  const allowDebug = policyFile('debug-ok', { allowDebug: true });
  const badPolicy = join(TMP, 'bad.json');
  writeFileSync(badPolicy, '{"version": 2}');
  const runs = await Promise.all([
    ferry([...tdx, '--now', AT, '--json']),
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
    ferry([...tdx, '--now', AT]),
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
  ] = runs;
  const j = (r: { stdout: string }) => JSON.parse(r.stdout);

  assert.equal(tdxOk.code, 0, tdxOk.stdout + tdxOk.stderr);
  assert.deepEqual(Object.keys(j(tdxOk)), KEYS);
  assert.equal(tdxOk.stdout.trim().split('\n').length, 1);
  assert.deepEqual([j(tdxOk).valid, j(tdxOk).accepted, j(tdxOk).tcbStatus], [true, true, 'UpToDate']);
  assert.equal(j(tdxOk).measurement.slice(0, 8), '91eb2b44');

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
  assert.equal(j(snpProd).reasons[0].code, 'ATTESTATION_DEBUG_ENABLED');
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
