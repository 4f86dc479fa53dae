/**
 * Listings read from the registry's events (docs/protocol.md §11.1, §11.7): the nodes that ever
 * registered. A scan starts at the block the registry was deployed in, never at block 0: no
 * NodeRegistered event can be older than the contract that emits it.
 *
 * The deployment block is not recorded anywhere a reader can trust (a network is given by its
 * contract addresses alone), so it is read from the chain: the first block at whose end the
 * registry has code (`eth_getCode` at past blocks, bisected: about log2(head) calls, once per
 * client and address). That needs an endpoint keeping state history (anvil, an archive node);
 * where the past cannot be read, the scan starts at block 0, which misses nothing either.
 */
import type { Address } from 'viem';
import { FerryError } from '../kernel/index.ts';
import { nodeRegistryAbi } from './abi.ts';
import { toChainError } from './errors.ts';
import { getNode, type NodeInfo } from './nodes.ts';
import type { ChainReader } from './types.ts';

const deployed = new WeakMap<object, Map<string, bigint>>();

/**
 * The block in which the contract at `address` was deployed (the first block at whose end it
 * has code), or 0n when past state cannot be read. CHAIN_UNAVAILABLE when the endpoint cannot
 * be read at all; CHAIN_NOT_FOUND when there is no contract at `address` now.
 */
export async function deploymentBlock(c: ChainReader, address: Address): Promise<bigint> {
  const cache = deployed.get(c.public) ?? new Map<string, bigint>();
  deployed.set(c.public, cache);
  const known = cache.get(address.toLowerCase());
  if (known !== undefined) return known;
  let head: bigint;
  let now: string | undefined;
  try {
    head = await c.public.getBlockNumber({ cacheTime: 0 });
    now = await c.public.getCode({ address, blockNumber: head });
  } catch (e) {
    throw toChainError(e, 'eth_getCode');
  }
  if (!now || now === '0x') {
    throw new FerryError('CHAIN_NOT_FOUND', `no contract at ${address}`, {
      hints: ['check the contract addresses (--contracts, FERRY_CONTRACTS or devnet.json)'],
    });
  }
  // Invariant: code at the end of `hi`; none at the end of `lo - 1` (or lo = 0).
  let lo = 0n;
  let hi = head;
  try {
    while (lo < hi) {
      const mid = (lo + hi) / 2n;
      const code = await c.public.getCode({ address, blockNumber: mid });
      if (code && code !== '0x') hi = mid;
      else lo = mid + 1n;
    }
  } catch {
    // The endpoint keeps no state that old: scan from the genesis block.
    lo = 0n;
  }
  cache.set(address.toLowerCase(), lo);
  return lo;
}

/**
 * Every node that registered (NodeRegistered events of the registry, read from its deployment
 * block on), each once, in registration order, with its current registry entry. `fromBlock`
 * overrides where the scan starts (it must not be after the registry's deployment).
 */
export async function listNodes(c: ChainReader, opts: { fromBlock?: bigint } = {}): Promise<NodeInfo[]> {
  const fromBlock = opts.fromBlock ?? (await deploymentBlock(c, c.contracts.NodeRegistry));
  let logs: { args: { node?: Address } }[];
  try {
    logs = await c.public.getContractEvents({
      address: c.contracts.NodeRegistry,
      abi: nodeRegistryAbi,
      eventName: 'NodeRegistered',
      fromBlock,
      toBlock: 'latest',
    });
  } catch (e) {
    throw toChainError(e, 'eth_getLogs');
  }
  const seen = new Set<string>();
  const out: NodeInfo[] = [];
  for (const l of logs) {
    const a = l.args.node;
    if (!a || seen.has(a.toLowerCase())) continue;
    seen.add(a.toLowerCase());
    const n = await getNode(c, a);
    if (n) out.push(n);
  }
  return out;
}
