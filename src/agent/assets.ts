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
import { type Asset, AgentState } from './state.ts';

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

/** Where and as whom an asset is imported: the profile's agent store, and the owner's account. */
type Owner = { env: NodeJS.ProcessEnv; profile: string; secrets: ProfileSecrets; signal?: AbortSignal };

/**
 * The one way an asset enters the owner's store and the chain: encrypt `source` into the
 * profile's agent store, `register` it (the chain action, given the stored asset and the policy
 * document and hash), and mark it registered with the id the chain gave it; a registration that
 * fails removes the stored ciphertext, so the store never holds an asset the chain does not.
 */
async function importAsset<R extends { hash: string }>(
  owner: Owner,
  source: string | Readable,
  kind: 'dataset' | 'app',
  name: string,
  policy: AppraisalPolicy,
  register: (
    asset: Asset,
    policy: { appraisalPolicyDocument: Uint8Array; appraisalPolicyHash: Uint8Array },
  ) => Promise<R>,
  chainIdOf: (r: R) => bigint,
): Promise<{ asset: Asset; reg: R; appraisalPolicyHash: string }> {
  const home = agentHome(owner.profile, owner.env);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const state = AgentState.open(join(home, 'state.db'));
  try {
    const store = agentStore(home, state, owner.secrets.ageIdentity);
    const asset = await store.add(source, { kind, name, signal: owner.signal });
    const appraisalPolicyHash = policyHash(policy);
    let reg: R;
    try {
      reg = await register(asset, {
        appraisalPolicyDocument: encodePolicyDocument(policy),
        appraisalPolicyHash,
      });
    } catch (e) {
      await store.remove(asset.id).catch(() => {});
      throw e;
    }
    state.markAssetRegistered(asset.id, chainIdOf(reg));
    return { asset, reg, appraisalPolicyHash: toHex(appraisalPolicyHash) };
  } finally {
    state.close();
  }
}

/** Encrypts a dataset into the owner's agent store and registers it on chain. */
export async function addDataset(p: AddDatasetParams): Promise<AddedDataset> {
  const { asset, reg, appraisalPolicyHash } = await importAsset(
    p,
    p.source,
    'dataset',
    p.name,
    p.policy,
    (a, policy) =>
      createDataset(p.chain, {
        ciphertextHash: a.ciphertextSha256,
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
          ...policy,
        },
      }),
    (r) => r.datasetId,
  );
  return {
    datasetId: reg.datasetId,
    localId: asset.id,
    ciphertextHash: toHex(asset.ciphertextSha256),
    size: asset.size,
    appraisalPolicyHash,
    txHash: reg.hash,
  };
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
  const { asset, reg, appraisalPolicyHash } = await importAsset(
    p,
    p.file,
    'app',
    p.name,
    p.policy,
    (a, policy) =>
      createApp(p.chain, {
        measurement: a.measurement!,
        ciphertextHash: a.ciphertextSha256,
        endpoint: p.endpoint,
        price: p.price,
        teeKinds: p.tee,
        ...policy,
      }),
    (r) => r.appId,
  );
  return {
    appId: reg.appId,
    localId: asset.id,
    measurement: toHex(asset.measurement!),
    ciphertextHash: toHex(asset.ciphertextSha256),
    size: asset.size,
    appraisalPolicyHash,
    txHash: reg.hash,
  };
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
