/**
 * The HTTP client paired with server.ts, on node:http. Every call takes an AbortSignal;
 * signed calls carry the request envelope (envelope.ts) made with the client's signer.
 *
 * Failure kinds:
 * - an endpoint refused by the endpoint policy (endpoint.ts), its text or the addresses its
 *   name resolves to: PEER_ENDPOINT_REFUSED (not retried: the peer must publish another);
 * - 429: PEER_RATE_LIMITED (retry later);
 * - cannot connect, connection reset, idle timeout, 502/503/504: PEER_UNAVAILABLE (exit 4, retry);
 * - 401/403: PEER_UNAUTHORIZED;
 * - other error responses: the peer's code when it is a known Ferry code (INTERNAL becomes
 *   PEER_PROTOCOL: a peer's bug is not ours), otherwise by status;
 * - a 2xx response that does not parse or validate: PEER_PROTOCOL;
 * - the caller's signal: ABORTED.
 * Messages name the peer's base URL and the path, never header values or bodies.
 */
import { Agent, type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { ERROR_CODES, type ErrorCode, FerryError, utf8 } from '../kernel/index.ts';
import type { RequestSigner } from './ed25519.ts';
import { type EndpointPolicy, guardedLookup, parseEndpoint, REFUSED_LOOKUP } from './endpoint.ts';
import { signRequest } from './envelope.ts';
import { formatRange, parseContentRange } from './range.ts';

export type PeerClientOptions = {
  /**
   * `http://127.0.0.1:PORT` (optionally with a path prefix, for URLs the operator gave). With
   * `endpointPolicy`, the base URL is a peer endpoint and parsed strictly (endpoint.ts).
   */
  baseUrl: string;
  /**
   * Set for every base URL that comes from the chain or another party: the URL must be a bare
   * origin, and its destination (literal or resolved) public unless `localNetwork`.
   */
  endpointPolicy?: EndpointPolicy;
  /** Signs requests made with `signed: true`. */
  signer?: RequestSigner;
  /** Idle socket timeout in ms; default 30 s. */
  timeoutMs?: number;
  /**
   * Base of the overall deadline of a bounded read (`json`, `bytes`), ms; default 30 s. A read of up
   * to `maxBytes` must finish within base + maxBytes / MIN_READ_RATE, so a peer dripping bytes
   * cannot hold a job for long (an idle timeout alone would not stop it).
   */
  deadlineMs?: number;
};

/** The slowest whole-answer rate a bounded read allows beyond its base deadline: 64 KiB/s. */
export const MIN_READ_RATE_BYTES_PER_S = 64 * 1024;

export type CallOptions = {
  signal?: AbortSignal;
  /** Overall deadline of this call, ms (bounded reads only; default from the client, above). */
  deadlineMs?: number;
  /** Sign the request with the client's signer. */
  signed?: boolean;
  headers?: Record<string, string>;
};

export type StreamResponse = {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body; the caller must consume or destroy it. */
  body: Readable;
  /** Total size of the representation when known (Content-Range or Content-Length of a 200). */
  size: number | null;
  /** Inclusive byte range of the body within the representation, for 206 responses. */
  range: { start: number; end: number } | null;
};

const MAX_ERROR_BODY = 64 * 1024;

async function readAll(res: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let len = 0;
  try {
    for await (const c of res as AsyncIterable<Buffer>) {
      len += c.length;
      if (len > max) {
        res.destroy();
        throw new FerryError('PEER_PROTOCOL', 'peer response too large', { hints: [`limit: ${max} bytes`] });
      }
      chunks.push(c);
    }
  } catch (e) {
    if (e instanceof FerryError) throw e;
    // The connection ended before the whole answer (reset, or the request aborted).
    throw new FerryError('PEER_UNAVAILABLE', 'peer connection lost before the whole answer', {
      cause: e,
      hints: [`error: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`],
    });
  }
  return Buffer.concat(chunks, len);
}

/** Connection pools for policy-checked peers, apart from the default one (no socket sharing). */
const GUARDED_AGENTS = {
  public: new Agent({ keepAlive: true }),
  local: new Agent({ keepAlive: true }),
};

export class PeerClient {
  readonly baseUrl: string;
  readonly #signer: RequestSigner | undefined;
  readonly #timeoutMs: number;
  readonly #deadlineBaseMs: number;
  readonly #guard: { lookup: ReturnType<typeof guardedLookup>; agent: Agent } | null;

  constructor(opts: PeerClientOptions) {
    this.#signer = opts.signer;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#deadlineBaseMs = opts.deadlineMs ?? 30_000;
    if (opts.endpointPolicy) {
      this.baseUrl = parseEndpoint(opts.baseUrl, opts.endpointPolicy);
      this.#guard = {
        lookup: guardedLookup(opts.endpointPolicy),
        agent: opts.endpointPolicy.localNetwork ? GUARDED_AGENTS.local : GUARDED_AGENTS.public,
      };
      return;
    }
    this.#guard = null;
    let u: URL;
    try {
      u = new URL(opts.baseUrl);
    } catch {
      throw new FerryError('INVALID_ARGUMENT', 'peer base URL is not a URL', {
        hints: [`got: ${opts.baseUrl}`],
      });
    }
    if (u.protocol !== 'http:') {
      throw new FerryError('INVALID_ARGUMENT', 'peer base URL must be http://', {
        hints: [`got: ${u.protocol}`],
      });
    }
    this.baseUrl = u.href.replace(/\/$/, '');
  }

  /** Sends a request and returns the response once headers arrive (any status). */
  async raw(
    method: string,
    path: string,
    opts: CallOptions & { body?: Uint8Array; contentType?: string } = {},
  ): Promise<IncomingMessage> {
    const url = new URL(this.baseUrl + (path.startsWith('/') ? path : `/${path}`));
    const target = url.pathname + url.search;
    const body = opts.body;
    const headers: Record<string, string> = { ...opts.headers };
    if (body) {
      headers['content-type'] = opts.contentType ?? 'application/octet-stream';
      headers['content-length'] = String(body.length);
    }
    if (opts.signed) {
      if (!this.#signer) throw new FerryError('INVALID_ARGUMENT', 'a signed request needs a signer');
      Object.assign(headers, signRequest(this.#signer, { method, path: target, body }));
    }
    const where = `${this.baseUrl} ${method} ${url.pathname}`;
    opts.signal?.throwIfAborted();
    return new Promise<IncomingMessage>((resolve, reject) => {
      const guard = this.#guard ?? {};
      const req = request(url, { method, headers, signal: opts.signal, ...guard }, (res) => {
        req.setTimeout(0);
        const socket = res.socket;
        const onIdle = () => res.destroy(new Error('idle timeout'));
        socket?.setTimeout(this.#timeoutMs);
        socket?.on('timeout', onIdle);
        res.once('close', () => {
          socket?.off('timeout', onIdle);
          socket?.setTimeout(0);
        });
        resolve(res);
      });
      req.setTimeout(this.#timeoutMs, () => {
        req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }));
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (opts.signal?.aborted || e.name === 'AbortError') {
          reject(new FerryError('ABORTED', 'request aborted', { cause: e, hints: [where] }));
          return;
        }
        if (e.code === REFUSED_LOOKUP) {
          reject(
            new FerryError('PEER_ENDPOINT_REFUSED', 'peer endpoint resolves to a non-public address', {
              cause: e,
              hints: [where, 'a daemon on a local (development) network needs --local-network'],
            }),
          );
          return;
        }
        reject(
          new FerryError('PEER_UNAVAILABLE', 'peer unavailable', {
            cause: e,
            hints: [where, `error: ${e.code ?? e.message}`, 'is the peer running? retry later'],
          }),
        );
      });
      req.end(body);
    });
  }

  /** Turns a non-2xx response into the FerryError described at the top of this file. */
  async #fail(res: IncomingMessage, method: string, path: string): Promise<never> {
    const status = res.statusCode ?? 0;
    let peer: { code?: unknown; message?: unknown; hints?: unknown } | undefined;
    try {
      const text = (await readAll(res, MAX_ERROR_BODY)).toString('utf8');
      peer = (JSON.parse(text) as { error?: typeof peer }).error;
    } catch {
      peer = undefined;
    }
    const where = `${this.baseUrl} ${method} ${path.split('?')[0]}`;
    const hints = [where, `status: ${status}`];
    if (Array.isArray(peer?.hints)) {
      for (const h of peer.hints.slice(0, 5))
        if (typeof h === 'string') hints.push(`peer: ${h.slice(0, 200)}`);
    }
    const peerMsg = typeof peer?.message === 'string' ? peer.message.slice(0, 200) : `HTTP ${status}`;
    const details = { status, peer: this.baseUrl };
    if (status === 401 || status === 403) {
      throw new FerryError('PEER_UNAUTHORIZED', `peer refused the request: ${peerMsg}`, { hints, details });
    }
    if (status === 429) {
      throw new FerryError('PEER_RATE_LIMITED', `peer: ${peerMsg}`, { hints, details });
    }
    if (status === 502 || status === 503 || status === 504) {
      throw new FerryError('PEER_UNAVAILABLE', `peer unavailable: ${peerMsg}`, { hints, details });
    }
    const code = typeof peer?.code === 'string' ? peer.code : '';
    if (code in ERROR_CODES && code !== 'INTERNAL') {
      throw new FerryError(code as ErrorCode, `peer: ${peerMsg}`, { hints, details });
    }
    if (status === 404) throw new FerryError('PEER_NOT_FOUND', `peer: ${peerMsg}`, { hints, details });
    if (status === 416) {
      throw new FerryError('PEER_RANGE_NOT_SATISFIABLE', 'range not satisfiable', { hints, details });
    }
    if (status >= 400 && status < 500) {
      throw new FerryError('PEER_BAD_REQUEST', `peer rejected the request: ${peerMsg}`, { hints, details });
    }
    throw new FerryError('PEER_PROTOCOL', `peer failed: ${peerMsg}`, { hints, details });
  }

  /**
   * Sends JSON (when `body` is given) and parses a JSON response, validated with `schema`.
   * Responses larger than `maxBytes` (default 4 MiB) are refused.
   */
  async json<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    opts: CallOptions & { body?: unknown; maxBytes?: number } = {},
  ): Promise<z.infer<S>> {
    const maxBytes = opts.maxBytes ?? 4 << 20;
    return this.#withDeadline(maxBytes, opts, `${method} ${path.split('?')[0]}`, (signal) =>
      this.#json(method, path, schema, { ...opts, maxBytes, signal }),
    );
  }

  /**
   * Runs a bounded read under its overall deadline (base + maxBytes at MIN_READ_RATE_BYTES_PER_S).
   * A read still unfinished then is PEER_UNAVAILABLE (retryable: the peer is too slow), whatever
   * it was doing; the caller's own abort stays ABORTED.
   */
  async #withDeadline<T>(
    maxBytes: number,
    opts: CallOptions,
    what: string,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const ms =
      opts.deadlineMs ?? this.#deadlineBaseMs + Math.ceil((maxBytes * 1000) / MIN_READ_RATE_BYTES_PER_S);
    const deadline = AbortSignal.timeout(ms);
    const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
    try {
      return await fn(signal);
    } catch (e) {
      if (opts.signal?.aborted) {
        if (e instanceof FerryError && e.code === 'ABORTED') throw e;
        throw new FerryError('ABORTED', 'request aborted', { cause: e, hints: [`${this.baseUrl} ${what}`] });
      }
      if (deadline.aborted) {
        throw new FerryError('PEER_UNAVAILABLE', `peer too slow: no whole answer within ${ms} ms`, {
          cause: e,
          hints: [`${this.baseUrl} ${what}`, 'retry later; a bounded read must finish within its deadline'],
        });
      }
      throw e;
    }
  }

  async #json<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    opts: CallOptions & { body?: unknown; maxBytes: number },
  ): Promise<z.infer<S>> {
    const body =
      opts.body === undefined
        ? undefined
        : utf8(JSON.stringify(opts.body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
    const res = await this.raw(method, path, { ...opts, body, contentType: 'application/json' });
    if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) return this.#fail(res, method, path);
    let value: unknown;
    try {
      value = JSON.parse((await readAll(res, opts.maxBytes)).toString('utf8'));
    } catch (e) {
      if (e instanceof FerryError) throw e;
      throw new FerryError('PEER_PROTOCOL', 'peer sent a response that is not JSON', {
        cause: e,
        hints: [`${this.baseUrl} ${method} ${path.split('?')[0]}`],
      });
    }
    const r = schema.safeParse(value);
    if (!r.success) {
      throw new FerryError('PEER_PROTOCOL', 'peer response does not match the expected shape', {
        hints: [
          `${this.baseUrl} ${method} ${path.split('?')[0]}`,
          ...r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
        ],
      });
    }
    return r.data;
  }

  /** Sends optional bytes and returns the whole response body (bounded by `maxBytes`, default 16 MiB). */
  async bytes(
    method: string,
    path: string,
    opts: CallOptions & { body?: Uint8Array; contentType?: string; maxBytes?: number } = {},
  ): Promise<Uint8Array> {
    const maxBytes = opts.maxBytes ?? 16 << 20;
    return this.#withDeadline(maxBytes, opts, `${method} ${path.split('?')[0]}`, async (signal) => {
      const res = await this.raw(method, path, { ...opts, signal });
      if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) return this.#fail(res, method, path);
      return new Uint8Array(await readAll(res, maxBytes));
    });
  }

  /**
   * GETs a resource as a stream, optionally one byte range (`end` inclusive). A 206 must match
   * the requested start; a 200 to a range request (the server ignored Range) is accepted only
   * when the range started at 0.
   */
  async stream(
    path: string,
    opts: CallOptions & { range?: { start: number; end?: number } } = {},
  ): Promise<StreamResponse> {
    const headers = { ...opts.headers };
    if (opts.range) headers.range = formatRange(opts.range.start, opts.range.end);
    const res = await this.raw('GET', path, { ...opts, headers });
    const status = res.statusCode ?? 0;
    if (status !== 200 && status !== 206) return this.#fail(res, 'GET', path);
    const protocolError = (hint: string): never => {
      res.destroy();
      throw new FerryError('PEER_PROTOCOL', 'peer answered the range request incorrectly', {
        hints: [`${this.baseUrl} GET ${path.split('?')[0]}`, hint],
      });
    };
    if (status === 206) {
      const cr = parseContentRange(res.headers['content-range']);
      if (!cr) return protocolError('206 without a valid Content-Range');
      if (opts.range && cr.start !== opts.range.start) return protocolError('206 for a different start');
      return {
        status,
        headers: res.headers,
        body: res,
        size: cr.size,
        range: { start: cr.start, end: cr.end },
      };
    }
    if (opts.range && opts.range.start !== 0)
      return protocolError('200 to a range request not starting at 0');
    const len = res.headers['content-length'];
    return {
      status,
      headers: res.headers,
      body: res,
      size: len === undefined ? null : Number(len),
      range: null,
    };
  }
}

export function createPeerClient(opts: PeerClientOptions): PeerClient {
  return new PeerClient(opts);
}
