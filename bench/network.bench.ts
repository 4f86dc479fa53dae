/**
 * The network end to end (issue "The network end to end"): a devnet in a temporary FERRY_HOME
 * (chain with a block every 0.25 s, 2 executors, 5 verifiers, sim TEE), bob's csv-stats app and
 * alice's generated dataset as in `ferry demo` (committee: all five verifiers, 4 of 5 by
 * stake), then
 *   1. one task at a time, 5 times in sequence (--quick: 3; FERRY_BENCH_ONE_TASK_RUNS=N): the
 *      time of each stage from creation, medians (where the seed falls within its second moves
 *      the evidence by up to 1 s, so one run's ratio is a draw);
 *   2. many tasks created at once (50; --quick: 10): tasks per second, p50/p95 latency from
 *      creation to completion, and the share of that time spent on the chain, on attestation,
 *      in the enclave and in the owner agents' key release, and how many tasks did not
 *      complete (and why). The single task must complete (else an error); a failed task of
 *      the batch is reported as a row and logged, so the rest of `npm run bench` still runs.
 * Stage times are this process's local receive times: one watcher polls the chain's head and
 * events every 100 ms and stamps each event when it first sees it (block timestamps, whole
 * seconds on anvil, are given in the notes of the single-task rows). For the single task, an
 * event is stamped with the arrival of its block's new-head notification (WebSocket) when that
 * came first, so its stages are not rounded up to the watcher's poll.
 *
 * Two floors for the single task (see `contractFloor`): the issue's (claim window + 6
 * transactions) and the contract's on this chain, which adds what the contract imposes: the
 * seed's wait for the block after the creation block, and the whole-second rounding of the
 * claim deadline (evidence only in a block whose timestamp exceeds seed time + window).
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { decodeFunctionData, type Hex, parseEventLogs } from 'viem';
import { ensureExamplesBuilt, examplePath } from '../examples/index.ts';
import { developmentPolicy } from '../src/attestation/index.ts';
import { eventsSince } from '../src/audit/index.ts';
import {
  ANVIL_DEV_KEYS,
  ATTEMPT_END_REASONS,
  type ChainWriter,
  connect,
  type FerryEvent,
  getStakeTotals,
  getTask,
  TASK_STATES,
  tasksAbi,
} from '../src/chain/index.ts';
import { generateCsv } from '../src/cli/demo.ts';
import { actAs, type Network } from '../src/cli/journey/network.ts';
import { addDataset, publishApp } from '../src/agent/index.ts';
import { activeVerifierStakes, committeeSeating } from '../src/protocol/index.ts';
import { DEFAULT_WINDOWS, inputHashOf } from '../src/requester/index.ts';
import { type Devnet, DEVNET_BLOCK_TIME, devnetUp } from '../src/devnet/up.ts';
import { subscribeNewHeads, wsUrlFor } from '../src/chain/index.ts';
import { toHex } from '../src/kernel/index.ts';
import { STAKE_UNIT } from '../src/protocol/index.ts';
import type { Bench, BenchRow } from './harness.ts';

const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

const STAGES = ['seeded', 'claimed', 'evidence', 'attested', 'keysReleased', 'completed'] as const;
type Stage = (typeof STAGES)[number];
const LABEL: Record<Stage, string> = {
  seeded: 'seeded',
  claimed: 'claimed',
  evidence: 'evidence committed',
  attested: 'attested (votes reached threshold)',
  keysReleased: 'keys released (running)',
  completed: 'receipt / completed',
};

type Seen = { local: number; block: bigint };
type Track = {
  taskId: bigint;
  createdBlock: bigint | null;
  /** Stage times by attempt. */
  attempts: Map<number, Partial<Record<Stage, Seen>>>;
  /** Why earlier attempts ended (AttemptEnded reasons). */
  ended: string[];
  final: 'completed' | 'failed' | 'expired' | null;
  finalAttempt: number;
};

/** One watcher for every task: stamps each event with the local time it was first seen. */
class Watcher {
  readonly tracks = new Map<string, Track>();
  readonly blockTs = new Map<bigint, number>();
  #from: bigint;
  #c: ChainWriter;
  /** Arrival of each block's new-head notification (performance.now()), when given. */
  #arrivals: Map<bigint, { local: number; epochMs: number }> | null;
  constructor(
    c: ChainWriter,
    from: bigint,
    arrivals: Map<bigint, { local: number; epochMs: number }> | null = null,
  ) {
    this.#c = c;
    this.#from = from;
    this.#arrivals = arrivals;
  }
  add(taskId: bigint): Track {
    const t: Track = {
      taskId,
      createdBlock: null,
      attempts: new Map(),
      ended: [],
      final: null,
      finalAttempt: 0,
    };
    this.tracks.set(taskId.toString(), t);
    return t;
  }
  async poll(): Promise<void> {
    const head = await this.#c.public.getBlockNumber({ cacheTime: 0 });
    if (head < this.#from) return;
    const events = await eventsSince(this.#c, this.#from, head);
    const now = performance.now();
    this.#from = head + 1n;
    for (const e of events) this.#on(e, now);
  }
  #on(e: FerryEvent, now: number): void {
    if (e.contract !== 'Tasks') return;
    const t = this.tracks.get(String(e.args.taskId));
    if (!t) return;
    if (e.eventName === 'TaskCreated') {
      t.createdBlock = e.blockNumber;
      return;
    }
    const attempt = Number(e.args.attempt);
    let stages = t.attempts.get(attempt);
    if (!stages) {
      stages = {};
      t.attempts.set(attempt, stages);
    }
    const head = this.#arrivals?.get(e.blockNumber)?.local;
    const local = head !== undefined && head < now ? head : now;
    const mark = (s: Stage) => {
      if (!stages[s]) stages[s] = { local, block: e.blockNumber };
    };
    switch (e.eventName) {
      case 'TaskSeeded':
        mark('seeded');
        break;
      case 'TaskClaimed':
        mark('claimed');
        break;
      case 'EvidenceCommitted':
        mark('evidence');
        break;
      case 'TaskAttested':
        mark('attested');
        break;
      case 'AttemptEnded':
        t.ended.push(ATTEMPT_END_REASONS[Number(e.args.reason)] ?? `reason ${e.args.reason}`);
        break;
      case 'TaskCompleted':
        mark('completed');
        t.final = 'completed';
        t.finalAttempt = attempt;
        break;
      case 'StatusChanged': {
        const st = TASK_STATES[Number(e.args.status)];
        if (st === 'running') mark('keysReleased');
        if (st === 'failed' || st === 'expired') {
          t.final = st;
          t.finalAttempt = attempt;
        }
        break;
      }
    }
  }
  async timestamp(block: bigint): Promise<number> {
    let ts = this.blockTs.get(block);
    if (ts === undefined) {
      ts = Number((await this.#c.public.getBlock({ blockNumber: block })).timestamp);
      this.blockTs.set(block, ts);
    }
    return ts;
  }
  /** Polls until every tracked task is final or `deadline` (performance.now()) passes. */
  async until(deadline: number, done: () => boolean): Promise<void> {
    for (;;) {
      await this.poll();
      if (done()) return;
      if (performance.now() > deadline) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** /proc/loadavg's three averages, as printed in the notes. */
function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

/**
 * utime + stime of a process, clock ticks (/proc/PID/stat fields 14, 15), that of its children
 * it has waited for (fields 16, 17), and its parent.
 */
function procTimes(pid: number): { ticks: number; children: number; ppid: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      ticks: Number(f[11]) + Number(f[12]),
      children: Number(f[13]) + Number(f[14]),
      ppid: Number(f[1]),
    };
  } catch {
    return null;
  }
}

/** The machine's busy and total clock ticks (/proc/stat, all cores). */
function machineTicks(): { busy: number; total: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - cpu[3] - cpu[4], total };
}

/**
 * Samples the CPU time of the devnet's processes every 250 ms from /proc: anvil (found by its
 * port), each node and agent (the supervisor's children), the enclaves (processes whose parent
 * is an executor, summed per executor) and this process; and the whole machine's.
 */
class CpuSampler {
  readonly #labels: Map<number, string>;
  readonly #anvilPort: string;
  readonly #first = new Map<number, number>();
  readonly #last = new Map<number, { label: string; ticks: number }>();
  /** Processes seen whose parent is an executor (its enclaves, pre-started ones included). */
  readonly enclavePids = new Set<number>();
  #executors = new Set<number>();
  #timer: NodeJS.Timeout | null = null;
  #m0 = machineTicks();
  #m1 = this.#m0;
  #t0 = performance.now();
  #t1 = this.#t0;
  constructor(children: { name: string; pid: number | undefined }[], rpcUrl: string) {
    this.#labels = new Map(children.filter((c) => c.pid).map((c) => [c.pid!, c.name]));
    this.#executors = new Set(
      children.filter((c) => c.pid && c.name.startsWith('executor')).map((c) => c.pid!),
    );
    this.#labels.set(process.pid, 'bench (requester, watcher)');
    this.#anvilPort = new URL(rpcUrl).port;
  }
  start(): void {
    this.#m0 = machineTicks();
    this.#t0 = performance.now();
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), 250);
  }
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#sample();
    this.#m1 = machineTicks();
    this.#t1 = performance.now();
  }
  #sample(): void {
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid)) continue;
      let label = this.#labels.get(pid);
      const t = procTimes(pid);
      if (!t) continue;
      if (this.#executors.has(t.ppid)) this.enclavePids.add(pid);
      if (!label) {
        let cmd = '';
        try {
          cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        } catch {
          continue;
        }
        if (cmd.includes('anvil') && cmd.includes(`--port\0${this.#anvilPort}\0`))
          label = 'anvil (the chain)';
        if (!label) continue;
      }
      if (!this.#first.has(pid)) this.#first.set(pid, t.ticks);
      this.#last.set(pid, { label, ticks: t.ticks });
      // An executor's enclaves: the processes it spawned and reaped (their whole lives once they
      // ended; one still alive at the end is not counted).
      if (label.startsWith('executor')) {
        if (!this.#first.has(-pid)) this.#first.set(-pid, t.children);
        this.#last.set(-pid, { label: `enclaves of ${label}`, ticks: t.children });
      }
    }
  }
  /** CPU per label in % of one core over the sampled time, highest first; and the machine's busy %. */
  result(): { procs: [string, number][]; machine: number; cores: number; seconds: number } {
    const seconds = (this.#t1 - this.#t0) / 1000;
    const hz = 100;
    const by = new Map<string, number>();
    for (const [pid, { label, ticks }] of this.#last) {
      by.set(label, (by.get(label) ?? 0) + (ticks - (this.#first.get(pid) ?? ticks)));
    }
    const procs = [...by]
      .map(([l, t]): [string, number] => [l, (100 * t) / hz / seconds])
      .sort((a, b) => b[1] - a[1]);
    const busy = this.#m1.busy - this.#m0.busy;
    const total = this.#m1.total - this.#m0.total;
    const cores = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .filter((l) => /^cpu\d/.test(l)).length;
    return { procs, machine: total > 0 ? (100 * busy) / total : 0, cores, seconds };
  }
}

/**
 * The Tasks transactions mined in blocks [from, to], by function: sent (mined) and reverted on
 * chain. Sends refused at estimation never reach the chain and are not counted.
 */
async function tasksTxs(
  c: ChainWriter,
  from: bigint,
  to: bigint,
): Promise<Map<string, { sent: number; reverted: number; from: Set<string> }>> {
  const out = new Map<string, { sent: number; reverted: number; from: Set<string> }>();
  for (let n = from; n <= to; n++) {
    const b = await c.public.getBlock({ blockNumber: n, includeTransactions: true });
    for (const tx of b.transactions) {
      if (typeof tx === 'string' || tx.to?.toLowerCase() !== c.contracts.Tasks.toLowerCase()) continue;
      let fn = 'unknown';
      try {
        fn = decodeFunctionData({ abi: tasksAbi, data: tx.input }).functionName;
      } catch {
        // not a Tasks function
      }
      const r = await c.public.getTransactionReceipt({ hash: tx.hash });
      const e = out.get(fn) ?? { sent: 0, reverted: 0, from: new Set<string>() };
      e.sent++;
      if (r.status !== 'success') e.reverted++;
      e.from.add(tx.from.toLowerCase());
      out.set(fn, e);
    }
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

type Split = {
  waiting: number;
  chain: number;
  attestation: number;
  enclave: number;
  agents: number;
  total: number;
};

/** The devnet's block time, ms: a seed needs the block after the creation block. */
const BLOCK_MS = DEVNET_BLOCK_TIME * 1000;

/**
 * Where one task's time went (ms from t0, local receive times S, C, E, A, R, D of seeded,
 * claimed, evidence, attested, keys released, completed; cw the claim window; b the measured
 * mean send-to-receipt time of a transaction on this devnet):
 *   waiting     = (S-BLOCK_MS-b)+                 (not seeded yet: every executor at maxEnclaves,
 *                                                  seeding is back-pressure; and earlier attempts)
 *   chain       = min(S, BLOCK_MS+b) + min(E-S, cw) + min((E-S-cw)+, b) + min(A-E, b) + min(R-A, b) + min(D-R, b)
 *   attestation = (E-S-cw-b)+ + (A-E-b)+          (enclave creation + evidence, fetch + appraisal)
 *   agents      = (R-A-b)+                        (owner agents' checks and key delivery)
 *   enclave     = (D-R-b)+                        (download, decrypt, run, seal)
 * Each stage after the claim window ends with one transaction on the critical path (evidence,
 * vote, key-release record, receipt): b of it is counted as chain time. The five sum to D.
 */
function split(st: Partial<Record<Stage, Seen>>, t0: number, cw: number, b: number): Split | null {
  const at = (s: Stage) => (st[s] ? st[s].local - t0 : null);
  const S = at('seeded');
  const E = at('evidence');
  const A = at('attested');
  const R = at('keysReleased');
  const D = at('completed');
  if (S === null || E === null || A === null || R === null || D === null) return null;
  const pos = (x: number) => Math.max(0, x);
  const window = Math.min(E - S, cw);
  const evid = E - S - window;
  const seedChain = Math.min(S, BLOCK_MS + b);
  return {
    waiting: S - seedChain,
    chain:
      seedChain + window + Math.min(evid, b) + Math.min(A - E, b) + Math.min(R - A, b) + Math.min(D - R, b),
    attestation: pos(evid - b) + pos(A - E - b),
    agents: pos(R - A - b),
    enclave: pos(D - R - b),
    total: D,
  };
}

const bench: Bench = async ({ quick, log }) => {
  const rows: BenchRow[] = [];
  const loadStart = loadavg();
  log(`load average at start: ${loadStart}`);
  await ensureExamplesBuilt();
  const home = mkdtempSync(join(tmpdir(), 'ferry-bench-network-'));
  const env = { ...process.env, FERRY_HOME: home, FERRY_LOG_LEVEL: 'warn' };
  let devnet: Devnet | null = null;
  let headsClose: (() => void) | undefined;
  try {
    const tUp = performance.now();
    devnet = await devnetUp({ home, executors: 2, verifiers: 5, log: quiet, env });
    log(`devnet up in ${((performance.now() - tUp) / 1000).toFixed(1)} s: ${devnet.info.rpcUrl}`);
    const info = devnet.info;
    const net: Network = {
      rpcUrl: info.rpcUrl,
      chainId: info.chainId,
      contracts: info.contracts,
      devnet: null,
      simRoots: [],
    };
    const agent = (name: string) => info.profiles.find((p) => p.name === name)?.agent ?? '';
    const bob = await actAs(net, home, 'bob');
    const app = await publishApp({
      env,
      profile: 'bob',
      secrets: bob.secrets,
      chain: bob.chain,
      endpoint: agent('bob'),
      file: examplePath('csv-stats'),
      name: 'csv-stats.wasm',
      price: 0n,
      tee: ['sim'],
      policy: developmentPolicy(),
    });
    const alice = await actAs(net, home, 'alice');
    const rowsCsv = 5000;
    const stake = (await getStakeTotals(alice.chain)).verifierStake;
    const tau = Number(stake / STAKE_UNIT);
    const threshold = Math.ceil((tau * 4) / 5);
    const ds = await addDataset({
      env,
      profile: 'alice',
      secrets: alice.secrets,
      chain: alice.chain,
      endpoint: agent('alice'),
      source: Readable.from([Buffer.from(generateCsv(42, rowsCsv))]),
      name: 'readings.csv',
      regions: ['DE'],
      allowApps: [`0x${app.measurement}`],
      tee: ['sim'],
      tau,
      threshold,
      maxUses: 0,
      expiresAt: 0,
      requesters: [],
      policy: developmentPolicy(),
      price: 0n,
    });
    const seating = committeeSeating(tau, threshold, await activeVerifierStakes(alice.chain));
    log(`app ${app.appId}, dataset ${ds.datasetId} (${rowsCsv} rows), committee: ${seating.text}`);
    const carol = await actAs(net, home, 'carol');
    const c = carol.chain;

    // The protocol's own waits: one transaction's send-to-receipt time, and the wait for the next
    // block after a transaction's (a seed's anchor wait), from new-head notifications.
    const arrivals = new Map<bigint, { local: number; epochMs: number }>();
    const heads = subscribeNewHeads(wsUrlFor(info.rpcUrl));
    headsClose = () => heads.close();
    heads.subscribe((n) => {
      if (!arrivals.has(n)) arrivals.set(n, { local: performance.now(), epochMs: Date.now() });
    });
    const nextArrival = async (n: bigint, ms = 10_000) => {
      const end = performance.now() + ms;
      while (!arrivals.has(n) && performance.now() < end) await new Promise((r) => setTimeout(r, 2));
      return arrivals.get(n);
    };
    const spare = await connect({
      rpcUrl: info.rpcUrl,
      chainId: info.chainId,
      privateKey: ANVIL_DEV_KEYS[9],
    });
    {
      const end = performance.now() + 5000;
      while (!heads.live && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
    }
    const txMs: number[] = [];
    const anchorMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      // At a random phase of the block interval, as a task's creation is.
      await new Promise((r) => setTimeout(r, Math.random() * DEVNET_BLOCK_TIME * 1000));
      const t = performance.now();
      const hash = await spare.wallet!.sendTransaction({ to: spare.wallet!.account.address, value: 0n });
      const rc = await spare.public.waitForTransactionReceipt({ hash, pollingInterval: 100 });
      txMs.push(performance.now() - t);
      const [a0, a1] = [await nextArrival(rc.blockNumber), await nextArrival(rc.blockNumber + 1n)];
      if (a0 && a1) anchorMs.push(a1.local - a0.local);
    }
    const b = txMs.reduce((s, x) => s + x, 0) / txMs.length;
    const anchorMean = anchorMs.reduce((s, x) => s + x, 0) / Math.max(1, anchorMs.length);
    log(
      `tx send-to-receipt ${b.toFixed(0)} ms (mean of 5); next block after a tx ${anchorMean.toFixed(0)} ms (mean of ${anchorMs.length}; block time ${DEVNET_BLOCK_TIME} s); new heads ${heads.live ? 'live' : 'NOT live'}`,
    );
    // Set from the first task's deployed claim window (section 1).
    let cw = 0;
    let floorMs = 0;
    let FLOOR_NOTE = '';

    const inputHash = `0x${toHex(inputHashOf([]))}` as Hex;
    const recipient = `0x${toHex(carol.secrets.ageIdentity.publicKey)}` as Hex;
    const createMany = async (n: number): Promise<bigint[]> => {
      const now = Number((await c.public.getBlock()).timestamp);
      let nonce = await c.public.getTransactionCount({
        address: c.wallet.account.address,
        blockTag: 'pending',
      });
      const hashes: Promise<Hex>[] = [];
      for (let i = 0; i < n; i++) {
        hashes.push(
          c.wallet.writeContract({
            address: c.contracts.Tasks,
            abi: tasksAbi,
            functionName: 'createTask',
            args: [
              {
                appId: app.appId,
                datasetIds: [ds.datasetId],
                inputHash,
                resultRecipient: recipient,
                inputLocation: '',
                expiresAt: now + 900,
                claimWindow: DEFAULT_WINDOWS.claim,
                evidenceWindow: DEFAULT_WINDOWS.evidence,
                voteWindow: DEFAULT_WINDOWS.vote,
                runWindow: DEFAULT_WINDOWS.run,
                claimTarget: 0,
              },
            ],
            value: 10n ** 15n,
            nonce: nonce++,
            gas: 600_000n,
          }),
        );
      }
      const receipts = await Promise.all(
        (await Promise.all(hashes)).map((hash) =>
          c.public.waitForTransactionReceipt({ hash, pollingInterval: 100, timeout: 60_000 }),
        ),
      );
      return receipts.map((r) => {
        if (r.status !== 'success') throw new Error(`createTask reverted in ${r.transactionHash}`);
        const ev = parseEventLogs({ abi: tasksAbi, logs: r.logs, eventName: 'TaskCreated' })[0];
        return ev.args.taskId;
      });
    };

    const failures = async (w: Watcher): Promise<string> => {
      const bad = [...w.tracks.values()].filter((t) => t.final !== 'completed');
      const states = await Promise.all(bad.map(async (t) => (await getTask(c, t.taskId))?.status ?? '?'));
      return bad
        .map((t, i) => `task ${t.taskId}: ${states[i]}, ended attempts: ${t.ended.join(', ') || 'none'}`)
        .join('; ');
    };

    // --- 1. one task, `runs` times in sequence ----------------------------------------------
    // Where the seed falls within its second decides whether the evidence comes 3 or 4 s after
    // it (whole-second timestamps), so one run's ratio swings by up to 1 s: the rows are medians.
    {
      const G = 'network: one task (committee: all 5 verifiers, 4 of 5)';
      const runs = Number(process.env.FERRY_BENCH_ONE_TASK_RUNS ?? (quick ? 3 : 5));
      if (!Number.isSafeInteger(runs) || runs < 1)
        throw new Error('FERRY_BENCH_ONE_TASK_RUNS: expected an integer >= 1');
      const stageMs: Record<Stage, number[]> = Object.fromEntries(STAGES.map((s) => [s, []])) as never;
      const stageNotes: Record<Stage, string[]> = Object.fromEntries(STAGES.map((s) => [s, []])) as never;
      const totals: number[] = [];
      const contract: number[] = [];
      const splits: Split[] = [];
      const attemptsNote: string[] = [];
      let lastCfNote = '';
      for (let run = 0; run < runs; run++) {
        const w = new Watcher(c, await c.public.getBlockNumber({ cacheTime: 0 }), arrivals);
        const t0 = performance.now();
        const [taskId] = await createMany(1);
        const track = w.add(taskId);
        const claimS = (await getTask(c, taskId))!.windows.claim;
        cw = claimS * 1000;
        // The issue's floor: the claim window and six transactions in sequence (create, seed,
        // evidence, the threshold vote, key-release record, receipt).
        floorMs = cw + 6 * b;
        FLOOR_NOTE = `the issue's floor: claim window ${claimS} s (the task's, read from the chain) + 6 sequential tx x ${b.toFixed(0)} ms (measured send-to-receipt, mean of 5 transfers); anvil mixed mining (each tx mined at once + a block every ${DEVNET_BLOCK_TIME} s). The contract adds the seed's anchor wait and the whole-second rounding of the claim deadline: see the one task's 'contract floor'`;
        await w.until(t0 + 120_000, () => track.final !== null);
        if (track.final !== 'completed') {
          throw new Error(`the single task did not complete within 120 s: ${await failures(w)}`);
        }
        const st = track.attempts.get(track.finalAttempt)!;
        const createdBlock = track.createdBlock ?? (await getTask(c, taskId))!.createdBlock;
        const createdTs = await w.timestamp(createdBlock);
        const line: string[] = [];
        let prev = 0;
        for (const s of STAGES) {
          const seen = st[s];
          if (!seen) throw new Error(`task ${taskId}: no ${s} event seen`);
          const ts = await w.timestamp(seen.block);
          const ms = seen.local - t0;
          line.push(`${s} ${(ms / 1000).toFixed(2)}s (+${((ms - prev) / 1000).toFixed(2)})`);
          stageMs[s].push(ms);
          stageNotes[s].push(`+${(ms - prev).toFixed(0)} ms, block ts +${ts - createdTs} s`);
          prev = ms;
        }
        const cf = contractFloor({
          b,
          claimS,
          created: arrivals.get(createdBlock),
          next: arrivals.get(createdBlock + 1n),
          anchorMean,
        });
        const sp = split(st, t0, cw, b)!;
        totals.push(sp.total);
        contract.push(cf.ms);
        splits.push(sp);
        lastCfNote = cf.note;
        attemptsNote.push(
          `${track.finalAttempt}${track.ended.length ? ` (earlier: ${track.ended.join(', ')})` : ''}`,
        );
        log(`one task, run ${run + 1} of ${runs}: ${line.join(', ')}; contract floor ${cf.ms.toFixed(0)} ms`);
      }
      const ms = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ');
      for (const s of STAGES) {
        rows.push({
          group: G,
          name: LABEL[s],
          value: median(stageMs[s]),
          unit: 'ms',
          note: `local time from createTask sent, median of ${runs} runs (${ms(stageMs[s])}); per run: ${stageNotes[s].join('; ')}`,
        });
      }
      const mid = (k: keyof Split) => median(splits.map((x) => x[k] as number));
      const total = median(totals);
      const cfMs = median(contract);
      rows.push(
        { group: G, name: 'protocol floor', value: floorMs, unit: 'ms', note: FLOOR_NOTE },
        {
          group: G,
          name: 'contract floor (this chain)',
          value: cfMs,
          unit: 'ms',
          note: `median of ${runs} runs (${ms(contract)}); the last: ${lastCfNote}`,
        },
        {
          group: G,
          name: 'create to completed',
          value: total,
          unit: 'ms',
          baseline: 'protocol floor',
          note: `median of ${runs} runs (${ms(totals)}); attempts ${attemptsNote.join(', ')}; medians: waiting for a seed ${pct(mid('waiting'), total)}, chain ${pct(mid('chain'), total)}, attestation ${pct(mid('attestation'), total)}, agents ${pct(mid('agents'), total)}, enclave ${pct(mid('enclave'), total)}`,
        },
        {
          group: G,
          name: 'create to completed, vs the contract',
          value: total,
          unit: 'ms',
          baseline: 'contract floor (this chain)',
          note: `the same medians against what the contract and this chain impose; above it: ${(total - cfMs).toFixed(0)} ms of node reaction, attestation, agents and enclave`,
        },
      );
    }

    // FERRY_BENCH_NETWORK_BATCH=0: the single task only (a quick look at latency).
    if (process.env.FERRY_BENCH_NETWORK_BATCH === '0') log('batch skipped (FERRY_BENCH_NETWORK_BATCH=0)');
    // --- 2. many tasks at once ------------------------------------------------------------------
    else {
      const n = quick ? 10 : 50;
      const batchFrom = (await c.public.getBlockNumber({ cacheTime: 0 })) + 1n;
      const w = new Watcher(c, batchFrom - 1n);
      // The devnet at rest first (no task under way): what polling and ticking cost every
      // process, the floor under the batch's CPU below.
      const rest = new CpuSampler(devnet.children(), info.rpcUrl);
      rest.start();
      await new Promise((r) => setTimeout(r, 5000));
      rest.stop();
      const atRest = rest.result();
      const cpu = new CpuSampler(devnet.children(), info.rpcUrl);
      const loadBefore = loadavg();
      cpu.start();
      const t0 = performance.now();
      const ids = await createMany(n);
      for (const id of ids) w.add(id);
      const tracks = [...w.tracks.values()];
      const limitMs = quick ? 300_000 : 600_000;
      try {
        await w.until(t0 + limitMs, () => tracks.every((t) => t.final !== null));
      } finally {
        cpu.stop();
      }
      const loadAfter = loadavg();
      const usage = cpu.result();
      const done = tracks.filter((t) => t.final === 'completed');
      if (done.length === 0) throw new Error(`none of ${n} tasks completed: ${await failures(w)}`);
      const lastDone = Math.max(...done.map((t) => t.attempts.get(t.finalAttempt)!.completed!.local));
      const wallS = (lastDone - t0) / 1000;
      const splits = done.map((t) => split(t.attempts.get(t.finalAttempt)!, t0, cw, b)!);
      const lat = splits.map((s) => s.total).sort((x, y) => x - y);
      const sum = (k: keyof Split) => splits.reduce((s, x) => s + x[k], 0);
      const stageP50 = (s: Stage) =>
        quantile(
          done.map((t) => t.attempts.get(t.finalAttempt)![s]!.local - t0).sort((x, y) => x - y),
          0.5,
        );
      const mean = (k: keyof Split) => `mean ${(sum(k) / splits.length / 1000).toFixed(2)} s per task`;
      const total = sum('total');
      const retried = tracks.filter((t) => t.ended.length > 0).length;
      const reasons = new Map<string, number>();
      for (const t of tracks) for (const r of t.ended) reasons.set(r, (reasons.get(r) ?? 0) + 1);
      const why = [...reasons].map(([r, k]) => `${k} ${r}`).join(', ');
      const group = `network: ${n} tasks at once (committee: all 5 verifiers, 4 of 5)`;
      rows.push(
        {
          group,
          name: 'throughput',
          value: done.length / wallS,
          unit: 'tasks/s',
          note: `${done.length} of ${n} completed in ${wallS.toFixed(1)} s (first create sent to last completion seen); ${retried} needed more than one attempt${why ? ` (ended attempts: ${why})` : ''}`,
        },
        {
          group,
          name: 'protocol floor',
          value: floorMs,
          unit: 'ms',
          note: `one task's own waits: ${FLOOR_NOTE}`,
        },
        {
          group,
          name: 'latency p50',
          value: quantile(lat, 0.5),
          unit: 'ms',
          baseline: 'protocol floor',
          note: `stage p50s from create: ${STAGES.map((s) => `${s} ${(stageP50(s) / 1000).toFixed(1)} s`).join(', ')}`,
        },
        {
          group,
          name: 'latency p95',
          value: quantile(lat, 0.95),
          unit: 'ms',
          baseline: 'protocol floor',
          note: 'create sent (all at once) to TaskCompleted seen, completing attempt',
        },
        {
          group,
          name: 'share waiting for a seed',
          value: (100 * sum('waiting')) / total,
          unit: '%',
          note: `${mean('waiting')}; create->seeded of the completing attempt beyond one block (${BLOCK_MS} ms) and one tx: tasks wait created while every executor holds maxEnclaves attempts (seeding is back-pressure, docs/protocol.md §12); earlier attempts of a retried task count here`,
        },
        {
          group,
          name: 'share on chain',
          value: (100 * sum('chain')) / total,
          unit: '%',
          note: `${mean('chain')}; create->seeded up to one block and one tx + claim window (${cw / 1000} s) + ${b.toFixed(0)} ms (measured tx send-to-receipt) of each of evidence, attested, keys released, completed`,
        },
        {
          group,
          name: 'share on attestation',
          value: (100 * sum('attestation')) / total,
          unit: '%',
          note: `${mean('attestation')}; claim window end->evidence and evidence->attested, less one tx each (enclave creation, evidence, fetch, appraisal, vote)`,
        },
        {
          group,
          name: 'share in owner agents',
          value: (100 * sum('agents')) / total,
          unit: '%',
          note: `${mean('agents')}; attested->keys released less one tx (agents see the attestation, check, deliver keys)`,
        },
        {
          group,
          name: 'share in the enclave',
          value: (100 * sum('enclave')) / total,
          unit: '%',
          note: `${mean('enclave')}; keys released->completed less one tx (download, decrypt, run, seal); all five sum to 100 %; node queueing falls in the stage it delays`,
        },
      );
      log(
        `${n} tasks: ${done.length} completed in ${wallS.toFixed(1)} s, p50 ${quantile(lat, 0.5).toFixed(0)} ms, p95 ${quantile(lat, 0.95).toFixed(0)} ms`,
      );
      // A task of the batch that fails is a measurement, not a crash of the whole bench run:
      // its count and why are a row of their own, and said loudly.
      const notDone = n - done.length;
      const states = new Map<string, number>();
      for (const t of tracks) {
        if (t.final === 'completed') continue;
        const k = t.final ?? `unfinished after ${limitMs / 1000} s`;
        states.set(k, (states.get(k) ?? 0) + 1);
      }
      // What saturates first: the machine's CPU (shared with others' work), one of our processes
      // (near one core: a Node process is one thread of JS), or neither (then waits dominate).
      const ours = usage.procs.reduce((a, [, v]) => a + v, 0);
      const [topName, topPct] = usage.procs[0] ?? ['none', 0];
      // Tasks that wait long for a seed were held back by the executors' capacity (maxEnclaves
      // each): the attempts in flight were bounded, by that or by what the CPU let them finish.
      const waitingShare = (100 * sum('waiting')) / total;
      const capacity =
        waitingShare >= 25
          ? `; tasks spent ${waitingShare.toFixed(0)} % of their time waiting for a seed while the executors held maxEnclaves attempts each (the cap on tasks in flight), so throughput = attempts in flight / time an attempt holds its enclave`
          : '';
      const verdict =
        usage.machine >= 90
          ? `the machine's CPU (${usage.cores} cores ${usage.machine.toFixed(0)} % busy; the devnet's processes used ${(ours / usage.cores).toFixed(0)} % of it, the rest is other work on the shared machine)`
          : topPct >= 85
            ? `${topName}: ${topPct.toFixed(0)} % of one core (a Node process runs its JS on one thread)`
            : `no CPU: the machine ${usage.machine.toFixed(0)} % busy and no process near a core; the tasks wait on the chain, timers and queues`;
      rows.push(
        {
          group,
          name: 'CPU, whole machine',
          value: usage.machine,
          unit: '%',
          note: `${usage.cores} cores, sampled from /proc/stat over the batch; load average ${loadBefore} before, ${loadAfter} after`,
        },
        {
          group,
          name: 'CPU, busiest process',
          value: topPct,
          unit: '% of a core',
          note: `saturates first: ${verdict}${capacity}. Per process (% of one core): ${usage.procs
            .slice(0, 10)
            .map(([l, v]) => `${l} ${v.toFixed(0)}`)
            .join(', ')}; all devnet processes ${ours.toFixed(0)}`,
        },
      );
      // What each completed task cost in CPU, by kind of process (CPU-s = share x duration / tasks):
      // the nine daemons' own threads apart from their enclaves, anvil and this process.
      if (done.length > 0) {
        const kinds = new Map<string, number>();
        for (const [l, v] of usage.procs) {
          const kind = l.startsWith('enclaves of')
            ? 'enclaves'
            : l.startsWith('executor')
              ? 'executors'
              : l.startsWith('verifier')
                ? 'verifiers'
                : l.startsWith('agent')
                  ? 'owner agents'
                  : l.startsWith('anvil')
                    ? 'anvil'
                    : 'bench';
          kinds.set(kind, (kinds.get(kind) ?? 0) + ((v / 100) * usage.seconds) / done.length);
        }
        const daemons = ['executors', 'verifiers', 'owner agents'].reduce(
          (a, k) => a + (kinds.get(k) ?? 0),
          0,
        );
        rows.push({
          group,
          name: 'daemon CPU per completed task',
          value: daemons,
          unit: 'CPU-s',
          note: `the 2 executors, 5 verifiers and 2 owner agents (their enclaves apart), CPU over the batch / ${done.length} completed tasks; by kind: ${[
            ...kinds,
          ]
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => `${k} ${v.toFixed(3)}`)
            .join(', ')}; load average ${loadBefore} before, ${loadAfter} after`,
        });
      }
      // What each task cost: transactions mined (createTask excluded) and enclave processes.
      const batchTo = await c.public.getBlockNumber({ cacheTime: 0 });
      const txs = await tasksTxs(c, batchFrom, batchTo);
      txs.delete('createTask');
      const sent = [...txs.values()].reduce((a, e) => a + e.sent, 0);
      const reverted = [...txs.values()].reduce((a, e) => a + e.reverted, 0);
      rows.push(
        {
          group,
          name: 'transactions per task',
          value: sent / n,
          unit: 'tx',
          note: `Tasks transactions mined during the batch (createTask not counted) over the ${n} tasks; ${reverted} reverted on chain (refusals at estimation are not sent and not counted). By function: ${[
            ...txs,
          ]
            .sort((a, b) => b[1].sent - a[1].sent)
            .map(
              ([f, e]) =>
                `${f} ${e.sent}${e.reverted ? ` (${e.reverted} reverted)` : ''} from ${e.from.size} accounts`,
            )
            .join(', ')}`,
        },
        {
          group,
          name: 'enclaves per completed task',
          value: done.length > 0 ? cpu.enclavePids.size / done.length : 0,
          unit: 'enclaves',
          note: `${cpu.enclavePids.size} enclave processes seen (children of the executors, sampled every 250 ms: a lower bound; pre-started ones included) for ${done.length} completed tasks`,
        },
      );
      const restOurs = atRest.procs.reduce((a, [, v]) => a + v, 0);
      rows.push({
        group,
        name: 'CPU at rest, all devnet processes',
        value: restOurs,
        unit: '% of a core',
        note: `the same processes for 5 s before the batch, no task under way (event polling, reconcile ticks): ${atRest.procs
          .slice(0, 10)
          .map(([l, v]) => `${l} ${v.toFixed(1)}`)
          .join(', ')}; during the batch they used ${ours.toFixed(0)} % of a core in all`,
      });
      rows.push({
        group,
        name: 'tasks not completed',
        value: notDone,
        unit: 'tasks',
        note:
          notDone === 0
            ? `all ${n} completed`
            : `${[...states].map(([k, v]) => `${v} ${k}`).join(', ')}; ended attempts: ${why}; rates and latencies above are over the ${done.length} completed`,
      });
      if (notDone > 0) log(`ERROR: ${notDone} of ${n} tasks did not complete: ${await failures(w)}`);
    }
  } finally {
    headsClose?.();
    await devnet?.stop().catch(() => {});
    // FERRY_BENCH_KEEP_LOGS=DIR keeps the daemons' logs of the run (to see why a task failed).
    const keep = process.env.FERRY_BENCH_KEEP_LOGS;
    if (keep) cpSync(join(home, 'logs'), keep, { recursive: true });
    rmSync(home, { recursive: true, force: true });
  }
  const loadEnd = loadavg();
  log(`load average at end: ${loadEnd}`);
  for (const r of rows) {
    if (r.name.startsWith('create to completed') || r.name === 'throughput') {
      r.note = `${r.note ?? ''}; load average ${loadStart} at the bench's start, ${loadEnd} at its end`;
    }
  }
  return rows;
};

/**
 * The contract's floor for one task on this chain (ms): create (b) + the seed's anchor wait
 * (the seed needs block createdBlock + 1, which only the block interval mines: this task's own
 * wait, from new-head arrivals) + seed (b) + the claim window as the contract counts it
 * (evidence needs a block timestamp > seed block timestamp + window, timestamps whole seconds:
 * from a seed mined at wall time s, (floor(s) + window + 1) - s, between window and window + 1
 * seconds) + 4 tx (evidence, the threshold vote, the key-release record, the receipt). The
 * seed is taken as mined b after the anchor block, as a node reacting at once would.
 */
function contractFloor(o: {
  b: number;
  claimS: number;
  created?: { local: number; epochMs: number };
  next?: { local: number; epochMs: number };
  anchorMean: number;
}): { ms: number; note: string } {
  const own = o.created && o.next;
  const anchor = own ? o.next!.local - o.created!.local : o.anchorMean;
  // Wall time the seed would be mined at: this task's next block + one tx; else its expectation.
  const seedEpoch = own ? o.next!.epochMs + o.b : null;
  const window =
    seedEpoch === null
      ? o.claimS * 1000 + 500
      : (Math.floor(seedEpoch / 1000) + o.claimS + 1) * 1000 - seedEpoch;
  const ms = o.b + anchor + o.b + window + 4 * o.b;
  const note = `what the contract imposes on this chain: create ${o.b.toFixed(0)} ms + anchor wait ${anchor.toFixed(0)} ms (the seed needs the block after the creation block, mined by the ${DEVNET_BLOCK_TIME} s block interval; ${own ? "this task's own" : 'mean measured on this chain'}; mean measured ${o.anchorMean.toFixed(0)} ms) + seed ${o.b.toFixed(0)} ms + claim window as counted by whole-second timestamps ${window.toFixed(0)} ms (evidence needs block ts > seed ts + ${o.claimS} s: ${o.claimS}-${o.claimS + 1} s after the seed, mean ${o.claimS}.5${seedEpoch === null ? ', used here' : ''}) + 4 tx (evidence, vote, key release, receipt) x ${o.b.toFixed(0)} ms. Expected on this chain: ${(6 * o.b + o.anchorMean + o.claimS * 1000 + 500).toFixed(0)} ms`;
  return { ms, note };
}

function pct(x: number, total: number): string {
  return `${((100 * x) / total).toFixed(0)} %`;
}

export default bench;
