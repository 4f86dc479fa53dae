/**
 * Nobody can get an honest executor slashed (issue 12), on a live devnet (several OS processes, a
 * real anvil), with the devnet's honest executor as the target:
 *
 * - a requester runs an app that loops forever with a short run window: the enclave's time limit
 *   comes from the task's run window (minus the margin to post the receipt), so the app is
 *   stopped, the receipt says `limit: time`, the task completes and the executor keeps its stake;
 *   a task whose run window exceeds the executor's bound is not claimed (failed, refunded);
 * - the owners of the task's assets record their key releases on chain and deliver nothing (an
 *   owner colluding with the requester): the executor gives the attempt up before the run deadline
 *   (`ENCLAVE_KEYS_MISSING`), is excluded but not slashed and stays active; the task fails and
 *   the requester is refunded.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { Hex } from 'viem';
import { decodeReceipt } from '../src/enclave/index.ts';
import { getCredits, getNode, getTask, recordKeyRelease, type TaskInfo } from '../src/chain/index.ts';
import { loadProfileSecrets } from '../src/profile/index.ts';
import {
  chainFor,
  ferry,
  freeze,
  publishAssets,
  startTask,
  type Net,
  taskEvents,
  thaw,
  waitFinal,
  waitFor,
  withDevnet,
} from './helpers/devnet.ts';

const REASON_ABANDONED = 7;

async function executorOf(net: Net): Promise<{ address: Hex; stake: bigint }> {
  const c = await chainFor(net, 'carol');
  const n = net.devnet.info.nodes.find((x) => x.roles.includes('executor'))!;
  const info = (await getNode(c, n.address as Hex))!;
  return { address: n.address as Hex, stake: info.stake };
}

test('an app that loops with a short run window is stopped by the limit the window gives; the receipt says so; the executor is not slashed', {
  timeout: 300_000,
}, async () => {
  await withDevnet({ executors: 1, verifiers: 3 }, async (net) => {
    const before = await executorOf(net);
    const a = await publishAssets(net, 'loop');
    const taskId = await startTask(net, a, ['--run-window', '5']);
    const final = await waitFinal(net, taskId, 240_000);
    assert.equal(final.status, 'completed', `the task ended as ${final.status}`);
    const evs = await taskEvents(await chainFor(net, 'carol'), taskId);
    const done = evs.find((e) => e.eventName === 'TaskCompleted')!;
    const receipt = decodeReceipt(Uint8Array.from(Buffer.from(String(done.args.receipt).slice(2), 'hex')));
    assert.equal(receipt.outcome, 'limit');
    assert.equal(receipt.limitHit, 'time');
    assert.equal(
      evs.filter((e) => e.eventName === 'AttemptEnded').length,
      0,
      'no attempt ended before the receipt',
    );
    const after = await executorOf(net);
    assert.equal(after.stake, before.stake, 'the executor keeps its stake');
    const show = await ferry(['task', 'show', String(taskId)], net.env);
    assert.equal(show.json.status, 'completed');

    // A run window above what the executor accepts to be pinned for (--max-run-window, default
    // 3600 s): it does not claim; the task fails unclaimed and is refunded.
    const long = await startTask(net, a, ['--run-window', '7200']);
    const lf = await waitFinal(net, long, 240_000);
    assert.equal(lf.status, 'failed');
    const levs = await taskEvents(await chainFor(net, 'carol'), long);
    assert.equal(levs.filter((e) => e.eventName === 'TaskClaimed').length, 0, 'nobody claimed');
    assert.equal(
      levs.find((e) => e.eventName === 'TaskFailed')?.args.refund,
      levs.find((e) => e.eventName === 'TaskCreated')?.args.fee,
    );
  });
});

test('owners who record key releases and deliver nothing cannot get the executor slashed: it abandons before the run deadline', {
  timeout: 300_000,
}, async () => {
  await withDevnet({ executors: 1, verifiers: 3 }, async (net) => {
    const before = await executorOf(net);
    const a = await publishAssets(net, 'csv-stats');
    // The owners' agents are stopped: only the owners' accounts act, on chain.
    freeze(net, ['agent-alice', 'agent-bob']);
    try {
      const taskId = await startTask(net, a);
      const c = await chainFor(net, 'carol');
      const t = await waitFor<TaskInfo>(
        `task ${taskId} attested`,
        async () => {
          const x = await getTask(c, taskId);
          return x?.status === 'attested' ? x : null;
        },
        120_000,
        200,
      );
      const fake = (s: string) => createHash('sha256').update(s).digest();
      await recordKeyRelease(await chainFor(net, 'bob'), {
        taskId,
        attempt: t.attempt,
        assetIndex: 0,
        releaseHash: fake('no key for the app'),
      });
      await recordKeyRelease(await chainFor(net, 'alice'), {
        taskId,
        attempt: t.attempt,
        assetIndex: 1,
        releaseHash: fake('no key for the dataset'),
      });
      assert.equal((await getTask(c, taskId))?.status, 'running', 'every release recorded: running');
      const final = await waitFinal(net, taskId, 240_000);
      const evs = await taskEvents(c, taskId);
      const ended = evs.filter((e) => e.eventName === 'AttemptEnded' && Number(e.args.attempt) === t.attempt);
      assert.deepEqual(
        ended.map((e) => Number(e.args.reason)),
        [REASON_ABANDONED],
      );
      assert.equal(ended[0].args.slashed, 0n, 'not slashed');
      const cause = evs.find((e) => e.eventName === 'AttemptAbandoned')!;
      assert.match(
        String(cause.args.cause),
        /^ENCLAVE_KEYS_MISSING: released on chain but not delivered: app \d+, dataset \d+$/,
      );
      const after = await executorOf(net);
      assert.equal(after.stake, before.stake, 'the executor keeps its stake');
      assert.equal((await getNode(c, after.address))?.status, 'active');
      assert.equal(final.status, 'failed', `the task ended as ${final.status}`);
      const fee = evs.find((e) => e.eventName === 'TaskCreated')!.args.fee as bigint;
      assert.equal(evs.find((e) => e.eventName === 'TaskFailed')?.args.refund, fee, 'the escrow is refunded');
      const carol = loadProfileSecrets(net.home, 'carol').profile.address as Hex;
      assert.ok((await getCredits(c, carol)) >= fee);
    } finally {
      thaw(net, ['agent-alice', 'agent-bob']);
    }
  });
});

test('an attested enclave whose keys never come is not kept: after keysWaitSeconds the executor abandons (not slashed)', {
  timeout: 300_000,
}, async () => {
  await withDevnet({ executors: 1, verifiers: 3, env: { FERRY_KEYS_WAIT_SECONDS: '10' } }, async (net) => {
    const before = await executorOf(net);
    const a = await publishAssets(net, 'csv-stats');
    // The owners never release: their agents are stopped.
    freeze(net, ['agent-alice', 'agent-bob']);
    try {
      const taskId = await startTask(net, a, ['--run-window', '600']);
      const c = await chainFor(net, 'carol');
      const abandoned = await waitFor(
        `task ${taskId}: attempt 1 abandoned`,
        async () =>
          (await taskEvents(c, taskId)).find(
            (e) => e.eventName === 'AttemptAbandoned' && Number(e.args.attempt) === 1,
          ) ?? null,
        240_000,
        500,
      );
      assert.match(
        String(abandoned.args.cause),
        /^ENCLAVE_KEYS_MISSING: no key within 10 s of the attestation/,
      );
      const ended = (await taskEvents(c, taskId)).find(
        (e) => e.eventName === 'AttemptEnded' && Number(e.args.attempt) === 1,
      )!;
      assert.equal(Number(ended.args.reason), REASON_ABANDONED);
      assert.equal(ended.args.slashed, 0n);
      assert.equal((await executorOf(net)).stake, before.stake);
    } finally {
      thaw(net, ['agent-alice', 'agent-bob']);
    }
  });
});
