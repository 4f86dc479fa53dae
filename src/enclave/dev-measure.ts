/**
 * The development runtime's profile and measurement (docs/protocol.md §10.9):
 *
 *   developmentMeasurement = SHA-256( "ferry/enclave-dev/v1" || 0x00 || runtimeMeasurement() )
 *
 * It is what the development entry point's (dev-main.ts) sim evidence reports: never equal to
 * the attested runtime's measurement, so a policy pinning the runtime refuses it
 * (ATTESTATION_MEASUREMENT_MISMATCH). Not imported by the attested entry point (main.ts).
 */
import { createHash } from 'node:crypto';
import { runtimeMeasurement } from './measure.ts';
import type { RuntimeProfile } from './process.ts';

export const DEVELOPMENT_MEASUREMENT_DOMAIN = 'ferry/enclave-dev/v1';

/** The measurement the development runtime's sim evidence reports. */
export async function developmentMeasurement(): Promise<Uint8Array> {
  const m = await runtimeMeasurement();
  return new Uint8Array(
    createHash('sha256').update(`${DEVELOPMENT_MEASUREMENT_DOMAIN}\0`).update(m).digest(),
  );
}

export const DEVELOPMENT_PROFILE: RuntimeProfile = Object.freeze({
  name: 'development',
  plaintext: true,
  hardware: false,
  simMeasurement: developmentMeasurement,
});
