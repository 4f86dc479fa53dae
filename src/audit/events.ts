/**
 * Reading one task's history from the chain: its events (from its creation block on, in chain
 * order) and node registry state as of a block. Used by the auditor and the CLI journeys.
 */
import type { Address, Hex } from 'viem';
import {
  type ChainReader,
  type FerryEvent,
  getFerryEvents,
  getNode,
  type NodeInfo,
  nodeRegistryAbi,
} from '../chain/index.ts';

const RANGE = 2000n;

/** Ferry's events in [fromBlock, head], fetched in ranges of 2000 blocks. */
export async function eventsSince(
  c: ChainReader,
  fromBlock: bigint,
  toBlock?: bigint,
): Promise<FerryEvent[]> {
  const head = toBlock ?? (await c.public.getBlockNumber({ cacheTime: 0 }));
  const out: FerryEvent[] = [];
  for (let from = fromBlock; from <= head; from += RANGE) {
    const to = from + RANGE - 1n < head ? from + RANGE - 1n : head;
    out.push(...(await getFerryEvents(c, from, to)));
  }
  return out;
}

/** The Tasks events naming `taskId`, in chain order. */
export function eventsOfTask(events: readonly FerryEvent[], taskId: bigint): FerryEvent[] {
  return events.filter((e) => e.contract === 'Tasks' && e.args.taskId === taskId);
}

/** The events of one attempt of a task (events without an attempt field are excluded). */
export function eventsOfAttempt(
  events: readonly FerryEvent[],
  taskId: bigint,
  attempt: number,
): FerryEvent[] {
  return eventsOfTask(events, taskId).filter(
    (e) => e.args.attempt !== undefined && Number(e.args.attempt) === attempt,
  );
}

/**
 * A node as registered at the end of block `blockNumber` (its stake and VRF key frozen for a
 * task created after it). Falls back to the current state when the endpoint keeps no history;
 * `historical` says which one was read.
 */
export async function nodeAt(
  c: ChainReader,
  node: Address | string,
  blockNumber: bigint,
): Promise<{ node: NodeInfo | null; historical: boolean }> {
  try {
    const n = await c.public.readContract({
      address: c.contracts.NodeRegistry,
      abi: nodeRegistryAbi,
      functionName: 'getNode',
      args: [node as Address],
      blockNumber,
    });
    if (n.status === 0) return { node: null, historical: true };
    const current = await getNode(c, node as Address);
    if (!current) return { node: null, historical: true };
    return {
      node: {
        ...current,
        stake: n.stake,
        vrfPublicKey: n.vrfPublicKey as Hex,
        signingKey: n.signingKey as Hex,
        changedBlock: n.changedBlock,
      },
      historical: true,
    };
  } catch {
    return { node: await getNode(c, node as Address), historical: false };
  }
}
