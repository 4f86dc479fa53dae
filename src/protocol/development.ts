/**
 * Development trust is loud and local (docs/protocol.md §9.4). `allowSim` — from
 * `--allow-sim`, `FERRY_ALLOW_SIM=1` or node.json / agent.json — lets a party accept `sim`
 * evidence, which gives no confidentiality against the host. It is refused unless the chain is
 * a development chain: anvil's and hardhat's default 31337, or the chain id a local devnet
 * declares in `$FERRY_HOME/devnet.json` (written by `ferry devnet up`) when that devnet's RPC
 * is on loopback and is the RPC this party uses. It never changes what is accepted for
 * hardware evidence: policies decide that, and no policy accepts unmeasured software.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, ferryHome, type Logger } from '../kernel/index.ts';

/** The chain id of anvil and hardhat local chains. */
export const LOCAL_DEVELOPMENT_CHAIN_ID = 31337;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function isLoopbackUrl(url: string): boolean {
  try {
    return LOOPBACK_HOSTS.has(new URL(url).hostname);
  } catch {
    return false;
  }
}

/** URLs equal up to a trailing slash. */
const sameUrl = (a: string, b: string) => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

/**
 * The chain ids declared by the devnet of `home` (default FERRY_HOME): the `chainId` of
 * `home/devnet.json` when its `rpcUrl` is a loopback URL and, if `rpcUrl` is given, equal to
 * it. An absent or unreadable file declares nothing.
 */
export function declaredDevelopmentChains(opts: { home?: string; rpcUrl?: string } = {}): number[] {
  let info: unknown;
  try {
    info = JSON.parse(readFileSync(join(opts.home ?? ferryHome(), 'devnet.json'), 'utf8'));
  } catch {
    return [];
  }
  const { chainId, rpcUrl } = (info ?? {}) as { chainId?: unknown; rpcUrl?: unknown };
  if (!Number.isSafeInteger(chainId) || (chainId as number) <= 0 || typeof rpcUrl !== 'string') return [];
  if (!isLoopbackUrl(rpcUrl)) return [];
  if (opts.rpcUrl !== undefined && !sameUrl(opts.rpcUrl, rpcUrl)) return [];
  return [chainId as number];
}

/** True for 31337 and for a chain id in `declared` (see declaredDevelopmentChains). */
export function isDevelopmentChain(chainId: number, declared: readonly number[] = []): boolean {
  if (!Number.isSafeInteger(chainId) || chainId <= 0) return false;
  return chainId === LOCAL_DEVELOPMENT_CHAIN_ID || declared.includes(chainId);
}

/**
 * Throws CONFIG_DEVELOPMENT_ONLY (exit 2) unless `chainId` is a development chain. `what`
 * names the setting in the message (default "allowSim").
 */
export function assertDevelopmentChain(
  chainId: number,
  declared: readonly number[] = [],
  what = 'allowSim',
): void {
  if (isDevelopmentChain(chainId, declared)) return;
  throw new FerryError(
    'CONFIG_DEVELOPMENT_ONLY',
    `${what} is for development chains only, not chain ${chainId}`,
    {
      hints: [
        `expected: chain ${LOCAL_DEVELOPMENT_CHAIN_ID}, or the chain id of a local devnet (FERRY_HOME/devnet.json, loopback RPC)${declared.length > 0 ? ` (declared: ${declared.join(', ')})` : ''}`,
        `got: chain ${chainId}`,
        'remove --allow-sim, FERRY_ALLOW_SIM and "allowSim" from node.json / agent.json; production trusts hardware evidence under a policy with reference values (ferry measure runtime)',
      ],
    },
  );
}

/**
 * The daemons' start-up check: nothing when `allowSim` is off; otherwise refuses a chain that
 * is not a development chain (CONFIG_DEVELOPMENT_ONLY) and logs a warning that simulated
 * evidence is accepted.
 */
export function checkAllowSim(opts: {
  allowSim: boolean;
  chainId: number;
  rpcUrl?: string;
  home?: string;
  log?: Logger;
}): void {
  if (opts.allowSim !== true) return;
  assertDevelopmentChain(opts.chainId, declaredDevelopmentChains({ home: opts.home, rpcUrl: opts.rpcUrl }));
  opts.log?.warn(
    'allowSim is on: simulated (sim) evidence is accepted; it gives no confidentiality against the host — development only',
    {
      chainId: opts.chainId,
    },
  );
}
