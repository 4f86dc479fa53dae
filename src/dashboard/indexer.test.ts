/**
 * The dashboard's index against a real anvil with Ferry deployed, driven call by call (no
 * daemons): a task whose executor misses the evidence window, then finds no claimant
 * (failed after two attempts), and a task attested on chain by a vote whose VRF proof does not
 * verify. The index must show each attempt, its end reason and the final state, and must not
 * count the forged vote. Also: the JSON API in-process (list filters, errors).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Address, sha256 } from 'viem';
import {
  type ChainWriter,
  claimTask,
  challengeVote,
  commitEvidence,
  createApp,
  createDataset,
  createTask,
  getNode,
  getTask,
  registerNode,
  seedTask,
  timeoutTask,
  vote,
} from '../chain/index.ts';
import { randomHex, startTestChain, type TestChain } from '../chain/testing.ts';
import { claimAlpha, verifierAlpha, vrfKeygen, vrfProofToHash, vrfProve } from '../crypto/index.ts';
import type { Logger } from '../kernel/index.ts';
import { hexBytes, seatsFor, stageDeadline } from '../protocol/index.ts';
import { Dashboard } from './index.ts';

const ETH = 10n ** 18n;
const CLAIM = 10;
const EVIDENCE = 10;
const MEASUREMENT = sha256(new TextEncoder().encode('app module'));

const quiet: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

type Party = { w: ChainWriter; vrf: { sk: Uint8Array; pk: Uint8Array } };

let tc: TestChain;
let requester: ChainWriter;
let exec: Party;
/** A second executor: the first is slashed and jailed by the failing task. */
let exec2: Party;
let v1: Party;
let v2: Party;
let appId: bigint;
let datasetId: bigint;
let chainId: number;
let dash: Dashboard;
let url = '';

const addr = (c: ChainWriter): Address => c.wallet.account.address;

async function party(roles: ('executor' | 'verifier')[]): Promise<Party> {
  const w = await tc.account();
  const vrf = vrfKeygen();
  await registerNode(w, {
    roles,
    region: 'DE',
    teeKinds: ['sim'],
    vrfPublicKey: vrf.pk,
    signingKey: randomHex(32),
    endpoint: 'http://127.0.0.1:1/<b>node</b>',
    stake: ETH,
  });
  return { w, vrf };
}

async function now(): Promise<number> {
  return Number((await tc.deployer.public.getBlock()).timestamp);
}

async function newTask(): Promise<bigint> {
  const r = await createTask(requester, {
    appId,
    datasetIds: [datasetId],
    inputHash: randomHex(32),
    resultRecipient: randomHex(32),
    inputLocation: '',
    fee: ETH,
    expiresAt: (await now()) + 3600,
    claimWindow: CLAIM,
    evidenceWindow: EVIDENCE,
    voteWindow: 10,
    runWindow: 20,
  });
  return r.taskId;
}

async function seedAndClaim(taskId: bigint, attempt: number, by: Party): Promise<void> {
  await tc.mine(1);
  const s = await seedTask(requester, taskId);
  assert.ok(s.seed);
  const proof = vrfProve(
    by.vrf.sk,
    claimAlpha({ chainId: BigInt(chainId), taskId, attempt, seed: hexBytes(s.seed) }),
  );
  await claimTask(by.w, { taskId, attempt, vrfOutput: vrfProofToHash(proof), vrfProof: proof });
}

// biome-ignore lint/suspicious/noExplicitAny: API JSON, checked field by field
async function get(path: string): Promise<{ status: number; body: any }> {
  const r = await fetch(new URL(path, url));
  return { status: r.status, body: await r.json() };
}

/**
 * GET `path` until `ok(body)`: the dashboard reads the head at most once a second, so an
 * answer may be a second stale.
 */
// biome-ignore lint/suspicious/noExplicitAny: API JSON, checked field by field
async function fresh(path: string, ok: (body: any) => boolean): Promise<any> {
  for (let i = 0; ; i++) {
    const r = await get(path);
    if (ok(r.body) || i >= 40) return r.body;
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** Waits until the index has every block up to the current head. */
async function caughtUp(): Promise<void> {
  const head = await tc.deployer.public.getBlockNumber({ cacheTime: 0 });
  for (let i = 0; i < 400 && dash.indexer.indexedBlock < head; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(dash.indexer.indexedBlock >= head, `indexed ${dash.indexer.indexedBlock} of ${head}`);
}

before(async () => {
  tc = await startTestChain({ deploy: { maxAttempts: 2n } });
  chainId = await tc.deployer.public.getChainId();
  requester = await tc.account();
  exec = await party(['executor']);
  exec2 = await party(['executor']);
  v1 = await party(['verifier']);
  v2 = await party(['verifier']);
  appId = (
    await createApp(await tc.account(), {
      measurement: MEASUREMENT,
      ciphertextHash: randomHex(32),
      endpoint: 'http://a',
      price: 0n,
      teeKinds: ['sim'],
      appraisalPolicyDocument: randomHex(64),
    })
  ).appId;
  // tau = the verifier stake in units: sortition gives each verifier all its 1000 units.
  datasetId = (
    await createDataset(await tc.account(), {
      ciphertextHash: randomHex(32),
      endpoint: 'http://d',
      price: 0n,
      policy: {
        allowedApps: [MEASUREMENT],
        allowedRegions: ['DE'],
        teeKinds: ['sim'],
        tau: 2000,
        threshold: 1500,
        maxUses: 0,
        expiresAt: 0,
        requesters: [],
        appraisalPolicyDocument: randomHex(64),
      },
    })
  ).datasetId;
  await tc.mine(1);
  dash = new Dashboard({ chain: tc.deployer, chainId, confirmations: 0, pollIntervalMs: 50, log: quiet });
  url = (await dash.start()).url;
});

after(async () => {
  await dash?.stop();
  await tc?.stop();
});

test('a task that fails after two attempts: each attempt, its end reason, the final state', async () => {
  const taskId = await newTask();
  await seedAndClaim(taskId, 1, exec);
  await tc.advance(CLAIM + EVIDENCE + 1);
  await timeoutTask(requester, taskId); // evidence missed: attempt 2
  await tc.mine(1);
  await seedTask(requester, taskId);
  await tc.advance(CLAIM + 1);
  await timeoutTask(requester, taskId); // nobody claims attempt 2: failed
  assert.equal((await getTask(tc.deployer, taskId))?.status, 'failed');
  await caughtUp();

  const t = dash.indexer.task(taskId);
  assert.ok(t);
  assert.equal(t.status, 'failed');
  assert.equal(t.endReason, 'no-claim');
  assert.deepEqual(
    t.timeline.map((s) => `${s.stage}/${s.attempt}`),
    [
      'created/1',
      'seeded/1',
      'claimed/1',
      'attempt-ended/1',
      'rejected/1',
      'seeded/2',
      'attempt-ended/2',
      'failed/2',
    ],
  );
  assert.equal(t.timeline[3].reason, 'evidence-missed');
  assert.equal(t.timeline[4].reason, 'evidence-missed');
  assert.equal(t.timeline[6].reason, 'no-claim');
  assert.equal(t.timeline[7].reason, 'no-claim');
  assert.equal(t.timeline[7].refund, ETH.toString());
  for (let i = 1; i < t.timeline.length; i++) {
    assert.ok((t.timeline[i].sinceCreatedMs ?? -1) >= (t.timeline[i - 1].sinceCreatedMs ?? 0));
  }
  assert.ok((t.timeline[7].sinceCreatedMs ?? 0) >= (CLAIM + EVIDENCE + CLAIM) * 1000);
  assert.deepEqual(
    t.attempts.map((a) => [a.attempt, a.outcome, a.endReason]),
    [
      [1, 'evidence-missed', 'evidence-missed'],
      [2, 'no-claim', 'no-claim'],
    ],
  );
  const [claim] = t.attempts[0].claims;
  assert.equal(claim.executor, addr(exec.w));
  assert.equal(claim.winner, true);
  assert.equal(claim.vrfProofValid, true);
  assert.equal(t.attempts[0].slashed !== null && BigInt(t.attempts[0].slashed) > 0n, true, 'slashed');

  const failed = await get('/api/tasks?status=failed');
  assert.deepEqual(
    failed.body.tasks.map((x: { taskId: string }) => x.taskId),
    [taskId.toString()],
  );
  const summary = await get('/api/summary');
  assert.equal(summary.body.tasks.byStatus.failed, 1);
  // The executor was slashed and jailed: the node table follows the registry.
  const nodes = await get('/api/nodes');
  const n = nodes.body.nodes.find((x: { address: string }) => x.address === addr(exec.w));
  const onChain = await getNode(tc.deployer, addr(exec.w));
  assert.equal(n.stake, onChain?.stake.toString());
  assert.equal(n.status, onChain?.status);
  assert.equal(n.endpoint, 'http://127.0.0.1:1/<b>node</b>');
});

test('a vote whose VRF proof does not verify is not counted, though the chain attested with it', async () => {
  // Counts are taken before and after: other tests add tasks of their own, in any order.
  await caughtUp();
  const tasksBefore: number = (await get('/api/tasks?limit=1')).body.total;
  const datasetTasksBefore: number = (await get('/api/assets')).body.datasets[0].tasks;
  const taskId = await newTask();
  await seedAndClaim(taskId, 1, exec2);
  await tc.advance(CLAIM + 1);
  await commitEvidence(exec2.w, { taskId, attempt: 1, evidenceHash: randomHex(32), location: 'http://e/1' });
  const task = await getTask(tc.deployer, taskId);
  assert.ok(task);
  const alpha = verifierAlpha({ chainId: BigInt(chainId), taskId, attempt: 1, seed: hexBytes(task.seed) });
  const proof = vrfProve(v1.vrf.sk, alpha);
  const beta = vrfProofToHash(proof);
  const honestSeats = seatsFor(beta, ETH, task);
  assert.equal(honestSeats, 1000);
  await vote(v1.w, {
    taskId,
    attempt: 1,
    pass: true,
    resultHash: randomHex(32),
    seats: honestSeats,
    vrfOutput: beta,
    vrfProof: proof,
  });
  // v2 votes with v1's proof and output: the proof does not verify under v2's key.
  const r = await vote(v2.w, {
    taskId,
    attempt: 1,
    pass: true,
    resultHash: randomHex(32),
    seats: 1000,
    vrfOutput: beta,
    vrfProof: proof,
  });
  assert.equal(r.status, 'attested');
  await caughtUp();

  const { status, body: t } = await get(`/api/tasks/${taskId}`);
  assert.equal(status, 200);
  assert.equal(t.status, 'attested');
  assert.equal(t.votes.length, 2);
  const [good, forged] = t.votes;
  assert.equal(good.verifier, addr(v1.w));
  assert.deepEqual(
    [good.eligible, good.vrfProofValid, good.maxSeats, good.seatsValid, good.valid, good.invalidReason],
    [true, true, 1000, true, true, null],
  );
  assert.equal(forged.verifier, addr(v2.w));
  assert.deepEqual(
    [
      forged.eligible,
      forged.vrfProofValid,
      forged.maxSeats,
      forged.seatsValid,
      forged.valid,
      forged.invalidReason,
    ],
    [true, false, null, null, false, 'vrf-proof'],
  );
  const tally = t.attempts[0].tally;
  assert.deepEqual(
    [tally.passSeats, tally.validPassSeats, tally.threshold, tally.thresholdReached, tally.invalidVotes],
    [2000, 1000, 1500, false, 1],
  );
  assert.deepEqual(
    t.timeline.map((s: { stage: string }) => s.stage),
    ['created', 'seeded', 'claimed', 'evidence', 'vote', 'vote', 'attested'],
  );

  const attested = await get('/api/tasks?status=attested,completed&limit=1');
  assert.equal(attested.body.total, 1);
  assert.equal(attested.body.tasks[0].taskId, taskId.toString());
  const all = await get('/api/tasks?limit=1');
  assert.equal(all.body.total, tasksBefore + 1);
  assert.equal(all.body.tasks.length, 1);
  assert.equal(all.body.tasks[0].taskId, taskId.toString(), 'newest first');
  const assets = await get('/api/assets');
  assert.equal(assets.body.datasets[0].tasks, datasetTasksBefore + 1);
  assert.equal(assets.body.datasets[0].policy.appraisalPolicyName, null, 'an unknown policy has no name');
});

test('the API refuses bad input with stable codes', async () => {
  const cases: [string, number, string][] = [
    ['/api/tasks/999', 404, 'TASK_NOT_FOUND'],
    ['/api/tasks/0x1', 400, 'PEER_BAD_REQUEST'],
    [`/api/tasks/${'9'.repeat(79)}`, 400, 'PEER_BAD_REQUEST'],
    ['/api/tasks?status=completed,nope', 400, 'PEER_BAD_REQUEST'],
    ['/api/tasks?limit=5&limit=6', 400, 'PEER_BAD_REQUEST'],
    ['/api/summary?x', 400, 'PEER_BAD_REQUEST'],
    ['/api/tasks/1/extra', 404, 'PEER_NOT_FOUND'],
  ];
  for (const [path, status, code] of cases) {
    const r = await get(path);
    assert.equal(r.status, status, path);
    assert.equal(r.body.error.code, code, path);
    assert.equal(typeof r.body.error.message, 'string');
  }
});

test('the dashboard refuses a non-loopback host and a bad port', () => {
  assert.throws(
    () => new Dashboard({ chain: tc.deployer, chainId, host: '0.0.0.0' }),
    (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT',
  );
  assert.throws(
    () => new Dashboard({ chain: tc.deployer, chainId, port: 70000 }),
    (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT',
  );
});

test('a vote proven false on chain (FraudProven): the timeline shows the fraud stage, its kind and the liar', async () => {
  const taskId = await newTask();
  await seedAndClaim(taskId, 1, exec2);
  await tc.advance(CLAIM + 1);
  await commitEvidence(exec2.w, { taskId, attempt: 1, evidenceHash: randomHex(32), location: 'http://e/2' });
  const task = await getTask(tc.deployer, taskId);
  assert.ok(task);
  // v2 votes with v1's proof and output (below the threshold alone), and is proven false.
  const alpha = verifierAlpha({ chainId: BigInt(chainId), taskId, attempt: 1, seed: hexBytes(task.seed) });
  const proof = vrfProve(v1.vrf.sk, alpha);
  const beta = vrfProofToHash(proof);
  await vote(v2.w, {
    taskId,
    attempt: 1,
    pass: true,
    resultHash: randomHex(32),
    seats: 1000,
    vrfOutput: beta,
    vrfProof: proof,
  });
  const proven = await challengeVote(requester, {
    taskId,
    attempt: 1,
    voter: addr(v2.w),
    proof: {
      pass: true,
      seats: 1000,
      stake: ETH,
      seed: task.seed,
      executor: addr(exec2.w),
      vrfOutput: beta,
      vrfProof: proof,
    },
  });
  assert.equal(proven.fraud, 'vote-vrf');
  await caughtUp();
  const { body: t } = await get(`/api/tasks/${taskId}`);
  assert.deepEqual(
    t.timeline.map((s: { stage: string }) => s.stage),
    ['created', 'seeded', 'claimed', 'evidence', 'vote', 'fraud'],
  );
  const fraud = t.timeline[5];
  assert.deepEqual(
    [fraud.attempt, fraud.fraud, fraud.liar, fraud.challenger, fraud.slashed, fraud.restored],
    [1, 'vote-vrf', addr(v2.w), addr(requester), proven.slashed.toString(), proven.restored],
  );
});

test('the current stage deadline (src/protocol stageDeadline) and since when the task is in its status', async () => {
  const taskId = await newTask();
  await tc.mine(1);
  await seedTask(requester, taskId);
  await caughtUp();
  const seededInfo = await getTask(tc.deployer, taskId);
  assert.ok(seededInfo);
  const seeded = (await get(`/api/tasks/${taskId}`)).body;
  assert.deepEqual(seeded.stageDeadline, { kind: 'claim', at: seededInfo.deadline });
  assert.deepEqual(seeded.stageDeadline, stageDeadline(seededInfo));
  const seededStage = seeded.timeline.find((s: { stage: string }) => s.stage === 'seeded');
  assert.equal(seeded.stageSince, seededStage.time);
  // The list carries the same fields; the summary the head's block time (chain time).
  const listed = (await get('/api/tasks?status=seeded')).body.tasks.find(
    (x: { taskId: string }) => x.taskId === taskId.toString(),
  );
  assert.deepEqual(listed.stageDeadline, seeded.stageDeadline);
  assert.equal(listed.stageSince, seeded.stageSince);
  const head = await tc.deployer.public.getBlock({ blockTag: 'latest' });
  const summary = await fresh('/api/summary', (b) => b.headBlock === head.number.toString());
  assert.equal(summary.headTime, Number(head.timestamp));

  // Nobody claims: the attempt ends, the task waits for a new seed until its expiry.
  await tc.advance(CLAIM + 1);
  await timeoutTask(requester, taskId);
  await caughtUp();
  const rejectedInfo = await getTask(tc.deployer, taskId);
  assert.equal(rejectedInfo?.status, 'rejected');
  const rejected = (await get(`/api/tasks/${taskId}`)).body;
  assert.deepEqual(rejected.stageDeadline, { kind: 'expiry', at: rejectedInfo?.expiresAt });
  const rejectedStage = rejected.timeline.find((s: { stage: string }) => s.stage === 'rejected');
  assert.equal(rejected.stageSince, rejectedStage.time);
  assert.ok(rejected.stageSince > seeded.stageSince);
});

test('/api/stats: tasks ended per minute, stage latencies, node stake and jail events as on chain', async () => {
  await caughtUp();
  const head = Number((await tc.deployer.public.getBlock({ blockTag: 'latest' })).timestamp);
  const stats = await fresh('/api/stats', (b) => b.now === head);
  assert.equal(stats.perMinute.length, 30);
  assert.equal(stats.perMinute.at(-1).minute, Math.floor(head / 60) * 60);
  // Every final task counted in the minute of its last stage (when within the window).
  const all = (await get('/api/tasks?status=completed,failed,expired&limit=1000')).body.tasks;
  let completed = 0;
  let ended = 0;
  for (const t of all) {
    const d = (await get(`/api/tasks/${t.taskId}`)).body;
    const end = d.timeline.find((s: { stage: string }) =>
      ['completed', 'failed', 'expired'].includes(s.stage),
    );
    if (end.time < stats.perMinute[0].minute) continue;
    if (end.stage === 'completed') completed++;
    else ended++;
  }
  const sum = (k: 'completed' | 'ended') =>
    stats.perMinute.reduce((s: number, b: Record<string, number>) => s + b[k], 0);
  assert.equal(sum('completed'), completed);
  assert.equal(sum('ended'), ended);
  assert.deepEqual(
    stats.stageLatency.map((x: { stage: string }) => x.stage),
    ['seeded', 'claimed', 'evidence', 'attested', 'running', 'completed'],
  );
  const seededLatency = stats.stageLatency[0];
  assert.ok(seededLatency.samples >= 1);
  assert.ok(seededLatency.maxMs >= seededLatency.meanMs && seededLatency.meanMs >= 0);

  // Node events: every registration, and the executor slashed by the failing task (jailed).
  for (const p of [exec, exec2, v1, v2]) {
    const mine = stats.nodeEvents.filter((e: { node: string }) => e.node === addr(p.w));
    assert.equal(mine[0]?.kind, 'registered');
    assert.equal(mine[0].stake, ETH.toString());
    const onChain = await getNode(tc.deployer, addr(p.w));
    assert.equal(mine.at(-1).stake, onChain?.stake.toString(), 'stake after the last event = the registry');
  }
  const slashed = stats.nodeEvents.filter(
    (e: { node: string; kind: string }) => e.node === addr(exec.w) && e.kind === 'slashed',
  );
  assert.ok(slashed.length >= 1, 'the evidence-missing executor was slashed');
  assert.ok(BigInt(slashed[0].amount) > 0n);
  assert.ok(slashed[0].jailedUntil > slashed[0].time);
  assert.match(slashed[0].taskId, /^[0-9]+$/);
  for (let i = 1; i < stats.nodeEvents.length; i++) {
    assert.ok(BigInt(stats.nodeEvents[i].block) >= BigInt(stats.nodeEvents[i - 1].block));
  }
});
