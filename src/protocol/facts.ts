/**
 * The facts of an attempt that every relying party reads from the chain before judging it
 * (docs/protocol.md §9.5): the task commitments, the executor as registered before the task, the
 * TEE kinds the task allows, and the appraisal policies that apply — the app's and each dataset's,
 * as they were named at the end of the task's creation block, so an owner changing a policy later
 * does not change how a running attempt is judged (owners still apply their current policy to
 * their own releases). The only chain-reading part of the appraisal rule; appraisal.ts is the rule.
 */
import type { Hex } from 'viem';
import type { AppraisalPolicy } from '../attestation/index.ts';
import { type ChainReader, getApp, getDataset, type NodeInfo, type TaskInfo } from '../chain/index.ts';
import { FerryError } from '../kernel/index.ts';
import type { ApplicablePolicy, PolicySubject } from './appraisal.ts';
import type { TaskCommitments } from './commitments.ts';
import { readTaskCommitments, type TaskCreation, taskCreation } from './commitments-chain.ts';
import { nodeAtCreation } from './snapshot.ts';

/** A subject's policy by hash: the policy, or null when this party does not apply it. */
export type PolicyResolver = (
  subject: PolicySubject,
  appraisalPolicyHash: Hex,
) => Promise<AppraisalPolicy | null>;

export type AttemptFacts = {
  task: TaskInfo;
  creation: TaskCreation;
  commitments: TaskCommitments;
  /** The executor's registry entry at the end of block createdBlock - 1 (null: not registered then). */
  executor: NodeInfo | null;
  /** The task's TEE kinds (the app's ∩ every dataset's, fixed by the contract at creation). */
  taskKinds: string[];
  /** The TEE kinds the executor had registered (empty when it was not registered). */
  executorKinds: string[];
};

/**
 * The facts of the task's current attempt (or of an earlier one, given). Throws CHAIN_UNAVAILABLE when the chain cannot be
 * read (a retry, never a verdict), TASK_NOT_FOUND / TASK_FAILED as readTaskCommitments does.
 */
export async function attemptFacts(
  c: ChainReader,
  p: {
    chainId: number | bigint;
    task: TaskInfo;
    /** An earlier attempt, its seed and its executor (default: the task's current attempt). */
    attempt?: { attempt: number; seed: Hex; executor: string };
  },
): Promise<AttemptFacts> {
  const { task } = p;
  const creation = await taskCreation(c, task);
  const executorAddress = p.attempt ? p.attempt.executor : task.executor;
  const [commitments, executor] = await Promise.all([
    readTaskCommitments(c, { chainId: p.chainId, task, creation, attempt: p.attempt }),
    executorAddress ? nodeAtCreation(c, executorAddress, task) : Promise.resolve(null),
  ]);
  return {
    task,
    creation,
    commitments,
    executor,
    taskKinds: [...task.teeKinds],
    executorKinds: executor ? [...executor.teeKinds] : [],
  };
}

/**
 * The appraisal policies of `subjects` (default: the app and every dataset of the task), each
 * named by its asset at the end of the task's creation block and resolved by `resolve`. Returns
 * the policies in subject order, or `{ unapplied }` naming the first subject whose policy this
 * party does not apply (it then abstains or refuses). Throws what `resolve` throws
 * (ATTESTATION_POLICY_NOT_FOUND may be a lagging endpoint: retry) and CHAIN_UNAVAILABLE.
 */
export async function attemptPolicies(
  c: ChainReader,
  task: TaskInfo,
  resolve: PolicyResolver,
  subjects: readonly PolicySubject[] = taskSubjects(task),
): Promise<{ policies: ApplicablePolicy[] } | { unapplied: PolicySubject }> {
  const at = { blockNumber: task.createdBlock };
  const policies: ApplicablePolicy[] = [];
  for (const s of subjects) {
    let hash: Hex;
    if (s.assetKind === 'app') {
      const app = await getApp(c, s.assetId, at);
      if (!app) throw new FerryError('TASK_FAILED', `app ${s.assetId} is not registered`);
      hash = app.appraisalPolicyHash;
    } else {
      const ds = await getDataset(c, s.assetId, at);
      if (!ds) throw new FerryError('TASK_FAILED', `dataset ${s.assetId} is not registered`);
      hash = ds.policy.appraisalPolicyHash;
    }
    const policy = await resolve(s, hash);
    if (!policy) return { unapplied: s };
    policies.push({ ...s, policy });
  }
  return { policies };
}

/** The app and every dataset of a task, as policy subjects. */
export function taskSubjects(task: Pick<TaskInfo, 'appId' | 'datasetIds'>): PolicySubject[] {
  return [
    { assetKind: 'app', assetId: task.appId },
    ...task.datasetIds.map((id) => ({ assetKind: 'dataset' as const, assetId: id })),
  ];
}
