/**
 * Seeds once per task (docs/protocol.md §12, "Duties anyone may do"): on a live devnet (two
 * honest executors) with a third executor registered by the test that never seeds, claims or
 * answers (absent, or hostile: either way it does nothing it is designated for):
 * - every task is seeded exactly once (one `seed` transaction per attempt on chain, none
 *   reverted): the executors no longer all seed every task;
 * - a task whose designated seeder is the hostile node is still seeded, by the honest node ranked
 *   next (its fallback), and completes; a task designated to an honest node is seeded by it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Hex, toFunctionSelector } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { getNode, registerNode, tasksAbi } from '../src/chain/index.ts';
import { vrfKeygen } from '../src/crypto/vrf/index.ts';
import { dutyRank } from '../src/node/decisions.ts';
import { loadProfileSecrets } from '../src/profile/index.ts';
import {
  chainFor,
  ferry,
  nodeSecrets,
  publishAssets,
  startTask,
  taskEvents,
  waitFinal,
  waitFor,
  withDevnet,
} from './helpers/devnet.ts';

const SEED = toFunctionSelector(tasksAbi.find((f) => f.type === 'function' && f.name === 'seed')!);

test('a designated seeder that never seeds stalls no task: the next-ranked executor seeds it; every task is seeded once', {
  timeout: 420_000,
}, async () => {
  await withDevnet({ executors: 2, verifiers: 2 }, async (net) => {
    const assets = await publishAssets(net, 'csv-stats');
    const c = await chainFor(net, 'carol');
    const honest = net.devnet.info.nodes.filter((n) => n.roles.includes('executor'));
    const honestAddr = honest.map((n) => nodeSecrets(net, n.name).address.toLowerCase());
    const model = (await getNode(c, honestAddr[0] as Hex))!;
    // The hostile executor: registered like the honest ones (same stake, region, TEE kind), no
    // daemon: it never seeds, claims or times out anything.
    const created = await ferry(['profile', 'create', 'hostile'], net.env);
    assert.equal(created.code, 0, created.stdout + created.stderr);
    const hostileKey = loadProfileSecrets(net.home, 'hostile').evmPrivateKey;
    const hostileAddr = privateKeyToAccount(hostileKey).address.toLowerCase();
    await c.public.request({
      method: 'anvil_setBalance' as never,
      params: [hostileAddr, `0x${(10n ** 21n).toString(16)}`] as never,
    });
    await registerNode(await chainFor(net, 'hostile'), {
      roles: ['executor'],
      region: model.region,
      teeKinds: ['sim'],
      vrfPublicKey: vrfKeygen().pk,
      signingKey: new Uint8Array(32).fill(1),
      endpoint: 'http://127.0.0.1:9/hostile',
      stake: model.stake,
    });
    // Both honest executors have read the registry since: they know all three executors.
    for (const n of honest) {
      await waitFor(
        `${n.name} to know the hostile executor`,
        async () =>
          readFileSync(join(net.home, 'logs', `${n.name}.log`), 'utf8')
            .split('\n')
            .some((l) => l.includes('active nodes read') && /executors(=|":)3\b/.test(l)) || null,
        60_000,
        200,
      );
    }
    const executors = [...honestAddr, hostileAddr];
    const fromBlock = await c.public.getBlockNumber({ cacheTime: 0 });
    // Tasks until one is designated to the hostile node and one to an honest node (each task
    // designates one of the three by its id: a third of them the hostile one).
    const seen = { hostile: 0, honest: 0 };
    const tasks: bigint[] = [];
    while ((seen.hostile === 0 || seen.honest === 0) && tasks.length < 15) {
      const taskId = await startTask(net, assets);
      tasks.push(taskId);
      const seeded = await waitFor(
        `task ${taskId} to be seeded`,
        async () => (await taskEvents(c, taskId)).find((e) => e.eventName === 'TaskSeeded') ?? null,
        60_000,
        200,
      );
      const tx = await c.public.getTransaction({ hash: seeded.transactionHash });
      const attempt = Number(seeded.args.attempt);
      const byRank = [...executors].sort(
        (a, b) =>
          dutyRank('seed', taskId, attempt, a, executors) - dutyRank('seed', taskId, attempt, b, executors),
      );
      if (byRank[0] === hostileAddr) {
        seen.hostile++;
        // The designated seeder never came: the honest executor ranked next seeded it.
        assert.equal(tx.from.toLowerCase(), byRank[1], `task ${taskId}: seeded by the fallback`);
      } else {
        seen.honest++;
        assert.equal(tx.from.toLowerCase(), byRank[0], `task ${taskId}: seeded by the designated executor`);
      }
    }
    assert.ok(seen.hostile > 0 && seen.honest > 0, `designations seen: ${JSON.stringify(seen)}`);
    for (const taskId of tasks) {
      const t = await waitFinal(net, taskId);
      assert.equal(t.status, 'completed', `task ${taskId} completed`);
      assert.equal(t.attempt, 1, `task ${taskId} needed one attempt`);
    }
    // One seed transaction per task, none reverted: no executor seeded a task another had seeded.
    const head = await c.public.getBlockNumber({ cacheTime: 0 });
    let seeds = 0;
    for (let n = fromBlock; n <= head; n++) {
      const b = await c.public.getBlock({ blockNumber: n, includeTransactions: true });
      for (const tx of b.transactions) {
        if (typeof tx === 'string' || tx.to?.toLowerCase() !== c.contracts.Tasks.toLowerCase()) continue;
        if (!tx.input.startsWith(SEED)) continue;
        seeds++;
        const r = await c.public.getTransactionReceipt({ hash: tx.hash });
        assert.equal(r.status, 'success', `seed transaction ${tx.hash} from ${tx.from} reverted`);
      }
    }
    assert.equal(seeds, tasks.length, 'one seed transaction per task');
  });
});
