/** Why a task did not complete, in words a person can act on (`task run --wait`, `task show`). */
import type { Hex } from 'viem';
import { defaultVerifiers } from '../attestation/index.ts';
import { ATTEMPT_END_REASONS, type ChainReader, type FerryEvent, type TaskInfo } from '../chain/index.ts';
import { FerryError, fromHex, toFerryError } from '../kernel/index.ts';
import { createPeerClient } from '../net/index.ts';
import {
  appraiseAttempt,
  attemptFacts,
  attemptPolicies,
  executorBaseUrl,
  fetchServedEvidence,
  PolicyBook,
  type PolicySubject,
  refusalsOf,
} from '../protocol/index.ts';
import { preflightExecutors } from './preflight.ts';
import type { RequesterTrust } from './result.ts';

/**
 * Why a task did not complete, as a TASK_FAILED error a person can act on: the last attempt's
 * end reason, with the votes and (for rejected evidence) the dominant reason of our own
 * re-appraisal of the evidence.
 */
export async function explainFailure(
  c: ChainReader,
  chainId: number,
  task: TaskInfo,
  events: FerryEvent[],
  opts: RequesterTrust = {},
): Promise<FerryError> {
  const ended = events.filter((e) => e.eventName === 'AttemptEnded');
  const attempts = ended.map(
    (e) => `attempt ${e.args.attempt}: ${ATTEMPT_END_REASONS[Number(e.args.reason)]}`,
  );
  // The most telling attempt: a rejection or a refusal explains more than the missing claims
  // that follow once the only executor was excluded.
  const rank = [
    'fraud',
    'evidence-rejected',
    'abandoned',
    'keys-missed',
    'receipt-missed',
    'votes-missed',
    'evidence-missed',
    'no-claim',
  ];
  const last = [...ended].sort(
    (a, b) =>
      rank.indexOf(ATTEMPT_END_REASONS[Number(a.args.reason)]) -
      rank.indexOf(ATTEMPT_END_REASONS[Number(b.args.reason)]),
  )[0];
  const reason = last ? ATTEMPT_END_REASONS[Number(last.args.reason)] : 'none';
  const hints = [...attempts];
  let message: string;
  if (task.status === 'expired' && reason === 'none') {
    message = `the task expired at ${new Date(task.expiresAt * 1000).toISOString()} before it completed`;
  } else if (reason === 'no-claim') {
    try {
      await preflightExecutors(c, task.datasetIds);
      message = 'no executor claimed the task in time';
    } catch (e) {
      message = toFerryError(e).message;
      hints.push(...toFerryError(e).hints);
    }
  } else if (reason === 'evidence-rejected' || reason === 'votes-missed') {
    const attempt = Number(last!.args.attempt);
    const votes = events.filter((e) => e.eventName === 'VoteCast' && Number(e.args.attempt) === attempt);
    const fails = votes.filter((v) => v.args.pass !== true).length;
    if (reason === 'evidence-rejected') {
      message = `evidence rejected by ${fails} of ${votes.length} verifiers`;
      const why = await reappraise(c, chainId, task, events, attempt, opts);
      if (why) message += `: ${why}`;
    } else {
      message = `not enough verifier votes before the deadline (${votes.length} vote(s), threshold ${task.threshold} seats)`;
    }
  } else if (reason === 'abandoned') {
    // The executors' own words (not checkable on chain): what their enclaves could not do.
    const causes = events
      .filter((e) => e.eventName === 'AttemptAbandoned')
      .map((e) => `attempt ${e.args.attempt}: ${String(e.args.cause)}`);
    const said = String(
      events.find((e) => e.eventName === 'AttemptAbandoned' && e.args.attempt === last!.args.attempt)?.args
        .cause ?? 'no cause given',
    );
    message = `the executor's enclave could not finish (${said}, as reported by the executor)`;
    hints.push(...causes);
    if (
      /^(ENCLAVE_DATA_UNAVAILABLE|ENCLAVE_KEY_UNSEAL_FAILED|ENCLAVE_MEASUREMENT_MISMATCH|AGE_|RELAY_)/.test(
        said,
      )
    ) {
      hints.push(
        "an input could not be read or did not decrypt: check that each owner's agent is up and serves the ciphertext it registered",
      );
    }
  } else if (reason === 'evidence-missed') {
    message = 'the executor did not commit its evidence in time';
  } else if (reason === 'fraud') {
    message = "the executor's claim was proven false on chain (a fraud proof): it was slashed";
    hints.push(
      ...events
        .filter((e) => e.eventName === 'FraudProven')
        .map((e) => `attempt ${e.args.attempt}: ${String(e.args.liar)} lied (fraud ${e.args.fraud})`),
    );
  } else if (reason === 'receipt-missed' || reason === 'keys-missed') {
    const attempt = Number(last!.args.attempt);
    const released = events.filter(
      (e) => e.eventName === 'KeyReleased' && Number(e.args.attempt) === attempt,
    );
    const assets = [`app ${task.appId}`, ...task.datasetIds.map((d) => `dataset ${d}`)];
    const missing = assets.filter((_, i) => !released.some((e) => Number(e.args.assetIndex) === i));
    message =
      missing.length > 0
        ? `the owner agent did not release the key of ${missing.join(', ')} before the run deadline`
        : 'the enclave did not return a receipt before the run deadline';
    if (missing.length > 0) {
      hints.push(
        "the owner's agent refused (its policy or re-appraisal) or was unreachable; its log says which",
      );
    }
  } else {
    message = `the task ended ${task.status}`;
  }
  return new FerryError('TASK_FAILED', message, {
    hints,
    details: { status: task.status, attempts: ended.length },
  });
}

/** Our own appraisal of a rejected attempt's evidence: the dominant reason, in words. */
async function reappraise(
  c: ChainReader,
  chainId: number,
  task: TaskInfo,
  events: FerryEvent[],
  attempt: number,
  trust: RequesterTrust,
): Promise<string | null> {
  const committed = events.find(
    (e) => e.eventName === 'EvidenceCommitted' && Number(e.args.attempt) === attempt,
  );
  const seeded = events.find((e) => e.eventName === 'TaskSeeded' && Number(e.args.attempt) === attempt);
  if (!committed || !seeded) return null;
  try {
    const peer = createPeerClient({
      baseUrl: executorBaseUrl(String(committed.args.evidenceLocation)),
      timeoutMs: 5000,
    });
    const served = await fetchServedEvidence(peer, task.taskId, attempt);
    // The requester explains a rejection: it applies every policy that applied, whatever it
    // allows (sim included), with the kinds the task and the executor allow (§9.4).
    const facts = await attemptFacts(c, {
      chainId,
      task,
      attempt: { attempt, seed: String(seeded.args.seed) as Hex, executor: String(committed.args.executor) },
    });
    const book = new PolicyBook({ allowSim: true });
    const found = await attemptPolicies(c, task, (s: PolicySubject, h: Hex) =>
      book.resolve(c, { kind: s.assetKind, id: s.assetId }, h),
    );
    if ('unapplied' in found) return 'an appraisal policy of the task is unknown';
    const a = await appraiseAttempt({
      commitments: facts.commitments,
      committedEvidenceHash: fromHex(String(committed.args.evidenceHash), 'evidenceHash', 32),
      ...served,
      taskKinds: facts.taskKinds,
      executorKinds: facts.executorKinds,
      policies: found.policies,
      registry: defaultVerifiers({
        sim: trust.simRoots?.length ? { roots: trust.simRoots } : undefined,
        tpm2: trust.tpm2,
      }),
      now: new Date(),
    });
    const first = refusalsOf(a)[0];
    return first ?? null;
  } catch {
    return null;
  }
}
