import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { committeeCapture, committeeCaptureForStake } from '../crypto/sortition.ts';

const FERRY = fileURLToPath(new URL('../../bin/ferry', import.meta.url));

function ferry(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(FERRY, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

test('ferry committee --json prints capture and livenessFailure', async () => {
  const r = await ferry(['committee', '--tau', '50', '--threshold', '2/3', '--adversary', '0.2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const out = JSON.parse(lines[0]);
  const want = committeeCapture({ tau: 50, threshold: 34, adversary: 0.2 });
  assert.equal(out.capture, want.capture);
  assert.equal(out.livenessFailure, want.livenessFailure);
  assert.ok(out.capture > 1.5e-9 && out.capture < 2.5e-9);
  assert.equal(out.threshold, 34);
  assert.equal(out.tau, 50);
  assert.equal(out.adversary, 0.2);
  assert.equal(out.model, 'poisson');
});

test('ferry committee: seat-count and decimal thresholds; human table', async () => {
  const a = await ferry(['committee', '--tau', '10', '--threshold', '7', '--adversary', '0.2', '--json']);
  const b = await ferry([
    'committee',
    '--tau',
    '10',
    '--threshold',
    '0.6667',
    '--adversary',
    '0.2',
    '--json',
  ]);
  assert.equal(a.code, 0);
  assert.equal(b.code, 0);
  assert.deepEqual(JSON.parse(a.stdout), JSON.parse(b.stdout));
  assert.ok(JSON.parse(a.stdout).capture > 4.4e-3 && JSON.parse(a.stdout).capture < 4.6e-3);
  const h = await ferry(['committee', '--tau', '10', '--threshold', '2/3', '--adversary', '0.2']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /capture\s+0\.004534/);
  assert.match(h.stdout, /liveness failure\s+0\.3134/);
  assert.match(h.stdout, /threshold \(seats\)\s+7 \(2\/3 of tau\)/);
});

test('ferry committee --total-stake uses the exact binomial model', async () => {
  const r = await ferry([
    'committee',
    '--tau',
    '10',
    '--threshold',
    '7',
    '--adversary',
    '0.2',
    '--total-stake',
    '200',
    '--json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const want = committeeCaptureForStake({ tau: 10, threshold: 7, adversaryStake: 40n, totalStake: 200n });
  assert.equal(out.model, 'binomial');
  assert.equal(out.adversaryStake, '40');
  assert.equal(out.totalStake, '200');
  assert.equal(out.capture, want.capture);
  assert.equal(out.livenessFailure, want.livenessFailure);
  const bad = await ferry([
    'committee',
    '--tau',
    '10',
    '--threshold',
    '7',
    '--adversary',
    '0.2',
    '--total-stake',
    '5',
    '--json',
  ]);
  assert.equal(bad.code, 2);
  assert.equal(JSON.parse(bad.stdout).error.code, 'SORTITION_INVALID_PARAMETERS');
});

test('ferry committee: bad input exits 2 with a stable code', async () => {
  const cases: [string[], string][] = [
    [['--tau', '0', '--threshold', '1', '--adversary', '0.1'], 'SORTITION_INVALID_PARAMETERS'],
    [['--tau', '2.5', '--threshold', '1', '--adversary', '0.1'], 'SORTITION_INVALID_PARAMETERS'],
    [['--tau', '10', '--threshold', '0', '--adversary', '0.1'], 'SORTITION_INVALID_PARAMETERS'],
    [['--tau', '10', '--threshold', '3/2', '--adversary', '0.1'], 'SORTITION_INVALID_PARAMETERS'],
    [['--tau', '10', '--threshold', 'most', '--adversary', '0.1'], 'SORTITION_INVALID_PARAMETERS'],
    [['--tau', '10', '--threshold', '7', '--adversary', '1'], 'SORTITION_INVALID_PARAMETERS'],
    [['--tau', '10', '--threshold', '7', '--adversary=-0.1'], 'SORTITION_INVALID_PARAMETERS'],
    [['--tau', '10', '--threshold', '7', '--adversary', '-0.1'], 'USAGE_UNKNOWN_OPTION'],
    [['--tau', '10', '--threshold', '7', '--adversary', 'x'], 'SORTITION_INVALID_PARAMETERS'],
    [['--tau', '10', '--threshold', '7'], 'USAGE_MISSING_ARGUMENT'],
    [['--tau', '10', '--threshold', '7', '--adversary', '0.1', '--bogus'], 'USAGE_UNKNOWN_OPTION'],
  ];
  for (const [args, code] of cases) {
    const r = await ferry(['committee', ...args, '--json']);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(JSON.parse(r.stdout).error.code, code, args.join(' '));
  }
  const human = await ferry(['committee', '--tau', 'ten', '--threshold', '7', '--adversary', '0.1']);
  assert.equal(human.code, 2);
  assert.equal(human.stdout, '');
  assert.match(human.stderr, /--tau.*SORTITION_INVALID_PARAMETERS/);
});
