/**
 * CLI start-up (issue 16 aim 1): whole-process wall time of `bin/ferry` commands against bare
 * Node (`node -e 0`, the project's Node 24), measured in the same run, interleaved (one round
 * runs every command once, so load on the machine falls on all alike); the median of the rounds.
 *
 * Wall time depends on the machine's load (on a busy machine every process waits for a core);
 * the group "startup cpu" gives the CPU time (user + system, of bin/ferry and its children) of
 * the same runs, which load changes little: it is what the start-up costs on an idle machine.
 *
 * Each command runs two ways: the bundle (`npm run build:cli`, dist/cli/main.js, what bin/ferry
 * runs when it is present and fresh) and the sources (FERRY_SOURCES=1, what runs without a
 * build). Both with Node's compile cache warm, in a cache directory of this run (bin/ferry keeps
 * it in $TMPDIR/ferry-cli-compile-cache, so only the first run after a change is cold; a row
 * gives that first run too). The bench builds dist/cli for the run, and removes it again when
 * there was none before.
 *
 * Aims: local commands (--help, keygen, encrypt, decrypt, vrf, app run up to the enclave) within
 * 60 ms of bare Node; chain commands within 300 ms. `app run` is measured up to the enclave: on
 * an app file that does not exist, it loads everything the command uses and stops before
 * creating the enclave (exit 1). The chain command is `nodes ls` against a local anvil with
 * Ferry deployed and one node registered.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerNode } from '../src/chain/index.ts';
import { randomHex, startTestChain } from '../src/chain/testing.ts';
import { buildCli, DEFAULT_OUT } from '../scripts/build-cli.ts';
import type { Bench, BenchRow } from './harness.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FERRY = join(ROOT, 'bin', 'ferry');
const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const LOCAL_AIM_MS = 60;
const CHAIN_AIM_MS = 300;

type Case = { name: string; args: string[]; aim: number; ok: number };

/**
 * Runs `cmd args` once under bash and returns its wall time and the CPU time (user + system) of
 * the process and its children, from bash's `times` (getrusage of the waited children).
 */
function timeOnce(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ok: number,
): { wall: number; cpu: number } {
  const script = '"$@" >/dev/null; rc=$?; times; exit $rc';
  const t0 = performance.now();
  const r = spawnSync('bash', ['-c', script, 'bench', cmd, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  const wall = performance.now() - t0;
  if (r.status !== ok) {
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}, expected ${ok}: ${r.stderr}`);
  }
  // `times` prints the shell's user and system time, then its children's: "0m0.031s 0m0.008s".
  const children = r.stdout.trim().split('\n').at(-1) ?? '';
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  if (secs.length !== 2) throw new Error(`unexpected output of times: ${r.stdout}`);
  return { wall, cpu: (secs[0] + secs[1]) * 1000 };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const bench: Bench = async ({ quick, log }) => {
  const rounds = quick ? 5 : 15;
  const dir = mkdtempSync(join(tmpdir(), 'ferry-startup-bench-'));
  const hadBuild = existsSync(DEFAULT_OUT);
  const tc = await startTestChain();
  try {
    log('building dist/cli (npm run build:cli)');
    await buildCli();
    const cache = join(dir, 'compile-cache');
    const base: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_COMPILE_CACHE: cache,
      FERRY_HOME: join(dir, 'home'),
    };
    delete base.FERRY_SOURCES;

    // Inputs: an identity, a tiny file and its ciphertext, a VRF key, a node on the chain.
    const id = join(dir, 'id.txt');
    const made = spawnSync(FERRY, ['keygen', '-o', id, '--json'], { env: base, encoding: 'utf8' });
    const recipient = (JSON.parse(made.stdout) as { recipient: string }).recipient;
    const plain = join(dir, 'tiny.txt');
    writeFileSync(plain, 'a tiny file\n');
    const sealed = join(dir, 'tiny.age');
    spawnSync(FERRY, ['encrypt', '-r', recipient, '-o', sealed, plain], { env: base });
    const vrf = JSON.parse(
      spawnSync(FERRY, ['vrf', 'keygen', '--json'], { env: base, encoding: 'utf8' }).stdout,
    ) as { sk: string };
    const node = await tc.account();
    await registerNode(node, {
      roles: ['executor'],
      region: 'DE',
      teeKinds: ['tpm2'],
      vrfPublicKey: randomHex(32),
      signingKey: randomHex(32),
      endpoint: 'http://127.0.0.1:1/node',
      stake: 10n ** 18n,
    });
    const contracts = JSON.stringify(tc.contracts);

    const cases: Case[] = [
      { name: '--help', args: ['--help'], aim: LOCAL_AIM_MS, ok: 0 },
      { name: 'keygen', args: ['keygen'], aim: LOCAL_AIM_MS, ok: 0 },
      { name: 'encrypt', args: ['encrypt', '-r', recipient, plain], aim: LOCAL_AIM_MS, ok: 0 },
      { name: 'decrypt', args: ['decrypt', '-i', id, sealed], aim: LOCAL_AIM_MS, ok: 0 },
      {
        name: 'vrf prove',
        args: ['vrf', 'prove', '--sk', vrf.sk, '--alpha', '00'],
        aim: LOCAL_AIM_MS,
        ok: 0,
      },
      {
        name: 'app run (up to the enclave)',
        args: ['app', 'run', join(dir, 'missing.wasm')],
        aim: LOCAL_AIM_MS,
        ok: 1,
      },
      {
        name: 'nodes ls (chain)',
        args: ['nodes', 'ls', '--rpc', tc.chain.rpcUrl, '--contracts', contracts, '--json'],
        aim: CHAIN_AIM_MS,
        ok: 0,
      },
    ];
    const modes = [
      { name: 'bundle', env: base },
      { name: 'sources', env: { ...base, FERRY_SOURCES: '1' } },
    ];

    // The first run after a change: compile cache cold (the bundle's chunks are cached by the
    // first command that loads them, so this is the cold figure of --help).
    const cold: Record<string, { wall: number; cpu: number }> = {};
    for (const m of modes) cold[m.name] = timeOnce(FERRY, ['--help'], m.env, 0);
    for (const m of modes) for (const c of cases) timeOnce(FERRY, c.args, m.env, c.ok);

    const runs = new Map<string, { wall: number; cpu: number }[]>();
    const add = (key: string, t: { wall: number; cpu: number }) => {
      const xs = runs.get(key) ?? [];
      xs.push(t);
      runs.set(key, xs);
    };
    for (let r = 0; r < rounds; r++) {
      add('node -e 0', timeOnce(NODE, ['-e', '0'], base, 0));
      for (const m of modes) {
        for (const c of cases) add(`ferry ${c.name}, ${m.name}`, timeOnce(FERRY, c.args, m.env, c.ok));
      }
      log(`round ${r + 1}/${rounds}`);
    }
    const built = statSync(join(DEFAULT_OUT, 'main.js')).mtimeMs / 1000;
    const stale = spawnSync('find', [join(ROOT, 'src'), '-newermt', `@${built}`, '-print', '-quit'], {
      encoding: 'utf8',
    }).stdout.trim();

    const bare = runs.get('node -e 0') ?? [];
    const baseWall = median(bare.map((t) => t.wall));
    const baseCpu = median(bare.map((t) => t.cpu));
    const rows: BenchRow[] = [
      {
        group: 'startup',
        name: 'node -e 0',
        value: baseWall,
        unit: 'ms',
        note: `bare Node 24, median of ${rounds}`,
      },
      { group: 'startup cpu', name: 'node -e 0', value: baseCpu, unit: 'ms', note: 'user + system time' },
    ];
    const verdict = (over: number, aim: number) =>
      `+${over.toFixed(0)} ms over node, aim <= +${aim} ms: ${over <= aim ? 'met' : 'NOT met'}`;
    for (const m of modes) {
      for (const c of cases) {
        const xs = runs.get(`ferry ${c.name}, ${m.name}`) ?? [];
        const wall = median(xs.map((t) => t.wall));
        const cpu = median(xs.map((t) => t.cpu));
        const staleNote = m.name === 'bundle' && stale ? '; the build went stale during the run' : '';
        rows.push({
          group: 'startup',
          name: `ferry ${c.name}, ${m.name}`,
          value: wall,
          unit: 'ms',
          baseline: 'node -e 0',
          note: `${verdict(wall - baseWall, c.aim)} (min ${Math.min(...xs.map((t) => t.wall)).toFixed(0)} ms)${staleNote}`,
        });
        rows.push({
          group: 'startup cpu',
          name: `ferry ${c.name}, ${m.name}`,
          value: cpu,
          unit: 'ms',
          baseline: 'node -e 0',
          note: verdict(cpu - baseCpu, c.aim),
        });
      }
      rows.push({
        group: 'startup',
        name: `ferry --help, ${m.name}, compile cache cold`,
        value: cold[m.name].wall,
        unit: 'ms',
        baseline: 'node -e 0',
        note: `the first run after a change (one run; ${cold[m.name].cpu.toFixed(0)} ms CPU)`,
      });
    }
    return rows;
  } finally {
    await tc.stop();
    if (!hadBuild) rmSync(DEFAULT_OUT, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
};

export default bench;
