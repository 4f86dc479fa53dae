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

/**
 * The appraisal policy document (docs/protocol.md §9). Its hash (hashTagged
 * 'ferry/appraisal-policy/v1' over the JSON-shaped object with hex strings) goes on chain
 * with a dataset's policy. Reference-value lists: a value is allowed when the list is absent
 * or contains it (lowercase hex). The production default allows every kind but `sim`, no
 * debug, TCB `UpToDate` only, any measurement.
 */
export type AppraisalPolicy = {
  version: 1;
  name: string;
  allowedKinds: EvidenceKind[];
  allowDebug: boolean;
  /** TCB statuses accepted as they are (e.g. Intel `UpToDate`; AMD evaluates to the same names). */
  allowedTcbStatuses: string[];
  /** Advisory ids tolerated; absent = any advisory tolerated when the TCB status is allowed. */
  allowedAdvisoryIds?: string[];
  /** Evidence older than this (by its own timestamp, where the kind has one) is stale. */
  maxEvidenceAgeSeconds: number;
  referenceValues: {
    sim?: { measurement?: string[] };
    tpm2?: {
      pcrDigest?: string[];
      pcrs?: { [bank: string]: { [index: string]: string[] } };
      /** Per bank and PCR index, the measured events of the TCG event log in log order. */
      events?: { [bank: string]: { [index: string]: Tpm2ReferenceEvent[] } };
    };
    tdx?: {
      mrTd?: string[];
      rtmr0?: string[];
      rtmr1?: string[];
      rtmr2?: string[];
      rtmr3?: string[];
      mrSeam?: string[];
    };
    sgx?: { mrEnclave?: string[]; mrSigner?: string[]; isvProdId?: number[]; minIsvSvn?: number };
    'sev-snp'?: {
      measurement?: string[];
      hostData?: string[];
      minTcb?: { bootloader: number; tee: number; snp: number; microcode: number };
      maxVmpl?: number;
      allowMigrationAgent?: boolean;
      allowSmt?: boolean;
    };
  };
};

/** A measured event of a TCG event log as a policy expects it (docs/protocol.md §9). */
export type Tpm2ReferenceEvent = {
  /** TCG event type name (`EV_SEPARATOR`, ...), or `0x` and 8 lowercase hex digits. */
  type: string;
  /** The bank's digest, lowercase hex. */
  digest: string;
  /** What the event measures; used in reasons only (it is part of the policy hash). */
  what?: string;
};

/** Inputs every verifier takes: the policy, the clock, and the binding it must find. */
export type AppraisalContext = {
  policy: AppraisalPolicy;
  /** Injectable clock: collateral, certificates and evidence age are judged at this time. */
  now: Date;
  /** The 64-byte report_data the evidence must carry; absent = not checked (CLI use). */
  expectedReportData?: Uint8Array;
};

/** One verifier per evidence kind. `appraise` never throws for bad evidence: it reports it. */
export interface Verifier {
  readonly kind: EvidenceKind;
  appraise(evidence: Evidence, ctx: AppraisalContext): Promise<Appraisal>;
}
