/**
 * Appraisal of an attempt's evidence (docs/protocol.md §9.5): the one rule every party applies —
 * verifiers before voting, owner agents before releasing a key, the auditor, and the CLI when it
 * explains a failure. Pure apart from the evidence verifiers' own work (no chain or network I/O):
 * the caller gathers the facts (the commitments, the committed evidence hash, the kinds the task
 * and the executor allow, the policies that apply) and gets back one verdict with a reason for
 * every refusal.
 *
 * Accepted exactly when:
 *   1. the evidence bytes hash to the evidence hash committed on chain, and decode;
 *   2. the evidence's kind is one the task allows (every dataset's TEE kinds and the app's, as the
 *      contract intersected them into the task's teeKinds) and one the executor registered;
 *   3. under EVERY policy that applies (the app's and each dataset's), the evidence is valid, binds
 *      report_data = reportDataFor(commitments, enclave keys), and is accepted.
 * There is no policy-less appraisal: an attempt with no policy to apply is refused.
 */
import { createHash } from 'node:crypto';
import { appraiseEvidence, policyHash, type VerifierRegistry } from '../attestation/index.ts';
import type {
  Appraisal,
  AppraisalPolicy,
  AppraisalReason,
  Evidence,
  EvidenceKind,
} from '../attestation/index.ts';
import {
  type CanonicalValue,
  decodeTagged,
  describe,
  equalBytes,
  FerryError,
  toHex,
} from '../kernel/index.ts';
import { reportDataFor } from './binding.ts';
import type { TaskCommitments } from './commitments.ts';

export const EVIDENCE_TAG = 'ferry/evidence/v1';

/** Whose policy a policy is: the app's or one dataset's. */
export type PolicySubject = { assetKind: 'app' | 'dataset'; assetId: bigint };

/** A policy that applies to an attempt, with whose it is. */
export type ApplicablePolicy = PolicySubject & { policy: AppraisalPolicy };

export type PolicyEntry = PolicySubject & {
  /** policyHash(policy), hex. */
  policyHash: string;
  policy: AppraisalPolicy;
  appraisal: Appraisal;
};

export type AttemptAppraisal = {
  accepted: boolean;
  /** The decoded evidence, or null when it does not decode or is not the committed evidence. */
  evidence: Evidence | null;
  /** SHA-256 of the evidence bytes. */
  evidenceHash: Uint8Array;
  /** Refusals that hold whatever the policy: not the committed evidence, malformed, kind not allowed, no policy. */
  reasons: AppraisalReason[];
  /** One entry per policy applied, in the order given (empty when a reason above stopped the appraisal). */
  entries: PolicyEntry[];
};

/**
 * Decodes `ferry/evidence/v1` bytes into {kind, reportData, body}. Throws CBOR_* for bytes that
 * are not canonical or not that tag, ATTESTATION_MALFORMED for a body of the wrong shape.
 */
export function decodeEvidence(bytes: Uint8Array): Evidence {
  const v = decodeTagged(EVIDENCE_TAG, bytes) as Record<string, CanonicalValue>;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new FerryError('ATTESTATION_MALFORMED', 'evidence: expected a map', {
      hints: [`got: ${describe(v)}`],
    });
  }
  return {
    kind: v.kind as EvidenceKind,
    reportData: v.reportData as Uint8Array,
    body: v.body as Evidence['body'],
  };
}

export type AppraiseAttemptParams = {
  commitments: TaskCommitments;
  /** The evidence hash the executor committed on chain (32 bytes). */
  committedEvidenceHash: Uint8Array;
  evidenceBytes: Uint8Array;
  /** The enclave's public keys, as the executor serves them (their binding is what is checked). */
  x25519Pub: Uint8Array;
  ed25519Pub: Uint8Array;
  /** The task's TEE kinds (app ∩ datasets, from the chain). */
  taskKinds: readonly string[];
  /** The TEE kinds the executor registered (as of the task's creation). */
  executorKinds: readonly string[];
  policies: readonly ApplicablePolicy[];
  registry: VerifierRegistry;
  now: Date;
};

const reason = (code: string, message: string): AppraisalReason => ({ code, message }) as AppraisalReason;

/** Appraises an attempt's evidence under every policy that applies; never throws for bad evidence. */
export async function appraiseAttempt(p: AppraiseAttemptParams): Promise<AttemptAppraisal> {
  const evidenceHash = new Uint8Array(createHash('sha256').update(p.evidenceBytes).digest());
  const refuse = (r: AppraisalReason, evidence: Evidence | null = null): AttemptAppraisal => ({
    accepted: false,
    evidence,
    evidenceHash,
    reasons: [r],
    entries: [],
  });
  if (!equalBytes(evidenceHash, p.committedEvidenceHash)) {
    return refuse(
      reason(
        'ATTESTATION_EVIDENCE_NOT_COMMITTED',
        'the evidence served is not the evidence committed on chain',
      ),
    );
  }
  let evidence: Evidence;
  try {
    evidence = decodeEvidence(p.evidenceBytes);
  } catch (e) {
    return refuse(reason('ATTESTATION_MALFORMED', `the evidence does not decode: ${(e as Error).message}`));
  }
  const kind = String(evidence.kind);
  if (!p.taskKinds.includes(kind)) {
    return refuse(
      reason(
        'ATTESTATION_KIND_NOT_ALLOWED',
        `${kind} evidence, but the task allows ${p.taskKinds.join(', ') || 'no kind'} (the app's and every dataset's TEE kinds)`,
      ),
      evidence,
    );
  }
  if (!p.executorKinds.includes(kind)) {
    return refuse(
      reason(
        'ATTESTATION_KIND_NOT_ALLOWED',
        `${kind} evidence, but the executor registered ${p.executorKinds.join(', ') || 'no kind'}`,
      ),
      evidence,
    );
  }
  if (p.policies.length === 0) {
    return refuse(
      reason('ATTESTATION_POLICY_NOT_FOUND', 'no appraisal policy applies to this attempt'),
      evidence,
    );
  }
  const expectedReportData = reportDataFor({
    commitments: p.commitments,
    x25519Pub: p.x25519Pub,
    ed25519Pub: p.ed25519Pub,
  });
  const entries: PolicyEntry[] = [];
  for (const a of p.policies) {
    const appraisal = await appraiseEvidence(
      evidence,
      { policy: a.policy, now: p.now, expectedReportData },
      p.registry,
    );
    entries.push({
      assetKind: a.assetKind,
      assetId: a.assetId,
      policyHash: toHex(policyHash(a.policy)),
      policy: a.policy,
      appraisal,
    });
  }
  return {
    accepted: entries.every((e) => e.appraisal.accepted),
    evidence,
    evidenceHash,
    reasons: [],
    entries,
  };
}

/** Every refusal of an attempt appraisal, each prefixed with whose policy refused. */
export function refusalsOf(a: AttemptAppraisal): string[] {
  const out = a.reasons.map((r) => `${r.code}: ${r.message}`);
  for (const e of a.entries) {
    if (e.appraisal.accepted) continue;
    const who = `${e.assetKind} ${e.assetId} policy ${e.policy.name}`;
    for (const r of e.appraisal.reasons) out.push(`${r.code} (${who}): ${r.message}`);
    if (e.appraisal.reasons.length === 0) out.push(`${e.appraisal.status} (${who})`);
  }
  return out;
}

/** The first refusal's code, for one-line summaries; null when accepted. */
export function refusalCode(a: AttemptAppraisal): string | null {
  if (a.accepted) return null;
  if (a.reasons.length > 0) return a.reasons[0].code;
  for (const e of a.entries)
    if (!e.appraisal.accepted) return e.appraisal.reasons[0]?.code ?? 'POLICY_DENIED';
  return 'POLICY_DENIED';
}
