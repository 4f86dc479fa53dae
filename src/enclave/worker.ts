/**
 * The app's thread: instantiates the (already compiled, memory-limited) WASI module with
 * Ferry's WASI host and calls `_start`. It reports its outcome in the shared counters and
 * one `done` message; the parent thread owns every limit but memory (see runner.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type ImportedMemory, REFUSED_GROW_EXPORT } from './limits.ts';
import type { RingEnd } from './ring.ts';
import { isMemory, Wasm, type WasmImports, type WasmInstance, type WasmModule } from './wasm.ts';
import { InputFailed, OutputLimit, ProcExit, refusedImport, WASI_MODULE, WasiHost } from './wasi.ts';

export type WorkerInput = {
  module: WasmModule;
  importedMemories: ImportedMemory[];
  args: string[];
  stdin: RingEnd | null;
  files: { name: string; ring: RingEnd }[];
  counters: SharedArrayBuffer;
  stdout: SharedArrayBuffer;
  stderr: SharedArrayBuffer;
  maxOutputBytes: number;
  stderrCap: number;
};

/** Slots of the Int32 `counters` array. */
export const C_STDOUT = 0;
export const C_STDERR = 1;
export const C_PAGES = 2;

/** `refusedGrow`: pages asked by the last grow the memory limit refused, 0 if none (limits.ts). */
type Common = { pages: number; stderrTruncated: boolean; refusedGrow: number };
export type WorkerDone =
  | ({ type: 'exit'; code: number } & Common)
  | ({ type: 'trap'; message: string } & Common)
  | ({ type: 'output' } & Common)
  | ({ type: 'input' } & Common)
  | ({ type: 'invalid'; message: string } & Common);

/** Runs the job, then zeroes the plaintext its inputs still hold, whatever the outcome. */
function runAndWipe(input: WorkerInput): WorkerDone {
  const counters = new Int32Array(input.counters);
  const host = new WasiHost({
    args: input.args,
    stdin: input.stdin,
    files: input.files,
    counters,
    stdout: { sab: input.stdout, slot: C_STDOUT, cap: input.maxOutputBytes },
    stderr: { sab: input.stderr, slot: C_STDERR, cap: input.stderrCap },
  });
  try {
    return run(input, host, counters);
  } finally {
    host.wipeInputs();
  }
}

function run(input: WorkerInput, host: WasiHost, counters: Int32Array): WorkerDone {
  const pages = () => (host.memory ? host.memory.buffer.byteLength / 65536 : 0);
  let instance: WasmInstance | undefined;
  const refusedGrow = () => {
    const g = instance?.exports[REFUSED_GROW_EXPORT] as { value?: unknown } | undefined;
    return typeof g?.value === 'number' ? g.value >>> 0 : 0;
  };
  const done = <T extends object>(o: T) => ({
    ...o,
    pages: pages(),
    stderrTruncated: host.stderrTruncated,
    refusedGrow: refusedGrow(),
  });
  const declared = Wasm.Module.imports(input.module);
  const refused = refusedImport(declared, input.importedMemories);
  if (refused) return done({ type: 'invalid' as const, message: refused });
  const imports: WasmImports = {};
  const wasiNeeded: string[] = [];
  for (const imp of declared) {
    if (imp.module === WASI_MODULE && imp.kind === 'function') {
      wasiNeeded.push(imp.name);
      continue;
    }
    const mem = input.importedMemories.find((m) => m.module === imp.module && m.name === imp.name)!;
    host.memory = new Wasm.Memory({ initial: mem.initial, maximum: mem.maximum, shared: true });
    imports[imp.module] ??= {};
    imports[imp.module][imp.name] = host.memory;
  }
  imports.wasi_snapshot_preview1 = host.imports(wasiNeeded);
  try {
    instance = new Wasm.Instance(input.module, imports);
  } catch (e) {
    if (e instanceof ProcExit) return done({ type: 'exit' as const, code: e.code });
    return done({ type: 'invalid' as const, message: `cannot instantiate the app: ${(e as Error).message}` });
  }
  const exported = instance.exports.memory;
  if (!host.memory && isMemory(exported)) host.memory = exported;
  const start = instance.exports._start;
  if (typeof start !== 'function' || !host.memory) {
    return done({
      type: 'invalid' as const,
      message: 'the app must export _start and a memory (WASI command)',
    });
  }
  try {
    (start as () => void)();
    return done({ type: 'exit' as const, code: 0 });
  } catch (e) {
    if (e instanceof ProcExit) return done({ type: 'exit' as const, code: e.code });
    if (e instanceof OutputLimit) return done({ type: 'output' as const });
    if (e instanceof InputFailed) return done({ type: 'input' as const });
    const message = e instanceof Error ? `${e.name}: ${e.message}` : 'unknown trap';
    return done({ type: 'trap' as const, message });
  } finally {
    Atomics.store(counters, C_PAGES, pages());
  }
}

// The job comes in workerData, or (for a worker started ahead of time) as the first message.
if (parentPort) {
  const port = parentPort;
  if (workerData) port.postMessage(runAndWipe(workerData as WorkerInput));
  else port.once('message', (job: WorkerInput) => port.postMessage(runAndWipe(job)));
}
