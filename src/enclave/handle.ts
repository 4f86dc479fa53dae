/**
 * Executor side of an enclave: spawns the enclave process (main.ts, process.ts) with its pipe on fd 3,
 * speaks the request/answer protocol (protocol.ts), and confirms its exit on destroy.
 *
 * The enclave is created for one task: `createEnclave` gives it the task commitments (read
 * from the chain), which it binds into its evidence and enforces (docs/protocol.md §10).
 *
 * Lifecycle: `createEnclave` (spawn + init: keys generated inside, evidence returned) ->
 * `deliverKeys` (HPKE-sealed file keys) -> `run` (once) -> `destroy` (the enclave wipes its
 * keys and exits; the handle waits for the exit and kills it with SIGKILL if it does not
 * exit within `exitTimeoutMs`). Any request after destroy fails with ENCLAVE_PROTOCOL; a
 * process that dies unexpectedly fails the pending request with ENCLAVE_CRASHED.
 */
import { spawn } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Evidence, EvidenceKind } from '../attestation/index.ts';
import {
  type CanonicalValue,
  compileCacheDir,
  decodeTagged,
  describe,
  equalBytes,
  FerryError,
} from '../kernel/index.ts';
import {
  checkCommitments,
  commitmentsHash,
  commitmentsValue,
  type TaskCommitments,
} from '../protocol/index.ts';
import { type BackendSpec, backendSpecToWire } from './backends.ts';
import { DEFAULT_LIMITS, type LimitHit, type Limits } from './limits.ts';
import type { Source } from './process.ts';
import { errorFromMessage, type Message, readFrames, writeFrame } from './protocol.ts';

export type { BackendSpec, Source };

export type CreateEnclaveOptions = {
  /** What the enclave is created for, as the chain fixes it (src/protocol/commitments.ts). */
  commitments: TaskCommitments;
  backend: BackendSpec;
  /** Time allowed for spawn + init (key generation, evidence). Default 15 s. */
  startTimeoutMs?: number;
  /** Time allowed for the process to exit after `destroy` before SIGKILL. Default 2 s. */
  exitTimeoutMs?: number;
  /** Receives the enclave's stderr lines (public facts only). Default: dropped. */
  onLog?: (line: string) => void;
  /**
   * Pre-started, not yet initialised processes (`EnclavePool`, pool.ts) to take one from
   * instead of spawning: the spawn and the runtime's loading are then off the attempt's path.
   * The keys are still made inside, at `init`, for this attempt only.
   */
  pool?: SpawnSource;
};

export type SealedKey = {
  assetId: bigint;
  assetKind: 'app' | 'dataset';
  enc: Uint8Array;
  ciphertext: Uint8Array;
};

/**
 * One run. The app is the committed one (its key is the one released for the committed app
 * id); the datasets are the committed ones in the committed order; the args must hash to the
 * committed input hash. There is no recipient: the enclave encrypts to the committed one.
 */
export type RunJob = {
  app: { source: Source };
  datasets: {
    id: bigint;
    source: Source;
    /** The file name under /data/ (development runtime only; the attested one refuses it). */
    name?: string;
  }[];
  args: string[];
  limits?: Partial<Limits>;
};

export type RunOutcome = {
  /** stdout, age-encrypted to the committed result recipient. */
  result: Uint8Array;
  /** stderr, age-encrypted to the committed result recipient. */
  log: Uint8Array;
  /** `ferry/receipt/v2` bytes and the enclave's Ed25519 signature over them. */
  receipt: Uint8Array;
  signature: Uint8Array;
  outcome: 'exit' | 'trap' | 'limit';
  exitCode: number | null;
  limitHit: LimitHit;
  trap: string | null;
  stderrTruncated: boolean;
  outputBytes: number;
  durationMs: number;
};

export type DestroyReport = { exitCode: number | null; signal: string | null; killed: boolean };

/**
 * After the enclave said the app started, how long past the time limit the handle waits for it
 * to say the app ended before it kills the process (the enclave itself ends every app within the
 * limit + 1 s, §10.5).
 */
export const OUTSIDE_TIME_MARGIN_MS = 2000;

/** The attested runtime's entry point, which createEnclave spawns. */
export const PROCESS_FILE = fileURLToPath(new URL('./main.ts', import.meta.url));
/** The development entry point (`ferry app run`); see dev.ts. */
export const DEV_PROCESS_FILE = fileURLToPath(new URL('./dev-main.ts', import.meta.url));
/**
 * What a handle needs of the enclave's process: a ChildProcess here, or the stand-in of a
 * process inside a VM (src/image/vm-enclave.ts), which emits `exit` (code, signal) once.
 */
export type EnclaveProcess = EventEmitter & {
  readonly pid?: number;
  readonly exitCode: number | null;
  readonly signalCode: string | null;
  kill(signal?: NodeJS.Signals): boolean;
};

export class EnclaveHandle {
  readonly x25519Pub: Uint8Array;
  readonly ed25519Pub: Uint8Array;
  /** The encoded `ferry/evidence/v1` object and its SHA-256. */
  readonly evidenceBytes: Uint8Array;
  readonly evidenceHash: Uint8Array;
  /** commitmentsHash of the commitments the enclave was created for. */
  readonly commitmentsHash: Uint8Array;
  readonly #child: EnclaveProcess;
  readonly #rpc: Rpc;
  readonly #exitTimeoutMs: number;
  #destroyed: Promise<DestroyReport> | undefined;

  /** @internal use createEnclave */
  constructor(child: EnclaveProcess, rpc: Rpc, ready: Message, exitTimeoutMs: number) {
    this.#child = child;
    this.#rpc = rpc;
    this.#exitTimeoutMs = exitTimeoutMs;
    this.x25519Pub = ready.x25519Pub as Uint8Array;
    this.ed25519Pub = ready.ed25519Pub as Uint8Array;
    this.evidenceBytes = ready.evidence as Uint8Array;
    this.evidenceHash = ready.evidenceHash as Uint8Array;
    this.commitmentsHash = ready.commitmentsHash as Uint8Array;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** True once the process has exited. */
  get exited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  /** The evidence the enclave produced at start. */
  evidence(): Evidence {
    const v = decodeTagged('ferry/evidence/v1', this.evidenceBytes) as Record<string, CanonicalValue>;
    return {
      kind: v.kind as EvidenceKind,
      reportData: v.reportData as Uint8Array,
      body: v.body as Evidence['body'],
    };
  }

  /** Hands over HPKE-sealed file keys; the enclave opens them (ENCLAVE_KEY_UNSEAL_FAILED otherwise). */
  async deliverKeys(sealed: SealedKey[]): Promise<void> {
    this.#checkLive('deliverKeys');
    if (!Array.isArray(sealed)) {
      throw new FerryError('INVALID_ARGUMENT', 'sealed must be an array', {
        hints: [`got: ${describe(sealed)}`],
      });
    }
    await this.#rpc.call(
      {
        type: 'keys',
        keys: sealed.map((k) => ({
          assetId: k.assetId,
          assetKind: k.assetKind,
          enc: k.enc,
          ciphertext: k.ciphertext,
        })),
      },
      'keys-ok',
    );
  }

  /**
   * Runs the app once. Throws the enclave's error (e.g. ENCLAVE_COMMITMENT_MISMATCH,
   * ENCLAVE_MEASUREMENT_MISMATCH, AGE_*).
   */
  async run(job: RunJob, signal?: AbortSignal): Promise<RunOutcome> {
    this.#checkLive('run');
    const onAbort = () => this.#child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    // The time limit from outside the process: from `app-started` to `app-ended`.
    const timeoutMs = job.limits?.timeoutMs ?? DEFAULT_LIMITS.timeoutMs;
    let stuck: NodeJS.Timeout | undefined;
    let killed = false;
    const onProgress = (m: Message) => {
      clearTimeout(stuck);
      if (m.type !== 'app-started') return;
      stuck = setTimeout(() => {
        killed = true;
        this.#child.kill('SIGKILL');
      }, timeoutMs + OUTSIDE_TIME_MARGIN_MS);
    };
    try {
      const src = (s: Source) => ({ kind: s.kind, location: s.location, encrypted: s.encrypted });
      const limits: Record<string, number> = {};
      for (const [k, v] of Object.entries(job.limits ?? {})) if (v !== undefined) limits[k] = v;
      const m = await this.#rpc
        .call(
          {
            type: 'run',
            app: { source: src(job.app.source) },
            datasets: job.datasets.map((d) => ({
              id: d.id,
              source: src(d.source),
              ...(d.name === undefined ? {} : { name: d.name }),
            })),
            args: job.args,
            limits,
          },
          'result',
          onProgress,
        )
        .catch((e) => {
          if (!killed) throw e;
          throw new FerryError(
            'ENCLAVE_LIMIT_TIME',
            'the enclave did not end the app at its time limit; it was killed',
            {
              cause: e,
              hints: [`time limit: ${timeoutMs} ms`, 'no receipt: the attempt is abandoned'],
            },
          );
        });
      return {
        result: m.result as Uint8Array,
        log: m.log as Uint8Array,
        receipt: m.receipt as Uint8Array,
        signature: m.signature as Uint8Array,
        outcome: m.outcome as RunOutcome['outcome'],
        exitCode: m.exitCode as number | null,
        limitHit: m.limitHit as LimitHit,
        trap: m.trap as string | null,
        stderrTruncated: m.stderrTruncated === true,
        outputBytes: m.outputBytes as number,
        durationMs: m.durationMs as number,
      };
    } finally {
      clearTimeout(stuck);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  #checkLive(what: string): void {
    if (this.#destroyed) {
      throw new FerryError('ENCLAVE_PROTOCOL', `${what}: the enclave was destroyed`);
    }
  }

  /**
   * Asks the enclave to wipe its keys and exit, then confirms the exit (SIGKILL after
   * `exitTimeoutMs`). Idempotent: later calls return the same report.
   */
  destroy(): Promise<DestroyReport> {
    this.#destroyed ??= (async () => {
      // Whether the exit followed this handle's own SIGKILL (both waits below see the same exit).
      let killedHere = false;
      const exited = new Promise<DestroyReport>((resolve) => {
        if (this.exited) {
          resolve({ exitCode: this.#child.exitCode, signal: this.#child.signalCode, killed: false });
          return;
        }
        this.#child.once('exit', (code, sig) => resolve({ exitCode: code, signal: sig, killed: killedHere }));
      });
      if (!this.exited) {
        let wait: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            this.#rpc.call({ type: 'destroy' }, 'destroyed'),
            new Promise((r) => {
              wait = setTimeout(r, this.#exitTimeoutMs);
            }),
          ]);
        } catch {
          // The process is gone or answered badly: the exit wait below decides.
        } finally {
          clearTimeout(wait);
        }
      }
      this.#rpc.close();
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<DestroyReport>((resolve) => {
        timer = setTimeout(() => {
          killedHere = true;
          this.#child.kill('SIGKILL');
          this.#child.once('exit', (code, sig) => resolve({ exitCode: code, signal: sig, killed: true }));
        }, this.#exitTimeoutMs);
      });
      const report = await Promise.race([exited, killed]);
      clearTimeout(timer);
      return report;
    })();
    return this.#destroyed;
  }
}

/** One request at a time over the pipe. */
class Rpc {
  readonly #pipe: Duplex;
  #pending:
    | { resolve: (m: Message) => void; reject: (e: FerryError) => void; progress?: (m: Message) => void }
    | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #dead: FerryError | undefined;

  constructor(pipe: Duplex) {
    this.#pipe = pipe;
    readFrames(
      pipe,
      (m) => {
        if (m.type === 'app-started' || m.type === 'app-ended') {
          this.#pending?.progress?.(m);
          return;
        }
        const p = this.#pending;
        this.#pending = undefined;
        if (!p) {
          this.fail(new FerryError('ENCLAVE_PROTOCOL', `unexpected enclave message ${m.type}`));
          return;
        }
        p.resolve(m);
      },
      (e) => this.fail(e),
    );
  }

  fail(e: FerryError): void {
    this.#dead ??= e;
    const p = this.#pending;
    this.#pending = undefined;
    p?.reject(e);
  }

  close(): void {
    this.fail(new FerryError('ENCLAVE_PROTOCOL', 'the enclave was destroyed'));
    this.#pipe.destroy();
  }

  /** `progress` receives the enclave's progress messages (`app-started`, `app-ended`) meanwhile. */
  call(msg: Message, expect: string, progress?: (m: Message) => void): Promise<Message> {
    const run = async () => {
      if (this.#dead) throw this.#dead;
      const answer = new Promise<Message>((resolve, reject) => {
        this.#pending = { resolve, reject, progress };
      });
      await writeFrame(this.#pipe, msg).catch((e) => {
        this.fail(new FerryError('ENCLAVE_CRASHED', 'cannot write to the enclave', { cause: e }));
      });
      const m = await answer;
      if (m.type === 'error') throw errorFromMessage(m);
      if (m.type !== expect) {
        throw new FerryError('ENCLAVE_PROTOCOL', `expected ${expect} from the enclave, got ${m.type}`);
      }
      return m;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }
}

/**
 * Spawns an attested enclave process for one attempt and initialises it with the task
 * commitments: it generates its X25519 and Ed25519 keys inside and collects evidence whose
 * report_data binds the commitments and the keys (docs/protocol.md §8, §10). Throws
 * INVALID_ARGUMENT (naming the field) for malformed commitments, before spawning anything.
 */
export function createEnclave(opts: CreateEnclaveOptions): Promise<EnclaveHandle> {
  return startEnclave(PROCESS_FILE, opts);
}

/**
 * An enclave process spawned but not yet initialised: no commitments, no keys, no evidence.
 * `init` (startEnclave) makes it an attempt's enclave; a process is initialised at most once.
 */
export type SpawnedEnclave = {
  readonly entry: string;
  readonly child: EnclaveProcess;
  readonly rpc: Rpc;
  /** Where its stderr lines go from now on (lines before are kept in the tail only). */
  setLog(onLog: ((line: string) => void) | undefined): void;
};

/** Where startEnclave may take an already spawned process from (pool.ts). */
export type SpawnSource = { take(entry: string): SpawnedEnclave | undefined };

/** @internal Spawns the enclave process `entry` (main.ts or dev-main.ts); nothing is sent. */
export function spawnEnclave(entry: string): SpawnedEnclave {
  // The environment holds no secrets: Node's compile cache (compiled public code; it cuts the
  // start-up time by about two thirds), and two settings that keep the resident memory of a
  // long stream low (fewer malloc arenas, a small young generation).
  // The cache is the user's own (compileCacheDir): never a directory another user can write.
  const cacheDir = compileCacheDir('enclave');
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', entry], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    env: {
      ...(cacheDir ? { NODE_COMPILE_CACHE: cacheDir } : {}),
      MALLOC_ARENA_MAX: '2',
      NODE_OPTIONS: '--max-semi-space-size=2',
    },
  });
  return attachProcess(entry, child, child.stdio[3] as Socket, child.stderr);
}

/** Speaks to a started enclave process (a child here, or one in a VM) over its pipe; nothing is sent. */
function attachProcess(
  entry: string,
  child: EnclaveProcess,
  pipe: Duplex,
  stderr: Readable | null,
): SpawnedEnclave {
  const rpc = new Rpc(pipe);
  let stderrTail = '';
  let log: ((line: string) => void) | undefined;
  stderr?.setEncoding('utf8');
  stderr?.on('data', (s: string) => {
    stderrTail = (stderrTail + s).slice(-4000);
    if (log) for (const line of s.split('\n')) if (line) log(line);
  });
  child.on('exit', (code, sig) => {
    rpc.fail(
      new FerryError('ENCLAVE_CRASHED', `the enclave process exited (code ${code}, signal ${sig})`, {
        hints: stderrTail ? [stderrTail.trim().split('\n').slice(-3).join(' | ')] : [],
      }),
    );
  });
  child.on('error', (e) =>
    rpc.fail(new FerryError('ENCLAVE_CRASHED', 'cannot start the enclave process', { cause: e })),
  );
  return {
    entry,
    child,
    rpc,
    setLog: (onLog) => {
      log = onLog;
    },
  };
}

/**
 * @internal Sends `init` to a process for `entry` — a pre-started one from `opts.pool` when it
 * has one, else one spawned now — and returns the attempt's handle.
 */
export async function startEnclave(entry: string, opts: CreateEnclaveOptions): Promise<EnclaveHandle> {
  if (opts === null || typeof opts !== 'object') {
    throw new FerryError('INVALID_ARGUMENT', 'createEnclave expects {commitments, backend}', {
      hints: [`got: ${describe(opts)}`],
    });
  }
  const commitments = checkCommitments(opts.commitments);
  const backend = backendSpecToWire(opts.backend);
  return initEnclave(opts.pool?.take(entry) ?? spawnEnclave(entry), opts, commitments, backend);
}

/**
 * @internal Speaks to an enclave process already started (a child here, or one in a VM) over
 * its pipe: sends `init` and returns the handle. `stderr` carries its log lines, if any.
 */
export function attachEnclave(
  child: EnclaveProcess,
  pipe: Duplex,
  stderr: Readable | null,
  opts: CreateEnclaveOptions,
  commitments: TaskCommitments = checkCommitments(opts.commitments),
  backend: { [k: string]: CanonicalValue } = backendSpecToWire(opts.backend),
): Promise<EnclaveHandle> {
  return initEnclave(attachProcess('', child, pipe, stderr), opts, commitments, backend);
}

/** Sends `init` to a started process that has had none, and returns the attempt's handle. */
async function initEnclave(
  spawned: SpawnedEnclave,
  opts: CreateEnclaveOptions,
  commitments: TaskCommitments,
  backend: { [k: string]: CanonicalValue },
): Promise<EnclaveHandle> {
  spawned.setLog(opts.onLog);
  const { child, rpc } = spawned;
  const startTimeout = opts.startTimeoutMs ?? 15_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    const ready = await Promise.race([
      rpc.call(
        {
          type: 'init',
          commitments: commitmentsValue(commitments),
          backend,
        },
        'ready',
      ),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new FerryError('ENCLAVE_CRASHED', 'the enclave did not start in time')),
          startTimeout,
        );
      }),
    ]);
    if (
      !(ready.commitmentsHash instanceof Uint8Array) ||
      !equalBytes(ready.commitmentsHash, commitmentsHash(commitments))
    ) {
      throw new FerryError('ENCLAVE_PROTOCOL', 'the enclave bound other commitments than those it was given');
    }
    return new EnclaveHandle(child, rpc, ready, opts.exitTimeoutMs ?? 2000);
  } catch (e) {
    clearTimeout(timer);
    throw await endAfterFailedInit(child, rpc, e, opts.exitTimeoutMs ?? 2000);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * After a failed `init`: an enclave that answered with an error (e.g. its backend is
 * unavailable) is asked to `destroy` and exits by itself; one that crashed or did not answer
 * in time is killed. The error gets `details.enclaveExit` = the DestroyReport.
 */
async function endAfterFailedInit(
  child: EnclaveProcess,
  rpc: Rpc,
  e: unknown,
  exitTimeoutMs: number,
): Promise<unknown> {
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const exited = new Promise<DestroyReport>((resolve) => {
    if (gone()) resolve({ exitCode: child.exitCode, signal: child.signalCode, killed: false });
    else child.once('exit', (code, sig) => resolve({ exitCode: code, signal: sig, killed: false }));
  });
  let killed = false;
  const answered = e instanceof FerryError && e.code !== 'ENCLAVE_CRASHED' && e.code !== 'ENCLAVE_PROTOCOL';
  let timer: NodeJS.Timeout | undefined;
  if (answered && !gone()) {
    void rpc.call({ type: 'destroy' }, 'destroyed').catch(() => {});
    timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, exitTimeoutMs);
  } else if (!gone()) {
    killed = true;
    child.kill('SIGKILL');
  }
  const report = await exited;
  clearTimeout(timer);
  rpc.close();
  if (!(e instanceof FerryError)) return e;
  return new FerryError(e.code, e.message, {
    hints: e.hints,
    cause: e.cause,
    details: { ...e.details, enclaveExit: { ...report, killed } },
  });
}
