/**
 * `ferry demo --json`: a whole local network runs csv-stats on a generated dataset with a
 * five-verifier committee, verifies it and stops everything. The expected statistics are
 * computed here from the same generated CSV (generateCsv with the demo's seed).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateCsv } from '../src/cli/demo.ts';

const FERRY = fileURLToPath(new URL('../bin/ferry', import.meta.url));

function ferry(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(FERRY, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

test('generateCsv is deterministic in its seed', () => {
  assert.equal(generateCsv(7, 50), generateCsv(7, 50));
  assert.notEqual(generateCsv(7, 50), generateCsv(8, 50));
  assert.equal(generateCsv(7, 50).trimEnd().split('\n').length, 51);
});

test('ferry demo --json: completed, verified, right statistics', { timeout: 120_000 }, async () => {
  const seed = 1234;
  const rows = 3000;
  const r = await ferry(['demo', '--json', '--seed', String(seed), '--rows', String(rows)]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 1, 'exactly one JSON line');
  const out = JSON.parse(r.stdout);
  assert.equal(out.status, 'completed');
  assert.equal(out.verified, true);
  assert.match(out.taskId, /^[0-9]+$/);

  // Independently: parse the same CSV and compute the first column's statistics.
  const csv = generateCsv(seed, rows);
  assert.equal(out.dataset.sha256, createHash('sha256').update(csv).digest('hex'));
  const values = csv
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((l) => Number(l.split(',')[0]));
  const sum = values.reduce((a, b) => a + b, 0);
  assert.equal(out.result.column, 'reading');
  assert.equal(out.result.count, rows);
  assert.equal(out.result.min, Math.min(...values));
  assert.equal(out.result.max, Math.max(...values));
  assert.ok(Math.abs(out.result.mean - sum / rows) < 1e-3, `mean ${out.result.mean} vs ${sum / rows}`);

  for (const k of ['seeded', 'claimed', 'evidence', 'votes', 'keysReleased', 'running', 'receipt', 'done']) {
    assert.equal(typeof out.stagesMs[k], 'number', k);
  }
  // The committee is the five verifiers: each stakes 1000 units of 10^15 wei and sits with all
  // of them (tau = the verifier stake), so 4000 of 5000 seats is four of the five verifiers.
  assert.equal(out.committee.verifiers, 5);
  assert.equal(out.committee.tau, 5000);
  assert.equal(out.committee.threshold, 4000);
  assert.equal(out.committee.everyVerifierSits, true);
  assert.equal(out.committee.seatsPerVerifier, 1000);
  assert.equal(out.committee.thresholdVerifiers, 4);
  assert.equal(out.committee.model, 'binomial');
  // Exact for that committee: 20% of the stake is one verifier (1000 seats < 4000), and the
  // other four always hold 4000.
  assert.equal(out.committee.capture, 0);
  assert.equal(out.committee.livenessFailure, 0);
  assert.match(out.committee.summary, /^all 5 verifiers sit with 1000 seats each/);
  assert.equal(typeof out.totalMs, 'number');
  assert.ok(out.checks.length >= 18 && out.checks.every((c: { ok: boolean }) => c.ok));
});

test('ferry demo: bad options are usage errors (exit 2)', async () => {
  const r = await ferry(['demo', '--json', '--rows', '0']);
  assert.equal(r.code, 2);
  assert.equal(JSON.parse(r.stdout).error.code, 'USAGE_INVALID_ARGUMENT');
  const s = await ferry(['demo', '--json', '--seed', 'abc']);
  assert.equal(s.code, 2);
});
