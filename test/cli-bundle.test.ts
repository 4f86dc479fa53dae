/**
 * The bundled CLI (`npm run build:cli`, scripts/build-cli.ts) behaves as the sources do: the
 * same help texts byte for byte, the same results, errors and exit codes, and the files it
 * names by URL (the enclave process, app templates, worker threads) are the sources'. And
 * bin/ferry runs the bundle only when it is there and no source is newer. In the slow tier:
 * it builds the bundle (into a temporary directory) and starts anvil.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildCli } from '../scripts/build-cli.ts';
import { registerNode } from '../src/chain/index.ts';
import { randomHex, startTestChain, type TestChain } from '../src/chain/testing.ts';
import { DEMO_APP_PATH } from '../src/cli/demo-app.ts';
import { COMMANDS } from '../src/cli/registry.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCES = join(ROOT, 'src', 'cli', 'main.ts');
const dir = mkdtempSync(join(tmpdir(), 'ferry-cli-bundle-'));
const BUNDLE = join(dir, 'cli', 'main.js');
const ENV = { ...process.env, FERRY_HOME: join(dir, 'home'), NODE_COMPILE_CACHE: join(dir, 'cache') };

type Run = { code: number; stdout: string; stderr: string };

function exec(file: string, args: string[], env: NodeJS.ProcessEnv = ENV): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', env, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr });
    });
  });
}
const node = (entry: string, args: string[]) =>
  exec(process.execPath, ['--disable-warning=ExperimentalWarning', entry, ...args]);
const bundle = (...args: string[]) => node(BUNDLE, args);
const sources = (...args: string[]) => node(SOURCES, args);

/** Both ways; asserts the same exit code, stdout and stderr; returns the bundle's run. */
async function same(...args: string[]): Promise<Run> {
  const [b, s] = await Promise.all([bundle(...args), sources(...args)]);
  assert.deepEqual(b, s, `ferry ${args.join(' ')}`);
  return b;
}

let chain: TestChain;
before(async () => {
  const files = await buildCli(join(dir, 'cli'));
  assert.ok(files.some((f) => f.endsWith('main.js')));
  chain = await startTestChain();
});
after(async () => {
  await chain?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('help: ferry --help, each group and each command, byte for byte', async () => {
  const { commandHelp } = await import('../src/cli/main.ts');
  await same('--help');
  await same();
  const groups = new Set(COMMANDS.filter((e) => e.name.includes(' ')).map((e) => e.name.split(' ')[0]));
  for (const group of groups) await same(group, '--help');
  // Each command's help from the bundle, two at a time, against the sources' command objects.
  const queue = [...COMMANDS];
  const worker = async () => {
    for (let e = queue.shift(); e; e = queue.shift()) {
      const r = await bundle(...e.name.split(' '), '--help');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${commandHelp((await e.load()).default)}\n`, e.name);
    }
  };
  await Promise.all([worker(), worker()]);
});

test('errors: unknown command and option, wrong arguments, bad input: same message, code and JSON', async () => {
  assert.equal((await same('no-such-command')).code, 2);
  assert.equal((await same('vrf', 'prove', '--sk', 'zz', '--alpha', '00', '--json')).code, 2);
  assert.equal((await same('keygen', '--no-such-flag')).code, 2);
  assert.equal((await same('decrypt', '-i', join(dir, 'missing.txt'), join(dir, 'missing.age'))).code, 1);
  assert.equal((await same('app', 'run', join(dir, 'missing.wasm'), '--json')).code, 1);
  // The chain unreachable: exit 4 (unavailable) both ways.
  const contracts = JSON.stringify(chain.contracts);
  const r = await same('nodes', 'ls', '--rpc', 'http://127.0.0.1:1', '--contracts', contracts, '--json');
  assert.equal(r.code, 4, r.stdout);
});

test('age: keygen, encrypt and decrypt across the two builds', async () => {
  const id = join(dir, 'id.txt');
  const k = await bundle('keygen', '-o', id, '--json');
  assert.equal(k.code, 0, k.stderr);
  const { recipient } = JSON.parse(k.stdout) as { recipient: string };
  assert.equal((await same('keygen', '-y', id)).stdout.trim(), recipient);
  const plain = join(dir, 'plain.txt');
  writeFileSync(plain, 'bundled and unbundled\n');
  const sealed = join(dir, 'plain.age');
  assert.equal((await bundle('encrypt', '-r', recipient, '-o', sealed, plain)).code, 0);
  assert.equal((await same('decrypt', '-i', id, sealed)).stdout, 'bundled and unbundled\n');
  const armored = join(dir, 'plain.asc');
  assert.equal((await sources('encrypt', '-a', '-r', recipient, '-o', armored, plain)).code, 0);
  assert.equal((await bundle('decrypt', '-i', id, armored)).stdout, 'bundled and unbundled\n');
});

test('vrf: the same proof and output, and a proof the other build verifies', async () => {
  const k = JSON.parse((await bundle('vrf', 'keygen', '--json')).stdout) as { sk: string; pk: string };
  const p = await same('vrf', 'prove', '--sk', k.sk, '--alpha', 'cafe', '--json');
  const { pi, beta } = JSON.parse(p.stdout) as { pi: string; beta: string };
  const v = await same('vrf', 'verify', '--pk', k.pk, '--alpha', 'cafe', '--pi', pi, '--json');
  assert.equal((JSON.parse(v.stdout) as { beta: string }).beta, beta);
  // A proof for another input does not verify (exit 3) either way.
  assert.equal((await same('vrf', 'verify', '--pk', k.pk, '--alpha', 'cafd', '--pi', pi, '--json')).code, 3);
});

test('app run: the enclave process (spawned from the sources) runs the app as from the sources', async () => {
  const data = join(dir, 'readings.csv');
  writeFileSync(data, 'reading\n1\n2\n3\n4\n');
  const args = ['app', 'run', DEMO_APP_PATH, '--data', data, '--arg', 'reading', '--json'];
  const [b, s] = await Promise.all([bundle(...args), sources(...args)]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(s.code, 0, s.stderr);
  const pick = (r: Run) => {
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    return { exitCode: j.exitCode, outcome: j.outcome, outputSha256: j.outputSha256 };
  };
  assert.deepEqual(pick(b), pick(s));
  assert.equal(pick(b).exitCode, 0);
});

test('app new: the templates are found next to the sources', async () => {
  const r = await bundle('app', 'new', 'tmpl', '--lang', 'c', '--dir', join(dir, 'tmpl'), '--json');
  assert.equal(r.code, 0, r.stderr);
  for (const f of (JSON.parse(r.stdout) as { files: string[] }).files) {
    assert.ok(existsSync(join(dir, 'tmpl', f)), f);
  }
});

test('a chain command: nodes ls against anvil gives the same JSON', async () => {
  const w = await chain.account();
  await registerNode(w, {
    roles: ['executor'],
    region: 'DE',
    teeKinds: ['tpm2'],
    vrfPublicKey: randomHex(32),
    signingKey: randomHex(32),
    endpoint: 'http://127.0.0.1:1/node',
    stake: 10n ** 18n,
  });
  const contracts = JSON.stringify(chain.contracts);
  const r = await same('nodes', 'ls', '--rpc', chain.chain.rpcUrl, '--contracts', contracts, '--json');
  assert.equal(r.code, 0, r.stderr);
  const { nodes } = JSON.parse(r.stdout) as { nodes: { address: string }[] };
  assert.deepEqual(
    nodes.map((n) => n.address.toLowerCase()),
    [w.wallet.account.address.toLowerCase()],
  );
});

test('a rebuild keeps the chunks a running process may still import, for a day', async () => {
  const out = join(dir, 'cli');
  const recent = join(out, 'chunk-RECENT.js');
  const ancient = join(out, 'chunk-ANCIENT.js');
  writeFileSync(recent, 'export {};\n');
  writeFileSync(ancient, 'export {};\n');
  const twoDaysAgo = Date.now() / 1000 - 2 * 86_400;
  utimesSync(ancient, twoDaysAgo, twoDaysAgo);
  const files = await buildCli(out);
  assert.ok(existsSync(recent));
  assert.ok(!existsSync(ancient));
  for (const f of files) assert.ok(existsSync(f), f);
  assert.equal((await bundle('vrf', 'keygen', '--json')).code, 0);
});

test('bin/ferry runs the bundle only when it exists and nothing under src/ is newer', async () => {
  // A root of its own: bin/ferry, the project's node_modules, and two stand-in entry points.
  const root = join(dir, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'src', 'cli'), { recursive: true });
  mkdirSync(join(root, 'dist', 'cli'), { recursive: true });
  copyFileSync(join(ROOT, 'bin', 'ferry'), join(root, 'bin', 'ferry'));
  chmodSync(join(root, 'bin', 'ferry'), 0o755);
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  writeFileSync(join(root, 'package.json'), '{}\n');
  writeFileSync(join(root, 'package-lock.json'), '{}\n');
  const main = join(root, 'src', 'cli', 'main.ts');
  writeFileSync(main, "process.stdout.write('sources ' + process.argv.slice(2).join(' '));\n");
  const built = join(root, 'dist', 'cli', 'main.js');
  writeFileSync(built, "process.stdout.write('bundle ' + process.argv.slice(2).join(' '));\n");
  const env = { ...ENV, FERRY_SOURCES: '' };
  const ferry = (e: NodeJS.ProcessEnv = env) => exec(join(root, 'bin', 'ferry'), ['a b', 'c'], e);
  const at = (path: string, seconds: number) => utimesSync(path, seconds, seconds);
  // Times ahead of now: files outside this root (node_modules/.package-lock.json) are older.
  const t = Math.floor(Date.now() / 1000) + 1000;
  for (const f of [main, join(root, 'package.json'), join(root, 'package-lock.json')]) at(f, t);
  at(built, t + 10);
  assert.equal((await ferry()).stdout, 'bundle a b c');
  assert.equal((await ferry({ ...env, FERRY_SOURCES: '1' })).stdout, 'sources a b c');
  // A source saved after the build: the build is stale, the sources run.
  at(main, t + 20);
  assert.equal((await ferry()).stdout, 'sources a b c');
  at(main, t);
  at(join(root, 'package-lock.json'), t + 20);
  assert.equal((await ferry()).stdout, 'sources a b c');
  at(join(root, 'package-lock.json'), t);
  assert.equal((await ferry()).stdout, 'bundle a b c');
  rmSync(join(root, 'dist'), { recursive: true });
  assert.equal((await ferry()).stdout, 'sources a b c');
  assert.ok(readFileSync(join(root, 'bin', 'ferry'), 'utf8').includes('NODE_COMPILE_CACHE'));
});
