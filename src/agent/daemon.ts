/**
 * The owner agent daemon (`ferry agent start`): components with an explicit lifecycle,
 *
 *   state (SQLite) + ciphertext store -> HTTP server -> chain clients -> event watcher -> reconciler
 *
 * On `TaskAttested` for a task that uses one of its registered assets, the agent acts as the
 * relying party: it checks the claimant's VRF proof, every pass vote's VRF proof and seats
 * against the threshold, its policy (app allowed, executor region and TEE kind, asset not
 * revoked), re-appraises the evidence itself, then HPKE-seals the asset's file key to the
 * enclave's key (info binds task, attempt, evidence hash, asset), writes the release intent
 * with the sealed bytes, delivers them to the executor (a POST carrying the owner account's
 * EIP-191 signature over the key-release statement, src/protocol/key-release.ts), and records the
 * release on chain. The reconciler resumes releases left in `intent` (re-sends the stored bytes,
 * signed again: the signature is deterministic) or `delivered` (records them) after a restart.
 *
 * Jobs run in keyed lanes (src/daemon/driver.ts), one lane per task attempt: releases of
 * different attempts proceed concurrently, those of one attempt in order.
 *
 * The ciphertext endpoint serves an asset only to the executor key of an attempt the agent
 * released that asset's key to, while the task is attested or running.
 *
 * releaseHash (on chain) = SHA-256(enc || ciphertext) of the sealed key delivered.
 *
 * Its address survives restarts: with port 0 it listens first on the port remembered in its
 * state (a fresh one only if that is taken), then, before it processes any event, points the
 * on-chain endpoint of every asset it holds at its URL (`updateDataset` / `updateApp` for those
 * that differ). A failed update does not stop the agent: it is logged and retried by the
 * reconciler (backing off to 30 s) until the chain takes it.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Hex } from 'viem';
import { z } from 'zod';
import type { VerifierRegistry } from '../attestation/index.ts';
import { ChainDriver, type JobContext, ThrottledCursor } from '../daemon/index.ts';
import {
  type ChainWriter,
  connect,
  type FerryEvent,
  getApp,
  getDataset,
  getNode,
  getTask,
  type HeadSource,
  isAllowed,
  recordKeyRelease,
  subscribeNewHeads,
  type TaskInfo,
  updateApp,
  updateDataset,
  writer,
} from '../chain/index.ts';
import type { X25519Identity } from '../crypto/age/index.ts';
import { hpkeSeal } from '../crypto/index.ts';
import { createLogger, FerryError, isRetryable, type Logger, toFerryError, toHex } from '../kernel/index.ts';
import { createPeerClient, type Ed25519Signer, type HttpServer, startRemembering } from '../net/index.ts';
import {
  attemptPath,
  appraiseAttempt,
  attemptEvents,
  attemptFacts,
  attemptPolicies,
  checkClaim,
  checkVotes,
  commitmentsHash,
  fetchServedEvidence,
  hexBytes,
  keyReleaseInfo,
  PolicyBook,
  type PolicySubject,
  refusalsOf,
  signKeyRelease,
  trustRegistry,
} from '../protocol/index.ts';
import type { AgentConfig } from './config.ts';
import { createAgentServer } from './server.ts';
import { AgentState, type Asset, type Release } from './state.ts';
import { AssetStore } from './store.ts';
import { checkAllowSim } from '../protocol/index.ts';

export type AgentKeys = {
  evmPrivateKey: Hex;
  signer: Ed25519Signer;
  ageIdentity: X25519Identity;
};

export type AgentDaemonOptions = {
  config: AgentConfig;
  home: string;
  keys: AgentKeys;
  log?: Logger;
};

export type AgentReady = {
  ready: true;
  role: 'agent';
  profile: string;
  address: string;
  endpoint: string;
  keyId: string;
  ageRecipient: string;
  chainId: number;
};

const KeysAnswer = z.object({ accepted: z.literal(true), fresh: z.boolean() });

export function agentStore(home: string, state: AgentState, identity: X25519Identity): AssetStore {
  return new AssetStore({
    dir: join(home, 'assets'),
    state,
    recipient: identity.recipient,
    identityRef: 'age',
  });
}

export class AgentDaemon {
  readonly #opts: AgentDaemonOptions;
  readonly #log: Logger;
  #state: AgentState | null = null;
  #store: AssetStore | null = null;
  #server: HttpServer | null = null;
  #chain: ChainWriter | null = null;
  #chainId = 0;
  #driver: ChainDriver | null = null;
  #heads: HeadSource | undefined;
  #closeClients: (() => void) | undefined;
  /** Where a restart resumes, written at most once a second (src/daemon/cursor.ts). */
  #cursor = new ThrottledCursor(() => {});
  #policies: PolicyBook | null = null;
  #registry: VerifierRegistry | null = null;
  readonly #stopping = new AbortController();
  #started: AgentReady | null = null;
  /** Attempts seen neither attested nor running any more (they never reopen). */
  #closed = new Set<string>();
  /**
   * The executor endpoint each attempt's evidence was fetched from (origin, by `task/attempt`):
   * its keys are delivered there and nowhere else (§13.1), whatever the registry says later.
   */
  #evidenceFrom = new Map<string, { url: string; at: number }>();
  /** The URL registered on chain for this agent's assets (the listener's, or `publicUrl`). */
  #endpoint = '';
  /** Endpoint refresh still to do (a failure is retried by the reconciler at `at`, backing off). */
  #endpointRetry: { at: number; delayMs: number } | null = null;

  constructor(opts: AgentDaemonOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? createLogger({ component: 'agent' });
  }

  get address(): string {
    return this.#chain?.wallet.account.address ?? '';
  }

  async start(signal?: AbortSignal): Promise<AgentReady> {
    if (this.#started) return this.#started;
    const c = this.#opts.config;
    try {
      this.#state = AgentState.open(join(this.#opts.home, 'state.db'));
      this.#store = agentStore(this.#opts.home, this.#state, this.#opts.keys.ageIdentity);
      this.#store.sweep();
      this.#policies = new PolicyBook({ allowSim: c.allowSim });
      this.#registry = trustRegistry(c);
      this.#server = await this.#listen();
      this.#endpoint = c.publicUrl ?? this.#server.url;
      signal?.throwIfAborted();
      const clients = await connect({
        rpcUrl: c.rpc,
        privateKey: this.#opts.keys.evmPrivateKey,
        pollingInterval: 100,
        // With FERRY_WS_RPC, reads go over the WebSocket while it is up (src/chain/ws-rpc.ts).
        wsRpcUrl: c.wsRpc,
        log: this.#log.child('ws-rpc'),
      });
      this.#closeClients = clients.close;
      this.#chain = writer(clients, c.contracts);
      this.#chainId = clients.chain.id;
      checkAllowSim({ allowSim: c.allowSim, chainId: this.#chainId, rpcUrl: c.rpc, log: this.#log });
      // The first start fixes the cursor at the current head and stores it at once, so that a
      // restart, however soon, resumes from there and misses no event.
      let cursor = this.#state.getCursor('chain');
      if (!cursor) {
        this.#state.setCursor('chain', Number(await this.#chain.public.getBlockNumber()));
        cursor = this.#state.getCursor('chain')!;
      }
      // New heads (FERRY_WS_RPC) wake the watcher and the reconcile as a block arrives.
      this.#heads = c.wsRpc ? subscribeNewHeads(c.wsRpc, { log: this.#log.child('heads') }) : undefined;
      this.#cursor = new ThrottledCursor((next) => this.#state?.setCursor('chain', Number(next)));
      this.#driver = new ChainDriver({
        chain: this.#chain,
        fromBlock: BigInt(cursor.block),
        confirmations: c.confirmations,
        pollIntervalMs: c.pollIntervalMs,
        heads: this.#heads,
        // Releases wait mostly on the chain and the executor, not on this process's CPU.
        maxJobs: 16,
        onCursor: (next) => this.#cursor.set(next),
        onEvent: (e) => this.#onEvent(e),
        reconcile: () => this.#reconcile(),
        reconcileEveryMs: Math.max(c.pollIntervalMs, 200),
        onError: (what, e) =>
          this.#log.warn(`${what} failed`, { code: e.code, message: e.message, hints: e.hints.join('; ') }),
        onWatchError: (e) => this.#log.error('event watcher stopped', { code: e.code, error: e }),
      });
      // Before any task event: the endpoint on chain of every asset held names this agent.
      await this.#refreshEndpoints();
      signal?.throwIfAborted();
      this.#driver.start();
      this.#started = {
        ready: true,
        role: 'agent',
        profile: c.profile,
        address: this.address,
        endpoint: this.#endpoint,
        keyId: toHex(this.#opts.keys.signer.keyId),
        ageRecipient: this.#opts.keys.ageIdentity.recipient.toString(),
        chainId: this.#chainId,
      };
      return this.#started;
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /**
   * Listens on the configured port; with port 0, first on the port remembered from the last
   * start (so the endpoint on chain stays valid), else on a fresh one, which is remembered.
   */
  async #listen(): Promise<HttpServer> {
    const c = this.#opts.config;
    const state = this.#state!;
    const make = (port: number) =>
      createAgentServer({
        state,
        keyId: toHex(this.#opts.keys.signer.keyId),
        host: c.host,
        port,
        log: this.#log.child('http'),
        authorize: ({ caller, asset }) => this.#authorize(caller.keyIdHex, asset),
      });
    return startRemembering({
      port: c.port,
      make,
      remembered: () => state.getListenPort(c.host),
      remember: (port) => state.setListenPort(c.host, port),
      log: this.#log,
    });
  }

  /**
   * Points the on-chain endpoint of every asset this agent holds (registered locally, not revoked
   * and owned by its account on chain) at `#endpoint`, one transaction per asset that differs.
   * Never throws: a failure (the chain unavailable, a reverted update) is logged with its code
   * and the whole step is retried by the reconciler, backing off from 1 s to 30 s.
   */
  async #refreshEndpoints(): Promise<void> {
    const chain = this.#chain;
    const state = this.#state;
    if (!chain || !state) return;
    const endpoint = this.#endpoint;
    const me = this.address.toLowerCase();
    // In parallel: the account's sends are serialized by the chain client, receipts are not.
    const held = state.listAssets().filter((a) => a.status === 'registered' && a.chainId !== null);
    const errors = await Promise.all(
      held.map(async (a): Promise<FerryError | null> => {
        const id = BigInt(a.chainId!);
        try {
          const info = a.kind === 'app' ? await getApp(chain, id) : await getDataset(chain, id);
          if (!info || info.revoked || info.endpoint === endpoint) return null;
          if (info.owner.toLowerCase() !== me) {
            this.#log.warn('asset on chain is owned by another account; its endpoint is left as is', {
              kind: a.kind,
              id: a.chainId,
            });
            return null;
          }
          const tx =
            a.kind === 'app'
              ? await updateApp(chain, { appId: id, ciphertextHash: info.ciphertextHash, endpoint })
              : await updateDataset(chain, { datasetId: id, ciphertextHash: info.ciphertextHash, endpoint });
          this.#log.info('asset endpoint updated', {
            kind: a.kind,
            id: a.chainId,
            from: info.endpoint,
            to: endpoint,
            tx: tx.hash,
          });
          return null;
        } catch (e) {
          const err = toFerryError(e);
          this.#log.warn('asset endpoint update failed', {
            kind: a.kind,
            id: a.chainId,
            code: err.code,
            message: err.message,
            hints: err.hints.join('; '),
          });
          return err;
        }
      }),
    );
    if (this.#stopping.signal.aborted) return;
    const failures = errors.filter((e): e is FerryError => e !== null);
    const failed = failures.length;
    const firstError = failures[0] ?? null;
    if (failed === 0) {
      if (this.#endpointRetry) this.#log.info('asset endpoints are current', { endpoint });
      this.#endpointRetry = null;
      return;
    }
    const delayMs = this.#endpointRetry ? Math.min(this.#endpointRetry.delayMs * 2, 30_000) : 1_000;
    this.#endpointRetry = { at: Date.now() + delayMs, delayMs };
    this.#log.warn('asset endpoints not all current; will retry', {
      failed,
      code: firstError?.code,
      retryInMs: delayMs,
    });
  }

  /** Stops the driver (watcher, reconciler, jobs: running ones end first), the server, the database; idempotent. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#driver?.stop();
    this.#driver = null;
    this.#heads?.close();
    this.#heads = undefined;
    this.#closeClients?.();
    this.#closeClients = undefined;
    this.#cursor.flush();
    await this.#server?.stop();
    this.#server = null;
    this.#state?.close();
    this.#state = null;
    this.#started = null;
  }

  #onEvent(e: FerryEvent): void {
    if (e.eventName === 'TaskAttested') {
      this.#enqueueRelease(e.args.taskId as bigint, Number(e.args.attempt));
    }
  }

  /** Enqueues the release of an attested attempt in its lane (once while pending). */
  #enqueueRelease(taskId: bigint, attempt: number): void {
    const k = `${taskId}/${attempt}`;
    if (!this.#driver || this.#stopping.signal.aborted) return;
    this.#driver.lanes.enqueue(
      k,
      `release ${k}`,
      async (ctx) => {
        // Recorded before any network I/O, so the event watcher never waits on the executor's
        // server; a slow or silent one holds only this job, retried by the reconciler.
        const state = this.#state!;
        state.addToRelease(taskId, attempt);
        ctx.recorded();
        try {
          await this.#release(taskId, attempt);
          state.removeToRelease(taskId, attempt);
        } catch (e) {
          // Peers or the chain may come back within the run window; policy refusals are final.
          if (!isRetryable(toFerryError(e).code) && toFerryError(e).code !== 'TIMEOUT') {
            state.removeToRelease(taskId, attempt);
          }
          throw e;
        }
      },
      { key: `release ${k}` },
    );
  }

  /**
   * Whether an executor key may read an asset's ciphertext: it received that asset's key for an
   * attempt that is still `attested` or `running`. Attempts found closed are remembered (an
   * attempt never reopens), so a request reads the chain only for the open ones, in parallel.
   */
  async #authorize(callerKeyId: string, asset: Asset): Promise<boolean> {
    const chain = this.#chain;
    const state = this.#state;
    if (!chain || !state) return false;
    const rows = state
      .listReleases()
      .filter(
        (r) =>
          r.asset === asset.id &&
          r.executor === callerKeyId &&
          r.status !== 'failed' &&
          r.status !== 'intent' &&
          !this.#closed.has(`${r.task}/${r.attempt}`),
      );
    const open = await Promise.all(
      rows.map(async (r) => {
        const t = await getTask(chain, BigInt(r.task));
        const ok =
          t !== null && t.attempt === r.attempt && (t.status === 'attested' || t.status === 'running');
        if (!ok) this.#closed.add(`${r.task}/${r.attempt}`);
        return ok;
      }),
    );
    return open.some(Boolean);
  }

  /** The assets of a task that this agent owns: [assetIndex, local asset, kind]. */
  #mine(task: TaskInfo): { index: number; asset: Asset; chainId: bigint }[] {
    const state = this.#state!;
    const out: { index: number; asset: Asset; chainId: bigint }[] = [];
    const ids = [task.appId, ...task.datasetIds];
    ids.forEach((id, index) => {
      const a = state.getAssetByChainId(index === 0 ? 'app' : 'dataset', id);
      if (a && a.kind === (index === 0 ? 'app' : 'dataset') && a.status === 'registered') {
        out.push({ index, asset: a, chainId: id });
      }
    });
    return out;
  }

  async #release(taskId: bigint, attempt: number, ctx?: JobContext): Promise<void> {
    const chain = this.#chain!;
    const state = this.#state!;
    const task = await getTask(chain, taskId);
    if (!task || task.attempt !== attempt || task.status !== 'attested' || !task.executor) return;
    const mine = this.#mine(task).filter((m) => !state.getRelease(taskId, attempt, m.asset.id));
    if (mine.length === 0) return;
    // Consensus: the claimant's proof and the votes, recomputed here.
    const { claims, votes } = await attemptEvents(chain, task, attempt);
    await checkClaim(chain, this.#chainId, task, claims);
    await checkVotes(chain, this.#chainId, task, votes);
    const executor = await getNode(chain, task.executor as Hex);
    if (!executor) throw new FerryError('POLICY_DENIED', 'the executor is not registered');
    const facts = await attemptFacts(chain, { chainId: this.#chainId, task });
    // This owner's own rules for each of its assets in the task (the app owner's agent has no
    // dataset rules; its policy is the app's appraisal policy, published with the app).
    const app = await getApp(chain, task.appId);
    if (!app || app.revoked) throw new FerryError('POLICY_DENIED', 'the app is missing or revoked');
    for (const m of mine) {
      if (m.index === 0) continue;
      const ds = await getDataset(chain, m.chainId);
      if (!ds || ds.revoked)
        throw new FerryError('POLICY_DENIED', 'the dataset is revoked', { hints: [`dataset ${m.chainId}`] });
      const allowed = await isAllowed(chain, {
        datasetId: m.chainId,
        measurement: app.measurement,
        requester: task.requester,
      });
      if (!allowed.app) throw new FerryError('POLICY_DENIED', 'the app is not allowed on this dataset');
      if (allowed.requester === false)
        throw new FerryError('POLICY_DENIED', 'the requester is not allowed on this dataset');
      if (ds.policy.allowedRegions.length > 0 && !ds.policy.allowedRegions.includes(executor.region)) {
        throw new FerryError('POLICY_DENIED', 'the executor region is not allowed', {
          hints: [`region: ${executor.region}`],
        });
      }
      // The committee must be at least as demanding as this dataset asks (a co-dataset cannot
      // dilute it): threshold/tau of the task >= threshold/tau of the dataset.
      if (task.threshold * ds.policy.tau < ds.policy.threshold * task.tau) {
        throw new FerryError(
          'POLICY_DENIED',
          "the task's committee threshold is weaker than this dataset's",
          {
            hints: [
              `task: ${task.threshold} of ${task.tau} seats`,
              `dataset ${m.chainId}: ${ds.policy.threshold} of ${ds.policy.tau} seats`,
            ],
          },
        );
      }
    }
    // The appraisal policy of each of this owner's assets (built in, or the document published
    // with the asset on chain, §9); a sim-allowing policy is refused by an agent without allowSim.
    // A document not found may be in a block this RPC endpoint has not seen yet: that refusal is
    // retried (see #enqueueRelease).
    const subjects = mine.map((m) => ({
      assetKind: m.index === 0 ? ('app' as const) : ('dataset' as const),
      assetId: m.chainId,
    }));
    const found = await attemptPolicies(
      chain,
      task,
      (s: PolicySubject, h: Hex) => this.#policies!.resolve(chain, { kind: s.assetKind, id: s.assetId }, h),
      subjects,
    );
    if ('unapplied' in found) {
      throw new FerryError(
        'POLICY_DENIED',
        `the appraisal policy of ${found.unapplied.assetKind} ${found.unapplied.assetId} allows sim evidence; this agent refuses it`,
        { hints: ['start the agent with sim allowed only on a development network'] },
      );
    }
    // Re-appraise the evidence ourselves, under every policy of ours, against the commitments
    // recomputed from the chain and the TEE kinds the task and the executor allow.
    const peer = createPeerClient({
      baseUrl: executor.endpoint,
      endpointPolicy: { localNetwork: this.#opts.config.localNetwork },
      signer: this.#opts.keys.signer,
      timeoutMs: 10_000,
    });
    this.#evidenceFrom.set(`${taskId}/${attempt}`, { url: peer.baseUrl, at: Date.now() });
    const { evidenceBytes, x25519Pub, ed25519Pub } = await fetchServedEvidence(
      peer,
      taskId,
      attempt,
      this.#stopping.signal,
    );
    const appraisal = await appraiseAttempt({
      commitments: facts.commitments,
      committedEvidenceHash: hexBytes(task.evidenceHash),
      evidenceBytes,
      x25519Pub,
      ed25519Pub,
      taskKinds: facts.taskKinds,
      executorKinds: facts.executorKinds,
      policies: found.policies,
      registry: this.#registry!,
      now: new Date(),
    });
    if (!appraisal.accepted) {
      throw new FerryError('POLICY_DENIED', 'the evidence is not accepted on re-appraisal', {
        hints: refusalsOf(appraisal).slice(0, 3),
      });
    }
    const commitments = commitmentsHash(facts.commitments);
    const executorKey = executor.signingKey.slice(2).toLowerCase();
    for (const m of mine) {
      const fileKey = await this.#store!.fileKey(m.asset.id, [this.#opts.keys.ageIdentity]);
      let sealed: { enc: Uint8Array; ciphertext: Uint8Array };
      try {
        const info = keyReleaseInfo({
          commitments,
          evidenceHash: hexBytes(task.evidenceHash),
          assetId: m.chainId,
          assetKind: m.index === 0 ? 'app' : 'dataset',
        });
        sealed = await hpkeSeal(x25519Pub, fileKey, info);
      } finally {
        fileKey.fill(0);
      }
      const bytes = new Uint8Array(64);
      bytes.set(sealed.enc, 0);
      bytes.set(sealed.ciphertext, 32);
      const releaseHash = new Uint8Array(createHash('sha256').update(bytes).digest());
      state.beginRelease({
        task: taskId,
        attempt,
        asset: m.asset.id,
        executor: executorKey,
        sealed: bytes,
        releaseHash,
      });
    }
    ctx?.recorded();
    for (const m of mine) {
      const r = state.getRelease(taskId, attempt, m.asset.id);
      if (r) await this.#advance(r);
    }
  }

  /**
   * Enqueues what is left to do (one job per attempt lane, never twice while pending): retries
   * of releases that failed for a retryable reason, and releases to deliver or record.
   */
  async #reconcile(): Promise<void> {
    const state = this.#state;
    const driver = this.#driver;
    if (!state || !driver) return;
    if (this.#endpointRetry && Date.now() >= this.#endpointRetry.at) {
      driver.lanes.enqueue('endpoints', 'refresh asset endpoints', () => this.#refreshEndpoints(), {
        key: 'endpoints',
      });
    }
    const toRelease = state.listToRelease();
    for (const v of toRelease) {
      if (driver.lanes.has(`release ${v.task}/${v.attempt}`)) continue;
      this.#enqueueRelease(BigInt(v.task), v.attempt);
    }
    const pending = new Set(state.listReleases('intent').map((r) => `${r.task}/${r.attempt}`));
    for (const v of toRelease) pending.add(`${v.task}/${v.attempt}`);
    for (const [k, v] of [...this.#evidenceFrom]) {
      // Kept while a delivery may follow (and a while after the fetch, for a job in flight).
      if (!pending.has(k) && Date.now() - v.at > 10 * 60_000) this.#evidenceFrom.delete(k);
    }
    for (const r of [...state.listReleases('intent'), ...state.listReleases('delivered')]) {
      const k = `${r.task}/${r.attempt}`;
      if (driver.lanes.has(`release ${k}`)) continue;
      driver.lanes.enqueue(
        k,
        `advance ${k} ${r.asset}`,
        async () => {
          const now = state.getRelease(r.task, r.attempt, r.asset);
          if (now && (now.status === 'intent' || now.status === 'delivered')) await this.#advance(now);
        },
        { key: `advance ${k} ${r.asset}` },
      );
    }
  }

  /** Drives one release forward: deliver the stored bytes (signed by the owner), then record on chain. */
  async #advance(r: Release): Promise<void> {
    const chain = this.#chain;
    const state = this.#state;
    if (!chain || !state) return;
    const task = await getTask(chain, BigInt(r.task));
    if (!task || task.attempt !== r.attempt || (task.status !== 'attested' && task.status !== 'running')) {
      state.markReleaseOutcome(r.task, r.attempt, r.asset, 'failed', `task is ${task?.status ?? 'missing'}`);
      return;
    }
    const asset = state.getAsset(r.asset);
    if (!asset?.chainId) return;
    const ids = [task.appId, ...task.datasetIds].map(String);
    const index = ids.findIndex((id, i) => id === asset.chainId && (i === 0) === (asset.kind === 'app'));
    if (index < 0) return;
    if (r.status === 'intent') {
      // The endpoint the evidence came from; only after a restart (the pin is not kept on disk)
      // the registry's, under the same endpoint policy: the key is sealed to the appraised
      // enclave's key, so a moved endpoint can lose a delivery but never read it.
      let baseUrl = this.#evidenceFrom.get(`${r.task}/${r.attempt}`)?.url;
      if (baseUrl === undefined) {
        const executor = await getNode(chain, task.executor as Hex);
        if (!executor) return;
        baseUrl = executor.endpoint;
      }
      const peer = createPeerClient({
        baseUrl,
        endpointPolicy: { localNetwork: this.#opts.config.localNetwork },
        signer: this.#opts.keys.signer,
        timeoutMs: 10_000,
      });
      await peer.json('POST', attemptPath(r.task, r.attempt, 'keys'), KeysAnswer, {
        signed: true,
        signal: this.#stopping.signal,
        body: {
          assetId: asset.chainId,
          assetKind: asset.kind,
          enc: toHex(r.sealed.subarray(0, 32)),
          ciphertext: toHex(r.sealed.subarray(32)),
          signature: await signKeyRelease(chain.wallet, {
            chainId: BigInt(this.#chainId),
            tasks: chain.contracts.Tasks,
            taskId: BigInt(r.task),
            attempt: r.attempt,
            assetKind: asset.kind,
            assetId: BigInt(asset.chainId),
            releaseHash: r.releaseHash,
          }),
        },
      });
      state.markReleaseDelivered(r.task, r.attempt, r.asset);
    }
    if ((task.releasedMask & (1 << index)) !== 0) {
      // Recorded before a restart (the transaction hash was lost): the chain has it; the row
      // stays `delivered` and ends with the task.
      return;
    }
    const tx = await recordKeyRelease(chain, {
      taskId: BigInt(r.task),
      attempt: r.attempt,
      assetIndex: index,
      releaseHash: r.releaseHash,
    });
    state.markReleaseRecorded(r.task, r.attempt, r.asset, tx.hash);
    state.markReleaseOutcome(r.task, r.attempt, r.asset, 'confirmed');
    this.#log.info('key released', { task: r.task, attempt: r.attempt, asset: asset.chainId });
  }
}
