/**
 * Entry point of the attested enclave runtime (spawned by handle.ts). It starts the app's
 * thread first, so that its start-up overlaps the loading of the runtime, then runs
 * process.ts's main loop on fd 3 with the attested profile: encrypted sources only, no
 * development switch. The development entry point (dev-main.ts) is not imported from here.
 */
import { startAppWorker } from './app-worker.ts';

const appWorker = startAppWorker();
const { ATTESTED_PROFILE, main } = await import('./process.ts');
main({ appWorker }, ATTESTED_PROFILE);
