/**
 * The auditor's check of a completed task from chain data alone (docs/protocol.md section 15):
 * the winning claim, the evidence and its binding to the enclave keys, its re-appraisal under
 * the datasets' appraisal policies, every vote's VRF proof and seats, the threshold, the key
 * releases, and the receipt (signature by the attested enclave key, and every hash it names
 * against the chain). Each check is a named line with `ok` and a reason; the report is
 * `verified` only when every check passed.
 *
 * What cannot come from the chain: the evidence bytes and the enclave's X25519 key are fetched
 * from the executor's endpoint named in `EvidenceCommitted` (public routes), or taken from a
 * receipt bundle; the evidence is then checked against the hash committed on chain.
 */
import { createHash } from 'node:crypto';
import type { Hex } from 'viem';
import { defaultVerifiers, type AppraisalPolicy } from '../attestation/index.ts';
import type { Tpm2VerifierOptions } from '../attestation/tpm2/index.ts';
import {
  type ChainReader,
  claimRecord,
  type FerryEvent,
  getApp,
  getDataset,
  getTask,
  type NodeInfo,
  type TaskState,
} from '../chain/index.ts';
import { claimAlpha, verifierAlpha } from '../crypto/vrf/index.ts';
import { decodeReceipt, type Receipt, verifyReceipt } from '../enclave/index.ts';
import { encodeCanonical, equalBytes, FerryError, fromHex, toFerryError, toHex } from '../kernel/index.ts';
import { createPeerClient } from '../net/index.ts';
import {
  type AttemptFacts,
  appraiseAttempt,
  attemptFacts,
  attemptPolicies,
  commitmentsHash,
  decodeEvidence,
  executorBaseUrl,
  fetchServedEvidence,
  reportDataFor,
  nodeAtCreation,
  PolicyBook,
  type PolicySubject,
  type JudgedClaim,
  judgeClaimEvent,
  judgeVoteEvent,
  judgeWinningClaim,
} from '../protocol/index.ts';
import { eventsOfAttempt, eventsOfTask, eventsSince } from './events.ts';

/** One named check of the audit. */
export type AuditCheck = { name: string; ok: boolean; detail: string };

export type AuditReport = {
  taskId: bigint;
  /** The attempt that completed (null when the task did not complete). */
  attempt: number | null;
  status: TaskState;
  /** True when every check passed. */
  verified: boolean;
  checks: AuditCheck[];
  /** The receipt as posted on chain (decoded), when there is one. */
  receipt: Receipt | null;
  receiptBytes: Uint8Array | null;
  signature: Uint8Array | null;
  evidence: Uint8Array | null;
  enclave: { x25519Pub: Uint8Array; ed25519Pub: Uint8Array } | null;
  resultHash: Uint8Array | null;
  resultLocation: string | null;
};

export type AuditOptions = {
  /** The chain id (read from the endpoint when omitted). */
  chainId?: number;
  /** Evidence and enclave keys from a saved bundle instead of the executor's endpoint. */
  evidence?: { bytes: Uint8Array; x25519Pub: Uint8Array; ed25519Pub: Uint8Array };
  /** A saved receipt and signature that must be the ones posted on chain. */
  savedReceipt?: { receipt: Uint8Array; signature: Uint8Array };
  /** The result ciphertext, to check against the receipt's result hash. */
  resultCiphertext?: Uint8Array;
  /** Trusted simulation roots (Ed25519 public keys), needed to appraise `sim` evidence. */
  simRoots?: Uint8Array[];
  /** TPM trust (EK/AK CAs, activators), needed to appraise `tpm2` evidence. */
  tpm2?: Tpm2VerifierOptions;
  /** Appraisal policies known besides the built-in production and development ones. */
  policies?: AppraisalPolicy[];
  /** Timeout of each request to the executor, ms (default 10 000). */
  timeoutMs?: number;
  signal?: AbortSignal;
};

/** Every check name, in the order they appear in a report. */
export const AUDIT_CHECKS = [
  'task-completed',
  'seed',
  'claim-vrf',
  'claim-lowest',
  'evidence-hash',
  'evidence-binding',
  'evidence-appraisal',
  'votes-vrf',
  'votes-seats',
  'votes-threshold',
  'key-releases',
  'receipt-hash',
  'receipt-signature',
  'receipt-task',
  'receipt-commitments',
  'receipt-app',
  'receipt-datasets',
  'receipt-input',
  'receipt-result',
] as const;

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
const bytes = (h: unknown) => fromHex(String(h), 'hex');
const hex0x = (b: Uint8Array) => `0x${toHex(b)}`;
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * The node as frozen for the task (end of block createdBlock - 1); null when it was not
 * registered then or its state then cannot be read (the reason goes to `unreadable`).
 */
async function frozenNode(
  c: ChainReader,
  who: string,
  createdBlock: bigint,
  unreadable: string[],
): Promise<NodeInfo | null> {
  try {
    return await nodeAtCreation(c, who, { createdBlock });
  } catch (e) {
    unreadable.push(`${who}: ${toFerryError(e).code}`);
    return null;
  }
}

function policyName(p: AppraisalPolicy): string {
  return (p as { name?: string }).name ?? 'policy';
}

/**
 * Audits task `taskId`. Throws TASK_NOT_FOUND when there is no such task and CHAIN_UNAVAILABLE
 * when the chain cannot be read; everything else (including an unreachable executor) becomes a
 * failed check, so the report always says what could and could not be verified.
 */
export async function verifyTaskFromChain(
  c: ChainReader,
  taskId: bigint,
  opts: AuditOptions = {},
): Promise<AuditReport> {
  const task = await getTask(c, taskId);
  if (!task) {
    throw new FerryError('TASK_NOT_FOUND', `task ${taskId} does not exist on this chain`, {
      hints: ['check the task id and the network (--rpc, --contracts, or $FERRY_HOME/devnet.json)'],
    });
  }
  const chainId = opts.chainId ?? (await c.public.getChainId());
  const checks: AuditCheck[] = [];
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  const report: AuditReport = {
    taskId,
    attempt: null,
    status: task.status,
    verified: false,
    checks,
    receipt: null,
    receiptBytes: null,
    signature: null,
    evidence: null,
    enclave: null,
    resultHash: null,
    resultLocation: null,
  };
  const all = eventsOfTask(await eventsSince(c, task.createdBlock), taskId);
  const completed = all.find((e) => e.eventName === 'TaskCompleted');
  if (task.status !== 'completed' || !completed) {
    check('task-completed', false, `the task is ${task.status}; only a completed task has a receipt`);
    return report;
  }
  const attempt = Number(completed.args.attempt);
  report.attempt = attempt;
  const executor = String(completed.args.executor);
  check('task-completed', true, `completed in attempt ${attempt} by executor ${executor}`);
  const events = eventsOfAttempt(all, taskId, attempt);
  const created = all.find((e) => e.eventName === 'TaskCreated');
  const one = (name: string): FerryEvent | undefined => events.find((e) => e.eventName === name);

  // --- seed ------------------------------------------------------------------------------
  const seeded = one('TaskSeeded');
  const seed = bytes(task.seed);
  check(
    'seed',
    seeded !== undefined && same(String(seeded.args.seed), task.seed),
    seeded ? `attempt ${attempt} seed ${task.seed.slice(0, 18)}… from TaskSeeded` : 'no TaskSeeded event',
  );
  const alphaParams = { chainId: BigInt(chainId), taskId, attempt, seed };
  // The attempt's commitments and the kinds it allows, recomputed from the chain (§8.1, §9.4).
  let facts: AttemptFacts | null = null;
  let factsError = '';
  try {
    facts = await attemptFacts(c, { chainId, task });
  } catch (e) {
    const fe = toFerryError(e);
    factsError = `cannot read the task's commitments: ${fe.code} ${fe.message}`;
  }

  // --- the winning claim ------------------------------------------------------------------
  // The one rule for a recorded claim (protocol judgeClaimEvent, judgeWinningClaim): an active
  // executor with stake then, its VRF proof over claimAlpha under the key registered then, and
  // the best claim ranking lowest by x / stake (§11.3, compareClaims), as the contract ranks them.
  const claimAlphaBytes = claimAlpha(alphaParams);
  const judged: JudgedClaim[] = [];
  const unreadable: string[] = [];
  for (const cl of events.filter((e) => e.eventName === 'TaskClaimed')) {
    const who = String(cl.args.executor);
    const node = await frozenNode(c, who, task.createdBlock, unreadable);
    const claim = { vrfOutput: bytes(cl.args.vrfOutput), vrfProof: bytes(cl.args.vrfProof) };
    judged.push({
      executor: who,
      vrfOutput: claim.vrfOutput,
      node,
      judgement: judgeClaimEvent({ node, alpha: claimAlphaBytes, claim }),
      record: node === null ? null : claimRecord(attempt, who as Hex, { seed, ...claim }),
    });
  }
  const won = judgeWinningClaim({ executor, bestOutput: task.bestOutput }, judged);
  const winnerOk = won.reason === null || won.reason === 'not-lowest';
  check(
    'claim-vrf',
    winnerOk,
    won.winner === null || won.winner.node === null || won.winner.node?.stake === 0n
      ? "the executor's winning claim is not among the attempt's TaskClaimed events"
      : winnerOk
        ? "the executor's VRF proof verifies over claimAlpha under its registered VRF key"
        : won.reason === 'not-eligible'
          ? "the executor was not an active executor at the task's creation"
          : "the executor's VRF proof does not verify over claimAlpha under its registered VRF key",
  );
  check(
    'claim-lowest',
    won.reason === null,
    `${won.valid} valid claim(s)${won.invalid ? `, ${won.invalid} invalid ignored` : ''}; ${
      won.reason === null
        ? "the executor's output ranks lowest by output / stake"
        : "the executor's output does not rank lowest (output / stake) among the valid ones"
    }`,
  );

  // --- evidence ---------------------------------------------------------------------------
  const committed = one('EvidenceCommitted');
  const receiptBytes = bytes(completed.args.receipt);
  const signature = bytes(completed.args.signature);
  report.receiptBytes = receiptBytes;
  report.signature = signature;
  report.resultHash = bytes(completed.args.resultHash);
  report.resultLocation = String(completed.args.resultLocation);
  let receipt: Receipt | null = null;
  try {
    receipt = decodeReceipt(receiptBytes);
    report.receipt = receipt;
  } catch {
    receipt = null;
  }
  let evidenceBytes: Uint8Array | null = null;
  let x25519Pub: Uint8Array | null = null;
  let fetchError = '';
  if (!committed) {
    fetchError = 'no EvidenceCommitted event for the attempt';
  } else if (opts.evidence) {
    evidenceBytes = opts.evidence.bytes;
    x25519Pub = opts.evidence.x25519Pub;
  } else {
    const location = String(committed.args.evidenceLocation);
    const base = executorBaseUrl(location);
    try {
      const peer = createPeerClient({ baseUrl: base, timeoutMs: opts.timeoutMs ?? 10_000 });
      ({ evidenceBytes, x25519Pub } = await fetchServedEvidence(peer, taskId, attempt, opts.signal));
    } catch (e) {
      const fe = toFerryError(e);
      fetchError = `cannot fetch the evidence from ${base}: ${fe.code} ${fe.message}`;
    }
  }
  report.evidence = evidenceBytes;
  const committedHash = committed ? bytes(committed.args.evidenceHash) : null;
  check(
    'evidence-hash',
    evidenceBytes !== null && committedHash !== null && equalBytes(sha256(evidenceBytes), committedHash),
    evidenceBytes === null
      ? fetchError
      : `SHA-256 of the evidence ${committedHash && equalBytes(sha256(evidenceBytes), committedHash) ? 'equals' : 'differs from'} the hash committed on chain`,
  );
  let evidence: ReturnType<typeof decodeEvidence> | null = null;
  let bindingOk = false;
  let bindingDetail = fetchError || factsError || 'no evidence';
  if (evidenceBytes && x25519Pub && facts) {
    try {
      evidence = decodeEvidence(evidenceBytes);
      if (!receipt) {
        bindingDetail = 'the receipt does not decode, so its enclave key is unknown';
      } else {
        const expectedReportData = reportDataFor({
          commitments: facts.commitments,
          x25519Pub,
          ed25519Pub: receipt.enclaveKey,
        });
        bindingOk = equalBytes(evidence.reportData, expectedReportData);
        bindingDetail = bindingOk
          ? `report_data binds the receipt's signing key and the X25519 key to the task's commitments (chain ${chainId}, task ${taskId}, attempt ${attempt}, seed, app, input, result recipient, datasets)`
          : "report_data does not bind the receipt's signing key and the enclave's X25519 key to this attempt's commitments";
        report.enclave = { x25519Pub, ed25519Pub: receipt.enclaveKey };
      }
    } catch (e) {
      bindingDetail = `the evidence does not decode: ${toFerryError(e).message}`;
    }
  }
  check('evidence-binding', bindingOk, bindingDetail);

  // Re-appraisal under every policy that applies (the app's and each dataset's, §9.4), with the
  // TEE kinds the task and the executor allow, as of the commitment's block time.
  let appraisalOk = false;
  let appraisalDetail = factsError || 'no evidence to appraise';
  if (evidenceBytes && x25519Pub && receipt && facts && committed && committedHash) {
    const policies = new PolicyBook({ allowSim: true, extra: opts.policies ?? [] });
    const registry = defaultVerifiers({
      sim: opts.simRoots?.length ? { roots: opts.simRoots } : undefined,
      tpm2: opts.tpm2,
    });
    const at = new Date(
      Number((await c.public.getBlock({ blockNumber: committed.blockNumber })).timestamp) * 1000,
    );
    let found: Awaited<ReturnType<typeof attemptPolicies>> | null = null;
    try {
      found = await attemptPolicies(c, task, (s: PolicySubject, h: Hex) =>
        policies.resolve(c, { kind: s.assetKind, id: s.assetId }, h),
      );
    } catch (e) {
      const fe = toFerryError(e);
      appraisalDetail = `an appraisal policy cannot be resolved: ${fe.code} ${fe.message}`;
    }
    if (found && 'unapplied' in found) {
      appraisalDetail = `the appraisal policy of ${found.unapplied.assetKind} ${found.unapplied.assetId} is unknown to the auditor`;
    } else if (found) {
      const a = await appraiseAttempt({
        commitments: facts.commitments,
        committedEvidenceHash: committedHash,
        evidenceBytes,
        x25519Pub,
        ed25519Pub: receipt.enclaveKey,
        taskKinds: facts.taskKinds,
        executorKinds: facts.executorKinds,
        policies: found.policies,
        registry,
        now: at,
      });
      appraisalOk = a.accepted;
      const parts = a.reasons.map((r) => `${r.code}: ${r.message}`);
      for (const e of a.entries) {
        parts.push(
          e.appraisal.accepted
            ? `${e.assetKind} ${e.assetId}: accepted under the ${policyName(e.policy)} policy (kind ${e.appraisal.kind}, status ${e.appraisal.status})`
            : `${e.assetKind} ${e.assetId}: rejected under the ${policyName(e.policy)} policy: ${e.appraisal.reasons
                .slice(0, 3)
                .map((r) => r.code)
                .join(', ')}`,
        );
      }
      appraisalDetail = parts.join('; ');
    }
  }
  check('evidence-appraisal', appraisalOk, appraisalDetail);

  // --- votes ------------------------------------------------------------------------------
  const verAlpha = verifierAlpha(alphaParams);
  const votes = events.filter((e) => e.eventName === 'VoteCast');
  let vrfBad = 0;
  let seatsBad = 0;
  let passSeats = 0;
  let passVoters = 0;
  const executorNode = await frozenNode(c, executor, task.createdBlock, unreadable);
  for (const v of votes) {
    const who = String(v.args.verifier);
    const node = await frozenNode(c, who, task.createdBlock, unreadable);
    const seats = Number(v.args.seats);
    // The relying parties' rule (protocol judgeVoteEvent): eligible then, neither the executor
    // nor of its operator, the proof verifying under the key registered then, and the seats.
    const { reason } = judgeVoteEvent({
      node,
      voter: who,
      executor,
      executorNode,
      alpha: verAlpha,
      task,
      vote: { seats, vrfOutput: bytes(v.args.vrfOutput), vrfProof: bytes(v.args.vrfProof) },
    });
    if (reason === 'seats') {
      seatsBad++;
      continue;
    }
    if (reason !== null) {
      vrfBad++;
      continue;
    }
    if (v.args.pass === true) {
      passSeats += seats;
      passVoters++;
    }
  }
  check(
    'votes-vrf',
    votes.length > 0 && vrfBad === 0,
    `${votes.length - vrfBad} of ${votes.length} vote(s) come from verifiers eligible at the task's creation (active, not the executor, not of its operator) with a VRF proof over verifierAlpha that verifies under the key registered then${
      unreadable.length ? `; registry state unreadable for ${unreadable.join(', ')}` : ''
    }`,
  );
  check(
    'votes-seats',
    votes.length > 0 && seatsBad === 0 && vrfBad === 0,
    `${votes.length - vrfBad - seatsBad} of ${votes.length} vote(s) claim no more seats than sortition gives (stake at block ${task.createdBlock - 1n}, the block before the task's creation; total ${task.totalVerifierStake} wei, tau ${task.tau})`,
  );
  check(
    'votes-threshold',
    passSeats >= task.threshold,
    `valid pass seats ${passSeats} from ${passVoters} verifier(s); threshold ${task.threshold}`,
  );

  // --- key releases -------------------------------------------------------------------------
  const releases = events.filter((e) => e.eventName === 'KeyReleased');
  const assets = [task.appId, ...task.datasetIds];
  let releasesOk = true;
  const missing: string[] = [];
  for (let i = 0; i < assets.length; i++) {
    const owner = i === 0 ? (await getApp(c, assets[i]))?.owner : (await getDataset(c, assets[i]))?.owner;
    const r = releases.find((e) => Number(e.args.assetIndex) === i);
    if (!r || !owner || !same(String(r.args.owner), owner)) {
      releasesOk = false;
      missing.push(i === 0 ? `app ${assets[i]}` : `dataset ${assets[i]}`);
    }
  }
  check(
    'key-releases',
    releasesOk,
    releasesOk
      ? `every asset's owner recorded its key release (${assets.length})`
      : `no release by the owner recorded for ${missing.join(', ')}`,
  );

  // --- receipt -------------------------------------------------------------------------------
  const rh = sha256(receiptBytes);
  check(
    'receipt-hash',
    same(hex0x(rh), task.receiptHash),
    `SHA-256 of the posted receipt ${same(hex0x(rh), task.receiptHash) ? 'equals' : 'differs from'} the task's receiptHash`,
  );
  let sigOk = false;
  let sigDetail = '';
  if (!receipt) sigDetail = 'the receipt does not decode';
  else {
    try {
      verifyReceipt(receiptBytes, signature, receipt.enclaveKey);
      sigOk = bindingOk;
      sigDetail = bindingOk
        ? 'Ed25519 signature verifies under the enclave key bound in the evidence'
        : 'the signature verifies, but its key is not bound in accepted evidence';
    } catch (e) {
      sigDetail = toFerryError(e).message;
    }
  }
  if (opts.savedReceipt) {
    const sameReceipt =
      equalBytes(opts.savedReceipt.receipt, receiptBytes) &&
      equalBytes(opts.savedReceipt.signature, signature);
    if (!sameReceipt) {
      sigOk = false;
      sigDetail = 'the saved receipt or signature is not the one posted on chain';
    } else sigDetail += '; the saved receipt is the one posted on chain';
  }
  check('receipt-signature', sigOk, sigDetail);
  if (!receipt) {
    for (const n of [
      'receipt-task',
      'receipt-commitments',
      'receipt-app',
      'receipt-datasets',
      'receipt-input',
      'receipt-result',
    ]) {
      check(n, false, 'the receipt does not decode');
    }
  } else {
    const taskOk =
      receipt.chainId === BigInt(chainId) &&
      receipt.taskId === taskId &&
      receipt.attempt === attempt &&
      committedHash !== null &&
      equalBytes(receipt.evidenceHash, committedHash);
    check(
      'receipt-task',
      taskOk,
      taskOk
        ? 'chain id, task id, attempt and evidence hash match the chain'
        : `receipt names chain ${receipt.chainId}, task ${receipt.taskId}, attempt ${receipt.attempt}; expected ${chainId}, ${taskId}, ${attempt} and the committed evidence hash`,
    );
    const commitmentsOk =
      facts !== null &&
      equalBytes(receipt.commitmentsHash, commitmentsHash(facts.commitments)) &&
      equalBytes(receipt.resultRecipient, facts.commitments.resultRecipient);
    check(
      'receipt-commitments',
      commitmentsOk,
      commitmentsOk
        ? "the receipt names the task's commitments and its result recipient (the requester's key)"
        : facts === null
          ? factsError
          : equalBytes(receipt.resultRecipient, facts.commitments.resultRecipient)
            ? "the receipt's commitments hash is not this attempt's"
            : 'the result was sealed to another recipient than the one the requester named',
    );
    const app = await getApp(c, task.appId);
    const appOk = app !== null && same(hex0x(receipt.appMeasurement), app.measurement);
    check(
      'receipt-app',
      appOk,
      appOk
        ? `app measurement ${toHex(receipt.appMeasurement).slice(0, 16)}… is app ${task.appId}'s`
        : `app measurement ${toHex(receipt.appMeasurement).slice(0, 16)}… is not app ${task.appId}'s registered measurement`,
    );
    const dsParts: string[] = [];
    let dsOk = receipt.datasets.length === task.datasetIds.length;
    if (!dsOk)
      dsParts.push(
        `${receipt.datasets.length} dataset(s) in the receipt, ${task.datasetIds.length} in the task`,
      );
    for (let i = 0; i < task.datasetIds.length && i < receipt.datasets.length; i++) {
      const committedDs = facts?.commitments.datasets[i];
      const r = receipt.datasets[i];
      const ok =
        committedDs !== undefined && equalBytes(r.ciphertextHash, committedDs.ciphertextHash) && r.complete;
      if (!ok) {
        dsOk = false;
        dsParts.push(
          `dataset ${task.datasetIds[i]}: ${r.complete ? 'ciphertext hash differs from the registered one' : 'not read to the end'}`,
        );
      }
    }
    check(
      'receipt-datasets',
      dsOk,
      dsOk
        ? `${receipt.datasets.length} dataset ciphertext hash(es) match the ones registered when the task was created, read whole`
        : dsParts.join('; '),
    );
    const inputHash = created ? bytes(created.args.inputHash) : null;
    const inputOk = inputHash !== null && equalBytes(inputHash, receipt.inputHash);
    check(
      'receipt-input',
      inputOk,
      inputOk
        ? "input hash equals the task's inputHash"
        : `input hash ${toHex(receipt.inputHash).slice(0, 16)}… differs from the task's inputHash${
            equalBytes(receipt.inputHash, sha256(encodeCanonical([])))
              ? ' (the enclave ran without arguments)'
              : ''
          }`,
    );
    const resultOk = equalBytes(receipt.resultHash, report.resultHash);
    check(
      'receipt-result',
      resultOk,
      resultOk
        ? 'result hash equals the one posted with the receipt'
        : 'result hash differs from the one posted with the receipt',
    );
    if (opts.resultCiphertext) {
      const ok = equalBytes(sha256(opts.resultCiphertext), receipt.resultHash);
      check(
        'result-ciphertext',
        ok,
        ok
          ? "SHA-256 of the result ciphertext equals the receipt's resultHash"
          : "the result ciphertext does not match the receipt's resultHash",
      );
    }
  }
  report.verified = checks.every((x) => x.ok);
  return report;
}

/** The report as JSON: `{"taskId", "attempt", "status", "verified", "checks": [...]}`. */
export function auditToJson(r: AuditReport): {
  taskId: string;
  attempt: number | null;
  status: TaskState;
  verified: boolean;
  checks: AuditCheck[];
} {
  return {
    taskId: r.taskId.toString(),
    attempt: r.attempt,
    status: r.status,
    verified: r.verified,
    checks: r.checks,
  };
}
