/**
 * The verifier's judgement of an attempt (docs/protocol.md §9.5, §13.7): what it votes, or why it
 * abstains — separated from the daemon's effects (intent log, transaction) so that its rule is
 * testable without a network. A verifier never votes fail for its own trouble: a chain or peer
 * that does not answer, an abort or a bug is thrown (the daemon retries the job until the vote
 * window closes); only a judgement about the claim or the evidence is a fail vote.
 */
import type { VerifierRegistry } from '../attestation/index.ts';
import type { ChainReader, TaskInfo } from '../chain/index.ts';
import { FerryError, isRetryable, toFerryError } from '../kernel/index.ts';
import {
  type AttemptAppraisal,
  type AttemptFacts,
  appraiseAttempt,
  attemptEvents,
  attemptPolicies,
  checkClaim,
  type PolicyResolver,
} from '../protocol/index.ts';

/** What the executor serves for an attempt: its evidence bytes and the enclave's public keys. */
export type ExecutorEvidence = { evidenceBytes: Uint8Array; x25519Pub: Uint8Array; ed25519Pub: Uint8Array };

export type VoteDecision =
  | { kind: 'abstain'; reason: string }
  | { kind: 'vote'; pass: boolean; appraisal: AttemptAppraisal };

/** Codes by which the executor's server answered but served nothing usable: its fault, a judgement. */
const EXECUTOR_FAULTS = new Set(['PEER_NOT_FOUND', 'PEER_PROTOCOL', 'PEER_BAD_REQUEST', 'PEER_UNAUTHORIZED']);

/**
 * Judges the attempt described by `facts` (the task in `attesting`). Returns `abstain` when a
 * policy that applies is not one this verifier applies; `vote` with pass exactly when the claim is
 * valid and the evidence is accepted under every policy that applies (the app's and each
 * dataset's). Throws (retry) for CHAIN_UNAVAILABLE, PEER_UNAVAILABLE, ABORTED,
 * ATTESTATION_POLICY_NOT_FOUND and any error that is not a judgement.
 */
export async function judgeAttempt(p: {
  chain: ChainReader;
  chainId: number;
  facts: AttemptFacts;
  resolve: PolicyResolver;
  registry: VerifierRegistry;
  fetchEvidence: () => Promise<ExecutorEvidence>;
  now: Date;
}): Promise<VoteDecision> {
  const { task } = p.facts;
  const found = await attemptPolicies(p.chain, task, p.resolve);
  if ('unapplied' in found) {
    return {
      kind: 'abstain',
      reason: `the appraisal policy of ${found.unapplied.assetKind} ${found.unapplied.assetId} is not one this node applies`,
    };
  }
  const committedEvidenceHash = hexToBytes32(task.evidenceHash);
  // A refusal before the evidence is appraised: the result names the committed evidence hash.
  const refuse = (code: string, message: string): VoteDecision => ({
    kind: 'vote',
    pass: false,
    appraisal: {
      accepted: false,
      evidence: null,
      evidenceHash: committedEvidenceHash,
      reasons: [{ code, message } as AttemptAppraisal['reasons'][number]],
      entries: [],
    },
  });
  try {
    const { claims } = await attemptEvents(p.chain, task, task.attempt);
    await checkClaim(p.chain, p.chainId, task, claims);
  } catch (e) {
    const fe = toFerryError(e);
    if (fe.code !== 'POLICY_DENIED') throw fe;
    return refuse(fe.code, fe.message);
  }
  let served: ExecutorEvidence;
  try {
    served = await p.fetchEvidence();
  } catch (e) {
    const fe = toFerryError(e);
    if (!EXECUTOR_FAULTS.has(fe.code)) throw fe;
    return refuse(fe.code, `the executor does not serve its evidence: ${fe.message}`);
  }
  const appraisal = await appraiseAttempt({
    commitments: p.facts.commitments,
    committedEvidenceHash,
    evidenceBytes: served.evidenceBytes,
    x25519Pub: served.x25519Pub,
    ed25519Pub: served.ed25519Pub,
    taskKinds: p.facts.taskKinds,
    executorKinds: p.facts.executorKinds,
    policies: found.policies,
    registry: p.registry,
    now: p.now,
  });
  // A verifier whose own evidence verifiers are broken must not turn that into a verdict.
  for (const e of appraisal.entries) {
    for (const r of e.appraisal.reasons) {
      if (isRetryable(r.code)) throw new FerryError(r.code, `appraisal could not complete: ${r.message}`);
    }
  }
  return { kind: 'vote', pass: appraisal.accepted, appraisal };
}

function hexToBytes32(h: string): Uint8Array {
  const s = h.replace(/^0x/, '');
  if (!/^[0-9a-fA-F]{64}$/.test(s))
    throw new FerryError('INVALID_ARGUMENT', 'evidence hash: expected 32 bytes of hex');
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

export type { TaskInfo };
