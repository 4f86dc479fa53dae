/**
 * Client construction and the one transaction path every action uses: send, wait for the
 * receipt, decode any revert into a FerryError.
 */
import {
  type Abi,
  type Account,
  type Chain,
  type ContractFunctionArgs,
  type ContractFunctionName,
  createPublicClient,
  createWalletClient,
  defineChain,
  type Hex,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { FerryError } from '../kernel/index.ts';
import { toChainError } from './errors.ts';
import { openWsReads, readsOverWebSocket, type WsReads } from './ws-rpc.ts';
import type { Logger } from '../kernel/index.ts';
import type { ChainReader, ChainWriter, FerryContracts, TxResult } from './types.ts';

/** A viem chain definition for any EVM endpoint. */
export function chainFor(chainId: number, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name: chainId === 31337 ? 'anvil' : `chain-${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

export type ConnectOptions = {
  rpcUrl: string;
  /** Needed for transactions; omit for read-only use. Never logged. */
  privateKey?: Hex;
  /** Known chain id (saves one request); fetched otherwise. */
  chainId?: number;
  /** Poll interval for receipts and watchers, ms; default 100. */
  pollingInterval?: number;
  /**
   * A WebSocket endpoint of the same chain (ws:// or wss://): reads go over it while it is up,
   * over `rpcUrl` otherwise; transactions always over `rpcUrl` (ws-rpc.ts). Close the clients
   * (`close`) when done.
   */
  wsRpcUrl?: string;
  /** For the WebSocket's state changes (never its URL). */
  log?: Logger;
};

export type Clients = {
  public: PublicClient;
  wallet?: WalletClient<Transport, Chain, Account>;
  chain: Chain;
  /** The WebSocket reads of `wsRpcUrl`, if given (its `live` says whether reads use it now). */
  wsReads?: WsReads;
  /** Closes the WebSocket of `wsRpcUrl`, if any; idempotent. */
  close(): void;
};

/** Creates the public (and, with a key, wallet) client for an RPC URL. */
export async function connect(options: ConnectOptions): Promise<Clients> {
  const { rpcUrl, privateKey, pollingInterval = 100 } = options;
  if (typeof rpcUrl !== 'string' || !/^https?:\/\//.test(rpcUrl)) {
    throw new FerryError('INVALID_ARGUMENT', 'rpcUrl: expected an http(s) URL', {
      hints: [`got: ${JSON.stringify(rpcUrl)}`],
    });
  }
  let chainId = options.chainId;
  if (chainId === undefined) {
    const probe = createPublicClient({ transport: http(rpcUrl) });
    try {
      chainId = await probe.getChainId();
    } catch (e) {
      throw toChainError(e, 'eth_chainId');
    }
  }
  const chain = chainFor(chainId, rpcUrl);
  if (privateKey !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(privateKey)) {
    throw new FerryError('CHAIN_KEY_MISSING', 'the private key is malformed', {
      hints: ['expected: 0x followed by 64 hex digits'],
    });
  }
  const transport = http(rpcUrl, { batch: false, retryCount: 1 });
  const ws =
    options.wsRpcUrl === undefined ? undefined : openWsReads(options.wsRpcUrl, { chainId, log: options.log });
  const reads = ws ? readsOverWebSocket(rpcUrl, ws, { retryCount: 1 }) : transport;
  const pub = createPublicClient({ chain, transport: reads, pollingInterval }) as PublicClient;
  const close = () => ws?.close();
  if (privateKey === undefined) return { public: pub, chain, wsReads: ws, close };
  const account = privateKeyToAccount(privateKey);
  // The wallet's own reads (filling a transaction) may use the socket too; the transaction
  // itself is always sent over HTTP (ws-rpc.ts).
  const wallet = createWalletClient({ account, chain, transport: reads, pollingInterval });
  return { public: pub, wallet, chain, wsReads: ws, close };
}

/** A ChainWriter from clients and deployed addresses. */
export function writer(clients: Clients, contracts: FerryContracts): ChainWriter {
  if (!clients.wallet) {
    throw new FerryError('CHAIN_KEY_MISSING', 'a private key is needed to send transactions');
  }
  return { public: clients.public, wallet: clients.wallet, contracts };
}

export function reader(clients: { public: PublicClient }, contracts: FerryContracts): ChainReader {
  return { public: clients.public, contracts };
}

/** Parameters of one contract write (typed by the ABI). */
export type WriteRequest<abi extends Abi, fn extends ContractFunctionName<abi, 'nonpayable' | 'payable'>> = {
  address: Hex;
  abi: abi;
  functionName: fn;
  args: ContractFunctionArgs<abi, 'nonpayable' | 'payable', fn>;
  value?: bigint;
  /**
   * Gas added to the estimate (default DEFAULT_GAS_HEADROOM; at least a quarter of the
   * estimate). The estimate is made on the state before the transaction is mined: a concurrent
   * transaction mined first can send this one down a costlier path (the vote that decides an
   * attempt, the key release that starts the run), which must not run out of gas. Unused gas
   * is not paid for.
   */
  gasHeadroom?: bigint;
  /**
   * Sent before this account's other transactions waiting for the send lock (claims and votes,
   * whose windows are seconds, must not queue behind seeds, evidence or receipts).
   */
  urgent?: boolean;
};

/** Gas added to every estimate (see WriteRequest.gasHeadroom). */
export const DEFAULT_GAS_HEADROOM = 100_000n;

/**
 * Per-account send locks: estimation, nonce (the `pending` transaction count), signing and
 * submission of one account's transactions happen one at a time, so concurrent callers never
 * pick the same nonce, and a send that fails (e.g. reverts at estimation) leaves no nonce gap.
 * Waiting for receipts is not serialized. Waiters marked `urgent` (claims and votes: their
 * windows are seconds) take the lock before the others waiting.
 */
type SendQueue = { busy: boolean; urgent: (() => void)[]; normal: (() => void)[] };
const sendLocks = new Map<string, SendQueue>();

async function withSendLock<T>(c: ChainWriter, fn: () => Promise<T>, urgent = false): Promise<T> {
  const key = `${c.wallet.chain.id}:${c.wallet.account.address.toLowerCase()}`;
  let q = sendLocks.get(key);
  if (!q) {
    q = { busy: false, urgent: [], normal: [] };
    sendLocks.set(key, q);
  }
  const queue = q;
  if (queue.busy) await new Promise<void>((r) => (urgent ? queue.urgent : queue.normal).push(r));
  else queue.busy = true;
  try {
    return await fn();
  } finally {
    const next = queue.urgent.shift() ?? queue.normal.shift();
    if (next) next();
    else {
      queue.busy = false;
      if (sendLocks.get(key) === queue) sendLocks.delete(key);
    }
  }
}

/**
 * Sends a contract transaction from the writer's account, waits for its receipt and returns
 * it; a revert (at estimation or on chain) becomes the matching FerryError. Safe to call
 * concurrently for one account (see `withSendLock`).
 */
export async function sendTx<abi extends Abi, fn extends ContractFunctionName<abi, 'nonpayable' | 'payable'>>(
  c: ChainWriter,
  req: WriteRequest<abi, fn>,
): Promise<TxResult & { logs: readonly { address: Hex; topics: readonly Hex[]; data: Hex }[] }> {
  let hash: Hex;
  try {
    // viem's generic write parameters are too wide to spell here; WriteRequest is checked above.
    const { gasHeadroom, urgent, ...call } = req;
    const params = { ...call, account: c.wallet.account, chain: c.wallet.chain } as unknown as Parameters<
      ChainWriter['wallet']['writeContract']
    >[0];
    // Estimated inside the lock: a send that waited for it is estimated on the state it is sent
    // on, so one that became invalid meanwhile (a claim after its window) is refused unsent.
    hash = await withSendLock(
      c,
      async () => {
        const estimate = await c.public.estimateContractGas(
          params as unknown as Parameters<PublicClient['estimateContractGas']>[0],
        );
        const extra = gasHeadroom ?? DEFAULT_GAS_HEADROOM;
        const gas = estimate + (extra > estimate / 4n ? extra : estimate / 4n);
        return c.wallet.writeContract({ ...params, gas });
      },
      urgent,
    );
  } catch (e) {
    throw toChainError(e, req.functionName);
  }
  let receipt: Awaited<ReturnType<PublicClient['waitForTransactionReceipt']>>;
  try {
    receipt = await c.public.waitForTransactionReceipt({ hash, pollingInterval: 50 });
  } catch (e) {
    throw toChainError(e, req.functionName);
  }
  if (receipt.status !== 'success') {
    throw new FerryError('CHAIN_REVERTED', `${req.functionName} reverted on chain`, {
      hints: [`transaction: ${hash}`],
    });
  }
  return {
    hash,
    blockNumber: receipt.blockNumber,
    gasUsed: receipt.gasUsed,
    logs: receipt.logs as readonly { address: Hex; topics: readonly Hex[]; data: Hex }[],
  };
}
