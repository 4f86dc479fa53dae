/** The enclave runtime: one sandboxed process per task attempt (docs/protocol.md §10). */
export {
  type BackendSpec,
  backendSpecToWire,
  type SimBackendSpec,
  type Tpm2BackendSpec,
  type Tpm2DeviceBackendSpec,
  type TsmBackendSpec,
} from './backends.ts';
export { createDevEnclave } from './dev.ts';
export {
  attachEnclave,
  type CreateEnclaveOptions,
  createEnclave,
  type EnclaveProcess,
  type DestroyReport,
  EnclaveHandle,
  type RunJob,
  type RunOutcome,
  type SealedKey,
  type Source,
  type SpawnSource,
} from './handle.ts';
export { EnclavePool, type EnclavePoolOptions } from './pool.ts';
export {
  checkLimits,
  DEFAULT_LIMITS,
  type LimitHit,
  type Limits,
  limitMemory,
  MAX_LIMITS,
} from './limits.ts';
export {
  computeRuntimeManifest,
  REPO_ROOT,
  type RuntimeManifest,
  runtimeMeasuredFiles,
  runtimeMeasurement,
} from './measure.ts';
export { PINNED_POLICY_NAME, pinnedDevelopmentPolicy } from './policies.ts';
export { ENCLAVE_MSG_TAG, MAX_FRAME } from './protocol.ts';
export {
  decodeReceipt,
  encodeReceipt,
  RECEIPT_TAG,
  type Receipt,
  receiptToJson,
  signReceipt,
  verifyReceipt,
} from './receipt.ts';
export {
  currentReferenceValues,
  RELEASE_FILE,
  RELEASE_FORMAT,
  RELEASE_POLICY_NAME,
  type ReleaseReferenceValues,
  readPublishedReferenceValues,
  releasePolicy,
  RUNTIME_EVENT,
  type RuntimeReferenceValues,
  runtimePolicy,
  runtimeReferenceValues,
} from './release.ts';
export { type AppInput, type RunAppOptions, type RunAppResult, runApp } from './runner.ts';
