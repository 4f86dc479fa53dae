/** The registered nodes, as the requester's preflight and `ferry nodes ls` read them. */
import type { Address } from 'viem';
import { eventsSince } from '../audit/index.ts';
import { type ChainReader, getNode, type NodeInfo } from '../chain/index.ts';

/** Every registered node (from NodeRegistered events), with its current registry entry. */
export async function listNodes(c: ChainReader): Promise<NodeInfo[]> {
  const events = await eventsSince(c, 0n);
  const seen = new Set<string>();
  const out: NodeInfo[] = [];
  for (const e of events) {
    if (e.eventName !== 'NodeRegistered') continue;
    const a = String(e.args.node);
    if (seen.has(a.toLowerCase())) continue;
    seen.add(a.toLowerCase());
    const n = await getNode(c, a as Address);
    if (n) out.push(n);
  }
  return out;
}
