/**
 * `ferry demo [--json] [--seed N] [--rows N]`: the whole network on this machine in under a
 * minute. Starts a devnet in a temporary FERRY_HOME (one executor, five verifiers), generates
 * a CSV dataset from a seed, and walks the three journeys: alice (data owner) encrypts it into
 * her agent and registers it (region DE, only the csv-stats app, a committee of all five
 * verifiers, four of which must pass: seats are stake units and every verifier sits with all
 * of its stake, so tau = 5000 seats, threshold 4000); bob (app owner) publishes csv-stats; carol
 * (requester) runs the task, follows its stages, audits it from the chain and decrypts the
 * result. Everything started is stopped and the home removed, also on failure and SIGINT.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { getStakeTotals } from '../chain/index.ts';
import { type Devnet, devnetUp } from '../devnet/index.ts';
import { FerryError } from '../kernel/index.ts';
import { intOption } from './args.ts';
import { defineCommand } from './command.ts';
import { DEMO_APP_PATH } from './demo-app.ts';
import { actAs, auditTrust, locateNetwork, type Network } from './journey/network.ts';
import { formatChecks, formatMs, formatProbability, formatStage } from './journey/timeline.ts';
import { addDataset, publishApp } from '../agent/index.ts';
import { pinnedDevelopmentPolicy } from '../enclave/index.ts';
import {
  activeVerifierStakes,
  committeeFigures,
  committeeSeating,
  type ProgressEvent,
  stakeUnits,
} from '../protocol/index.ts';
import { createTaskFor, explainFailure, finishTask, waitForTask } from '../requester/index.ts';

const SITES = ['berlin', 'hamburg', 'munich', 'cologne', 'leipzig'];

/**
 * The demo's dataset: `reading,site` then `rows` lines; `reading` an integer in [-500, 1499]
 * from mulberry32(seed), `site` one of five names. Deterministic in (seed, rows).
 */
export function generateCsv(seed: number, rows: number): string {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const lines = ['reading,site'];
  for (let i = 0; i < rows; i++) {
    lines.push(`${Math.floor(next() * 2000) - 500},${SITES[Math.floor(next() * SITES.length)]}`);
  }
  return `${lines.join('\n')}\n`;
}

const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

export default defineCommand({
  name: 'demo',
  summary: 'run the whole network locally: a CSV-statistics task, verified end to end',
  usage: 'demo [--seed N] [--rows N] [--json]',
  description: `
Starts a local network in a temporary home (chain, 1 executor, 5 verifiers, agents for alice
and bob), generates a CSV dataset (--rows lines from --seed), and runs the user journeys:
alice adds the dataset (region DE, only the csv-stats app; committee: all 5 verifiers, 4 of
5 must pass: seats are stake units of 10^15 wei, each verifier stakes 1 ether = 1000 units and
sits with all of them, so tau is 5000 seats and the threshold 4000), bob publishes the
csv-stats example app, carol runs the task and waits. Prints the result, the committee, the
stage timeline and every check of the audit, then stops everything it started.
--json prints {"taskId", "status", "verified", "result", "stagesMs", "checks", "dataset", "app",
"committee", "totalMs"}.
Exit 0 when the task completed and verified, 3 when verification failed, 1 otherwise.`,
  options: {
    seed: { type: 'string', value: 'N', description: 'seed of the generated dataset (default 42)' },
    rows: { type: 'string', value: 'N', description: 'rows of the generated dataset (default 5000)' },
  },
  async run(ctx) {
    const seed = intOption(ctx, 'seed', 42, 0);
    const rows = intOption(ctx, 'rows', 5000, 1);
    if (seed > 0xffffffff) throw new FerryError('USAGE_INVALID_ARGUMENT', '--seed must be below 2^32');
    if (rows > 10_000_000) throw new FerryError('USAGE_INVALID_ARGUMENT', '--rows must be at most 10000000');
    const t0 = Date.now();
    const say = (line: string) => ctx.progress(line);
    const home = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
    const env = { ...ctx.env, FERRY_HOME: home };
    let devnet: Devnet | null = null;
    try {
      const appFile = DEMO_APP_PATH;
      say('starting a local network: chain, 1 executor, 5 verifiers, agents for alice and bob...');
      devnet = await devnetUp({ home, executors: 1, verifiers: 5, log: quiet, env }, ctx.signal);
      say(`network up in ${formatMs(Date.now() - t0)}: ${devnet.info.rpcUrl}`);
      const net: Network = locateNetwork({ ...ctx, env, values: {} });
      const agent = (name: string) => devnet!.info.profiles.find((p) => p.name === name)?.agent ?? '';

      // bob publishes the app.
      const bob = await actAs(net, home, 'bob');
      const app = await publishApp({
        env,
        profile: 'bob',
        secrets: bob.secrets,
        chain: bob.chain,
        endpoint: agent('bob'),
        file: appFile,
        name: 'csv-stats.wasm',
        price: 0n,
        tee: ['sim'],
        policy: await pinnedDevelopmentPolicy(),
        signal: ctx.signal,
      });
      say(`bob published csv-stats: app ${app.appId}, measurement ${app.measurement.slice(0, 16)}…`);

      // alice adds the dataset. Seats are stake units (10^15 wei) and each devnet verifier
      // stakes 1 ether (1000 units): with tau = the whole verifier stake in units, p = 1 and
      // every verifier sits with all its 1000 units as seats, so the committee is exactly the
      // five verifiers and a threshold of 4/5 of the seats is four of the five.
      const alice = await actAs(net, home, 'alice');
      const csv = generateCsv(seed, rows);
      const stake = (await getStakeTotals(alice.chain)).verifierStake;
      const tau = Number(stakeUnits(stake));
      const threshold = Math.ceil((tau * 4) / 5);
      const seating = committeeSeating(tau, threshold, await activeVerifierStakes(alice.chain));
      const ds = await addDataset({
        env,
        profile: 'alice',
        secrets: alice.secrets,
        chain: alice.chain,
        endpoint: agent('alice'),
        source: Readable.from([Buffer.from(csv)]),
        name: 'readings.csv',
        regions: ['DE'],
        allowApps: [`0x${app.measurement}`],
        tee: ['sim'],
        tau,
        threshold,
        maxUses: 0,
        expiresAt: 0,
        requesters: [],
        policy: await pinnedDevelopmentPolicy(),
        price: 0n,
        signal: ctx.signal,
      });
      const committee = committeeFigures(tau, threshold, 0.2, stake);
      say(
        `alice added readings.csv (${rows} rows): dataset ${ds.datasetId}, region DE, only csv-stats; ` +
          `committee: ${seating.text}; at 20% adversarial stake capture ${formatProbability(committee.capture)}, ` +
          `liveness failure ${formatProbability(committee.livenessFailure)}`,
      );

      // carol runs the task.
      const carol = await actAs(net, home, 'carol');
      const created = await createTaskFor({
        chain: carol.chain,
        secrets: carol.secrets,
        appId: app.appId,
        datasetIds: [ds.datasetId],
        args: [],
        fee: 10n ** 15n,
        ttlSeconds: 600,
      });
      say(`carol created task ${created.taskId}; following it:`);
      const waited = await waitForTask(carol.chain, created.taskId, {
        startedAt: created.startedAt,
        signal: ctx.signal,
        maxWaitMs: 120_000,
        onStage: (s: ProgressEvent) => say(formatStage(s)),
      });
      if (waited.task.status !== 'completed') {
        const err = await explainFailure(
          carol.chain,
          carol.chain.chainId,
          waited.task,
          waited.events,
          auditTrust(net),
        );
        if (!ctx.json)
          ctx.stderr.write(`ferry: the demo task ${waited.task.status}: ${err.message} [${err.code}]\n`);
        return {
          json: {
            taskId: created.taskId.toString(),
            status: waited.task.status,
            verified: false,
            result: null,
            stagesMs: waited.stagesMs,
            error: err.toJSON(),
          },
          exitCode: err.exitCode,
        };
      }
      const fin = await finishTask({
        chain: carol.chain,
        chainId: carol.chain.chainId,
        contracts: net.contracts,
        taskId: created.taskId,
        secrets: carol.secrets,
        trust: auditTrust(net),
        signal: ctx.signal,
      });
      const stagesMs = { ...waited.stagesMs, done: Date.now() - created.startedAt };
      say(
        formatStage({
          stage: 'done',
          attempt: waited.task.attempt,
          ms: stagesMs.done,
          detail: 'result fetched, audited and decrypted',
        }),
      );
      const resultText = fin.plaintext ? Buffer.from(fin.plaintext).toString('utf8').trim() : null;
      let result: unknown = resultText;
      try {
        if (resultText) result = JSON.parse(resultText);
      } catch {
        // not JSON: shown as text
      }
      const ok = waited.task.status === 'completed' && fin.report.verified && fin.plaintext !== null;
      const out = {
        taskId: created.taskId.toString(),
        status: waited.task.status,
        verified: fin.report.verified,
        result,
        stagesMs,
        checks: fin.report.checks,
        dataset: {
          seed,
          rows,
          sha256: createHash('sha256').update(csv).digest('hex'),
          datasetId: ds.datasetId.toString(),
          ciphertextHash: ds.ciphertextHash,
        },
        app: { appId: app.appId.toString(), measurement: app.measurement },
        committee: {
          tau,
          threshold,
          verifiers: seating.verifiers,
          capture: committee.capture,
          livenessFailure: committee.livenessFailure,
          adversary: committee.adversary,
          model: committee.model,
          stakeUnits: seating.stakeUnits,
          everyVerifierSits: seating.everyVerifierSits,
          seatsPerVerifier: seating.seatsPerVerifier,
          thresholdVerifiers: seating.thresholdVerifiers,
          summary: seating.text,
        },
        totalMs: Date.now() - t0,
      };
      const text = [
        `task ${out.taskId}: ${out.status}${out.verified ? ', verified' : ', NOT verified'}`,
        `result: ${resultText ?? '(none)'}`,
        `committee: ${seating.text}; at 20% adversarial stake capture ${formatProbability(committee.capture)}, liveness failure ${formatProbability(committee.livenessFailure)}`,
        '',
        'timeline (since the task was created):',
        ...waited.timeline.map(formatStage),
        formatStage({
          stage: 'done',
          attempt: waited.task.attempt,
          ms: stagesMs.done,
          detail: 'result fetched, audited and decrypted',
        }),
        '',
        'what was verified (from the chain, the evidence and the result):',
        formatChecks(fin.report.checks),
        '',
        `total ${formatMs(out.totalMs)}; the network is stopped and ${home} removed.`,
      ].join('\n');
      if (!ok && !ctx.json) ctx.stderr.write(`ferry: the demo task did not complete and verify\n`);
      return {
        json: ok
          ? out
          : {
              ...out,
              error: {
                code: fin.report.verified ? 'TASK_FAILED' : 'RECEIPT_INVALID',
                message: 'the demo task did not complete and verify',
                hints: [],
              },
            },
        text,
        exitCode: ok ? 0 : fin.report.verified ? 1 : 3,
      };
    } finally {
      await devnet?.stop().catch(() => {});
      rmSync(home, { recursive: true, force: true });
    }
  },
});
