/**
 * The executor (§11.3): on `TaskSeeded` it self-selects with its VRF key over the claim alpha and
 * claims (intent written first, see state.ts); after the claim window, if it won, it creates the
 * enclave, stores the evidence and commits its hash; when every asset's sealed key has been
 * delivered (each signed by the asset's on-chain owner, deliveries.ts) it runs the enclave,
 * which streams the ciphertexts through the node's loopback relay (relay.ts) from the owner
 * agents, stores the result and, once the task is `running`, posts the receipt. An attempt its
 * enclave cannot finish (keys that do not come, a failed run, an enclave that died with the
 * previous process) is abandoned (§13.8), not left to time out.
 *
 * Its reconcile resumes what the state records (claim intents, evidence, receipts,
 * abandonments), whatever the node's roles now: a node that stopped claiming still finishes what
 * it started. The decisions are in decisions.ts; this file does the I/O.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hex } from 'viem';
import {
  RUNTIME_PCR,
  runtimeMeasurement as tpm2RuntimeMeasurement,
  Tpm2Tools,
} from '../attestation/tpm2/index.ts';
import {
  abandonAttempt,
  type ChainWriter,
  claimTask,
  commitEvidence,
  getApp,
  getDataset,
  getTask,
  getTaskEvents,
  MIN_RUN_TIME,
  submitReceipt,
  type TaskInfo,
} from '../chain/index.ts';
import { claimAlpha, vrfProofToHash, vrfProve } from '../crypto/vrf/index.ts';
import {
  createEnclave,
  type EnclaveHandle,
  runtimeMeasurement as enclaveRuntimeMeasurement,
  MAX_LIMITS,
  type SpawnSource,
} from '../enclave/index.ts';
import { FerryError, type Logger, toFerryError, toHex } from '../kernel/index.ts';
import {
  attemptLocation,
  attemptEvents,
  decodeTaskInput,
  firstClaimRound,
  hexBytes,
  nodeAtCreation,
  readTaskCommitments,
  type TaskCommitments,
  taskCreation,
} from '../protocol/index.ts';
import { abandonCause } from './abandon.ts';
import type { NodeConfig } from './config.ts';
import {
  abandonFailure,
  abandonStep,
  attemptKey as key,
  backendSpec,
  claimIntentStep,
  chainTeeKind,
  claimOpen,
  claimTiming,
  ENCLAVE_LOST_CAUSE,
  enclaveStep,
  evidenceStep,
  missingKeys,
  orphanStep,
  receiptFailure,
  receiptStep,
  regionAllows,
  runFailure,
  runSeconds,
  sendFailure,
  settleClaim,
  windowsWithinBounds,
} from './decisions.ts';
import { verifyKeyDelivery } from './deliveries.ts';
import type { JobContext, Jobs, Reconciler, TaskCache } from './duties.ts';
import type { CiphertextRelay } from './relay.ts';
import { decodeSealed, type KeyDeliveryBody } from './server.ts';
import type { NodeState } from './state.ts';

/** The configuration the executor reads. */
export type ExecutorConfig = Pick<
  NodeConfig,
  | 'tee'
  | 'region'
  | 'minEvidenceWindow'
  | 'maxRunWindow'
  | 'maxEnclaves'
  | 'keysWaitSeconds'
  | 'simAttester'
  | 'tpm2Tcti'
  | 'tpm2AkHandle'
  | 'tpm2Activation'
  | 'tpm2EkCert'
  | 'tpm2EkChain'
>;

export type ExecutorComponents = {
  chain: ChainWriter;
  chainId: number;
  /** This node's address. */
  address: string;
  state: NodeState;
  tasks: TaskCache;
  jobs: Jobs;
  vrfSecretKey: Uint8Array;
  /** This node's URL: the evidence and result locations committed on chain name it. */
  endpoint: string;
  /**
   * Streams a run's inputs from their owners; absent on a node without the executor role,
   * which finishes recorded work (receipts, abandonments) but runs no enclave.
   */
  relay?: CiphertextRelay;
  /**
   * Where enclaves are created instead of a local process with `backendSpec(config)`: the
   * node's VM (`--tee vm`, src/image/vm-enclave.ts), which brings its own backend.
   */
  enclaves?: {
    createEnclave(opts: { commitments: TaskCommitments }): Promise<EnclaveHandle>;
  };
  /** The node's home: results are stored under `results/`. */
  home: string;
  /** Pre-started enclave processes (src/enclave/pool.ts) an enclave is taken from when ready. */
  enclavePool?: SpawnSource;
  config: ExecutorConfig;
  log: Logger;
};

/** What a run reads from the chain before its enclave gets any key. */
type RunPlan = {
  app: NonNullable<Awaited<ReturnType<typeof getApp>>>;
  datasetEndpoints: string[];
  args: string[];
  /** The app's time limit: what the run window leaves before the receipt must be posted. */
  timeoutMs: number;
};

export class Executor implements Reconciler {
  readonly #c: ExecutorComponents;
  /** Enclaves alive (created for claims won, until their attempt ends), by task/attempt. */
  readonly #enclaves = new Map<string, EnclaveHandle>();
  /** Attempts whose claim is being sent (from its intent to its outcome). */
  readonly #claiming = new Set<string>();
  /** Attempts whose run is under way (or was enqueued). */
  readonly #running = new Set<string>();
  /** Chain time at which the reconciler first saw each live enclave's attempt attested. */
  readonly #attestedSeen = new Map<string, number>();
  /**
   * Attempts found at start with evidence from this node but no result: their enclave died with
   * the previous process, so once attested they are abandoned (§13.8).
   */
  readonly #orphans = new Map<string, { taskId: bigint; attempt: number }>();

  constructor(c: ExecutorComponents) {
    this.#c = c;
    for (const a of c.state.attemptsWithoutResult()) {
      this.#orphans.set(key(a.task, a.attempt), { taskId: BigInt(a.task), attempt: a.attempt });
    }
  }

  /** Destroys the enclaves alive (after the jobs have ended). */
  async stop(): Promise<void> {
    for (const h of this.#enclaves.values()) await h.destroy().catch(() => {});
    this.#enclaves.clear();
  }

  /** Self-selects for the attempt and claims it if selected (TaskSeeded). */
  claim(taskId: bigint, attempt: number): void {
    const k = key(taskId, attempt);
    this.#c.jobs.enqueue(k, `claim ${k}`, (ctx) => this.#claim(taskId, attempt, ctx), { key: `claim ${k}` });
  }

  /**
   * How many more attempts this node could claim now: maxEnclaves less the attempts it holds or
   * is claiming (`#committed`) and the tasks in `pending` (seeds it sent whose claim window is
   * open) that are not among them.
   */
  capacity(pending: Iterable<bigint> = []): number {
    const held = new Set(this.#committedKeys().map((k) => k.split('/')[0]));
    for (const t of pending) held.add(String(t));
    return this.#c.config.maxEnclaves - held.size;
  }

  /**
   * The attempts this node holds an enclave for or may have to make one for: live enclaves, and
   * claims confirmed whose evidence is not committed yet (each needs an enclave within the
   * evidence window, or the node is slashed for missing it). Counted against maxEnclaves when
   * claiming: counting live enclaves only let a burst of seeds (50 tasks at once) win more
   * claims than the node could make enclaves for in the evidence window under load (evidence
   * missed, slashed, jailed: then no claim at all). Claims being sent count too (a burst of
   * claim jobs runs concurrently); a claim that was not the best counts until the reconcile
   * settles it as lost.
   */
  #committed(): number {
    return this.#committedKeys().length;
  }

  #committedKeys(): string[] {
    const held = new Set([...this.#enclaves.keys(), ...this.#claiming]);
    for (const c of this.#c.state.claimsAwaitingEvidence()) held.add(key(c.task, c.attempt));
    return [...held];
  }

  /** A new sealed key was stored: when every asset's key is there, the run is enqueued. */
  keysArrived(taskId: bigint, attempt: number): void {
    const { jobs, chain } = this.#c;
    const k = key(taskId, attempt);
    jobs.enqueue(
      k,
      `keys ${k}`,
      async () => {
        if (this.#running.has(k) || !this.#enclaves.has(k)) return;
        const task = await getTask(chain, taskId);
        if (!task || task.attempt !== attempt) return;
        if (this.#missingKeys(task).length > 0) return;
        this.#running.add(k);
        jobs.enqueue(k, `run ${k}`, () => this.#run(task), { pool: 'enclave', key: `run ${k}` });
      },
      { key: `keys ${k}` },
    );
  }

  /**
   * Finds the executor's due steps: claim intents left by a crash, evidence for claims won,
   * enclaves and attempts that cannot finish, abandonments and receipts to post.
   */
  async reconcile(now: number): Promise<void> {
    const { state, tasks, jobs, address: me } = this.#c;
    // Intents left by a crash: their events were consumed before the restart, so they are
    // resumed from the state (each path checks the chain before it sends anything). An intent
    // of a job in flight is deduplicated by its key.
    for (const claim of state.listClaims('intent')) {
      if (jobs.has(`claim ${key(claim.task, claim.attempt)}`)) continue;
      const t = await tasks.get(BigInt(claim.task), now);
      const step = claimIntentStep(t, claim.attempt, now);
      if (step === 'resume') this.claim(BigInt(claim.task), claim.attempt);
      else if (step === 'fail' && t) {
        state.markClaimOutcome(claim.task, claim.attempt, 'failed', `task is ${t.status}`);
      }
    }
    for (const claim of state.claimsAwaitingEvidence()) {
      const taskId = BigInt(claim.task);
      const step = evidenceStep(await tasks.get(taskId, now), claim.attempt, me, now);
      if (step === 'wait') continue;
      if (step === 'commit') {
        const k = key(claim.task, claim.attempt);
        jobs.enqueue(k, `evidence ${k}`, () => this.#commitEvidence(taskId, claim.attempt), {
          key: `evidence ${k}`,
          pool: 'evidence',
        });
        continue;
      }
      // It looks lost (another claimant won, or the attempt moved on): confirm with a fresh read
      // (the cached row may predate this node's claim), then settle it so it is not read again.
      const task = await tasks.read(taskId);
      const att = state.getAttempt(claim.task, claim.attempt);
      const settled = settleClaim(task, claim.attempt, me, Boolean(att?.evidence));
      // Its evidence got the attempt past `claimed` (the commitment went through before a crash
      // or a failed read recorded it): committed, not lost.
      if (settled === 'committed') state.markEvidenceCommitted(claim.task, claim.attempt);
      // Settled without evidence from this node: not the best claim, or its stage closed.
      else if (settled === 'lost' && task) {
        state.markClaimLost(claim.task, claim.attempt, `task is ${task.status}, attempt ${task.attempt}`);
      }
    }
    await this.#reconcileEnclaves(now);
    for (const att of state.pendingReceipts()) {
      const task = await tasks.get(BigInt(att.task), now);
      const step = receiptStep(task, att.attempt, att.receiptStatus);
      if (step === 'post' && task) this.#enqueueReceipt(task.taskId, task.attempt);
      else if (step === 'confirm' && task) state.markReceiptOutcome(task.taskId, task.attempt, 'confirmed');
    }
  }

  /**
   * Enclaves and attempts that cannot finish: an enclave whose attempt ended without running
   * it (rejected, keys missed, another attempt) is destroyed; an attempt whose enclave is gone
   * (died with the previous process) is abandoned once attested; abandonments left by a crash
   * are sent again.
   */
  async #reconcileEnclaves(now: number): Promise<void> {
    const { state, tasks, log, address: me, config } = this.#c;
    for (const [k, handle] of [...this.#enclaves]) {
      if (this.#running.has(k)) continue;
      const [task, attempt] = k.split('/');
      const t = await tasks.get(BigInt(task), now);
      if (t?.attempt === Number(attempt) && t.status === 'attested' && !this.#attestedSeen.has(k)) {
        this.#attestedSeen.set(k, now);
      }
      const missing = t && ENCLAVE_CHECKS_KEYS.has(t.status) ? this.#missingKeys(t) : [];
      const step = enclaveStep({
        task: t,
        attempt: Number(attempt),
        me,
        now,
        attestedSince: this.#attestedSeen.get(k) ?? now,
        missing,
        keysWaitSeconds: config.keysWaitSeconds,
      });
      if (step.kind === 'wait') continue;
      if (step.kind === 'run' && t) {
        // Every key recorded on chain: (re)start the run if it is not under way (its first
        // start may have failed to read the chain); keysArrived checks the deliveries.
        this.keysArrived(t.taskId, t.attempt);
        continue;
      }
      this.#enclaves.delete(k);
      this.#attestedSeen.delete(k);
      await handle.destroy().catch(() => {});
      if (step.kind === 'abandon' && t) {
        // Keys that do not come within keysWaitSeconds of the attestation: the enclave is not
        // kept for them (an owner that never releases cannot pin it). A key recorded on chain as
        // released but never delivered: given up before the run deadline instead of being
        // slashed for a missed receipt (§11.3).
        state.beginAbandon(t.taskId, t.attempt, step.cause);
        if (step.why === 'keys-late') {
          log.warn('keys did not come in time; abandoning the attempt', {
            task: String(t.taskId),
            attempt: t.attempt,
          });
        } else {
          log.warn('keys recorded as released never arrived; abandoning the attempt', {
            task: String(t.taskId),
            attempt: t.attempt,
            missing,
          });
        }
      } else {
        log.info('enclave destroyed: its attempt ended', {
          task,
          attempt: Number(attempt),
          status: t?.status,
        });
      }
    }
    for (const [k, o] of [...this.#orphans]) {
      const step = orphanStep(await tasks.get(o.taskId, now), o.attempt, me);
      if (step === 'wait') continue;
      this.#orphans.delete(k);
      if (step === 'abandon') state.beginAbandon(o.taskId, o.attempt, ENCLAVE_LOST_CAUSE);
    }
    for (const att of state.pendingAbandons()) this.#enqueueAbandon(BigInt(att.task), att.attempt);
  }

  async #claim(taskId: bigint, attempt: number, ctx?: JobContext): Promise<void> {
    const k = key(taskId, attempt);
    try {
      await this.#claimOnce(taskId, attempt, k, ctx);
    } finally {
      this.#claiming.delete(k);
    }
  }

  async #claimOnce(taskId: bigint, attempt: number, k: string, ctx?: JobContext): Promise<void> {
    const { chain, state, config: cfg, log, address } = this.#c;
    const task = await getTask(chain, taskId);
    if (!claimOpen(task, attempt, chainTeeKind(cfg.tee))) return;
    for (const d of task.datasetIds) {
      if (!regionAllows(await getDataset(chain, d), cfg.region)) return;
    }
    const existing = state.getClaim(taskId, attempt);
    if (existing && existing.status !== 'intent') return;
    if (existing?.status === 'intent') {
      // Unknown fate: did the claim reach the chain before the restart?
      const { claims } = await attemptEvents(chain, task, attempt);
      if (claims.some((c) => c.executor.toLowerCase() === address.toLowerCase())) {
        state.markClaimOutcome(taskId, attempt, 'confirmed', 'found on chain after restart');
        return;
      }
    }
    const alpha = claimAlpha({
      chainId: BigInt(this.#c.chainId),
      taskId,
      attempt,
      seed: hexBytes(task.seed),
    });
    const proof = vrfProve(this.#c.vrfSecretKey, alpha);
    const output = vrfProofToHash(proof);
    if (!existing && !windowsWithinBounds(task.windows, cfg)) {
      log.info("task windows outside this node's bounds; not claiming", {
        task: String(taskId),
        evidenceWindow: task.windows.evidence,
        runWindow: task.windows.run,
      });
      return;
    }
    if (!existing && this.#committed() >= cfg.maxEnclaves) {
      log.warn('enclaves at their maximum; not claiming', {
        task: String(taskId),
        attempt,
        maxEnclaves: cfg.maxEnclaves,
      });
      return;
    }
    // Reserved at once (no await since the count): concurrent claim jobs see it.
    this.#claiming.add(k);
    if (!existing) {
      // The claim rule (§11.3, src/protocol/claim.ts): claim at the start of this node's first
      // eligible round, and not at all when a claim of the attempt is already on chain by then
      // (an earlier-round claim always ranks first), so a few executors claim, not all.
      const me = await nodeAtCreation(chain, address, task);
      if (!me || me.stake === 0n) return;
      const round = firstClaimRound(output, {
        stake: me.stake,
        totalStake: task.totalExecutorStake,
        target: task.claimTarget,
      });
      if (round < 0) return;
      // Round 0 opens with the seed: claim now (past the deadline, the estimation refuses it and
      // nothing is sent), without reading the chain's time first.
      const now =
        round === 0 ? task.deadline - task.windows.claim : Number((await chain.public.getBlock()).timestamp);
      const timing = claimTiming(task, round, now);
      if (timing.kind === 'closed') return;
      if (timing.kind === 'wait') {
        this.#claimLater(taskId, attempt, timing.seconds);
        return;
      }
      if (round > 0) {
        const onChain = await getTaskEvents(chain, taskId, { fromBlock: task.anchorBlock, attempt });
        if (onChain.some((e) => e.eventName === 'TaskClaimed')) {
          log.debug("a claim is on chain before this node's round; not claiming", {
            task: String(taskId),
            attempt,
            round,
          });
          return;
        }
      }
    }
    state.beginClaim({ task: taskId, attempt, vrfOutput: output, vrfProof: proof });
    ctx?.recorded();
    try {
      const r = await claimTask(chain, { taskId, attempt, vrfOutput: output, vrfProof: proof });
      state.markClaimSent(taskId, attempt, r.hash);
      state.markClaimOutcome(taskId, attempt, 'confirmed', r.best ? 'best so far' : 'not best');
      log.info('claimed', { task: String(taskId), attempt, best: r.best });
      if (r.best) this.#prepare(task);
    } catch (e) {
      const fe = toFerryError(e);
      const fate = sendFailure(fe.code);
      // A retryable failure leaves the intent: the reconcile checks the chain and resends.
      if (fate !== 'retry') state.markClaimOutcome(taskId, attempt, fate, fe.message);
      throw fe;
    }
  }

  /**
   * This node's claim is the best so far: the enclave is created while the claim window runs,
   * rather than after it (§11.3, "Evidence prepared during the claim window"), PREPARE_LEAD_SECONDS
   * before the window closes by this machine's clock (at once if that is past): a claim of the
   * first round that displaces this one usually arrives before, so an enclave is rarely started
   * for a claim that is then lost (under load, both executors of the devnet started one per
   * task). It is made for the attempt's commitments, fixed once the attempt is seeded; it holds
   * no key and its evidence is published only with the commitment after the window. It counts
   * against maxEnclaves like any live enclave, and a claim displaced by a better one destroys it
   * (`displaced`, and `enclaveStep` at every reconcile). Then the evidence is committed the
   * moment the chain takes it (`#commitAt`).
   */
  #prepare(task: TaskInfo): void {
    const { taskId, attempt } = task;
    const k = key(taskId, attempt);
    const delay = Math.max(0, (task.deadline - PREPARE_LEAD_SECONDS) * 1000 - Date.now());
    const timer = setTimeout(() => {
      if (this.#c.jobs.signal.aborted) return;
      this.#c.jobs.enqueue(k, `prepare ${k}`, () => this.#prepareEnclave(taskId, attempt), {
        key: `prepare ${k}`,
        pool: 'evidence',
      });
    }, delay);
    timer.unref();
  }

  /**
   * An enclave for these commitments: in the node's VM (`--tee vm`), else a local process —
   * a pre-started one from the pool when one is ready.
   */
  #newEnclave(commitments: TaskCommitments): Promise<EnclaveHandle> {
    if (this.#c.enclaves) return this.#c.enclaves.createEnclave({ commitments });
    return createEnclave({ commitments, backend: backendSpec(this.#c.config), pool: this.#c.enclavePool });
  }

  async #prepareEnclave(taskId: bigint, attempt: number): Promise<void> {
    const { chain, state, log, address: me } = this.#c;
    const k = key(taskId, attempt);
    const ours = (t: TaskInfo | null): t is TaskInfo =>
      t !== null &&
      t.attempt === attempt &&
      t.status === 'claimed' &&
      t.executor?.toLowerCase() === me.toLowerCase();
    const task = await getTask(chain, taskId);
    if (!ours(task)) return;
    if (!this.#enclaves.has(k) && !state.getAttempt(taskId, attempt)?.evidence) {
      const commitments = await readTaskCommitments(chain, { chainId: this.#c.chainId, task });
      const handle = await this.#newEnclave(commitments);
      // Displaced (or stopping) while the enclave started: it is not kept.
      if (this.#c.jobs.signal.aborted || !ours(await getTask(chain, taskId))) {
        await handle.destroy().catch(() => {});
        return;
      }
      this.#enclaves.set(k, handle);
      log.debug('enclave prepared during the claim window', { task: String(taskId), attempt });
    }
    this.#commitAt(task);
  }

  /**
   * Enqueues the evidence commitment for the first second the contract takes it (block time >
   * the claim deadline), by this machine's clock: a chain whose clock lags makes it revert at
   * estimation (nothing is sent), and the reconcile commits it once the chain's time is past.
   */
  #commitAt(task: TaskInfo): void {
    const { taskId, attempt } = task;
    const k = key(taskId, attempt);
    const delay = Math.max(0, (task.deadline + 1) * 1000 - Date.now());
    const timer = setTimeout(() => {
      if (this.#c.jobs.signal.aborted) return;
      this.#c.jobs.enqueue(k, `evidence ${k}`, () => this.#commitEvidence(taskId, attempt, true), {
        key: `evidence ${k}`,
        // Only creating an enclave needs an evidence slot; committing a prepared one does not.
        ...(this.#enclaves.has(k) ? {} : { pool: 'evidence' }),
      });
    }, delay);
    timer.unref();
  }

  /**
   * A better claim of the attempt by `claimant` is on chain (TaskClaimed, best): an enclave this
   * node prepared for it is destroyed at once (after the attempt's queued jobs, in its lane).
   */
  displaced(taskId: bigint, attempt: number, claimant: string): void {
    if (claimant.toLowerCase() === this.#c.address.toLowerCase()) return;
    const k = key(taskId, attempt);
    this.#c.jobs.enqueue(k, `displaced ${k}`, async () => {
      const handle = this.#enclaves.get(k);
      if (!handle || this.#running.has(k)) return;
      const t = await getTask(this.#c.chain, taskId);
      if (t?.attempt === attempt && t.executor?.toLowerCase() === this.#c.address.toLowerCase()) return;
      this.#enclaves.delete(k);
      await handle.destroy().catch(() => {});
      this.#c.log.info('enclave destroyed: the claim was displaced', { task: String(taskId), attempt });
    });
  }

  /** Enqueues the claim again once its round opens (chain seconds, plus a second of slack). */
  #claimLater(taskId: bigint, attempt: number, seconds: number): void {
    const timer = setTimeout(() => this.claim(taskId, attempt), (seconds + 1) * 1000);
    timer.unref();
  }

  async #commitEvidence(taskId: bigint, attempt: number, early = false): Promise<void> {
    const { chain, state, log } = this.#c;
    const task = await getTask(chain, taskId);
    if (!task || task.attempt !== attempt || task.status !== 'claimed') return;
    if (task.executor?.toLowerCase() !== this.#c.address.toLowerCase()) return;
    const saved = state.getAttempt(taskId, attempt);
    if (saved?.evidenceCommitted) return;
    let evidenceHash: Uint8Array;
    if (saved?.evidence && saved.evidenceHash) {
      // Stored but its commitment failed or was interrupted: commit the stored evidence (a
      // commitment may already be in flight with that hash). If its enclave died in a restart,
      // the attempt is abandoned once attested (§13.8), rather than missing its evidence.
      evidenceHash = saved.evidenceHash;
    } else {
      // The enclave is created for this attempt's commitments (the app, input, result
      // recipient and datasets the chain fixes, §8.1) and refuses anything else.
      // An enclave prepared during the claim window is used as it is (same commitments).
      const k = key(task.taskId, task.attempt);
      let handle = this.#enclaves.get(k);
      if (!handle) {
        const commitments = await readTaskCommitments(chain, { chainId: this.#c.chainId, task });
        handle = await this.#newEnclave(commitments);
        this.#enclaves.set(k, handle);
      }
      state.saveEvidence(task.taskId, task.attempt, handle.evidenceBytes, handle.evidenceHash, {
        x25519Pub: handle.x25519Pub,
        ed25519Pub: handle.ed25519Pub,
        seed: hexBytes(task.seed),
      });
      evidenceHash = handle.evidenceHash;
    }
    const location = attemptLocation(this.#c.endpoint, task.taskId, task.attempt, 'evidence');
    try {
      await commitEvidence(chain, { taskId: task.taskId, attempt: task.attempt, evidenceHash, location });
    } catch (e) {
      const fe = toFerryError(e);
      // Sent by this machine's clock ahead of the chain's: the reconcile commits it later.
      if (early && fe.code === 'CHAIN_TOO_EARLY') {
        log.debug('evidence not yet accepted; the reconcile commits it', { task: String(taskId), attempt });
        return;
      }
      throw fe;
    }
    state.markEvidenceCommitted(task.taskId, task.attempt);
    log.info('evidence committed', { task: String(task.taskId), attempt: task.attempt });
  }

  /** The assets of the attempt whose sealed key has not been delivered (`app 1`, `dataset 2`). */
  #missingKeys(task: TaskInfo): string[] {
    return missingKeys(task, this.#c.state.listKeyDeliveries(task.taskId, task.attempt).map(decodeSealed));
  }

  /**
   * Runs an attempt's enclave with every delivered key; the enclave streams the ciphertexts
   * through the loopback relay (one-time URLs). Then stores the result and, once the task is
   * `running`, enqueues the receipt.
   */
  async #run(task: TaskInfo): Promise<void> {
    const { taskId, attempt } = task;
    const k = key(taskId, attempt);
    const handle = this.#enclaves.get(k);
    const relay = this.#c.relay;
    if (!handle || !relay) return;
    let plan: RunPlan | null = null;
    try {
      plan = await this.#prepareRun(task);
      await this.#runEnclave(task, handle, relay, plan);
    } catch (e) {
      const fe = toFerryError(e);
      const step = runFailure(fe.code, { stopping: this.#c.jobs.signal.aborted, planned: plan !== null });
      // Stopping: the enclave dies with this process; the next start abandons the attempt.
      if (step === 'rethrow') throw fe;
      // The chain could not be read before the enclave got its keys: nothing is spent, the
      // reconciler starts the run again.
      if (step === 'retry') {
        this.#running.delete(k);
        throw fe;
      }
      // The enclave cannot finish (an input unavailable or not decrypting, a key that does not
      // open, a crash): it is destroyed and the attempt given up rather than left to time out.
      this.#enclaves.delete(k);
      await handle.destroy().catch(() => {});
      // On chain only the code and our own words: a peer's message never reaches the chain (§13.1).
      this.#c.state.beginAbandon(taskId, attempt, abandonCause(fe.code, fe.message));
      this.#c.log.warn('enclave run failed; abandoning the attempt', {
        task: String(taskId),
        attempt,
        code: fe.code,
        message: fe.message,
      });
      this.#enqueueAbandon(taskId, attempt);
      return;
    }
    this.#c.tasks.forget(taskId);
    const now = await getTask(this.#c.chain, taskId);
    if (now?.attempt === attempt && now.status === 'running') this.#enqueueReceipt(taskId, attempt);
  }

  /**
   * What a run needs from the chain, read before any key reaches the enclave: a read that fails
   * here leaves the enclave untouched, so the run can be tried again.
   */
  async #prepareRun(task: TaskInfo): Promise<RunPlan> {
    const { chain } = this.#c;
    const app = await getApp(chain, task.appId);
    if (!app) throw new FerryError('TASK_FAILED', 'the task app is not registered');
    const datasetEndpoints: string[] = [];
    for (const d of task.datasetIds) {
      const ds = await getDataset(chain, d);
      if (!ds) throw new FerryError('TASK_FAILED', 'a task dataset is not registered');
      datasetEndpoints.push(ds.endpoint);
    }
    const created = await taskCreation(chain, task);
    const args = decodeTaskInput(created.inputLocation, created.inputHash);
    const fresh = (await getTask(chain, task.taskId)) ?? task;
    const now = Number((await chain.public.getBlock()).timestamp);
    const seconds = runSeconds(fresh, now, MIN_RUN_TIME, MAX_LIMITS.timeoutMs / 1000);
    return { app, datasetEndpoints, args, timeoutMs: seconds * 1000 };
  }

  async #runEnclave(
    task: TaskInfo,
    handle: EnclaveHandle,
    relay: CiphertextRelay,
    plan: RunPlan,
  ): Promise<void> {
    const { taskId, attempt } = task;
    const k = key(taskId, attempt);
    const { state, home, log } = this.#c;
    const { app, args } = plan;
    const deliveries = state.listKeyDeliveries(taskId, attempt).map(decodeSealed);
    await handle.deliverKeys(
      deliveries.map((d) => ({
        assetId: d.assetId,
        assetKind: d.assetKind,
        enc: d.enc,
        ciphertext: d.ciphertext,
      })),
    );
    const tokens: string[] = [];
    const via = (baseUrl: string, path: string) => {
      const { url, token } = relay.issue({ baseUrl, path });
      tokens.push(token);
      return { kind: 'url' as const, location: url, encrypted: true };
    };
    try {
      const appSource = via(app.endpoint, `/v1/apps/${task.appId}/ciphertext`);
      const datasets = task.datasetIds.map((d, i) => ({
        id: d,
        source: via(plan.datasetEndpoints[i], `/v1/datasets/${d}/ciphertext`),
      }));
      let out: Awaited<ReturnType<EnclaveHandle['run']>>;
      try {
        out = await handle.run(
          // The enclave takes the measurement and the result recipient from its commitments;
          // its time limit comes from the task's run window (an app that loops is stopped with
          // a receipt that says so, in time to post it).
          { app: { source: appSource }, datasets, args, limits: { timeoutMs: plan.timeoutMs } },
          this.#c.jobs.signal,
        );
      } catch (e) {
        // The relay knows why an input stream failed better than the enclave's fetch does.
        const cause = tokens.map((t) => relay.failure(t)).find((f) => f !== null);
        if (cause) throw cause;
        throw e;
      }
      const resultPath = join(home, 'results', `${taskId}-${attempt}.age`);
      mkdirSync(join(home, 'results'), { recursive: true, mode: 0o700 });
      await writeFile(resultPath, out.result, { mode: 0o600 });
      await writeFile(`${resultPath}.sig`, out.signature, { mode: 0o600 });
      const resultHash = new Uint8Array(createHash('sha256').update(out.result).digest());
      state.saveResult(taskId, attempt, { resultPath, resultHash, receipt: out.receipt });
      log.info('enclave run finished', { task: String(taskId), attempt, outcome: out.outcome });
      this.#enclaves.delete(k);
      await handle.destroy();
    } finally {
      for (const t of tokens) relay.revoke(t);
    }
  }

  /** The attempt is running (StatusChanged): its receipt is posted now if the result is stored. */
  running(taskId: bigint, attempt: number): void {
    const att = this.#c.state.getAttempt(taskId, attempt);
    if (att?.receipt && att.receiptStatus === 'intent') this.#enqueueReceipt(taskId, attempt);
  }

  #enqueueReceipt(taskId: bigint, attempt: number): void {
    const k = key(taskId, attempt);
    this.#c.jobs.enqueue(k, `receipt ${k}`, () => this.#postReceipt(taskId, attempt), {
      key: `receipt ${k}`,
    });
  }

  async #postReceipt(taskId: bigint, attempt: number): Promise<void> {
    const { chain, state, log } = this.#c;
    const att = state.getAttempt(taskId, attempt);
    if (!att?.receipt || !att.resultHash || !att.resultPath || att.receiptStatus !== 'intent') return;
    const task = await getTask(chain, taskId);
    if (!task || task.attempt !== attempt || task.status !== 'running') return;
    const signature = new Uint8Array(readFileSync(`${att.resultPath}.sig`));
    try {
      const r = await submitReceipt(chain, {
        taskId: task.taskId,
        attempt: task.attempt,
        receipt: att.receipt,
        signature,
        resultHash: att.resultHash,
        resultLocation: attemptLocation(this.#c.endpoint, task.taskId, task.attempt, 'result'),
      });
      state.markReceiptSent(task.taskId, task.attempt, r.hash);
      state.markReceiptOutcome(task.taskId, task.attempt, 'confirmed');
      log.info('receipt posted', { task: String(task.taskId), attempt: task.attempt });
    } catch (e) {
      const fe = toFerryError(e);
      if (receiptFailure(fe.code) === 'reverted')
        state.markReceiptOutcome(task.taskId, task.attempt, 'reverted');
      throw fe;
    }
  }

  #enqueueAbandon(taskId: bigint, attempt: number): void {
    const k = key(taskId, attempt);
    this.#c.jobs.enqueue(k, `abandon ${k}`, () => this.#abandon(taskId, attempt), { key: `abandon ${k}` });
  }

  /**
   * Gives up an attempt this node's enclave cannot finish (Tasks.abandon, §11.3): excluded from
   * the task, not slashed. Waits while the attempt is still being judged; settles the intent
   * as `lost` if the attempt ended otherwise first.
   */
  async #abandon(taskId: bigint, attempt: number): Promise<void> {
    const { chain, state, log, address } = this.#c;
    const att = state.getAttempt(taskId, attempt);
    if (!att?.abandonCause || att.abandonStatus !== 'intent') return;
    const t = await getTask(chain, taskId);
    const mine = t?.attempt === attempt && t.executor?.toLowerCase() === address.toLowerCase();
    if (mine && (t.status === 'claimed' || t.status === 'attesting')) return;
    const now = Number((await chain.public.getBlock()).timestamp);
    const step = abandonStep(t, attempt, address, now);
    if (step === 'wait') return;
    if (step === 'lost') {
      state.markAbandonOutcome(taskId, attempt, 'lost');
      return;
    }
    try {
      await abandonAttempt(chain, { taskId, attempt, cause: att.abandonCause });
      state.markAbandonOutcome(taskId, attempt, 'confirmed');
      log.warn('attempt abandoned', { task: String(taskId), attempt, cause: att.abandonCause });
    } catch (e) {
      const fe = toFerryError(e);
      if (abandonFailure(fe.code) === 'reverted') state.markAbandonOutcome(taskId, attempt, 'reverted');
      throw fe;
    }
  }
}

/**
 * Seconds before the claim deadline at which the best claimant starts its enclave (`#prepare`):
 * enough to take one from the pool or spawn one under load before the window closes.
 */
export const PREPARE_LEAD_SECONDS = 2;

/** Statuses in which a live enclave's missing keys decide its step (decisions.ts `enclaveStep`). */
const ENCLAVE_CHECKS_KEYS: ReadonlySet<string> = new Set(['attested', 'running']);

/**
 * Checks a key delivery to this executor against the chain (deliveries.ts) and returns its
 * signer: the node server's `verifyDelivery`.
 */
export async function verifyDelivery(
  c: { chain: ChainWriter; chainId: number; tasksContract: Hex; address: string },
  task: string,
  attempt: number,
  body: KeyDeliveryBody,
): Promise<string> {
  const { chain } = c;
  return verifyKeyDelivery(
    {
      chainId: BigInt(c.chainId),
      tasks: c.tasksContract,
      executor: c.address,
      task: await getTask(chain, BigInt(task)),
      ownerOf: async (kind, id) =>
        ((kind === 'app' ? await getApp(chain, id) : await getDataset(chain, id))?.owner as
          | string
          | undefined) ?? null,
    },
    attempt,
    body,
  );
}

/**
 * tpm2 executor start: resets PCR 23 and extends it with
 * `runtimeMeasurement([["ferry/enclave-runtime", enclave runtime measurement (§10.8)]])`
 * (§8 tpm2), so that quotes attest the enclave runtime this node runs.
 */
export async function measureRuntime(c: {
  tpm2Tcti?: string;
  signal: AbortSignal;
  log: Logger;
}): Promise<void> {
  if (!c.tpm2Tcti) return;
  // Directly with tpm2-tools: opening a Tpm2Backend would create an AK if none were provisioned.
  const m = tpm2RuntimeMeasurement([
    { name: 'ferry/enclave-runtime', content: await enclaveRuntimeMeasurement() },
  ]);
  await new Tpm2Tools({ tcti: c.tpm2Tcti }).session(async (run) => {
    await run('tpm2_pcrreset', [String(RUNTIME_PCR)], c.signal);
    await run('tpm2_pcrextend', [`${RUNTIME_PCR}:sha256=${toHex(m)}`], c.signal);
  });
  c.log.info('runtime measured into PCR 23', { measurement: toHex(m) });
}
