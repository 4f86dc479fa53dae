/**
 * The user journeys as library calls, shared by the CLI commands and `ferry demo`: add a
 * dataset (encrypt into the owner's agent store, register), publish an app, create a task,
 * follow it stage by stage (driving `timeout` when a deadline passes), explain a failure in
 * words a person can act on, and fetch and open the result.
 *
 * The owner agent reads its assets from its SQLite state and ciphertext store when it releases
 * keys and serves ciphertext, so adding an asset here writes into that same store (WAL mode
 * lets the running agent and this process share it).
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Address, Hex } from 'viem';
import { agentHome, agentStore, AgentState } from '../../agent/index.ts';
import {
  defaultVerifiers,
  encodePolicyDocument,
  policyHash,
  type Tpm2VerifierOptions,
  type AppraisalPolicy,
} from '../../attestation/index.ts';
import { eventsOfTask, eventsSince } from '../../audit/index.ts';
import {
  ATTEMPT_END_REASONS,
  type ChainReader,
  type ChainWriter,
  createApp,
  createDataset,
  createTask,
  type FerryEvent,
  getDataset,
  getNode,
  getStakeTotals,
  getTask,
  type NodeInfo,
  type TaskInfo,
  type TeeKind,
  timeoutTask,
} from '../../chain/index.ts';
import { committeeCapture, committeeCaptureForStake, committeeThresholdSeats } from '../../crypto/index.ts';
import {
  encodeCanonical,
  FerryError,
  fromHex,
  isFerryError,
  toFerryError,
  toHex,
} from '../../kernel/index.ts';
import { createPeerClient } from '../../net/index.ts';
import {
  appraiseAttempt,
  attemptFacts,
  attemptPolicies,
  executorBaseUrl,
  fetchServedEvidence,
  PolicyBook,
  type PolicySubject,
  refusalsOf,
  type ProgressEvent,
  type ProgressStage,
  PROGRESS_STAGES,
  ProgressTimeline,
  isFinal,
  STAKE_UNIT,
  timeoutDue,
} from '../../protocol/index.ts';
import type { ProfileSecrets } from '../../profile/index.ts';

const sha256 = (b: Uint8Array | string) => new Uint8Array(createHash('sha256').update(b).digest());

// --- committee --------------------------------------------------------------------------------

export type CommitteeFigures = {
  tau: number;
  threshold: number;
  adversary: number;
  capture: number;
  livenessFailure: number;
  model: 'poisson' | 'binomial';
  totalStakeUnits?: string;
};

/**
 * The capture and liveness-failure probabilities of a committee (tau, threshold seats) against
 * an adversary with stake fraction `adversary`. With the network's current verifier stake
 * known (W units of 10^15 wei, W < 2^53), the exact binomial model of the sortition rule: every
 * stake unit is a seat with p = min(1, tau / W) (sortitionSeats gives a node all its units as
 * seats when tau >= W, so then the figures are 0 or 1: the committee is every verifier with all
 * its stake). Without it, the Poisson model.
 */
export function committeeFigures(
  tau: number,
  threshold: number,
  adversary: number,
  verifierStakeWei: bigint | null,
): CommitteeFigures {
  const W = verifierStakeWei === null ? 0n : verifierStakeWei / STAKE_UNIT;
  if (W > 0n && W < 2n ** 53n) {
    const A = BigInt(Math.round(adversary * Number(W)));
    if (A < W) {
      // The seat count first (a fraction is of the task's tau), then p clamped at 1 as on chain.
      const t = committeeThresholdSeats({ tau, threshold });
      const s = committeeCaptureForStake({
        tau: Math.min(tau, Number(W)),
        threshold: t,
        adversaryStake: A,
        totalStake: W,
      });
      return { tau, threshold, adversary, ...s, model: 'binomial', totalStakeUnits: W.toString() };
    }
  }
  return { tau, threshold, adversary, ...committeeCapture({ tau, threshold, adversary }), model: 'poisson' };
}

export type CommitteeSeating = {
  /** Active verifiers now. */
  verifiers: number;
  /** Their stake, in units of 10^15 wei (the sortition's seats). */
  stakeUnits: string;
  /** tau >= the verifier stake: every verifier sits, each with all its stake units as seats. */
  everyVerifierSits: boolean;
  /** Each verifier's seats when every verifier sits with the same stake, else null. */
  seatsPerVerifier: number | null;
  /** When every verifier sits with the same stake: how many verifiers' pass votes reach the threshold. */
  thresholdVerifiers: number | null;
  /** Expected number of verifiers holding at least one seat for a task. */
  expectedVerifiers: number;
  /** One line for a person: what tau and the threshold mean on this network. */
  text: string;
};

/**
 * What a committee (tau, threshold seats) means on a network whose active verifiers stake
 * `stakeWei` each: seats are stake units (10^15 wei), each a seat with p = min(1, tau / W), so a
 * verifier with w units holds Binomial(w, p) seats. When tau >= W every verifier sits with all
 * its units; the line then counts verifiers (e.g. "all 5 verifiers sit, 1000 seats each (their
 * stake in units of 10^15 wei); 4000 of 5000 seats must pass = 4 of 5 verifiers").
 */
export function committeeSeating(
  tau: number,
  threshold: number,
  stakeWei: readonly bigint[],
): CommitteeSeating {
  const units = stakeWei.map((w) => w / STAKE_UNIT).filter((w) => w > 0n);
  const W = units.reduce((a, b) => a + b, 0n);
  const n = units.length;
  if (n === 0) {
    return {
      verifiers: 0,
      stakeUnits: '0',
      everyVerifierSits: false,
      seatsPerVerifier: null,
      thresholdVerifiers: null,
      expectedVerifiers: 0,
      text: `no active verifier stakes yet: tau ${tau}, threshold ${threshold} seats (seats are stake units of 10^15 wei)`,
    };
  }
  const every = BigInt(tau) >= W;
  const same = units.every((u) => u === units[0]);
  const per = same ? Number(units[0]) : null;
  const p = every ? 1 : tau / Number(W);
  const expectedVerifiers = units.reduce((a, u) => a + (1 - (1 - p) ** Number(u)), 0);
  if (every) {
    const thresholdVerifiers = per !== null ? Math.ceil(threshold / per) : null;
    const seats = per !== null ? `${per} seats each` : 'all their stake units as seats';
    const need =
      thresholdVerifiers === null
        ? `${threshold} of ${W} seats must pass`
        : thresholdVerifiers > n
          ? `${threshold} of ${W} seats must pass: more than all ${n} verifiers hold, no task can be attested`
          : `${threshold} of ${W} seats must pass = ${thresholdVerifiers} of ${n} verifiers`;
    return {
      verifiers: n,
      stakeUnits: W.toString(),
      everyVerifierSits: true,
      seatsPerVerifier: per,
      thresholdVerifiers: thresholdVerifiers !== null && thresholdVerifiers <= n ? thresholdVerifiers : null,
      expectedVerifiers: n,
      text: `all ${n} verifier${n === 1 ? '' : 's'} sit with ${seats} (a seat is a stake unit of 10^15 wei, and tau ${tau} covers the whole verifier stake of ${W} units); ${need}`,
    };
  }
  return {
    verifiers: n,
    stakeUnits: W.toString(),
    everyVerifierSits: false,
    seatsPerVerifier: null,
    thresholdVerifiers: null,
    expectedVerifiers,
    text:
      `tau ${tau} of ${W} stake units (10^15 wei each; ${n} verifier${n === 1 ? '' : 's'}): each unit is a seat with p = ${Number(p.toPrecision(3))}, ` +
      `about ${Number(expectedVerifiers.toPrecision(3))} verifier(s) sit per task; ${threshold} pass seats decide`,
  };
}

/** The stakes (wei) of the active verifiers now (from the registry). */
export async function activeVerifierStakes(c: ChainReader): Promise<bigint[]> {
  return (await listNodes(c))
    .filter((x) => x.roles.includes('verifier') && x.status === 'active')
    .map((x) => x.stake);
}

// --- assets -------------------------------------------------------------------------------------

export type AddDatasetParams = {
  env: NodeJS.ProcessEnv;
  profile: string;
  secrets: ProfileSecrets;
  chain: ChainWriter;
  /** The owner agent's URL (registered as the dataset's endpoint). */
  endpoint: string;
  source: string | Readable;
  name: string;
  regions: string[];
  allowApps: Hex[] | 'any';
  tee: TeeKind[];
  tau: number;
  threshold: number;
  maxUses: number;
  expiresAt: number;
  requesters: Address[];
  policy: AppraisalPolicy;
  price: bigint;
  signal?: AbortSignal;
};

export type AddedDataset = {
  datasetId: bigint;
  localId: string;
  ciphertextHash: string;
  size: number;
  appraisalPolicyHash: string;
  txHash: string;
};

function openAgentState(env: NodeJS.ProcessEnv, profile: string): { home: string; state: AgentState } {
  const home = agentHome(profile, env);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  return { home, state: AgentState.open(join(home, 'state.db')) };
}

/** Encrypts a dataset into the owner's agent store and registers it on chain. */
export async function addDataset(p: AddDatasetParams): Promise<AddedDataset> {
  const { home, state } = openAgentState(p.env, p.profile);
  try {
    const store = agentStore(home, state, p.secrets.ageIdentity);
    const asset = await store.add(p.source, { kind: 'dataset', name: p.name, signal: p.signal });
    const ph = policyHash(p.policy);
    let reg: Awaited<ReturnType<typeof createDataset>>;
    try {
      reg = await createDataset(p.chain, {
        ciphertextHash: asset.ciphertextSha256,
        endpoint: p.endpoint,
        price: p.price,
        policy: {
          allowedApps: p.allowApps,
          allowedRegions: p.regions,
          teeKinds: p.tee,
          tau: p.tau,
          threshold: p.threshold,
          maxUses: p.maxUses,
          expiresAt: p.expiresAt,
          requesters: p.requesters,
          appraisalPolicyDocument: encodePolicyDocument(p.policy),
          appraisalPolicyHash: ph,
        },
      });
    } catch (e) {
      await store.remove(asset.id).catch(() => {});
      throw e;
    }
    state.markAssetRegistered(asset.id, reg.datasetId);
    return {
      datasetId: reg.datasetId,
      localId: asset.id,
      ciphertextHash: toHex(asset.ciphertextSha256),
      size: asset.size,
      appraisalPolicyHash: toHex(ph),
      txHash: reg.hash,
    };
  } finally {
    state.close();
  }
}

export type PublishedApp = {
  appId: bigint;
  localId: string;
  measurement: string;
  ciphertextHash: string;
  size: number;
  appraisalPolicyHash: string;
  txHash: string;
};

/**
 * Encrypts a WASM app into the owner's agent store and registers it (measurement = SHA-256)
 * with the TEE kinds and appraisal policy its owner requires of every task.
 */
export async function publishApp(p: {
  env: NodeJS.ProcessEnv;
  profile: string;
  secrets: ProfileSecrets;
  chain: ChainWriter;
  endpoint: string;
  file: string;
  name: string;
  price: bigint;
  tee: TeeKind[];
  policy: AppraisalPolicy;
  signal?: AbortSignal;
}): Promise<PublishedApp> {
  const { home, state } = openAgentState(p.env, p.profile);
  try {
    const store = agentStore(home, state, p.secrets.ageIdentity);
    const asset = await store.add(p.file, { kind: 'app', name: p.name, signal: p.signal });
    const ph = policyHash(p.policy);
    let reg: Awaited<ReturnType<typeof createApp>>;
    try {
      reg = await createApp(p.chain, {
        measurement: asset.measurement!,
        ciphertextHash: asset.ciphertextSha256,
        endpoint: p.endpoint,
        price: p.price,
        teeKinds: p.tee,
        appraisalPolicyDocument: encodePolicyDocument(p.policy),
        appraisalPolicyHash: ph,
      });
    } catch (e) {
      await store.remove(asset.id).catch(() => {});
      throw e;
    }
    state.markAssetRegistered(asset.id, reg.appId);
    return {
      appId: reg.appId,
      localId: asset.id,
      measurement: toHex(asset.measurement!),
      ciphertextHash: toHex(asset.ciphertextSha256),
      size: asset.size,
      appraisalPolicyHash: toHex(ph),
      txHash: reg.hash,
    };
  } finally {
    state.close();
  }
}

// --- nodes ----------------------------------------------------------------------------------------

/** Every registered node (from NodeRegistered events), with its current registry entry. */
export async function listNodes(c: ChainReader): Promise<NodeInfo[]> {
  const events = await eventsSince(c, 0n);
  const seen = new Set<string>();
  const out: NodeInfo[] = [];
  for (const e of events) {
    if (e.eventName !== 'NodeRegistered') continue;
    const a = String(e.args.node);
    if (seen.has(a.toLowerCase())) continue;
    seen.add(a.toLowerCase());
    const n = await getNode(c, a as Address);
    if (n) out.push(n);
  }
  return out;
}

/**
 * Refuses a task no executor could run: none active with the executor role, a TEE kind every
 * dataset allows, and a region every dataset allows. TASK_FAILED naming what is missing.
 */
export async function preflightExecutors(c: ChainReader, datasetIds: bigint[]): Promise<number> {
  const regions: string[][] = [];
  let kinds: TeeKind[] | null = null;
  for (const d of datasetIds) {
    const ds = await getDataset(c, d);
    if (!ds) {
      throw new FerryError('CHAIN_NOT_FOUND', `dataset ${d} does not exist`, {
        hints: ['list datasets with: ferry dataset ls'],
      });
    }
    if (ds.policy.allowedRegions.length > 0) regions.push(ds.policy.allowedRegions);
    kinds = kinds === null ? ds.policy.teeKinds : kinds.filter((k) => ds.policy.teeKinds.includes(k));
  }
  const executors = (await listNodes(c)).filter((n) => n.roles.includes('executor') && n.status === 'active');
  const inRegion = executors.filter((n) => regions.every((r) => r.includes(n.region)));
  const eligible = inRegion.filter((n) => n.teeKinds.some((k) => (kinds ?? []).includes(k)));
  if (eligible.length > 0) return eligible.length;
  const want = regions.length > 0 ? regions.map((r) => r.join('/')).join(' and ') : 'any region';
  if (inRegion.length === 0) {
    throw new FerryError('TASK_FAILED', `no executor in region ${want}`, {
      hints: [
        `active executors: ${executors.length ? executors.map((n) => `${n.address.slice(0, 10)}… in ${n.region}`).join(', ') : 'none'}`,
        "the dataset's policy allows executors only in its regions; ask the data owner, or wait for an executor there",
      ],
    });
  }
  throw new FerryError(
    'TASK_FAILED',
    `no executor with a TEE kind the datasets allow (${(kinds ?? []).join(', ') || 'none'})`,
    {
      hints: [`executors in ${want}: ${inRegion.map((n) => n.teeKinds.join('/')).join(', ')}`],
    },
  );
}

// --- tasks -----------------------------------------------------------------------------------------

export type TaskWindows = { claim: number; evidence: number; vote: number; run: number };

export const DEFAULT_WINDOWS: TaskWindows = { claim: 3, evidence: 30, vote: 30, run: 60 };

/** The task's input hash: SHA-256 of the canonical CBOR array of the app's arguments. */
export function inputHashOf(args: string[]): Uint8Array {
  return sha256(encodeCanonical(args));
}

/** Creates a task for the requester; the result is sealed to the profile's age recipient. */
export async function createTaskFor(p: {
  chain: ChainWriter;
  secrets: ProfileSecrets;
  appId: bigint;
  datasetIds: bigint[];
  args: string[];
  fee: bigint;
  ttlSeconds: number;
  windows?: TaskWindows;
}): Promise<{ taskId: bigint; txHash: string; startedAt: number }> {
  const startedAt = Date.now();
  const w = p.windows ?? DEFAULT_WINDOWS;
  const now = Number((await p.chain.public.getBlock()).timestamp);
  try {
    const r = await createTask(p.chain, {
      appId: p.appId,
      datasetIds: [...p.datasetIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      inputHash: inputHashOf(p.args),
      resultRecipient: p.secrets.ageIdentity.publicKey,
      inputLocation: p.args.length
        ? `data:application/json,${encodeURIComponent(JSON.stringify(p.args))}`
        : '',
      fee: p.fee,
      expiresAt: now + p.ttlSeconds,
      claimWindow: w.claim,
      evidenceWindow: w.evidence,
      voteWindow: w.vote,
      runWindow: w.run,
    });
    return { taskId: r.taskId, txHash: r.hash, startedAt };
  } catch (e) {
    throw explainCreateError(e, p.appId);
  }
}

/** A contract refusal at creation, in words (the code stays the CHAIN_* one). */
export function explainCreateError(e: unknown, appId: bigint): FerryError {
  const fe = toFerryError(e);
  const revert = (fe.details?.revert as string | undefined) ?? '';
  const words: Record<string, string> = {
    AppNotAllowed: "app not allowed by the dataset's policy",
    RequesterNotAllowed: "requester not allowed by the dataset's policy",
    NoCommonTeeKind: 'the datasets share no TEE kind',
    UsesExhausted: 'the dataset has no uses left',
    AssetExpired: 'the dataset has expired',
    AssetRevoked: 'the app or a dataset is revoked',
    InsufficientFee: 'the fee does not cover the prices',
    UnknownApp: `app ${appId} does not exist`,
    UnknownDataset: 'a dataset does not exist',
  };
  const w = words[revert];
  if (!w) return fe;
  return new FerryError(fe.code, `${w}: ${fe.message}`, { hints: fe.hints, cause: fe, details: fe.details });
}

/** The stages a task goes through, in order, as `stagesMs` keys (src/protocol/stages.ts). */
export const STAGES = PROGRESS_STAGES;
export type Stage = ProgressStage;
export type StageEvent = ProgressEvent;

export type WaitResult = {
  task: TaskInfo;
  events: FerryEvent[];
  /** The completing (or last) attempt's stage times, ms since creation. */
  stagesMs: Partial<Record<Stage, number>>;
  timeline: StageEvent[];
};

/**
 * Follows a task until it is final: polls its events, reports each stage once per attempt
 * (`onStage`), and, with a writer, calls `timeout` when the current stage's deadline or the
 * task's expiry has passed (anyone may), so a stuck task ends instead of hanging.
 */
export async function waitForTask(
  c: ChainReader | ChainWriter,
  taskId: bigint,
  opts: {
    startedAt: number;
    onStage?: (s: StageEvent) => void;
    signal?: AbortSignal;
    pollMs?: number;
    maxWaitMs?: number;
  },
): Promise<WaitResult> {
  const first = await getTask(c, taskId);
  if (!first) throw new FerryError('TASK_NOT_FOUND', `task ${taskId} does not exist`);
  let from = first.createdBlock;
  const events: FerryEvent[] = [];
  const progress = new ProgressTimeline(first.attempt);
  let lastTimeout = 0;
  const deadline = Date.now() + (opts.maxWaitMs ?? 30 * 60_000);
  for (;;) {
    opts.signal?.throwIfAborted();
    // The task first, then the head (uncached): every event up to the state read is fetched.
    const task = (await getTask(c, taskId))!;
    const head = await c.public.getBlockNumber({ cacheTime: 0 });
    if (head >= from) {
      const fresh = eventsOfTask(await eventsSince(c, from, head), taskId);
      from = head + 1n;
      for (const e of fresh) {
        events.push(e);
        const line = progress.add(e, task, Date.now() - opts.startedAt);
        if (line) opts.onStage?.(line);
      }
    }
    if (isFinal(task.status)) {
      return { task, events, stagesMs: progress.stagesMs, timeline: progress.timeline };
    }
    if (Date.now() > deadline) {
      throw new FerryError('TIMEOUT', `task ${taskId} is still ${task.status}`, {
        hints: [`follow it with: ferry task show ${taskId}`],
      });
    }
    if ('wallet' in c && Date.now() - lastTimeout > 2000) {
      const now = Number((await c.public.getBlock()).timestamp);
      if (timeoutDue(task, now)) {
        lastTimeout = Date.now();
        try {
          await timeoutTask(c, taskId);
        } catch (e) {
          // Too early by the chain's clock, or someone else moved the task on: poll again.
          if (!isFerryError(e)) throw e;
        }
      }
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 200));
  }
}

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
  opts: { simRoots?: Uint8Array[]; tpm2?: Tpm2VerifierOptions } = {},
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
  trust: { simRoots?: Uint8Array[]; tpm2?: Tpm2VerifierOptions },
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

/** Fetches the result ciphertext from the executor (public route), bounded. */
export async function fetchResult(location: string, signal?: AbortSignal): Promise<Uint8Array> {
  const base = location.replace(/\/v1\/tasks\/.*$/, '');
  const peer = createPeerClient({ baseUrl: base, timeoutMs: 30_000 });
  return peer.bytes('GET', location.slice(base.length), { signal, maxBytes: 64 << 20 });
}

/** The verifier stake now, for committee figures (null when unreadable). */
export async function currentVerifierStake(c: ChainReader): Promise<bigint | null> {
  try {
    return (await getStakeTotals(c)).verifierStake;
  } catch {
    return null;
  }
}
