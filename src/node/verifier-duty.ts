/**
 * The verifier's duty (§9.5, §13.7): on `EvidenceCommitted` it computes its seats by sortition;
 * when selected it fetches the evidence and the enclave keys from the executor, judges the
 * attempt (verifier.ts: the claimant's VRF proof, the evidence under every policy that
 * applies), signs an EAR-shaped result and votes (intent first, state.ts). An attempt recorded
 * to judge is retried by the reconciler while it is attesting (a chain or executor in trouble
 * is never voted on); a vote intent left by a crash is resumed with exactly the recorded verdict.
 */
import type { Hex } from 'viem';
import type { VerifierRegistry } from '../attestation/index.ts';
import {
  type ChainWriter,
  getNode,
  getTask,
  sameOperator,
  vote,
  getVote as getChainVote,
} from '../chain/index.ts';
import { verifierAlpha, vrfProofToHash, vrfProve } from '../crypto/vrf/index.ts';
import { type Logger, toFerryError } from '../kernel/index.ts';
import { createPeerClient } from '../net/index.ts';
import {
  attemptLocation,
  attemptFacts,
  attemptResultHash,
  buildAttemptResult,
  commitmentsHash,
  eligibleAtCreation,
  encodeSignedAttemptResult,
  executorBaseUrl,
  fetchServedEvidence,
  hexBytes,
  nodeAtCreation,
  type PolicyBook,
  refusalCode,
  refusalsOf,
  seatsFor,
  signAttemptResult,
} from '../protocol/index.ts';
import { attemptKey as key, judgeable, judgeStep, sendFailure, voteIntentStep } from './decisions.ts';
import type { Jobs, Reconciler, TaskCache } from './duties.ts';
import type { NodeState } from './state.ts';
import { judgeAttempt } from './verifier.ts';

export type VerifierComponents = {
  chain: ChainWriter;
  chainId: number;
  /** This node's address. */
  address: string;
  state: NodeState;
  tasks: TaskCache;
  jobs: Jobs;
  vrfSecretKey: Uint8Array;
  /** The node's Ed25519 key: its id names the verifier in results, its seed signs them. */
  keys: { keyId: Uint8Array; signingSecretKey: Uint8Array };
  /** Appraisal policies, built in or published on chain (§9). */
  policies: PolicyBook;
  registry: VerifierRegistry;
  /** Whether executors on the local network may be called (node config `localNetwork`). */
  localNetwork: boolean;
  log: Logger;
};

export class VerifierDuty implements Reconciler {
  readonly #c: VerifierComponents;

  constructor(c: VerifierComponents) {
    this.#c = c;
  }

  /** Judges the attempt and votes if selected (EvidenceCommitted); recorded before any network I/O. */
  judge(taskId: bigint, attempt: number, executor: string, location: string): void {
    const { jobs, state } = this.#c;
    const k = key(taskId, attempt);
    jobs.enqueue(
      k,
      `vote ${k}`,
      async (ctx) => {
        // Recorded before any network I/O, so the event watcher never waits on the executor's
        // server (a slow or silent one only holds this job, retried by the reconciler).
        state.addToJudge(taskId, attempt, executor, location);
        ctx.recorded();
        await this.#vote(taskId, attempt, executor, location);
        state.removeToJudge(taskId, attempt);
      },
      { key: `vote ${k}` },
    );
  }

  /** Retries the attempts recorded to judge; resumes vote intents left by a crash. */
  async reconcile(now: number): Promise<void> {
    const { chain, state, tasks, jobs } = this.#c;
    for (const v of state.listToJudge()) {
      const taskId = BigInt(v.task);
      if (jobs.has(`vote ${key(taskId, v.attempt)}`)) continue;
      const t = await tasks.get(taskId, now);
      if (judgeStep(t, v.attempt, state.getVote(taskId, v.attempt)) === 'drop') {
        state.removeToJudge(taskId, v.attempt);
        continue;
      }
      this.judge(taskId, v.attempt, v.executor, v.location);
    }
    for (const v of state.listVotes('intent')) {
      if (jobs.has(`vote ${key(v.task, v.attempt)}`)) continue;
      const t = await tasks.get(BigInt(v.task), now);
      const step = voteIntentStep(t, v.attempt);
      if (step === 'resume' && t?.executor) {
        const executor = await getNode(chain, t.executor as Hex);
        if (!executor) continue;
        const location = attemptLocation(executor.endpoint, v.task, v.attempt, 'evidence');
        this.judge(BigInt(v.task), v.attempt, executor.address, location);
      } else if (step === 'fail' && t) {
        state.markVoteOutcome(v.task, v.attempt, 'failed', `task is ${t.status}`);
      }
    }
  }

  async #vote(taskId: bigint, attempt: number, executor: string, location: string): Promise<void> {
    const { chain, chainId, state, address, log } = this.#c;
    const prior = state.getVote(taskId, attempt);
    if (!judgeable({ executor, me: address, prior })) return;
    const task = await getTask(chain, taskId);
    if (!task || task.attempt !== attempt || task.status !== 'attesting') return;
    // Eligibility and seats as of the task's creation (the contract refuses a vote from a node
    // changed since, and from the executor's operator): abstain rather than send a doomed vote.
    const me = await nodeAtCreation(chain, address, task);
    if (!eligibleAtCreation(me, 'verifier')) return;
    const exec = await getNode(chain, executor as Hex);
    if (exec && sameOperator(me, exec)) {
      log.info('the executor is of this node operator; abstaining', { task: String(taskId) });
      return;
    }
    const alpha = verifierAlpha({ chainId: BigInt(chainId), taskId, attempt, seed: hexBytes(task.seed) });
    const proof = vrfProve(this.#c.vrfSecretKey, alpha);
    const beta = vrfProofToHash(proof);
    const seats = seatsFor(beta, me.stake, task);
    if (seats === 0) return;
    // The judgement (verifier.ts): abstain when a policy that applies (the app's, every
    // dataset's; built in or published on chain, §9) is not one this node applies; a chain or
    // peer in trouble is thrown and retried, never voted on.
    const facts = await attemptFacts(chain, { chainId, task });
    const decision = await judgeAttempt({
      chain,
      chainId,
      facts,
      resolve: (s, h) => this.#c.policies.resolve(chain, { kind: s.assetKind, id: s.assetId }, h),
      registry: this.#c.registry,
      now: new Date(),
      fetchEvidence: () =>
        fetchServedEvidence(
          createPeerClient({
            baseUrl: executorBaseUrl(location),
            endpointPolicy: { localNetwork: this.#c.localNetwork },
            timeoutMs: 10_000,
          }),
          taskId,
          attempt,
          this.#c.jobs.signal,
        ),
    });
    if (decision.kind === 'abstain') {
      log.warn('abstaining', { task: String(taskId), reason: decision.reason });
      return;
    }
    let pass = decision.pass;
    if (!pass) {
      log.warn('attempt fails verification', {
        task: String(taskId),
        code: refusalCode(decision.appraisal),
        reasons: refusalsOf(decision.appraisal).slice(0, 3),
      });
    }
    // The signed result covers every policy applied (one entry each) and every refusal; its
    // `accepted` is the verdict, so a fail vote never commits to an affirming result.
    const result = buildAttemptResult(decision.appraisal, {
      commitments: commitmentsHash(facts.commitments),
      verifierId: address,
      verifierKey: this.#c.keys.keyId,
      issuedAt: new Date(),
    });
    const resultBytes = encodeSignedAttemptResult(signAttemptResult(result, this.#c.keys.signingSecretKey));
    let resultHash = attemptResultHash(result);
    const { fresh, vote: row } = state.beginVote({
      task: taskId,
      attempt,
      verdict: pass ? 'pass' : 'fail',
      resultHash,
      result: resultBytes,
      vrfProof: proof,
      seats,
    });
    if (!fresh) {
      // An intent from before a restart: send only if the chain has no vote from us, and then
      // exactly the recorded verdict and result hash.
      const onChain = await getChainVote(chain, { taskId, attempt, verifier: address as Hex });
      if (onChain !== null) {
        state.markVoteOutcome(taskId, attempt, 'confirmed', 'found on chain after restart');
        return;
      }
      pass = row.verdict === 'pass';
      resultHash = row.resultHash;
    }
    try {
      const r = await vote(chain, {
        taskId,
        attempt,
        pass,
        resultHash,
        seats,
        vrfOutput: beta,
        vrfProof: proof,
      });
      state.markVoteSent(taskId, attempt, r.hash);
      state.markVoteOutcome(taskId, attempt, 'confirmed');
      log.info('voted', { task: String(taskId), attempt, pass, seats });
    } catch (e) {
      const fe = toFerryError(e);
      const fate = sendFailure(fe.code);
      // A retryable failure leaves the intent: the reconcile checks the chain and resends.
      if (fate !== 'retry') state.markVoteOutcome(taskId, attempt, fate, fe.message);
      throw fe;
    }
  }
}
