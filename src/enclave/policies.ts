/**
 * The development policy pinned to this checkout's enclave runtime (`--policy pinned`, `ferry
 * demo`): it hashes the runtime (src/enclave/measure.ts), so it lives with the runtime, above
 * the protocol that applies it (docs/architecture.md).
 */
import { type AppraisalPolicy, developmentPolicy, parsePolicy } from '../attestation/index.ts';
import { runtimeMeasurement } from './measure.ts';
import { runtimeReferenceValues } from './release.ts';

/** The name of the pinned development policy. */
export const PINNED_POLICY_NAME = 'pinned';

/**
 * The development policy with reference values pinned to this checkout's enclave runtime:
 * `sim` evidence must carry the runtime measurement of src/enclave (what the sim backend puts
 * in its evidence), and `tpm2` evidence must quote PCR 23 (sha256) at the value a node
 * daemon reaches after resetting it and extending it once with
 * runtimeMeasurement([{name: 'ferry/enclave-runtime', content: enclave runtime measurement}])
 * — the release's reference values (`runtimeReferenceValues`). An executor running a modified
 * enclave runtime is then rejected. Every other field is the development policy's (sim
 * allowed: never for production).
 */
export async function pinnedDevelopmentPolicy(): Promise<AppraisalPolicy> {
  return parsePolicy({
    ...developmentPolicy(),
    name: PINNED_POLICY_NAME,
    referenceValues: runtimeReferenceValues(await runtimeMeasurement()),
  });
}
