/**
 * The node registry as a task sees it (docs/protocol.md §11.1, §13.8). Tasks lets a node claim
 * or vote only when its registry entry did not change since before the task was created
 * (`changedBlock < task.createdBlock`), so the stake, VRF key and operator that count for a task
 * are those at the end of block `createdBlock - 1`. A node that changed later (stake added,
 * unbonded, slashed, keys or operator updated) is read as it was then, from the chain's state
 * history; a node whose entry has not changed since is read as it is now (no history needed).
 */
import type { Address } from 'viem';
import { type ChainReader, getNode, type NodeInfo, type Role, type TaskInfo } from '../chain/index.ts';

/**
 * The node's registry entry at the end of block `task.createdBlock - 1`, or null when it was
 * not registered then. Reads the current entry first and the historical one only when the
 * node changed at or after `createdBlock`; that read needs an endpoint keeping state history
 * (anvil, an archive node) and throws CHAIN_UNAVAILABLE / CHAIN_REVERTED otherwise.
 */
export async function nodeAtCreation(
  c: ChainReader,
  node: Address | string,
  task: Pick<TaskInfo, 'createdBlock'>,
): Promise<NodeInfo | null> {
  if (task.createdBlock <= 0n) return null;
  const current = await getNode(c, node as Address);
  if (current && current.changedBlock < task.createdBlock) return current;
  // Unregistered now: never registered (registration is permanent), unless the read raced a
  // registration; in both cases it was not registered before the task.
  if (!current) return null;
  return getNode(c, node as Address, { blockNumber: task.createdBlock - 1n });
}

/**
 * True when the entry (as of `nodeAtCreation`) lets the node act for the task in `role`:
 * registered, active, with the role. Region, TEE kind and exclusion matter for claims only
 * and are checked by the contract at the claim.
 */
export function eligibleAtCreation(node: NodeInfo | null, role: Role): node is NodeInfo {
  return node !== null && node.status === 'active' && node.roles.includes(role);
}

/**
 * The stake, wei, that counts for `node` in `task` (sortition seats of a verifier): its stake
 * at the end of block `createdBlock - 1` when it was then an active node with `role`
 * (default verifier), otherwise 0 — a vote from a node that was not eligible then counts for
 * nothing.
 */
export async function stakeAt(
  c: ChainReader,
  node: Address | string,
  task: Pick<TaskInfo, 'createdBlock'>,
  role: Role = 'verifier',
): Promise<bigint> {
  const n = await nodeAtCreation(c, node, task);
  return eligibleAtCreation(n, role) ? n.stake : 0n;
}
