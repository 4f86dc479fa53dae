import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const FERRY = fileURLToPath(new URL('../../../bin/ferry', import.meta.url));
const V = JSON.parse(
  readFileSync(new URL('../../../test/vectors/vrf/rfc9381-edwards25519-tai.json', import.meta.url), 'utf8'),
).vectors as Record<string, string>[];

type Run = { code: number; stdout: string; stderr: string };

function ferry(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(FERRY, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number) : 0;
      resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr });
    });
  });
}

/** Exactly one JSON object on stdout. */
function json(r: Run): Record<string, unknown> {
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one line of JSON expected, got: ${r.stdout}`);
  return JSON.parse(lines[0]);
}

test('vrf keygen --json, then prove and verify with it', async () => {
  const k = await ferry('vrf', 'keygen', '--json');
  assert.equal(k.code, 0, k.stderr);
  const { sk, pk } = json(k) as { sk: string; pk: string };
  assert.match(sk, /^[0-9a-f]{64}$/);
  assert.match(pk, /^[0-9a-f]{64}$/);
  const p = await ferry('vrf', 'prove', '--sk', sk, '--alpha', 'cafe', '--json');
  assert.equal(p.code, 0, p.stderr);
  const { pi, beta } = json(p) as { pi: string; beta: string };
  assert.match(pi, /^[0-9a-f]{160}$/);
  assert.match(beta, /^[0-9a-f]{128}$/);
  const v = await ferry('vrf', 'verify', '--pk', pk, '--alpha', 'cafe', '--pi', pi, '--json');
  assert.equal(v.code, 0, v.stderr);
  assert.deepEqual(json(v), { valid: true, beta });
});

test('vrf prove and verify reproduce the RFC 9381 vectors (empty alpha included)', async () => {
  for (const v of V) {
    const p = await ferry('vrf', 'prove', '--sk', v.SK, '--alpha', v.alpha, '--json');
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(json(p), { pi: v.pi, beta: v.beta });
    const r = await ferry('vrf', 'verify', '--pk', v.PK, '--alpha', v.alpha, '--pi', v.pi, '--json');
    assert.deepEqual(json(r), { valid: true, beta: v.beta });
  }
});

test('vrf verify: invalid proofs print valid:false with the code and exit 3', async () => {
  const v = V[1];
  const badS = v.pi.slice(0, 158) + 'ff';
  const cases: [string[], string][] = [
    [['--pk', v.PK, '--alpha', '73', '--pi', v.pi], 'VRF_PROOF_INVALID'],
    [['--pk', V[0].PK, '--alpha', v.alpha, '--pi', v.pi], 'VRF_PROOF_INVALID'],
    [['--pk', v.PK, '--alpha', v.alpha, '--pi', v.pi.slice(0, 158)], 'VRF_PROOF_WRONG_LENGTH'],
    [['--pk', v.PK, '--alpha', v.alpha, '--pi', badS], 'VRF_PROOF_S_OUT_OF_RANGE'],
    [
      ['--pk', v.PK, '--alpha', v.alpha, '--pi', `${'ff'.repeat(31)}7f${v.pi.slice(64)}`],
      'VRF_PROOF_INVALID_GAMMA',
    ],
    [['--pk', `01${'00'.repeat(31)}`, '--alpha', v.alpha, '--pi', v.pi], 'VRF_PUBLIC_KEY_SMALL_ORDER'],
    [['--pk', `ee${'ff'.repeat(30)}7f`, '--alpha', v.alpha, '--pi', v.pi], 'VRF_PUBLIC_KEY_NON_CANONICAL'],
  ];
  await Promise.all(
    cases.map(async ([args, expected]) => {
      const r = await ferry('vrf', 'verify', ...args, '--json');
      assert.equal(r.code, 3, `${expected}: ${r.stdout}${r.stderr}`);
      const out = json(r) as { valid: boolean; error: { code: string; message: string; hints: string[] } };
      assert.equal(out.valid, false);
      assert.equal(out.error.code, expected);
      assert.equal(typeof out.error.message, 'string');
      assert.ok(Array.isArray(out.error.hints));
    }),
  );
  const text = await ferry('vrf', 'verify', '--pk', v.PK, '--alpha', '73', '--pi', v.pi);
  assert.equal(text.code, 3);
  assert.match(text.stdout, /^invalid: .*\[VRF_PROOF_INVALID\]/);
});

test('usage errors exit 2: malformed hex, wrong key lengths, missing options', async () => {
  const v = V[0];
  const cases: string[][] = [
    ['vrf', 'prove', '--sk', 'zz', '--alpha', ''],
    ['vrf', 'prove', '--sk', v.SK.slice(2), '--alpha', ''],
    ['vrf', 'prove', '--sk', v.SK],
    ['vrf', 'prove', '--sk', v.SK, '--alpha', 'abc'],
    ['vrf', 'verify', '--pk', v.PK.slice(2), '--alpha', '', '--pi', v.pi],
    ['vrf', 'verify', '--pk', `${v.PK}00`, '--alpha', '', '--pi', v.pi],
    ['vrf', 'verify', '--pk', v.PK, '--alpha', '', '--pi', 'xyz'],
    ['vrf', 'verify', '--pk', v.PK, '--alpha', ''],
    ['vrf', 'keygen', '--bogus'],
  ];
  await Promise.all(
    cases.map(async (args) => {
      const r = await ferry(...args, '--json');
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      const out = json(r) as { error: { code: string } };
      assert.match(out.error.code, /^USAGE_/);
    }),
  );
});

test('human-readable output and --help', async () => {
  const v = V[0];
  const p = await ferry('vrf', 'prove', '--sk', v.SK, '--alpha', '');
  assert.equal(p.code, 0);
  assert.equal(p.stdout, `pi: ${v.pi}\nbeta: ${v.beta}\n`);
  const r = await ferry('vrf', 'verify', '--pk', v.PK, '--alpha', '', '--pi', v.pi);
  assert.equal(r.stdout, `valid: true\nbeta: ${v.beta}\n`);
  const k = await ferry('vrf', 'keygen');
  assert.match(k.stdout, /^sk: [0-9a-f]{64}\npk: [0-9a-f]{64}\n$/);
  for (const c of ['keygen', 'prove', 'verify']) {
    const h = await ferry('vrf', c, '--help');
    assert.equal(h.code, 0);
    assert.match(h.stdout, new RegExp(`^Usage: ferry vrf ${c}`));
  }
});
