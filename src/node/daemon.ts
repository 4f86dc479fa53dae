/**
 * The node daemon (`ferry node start`): an assembly of components with narrow dependencies and
 * one explicit lifecycle, started in order by `start` and taken down in reverse by `stop` (also
 * when `start` fails half-way):
 *
 *   state (SQLite) -> HTTP server -> relay (executors) -> chain clients + registration
 *     -> components (task cache, duties, executor, verifier) -> chain driver (events, reconcile)
 *
 * The components (each built from only what it uses):
 * - duties.ts: the job lanes as components see them, the task-row cache, the registration, and
 *   what every node does: heartbeat, leaving jail, stage timeouts, seeds;
 * - executor.ts: claims, evidence and its enclave, runs, receipts, abandonments (§11.3, §13.8);
 * - verifier-duty.ts: judging an attempt's evidence and voting (§9.5, §13.7; the judgement
 *   itself is verifier.ts);
 * - challenger.ts: proving on chain the lies that hurt this executor (§11.5).
 * Their decisions are pure functions in decisions.ts. The configured roles decide which chain
 * events start new work (decisions.ts `eventSteps`); what the state records (intents, evidence,
 * receipts, abandonments) is resumed by the reconcile whatever the roles are now.
 *
 * Jobs run in keyed lanes (src/daemon/driver.ts): the jobs of one task attempt one after the
 * other, different attempts concurrently, enclave runs in a bounded pool (`enclaveSlots`), so
 * claims and votes never wait behind a run. Time-driven steps (seeding, timeouts, evidence after
 * the claim window, receipts, retries) are found by the components' reconcile, one tick at a
 * time, reading the chain only for tasks whose cached deadline has passed or that an event
 * changed, and enqueued as jobs; they also resume after a restart. Enclaves live in this
 * process: after a restart an attempt whose enclave is gone is abandoned once attested (§13.8).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Hex } from 'viem';
import { ChainDriver, type JobLanes, ThrottledCursor } from '../daemon/index.ts';
import { EnclavePool } from '../enclave/index.ts';
import { connect, type FerryEvent, subscribeNewHeads, writer } from '../chain/index.ts';
import { vrfKeygen, vrfPublicKey } from '../crypto/vrf/index.ts';
import { createLogger, FerryError, fromHex, type Logger, toHex } from '../kernel/index.ts';
import { type Ed25519Signer, startRemembering } from '../net/index.ts';
import { startNodeVm } from '../image/index.ts';
import { PolicyBook, trustRegistry } from '../protocol/index.ts';
import { checkAllowSim } from '../protocol/index.ts';
import type { NodeConfig } from './config.ts';
import { Challenger } from './challenger.ts';
import { eventSteps } from './decisions.ts';
import { Duties, ensureRegistered, type Jobs, TaskCache } from './duties.ts';
import { Executor, measureRuntime, verifyDelivery } from './executor.ts';
import { CiphertextRelay } from './relay.ts';
import { createNodeServer, type KeyDeliveryBody } from './server.ts';
import { NodeState } from './state.ts';
import { VerifierDuty } from './verifier-duty.ts';

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

/** The job lanes of a driver as the components see them: nothing is enqueued once stopping. */
function jobsOn(lanes: JobLanes, signal: AbortSignal, log: Logger): Jobs {
  return {
    enqueue(lane, what, fn, opts = {}) {
      if (signal.aborted) return;
      lanes.enqueue(
        lane,
        what,
        async (ctx) => {
          log.debug('job', { what });
          await fn(ctx);
        },
        opts,
      );
    },
    has: (key) => lanes.has(key),
    signal,
  };
}

export class NodeDaemon {
  readonly #opts: NodeDaemonOptions;
  readonly #log: Logger;
  /** What the current start brought up, to be taken down in reverse. */
  #undo: (() => unknown)[] = [];
  /** Aborted when the current start is stopped: jobs and long calls see it. */
  #stopping = new AbortController();
  #started: NodeReady | null = null;
  #address = '';

  constructor(opts: NodeDaemonOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? createLogger({ component: 'node' });
  }

  /** The node's address (empty before the first start has connected to the chain). */
  get address(): string {
    return this.#address;
  }

  /** Starts every component; idempotent; on failure stops what was started and rethrows. */
  async start(signal?: AbortSignal): Promise<NodeReady> {
    if (this.#started) return this.#started;
    const c = this.#opts.config;
    const { keys, home } = this.#opts;
    const log = this.#log;
    const stopping = new AbortController();
    this.#stopping = stopping;
    this.#undo = [];
    const undo = this.#undo;
    try {
      const state = NodeState.open(join(home, 'state.db'));
      undo.push(() => state.close());
      const vrf = loadOrCreateVrfKey(home);
      const policies = new PolicyBook({ allowSim: c.allowSim });
      const registry = trustRegistry(c);
      if (c.tee === 'tpm2' && c.roles.includes('executor')) {
        await measureRuntime({ tpm2Tcti: c.tpm2Tcti, signal: stopping.signal, log });
      }
      // --tee vm: the node's enclave VM, booted once here and stopped with the node (§17.5).
      let vm: Awaited<ReturnType<typeof startNodeVm>> | undefined;
      if (c.tee === 'vm' && c.roles.includes('executor')) {
        const started = await startNodeVm(c, { log: log.child('vm'), signal: stopping.signal });
        undo.push(() => started.stop());
        vm = started;
      }
      // Bound once the chain is connected and the components exist: the server answers before.
      let delivery: ((task: string, attempt: number, body: KeyDeliveryBody) => Promise<string>) | null = null;
      let executor: Executor | null = null;
      // With port 0, the port of the last start first: evidence and result locations in
      // events name it, so verifiers, agents and requesters still reach this node after a restart.
      const server = await startRemembering({
        port: c.port,
        make: (port) =>
          createNodeServer({
            state,
            keyId: toHex(keys.signer.keyId),
            host: c.host,
            port,
            log: log.child('http'),
            verifyDelivery: async (req) => {
              if (!delivery) throw new FerryError('PEER_UNAVAILABLE', 'the node is starting');
              return delivery(req.task, req.attempt, req.body);
            },
            onKeys: (d) => executor?.keysArrived(BigInt(d.task), d.attempt),
          }),
        remembered: () => state.getListenPort(c.host),
        remember: (port) => state.setListenPort(c.host, port),
        log,
      });
      undo.push(() => server.stop());
      let relay: CiphertextRelay | undefined;
      if (c.roles.includes('executor')) {
        const r = new CiphertextRelay({
          signer: keys.signer,
          endpointPolicy: { localNetwork: c.localNetwork },
          log: log.child('relay'),
        });
        undo.push(() => r.stop());
        await r.start();
        relay = r;
      }
      let enclavePool: EnclavePool | undefined;
      if (c.roles.includes('executor') && c.enclavePool > 0) {
        const pool = new EnclavePool({ size: c.enclavePool });
        undo.push(() => pool.close());
        enclavePool = pool;
      }
      signal?.throwIfAborted();
      // With FERRY_WS_RPC, reads go over the WebSocket while it is up (src/chain/ws-rpc.ts).
      const clients = await connect({
        rpcUrl: c.rpc,
        privateKey: keys.evmPrivateKey,
        pollingInterval: 100,
        wsRpcUrl: c.wsRpc,
        log: log.child('ws-rpc'),
      });
      undo.push(() => clients.close());
      const chain = writer(clients, c.contracts);
      const chainId = clients.chain.id;
      const address = chain.wallet.account.address;
      this.#address = address;
      checkAllowSim({ allowSim: c.allowSim, chainId, rpcUrl: c.rpc, log });
      delivery = (task, attempt, body) =>
        verifyDelivery(
          { chain, chainId, tasksContract: c.contracts.Tasks as Hex, address },
          task,
          attempt,
          body,
        );
      await ensureRegistered({
        chain,
        chainId,
        state,
        config: c,
        address,
        endpoint: server.url,
        vrfPublicKey: vrf.pk,
        signingKey: keys.signer.keyId,
        log,
      });
      signal?.throwIfAborted();
      // The first start fixes the cursor at the current head and stores it at once, so that a
      // restart, however soon, resumes from there and misses no event.
      let cursor = state.getCursor('chain');
      if (!cursor) {
        state.setCursor('chain', Number(await chain.public.getBlockNumber()));
        cursor = state.getCursor('chain')!;
      }
      // New heads (FERRY_WS_RPC) wake the watcher and the reconcile as a block arrives.
      const heads = c.wsRpc ? subscribeNewHeads(c.wsRpc, { log: log.child('heads') }) : undefined;
      if (heads) undo.push(() => heads.close());
      const cursorWriter = new ThrottledCursor((next) => state.setCursor('chain', Number(next)));
      undo.push(() => cursorWriter.flush());
      const driver = new ChainDriver({
        chain,
        fromBlock: BigInt(cursor.block),
        confirmations: c.confirmations,
        pollIntervalMs: c.pollIntervalMs,
        heads,
        // Long jobs (enclave creation for evidence, enclave runs) each have a bounded pool, so
        // the other jobs (claims, votes, receipts, seeds, timeouts) always have permits left.
        maxJobs: Math.max(c.maxJobs, 2 * c.enclaveSlots + 2),
        pools: { enclave: c.enclaveSlots, evidence: c.enclaveSlots },
        onCursor: (next) => cursorWriter.set(next),
        onEvent: (e) => dispatch(e),
        reconcile: () => reconcile(),
        reconcileEveryMs: Math.max(c.pollIntervalMs, 200),
        onError: (what, e) => log.warn(`${what} failed`, { code: e.code, message: e.message }),
        onWatchError: (e) => log.error('event watcher stopped', { code: e.code, error: e }),
      });
      const jobs = jobsOn(driver.lanes, stopping.signal, log);
      const tasks = new TaskCache({ chain });
      const duties = new Duties({
        chain,
        address,
        tasks,
        jobs,
        log,
        // Executors seed only what they could claim (duties.ts): set once the executor exists.
        capacity: c.roles.includes('executor') ? (pending) => executor?.capacity(pending) ?? 0 : undefined,
      });
      executor = new Executor({
        chain,
        chainId,
        address,
        state,
        tasks,
        jobs,
        vrfSecretKey: vrf.sk,
        endpoint: server.url,
        relay,
        enclaves: vm,
        home,
        enclavePool,
        config: c,
        log,
      });
      const exec = executor;
      undo.push(() => exec.stop());
      const verifier = new VerifierDuty({
        chain,
        chainId,
        address,
        state,
        tasks,
        jobs,
        vrfSecretKey: vrf.sk,
        keys: { keyId: keys.signer.keyId, signingSecretKey: keys.signingSecretKey },
        policies,
        registry,
        localNetwork: c.localNetwork,
        log,
      });
      const challenger = new Challenger({ chain, chainId, address, jobs, send: c.challengeLies, log });
      const dispatch = (e: FerryEvent): void => {
        // Who may be designated for seeds and timeouts (duties.ts) follows the registry.
        if (e.contract === 'NodeRegistry') duties.nodesChanged();
        for (const step of eventSteps(e, c.roles, address)) {
          if (step.kind === 'forget') tasks.forget(step.taskId);
          else if (step.kind === 'watch') duties.watch(step.taskId);
          else if (step.kind === 'seed') duties.seed(step.taskId);
          else if (step.kind === 'claim') exec.claim(step.taskId, step.attempt);
          else if (step.kind === 'challenge-votes') challenger.votes(step.taskId, step.attempt);
          else if (step.kind === 'check-claim') {
            challenger.claim(step.taskId, step.attempt, step.claimant);
            exec.displaced(step.taskId, step.attempt, step.claimant);
          } else if (step.kind === 'receipt') exec.running(step.taskId, step.attempt);
          else verifier.judge(step.taskId, step.attempt, step.executor, step.location);
        }
      };
      // The chain's time for the reconcile: the latest block's, read at most once a second (a
      // tick every 200 ms read it each time). Behind the chain by under a second at worst:
      // time-driven steps come at most that much later, never early.
      let chainTime = { ts: 0, readAt: Number.NEGATIVE_INFINITY };
      const reconcile = async (): Promise<void> => {
        if (Date.now() - chainTime.readAt >= 1000) {
          const readAt = Date.now();
          chainTime = { ts: Number((await chain.public.getBlock()).timestamp), readAt };
        }
        const now = chainTime.ts;
        for (const part of [verifier, duties, exec]) await part.reconcile(now);
      };
      undo.push(() => driver.stop());
      driver.start();
      this.#started = {
        ready: true,
        role: 'node',
        address,
        endpoint: server.url,
        keyId: toHex(keys.signer.keyId),
        vrfPublicKey: toHex(vrf.pk),
        roles: [...c.roles],
        region: c.region,
        tee: c.tee,
        chainId,
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
    const undo = this.#undo;
    this.#undo = [];
    while (undo.length > 0) await undo.pop()!();
    this.#started = null;
  }
}
