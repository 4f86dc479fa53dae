/**
 * The event watcher against a real anvil: confirmation depth, resume from a stored block,
 * reorganisations shallower than the depth (never delivered) and deeper ones (detected).
 * Reorganisations are made with evm_snapshot / evm_revert and different transactions.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FerryError } from '../kernel/index.ts';
import { createApp, type FerryEvent, getFerryEvents, watchFerryEvents } from './index.ts';
import { randomHex, startTestChain, type TestChain } from './testing.ts';

let tc: TestChain;

before(async () => {
  tc = await startTestChain();
});
after(async () => {
  await tc?.stop();
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const app = (price: bigint) =>
  createApp(tc.deployer, {
    measurement: randomHex(32),
    ciphertextHash: randomHex(32),
    endpoint: 'http://a',
    price,
    teeKinds: ['sim'],
    appraisalPolicyDocument: randomHex(32),
  });

test('delivers events only at the confirmation depth, resumes, and survives shallow reorgs', async () => {
  const start = await tc.deployer.public.getBlockNumber();
  const seen: FerryEvent[] = [];
  let stored = start + 1n;
  const w = watchFerryEvents(tc.deployer, {
    fromBlock: stored,
    confirmations: 2,
    pollIntervalMs: 10,
    onEvents: (evs, next) => {
      seen.push(...evs);
      stored = next;
    },
  });
  const a1 = await app(1n);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(seen.length, 0, 'not delivered before 2 confirmations');
  await tc.mine(1);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(seen.length, 0);
  await tc.mine(1);
  await until(() => seen.length === 1);
  assert.equal(seen[0].eventName, 'AppRegistered');
  assert.equal(seen[0].contract, 'Assets');
  assert.equal(seen[0].args.appId, a1.appId);

  // A reorganisation replacing the 2 newest blocks (not yet at the depth) is never seen.
  const snap = await tc.snapshot();
  await app(2n); // block N (will be dropped)
  await tc.mine(1); // N+1: N has 1 confirmation only
  await new Promise((r) => setTimeout(r, 100));
  await tc.revert(snap);
  const a3 = await app(3n);
  await tc.mine(2);
  await until(() => seen.length === 2);
  assert.equal(seen[1].args.appId, a3.appId);
  assert.equal(seen[1].args.price, 3n);
  await w.stop();

  // Resume from the stored block: nothing delivered twice, new events delivered.
  const again: FerryEvent[] = [];
  const a4 = await app(4n);
  await tc.mine(2);
  const w2 = watchFerryEvents(tc.deployer, {
    fromBlock: stored,
    confirmations: 2,
    pollIntervalMs: 10,
    onEvents: (evs) => {
      again.push(...evs);
    },
  });
  await until(() => again.length === 1);
  assert.equal(again[0].args.appId, a4.appId);
  await w2.stop();
  const all = await getFerryEvents(tc.deployer, start + 1n, await tc.deployer.public.getBlockNumber());
  assert.deepEqual(
    all.filter((e) => e.eventName === 'AppRegistered').map((e) => e.args.price),
    [1n, 3n, 4n],
  );
});

test('a reorganisation deeper than the depth is detected', async () => {
  const snap = await tc.snapshot();
  const from = (await tc.deployer.public.getBlockNumber()) + 1n;
  let error: FerryError | undefined;
  let delivered = 0;
  const w = watchFerryEvents(tc.deployer, {
    fromBlock: from,
    confirmations: 1,
    pollIntervalMs: 10,
    onEvents: (evs) => {
      delivered += evs.length;
    },
    onError: (e) => {
      error = e;
    },
  });
  await app(5n);
  await tc.mine(1);
  await until(() => delivered === 1);
  await tc.revert(snap);
  await app(6n);
  await app(7n);
  await tc.mine(2);
  await w.done;
  assert.equal(error?.code, 'CHAIN_REORG_TOO_DEEP');
});

test('a range whose onEvents failed with CHAIN_UNAVAILABLE is delivered again, not skipped', async () => {
  const from = (await tc.deployer.public.getBlockNumber({ cacheTime: 0 })) + 1n;
  const a = await app(5n);
  await tc.mine(1);
  let calls = 0;
  const seen: FerryEvent[] = [];
  const cursors: bigint[] = [];
  const w = watchFerryEvents(tc.deployer, {
    fromBlock: from,
    confirmations: 0,
    pollIntervalMs: 10,
    onEvents: (evs, next) => {
      calls++;
      if (calls === 1) throw new FerryError('CHAIN_UNAVAILABLE', 'the store is briefly unreachable');
      seen.push(...evs);
      cursors.push(next);
    },
  });
  await until(() => seen.some((e) => e.eventName === 'AppRegistered'));
  await w.stop();
  assert.ok(calls >= 2);
  const registered = seen.filter((e) => e.eventName === 'AppRegistered').map((e) => e.args.appId);
  assert.deepEqual(registered, [a.appId], 'delivered once after the failure');
  assert.ok(cursors.every((c) => c > from));
});

test('stop() and abort end the watcher', async () => {
  const ac = new AbortController();
  const w = watchFerryEvents(tc.deployer, {
    confirmations: 0,
    pollIntervalMs: 10,
    onEvents: () => {},
    signal: ac.signal,
  });
  ac.abort();
  await w.done;
  await w.stop();
});
