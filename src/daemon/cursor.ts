/**
 * A chain cursor written at most once per `everyMs` (the daemons' `onCursor`, driver.ts).
 *
 * The state databases commit with `synchronous = FULL` (store.ts): every write is an fsync that
 * blocks the daemon's one thread. The cursor moves at every poll of a busy chain (ten times a
 * second on the devnet), yet it is only where a restart resumes: a cursor written less often
 * makes a restart replay a few more blocks, which the daemons handle anyway (every job checks
 * the chain and its stored intent before it acts). So the newest value is written at once when
 * `everyMs` has passed since the last write, else once that time is up, and by `flush()` (at
 * stop). Never a value the driver has not given: the crash-safety rule of driver.ts holds.
 */
export class ThrottledCursor {
  readonly #write: (next: bigint) => void;
  readonly #everyMs: number;
  #pending: bigint | null = null;
  #last = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(write: (next: bigint) => void, everyMs = 1000) {
    this.#write = write;
    this.#everyMs = everyMs;
  }

  /** The driver's new resume point. */
  set(next: bigint): void {
    this.#pending = next;
    const wait = this.#last + this.#everyMs - Date.now();
    if (wait <= 0) this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), wait);
      this.#timer.unref();
    }
  }

  /** Writes the newest value not yet written, if any. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#pending === null) return;
    const next = this.#pending;
    this.#pending = null;
    this.#last = Date.now();
    this.#write(next);
  }
}
