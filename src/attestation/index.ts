/**
 * Attestation (Proof of Trust): public face. Evidence kinds tdx and sgx (Intel DCAP),
 * sev-snp (Ferry's own verifier), tpm2 and sim (re-exported from their index.ts); evidence
 * collection through configfs-tsm; the appraisal policy, the dispatcher and signed
 * EAR-shaped attestation results. docs/protocol.md §8 and §9.
 */
export {
  appraiseEvidence,
  type DefaultVerifiersOptions,
  defaultVerifiers,
  VerifierRegistry,
} from './appraise.ts';
export {
  classifyDcapError,
  type CollateralProvider,
  type DcapCollateral,
  type DcapEvidenceBody,
  type DcapVerified,
  type DcapVerifierOptions,
  DcapCache,
  type DcapCacheOptions,
  defaultDcapCache,
  parseCollateral,
  postSignatureRefusal,
  type SgxClaims,
  SgxVerifier,
  type TdxClaims,
  TdxVerifier,
  verifyDcapQuote,
} from './dcap/verify.ts';
export { checkDcapCrls, type DcapCrlFacts, type ParsedCrl, parseCrl, recheckDcapCrls } from './dcap/crl.ts';
export { INTEL_SGX_ROOT_CA_PEM, intelSgxRootCaDer } from './dcap/roots.ts';
export {
  type AppraisalFacts,
  checkDebug,
  checkKind,
  checkReference,
  checkReportData,
  checkSoftwareIdentified,
  checkTcb,
  decodePolicyDocument,
  developmentPolicy,
  encodePolicyDocument,
  finishAppraisal,
  identifiesSoftware,
  invalidAppraisal,
  MAX_POLICY_DOCUMENT,
  missingReferenceValues,
  POLICY_SCHEMA,
  POLICY_TAG,
  PRODUCTION_POLICY,
  parsePolicy,
  tpm2ProductionPolicy,
  policyCanonicalValue,
  policyHash,
  TCB_STATUSES,
} from './policy.ts';
export {
  AR4SI,
  type AttestationResult,
  attestationResultHash,
  type BuildResultOptions,
  buildAttestationResult,
  decodeSignedResult,
  EVIDENCE_TAG,
  ed25519PublicKey,
  encodeSignedResult,
  evidenceHash,
  RESULT_TAG,
  type SignedAttestationResult,
  signAttestationResult,
  type TrustVector,
  trustVector,
  verifyAttestationResult,
} from './result.ts';
export {
  decodeTcb,
  type GuestPolicy,
  parseSnpReport,
  REPORT_SIZE as SNP_REPORT_SIZE,
  SIGNED_LENGTH as SNP_SIGNED_LENGTH,
  type SnpReport,
  type TcbVersion,
} from './sev-snp/report.ts';
export {
  AMD_ROOT_CHAINS,
  type AmdChain,
  type AmdProduct,
  type AmdRootChainPem,
  type AmdSigningKeyKind,
  builtInChains,
  isTrustedArk,
  parseAmdChain,
} from './sev-snp/roots.ts';
export {
  appraiseSevSnp,
  SevSnpVerifier,
  type SevSnpEvidenceBody,
  type SevSnpVerifierOptions,
  SNP_OIDS,
  type SnpInput,
  type SnpVerified,
  verifySnpReport,
} from './sev-snp/verify.ts';
export {
  buildSnpCertTable,
  DEFAULT_TSM_ROOT,
  parseSnpCertTable,
  reportDataOf,
  SNP_CERT_GUIDS,
  TSM_PROVIDERS,
  TsmBackend,
  type TsmBackendOptions,
  type TsmFs,
  type TsmKind,
} from './tsm/backend.ts';
export * from './sim/index.ts';
export * from './tpm2/index.ts';
export {
  type Appraisal,
  type AppraisalContext,
  type AppraisalPolicy,
  type AppraisalReason,
  type AppraisalStatus,
  EVIDENCE_KINDS,
  type Evidence,
  type EvidenceKind,
  type TeeBackend,
  type Tpm2ReferenceEvent,
  type Verifier,
} from './types.ts';
