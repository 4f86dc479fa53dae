/**
 * The node's challenger on a real anvil (§11.5), as the victim of a lie: the executor whose
 * attempt a liar's invented fail vote rejected proves the vote false from the AttemptEnded
 * event alone and is restored; the executor whose claim a false claim beat proves the claim
 * false. With `send` off it only reports; an honest vote or claim is never challenged.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { claimTask, type FerryEvent, getNode, getTask, getTaskEvents, isExcluded } from '../chain/index.ts';
import {
  type FraudWorld,
  honestClaim,
  isolateEachTest,
  randomHex,
  rejectedByALie,
  seededFraudTask,
  startFraudWorld,
  type TestChain,
  type VrfActor,
} from '../chain/testing.ts';
import { createLogger } from '../kernel/index.ts';
import { Challenger } from './challenger.ts';
import { eventSteps } from './decisions.ts';
import type { JobContext, Jobs } from './duties.ts';

let world: FraudWorld;
let tc: TestChain;
let executors: VrfActor[];
let liar: VrfActor;

before(async () => {
  world = await startFraudWorld();
  ({ tc, executors, liar } = world);
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

test('the executor a false fail vote excluded proves it from the AttemptEnded event and is restored', async () => {
  const taskId = await rejectedByALie(world);
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
  const taskId = await rejectedByALie(world);
  await runChallenger(executors[0], taskId, false);
  assert.equal(
    (await getTaskEvents(tc.deployer, taskId)).filter((e) => e.eventName === 'FraudProven').length,
    0,
  );
  assert.equal((await getNode(tc.deployer, liar.addr))?.status, 'active');
});

test('the executor whose claim a false claim beat proves it: the attempt ends, the liar is jailed', async () => {
  const { taskId, seed } = await seededFraudTask(world);
  await honestClaim(world, executors[0], taskId, seed);
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
  const second = await seededFraudTask(world);
  await honestClaim(world, executors[0], second.taskId, second.seed);
  await honestClaim(world, executors[1], second.taskId, second.seed);
  for (const a of executors) await runChallenger(a, second.taskId, true);
  assert.equal((await getTask(tc.deployer, second.taskId))?.status, 'claimed');
  assert.equal(
    (await getTaskEvents(tc.deployer, second.taskId)).filter((e) => e.eventName === 'FraudProven').length,
    0,
  );
});
