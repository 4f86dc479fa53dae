/**
 * New-head notifications over a WebSocket endpoint (`eth_subscribe` `newHeads`): a wake-up
 * signal for the event watcher and the daemons' reconcile, so they look at the chain when a
 * block arrives instead of at their next poll.
 *
 * A notification carries no authority: the watcher still reads the head, the logs and the
 * block hashes itself over its RPC endpoint and applies its confirmation depth and reorg check
 * to what it reads (watch.ts). A lost, late, duplicated or forged notification therefore only
 * changes when a poll happens; polling at `pollIntervalMs` stays the fallback while the socket
 * is down (it reconnects, backing off from 250 ms to 8 s). The URL is never logged (provider
 * URLs often carry an API key).
 */
import { FerryError, type Logger } from '../kernel/index.ts';

export type HeadSource = {
  /** Calls `onHead` with each new head's number; returns the function that unsubscribes. */
  subscribe(onHead: (blockNumber: bigint) => void): () => void;
  /** Whether the subscription is established now (notifications are flowing). */
  readonly live: boolean;
  /** Closes the socket and stops reconnecting; idempotent. */
  close(): void;
};

export type NewHeadsOptions = {
  log?: Logger;
  /** First reconnect delay, ms (doubling up to 8 s); default 250. */
  retryMs?: number;
};

const MAX_RETRY_MS = 8000;

/** Validates a WebSocket RPC URL (`ws://` or `wss://`). */
export function parseWsUrl(url: unknown, name = 'wsRpc'): URL {
  let u: URL | null = null;
  try {
    u = typeof url === 'string' ? new URL(url) : null;
  } catch {
    u = null;
  }
  if (!u || (u.protocol !== 'ws:' && u.protocol !== 'wss:')) {
    throw new FerryError('INVALID_ARGUMENT', `${name}: expected a ws:// or wss:// URL`, {
      hints: [
        typeof url === 'string' ? 'got a string that is not a ws:// or wss:// URL' : `got: ${typeof url}`,
      ],
    });
  }
  return u;
}

/**
 * The WebSocket endpoint serving the same chain as an HTTP one on the same host and port (anvil
 * serves both on one port): `http://h:p/x` -> `ws://h:p/x`, `https:` -> `wss:`.
 */
export function wsUrlFor(rpcUrl: string): string {
  const u = new URL(rpcUrl);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new FerryError('INVALID_ARGUMENT', 'rpcUrl: expected an http:// or https:// URL');
  }
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

/** Subscribes to new heads at `url` (ws:// or wss://); see the module comment. */
export function subscribeNewHeads(url: string, opts: NewHeadsOptions = {}): HeadSource {
  const target = parseWsUrl(url, 'url').toString();
  const firstRetry = opts.retryMs ?? 250;
  if (!Number.isSafeInteger(firstRetry) || firstRetry < 1) {
    throw new FerryError('INVALID_ARGUMENT', 'retryMs: expected an integer >= 1', {
      hints: [`got: ${String(opts.retryMs)}`],
    });
  }
  const listeners = new Set<(n: bigint) => void>();
  let closed = false;
  let live = false;
  let ws: WebSocket | null = null;
  let retry = firstRetry;
  let timer: NodeJS.Timeout | null = null;
  let wasLive = false;

  const reconnectLater = () => {
    live = false;
    ws = null;
    if (closed || timer) return;
    if (wasLive) {
      opts.log?.warn('head subscription lost; polling until it is back');
      wasLive = false;
    }
    timer = setTimeout(() => {
      timer = null;
      connect();
    }, retry);
    timer.unref();
    retry = Math.min(retry * 2, MAX_RETRY_MS);
  };

  const connect = () => {
    if (closed) return;
    let sock: WebSocket;
    try {
      sock = new WebSocket(target);
    } catch {
      reconnectLater();
      return;
    }
    ws = sock;
    let subscription: string | null = null;
    sock.onopen = () => {
      sock.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_subscribe', params: ['newHeads'] }));
    };
    sock.onmessage = (m: MessageEvent) => {
      let msg: unknown;
      try {
        msg = JSON.parse(typeof m.data === 'string' ? m.data : String(m.data));
      } catch {
        return;
      }
      const o = msg as { id?: unknown; result?: unknown; method?: unknown; params?: unknown };
      if (subscription === null) {
        if (o.id === 1 && typeof o.result === 'string') {
          subscription = o.result;
          live = true;
          wasLive = true;
          retry = firstRetry;
        } else if (o.id === 1) {
          // The endpoint refused the subscription (no pub/sub): stay on polling, try again later.
          sock.close();
        }
        return;
      }
      const p = o.params as { subscription?: unknown; result?: { number?: unknown } } | undefined;
      if (o.method !== 'eth_subscription' || p?.subscription !== subscription) return;
      const hex = p.result?.number;
      if (typeof hex !== 'string' || !/^0x[0-9a-fA-F]{1,16}$/.test(hex)) return;
      const n = BigInt(hex);
      for (const fn of [...listeners]) {
        try {
          fn(n);
        } catch {
          // a listener's failure is its own
        }
      }
    };
    sock.onerror = () => {};
    sock.onclose = () => {
      if (ws === sock) reconnectLater();
    };
  };
  connect();

  return {
    subscribe(onHead) {
      listeners.add(onHead);
      return () => {
        listeners.delete(onHead);
      };
    },
    get live() {
      return live;
    },
    close() {
      closed = true;
      live = false;
      if (timer) clearTimeout(timer);
      timer = null;
      listeners.clear();
      const s = ws;
      ws = null;
      try {
        s?.close();
      } catch {
        // already closing
      }
    },
  };
}
