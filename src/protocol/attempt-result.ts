/**
 * A verifier's signed attestation result for one attempt (docs/protocol.md §9.6), the object
 * whose hash its vote carries on chain: `ferry/attestation-result/v2`. It covers EVERY policy the
 * verifier applied (the app's and each dataset's), one EAR-shaped entry per policy
 * (`ferry/attestation-result/v1` bodies, src/attestation/result.ts), plus the refusals that hold
 * whatever the policy (evidence not committed, malformed, kind not allowed). `accepted` is true
 * exactly when the vote is a pass: no refusal and every entry accepted — so a fail vote can never
 * commit to an affirming result, nor a pass vote to a refusal.
 */
import { type AttestationResult, buildAttestationResult, ed25519PublicKey } from '../attestation/index.ts';
import { signTagged, verifyTagged } from '../crypto/index.ts';
import {
  type CanonicalValue,
  decodeCanonical,
  encodeCanonical,
  equalBytes,
  FerryError,
  hashTagged,
} from '../kernel/index.ts';
import type { AttemptAppraisal } from './appraisal.ts';

export const ATTEMPT_RESULT_TAG = 'ferry/attestation-result/v2';

export type AttemptResult = {
  /** True exactly when the attempt's evidence is accepted (the verifier votes pass). */
  accepted: boolean;
  /** EAR status of the whole: affirming when accepted, else contraindicated. */
  status: 'affirming' | 'contraindicated';
  /** commitmentsHash of the attempt's task commitments (32 bytes). */
  commitments: Uint8Array;
  /** SHA-256 of the evidence bytes served (32 bytes). */
  evidenceHash: Uint8Array;
  /** Refusals that hold whatever the policy. */
  reasons: { code: string; message: string }[];
  /** One entry per policy applied: whose policy, and the EAR-shaped result under it. */
  policies: { assetKind: 'app' | 'dataset'; assetId: bigint; result: AttestationResult }[];
  verifierId: string;
  verifierKey: Uint8Array;
  /** Unix seconds. */
  issuedAt: number;
};

export type SignedAttemptResult = { result: AttemptResult; signature: Uint8Array };

/** Builds the (unsigned) result of an attempt appraisal. */
export function buildAttemptResult(
  a: AttemptAppraisal,
  opts: { commitments: Uint8Array; verifierId: string; verifierKey: Uint8Array; issuedAt: Date },
): AttemptResult {
  if (!(opts.commitments instanceof Uint8Array) || opts.commitments.length !== 32) {
    throw new FerryError('INVALID_ARGUMENT', 'commitments: expected the 32-byte commitments hash');
  }
  const policies = a.entries.map((e) => ({
    assetKind: e.assetKind,
    assetId: e.assetId,
    result: buildAttestationResult(e.appraisal, {
      evidence: a.evidenceHash,
      policy: e.policy,
      verifierId: opts.verifierId,
      verifierKey: opts.verifierKey,
      issuedAt: opts.issuedAt,
    }),
  }));
  const accepted =
    a.accepted && a.reasons.length === 0 && policies.length > 0 && policies.every((p) => p.result.accepted);
  return {
    accepted,
    status: accepted ? 'affirming' : 'contraindicated',
    commitments: opts.commitments,
    evidenceHash: a.evidenceHash,
    reasons: a.reasons.map((r) => ({ code: r.code, message: r.message })),
    policies,
    verifierId: opts.verifierId,
    verifierKey: opts.verifierKey,
    issuedAt: Math.floor(opts.issuedAt.getTime() / 1000),
  };
}

const asValue = (r: AttemptResult) => r as unknown as CanonicalValue;

/** hashTagged('ferry/attestation-result/v2', result): what the vote carries on chain. */
export function attemptResultHash(r: AttemptResult): Uint8Array {
  return hashTagged(ATTEMPT_RESULT_TAG, asValue(r));
}

/** Signs with the verifier's Ed25519 secret key; it must match `verifierKey` (SIGNATURE_KEY_INVALID). */
export function signAttemptResult(r: AttemptResult, secretKey: Uint8Array): SignedAttemptResult {
  if (!equalBytes(ed25519PublicKey(secretKey), r.verifierKey)) {
    throw new FerryError('SIGNATURE_KEY_INVALID', "secretKey does not match the result's verifierKey");
  }
  return { result: r, signature: signTagged(secretKey, ATTEMPT_RESULT_TAG, asValue(r)) };
}

/** Wire form: canonical CBOR `{result, signature}`. */
export function encodeSignedAttemptResult(s: SignedAttemptResult): Uint8Array {
  return encodeCanonical({ result: asValue(s.result), signature: s.signature });
}

/**
 * Decodes the wire form and verifies the signature (under `expectedKey` when given). Throws
 * CBOR_* for bad encodings, SIGNATURE_INVALID for a bad or foreign signature.
 */
export function decodeSignedAttemptResult(bytes: Uint8Array, expectedKey?: Uint8Array): SignedAttemptResult {
  const v = decodeCanonical(bytes) as { result?: unknown; signature?: unknown };
  if (
    v === null ||
    typeof v !== 'object' ||
    typeof v.result !== 'object' ||
    !(v.signature instanceof Uint8Array)
  ) {
    throw new FerryError('CBOR_MALFORMED', 'signed attempt result: expected {result, signature}');
  }
  const r = v.result as AttemptResult;
  if (!(r?.verifierKey instanceof Uint8Array) || r.verifierKey.length !== 32) {
    throw new FerryError('SIGNATURE_INVALID', 'signed attempt result: verifierKey must be 32 bytes');
  }
  if (expectedKey && !equalBytes(expectedKey, r.verifierKey)) {
    throw new FerryError('SIGNATURE_INVALID', 'the result is signed by another verifier key');
  }
  if (!verifyTagged(r.verifierKey, ATTEMPT_RESULT_TAG, asValue(r), v.signature)) {
    throw new FerryError('SIGNATURE_INVALID', 'the attempt result signature does not verify');
  }
  return { result: r, signature: v.signature };
}
