/**
 * verifyTaskFromChain against a real local anvil: a task driven by hand through every stage
 * (honest claim, sim evidence bound to enclave keys, votes, releases, a signed receipt) passes
 * every check; a verifier inflating its seats, a receipt naming another app, a result that is
 * not the task's, other enclave keys, and the wrong chain id each fail the checks they should.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { developmentPolicy, encodePolicyDocument } from '../attestation/index.ts';
import { createSimRoot, issueSimAttester, SimBackend } from '../attestation/sim/index.ts';
import {
  type ChainWriter,
  claimTask,
  commitEvidence,
  createApp,
  createDataset,
  createTask,
  getTask,
  recordKeyRelease,
  registerNode,
  seatBound,
  seedTask,
  submitReceipt,
  updateNode,
  addStake,
  requestUnbond,
  vote,
} from '../chain/index.ts';
import { startTestChain, type TestChain } from '../chain/testing.ts';
import { hpkeGenerateKeyPair } from '../crypto/hpke.ts';
import { generateSigningKeyPair } from '../crypto/sign.ts';
import { claimAlpha, verifierAlpha, vrfKeygen, vrfProofToHash, vrfProve } from '../crypto/vrf/index.ts';
import { signReceipt } from '../enclave/index.ts';
import { commitmentsHash, readTaskCommitments, reportDataFor } from '../protocol/index.ts';
import { encodeCanonical, encodeTagged, fromHex } from '../kernel/index.ts';
import { seatsFor } from '../protocol/index.ts';
import { parseBundle } from './bundle.ts';
import { type AuditReport, verifyTaskFromChain } from './verify.ts';

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

type NodeAcct = { c: ChainWriter; vrf: { sk: Uint8Array; pk: Uint8Array } };

let t: TestChain;
let executor: NodeAcct;
let verifiers: NodeAcct[];
let alice: ChainWriter;
let bob: ChainWriter;
let carol: ChainWriter;
const root = createSimRoot();
const measurement = new Uint8Array(randomBytes(32));
const datasetHash = new Uint8Array(randomBytes(32));
let appId: bigint;
let datasetId: bigint;
/** A dataset whose committee is 20 seats of the 2000 stake units (threshold 1): room below the seat bound to lie. */
let smallDatasetId: bigint;

async function node(roles: ('executor' | 'verifier')[]): Promise<NodeAcct> {
  const c = await t.account();
  const vrf = vrfKeygen();
  await registerNode(c, {
    roles,
    region: 'DE',
    teeKinds: ['sim'],
    vrfPublicKey: vrf.pk,
    signingKey: new Uint8Array(randomBytes(32)),
    endpoint: 'http://127.0.0.1:9',
    stake: 10n ** 18n,
  });
  return { c, vrf };
}

/** Re-registers a node's parameters (same VRF key) with another operator (undefined: itself). */
function setOperator(n: NodeAcct, roles: ('executor' | 'verifier')[], operator?: `0x${string}`) {
  return updateNode(n.c, {
    roles,
    region: 'DE',
    teeKinds: ['sim'],
    vrfPublicKey: n.vrf.pk,
    signingKey: new Uint8Array(randomBytes(32)),
    endpoint: 'http://127.0.0.1:9',
    operator,
  });
}

before(async () => {
  t = await startTestChain();
  executor = await node(['executor']);
  verifiers = [await node(['verifier']), await node(['verifier'])];
  alice = await t.account();
  bob = await t.account();
  carol = await t.account();
  ({ appId } = await createApp(bob, {
    measurement,
    ciphertextHash: new Uint8Array(randomBytes(32)),
    endpoint: 'http://127.0.0.1:9',
    price: 0n,
    teeKinds: ['sim'],
    appraisalPolicyDocument: encodePolicyDocument(developmentPolicy()),
  }));
  ({ datasetId } = await createDataset(alice, {
    ciphertextHash: datasetHash,
    endpoint: 'http://127.0.0.1:9',
    price: 0n,
    policy: {
      allowedApps: [measurement],
      allowedRegions: ['DE'],
      teeKinds: ['sim'],
      // tau = the verifier stake in units: each verifier holds 1000 seats; one suffices.
      tau: 2000,
      threshold: 1000,
      maxUses: 0,
      expiresAt: 0,
      requesters: [],
      appraisalPolicyDocument: encodePolicyDocument(developmentPolicy()),
    },
  }));
  ({ datasetId: smallDatasetId } = await createDataset(alice, {
    ciphertextHash: datasetHash,
    endpoint: 'http://127.0.0.1:9',
    price: 0n,
    policy: {
      allowedApps: [measurement],
      allowedRegions: ['DE'],
      teeKinds: ['sim'],
      tau: 20,
      threshold: 1,
      maxUses: 0,
      expiresAt: 0,
      requesters: [],
      appraisalPolicyDocument: encodePolicyDocument(developmentPolicy()),
    },
  }));
});

after(async () => {
  await t?.stop();
});

type Run = {
  taskId: bigint;
  evidence: { bytes: Uint8Array; x25519Pub: Uint8Array; ed25519Pub: Uint8Array };
  result: Uint8Array;
};

/**
 * Drives one task through every stage; `lie` (on the small committee) inflates the second
 * verifier's seats up to the contract's bound;
 * `afterClaim` runs once the executor has claimed.
 */
async function runTask(
  opts: {
    lie?: boolean;
    receiptApp?: Uint8Array;
    receiptRecipient?: Uint8Array;
    afterClaim?: () => Promise<void>;
  } = {},
): Promise<Run> {
  const chainId = BigInt(t.chain.chainId);
  const now = Number((await carol.public.getBlock()).timestamp);
  const { taskId } = await createTask(carol, {
    appId,
    datasetIds: [opts.lie ? smallDatasetId : datasetId],
    inputHash: sha256(encodeCanonical([])),
    resultRecipient: new Uint8Array(randomBytes(32)),
    inputLocation: '',
    fee: 10n ** 15n,
    expiresAt: now + 3600,
    claimWindow: 10,
    evidenceWindow: 100,
    voteWindow: 100,
    runWindow: 100,
  });
  await t.mine(2);
  await seedTask(carol, taskId);
  let task = (await getTask(carol, taskId))!;
  const seed = fromHex(task.seed, 'seed', 32);
  const alpha = { chainId, taskId, attempt: 1, seed };
  const proof = vrfProve(executor.vrf.sk, claimAlpha(alpha));
  await claimTask(executor.c, { taskId, attempt: 1, vrfOutput: vrfProofToHash(proof), vrfProof: proof });
  await opts.afterClaim?.();
  await t.advance(11);

  const x = hpkeGenerateKeyPair();
  const ed = generateSigningKeyPair();
  const commitments = await readTaskCommitments(carol, { chainId, task });
  const reportData = reportDataFor({ commitments, x25519Pub: x.publicKey, ed25519Pub: ed.publicKey });
  const ev = await new SimBackend({
    attester: issueSimAttester(root),
    measurement: new Uint8Array(32),
  }).collect(reportData);
  const evidenceBytes = encodeTagged('ferry/evidence/v1', {
    kind: ev.kind,
    reportData: ev.reportData,
    body: ev.body,
  });
  const evidenceHash = sha256(evidenceBytes);
  await commitEvidence(executor.c, {
    taskId,
    attempt: 1,
    evidenceHash,
    location: `http://127.0.0.1:9/v1/tasks/${taskId}/attempts/1/evidence`,
  });
  task = (await getTask(carol, taskId))!;
  for (const [i, v] of verifiers.entries()) {
    const vp = vrfProve(v.vrf.sk, verifierAlpha(alpha));
    const beta = vrfProofToHash(vp);
    // The liar claims as many seats as the contract's per-vote bound lets it (§11.3): far more
    // than sortition gives it, which only a relying party can tell.
    const seats =
      opts.lie && i === 1
        ? seatBound(10n ** 18n, task.totalVerifierStake, task.tau)
        : seatsFor(beta, 10n ** 18n, task);
    await vote(v.c, {
      taskId,
      attempt: 1,
      pass: true,
      resultHash: new Uint8Array(randomBytes(32)),
      seats,
      vrfOutput: beta,
      vrfProof: vp,
    });
  }
  await recordKeyRelease(bob, { taskId, attempt: 1, assetIndex: 0, releaseHash: new Uint8Array(32).fill(1) });
  await recordKeyRelease(alice, {
    taskId,
    attempt: 1,
    assetIndex: 1,
    releaseHash: new Uint8Array(32).fill(2),
  });
  const result = new Uint8Array(randomBytes(200));
  const { receipt, signature } = signReceipt(ed.secretKey, {
    chainId,
    taskId,
    attempt: 1,
    appMeasurement: opts.receiptApp ?? measurement,
    datasets: [{ id: datasetId.toString(), ciphertextHash: datasetHash, complete: true }],
    inputHash: sha256(encodeCanonical([])),
    resultHash: sha256(result),
    logHash: sha256(new Uint8Array(0)),
    outcome: 'exit',
    exitCode: 0,
    limitHit: null,
    startedAt: Date.now() - 5,
    endedAt: Date.now(),
    evidenceHash,
    enclaveKey: ed.publicKey,
    commitmentsHash: commitmentsHash(commitments),
    resultRecipient: opts.receiptRecipient ?? commitments.resultRecipient,
  });
  await submitReceipt(executor.c, {
    taskId,
    attempt: 1,
    receipt,
    signature,
    resultHash: sha256(result),
    resultLocation: `http://127.0.0.1:9/v1/tasks/${taskId}/attempts/1/result`,
  });
  return {
    taskId,
    evidence: { bytes: evidenceBytes, x25519Pub: x.publicKey, ed25519Pub: ed.publicKey },
    result,
  };
}

function failed(r: AuditReport): string[] {
  return r.checks.filter((c) => !c.ok).map((c) => c.name);
}

let honestRun: Promise<Run> | null = null;
/** One honest task, run by the first test that needs it (no test depends on another's order). */
function honestTask(): Promise<Run> {
  honestRun ??= runTask();
  return honestRun;
}

/** Runs `fn` and then puts the chain back as it was (for tests that change stake or operators). */
async function thenRevert(fn: () => Promise<void>): Promise<void> {
  const snap = await t.snapshot();
  try {
    await fn();
  } finally {
    await t.revert(snap);
  }
}

test('an honest task passes every check', { timeout: 60_000 }, async () => {
  const honest = await honestTask();
  const r = await verifyTaskFromChain(t.deployer, honest.taskId, {
    evidence: honest.evidence,
    simRoots: [root.publicKey],
    resultCiphertext: honest.result,
  });
  assert.deepEqual(failed(r), []);
  assert.equal(r.verified, true);
  assert.equal(r.attempt, 1);
  assert.deepEqual(
    r.checks.map((c) => c.name),
    [
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
      'result-ciphertext',
    ],
  );
});

test('what the auditor cannot trust fails the right checks', { timeout: 60_000 }, async () => {
  const honest = await honestTask();
  // Without the simulation root, sim evidence cannot be appraised.
  const noRoot = await verifyTaskFromChain(t.deployer, honest.taskId, { evidence: honest.evidence });
  assert.deepEqual(failed(noRoot), ['evidence-appraisal']);
  // Another result, other enclave keys, another chain id.
  const wrongResult = await verifyTaskFromChain(t.deployer, honest.taskId, {
    evidence: honest.evidence,
    simRoots: [root.publicKey],
    resultCiphertext: new Uint8Array(10),
  });
  assert.deepEqual(failed(wrongResult), ['result-ciphertext']);
  const otherKeys = await verifyTaskFromChain(t.deployer, honest.taskId, {
    evidence: { ...honest.evidence, x25519Pub: new Uint8Array(32).fill(9) },
    simRoots: [root.publicKey],
  });
  assert.deepEqual(failed(otherKeys), ['evidence-binding', 'evidence-appraisal', 'receipt-signature']);
  const tampered = Uint8Array.from(honest.evidence.bytes);
  tampered[tampered.length - 1] ^= 1;
  const badEvidence = await verifyTaskFromChain(t.deployer, honest.taskId, {
    evidence: { ...honest.evidence, bytes: tampered },
    simRoots: [root.publicKey],
  });
  assert.ok(failed(badEvidence).includes('evidence-hash'));
  const otherChain = await verifyTaskFromChain(t.deployer, honest.taskId, {
    chainId: 1,
    evidence: honest.evidence,
    simRoots: [root.publicKey],
  });
  for (const n of [
    'claim-vrf',
    'claim-lowest',
    'evidence-binding',
    'votes-vrf',
    'votes-threshold',
    'receipt-task',
  ]) {
    assert.ok(failed(otherChain).includes(n), n);
  }
  // A saved receipt that is not the posted one.
  const saved = await verifyTaskFromChain(t.deployer, honest.taskId, {
    evidence: honest.evidence,
    simRoots: [root.publicKey],
    savedReceipt: { receipt: new Uint8Array(10), signature: new Uint8Array(64) },
  });
  assert.deepEqual(failed(saved), ['receipt-signature']);
});

test('a verifier claiming more seats than sortition gives fails votes-seats', {
  timeout: 60_000,
}, async () => {
  const run = await runTask({ lie: true });
  const r = await verifyTaskFromChain(t.deployer, run.taskId, {
    evidence: run.evidence,
    simRoots: [root.publicKey],
  });
  assert.deepEqual(failed(r), ['votes-seats']);
  assert.match(
    r.checks.find((c) => c.name === 'votes-threshold')!.detail,
    /valid pass seats [1-9][0-9]* from 1/,
  );
});

test('a receipt naming another app fails receipt-app', { timeout: 60_000 }, async () => {
  const run = await runTask({ receiptApp: new Uint8Array(32).fill(7) });
  const r = await verifyTaskFromChain(t.deployer, run.taskId, {
    evidence: run.evidence,
    simRoots: [root.publicKey],
  });
  assert.deepEqual(failed(r), ['receipt-app']);
});

test('a receipt whose result was sealed to another recipient fails receipt-commitments', {
  timeout: 60_000,
}, async () => {
  const run = await runTask({ receiptRecipient: new Uint8Array(randomBytes(32)) });
  const r = await verifyTaskFromChain(t.deployer, run.taskId, {
    evidence: run.evidence,
    simRoots: [root.publicKey],
  });
  assert.deepEqual(failed(r), ['receipt-commitments']);
  assert.match(r.checks.find((c) => c.name === 'receipt-commitments')!.detail, /another recipient/);
});

test('unknown task: TASK_NOT_FOUND; bundles are parsed strictly', async () => {
  await assert.rejects(verifyTaskFromChain(t.deployer, 999n), { code: 'TASK_NOT_FOUND' });
  assert.throws(() => parseBundle('{'), { code: 'RECEIPT_INVALID' });
  assert.throws(() => parseBundle('{"format":"ferry/receipt-bundle/v1"}'), { code: 'RECEIPT_INVALID' });
});

test("a voter of the executor's operator (as registered before the task) fails votes-vrf", {
  timeout: 60_000,
}, async () => {
  // The executor and the first verifier declare one operator; once it has claimed, the
  // executor switches its operator so that the contract lets that verifier vote.
  const op = '0x00000000000000000000000000000000000000aa' as const;
  await thenRevert(async () => {
    await setOperator(executor, ['executor'], op);
    await setOperator(verifiers[0], ['verifier'], op);
    const run = await runTask({ afterClaim: async () => void (await setOperator(executor, ['executor'])) });
    await setOperator(verifiers[0], ['verifier']);
    const r = await verifyTaskFromChain(t.deployer, run.taskId, {
      evidence: run.evidence,
      simRoots: [root.publicKey],
    });
    assert.deepEqual(failed(r), ['votes-vrf', 'votes-seats']);
    assert.match(r.checks.find((c) => c.name === 'votes-vrf')!.detail, /^1 of 2 vote/);
    assert.match(r.checks.find((c) => c.name === 'votes-threshold')!.detail, /valid pass seats 1000 from 1/);
  });
});

test('stake added or unbonded after the task changes nothing: seats are judged at creation', {
  timeout: 60_000,
}, async () => {
  const honest = await honestTask();
  await thenRevert(async () => {
    const lie = await runTask({ lie: true });
    // The liar's stake now covers the seats it claimed; the honest voter leaves (inactive).
    await addStake(verifiers[1].c, 10n * 10n ** 18n);
    await requestUnbond(verifiers[0].c, 10n ** 18n);
    const r = await verifyTaskFromChain(t.deployer, lie.taskId, {
      evidence: lie.evidence,
      simRoots: [root.publicKey],
    });
    assert.deepEqual(failed(r), ['votes-seats']);
    const h = await verifyTaskFromChain(t.deployer, honest.taskId, {
      evidence: honest.evidence,
      simRoots: [root.publicKey],
      resultCiphertext: honest.result,
    });
    assert.deepEqual(failed(h), []);
  });
});
