/**
 * The executor's loopback ciphertext relay (docs/protocol.md §13.8): the enclave fetches each
 * asset's ciphertext with a plain GET from a one-time URL on 127.0.0.1, and the relay answers by
 * streaming it from the asset's owner agent with a request signed by the node key (the agents
 * serve ciphertext only to the executor's key). Nothing is written to disk and memory stays
 * constant: the relay reads from the agent only as fast as the enclave consumes.
 *
 * - `issue(source)` returns `http://127.0.0.1:PORT/relay/TOKEN`, TOKEN 32 random bytes
 *   (base64url); the first GET consumes it (a second one is 404); `revoke` drops unused ones.
 *   The request to the agent is sent at `issue`, so the agent's answer is already there when the
 *   enclave asks (its body waits, under TCP flow control, until the enclave reads).
 * - When the agent's stream drops, the relay resumes it with `Range: bytes=SENT-` and `If-Range:
 *   ETAG` (at most `maxResumes` times) if the first answer announced `Accept-Ranges: bytes`, an
 *   ETag and a length; otherwise, or when the agent answers the resume with anything but the
 *   matching 206, it fails with RELAY_RESUME_UNSUPPORTED (RELAY_UPSTREAM_FAILED after too many
 *   resumes) and cuts the enclave's connection, so the enclave's fetch fails too.
 *   `failure(token)` tells the daemon why.
 * - Every stream has an overall deadline and so a minimum rate: the time the relay spends waiting
 *   for the agent (its answers, resumes and chunks; not the enclave's reading) may not exceed
 *   `deadlineMs` (30 s) + the length at 64 KiB/s (without a length: + the bytes received so far
 *   at 64 KiB/s). Past it the stream fails with PEER_UNAVAILABLE and is not resumed, so a peer
 *   dripping bytes (which no idle timeout catches) cannot hold the job.
 *
 * The relay is untrusted by design: the enclave hashes what it reads (the hash goes into the
 * receipt, checked against the chain by anyone) and decrypts with age (authenticated), and it
 * compares the app's plaintext with its registered measurement before anything runs.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FerryError, type Logger, toFerryError } from '../kernel/index.ts';
import {
  createPeerClient,
  type EndpointPolicy,
  MIN_READ_RATE_BYTES_PER_S,
  type RequestSigner,
  type StreamResponse,
} from '../net/index.ts';

export type RelaySource = {
  /** The owner agent's base URL (the asset's endpoint on chain). */
  baseUrl: string;
  /** e.g. `/v1/datasets/7/ciphertext`. */
  path: string;
};

export type RelayOptions = {
  signer: RequestSigner;
  /**
   * Asset endpoints come from the chain: parsed strictly and refused when not public unless
   * `localNetwork` (§13.1); default not local.
   */
  endpointPolicy?: EndpointPolicy;
  /** Times a dropped agent stream is resumed with Range; default 5. */
  maxResumes?: number;
  /** Idle timeout of agent connections, ms; default 30 s. */
  timeoutMs?: number;
  /**
   * Base of a stream's overall deadline, ms; default 30 s. The agent has this long plus the
   * stream's length at MIN_READ_RATE_BYTES_PER_S (64 KiB/s) — or, when the agent announced no
   * length, plus the bytes it sent so far at that rate — counting only the time the relay waits
   * for the agent (answers, resumes and chunks), not the time the enclave takes to read.
   */
  deadlineMs?: number;
  /** Unused tokens expire after this long, ms; default 15 min. */
  ttlMs?: number;
  log?: Logger;
};

type Entry = {
  source: RelaySource;
  expires: number;
  client: ReturnType<typeof createPeerClient>;
  /** The agent's first answer, requested at `issue`. */
  first: Promise<StreamResponse>;
  /** Aborts the agent requests of this token (revoke, stop, the enclave went away). */
  ac: AbortController;
};

/** Drops an entry's agent request and any answer that arrived. */
function discard(e: Entry): void {
  e.ac.abort();
  e.first.then(
    (r) => r.body.destroy(),
    () => {},
  );
}

export class CiphertextRelay {
  readonly #opts: RelayOptions;
  readonly #tokens = new Map<string, Entry>();
  readonly #failures = new Map<string, FerryError>();
  readonly #streams = new Set<Entry>();
  #server: Server | null = null;
  #url = '';

  constructor(opts: RelayOptions) {
    this.#opts = opts;
  }

  get url(): string {
    return this.#url;
  }

  /** Listens on 127.0.0.1 (a free port); idempotent. */
  async start(): Promise<void> {
    if (this.#server) return;
    const server = createServer((req, res) => {
      void this.#handle(req, res);
    });
    server.listen(0, '127.0.0.1');
    try {
      await once(server, 'listening');
    } catch (e) {
      throw new FerryError('PEER_UNAVAILABLE', 'the ciphertext relay cannot listen', { cause: e });
    }
    this.#server = server;
    this.#url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Closes the server and cuts streams in flight; idempotent. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const e of this.#streams) e.ac.abort();
    for (const e of this.#tokens.values()) discard(e);
    this.#tokens.clear();
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A one-time URL that streams `source`. */
  issue(source: RelaySource): { url: string; token: string } {
    if (!this.#server) throw new FerryError('INVALID_ARGUMENT', 'the relay is not started');
    const now = Date.now();
    for (const [t, e] of this.#tokens) {
      if (e.expires < now) {
        discard(e);
        this.#tokens.delete(t);
      }
    }
    const token = randomBytes(32).toString('base64url');
    const client = createPeerClient({
      baseUrl: source.baseUrl,
      endpointPolicy: this.#opts.endpointPolicy ?? { localNetwork: false },
      signer: this.#opts.signer,
      timeoutMs: this.#opts.timeoutMs,
    });
    const ac = new AbortController();
    const first = client.stream(source.path, { signed: true, signal: ac.signal });
    first.catch(() => {});
    this.#tokens.set(token, { source, expires: now + (this.#opts.ttlMs ?? 15 * 60_000), client, first, ac });
    return { url: `${this.#url}/relay/${token}`, token };
  }

  /** Drops a token (used or not) and its recorded failure. */
  revoke(token: string): void {
    const e = this.#tokens.get(token);
    if (e) discard(e);
    this.#tokens.delete(token);
    this.#failures.delete(token);
  }

  /** Why the stream of a token failed, if it did. */
  failure(token: string): FerryError | null {
    return this.#failures.get(token) ?? null;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const m = /^\/relay\/([A-Za-z0-9_-]{43})$/.exec(req.url ?? '');
    const entry = m && req.method === 'GET' ? this.#tokens.get(m[1]) : undefined;
    if (!m || !entry || entry.expires < Date.now()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const token = m[1];
    this.#tokens.delete(token);
    const ac = entry.ac;
    this.#streams.add(entry);
    const onClose = () => {
      if (!res.writableFinished) ac.abort();
    };
    res.once('close', onClose);
    try {
      await this.#pump(entry, res);
      res.end();
    } catch (e) {
      const fe = toFerryError(e);
      if (!ac.signal.aborted) {
        this.#failures.set(token, fe);
        this.#opts.log?.warn('relay failed', { code: fe.code, message: fe.message, path: entry.source.path });
      }
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`${fe.code}\n`);
      } else res.destroy();
      // Drop the agent request too (e.g. one still waiting for an answer past the deadline).
      ac.abort();
    } finally {
      res.off('close', onClose);
      this.#streams.delete(entry);
    }
  }

  /** Streams the source into `res`, resuming after drops; see the module comment. */
  async #pump(entry: Entry, res: ServerResponse): Promise<void> {
    const { client, source } = entry;
    const maxResumes = this.#opts.maxResumes ?? 5;
    const where = `${client.baseUrl} GET ${source.path}`;
    // The agent's clock runs only while the relay waits for the agent (see RelayOptions.deadlineMs).
    const base = this.#opts.deadlineMs ?? 30_000;
    const slow = new AbortController();
    const signal = AbortSignal.any([entry.ac.signal, slow.signal]);
    let size: number | null = null;
    let sent = 0;
    let used = 0;
    let since = 0;
    let timer: NodeJS.Timeout | undefined;
    let up: StreamResponse | undefined;
    const budget = () => base + Math.ceil(((size ?? sent) * 1000) / MIN_READ_RATE_BYTES_PER_S);
    const waitAgent = () => {
      since = performance.now();
      timer = setTimeout(
        () => {
          slow.abort();
          up?.body.destroy();
        },
        Math.max(0, budget() - used),
      );
    };
    const waitEnclave = () => {
      clearTimeout(timer);
      used += performance.now() - since;
    };
    const tooSlow = (e: unknown) =>
      new FerryError(
        'PEER_UNAVAILABLE',
        `the agent is too slow: the stream exceeded its deadline of ${budget()} ms`,
        {
          cause: e,
          hints: [
            where,
            `at byte ${sent}`,
            `a stream must arrive within ${base} ms + its length at 64 KiB/s`,
          ],
        },
      );
    waitAgent();
    try {
      await this.#stream(entry, res, {
        where,
        maxResumes,
        signal,
        first: () =>
          new Promise<StreamResponse>((resolve, reject) => {
            const onSlow = () => reject(new Error('no answer within the deadline'));
            slow.signal.addEventListener('abort', onSlow, { once: true });
            entry.first.then(resolve, reject).finally(() => slow.signal.removeEventListener('abort', onSlow));
          }),
        got: (r) => {
          up = r;
          size ??= r.size;
        },
        sent: (n) => {
          sent += n;
          if (size === null) {
            // Without a length the budget grows with each chunk: re-arm the clock.
            waitEnclave();
            waitAgent();
          }
        },
        waitAgent,
        waitEnclave,
      });
    } catch (e) {
      if (slow.signal.aborted && !entry.ac.signal.aborted) throw tooSlow(e);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async #stream(
    entry: Entry,
    res: ServerResponse,
    h: {
      where: string;
      maxResumes: number;
      signal: AbortSignal;
      first: () => Promise<StreamResponse>;
      got: (r: StreamResponse) => void;
      sent: (n: number) => void;
      waitAgent: () => void;
      waitEnclave: () => void;
    },
  ): Promise<void> {
    const { client, source } = entry;
    const { where, maxResumes, signal } = h;
    let up: StreamResponse = await h.first();
    h.got(up);
    const size = up.size;
    const etagHeader = up.headers.etag;
    const etag = typeof etagHeader === 'string' ? etagHeader : null;
    const resumable = up.headers['accept-ranges'] === 'bytes' && etag !== null && size !== null;
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      ...(size !== null ? { 'content-length': String(size) } : {}),
    });
    let sent = 0;
    let resumes = 0;
    for (;;) {
      try {
        for await (const chunk of up.body as AsyncIterable<Buffer>) {
          if (size !== null && sent + chunk.length > size) {
            throw new FerryError('PEER_PROTOCOL', 'the agent sent more bytes than announced', {
              hints: [where],
            });
          }
          sent += chunk.length;
          h.sent(chunk.length);
          if (!res.write(chunk)) {
            h.waitEnclave();
            try {
              await once(res, 'drain', { signal });
            } finally {
              h.waitAgent();
            }
          }
        }
        if (size === null || sent === size) return;
        throw new Error('the agent ended the stream early');
      } catch (e) {
        up.body.destroy();
        if (entry.ac.signal.aborted)
          throw new FerryError('ABORTED', 'the enclave closed the relay stream', { cause: e });
        if (signal.aborted) throw e;
        if (e instanceof FerryError && e.code === 'PEER_PROTOCOL') throw e;
        if (!resumable) {
          throw new FerryError('RELAY_RESUME_UNSUPPORTED', 'the agent stream dropped and cannot be resumed', {
            cause: e,
            hints: [where, `at byte ${sent}`, 'the agent answered without Accept-Ranges, ETag or length'],
          });
        }
        if (resumes >= maxResumes) {
          throw new FerryError('RELAY_UPSTREAM_FAILED', 'the agent stream dropped too often', {
            cause: e,
            hints: [where, `resumes: ${resumes}`, `at byte ${sent}`],
          });
        }
      }
      resumes++;
      this.#opts.log?.info('relay resumes', { path: source.path, at: sent, resume: resumes });
      try {
        up = await client.stream(source.path, {
          signed: true,
          signal,
          range: { start: sent },
          headers: { 'if-range': etag! },
        });
      } catch (e) {
        const fe = toFerryError(e);
        if (fe.code === 'PEER_PROTOCOL') {
          throw new FerryError('RELAY_RESUME_UNSUPPORTED', 'the agent did not resume the stream', {
            cause: fe,
            hints: [where, `at byte ${sent}`, ...fe.hints.slice(1)],
          });
        }
        throw fe;
      }
      h.got(up);
      if (up.status !== 206 || up.headers.etag !== etag || up.size !== size) {
        up.body.destroy();
        throw new FerryError('RELAY_RESUME_UNSUPPORTED', 'the agent did not resume the same file', {
          hints: [where, `status: ${up.status}`, `at byte ${sent}`],
        });
      }
    }
  }
}
