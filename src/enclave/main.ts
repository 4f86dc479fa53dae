/**
 * Entry point of the enclave process (spawned by handle.ts). It starts the app's thread first,
 * so that its start-up overlaps the loading of the runtime, then runs process.ts's main loop
 * on fd 3.
 */
import { startAppWorker } from './app-worker.ts';

const appWorker = startAppWorker();
const { main } = await import('./process.ts');
main({ appWorker });
