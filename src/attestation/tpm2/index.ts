/** tpm2 evidence: public face (docs/protocol.md §8, tpm2). */
export {
  ACTIVATION_TAG,
  type ActivationRecord,
  activationFromCanonical,
  activationToCanonical,
  checkActivationRecord,
  credentialFile,
  decodeActivationRecord,
  defaultEkParameters,
  type EkParameters,
  encodeActivationRecord,
  kdfa,
  kdfe,
  type MadeCredential,
  makeCredential,
  signActivationRecord,
} from './activation.ts';
export {
  DEFAULT_PCR_SELECTION,
  expectedRuntimePcr,
  pcrValuesToCanonical,
  RUNTIME_PCR,
  RUNTIME_TAG,
  runtimeMeasurement,
  Tpm2Backend,
  type Tpm2BackendOptions,
  tpm2Nonce,
} from './backend.ts';
export {
  EV,
  type EventLog,
  encodeEventLog,
  eventTypeFromName,
  eventTypeName,
  isMeasured,
  type LogEvent,
  type LogEventInput,
  MAX_EVENT_LOG_BYTES,
  MAX_EVENT_LOG_EVENTS,
  parseEventLog,
  readEventLog,
  replayEventLog,
} from './eventlog.ts';
export {
  computePcrDigest,
  extendPcr,
  type PcrValues,
  parsePcrValues,
  parseSelection,
  pcrValuesFromJson,
  pcrValuesFromSerialized,
  pcrValuesToJson,
  selectionToString,
} from './pcrs.ts';
export {
  type ClockInfo,
  type PcrSelection,
  parseQuoteAttest,
  parseSignature,
  parseTpm2bPublic,
  parseTpmtPublic,
  type QuoteAttest,
  TPM_ALG,
  TPMA_OBJECT,
  type TpmPublic,
  type TpmSignature,
  tpmName,
} from './structures.ts';
export { Swtpm, type SwtpmOptions } from './swtpm.ts';
export { type Tpm2Run, Tpm2Tools, type Tpm2ToolsOptions } from './tools.ts';
export {
  appraiseQuote,
  type QuoteAppraisalInput,
  Tpm2Verifier,
  type Tpm2VerifierOptions,
} from './verifier.ts';
export {
  type AkProofInput,
  type AkProofKind,
  type AkPublic,
  checkChain,
  checkSignature,
  parseAkPublic,
  parseCertificates,
  type QuoteVerification,
  type QuoteVerifyInput,
  verifyQuote,
} from './verify.ts';
