/**
 * Chain listings for the `ls` commands: datasets, apps and tasks. Their ids are 1..count (the
 * contracts number them in order), so a listing reads the count and each entry, all at one block
 * (the head when the listing starts), and never scans events: it costs one read per entry however
 * long the chain, and a task created during the listing is not half-seen.
 */
import {
  type AppInfo,
  type ChainReader,
  type DatasetInfo,
  getApp,
  getAssetCount,
  getDataset,
  getTask,
  getTaskCount,
  type NodeInfo,
  type TaskInfo,
  toChainError,
} from '../../chain/index.ts';

/** Reads at most this many entries at once. */
const READS_AT_ONCE = 16;

/** Entries 1..count read with `get`, in id order, without the ids that read as null. */
async function entries<T>(count: bigint, get: (id: bigint) => Promise<T | null>): Promise<T[]> {
  const out: T[] = [];
  for (let from = 1n; from <= count; from += BigInt(READS_AT_ONCE)) {
    const ids: bigint[] = [];
    for (let id = from; id <= count && id < from + BigInt(READS_AT_ONCE); id++) ids.push(id);
    for (const e of await Promise.all(ids.map(get))) if (e !== null) out.push(e);
  }
  return out;
}

async function head(c: ChainReader): Promise<bigint> {
  try {
    return await c.public.getBlockNumber({ cacheTime: 0 });
  } catch (e) {
    throw toChainError(e, 'getBlockNumber');
  }
}

export async function listDatasets(c: ChainReader): Promise<DatasetInfo[]> {
  const blockNumber = await head(c);
  const count = await getAssetCount(c, 'dataset', { blockNumber });
  return entries(count, (id) => getDataset(c, id, { blockNumber }));
}

export async function listApps(c: ChainReader): Promise<AppInfo[]> {
  const blockNumber = await head(c);
  const count = await getAssetCount(c, 'app', { blockNumber });
  return entries(count, (id) => getApp(c, id, { blockNumber }));
}

export async function listTasks(c: ChainReader): Promise<TaskInfo[]> {
  const blockNumber = await head(c);
  const count = await getTaskCount(c, { blockNumber });
  return entries(count, (id) => getTask(c, id, { blockNumber }));
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
