/**
 * Starting the app's worker thread. Kept free of other imports so the enclave's entry point
 * (main.ts) can start the thread before it loads the rest of the runtime.
 */
import { Worker } from 'node:worker_threads';

/** The environment of the enclave's threads: the compile cache's directory, nothing else. */
export function workerEnv(): Record<string, string> {
  const dir = process.env.NODE_COMPILE_CACHE;
  return dir ? { NODE_COMPILE_CACHE: dir } : {};
}

/**
 * Starts an app worker thread that waits for its job (loading it ahead of time takes its
 * start-up off the run). Give it to exactly one `runApp`, or `terminate()` it.
 */
export function startAppWorker(): Worker {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), {
    // Only the compile cache's directory (public; without it the thread strips the types of
    // its TypeScript modules again, loading the type stripper: ~50 ms of CPU per thread). The
    // app never sees this environment (its WASI environment is empty, wasi.ts).
    env: workerEnv(),
    stdout: true,
    stderr: true,
    resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
  });
  worker.stdout?.resume();
  worker.stderr?.resume();
  return worker;
}
