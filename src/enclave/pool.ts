/**
 * Pre-started enclave processes (docs/protocol.md §10.1, "Pre-started processes"): an executor
 * keeps `size` attested enclave processes spawned and loaded but not initialised, so that an
 * attempt's `createEnclave` skips the spawn and the loading of the runtime (most of its time).
 *
 * A pooled process holds nothing: no commitments, no keys, no evidence. Each is taken once, for
 * one attempt, and `init` then makes its keys inside for that attempt only, exactly as in a
 * process spawned on demand; a process is never returned to the pool. An idle process that
 * exits is dropped (its pipe failed); one that is taken is replaced at once. A pooled process
 * whose executor dies sees its pipe close and exits (§10.1).
 */
import { FerryError } from '../kernel/index.ts';
import { PROCESS_FILE, type SpawnedEnclave, type SpawnSource, spawnEnclave } from './handle.ts';

export type EnclavePoolOptions = {
  /** Processes kept ready (0-16). */
  size: number;
  /** The entry point the pool spawns; default the attested runtime (main.ts). */
  entry?: string;
};

/** Idle processes that died before being taken, in a row, after which the pool stops refilling. */
const MAX_IDLE_DEATHS = 3;

export class EnclavePool implements SpawnSource {
  readonly #entry: string;
  readonly #size: number;
  readonly #idle: SpawnedEnclave[] = [];
  #closed = false;
  #deaths = 0;

  constructor(opts: EnclavePoolOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 0 || opts.size > 16) {
      throw new FerryError('INVALID_ARGUMENT', 'EnclavePool: size must be an integer from 0 to 16', {
        hints: [`got: ${String(opts.size)}`],
      });
    }
    this.#entry = opts.entry ?? PROCESS_FILE;
    this.#size = opts.size;
    this.#fill();
  }

  /** Processes ready now. */
  get ready(): number {
    return this.#idle.length;
  }

  /** The process ids of the processes ready now, oldest first. */
  idlePids(): number[] {
    return this.#idle.flatMap((p) => (p.child.pid === undefined ? [] : [p.child.pid]));
  }

  /** Takes a ready process for `entry` (undefined when none is), and starts its replacement. */
  take(entry: string): SpawnedEnclave | undefined {
    if (this.#closed || entry !== this.#entry) return undefined;
    // A taken process is no longer idle: its exit is the attempt's business (the pool's own
    // listener finds it gone from the idle list and does nothing).
    const p = this.#idle.shift();
    if (p) this.#deaths = 0;
    this.#fill();
    return p;
  }

  /** Kills every idle process and stops refilling. */
  close(): void {
    this.#closed = true;
    for (const p of this.#idle.splice(0)) {
      p.rpc.close();
      p.child.kill('SIGKILL');
    }
  }

  #fill(): void {
    while (!this.#closed && this.#deaths < MAX_IDLE_DEATHS && this.#idle.length < this.#size) {
      this.#idle.push(this.#spawn());
    }
  }

  #spawn(): SpawnedEnclave {
    const p = spawnEnclave(this.#entry);
    p.child.once('exit', () => {
      const i = this.#idle.indexOf(p);
      if (i < 0) return;
      this.#idle.splice(i, 1);
      if (this.#closed) return;
      this.#deaths++;
      this.#fill();
    });
    return p;
  }
}
