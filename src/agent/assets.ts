/**
 * The owner's assets as library calls (used by `ferry dataset add`, `ferry app publish`,
 * `ferry dataset revoke`, `ferry demo` and the network benchmark): encrypt a dataset or an app
 * into the owner agent's store and register it on chain, and mark a revoked dataset in the
 * store. The agent reads its assets from its SQLite state and ciphertext store when it releases
 * keys and serves ciphertext, so these write into that same store (WAL mode lets a running
 * agent and this process share it).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Address, Hex } from 'viem';
import { type AppraisalPolicy, encodePolicyDocument, policyHash } from '../attestation/index.ts';
import { type ChainWriter, createApp, createDataset, type TeeKind } from '../chain/index.ts';
import { toHex } from '../kernel/index.ts';
import type { ProfileSecrets } from '../profile/index.ts';
import { agentHome } from './config.ts';
import { agentStore } from './daemon.ts';
import { AgentState } from './state.ts';

export type AddDatasetParams = {
  env: NodeJS.ProcessEnv;
  profile: string;
  secrets: ProfileSecrets;
  chain: ChainWriter;
  /** The owner agent's URL (registered as the dataset's endpoint). */
  endpoint: string;
  source: string | Readable;
  name: string;
  regions: string[];
  allowApps: Hex[] | 'any';
  tee: TeeKind[];
  tau: number;
  threshold: number;
  maxUses: number;
  expiresAt: number;
  requesters: Address[];
  policy: AppraisalPolicy;
  price: bigint;
  signal?: AbortSignal;
};

export type AddedDataset = {
  datasetId: bigint;
  localId: string;
  ciphertextHash: string;
  size: number;
  appraisalPolicyHash: string;
  txHash: string;
};

function openAgentState(env: NodeJS.ProcessEnv, profile: string): { home: string; state: AgentState } {
  const home = agentHome(profile, env);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  return { home, state: AgentState.open(join(home, 'state.db')) };
}

/** Encrypts a dataset into the owner's agent store and registers it on chain. */
export async function addDataset(p: AddDatasetParams): Promise<AddedDataset> {
  const { home, state } = openAgentState(p.env, p.profile);
  try {
    const store = agentStore(home, state, p.secrets.ageIdentity);
    const asset = await store.add(p.source, { kind: 'dataset', name: p.name, signal: p.signal });
    const ph = policyHash(p.policy);
    let reg: Awaited<ReturnType<typeof createDataset>>;
    try {
      reg = await createDataset(p.chain, {
        ciphertextHash: asset.ciphertextSha256,
        endpoint: p.endpoint,
        price: p.price,
        policy: {
          allowedApps: p.allowApps,
          allowedRegions: p.regions,
          teeKinds: p.tee,
          tau: p.tau,
          threshold: p.threshold,
          maxUses: p.maxUses,
          expiresAt: p.expiresAt,
          requesters: p.requesters,
          appraisalPolicyDocument: encodePolicyDocument(p.policy),
          appraisalPolicyHash: ph,
        },
      });
    } catch (e) {
      await store.remove(asset.id).catch(() => {});
      throw e;
    }
    state.markAssetRegistered(asset.id, reg.datasetId);
    return {
      datasetId: reg.datasetId,
      localId: asset.id,
      ciphertextHash: toHex(asset.ciphertextSha256),
      size: asset.size,
      appraisalPolicyHash: toHex(ph),
      txHash: reg.hash,
    };
  } finally {
    state.close();
  }
}

export type PublishedApp = {
  appId: bigint;
  localId: string;
  measurement: string;
  ciphertextHash: string;
  size: number;
  appraisalPolicyHash: string;
  txHash: string;
};

/**
 * Encrypts a WASM app into the owner's agent store and registers it (measurement = SHA-256)
 * with the TEE kinds and appraisal policy its owner requires of every task.
 */
export async function publishApp(p: {
  env: NodeJS.ProcessEnv;
  profile: string;
  secrets: ProfileSecrets;
  chain: ChainWriter;
  endpoint: string;
  file: string;
  name: string;
  price: bigint;
  tee: TeeKind[];
  policy: AppraisalPolicy;
  signal?: AbortSignal;
}): Promise<PublishedApp> {
  const { home, state } = openAgentState(p.env, p.profile);
  try {
    const store = agentStore(home, state, p.secrets.ageIdentity);
    const asset = await store.add(p.file, { kind: 'app', name: p.name, signal: p.signal });
    const ph = policyHash(p.policy);
    let reg: Awaited<ReturnType<typeof createApp>>;
    try {
      reg = await createApp(p.chain, {
        measurement: asset.measurement!,
        ciphertextHash: asset.ciphertextSha256,
        endpoint: p.endpoint,
        price: p.price,
        teeKinds: p.tee,
        appraisalPolicyDocument: encodePolicyDocument(p.policy),
        appraisalPolicyHash: ph,
      });
    } catch (e) {
      await store.remove(asset.id).catch(() => {});
      throw e;
    }
    state.markAssetRegistered(asset.id, reg.appId);
    return {
      appId: reg.appId,
      localId: asset.id,
      measurement: toHex(asset.measurement!),
      ciphertextHash: toHex(asset.ciphertextSha256),
      size: asset.size,
      appraisalPolicyHash: toHex(ph),
      txHash: reg.hash,
    };
  } finally {
    state.close();
  }
}

/**
 * Marks dataset `datasetId` revoked in the profile's agent store (after `revokeDataset` on
 * chain), so the agent neither releases its key nor serves its ciphertext again. False when the
 * profile has no agent store or the store does not hold that dataset.
 */
export function markDatasetRevoked(env: NodeJS.ProcessEnv, profile: string, datasetId: bigint): boolean {
  const db = join(agentHome(profile, env), 'state.db');
  if (!existsSync(db)) return false;
  const state = AgentState.open(db);
  try {
    const a = state.getAssetByChainId('dataset', datasetId);
    if (!a) return false;
    state.markAssetRevoked(a.id);
    return true;
  } finally {
    state.close();
  }
}
