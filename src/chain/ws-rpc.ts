/**
 * JSON-RPC reads over a WebSocket endpoint of the same chain (`FERRY_WS_RPC`), with HTTP as
 * the fallback: a read over an open socket costs a fraction of the CPU of one through `fetch`
 * (no request object, headers or body streams per call), and a daemon reads the chain several
 * times per block.
 *
 * The socket carries reads only (transactions are always sent over HTTP, so a socket that drops
 * after a send can never make one go out twice). It is used once its `eth_chainId` matches the
 * chain the client was made for; until then, while it is down (it reconnects, backing off from
 * 250 ms to 8 s), and for a request it loses (closed before the answer, or no answer within
 * the timeout, after which the socket is dropped and opened again), the read goes over HTTP
instead. Answers are JSON-RPC answers like HTTP's: an
 * error answer becomes the same viem error as over HTTP, so errors.ts maps it to the same
 * FerryError code. The URL is never logged (provider URLs often carry an API key).
 */
import { createTransport, type EIP1193RequestFn, RpcRequestError, type Transport } from 'viem';
import { getHttpRpcClient } from 'viem/utils';
import type { Logger } from '../kernel/index.ts';
import { parseWsUrl } from './heads.ts';

/** Methods never sent over the socket (transactions go over HTTP, see the module comment). */
const HTTP_ONLY = new Set(['eth_sendRawTransaction', 'eth_sendTransaction']);

const MAX_RETRY_MS = 8000;

/** The socket could not answer (down, closed before the answer, timed out): use HTTP. */
class SocketLost extends Error {}

type Pending = { resolve: (m: RpcAnswer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };
type RpcAnswer = { result?: unknown; error?: { code: number; message: string; data?: unknown } };

export type WsReads = {
  /** Whether reads go over the socket now (open, and its chain id checked). */
  readonly live: boolean;
  /** One JSON-RPC request over the socket; rejects with SocketLost when it cannot answer. */
  request(method: string, params: unknown): Promise<RpcAnswer>;
  /** Closes the socket and stops reconnecting; idempotent. */
  close(): void;
};

export type WsReadsOptions = {
  /** The chain id the socket must serve. */
  chainId: number;
  log?: Logger;
  /** Per request, ms; default 10 000 (then the read goes over HTTP). */
  timeoutMs?: number;
  /** First reconnect delay, ms (doubling up to 8 s); default 250. */
  retryMs?: number;
};

/** Opens the socket for reads (see the module comment). */
export function openWsReads(url: string, opts: WsReadsOptions): WsReads {
  const target = parseWsUrl(url, 'wsRpc').toString();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const firstRetry = opts.retryMs ?? 250;
  let retry = firstRetry;
  let closed = false;
  let live = false;
  let ws: WebSocket | null = null;
  let timer: NodeJS.Timeout | null = null;
  let nextId = 1;
  const pending = new Map<number, Pending>();

  const failAll = () => {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(new SocketLost());
    }
  };
  const send = (sock: WebSocket, method: string, params: unknown): Promise<RpcAnswer> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const t = setTimeout(() => {
        pending.delete(id);
        reject(new SocketLost());
        // A socket that stopped answering is dropped (reads go over HTTP until a new one is up).
        try {
          sock.close();
        } catch {
          // already closing
        }
      }, timeoutMs);
      t.unref();
      pending.set(id, { resolve, reject, timer: t });
      try {
        sock.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      } catch {
        clearTimeout(t);
        pending.delete(id);
        reject(new SocketLost());
      }
    });
  const reconnectLater = () => {
    if (live) opts.log?.warn('WebSocket reads lost; reading over HTTP until it is back');
    live = false;
    ws = null;
    failAll();
    if (closed || timer) return;
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
    sock.onopen = () => {
      send(sock, 'eth_chainId', []).then(
        (a) => {
          if (ws !== sock) return;
          if (typeof a.result === 'string' && BigInt(a.result) === BigInt(opts.chainId)) {
            live = true;
            retry = firstRetry;
            return;
          }
          // Another chain (or no answer): never read from it; HTTP serves every read.
          opts.log?.warn('the WebSocket endpoint does not serve this chain; reading over HTTP', {
            expected: opts.chainId,
          });
          closed = true;
          sock.close();
        },
        () => {},
      );
    };
    sock.onmessage = (m: MessageEvent) => {
      let msg: unknown;
      try {
        msg = JSON.parse(typeof m.data === 'string' ? m.data : String(m.data));
      } catch {
        return;
      }
      const o = msg as RpcAnswer & { id?: unknown };
      if (typeof o.id !== 'number') return;
      const p = pending.get(o.id);
      if (!p) return;
      pending.delete(o.id);
      clearTimeout(p.timer);
      p.resolve(o);
    };
    sock.onerror = () => {};
    sock.onclose = () => {
      if (ws === sock || ws === null) reconnectLater();
    };
  };
  connect();

  return {
    get live() {
      return live;
    },
    request(method, params) {
      const sock = ws;
      if (!live || !sock) return Promise.reject(new SocketLost());
      return send(sock, method, params);
    },
    close() {
      closed = true;
      live = false;
      if (timer) clearTimeout(timer);
      timer = null;
      failAll();
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

/**
 * A viem transport that reads over `ws` while it is live and over HTTP otherwise, and always
 * sends transactions over HTTP (see the module comment). Errors are viem's HTTP transport's.
 */
export function readsOverWebSocket(
  rpcUrl: string,
  ws: WsReads,
  config: { retryCount?: number } = {},
): Transport {
  return ({ retryCount: retryCount_, timeout: timeout_ }) => {
    const retryCount = config.retryCount ?? retryCount_;
    const timeout = timeout_ ?? 10_000;
    const rpcClient = getHttpRpcClient(rpcUrl, { timeout });
    return createTransport(
      {
        key: 'ferry',
        name: 'JSON-RPC, reads over WebSocket',
        request: (async ({ method, params }: { method: string; params?: unknown }) => {
          const body = { method, params };
          let answer: RpcAnswer | undefined;
          if (ws.live && !HTTP_ONLY.has(method)) {
            answer = await ws.request(method, params).catch((e: unknown) => {
              if (e instanceof SocketLost) return undefined;
              throw e;
            });
          }
          answer ??= (await rpcClient.request({ body })) as RpcAnswer;
          if (answer.error) throw new RpcRequestError({ body, error: answer.error, url: rpcUrl });
          return answer.result;
        }) as EIP1193RequestFn,
        retryCount,
        timeout,
        type: 'http',
      },
      { url: rpcUrl },
    );
  };
}
