/**
 * The dashboard (DESIGN.md "Components"; docs/protocol.md §13.9): a web page served by Ferry
 * showing nodes, tasks with their timelines, and votes. One component with an explicit
 * lifecycle: `start()` starts the indexer and the HTTP server on a loopback address
 * (idempotent; a failed start rolls back), `stop()` stops both.
 */
import type { ChainReader } from '../chain/index.ts';
import { createLogger, FerryError, type Logger } from '../kernel/index.ts';
import { HttpServer } from '../net/index.ts';
import { Indexer } from './indexer.ts';
import { dashboardRoutes } from './server.ts';

export {
  type AppView,
  type AttemptView,
  type ClaimView,
  type DatasetView,
  Indexer,
  type IndexerOptions,
  type NodeEventView,
  type NodeView,
  type Stage,
  type StatsView,
  type TaskDetail,
  type TaskSummary,
  type VoteView,
} from './indexer.ts';
export { PAGE_CSP } from './page.ts';
export { dashboardRoutes, parseLimit, parseStatuses, parseTaskId } from './server.ts';

/** How long the API waits for the chain's head before reporting it unreachable (headBlock null). */
export const HEAD_TIMEOUT_MS = 3000;

/** Listen addresses the dashboard accepts: loopback only. */
export const LOOPBACK_HOSTS = ['127.0.0.1', '::1', 'localhost'] as const;

export type DashboardOptions = {
  chain: ChainReader;
  chainId: number;
  /** Default 127.0.0.1; must be a loopback address. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  fromBlock?: bigint;
  confirmations?: number;
  pollIntervalMs?: number;
  log?: Logger;
};

export type DashboardReady = {
  ready: true;
  url: string;
  host: string;
  port: number;
  chainId: number;
};

export class Dashboard {
  readonly #opts: DashboardOptions;
  readonly #indexer: Indexer;
  readonly #server: HttpServer;
  readonly #host: string;
  #ready: DashboardReady | null = null;

  constructor(opts: DashboardOptions) {
    const host = opts.host ?? '127.0.0.1';
    if (!(LOOPBACK_HOSTS as readonly string[]).includes(host)) {
      throw new FerryError('INVALID_ARGUMENT', 'host: the dashboard listens on a loopback address only', {
        hints: [`expected: ${LOOPBACK_HOSTS.join(', ')}`, `got: ${JSON.stringify(host)}`],
      });
    }
    const port = opts.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new FerryError('INVALID_ARGUMENT', 'port: expected an integer from 0 to 65535', {
        hints: [`got: ${String(opts.port)}`],
      });
    }
    this.#opts = opts;
    this.#host = host;
    const log = opts.log ?? createLogger({ component: 'dashboard' });
    this.#indexer = new Indexer({
      chain: opts.chain,
      chainId: opts.chainId,
      fromBlock: opts.fromBlock,
      confirmations: opts.confirmations,
      pollIntervalMs: opts.pollIntervalMs,
      log: log.child('indexer'),
    });
    const routes = dashboardRoutes({
      indexer: this.#indexer,
      chainId: opts.chainId,
      head: () => this.#head(),
      allowedHosts: () => {
        const p = this.#server.port;
        return [`127.0.0.1:${p}`, `localhost:${p}`, `[::1]:${p}`];
      },
    });
    this.#server = new HttpServer({ routes, host, port, log: log.child('http') });
  }

  #headCache: { at: number; value: Promise<{ block: bigint; time: number } | null> } | null = null;

  /**
   * The chain's head block and time, or null when the chain does not answer within
   * HEAD_TIMEOUT_MS (the page then shows it disconnected); one read per second at most.
   */
  #head(): Promise<{ block: bigint; time: number } | null> {
    const now = Date.now();
    if (this.#headCache && now - this.#headCache.at < 1000) return this.#headCache.value;
    const read = (async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const timeout = new Promise<null>((r) => {
          timer = setTimeout(() => r(null), HEAD_TIMEOUT_MS);
        });
        const b = await Promise.race([this.#opts.chain.public.getBlock({ blockTag: 'latest' }), timeout]);
        return b && b.number !== null ? { block: b.number, time: Number(b.timestamp) } : null;
      } catch {
        return null;
      } finally {
        clearTimeout(timer);
      }
    })();
    this.#headCache = { at: now, value: read };
    return read;
  }

  get indexer(): Indexer {
    return this.#indexer;
  }

  /** Starts the indexer and the server; idempotent. Resolves with the readiness record. */
  async start(_signal?: AbortSignal): Promise<DashboardReady> {
    if (this.#ready) return this.#ready;
    this.#indexer.start();
    try {
      await this.#server.start();
    } catch (e) {
      await this.#indexer.stop();
      throw e;
    }
    const port = this.#server.port;
    const urlHost = this.#host === '::1' ? '[::1]' : this.#host;
    this.#ready = {
      ready: true,
      url: `http://${urlHost}:${port}/`,
      host: this.#host,
      port,
      chainId: this.#opts.chainId,
    };
    return this.#ready;
  }

  /** Stops the server and the indexer; idempotent. */
  async stop(): Promise<void> {
    this.#ready = null;
    await this.#server.stop();
    await this.#indexer.stop();
  }
}
