/**
 * Entry point of the DEVELOPMENT enclave runtime, for `ferry app run` only (spawned by
 * dev.ts). Same process loop as the attested runtime (process.ts), with a development profile:
 * plaintext sources and dataset names are accepted, only the `sim` backend is, and its sim
 * evidence reports developmentMeasurement() (dev-measure.ts), which differs from the attested
 * runtime's measurement, so no policy that pins the runtime accepts it. The attested entry
 * point (main.ts) never imports this file.
 */
import { startAppWorker } from './app-worker.ts';

const appWorker = startAppWorker();
const [{ main }, { DEVELOPMENT_PROFILE }] = await Promise.all([
  import('./process.ts'),
  import('./dev-measure.ts'),
]);
main({ appWorker }, DEVELOPMENT_PROFILE);
