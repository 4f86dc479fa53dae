/**
 * The node's challenger on a real anvil (§11.5), as the victim of a lie: the executor whose
 * attempt a liar's invented fail vote rejected proves the vote false from the AttemptEnded
 * event alone and is restored; the executor whose claim a false claim beat proves the claim
 * false. With `send` off it only reports; an honest vote or claim is never challenged.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Hex } from 'viem';
import {
  type ChainWriter,
  claimTask,
  commitEvidence,
  createTask,
  type FerryEvent,
  getNode,
  getTask,
  getTaskEvents,
  isExcluded,
  seedTask,
  vote,
} from '../chain/index.ts';
import {
  isolateEachTest,
  proveVrf,
  randomHex,
  startFraudWorld,
  type TestChain,
  type VrfActor,
} from '../chain/testing.ts';
import { claimAlpha } from '../crypto/vrf/index.ts';
import { createLogger } from '../kernel/index.ts';
import { Challenger } from './challenger.ts';
import { eventSteps } from './decisions.ts';
import type { JobContext, Jobs } from './duties.ts';

let tc: TestChain;
let requester: ChainWriter;
let executors: VrfActor[];
let liar: VrfActor;
let appId: bigint;
let datasetId: bigint;

before(async () => {
  ({ tc, requester, executors, liar, appId, datasetId } = await startFraudWorld());
});
after(async () => {
  await tc?.stop();
});
isolateEachTest(() => tc);

const log = createLogger({ level: 'error' });

/** Jobs that run at once, one after the other, and can be awaited. */
function inlineJobs(): Jobs & { drain(): Promise<void> } {
  const controller = new AbortController();
  let chain: Promise<void> = Promise.resolve();
  const ctx: JobContext = { signal: controller.signal, recorded: () => {} };
  return {
    enqueue(_lane, _what, fn) {
      chain = chain.then(() => fn(ctx));
    },
    has: () => false,
    signal: controller.signal,
    drain: () => chain,
  };
}

/** A Challenger for `a`, fed the task's events as the daemon's dispatch feeds it. */
async function runChallenger(a: VrfActor, taskId: bigint, send: boolean): Promise<void> {
  const jobs = inlineJobs();
  const ch = new Challenger({ chain: a.w, chainId: tc.chain.chainId, address: a.addr, jobs, send, log });
  const events: FerryEvent[] = await getTaskEvents(a.w, taskId);
  for (const e of events) {
    for (const step of eventSteps(e, ['executor'], a.addr)) {
      if (step.kind === 'challenge-votes') ch.votes(step.taskId, step.attempt);
      if (step.kind === 'check-claim') ch.claim(step.taskId, step.attempt, step.claimant);
    }
  }
  await jobs.drain();
}

async function newTask(): Promise<{ taskId: bigint; seed: Hex }> {
  const now = Number((await tc.deployer.public.getBlock()).timestamp);
  const { taskId } = await createTask(requester, {
    appId,
    datasetIds: [datasetId],
    inputHash: randomHex(32),
    resultRecipient: randomHex(32),
    inputLocation: '',
    fee: 10n ** 18n,
    expiresAt: now + 3600,
    claimWindow: 12,
    evidenceWindow: 10,
    voteWindow: 10,
    runWindow: 20,
  });
  await tc.mine(1);
  const { seed } = await seedTask(requester, taskId);
  return { taskId, seed: seed! };
}

function honestClaim(a: VrfActor, taskId: bigint, seed: Hex) {
  const alpha = claimAlpha({
    chainId: BigInt(tc.chain.chainId),
    taskId,
    attempt: 1,
    seed: Buffer.from(seed.slice(2), 'hex'),
  });
  const { proof, output } = proveVrf(a.vrfKey, alpha);
  return claimTask(a.w, { taskId, attempt: 1, vrfOutput: output, vrfProof: proof });
}

/** executors[0] claims honestly and commits; the liar rejects the attempt with 2 invented fail seats. */
async function rejectedByALie(): Promise<bigint> {
  const { taskId, seed } = await newTask();
  await honestClaim(executors[0], taskId, seed);
  await tc.advance(13);
  await commitEvidence(executors[0].w, {
    taskId,
    attempt: 1,
    evidenceHash: randomHex(32),
    location: 'http://e',
  });
  const r = await vote(liar.w, {
    taskId,
    attempt: 1,
    pass: false,
    resultHash: randomHex(32),
    seats: 2,
    vrfOutput: randomHex(64),
    vrfProof: randomHex(80),
  });
  assert.equal(r.status, 'rejected');
  return taskId;
}

test('the executor a false fail vote excluded proves it from the AttemptEnded event and is restored', async () => {
  const taskId = await rejectedByALie();
  // Another executor is not the victim: it challenges nothing.
  await runChallenger(executors[1], taskId, true);
  assert.equal((await getNode(tc.deployer, liar.addr))?.status, 'active');
  await runChallenger(executors[0], taskId, true);
  const proven = (await getTaskEvents(tc.deployer, taskId)).filter((e) => e.eventName === 'FraudProven');
  assert.equal(proven.length, 1);
  assert.equal(String(proven[0].args.challenger).toLowerCase(), executors[0].addr.toLowerCase());
  assert.equal(proven[0].args.restored, true);
  assert.equal((await getNode(tc.deployer, liar.addr))?.status, 'jailed');
  assert.equal(await isExcluded(tc.deployer, { taskId, node: executors[0].addr }), false);
  assert.equal((await getTask(tc.deployer, taskId))?.graceAttempts, 1);
  // A second pass (a replayed event) finds the vote discarded: nothing sent, nothing thrown.
  await runChallenger(executors[0], taskId, true);
  const again = (await getTaskEvents(tc.deployer, taskId)).filter((e) => e.eventName === 'FraudProven');
  assert.equal(again.length, 1);
});

test('with challengeLies off the executor only reports the lie', async () => {
  const taskId = await rejectedByALie();
  await runChallenger(executors[0], taskId, false);
  assert.equal(
    (await getTaskEvents(tc.deployer, taskId)).filter((e) => e.eventName === 'FraudProven').length,
    0,
  );
  assert.equal((await getNode(tc.deployer, liar.addr))?.status, 'active');
});

test('the executor whose claim a false claim beat proves it: the attempt ends, the liar is jailed', async () => {
  const { taskId, seed } = await newTask();
  await honestClaim(executors[0], taskId, seed);
  await claimTask(executors[1].w, {
    taskId,
    attempt: 1,
    vrfOutput: new Uint8Array(64),
    vrfProof: randomHex(80),
  });
  await runChallenger(executors[0], taskId, true);
  const t = await getTask(tc.deployer, taskId);
  assert.equal(t?.status, 'rejected', 'the attempt ended (fraud)');
  assert.equal((await getNode(tc.deployer, executors[1].addr))?.status, 'jailed');
});

test('an honest winning claim is never challenged', async () => {
  const second = await newTask();
  await honestClaim(executors[0], second.taskId, second.seed);
  await honestClaim(executors[1], second.taskId, second.seed);
  for (const a of executors) await runChallenger(a, second.taskId, true);
  assert.equal((await getTask(tc.deployer, second.taskId))?.status, 'claimed');
  assert.equal(
    (await getTaskEvents(tc.deployer, second.taskId)).filter((e) => e.eventName === 'FraudProven').length,
    0,
  );
});
