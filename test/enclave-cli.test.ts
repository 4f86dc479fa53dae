/** `ferry app run`, driven through bin/ferry as a user would. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureExamplesBuilt, examplePath } from '../examples/index.ts';

const FERRY = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'ferry');
let dir: string;

function ferry(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(FERRY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  await ensureExamplesBuilt();
  dir = await mkdtemp(join(tmpdir(), 'ferry-app-run-test-'));
  await writeFile(join(dir, 'prices.csv'), 'item,price\napple,1.5\npear,2.5\nfig,5\n');
});
after(() => rm(dir, { recursive: true, force: true }));

test('csv-stats: text output on stdout, then --json with --out', async () => {
  const text = await ferry([
    'app',
    'run',
    examplePath('csv-stats'),
    '--data',
    join(dir, 'prices.csv'),
    '--arg',
    'price',
  ]);
  assert.equal(text.code, 0, text.stderr);
  const stats = JSON.parse(text.stdout);
  assert.deepEqual([stats.count, stats.mean, stats.min, stats.max], [3, 3, 1.5, 5]);

  const out = join(dir, 'out.json');
  const r = await ferry([
    'app',
    'run',
    examplePath('csv-stats'),
    '--data',
    join(dir, 'prices.csv'),
    '--arg=--column',
    '--arg',
    'price',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const written = await readFile(out);
  assert.equal(j.exitCode, 0);
  assert.equal(j.limitHit, null);
  assert.equal(j.outputBytes, written.length);
  assert.equal(j.outputSha256, createHash('sha256').update(written).digest('hex'));
  assert.equal(typeof j.durationMs, 'number');
  assert.equal(
    j.receipt.appMeasurement,
    createHash('sha256')
      .update(await readFile(examplePath('csv-stats')))
      .digest('hex'),
  );
  assert.equal(j.receipt.datasets[0].id, 'prices.csv');
  // A local run: bound to local commitments (chain 0), with a throwaway recipient.
  assert.equal(j.receipt.chainId, '0');
  assert.match(j.receipt.commitmentsHash, /^[0-9a-f]{64}$/);
  assert.match(j.receipt.resultRecipient, /^[0-9a-f]{64}$/);
  assert.equal(
    j.receipt.datasets[0].ciphertextHash,
    createHash('sha256')
      .update(await readFile(join(dir, 'prices.csv')))
      .digest('hex'),
  );
  assert.equal(JSON.parse(written.toString()).mean, 3);
});

test('limits and traps: exit 1 with the limit in --json', async () => {
  const loop = await ferry(['app', 'run', examplePath('loop'), '--timeout-ms', '300', '--json']);
  assert.equal(loop.code, 1);
  assert.equal(JSON.parse(loop.stdout).limitHit, 'time');
  const flood = await ferry([
    'app',
    'run',
    examplePath('output-flood'),
    '--max-output-bytes',
    '10',
    '--json',
  ]);
  assert.equal(flood.code, 1);
  assert.deepEqual([JSON.parse(flood.stdout).limitHit, JSON.parse(flood.stdout).outputBytes], ['output', 10]);
  const trap = await ferry(['app', 'run', examplePath('trap')]);
  assert.equal(trap.code, 1);
  assert.match(trap.stderr, /about to trap/);
  assert.match(trap.stderr, /trapped/);
});

test('errors: missing data file, bad option values', async () => {
  const missing = await ferry(['app', 'run', examplePath('cat'), '--data', join(dir, 'nope.csv'), '--json']);
  assert.equal(missing.code, 1);
  assert.equal(JSON.parse(missing.stdout).error.code, 'IO_READ_FAILED');
  const bad = await ferry(['app', 'run', examplePath('cat'), '--memory-mb', 'lots']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--memory-mb/);
  const many = await ferry([
    'app',
    'run',
    examplePath('cat'),
    ...Array(8)
      .fill(['--data', join(dir, 'prices.csv')])
      .flat(),
  ]);
  assert.equal(many.code, 2);
  assert.match(many.stderr, /at most 7/);
  const notWasm = await ferry(['app', 'run', join(dir, 'prices.csv'), '--json']);
  assert.equal(notWasm.code, 1);
  assert.equal(JSON.parse(notWasm.stdout).error.code, 'ENCLAVE_APP_INVALID');
});
