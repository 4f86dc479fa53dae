/**
 * The chain driver both daemons (node, owner agent) are built on: an event watcher, keyed job
 * lanes and a reconcile tick, with one explicit lifecycle (start, stop, AbortSignal).
 *
 * Job lanes (`JobLanes`):
 * - every job names a lane (e.g. `task/attempt`); jobs of one lane run one after the other, in
 *   the order they were enqueued; jobs of different lanes run concurrently;
 * - at most `maxJobs` jobs run at once overall; a job may also name a bounded pool (e.g.
 *   `enclave`, 2 slots): it waits for a slot of its pool *before* it takes an overall permit,
 *   so jobs waiting for a busy pool never hold permits the other jobs need, and the jobs of a
 *   pool hold at most as many permits as the pool has slots (`maxJobs` must exceed the sum of
 *   the pools: unpooled jobs, e.g. claims and votes, always have a permit left);
 * - a job with a `key` is not enqueued again while one with the same key waits or runs (the
 *   ticket of the existing one is returned): reconcilers may enqueue the same step every tick;
 * - a job's errors are reported to `onError` and never reach the caller; a ticket's `done`
 *   and `recorded` promises always resolve.
 *
 * Crash safety (`ChainDriver`): the cursor (`onCursor(next)`) advances after the jobs that the
 * range's events enqueued have each either called `ctx.recorded()` (their intent is written,
 * see the daemons' state) or ended, never before; a restart resumes from the stored cursor.
 * The reconcile tick never runs twice at once: a tick that finds one in flight is skipped.
 *
 * With `heads` (new-head notifications, src/chain/heads.ts) the watcher polls, and a reconcile
 * runs, as soon as a block arrives (time-driven steps such as a seed that needs the next block
 * do not wait for the tick); head-driven reconciles start at most every `headReconcileGapMs`
 * (default `reconcileEveryMs / 2`),
 * and a head that arrives while one runs is answered by one more once it ends.
 *
 * `stop()` is idempotent: it aborts the signal jobs see, stops the tick and the watcher, skips
 * queued jobs that have not started, and resolves once every running job has ended.
 */
import { FerryError, type Logger, toFerryError } from '../kernel/index.ts';
import {
  type ChainReader,
  type FerryEvent,
  type HeadSource,
  type Watcher,
  watchFerryEvents,
} from '../chain/index.ts';

export type JobContext = {
  /** Aborted when the driver stops. */
  signal: AbortSignal;
  /** Marks the point after which the job's event may be forgotten (its intent is stored). */
  recorded(): void;
};

export type Job = (ctx: JobContext) => Promise<void>;

export type JobTicket = {
  /** Resolves when the job called `recorded()`, or ended (done, failed or skipped). */
  recorded: Promise<void>;
  /** Resolves when the job ended (done, failed or skipped). */
  done: Promise<void>;
};

export type EnqueueOptions = {
  /** Bounded pool the job needs a slot of (declared in the lanes' `pools`). */
  pool?: string;
  /** Deduplication key: not enqueued again while one with this key waits or runs. */
  key?: string;
};

export type JobLanesOptions = {
  /** Jobs running at once, all pools included; default 8. */
  maxJobs?: number;
  /** Bounded pools, by name: slots (e.g. `{enclave: 2}`). */
  pools?: Record<string, number>;
  /** A job failed (not called for aborted jobs once stopping). */
  onError?: (what: string, error: FerryError) => void;
  log?: Logger;
};

/** A counting semaphore with FIFO waiters. */
class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }
}

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new FerryError('INVALID_ARGUMENT', `${name}: expected an integer >= 1`, {
      hints: [`got: ${String(v)}`],
    });
  }
  return v;
}

export class JobLanes {
  readonly #all: Semaphore;
  readonly #pools = new Map<string, Semaphore>();
  readonly #tails = new Map<string, Promise<void>>();
  readonly #keyed = new Map<string, JobTicket>();
  readonly #outstanding = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  readonly #onError: JobLanesOptions['onError'];
  #capture: JobTicket[] | null = null;
  #running = 0;

  constructor(opts: JobLanesOptions = {}) {
    const maxJobs = positiveInt(opts.maxJobs ?? 8, 'maxJobs');
    let pooled = 0;
    for (const [name, n] of Object.entries(opts.pools ?? {})) {
      pooled += positiveInt(n, `pools.${name}`);
      this.#pools.set(name, new Semaphore(n));
    }
    if (maxJobs <= pooled) {
      throw new FerryError('INVALID_ARGUMENT', 'maxJobs: expected more than the slots of all pools', {
        hints: [`maxJobs: ${maxJobs}`, `pool slots: ${pooled}`],
      });
    }
    this.#all = new Semaphore(maxJobs);
    this.#onError = opts.onError;
  }

  /** Aborted once `stop()` was called. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Jobs running now (for tests and metrics). */
  get running(): number {
    return this.#running;
  }

  /** Whether a job with this key waits or runs. */
  has(key: string): boolean {
    return this.#keyed.has(key);
  }

  /** Enqueues a job in a lane; see the module comment. */
  enqueue(lane: string, what: string, fn: Job, opts: EnqueueOptions = {}): JobTicket {
    if (opts.key !== undefined) {
      const existing = this.#keyed.get(opts.key);
      if (existing) {
        this.#capture?.push(existing);
        return existing;
      }
    }
    const pool = opts.pool === undefined ? null : this.#pools.get(opts.pool);
    if (pool === undefined) {
      throw new FerryError('INVALID_ARGUMENT', `pool: no pool named ${opts.pool}`, {
        hints: [`pools: ${[...this.#pools.keys()].join(', ') || 'none'}`],
      });
    }
    let markRecorded!: () => void;
    const recorded = new Promise<void>((resolve) => {
      markRecorded = resolve;
    });
    const before = this.#tails.get(lane) ?? Promise.resolve();
    const signal = this.#abort.signal;
    const done: Promise<void> = (async () => {
      await before;
      if (signal.aborted) return;
      if (pool) await pool.acquire();
      try {
        await this.#all.acquire();
        try {
          if (signal.aborted) return;
          this.#running++;
          try {
            await fn({ signal, recorded: markRecorded });
          } finally {
            this.#running--;
          }
        } finally {
          this.#all.release();
        }
      } catch (e) {
        if (!signal.aborted) this.#onError?.(what, toFerryError(e));
      } finally {
        pool?.release();
      }
    })().finally(() => {
      markRecorded();
      if (this.#tails.get(lane) === done) this.#tails.delete(lane);
      if (opts.key !== undefined && this.#keyed.get(opts.key) === ticket) this.#keyed.delete(opts.key);
      this.#outstanding.delete(done);
    });
    this.#tails.set(lane, done);
    this.#outstanding.add(done);
    const ticket: JobTicket = { recorded, done };
    if (opts.key !== undefined) this.#keyed.set(opts.key, ticket);
    this.#capture?.push(ticket);
    return ticket;
  }

  /**
   * Runs `fn` (synchronous: it enqueues jobs) and returns the tickets of the jobs it enqueued,
   * existing ones found by key included.
   */
  capture(fn: () => void): JobTicket[] {
    const prev = this.#capture;
    const got: JobTicket[] = [];
    this.#capture = got;
    try {
      fn();
    } finally {
      this.#capture = prev;
    }
    return got;
  }

  /** Resolves once every job enqueued so far (and any they enqueue) has ended. */
  async drain(): Promise<void> {
    while (this.#outstanding.size > 0) await Promise.all([...this.#outstanding]);
  }

  /** Aborts, skips queued jobs and waits for the running ones; idempotent. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.drain();
  }
}

export type ChainDriverOptions = JobLanesOptions & {
  chain: ChainReader;
  /** First block to process (the stored cursor). */
  fromBlock: bigint;
  /** Stores the resume point; called once the jobs of a range have recorded their intents. */
  onCursor: (next: bigint) => void;
  /** Dispatches one event, synchronously, by enqueuing jobs on `driver.lanes`. */
  onEvent: (e: FerryEvent) => void;
  /** Time-driven work, never two at once; it should enqueue jobs rather than run them. */
  reconcile?: (signal: AbortSignal) => Promise<void>;
  /** Reconcile period, ms; default 250. */
  reconcileEveryMs?: number;
  confirmations?: number;
  pollIntervalMs?: number;
  /** New-head notifications: poll and reconcile when a block arrives (polling stays the fallback). */
  heads?: HeadSource;
  /** Least time between the start of a reconcile and a head-driven one, ms; default reconcileEveryMs / 2. */
  headReconcileGapMs?: number;
  /** The watcher stopped with an error (see watch.ts). */
  onWatchError?: (e: FerryError) => void;
  log?: Logger;
};

export class ChainDriver {
  readonly lanes: JobLanes;
  readonly #opts: ChainDriverOptions;
  #watcher: Watcher | null = null;
  #tick: NodeJS.Timeout | null = null;
  #reconciling: Promise<void> | null = null;
  /** performance.now() when the last reconcile started. */
  #reconciledAt = Number.NEGATIVE_INFINITY;
  /** A head arrived while a reconcile ran, or inside the gap: one more is due (timer or end). */
  #headDue = false;
  #headTimer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | undefined;
  #started = false;
  #stopped: Promise<void> | null = null;

  constructor(opts: ChainDriverOptions) {
    this.#opts = opts;
    this.lanes = new JobLanes(opts);
  }

  get signal(): AbortSignal {
    return this.lanes.signal;
  }

  /** Starts the watcher and the tick; idempotent; refused after `stop()`. */
  start(signal?: AbortSignal): void {
    if (this.#stopped) throw new FerryError('INVALID_ARGUMENT', 'the driver was stopped; create another');
    if (this.#started) return;
    signal?.throwIfAborted();
    this.#started = true;
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    const o = this.#opts;
    this.#watcher = watchFerryEvents(o.chain, {
      fromBlock: o.fromBlock,
      confirmations: o.confirmations,
      pollIntervalMs: o.pollIntervalMs,
      heads: o.heads,
      signal: this.lanes.signal,
      onEvents: async (events, next) => {
        const tickets = this.lanes.capture(() => {
          for (const e of events) o.onEvent(e);
        });
        await Promise.all(tickets.map((t) => t.recorded));
        if (this.lanes.signal.aborted) return;
        o.onCursor(next);
      },
      onError: (e) => o.onWatchError?.(e),
    });
    if (o.reconcile) {
      this.#tick = setInterval(() => this.reconcileNow(), this.#every());
      this.#unsubscribe = o.heads?.subscribe(() => this.#onHead());
    }
  }

  #every(): number {
    return Math.max(this.#opts.reconcileEveryMs ?? 250, 20);
  }

  /** A block arrived: reconcile now, or once the gap since the last one passed / it ended. */
  #onHead(): void {
    if (this.lanes.signal.aborted) return;
    this.#headDue = true;
    if (this.#reconciling || this.#headTimer) return;
    const gap = this.#opts.headReconcileGapMs ?? this.#every() / 2;
    const wait = this.#reconciledAt + gap - performance.now();
    if (wait <= 0) {
      void this.reconcileNow();
      return;
    }
    this.#headTimer = setTimeout(() => {
      this.#headTimer = null;
      if (this.#headDue) void this.reconcileNow();
    }, wait);
    this.#headTimer.unref();
  }

  /** Starts a reconcile unless one is in flight; resolves when the one in flight ends. */
  reconcileNow(): Promise<void> {
    const fn = this.#opts.reconcile;
    if (!fn || this.lanes.signal.aborted) return Promise.resolve();
    if (this.#reconciling) return this.#reconciling;
    this.#headDue = false;
    this.#reconciledAt = performance.now();
    this.#reconciling = (async () => {
      try {
        await fn(this.lanes.signal);
      } catch (e) {
        if (!this.lanes.signal.aborted) this.#opts.onError?.('reconcile', toFerryError(e));
      } finally {
        this.#reconciling = null;
        if (this.#headDue) this.#onHead();
      }
    })();
    return this.#reconciling;
  }

  /** Stops the tick, the watcher and the lanes (running jobs end first); idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      if (this.#tick) clearInterval(this.#tick);
      this.#tick = null;
      this.#unsubscribe?.();
      if (this.#headTimer) clearTimeout(this.#headTimer);
      this.#headTimer = null;
      const lanes = this.lanes.stop();
      await this.#watcher?.stop();
      await this.#reconciling;
      await lanes;
      await this.lanes.drain();
    })();
    return this.#stopped;
  }
}
