/**
 * Asset actions: datasets and apps (protocol.md section 11.2). Writes resolve once mined;
 * refusals are FerryErrors with CHAIN_* codes.
 */
import { createHash } from 'node:crypto';
import { type Address, decodeEventLog, type Hex } from 'viem';
import { FerryError } from '../kernel/index.ts';
import { assetsAbi } from './abi.ts';
import { sendTx } from './client.ts';
import { address, hexBytes, smallUint, text, uint } from './encode.ts';
import { toChainError } from './errors.ts';
import {
  type ChainReader,
  type ChainWriter,
  hexToRegion,
  maskToTeeKinds,
  regionToHex,
  type TeeKind,
  teeKindsToMask,
  type TxResult,
} from './types.ts';

export type DatasetPolicy = {
  /** Allowed app measurements (32-byte SHA-256 of the WASM module), or "any". */
  allowedApps: (Uint8Array | Hex)[] | 'any';
  /** Allowed executor regions (ISO 3166-1 alpha-2); empty: any region. At most 64. */
  allowedRegions: string[];
  teeKinds: TeeKind[];
  /** Expected committee size. */
  tau: number;
  /** Pass seats needed (1..tau). */
  threshold: number;
  /** 0: unlimited. */
  maxUses: number;
  /** Unix seconds; 0: never. */
  expiresAt: number;
  /** Requester allow-list; empty: anyone. */
  requesters: Address[];
  /**
   * The appraisal policy document (section 9): tagged canonical CBOR, 1 to 16384 bytes,
   * published in the DatasetRegistered / DatasetPolicyUpdated event.
   */
  appraisalPolicyDocument: Uint8Array | Hex;
  /**
   * SHA-256 of the document, 32 bytes. Computed from the document when absent; the contract
   * refuses a hash that is not the document's (CHAIN_INVALID_PARAMETER).
   */
  appraisalPolicyHash?: Uint8Array | Hex;
};

/** Largest appraisal policy document the Assets contract accepts, bytes. */
export const MAX_POLICY_DOCUMENT = 16384;

function encodePolicyDocument(document: Uint8Array | Hex, what: string): Hex {
  const doc = hexBytes(document, what);
  const n = (doc.length - 2) / 2;
  if (n === 0 || n > MAX_POLICY_DOCUMENT) {
    throw new FerryError('INVALID_ARGUMENT', `${what}: wrong length`, {
      hints: [`expected: 1 to ${MAX_POLICY_DOCUMENT} bytes`, `got: ${n} bytes`],
    });
  }
  return doc;
}

/** The given appraisal policy hash (32 bytes), or the document's SHA-256 when absent. */
function encodePolicyHash(document: Uint8Array | Hex, hash: Uint8Array | Hex | undefined, what: string): Hex {
  if (hash !== undefined) return hexBytes(hash, `${what}Hash`, 32);
  const doc = encodePolicyDocument(document, `${what}Document`);
  return `0x${createHash('sha256')
    .update(Buffer.from(doc.slice(2), 'hex'))
    .digest('hex')}` as Hex;
}

function encodePolicy(p: DatasetPolicy) {
  const anyApp = p.allowedApps === 'any';
  if (!anyApp && (!Array.isArray(p.allowedApps) || p.allowedApps.length === 0)) {
    throw new FerryError(
      'INVALID_ARGUMENT',
      'policy.allowedApps: expected "any" or at least one measurement',
    );
  }
  return {
    anyApp,
    allowedApps: anyApp
      ? []
      : (p.allowedApps as (Uint8Array | Hex)[]).map((m, i) => hexBytes(m, `policy.allowedApps[${i}]`, 32)),
    allowedRegions: p.allowedRegions.map((r, i) => regionToHex(r, `policy.allowedRegions[${i}]`)),
    teeKinds: teeKindsToMask(p.teeKinds, 'policy.teeKinds'),
    tau: smallUint(p.tau, 'policy.tau', 65535),
    threshold: smallUint(p.threshold, 'policy.threshold', 65535),
    maxUses: smallUint(p.maxUses, 'policy.maxUses', 2 ** 32 - 1),
    expiresAt: smallUint(p.expiresAt, 'policy.expiresAt', 2 ** 40 - 1),
    requesters: p.requesters.map((a, i) => address(a, `policy.requesters[${i}]`)),
    appraisalPolicyHash: encodePolicyHash(
      p.appraisalPolicyDocument,
      p.appraisalPolicyHash,
      'policy.appraisalPolicy',
    ),
  };
}

function idFromLogs(logs: readonly { topics: readonly Hex[]; data: Hex }[], eventName: string): bigint {
  for (const log of logs) {
    try {
      const ev = decodeEventLog({ abi: assetsAbi, data: log.data, topics: log.topics as [Hex, ...Hex[]] });
      if (ev.eventName === eventName) {
        const args = ev.args as { datasetId?: bigint; appId?: bigint };
        return (args.datasetId ?? args.appId) as bigint;
      }
    } catch {
      // another contract's log
    }
  }
  throw new FerryError('INTERNAL', `${eventName} event missing from the receipt`);
}

/**
 * Registers a dataset with its policy and appraisal policy document; resolves with its id.
 * `price` (wei per use) is fixed forever.
 */
export async function createDataset(
  c: ChainWriter,
  p: { ciphertextHash: Uint8Array | Hex; endpoint: string; price: bigint; policy: DatasetPolicy },
): Promise<TxResult & { datasetId: bigint }> {
  const r = await sendTx(c, {
    address: c.contracts.Assets,
    abi: assetsAbi,
    functionName: 'registerDataset',
    args: [
      hexBytes(p.ciphertextHash, 'ciphertextHash', 32),
      text(p.endpoint, 'endpoint'),
      uint(p.price, 'price', 2n ** 128n - 1n),
      encodePolicy(p.policy),
      encodePolicyDocument(p.policy.appraisalPolicyDocument, 'policy.appraisalPolicyDocument'),
    ],
  });
  return {
    hash: r.hash,
    blockNumber: r.blockNumber,
    gasUsed: r.gasUsed,
    datasetId: idFromLogs(r.logs, 'DatasetRegistered'),
  };
}

/** Replaces a dataset's ciphertext hash and endpoint (owner only). */
export async function updateDataset(
  c: ChainWriter,
  p: { datasetId: bigint; ciphertextHash: Uint8Array | Hex; endpoint: string },
): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.Assets,
    abi: assetsAbi,
    functionName: 'updateDataset',
    args: [
      uint(p.datasetId, 'datasetId'),
      hexBytes(p.ciphertextHash, 'ciphertextHash', 32),
      text(p.endpoint, 'endpoint'),
    ],
  });
}

/** Replaces a dataset's whole policy and appraisal policy document (owner only). */
export async function updateDatasetPolicy(
  c: ChainWriter,
  p: { datasetId: bigint; policy: DatasetPolicy },
): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.Assets,
    abi: assetsAbi,
    functionName: 'updateDatasetPolicy',
    args: [
      uint(p.datasetId, 'datasetId'),
      encodePolicy(p.policy),
      encodePolicyDocument(p.policy.appraisalPolicyDocument, 'policy.appraisalPolicyDocument'),
    ],
  });
}

export async function revokeDataset(c: ChainWriter, datasetId: bigint): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.Assets,
    abi: assetsAbi,
    functionName: 'revokeDataset',
    args: [uint(datasetId, 'datasetId')],
  });
}

/** What an app owner requires of every task running its app (protocol.md section 11.2). */
export type AppPolicy = {
  /** TEE kinds the app owner allows (at least one); a task's kinds are the app's AND its datasets'. */
  teeKinds: TeeKind[];
  /**
   * The app owner's appraisal policy document (section 9): tagged canonical CBOR, 1 to 16384
   * bytes, published in the AppRegistered / AppPolicyUpdated event.
   */
  appraisalPolicyDocument: Uint8Array | Hex;
  /**
   * SHA-256 of the document, 32 bytes. Computed from the document when absent; the contract
   * refuses a hash that is not the document's (CHAIN_INVALID_PARAMETER).
   */
  appraisalPolicyHash?: Uint8Array | Hex;
};

function encodeAppPolicy(p: AppPolicy): [number, Hex, Hex] {
  return [
    teeKindsToMask(p.teeKinds, 'teeKinds'),
    encodePolicyHash(p.appraisalPolicyDocument, p.appraisalPolicyHash, 'appraisalPolicy'),
    encodePolicyDocument(p.appraisalPolicyDocument, 'appraisalPolicyDocument'),
  ];
}

/**
 * Registers an app with its TEE kinds and appraisal policy document; resolves with its id.
 * `price` (wei per task) is fixed forever.
 */
export async function createApp(
  c: ChainWriter,
  p: {
    measurement: Uint8Array | Hex;
    ciphertextHash: Uint8Array | Hex;
    endpoint: string;
    price: bigint;
  } & AppPolicy,
): Promise<TxResult & { appId: bigint }> {
  const r = await sendTx(c, {
    address: c.contracts.Assets,
    abi: assetsAbi,
    functionName: 'registerApp',
    args: [
      hexBytes(p.measurement, 'measurement', 32),
      hexBytes(p.ciphertextHash, 'ciphertextHash', 32),
      text(p.endpoint, 'endpoint'),
      uint(p.price, 'price', 2n ** 88n - 1n),
      ...encodeAppPolicy(p),
    ],
  });
  return {
    hash: r.hash,
    blockNumber: r.blockNumber,
    gasUsed: r.gasUsed,
    appId: idFromLogs(r.logs, 'AppRegistered'),
  };
}

/**
 * Replaces an app's TEE kinds and appraisal policy document (owner only, not after
 * revocation); the app's policyEpoch goes up by one. Tasks created before keep their TEE kinds.
 */
export async function updateAppPolicy(c: ChainWriter, p: { appId: bigint } & AppPolicy): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.Assets,
    abi: assetsAbi,
    functionName: 'updateAppPolicy',
    args: [uint(p.appId, 'appId'), ...encodeAppPolicy(p)],
  });
}

export async function updateApp(
  c: ChainWriter,
  p: { appId: bigint; ciphertextHash: Uint8Array | Hex; endpoint: string },
): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.Assets,
    abi: assetsAbi,
    functionName: 'updateApp',
    args: [
      uint(p.appId, 'appId'),
      hexBytes(p.ciphertextHash, 'ciphertextHash', 32),
      text(p.endpoint, 'endpoint'),
    ],
  });
}

export async function revokeApp(c: ChainWriter, appId: bigint): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.Assets,
    abi: assetsAbi,
    functionName: 'revokeApp',
    args: [uint(appId, 'appId')],
  });
}

export type DatasetInfo = {
  datasetId: bigint;
  owner: Address;
  ciphertextHash: Hex;
  endpoint: string;
  price: bigint;
  revoked: boolean;
  uses: number;
  policyEpoch: number;
  policy: {
    anyApp: boolean;
    allowedRegions: string[];
    teeKinds: TeeKind[];
    tau: number;
    threshold: number;
    maxUses: number;
    expiresAt: number;
    restrictRequesters: boolean;
    appraisalPolicyHash: Hex;
  };
};

/** Which state to read: the latest (default) or the state after block `blockNumber`. */
export type ReadAt = { blockNumber?: bigint };

function readAt(opts: ReadAt): { blockNumber?: bigint } {
  return opts.blockNumber === undefined ? {} : { blockNumber: uint(opts.blockNumber, 'blockNumber') };
}

/**
 * The dataset, or null when no dataset has this id (at that block). `opts.blockNumber`: read
 * the state as of that block (e.g. a task's creation block); the endpoint must keep that state
 * (an archive node, or recent enough), else CHAIN_UNAVAILABLE.
 */
export async function getDataset(
  c: ChainReader,
  datasetId: bigint,
  opts: ReadAt = {},
): Promise<DatasetInfo | null> {
  const id = uint(datasetId, 'datasetId');
  const at = readAt(opts);
  try {
    const d = await c.public.readContract({
      address: c.contracts.Assets,
      abi: assetsAbi,
      functionName: 'getDataset',
      args: [id],
      ...at,
    });
    if (d.owner === '0x0000000000000000000000000000000000000000') return null;
    return {
      datasetId,
      owner: d.owner,
      ciphertextHash: d.ciphertextHash,
      endpoint: d.endpoint,
      price: d.price,
      revoked: d.revoked,
      uses: d.uses,
      policyEpoch: d.policyEpoch,
      policy: {
        anyApp: d.anyApp,
        allowedRegions: d.allowedRegions.map(hexToRegion),
        teeKinds: maskToTeeKinds(d.teeKinds),
        tau: d.tau,
        threshold: d.threshold,
        maxUses: d.maxUses,
        expiresAt: d.expiresAt,
        restrictRequesters: d.restrictRequesters,
        appraisalPolicyHash: d.appraisalPolicyHash,
      },
    };
  } catch (e) {
    throw toChainError(e, 'getDataset');
  }
}

/** Whether the dataset's current policy allows an app measurement / a requester. */
export async function isAllowed(
  c: ChainReader,
  p: { datasetId: bigint; measurement?: Uint8Array | Hex; requester?: Address },
): Promise<{ app?: boolean; requester?: boolean }> {
  try {
    const out: { app?: boolean; requester?: boolean } = {};
    if (p.measurement !== undefined) {
      out.app = await c.public.readContract({
        address: c.contracts.Assets,
        abi: assetsAbi,
        functionName: 'isAppAllowed',
        args: [uint(p.datasetId, 'datasetId'), hexBytes(p.measurement, 'measurement', 32)],
      });
    }
    if (p.requester !== undefined) {
      out.requester = await c.public.readContract({
        address: c.contracts.Assets,
        abi: assetsAbi,
        functionName: 'isRequesterAllowed',
        args: [uint(p.datasetId, 'datasetId'), address(p.requester, 'requester')],
      });
    }
    return out;
  } catch (e) {
    throw toChainError(e, 'isAllowed');
  }
}

export type AppInfo = {
  appId: bigint;
  owner: Address;
  measurement: Hex;
  ciphertextHash: Hex;
  endpoint: string;
  price: bigint;
  revoked: boolean;
  /** TEE kinds the app owner allows. */
  teeKinds: TeeKind[];
  /** SHA-256 of the app owner's appraisal policy document (section 9). */
  appraisalPolicyHash: Hex;
  /** 0 at registration, +1 per updateAppPolicy. */
  policyEpoch: number;
};

/**
 * How many datasets (`kind` 'dataset') or apps (`kind` 'app') were ever registered, as of
 * `opts.blockNumber` or the head: their ids are 1..count (a removed one reads as null).
 */
export async function getAssetCount(
  c: ChainReader,
  kind: 'dataset' | 'app',
  opts: ReadAt = {},
): Promise<bigint> {
  if (kind !== 'dataset' && kind !== 'app') {
    throw new FerryError('INVALID_ARGUMENT', `kind: expected 'dataset' or 'app', got ${String(kind)}`);
  }
  const at = readAt(opts);
  try {
    return await c.public.readContract({
      address: c.contracts.Assets,
      abi: assetsAbi,
      functionName: kind === 'dataset' ? 'datasetCount' : 'appCount',
      ...at,
    });
  } catch (e) {
    throw toChainError(e, 'getAssetCount');
  }
}

/**
 * The app, or null when no app has this id (at that block). `opts.blockNumber` as for
 * getDataset.
 */
export async function getApp(c: ChainReader, appId: bigint, opts: ReadAt = {}): Promise<AppInfo | null> {
  const id = uint(appId, 'appId');
  const at = readAt(opts);
  try {
    const a = await c.public.readContract({
      address: c.contracts.Assets,
      abi: assetsAbi,
      functionName: 'getApp',
      args: [id],
      ...at,
    });
    if (a.owner === '0x0000000000000000000000000000000000000000') return null;
    return {
      appId,
      owner: a.owner,
      measurement: a.measurement,
      ciphertextHash: a.ciphertextHash,
      endpoint: a.endpoint,
      price: a.price,
      revoked: a.revoked,
      teeKinds: maskToTeeKinds(a.teeKinds),
      appraisalPolicyHash: a.appraisalPolicyHash,
      policyEpoch: a.policyEpoch,
    };
  } catch (e) {
    throw toChainError(e, 'getApp');
  }
}

/** One appraisal policy document an asset published. */
export type PolicyDocumentEvent = {
  assetKind: 'dataset' | 'app';
  /** The dataset's or app's id. */
  assetId: bigint;
  /** The dataset's id (datasets only; the same as assetId). */
  datasetId?: bigint;
  /** 0 for the registration, then 1, 2... for each policy update. */
  policyEpoch: number;
  appraisalPolicyHash: Hex;
  document: Uint8Array;
  blockNumber: bigint;
};

/**
 * Every appraisal policy document an asset published, oldest first, read from its events in
 * [fromBlock (default 0), toBlock (default latest)]: DatasetRegistered and DatasetPolicyUpdated
 * for dataset `assetId` (the default, `assetKind: 'dataset'`), AppRegistered and
 * AppPolicyUpdated for app `assetId` (`assetKind: 'app'`). Empty when the asset does not
 * exist. CHAIN_UNAVAILABLE when the endpoint cannot be read.
 */
export async function getPolicyDocuments(
  c: ChainReader,
  assetId: bigint,
  opts: { assetKind?: 'dataset' | 'app'; fromBlock?: bigint; toBlock?: bigint } = {},
): Promise<PolicyDocumentEvent[]> {
  const kind = opts.assetKind ?? 'dataset';
  if (kind !== 'dataset' && kind !== 'app') {
    throw new FerryError('INVALID_ARGUMENT', 'opts.assetKind: expected "dataset" or "app"', {
      hints: [`got: ${String(kind).slice(0, 40)}`],
    });
  }
  const id = uint(assetId, kind === 'app' ? 'appId' : 'datasetId');
  const range = { fromBlock: opts.fromBlock ?? 0n, toBlock: opts.toBlock ?? ('latest' as const) };
  const out: (PolicyDocumentEvent & { logIndex: number })[] = [];
  const push = (
    e: { blockNumber: bigint; logIndex: number },
    policyEpoch: number,
    appraisalPolicyHash: Hex,
    document: Hex,
  ) =>
    out.push({
      assetKind: kind,
      assetId: id,
      ...(kind === 'dataset' ? { datasetId: id } : {}),
      policyEpoch,
      appraisalPolicyHash,
      document: new Uint8Array(Buffer.from(document.slice(2), 'hex')),
      blockNumber: e.blockNumber,
      logIndex: e.logIndex,
    });
  try {
    if (kind === 'dataset') {
      const [registered, updated] = await Promise.all([
        c.public.getContractEvents({
          address: c.contracts.Assets,
          abi: assetsAbi,
          eventName: 'DatasetRegistered',
          args: { datasetId: id },
          strict: true,
          ...range,
        }),
        c.public.getContractEvents({
          address: c.contracts.Assets,
          abi: assetsAbi,
          eventName: 'DatasetPolicyUpdated',
          args: { datasetId: id },
          strict: true,
          ...range,
        }),
      ]);
      for (const e of registered) push(e, 0, e.args.policy.appraisalPolicyHash, e.args.appraisalPolicy);
      for (const e of updated)
        push(e, e.args.policyEpoch, e.args.policy.appraisalPolicyHash, e.args.appraisalPolicy);
    } else {
      const [registered, updated] = await Promise.all([
        c.public.getContractEvents({
          address: c.contracts.Assets,
          abi: assetsAbi,
          eventName: 'AppRegistered',
          args: { appId: id },
          strict: true,
          ...range,
        }),
        c.public.getContractEvents({
          address: c.contracts.Assets,
          abi: assetsAbi,
          eventName: 'AppPolicyUpdated',
          args: { appId: id },
          strict: true,
          ...range,
        }),
      ]);
      for (const e of registered) push(e, 0, e.args.appraisalPolicyHash, e.args.appraisalPolicy);
      for (const e of updated)
        push(e, e.args.policyEpoch, e.args.appraisalPolicyHash, e.args.appraisalPolicy);
    }
  } catch (e) {
    throw toChainError(e, 'getPolicyDocuments');
  }
  out.sort((a, b) =>
    a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1,
  );
  return out.map(({ logIndex: _, ...d }) => d);
}
