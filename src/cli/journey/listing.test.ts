/**
 * The `ls` listings against a real anvil: every dataset, app and task in id order (more than one
 * batch of reads), read at one block, so an entry created after the listing's block is not in it;
 * a task read at a block before its creation is null.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  type ChainWriter,
  createApp,
  createDataset,
  createTask,
  getAssetCount,
  getTask,
  getTaskCount,
} from '../../chain/index.ts';
import { randomHex, startTestChain, type TestChain } from '../../chain/testing.ts';
import { isFerryError } from '../../kernel/index.ts';
import { listApps, listDatasets, listTasks } from './listing.ts';

let tc: TestChain;
let owner: ChainWriter;
let requester: ChainWriter;

const DATASETS = 19; // more than one batch of parallel reads

async function dataset(): Promise<bigint> {
  const { datasetId } = await createDataset(owner, {
    ciphertextHash: randomHex(32),
    endpoint: 'http://127.0.0.1:1/d',
    price: 0n,
    policy: {
      allowedApps: 'any',
      allowedRegions: [],
      teeKinds: ['sim'],
      tau: 1,
      threshold: 1,
      maxUses: 0,
      expiresAt: 0,
      requesters: [],
      appraisalPolicyDocument: randomHex(64),
    },
  });
  return datasetId;
}

async function app(): Promise<bigint> {
  const { appId } = await createApp(owner, {
    measurement: randomHex(32),
    ciphertextHash: randomHex(32),
    endpoint: 'http://127.0.0.1:1/a',
    price: 0n,
    teeKinds: ['sim'],
    appraisalPolicyDocument: randomHex(64),
  });
  return appId;
}

async function task(appId: bigint, datasetId: bigint): Promise<bigint> {
  const now = Number((await tc.deployer.public.getBlock()).timestamp);
  const { taskId } = await createTask(requester, {
    appId,
    datasetIds: [datasetId],
    inputHash: randomHex(32),
    resultRecipient: randomHex(32),
    inputLocation: 'http://127.0.0.1:1/input',
    fee: 0n,
    expiresAt: now + 3600,
    claimWindow: 10,
    evidenceWindow: 10,
    voteWindow: 10,
    runWindow: 10,
  });
  return taskId;
}

before(async () => {
  tc = await startTestChain();
  [owner, requester] = await Promise.all([tc.account(), tc.account()]);
});

after(async () => {
  await tc?.stop();
});

test('lists every dataset, app and task in id order, at one block', async () => {
  const datasetIds: bigint[] = [];
  for (let i = 0; i < DATASETS; i++) datasetIds.push(await dataset());
  const appIds = [await app(), await app()];
  const taskIds = [await task(appIds[0], datasetIds[0]), await task(appIds[1], datasetIds[3])];

  assert.deepEqual(
    (await listDatasets(owner)).map((d) => d.datasetId),
    datasetIds,
  );
  assert.deepEqual(
    (await listApps(owner)).map((a) => a.appId),
    appIds,
  );
  const tasks = await listTasks(owner);
  assert.deepEqual(
    tasks.map((t) => t.taskId),
    taskIds,
  );
  assert.equal(tasks[1].requester, requester.wallet.account.address);
  assert.deepEqual(tasks[1].datasetIds, [datasetIds[3]]);

  // Counts and entries as of an earlier block: the second task did not exist yet.
  const now = await owner.public.getBlockNumber({ cacheTime: 0 });
  const before2 = now - 1n;
  assert.equal(await getTaskCount(owner, { blockNumber: before2 }), 1n);
  assert.equal(await getTask(owner, taskIds[1], { blockNumber: before2 }), null);
  assert.equal((await getTask(owner, taskIds[1]))?.taskId, taskIds[1]);
  assert.equal(await getAssetCount(owner, 'dataset', { blockNumber: before2 }), BigInt(DATASETS));
  assert.equal(await getAssetCount(owner, 'app'), 2n);
});

test('a bad kind or block is refused with a stable code', async () => {
  await assert.rejects(
    getAssetCount(owner, 'task' as 'app'),
    (e: unknown) => isFerryError(e) && e.code === 'INVALID_ARGUMENT',
  );
  await assert.rejects(
    getTaskCount(owner, { blockNumber: -1n }),
    (e: unknown) => isFerryError(e) && e.code === 'INVALID_ARGUMENT',
  );
});
