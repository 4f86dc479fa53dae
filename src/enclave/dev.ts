/**
 * The development enclave, for `ferry app run` only (docs/protocol.md §10.9): the same process
 * loop as the attested runtime, started from its own entry point (dev-main.ts), which accepts
 * plaintext app and data files, runs only with the `sim` backend, and reports a measurement of
 * its own (dev-measure.ts) that no policy pinning the attested runtime accepts. Nothing in the
 * attested runtime (main.ts and what it imports) can switch to it.
 */
import { describe, FerryError } from '../kernel/index.ts';
import { type CreateEnclaveOptions, DEV_PROCESS_FILE, type EnclaveHandle, startEnclave } from './handle.ts';

export { developmentMeasurement } from './dev-measure.ts';

/**
 * Spawns a development enclave (sim backend only: INVALID_ARGUMENT for any other) and
 * initialises it with `commitments`, exactly as createEnclave does.
 */
export function createDevEnclave(opts: CreateEnclaveOptions): Promise<EnclaveHandle> {
  if (opts?.backend?.kind !== 'sim') {
    return Promise.reject(
      new FerryError('INVALID_ARGUMENT', 'the development enclave runs only with the sim backend', {
        hints: [`got backend: ${describe(opts?.backend?.kind)}`],
      }),
    );
  }
  return startEnclave(DEV_PROCESS_FILE, opts);
}
