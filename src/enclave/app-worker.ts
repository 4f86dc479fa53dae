/**
 * Starting the app's worker thread. Kept free of other imports so the enclave's entry point
 * (main.ts) can start the thread before it loads the rest of the runtime.
 */
import { Worker } from 'node:worker_threads';

/**
 * Starts an app worker thread that waits for its job (loading it ahead of time takes its
 * start-up off the run). Give it to exactly one `runApp`, or `terminate()` it.
 */
export function startAppWorker(): Worker {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), {
    env: {},
    stdout: true,
    stderr: true,
    resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
  });
  worker.stdout?.resume();
  worker.stderr?.resume();
  return worker;
}
