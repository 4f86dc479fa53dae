/**
 * Node registry actions (protocol.md section 11.1). Each write takes a ChainWriter, resolves
 * to a TxResult once mined, and throws a FerryError (CHAIN_* code) when the contract refuses.
 */
import type { Address, Hex } from 'viem';
import { nodeRegistryAbi } from './abi.ts';
import { sendTx } from './client.ts';
import { toChainError } from './errors.ts';
import { address, hexBytes, text, uint } from './encode.ts';
import {
  type ChainReader,
  type ChainWriter,
  hexToRegion,
  maskToRoles,
  maskToTeeKinds,
  NODE_STATUSES,
  type NodeStatus,
  type Role,
  regionToHex,
  rolesToMask,
  type TeeKind,
  teeKindsToMask,
  type TxResult,
} from './types.ts';

export type NodeParams = {
  roles: Role[];
  /** ISO 3166-1 alpha-2, e.g. "DE". */
  region: string;
  teeKinds: TeeKind[];
  /** 32-byte RFC 9381 ECVRF-EDWARDS25519 public key. */
  vrfPublicKey: Uint8Array | Hex;
  /** 32-byte Ed25519 node signing key. */
  signingKey: Uint8Array | Hex;
  /** How peers reach the node (http(s) URL), at most 256 bytes. */
  endpoint: string;
  /**
   * Who runs the node (self-declared, protocol.md section 11.1): verifiers never judge an
   * executor of their own operator. Absent or the zero address: the node is its own operator.
   */
  operator?: Address;
};

const ZERO_ADDRESS: Address = '0x0000000000000000000000000000000000000000';

function encodeNodeParams(p: NodeParams) {
  return {
    roles: rolesToMask(p.roles),
    region: regionToHex(p.region),
    teeKinds: teeKindsToMask(p.teeKinds),
    vrfPublicKey: hexBytes(p.vrfPublicKey, 'vrfPublicKey', 32),
    signingKey: hexBytes(p.signingKey, 'signingKey', 32),
    endpoint: text(p.endpoint, 'endpoint'),
    operator: p.operator === undefined ? ZERO_ADDRESS : address(p.operator, 'operator'),
  };
}

/** Registers the writer's account as a node with `stake` wei (>= the registry's minStake). */
export async function registerNode(c: ChainWriter, p: NodeParams & { stake: bigint }): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'register',
    args: [encodeNodeParams(p)],
    value: uint(p.stake, 'stake'),
  });
}

/** Replaces roles, region, TEE kinds, keys, endpoint and operator (eligibility restarts, see 11.1). */
export async function updateNode(c: ChainWriter, p: NodeParams): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'update',
    args: [encodeNodeParams(p)],
  });
}

export async function setNodeEndpoint(c: ChainWriter, endpoint: string): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'setEndpoint',
    args: [text(endpoint, 'endpoint')],
  });
}

export async function addStake(c: ChainWriter, amount: bigint): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'addStake',
    args: [],
    value: uint(amount, 'amount'),
  });
}

/**
 * Moves `amount` of stake to unbonding. Refused with CHAIN_STAKE_LOCKED while the node executes
 * an open attempt (as are addStake and withdrawUnbonded).
 */
export async function requestUnbond(c: ChainWriter, amount: bigint): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'requestUnbond',
    args: [uint(amount, 'amount', 2n ** 128n - 1n)],
  });
}

export async function withdrawUnbonded(c: ChainWriter): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'withdrawUnbonded',
    args: [],
  });
}

export async function setNodeActive(c: ChainWriter, active: boolean): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'setActive',
    args: [active === true],
  });
}

/**
 * A jailed node returns to active once its jail has ended (NodeRegistry.unjail). Refused with
 * CHAIN_NOT_JAILED when the node is not jailed, CHAIN_TOO_EARLY before `jailedUntil`
 * (`details.args[0]`), CHAIN_INSUFFICIENT_STAKE when a slash left less than the minimum stake
 * (addStake first).
 */
export async function unjailNode(c: ChainWriter): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'unjail',
    args: [],
  });
}

export async function heartbeat(c: ChainWriter): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'heartbeat',
    args: [],
  });
}

/** Marks another node inactive once its heartbeat is older than the registry's TTL. */
export async function markStale(c: ChainWriter, node: Address): Promise<TxResult> {
  return sendTx(c, {
    address: c.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'markStale',
    args: [address(node, 'node')],
  });
}

export type NodeInfo = {
  address: Address;
  roles: Role[];
  status: NodeStatus;
  teeKinds: TeeKind[];
  region: string;
  changedBlock: bigint;
  lastHeartbeat: number;
  /** Unix seconds until which a jailed node stays jailed (0: never jailed). */
  jailedUntil: number;
  /** The task whose penalty jailed the node last, or null when it was never jailed. */
  jailedTask: bigint | null;
  /** Attempts the node executes that have not ended: while > 0 its stake is locked. */
  openAttempts: number;
  stake: bigint;
  unbonding: bigint;
  unbondingAt: number;
  vrfPublicKey: Hex;
  signingKey: Hex;
  endpoint: string;
  /** The node's operator: the declared one, or the node's own address when none was declared. */
  operator: Address;
};

/**
 * The node registered at `node`, or null when it is not registered. With `blockNumber`, the
 * registry entry as it was at the end of that block (the endpoint must keep state history, as
 * anvil and archive nodes do; otherwise CHAIN_UNAVAILABLE or CHAIN_REVERTED).
 */
export async function getNode(
  c: ChainReader,
  node: Address,
  opts: { blockNumber?: bigint } = {},
): Promise<NodeInfo | null> {
  let n: Awaited<ReturnType<typeof readNode>>;
  try {
    n = await readNode(c, address(node, 'node'), opts.blockNumber);
  } catch (e) {
    throw toChainError(e, 'getNode');
  }
  return nodeInfo(node, n);
}

/** Decodes a getNode result; null when the node is not registered (status none). */
function nodeInfo(node: Address, n: Awaited<ReturnType<typeof readNode>>): NodeInfo | null {
  if (n.status === 0) return null;
  return {
    address: node,
    roles: maskToRoles(n.roles),
    status: NODE_STATUSES[n.status] ?? 'none',
    teeKinds: maskToTeeKinds(n.teeKinds),
    region: hexToRegion(n.region),
    changedBlock: n.changedBlock,
    lastHeartbeat: n.lastHeartbeat,
    jailedUntil: n.jailedUntil,
    jailedTask: n.jailedTask === 0 ? null : BigInt(n.jailedTask),
    openAttempts: n.openAttempts,
    stake: n.stake,
    unbonding: n.unbonding,
    unbondingAt: n.unbondingAt,
    vrfPublicKey: n.vrfPublicKey,
    signingKey: n.signingKey,
    endpoint: n.endpoint,
    operator: n.operator.toLowerCase() === ZERO_ADDRESS ? node : n.operator,
  };
}

function readNode(c: ChainReader, node: Address, blockNumber?: bigint) {
  return c.public.readContract({
    address: c.contracts.NodeRegistry,
    abi: nodeRegistryAbi,
    functionName: 'getNode',
    args: [node],
    ...(blockNumber === undefined ? {} : { blockNumber: uint(blockNumber, 'blockNumber', 2n ** 64n - 1n) }),
  });
}

/** True when the two nodes have the same operator (declared, or self when none is declared). */
export function sameOperator(a: Pick<NodeInfo, 'operator'>, b: Pick<NodeInfo, 'operator'>): boolean {
  return a.operator.toLowerCase() === b.operator.toLowerCase();
}

/** Slashed stake burnt so far, wei (held by the registry, which can never pay it out). */
export async function getBurned(c: ChainReader): Promise<bigint> {
  try {
    return await c.public.readContract({
      address: c.contracts.NodeRegistry,
      abi: nodeRegistryAbi,
      functionName: 'burned',
    });
  } catch (e) {
    throw toChainError(e, 'getBurned');
  }
}

/** Total stake of active executors and of active verifiers, wei. */
export async function getStakeTotals(
  c: ChainReader,
): Promise<{ executorStake: bigint; verifierStake: bigint }> {
  try {
    const [executorStake, verifierStake] = await c.public.readContract({
      address: c.contracts.NodeRegistry,
      abi: nodeRegistryAbi,
      functionName: 'totals',
    });
    return { executorStake, verifierStake };
  } catch (e) {
    throw toChainError(e, 'getStakeTotals');
  }
}
