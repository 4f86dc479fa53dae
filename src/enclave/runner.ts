/**
 * Runs one WASI app under limits: compiles the memory-limited module, starts it in a worker
 * thread, feeds its inputs through shared rings, enforces the wall-time limit by terminating
 * the worker, and collects stdout/stderr from shared buffers.
 *
 * Inputs are async iterables of *authenticated* plaintext chunks (the age stream emits a
 * chunk only after its tag verified). When an input fails, the app is stopped at its next
 * read, having seen only the bytes before the failure, and `runApp` rethrows that error.
 * After the app ends (exit, trap, memory or output limit), the inputs it did not read to the
 * end are drained (decrypted and discarded) so every ciphertext is authenticated and hashed
 * whole; a failure there fails the run too. Only after the time limit are they cancelled (the
 * deadline has passed, and a stalled source must not hold the enclave).
 */
import type { Worker } from 'node:worker_threads';
import { describe, FerryError } from '../kernel/index.ts';
import { startAppWorker } from './app-worker.ts';
import { checkLimits, type LimitHit, type Limits, limitMemory } from './limits.ts';
import { createRing, type RingEnd, type RingWriter } from './ring.ts';
import { refusedImport, STDERR_CAP } from './wasi.ts';
import { Wasm, type WasmModule } from './wasm.ts';
import { C_PAGES, C_STDERR, C_STDOUT, type WorkerDone, type WorkerInput } from './worker.ts';

/** An input's plaintext: chunks, or batches of chunks (sent to the app's thread together). */
export type InputChunks = AsyncIterable<Uint8Array | readonly Uint8Array[]>;

export type AppInput = { name: string; chunks: InputChunks };

export type RunAppOptions = {
  /** The plaintext WASI module. */
  module: Uint8Array;
  /** argv[1..] of the app. */
  args?: string[];
  /** Fed to stdin; null/absent = empty stdin. */
  stdin?: InputChunks | null;
  /**
   * The inputs' chunks are handed over: the runner may transfer a chunk's memory to the app's
   * thread (which zeroes it once read), leaving it detached (length 0). The caller must not use
   * a chunk after it was yielded, and zeroes those it still can (length > 0). Default false:
   * chunks are copied.
   */
  inputsOwned?: boolean;
  /** Files under /data/ (read-only, sequential, each opened once). */
  files?: AppInput[];
  limits?: Partial<Limits>;
  /** A worker from `startAppWorker()` (app-worker.ts, started ahead of time); default: a new one. */
  worker?: Worker;
  /** Bytes in flight per input (power of two); default 8 MiB for stdin, 4 MiB per /data file. */
  ringBytes?: number;
  /** Called when the app is handed to its thread (after compilation), and when it has ended (before the inputs are drained). */
  onAppStarted?: () => void;
  onAppEnded?: () => void;
};

export type AppOutcome = 'exit' | 'trap' | 'limit';

export type RunAppResult = {
  outcome: AppOutcome;
  /** The app's exit status (proc_exit or 0 when `_start` returned); null if it did not exit. */
  exitCode: number | null;
  limitHit: LimitHit;
  /** The trap message, when the app trapped. */
  trap: string | null;
  stdout: Uint8Array;
  stderr: Uint8Array;
  stderrTruncated: boolean;
  /** Wall time from instantiation to the end of the app, in milliseconds. */
  durationMs: number;
  /** Linear memory pages of the app when it ended. */
  memoryPages: number;
};

/** How long a terminated app thread may take to end before it is abandoned (see runApp). */
export const TERMINATE_GRACE_MS = 1000;

let abandoned = false;

/**
 * True once an app thread ignored its termination and was abandoned. Such a thread also blocks
 * the process's own exit (Node joins its threads on `process.exit`), so the enclave process then
 * ends itself with SIGKILL (process.ts).
 */
export function appThreadAbandoned(): boolean {
  return abandoned;
}

/**
 * Compiles the module with the memory limit applied; ENCLAVE_APP_INVALID if it is not WASM or
 * imports anything but WASI preview 1 functions (and the memory the limiter rewrote), naming
 * the import. Nothing is instantiated here.
 */
export async function compileLimited(
  bytes: Uint8Array,
  memoryMb: number,
): Promise<{ module: WasmModule; limited: ReturnType<typeof limitMemory> }> {
  const limited = limitMemory(bytes, memoryMb);
  let module: WasmModule;
  try {
    module = await Wasm.compile(limited.bytes);
  } catch (e) {
    throw new FerryError('ENCLAVE_APP_INVALID', 'the app does not compile as WebAssembly', {
      cause: e,
      hints: [(e as Error).message],
    });
  }
  const refused = refusedImport(Wasm.Module.imports(module), limited.importedMemories);
  if (refused) {
    throw new FerryError('ENCLAVE_APP_INVALID', refused, {
      hints: ['an app may import only wasi_snapshot_preview1 functions'],
    });
  }
  return { module, limited };
}

type Pump = { writer: RingWriter; done: Promise<void>; cancel: () => void; error: () => unknown };

function pump(chunks: InputChunks, writer: RingWriter, owned: boolean): Pump {
  let cancelled = false;
  let failure: unknown;
  const done = (async () => {
    try {
      for await (const item of chunks) {
        if (cancelled) break;
        const sent = writer.write(item instanceof Uint8Array ? [item] : item, owned);
        if (sent) await sent;
      }
      writer.close();
    } catch (e) {
      failure = e;
      writer.close(true);
    }
  })();
  return {
    writer,
    done,
    cancel: () => {
      cancelled = true;
      writer.stop();
    },
    error: () => failure,
  };
}

/**
 * Runs the app to its end or to a limit. Returns the outcome; throws ENCLAVE_APP_INVALID
 * (not WASM, non-WASI imports, no `_start`), ENCLAVE_LIMIT_MEMORY when the initial memory
 * is above the limit, or the error of a failed input (e.g. AGE_PAYLOAD_TRUNCATED).
 */
export async function runApp(opts: RunAppOptions): Promise<RunAppResult> {
  const limits = checkLimits(opts.limits);
  const args = opts.args ?? [];
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string' || a.includes('\0'))) {
    throw new FerryError('INVALID_ARGUMENT', 'args must be strings without NUL', {
      hints: [`got: ${describe(args)}`],
    });
  }
  const { module, limited } = await compileLimited(opts.module, limits.memoryMb);
  const pumps: Pump[] = [];
  const owned = opts.inputsOwned === true;
  let stdinRing: RingEnd | null = null;
  if (opts.stdin) {
    const { writer, end } = createRing(opts.ringBytes ?? 8 << 20);
    pumps.push(pump(opts.stdin, writer, owned));
    stdinRing = end;
  }
  const files = (opts.files ?? []).map((f) => {
    const { writer, end } = createRing(opts.ringBytes ?? 4 << 20);
    pumps.push(pump(f.chunks, writer, owned));
    return { name: f.name, ring: end };
  });
  const counters = new SharedArrayBuffer(16);
  const stdout = new SharedArrayBuffer(0, { maxByteLength: limits.maxOutputBytes });
  const stderr = new SharedArrayBuffer(0, { maxByteLength: STDERR_CAP });
  const input: WorkerInput = {
    module,
    importedMemories: limited.importedMemories,
    args,
    stdin: stdinRing,
    files,
    counters,
    stdout,
    stderr,
    maxOutputBytes: limits.maxOutputBytes,
    stderrCap: STDERR_CAP,
  };
  const worker = opts.worker ?? startAppWorker();
  const started = performance.now();
  opts.onAppStarted?.();
  worker.postMessage(input, [...(stdinRing ? [stdinRing.port] : []), ...files.map((f) => f.ring.port)]);
  let timedOut = false;
  const finished = await new Promise<{ done?: WorkerDone; crash?: unknown }>((resolve) => {
    let done: WorkerDone | undefined;
    let crash: unknown;
    let grace: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      void worker.terminate();
      // A thread V8 does not interrupt (inside a long native operation) is abandoned after
      // TERMINATE_GRACE_MS: the run ends with limit `time` all the same, its outputs as they
      // were then; the thread ends with the enclave process.
      grace = setTimeout(() => {
        abandoned = true;
        worker.unref();
        resolve({ done: undefined, crash: undefined });
      }, TERMINATE_GRACE_MS);
    }, limits.timeoutMs);
    worker.on('message', (m: WorkerDone) => {
      done = m;
    });
    worker.on('error', (e) => {
      crash = e;
    });
    worker.on('exit', () => {
      clearTimeout(timer);
      clearTimeout(grace);
      resolve({ done, crash });
    });
  });
  const durationMs = performance.now() - started;
  opts.onAppEnded?.();
  const c = new Int32Array(counters);
  const memoryPages = finished.done?.pages ?? Atomics.load(c, C_PAGES);
  const take = (sab: SharedArrayBuffer, n: number) => {
    const view = new Uint8Array(sab, 0, n);
    const copy = view.slice();
    new Uint8Array(sab).fill(0);
    return copy;
  };
  const result: RunAppResult = {
    outcome: 'exit',
    exitCode: null,
    limitHit: null,
    trap: null,
    stdout: take(stdout, Atomics.load(c, C_STDOUT)),
    stderr: take(stderr, Atomics.load(c, C_STDERR)),
    stderrTruncated: finished.done?.stderrTruncated ?? false,
    durationMs,
    memoryPages,
  };
  const d = finished.done;
  // The memory limit refused a grow (limits.ts makes each refusal visible) and the app then ended
  // abnormally: that is the limit. An app that coped with the -1 and exited 0 was not stopped.
  const memoryRefused = (d?.refusedGrow ?? 0) !== 0;
  if (timedOut && (!d || d.type === 'input')) {
    result.outcome = 'limit';
    result.limitHit = 'time';
  } else if (!d) {
    const code = (finished.crash as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
      result.outcome = 'limit';
      result.limitHit = 'memory';
    } else {
      for (const p of pumps) p.cancel();
      throw new FerryError('ENCLAVE_CRASHED', 'the app thread ended without an outcome', {
        cause: finished.crash,
        hints: [(finished.crash as Error | undefined)?.message ?? 'no error reported'],
      });
    }
  } else if (d.type === 'invalid') {
    for (const p of pumps) p.cancel();
    throw new FerryError('ENCLAVE_APP_INVALID', d.message);
  } else if (d.type === 'output') {
    result.outcome = 'limit';
    result.limitHit = 'output';
  } else if (d.type === 'input') {
    // The failing pump recorded its error before marking its ring failed.
    for (const p of pumps) p.cancel();
    const failed = pumps.find((p) => p.error() !== undefined);
    throw failed?.error() ?? new FerryError('ENCLAVE_DATA_UNAVAILABLE', 'an input stream failed');
  } else if (d.type === 'trap') {
    result.outcome = memoryRefused ? 'limit' : 'trap';
    result.limitHit = memoryRefused ? 'memory' : null;
    result.trap = d.message;
  } else {
    result.exitCode = d.code;
    if (d.code !== 0 && memoryRefused) result.limitHit = 'memory';
  }
  // Drain unless the time limit ended the app (authenticate and hash every input whole); cancel
  // after the time limit. A cancelled pump stops at its next chunk; it is not awaited (its
  // source may be slow).
  const drain = result.limitHit !== 'time';
  for (const p of pumps) {
    if (drain) p.writer.stop();
    else p.cancel();
  }
  if (drain) {
    await Promise.all(pumps.map((p) => p.done));
    const failed = pumps.find((p) => p.error() !== undefined);
    if (failed) {
      result.stdout.fill(0);
      throw failed.error();
    }
  }
  return result;
}
