/**
 * The requester's checks before a task is created (nothing is spent when one refuses): the
 * prices of the app and datasets, an executor that could run the task, and the funds for the fee.
 */
import { type Address, formatEther } from 'viem';
import { type ChainReader, getApp, getDataset, listNodes, type TeeKind } from '../chain/index.ts';
import { FerryError } from '../kernel/index.ts';

/**
 * The sum of the app's and the datasets' prices, wei (the least fee the contract accepts).
 * ASSET_NOT_FOUND naming the app or dataset that does not exist.
 */
export async function taskPrices(
  c: ChainReader,
  appId: bigint,
  datasetIds: readonly bigint[],
): Promise<bigint> {
  const app = await getApp(c, appId);
  if (!app)
    throw new FerryError('ASSET_NOT_FOUND', `app ${appId} does not exist`, {
      hints: ['list apps with: ferry app ls'],
    });
  let prices = app.price;
  for (const d of datasetIds) {
    const ds = await getDataset(c, d);
    if (!ds) {
      throw new FerryError('ASSET_NOT_FOUND', `dataset ${d} does not exist`, {
        hints: ['list datasets with: ferry dataset ls'],
      });
    }
    prices += ds.price;
  }
  return prices;
}

/**
 * Refuses a task no executor could run: none active with the executor role, a TEE kind every
 * dataset allows, and a region every dataset allows. TASK_FAILED naming what is missing.
 */
export async function preflightExecutors(c: ChainReader, datasetIds: bigint[]): Promise<number> {
  const regions: string[][] = [];
  let kinds: TeeKind[] | null = null;
  for (const d of datasetIds) {
    const ds = await getDataset(c, d);
    if (!ds) {
      throw new FerryError('CHAIN_NOT_FOUND', `dataset ${d} does not exist`, {
        hints: ['list datasets with: ferry dataset ls'],
      });
    }
    if (ds.policy.allowedRegions.length > 0) regions.push(ds.policy.allowedRegions);
    kinds = kinds === null ? ds.policy.teeKinds : kinds.filter((k) => ds.policy.teeKinds.includes(k));
  }
  const executors = (await listNodes(c)).filter((n) => n.roles.includes('executor') && n.status === 'active');
  const inRegion = executors.filter((n) => regions.every((r) => r.includes(n.region)));
  const eligible = inRegion.filter((n) => n.teeKinds.some((k) => (kinds ?? []).includes(k)));
  if (eligible.length > 0) return eligible.length;
  const want = regions.length > 0 ? regions.map((r) => r.join('/')).join(' and ') : 'any region';
  if (inRegion.length === 0) {
    throw new FerryError('TASK_FAILED', `no executor in region ${want}`, {
      hints: [
        `active executors: ${executors.length ? executors.map((n) => `${n.address.slice(0, 10)}… in ${n.region}`).join(', ') : 'none'}`,
        "the dataset's policy allows executors only in its regions; ask the data owner, or wait for an executor there",
      ],
    });
  }
  throw new FerryError(
    'TASK_FAILED',
    `no executor with a TEE kind the datasets allow (${(kinds ?? []).join(', ') || 'none'})`,
    {
      hints: [`executors in ${want}: ${inRegion.map((n) => n.teeKinds.join('/')).join(', ')}`],
    },
  );
}

/**
 * CHAIN_INSUFFICIENT_FUNDS (exit 2) when the profile's balance does not cover the fee it is
 * about to escrow: the balance, the address, and how to fund it (on a devnet, with anvil's
 * anvil_setBalance).
 */
export async function checkFunds(
  chain: ChainReader,
  p: {
    /** The profile's name, for the message. */
    profile: string;
    address: Address;
    fee: bigint;
    /** The devnet's RPC URL when the network is a devnet (the hint then funds the profile there). */
    devnetRpcUrl?: string;
  },
): Promise<void> {
  const { profile, address, fee } = p;
  const balance = await chain.public.getBalance({ address });
  if (balance > fee) return;
  const oneEther = `0x${(10n ** 18n).toString(16)}`;
  throw new FerryError(
    'CHAIN_INSUFFICIENT_FUNDS',
    `profile ${profile} cannot pay for this task: its balance is ${formatEther(balance)} ETH, the fee is ${formatEther(fee)} ETH plus gas`,
    {
      hints: [
        `address: ${address}`,
        `balance: ${balance} wei; fee: ${fee} wei`,
        p.devnetRpcUrl !== undefined
          ? `on this devnet, give it 1 ETH with: curl -s ${p.devnetRpcUrl} -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"anvil_setBalance","params":["${address}","${oneEther}"]}'`
          : 'send it ether from a funded account, or act from a funded profile with --profile NAME',
      ],
    },
  );
}
