/**
 * A small HTTP server on node:http for Ferry's node and agent APIs (docs/protocol.md §13).
 *
 * Routes are declared as data: method, a path pattern with `:params`, `public` or `signed`
 * authentication, an optional `authorize(caller, request)` callback, and a handler. Signed
 * routes verify the request envelope (envelope.ts) before the handler runs; a failed check is
 * 401, a caller refused by `authorize` is 403, both with code PEER_UNAUTHORIZED.
 *
 * Handlers return JSON, bytes, or a file, which is served with HTTP Range support from a
 * read stream (constant memory whatever the size). Errors thrown by handlers become
 * `{"error": {code, message, hints}}` with a status from the code; non-Ferry errors become a
 * 500 with a generic message (details go to the log, never to the peer).
 *
 * Limits (docs/protocol.md §13.1), so that no peer can hold memory or connections: a request
 * must arrive whole within `requestTimeoutMs` (headers within `headersTimeoutMs`), an idle
 * socket is closed after `idleTimeoutMs` (keep-alive after `keepAliveTimeoutMs`), at most
 * `maxConnections` sockets are open and at most `maxConnectionsPerAddress` from one address.
 * A route takes a body only if it declares `maxBodyBytes` (POST and PUT default to the
 * server's); a body on any other route, or a declared length over the limit, is refused with
 * 413 before a byte of it is read, and the connection closed. Signed requests are limited per
 * address before the signature is checked and per key once authorised; the replay cache
 * records a nonce only after `authorize` accepted the key.
 *
 * Lifecycle (component style): `start()` is idempotent and releases the port if listening
 * fails; `stop()` closes the listener and every open connection.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { z } from 'zod';
import { createLogger, FerryError, type Logger, toFerryError } from '../kernel/index.ts';
import {
  authenticateRequest,
  DEFAULT_FRESHNESS_MS,
  ReplayCache,
  recordNonce,
  type VerifiedCaller,
} from './envelope.ts';
import { type RateLimit, RateLimiter, rateLimited } from './limits.ts';
import { parseRange } from './range.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export type RouteRequest = {
  method: string;
  /** Request target as received (path and query). */
  target: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Uint8Array;
  /** The verified caller on `signed` routes; null on `public` ones. */
  caller: VerifiedCaller | null;
  /** Aborted when the client goes away or the server stops. */
  signal: AbortSignal;
};

export type RouteResponse =
  | { status?: number; json: unknown; headers?: Record<string, string> }
  | { status?: number; bytes: Uint8Array; contentType?: string; headers?: Record<string, string> }
  | { file: string; contentType?: string; etag?: string; headers?: Record<string, string> };

export type Route = {
  method: HttpMethod;
  /** e.g. `/v1/tasks/:id/attempts/:n/evidence`. */
  path: string;
  auth: 'public' | 'signed';
  /** Signed routes: decides whether the verified caller may use this route for this request. */
  authorize?: (caller: VerifiedCaller, req: RouteRequest) => Promise<boolean> | boolean;
  /**
   * Largest accepted body. Routes that do not declare it take no body, except POST and PUT,
   * which take up to the server's `maxBodyBytes`. A signed route's body is read (bounded)
   * before the signature, which covers its hash, can be checked.
   */
  maxBodyBytes?: number;
  handler: (req: RouteRequest) => Promise<RouteResponse> | RouteResponse;
};

export type HttpServerOptions = {
  routes: readonly Route[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  log?: Logger;
  freshnessMs?: number;
  replay?: ReplayCache;
  /** Default 1 MiB. */
  maxBodyBytes?: number;
  /** Injectable clock (ms) for freshness checks. */
  now?: () => number;
  /** Time to receive a whole request (headers and body); default 30 s. */
  requestTimeoutMs?: number;
  /** Time to receive the request headers; default 10 s. */
  headersTimeoutMs?: number;
  /** A socket with no traffic either way is closed after this; default 60 s. */
  idleTimeoutMs?: number;
  /** A keep-alive socket waiting for its next request is closed after this; default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Open sockets at most; default 1024. */
  maxConnections?: number;
  /** Open sockets from one remote address at most; default 128. */
  maxConnectionsPerAddress?: number;
  /** Signed requests per remote address (checked before the signature); default 200/s, burst 1000. */
  addressRate?: RateLimit;
  /** Signed requests per authorised key; default 100/s, burst 500. */
  keyRate?: RateLimit;
};

/** The server's defaults for the limits above (docs/protocol.md §13.1). */
export const HTTP_LIMITS = {
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1024,
  maxConnectionsPerAddress: 128,
  maxBodyBytes: 1 << 20,
  addressRate: { perSecond: 200, burst: 1000 },
  keyRate: { perSecond: 100, burst: 500 },
} as const;

const STATUS_BY_CODE: Record<string, number> = {
  PEER_UNAUTHORIZED: 401,
  POLICY_DENIED: 403,
  PEER_NOT_FOUND: 404,
  TASK_NOT_FOUND: 404,
  ASSET_NOT_FOUND: 404,
  PEER_BAD_REQUEST: 400,
  INVALID_ARGUMENT: 400,
  INVALID_HEX: 400,
  CBOR_MALFORMED: 400,
  CBOR_NOT_CANONICAL: 400,
  CBOR_WRONG_DOMAIN: 400,
  CBOR_UNSUPPORTED_TYPE: 400,
  STATE_CONFLICT: 409,
  PEER_RANGE_NOT_SATISFIABLE: 416,
  PEER_PAYLOAD_TOO_LARGE: 413,
  PEER_RATE_LIMITED: 429,
  PEER_UNAVAILABLE: 503,
  TIMEOUT: 503,
};

/** The HTTP status for a Ferry error code (500 for codes without a mapping). */
export function statusForCode(code: string): number {
  return STATUS_BY_CODE[code] ?? 500;
}

type CompiledRoute = { route: Route; parts: string[] };

function compile(route: Route): CompiledRoute {
  if (!route.path.startsWith('/')) {
    throw new FerryError('INVALID_ARGUMENT', 'route path must start with /', {
      hints: [`got: ${route.path}`],
    });
  }
  return { route, parts: route.path.split('/').slice(1) };
}

function match(c: CompiledRoute, segments: string[]): Record<string, string> | null {
  if (c.parts.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const p = c.parts[i];
    if (p.startsWith(':')) {
      if (segments[i].length === 0) return null;
      let v: string;
      try {
        v = decodeURIComponent(segments[i]);
      } catch {
        return null;
      }
      if (v.includes('/')) return null;
      params[p.slice(1)] = v;
    } else if (p !== segments[i]) return null;
  }
  return params;
}

/** Parses a JSON request body and validates it with `schema`; PEER_BAD_REQUEST otherwise. */
export function parseJsonBody<S extends z.ZodType>(req: RouteRequest, schema: S): z.infer<S> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(req.body).toString('utf8'));
  } catch {
    throw new FerryError('PEER_BAD_REQUEST', 'request body is not JSON');
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new FerryError('PEER_BAD_REQUEST', 'request body does not match the schema', {
      hints: r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    });
  }
  return r.data;
}

function tooLarge(max: number): FerryError {
  return new FerryError(
    'PEER_PAYLOAD_TOO_LARGE',
    max === 0 ? 'this endpoint takes no request body' : 'request body too large',
    { hints: [`limit: ${max} bytes`] },
  );
}

/**
 * Refuses, from the headers alone, a body the route cannot take: any body when `max` is 0, a
 * declared length over `max`. Node has already refused a malformed Content-Length.
 */
function checkDeclaredBody(req: IncomingMessage, max: number): void {
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  const declared = cl === undefined ? 0 : Number(cl);
  if (max === 0 && (te !== undefined || declared !== 0)) throw tooLarge(0);
  if (!Number.isFinite(declared) || declared > max) throw tooLarge(max);
}

async function readBody(req: IncomingMessage, max: number): Promise<Uint8Array> {
  if (max === 0) return new Uint8Array(0);
  const chunks: Buffer[] = [];
  let len = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    len += chunk.length;
    if (len > max) throw tooLarge(max);
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks, len));
}

export class HttpServer {
  readonly #opts: HttpServerOptions;
  readonly #routes: CompiledRoute[];
  readonly #log: Logger;
  readonly #replay: ReplayCache;
  readonly #addressRate: RateLimiter;
  readonly #keyRate: RateLimiter;
  readonly #perAddress = new Map<string, number>();
  readonly #stopping = new AbortController();
  #server: Server | null = null;
  #starting: Promise<void> | null = null;
  #port = 0;

  constructor(opts: HttpServerOptions) {
    this.#opts = opts;
    this.#routes = opts.routes.map(compile);
    this.#log = opts.log ?? createLogger({ component: 'http' });
    this.#replay = opts.replay ?? new ReplayCache();
    this.#addressRate = new RateLimiter(opts.addressRate ?? HTTP_LIMITS.addressRate);
    this.#keyRate = new RateLimiter(opts.keyRate ?? HTTP_LIMITS.keyRate);
  }

  /** Open sockets per remote address (for tests and diagnostics). */
  get connections(): number {
    let n = 0;
    for (const c of this.#perAddress.values()) n += c;
    return n;
  }

  get isStarted(): boolean {
    return this.#server !== null && this.#starting === null;
  }

  get port(): number {
    if (!this.#server) throw new FerryError('INTERNAL', 'server not started');
    return this.#port;
  }

  /** `http://HOST:PORT` once started. */
  get url(): string {
    return `http://${this.#opts.host ?? '127.0.0.1'}:${this.port}`;
  }

  /** Listens; idempotent. On failure the socket is released and the error rethrown. */
  async start(): Promise<void> {
    if (this.#server && !this.#starting) return;
    if (this.#starting) return this.#starting;
    const o = this.#opts;
    const requestTimeout = o.requestTimeoutMs ?? HTTP_LIMITS.requestTimeoutMs;
    const headersTimeout = Math.min(o.headersTimeoutMs ?? HTTP_LIMITS.headersTimeoutMs, requestTimeout);
    const server = createServer(
      {
        requestTimeout,
        headersTimeout,
        keepAliveTimeout: o.keepAliveTimeoutMs ?? HTTP_LIMITS.keepAliveTimeoutMs,
        // How often Node checks the two timeouts above: often enough to honour short ones.
        connectionsCheckingInterval: Math.max(50, Math.min(headersTimeout, 30_000) / 4),
      },
      (req, res) => {
        this.#handle(req, res).catch((e) => {
          this.#log.error('request handling failed', { error: e as Error });
          if (!res.headersSent) res.writeHead(500);
          res.end();
        });
      },
    );
    server.maxConnections = o.maxConnections ?? HTTP_LIMITS.maxConnections;
    server.setTimeout(o.idleTimeoutMs ?? HTTP_LIMITS.idleTimeoutMs);
    const perAddressCap = o.maxConnectionsPerAddress ?? HTTP_LIMITS.maxConnectionsPerAddress;
    server.on('connection', (socket) => {
      const addr = socket.remoteAddress ?? '';
      const n = this.#perAddress.get(addr) ?? 0;
      if (n >= perAddressCap) {
        socket.destroy();
        return;
      }
      this.#perAddress.set(addr, n + 1);
      socket.once('close', () => {
        const m = (this.#perAddress.get(addr) ?? 1) - 1;
        if (m <= 0) this.#perAddress.delete(addr);
        else this.#perAddress.set(addr, m);
      });
    });
    this.#server = server;
    this.#starting = new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => {
        server.off('listening', onListening);
        this.#server = null;
        server.close();
        reject(
          new FerryError('PEER_UNAVAILABLE', 'cannot listen', {
            cause: e,
            hints: [
              `${this.#opts.host ?? '127.0.0.1'}:${this.#opts.port ?? 0}: ${(e as NodeJS.ErrnoException).code ?? e.message}`,
            ],
          }),
        );
      };
      const onListening = () => {
        server.off('error', onError);
        this.#port = (server.address() as AddressInfo).port;
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(this.#opts.port ?? 0, this.#opts.host ?? '127.0.0.1');
    });
    try {
      await this.#starting;
    } finally {
      this.#starting = null;
    }
  }

  /** Closes the listener and all connections; idempotent. */
  async stop(): Promise<void> {
    if (this.#starting) await this.#starting.catch(() => {});
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    this.#stopping.abort();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ac = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) ac.abort();
    };
    res.on('close', onClose);
    const signal = AbortSignal.any([ac.signal, this.#stopping.signal]);
    const target = req.url ?? '/';
    const method = (req.method ?? 'GET').toUpperCase();
    try {
      // Only origin-form targets (`/path?query`): anything else (`//host`, `http://…`, `*`) is a
      // client error, never an exception of ours.
      if (!target.startsWith('/') || target.startsWith('//')) {
        throw new FerryError('PEER_BAD_REQUEST', 'the request target must be a path (origin form)', {
          hints: [`got: ${target.slice(0, 64)}`],
        });
      }
      let url: URL;
      try {
        url = new URL(target, 'http://localhost');
      } catch (e) {
        throw new FerryError('PEER_BAD_REQUEST', 'the request target is not a valid path', {
          cause: e,
          hints: [`got: ${target.slice(0, 64)}`],
        });
      }
      const segments = url.pathname.split('/').slice(1);
      let allowed = false;
      let found: { route: Route; params: Record<string, string> } | null = null;
      for (const c of this.#routes) {
        const params = match(c, segments);
        if (!params) continue;
        allowed = true;
        if (c.route.method === method || (method === 'HEAD' && c.route.method === 'GET')) {
          found = { route: c.route, params };
          break;
        }
      }
      if (!found) {
        if (allowed) {
          this.#sendJson(res, 405, {
            error: { code: 'PEER_BAD_REQUEST', message: 'method not allowed', hints: [] },
          });
          return;
        }
        throw new FerryError('PEER_NOT_FOUND', 'no such endpoint', {
          hints: [`got: ${method} ${url.pathname}`],
        });
      }
      const { route, params } = found;
      const maxBody =
        route.maxBodyBytes ??
        (route.method === 'POST' || route.method === 'PUT'
          ? (this.#opts.maxBodyBytes ?? HTTP_LIMITS.maxBodyBytes)
          : 0);
      try {
        checkDeclaredBody(req, maxBody);
      } catch (e) {
        // Refused before reading: the unread body must not keep the connection.
        res.setHeader('connection', 'close');
        throw e;
      }
      const now = () => this.#opts.now?.() ?? Date.now();
      if (route.auth === 'signed' && !this.#addressRate.take(req.socket.remoteAddress ?? '', now())) {
        res.setHeader('connection', 'close');
        throw rateLimited('signed requests from this address');
      }
      let body: Uint8Array;
      try {
        body = await readBody(req, maxBody);
      } catch (e) {
        res.setHeader('connection', 'close');
        throw e;
      }
      const rr: RouteRequest = {
        method,
        target,
        params,
        query: url.searchParams,
        headers: req.headers,
        body,
        caller: null,
        signal,
      };
      if (route.auth === 'signed') {
        const caller = authenticateRequest(
          { method, path: target, body, headers: req.headers },
          { freshnessMs: this.#opts.freshnessMs ?? DEFAULT_FRESHNESS_MS, now: now() },
        );
        rr.caller = caller;
        if (route.authorize && !(await route.authorize(caller, rr))) {
          this.#sendJson(res, 403, {
            error: {
              code: 'PEER_UNAUTHORIZED',
              message: 'caller is not authorized for this resource',
              hints: [],
            },
          });
          return;
        }
        // Only authorised keys reach the per-key limit and the replay cache.
        if (!this.#keyRate.take(caller.keyIdHex, now())) throw rateLimited('signed requests from this key');
        recordNonce(caller, this.#replay, now());
      }
      const out = await route.handler(rr);
      await this.#send(req, res, method, out, signal);
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const fe = toFerryError(e);
      if (fe.code === 'ABORTED' && signal.aborted) {
        res.destroy();
        return;
      }
      const status = statusForCode(fe.code);
      if (status === 500) {
        this.#log.error('handler failed', { method, path: target, code: fe.code, error: fe });
        this.#sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error', hints: [] } });
      } else {
        this.#sendJson(res, status, { error: { code: fe.code, message: fe.message, hints: [...fe.hints] } });
      }
    } finally {
      res.off('close', onClose);
    }
  }

  #sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    const buf = Buffer.from(text, 'utf8');
    res.writeHead(status, {
      ...headers,
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(buf.length),
      'cache-control': 'no-store',
    });
    res.end(buf);
  }

  async #send(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    out: RouteResponse,
    signal: AbortSignal,
  ): Promise<void> {
    const head = method === 'HEAD';
    if ('json' in out) {
      this.#sendJson(res, out.status ?? 200, out.json, out.headers);
      return;
    }
    if ('bytes' in out) {
      res.writeHead(out.status ?? 200, {
        ...out.headers,
        'content-type': out.contentType ?? 'application/octet-stream',
        'content-length': String(out.bytes.length),
      });
      res.end(head ? undefined : out.bytes);
      return;
    }
    let size: number;
    try {
      const st = await stat(out.file);
      if (!st.isFile()) throw new Error('not a regular file');
      size = st.size;
    } catch (e) {
      throw new FerryError('PEER_NOT_FOUND', 'file not available', { cause: e });
    }
    const headers: Record<string, string> = {
      ...out.headers,
      'content-type': out.contentType ?? 'application/octet-stream',
      'accept-ranges': 'bytes',
    };
    if (out.etag) headers.etag = `"${out.etag}"`;
    let range = parseRange(req.headers.range, size);
    const ifRange = req.headers['if-range'];
    if (range !== null && ifRange !== undefined && (!out.etag || ifRange !== `"${out.etag}"`)) range = null;
    if (range === 'unsatisfiable') {
      this.#sendJson(
        res,
        416,
        {
          error: {
            code: 'PEER_RANGE_NOT_SATISFIABLE',
            message: 'range not satisfiable',
            hints: [`size: ${size}`],
          },
        },
        { 'content-range': `bytes */${size}` },
      );
      return;
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : size - 1;
    headers['content-length'] = String(size === 0 ? 0 : end - start + 1);
    if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range ? 206 : 200, headers);
    if (head || size === 0) {
      res.end();
      return;
    }
    await pipeline(createReadStream(out.file, { start, end, highWaterMark: 64 * 1024 }), res, { signal });
  }
}

export function createHttpServer(opts: HttpServerOptions): HttpServer {
  return new HttpServer(opts);
}

/**
 * Starts a server on the configured port; with port 0, first on the port remembered from the
 * last start (so that published endpoints stay valid across restarts), else on a fresh one,
 * which is then remembered.
 */
export async function startRemembering(opts: {
  port: number;
  make: (port: number) => HttpServer;
  remembered: () => number | null;
  remember: (port: number) => void;
  log: Logger;
}): Promise<HttpServer> {
  if (opts.port !== 0) {
    const server = opts.make(opts.port);
    await server.start();
    return server;
  }
  const remembered = opts.remembered();
  if (remembered !== null) {
    const server = opts.make(remembered);
    try {
      await server.start();
      return server;
    } catch (e) {
      const err = toFerryError(e);
      opts.log.warn('the remembered port is not available; listening on a new one', {
        port: remembered,
        code: err.code,
        hints: err.hints.join('; '),
      });
    }
  }
  const server = opts.make(0);
  await server.start();
  opts.remember(server.port);
  return server;
}
