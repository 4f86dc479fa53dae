/**
 * The chain driver: job lanes (order within a lane, concurrency across lanes, bounded pools,
 * deduplication, stop drains) and, against a real anvil, the cursor that waits for the jobs of
 * a range to record their intents, and a reconcile that never runs twice at once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type FerryError, isFerryError } from '../kernel/index.ts';
import { ChainDriver, JobLanes } from './driver.ts';
import { createApp, type HeadSource, subscribeNewHeads, timeoutTask, wsUrlFor } from '../chain/index.ts';
import { randomHex, startTestChain, type TestChain } from '../chain/testing.ts';

/** A gate a test opens by hand. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => {
    open = r;
  });
  return { wait, open };
}

const tick = () => new Promise((r) => setImmediate(r));

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('lanes: jobs of one lane run in order, one at a time', async () => {
  const lanes = new JobLanes({ maxJobs: 4 });
  const log: string[] = [];
  const g = gate();
  lanes.enqueue('a', 'first', async () => {
    log.push('1 start');
    await g.wait;
    log.push('1 end');
  });
  lanes.enqueue('a', 'second', async () => {
    log.push('2');
  });
  lanes.enqueue('a', 'third', async () => {
    log.push('3');
  });
  await tick();
  await tick();
  assert.deepEqual(log, ['1 start']);
  g.open();
  await lanes.drain();
  assert.deepEqual(log, ['1 start', '1 end', '2', '3']);
});

test('lanes: different lanes run concurrently; a failing job does not block its lane', async () => {
  const errors: string[] = [];
  const lanes = new JobLanes({ maxJobs: 4, onError: (what, e) => errors.push(`${what}:${e.code}`) });
  const g = gate();
  const started: string[] = [];
  for (const lane of ['a', 'b', 'c']) {
    lanes.enqueue(lane, lane, async () => {
      started.push(lane);
      await g.wait;
    });
  }
  await until(() => started.length === 3);
  assert.equal(lanes.running, 3);
  g.open();
  lanes.enqueue('a', 'boom', async () => {
    throw new Error('boom');
  });
  let after = false;
  const t = lanes.enqueue('a', 'after', async () => {
    after = true;
  });
  await t.done;
  assert.ok(after);
  assert.deepEqual(errors, ['boom:INTERNAL']);
});

test('lanes: a pool bounds its jobs, and the other jobs never wait behind a busy pool', async () => {
  const lanes = new JobLanes({ maxJobs: 3, pools: { enclave: 2 } });
  const g = gate();
  let inPool = 0;
  let maxInPool = 0;
  const runs = [];
  for (let i = 0; i < 6; i++) {
    runs.push(
      lanes.enqueue(
        `run${i}`,
        `run ${i}`,
        async () => {
          inPool++;
          maxInPool = Math.max(maxInPool, inPool);
          await g.wait;
          inPool--;
        },
        { pool: 'enclave' },
      ),
    );
  }
  await until(() => inPool === 2);
  // Four runs wait for the pool; a claim in another lane still runs at once.
  let claimed = false;
  await lanes.enqueue('claim', 'claim', async () => {
    claimed = true;
  }).done;
  assert.ok(claimed);
  assert.equal(inPool, 2);
  g.open();
  await Promise.all(runs.map((r) => r.done));
  assert.equal(maxInPool, 2);
  assert.throws(
    () => new JobLanes({ maxJobs: 2, pools: { enclave: 2 } }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  assert.throws(
    () => lanes.enqueue('x', 'x', async () => {}, { pool: 'gpu' }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
});

test('lanes: the overall bound holds across lanes', async () => {
  const lanes = new JobLanes({ maxJobs: 2 });
  const g = gate();
  let now = 0;
  let max = 0;
  const all = [];
  for (let i = 0; i < 5; i++) {
    all.push(
      lanes.enqueue(`l${i}`, `j${i}`, async () => {
        now++;
        max = Math.max(max, now);
        await g.wait;
        now--;
      }),
    );
  }
  await until(() => now === 2);
  await tick();
  assert.equal(now, 2);
  g.open();
  await Promise.all(all.map((t) => t.done));
  assert.equal(max, 2);
});

test('lanes: a key is enqueued once while pending; recorded resolves early', async () => {
  const lanes = new JobLanes();
  const g = gate();
  let runs = 0;
  const job = async (ctx: { recorded(): void }) => {
    runs++;
    ctx.recorded();
    await g.wait;
  };
  const t1 = lanes.enqueue('a', 'step', job, { key: 'step a' });
  const t2 = lanes.enqueue('a', 'step', job, { key: 'step a' });
  assert.equal(t1, t2);
  assert.ok(lanes.has('step a'));
  await t1.recorded;
  g.open();
  await t1.done;
  assert.ok(!lanes.has('step a'));
  await lanes.enqueue('a', 'step', job, { key: 'step a' }).done;
  assert.equal(runs, 2);
});

test('lanes: stop aborts running jobs, skips queued ones and resolves when they ended', async () => {
  const lanes = new JobLanes({ maxJobs: 2 });
  let aborted = false;
  let ended = false;
  let queuedRan = false;
  lanes.enqueue('a', 'long', async ({ signal }) => {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    aborted = signal.aborted;
    await new Promise((r) => setTimeout(r, 20));
    ended = true;
  });
  const queued = lanes.enqueue('a', 'queued', async () => {
    queuedRan = true;
  });
  await until(() => lanes.running === 1);
  const s1 = lanes.stop();
  const s2 = lanes.stop();
  await Promise.all([s1, s2]);
  assert.ok(aborted && ended);
  assert.ok(!queuedRan);
  await queued.recorded;
  await queued.done;
  // After stop, new jobs are skipped too.
  let late = false;
  await lanes.enqueue('b', 'late', async () => {
    late = true;
  }).done;
  assert.ok(!late);
});

let tc: TestChain;
before(async () => {
  tc = await startTestChain();
});
after(async () => {
  await tc?.stop();
});

const app = () =>
  createApp(tc.deployer, {
    measurement: randomHex(32),
    ciphertextHash: randomHex(32),
    endpoint: 'http://a',
    price: 1n,
    teeKinds: ['sim'],
    appraisalPolicyDocument: randomHex(32),
  });

test('driver: the cursor waits for the range’s jobs to record; reconcile is single-flight; stop is idempotent', async () => {
  const from = (await tc.deployer.public.getBlockNumber()) + 1n;
  const cursors: bigint[] = [];
  const g = gate();
  let seen = 0;
  let reconciles = 0;
  let inReconcile = 0;
  let maxInReconcile = 0;
  const errors: FerryError[] = [];
  const driver: ChainDriver = new ChainDriver({
    chain: tc.deployer,
    fromBlock: from,
    confirmations: 0,
    pollIntervalMs: 20,
    reconcileEveryMs: 20,
    onCursor: (n) => cursors.push(n),
    onEvent: (e) => {
      if (e.eventName !== 'AppRegistered') return;
      seen++;
      driver.lanes.enqueue(`app ${e.args.appId}`, 'app', async (ctx) => {
        await g.wait;
        ctx.recorded();
        await new Promise((r) => setTimeout(r, 50));
      });
    },
    reconcile: async () => {
      reconciles++;
      inReconcile++;
      maxInReconcile = Math.max(maxInReconcile, inReconcile);
      await new Promise((r) => setTimeout(r, 60));
      inReconcile--;
    },
    onError: (_w, e) => errors.push(e),
    onWatchError: (e) => errors.push(e),
  });
  driver.start();
  driver.start();
  await app();
  const mined = await tc.deployer.public.getBlockNumber();
  await until(() => seen === 1);
  // The job has not recorded its intent: the cursor has not moved past the event's block.
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(
    cursors.every((c) => c <= mined),
    `cursor moved to ${cursors.at(-1)} before the intent`,
  );
  g.open();
  await until(() => cursors.some((c) => c > mined));
  await until(() => reconciles >= 3);
  assert.equal(maxInReconcile, 1);
  await Promise.all([driver.stop(), driver.stop()]);
  assert.equal(driver.lanes.running, 0);
  assert.throws(
    () => driver.start(),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  assert.deepEqual(errors, []);
});

test('driver: a new head starts a reconcile at once; heads during one are answered by one more, not a pile-up', async () => {
  const heads = subscribeNewHeads(wsUrlFor(tc.chain.rpcUrl));
  const fns = new Set<(n: bigint) => void>();
  // The chain's real notifications; the test also fires a burst (as a flooding endpoint would).
  const source: HeadSource = {
    get live() {
      return heads.live;
    },
    subscribe(fn) {
      fns.add(fn);
      const off = heads.subscribe(fn);
      return () => {
        fns.delete(fn);
        off();
      };
    },
    close() {},
  };
  let reconciles = 0;
  let inReconcile = 0;
  let maxInReconcile = 0;
  const g = gate();
  const driver = new ChainDriver({
    chain: tc.deployer,
    fromBlock: (await tc.deployer.public.getBlockNumber({ cacheTime: 0 })) + 1n,
    confirmations: 0,
    pollIntervalMs: 600_000,
    // The tick does not fire during the test: only heads start reconciles.
    reconcileEveryMs: 600_000,
    headReconcileGapMs: 30,
    heads: source,
    onCursor: () => {},
    onEvent: () => {},
    reconcile: async () => {
      reconciles++;
      inReconcile++;
      maxInReconcile = Math.max(maxInReconcile, inReconcile);
      await g.wait;
      inReconcile--;
    },
  });
  try {
    await until(() => heads.live);
    driver.start();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(reconciles, 0, 'nothing before a block');
    await tc.mine(1);
    await until(() => reconciles === 1);
    // Ten heads while it runs: one more reconcile once it ends, not ten, never two at once.
    for (let i = 0; i < 10; i++) for (const fn of fns) fn(BigInt(i));
    g.open();
    await until(() => reconciles === 2);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(reconciles, 2);
    assert.equal(maxInReconcile, 1);
  } finally {
    await driver.stop();
    heads.close();
  }
  assert.equal(fns.size, 0, 'stop unsubscribed');
});

test('jobs may send from one account concurrently: no nonce clash, a revert at estimation leaves no gap', async () => {
  const results = await Promise.allSettled([
    app(),
    timeoutTask(tc.deployer, 999_999n),
    app(),
    app(),
    timeoutTask(tc.deployer, 999_998n),
    app(),
    app(),
  ]);
  const codes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as FerryError).code));
  assert.deepEqual(
    codes.filter((c) => c === 'ok'),
    ['ok', 'ok', 'ok', 'ok', 'ok'],
  );
  assert.equal(codes.filter((c) => c !== 'ok').length, 2);
  // The next send is not stuck behind a nonce gap.
  await app();
});
