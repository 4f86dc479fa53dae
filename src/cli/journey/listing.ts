/** Chain listings for the `ls` commands: datasets, apps and tasks from their events and getters. */
import { eventsSince } from '../../audit/index.ts';
import {
  type AppInfo,
  type ChainReader,
  type DatasetInfo,
  getApp,
  getDataset,
  getTask,
  type NodeInfo,
  type TaskInfo,
} from '../../chain/index.ts';

/** Ids named by one event kind, in order, without repeats. */
async function ids(c: ChainReader, eventName: string, field: string): Promise<bigint[]> {
  const seen = new Set<string>();
  const out: bigint[] = [];
  for (const e of await eventsSince(c, 0n)) {
    if (e.eventName !== eventName) continue;
    const id = e.args[field] as bigint;
    if (seen.has(id.toString())) continue;
    seen.add(id.toString());
    out.push(id);
  }
  return out;
}

export async function listDatasets(c: ChainReader): Promise<DatasetInfo[]> {
  const out: DatasetInfo[] = [];
  for (const id of await ids(c, 'DatasetRegistered', 'datasetId')) {
    const d = await getDataset(c, id);
    if (d) out.push(d);
  }
  return out;
}

export async function listApps(c: ChainReader): Promise<AppInfo[]> {
  const out: AppInfo[] = [];
  for (const id of await ids(c, 'AppRegistered', 'appId')) {
    const a = await getApp(c, id);
    if (a) out.push(a);
  }
  return out;
}

export async function listTasks(c: ChainReader): Promise<TaskInfo[]> {
  const out: TaskInfo[] = [];
  for (const id of await ids(c, 'TaskCreated', 'taskId')) {
    const t = await getTask(c, id);
    if (t) out.push(t);
  }
  return out;
}

export function datasetJson(d: DatasetInfo): Record<string, unknown> {
  return {
    datasetId: d.datasetId.toString(),
    owner: d.owner,
    ciphertextHash: d.ciphertextHash.slice(2),
    endpoint: d.endpoint,
    price: d.price.toString(),
    revoked: d.revoked,
    uses: d.uses,
    policy: {
      anyApp: d.policy.anyApp,
      regions: d.policy.allowedRegions,
      teeKinds: d.policy.teeKinds,
      tau: d.policy.tau,
      threshold: d.policy.threshold,
      maxUses: d.policy.maxUses,
      expiresAt: d.policy.expiresAt,
      restrictRequesters: d.policy.restrictRequesters,
      appraisalPolicyHash: d.policy.appraisalPolicyHash.slice(2),
    },
  };
}

export function appJson(a: AppInfo): Record<string, unknown> {
  return {
    appId: a.appId.toString(),
    owner: a.owner,
    measurement: a.measurement.slice(2),
    ciphertextHash: a.ciphertextHash.slice(2),
    endpoint: a.endpoint,
    price: a.price.toString(),
    revoked: a.revoked,
    teeKinds: a.teeKinds,
    appraisalPolicyHash: a.appraisalPolicyHash.slice(2),
    policyEpoch: a.policyEpoch,
  };
}

export function taskJson(t: TaskInfo): Record<string, unknown> {
  return {
    taskId: t.taskId.toString(),
    status: t.status,
    attempt: t.attempt,
    requester: t.requester,
    appId: t.appId.toString(),
    datasetIds: t.datasetIds.map(String),
    executor: t.executor,
    tau: t.tau,
    threshold: t.threshold,
    passSeats: t.passSeats,
    failSeats: t.failSeats,
    passVoters: t.passVoters,
    teeKinds: t.teeKinds,
    deadline: t.deadline,
    expiresAt: t.expiresAt,
    fee: t.fee.toString(),
    createdBlock: t.createdBlock.toString(),
    seed: t.seed.slice(2),
    evidenceHash: t.evidenceHash.slice(2),
    receiptHash: t.receiptHash.slice(2),
  };
}

export function nodeJson(n: NodeInfo): Record<string, unknown> {
  return {
    address: n.address,
    roles: n.roles,
    status: n.status,
    region: n.region,
    teeKinds: n.teeKinds,
    stake: n.stake.toString(),
    endpoint: n.endpoint,
    vrfPublicKey: n.vrfPublicKey.slice(2),
    signingKey: n.signingKey.slice(2),
    lastHeartbeat: n.lastHeartbeat,
  };
}

/** A plain text table. */
export function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(w[i]))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
