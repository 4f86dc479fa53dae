/**
 * What every node shares, whatever its roles: the job lanes its components enqueue on, the cache
 * of task rows the reconcilers read, the registration at start, and the duties anyone may do and
 * every node does (§11.1, §12): the heartbeat, leaving jail once it has ended, timing out stages
 * whose deadline passed, and seeding attempts (executors seed, see decisions.ts `eventSteps`).
 */
import type { Hex } from 'viem';
import {
  type ChainWriter,
  getNode,
  getTask,
  heartbeat,
  listNodes,
  registerNode,
  seedTask,
  setNodeEndpoint,
  type TaskInfo,
  type TeeKind,
  timeoutTask,
  unjailNode,
} from '../chain/index.ts';
import { FerryError, type Logger, toFerryError, toHex } from '../kernel/index.ts';
import type { NodeConfig } from './config.ts';
import {
  awaitsSeed,
  type CachedTask,
  cacheEntry,
  cacheFresh,
  chainTeeKind,
  dueFloorAfterChange,
  dutyDue,
  dutyRank,
  FINAL,
  heartbeatDue,
  jailStep,
  knownHeartbeat,
  liveStep,
  unjailFailure,
} from './decisions.ts';
import type { NodeState } from './state.ts';

/** What a job is given (src/daemon/driver.ts `JobContext`). */
export type JobContext = {
  /** Aborted when the node stops. */
  signal: AbortSignal;
  /** Marks the point after which the job's event may be forgotten (its intent is stored). */
  recorded(): void;
};

/** The node's keyed job lanes (src/daemon/driver.ts), as its components see them. */
export type Jobs = {
  /**
   * Enqueues a job in a lane (a task attempt's, or another); `key` deduplicates (a job with the
   * same key waiting or running is not enqueued again); nothing once the node is stopping.
   */
  enqueue(
    lane: string,
    what: string,
    fn: (ctx: JobContext) => Promise<void>,
    opts?: { pool?: 'enclave' | 'evidence'; key?: string },
  ): void;
  /** Whether a job with this key waits or runs. */
  has(key: string): boolean;
  /** Aborted when the node stops. */
  readonly signal: AbortSignal;
};

/** A node component that takes part in the reconcile tick. */
export interface Reconciler {
  /** Finds the steps due at chain time `now` and enqueues them; reads the chain only as needed. */
  reconcile(now: number): Promise<void>;
}

/**
 * Task rows for the reconcilers: the cached row unless an event dropped it or its stage is due,
 * so a tick reads the chain only for tasks that changed or are due. Jobs read the chain
 * themselves before they act.
 */
export class TaskCache {
  readonly #chain: ChainWriter;
  readonly #rows = new Map<bigint, CachedTask>();
  /**
   * Rows an event dropped: the chain time before which no stage of the task can be due (a lower
   * bound, `decisions.ts` `dueFloorAfterChange`), so the timeout check need not read them at
   * every tick after every event.
   */
  readonly #floors = new Map<bigint, number>();
  /** The chain time of the last reconcile tick (events arrive after it). */
  #now = 0;

  constructor(c: { chain: ChainWriter }) {
    this.#chain = c.chain;
  }

  /** The chain time of the current reconcile tick. */
  tick(now: number): void {
    this.#now = now;
  }

  /** The row to use at chain time `now`: cached (decisions.ts `cacheFresh`) or read. */
  async get(taskId: bigint, now: number): Promise<TaskInfo | null> {
    const c = this.#rows.get(taskId);
    if (cacheFresh(c, now)) return c.row;
    return this.read(taskId);
  }

  /**
   * Whether no stage of the task can be due at `now` although an event dropped its row: then a
   * timeout check may skip it without reading the chain. False when the row is cached (use
   * `get`) or unknown.
   */
  notDueYet(taskId: bigint, now: number): boolean {
    const floor = this.#floors.get(taskId);
    return !this.#rows.has(taskId) && floor !== undefined && now <= floor;
  }

  /** Reads the row from the chain and caches it. */
  async read(taskId: bigint): Promise<TaskInfo | null> {
    const row = await getTask(this.#chain, taskId);
    this.#rows.set(taskId, cacheEntry(row));
    this.#floors.delete(taskId);
    return row;
  }

  /** Drops the cached row (an event or a job changed the task). */
  forget(taskId: bigint): void {
    const c = this.#rows.get(taskId);
    this.#rows.delete(taskId);
    const floor = dueFloorAfterChange(c, this.#floors.get(taskId), this.#now);
    if (floor === undefined) this.#floors.delete(taskId);
    else this.#floors.set(taskId, floor);
  }
}

export type DutiesComponents = {
  chain: ChainWriter;
  /** This node's address. */
  address: string;
  tasks: TaskCache;
  jobs: Jobs;
  log: Logger;
  /**
   * How many more attempts this node could take on now, counting the tasks it is seeding or
   * seeded whose claim window is open (`pending`) as taken (an executor: executor.ts
   * `capacity`). Absent: no limit. It seeds no more tasks than that.
   */
  capacity?: (pending: Iterable<bigint>) => number;
};

/**
 * Heartbeat, unjail, stage timeouts and seeds (anyone may; every node does). Seeds and timeouts
 * are done once per task, not by every node: one designated node does each at once and the
 * others only if it has not been done after their fallback delay (decisions.ts `dutyRank`), so a
 * designated node that is absent or hostile delays a task by seconds and never stalls it.
 */
export class Duties implements Reconciler {
  readonly #c: DutiesComponents;
  /** Tasks seen created and not final: their stage deadlines are enforced with `timeout`. */
  readonly #live = new Set<bigint>();
  /** Tasks waiting for their seed: local ms at which this node first saw the seed possible. */
  readonly #toSeed = new Map<bigint, number>();
  /** Seeds this node sent or is sending: local ms until which their claim window may be open. */
  readonly #seeding = new Map<bigint, number>();
  /** Stages seen due (`task/attempt/status`): local ms at which this node first saw each due. */
  readonly #timeoutSince = new Map<string, number>();
  /**
   * The registry's active nodes (address -> whether an executor), read at the first tick and
   * again after a registry event; null until read (then this node acts at once, as rank 0).
   */
  #nodes: Map<string, boolean> | null = null;
  #nodesStale = true;
  /** Block time of this node's last heartbeat on chain (0: unknown, checked at the next tick). */
  #lastHeartbeat = 0;
  /** Chain time from which to look again whether the node is jailed. */
  #jailCheckAfter = 0;

  constructor(c: DutiesComponents) {
    this.#c = c;
  }

  /** Watches a task's stage deadlines (TaskCreated). */
  watch(taskId: bigint): void {
    this.#live.add(taskId);
  }

  /** Seeds the task's next attempt once possible (TaskCreated, AttemptEnded). */
  seed(taskId: bigint): void {
    if (!this.#toSeed.has(taskId)) this.#toSeed.set(taskId, Date.now());
  }

  /** The registry changed (a node registered, updated, jailed...): its active nodes are read again. */
  nodesChanged(): void {
    this.#nodesStale = true;
  }

  /** This node's rank for a duty of the task attempt among the active nodes (executors for seeds). */
  #rank(duty: 'seed' | 'timeout', t: TaskInfo): number {
    if (!this.#nodes) return 0;
    const nodes = [...this.#nodes].filter(([, executor]) => duty !== 'seed' || executor).map(([a]) => a);
    return dutyRank(duty, t.taskId, t.attempt, this.#c.address, nodes);
  }

  async reconcile(now: number): Promise<void> {
    const { jobs, tasks } = this.#c;
    jobs.enqueue('node', 'heartbeat', () => this.#heartbeat(now), { key: 'heartbeat' });
    if (this.#nodesStale) {
      this.#nodesStale = false;
      jobs.enqueue('node', 'active nodes', () => this.#readNodes(), { key: 'active nodes' });
    }
    const ms = Date.now();
    const due = new Set<string>();
    tasks.tick(now);
    for (const taskId of [...this.#live]) {
      // Changed by an event less than the shortest stage window ago: nothing can be due yet.
      if (tasks.notDueYet(taskId, now)) continue;
      const t = await tasks.get(taskId, now);
      const step = liveStep(t, now);
      if (step === 'drop') {
        this.#live.delete(taskId);
        tasks.forget(taskId);
      } else if (step === 'timeout' && t) {
        const k = `${taskId}/${t.attempt}/${t.status}`;
        due.add(k);
        const since = this.#timeoutSince.get(k) ?? ms;
        this.#timeoutSince.set(k, since);
        if (!dutyDue(this.#rank('timeout', t), since, ms)) continue;
        jobs.enqueue(`task ${taskId}`, `timeout ${taskId}`, () => this.#timeout(taskId), {
          key: `timeout ${taskId}`,
        });
      }
    }
    for (const k of this.#timeoutSince.keys()) if (!due.has(k)) this.#timeoutSince.delete(k);
    for (const [taskId, until] of this.#seeding) if (until < ms) this.#seeding.delete(taskId);
    // Room for new seeds, counted once per tick (it reads the state) and spent as seeds go out.
    let room = Number.NaN;
    for (const [taskId, since] of [...this.#toSeed]) {
      const t = await tasks.get(taskId, now);
      if (!awaitsSeed(t)) {
        this.#toSeed.delete(taskId);
        continue;
      }
      if (this.#seeding.has(taskId) || !dutyDue(this.#rank('seed', t), since, ms)) continue;
      // Back-pressure: a seed opens a claim window that ends the attempt if nobody claims, so
      // this node seeds only what it could claim itself; the rest wait, `created` (no attempt
      // spent) until it or another executor has room, or the task expires (refunded).
      if (Number.isNaN(room)) {
        room = this.#c.capacity ? this.#c.capacity(this.#seeding.keys()) : Number.POSITIVE_INFINITY;
      }
      if (room <= 0) continue;
      room--;
      this.#seeding.set(taskId, ms + (t.windows.claim + 2) * 1000);
      jobs.enqueue(`task ${taskId}`, `seed ${taskId}`, () => this.#seedNow(taskId), {
        key: `seed ${taskId}`,
      });
    }
  }

  /** Reads the registry's active nodes (NodeRegistered events, then each node's entry). */
  async #readNodes(): Promise<void> {
    try {
      const nodes = await listNodes(this.#c.chain);
      this.#nodes = new Map(
        nodes
          .filter((n) => n.status === 'active')
          .map((n) => [n.address.toLowerCase(), n.roles.includes('executor')]),
      );
      this.#c.log.info('active nodes read (seed and timeout designation)', {
        nodes: this.#nodes.size,
        executors: [...this.#nodes.values()].filter(Boolean).length,
      });
    } catch (e) {
      this.#nodesStale = true;
      throw e;
    }
  }

  /**
   * Keeps the registration alive: a heartbeat once an hour of chain time (the registry lets
   * anyone mark a node inactive after its heartbeat TTL, a day by default); leaves jail once it
   * has ended (§11.1).
   */
  async #heartbeat(now: number): Promise<void> {
    const { chain, address, log } = this.#c;
    if (this.#lastHeartbeat === 0) {
      this.#lastHeartbeat = knownHeartbeat(await getNode(chain, address as Hex), now);
    }
    if (now >= this.#jailCheckAfter) {
      const me = await getNode(chain, address as Hex);
      const step = jailStep(me, now);
      if (step.kind === 'check') this.#jailCheckAfter = step.at;
      else {
        try {
          await unjailNode(chain);
          log.warn('jail ended; the node is active again', {
            address,
            jailedFor: me && me.jailedTask !== null ? String(me.jailedTask) : null,
          });
        } catch (e) {
          const fe = toFerryError(e);
          const next = unjailFailure(fe.code, now);
          if (next.kind === 'retry') throw fe;
          // e.g. stake below the minimum after the slash: say so, try again in an hour.
          log.warn('the node cannot leave jail', { code: fe.code, message: fe.message });
          this.#jailCheckAfter = next.at;
        }
      }
    }
    if (!heartbeatDue(now, this.#lastHeartbeat)) return;
    await heartbeat(chain);
    this.#lastHeartbeat = now;
    log.info('heartbeat', { address });
  }

  /**
   * Ends a stage whose deadline passed (anyone may): an attempt without a claim, evidence,
   * votes or receipt in time ends, and the task moves to its next attempt or fails; a task past
   * its expiry is refunded. Reverts (someone else was first) are ignored.
   */
  async #timeout(taskId: bigint): Promise<void> {
    const { chain, tasks, log } = this.#c;
    const t = await getTask(chain, taskId);
    tasks.forget(taskId);
    if (!t || FINAL.has(t.status)) return;
    const now = Number((await chain.public.getBlock()).timestamp);
    if (liveStep(t, now) !== 'timeout') return;
    try {
      const r = await timeoutTask(chain, taskId);
      log.info('stage timed out', { task: String(taskId), attempt: t.attempt, was: t.status, now: r.status });
    } catch (e) {
      log.debug('timeout not possible', { task: String(taskId), code: toFerryError(e).code });
    }
  }

  /**
   * Seeds a task's next attempt (anyone may, once the anchor block's successor exists). The
   * reconcile found it awaiting its seed on the cached row; the contract checks again (a task
   * seeded meanwhile reverts at estimation, and nothing is sent).
   */
  async #seedNow(taskId: bigint): Promise<void> {
    const { chain, tasks, log } = this.#c;
    if (!this.#toSeed.has(taskId)) {
      this.#seeding.delete(taskId);
      return;
    }
    try {
      await seedTask(chain, taskId);
      this.#toSeed.delete(taskId);
      tasks.forget(taskId);
    } catch (e) {
      // Too early (the anchor block's successor is not mined yet) or seeded by someone else.
      this.#seeding.delete(taskId);
      log.debug('seed not possible yet', { task: String(taskId), code: toFerryError(e).code });
    }
  }
}

/**
 * Registers the node on first start (intent first, state.ts) and checks the registration on
 * every start: the chain decides whether it happened; the VRF key on chain must be this home's;
 * the endpoint on chain is updated when the node listens elsewhere now.
 */
export async function ensureRegistered(c: {
  chain: ChainWriter;
  chainId: number;
  state: NodeState;
  config: NodeConfig;
  address: string;
  endpoint: string;
  vrfPublicKey: Uint8Array;
  signingKey: Uint8Array;
  log: Logger;
}): Promise<void> {
  const { config: cfg, chain, state, address, endpoint } = c;
  const params = {
    roles: cfg.roles,
    region: cfg.region,
    teeKinds: [chainTeeKind(cfg.tee) as TeeKind],
    vrfPublicKey: c.vrfPublicKey,
    signingKey: c.signingKey,
    endpoint,
    // `ferry node start --operator` (config.ts); absent: the node is its own operator.
    operator: cfg.operator as Hex | undefined,
  };
  const { registration } = state.beginRegistration({
    chainId: c.chainId,
    registry: cfg.contracts.NodeRegistry,
    address,
    params: {
      roles: cfg.roles,
      region: cfg.region,
      tee: cfg.tee,
      stake: cfg.stake.toString(),
      vrfPublicKey: toHex(c.vrfPublicKey),
    },
  });
  // Whatever the local row says, the chain decides whether the registration happened.
  const onChain = await getNode(chain, address as Hex);
  if (onChain) {
    if (registration.status === 'intent' || registration.status === 'sent')
      state.markRegistrationOutcome('confirmed', 'found on chain');
    if (onChain.vrfPublicKey.toLowerCase() !== `0x${toHex(c.vrfPublicKey)}`) {
      throw new FerryError('STATE_CONFLICT', 'the VRF key registered on chain is not this node home’s key', {
        hints: [`address: ${address}`],
      });
    }
    if (onChain.endpoint !== endpoint) await setNodeEndpoint(chain, endpoint);
    return;
  }
  if (registration.status === 'confirmed') {
    throw new FerryError('STATE_CONFLICT', 'the local state says registered but the chain has no such node', {
      hints: ['the chain was reset? remove the node home to start over'],
    });
  }
  const r = await registerNode(chain, { ...params, stake: cfg.stake });
  state.markRegistrationSent(r.hash);
  state.markRegistrationOutcome('confirmed');
  c.log.info('registered', { address, tx: r.hash });
}
