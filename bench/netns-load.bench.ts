/**
 * Load across hosts (issue 13 item 6; `npm run bench -- --only netns-load`, as root): N tasks
 * (FERRY_BENCH_NETNS_TASKS, default 1000; --quick: 20) on a devnet whose chain, agents and
 * nodes each run in their own network namespace (test/helpers/netns.ts), every link through
 * a DelayProxy (FERRY_BENCH_NETNS_DELAY_MS per chunk and direction, default 0), with at most
 * FERRY_BENCH_NETNS_INFLIGHT tasks open at once (default 8: bounded). Baseline, in the same
 * run: the same N tasks on an ordinary devnet (every process on 127.0.0.1).
 *
 * Rows per network: tasks completed, tasks failed closed (failed or expired with the whole fee
 * refunded), tasks neither (must be 0: lost, or failed without the refund), slashed attempts
 * (must be 0: every node here is honest), and throughput (tasks ended per minute). Not root:
 * one row saying so.
 */
import { createHash } from 'node:crypto';
import type { Hex } from 'viem';
import { createTask, getNode } from '../src/chain/index.ts';
import { encodeCanonical } from '../src/kernel/index.ts';
import { loadProfileSecrets } from '../src/profile/index.ts';
import {
  chainFor,
  type Net,
  publishAssets,
  taskEvents,
  waitFinal,
  withDevnet,
} from '../test/helpers/devnet.ts';
import { NetnsLab, netnsUnavailable } from '../test/helpers/netns.ts';
import type { Bench, BenchRow } from './harness.ts';

const EXECUTORS = 2;
const VERIFIERS = 3;
const NODES = [
  ...Array.from({ length: EXECUTORS }, (_, i) => `executor-${i + 1}`),
  ...Array.from({ length: VERIFIERS }, (_, i) => `verifier-${i + 1}`),
];
const PARTICIPANTS = ['chain', 'agent-alice', 'agent-bob', ...NODES];

type Tally = {
  completed: number;
  failedClosed: number;
  neither: number;
  slashed: number;
  stakeChanged: number;
  seconds: number;
};

async function load(net: Net, n: number, inflight: number, log: (l: string) => void): Promise<Tally> {
  const a = await publishAssets(net, 'csv-stats');
  const c = await chainFor(net, 'carol');
  const carol = loadProfileSecrets(net.home, 'carol');
  const stakes = async () =>
    Promise.all(net.devnet.info.nodes.map(async (x) => (await getNode(c, x.address as Hex))?.stake ?? -1n));
  const before = await stakes();
  const tally: Tally = { completed: 0, failedClosed: 0, neither: 0, slashed: 0, stakeChanged: 0, seconds: 0 };
  let next = 0;
  // One account creates every task: creations are serialised (nonces), the waits are not.
  let creating: Promise<unknown> = Promise.resolve();
  const create = async (): Promise<bigint> => {
    const run = creating.then(async () => {
      const now = Number((await c.public.getBlock()).timestamp);
      return createTask(c, {
        appId: BigInt(a.appId),
        datasetIds: [BigInt(a.datasetId)],
        inputHash: createHash('sha256').update(encodeCanonical([])).digest(),
        resultRecipient: carol.ageIdentity.publicKey,
        inputLocation: '',
        fee: 10n ** 15n,
        expiresAt: now + 900,
        claimWindow: 5,
        evidenceWindow: 30,
        voteWindow: 30,
        runWindow: 60,
      });
    });
    creating = run.catch(() => {});
    return (await run).taskId;
  };
  const t0 = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const taskId = await create();
      const final = await waitFinal(net, taskId, 900_000);
      const evs = await taskEvents(c, taskId);
      tally.slashed += evs.filter((e) => e.eventName === 'AttemptEnded' && e.args.slashed !== 0n).length;
      const fee = evs.find((e) => e.eventName === 'TaskCreated')?.args.fee;
      const refund = evs.find((e) => e.eventName === 'TaskFailed' || e.eventName === 'TaskExpired')?.args
        .refund;
      if (final.status === 'completed') tally.completed++;
      else if (refund !== undefined && refund === fee) tally.failedClosed++;
      else {
        tally.neither++;
        // Must not happen: say exactly what the chain shows, so that a run can be diagnosed.
        log(
          `task ${taskId} neither completed nor refunded in full: status ${final.status}, fee ${fee}, refund ${refund}, events ${evs
            .map((e) => e.eventName)
            .join(' ')}`,
        );
      }
      const done = tally.completed + tally.failedClosed + tally.neither;
      if (done % 10 === 0 || done === n) log(`${done}/${n} ended (${tally.completed} completed)`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inflight, n) }, worker));
  tally.seconds = (performance.now() - t0) / 1000;
  const after = await stakes();
  tally.stakeChanged = after.filter((s, i) => s !== before[i]).length;
  return tally;
}

function rows(group: string, name: string, t: Tally, n: number, baseline?: string): BenchRow[] {
  return [
    { group, name: `${name}: completed`, value: t.completed, unit: `of ${n}` },
    { group, name: `${name}: failed closed (refunded)`, value: t.failedClosed, unit: `of ${n}` },
    { group, name: `${name}: lost or not refunded`, value: t.neither, unit: 'tasks', note: 'must be 0' },
    {
      group,
      name: `${name}: slashed attempts / stakes changed`,
      value: t.slashed + t.stakeChanged,
      unit: '',
      note: `must be 0 (${t.slashed} slashed, ${t.stakeChanged} stakes changed)`,
    },
    {
      group,
      name: `${name}: throughput`,
      value: ((t.completed + t.failedClosed + t.neither) * 60) / t.seconds,
      unit: 'tasks/min',
      ...(baseline ? { baseline: `${baseline}: throughput` } : {}),
    },
  ];
}

const bench: Bench = async ({ quick, log }) => {
  const group = 'netns load';
  const missing = netnsUnavailable();
  if (missing) return [{ group, name: 'skipped', value: 0, unit: '', note: missing }];
  const n = Number(process.env.FERRY_BENCH_NETNS_TASKS) || (quick ? 20 : 1000);
  const inflight = Number(process.env.FERRY_BENCH_NETNS_INFLIGHT) || 8;
  const delayMs = Number(process.env.FERRY_BENCH_NETNS_DELAY_MS) || 0;
  const opts = { executors: EXECUTORS, verifiers: VERIFIERS };

  log(`baseline: ${n} tasks on 127.0.0.1, ${inflight} in flight`);
  let base: Tally | null = null;
  await withDevnet(opts, async (net) => {
    base = await load(net, n, inflight, log);
  });

  log(`namespaces: ${n} tasks, ${inflight} in flight, ${delayMs} ms per chunk and direction`);
  const lab = NetnsLab.create(PARTICIPANTS);
  let ns: Tally | null = null;
  try {
    await lab.proxy('chain', 8545, delayMs);
    for (const p of PARTICIPANTS.slice(1)) await lab.proxy(p, 7000, delayMs);
    const placement = (name: string) => {
      const who = name === 'anvil' ? 'chain' : name;
      return {
        prefix: lab.prefixFor(who),
        host: lab.participant(who).addr,
        port: who === 'chain' ? 8545 : 7000,
      };
    };
    await withDevnet({ ...opts, placement }, async (net) => {
      ns = await load(net, n, inflight, log);
    });
  } finally {
    lab.cleanup();
  }
  return [
    ...rows(group, 'loopback', base!, n),
    ...rows(group, `namespaces (+${delayMs} ms)`, ns!, n, 'loopback'),
  ];
};

export default bench;
