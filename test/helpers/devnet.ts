/**
 * The one harness of the devnet suites (test/devnet-*.test.ts, journeys, dashboard): start and
 * stop a devnet, run the CLI, wait for a task, act as a node or an owner.
 */
import { execFile } from 'node:child_process';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hex } from 'viem';
import { ensureExamplesBuilt, examplePath } from '../../examples/index.ts';
import {
  type ChainReader,
  type ChainWriter,
  connect,
  type FerryEvent,
  getFerryEvents,
  getNode,
  getTask,
  type TaskInfo,
  timeoutTask,
  writer,
} from '../../src/chain/index.ts';
import { loadProfileSecrets } from '../../src/profile/index.ts';
import { vrfPublicKey } from '../../src/crypto/vrf/index.ts';
import { isAlive } from '../../src/devnet/pidfile.ts';
import { type Devnet, type DevnetOptions, devnetUp } from '../../src/devnet/up.ts';
import { fromHex, type Logger } from '../../src/kernel/index.ts';
import { createPeerClient, type Ed25519Signer } from '../../src/net/index.ts';
import { stakeUnits } from '../../src/protocol/index.ts';

/** A logger that drops everything (the daemons log to files under the devnet home). */
export const quiet: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

export type Net = { devnet: Devnet; home: string; env: NodeJS.ProcessEnv };

/** A chain writer acting as profile `name` of the devnet. */
export async function chainFor(net: Net, name: string): Promise<ChainWriter> {
  const { info } = net.devnet;
  return writer(
    await connect({ rpcUrl: info.rpcUrl, privateKey: loadProfileSecrets(net.home, name).evmPrivateKey }),
    info.contracts,
  );
}

/** Prints the tail of every child's log (FERRY_TEST_LOG_TAIL chars, default 2500) to stderr. */
export function dumpLogs(net: Net): void {
  for (const c of net.devnet.children()) {
    try {
      const text = readFileSync(join(net.home, 'logs', `${c.name}.log`), 'utf8');
      process.stderr.write(
        `--- ${c.name}\n${text.slice(-(Number(process.env.FERRY_TEST_LOG_TAIL) || 2500))}\n`,
      );
    } catch {
      // no log
    }
  }
}

// --- shared by the adversarial and measurement suites ------------------------------------

/** bin/ferry of this checkout. */
export const FERRY = fileURLToPath(new URL('../../bin/ferry', import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: parsed CLI JSON, checked field by field by the callers
export type CliJson = any;
export type CliRun = { code: number; json: CliJson; stdout: string; stderr: string };

/** Runs `bin/ferry ARGS --json` (or `bin` given) with `env`; never rejects. */
export function ferry(args: string[], env: NodeJS.ProcessEnv, bin: string = FERRY): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(bin, [...args, '--json'], { env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      let json: CliJson = {};
      try {
        json = JSON.parse(stdout);
      } catch {
        // asserted by the caller
      }
      resolve({ code: typeof code === 'number' ? code : 1, json, stdout, stderr });
    });
  });
}

/**
 * Starts a devnet in a fresh FERRY_HOME, runs `fn`, dumps the children's logs when it throws
 * (and copies the whole logs folder under $FERRY_TEST_KEEP_LOGS when that is set),
 * and always stops the devnet (resuming any process the test froze first) and removes the home.
 * When `fn` passed, it then checks that every process the devnet supervised has exited.
 */
export async function withDevnet(
  opts: {
    executors: number;
    verifiers: number;
    regions?: string[];
    env?: Record<string, string>;
    /** Where each process runs (src/devnet/up.ts; test/helpers/netns.ts). */
    placement?: DevnetOptions['placement'];
  },
  fn: (net: Net) => Promise<void>,
): Promise<void> {
  await ensureExamplesBuilt();
  const home = mkdtempSync(join(tmpdir(), 'ferry-devnet-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FERRY_HOME: home,
    FERRY_LOG_LEVEL: process.env.FERRY_TEST_LOG_LEVEL ?? 'info',
    ...opts.env,
  };
  delete env.FERRY_PROFILE;
  const devnet = await devnetUp({
    home,
    executors: opts.executors,
    verifiers: opts.verifiers,
    regions: opts.regions,
    placement: opts.placement,
    log: quiet,
    env,
  });
  const net: Net = { devnet, home, env };
  const pids = new Set<number>();
  let ok = false;
  try {
    await fn(net);
    ok = true;
  } finally {
    for (const c of devnet.children()) if (c.pid) pids.add(c.pid);
    if (!ok) dumpLogs(net);
    const keep = process.env.FERRY_TEST_KEEP_LOGS;
    if (!ok && keep) cpSync(join(home, 'logs'), join(keep, basename(home)), { recursive: true });
    for (const c of devnet.children()) if (c.pid) signal(c.pid, 'SIGCONT');
    await devnet.stop();
    rmSync(home, { recursive: true, force: true });
  }
  const alive = [...pids].filter((p) => isAlive(p));
  if (alive.length > 0) throw new Error(`supervised processes still running after stop: ${alive.join(', ')}`);
}

/** Sends `sig` to `pid`, ignoring a process that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

/** The supervised child `name` (its current pid). */
export function child(
  net: Net,
  name: string,
): { name: string; pid: number; restarts: number; state: string } {
  const c = net.devnet.children().find((x) => x.name === name);
  if (!c?.pid) throw new Error(`no running child ${name}`);
  return { name: c.name, pid: c.pid, restarts: c.restarts, state: c.state };
}

/** SIGSTOP / SIGCONT the named children (a frozen node sees nothing and does nothing). */
export function freeze(net: Net, names: string[]): void {
  for (const n of names) signal(child(net, n).pid, 'SIGSTOP');
}
export function thaw(net: Net, names: string[]): void {
  for (const n of names) signal(child(net, n).pid, 'SIGCONT');
}

/** Polls `fn` every `intervalMs` until it returns a truthy value; fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs = 120_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The Ferry events of one task (all attempts), from its creation block to the head. */
export async function taskEvents(c: ChainReader, taskId: bigint): Promise<FerryEvent[]> {
  const t = await getTask(c, taskId);
  if (!t) throw new Error(`no task ${taskId}`);
  // The newest block, not viem's cached block number (cached for the polling interval): the
  // event that made the task final may be in a block mined since, and would be missed.
  const evs = await getFerryEvents(c, t.createdBlock, await c.public.getBlockNumber({ cacheTime: 0 }));
  return evs.filter((e) => (e.args as { taskId?: bigint }).taskId === taskId);
}

/**
 * Waits until the task is final (completed, failed, expired). When the chain time is past the
 * current stage's deadline for a while, it calls `timeout` itself as any party may (reverts,
 * e.g. a node was first, are ignored), so a stuck task ends even if every node is busy.
 */
export async function waitFinal(net: Net, taskId: bigint, timeoutMs = 180_000): Promise<TaskInfo> {
  const c = await chainFor(net, 'carol');
  return waitFor(
    `task ${taskId} to end`,
    async () => {
      const t = await getTask(c, taskId);
      if (!t) return null;
      if (t.status === 'completed' || t.status === 'failed' || t.status === 'expired') return t;
      const now = Number((await c.public.getBlock()).timestamp);
      const deadline = t.status === 'claimed' ? t.deadline + t.windows.evidence : t.deadline;
      if (t.deadline > 0 && now > deadline + 5 && t.status !== 'created' && t.status !== 'rejected') {
        await timeoutTask(c, taskId).catch(() => {});
      }
      return null;
    },
    timeoutMs,
    300,
  );
}

/** A devnet node's secrets as the test (the adversary, or the operator) holds them. */
export function nodeSecrets(
  net: Net,
  name: string,
): { vrf: { sk: Uint8Array; pk: Uint8Array }; signer: Ed25519Signer; address: string } {
  const home = join(net.home, 'nodes', name);
  const sk = fromHex(readFileSync(join(home, 'vrf.key'), 'utf8').trim(), 'vrf.key', 32);
  const p = loadProfileSecrets(net.home, name);
  return { vrf: { sk, pk: vrfPublicKey(sk) }, signer: p.signer, address: p.profile.address };
}

/** An HTTP call answered with its status and error code (never throws for an HTTP error). */
export async function httpCall(
  baseUrl: string,
  method: string,
  path: string,
  opts: { signer?: Ed25519Signer; body?: unknown } = {},
): Promise<{ status: number; code: string | null; body: Buffer }> {
  const client = createPeerClient({ baseUrl, signer: opts.signer, timeoutMs: 10_000 });
  const body = opts.body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(opts.body));
  const res = await client.raw(method, path, {
    signed: opts.signer !== undefined,
    body,
    contentType: 'application/json',
  });
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const buf = Buffer.concat(chunks);
  let code: string | null = null;
  try {
    code = JSON.parse(buf.toString('utf8'))?.error?.code ?? null;
  } catch {
    // not JSON (a file)
  }
  return { status: res.statusCode ?? 0, code, body: buf };
}

/** Stake in sortition units (docs/protocol.md §13.8) of every registered verifier of the devnet. */
export async function verifierUnits(net: Net): Promise<{ name: string; units: bigint }[]> {
  const c = await chainFor(net, 'carol');
  const out: { name: string; units: bigint }[] = [];
  for (const n of net.devnet.info.nodes.filter((x) => x.roles.includes('verifier'))) {
    const node = await getNode(c, n.address as Hex);
    out.push({ name: n.name, units: stakeUnits(node?.stake ?? 0n) });
  }
  return out;
}

/**
 * Transactions to the Tasks contract mined as reverted since `fromBlock` (sender, gas limit and
 * gas used, to tell an out-of-gas revert from a logical one): a diagnostic for failure messages.
 */
export async function revertedTasksTxs(
  c: ChainReader,
  fromBlock: bigint,
): Promise<{ hash: string; from: string; gas: bigint; gasUsed: bigint; block: bigint; timestamp: bigint }[]> {
  const out: {
    hash: string;
    from: string;
    gas: bigint;
    gasUsed: bigint;
    block: bigint;
    timestamp: bigint;
  }[] = [];
  const head = await c.public.getBlockNumber({ cacheTime: 0 });
  for (let n = fromBlock; n <= head; n++) {
    const b = await c.public.getBlock({ blockNumber: n, includeTransactions: true });
    for (const tx of b.transactions) {
      if (typeof tx === 'string' || tx.to?.toLowerCase() !== c.contracts.Tasks.toLowerCase()) continue;
      const r = await c.public.getTransactionReceipt({ hash: tx.hash });
      if (r.status !== 'success') {
        out.push({
          hash: tx.hash,
          from: tx.from,
          gas: tx.gas,
          gasUsed: r.gasUsed,
          block: n,
          timestamp: b.timestamp,
        });
      }
    }
  }
  return out;
}

/**
 * bob publishes the example app, alice a two-row CSV dataset (region DE) allowing it, with a
 * committee of every verifier's units and a 2/3 threshold, through the CLI.
 */
export async function publishAssets(
  net: Net,
  example: 'loop' | 'csv-stats',
): Promise<{ appId: string; datasetId: string }> {
  const app = await ferry(['app', 'publish', examplePath(example), '--profile', 'bob'], net.env);
  assert.equal(app.code, 0, app.stdout + app.stderr);
  const tau = (await verifierUnits(net)).reduce((s, v) => s + v.units, 0n);
  const file = join(net.home, `${example}.csv`);
  writeFileSync(file, 'temp,city\n10,Berlin\n14,Paris\n');
  const ds = await ferry(
    [
      'dataset',
      'add',
      file,
      '--region',
      'DE',
      '--allow-app',
      app.json.measurement,
      '--committee',
      String(tau),
      '--threshold',
      '2/3',
      '--profile',
      'alice',
    ],
    net.env,
  );
  assert.equal(ds.code, 0, ds.stdout + ds.stderr);
  return { appId: String(app.json.appId), datasetId: String(ds.json.datasetId) };
}

/** carol's `ferry task run` (without --wait) of the app on the dataset; its task id. */
export async function startTask(
  net: Net,
  a: { appId: string; datasetId: string },
  extra: string[] = [],
): Promise<bigint> {
  const r = await ferry(
    ['task', 'run', '--app', a.appId, '--dataset', a.datasetId, '--profile', 'carol', ...extra],
    net.env,
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return BigInt(r.json.taskId);
}
