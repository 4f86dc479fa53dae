/**
 * Every stable error code Ferry emits, with the CLI exit code it maps to.
 *
 * Codes are contracts: scripts match on them. Add new codes; never rename or remove one.
 * Exit codes (STYLE.md): 1 failure, 2 usage or configuration, 3 verification failed,
 * 4 network or peer unavailable (retryable), 70 internal bug.
 */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  verification: 3,
  unavailable: 4,
  internal: 70,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const u = EXIT.usage;
const f = EXIT.failure;
const v = EXIT.verification;
const n = EXIT.unavailable;
const i = EXIT.internal;

export const ERROR_CODES = {
  // --- kernel / general -------------------------------------------------------------
  INTERNAL: i,
  USAGE: u,
  USAGE_UNKNOWN_COMMAND: u,
  USAGE_UNKNOWN_OPTION: u,
  USAGE_MISSING_ARGUMENT: u,
  USAGE_INVALID_ARGUMENT: u,
  CONFIG_INVALID: u,
  CONFIG_FILE_UNREADABLE: u,
  /** A development-only setting (allowSim) on a chain that is not a development chain. */
  CONFIG_DEVELOPMENT_ONLY: u,
  INVALID_ARGUMENT: u,
  INVALID_HEX: u,
  IO_READ_FAILED: f,
  IO_WRITE_FAILED: f,
  ABORTED: f,
  TIMEOUT: n,
  CBOR_NOT_CANONICAL: v,
  CBOR_MALFORMED: v,
  CBOR_UNSUPPORTED_TYPE: u,
  CBOR_WRONG_DOMAIN: v,

  // --- crypto: VRF (RFC 9381) ---------------------------------------------------------
  VRF_INVALID_SECRET_KEY: u,
  VRF_INVALID_PUBLIC_KEY: v,
  VRF_PUBLIC_KEY_SMALL_ORDER: v,
  VRF_PUBLIC_KEY_NON_CANONICAL: v,
  VRF_PROOF_WRONG_LENGTH: v,
  VRF_PROOF_INVALID_GAMMA: v,
  VRF_PROOF_C_OUT_OF_RANGE: v,
  VRF_PROOF_S_OUT_OF_RANGE: v,
  VRF_PROOF_INVALID: v,

  // --- crypto: age --------------------------------------------------------------------
  AGE_NO_MATCH: v,
  AGE_HEADER_INVALID: v,
  AGE_HMAC_INVALID: v,
  AGE_PAYLOAD_INVALID: v,
  AGE_PAYLOAD_TRUNCATED: v,
  AGE_ARMOR_INVALID: v,
  AGE_VERSION_UNSUPPORTED: v,
  AGE_STANZA_INVALID: v,
  AGE_X25519_LOW_ORDER: v,
  AGE_SCRYPT_WORK_FACTOR: v,
  AGE_SCRYPT_NOT_ALONE: v,
  AGE_INVALID_RECIPIENT: u,
  AGE_INVALID_IDENTITY: u,

  // --- crypto: HPKE, signatures, sortition ---------------------------------------------
  HPKE_OPEN_FAILED: v,
  HPKE_INVALID_KEY: u,
  SIGNATURE_INVALID: v,
  SIGNATURE_KEY_INVALID: u,
  SORTITION_INVALID_PARAMETERS: u,

  // --- chain ----------------------------------------------------------------------------
  CHAIN_UNAVAILABLE: n,
  CHAIN_REVERTED: f,
  CHAIN_NOT_DEPLOYED: u,
  CHAIN_KEY_MISSING: u,
  CHAIN_ANVIL_FAILED: f,
  CHAIN_COMPILE_FAILED: i,
  CHAIN_NOT_OWNER: u,
  CHAIN_UNAUTHORIZED: u,
  CHAIN_NOT_FOUND: u,
  CHAIN_INVALID_PARAMETER: u,
  CHAIN_ALREADY_REGISTERED: u,
  CHAIN_INSUFFICIENT_STAKE: u,
  CHAIN_INSUFFICIENT_FUNDS: u,
  CHAIN_ASSET_REVOKED: f,
  CHAIN_ASSET_EXPIRED: f,
  CHAIN_USES_EXHAUSTED: f,
  CHAIN_POLICY_FORBIDS: f,
  CHAIN_WRONG_STATE: f,
  CHAIN_WRONG_ATTEMPT: f,
  CHAIN_TOO_EARLY: f,
  CHAIN_DEADLINE_PASSED: f,
  CHAIN_NOT_ELIGIBLE: f,
  CHAIN_NOT_EXECUTOR: f,
  CHAIN_ALREADY_VOTED: f,
  CHAIN_ALREADY_RELEASED: f,
  CHAIN_NOTHING_TO_WITHDRAW: f,
  CHAIN_TRANSFER_FAILED: f,
  CHAIN_REENTRANCY: f,
  CHAIN_REORG_TOO_DEEP: f,
  CHAIN_ALREADY_CLAIMED: f,
  CHAIN_TOO_MANY_SEATS: f,
  CHAIN_STAKE_LOCKED: f,
  CHAIN_NOT_JAILED: f,
  CHAIN_CHALLENGE_MISMATCH: f,
  CHAIN_NO_FRAUD: f,

  // --- attestation ------------------------------------------------------------------------
  ATTESTATION_MALFORMED: v,
  ATTESTATION_SIGNATURE_INVALID: v,
  ATTESTATION_CHAIN_INVALID: v,
  ATTESTATION_COLLATERAL_EXPIRED: v,
  ATTESTATION_TCB_OUT_OF_DATE: v,
  ATTESTATION_DEBUG_ENABLED: v,
  ATTESTATION_SIMULATION_NOT_ALLOWED: v,
  ATTESTATION_KIND_NOT_ALLOWED: v,
  ATTESTATION_MEASUREMENT_MISMATCH: v,
  ATTESTATION_REPORT_DATA_MISMATCH: v,
  ATTESTATION_NONCE_MISMATCH: v,
  ATTESTATION_PCR_MISMATCH: v,
  ATTESTATION_STALE: v,
  ATTESTATION_POLICY_INVALID: u,
  ATTESTATION_POLICY_DOCUMENT_INVALID: v,
  ATTESTATION_POLICY_NOT_FOUND: v,
  /** The policy has no reference values identifying the software for the evidence's kind (§9). */
  ATTESTATION_NO_REFERENCE_VALUES: v,
  ATTESTATION_BACKEND_UNAVAILABLE: n,
  ATTESTATION_CONFIGURATION_REJECTED: v,
  ATTESTATION_AK_NOT_PROVEN: v,
  ATTESTATION_AK_ATTRIBUTES_INVALID: v,
  ATTESTATION_CREDENTIAL_ACTIVATION_FAILED: v,
  ATTESTATION_TPM2_COMMAND_FAILED: f,
  /** The evidence an executor serves is not the evidence whose hash it committed on chain. */
  ATTESTATION_EVIDENCE_NOT_COMMITTED: v,

  // --- enclave ---------------------------------------------------------------------------
  ENCLAVE_MEASUREMENT_MISMATCH: v,
  ENCLAVE_KEY_UNSEAL_FAILED: v,
  ENCLAVE_APP_INVALID: f,
  ENCLAVE_APP_FAILED: f,
  ENCLAVE_LIMIT_TIME: f,
  ENCLAVE_LIMIT_MEMORY: f,
  ENCLAVE_LIMIT_OUTPUT: f,
  ENCLAVE_PROTOCOL: i,
  ENCLAVE_CRASHED: f,
  ENCLAVE_DATA_UNAVAILABLE: n,
  /** The host asked the enclave for something its task commitments do not say (input, datasets, keys). */
  ENCLAVE_COMMITMENT_MISMATCH: v,
  /** Keys recorded on chain as released never reached the executor before the run deadline. */
  ENCLAVE_KEYS_MISSING: n,

  // --- node, agent, network -----------------------------------------------------------------
  PEER_UNAVAILABLE: n,
  PEER_UNAUTHORIZED: v,
  POLICY_DENIED: v,
  TASK_FAILED: f,
  TASK_NOT_FOUND: u,
  RECEIPT_INVALID: v,
  PEER_NOT_FOUND: f,
  PEER_BAD_REQUEST: u,
  PEER_PROTOCOL: f,
  PEER_RANGE_NOT_SATISFIABLE: u,
  /** A request body on a route that takes none, or larger than the route's limit (HTTP 413). */
  PEER_PAYLOAD_TOO_LARGE: u,
  /** Too many requests from this key or address for now (HTTP 429); retry later. */
  PEER_RATE_LIMITED: n,
  /**
   * A peer endpoint (from the chain or configuration) that this daemon refuses to call: not a
   * bare `http://host[:port]` origin, or a loopback, private, link-local or otherwise
   * non-public destination while the daemon is not configured for a local network (§13.1).
   */
  PEER_ENDPOINT_REFUSED: u,
  STATE_UNAVAILABLE: f,
  STATE_SCHEMA_TOO_NEW: u,
  STATE_CONFLICT: f,
  PROFILE_NOT_FOUND: u,
  PROFILE_EXISTS: u,
  PROFILE_INVALID: u,
  ASSET_NOT_FOUND: u,
  /** A file given as a WebAssembly app is not a WASM binary module (magic and version 1). */
  APP_NOT_WASM: u,
  /** `ferry app new`: the project directory already exists (nothing is overwritten). */
  APP_DIR_EXISTS: u,
  DEVNET_ALREADY_RUNNING: u,
  DEVNET_NOT_RUNNING: u,
  DEVNET_CHILD_FAILED: f,
  /** A key delivery whose owner signature, task, attempt or executor does not check out. */
  KEY_DELIVERY_REFUSED: v,
  /** The loopback relay lost the owner agent's stream and the agent cannot resume it (no Range). */
  RELAY_RESUME_UNSUPPORTED: n,
  /** The loopback relay lost the owner agent's stream more often than it resumes. */
  RELAY_UPSTREAM_FAILED: n,
  // --- node image (src/image/) -----------------------------------------------------------
  /** A pinned input of the node image (a Debian package) is missing or not the pinned bytes. */
  IMAGE_PIN_MISMATCH: v,
  /** A tool the image build needs (apt-get, dpkg-deb) is missing or failed. */
  IMAGE_BUILD_FAILED: f,
  /** A directory given as a node image lacks its files or its manifest does not match them. */
  IMAGE_INVALID: u,
  /** No recorded firmware values for this OVMF build and VM shape: PCR 0/1 cannot be predicted. */
  IMAGE_NO_GOLDEN_VALUES: u,
  /** QEMU or swtpm could not start, or the VM did not power off in time (src/image/vm.ts). */
  IMAGE_BOOT_FAILED: f,
} as const satisfies Record<string, ExitCode>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The CLI exit code for an error code; unknown codes are internal bugs. */
export function exitCodeFor(code: string): ExitCode {
  return (ERROR_CODES as Record<string, ExitCode>)[code] ?? EXIT.internal;
}

/**
 * Whether a failure with this code may succeed when tried again unchanged: every code of the
 * "unavailable" family (exit 4: a chain, peer or backend that did not answer), an abort (the
 * daemon is stopping), and a policy document not found (it may be in a block the endpoint has
 * not seen yet). A daemon retries these and never turns them into a verdict about somebody else.
 */
export function isRetryable(code: string): boolean {
  return (
    exitCodeFor(code) === EXIT.unavailable || code === 'ABORTED' || code === 'ATTESTATION_POLICY_NOT_FOUND'
  );
}
