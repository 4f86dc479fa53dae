/**
 * The `sim` TeeBackend: a software attester for development and tests. Its evidence body is
 *
 *   {cert, certSignature, debug: true, measurement: bytes(32), signature, simulation: true,
 *    tcbStatus: "Simulation", timestamp: unix seconds}
 *
 * where `signature` is the attester key's Ed25519 signature over the tagged object
 * `ferry/sim-quote/v1` `{debug, measurement, reportData, simulation, tcbStatus, timestamp}`.
 * It is marked as simulation in every field an appraiser reads (kind, simulation, debug,
 * tcbStatus), gives no confidentiality against the host, and a production policy rejects it.
 */
import { describe, FerryError } from '../../kernel/index.ts';
import type { Evidence, TeeBackend } from '../types.ts';
import { signTaggedEd25519 } from './ed25519.ts';
import type { SimAttester } from './root.ts';

export const SIM_QUOTE_TAG = 'ferry/sim-quote/v1';
export const SIM_TCB_STATUS = 'Simulation';

export class SimBackend implements TeeBackend {
  readonly kind = 'sim' as const;
  readonly #attester: SimAttester;
  readonly #measurement: Uint8Array;
  readonly #now: () => Date;

  /** `measurement`: SHA-256 of the enclave runtime (32 bytes). `now`: injectable clock. */
  constructor(opts: { attester: SimAttester; measurement: Uint8Array; now?: () => Date }) {
    if (!(opts?.measurement instanceof Uint8Array) || opts.measurement.length !== 32) {
      throw new FerryError('INVALID_ARGUMENT', 'measurement must be 32 bytes', {
        hints: [`got: ${describe(opts?.measurement)}`],
      });
    }
    this.#attester = opts.attester;
    this.#measurement = Uint8Array.from(opts.measurement);
    this.#now = opts.now ?? (() => new Date());
  }

  async collect(reportData: Uint8Array, signal?: AbortSignal): Promise<Evidence> {
    signal?.throwIfAborted();
    if (!(reportData instanceof Uint8Array) || reportData.length !== 64) {
      throw new FerryError('INVALID_ARGUMENT', 'reportData must be 64 bytes', {
        hints: [`got: ${describe(reportData)}`],
      });
    }
    const quote = {
      debug: true,
      measurement: this.#measurement,
      reportData,
      simulation: true,
      tcbStatus: SIM_TCB_STATUS,
      timestamp: Math.floor(this.#now().getTime() / 1000),
    };
    const signature = signTaggedEd25519(this.#attester.secretKey, SIM_QUOTE_TAG, quote);
    return {
      kind: 'sim',
      reportData: Uint8Array.from(reportData),
      body: {
        cert: this.#attester.cert,
        certSignature: this.#attester.certSignature,
        debug: true,
        measurement: this.#measurement,
        signature,
        simulation: true,
        tcbStatus: SIM_TCB_STATUS,
        timestamp: quote.timestamp,
      },
    };
  }
}
