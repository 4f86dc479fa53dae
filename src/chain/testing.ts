/**
 * Helpers for tests and benchmarks against a real local anvil: a deployed Ferry, funded
 * throw-away accounts, and time/block control. Not for production use.
 */
import { afterEach, beforeEach } from 'node:test';
import { randomBytes } from 'node:crypto';
import type { Hex } from 'viem';
import { generatePrivateKey } from 'viem/accounts';
import { connect, writer } from './client.ts';
import { type DeployOptions, deployFerry } from './deploy.ts';
import { type LocalChain, type LocalChainOptions, startLocalChain } from './local.ts';
import type { ChainWriter, FerryContracts } from './types.ts';

export type TestChain = {
  chain: LocalChain;
  contracts: FerryContracts;
  /** A writer for the deployer (first dev account). */
  deployer: ChainWriter;
  /** A new funded account (10000 ether). */
  account(): Promise<ChainWriter>;
  rpc(method: string, params?: unknown[]): Promise<unknown>;
  /** Moves time forward by `seconds` and mines one block. */
  advance(seconds: number): Promise<void>;
  mine(blocks?: number): Promise<void>;
  snapshot(): Promise<string>;
  revert(id: string): Promise<void>;
  stop(): Promise<void>;
};

/** Starts anvil, deploys Ferry, and returns helpers. Always call stop(). */
export async function startTestChain(
  options: { deploy?: DeployOptions; local?: LocalChainOptions } = {},
): Promise<TestChain> {
  const chain = await startLocalChain(options.local);
  try {
    const rpc = async (method: string, params: unknown[] = []) => {
      const res = await fetch(chain.rpcUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      });
      const body = (await res.json()) as { result?: unknown; error?: { message: string } };
      if (body.error) throw new Error(`${method}: ${body.error.message}`);
      return body.result;
    };
    const clients = await connect({
      rpcUrl: chain.rpcUrl,
      privateKey: chain.accounts[0].privateKey,
      chainId: chain.chainId,
    });
    const deployed = await deployFerry(clients.wallet!, clients.public, options.deploy);
    const deployer = writer(clients, deployed.contracts);
    const account = async (): Promise<ChainWriter> => {
      const key = generatePrivateKey();
      const c = await connect({ rpcUrl: chain.rpcUrl, privateKey: key, chainId: chain.chainId });
      await rpc('anvil_setBalance', [c.wallet!.account.address, '0x21e19e0c9bab2400000']);
      return writer(c, deployed.contracts);
    };
    return {
      chain,
      contracts: deployed.contracts,
      deployer,
      account,
      rpc,
      advance: async (seconds) => {
        await rpc('evm_increaseTime', [seconds]);
        await rpc('evm_mine');
      },
      mine: async (blocks = 1) => {
        await rpc('anvil_mine', [`0x${blocks.toString(16)}`]);
      },
      snapshot: async () => (await rpc('evm_snapshot')) as string,
      revert: async (id) => {
        await rpc('evm_revert', [id]);
      },
      stop: () => chain.stop(),
    };
  } catch (e) {
    await chain.stop();
    throw e;
  }
}

/** Random bytes as 0x-hex. */
export function randomHex(n: number): Hex {
  return `0x${randomBytes(n).toString('hex')}`;
}

/** A 64-byte VRF-output-shaped value whose first byte is `first` (to order claims in tests). */
export function outputWithPrefix(first: number): Hex {
  const b = randomBytes(64);
  b[0] = first;
  return `0x${b.toString('hex')}`;
}

/**
 * Runs each test of a file on the chain as `before` left it: an EVM snapshot before each test,
 * reverted after it, so tests do not depend on each other's order. `chain` is read at each hook
 * (the chain is started in `before`).
 */
export function isolateEachTest(chain: () => TestChain): void {
  let snap = '';
  beforeEach(async () => {
    snap = await chain().snapshot();
  });
  afterEach(async () => {
    await chain().revert(snap);
  });
}
