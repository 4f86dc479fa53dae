/**
 * The shared shapes of Proof of Trust: evidence as an attester produces it, the backend that
 * produces it inside an enclave, and the appraisal a verifier returns. Every evidence kind
 * (sim, tpm2, tdx, sev-snp, sgx) speaks these types; docs/protocol.md, "Evidence", is the
 * normative description.
 */
import type { CanonicalValue, ErrorCode } from '../kernel/index.ts';

export type EvidenceKind = 'sim' | 'tpm2' | 'tdx' | 'sev-snp' | 'sgx';
export const EVIDENCE_KINDS: readonly EvidenceKind[] = ['sim', 'tpm2', 'tdx', 'sev-snp', 'sgx'];

/**
 * Evidence: encoded as the tagged canonical object `ferry/evidence/v1`
 * `{kind, reportData, body}`; its SHA-256 (hashTagged) is the evidence hash committed on chain.
 * `reportData` is the 64-byte binding (docs/protocol.md, "Evidence binding"); `body` holds the
 * kind's raw material (quote bytes, certificates, PCR values...) as canonical values.
 */
export type Evidence = {
  kind: EvidenceKind;
  reportData: Uint8Array;
  body: { readonly [key: string]: CanonicalValue };
};

/** Produces evidence for a 64-byte report_data inside the enclave's TEE. */
export interface TeeBackend {
  readonly kind: EvidenceKind;
  collect(reportData: Uint8Array, signal?: AbortSignal): Promise<Evidence>;
}

export type AppraisalStatus = 'affirming' | 'warning' | 'contraindicated';

export type AppraisalReason = { code: ErrorCode; message: string };

/**
 * What a verifier concludes about one piece of evidence. `valid`: every signature, chain and
 * collateral checks out at the appraisal time. `accepted`: valid and allowed by the policy.
 * Hex strings are lowercase without 0x.
 */
export type Appraisal = {
  kind: EvidenceKind;
  valid: boolean;
  accepted: boolean;
  status: AppraisalStatus;
  tcbStatus: string | null;
  advisoryIds: string[];
  measurement: string;
  reportData: string;
  debug: boolean | null;
  reasons: AppraisalReason[];
  /** Kind-specific claims the verdict relied on (hex strings, numbers, booleans). */
  claims: Record<string, string | number | boolean | null>;
};
