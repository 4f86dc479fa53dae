/** Creating a task for the requester: the input's encoding, the windows, and refusals in words. */
import { createHash } from 'node:crypto';
import { type ChainWriter, createTask } from '../chain/index.ts';
import { encodeCanonical, FerryError, toFerryError } from '../kernel/index.ts';
import type { ProfileSecrets } from '../profile/index.ts';

const sha256 = (b: Uint8Array | string) => new Uint8Array(createHash('sha256').update(b).digest());

export type TaskWindows = { claim: number; evidence: number; vote: number; run: number };

export const DEFAULT_WINDOWS: TaskWindows = { claim: 3, evidence: 30, vote: 30, run: 60 };

/** The task's input hash: SHA-256 of the canonical CBOR array of the app's arguments. */
export function inputHashOf(args: string[]): Uint8Array {
  return sha256(encodeCanonical(args));
}

/**
 * The app's arguments as a task carries them (the encoder of `decodeTaskInput`, src/protocol):
 * their hash, and the location that holds them inline (`data:application/json,…`, or empty
 * for none).
 */
export function encodeTaskInput(args: string[]): { inputHash: Uint8Array; inputLocation: string } {
  return {
    inputHash: inputHashOf(args),
    inputLocation: args.length ? `data:application/json,${encodeURIComponent(JSON.stringify(args))}` : '',
  };
}

/** Creates a task for the requester; the result is sealed to the profile's age recipient. */
export async function createTaskFor(p: {
  chain: ChainWriter;
  secrets: ProfileSecrets;
  appId: bigint;
  datasetIds: bigint[];
  args: string[];
  fee: bigint;
  ttlSeconds: number;
  windows?: TaskWindows;
}): Promise<{ taskId: bigint; txHash: string; startedAt: number }> {
  const startedAt = Date.now();
  const w = p.windows ?? DEFAULT_WINDOWS;
  const now = Number((await p.chain.public.getBlock()).timestamp);
  try {
    const r = await createTask(p.chain, {
      appId: p.appId,
      datasetIds: [...p.datasetIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      ...encodeTaskInput(p.args),
      resultRecipient: p.secrets.ageIdentity.publicKey,
      fee: p.fee,
      expiresAt: now + p.ttlSeconds,
      claimWindow: w.claim,
      evidenceWindow: w.evidence,
      voteWindow: w.vote,
      runWindow: w.run,
    });
    return { taskId: r.taskId, txHash: r.hash, startedAt };
  } catch (e) {
    throw explainCreateError(e, p.appId);
  }
}

/** A contract refusal at creation, in words (the code stays the CHAIN_* one). */
export function explainCreateError(e: unknown, appId: bigint): FerryError {
  const fe = toFerryError(e);
  const revert = (fe.details?.revert as string | undefined) ?? '';
  const words: Record<string, string> = {
    AppNotAllowed: "app not allowed by the dataset's policy",
    RequesterNotAllowed: "requester not allowed by the dataset's policy",
    NoCommonTeeKind: 'the datasets share no TEE kind',
    UsesExhausted: 'the dataset has no uses left',
    AssetExpired: 'the dataset has expired',
    AssetRevoked: 'the app or a dataset is revoked',
    InsufficientFee: 'the fee does not cover the prices',
    UnknownApp: `app ${appId} does not exist`,
    UnknownDataset: 'a dataset does not exist',
  };
  const w = words[revert];
  if (!w) return fe;
  return new FerryError(fe.code, `${w}: ${fe.message}`, { hints: fe.hints, cause: fe, details: fe.details });
}
