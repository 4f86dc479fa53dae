/**
 * Deploys Ferry's contracts to any EVM chain: FraudVerifier (the stateless checks of fraud
 * proofs), NodeRegistry, Assets and Tasks. The Tasks address is predicted from the deployer's
 * nonce so NodeRegistry and Assets receive it in their constructors: no admin function, no
 * owner key after deployment.
 */
import { getContractAddress, type Hex, type PublicClient } from 'viem';
import { FerryError } from '../kernel/index.ts';
import {
  assetsAbi,
  assetsBytecode,
  fraudVerifierAbi,
  fraudVerifierBytecode,
  nodeRegistryAbi,
  nodeRegistryBytecode,
  tasksAbi,
  tasksBytecode,
} from './abi.ts';
import { toChainError } from './errors.ts';
import type { ChainWriter, FerryContracts } from './types.ts';

export type DeployOptions = {
  /** Minimum stake of a node, wei; default 1 ether. */
  minStake?: bigint;
  /** Seconds before unbonded stake can be withdrawn; default 3600. */
  unbondingDelay?: bigint;
  /** Seconds after the last heartbeat when anyone may mark a node inactive; default 86400. */
  heartbeatTtl?: bigint;
  /** Basis points of stake slashed per penalty; default 1000 (10 %). */
  slashBps?: bigint;
  /** Seconds a penalised node stays jailed; default 3600. */
  jailDuration?: bigint;
  /** Attempts before a task fails; default 3. */
  maxAttempts?: bigint;
  /** Basis points of the fee (after prices) paid to pass voters; default 3000. */
  verifierShareBps?: bigint;
};

export const DEFAULT_DEPLOY_OPTIONS: Required<DeployOptions> = {
  minStake: 10n ** 18n,
  unbondingDelay: 3600n,
  heartbeatTtl: 86_400n,
  slashBps: 1000n,
  jailDuration: 3600n,
  maxAttempts: 3n,
  verifierShareBps: 3000n,
};

export type Deployment = { chainId: number; contracts: FerryContracts; blockNumber: bigint; gasUsed: bigint };

/** Deploys FraudVerifier, NodeRegistry, Assets and Tasks from the wallet's account; waits for all four. */
export async function deployFerry(
  wallet: ChainWriter['wallet'],
  publicClient: PublicClient,
  options: DeployOptions = {},
): Promise<Deployment> {
  const o = { ...DEFAULT_DEPLOY_OPTIONS, ...options };
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'bigint' || v < 0n) {
      throw new FerryError('INVALID_ARGUMENT', `${k}: expected a non-negative bigint`, {
        hints: [`got: ${typeof v}`],
      });
    }
  }
  const from = wallet.account.address;
  try {
    const nonce = await publicClient.getTransactionCount({ address: from, blockTag: 'pending' });
    const predictedTasks = getContractAddress({ from, nonce: BigInt(nonce + 3) });
    const common = { account: wallet.account, chain: wallet.chain };
    const h0 = await wallet.deployContract({
      ...common,
      abi: fraudVerifierAbi,
      bytecode: fraudVerifierBytecode as Hex,
      args: [],
      nonce,
    });
    const h1 = await wallet.deployContract({
      ...common,
      abi: nodeRegistryAbi,
      bytecode: nodeRegistryBytecode as Hex,
      args: [predictedTasks, o.minStake, o.unbondingDelay, o.heartbeatTtl, o.slashBps, o.jailDuration],
      nonce: nonce + 1,
    });
    const h2 = await wallet.deployContract({
      ...common,
      abi: assetsAbi,
      bytecode: assetsBytecode as Hex,
      args: [predictedTasks],
      nonce: nonce + 2,
    });
    const fraudVerifier = getContractAddress({ from, nonce: BigInt(nonce) });
    const registry = getContractAddress({ from, nonce: BigInt(nonce + 1) });
    const assets = getContractAddress({ from, nonce: BigInt(nonce + 2) });
    const h3 = await wallet.deployContract({
      ...common,
      abi: tasksAbi,
      bytecode: tasksBytecode as Hex,
      args: [registry, assets, fraudVerifier, o.maxAttempts, o.verifierShareBps],
      nonce: nonce + 3,
    });
    const receipts = await Promise.all(
      [h0, h1, h2, h3].map((hash) => publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 })),
    );
    for (const r of receipts) {
      if (r.status !== 'success') {
        throw new FerryError('CHAIN_REVERTED', 'a contract deployment reverted', {
          hints: [`transaction: ${r.transactionHash}`],
        });
      }
    }
    if (receipts[3].contractAddress?.toLowerCase() !== predictedTasks.toLowerCase()) {
      throw new FerryError('CHAIN_REVERTED', 'Tasks was deployed at an unexpected address', {
        hints: ['another transaction from the deployer account interfered; deploy again'],
      });
    }
    return {
      chainId: wallet.chain.id,
      contracts: { NodeRegistry: registry, Assets: assets, Tasks: predictedTasks },
      blockNumber: receipts[3].blockNumber,
      gasUsed: receipts.reduce((s, r) => s + r.gasUsed, 0n),
    };
  } catch (e) {
    throw toChainError(e, 'deploy');
  }
}
