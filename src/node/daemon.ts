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
 *   delivered it downloads the ciphertexts from the owner agents (signed requests), runs the
 *   enclave, stores the result and, once the task is `running`, posts the receipt.
 * - verifier: on `EvidenceCommitted` it computes its seats by sortition; when selected it
 *   fetches the evidence and the enclave keys from the executor, checks the claimant's VRF
 *   proof, appraises the evidence, signs an EAR-shaped result and votes (intent first).
 *
 * Time-driven steps (evidence after the claim window, receipt after the releases) run in a
 * reconciler that reads the chain every poll, so they also resume after a restart. Enclaves
 * live in this process: after a restart an attempt whose enclave is gone cannot run; it times
 * out on chain and the task moves to its next attempt.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Hex } from 'viem';
import { z } from 'zod';
import {
  buildAttestationResult,
  encodeSignedResult,
  signAttestationResult,
  attestationResultHash,
  type VerifierRegistry,
} from '../attestation/index.ts';
import type { AppraisalPolicy } from '../attestation/types.ts';
import {
  type ChainWriter,
  claimTask,
  commitEvidence,
  connect,
  type FerryEvent,
  getApp,
  getDataset,
  getNode,
  getTask,
  getVote as getChainVote,
  heartbeat,
  registerNode,
  seedTask,
  setNodeEndpoint,
  submitReceipt,
  timeoutTask,
  type TaskInfo,
  type TeeKind,
  vote,
  type Watcher,
  watchFerryEvents,
  writer,
} from '../chain/index.ts';
import { X25519Recipient } from '../crypto/age/index.ts';
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
} from '../enclave/index.ts';
import { createLogger, FerryError, fromHex, type Logger, toFerryError, toHex } from '../kernel/index.ts';
import { createPeerClient, type Ed25519Signer, type HttpServer } from '../net/index.ts';
import {
  appraiseAttempt,
  attemptEvents,
  checkClaim,
  decodeTaskInput,
  hexBytes,
  knownPolicies,
  seatsFor,
} from '../task/index.ts';
import type { NodeConfig } from './config.ts';
import { trustRegistry } from '../task/index.ts';
import { EnclaveKeysSchema } from '../task/index.ts';
import { createNodeServer, decodeSealed } from './server.ts';
import { NodeState } from './state.ts';

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

const EnclaveHealthSchema = z.object({ ok: z.literal(true), keyId: z.string().nullable() }).passthrough();

function key(task: bigint | string, attempt: number): string {
  return `${task}/${attempt}`;
}

export class NodeDaemon {
  readonly #opts: NodeDaemonOptions;
  readonly #log: Logger;
  #state: NodeState | null = null;
  #server: HttpServer | null = null;
  #watcher: Watcher | null = null;
  #chain: ChainWriter | null = null;
  #chainId = 0;
  #vrf: { sk: Uint8Array; pk: Uint8Array } | null = null;
  #registry: VerifierRegistry | null = null;
  #policies = new Map<string, AppraisalPolicy>();
  #enclaves = new Map<string, EnclaveHandle>();
  #queue: Promise<void> = Promise.resolve();
  #reconcileQueued = false;
  #tick: NodeJS.Timeout | null = null;
  #stopping = new AbortController();
  #started: NodeReady | null = null;
  #running = new Set<string>();
  /** Tasks waiting for their seed (anyone may seed; executors do). */
  #toSeed = new Set<bigint>();
  /** Tasks seen created and not final: their stage deadlines are enforced with `timeout`. */
  #live = new Set<bigint>();
  /** Block time of this node's last heartbeat on chain (0: unknown, checked at the next tick). */
  #lastHeartbeat = 0;
  /** Votes to retry after a retryable failure (peer or chain unavailable), by task/attempt. */
  #toVote = new Map<string, { taskId: bigint; attempt: number; executor: string; location: string }>();

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
      this.#policies = knownPolicies(c.allowSim);
      this.#registry = trustRegistry(c);
      if (c.tee === 'tpm2' && c.roles.includes('executor')) await this.#measureRuntime();
      this.#server = createNodeServer({
        state: this.#state,
        keyId: toHex(this.#opts.keys.signer.keyId),
        host: c.host,
        port: c.port,
        log: this.#log.child('http'),
        authorizeKeys: (req) =>
          this.#authorizeKeys(
            req.caller.keyIdHex,
            req.task,
            req.attempt,
            req.body.assetKind,
            req.body.assetId,
          ),
        onKeys: (d) =>
          this.#enqueue(`keys ${d.task}/${d.attempt}`, () => this.#maybeRun(BigInt(d.task), d.attempt)),
      });
      await this.#server.start();
      signal?.throwIfAborted();
      const clients = await connect({
        rpcUrl: c.rpc,
        privateKey: this.#opts.keys.evmPrivateKey,
        pollingInterval: 100,
      });
      this.#chain = writer(clients, c.contracts);
      this.#chainId = clients.chain.id;
      await this.#ensureRegistered();
      signal?.throwIfAborted();
      // The first start fixes the cursor at the current head and stores it at once, so that a
      // restart, however soon, resumes from there and misses no event.
      let cursor = this.#state.getCursor('chain');
      if (!cursor) {
        this.#state.setCursor('chain', Number(await this.#chain.public.getBlockNumber()));
        cursor = this.#state.getCursor('chain')!;
      }
      const from = BigInt(cursor.block);
      this.#watcher = watchFerryEvents(this.#chain, {
        fromBlock: from,
        confirmations: c.confirmations,
        pollIntervalMs: c.pollIntervalMs,
        signal: this.#stopping.signal,
        onEvents: async (events, next) => {
          if (events.length > 0) {
            this.#log.debug('events', {
              next: Number(next),
              names: events.map((e) => e.eventName).join(','),
            });
          }
          for (const e of events) this.#onEvent(e);
          await this.#queue;
          this.#state?.setCursor('chain', Number(next));
        },
        onError: (e) => this.#log.error('event watcher stopped', { code: e.code, error: e }),
      });
      // At most one reconcile waits in the queue: a slow chain must not build a backlog that
      // the watcher (which waits for the queue) can never catch up with.
      this.#tick = setInterval(
        () => {
          if (this.#reconcileQueued) return;
          this.#reconcileQueued = true;
          this.#enqueue('reconcile', async () => {
            this.#reconcileQueued = false;
            await this.#reconcile();
          });
        },
        Math.max(c.pollIntervalMs, 200),
      );
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

  /** Stops the reconciler, the watcher, enclaves, the server and the database; idempotent. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    if (this.#tick) clearInterval(this.#tick);
    this.#tick = null;
    await this.#watcher?.stop();
    this.#watcher = null;
    await this.#queue.catch(() => {});
    for (const h of this.#enclaves.values()) await h.destroy().catch(() => {});
    this.#enclaves.clear();
    await this.#server?.stop();
    this.#server = null;
    this.#state?.close();
    this.#state = null;
    this.#started = null;
  }

  #enqueue(what: string, fn: () => Promise<void>): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#stopping.signal.aborted) return;
      try {
        if (what !== 'reconcile') this.#log.debug('job', { what });
        await fn();
      } catch (e) {
        const fe = toFerryError(e);
        this.#log.warn(`${what} failed`, { code: fe.code, message: fe.message });
      }
    });
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
    if (e.eventName === 'TaskCreated') this.#live.add(a.taskId as bigint);
    if ((e.eventName === 'TaskCreated' || e.eventName === 'AttemptEnded') && roles.includes('executor')) {
      this.#toSeed.add(a.taskId as bigint);
    } else if (e.eventName === 'TaskSeeded' && roles.includes('executor')) {
      const taskId = a.taskId as bigint;
      const attempt = Number(a.attempt);
      this.#enqueue(`claim ${taskId}/${attempt}`, () => this.#claim(taskId, attempt));
    } else if (e.eventName === 'EvidenceCommitted' && roles.includes('verifier')) {
      const taskId = a.taskId as bigint;
      const attempt = Number(a.attempt);
      const location = String(a.evidenceLocation);
      const executor = String(a.executor);
      this.#toVote.set(key(taskId, attempt), { taskId, attempt, executor, location });
      this.#enqueue(`vote ${taskId}/${attempt}`, async () => {
        await this.#vote(taskId, attempt, executor, location);
        this.#toVote.delete(key(taskId, attempt));
      });
    }
  }

  // --- executor -----------------------------------------------------------------------

  async #claim(taskId: bigint, attempt: number): Promise<void> {
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
    state.beginClaim({ task: taskId, attempt, vrfOutput: output, vrfProof: proof });
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

  /** Time-driven steps for claims won, and receipts to post. */
  async #reconcile(): Promise<void> {
    const chain = this.#chain;
    const state = this.#state;
    if (!chain || !state) return;
    const now = Number((await chain.public.getBlock()).timestamp);
    for (const [k, v] of [...this.#toVote]) {
      const t = await getTask(chain, v.taskId);
      const vote = state.getVote(v.taskId, v.attempt);
      if (!t || t.attempt !== v.attempt || t.status !== 'attesting' || (vote && vote.status !== 'intent')) {
        this.#toVote.delete(k);
        continue;
      }
      await this.#vote(v.taskId, v.attempt, v.executor, v.location);
      this.#toVote.delete(k);
    }
    await this.#heartbeat(now);
    await this.#enforceDeadlines(now);
    for (const taskId of [...this.#toSeed]) {
      const t = await getTask(chain, taskId);
      if (!t || (t.status !== 'created' && t.status !== 'rejected')) {
        this.#toSeed.delete(taskId);
        continue;
      }
      try {
        await seedTask(chain, taskId);
        this.#toSeed.delete(taskId);
      } catch (e) {
        // Too early (the anchor block's successor is not mined yet) or seeded by someone else.
        this.#log.debug('seed not possible yet', { task: String(taskId), code: toFerryError(e).code });
      }
    }
    // Intents left by a crash: their events were consumed before the restart, so they are
    // resumed from the state (each path checks the chain before it sends anything).
    for (const claim of state.listClaims('intent')) {
      const t = await getTask(chain, BigInt(claim.task));
      if (
        t &&
        t.attempt === claim.attempt &&
        (t.status === 'seeded' || t.status === 'claimed') &&
        now <= t.deadline
      ) {
        await this.#claim(BigInt(claim.task), claim.attempt);
      } else {
        state.markClaimOutcome(claim.task, claim.attempt, 'failed', `task is ${t?.status ?? 'missing'}`);
      }
    }
    for (const v of state.listVotes('intent')) {
      const t = await getTask(chain, BigInt(v.task));
      const executor = t?.executor ? await getNode(chain, t.executor as Hex) : null;
      if (t && executor && t.attempt === v.attempt && t.status === 'attesting') {
        const location = `${executor.endpoint}/v1/tasks/${v.task}/attempts/${v.attempt}/evidence`;
        await this.#vote(BigInt(v.task), v.attempt, executor.address, location);
      } else if (!t || t.attempt !== v.attempt || t.status !== 'attesting') {
        state.markVoteOutcome(v.task, v.attempt, 'failed', `task is ${t?.status ?? 'missing'}`);
      }
    }
    for (const claim of state.listClaims('confirmed')) {
      const att = state.getAttempt(claim.task, claim.attempt);
      if (att?.evidence) continue;
      const task = await getTask(chain, BigInt(claim.task));
      if (!task || task.attempt !== claim.attempt) continue;
      if (task.status !== 'claimed' || task.executor?.toLowerCase() !== this.address.toLowerCase()) continue;
      if (now <= task.deadline) continue;
      await this.#commitEvidence(task);
    }
    for (const att of state.pendingReceipts()) {
      const task = await getTask(chain, BigInt(att.task));
      if (!task || task.attempt !== att.attempt) continue;
      if (task.status === 'running' && att.receiptStatus === 'intent') await this.#postReceipt(task);
      else if (task.status === 'completed' && att.receiptStatus !== 'confirmed') {
        if (att.receiptStatus === 'intent') state.markReceiptOutcome(task.taskId, task.attempt, 'confirmed');
      }
    }
  }

  /**
   * Keeps the registration alive: a heartbeat once an hour of chain time (the registry lets
   * anyone mark a node inactive after its heartbeat TTL, a day by default).
   */
  async #heartbeat(now: number): Promise<void> {
    const chain = this.#chain!;
    if (this.#lastHeartbeat === 0) {
      const me = await getNode(chain, this.address as Hex);
      this.#lastHeartbeat = me ? Math.max(me.lastHeartbeat, 1) : now;
    }
    if (now - this.#lastHeartbeat < HEARTBEAT_EVERY_SECONDS) return;
    await heartbeat(chain);
    this.#lastHeartbeat = now;
    this.#log.info('heartbeat', { address: this.address });
  }

  /**
   * Ends stages whose deadline passed (anyone may): an attempt without a claim, evidence,
   * votes or receipt in time ends, and the task moves to its next attempt or fails; a task past
   * its expiry is refunded. Reverts (someone else was first) are ignored.
   */
  async #enforceDeadlines(now: number): Promise<void> {
    const chain = this.#chain!;
    for (const taskId of [...this.#live]) {
      const t = await getTask(chain, taskId);
      if (!t || t.status === 'completed' || t.status === 'failed' || t.status === 'expired') {
        this.#live.delete(taskId);
        continue;
      }
      let due: number;
      if (t.status === 'created' || t.status === 'rejected') due = t.expiresAt;
      else due = Math.min(t.status === 'claimed' ? t.deadline + t.windows.evidence : t.deadline, t.expiresAt);
      if (now <= due) continue;
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
  }

  async #commitEvidence(task: TaskInfo): Promise<void> {
    const state = this.#state!;
    const handle = await createEnclave({
      chainId: BigInt(this.#chainId),
      taskId: task.taskId,
      attempt: task.attempt,
      seed: hexBytes(task.seed),
      backend: this.#backendSpec(),
    });
    this.#enclaves.set(key(task.taskId, task.attempt), handle);
    state.saveEvidence(task.taskId, task.attempt, handle.evidenceBytes, handle.evidenceHash, {
      x25519Pub: handle.x25519Pub,
      ed25519Pub: handle.ed25519Pub,
      seed: hexBytes(task.seed),
    });
    const location = `${this.#server!.url}/v1/tasks/${task.taskId}/attempts/${task.attempt}/evidence`;
    await commitEvidence(this.#chain!, {
      taskId: task.taskId,
      attempt: task.attempt,
      evidenceHash: handle.evidenceHash,
      location,
    });
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

  /** Authorizes a key delivery: the caller must be the owner agent of that asset of this attempt. */
  async #authorizeKeys(
    callerKeyId: string,
    task: string,
    attempt: number,
    assetKind: 'app' | 'dataset',
    assetId: string,
  ): Promise<boolean> {
    const chain = this.#chain;
    if (!chain) return false;
    const t = await getTask(chain, BigInt(task));
    if (!t || t.attempt !== attempt || t.executor?.toLowerCase() !== this.address.toLowerCase()) return false;
    if (t.status !== 'attested' && t.status !== 'running') return false;
    const id = BigInt(assetId);
    let endpoint: string | null = null;
    if (assetKind === 'app' && id === t.appId) endpoint = (await getApp(chain, id))?.endpoint ?? null;
    else if (assetKind === 'dataset' && t.datasetIds.includes(id)) {
      endpoint = (await getDataset(chain, id))?.endpoint ?? null;
    }
    if (!endpoint) return false;
    // The asset's endpoint on chain is its owner agent; its health names the agent's key.
    try {
      const h = await createPeerClient({ baseUrl: endpoint, timeoutMs: 5000 }).json(
        'GET',
        '/v1/health',
        EnclaveHealthSchema,
      );
      return h.keyId === callerKeyId;
    } catch {
      return false;
    }
  }

  async #maybeRun(taskId: bigint, attempt: number): Promise<void> {
    const k = key(taskId, attempt);
    if (this.#running.has(k)) return;
    const handle = this.#enclaves.get(k);
    const state = this.#state!;
    const chain = this.#chain!;
    const task = await getTask(chain, taskId);
    if (!task || !handle) return;
    const deliveries = state.listKeyDeliveries(taskId, attempt).map(decodeSealed);
    const needed = [`app:${task.appId}`, ...task.datasetIds.map((d) => `dataset:${d}`)];
    if (!needed.every((n) => deliveries.some((d) => `${d.assetKind}:${d.assetId}` === n))) return;
    this.#running.add(k);
    await handle.deliverKeys(
      deliveries.map((d) => ({
        assetId: d.assetId,
        assetKind: d.assetKind,
        enc: d.enc,
        ciphertext: d.ciphertext,
      })),
    );
    const work = join(this.#opts.home, 'work', `${taskId}-${attempt}`);
    mkdirSync(work, { recursive: true, mode: 0o700 });
    const app = await getApp(chain, task.appId);
    if (!app) throw new FerryError('TASK_FAILED', 'the task app is not registered');
    const appFile = await this.#download(app.endpoint, `apps/${task.appId}`, join(work, 'app.age'));
    const datasets: {
      id: string;
      assetId: bigint;
      source: { kind: 'file'; location: string; encrypted: boolean };
    }[] = [];
    for (const d of task.datasetIds) {
      const ds = await getDataset(chain, d);
      if (!ds) throw new FerryError('TASK_FAILED', 'a task dataset is not registered');
      const file = await this.#download(ds.endpoint, `datasets/${d}`, join(work, `dataset-${d}.age`));
      datasets.push({
        id: d.toString(),
        assetId: d,
        source: { kind: 'file', location: file, encrypted: true },
      });
    }
    const { resultRecipient, input } = await attemptEvents(chain, task, attempt);
    if (!resultRecipient || !input)
      throw new FerryError('TASK_FAILED', 'the task creation event was not found');
    const args = decodeTaskInput(input.location, input.hash);
    const recipient = new X25519Recipient(resultRecipient).toString();
    const out = await handle.run(
      {
        app: {
          assetId: task.appId,
          measurement: hexBytes(app.measurement),
          source: { kind: 'file', location: appFile, encrypted: true },
        },
        datasets,
        args,
        recipient,
      },
      this.#stopping.signal,
    );
    await handle.destroy();
    this.#enclaves.delete(k);
    const resultPath = join(this.#opts.home, 'results', `${taskId}-${attempt}.age`);
    mkdirSync(join(this.#opts.home, 'results'), { recursive: true, mode: 0o700 });
    await writeFile(resultPath, out.result, { mode: 0o600 });
    await writeFile(`${resultPath}.sig`, out.signature, { mode: 0o600 });
    const resultHash = new Uint8Array(createHash('sha256').update(out.result).digest());
    state.saveResult(taskId, attempt, { resultPath, resultHash, receipt: out.receipt });
    this.#log.info('enclave run finished', { task: String(taskId), attempt, outcome: out.outcome });
  }

  /** Downloads an asset's ciphertext from its owner agent (signed; resumes with Range). */
  async #download(endpoint: string, asset: string, dest: string): Promise<string> {
    const client = createPeerClient({ baseUrl: endpoint, signer: this.#opts.keys.signer });
    const res = await client.stream(`/v1/${asset}/ciphertext`, {
      signed: true,
      signal: this.#stopping.signal,
    });
    const fh = await open(dest, 'w', 0o600);
    try {
      await pipeline(res.body, fh.createWriteStream(), { signal: this.#stopping.signal });
    } finally {
      await fh.close().catch(() => {});
    }
    return dest;
  }

  async #postReceipt(task: TaskInfo): Promise<void> {
    const state = this.#state!;
    const att = state.getAttempt(task.taskId, task.attempt);
    if (!att?.receipt || !att.resultHash || !att.resultPath) return;
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

  async #vote(taskId: bigint, attempt: number, executor: string, location: string): Promise<void> {
    const chain = this.#chain!;
    const state = this.#state!;
    if (executor.toLowerCase() === this.address.toLowerCase()) return;
    const prior = state.getVote(taskId, attempt);
    if (prior && prior.status !== 'intent') return;
    const task = await getTask(chain, taskId);
    if (!task || task.attempt !== attempt || task.status !== 'attesting') return;
    const me = await getNode(chain, this.address as Hex);
    if (!me) return;
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
    // The policy: every dataset's appraisal policy must be one this node knows and applies.
    const policies: AppraisalPolicy[] = [];
    for (const d of task.datasetIds) {
      const ds = await getDataset(chain, d);
      const p = ds ? this.#policies.get(ds.policy.appraisalPolicyHash.slice(2).toLowerCase()) : undefined;
      if (!p) {
        this.#log.warn('unknown appraisal policy; abstaining', { task: String(taskId) });
        return;
      }
      policies.push(p);
    }
    let pass = false;
    let appraisalDone: Awaited<ReturnType<typeof appraiseAttempt>> | null = null;
    try {
      const { claims } = await attemptEvents(chain, task, attempt);
      await checkClaim(chain, this.#chainId, task, claims);
      const base = location.replace(/\/v1\/tasks\/.*$/, '');
      const peer = createPeerClient({ baseUrl: base, timeoutMs: 10_000 });
      const evidenceBytes = await peer.bytes('GET', `/v1/tasks/${taskId}/attempts/${attempt}/evidence`, {
        signal: this.#stopping.signal,
        maxBytes: 1 << 20,
      });
      const keys = await peer.json(
        'GET',
        `/v1/tasks/${taskId}/attempts/${attempt}/enclave`,
        EnclaveKeysSchema,
        {
          signal: this.#stopping.signal,
        },
      );
      pass = true;
      for (const policy of policies) {
        appraisalDone = await appraiseAttempt({
          chainId: this.#chainId,
          task,
          evidenceBytes,
          x25519Pub: fromHex(keys.x25519Pub, 'x25519Pub', 32),
          ed25519Pub: fromHex(keys.ed25519Pub, 'ed25519Pub', 32),
          policy,
          registry: this.#registry!,
        });
        if (!appraisalDone.appraisal.accepted) pass = false;
      }
    } catch (e) {
      const fe = toFerryError(e);
      if (fe.code === 'PEER_UNAVAILABLE' || fe.code === 'ABORTED') throw fe;
      this.#log.warn('attempt fails verification', {
        task: String(taskId),
        code: fe.code,
        message: fe.message,
      });
      pass = false;
    }
    let resultHash: Uint8Array;
    let resultBytes: Uint8Array | null = null;
    if (appraisalDone) {
      const result = buildAttestationResult(appraisalDone.appraisal, {
        evidence: appraisalDone.evidence,
        policy: policies[policies.length - 1],
        verifierId: this.address,
        verifierKey: this.#opts.keys.signer.keyId,
        issuedAt: new Date(),
      });
      resultBytes = encodeSignedResult(signAttestationResult(result, this.#opts.keys.signingSecretKey));
      resultHash = attestationResultHash(result);
    } else {
      // No appraisal could be made (bad claim or evidence): the result hash commits to the refusal.
      resultHash = new Uint8Array(
        createHash('sha256').update(`ferry/refusal/v1:${taskId}:${attempt}:${task.evidenceHash}`).digest(),
      );
    }
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
