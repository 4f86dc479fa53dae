/**
 * Attestation results, shaped like EAR (draft-ietf-rats-ear) with the AR4SI trustworthiness
 * vector (draft-ietf-rats-ar4si): what a verifier concluded about one piece of evidence, under
 * which policy, signed with the verifier's Ed25519 key over the canonical CBOR of the tagged
 * object `ferry/attestation-result/v1` (docs/protocol.md §9). Its hash (hashTagged) is what a
 * verifier's vote carries on chain. Signing uses crypto/sign.ts (Ed25519 on node:crypto).
 */
import { signingPublicKey, signTagged, verifyTagged } from '../crypto/index.ts';
import {
  type CanonicalValue,
  decodeCanonical,
  encodeCanonical,
  equalBytes,
  FerryError,
  hashTagged,
  isFerryError,
} from '../kernel/index.ts';
import { identifiesSoftware, policyHash } from './policy.ts';
import {
  type Appraisal,
  type AppraisalPolicy,
  type AppraisalStatus,
  EVIDENCE_KINDS,
  type Evidence,
} from './types.ts';

export const RESULT_TAG = 'ferry/attestation-result/v1';
export const EVIDENCE_TAG = 'ferry/evidence/v1';

/** AR4SI claim values (draft-ietf-rats-ar4si, as in Veraison EAR's trustvector). */
export const AR4SI = {
  verifierMalfunction: -1,
  noClaim: 0,
  unexpectedEvidence: 1,
  cryptoValidationFailed: 99,
  instanceIdentity: { trustworthy: 2, untrustworthy: 96, unrecognized: 97 },
  configuration: { approved: 2, noKnownVulnerabilities: 3, unsafe: 32, unsupportable: 96 },
  executables: {
    approvedRuntime: 2,
    approvedBoot: 3,
    unsafeRuntime: 32,
    unrecognizedRuntime: 33,
    contraindicated: 96,
  },
  fileSystem: { approved: 2, unrecognized: 32, contraindicated: 96 },
  hardware: { genuine: 2, unsafe: 32, contraindicated: 96, unrecognized: 97 },
  runtimeOpaque: { encryptedMemory: 2, isolatedMemory: 32, visibleMemory: 96 },
  storageOpaque: { hwKeysEncrypted: 2, swKeysEncrypted: 32, unencrypted: 96 },
  sourcedData: { trusted: 2, untrusted: 32, contraindicated: 96 },
} as const;

/** The eight AR4SI trustworthiness claims, by their EAR names. */
export type TrustVector = {
  'instance-identity': number;
  configuration: number;
  executables: number;
  'file-system': number;
  hardware: number;
  'runtime-opaque': number;
  'storage-opaque': number;
  'sourced-data': number;
};

/** The body of `ferry/attestation-result/v1`. Hex strings lowercase; times in Unix seconds. */
export type AttestationResult = {
  /** EAR status of the appraisal: contraindicated exactly when not accepted. */
  status: AppraisalStatus;
  trustVector: TrustVector;
  kind: Appraisal['kind'];
  valid: boolean;
  accepted: boolean;
  tcbStatus: string | null;
  advisoryIds: string[];
  measurement: string;
  reportData: string;
  debug: boolean | null;
  reasons: { code: string; message: string }[];
  /** The claims the verdict relied on. */
  claims: Record<string, string | number | boolean | null>;
  /** policyHash of the policy applied (32 bytes). */
  policyHash: Uint8Array;
  /** SHA-256 of the tagged evidence `ferry/evidence/v1` (32 bytes). */
  evidenceHash: Uint8Array;
  /** The verifier's identifier (e.g. its node address) and Ed25519 public key. */
  verifierId: string;
  verifierKey: Uint8Array;
  issuedAt: number;
};

export type SignedAttestationResult = { result: AttestationResult; signature: Uint8Array };

const V = AR4SI;

/**
 * The trustworthiness vector of an appraisal. Invalid evidence: instance-identity and
 * hardware `cryptoValidationFailed` (99), the rest no claim. Valid evidence:
 * instance-identity trustworthy (2), or untrustworthy (96) when report_data does not match;
 * configuration 96 when debug or a configuration was refused by the policy, 32 when debug
 * was tolerated, else 2; executables 96 on a measurement mismatch, 33 (unrecognized runtime)
 * when the policy has no reference values identifying the software
 * (ATTESTATION_NO_REFERENCE_VALUES), 2 when reference values matched, else no claim; hardware 2 for TCB UpToDate, 32 for a tolerated other status, 96
 * for a refused one, 97 for `sim`; runtime-opaque 2 for tdx/sev-snp/sgx without debug, 96 for
 * debug or `sim`, no claim for tpm2; file-system, storage-opaque, sourced-data: no claim.
 */
export function trustVector(a: Appraisal, policy?: AppraisalPolicy): TrustVector {
  const codes = new Set(a.reasons.map((r) => r.code));
  const tv: TrustVector = {
    'instance-identity': V.noClaim,
    configuration: V.noClaim,
    executables: V.noClaim,
    'file-system': V.noClaim,
    hardware: V.noClaim,
    'runtime-opaque': V.noClaim,
    'storage-opaque': V.noClaim,
    'sourced-data': V.noClaim,
  };
  if (!a.valid) {
    tv['instance-identity'] = V.cryptoValidationFailed;
    tv.hardware = V.cryptoValidationFailed;
    return tv;
  }
  tv['instance-identity'] =
    codes.has('ATTESTATION_REPORT_DATA_MISMATCH') || codes.has('ATTESTATION_NONCE_MISMATCH')
      ? V.instanceIdentity.untrustworthy
      : V.instanceIdentity.trustworthy;
  if (codes.has('ATTESTATION_DEBUG_ENABLED') || codes.has('ATTESTATION_CONFIGURATION_REJECTED')) {
    tv.configuration = V.configuration.unsupportable;
  } else if (a.debug === true) {
    tv.configuration = V.configuration.unsafe;
  } else {
    tv.configuration = V.configuration.approved;
  }
  if (codes.has('ATTESTATION_MEASUREMENT_MISMATCH') || codes.has('ATTESTATION_PCR_MISMATCH')) {
    tv.executables = V.executables.contraindicated;
  } else if (codes.has('ATTESTATION_NO_REFERENCE_VALUES')) {
    tv.executables = V.executables.unrecognizedRuntime;
  } else if (policy && a.kind !== 'sim' && identifiesSoftware(policy, a.kind)) {
    tv.executables = V.executables.approvedRuntime;
  } else if (policy && a.kind === 'sim' && hasReferenceValues(policy, a.kind)) {
    tv.executables = V.executables.approvedRuntime;
  }
  if (a.kind === 'sim') tv.hardware = V.hardware.unrecognized;
  else if (codes.has('ATTESTATION_TCB_OUT_OF_DATE')) tv.hardware = V.hardware.contraindicated;
  else if (a.tcbStatus === 'UpToDate' || (a.tcbStatus === null && a.kind === 'tpm2'))
    tv.hardware = V.hardware.genuine;
  else tv.hardware = V.hardware.unsafe;
  if (a.kind === 'sim' || a.debug === true) tv['runtime-opaque'] = V.runtimeOpaque.visibleMemory;
  else if (a.kind !== 'tpm2') tv['runtime-opaque'] = V.runtimeOpaque.encryptedMemory;
  return tv;
}

function hasReferenceValues(policy: AppraisalPolicy, kind: Appraisal['kind']): boolean {
  const rv = policy.referenceValues[kind] as Record<string, unknown> | undefined;
  return rv !== undefined && Object.values(rv).some((v) => v !== undefined);
}

/** The evidence hash: SHA-256 of `ferry/evidence/v1` {kind, reportData, body}. */
export function evidenceHash(evidence: Evidence): Uint8Array {
  return hashTagged(EVIDENCE_TAG, {
    kind: evidence.kind,
    reportData: evidence.reportData,
    body: evidence.body,
  });
}

export type BuildResultOptions = {
  /** The evidence (its hash is computed) or its 32-byte hash. */
  evidence: Evidence | Uint8Array;
  policy: AppraisalPolicy;
  verifierId: string;
  /** The verifier's Ed25519 public key (32 bytes). */
  verifierKey: Uint8Array;
  issuedAt: Date;
};

function bytes32(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== 32) {
    throw new FerryError('INVALID_ARGUMENT', `${what}: expected 32 bytes`, {
      hints: [`got: ${v instanceof Uint8Array ? `${v.length} bytes` : typeof v}`],
    });
  }
  return v;
}

/** Builds the (unsigned) result of an appraisal. Validates every argument. */
export function buildAttestationResult(a: Appraisal, opts: BuildResultOptions): AttestationResult {
  if (!a || !EVIDENCE_KINDS.includes(a.kind))
    throw new FerryError('INVALID_ARGUMENT', 'appraisal: expected an Appraisal');
  if (typeof opts.verifierId !== 'string' || opts.verifierId.length === 0 || opts.verifierId.length > 256) {
    throw new FerryError(
      'INVALID_ARGUMENT',
      'verifierId: expected a non-empty string of at most 256 characters',
    );
  }
  if (!(opts.issuedAt instanceof Date) || Number.isNaN(opts.issuedAt.getTime())) {
    throw new FerryError('INVALID_ARGUMENT', 'issuedAt: expected a valid Date');
  }
  const evHash =
    opts.evidence instanceof Uint8Array
      ? bytes32(opts.evidence, 'evidence hash')
      : evidenceHash(opts.evidence);
  return {
    status: a.status,
    trustVector: trustVector(a, opts.policy),
    kind: a.kind,
    valid: a.valid,
    accepted: a.accepted,
    tcbStatus: a.tcbStatus,
    advisoryIds: [...a.advisoryIds],
    measurement: a.measurement,
    reportData: a.reportData,
    debug: a.debug,
    reasons: a.reasons.map((r) => ({ code: r.code, message: r.message })),
    claims: { ...a.claims },
    policyHash: policyHash(opts.policy),
    evidenceHash: evHash,
    verifierId: opts.verifierId,
    verifierKey: bytes32(opts.verifierKey, 'verifierKey'),
    issuedAt: Math.floor(opts.issuedAt.getTime() / 1000),
  };
}

/** The result's hash: hashTagged('ferry/attestation-result/v1', result). */
export function attestationResultHash(result: AttestationResult): Uint8Array {
  return hashTagged(RESULT_TAG, result as unknown as CanonicalValue);
}

/** The Ed25519 public key (32 bytes) of a 32-byte secret key (seed); crypto/sign.ts signingPublicKey. */
export function ed25519PublicKey(secretKey: Uint8Array): Uint8Array {
  return signingPublicKey(bytes32(secretKey, 'secretKey'));
}

/**
 * Signs a result with the verifier's Ed25519 secret key (32-byte seed) over
 * encodeTagged('ferry/attestation-result/v1', result) (crypto/sign.ts signTagged). The key
 * must match `verifierKey` (else SIGNATURE_KEY_INVALID).
 */
export function signAttestationResult(
  result: AttestationResult,
  secretKey: Uint8Array,
): SignedAttestationResult {
  const pub = ed25519PublicKey(secretKey);
  if (!equalBytes(pub, bytes32(result.verifierKey, 'result.verifierKey'))) {
    throw new FerryError('SIGNATURE_KEY_INVALID', "secretKey does not match the result's verifierKey");
  }
  return { result, signature: signTagged(secretKey, RESULT_TAG, result as unknown as CanonicalValue) };
}

/**
 * Verifies a signed result: the Ed25519 signature under `result.verifierKey` and, when given,
 * that this key is `expectedKey`. Returns the result; throws SIGNATURE_INVALID otherwise
 * (also for a verifierKey that is not a valid Ed25519 point), or CBOR_UNSUPPORTED_TYPE when
 * the result holds values outside the canonical subset.
 */
export function verifyAttestationResult(
  signed: SignedAttestationResult,
  expectedKey?: Uint8Array,
): AttestationResult {
  const { result, signature } = signed ?? ({} as SignedAttestationResult);
  if (!result || !(signature instanceof Uint8Array) || signature.length !== 64) {
    throw new FerryError('SIGNATURE_INVALID', 'signed result: expected {result, signature: 64 bytes}');
  }
  if (!(result.verifierKey instanceof Uint8Array) || result.verifierKey.length !== 32) {
    throw new FerryError('SIGNATURE_INVALID', 'signed result: verifierKey must be 32 bytes');
  }
  if (expectedKey !== undefined && !equalBytes(bytes32(expectedKey, 'expectedKey'), result.verifierKey)) {
    throw new FerryError('SIGNATURE_INVALID', 'the result is signed by another verifier key');
  }
  let ok: boolean;
  try {
    ok = verifyTagged(result.verifierKey, RESULT_TAG, result as unknown as CanonicalValue, signature);
  } catch (e) {
    if (isFerryError(e, 'SIGNATURE_KEY_INVALID')) {
      throw new FerryError('SIGNATURE_INVALID', 'signed result: verifierKey is not an Ed25519 public key', {
        cause: e,
      });
    }
    throw e;
  }
  if (!ok) throw new FerryError('SIGNATURE_INVALID', 'the attestation result signature does not verify');
  return result;
}

/** Wire form of a signed result: canonical CBOR `{result, signature}`. */
export function encodeSignedResult(signed: SignedAttestationResult): Uint8Array {
  return encodeCanonical({ result: signed.result as unknown as CanonicalValue, signature: signed.signature });
}

/** Decodes the wire form (canonical CBOR only) and verifies it; see verifyAttestationResult. */
export function decodeSignedResult(bytes: Uint8Array, expectedKey?: Uint8Array): SignedAttestationResult {
  let v: CanonicalValue;
  try {
    v = decodeCanonical(bytes);
  } catch (e) {
    if (isFerryError(e)) throw e;
    throw new FerryError('CBOR_MALFORMED', 'signed attestation result: malformed', { cause: e });
  }
  const o = v as { result?: unknown; signature?: unknown };
  if (
    typeof o !== 'object' ||
    o === null ||
    typeof o.result !== 'object' ||
    !(o.signature instanceof Uint8Array)
  ) {
    throw new FerryError('CBOR_MALFORMED', 'signed attestation result: expected {result, signature}');
  }
  const signed = { result: o.result as AttestationResult, signature: o.signature };
  verifyAttestationResult(signed, expectedKey);
  return signed;
}
