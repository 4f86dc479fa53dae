/**
 * The dashboard's in-memory index of a Ferry network, built from the chain's events
 * (docs/protocol.md §13.9): nodes, datasets, apps, and tasks with their attempts, claims,
 * votes, key releases and a timeline of stages with block numbers and block times.
 *
 * The indexer follows the chain with the event watcher (`watchFerryEvents`) from `fromBlock`.
 * Each range of events is applied in two steps: every chain read it needs (tasks, nodes,
 * assets, block times) is made first, retried while the endpoint is unavailable; then the
 * index is updated synchronously. A range is therefore either applied completely or not at
 * all, and the cursor moves only after it was applied.
 *
 * Votes and claims are judged by the relying parties' rules (src/protocol `judgeVoteEvent`,
 * `judgeClaimEvent`, which `checkVotes` and `checkClaim` apply), against the registry as it
 * was before the task was created (`nodeAtCreation`): the voter was then an active verifier, is not the attempt's executor and
 * does not share its operator, its VRF proof verifies under its key then over the attempt's
 * verifier alpha, and it claims no more seats than sortition gives its stake then. A vote is
 * `valid` only when all hold. Nothing on the dashboard presents a vote as valid that an owner
 * agent would refuse; a check that could not be made (e.g. the endpoint keeps no state
 * history) leaves the vote unchecked and not valid.
 */
import { createHash } from 'node:crypto';
import type { Address, Hex } from 'viem';
import {
  decodePolicyDocument,
  developmentPolicy,
  PRODUCTION_POLICY,
  policyHash,
} from '../attestation/index.ts';
import {
  type AppInfo,
  ATTEMPT_END_REASONS,
  type ChainReader,
  type DatasetInfo,
  type FerryEvent,
  getApp,
  getDataset,
  getNode,
  getTask,
  type NodeInfo,
  TASK_STATES,
  type TaskInfo,
  type TaskState,
  type Watcher,
  watchFerryEvents,
} from '../chain/index.ts';
import { claimAlpha, verifierAlpha } from '../crypto/index.ts';
import { decodeReceipt } from '../enclave/index.ts';
import { FerryError, fromHex, type Logger, toFerryError, toHex } from '../kernel/index.ts';
import {
  fraudKind,
  judgeClaimEvent,
  judgeVoteEvent,
  hexBytes,
  nodeAtCreation,
  type StageDeadline,
  stageDeadline,
  stageOfEvent,
  type TaskStage,
} from '../protocol/index.ts';

export type IndexerOptions = {
  chain: ChainReader;
  chainId: number;
  /** First block to index; default 0 (the whole history). */
  fromBlock?: bigint;
  /** Confirmation depth for the watcher; default 1. */
  confirmations?: number;
  /** Watcher poll interval, ms; default 500. */
  pollIntervalMs?: number;
  log: Logger;
};

/** A node as the dashboard shows it (protocol.md §13.9). */
export type NodeView = {
  address: string;
  roles: string[];
  status: string;
  region: string;
  teeKinds: string[];
  stake: string;
  unbonding: string;
  endpoint: string;
  operator: string | null;
  lastHeartbeat: number;
  jailedUntil: number;
  /** The task whose attempt got the node jailed (decimal), or null. */
  jailedTask: string | null;
  vrfPublicKey: string;
  registeredBlock: string | null;
  updatedBlock: string;
};

/**
 * A change of a node's stake or jail (NodeRegistry events): `registered`, `stake-added`,
 * `unbond-requested`, `slashed` (jailed until `jailedUntil`, for `taskId`), `unjailed`.
 * `stake` is the node's stake after the event (wei, decimal).
 */
export type NodeEventView = {
  node: string;
  kind: 'registered' | 'stake-added' | 'unbond-requested' | 'slashed' | 'unjailed';
  stake: string;
  amount: string | null;
  jailedUntil: number | null;
  taskId: string | null;
  block: string;
  /** Block time, unix seconds. */
  time: number;
};

/** The charts' data (`/api/stats`, protocol.md §13.9). */
export type StatsView = {
  /** The reference time: the head's block time when known, else the last indexed event's; null before any. */
  now: number | null;
  /** Tasks that reached `completed` / `failed` or `expired`, per minute (start of the minute, unix s), the last 30 minutes up to `now`. */
  perMinute: { minute: number; completed: number; ended: number }[];
  /** Time from the previous stage to each stage of an attempt (block times, ms), over every indexed attempt. */
  stageLatency: { stage: TaskStage; samples: number; meanMs: number; maxMs: number }[];
  /** The stake and jail events of nodes, in chain order (the last 500). */
  nodeEvents: NodeEventView[];
};

/** The stages whose latency `/api/stats` reports, in the order an attempt reaches them. */
const LATENCY_STAGES: readonly TaskStage[] = [
  'seeded',
  'claimed',
  'evidence',
  'attested',
  'running',
  'completed',
];
/** Timeline stages that start the clock for the next latency sample (an attempt's start). */
const LATENCY_STARTS: readonly TaskStage[] = ['created', 'rejected'];
/** The status a timeline stage moves the task to (for `stageSince`); other stages move none. */
const STATUS_OF_STAGE: Partial<Record<string, TaskState>> = {
  created: 'created',
  seeded: 'seeded',
  claimed: 'claimed',
  evidence: 'attesting',
  attested: 'attested',
  running: 'running',
  rejected: 'rejected',
  completed: 'completed',
  failed: 'failed',
  expired: 'expired',
};
const NODE_EVENT_KIND: Record<string, NodeEventView['kind']> = {
  NodeRegistered: 'registered',
  StakeAdded: 'stake-added',
  UnbondRequested: 'unbond-requested',
  NodeSlashed: 'slashed',
  NodeUnjailed: 'unjailed',
};
const MAX_NODE_EVENTS = 500;

export type DatasetView = {
  datasetId: string;
  owner: string;
  ciphertextHash: string;
  endpoint: string;
  price: string;
  revoked: boolean;
  uses: number;
  policyEpoch: number | null;
  policy: {
    anyApp: boolean | null;
    regions: string[];
    teeKinds: string[];
    tau: number | null;
    threshold: number | null;
    maxUses: number | null;
    expiresAt: number | null;
    restrictRequesters: boolean | null;
    appraisalPolicyHash: string | null;
    appraisalPolicyName: string | null;
  };
  tasks: number;
};

export type AppView = {
  appId: string;
  owner: string;
  measurement: string;
  ciphertextHash: string;
  endpoint: string;
  price: string;
  revoked: boolean;
  tasks: number;
};

export type ClaimView = {
  executor: string;
  best: boolean;
  winner: boolean;
  /** null: could not be checked (registry snapshot or the attempt's seed unknown). */
  vrfProofValid: boolean | null;
  /**
   * True only when the claimant was an active executor with stake before the task was created,
   * its VRF proof verifies and it came by the claim deadline (protocol judgeClaimEvent).
   */
  valid: boolean;
  /** Why the claim is not valid: not-eligible, vrf-proof, late, unchecked; null when valid. */
  invalidReason: string | null;
  block: string;
  time: number;
};

export type VoteView = {
  attempt: number;
  verifier: string;
  pass: boolean;
  seats: number;
  resultHash: string;
  /**
   * The voter was an active verifier before the task was created, is not the attempt's
   * executor and does not share its operator; null when unchecked.
   */
  eligible: boolean | null;
  /** null: could not be checked (registry snapshot or the attempt's seed unknown, or not eligible). */
  vrfProofValid: boolean | null;
  /** Seats sortition gives the voter; null when unchecked. */
  maxSeats: number | null;
  seatsValid: boolean | null;
  /** True only when eligible, the VRF proof verifies and the seats are at most `maxSeats`. */
  valid: boolean;
  /** Why the vote is not valid: not-eligible, executor-operator, vrf-proof, seats, unchecked; null when valid. */
  invalidReason: string | null;
  block: string;
  time: number;
};

export type Stage = {
  stage: string;
  attempt: number | null;
  block: string;
  /** Block time, unix seconds. */
  time: number;
  /** Block time minus the creation block's time, ms; null when creation was not indexed. */
  sinceCreatedMs: number | null;
  [field: string]: unknown;
};

type AttemptRec = {
  attempt: number;
  seed: Hex | null;
  claimDeadline: number | null;
  claims: ClaimView[];
  evidence: { executor: string; hash: string; location: string; voteDeadline: number; block: string } | null;
  votes: VoteView[];
  attested: { passSeats: number; failSeats: number; runDeadline: number; block: string } | null;
  keyReleases: { assetIndex: number; owner: string; releaseHash: string; block: string }[];
  ended: { reason: string; executor: string | null; slashed: string; block: string; cause?: string } | null;
  /** The executor's cause when it abandoned the attempt (AttemptAbandoned, before AttemptEnded). */
  abandonCause: string | null;
};

type TaskRec = {
  taskId: bigint;
  info: TaskInfo;
  createdTime: number | null;
  inputLocation: string | null;
  totalExecutorStake: string | null;
  attempts: Map<number, AttemptRec>;
  timeline: Stage[];
  updatedBlock: bigint;
  endReason: string | null;
  result: { location: string; hash: string; receiptHash: string } | null;
  /** How the app ended, as the receipt in TaskCompleted says; null until completed. */
  outcome: AppOutcome | null;
};

/** The app's outcome from a receipt: exit (with its code), trap, or the limit it hit. */
export type AppOutcome = {
  outcome: 'exit' | 'trap' | 'limit';
  appExitCode: number | null;
  limitHit: string | null;
};

function receiptOutcome(raw: unknown): AppOutcome | null {
  if (typeof raw !== 'string' || !raw.startsWith('0x')) return null;
  try {
    const r = decodeReceipt(fromHex(raw));
    return {
      outcome: r.outcome,
      appExitCode: r.outcome === 'exit' ? r.exitCode : null,
      limitHit: r.limitHit,
    };
  } catch {
    return null;
  }
}

type Fetched = {
  tasks: Map<bigint, TaskInfo>;
  nodes: Map<string, NodeInfo | null>;
  datasets: Map<bigint, DatasetInfo | null>;
  apps: Map<bigint, AppInfo | null>;
  times: Map<bigint, number>;
};

const ZERO = '0x0000000000000000000000000000000000000000';

function hex(h: unknown): string {
  const s = String(h ?? '');
  return (s.startsWith('0x') ? s.slice(2) : s).toLowerCase();
}

function num(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : Number(v ?? 0);
}

function isNodeEvent(e: FerryEvent): boolean {
  return e.contract === 'NodeRegistry' && typeof e.args.node === 'string';
}

/** Field of a chain record read defensively (record shapes evolve while the chain does). */
function pick(o: unknown, key: string): unknown {
  return o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[key] : undefined;
}

function strList(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

function optNum(v: unknown): number | null {
  return typeof v === 'number' || typeof v === 'bigint' ? Number(v) : null;
}

function optBool(v: unknown): boolean | null {
  return typeof v === 'boolean' ? v : null;
}

/** Follows a Ferry deployment and answers the dashboard's queries from memory. */
export class Indexer {
  readonly #opts: IndexerOptions;
  readonly #log: Logger;
  readonly #policyNames: Map<string, string>;
  #nodes = new Map<string, NodeView>();
  #datasets = new Map<string, DatasetView>();
  #apps = new Map<string, AppView>();
  #tasks = new Map<string, TaskRec>();
  /** Registry entries as of each task's creation (`nodeAtCreation`), by task id then address; undefined: unreadable. */
  #snapshots = new Map<string, Map<string, NodeInfo | null | undefined>>();
  #nodeEvents: NodeEventView[] = [];
  #lastTime: number | null = null;
  #next: bigint;
  #watcher: Watcher | null = null;
  #stopped = true;
  #restartTimer: NodeJS.Timeout | null = null;
  #lastError: { code: string; message: string } | null = null;

  constructor(opts: IndexerOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#next = opts.fromBlock ?? 0n;
    this.#policyNames = new Map(
      [PRODUCTION_POLICY, developmentPolicy()].map((p) => [toHex(policyHash(p)), p.name]),
    );
  }

  /** The last block whose events are in the index; -1 before the first range. */
  get indexedBlock(): bigint {
    return this.#next - 1n;
  }

  /** Why the watcher last stopped (it restarts by itself); null once a later range was applied. */
  get lastError(): { code: string; message: string } | null {
    return this.#lastError;
  }

  /** Starts following the chain; idempotent. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#watch();
  }

  /** Stops following; resolves once the current range is done. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
    const w = this.#watcher;
    this.#watcher = null;
    await w?.stop();
  }

  #watch(): void {
    const watcher = watchFerryEvents(this.#opts.chain, {
      fromBlock: this.#next,
      confirmations: this.#opts.confirmations ?? 1,
      pollIntervalMs: this.#opts.pollIntervalMs ?? 500,
      onEvents: (events, next) => this.#onEvents(events, next),
      onError: (e) => {
        if (this.#stopped) return;
        this.#lastError = { code: e.code, message: e.message };
        this.#log.warn('indexer stopped; restarting', { code: e.code, error: e });
        if (e.code === 'CHAIN_REORG_TOO_DEEP') this.#reset();
        this.#restartTimer = setTimeout(() => {
          this.#restartTimer = null;
          if (!this.#stopped) this.#watch();
        }, 1000);
      },
    });
    this.#watcher = watcher;
  }

  #reset(): void {
    this.#nodes.clear();
    this.#datasets.clear();
    this.#apps.clear();
    this.#tasks.clear();
    this.#snapshots.clear();
    this.#nodeEvents = [];
    this.#lastTime = null;
    this.#next = this.#opts.fromBlock ?? 0n;
  }

  /** Runs a chain read, retrying while the endpoint is unavailable; ABORTED once stopped. */
  async #read<T>(fn: () => Promise<T>): Promise<T> {
    for (;;) {
      if (this.#stopped) throw new FerryError('ABORTED', 'indexer stopped');
      try {
        return await fn();
      } catch (e) {
        const err = toFerryError(e);
        if (err.code !== 'CHAIN_UNAVAILABLE') throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /**
   * A read that may be impossible on this endpoint (state history): retried a few times while
   * unavailable, then undefined; ABORTED once stopped.
   */
  async #tryRead<T>(fn: () => Promise<T>): Promise<T | undefined> {
    for (let i = 0; ; i++) {
      if (this.#stopped) throw new FerryError('ABORTED', 'indexer stopped');
      try {
        return await fn();
      } catch (e) {
        const err = toFerryError(e);
        if (err.code === 'ABORTED' || err.code === 'INTERNAL') throw err;
        if (i >= 3 || err.code !== 'CHAIN_UNAVAILABLE') {
          this.#log.warn('registry snapshot unreadable; votes stay unchecked', { code: err.code });
          return undefined;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /**
   * Names a policy document a dataset published (DatasetRegistered / DatasetPolicyUpdated; the
   * contract checked its hash): the name inside it, when it decodes (§9). An invalid document
   * stays unnamed; verifiers abstain on it.
   */
  #learnPolicy(documentHex: string): void {
    try {
      const doc = fromHex(documentHex, 'appraisalPolicy');
      const h = createHash('sha256').update(doc).digest('hex');
      if (!this.#policyNames.has(h)) this.#policyNames.set(h, decodePolicyDocument(doc).name);
    } catch {
      // not a valid policy document: no name
    }
  }

  #snapshot(taskId: bigint, addr: string): NodeInfo | null | undefined {
    return this.#snapshots.get(taskId.toString())?.get(addr.toLowerCase());
  }

  async #onEvents(events: FerryEvent[], next: bigint): Promise<void> {
    if (events.length === 0) {
      this.#next = next;
      this.#lastError = null;
      return;
    }
    const c = this.#opts.chain;
    const taskIds = new Set<bigint>();
    const nodeAddrs = new Set<string>();
    const datasetIds = new Set<bigint>();
    const appIds = new Set<bigint>();
    const blocks = new Set<bigint>();
    for (const e of events) {
      const a = e.args;
      if (isNodeEvent(e)) {
        nodeAddrs.add(String(a.node));
        if (Object.hasOwn(NODE_EVENT_KIND, e.eventName)) blocks.add(e.blockNumber);
      }
      if (e.contract === 'Tasks' && typeof a.taskId === 'bigint') {
        taskIds.add(a.taskId);
        blocks.add(e.blockNumber);
        for (const k of ['executor', 'verifier']) if (typeof a[k] === 'string') nodeAddrs.add(String(a[k]));
        if (e.eventName === 'TaskCreated') {
          appIds.add(a.appId as bigint);
          for (const d of (a.datasetIds as bigint[]) ?? []) datasetIds.add(d);
        }
      }
      if (e.contract === 'Assets') {
        if (typeof a.datasetId === 'bigint') datasetIds.add(a.datasetId);
        if (typeof a.appraisalPolicy === 'string') this.#learnPolicy(a.appraisalPolicy);
        if (typeof a.appId === 'bigint') appIds.add(a.appId);
      }
    }
    const f: Fetched = {
      tasks: new Map(),
      nodes: new Map(),
      datasets: new Map(),
      apps: new Map(),
      times: new Map(),
    };
    for (const b of blocks) {
      const block = await this.#read(() => c.public.getBlock({ blockNumber: b }));
      f.times.set(b, Number(block.timestamp));
    }
    for (const id of taskIds) {
      const t = await this.#read(() => getTask(c, id));
      if (t) f.tasks.set(id, t);
    }
    for (const e of events) {
      const a = e.args;
      if (e.contract !== 'Tasks' || typeof a.taskId !== 'bigint') continue;
      const info = f.tasks.get(a.taskId);
      const who =
        a.verifier ??
        (e.eventName === 'TaskClaimed' || e.eventName === 'EvidenceCommitted' ? a.executor : undefined);
      if (!info || typeof who !== 'string') continue;
      let snaps = this.#snapshots.get(a.taskId.toString());
      if (!snaps) {
        snaps = new Map();
        this.#snapshots.set(a.taskId.toString(), snaps);
      }
      if (snaps.has(who.toLowerCase())) continue;
      snaps.set(who.toLowerCase(), await this.#tryRead(() => nodeAtCreation(c, who, info)));
    }
    for (const addr of nodeAddrs) {
      if (addr === ZERO) continue;
      f.nodes.set(addr.toLowerCase(), await this.#read(() => getNode(c, addr as Address)));
    }
    for (const id of datasetIds) f.datasets.set(id, await this.#read(() => getDataset(c, id)));
    for (const id of appIds) f.apps.set(id, await this.#read(() => getApp(c, id)));
    this.#apply(events, f);
    this.#next = next;
    this.#lastError = null;
  }

  #apply(events: FerryEvent[], f: Fetched): void {
    this.#recordNodeEvents(events, f);
    for (const [addr, n] of f.nodes) this.#putNode(addr, n, events);
    for (const [id, d] of f.datasets) if (d) this.#datasets.set(id.toString(), this.#datasetView(d));
    for (const [id, a] of f.apps) if (a) this.#apps.set(id.toString(), this.#appView(a));
    for (const e of events) {
      if (e.contract !== 'Tasks' || typeof e.args.taskId !== 'bigint') continue;
      const info = f.tasks.get(e.args.taskId);
      if (!info) continue;
      this.#applyTaskEvent(e, info, f.times.get(e.blockNumber) ?? 0);
    }
    for (const [id, info] of f.tasks) {
      const rec = this.#tasks.get(id.toString());
      if (rec) rec.info = info;
    }
    this.#countUses();
    for (const t of f.times.values()) if (this.#lastTime === null || t > this.#lastTime) this.#lastTime = t;
  }

  /** Appends the range's stake and jail events, each with the node's stake after it. */
  #recordNodeEvents(events: FerryEvent[], f: Fetched): void {
    // The stake before this range: the node's last recorded event (every stake change is one);
    // the registry's current stake only for a node with none (it may already include this
    // range's changes, so it is never the base when an event is known).
    const stakeNow = new Map<string, bigint>();
    for (const [addr, n] of this.#nodes) stakeNow.set(addr, BigInt(n.stake));
    for (const ev of this.#nodeEvents) stakeNow.set(ev.node.toLowerCase(), BigInt(ev.stake));
    for (const e of events) {
      if (!isNodeEvent(e) || !Object.hasOwn(NODE_EVENT_KIND, e.eventName)) continue;
      const a = e.args;
      const addr = String(a.node).toLowerCase();
      const prev = stakeNow.get(addr) ?? 0n;
      const amount = typeof a.amount === 'bigint' ? a.amount : null;
      let stake: bigint;
      if (typeof a.stake === 'bigint') stake = a.stake;
      else if (e.eventName === 'NodeSlashed' && amount !== null) stake = prev > amount ? prev - amount : 0n;
      else stake = prev;
      stakeNow.set(addr, stake);
      this.#nodeEvents.push({
        node: String(a.node),
        kind: NODE_EVENT_KIND[e.eventName],
        stake: stake.toString(),
        amount: amount === null ? null : amount.toString(),
        jailedUntil: e.eventName === 'NodeSlashed' ? num(a.jailedUntil) : null,
        taskId: typeof a.taskId === 'bigint' ? a.taskId.toString() : null,
        block: e.blockNumber.toString(),
        time: f.times.get(e.blockNumber) ?? 0,
      });
    }
    if (this.#nodeEvents.length > MAX_NODE_EVENTS)
      this.#nodeEvents.splice(0, this.#nodeEvents.length - MAX_NODE_EVENTS);
  }

  #putNode(addr: string, n: NodeInfo | null, events: FerryEvent[]): void {
    const prev = this.#nodes.get(addr);
    const mine = events.filter((e) => isNodeEvent(e) && String(e.args.node).toLowerCase() === addr);
    const registered = mine.find((e) => e.eventName === 'NodeRegistered');
    const last = mine.at(-1);
    if (!n) {
      this.#nodes.delete(addr);
      return;
    }
    const operator = pick(n, 'operator');
    this.#nodes.set(addr, {
      address: n.address,
      roles: strList(n.roles),
      status: String(n.status),
      region: String(n.region ?? ''),
      teeKinds: strList(n.teeKinds),
      stake: String(n.stake ?? 0n),
      unbonding: String(n.unbonding ?? 0n),
      endpoint: String(n.endpoint ?? ''),
      operator: typeof operator === 'string' && operator !== ZERO ? operator : null,
      lastHeartbeat: num(n.lastHeartbeat),
      jailedUntil: num(n.jailedUntil),
      jailedTask: n.jailedTask === null || n.jailedTask === undefined ? null : String(n.jailedTask),
      vrfPublicKey: hex(n.vrfPublicKey),
      registeredBlock: registered ? registered.blockNumber.toString() : (prev?.registeredBlock ?? null),
      updatedBlock: last ? last.blockNumber.toString() : (prev?.updatedBlock ?? '0'),
    });
  }

  #datasetView(d: DatasetInfo): DatasetView {
    const p = pick(d, 'policy');
    const h = pick(p, 'appraisalPolicyHash');
    const policyHash = typeof h === 'string' ? hex(h) : null;
    return {
      datasetId: d.datasetId.toString(),
      owner: String(d.owner),
      ciphertextHash: hex(d.ciphertextHash),
      endpoint: String(d.endpoint ?? ''),
      price: String(d.price ?? 0n),
      revoked: d.revoked === true,
      uses: num(d.uses),
      policyEpoch: optNum(pick(d, 'policyEpoch')),
      policy: {
        anyApp: optBool(pick(p, 'anyApp')),
        regions: strList(pick(p, 'allowedRegions')),
        teeKinds: strList(pick(p, 'teeKinds')),
        tau: optNum(pick(p, 'tau')),
        threshold: optNum(pick(p, 'threshold')),
        maxUses: optNum(pick(p, 'maxUses')),
        expiresAt: optNum(pick(p, 'expiresAt')),
        restrictRequesters: optBool(pick(p, 'restrictRequesters')),
        appraisalPolicyHash: policyHash,
        appraisalPolicyName: policyHash ? (this.#policyNames.get(policyHash) ?? null) : null,
      },
      tasks: this.#datasets.get(d.datasetId.toString())?.tasks ?? 0,
    };
  }

  #appView(a: AppInfo): AppView {
    return {
      appId: a.appId.toString(),
      owner: String(a.owner),
      measurement: hex(a.measurement),
      ciphertextHash: hex(a.ciphertextHash),
      endpoint: String(a.endpoint ?? ''),
      price: String(a.price ?? 0n),
      revoked: a.revoked === true,
      tasks: this.#apps.get(a.appId.toString())?.tasks ?? 0,
    };
  }

  #countUses(): void {
    for (const d of this.#datasets.values()) d.tasks = 0;
    for (const a of this.#apps.values()) a.tasks = 0;
    for (const t of this.#tasks.values()) {
      const app = this.#apps.get(t.info.appId.toString());
      if (app) app.tasks++;
      for (const id of t.info.datasetIds) {
        const d = this.#datasets.get(id.toString());
        if (d) d.tasks++;
      }
    }
  }

  #attempt(rec: TaskRec, n: number): AttemptRec {
    let a = rec.attempts.get(n);
    if (!a) {
      a = {
        attempt: n,
        seed: null,
        claimDeadline: null,
        claims: [],
        evidence: null,
        votes: [],
        attested: null,
        keyReleases: [],
        ended: null,
        abandonCause: null,
      };
      rec.attempts.set(n, a);
    }
    return a;
  }

  /** The seed of an attempt: from its TaskSeeded event, or the task's when it is the current attempt. */
  #seedOf(rec: TaskRec, a: AttemptRec): Hex | null {
    if (a.seed) return a.seed;
    if (rec.info.attempt === a.attempt && !/^0x0*$/.test(rec.info.seed)) return rec.info.seed;
    return null;
  }

  #applyTaskEvent(e: FerryEvent, info: TaskInfo, time: number): void {
    const a = e.args;
    const key = info.taskId.toString();
    let rec = this.#tasks.get(key);
    if (!rec) {
      rec = {
        taskId: info.taskId,
        info,
        createdTime: null,
        inputLocation: null,
        totalExecutorStake: null,
        attempts: new Map(),
        timeline: [],
        updatedBlock: e.blockNumber,
        endReason: null,
        result: null,
        outcome: null,
      };
      this.#tasks.set(key, rec);
    }
    rec.updatedBlock = e.blockNumber;
    const attemptNo = a.attempt === undefined ? null : num(a.attempt);
    // The stage this event marks (src/protocol/stages.ts); null: none (payments, other statuses).
    const name = stageOfEvent(e);
    const stage = (fields: Record<string, unknown> = {}, attempt = attemptNo) => {
      if (name === null) return;
      rec.timeline.push({
        stage: name,
        attempt,
        block: e.blockNumber.toString(),
        time,
        sinceCreatedMs: rec.createdTime === null ? null : (time - rec.createdTime) * 1000,
        ...fields,
      });
    };
    const chainId = BigInt(this.#opts.chainId);
    switch (e.eventName) {
      case 'TaskCreated': {
        rec.createdTime = time;
        rec.inputLocation = String(a.inputLocation ?? '');
        rec.totalExecutorStake = String(a.totalExecutorStake ?? '');
        stage(
          {
            requester: String(a.requester),
            appId: String(a.appId),
            datasetIds: ((a.datasetIds as bigint[]) ?? []).map(String),
            fee: String(a.fee),
            tau: num(a.tau),
            threshold: num(a.threshold),
          },
          1,
        );
        break;
      }
      case 'TaskSeeded': {
        const at = this.#attempt(rec, attemptNo ?? 1);
        at.seed = a.seed as Hex;
        at.claimDeadline = num(a.claimDeadline);
        stage({ seed: hex(a.seed), claimDeadline: at.claimDeadline });
        break;
      }
      case 'SeedReanchored':
        stage({ anchorBlock: String(a.anchorBlock) });
        break;
      case 'TaskClaimed': {
        const at = this.#attempt(rec, attemptNo ?? 1);
        const seed = this.#seedOf(rec, at);
        const alpha = seed
          ? claimAlpha({ chainId, taskId: info.taskId, attempt: at.attempt, seed: hexBytes(seed) })
          : null;
        const judged = judgeClaimEvent({
          node: this.#snapshot(info.taskId, String(a.executor)),
          alpha,
          claim: { vrfOutput: hexBytes(a.vrfOutput as Hex), vrfProof: hexBytes(a.vrfProof as Hex) },
          window: at.claimDeadline === null ? null : { claimedAt: time, claimDeadline: at.claimDeadline },
        });
        const valid = judged.vrfProofValid;
        const claim: ClaimView = {
          executor: String(a.executor),
          best: a.best === true,
          winner: false,
          vrfProofValid: valid,
          valid: judged.valid,
          invalidReason: judged.reason,
          block: e.blockNumber.toString(),
          time,
        };
        if (claim.best) for (const x of at.claims) x.winner = false;
        claim.winner = claim.best;
        at.claims.push(claim);
        stage({ executor: claim.executor, best: claim.best, vrfProofValid: valid });
        break;
      }
      case 'EvidenceCommitted': {
        const at = this.#attempt(rec, attemptNo ?? 1);
        at.evidence = {
          executor: String(a.executor),
          hash: hex(a.evidenceHash),
          location: String(a.evidenceLocation ?? ''),
          voteDeadline: num(a.voteDeadline),
          block: e.blockNumber.toString(),
        };
        stage({
          executor: at.evidence.executor,
          evidenceHash: at.evidence.hash,
          location: at.evidence.location,
          voteDeadline: at.evidence.voteDeadline,
        });
        break;
      }
      case 'VoteCast': {
        const at = this.#attempt(rec, attemptNo ?? 1);
        const v = this.#checkVote(rec, at, e, time);
        at.votes.push(v);
        stage({
          verifier: v.verifier,
          pass: v.pass,
          seats: v.seats,
          vrfProofValid: v.vrfProofValid,
          seatsValid: v.seatsValid,
          valid: v.valid,
          invalidReason: v.invalidReason,
        });
        break;
      }
      case 'TaskAttested': {
        const at = this.#attempt(rec, attemptNo ?? 1);
        at.attested = {
          passSeats: num(a.passSeats),
          failSeats: num(a.failSeats),
          runDeadline: num(a.runDeadline),
          block: e.blockNumber.toString(),
        };
        stage({ passSeats: at.attested.passSeats, failSeats: at.attested.failSeats });
        break;
      }
      case 'KeyReleased': {
        const at = this.#attempt(rec, attemptNo ?? 1);
        const assetIndex = num(a.assetIndex);
        at.keyReleases.push({
          assetIndex,
          owner: String(a.owner),
          releaseHash: hex(a.releaseHash),
          block: e.blockNumber.toString(),
        });
        stage({
          assetIndex,
          asset: assetIndex === 0 ? 'app' : 'dataset',
          assetId:
            assetIndex === 0 ? info.appId.toString() : (info.datasetIds[assetIndex - 1]?.toString() ?? null),
          owner: String(a.owner),
        });
        break;
      }
      case 'AttemptAbandoned': {
        this.#attempt(rec, attemptNo ?? 1).abandonCause = String(a.cause);
        break;
      }
      case 'FraudProven':
        // A vote or a claim proven false (§11.5); a false best claim also ends its attempt (AttemptEnded, fraud).
        stage({
          fraud: fraudKind(a.fraud),
          liar: String(a.liar),
          challenger: String(a.challenger),
          slashed: String(a.slashed ?? 0n),
          restored: a.restored === true,
        });
        break;
      case 'AttemptEnded': {
        const at = this.#attempt(rec, attemptNo ?? 1);
        const reason = ATTEMPT_END_REASONS[num(a.reason)] ?? `unknown-${num(a.reason)}`;
        const executor = String(a.executor) === ZERO ? null : String(a.executor);
        at.ended = { reason, executor, slashed: String(a.slashed ?? 0n), block: e.blockNumber.toString() };
        if (at.abandonCause !== null) at.ended.cause = at.abandonCause;
        rec.endReason = reason;
        stage({
          reason,
          executor,
          slashed: at.ended.slashed,
          ...(at.abandonCause !== null ? { cause: at.abandonCause } : {}),
        });
        break;
      }
      case 'StatusChanged': {
        // Marks `running` or `rejected` (with the ended attempt's reason); other statuses: nothing.
        stage(
          name === 'rejected' ? { reason: this.#attempt(rec, attemptNo ?? 1).ended?.reason ?? null } : {},
        );
        break;
      }
      case 'TaskCompleted': {
        rec.result = {
          location: String(a.resultLocation ?? ''),
          hash: hex(a.resultHash),
          receiptHash: hex(a.receiptHash),
        };
        rec.outcome = receiptOutcome(a.receipt);
        rec.endReason = null;
        stage({
          executor: String(a.executor),
          receiptHash: rec.result.receiptHash,
          resultHash: rec.result.hash,
          resultLocation: rec.result.location,
        });
        break;
      }
      case 'TaskFailed':
        stage(
          { attempts: num(a.attempts), refund: String(a.refund), reason: rec.endReason },
          num(a.attempts),
        );
        break;
      case 'TaskExpired':
        rec.endReason = 'expired';
        stage({ refund: String(a.refund), reason: 'expired' });
        break;
      default:
        // Paid, Credited, Withdrawn, Datasets' use counters: not stages of the task.
        break;
    }
  }

  #checkVote(rec: TaskRec, at: AttemptRec, e: FerryEvent, time: number): VoteView {
    const a = e.args;
    const verifier = String(a.verifier);
    const seed = this.#seedOf(rec, at);
    const seats = num(a.seats);
    // The attempt's executor: the one that committed evidence, else the winning claimant.
    const executor = at.evidence?.executor ?? at.claims.find((x) => x.winner)?.executor ?? null;
    // The relying parties' rule (protocol judgeVoteEvent); what could not be read is unchecked.
    const j = judgeVoteEvent({
      node: this.#snapshot(rec.taskId, verifier),
      voter: verifier,
      executor,
      executorNode: executor ? this.#snapshot(rec.taskId, executor) : undefined,
      alpha: seed
        ? verifierAlpha({
            chainId: BigInt(this.#opts.chainId),
            taskId: rec.taskId,
            attempt: at.attempt,
            seed: hexBytes(seed),
          })
        : null,
      task: rec.info,
      vote: { seats, vrfOutput: hexBytes(a.vrfOutput as Hex), vrfProof: hexBytes(a.vrfProof as Hex) },
    });
    return {
      attempt: at.attempt,
      verifier,
      pass: a.pass === true,
      seats,
      resultHash: hex(a.resultHash),
      eligible: j.eligible,
      vrfProofValid: j.vrfProofValid,
      maxSeats: j.maxSeats,
      seatsValid: j.seatsValid,
      valid: j.valid,
      invalidReason: j.reason,
      block: e.blockNumber.toString(),
      time,
    };
  }

  // --- queries --------------------------------------------------------------------------

  nodes(): NodeView[] {
    return [...this.#nodes.values()].sort((x, y) => x.address.localeCompare(y.address));
  }

  datasets(): DatasetView[] {
    return [...this.#datasets.values()].sort((x, y) => Number(BigInt(x.datasetId) - BigInt(y.datasetId)));
  }

  apps(): AppView[] {
    return [...this.#apps.values()].sort((x, y) => Number(BigInt(x.appId) - BigInt(y.appId)));
  }

  /** Tasks, newest first, optionally only those with one of `statuses`, at most `limit`. */
  tasks(p: { statuses?: readonly TaskState[]; limit: number }): { total: number; tasks: TaskSummary[] } {
    const all = [...this.#tasks.values()]
      .filter((t) => !p.statuses || p.statuses.includes(t.info.status))
      .sort((x, y) => (x.taskId < y.taskId ? 1 : x.taskId > y.taskId ? -1 : 0));
    return { total: all.length, tasks: all.slice(0, p.limit).map((t) => this.#summary(t)) };
  }

  /** One task with attempts, votes and timeline; null when the index has no such task. */
  task(id: bigint): TaskDetail | null {
    const t = this.#tasks.get(id.toString());
    if (!t) return null;
    const attempts = [...t.attempts.values()]
      .sort((x, y) => x.attempt - y.attempt)
      .map((a) => this.#attemptView(t, a));
    return {
      ...this.#summary(t),
      inputLocation: t.inputLocation,
      windows: { ...t.info.windows },
      deadline: t.info.deadline,
      totalVerifierStake: t.info.totalVerifierStake.toString(),
      seed: hex(t.info.seed),
      evidenceHash: hex(t.info.evidenceHash),
      receiptHash: hex(t.info.receiptHash),
      result: t.result,
      attempts,
      votes: attempts.flatMap((a) => a.votes),
      timeline: t.timeline,
    };
  }

  #attemptView(t: TaskRec, a: AttemptRec): AttemptView {
    const tau = t.info.tau;
    const threshold = t.info.threshold;
    const sum = (pass: boolean, validOnly: boolean) =>
      a.votes.filter((v) => v.pass === pass && (!validOnly || v.valid)).reduce((s, v) => s + v.seats, 0);
    const validPassSeats = sum(true, true);
    const winner = a.claims.find((c) => c.winner);
    let outcome: string;
    if (t.info.status === 'completed' && t.info.attempt === a.attempt) outcome = 'completed';
    else if (a.ended) outcome = a.ended.reason;
    else if (t.info.attempt === a.attempt) outcome = t.info.status;
    else outcome = 'unknown';
    return {
      attempt: a.attempt,
      seed: a.seed ? hex(a.seed) : null,
      claimDeadline: a.claimDeadline,
      executor: a.evidence?.executor ?? winner?.executor ?? null,
      claims: a.claims,
      evidence: a.evidence,
      votes: a.votes,
      tally: {
        tau,
        threshold,
        rejectAt: tau - threshold + 1,
        passSeats: sum(true, false),
        failSeats: sum(false, false),
        validPassSeats,
        validFailSeats: sum(false, true),
        invalidVotes: a.votes.filter((v) => !v.valid).length,
        thresholdReached: validPassSeats >= threshold,
      },
      attested: a.attested,
      keyReleases: a.keyReleases,
      endReason: a.ended?.reason ?? null,
      slashed: a.ended?.slashed ?? null,
      outcome,
    };
  }

  #summary(t: TaskRec): TaskSummary {
    const i = t.info;
    return {
      taskId: i.taskId.toString(),
      status: i.status,
      attempt: i.attempt,
      requester: i.requester,
      appId: i.appId.toString(),
      datasetIds: i.datasetIds.map(String),
      executor: i.executor,
      tau: i.tau,
      threshold: i.threshold,
      passSeats: i.passSeats,
      failSeats: i.failSeats,
      teeKinds: [...i.teeKinds],
      fee: i.fee.toString(),
      expiresAt: i.expiresAt,
      createdBlock: i.createdBlock.toString(),
      createdAt: t.createdTime,
      updatedBlock: t.updatedBlock.toString(),
      endReason: i.status === 'completed' ? null : t.endReason,
      outcome: t.outcome?.outcome ?? null,
      appExitCode: t.outcome?.appExitCode ?? null,
      limitHit: t.outcome?.limitHit ?? null,
      stageDeadline: stageDeadline(i),
      stageSince: stageSince(t.timeline, i.status),
    };
  }

  /**
   * The charts' data: tasks ended per minute over the 30 minutes up to `headTime` (or the last
   * indexed block time), stage latencies, node stake and jail events.
   */
  stats(headTime: number | null): StatsView {
    const now = headTime ?? this.#lastTime;
    const perMinute: StatsView['perMinute'] = [];
    if (now !== null) {
      const last = Math.floor(now / 60) * 60;
      for (let m = last - 29 * 60; m <= last; m += 60) perMinute.push({ minute: m, completed: 0, ended: 0 });
    }
    const first = perMinute[0]?.minute ?? 0;
    const lat = new Map<TaskStage, number[]>(LATENCY_STAGES.map((x) => [x, []]));
    for (const t of this.#tasks.values()) {
      let mark: number | null = null;
      let seen = new Set<string>();
      for (const s of t.timeline) {
        const st = s.stage as TaskStage;
        if (LATENCY_STARTS.includes(st)) {
          mark = s.time;
          seen = new Set();
          continue;
        }
        if (!LATENCY_STAGES.includes(st) || seen.has(st)) continue;
        seen.add(st);
        if (mark !== null) lat.get(st)?.push((s.time - mark) * 1000);
        mark = s.time;
      }
      const end = t.timeline.find(
        (s) => s.stage === 'completed' || s.stage === 'failed' || s.stage === 'expired',
      );
      if (end && end.time >= first && perMinute.length > 0) {
        const b = perMinute[Math.floor((end.time - first) / 60)];
        if (b) {
          if (end.stage === 'completed') b.completed++;
          else b.ended++;
        }
      }
    }
    return {
      now,
      perMinute,
      stageLatency: LATENCY_STAGES.map((stage) => {
        const xs = lat.get(stage) ?? [];
        return {
          stage,
          samples: xs.length,
          meanMs: xs.length ? Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) : 0,
          maxMs: xs.length ? Math.max(...xs) : 0,
        };
      }),
      nodeEvents: [...this.#nodeEvents],
    };
  }

  /** Counts for the summary bar. */
  counts(): {
    nodes: { total: number; byRole: Record<string, number>; byStatus: Record<string, number> };
    tasks: { total: number; byStatus: Record<TaskState, number> };
    datasets: number;
    apps: number;
  } {
    const byRole: Record<string, number> = { executor: 0, verifier: 0 };
    const byStatus: Record<string, number> = { active: 0, inactive: 0, jailed: 0 };
    for (const n of this.#nodes.values()) {
      for (const r of n.roles) byRole[r] = (byRole[r] ?? 0) + 1;
      byStatus[n.status] = (byStatus[n.status] ?? 0) + 1;
    }
    const tasks = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
    for (const t of this.#tasks.values()) tasks[t.info.status]++;
    return {
      nodes: { total: this.#nodes.size, byRole, byStatus },
      tasks: { total: this.#tasks.size, byStatus: tasks },
      datasets: this.#datasets.size,
      apps: this.#apps.size,
    };
  }
}

export type TaskSummary = {
  taskId: string;
  status: TaskState;
  attempt: number;
  requester: string;
  appId: string;
  datasetIds: string[];
  executor: string | null;
  tau: number;
  threshold: number;
  passSeats: number;
  failSeats: number;
  teeKinds: string[];
  fee: string;
  expiresAt: number;
  createdBlock: string;
  createdAt: number | null;
  updatedBlock: string;
  endReason: string | null;
  /** How the app ended (exit, trap, limit), from the receipt; null until completed. */
  outcome: 'exit' | 'trap' | 'limit' | null;
  /** The app's exit code when it exited, else null. */
  appExitCode: number | null;
  limitHit: string | null;
  /**
   * The deadline closing the current stage (`stageDeadline` of src/protocol/stages.ts: kind
   * claim, evidence, vote, run or expiry, `at` in unix seconds); null for a final task.
   */
  stageDeadline: StageDeadline | null;
  /** Block time (unix s) the task entered its current status, from the timeline; null when not indexed. */
  stageSince: number | null;
};

/** The block time the task entered `status`: the stage that last moved it there, in the timeline. */
function stageSince(timeline: readonly Stage[], status: TaskState): number | null {
  let since: number | null = null;
  let current: TaskState | null = null;
  for (const s of timeline) {
    const moved = STATUS_OF_STAGE[s.stage];
    if (moved && moved !== current) {
      current = moved;
      since = s.time;
    }
  }
  return current === status ? since : null;
}

export type AttemptView = {
  attempt: number;
  seed: string | null;
  claimDeadline: number | null;
  executor: string | null;
  claims: ClaimView[];
  evidence: AttemptRec['evidence'];
  votes: VoteView[];
  tally: {
    tau: number;
    threshold: number;
    rejectAt: number;
    passSeats: number;
    failSeats: number;
    validPassSeats: number;
    validFailSeats: number;
    invalidVotes: number;
    thresholdReached: boolean;
  };
  attested: AttemptRec['attested'];
  keyReleases: AttemptRec['keyReleases'];
  endReason: string | null;
  slashed: string | null;
  outcome: string;
};

export type TaskDetail = TaskSummary & {
  inputLocation: string | null;
  windows: TaskInfo['windows'];
  deadline: number;
  totalVerifierStake: string;
  seed: string;
  evidenceHash: string;
  receiptHash: string;
  result: TaskRec['result'];
  attempts: AttemptView[];
  votes: VoteView[];
  timeline: Stage[];
};
