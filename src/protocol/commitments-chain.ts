/**
 * The task commitments of an attempt as the chain fixes them (docs/protocol.md §8.1): what the
 * executor gives its enclave, and what verifiers, owner agents and auditors recompute to check
 * the enclave's evidence and to seal key releases. Read from the TaskCreated event (input hash,
 * result recipient: that event is emitted in the task's creation block), the app (its
 * measurement never changes) and each dataset's ciphertext hash as it was at the end of the
 * task's creation block, so an owner updating a dataset later cannot change what a task's
 * enclave is bound to.
 */
import type { Hex } from 'viem';
import { type ChainReader, getApp, getDataset, getFerryEvents, type TaskInfo } from '../chain/index.ts';
import { FerryError, fromHex } from '../kernel/index.ts';
import { checkCommitments, type TaskCommitments } from './commitments.ts';

/** What TaskCreated said of the task (emitted in its creation block). */
export type TaskCreation = {
  inputHash: Uint8Array;
  inputLocation: string;
  resultRecipient: Uint8Array;
};

/**
 * The TaskCreated facts of a task, read from its creation block only. Throws TASK_NOT_FOUND when
 * the event is not there (a task id that does not exist, or an endpoint that lost the block) and
 * CHAIN_UNAVAILABLE when the endpoint cannot be read.
 */
export async function taskCreation(
  c: ChainReader,
  task: Pick<TaskInfo, 'taskId' | 'createdBlock'>,
): Promise<TaskCreation> {
  for (const e of await getFerryEvents(c, task.createdBlock, task.createdBlock)) {
    if (e.eventName !== 'TaskCreated' || e.args.taskId !== task.taskId) continue;
    return {
      inputHash: fromHex(e.args.inputHash as Hex, 'inputHash', 32),
      inputLocation: String(e.args.inputLocation ?? ''),
      resultRecipient: fromHex(e.args.resultRecipient as Hex, 'resultRecipient', 32),
    };
  }
  throw new FerryError(
    'TASK_NOT_FOUND',
    `task ${task.taskId}: no TaskCreated event in block ${task.createdBlock}`,
  );
}

/**
 * The commitments of the task's current attempt (`task.attempt`, `task.seed`), or of an earlier
 * one given with its seed (from its TaskSeeded event). Throws
 * TASK_FAILED when the task has no seed yet or names an app or dataset that does not exist,
 * TASK_NOT_FOUND / CHAIN_UNAVAILABLE as taskCreation does.
 */
export async function readTaskCommitments(
  c: ChainReader,
  p: {
    chainId: number | bigint;
    task: TaskInfo;
    creation?: TaskCreation;
    attempt?: { attempt: number; seed: Hex };
  },
): Promise<TaskCommitments> {
  const { task, creation } = p;
  const attempt = p.attempt?.attempt ?? task.attempt;
  const seed = fromHex(p.attempt?.seed ?? task.seed, 'seed', 32);
  if (seed.every((b) => b === 0)) {
    throw new FerryError('TASK_FAILED', `task ${task.taskId} attempt ${attempt} has no seed yet`);
  }
  const [created, app, datasets] = await Promise.all([
    creation ?? taskCreation(c, task),
    getApp(c, task.appId),
    Promise.all(task.datasetIds.map((id) => getDataset(c, id, { blockNumber: task.createdBlock }))),
  ]);
  if (!app) throw new FerryError('TASK_FAILED', `task ${task.taskId}: app ${task.appId} is not registered`);
  return checkCommitments({
    chainId: BigInt(p.chainId),
    taskId: task.taskId,
    attempt,
    seed,
    appId: task.appId,
    appMeasurement: fromHex(app.measurement, 'measurement', 32),
    inputHash: created.inputHash,
    resultRecipient: created.resultRecipient,
    datasets: task.datasetIds.map((id, i) => {
      const d = datasets[i];
      if (!d) throw new FerryError('TASK_FAILED', `task ${task.taskId}: dataset ${id} is not registered`);
      return { id, ciphertextHash: fromHex(d.ciphertextHash, 'ciphertextHash', 32) };
    }),
  });
}
