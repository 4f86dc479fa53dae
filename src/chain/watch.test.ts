/**
 * The event watcher against a real anvil: confirmation depth, resume from a stored block,
 * reorganisations shallower than the depth (never delivered) and deeper ones (detected).
 * Reorganisations are made with evm_snapshot / evm_revert and different transactions.
 * New-head notifications (heads.ts): from the chain's own WebSocket they start a poll at once;
 * a notification stream the attacker controls changes only when polls happen, never what is
 * delivered.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FerryError } from '../kernel/index.ts';
import {
  createApp,
  type FerryEvent,
  getFerryEvents,
  type HeadSource,
  parseWsUrl,
  subscribeNewHeads,
  watchFerryEvents,
  wsUrlFor,
} from './index.ts';
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

/** A head source the test (playing a hostile or broken endpoint) fires at will. */
function manualHeads(): HeadSource & { fire(n: bigint): void } {
  const fns = new Set<(n: bigint) => void>();
  return {
    live: true,
    subscribe(fn) {
      fns.add(fn);
      return () => fns.delete(fn);
    },
    close() {
      fns.clear();
    },
    fire(n) {
      for (const fn of fns) fn(n);
    },
  };
}

test('new heads from the chain wake the watcher: a block is delivered without waiting for the poll interval', async () => {
  const heads = subscribeNewHeads(wsUrlFor(tc.chain.rpcUrl));
  try {
    await until(() => heads.live);
    const numbers: bigint[] = [];
    heads.subscribe((n) => numbers.push(n));
    const seen: FerryEvent[] = [];
    let polls = 0;
    const w = watchFerryEvents(tc.deployer, {
      fromBlock: (await tc.deployer.public.getBlockNumber({ cacheTime: 0 })) + 1n,
      confirmations: 0,
      // Far longer than the test may take: only a head can start the second poll.
      pollIntervalMs: 600_000,
      heads,
      onEvents: (evs) => {
        polls++;
        seen.push(...evs);
      },
    });
    await new Promise((r) => setTimeout(r, 100));
    const a = await app(8n);
    await until(() => seen.some((e) => e.eventName === 'AppRegistered'));
    assert.equal(seen.find((e) => e.eventName === 'AppRegistered')?.args.appId, a.appId);
    assert.ok(numbers.length >= 1, 'the block was announced');
    assert.ok(polls >= 1);
    await w.stop();
  } finally {
    heads.close();
  }
});

test('attacker: forged and flooded head notifications change when polls happen, never the confirmation depth or the reorg check', async () => {
  const heads = manualHeads();
  const snap = await tc.snapshot();
  const from = (await tc.deployer.public.getBlockNumber({ cacheTime: 0 })) + 1n;
  const seen: FerryEvent[] = [];
  let error: FerryError | undefined;
  let ranges = 0;
  const w = watchFerryEvents(tc.deployer, {
    fromBlock: from,
    confirmations: 2,
    pollIntervalMs: 600_000,
    minWakeGapMs: 0,
    heads,
    onEvents: (evs) => {
      ranges++;
      seen.push(...evs);
    },
    onError: (e) => {
      error = e;
    },
  });
  await app(9n); // block from: 0 confirmations
  // Claims of far-away heads, as fast as the attacker can send them.
  for (let i = 0; i < 200; i++) {
    heads.fire(from + 1000n + BigInt(i));
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(
    seen.length,
    0,
    'nothing delivered before 2 blocks are on top, whatever the notifications say',
  );
  await tc.mine(2);
  heads.fire(0n);
  await until(() => seen.length === 1);
  assert.equal(seen[0].args.price, 9n);
  // A reorganisation deeper than the depth: still detected on a head-woken poll.
  await tc.revert(snap);
  await app(10n);
  await app(11n);
  await tc.mine(2);
  heads.fire(12345n);
  await w.done;
  assert.equal(error?.code, 'CHAIN_REORG_TOO_DEEP');
  assert.ok(ranges >= 1);
});

test('without a live head subscription the watcher polls at its interval; stop() unsubscribes', async () => {
  const fns = new Set<(n: bigint) => void>();
  const dead: HeadSource = {
    live: false,
    subscribe(fn) {
      fns.add(fn);
      return () => fns.delete(fn);
    },
    close() {},
  };
  const seen: FerryEvent[] = [];
  const w = watchFerryEvents(tc.deployer, {
    fromBlock: (await tc.deployer.public.getBlockNumber({ cacheTime: 0 })) + 1n,
    confirmations: 0,
    pollIntervalMs: 10,
    heads: dead,
    onEvents: (evs) => {
      seen.push(...evs);
    },
  });
  assert.equal(fns.size, 1);
  await app(12n);
  await until(() => seen.some((e) => e.eventName === 'AppRegistered'));
  await w.stop();
  assert.equal(fns.size, 0);
});

test('head subscriptions take only ws:// and wss:// URLs', () => {
  for (const bad of ['http://127.0.0.1:8545', 'not a url', '', 42]) {
    assert.throws(
      () => parseWsUrl(bad),
      (e) => e instanceof FerryError && e.code === 'INVALID_ARGUMENT' && e.message.startsWith('wsRpc:'),
    );
  }
  assert.throws(() => subscribeNewHeads('https://example.invalid/key'), /url: expected a ws/);
  assert.equal(wsUrlFor('http://127.0.0.1:8545'), 'ws://127.0.0.1:8545/');
  assert.equal(wsUrlFor('https://rpc.example/v1'), 'wss://rpc.example/v1');
  assert.throws(
    () => watchFerryEvents(tc.deployer, { minWakeGapMs: -1, onEvents: () => {} }),
    (e) => e instanceof FerryError && e.code === 'INVALID_ARGUMENT',
  );
});

test('attacker: a reorganisation of the last delivered block is detected when the new head is that block or its child', async () => {
  // The watcher settles its reorg check from the head block's hash and parent hash when it can
  // (one request per poll): a replaced block at the head, or under a new head, must still be
  // found out, with no confirmations to hide it.
  for (const extra of [0, 1]) {
    const snap = await tc.snapshot();
    const heads = manualHeads();
    const from = (await tc.deployer.public.getBlockNumber({ cacheTime: 0 })) + 1n;
    let error: FerryError | undefined;
    let delivered = 0;
    const w = watchFerryEvents(tc.deployer, {
      fromBlock: from,
      confirmations: 0,
      pollIntervalMs: 60_000,
      heads,
      onEvents: (evs) => {
        delivered += evs.length;
      },
      onError: (e) => {
        error = e;
      },
    });
    await app(5n);
    heads.fire(from);
    await until(() => delivered === 1);
    await tc.revert(snap);
    await app(6n);
    if (extra) await tc.mine(1);
    heads.fire(from + BigInt(extra));
    // A watcher that missed the reorganisation would go on waiting: bounded, then stopped.
    await Promise.race([w.done, new Promise((r) => setTimeout(r, 5000))]);
    await w.stop();
    assert.equal(error?.code, 'CHAIN_REORG_TOO_DEEP', `new head ${extra} block(s) above the replaced one`);
    assert.equal(delivered, 1, 'nothing of the replacing chain delivered');
  }
});
