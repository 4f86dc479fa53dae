/**
 * `ferry dashboard` on a local devnet (sim TEE, 1 executor, 3 verifiers): bob publishes
 * csv-stats, alice adds a dataset, carol runs a task to completion with the journey commands;
 * then the dashboard (spawned as `bin/ferry dashboard --json`) must show the task completed
 * with its stage sequence and the votes exactly as on chain, list the devnet's nodes, serve
 * its page with a strict CSP, and refuse bad requests with stable codes. No test depends on
 * another having run: the completed task and the dashboard are made once, by whichever test
 * needs them first (`completedTask()`, `dashboard()`); the SIGTERM test stops a dashboard of
 * its own.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { ensureExamplesBuilt, examplePath } from '../examples/index.ts';
import { connect, getFerryEvents, getNode, getTask, reader, vote } from '../src/chain/index.ts';
import { verifierAlpha, vrfProofToHash, vrfProve } from '../src/crypto/vrf/index.ts';
import { type Devnet, devnetUp } from '../src/devnet/up.ts';
import { hexBytes, seatsFor } from '../src/protocol/index.ts';
import {
  chainFor,
  type CliJson as J,
  type CliRun,
  FERRY,
  ferry as ferryJson,
  freeze,
  type Net,
  nodeSecrets,
  quiet,
  thaw,
  waitFor,
} from './helpers/devnet.ts';

/** `bin/ferry ARGS --json`, with `out` (stdout and stderr) for assertion messages. */
async function ferry(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun & { out: string }> {
  const r = await ferryJson(args, env);
  return { ...r, out: r.stdout + r.stderr };
}

let home = '';
let work = '';
let env: NodeJS.ProcessEnv = {};
let devnet: Devnet | null = null;
let dash: ChildProcess | null = null;
let url = '';

let completed: Promise<{ taskId: string; appId: string; datasetId: string }> | null = null;
/** bob publishes csv-stats, alice adds a dataset, carol runs a task to completion: once. */
function completedTask(): Promise<{ taskId: string; appId: string; datasetId: string }> {
  completed ??= (async () => {
    const app = await ferry(['app', 'publish', examplePath('csv-stats'), '--profile', 'bob'], env);
    assert.equal(app.code, 0, app.out);
    const ds = await ferry(
      [
        'dataset',
        'add',
        join(work, 'cities.csv'),
        '--region',
        'DE',
        '--allow-app',
        app.json.measurement,
        '--committee',
        '3000',
        '--threshold',
        '2/3',
        '--profile',
        'alice',
      ],
      env,
    );
    assert.equal(ds.code, 0, ds.out);
    const run = await ferry(
      [
        'task',
        'run',
        '--app',
        app.json.appId,
        '--dataset',
        ds.json.datasetId,
        '--wait',
        '--profile',
        'carol',
      ],
      env,
    );
    assert.equal(run.code, 0, run.out);
    assert.equal(run.json.status, 'completed');
    return { taskId: run.json.taskId, appId: app.json.appId, datasetId: ds.json.datasetId };
  })();
  return completed;
}

/** Spawns `bin/ferry dashboard --json` and resolves with it and its readiness line. */
async function spawnDashboard(): Promise<{ proc: ChildProcess; ready: J }> {
  const proc = spawn(FERRY, ['dashboard', '--json'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`dashboard exited with ${code}`)));
  });
  return { proc, ready: JSON.parse(first) };
}

let shared: Promise<J> | null = null;
/** The dashboard the tests query (sets `url`): started once, stopped in after(). */
function dashboard(): Promise<J> {
  shared ??= spawnDashboard().then(({ proc, ready }) => {
    dash = proc;
    url = ready.url;
    return ready;
  });
  return shared;
}

async function get(path: string): Promise<{ status: number; body: J; res: Response }> {
  const res = await fetch(new URL(path, url));
  const text = await res.text();
  let body: J = text;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) body = JSON.parse(text);
  return { status: res.status, body, res };
}

before(async () => {
  await ensureExamplesBuilt();
  home = mkdtempSync(join(tmpdir(), 'ferry-dashboard-'));
  work = mkdtempSync(join(tmpdir(), 'ferry-dashboard-work-'));
  env = { ...process.env, FERRY_HOME: home, FERRY_LOG_LEVEL: 'warn' };
  delete env.FERRY_PROFILE;
  devnet = await devnetUp({ home, executors: 1, verifiers: 3, log: quiet, env });
  writeFileSync(join(work, 'cities.csv'), 'temp,city\n10,Berlin\n14,Paris\n21,Rome\n-3,Oslo\n');
});

after(async () => {
  if (dash && dash.exitCode === null) {
    dash.kill('SIGTERM');
    await new Promise((r) => dash?.once('exit', r));
  }
  await devnet?.stop();
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

test('a task runs to completion through the journey commands', { timeout: 120_000 }, async () => {
  const { taskId, appId, datasetId } = await completedTask();
  for (const id of [taskId, appId, datasetId]) assert.match(id, /^[0-9]+$/);
});

test('ferry dashboard: readiness line, then the indexed task, nodes and assets', {
  timeout: 180_000,
}, async () => {
  const { taskId, appId, datasetId } = await completedTask();
  const bad = await ferry(['dashboard', '--host', '0.0.0.0'], env);
  assert.equal(bad.code, 2);
  assert.equal(bad.json.error.code, 'USAGE_INVALID_ARGUMENT');
  const empty = mkdtempSync(join(tmpdir(), 'ferry-dashboard-empty-'));
  try {
    const none = await ferry(['dashboard'], { ...env, FERRY_HOME: empty });
    assert.equal(none.code, 2);
    assert.equal(none.json.error.code, 'DEVNET_NOT_RUNNING');
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }

  const ready = await dashboard();
  assert.equal(ready.ready, true);
  assert.match(ready.url, /^http:\/\/127\.0\.0\.1:[0-9]+\/$/);
  assert.equal(ready.chainId, devnet!.info.chainId);

  // The indexer catches up from block 0 (one confirmation): wait for the task to be complete.
  let task: J = null;
  for (let i = 0; i < 200; i++) {
    const r = await get(`/api/tasks/${taskId}`);
    if (
      r.status === 200 &&
      r.body.status === 'completed' &&
      r.body.timeline.some((s: J) => s.stage === 'completed')
    ) {
      task = r.body;
      break;
    }
    assert.ok(r.status === 200 || r.body.error.code === 'TASK_NOT_FOUND', JSON.stringify(r.body));
    await new Promise((res) => setTimeout(res, 250));
  }
  assert.ok(task, 'the dashboard indexed the completed task');
  // How the app ended, decoded from the receipt in TaskCompleted (csv-stats exits 0).
  assert.deepEqual([task.outcome, task.appExitCode, task.limitHit], ['exit', 0, null]);

  // Stages in chain order: created, seeded, claimed, evidence, votes, attested, key releases,
  // running, completed. A verifier may still vote after the threshold was reached.
  const stages: string[] = task.timeline.map((s: J) => s.stage);
  const withoutVotes = stages.filter((s) => s !== 'vote');
  assert.deepEqual(
    withoutVotes.filter((s, i) => s !== withoutVotes[i - 1]),
    ['created', 'seeded', 'claimed', 'evidence', 'attested', 'keyReleased', 'running', 'completed'],
  );
  const firstVote = stages.indexOf('vote');
  assert.ok(firstVote > stages.indexOf('evidence') && firstVote < stages.indexOf('attested'), stages.join());
  assert.ok(stages.lastIndexOf('vote') < stages.indexOf('completed'), stages.join());
  assert.equal(stages.filter((s: string) => s === 'keyReleased').length, 2, 'app and dataset keys');
  for (let i = 1; i < task.timeline.length; i++) {
    assert.ok(BigInt(task.timeline[i].block) >= BigInt(task.timeline[i - 1].block));
    assert.ok(task.timeline[i].sinceCreatedMs >= task.timeline[i - 1].sinceCreatedMs);
  }
  assert.equal(task.timeline[0].sinceCreatedMs, 0);

  // Votes: the same as the chain's VoteCast events, all checked valid, tally vs tau/threshold.
  const c = reader(await connect({ rpcUrl: devnet!.info.rpcUrl }), devnet!.info.contracts);
  const info = await getTask(c, BigInt(taskId));
  assert.ok(info);
  const head = await c.public.getBlockNumber();
  const chainVotes = (await getFerryEvents(c, info.createdBlock, head)).filter(
    (e) => e.eventName === 'VoteCast' && e.args.taskId === BigInt(taskId),
  );
  assert.ok(chainVotes.length >= 2);
  assert.equal(task.votes.length, chainVotes.length);
  for (let i = 0; i < chainVotes.length; i++) {
    const e = chainVotes[i];
    const v = task.votes[i];
    assert.equal(v.verifier.toLowerCase(), String(e.args.verifier).toLowerCase());
    assert.equal(v.pass, e.args.pass);
    assert.equal(v.seats, Number(e.args.seats));
    assert.equal(v.block, e.blockNumber.toString());
    assert.equal(v.eligible, true);
    assert.equal(v.vrfProofValid, true);
    assert.equal(v.seatsValid, true);
    assert.ok(v.maxSeats >= v.seats);
    assert.equal(v.valid, true);
    assert.equal(v.invalidReason, null);
  }
  assert.equal(task.attempts.length, 1);
  const a = task.attempts[0];
  assert.equal(a.outcome, 'completed');
  assert.equal(a.tally.tau, info.tau);
  assert.equal(a.tally.threshold, info.threshold);
  assert.equal(a.tally.passSeats, info.passSeats);
  assert.equal(a.tally.validPassSeats, info.passSeats);
  assert.equal(a.tally.thresholdReached, true);
  assert.equal(a.claims.filter((x: J) => x.winner).length, 1);
  assert.equal(a.claims.find((x: J) => x.winner).executor, info.executor);
  assert.equal(a.claims.find((x: J) => x.winner).vrfProofValid, true);
  assert.equal(task.result.hash.length, 64);

  const list = await get('/api/tasks?status=completed&limit=5');
  assert.equal(list.status, 200);
  assert.ok(list.body.tasks.some((t: J) => t.taskId === taskId));
  const ended = await get('/api/tasks?status=failed,expired');
  assert.equal(ended.status, 200);
  assert.ok(ended.body.tasks.every((t: J) => t.status === 'failed' || t.status === 'expired'));
  assert.ok(!ended.body.tasks.some((t: J) => t.taskId === taskId));

  const nodes = await get('/api/nodes');
  assert.equal(nodes.status, 200);
  assert.equal(nodes.body.nodes.length, 4);
  assert.deepEqual(nodes.body.nodes.map((n: J) => n.roles.join()).sort(), [
    'executor',
    'verifier',
    'verifier',
    'verifier',
  ]);
  for (const n of nodes.body.nodes) {
    assert.equal(n.status, 'active');
    assert.equal(n.region, 'DE');
    assert.deepEqual(n.teeKinds, ['sim']);
    assert.match(n.endpoint, /^http:\/\/127\.0\.0\.1:/);
  }

  const summary = await get('/api/summary');
  assert.equal(summary.body.chainId, devnet!.info.chainId);
  assert.equal(summary.body.nodes.total, 4);
  assert.equal(summary.body.nodes.byRole.verifier, 3);
  assert.ok(summary.body.tasks.byStatus.completed >= 1);
  assert.ok(BigInt(summary.body.indexedBlock) >= BigInt(task.updatedBlock));

  // Other tests add tasks and apps of their own: this task's app and dataset are looked up.
  const assets = await get('/api/assets');
  assert.equal(assets.body.apps.find((a: J) => a.appId === appId)?.tasks, 1);
  const dataset = assets.body.datasets.find((d: J) => d.datasetId === datasetId);
  assert.deepEqual(dataset.policy.regions, ['DE']);
  assert.equal(dataset.policy.appraisalPolicyName, 'pinned');
});

test('the page: HTML with a strict CSP; no data in the markup', async () => {
  await dashboard();
  const r = await get('/');
  assert.equal(r.status, 200);
  assert.match(r.res.headers.get('content-type') ?? '', /^text\/html/);
  const csp = r.res.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
  assert.match(csp, /style-src 'sha256-[A-Za-z0-9+/=]+'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(r.res.headers.get('x-content-type-options'), 'nosniff');
  assert.match(r.body, /<script>/);
  assert.doesNotMatch(r.body, /innerHTML/);
  // The hashes in the policy are those of the inline script and style actually served.
  const { createHash } = await import('node:crypto');
  const inline = (tag: string) => {
    const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(r.body);
    assert.ok(m, tag);
    return `'sha256-${createHash('sha256').update(m[1]).digest('base64')}'`;
  };
  assert.ok(csp.includes(`script-src ${inline('script')}`));
  assert.ok(csp.includes(`style-src ${inline('style')}`));
});

test('bad requests: stable codes and statuses', async () => {
  await dashboard();
  const unknown = await get('/api/tasks/999999');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 'TASK_NOT_FOUND');
  const badId = await get('/api/tasks/abc');
  assert.equal(badId.status, 400);
  assert.equal(badId.body.error.code, 'PEER_BAD_REQUEST');
  const badStatus = await get('/api/tasks?status=done');
  assert.equal(badStatus.status, 400);
  assert.equal(badStatus.body.error.code, 'PEER_BAD_REQUEST');
  for (const limit of ['0', '-1', 'x', '1001', '1.5']) {
    const r = await get(`/api/tasks?limit=${limit}`);
    assert.equal(r.status, 400, limit);
    assert.equal(r.body.error.code, 'PEER_BAD_REQUEST');
  }
  const extra = await get('/api/nodes?x=1');
  assert.equal(extra.status, 400);
  const nowhere = await get('/api/nope');
  assert.equal(nowhere.status, 404);
  assert.equal(nowhere.body.error.code, 'PEER_NOT_FOUND');
  // A request addressed to another host name (DNS rebinding) is refused.
  const rebound = await new Promise<{ status: number; body: J }>((resolve, reject) => {
    const req = request(new URL('/api/nodes', url), { headers: { host: 'evil.example' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(rebound.status, 400);
  assert.equal(rebound.body.error.code, 'PEER_BAD_REQUEST');
  const post = await fetch(new URL('/api/nodes', url), { method: 'POST' });
  assert.equal(post.status, 405);
  await post.body?.cancel();
});

test('a pass vote claiming more seats than sortition gives: attested on chain, not counted on the dashboard', {
  timeout: 180_000,
}, async () => {
  // A csv-stats app of its own, on a dataset of its own with a small committee (20 seats, all
  // needed): the liar's invented 20 seats stay within the contract's per-vote bound of its stake
  // share (§11.3), far above what sortition gives it; only a relying party can tell.
  await completedTask();
  const app = await ferry(['app', 'publish', examplePath('csv-stats'), '--profile', 'bob'], env);
  assert.equal(app.code, 0, app.out);
  const appId: string = app.json.appId;
  const ds = await ferry(
    [
      'dataset',
      'add',
      join(work, 'cities.csv'),
      '--region',
      'DE',
      '--allow-app',
      app.json.measurement,
      '--committee',
      '20',
      '--threshold',
      '20',
      '--profile',
      'alice',
    ],
    env,
  );
  assert.equal(ds.code, 0, ds.out);
  const datasetId: string = ds.json.datasetId;
  await dashboard();
  const net: Net = { devnet: devnet!, home, env };
  const verifiers = devnet!.info.nodes.filter((n) => n.roles.includes('verifier')).map((n) => n.name);
  const [liar] = verifiers;
  // Frozen verifiers see nothing: the liar votes alone, with its own key, before anyone else.
  freeze(net, verifiers);
  try {
    const created = await ferry(
      ['task', 'run', '--app', appId, '--dataset', datasetId, '--profile', 'carol'],
      env,
    );
    assert.equal(created.code, 0, created.out);
    const id = BigInt(created.json.taskId);
    const c = await chainFor(net, 'carol');
    const t = await waitFor('attesting', async () => {
      const x = await getTask(c, id);
      return x?.status === 'attesting' ? x : null;
    });
    const s = nodeSecrets(net, liar);
    const proof = vrfProve(
      s.vrf.sk,
      verifierAlpha({
        chainId: BigInt(devnet!.info.chainId),
        taskId: id,
        attempt: 1,
        seed: hexBytes(t.seed),
      }),
    );
    const beta = vrfProofToHash(proof);
    const node = await getNode(c, s.address as `0x${string}`);
    const trueSeats = seatsFor(beta, node!.stake, t);
    assert.ok(trueSeats < t.threshold, `true seats ${trueSeats} below the threshold ${t.threshold}`);
    const r = await vote(await chainFor(net, liar), {
      taskId: id,
      attempt: 1,
      pass: true,
      resultHash: new Uint8Array(32).fill(7),
      seats: t.threshold,
      vrfOutput: beta,
      vrfProof: proof,
    });
    assert.equal(r.status, 'attested', 'the contract takes the seats as given (§11.5)');

    const shown = await waitFor(
      'the dashboard to show the vote',
      async () => {
        const x = await get(`/api/tasks/${id}`);
        return x.status === 200 && x.body.votes.length === 1 && x.body.status === 'attested' ? x.body : null;
      },
      30_000,
      250,
    );
    const v = shown.votes[0];
    assert.equal(v.verifier.toLowerCase(), s.address.toLowerCase());
    assert.equal(v.seats, t.threshold);
    assert.equal(v.maxSeats, trueSeats);
    assert.equal(v.eligible, true);
    assert.equal(v.vrfProofValid, true);
    assert.equal(v.seatsValid, false);
    assert.equal(v.valid, false);
    assert.equal(v.invalidReason, 'seats');
    const tally = shown.attempts[0].tally;
    assert.equal(tally.passSeats, t.threshold);
    assert.equal(tally.validPassSeats, 0);
    assert.equal(tally.thresholdReached, false);
    assert.equal(tally.invalidVotes, 1);
    assert.ok(
      shown.timeline.some((x: J) => x.stage === 'vote' && x.valid === false && x.invalidReason === 'seats'),
    );
  } finally {
    thaw(net, verifiers);
  }
});

test('SIGTERM stops the dashboard cleanly', { timeout: 30_000 }, async () => {
  const { proc } = await spawnDashboard();
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  proc.kill('SIGTERM');
  assert.equal(await exited, 0);
});
