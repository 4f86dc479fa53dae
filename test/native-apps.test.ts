/**
 * Apps in C and Rust (examples/wordcount-c, examples/wordcount-rust), built with the system
 * toolchains (Debian's clang, lld, wasi-libc; rustc with libstd-rust-dev-wasm32) and run with
 * `ferry app run` through bin/ferry: their results equal the AssemblyScript wordcount's, on
 * stdin (one dataset) and on /data files (several); builds are reproducible (the same bytes
 * from another directory); an app cannot name a host file through its arguments; and on a
 * devnet both run as tasks on two datasets (/data/<dataset id>), verified, with the result
 * `ferry app run` gives for the same files. Skipped
 * with the reason when a toolchain is missing, except under CI (`.ci/run` installs them).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  buildNativeExample,
  compileNative,
  ensureExamplesBuilt,
  examplePath,
  findToolchain,
  NATIVE_EXAMPLES,
  type NativeExampleName,
} from '../examples/index.ts';
import { ferry as devnetFerry, withDevnet } from './helpers/devnet.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const FERRY = join(HERE, '..', 'bin', 'ferry');
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

/** Text with every kind of whitespace, runs of it, long words, and 64 KiB buffer edges. */
function sampleText(seed: number, size: number): Buffer {
  const ws = [' ', '\n', '\t', '\r', '\v', '\f', '  ', '\n\n'];
  const out: string[] = [];
  let x = seed;
  let n = 0;
  while (n < size) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const word = 'w'.repeat(1 + (x % 13)) + (x % 7 === 0 ? 'é' : '');
    const sep = ws[(x >> 8) % ws.length];
    out.push(word, sep);
    n += word.length + sep.length;
  }
  return Buffer.from(out.join(''));
}

before(async () => {
  await ensureExamplesBuilt();
  dir = await mkdtemp(join(tmpdir(), 'ferry-native-apps-'));
  await writeFile(join(dir, 'a.txt'), sampleText(1, 300_000));
  await writeFile(join(dir, 'b.txt'), 'no newline at the end\tword');
  await writeFile(join(dir, 'empty.txt'), '');
});
after(() => rm(dir, { recursive: true, force: true }));

type Counts = { lines: number; words: number; bytes: number };

async function wordcount(app: string, data: string[], args: string[] = []): Promise<Counts> {
  const r = await ferry([
    'app',
    'run',
    app,
    ...data.flatMap((d) => ['--data', join(dir, d)]),
    ...args.flatMap((a) => [`--arg=${a}`]),
  ]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

for (const name of Object.keys(NATIVE_EXAMPLES) as NativeExampleName[]) {
  const lang = NATIVE_EXAMPLES[name];
  test(`${name}: built reproducibly, same results as the AssemblyScript wordcount`, async (t) => {
    const tool = await findToolchain(lang);
    if ('missing' in tool) {
      assert.ok(!process.env.CI, `CI is set and ${tool.missing}: .ci/run installs the toolchains`);
      t.skip(tool.missing);
      return;
    }
    const built = await buildNativeExample(name, true);
    assert.equal(typeof built, 'string');
    const app = built as string;

    // The same source built from elsewhere gives the same bytes (no paths, no timestamps).
    const other = join(dir, `elsewhere-${name}`, 'src');
    await cp(join(HERE, '..', 'examples', name), other, { recursive: true });
    await compileNative(tool, other, join(dir, `${name}.wasm`));
    assert.ok(
      (await readFile(join(dir, `${name}.wasm`))).equals(await readFile(app)),
      `${name} is not reproducible`,
    );

    // One dataset: stdin.
    for (const d of ['a.txt', 'b.txt', 'empty.txt']) {
      assert.deepEqual(await wordcount(app, [d]), await wordcount(examplePath('wordcount'), [d]), d);
    }
    // Several datasets: /data/NAME for each argument; the totals of the per-file counts.
    const each = await Promise.all(['a.txt', 'b.txt'].map((d) => wordcount(examplePath('wordcount'), [d])));
    const sum = {
      lines: each[0].lines + each[1].lines,
      words: each[0].words + each[1].words,
      bytes: each[0].bytes + each[1].bytes,
    };
    assert.deepEqual(await wordcount(app, ['a.txt', 'b.txt'], ['a.txt', 'b.txt']), sum);
    assert.ok(sum.words > 20_000 && sum.lines > 1000, JSON.stringify(sum));

    // The attacker's side: an app asked to read a host file, or a dataset twice, gets nothing.
    for (const evil of ['../../../../etc/passwd', '/etc/passwd', 'a.txt/../../etc/hostname']) {
      const r = await ferry([
        'app',
        'run',
        app,
        '--data',
        join(dir, 'a.txt'),
        '--data',
        join(dir, 'b.txt'),
        `--arg=${evil}`,
      ]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /cannot open/);
    }
    const twice = await ferry([
      'app',
      'run',
      app,
      '--data',
      join(dir, 'a.txt'),
      '--data',
      join(dir, 'b.txt'),
      '--arg=a.txt',
      '--arg=a.txt',
    ]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /cannot open \/data\/a\.txt/);
  });
}

test('devnet: a Rust app and a C app run as tasks on several datasets; results as ferry app run gives', {
  timeout: 300_000,
}, async (t) => {
  const tools = await Promise.all(
    (['wordcount-c', 'wordcount-rust'] as const).map((n) => findToolchain(NATIVE_EXAMPLES[n])),
  );
  const missing = tools.find((x) => 'missing' in x) as { missing: string } | undefined;
  if (missing) {
    assert.ok(!process.env.CI, `CI is set and ${missing.missing}`);
    t.skip(missing.missing);
    return;
  }
  const apps = await Promise.all(
    (['wordcount-c', 'wordcount-rust'] as const).map((n) => buildNativeExample(n)),
  );
  await withDevnet({ executors: 1, verifiers: 2 }, async (net) => {
    const datasetIds: string[] = [];
    const published = [];
    for (const app of apps as string[]) {
      const p = await devnetFerry(['app', 'publish', app, '--profile', 'bob'], net.env);
      assert.equal(p.code, 0, p.stderr);
      published.push(p.json);
    }
    for (const f of ['a.txt', 'b.txt']) {
      const ds = await devnetFerry(
        [
          'dataset',
          'add',
          join(dir, f),
          '--region',
          'DE',
          ...published.flatMap((p) => ['--allow-app', p.measurement]),
          '--committee',
          '3000',
          '--threshold',
          '2/3',
          '--profile',
          'alice',
        ],
        net.env,
      );
      assert.equal(ds.code, 0, ds.stderr);
      datasetIds.push(String(ds.json.datasetId));
    }
    // Locally, the files are /data/a.txt and /data/b.txt; on the network /data/<dataset id>.
    const local = await wordcount(apps[0] as string, ['a.txt', 'b.txt'], ['a.txt', 'b.txt']);
    for (const p of published) {
      const out = join(dir, `task-${p.appId}.json`);
      const run = await devnetFerry(
        [
          'task',
          'run',
          '--app',
          String(p.appId),
          ...datasetIds.flatMap((d) => ['--dataset', d]),
          ...datasetIds.flatMap((d) => [`--arg=${d}`]),
          '--wait',
          '--out',
          out,
          '--profile',
          'carol',
        ],
        net.env,
      );
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.json.verified, true);
      assert.equal(run.json.outcome, 'exit');
      assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), local);
    }
  });
});
