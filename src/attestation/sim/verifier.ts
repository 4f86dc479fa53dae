/**
 * SimVerifier: appraises `sim` evidence (docs/protocol.md §10, "sim evidence").
 *
 * Validity: the body has the sim shape; the certificate is signed by one of the configured
 * simulation roots and valid at `ctx.now`; the quote signature verifies under the certified
 * attester key. Policy: `sim` among allowedKinds (else ATTESTATION_SIMULATION_NOT_ALLOWED),
 * debug allowed (sim evidence is always debug), report_data equals the expected binding, the
 * evidence is at most maxEvidenceAgeSeconds old (and at most 60 s in the future), and the
 * measurement is among referenceValues.sim.measurement when that list is present. The TCB
 * status is reported as `Simulation` and not checked against allowedTcbStatuses; an accepted
 * sim appraisal therefore has status `warning`, never `affirming`.
 */
import { type CanonicalValue, encodeTagged, equalBytes, toHex } from '../../kernel/index.ts';
import {
  checkDebug,
  checkKind,
  checkReference,
  checkReportData,
  finishAppraisal,
  invalidAppraisal,
} from '../policy.ts';
import type { Appraisal, AppraisalContext, AppraisalReason, Evidence, Verifier } from '../types.ts';
import { SIM_QUOTE_TAG, SIM_TCB_STATUS } from './backend.ts';
import { verifyBytesEd25519 } from './ed25519.ts';
import { decodeSimCert, type SimCert } from './root.ts';

const FUTURE_SKEW_SECONDS = 60;

export class SimVerifier implements Verifier {
  readonly kind = 'sim' as const;
  readonly #roots: Uint8Array[];

  /** `roots`: the public keys of the simulation roots this verifier trusts (32 bytes each). */
  constructor(opts: { roots: Uint8Array[] }) {
    this.#roots = (opts?.roots ?? []).map((r) => Uint8Array.from(r));
  }

  async appraise(evidence: Evidence, ctx: AppraisalContext): Promise<Appraisal> {
    const b = (evidence?.body ?? {}) as Record<string, CanonicalValue>;
    const rd = evidence?.reportData;
    const rdHex = rd instanceof Uint8Array ? toHex(rd) : '';
    const malformed = (message: string) =>
      invalidAppraisal('sim', { code: 'ATTESTATION_MALFORMED', message }, rdHex);
    if (evidence?.kind !== 'sim') return malformed(`not sim evidence (kind ${String(evidence?.kind)})`);
    if (!(rd instanceof Uint8Array) || rd.length !== 64) return malformed('reportData must be 64 bytes');
    const shapeOk =
      b.simulation === true &&
      b.debug === true &&
      b.tcbStatus === SIM_TCB_STATUS &&
      b.measurement instanceof Uint8Array &&
      b.measurement.length === 32 &&
      typeof b.timestamp === 'number' &&
      b.cert instanceof Uint8Array &&
      b.certSignature instanceof Uint8Array &&
      b.signature instanceof Uint8Array &&
      Object.keys(b).length === 8;
    if (!shapeOk) return malformed('sim evidence body has the wrong shape');
    let cert: SimCert;
    try {
      cert = decodeSimCert(b.cert as Uint8Array);
    } catch (e) {
      return malformed((e as Error).message);
    }
    const measurement = toHex(b.measurement as Uint8Array);
    const timestamp = b.timestamp as number;
    const now = Math.floor(ctx.now.getTime() / 1000);
    const validity: AppraisalReason[] = [];
    if (!this.#roots.some((r) => equalBytes(r, cert.rootKey))) {
      validity.push({
        code: 'ATTESTATION_CHAIN_INVALID',
        message: `sim certificate is issued by root ${toHex(cert.rootKey).slice(0, 16)}..., which is not a configured simulation root`,
      });
    } else if (!verifyBytesEd25519(cert.rootKey, b.cert as Uint8Array, b.certSignature as Uint8Array)) {
      validity.push({
        code: 'ATTESTATION_CHAIN_INVALID',
        message: 'sim certificate signature does not verify',
      });
    } else if (now < cert.notBefore || now > cert.notAfter) {
      validity.push({
        code: 'ATTESTATION_CHAIN_INVALID',
        message: 'sim certificate is not valid at this time',
      });
    }
    const quote = encodeTagged(SIM_QUOTE_TAG, {
      debug: true,
      measurement: b.measurement,
      reportData: rd,
      simulation: true,
      tcbStatus: SIM_TCB_STATUS,
      timestamp,
    });
    if (!verifyBytesEd25519(cert.attesterKey, quote, b.signature as Uint8Array)) {
      validity.push({
        code: 'ATTESTATION_SIGNATURE_INVALID',
        message: 'sim evidence signature does not verify',
      });
    }
    const reasons: AppraisalReason[] = [];
    const policy = ctx.policy;
    for (const r of [
      checkKind(policy, 'sim'),
      checkDebug(policy, true),
      checkReportData(ctx.expectedReportData, rd),
      checkReference('sim measurement', policy.referenceValues.sim?.measurement, measurement),
    ]) {
      if (r) reasons.push(r);
    }
    if (now - timestamp > policy.maxEvidenceAgeSeconds) {
      reasons.push({
        code: 'ATTESTATION_STALE',
        message: `sim evidence is ${now - timestamp} s old (policy allows ${policy.maxEvidenceAgeSeconds} s)`,
      });
    } else if (timestamp - now > FUTURE_SKEW_SECONDS) {
      reasons.push({ code: 'ATTESTATION_STALE', message: 'sim evidence is dated in the future' });
    }
    return finishAppraisal({
      kind: 'sim',
      tcbStatus: SIM_TCB_STATUS,
      advisoryIds: [],
      measurement,
      reportData: toHex(rd),
      debug: true,
      reasons,
      validityReasons: validity,
      claims: {
        simulation: true,
        timestamp,
        attesterKey: toHex(cert.attesterKey),
        rootKey: toHex(cert.rootKey),
      },
    });
  }
}
