/**
 * Watching Ferry's events with a confirmation depth, resumable from a stored block.
 *
 * A block is processed only once `confirmations` blocks sit on top of it (its number <= head -
 * confirmations), so a reorganisation of fewer than `confirmations` blocks never changes what
 * was delivered. The watcher remembers the hash
 * of the last block it delivered and checks it before every poll: if it changed, a deeper
 * reorganisation happened and it stops with CHAIN_REORG_TOO_DEEP (resume from an earlier block).
 *
 * With `heads` (new-head notifications, heads.ts) a poll also starts as soon as a block arrives,
 * at most one every `minWakeGapMs`; while the subscription is live the timer only polls every
 * max(pollIntervalMs, 1 s) as a safety net. A notification only decides *when* to poll: what is
 * delivered is read and checked as above, so the guarantees are the same with or without it.
 */
import {
  type Address,
  decodeEventLog,
  formatLog,
  type Hex,
  type Log,
  numberToHex,
  type RpcLog,
  toEventSelector,
} from 'viem';
import { FerryError } from '../kernel/index.ts';
import { ferryEventsAbi, tasksAbi } from './abi.ts';
import { uint } from './encode.ts';
import { toChainError } from './errors.ts';
import type { HeadSource } from './heads.ts';
import type { ChainReader } from './types.ts';

export type FerryEvent = {
  /** Event name, e.g. "TaskCreated", "VoteCast". */
  eventName: string;
  /** Decoded arguments by name. */
  args: Record<string, unknown>;
  /** Which contract emitted it. */
  contract: 'NodeRegistry' | 'Assets' | 'Tasks';
  address: Address;
  blockNumber: bigint;
  blockHash: Hex;
  transactionHash: Hex;
  logIndex: number;
};

export type WatchOptions = {
  /** First block to process (the stored resume point); default: the current head. */
  fromBlock?: bigint;
  /** Blocks that must be built on top before a block is processed; default 2. */
  confirmations?: number;
  /** Poll interval, ms; default 500. */
  pollIntervalMs?: number;
  /** Largest block range per eth_getLogs; default 2000. */
  maxRange?: bigint;
  /** New-head notifications that start a poll at once (see the module comment). */
  heads?: HeadSource;
  /** Least time between the starts of two polls woken by heads, ms; default 50. */
  minWakeGapMs?: number;
  /**
   * Called with the events of each processed range, in chain order, then `nextBlock` (the
   * block to resume from: store it once this resolves). Called for empty ranges too.
   */
  onEvents: (events: FerryEvent[], nextBlock: bigint) => void | Promise<void>;
  /**
   * Called when the watcher stops with an error: CHAIN_REORG_TOO_DEEP, or an error thrown by
   * `onEvents`. An unreachable endpoint (CHAIN_UNAVAILABLE) is retried at every poll instead.
   */
  onError?: (error: FerryError) => void;
  signal?: AbortSignal;
};

/**
 * Each event of Ferry's ABI by its selector (the first of a signature, as viem's own lookup
 * picks): decoding a log then looks its event up instead of hashing every event's signature
 * for every log.
 */
const EVENT_BY_SELECTOR = new Map<Hex, typeof ferryEventsAbi>();
for (const item of ferryEventsAbi) {
  if (item.type !== 'event' || ('anonymous' in item && item.anonymous)) continue;
  const selector = toEventSelector(item as Parameters<typeof toEventSelector>[0]);
  if (!EVENT_BY_SELECTOR.has(selector))
    EVENT_BY_SELECTOR.set(selector, [item] as unknown as typeof ferryEventsAbi);
}

/** Decodes raw logs of Ferry's contracts; logs of other contracts are skipped. */
export function decodeFerryLogs(c: Pick<ChainReader, 'contracts'>, logs: readonly Log[]): FerryEvent[] {
  const byAddress = new Map<string, FerryEvent['contract']>(
    Object.entries(c.contracts).map(([name, a]) => [a.toLowerCase(), name as FerryEvent['contract']]),
  );
  const out: FerryEvent[] = [];
  for (const log of logs) {
    const contract = byAddress.get(log.address.toLowerCase());
    if (!contract) continue;
    try {
      const ev = decodeEventLog({
        abi: (log.topics[0] && EVENT_BY_SELECTOR.get(log.topics[0])) || ferryEventsAbi,
        data: log.data,
        topics: log.topics as [Hex, ...Hex[]],
      });
      out.push({
        eventName: ev.eventName as string,
        args: (ev.args ?? {}) as Record<string, unknown>,
        contract,
        address: log.address,
        blockNumber: log.blockNumber as bigint,
        blockHash: log.blockHash as Hex,
        transactionHash: log.transactionHash as Hex,
        logIndex: log.logIndex as number,
      });
    } catch {
      // an event this version does not know: skipped
    }
  }
  return out;
}

/** Fetches and decodes Ferry's events in [fromBlock, toBlock]. */
export async function getFerryEvents(
  c: ChainReader,
  fromBlock: bigint,
  toBlock: bigint,
): Promise<FerryEvent[]> {
  try {
    const logs = await c.public.getLogs({
      address: [c.contracts.NodeRegistry, c.contracts.Assets, c.contracts.Tasks],
      fromBlock,
      toBlock,
    });
    return decodeFerryLogs(c, logs);
  } catch (e) {
    throw toChainError(e, 'eth_getLogs');
  }
}

/**
 * Tasks events whose first indexed argument is the task id (topic 1), and those where it is the
 * second (topic 2: Credited and Paid, after the account).
 */
const TASK_TOPIC1_EVENTS = [
  'TaskCreated',
  'StatusChanged',
  'TaskSeeded',
  'SeedReanchored',
  'TaskClaimed',
  'EvidenceCommitted',
  'VoteCast',
  'TaskAttested',
  'AttemptEnded',
  'AttemptAbandoned',
  'KeyReleased',
  'TaskCompleted',
  'TaskFailed',
  'TaskExpired',
  'FraudProven',
] as const;
const TASK_TOPIC2_EVENTS = ['Credited', 'Paid'] as const;

function selectors(names: readonly string[]): Hex[] {
  return names.map((name) => {
    const ev = tasksAbi.find((i) => i.type === 'event' && i.name === name);
    if (!ev) throw new FerryError('INTERNAL', `event ${name} is not in the Tasks ABI`);
    return toEventSelector(ev as Parameters<typeof toEventSelector>[0]);
  });
}

const TOPIC1_SELECTORS = selectors(TASK_TOPIC1_EVENTS);
const TOPIC2_SELECTORS = selectors(TASK_TOPIC2_EVENTS);

/**
 * The Tasks contract's events of one task in [fromBlock, toBlock] (default: from block 0 to the
 * head), read with the indexed `taskId` topic so the node returns only that task's logs
 * (security review finding 15: no more downloading every Ferry event per check). Covers every
 * Tasks event carrying the task id (TaskCreated ... TaskExpired, Credited, Paid), in chain
 * order. With `attempt`, only the events of that attempt (those with an indexed attempt:
 * StatusChanged, TaskSeeded, SeedReanchored, TaskClaimed, EvidenceCommitted, VoteCast,
 * TaskAttested, AttemptEnded, AttemptAbandoned, KeyReleased, TaskCompleted, FraudProven). Rejects with
 * CHAIN_UNAVAILABLE or CHAIN_REVERTED like getFerryEvents (the endpoint's own range limits
 * apply: pass a fromBlock such as the task's createdBlock).
 */
export async function getTaskEvents(
  c: ChainReader,
  taskId: bigint,
  opts: { fromBlock?: bigint; toBlock?: bigint | 'latest'; attempt?: number } = {},
): Promise<FerryEvent[]> {
  const id = numberToHex(uint(taskId, 'taskId'), { size: 32 });
  const range = {
    fromBlock: numberToHex(opts.fromBlock === undefined ? 0n : uint(opts.fromBlock, 'fromBlock')),
    toBlock:
      opts.toBlock === undefined || opts.toBlock === 'latest'
        ? 'latest'
        : numberToHex(uint(opts.toBlock, 'toBlock')),
    address: c.contracts.Tasks,
  };
  const queries: (Hex | Hex[] | null)[][] =
    opts.attempt === undefined
      ? [
          [TOPIC1_SELECTORS, id],
          [TOPIC2_SELECTORS, null, id],
        ]
      : [[TOPIC1_SELECTORS, id, numberToHex(uint(opts.attempt, 'attempt', 255n), { size: 32 })]];
  try {
    const results = await Promise.all(
      queries.map(
        (topics) =>
          c.public.request({
            method: 'eth_getLogs',
            params: [{ ...range, topics } as never],
          }) as Promise<RpcLog[]>,
      ),
    );
    const logs = results
      .flat()
      .map((l) => formatLog(l))
      .sort((a, b) =>
        a.blockNumber === b.blockNumber
          ? Number(a.logIndex) - Number(b.logIndex)
          : a.blockNumber! < b.blockNumber!
            ? -1
            : 1,
      );
    // A log whose topic happens to equal the id in another position is dropped by the check.
    return decodeFerryLogs(c, logs).filter((e) => e.args.taskId === taskId);
  } catch (e) {
    throw toChainError(e, 'eth_getLogs');
  }
}

export type Watcher = {
  /** Stops polling; resolves when the current poll is done. Idempotent. */
  stop(): Promise<void>;
  /** Resolves when the watcher stops (stop(), abort, or error). */
  done: Promise<void>;
};

/** Starts watching; see the module comment for the guarantees. */
export function watchFerryEvents(c: ChainReader, options: WatchOptions): Watcher {
  const confirmations = options.confirmations ?? 2;
  if (!Number.isInteger(confirmations) || confirmations < 0) {
    throw new FerryError('INVALID_ARGUMENT', 'confirmations: expected an integer >= 0', {
      hints: [`got: ${String(options.confirmations)}`],
    });
  }
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const minWakeGapMs = options.minWakeGapMs ?? 50;
  if (!Number.isFinite(minWakeGapMs) || minWakeGapMs < 0) {
    throw new FerryError('INVALID_ARGUMENT', 'minWakeGapMs: expected a number >= 0', {
      hints: [`got: ${String(options.minWakeGapMs)}`],
    });
  }
  const maxRange = options.maxRange ?? 2000n;
  let stopped = false;
  /** A head arrived since the current poll started: poll again without waiting the interval. */
  let headSeen = false;
  let polledAt = 0;
  /** Ends the current sleep: at once (`now`), or once the wake gap since the last poll passed. */
  let wake: ((now: boolean) => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.(true);
  };
  options.signal?.addEventListener('abort', stop, { once: true });
  const unsubscribe = options.heads?.subscribe(() => {
    headSeen = true;
    wake?.(false);
  });
  let next = options.fromBlock;
  let last: { number: bigint; hash: Hex } | undefined;

  const poll = async () => {
    // The head block, not only its number: its hash and parent hash often settle the reorg
    // check and the hash of the range's last block without further requests (one request per
    // poll instead of two when nothing arrived, two instead of four for a block at the head).
    const headBlock = await c.public.getBlock({ blockTag: 'latest' });
    const head = headBlock.number;
    let from: bigint = next ?? head + 1n;
    next = from;
    // The chain is (momentarily) shorter than what we delivered, e.g. during a reorganisation
    // or behind a lagging RPC node: wait until it reaches our last block again.
    let behind = last !== undefined && head < last.number;
    if (last && !behind) {
      // The last delivered block is still on the chain if it is the head, or the head's parent;
      // otherwise (or if either hash differs) it is read and compared as it always was.
      const known =
        (head === last.number && headBlock.hash === last.hash) ||
        (head === last.number + 1n && headBlock.parentHash === last.hash);
      if (!known) {
        const b = await c.public.getBlock({ blockNumber: last.number }).catch((e: unknown) => {
          if ((e as { name?: string }).name === 'BlockNotFoundError') return undefined;
          throw e;
        });
        if (b === undefined) behind = true;
        else if (b.hash !== last.hash) {
          throw new FerryError(
            'CHAIN_REORG_TOO_DEEP',
            `block ${last.number} changed after it was confirmed`,
            {
              hints: [
                `confirmations: ${confirmations}`,
                'resume from an earlier block, or use a larger confirmation depth',
              ],
            },
          );
        }
      }
    }
    const safe = head - BigInt(confirmations);
    while (!stopped && !behind && from <= safe) {
      const to: bigint = from + maxRange - 1n < safe ? from + maxRange - 1n : safe;
      const [events, toBlock] = await Promise.all([
        getFerryEvents(c, from, to),
        to === head ? headBlock : c.public.getBlock({ blockNumber: to }),
      ]);
      // The cursor moves only once `onEvents` has taken the range: if it throws (even with a
      // retryable CHAIN_UNAVAILABLE), the same range is delivered again at the next poll.
      await options.onEvents(events, to + 1n);
      from = to + 1n;
      next = from;
      last = { number: to, hash: toBlock.hash as Hex };
    }
  };
  const loop = async () => {
    while (!stopped) {
      headSeen = false;
      polledAt = performance.now();
      try {
        await poll();
      } catch (e) {
        // An unreachable endpoint is retried at the next poll; anything else stops the watcher.
        const err = e instanceof FerryError ? e : toChainError(e, 'watch');
        if (err.code !== 'CHAIN_UNAVAILABLE') throw err;
      }
      if (stopped) break;
      const interval = options.heads?.live ? Math.max(pollIntervalMs, 1000) : pollIntervalMs;
      await new Promise<void>((resolve) => {
        let timer = setTimeout(finish, interval);
        function finish() {
          wake = undefined;
          clearTimeout(timer);
          resolve();
        }
        wake = (now) => {
          if (now) return finish();
          const wait = polledAt + minWakeGapMs - performance.now();
          if (wait <= 0) return finish();
          clearTimeout(timer);
          timer = setTimeout(finish, wait);
          wake = (n) => {
            if (n) finish();
          };
        };
        if (headSeen) wake(false);
      });
    }
  };
  const done = loop().then(
    () => {
      unsubscribe?.();
    },
    (e) => {
      stopped = true;
      unsubscribe?.();
      const err = e instanceof FerryError ? e : toChainError(e, 'watch');
      if (options.onError) options.onError(err);
    },
  );
  return {
    stop: async () => {
      stop();
      await done;
    },
    done,
  };
}
