/**
 * The node daemon (`ferry node start`): components with an explicit lifecycle, assembled in
 * `start` and taken down in reverse by `stop` (also when `start` fails half-way).
 *
 *   state (SQLite) -> HTTP server -> chain clients + registration -> event watcher -> reconciler
 *
 * Roles:
 * - executor: on `TaskSeeded` it self-selects with its VRF key over the claim alpha and claims
 *   (intent written first, see state.ts); after the claim window, if it won, it creates the
 *   enclave, stores the evidence and commits its hash; when every asset's sealed key has been
 *   delivered (each signed by the asset's on-chain owner) it runs the enclave, which streams the
 *   ciphertexts through the node's loopback relay (relay.ts) from the owner agents, stores the
 *   result and, once the task is `running`, posts the receipt.
 * - verifier: on `EvidenceCommitted` it computes its seats by sortition; when selected it
 *   fetches the evidence and the enclave keys from the executor, checks the claimant's VRF
 *   proof, appraises the evidence, signs an EAR-shaped result and votes (intent first).
 *
 * Jobs run in keyed lanes (src/chain/driver.ts): the jobs of one task attempt one after the
 * other, different attempts concurrently, enclave runs in a bounded pool (`enclaveSlots`), so
 * claims and votes never wait behind a run. Time-driven steps (seeding, timeouts, evidence after
 * the claim window, receipts, retries) are found by a reconciler, one at a time, that reads the
 * chain only for tasks whose cached deadline has passed or that an event changed, and enqueues
 * them as jobs; they also resume after a restart. Enclaves live in this process: after a restart
 * an attempt whose enclave is gone cannot run; it times out on chain and the task moves on.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hex } from 'viem';
import type { VerifierRegistry } from '../attestation/index.ts';
import type { AppraisalPolicy } from '../attestation/types.ts';
import { ChainDriver, type JobContext } from '../chain/driver.ts';
import {
  abandonAttempt,
  type ChainWriter,
  claimTask,
  commitEvidence,
  connect,
  type FerryEvent,
  getApp,
  getDataset,
  getNode,
  getTask,
  getTaskEvents,
  MIN_RUN_TIME,
  getVote as getChainVote,
  heartbeat,
  unjailNode,
  registerNode,
  sameOperator,
  seedTask,
  setNodeEndpoint,
  submitReceipt,
  timeoutTask,
  type TaskInfo,
  type TeeKind,
  vote,
  writer,
} from '../chain/index.ts';
import {
  claimAlpha,
  verifierAlpha,
  vrfKeygen,
  vrfProofToHash,
  vrfProve,
  vrfPublicKey,
} from '../crypto/vrf/index.ts';
import {
  RUNTIME_PCR,
  runtimeMeasurement as tpm2RuntimeMeasurement,
  Tpm2Tools,
} from '../attestation/tpm2/index.ts';
import type { BackendSpec } from '../enclave/backends.ts';
import {
  createEnclave,
  type EnclaveHandle,
  runtimeMeasurement as enclaveRuntimeMeasurement,
  MAX_LIMITS,
} from '../enclave/index.ts';
import { createLogger, FerryError, fromHex, type Logger, toFerryError, toHex } from '../kernel/index.ts';
import { createPeerClient, type Ed25519Signer, type HttpServer, startRemembering } from '../net/index.ts';
import { abandonCause } from './abandon.ts';
import {
  attemptEvents,
  attemptFacts,
  CLAIM_ROUNDS,
  firstClaimRound,
  executorBaseUrl,
  fetchServedEvidence,
  readTaskCommitments,
  taskCreation,
  attemptResultHash,
  buildAttemptResult,
  commitmentsHash,
  decodeTaskInput,
  encodeSignedAttemptResult,
  type PolicySubject,
  refusalCode,
  refusalsOf,
  signAttemptResult,
  eligibleAtCreation,
  hexBytes,
  nodeAtCreation,
  PolicyBook,
  seatsFor,
  trustRegistry,
} from '../protocol/index.ts';
import type { NodeConfig } from './config.ts';
import { verifyKeyDelivery } from './deliveries.ts';
import { judgeAttempt } from './verifier.ts';
import { CiphertextRelay } from './relay.ts';
import { createNodeServer, decodeSealed, type KeyDeliveryBody } from './server.ts';
import { NodeState } from './state.ts';
import { checkAllowSim } from '../protocol/development.ts';

export type NodeKeys = {
  evmPrivateKey: Hex;
  signer: Ed25519Signer;
  /** Ed25519 seed of the signer, used to sign attestation results. */
  signingSecretKey: Uint8Array;
};

export type NodeDaemonOptions = {
  config: NodeConfig;
  /** The node's home: state.db, vrf.key, work files. */
  home: string;
  keys: NodeKeys;
  log?: Logger;
};

export type NodeReady = {
  ready: true;
  role: 'node';
  address: string;
  endpoint: string;
  keyId: string;
  vrfPublicKey: string;
  roles: string[];
  region: string;
  tee: string;
  chainId: number;
};

/** Loads `<home>/vrf.key` (hex seed, 0600), creating it on first start. */
export function loadOrCreateVrfKey(home: string): { sk: Uint8Array; pk: Uint8Array } {
  const path = join(home, 'vrf.key');
  try {
    const sk = fromHex(readFileSync(path, 'utf8').trim(), 'vrf.key', 32);
    return { sk, pk: vrfPublicKey(sk) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const { sk, pk } = vrfKeygen();
  writeFileSync(path, `${toHex(sk)}\n`, { mode: 0o600, flag: 'wx' });
  return { sk, pk };
}

const HEARTBEAT_EVERY_SECONDS = 3600;
/**
 * Chain seconds before the run deadline at which an attempt still missing a key is abandoned:
 * time to send the abandonment (§11.3: the contract gives at least MIN_RUN_TIME after the last
 * release, so owners have the rest to deliver).
 */
const KEYS_WAIT_MARGIN_SECONDS = 20;
/** Chain seconds an app's run leaves before the run deadline, to seal the result and post the receipt. */
const RECEIPT_MARGIN_SECONDS = 15;
/** How often, chain seconds, a node that is not jailed checks whether it was jailed. */
const JAIL_CHECK_EVERY_SECONDS = 60;

/** What a run reads from the chain before its enclave gets any key. */
type RunPlan = {
  app: NonNullable<Awaited<ReturnType<typeof getApp>>>;
  datasetEndpoints: string[];
  args: string[];
  /** The app's time limit: what the run window leaves before the receipt must be posted. */
  timeoutMs: number;
};

/** Stages in which an attempt's enclave may still be needed. */
const ENCLAVE_STAGES: ReadonlySet<string> = new Set(['claimed', 'attesting', 'attested', 'running']);

function key(task: bigint | string, attempt: number): string {
  return `${task}/${attempt}`;
}

/** A task row as last read, with the chain time after which something is due for it. */
type CachedTask = { row: TaskInfo | null; due: number };

const FINAL = new Set(['completed', 'failed', 'expired']);

/** The chain time after which the task's current stage may be timed out (§12). */
function stageDue(t: TaskInfo): number {
  if (t.status === 'created' || t.status === 'rejected') return t.expiresAt;
  return Math.min(t.status === 'claimed' ? t.deadline + t.windows.evidence : t.deadline, t.expiresAt);
}

export class NodeDaemon {
  readonly #opts: NodeDaemonOptions;
  readonly #log: Logger;
  #state: NodeState | null = null;
  #server: HttpServer | null = null;
  #relay: CiphertextRelay | null = null;
  #driver: ChainDriver | null = null;
  #chain: ChainWriter | null = null;
  #chainId = 0;
  #vrf: { sk: Uint8Array; pk: Uint8Array } | null = null;
  #registry: VerifierRegistry | null = null;
  #policies: PolicyBook | null = null;
  #enclaves = new Map<string, EnclaveHandle>();
  #stopping = new AbortController();
  #started: NodeReady | null = null;
  #running = new Set<string>();
  /**
   * Attempts found at start with evidence from this node but no result: their enclave died with
   * the previous process, so once attested they are abandoned (§13.8).
   */
  #orphans = new Map<string, { taskId: bigint; attempt: number }>();
  /** Tasks waiting for their seed (anyone may seed; executors do). */
  #toSeed = new Set<bigint>();
  /** Tasks seen created and not final: their stage deadlines are enforced with `timeout`. */
  #live = new Set<bigint>();
  /** Task rows as last read by the reconciler; an event about a task drops its row. */
  #tasks = new Map<bigint, CachedTask>();
  /** Block time of this node's last heartbeat on chain (0: unknown, checked at the next tick). */
  #lastHeartbeat = 0;
  /** Votes to retry after a retryable failure (peer or chain unavailable), by task/attempt. */

  constructor(opts: NodeDaemonOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? createLogger({ component: 'node' });
  }

  get address(): string {
    return this.#chain?.wallet.account.address ?? '';
  }

  /** Starts every component; idempotent; on failure stops what was started and rethrows. */
  async start(signal?: AbortSignal): Promise<NodeReady> {
    if (this.#started) return this.#started;
    const c = this.#opts.config;
    try {
      this.#state = NodeState.open(join(this.#opts.home, 'state.db'));
      this.#vrf = loadOrCreateVrfKey(this.#opts.home);
      this.#policies = new PolicyBook({ allowSim: c.allowSim });
      this.#registry = trustRegistry(c);
      if (c.tee === 'tpm2' && c.roles.includes('executor')) await this.#measureRuntime();
      const state = this.#state;
      // With port 0, the port of the last start first: evidence and result locations in
      // events name it, so verifiers, agents and requesters still reach this node after a restart.
      this.#server = await startRemembering({
        port: c.port,
        make: (port) =>
          createNodeServer({
            state,
            keyId: toHex(this.#opts.keys.signer.keyId),
            host: c.host,
            port,
            log: this.#log.child('http'),
            verifyDelivery: (req) => this.#verifyDelivery(req.task, req.attempt, req.body),
            onKeys: (d) => this.#keysArrived(BigInt(d.task), d.attempt),
          }),
        remembered: () => state.getListenPort(c.host),
        remember: (port) => state.setListenPort(c.host, port),
        log: this.#log,
      });
      if (c.roles.includes('executor')) {
        this.#relay = new CiphertextRelay({
          signer: this.#opts.keys.signer,
          endpointPolicy: { localNetwork: c.localNetwork },
          log: this.#log.child('relay'),
        });
        await this.#relay.start();
      }
      signal?.throwIfAborted();
      const clients = await connect({
        rpcUrl: c.rpc,
        privateKey: this.#opts.keys.evmPrivateKey,
        pollingInterval: 100,
      });
      this.#chain = writer(clients, c.contracts);
      this.#chainId = clients.chain.id;
      checkAllowSim({ allowSim: c.allowSim, chainId: this.#chainId, rpcUrl: c.rpc, log: this.#log });
      await this.#ensureRegistered();
      signal?.throwIfAborted();
      // The first start fixes the cursor at the current head and stores it at once, so that a
      // restart, however soon, resumes from there and misses no event.
      let cursor = this.#state.getCursor('chain');
      if (!cursor) {
        this.#state.setCursor('chain', Number(await this.#chain.public.getBlockNumber()));
        cursor = this.#state.getCursor('chain')!;
      }
      for (const a of this.#state.attemptsWithoutResult()) {
        this.#orphans.set(key(a.task, a.attempt), { taskId: BigInt(a.task), attempt: a.attempt });
      }
      this.#driver = new ChainDriver({
        chain: this.#chain,
        fromBlock: BigInt(cursor.block),
        confirmations: c.confirmations,
        pollIntervalMs: c.pollIntervalMs,
        // Long jobs (enclave creation for evidence, enclave runs) each have a bounded pool, so
        // the other jobs (claims, votes, receipts, seeds, timeouts) always have permits left.
        maxJobs: Math.max(c.maxJobs, 2 * c.enclaveSlots + 2),
        pools: { enclave: c.enclaveSlots, evidence: c.enclaveSlots },
        onCursor: (next) => this.#state?.setCursor('chain', Number(next)),
        onEvent: (e) => this.#onEvent(e),
        reconcile: () => this.#reconcile(),
        reconcileEveryMs: Math.max(c.pollIntervalMs, 200),
        onError: (what, e) => this.#log.warn(`${what} failed`, { code: e.code, message: e.message }),
        onWatchError: (e) => this.#log.error('event watcher stopped', { code: e.code, error: e }),
      });
      this.#driver.start();
      this.#started = {
        ready: true,
        role: 'node',
        address: this.address,
        endpoint: this.#server.url,
        keyId: toHex(this.#opts.keys.signer.keyId),
        vrfPublicKey: toHex(this.#vrf.pk),
        roles: [...c.roles],
        region: c.region,
        tee: c.tee,
        chainId: this.#chainId,
      };
      return this.#started;
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /**
   * Stops the driver (watcher, reconciler, jobs: running ones end first), enclaves, the relay,
   * the server and the database; idempotent.
   */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#driver?.stop();
    this.#driver = null;
    for (const h of this.#enclaves.values()) await h.destroy().catch(() => {});
    this.#enclaves.clear();
    await this.#relay?.stop();
    this.#relay = null;
    await this.#server?.stop();
    this.#server = null;
    this.#state?.close();
    this.#state = null;
    this.#started = null;
  }

  /**
   * Enqueues a job in the lane of its task attempt (or another lane); `key` deduplicates (a
   * job with the same key waiting or running is not enqueued again).
   */
  #enqueue(
    lane: string,
    what: string,
    fn: (ctx: JobContext) => Promise<void>,
    opts: { pool?: 'enclave' | 'evidence'; key?: string } = {},
  ): void {
    const d = this.#driver;
    if (!d || this.#stopping.signal.aborted) return;
    d.lanes.enqueue(
      lane,
      what,
      async (ctx) => {
        this.#log.debug('job', { what });
        await fn(ctx);
      },
      opts,
    );
  }

  async #ensureRegistered(): Promise<void> {
    const c = this.#opts.config;
    const chain = this.#chain!;
    const state = this.#state!;
    const endpoint = this.#server!.url;
    const params = {
      roles: c.roles,
      region: c.region,
      teeKinds: [c.tee as TeeKind],
      vrfPublicKey: this.#vrf!.pk,
      signingKey: this.#opts.keys.signer.keyId,
      endpoint,
      // `ferry node start --operator` (config.ts); absent: the node is its own operator.
      operator: c.operator as Hex | undefined,
    };
    const { registration } = state.beginRegistration({
      chainId: this.#chainId,
      registry: c.contracts.NodeRegistry,
      address: this.address,
      params: {
        roles: c.roles,
        region: c.region,
        tee: c.tee,
        stake: c.stake.toString(),
        vrfPublicKey: toHex(this.#vrf!.pk),
      },
    });
    // Whatever the local row says, the chain decides whether the registration happened.
    const onChain = await getNode(chain, this.address as Hex);
    if (onChain) {
      if (registration.status === 'intent' || registration.status === 'sent')
        state.markRegistrationOutcome('confirmed', 'found on chain');
      if (onChain.vrfPublicKey.toLowerCase() !== `0x${toHex(this.#vrf!.pk)}`) {
        throw new FerryError(
          'STATE_CONFLICT',
          'the VRF key registered on chain is not this node home’s key',
          {
            hints: [`address: ${this.address}`],
          },
        );
      }
      if (onChain.endpoint !== endpoint) await setNodeEndpoint(chain, endpoint);
      return;
    }
    if (registration.status === 'confirmed') {
      throw new FerryError(
        'STATE_CONFLICT',
        'the local state says registered but the chain has no such node',
        {
          hints: ['the chain was reset? remove the node home to start over'],
        },
      );
    }
    const r = await registerNode(chain, { ...params, stake: c.stake });
    state.markRegistrationSent(r.hash);
    state.markRegistrationOutcome('confirmed');
    this.#log.info('registered', { address: this.address, tx: r.hash });
  }

  #onEvent(e: FerryEvent): void {
    const roles = this.#opts.config.roles;
    const a = e.args;
    if (typeof a.taskId === 'bigint') this.#tasks.delete(a.taskId);
    if (e.eventName === 'TaskCreated') this.#live.add(a.taskId as bigint);
    if ((e.eventName === 'TaskCreated' || e.eventName === 'AttemptEnded') && roles.includes('executor')) {
      this.#toSeed.add(a.taskId as bigint);
    } else if (e.eventName === 'TaskSeeded' && roles.includes('executor')) {
      const taskId = a.taskId as bigint;
      const attempt = Number(a.attempt);
      this.#enqueue(
        key(taskId, attempt),
        `claim ${taskId}/${attempt}`,
        (ctx) => this.#claim(taskId, attempt, ctx),
        {
          key: `claim ${taskId}/${attempt}`,
        },
      );
    } else if (e.eventName === 'EvidenceCommitted' && roles.includes('verifier')) {
      const taskId = a.taskId as bigint;
      const attempt = Number(a.attempt);
      const location = String(a.evidenceLocation);
      const executor = String(a.executor);
      this.#enqueueVote(taskId, attempt, executor, location);
    }
  }

  #enqueueVote(taskId: bigint, attempt: number, executor: string, location: string): void {
    const k = key(taskId, attempt);
    this.#enqueue(
      k,
      `vote ${k}`,
      async (ctx) => {
        // Recorded before any network I/O, so the event watcher never waits on the executor's
        // server (a slow or silent one only holds this job, retried by the reconciler).
        this.#state!.addToJudge(taskId, attempt, executor, location);
        ctx.recorded();
        await this.#vote(taskId, attempt, executor, location);
        this.#state!.removeToJudge(taskId, attempt);
      },
      { key: `vote ${k}` },
    );
  }

  /**
   * A task row for the reconciler: the cached one unless an event dropped it or its stage is
   * due (`now` past its deadline), so a tick reads the chain only for tasks that changed or
   * are due. Jobs read the chain themselves before they act.
   */
  async #cachedTask(taskId: bigint, now: number): Promise<TaskInfo | null> {
    const c = this.#tasks.get(taskId);
    if (c && (c.row === null || FINAL.has(c.row.status) || now <= c.due)) return c.row;
    const row = await getTask(this.#chain!, taskId);
    this.#tasks.set(taskId, { row, due: row ? stageDue(row) : Number.MAX_SAFE_INTEGER });
    return row;
  }

  // --- executor -----------------------------------------------------------------------

  async #claim(taskId: bigint, attempt: number, ctx?: JobContext): Promise<void> {
    const chain = this.#chain!;
    const state = this.#state!;
    const task = await getTask(chain, taskId);
    if (!task || task.attempt !== attempt || (task.status !== 'seeded' && task.status !== 'claimed')) return;
    if (!task.teeKinds.includes(this.#opts.config.tee as TeeKind)) return;
    for (const d of task.datasetIds) {
      const ds = await getDataset(chain, d);
      if (
        !ds ||
        (ds.policy.allowedRegions.length > 0 && !ds.policy.allowedRegions.includes(this.#opts.config.region))
      )
        return;
    }
    const existing = state.getClaim(taskId, attempt);
    if (existing && existing.status !== 'intent') return;
    if (existing?.status === 'intent') {
      // Unknown fate: did the claim reach the chain before the restart?
      const { claims } = await attemptEvents(chain, task, attempt);
      if (claims.some((c) => c.executor.toLowerCase() === this.address.toLowerCase())) {
        state.markClaimOutcome(taskId, attempt, 'confirmed', 'found on chain after restart');
        return;
      }
    }
    const alpha = claimAlpha({ chainId: BigInt(this.#chainId), taskId, attempt, seed: hexBytes(task.seed) });
    const proof = vrfProve(this.#vrf!.sk, alpha);
    const output = vrfProofToHash(proof);
    const cfg = this.#opts.config;
    if (!existing && (task.windows.evidence < cfg.minEvidenceWindow || task.windows.run > cfg.maxRunWindow)) {
      this.#log.info("task windows outside this node's bounds; not claiming", {
        task: String(taskId),
        evidenceWindow: task.windows.evidence,
        runWindow: task.windows.run,
      });
      return;
    }
    if (!existing && this.#liveEnclaves() >= this.#opts.config.maxEnclaves) {
      this.#log.warn('enclaves at their maximum; not claiming', {
        task: String(taskId),
        attempt,
        maxEnclaves: this.#opts.config.maxEnclaves,
      });
      return;
    }
    if (!existing) {
      // The claim rule (§11.3, src/protocol/claim.ts): claim at the start of this node's first
      // eligible round, and not at all when a claim of the attempt is already on chain by then
      // (an earlier-round claim always ranks first), so a few executors claim, not all.
      const me = await nodeAtCreation(chain, this.address, task);
      if (!me || me.stake === 0n) return;
      const round = firstClaimRound(output, {
        stake: me.stake,
        totalStake: task.totalExecutorStake,
        target: task.claimTarget,
      });
      if (round < 0) return;
      const window = task.windows.claim;
      const opensAt = task.deadline - window + Math.ceil((round * window) / CLAIM_ROUNDS);
      const now = Number((await chain.public.getBlock()).timestamp);
      if (now >= task.deadline) return;
      if (now < opensAt) {
        this.#claimLater(taskId, attempt, opensAt - now);
        return;
      }
      if (round > 0) {
        const onChain = await getTaskEvents(chain, taskId, { fromBlock: task.anchorBlock, attempt });
        if (onChain.some((e) => e.eventName === 'TaskClaimed')) {
          this.#log.debug("a claim is on chain before this node's round; not claiming", {
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
      this.#log.info('claimed', { task: String(taskId), attempt, best: r.best });
    } catch (e) {
      const fe = toFerryError(e);
      state.markClaimOutcome(
        taskId,
        attempt,
        fe.code === 'CHAIN_REVERTED' ? 'reverted' : 'failed',
        fe.message,
      );
      throw fe;
    }
  }

  /** Enqueues the claim again once its round opens (chain seconds, plus a second of slack). */
  #claimLater(taskId: bigint, attempt: number, seconds: number): void {
    const timer = setTimeout(
      () => {
        this.#enqueue(
          key(taskId, attempt),
          `claim ${taskId}/${attempt}`,
          (ctx) => this.#claim(taskId, attempt, ctx),
          {
            key: `claim ${taskId}/${attempt}`,
          },
        );
      },
      (seconds + 1) * 1000,
    );
    timer.unref();
  }

  /**
   * Finds the time-driven steps that are due and enqueues them as jobs in their lanes (one
   * reconcile at a time, see driver.ts): vote retries, the heartbeat, stage timeouts, seeds,
   * claim and vote intents left by a crash, evidence for claims won, receipts to post. It reads
   * the chain only for tasks an event changed or whose cached deadline passed.
   */
  async #reconcile(): Promise<void> {
    const chain = this.#chain;
    const state = this.#state;
    if (!chain || !state) return;
    const now = Number((await chain.public.getBlock()).timestamp);
    for (const v of state.listToJudge()) {
      const taskId = BigInt(v.task);
      if (this.#driver?.lanes.has(`vote ${key(taskId, v.attempt)}`)) continue;
      const t = await this.#cachedTask(taskId, now);
      const vote = state.getVote(taskId, v.attempt);
      if (!t || t.attempt !== v.attempt || t.status !== 'attesting' || (vote && vote.status !== 'intent')) {
        state.removeToJudge(taskId, v.attempt);
        continue;
      }
      this.#enqueueVote(taskId, v.attempt, v.executor, v.location);
    }
    this.#enqueue('node', 'heartbeat', () => this.#heartbeat(now), { key: 'heartbeat' });
    for (const taskId of [...this.#live]) {
      const t = await this.#cachedTask(taskId, now);
      if (!t || FINAL.has(t.status)) {
        this.#live.delete(taskId);
        this.#tasks.delete(taskId);
        continue;
      }
      if (now > stageDue(t)) {
        this.#enqueue(`task ${taskId}`, `timeout ${taskId}`, () => this.#timeout(taskId), {
          key: `timeout ${taskId}`,
        });
      }
    }
    for (const taskId of [...this.#toSeed]) {
      const t = await this.#cachedTask(taskId, now);
      if (!t || (t.status !== 'created' && t.status !== 'rejected')) {
        this.#toSeed.delete(taskId);
        continue;
      }
      this.#enqueue(`task ${taskId}`, `seed ${taskId}`, () => this.#seed(taskId), { key: `seed ${taskId}` });
    }
    // Intents left by a crash: their events were consumed before the restart, so they are
    // resumed from the state (each path checks the chain before it sends anything). An intent
    // of a job in flight is deduplicated by its key.
    for (const claim of state.listClaims('intent')) {
      const k = key(claim.task, claim.attempt);
      if (this.#driver?.lanes.has(`claim ${k}`)) continue;
      const t = await this.#cachedTask(BigInt(claim.task), now);
      if (
        t &&
        t.attempt === claim.attempt &&
        (t.status === 'seeded' || t.status === 'claimed') &&
        now <= t.deadline
      ) {
        this.#enqueue(k, `claim ${k}`, (ctx) => this.#claim(BigInt(claim.task), claim.attempt, ctx), {
          key: `claim ${k}`,
        });
      } else if (t) {
        state.markClaimOutcome(claim.task, claim.attempt, 'failed', `task is ${t.status}`);
      }
    }
    for (const v of state.listVotes('intent')) {
      const k = key(v.task, v.attempt);
      if (this.#driver?.lanes.has(`vote ${k}`)) continue;
      const t = await this.#cachedTask(BigInt(v.task), now);
      if (t && t.attempt === v.attempt && t.status === 'attesting' && t.executor) {
        const executor = await getNode(chain, t.executor as Hex);
        if (!executor) continue;
        const location = `${executor.endpoint}/v1/tasks/${v.task}/attempts/${v.attempt}/evidence`;
        this.#enqueueVote(BigInt(v.task), v.attempt, executor.address, location);
      } else if (t) {
        state.markVoteOutcome(v.task, v.attempt, 'failed', `task is ${t.status}`);
      }
    }
    const me = this.address.toLowerCase();
    for (const claim of state.claimsAwaitingEvidence()) {
      const taskId = BigInt(claim.task);
      let task = await this.#cachedTask(taskId, now);
      if (!task) continue;
      if (task.attempt === claim.attempt && task.status === 'seeded') continue;
      if (
        task.attempt === claim.attempt &&
        task.status === 'claimed' &&
        task.executor?.toLowerCase() === me
      ) {
        if (now <= task.deadline) continue;
        const k = key(claim.task, claim.attempt);
        this.#enqueue(k, `evidence ${k}`, () => this.#commitEvidence(taskId, claim.attempt), {
          key: `evidence ${k}`,
          pool: 'evidence',
        });
        continue;
      }
      // It looks lost (another claimant won, or the attempt moved on): confirm with a fresh read
      // (the cached row may predate this node's claim), then settle it so it is not read again.
      task = await getTask(chain, taskId);
      this.#tasks.set(taskId, { row: task, due: task ? stageDue(task) : Number.MAX_SAFE_INTEGER });
      if (!task) continue;
      const won = task.executor?.toLowerCase() === me;
      if (task.attempt === claim.attempt && (task.status === 'seeded' || (task.status === 'claimed' && won)))
        continue;
      // Its evidence got the attempt past `claimed` (the commitment went through before a crash
      // or a failed read recorded it): committed, not lost.
      const att = state.getAttempt(claim.task, claim.attempt);
      if (att?.evidence && won && task.attempt === claim.attempt) {
        state.markEvidenceCommitted(claim.task, claim.attempt);
        continue;
      }
      // Settled without evidence from this node: not the best claim, or its stage closed.
      state.markClaimLost(claim.task, claim.attempt, `task is ${task.status}, attempt ${task.attempt}`);
    }
    await this.#reconcileEnclaves(now);
    for (const att of state.pendingReceipts()) {
      const task = await this.#cachedTask(BigInt(att.task), now);
      if (!task || task.attempt !== att.attempt) continue;
      if (task.status === 'running' && att.receiptStatus === 'intent')
        this.#enqueueReceipt(task.taskId, task.attempt);
      else if (task.status === 'completed' && att.receiptStatus === 'intent') {
        state.markReceiptOutcome(task.taskId, task.attempt, 'confirmed');
      }
    }
  }

  /**
   * Enclaves and attempts that cannot finish: an enclave whose attempt ended without running
   * it (rejected, keys missed, another attempt) is destroyed; an attempt whose enclave is gone
   * (died with the previous process) is abandoned once attested; abandonments left by a crash
   * are sent again.
   */
  async #reconcileEnclaves(now: number): Promise<void> {
    const state = this.#state!;
    const me = this.address.toLowerCase();
    for (const [k, handle] of [...this.#enclaves]) {
      if (this.#running.has(k)) continue;
      const [task, attempt] = k.split('/');
      const t = await this.#cachedTask(BigInt(task), now);
      const live = t?.attempt === Number(attempt) && ENCLAVE_STAGES.has(t.status);
      if (live) {
        // Every key recorded on chain: (re)start the run if it is not under way (its first
        // start may have failed to read the chain); #keysArrived checks the deliveries.
        if (t.status === 'attested') {
          // Keys that do not come within keysWaitSeconds of the attestation: the enclave is not
          // kept for them (an owner that never releases cannot pin it); the attempt is given up.
          const seen = this.#attestedSeen.get(k) ?? now;
          this.#attestedSeen.set(k, seen);
          if (now - seen >= this.#opts.config.keysWaitSeconds && this.#missingKeys(t).length > 0) {
            this.#attestedSeen.delete(k);
            this.#enclaves.delete(k);
            await handle.destroy().catch(() => {});
            state.beginAbandon(
              t.taskId,
              t.attempt,
              `ENCLAVE_KEYS_MISSING: no key within ${this.#opts.config.keysWaitSeconds} s of the attestation: ${this.#missingKeys(t).join(', ')}`,
            );
            this.#log.warn('keys did not come in time; abandoning the attempt', {
              task: String(t.taskId),
              attempt: t.attempt,
            });
          }
          continue;
        }
        if (t.status === 'running') {
          // A key recorded on chain as released but never delivered (or an owner delivering too
          // late): give the attempt up before the run deadline instead of being slashed for a
          // missed receipt (§11.3).
          const missing = this.#missingKeys(t);
          if (missing.length > 0 && now >= t.deadline - KEYS_WAIT_MARGIN_SECONDS) {
            this.#enclaves.delete(k);
            await handle.destroy().catch(() => {});
            state.beginAbandon(
              t.taskId,
              t.attempt,
              `ENCLAVE_KEYS_MISSING: released on chain but not delivered: ${missing.join(', ')}`,
            );
            this.#log.warn('keys recorded as released never arrived; abandoning the attempt', {
              task: String(t.taskId),
              attempt: t.attempt,
              missing,
            });
            continue;
          }
          this.#keysArrived(t.taskId, t.attempt);
        }
        continue;
      }
      this.#enclaves.delete(k);
      this.#attestedSeen.delete(k);
      await handle.destroy().catch(() => {});
      this.#log.info('enclave destroyed: its attempt ended', {
        task,
        attempt: Number(attempt),
        status: t?.status,
      });
    }
    for (const [k, o] of [...this.#orphans]) {
      const t = await this.#cachedTask(o.taskId, now);
      if (
        !t ||
        t.attempt !== o.attempt ||
        t.executor?.toLowerCase() !== me ||
        !ENCLAVE_STAGES.has(t.status)
      ) {
        this.#orphans.delete(k);
        continue;
      }
      if (t.status !== 'attested' && t.status !== 'running') continue;
      this.#orphans.delete(k);
      state.beginAbandon(
        o.taskId,
        o.attempt,
        'ENCLAVE_LOST: the node restarted and the enclave of this attempt is gone',
      );
    }
    for (const att of state.pendingAbandons()) this.#enqueueAbandon(BigInt(att.task), att.attempt);
  }

  #enqueueAbandon(taskId: bigint, attempt: number): void {
    const k = key(taskId, attempt);
    this.#enqueue(k, `abandon ${k}`, () => this.#abandon(taskId, attempt), { key: `abandon ${k}` });
  }

  /**
   * Gives up an attempt this node's enclave cannot finish (Tasks.abandon, §11.3): excluded from
   * the task, not slashed. Waits while the attempt is still being judged; settles the intent
   * as `lost` if the attempt ended otherwise first.
   */
  async #abandon(taskId: bigint, attempt: number): Promise<void> {
    const state = this.#state!;
    const chain = this.#chain!;
    const att = state.getAttempt(taskId, attempt);
    if (!att?.abandonCause || att.abandonStatus !== 'intent') return;
    const t = await getTask(chain, taskId);
    const mine = t?.attempt === attempt && t.executor?.toLowerCase() === this.address.toLowerCase();
    if (mine && (t.status === 'claimed' || t.status === 'attesting')) return;
    const now = Number((await chain.public.getBlock()).timestamp);
    if (!t || !mine || (t.status !== 'attested' && t.status !== 'running') || now > t.deadline) {
      state.markAbandonOutcome(taskId, attempt, 'lost');
      return;
    }
    try {
      await abandonAttempt(chain, { taskId, attempt, cause: att.abandonCause });
      state.markAbandonOutcome(taskId, attempt, 'confirmed');
      this.#log.warn('attempt abandoned', { task: String(taskId), attempt, cause: att.abandonCause });
    } catch (e) {
      const fe = toFerryError(e);
      if (fe.code !== 'CHAIN_UNAVAILABLE') state.markAbandonOutcome(taskId, attempt, 'reverted');
      throw fe;
    }
  }

  #enqueueReceipt(taskId: bigint, attempt: number): void {
    const k = key(taskId, attempt);
    this.#enqueue(k, `receipt ${k}`, () => this.#postReceipt(taskId, attempt), { key: `receipt ${k}` });
  }

  /** Seeds a task's next attempt (anyone may, once the anchor block's successor exists). */
  async #seed(taskId: bigint): Promise<void> {
    const t = await getTask(this.#chain!, taskId);
    if (!t || (t.status !== 'created' && t.status !== 'rejected')) {
      this.#toSeed.delete(taskId);
      return;
    }
    try {
      await seedTask(this.#chain!, taskId);
      this.#toSeed.delete(taskId);
      this.#tasks.delete(taskId);
    } catch (e) {
      // Too early (the anchor block's successor is not mined yet) or seeded by someone else.
      this.#log.debug('seed not possible yet', { task: String(taskId), code: toFerryError(e).code });
    }
  }

  /**
   * Keeps the registration alive: a heartbeat once an hour of chain time (the registry lets
   * anyone mark a node inactive after its heartbeat TTL, a day by default).
   */
  #jailCheckAfter = 0;

  async #heartbeat(now: number): Promise<void> {
    const chain = this.#chain!;
    if (this.#lastHeartbeat === 0) {
      const me = await getNode(chain, this.address as Hex);
      this.#lastHeartbeat = me ? Math.max(me.lastHeartbeat, 1) : now;
    }
    // Jailed is not forever (§11.1): once the jail has ended, the node returns by itself.
    if (now >= this.#jailCheckAfter) {
      const me = await getNode(chain, this.address as Hex);
      if (me?.status === 'jailed') {
        if (now >= me.jailedUntil) {
          try {
            await unjailNode(chain);
            this.#log.warn('jail ended; the node is active again', {
              address: this.address,
              jailedFor: me.jailedTask === null ? null : String(me.jailedTask),
            });
          } catch (e) {
            const fe = toFerryError(e);
            if (fe.code === 'CHAIN_UNAVAILABLE') throw fe;
            // e.g. stake below the minimum after the slash: say so, try again in an hour.
            this.#log.warn('the node cannot leave jail', { code: fe.code, message: fe.message });
            this.#jailCheckAfter = now + HEARTBEAT_EVERY_SECONDS;
          }
        } else this.#jailCheckAfter = me.jailedUntil;
      } else this.#jailCheckAfter = now + JAIL_CHECK_EVERY_SECONDS;
    }
    if (now - this.#lastHeartbeat < HEARTBEAT_EVERY_SECONDS) return;
    await heartbeat(chain);
    this.#lastHeartbeat = now;
    this.#log.info('heartbeat', { address: this.address });
  }

  /**
   * Ends a stage whose deadline passed (anyone may): an attempt without a claim, evidence,
   * votes or receipt in time ends, and the task moves to its next attempt or fails; a task past
   * its expiry is refunded. Reverts (someone else was first) are ignored.
   */
  async #timeout(taskId: bigint): Promise<void> {
    const chain = this.#chain!;
    const t = await getTask(chain, taskId);
    this.#tasks.delete(taskId);
    if (!t || FINAL.has(t.status)) return;
    const now = Number((await chain.public.getBlock()).timestamp);
    if (now <= stageDue(t)) return;
    try {
      const r = await timeoutTask(chain, taskId);
      this.#log.info('stage timed out', {
        task: String(taskId),
        attempt: t.attempt,
        was: t.status,
        now: r.status,
      });
    } catch (e) {
      this.#log.debug('timeout not possible', { task: String(taskId), code: toFerryError(e).code });
    }
  }

  async #commitEvidence(taskId: bigint, attempt: number): Promise<void> {
    const state = this.#state!;
    const task = await getTask(this.#chain!, taskId);
    if (!task || task.attempt !== attempt || task.status !== 'claimed') return;
    if (task.executor?.toLowerCase() !== this.address.toLowerCase()) return;
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
      const commitments = await readTaskCommitments(this.#chain!, { chainId: this.#chainId, task });
      const handle = await createEnclave({ commitments, backend: this.#backendSpec() });
      this.#enclaves.set(key(task.taskId, task.attempt), handle);
      state.saveEvidence(task.taskId, task.attempt, handle.evidenceBytes, handle.evidenceHash, {
        x25519Pub: handle.x25519Pub,
        ed25519Pub: handle.ed25519Pub,
        seed: hexBytes(task.seed),
      });
      evidenceHash = handle.evidenceHash;
    }
    const location = `${this.#server!.url}/v1/tasks/${task.taskId}/attempts/${task.attempt}/evidence`;
    await commitEvidence(this.#chain!, {
      taskId: task.taskId,
      attempt: task.attempt,
      evidenceHash,
      location,
    });
    state.markEvidenceCommitted(task.taskId, task.attempt);
    this.#log.info('evidence committed', { task: String(task.taskId), attempt: task.attempt });
  }

  /** The enclave backend of this node's TEE kind, from its configuration. */
  #backendSpec(): BackendSpec {
    const c = this.#opts.config;
    if (c.tee === 'sim' && c.simAttester) return { kind: 'sim', attesterFile: c.simAttester };
    if (c.tee === 'tpm2' && c.tpm2Tcti) {
      return {
        kind: 'tpm2',
        tcti: c.tpm2Tcti,
        akHandle: c.tpm2AkHandle,
        activationRecordFile: c.tpm2Activation,
        ekCertFile: c.tpm2EkCert,
        ekChainFiles: c.tpm2EkChain.length > 0 ? [...c.tpm2EkChain] : undefined,
      };
    }
    throw new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', `this node cannot create ${c.tee} enclaves`, {
      hints: ['sim needs --sim-attester FILE; tpm2 needs --tpm2-tcti TCTI (and a provisioned AK)'],
    });
  }

  /**
   * tpm2 executor start: resets PCR 23 and extends it with
   * `runtimeMeasurement([["ferry/enclave-runtime", enclave runtime measurement (§10.8)]])`
   * (§8 tpm2), so that quotes attest the enclave runtime this node runs.
   */
  async #measureRuntime(): Promise<void> {
    const c = this.#opts.config;
    if (!c.tpm2Tcti) return;
    // Directly with tpm2-tools: opening a Tpm2Backend would create an AK if none were provisioned.
    const m = tpm2RuntimeMeasurement([
      { name: 'ferry/enclave-runtime', content: await enclaveRuntimeMeasurement() },
    ]);
    await new Tpm2Tools({ tcti: c.tpm2Tcti }).session(async (run) => {
      await run('tpm2_pcrreset', [String(RUNTIME_PCR)], this.#stopping.signal);
      await run('tpm2_pcrextend', [`${RUNTIME_PCR}:sha256=${toHex(m)}`], this.#stopping.signal);
    });
    this.#log.info('runtime measured into PCR 23', { measurement: toHex(m) });
  }

  /** Checks a key delivery against the chain (deliveries.ts) and returns its signer. */
  async #verifyDelivery(task: string, attempt: number, body: KeyDeliveryBody): Promise<string> {
    const chain = this.#chain;
    if (!chain) throw new FerryError('PEER_UNAVAILABLE', 'the node is starting');
    return verifyKeyDelivery(
      {
        chainId: BigInt(this.#chainId),
        tasks: this.#opts.config.contracts.Tasks as Hex,
        executor: this.address,
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

  /** Chain time at which the reconciler first saw each live enclave's attempt attested. */
  readonly #attestedSeen = new Map<string, number>();

  /** Enclaves alive (created for claims won, until their attempt ends). */
  #liveEnclaves(): number {
    return this.#enclaves.size;
  }

  /** The assets of the attempt whose sealed key has not been delivered (`app 1`, `dataset 2`). */
  #missingKeys(task: TaskInfo): string[] {
    const deliveries = this.#state!.listKeyDeliveries(task.taskId, task.attempt).map(decodeSealed);
    const has = (kind: string, id: bigint) =>
      deliveries.some((d) => d.assetKind === kind && d.assetId === id);
    return [
      ...(has('app', task.appId) ? [] : [`app ${task.appId}`]),
      ...task.datasetIds.filter((d) => !has('dataset', d)).map((d) => `dataset ${d}`),
    ];
  }

  /** A new sealed key was stored: when every asset's key is there, the run is enqueued. */
  #keysArrived(taskId: bigint, attempt: number): void {
    const k = key(taskId, attempt);
    this.#enqueue(
      k,
      `keys ${k}`,
      async () => {
        if (this.#running.has(k) || !this.#enclaves.has(k)) return;
        const task = await getTask(this.#chain!, taskId);
        if (!task || task.attempt !== attempt) return;
        if (this.#missingKeys(task).length > 0) return;
        this.#running.add(k);
        this.#enqueue(k, `run ${k}`, () => this.#run(task), { pool: 'enclave', key: `run ${k}` });
      },
      { key: `keys ${k}` },
    );
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
    const relay = this.#relay;
    if (!handle || !relay) return;
    let plan: RunPlan | null = null;
    try {
      plan = await this.#prepareRun(task);
      await this.#runEnclave(task, handle, relay, plan);
    } catch (e) {
      const fe = toFerryError(e);
      // Stopping: the enclave dies with this process; the next start abandons the attempt.
      if (this.#stopping.signal.aborted) throw fe;
      // The chain could not be read before the enclave got its keys: nothing is spent, the
      // reconciler starts the run again.
      if (fe.code === 'CHAIN_UNAVAILABLE' && plan === null) {
        this.#running.delete(k);
        throw fe;
      }
      // The enclave cannot finish (an input unavailable or not decrypting, a key that does not
      // open, a crash): it is destroyed and the attempt given up rather than left to time out.
      this.#enclaves.delete(k);
      await handle.destroy().catch(() => {});
      // On chain only the code and our own words: a peer's message never reaches the chain (§13.1).
      this.#state!.beginAbandon(taskId, attempt, abandonCause(fe.code, fe.message));
      this.#log.warn('enclave run failed; abandoning the attempt', {
        task: String(taskId),
        attempt,
        code: fe.code,
        message: fe.message,
      });
      this.#enqueueAbandon(taskId, attempt);
      return;
    }
    this.#tasks.delete(taskId);
    const now = await getTask(this.#chain!, taskId);
    if (now?.attempt === attempt && now.status === 'running') this.#enqueueReceipt(taskId, attempt);
  }

  /**
   * What a run needs from the chain, read before any key reaches the enclave: a read that fails
   * here leaves the enclave untouched, so the run can be tried again.
   */
  async #prepareRun(task: TaskInfo): Promise<RunPlan> {
    const chain = this.#chain!;
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
    // Running: the run deadline is fixed; attested (keys delivered, the last release not yet
    // recorded): it will be at least max(runWindow, MIN_RUN_TIME) from the last release (§12).
    const fresh = (await getTask(chain, task.taskId)) ?? task;
    const now = Number((await chain.public.getBlock()).timestamp);
    const left =
      fresh.status === 'running' ? fresh.deadline - now : Math.max(fresh.windows.run, MIN_RUN_TIME);
    const seconds = Math.min(left - RECEIPT_MARGIN_SECONDS, MAX_LIMITS.timeoutMs / 1000);
    if (seconds < 1) {
      throw new FerryError('ENCLAVE_LIMIT_TIME', 'the run window leaves no time to run the app', {
        hints: [
          `${left} s left before the run deadline; ${RECEIPT_MARGIN_SECONDS} s are kept to post the receipt`,
        ],
      });
    }
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
    const state = this.#state!;
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
          this.#stopping.signal,
        );
      } catch (e) {
        // The relay knows why an input stream failed better than the enclave's fetch does.
        const cause = tokens.map((t) => relay.failure(t)).find((f) => f !== null);
        if (cause) throw cause;
        throw e;
      }
      const resultPath = join(this.#opts.home, 'results', `${taskId}-${attempt}.age`);
      mkdirSync(join(this.#opts.home, 'results'), { recursive: true, mode: 0o700 });
      await writeFile(resultPath, out.result, { mode: 0o600 });
      await writeFile(`${resultPath}.sig`, out.signature, { mode: 0o600 });
      const resultHash = new Uint8Array(createHash('sha256').update(out.result).digest());
      state.saveResult(taskId, attempt, { resultPath, resultHash, receipt: out.receipt });
      this.#log.info('enclave run finished', { task: String(taskId), attempt, outcome: out.outcome });
      this.#enclaves.delete(k);
      await handle.destroy();
    } finally {
      for (const t of tokens) relay.revoke(t);
    }
  }

  async #postReceipt(taskId: bigint, attempt: number): Promise<void> {
    const state = this.#state!;
    const att = state.getAttempt(taskId, attempt);
    if (!att?.receipt || !att.resultHash || !att.resultPath || att.receiptStatus !== 'intent') return;
    const task = await getTask(this.#chain!, taskId);
    if (!task || task.attempt !== attempt || task.status !== 'running') return;
    const signature = new Uint8Array(readFileSync(`${att.resultPath}.sig`));
    try {
      const r = await submitReceipt(this.#chain!, {
        taskId: task.taskId,
        attempt: task.attempt,
        receipt: att.receipt,
        signature,
        resultHash: att.resultHash,
        resultLocation: `${this.#server!.url}/v1/tasks/${task.taskId}/attempts/${task.attempt}/result`,
      });
      state.markReceiptSent(task.taskId, task.attempt, r.hash);
      state.markReceiptOutcome(task.taskId, task.attempt, 'confirmed');
      this.#log.info('receipt posted', { task: String(task.taskId), attempt: task.attempt });
    } catch (e) {
      const fe = toFerryError(e);
      if (fe.code === 'CHAIN_REVERTED') state.markReceiptOutcome(task.taskId, task.attempt, 'reverted');
      throw fe;
    }
  }

  // --- verifier -----------------------------------------------------------------------

  /** The appraisal policy of an app or dataset by hash (PolicyBook: built in or published on chain). */
  #resolvePolicy(s: PolicySubject, appraisalPolicyHash: Hex): Promise<AppraisalPolicy | null> {
    return this.#policies!.resolve(this.#chain!, { kind: s.assetKind, id: s.assetId }, appraisalPolicyHash);
  }

  async #vote(
    taskId: bigint,
    attempt: number,
    executor: string,
    location: string,
    ctx?: JobContext,
  ): Promise<void> {
    const chain = this.#chain!;
    const state = this.#state!;
    if (executor.toLowerCase() === this.address.toLowerCase()) return;
    const prior = state.getVote(taskId, attempt);
    if (prior && prior.status !== 'intent') return;
    const task = await getTask(chain, taskId);
    if (!task || task.attempt !== attempt || task.status !== 'attesting') return;
    // Eligibility and seats as of the task's creation (the contract refuses a vote from a node
    // changed since, and from the executor's operator): abstain rather than send a doomed vote.
    const me = await nodeAtCreation(chain, this.address, task);
    if (!eligibleAtCreation(me, 'verifier')) return;
    const exec = await getNode(chain, executor as Hex);
    if (exec && sameOperator(me, exec)) {
      this.#log.info('the executor is of this node operator; abstaining', { task: String(taskId) });
      return;
    }
    const alpha = verifierAlpha({
      chainId: BigInt(this.#chainId),
      taskId,
      attempt,
      seed: hexBytes(task.seed),
    });
    const proof = vrfProve(this.#vrf!.sk, alpha);
    const beta = vrfProofToHash(proof);
    const seats = seatsFor(beta, me.stake, task);
    if (seats === 0) return;
    // The judgement (verifier.ts): abstain when a policy that applies (the app's, every
    // dataset's; built in or published on chain, §9) is not one this node applies; a chain or
    // peer in trouble is thrown and retried, never voted on.
    const facts = await attemptFacts(chain, { chainId: this.#chainId, task });
    const decision = await judgeAttempt({
      chain,
      chainId: this.#chainId,
      facts,
      resolve: (s, h) => this.#resolvePolicy(s, h),
      registry: this.#registry!,
      now: new Date(),
      fetchEvidence: () =>
        fetchServedEvidence(
          createPeerClient({
            baseUrl: executorBaseUrl(location),
            endpointPolicy: { localNetwork: this.#opts.config.localNetwork },
            timeoutMs: 10_000,
          }),
          taskId,
          attempt,
          this.#stopping.signal,
        ),
    });
    if (decision.kind === 'abstain') {
      this.#log.warn('abstaining', { task: String(taskId), reason: decision.reason });
      return;
    }
    let pass = decision.pass;
    if (!pass) {
      this.#log.warn('attempt fails verification', {
        task: String(taskId),
        code: refusalCode(decision.appraisal),
        reasons: refusalsOf(decision.appraisal).slice(0, 3),
      });
    }
    // The signed result covers every policy applied (one entry each) and every refusal; its
    // `accepted` is the verdict, so a fail vote never commits to an affirming result.
    const result = buildAttemptResult(decision.appraisal, {
      commitments: commitmentsHash(facts.commitments),
      verifierId: this.address,
      verifierKey: this.#opts.keys.signer.keyId,
      issuedAt: new Date(),
    });
    const resultBytes: Uint8Array | null = encodeSignedAttemptResult(
      signAttemptResult(result, this.#opts.keys.signingSecretKey),
    );
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
    ctx?.recorded();
    if (!fresh) {
      // An intent from before a restart: send only if the chain has no vote from us, and then
      // exactly the recorded verdict and result hash.
      const onChain = await getChainVote(chain, { taskId, attempt, verifier: this.address as Hex });
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
      this.#log.info('voted', { task: String(taskId), attempt, pass, seats });
    } catch (e) {
      const fe = toFerryError(e);
      state.markVoteOutcome(
        taskId,
        attempt,
        fe.code === 'CHAIN_REVERTED' ? 'reverted' : 'failed',
        fe.message,
      );
      throw fe;
    }
  }
}
