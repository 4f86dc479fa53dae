/**
 * The verifier's judgement (judgeAttempt) against a real local anvil, from the attacker's side
 * and from the verifier's own trouble: a chain that does not answer or an executor that cannot be
 * reached is a retry (thrown), never a fail vote; evidence bound to other commitments, an executor
 * serving nothing usable, or a policy that refuses is a fail vote; honest evidence is a pass; a
 * policy this verifier does not apply is an abstention.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  defaultVerifiers,
  developmentPolicy,
  encodePolicyDocument,
  parsePolicy,
} from '../attestation/index.ts';
import { createSimRoot, issueSimAttester, SimBackend } from '../attestation/sim/index.ts';
import {
  type ChainReader,
  type ChainWriter,
  claimTask,
  commitEvidence,
  connect,
  createApp,
  createDataset,
  createTask,
  getTask,
  reader,
  registerNode,
  seedTask,
} from '../chain/index.ts';
import { startTestChain, type TestChain } from '../chain/testing.ts';
import { claimAlpha, vrfKeygen, vrfProofToHash, vrfProve } from '../crypto/vrf/index.ts';
import { encodeCanonical, encodeTagged, FerryError, fromHex, isFerryError, toHex } from '../kernel/index.ts';
import { attemptFacts, PolicyBook, type TaskCommitments, reportDataFor } from '../protocol/index.ts';
import { judgeAttempt } from './verifier.ts';

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
const root = createSimRoot();
const runtime = new Uint8Array(randomBytes(32));
const pinned = parsePolicy({
  ...developmentPolicy(),
  name: 'pinned-test',
  referenceValues: { sim: { measurement: [toHex(runtime)] } },
});
let t: TestChain;
let carol: ChainWriter;
let taskId: bigint;
let chainId: number;

before(async () => {
  t = await startTestChain();
  chainId = t.chain.chainId;
  const executor = await t.account();
  const vrf = vrfKeygen();
  await registerNode(executor, {
    roles: ['executor'],
    region: 'DE',
    teeKinds: ['sim'],
    vrfPublicKey: vrf.pk,
    signingKey: new Uint8Array(randomBytes(32)),
    endpoint: 'http://127.0.0.1:9',
    stake: 10n ** 18n,
  });
  const verifier = await t.account();
  await registerNode(verifier, {
    roles: ['verifier'],
    region: 'DE',
    teeKinds: ['sim'],
    vrfPublicKey: vrfKeygen().pk,
    signingKey: new Uint8Array(randomBytes(32)),
    endpoint: 'http://127.0.0.1:9',
    stake: 10n ** 18n,
  });
  const bob = await t.account();
  const alice = await t.account();
  carol = await t.account();
  const measurement = new Uint8Array(randomBytes(32));
  const { appId } = await createApp(bob, {
    measurement,
    ciphertextHash: new Uint8Array(randomBytes(32)),
    endpoint: 'http://127.0.0.1:9',
    price: 0n,
    teeKinds: ['sim'],
    appraisalPolicyDocument: encodePolicyDocument(pinned),
  });
  const { datasetId } = await createDataset(alice, {
    ciphertextHash: new Uint8Array(randomBytes(32)),
    endpoint: 'http://127.0.0.1:9',
    price: 0n,
    policy: {
      allowedApps: [measurement],
      allowedRegions: ['DE'],
      teeKinds: ['sim'],
      tau: 1000,
      threshold: 1000,
      maxUses: 0,
      expiresAt: 0,
      requesters: [],
      appraisalPolicyDocument: encodePolicyDocument(pinned),
    },
  });
  const now = Number((await carol.public.getBlock()).timestamp);
  ({ taskId } = await createTask(carol, {
    appId,
    datasetIds: [datasetId],
    inputHash: sha256(encodeCanonical([])),
    resultRecipient: new Uint8Array(randomBytes(32)),
    inputLocation: '',
    fee: 0n,
    expiresAt: now + 3600,
    claimWindow: 10,
    evidenceWindow: 100,
    voteWindow: 100,
    runWindow: 100,
  }));
  await t.mine(2);
  await seedTask(carol, taskId);
  const task = (await getTask(carol, taskId))!;
  const proof = vrfProve(
    vrf.sk,
    claimAlpha({ chainId: BigInt(chainId), taskId, attempt: 1, seed: fromHex(task.seed, 'seed', 32) }),
  );
  await claimTask(executor, { taskId, attempt: 1, vrfOutput: vrfProofToHash(proof), vrfProof: proof });
  await t.advance(11);
  honestEvidence = await evidence(
    (await attemptFacts(carol, { chainId, task: (await getTask(carol, taskId))! })).commitments,
  );
  await commitEvidence(executor, {
    taskId,
    attempt: 1,
    evidenceHash: sha256(honestEvidence.bytes),
    location: `http://127.0.0.1:9/v1/tasks/${taskId}/attempts/1/evidence`,
  });
});

after(async () => {
  await t?.stop();
});

const keys = { x25519Pub: new Uint8Array(32).fill(0x11), ed25519Pub: new Uint8Array(32).fill(0x22) };
let honestEvidence: { bytes: Uint8Array };

async function evidence(commitments: TaskCommitments, measurement = runtime) {
  const ev = await new SimBackend({ attester: issueSimAttester(root), measurement }).collect(
    reportDataFor({ commitments, ...keys }),
  );
  return {
    bytes: Uint8Array.from(
      encodeTagged('ferry/evidence/v1', { kind: ev.kind, reportData: ev.reportData, body: ev.body }),
    ),
  };
}

async function judge(opts: {
  chain?: ChainReader;
  fetch?: () => Promise<{ evidenceBytes: Uint8Array; x25519Pub: Uint8Array; ed25519Pub: Uint8Array }>;
  allowSim?: boolean;
}) {
  const task = (await getTask(carol, taskId))!;
  assert.equal(task.status, 'attesting');
  const facts = await attemptFacts(carol, { chainId, task });
  const book = new PolicyBook({ allowSim: opts.allowSim ?? true });
  const chain = opts.chain ?? carol;
  return judgeAttempt({
    chain,
    chainId,
    facts,
    resolve: (s, h) => book.resolve(chain, { kind: s.assetKind, id: s.assetId }, h),
    registry: defaultVerifiers({ sim: { roots: [root.publicKey] } }),
    now: new Date(),
    fetchEvidence: opts.fetch ?? (async () => ({ evidenceBytes: honestEvidence.bytes, ...keys })),
  });
}

test('honest evidence bound to the commitments: pass, one entry per policy (app and dataset)', {
  timeout: 60_000,
}, async () => {
  const d = await judge({});
  assert.equal(d.kind, 'vote');
  assert.ok(d.kind === 'vote' && d.pass);
  assert.deepEqual(d.kind === 'vote' && d.appraisal.entries.map((e) => e.assetKind), ['app', 'dataset']);
});

test('a chain that does not answer during the checks is a retry, never a fail vote', {
  timeout: 60_000,
}, async () => {
  // The verifier's RPC endpoint is gone (a port nothing listens on).
  const dead: ChainReader = reader(await connect({ rpcUrl: 'http://127.0.0.1:9', chainId }), carol.contracts);
  await assert.rejects(
    () => judge({ chain: dead }),
    (e) => isFerryError(e, 'CHAIN_UNAVAILABLE'),
  );
});

test('an executor that cannot be reached is a retry; one that serves nothing usable is a fail vote', {
  timeout: 60_000,
}, async () => {
  await assert.rejects(
    () =>
      judge({
        fetch: async () => {
          throw new FerryError('PEER_UNAVAILABLE', 'connection refused');
        },
      }),
    (e) => isFerryError(e, 'PEER_UNAVAILABLE'),
  );
  await assert.rejects(
    () =>
      judge({
        fetch: async () => {
          throw new FerryError('INTERNAL', 'a bug in this verifier');
        },
      }),
    (e) => isFerryError(e, 'INTERNAL'),
  );
  const d = await judge({
    fetch: async () => {
      throw new FerryError('PEER_NOT_FOUND', 'no evidence here');
    },
  });
  assert.ok(d.kind === 'vote' && !d.pass);
  assert.equal(d.kind === 'vote' && d.appraisal.reasons[0].code, 'PEER_NOT_FOUND');
});

test('evidence that is not the committed evidence, or bound to other enclave keys, is a fail vote', {
  timeout: 60_000,
}, async () => {
  const task = (await getTask(carol, taskId))!;
  const { commitments } = await attemptFacts(carol, { chainId, task });
  const other = await evidence({ ...commitments, resultRecipient: new Uint8Array(32).fill(9) });
  // Served in place of the committed evidence: not the committed evidence.
  const swapped = await judge({ fetch: async () => ({ evidenceBytes: other.bytes, ...keys }) });
  assert.ok(swapped.kind === 'vote' && !swapped.pass);
  assert.equal(
    swapped.kind === 'vote' && swapped.appraisal.reasons[0].code,
    'ATTESTATION_EVIDENCE_NOT_COMMITTED',
  );
  // The committed evidence served with other enclave keys: the binding fails under every policy.
  const otherKeys = await judge({
    fetch: async () => ({
      evidenceBytes: honestEvidence.bytes,
      ...keys,
      x25519Pub: new Uint8Array(32).fill(3),
    }),
  });
  assert.ok(otherKeys.kind === 'vote' && !otherKeys.pass);
  assert.ok(
    otherKeys.kind === 'vote' &&
      otherKeys.appraisal.entries.every((e) =>
        e.appraisal.reasons.some((r) => r.code === 'ATTESTATION_REPORT_DATA_MISMATCH'),
      ),
  );
});

test('a policy this verifier does not apply (sim, without allowSim) is an abstention', {
  timeout: 60_000,
}, async () => {
  const d = await judge({ allowSim: false });
  assert.equal(d.kind, 'abstain');
});
