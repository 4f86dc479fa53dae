/**
 * The contracts against a real anvil: one chain per file, evm_snapshot / evm_revert around
 * every test. Covers every call and the attacks of the issue (double votes, claimant votes,
 * unregistered and inactive nodes, late votes, replays across tasks and attempts, ineligible
 * claims, non-owner updates, re-entrant payouts, double settlement, refunds, revoked assets,
 * exhausted uses). VRF outputs and proofs are opaque to the contract (it only orders outputs),
 * so random bytes with a chosen first byte stand in for them here.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { type Address, encodeFunctionData, type Hex, sha256 } from 'viem';
import { isFerryError } from '../kernel/index.ts';
import {
  claimTask,
  claimVoteReward,
  commitEvidence,
  createApp,
  createDataset,
  createTask,
  type DatasetPolicy,
  getApp,
  getBurned,
  getCredits,
  getDataset,
  getNode,
  getFerryEvents,
  getPassVoters,
  getPolicyDocuments,
  getStakeTotals,
  getTask,
  getVote,
  heartbeat,
  isAllowed,
  hasClaimed,
  isExcluded,
  MIN_RUN_TIME,
  markStale,
  recordKeyRelease,
  registerNode,
  requestUnbond,
  revokeApp,
  revokeDataset,
  seedTask,
  setNodeActive,
  setNodeEndpoint,
  submitReceipt,
  abandonAttempt,
  abandonCause,
  timeoutTask,
  updateApp,
  updateDataset,
  updateDatasetPolicy,
  updateNode,
  vote,
  withdraw,
  withdrawUnbonded,
  addStake,
  sendTx,
  toChainError,
  type ChainWriter,
  type TeeKind,
} from './index.ts';
import { reentrantReceiverAbi, reentrantReceiverBytecode } from './generated/ReentrantReceiver.ts';
import { assetsAbi, nodeRegistryAbi, tasksAbi } from './abi.ts';
import { outputWithPrefix, randomHex, startTestChain, type TestChain } from './testing.ts';

const ETH = 10n ** 18n;
const MEASUREMENT = sha256(new TextEncoder().encode('app module'));
const CLAIM = 10;
const EVIDENCE = 10;
const VOTE = 10;
const RUN = 20;
/** An app policy that restricts nothing here: every TEE kind (the document is opaque to the contract). */
const ANY_TEE_APP = {
  teeKinds: ['sim', 'tpm2', 'tdx', 'sev-snp', 'sgx'] as TeeKind[],
  appraisalPolicyDocument: randomHex(64),
};

let tc: TestChain;
let requester: ChainWriter;
let appOwner: ChainWriter;
let dataOwner: ChainWriter;
let execDE: ChainWriter; // executor + verifier, DE, tpm2
let execUS: ChainWriter; // executor, US, tpm2
let execSim: ChainWriter; // executor, DE, sim only
let verifiers: ChainWriter[]; // 5 verifiers
let outsider: ChainWriter; // not registered
let appId: bigint;
let datasetId: bigint;
let snap: string;

const addr = (c: ChainWriter): Address => c.wallet.account.address;

function policy(over: Partial<DatasetPolicy> = {}): DatasetPolicy {
  return {
    allowedApps: [MEASUREMENT],
    allowedRegions: ['DE', 'FR'],
    teeKinds: ['tpm2', 'tdx'],
    tau: 5,
    threshold: 3,
    maxUses: 0,
    expiresAt: 0,
    requesters: [],
    appraisalPolicyDocument: randomHex(64),
    ...over,
  };
}

async function nodeParams(region: string, roles: ('executor' | 'verifier')[], teeKinds: ('tpm2' | 'sim')[]) {
  return {
    roles,
    region,
    teeKinds,
    vrfPublicKey: randomHex(32),
    signingKey: randomHex(32),
    endpoint: 'http://127.0.0.1:1/node',
  };
}

/** nodeParams for an update of a registered node: its VRF key is fixed at registration. */
async function keepKey(
  w: ChainWriter,
  region: string,
  roles: ('executor' | 'verifier')[],
  teeKinds: ('tpm2' | 'sim')[],
) {
  const n = await getNode(tc.deployer, addr(w));
  return { ...(await nodeParams(region, roles, teeKinds)), vrfPublicKey: n!.vrfPublicKey };
}

async function expectCode(p: Promise<unknown>, code: string, detail?: (d: Record<string, unknown>) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isFerryError(e), `expected a FerryError, got ${String(e)}`);
    assert.equal(e.code, code, `${e.code}: ${e.message} ${e.hints.join(' / ')}`);
    if (detail) detail(e.details ?? {});
    return true;
  });
}

async function now(): Promise<number> {
  const b = await tc.deployer.public.getBlock();
  return Number(b.timestamp);
}

async function newTask(
  over: {
    fee?: bigint;
    datasetIds?: bigint[];
    expiresIn?: number;
    by?: ChainWriter;
    claimTarget?: number;
  } = {},
) {
  const r = await createTask(over.by ?? requester, {
    appId,
    datasetIds: over.datasetIds ?? [datasetId],
    inputHash: randomHex(32),
    resultRecipient: randomHex(32),
    inputLocation: 'http://127.0.0.1:1/input',
    fee: over.fee ?? 10n * ETH,
    expiresAt: (await now()) + (over.expiresIn ?? 3600),
    claimWindow: CLAIM,
    evidenceWindow: EVIDENCE,
    voteWindow: VOTE,
    runWindow: RUN,
    claimTarget: over.claimTarget,
  });
  return r.taskId;
}

async function seeded(taskId: bigint) {
  await tc.mine(1);
  return seedTask(requester, taskId);
}

/** Seeds, claims with `executor`, closes the window and commits evidence. */
async function toAttesting(taskId: bigint, executor = execDE, attempt = 1) {
  await seeded(taskId);
  await claimTask(executor, { taskId, attempt, vrfOutput: outputWithPrefix(5), vrfProof: randomHex(80) });
  await tc.advance(CLAIM + 1);
  await commitEvidence(executor, { taskId, attempt, evidenceHash: randomHex(32), location: 'http://e/1' });
}

function castVote(v: ChainWriter, taskId: bigint, pass: boolean, attempt = 1, seats = 1) {
  return vote(v, {
    taskId,
    attempt,
    pass,
    resultHash: randomHex(32),
    seats,
    vrfOutput: randomHex(64),
    vrfProof: randomHex(80),
  });
}

before(async () => {
  tc = await startTestChain({
    deploy: { minStake: ETH, unbondingDelay: 100n, heartbeatTtl: 1000n, slashBps: 1000n, jailDuration: 100n },
  });
  [requester, appOwner, dataOwner, execDE, execUS, execSim, outsider] = await Promise.all(
    Array.from({ length: 7 }, () => tc.account()),
  );
  verifiers = await Promise.all(Array.from({ length: 5 }, () => tc.account()));
  await registerNode(execDE, {
    ...(await nodeParams('DE', ['executor', 'verifier'], ['tpm2'])),
    stake: 10n * ETH,
  });
  await registerNode(execUS, { ...(await nodeParams('US', ['executor'], ['tpm2'])), stake: 10n * ETH });
  await registerNode(execSim, { ...(await nodeParams('DE', ['executor'], ['sim'])), stake: 10n * ETH });
  for (const v of verifiers)
    await registerNode(v, { ...(await nodeParams('FR', ['verifier'], ['tpm2'])), stake: 2n * ETH });
  appId = (
    await createApp(appOwner, {
      measurement: MEASUREMENT,
      ciphertextHash: randomHex(32),
      endpoint: 'http://a',
      price: ETH,
      ...ANY_TEE_APP,
    })
  ).appId;
  datasetId = (
    await createDataset(dataOwner, {
      ciphertextHash: randomHex(32),
      endpoint: 'http://d',
      price: 2n * ETH,
      policy: policy(),
    })
  ).datasetId;
  await tc.mine(1);
});

after(async () => {
  await tc?.stop();
});

beforeEach(async () => {
  snap = await tc.snapshot();
});

afterEach(async () => {
  await tc.revert(snap);
});

describe('node registry', () => {
  test('register, read, totals, update, endpoint, stake, heartbeat', async () => {
    const n = await getNode(tc.deployer, addr(execDE));
    assert.ok(n);
    assert.deepEqual(n.roles, ['executor', 'verifier']);
    assert.equal(n.status, 'active');
    assert.equal(n.region, 'DE');
    assert.deepEqual(n.teeKinds, ['tpm2']);
    assert.equal(n.stake, 10n * ETH);
    assert.equal(await getNode(tc.deployer, addr(outsider)), null);
    const totals = await getStakeTotals(tc.deployer);
    assert.equal(totals.executorStake, 30n * ETH);
    assert.equal(totals.verifierStake, 20n * ETH);
    // The VRF key is fixed at registration (fraud proofs read it, protocol.md 11.5).
    await expectCode(
      updateNode(execUS, await nodeParams('FR', ['executor', 'verifier'], ['tpm2', 'sim'])),
      'CHAIN_INVALID_PARAMETER',
    );
    await updateNode(execUS, await keepKey(execUS, 'FR', ['executor', 'verifier'], ['tpm2', 'sim']));
    const u = await getNode(tc.deployer, addr(execUS));
    assert.equal(u?.region, 'FR');
    assert.deepEqual(u?.teeKinds, ['sim', 'tpm2']);
    assert.equal((await getStakeTotals(tc.deployer)).verifierStake, 30n * ETH);
    await setNodeEndpoint(execUS, 'https://node.example/x');
    assert.equal((await getNode(tc.deployer, addr(execUS)))?.endpoint, 'https://node.example/x');
    await addStake(execUS, ETH);
    assert.equal((await getNode(tc.deployer, addr(execUS)))?.stake, 11n * ETH);
    await heartbeat(execUS);
  });

  test('refuses duplicates, low stake, bad parameters, unknown nodes', async () => {
    await expectCode(
      registerNode(execDE, { ...(await nodeParams('DE', ['executor'], ['tpm2'])), stake: ETH }),
      'CHAIN_ALREADY_REGISTERED',
    );
    await expectCode(
      registerNode(outsider, { ...(await nodeParams('DE', ['executor'], ['tpm2'])), stake: ETH / 2n }),
      'CHAIN_INSUFFICIENT_STAKE',
    );
    await assert.rejects(
      registerNode(outsider, { ...(await nodeParams('de', ['executor'], ['tpm2'])), stake: ETH }),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
    );
    await expectCode(heartbeat(outsider), 'CHAIN_NOT_FOUND');
  });

  test('unbonding waits for the delay; inactive and stale nodes leave the totals', async () => {
    await requestUnbond(execUS, 10n * ETH);
    assert.equal((await getNode(tc.deployer, addr(execUS)))?.status, 'inactive');
    assert.equal((await getStakeTotals(tc.deployer)).executorStake, 20n * ETH);
    await expectCode(withdrawUnbonded(execUS), 'CHAIN_TOO_EARLY');
    await tc.advance(101);
    const before = await execUS.public.getBalance({ address: addr(execUS) });
    const r = await withdrawUnbonded(execUS);
    const afterBal = await execUS.public.getBalance({ address: addr(execUS) });
    const receipt = await execUS.public.getTransactionReceipt({ hash: r.hash });
    assert.equal(afterBal - before + receipt.gasUsed * receipt.effectiveGasPrice, 10n * ETH);
    await expectCode(withdrawUnbonded(execUS), 'CHAIN_NOTHING_TO_WITHDRAW');
    await expectCode(requestUnbond(execSim, 9n * ETH + 1n), 'CHAIN_INSUFFICIENT_STAKE');

    await setNodeActive(execSim, false);
    assert.equal((await getNode(tc.deployer, addr(execSim)))?.status, 'inactive');
    await setNodeActive(execSim, true);
    assert.equal((await getNode(tc.deployer, addr(execSim)))?.status, 'active');

    await expectCode(markStale(outsider, addr(execDE)), 'CHAIN_TOO_EARLY');
    await tc.advance(1001);
    await markStale(outsider, addr(execDE));
    assert.equal((await getNode(tc.deployer, addr(execDE)))?.status, 'inactive');
  });
});

describe('assets', () => {
  test('register, read, update and revoke; only the owner may change', async () => {
    const d = await getDataset(tc.deployer, datasetId);
    assert.ok(d);
    assert.equal(d.owner, addr(dataOwner));
    assert.equal(d.price, 2n * ETH);
    assert.deepEqual(d.policy.allowedRegions, ['DE', 'FR']);
    assert.equal(d.policy.tau, 5);
    const a = await getApp(tc.deployer, appId);
    assert.equal(a?.measurement, MEASUREMENT);
    assert.equal(await getApp(tc.deployer, 999n), null);
    assert.equal(await getDataset(tc.deployer, 999n), null);

    await expectCode(
      updateDataset(outsider, { datasetId, ciphertextHash: randomHex(32), endpoint: 'http://x' }),
      'CHAIN_NOT_OWNER',
    );
    await expectCode(updateDatasetPolicy(outsider, { datasetId, policy: policy() }), 'CHAIN_NOT_OWNER');
    await expectCode(revokeDataset(outsider, datasetId), 'CHAIN_NOT_OWNER');
    await expectCode(
      updateApp(outsider, { appId, ciphertextHash: randomHex(32), endpoint: 'http://x' }),
      'CHAIN_NOT_OWNER',
    );
    await expectCode(revokeApp(outsider, appId), 'CHAIN_NOT_OWNER');

    const h = randomHex(32);
    await updateDataset(dataOwner, { datasetId, ciphertextHash: h, endpoint: 'http://d2' });
    assert.equal((await getDataset(tc.deployer, datasetId))?.ciphertextHash, h);
    await updateApp(appOwner, { appId, ciphertextHash: h, endpoint: 'http://a2' });
    assert.equal((await getApp(tc.deployer, appId))?.endpoint, 'http://a2');

    const other = randomHex(32);
    await updateDatasetPolicy(dataOwner, { datasetId, policy: policy({ allowedApps: [other] }) });
    assert.deepEqual(await isAllowed(tc.deployer, { datasetId, measurement: MEASUREMENT }), { app: false });
    assert.deepEqual(await isAllowed(tc.deployer, { datasetId, measurement: other }), { app: true });

    await revokeDataset(dataOwner, datasetId);
    assert.equal((await getDataset(tc.deployer, datasetId))?.revoked, true);
    await expectCode(revokeDataset(dataOwner, datasetId), 'CHAIN_ASSET_REVOKED');
    await expectCode(updateDatasetPolicy(dataOwner, { datasetId, policy: policy() }), 'CHAIN_ASSET_REVOKED');
  });

  test('refuses invalid policies', async () => {
    await expectCode(
      createDataset(dataOwner, {
        ciphertextHash: randomHex(32),
        endpoint: 'http://d',
        price: 0n,
        policy: policy({ threshold: 6 }),
      }),
      'CHAIN_INVALID_PARAMETER',
      (d) => assert.deepEqual(d.args, ['threshold']),
    );
    await expectCode(
      createDataset(dataOwner, {
        ciphertextHash: randomHex(32),
        endpoint: 'http://d',
        price: 0n,
        policy: policy({ expiresAt: 1 }),
      }),
      'CHAIN_INVALID_PARAMETER',
    );
  });
});

describe('task creation refuses what a policy forbids', () => {
  test('revoked app or dataset', async () => {
    await revokeApp(appOwner, appId);
    await expectCode(newTask(), 'CHAIN_ASSET_REVOKED');
    await tc.revert(snap);
    snap = await tc.snapshot();
    await revokeDataset(dataOwner, datasetId);
    await expectCode(newTask(), 'CHAIN_ASSET_REVOKED');
  });

  test('exhausted uses; a use comes back when the task fails before any key release', async () => {
    await updateDatasetPolicy(dataOwner, { datasetId, policy: policy({ maxUses: 1 }) });
    const t1 = await newTask({ expiresIn: 50 });
    assert.equal((await getDataset(tc.deployer, datasetId))?.uses, 1);
    await expectCode(newTask(), 'CHAIN_USES_EXHAUSTED');
    await tc.advance(51);
    assert.equal((await timeoutTask(outsider, t1)).status, 'expired');
    assert.equal((await getDataset(tc.deployer, datasetId))?.uses, 0);
    await newTask();
  });

  test('app not allowed, requester not allowed, expired dataset, no common TEE kind, low fee, unknown ids', async () => {
    const other = await createApp(appOwner, {
      measurement: randomHex(32),
      ciphertextHash: randomHex(32),
      endpoint: 'http://a',
      price: 0n,
      ...ANY_TEE_APP,
    });
    await expectCode(
      createTask(requester, {
        appId: other.appId,
        datasetIds: [datasetId],
        inputHash: randomHex(32),
        resultRecipient: randomHex(32),
        inputLocation: '',
        fee: 10n * ETH,
        expiresAt: (await now()) + 100,
        claimWindow: 3,
        evidenceWindow: 10,
        voteWindow: 5,
        runWindow: 5,
      }),
      'CHAIN_POLICY_FORBIDS',
    );
    await updateDatasetPolicy(dataOwner, { datasetId, policy: policy({ requesters: [addr(outsider)] }) });
    await expectCode(newTask(), 'CHAIN_POLICY_FORBIDS');
    await newTask({ by: outsider });
    assert.deepEqual(await isAllowed(tc.deployer, { datasetId, requester: addr(outsider) }), {
      requester: true,
    });
    assert.deepEqual(await isAllowed(tc.deployer, { datasetId, requester: addr(requester) }), {
      requester: false,
    });
    const exp = await createDataset(dataOwner, {
      ciphertextHash: randomHex(32),
      endpoint: 'http://d',
      price: 0n,
      policy: policy({ expiresAt: (await now()) + 20 }),
    });
    await tc.advance(21);
    await expectCode(newTask({ datasetIds: [exp.datasetId] }), 'CHAIN_ASSET_EXPIRED');
    const simOnly = await createDataset(dataOwner, {
      ciphertextHash: randomHex(32),
      endpoint: 'http://d',
      price: 0n,
      policy: policy({ teeKinds: ['sim'], requesters: [] }),
    });
    await updateDatasetPolicy(dataOwner, { datasetId, policy: policy() });
    await expectCode(newTask({ datasetIds: [datasetId, simOnly.datasetId] }), 'CHAIN_POLICY_FORBIDS');
    await expectCode(newTask({ fee: 3n * ETH - 1n }), 'CHAIN_INSUFFICIENT_FUNDS');
    await expectCode(newTask({ datasetIds: [777n] }), 'CHAIN_NOT_FOUND');
  });
});

describe('lifecycle', () => {
  test('create, seed, claims (lowest wins), evidence, votes, key releases, receipt, settlement, withdrawals', async () => {
    // A second executor in DE: 40 ether of executor stake, k = 4 admits all four in round 0.
    const execDE2 = await tc.account();
    await registerNode(execDE2, { ...(await nodeParams('DE', ['executor'], ['tpm2'])), stake: 10n * ETH });
    const taskId = await newTask({ fee: 10n * ETH, claimTarget: 4 });
    let t = await getTask(tc.deployer, taskId);
    assert.equal(t?.status, 'created');
    assert.equal(t?.tau, 5);
    assert.equal(t?.threshold, 3);
    assert.equal(t?.totalVerifierStake, 20n * ETH);
    assert.equal(t?.totalExecutorStake, 40n * ETH);
    assert.equal(t?.claimTarget, 4);
    await expectCode(seedTask(requester, taskId), 'CHAIN_TOO_EARLY');
    await expectCode(
      claimTask(execDE, { taskId, attempt: 1, vrfOutput: randomHex(64), vrfProof: randomHex(80) }),
      'CHAIN_WRONG_STATE',
    );
    const s = await seeded(taskId);
    assert.match(s.seed ?? '', /^0x[0-9a-f]{64}$/);
    await expectCode(seedTask(requester, taskId), 'CHAIN_WRONG_STATE');
    assert.equal((await getTask(tc.deployer, taskId))?.seed, s.seed);

    const late = await claimTask(execDE2, {
      taskId,
      attempt: 1,
      vrfOutput: outputWithPrefix(200),
      vrfProof: randomHex(80),
    });
    assert.equal(late.best, true);
    assert.equal(
      (await getNode(tc.deployer, addr(execDE2)))?.openAttempts,
      1,
      'the best claim locks its stake',
    );
    const worse = await claimTask(execSim, {
      taskId,
      attempt: 1,
      vrfOutput: outputWithPrefix(250),
      vrfProof: randomHex(80),
    }).catch((e) => e);
    assert.ok(isFerryError(worse, 'CHAIN_NOT_ELIGIBLE'), 'sim-only executor is not eligible (TEE kind)');
    await expectCode(
      claimTask(execUS, { taskId, attempt: 1, vrfOutput: outputWithPrefix(1), vrfProof: randomHex(80) }),
      'CHAIN_NOT_ELIGIBLE',
      (d) => assert.equal((d.args as unknown[])[1], 5),
    );
    // A new executor in an allowed region with a lower output takes over.
    const execFR = verifiers[0];
    await expectCode(
      claimTask(execFR, { taskId, attempt: 1, vrfOutput: outputWithPrefix(1), vrfProof: randomHex(80) }),
      'CHAIN_NOT_ELIGIBLE',
      (d) => assert.equal((d.args as unknown[])[1], 2),
    );
    const low = await claimTask(execDE, {
      taskId,
      attempt: 1,
      vrfOutput: outputWithPrefix(100),
      vrfProof: randomHex(80),
    });
    assert.equal(low.best, true);
    assert.equal((await getNode(tc.deployer, addr(execDE2)))?.openAttempts, 0, 'displaced: unlocked');
    assert.equal((await getNode(tc.deployer, addr(execDE)))?.openAttempts, 1);
    // One claim per node per attempt.
    await expectCode(
      claimTask(execDE, { taskId, attempt: 1, vrfOutput: outputWithPrefix(0), vrfProof: randomHex(80) }),
      'CHAIN_ALREADY_CLAIMED',
    );
    assert.equal(await hasClaimed(tc.deployer, { taskId, attempt: 1, node: addr(execDE) }), true);
    assert.equal(await hasClaimed(tc.deployer, { taskId, attempt: 1, node: addr(execUS) }), false);
    t = await getTask(tc.deployer, taskId);
    assert.equal(t?.status, 'claimed');
    assert.equal(t?.executor, addr(execDE));

    await expectCode(
      commitEvidence(execDE, { taskId, attempt: 1, evidenceHash: randomHex(32), location: 'http://e' }),
      'CHAIN_TOO_EARLY',
    );
    await tc.advance(CLAIM + 1);
    await expectCode(
      claimTask(execDE, { taskId, attempt: 1, vrfOutput: outputWithPrefix(0), vrfProof: randomHex(80) }),
      'CHAIN_DEADLINE_PASSED',
    );
    await expectCode(
      commitEvidence(execUS, { taskId, attempt: 1, evidenceHash: randomHex(32), location: 'http://e' }),
      'CHAIN_NOT_EXECUTOR',
    );
    const evidenceHash = randomHex(32);
    await commitEvidence(execDE, { taskId, attempt: 1, evidenceHash, location: 'http://e' });
    t = await getTask(tc.deployer, taskId);
    assert.equal(t?.status, 'attesting');
    assert.equal(t?.evidenceHash, evidenceHash);

    // Attacks on the vote.
    await expectCode(castVote(execDE, taskId, true), 'CHAIN_NOT_ELIGIBLE', (d) =>
      assert.equal((d.args as unknown[])[1], 8),
    );
    await expectCode(castVote(outsider, taskId, true), 'CHAIN_NOT_ELIGIBLE', (d) =>
      assert.equal((d.args as unknown[])[1], 1),
    );
    await expectCode(castVote(verifiers[0], taskId, true, 2), 'CHAIN_WRONG_ATTEMPT');
    await castVote(verifiers[0], taskId, false);
    await expectCode(castVote(verifiers[0], taskId, true), 'CHAIN_ALREADY_VOTED');
    await castVote(verifiers[1], taskId, true);
    await castVote(verifiers[2], taskId, true);
    assert.equal(await getVote(tc.deployer, { taskId, attempt: 1, verifier: addr(verifiers[0]) }), 'fail');
    assert.equal(await getVote(tc.deployer, { taskId, attempt: 1, verifier: addr(verifiers[1]) }), 'pass');
    const last = await castVote(verifiers[3], taskId, true);
    assert.equal(last.status, 'attested');
    // A late vote while attested is recorded (and paid) but changes nothing.
    const late5 = await castVote(verifiers[4], taskId, true);
    assert.equal(late5.status, 'attesting', 'no status change event');
    assert.equal((await getTask(tc.deployer, taskId))?.status, 'attested');
    assert.equal((await getTask(tc.deployer, taskId))?.passVoters, 4);
    assert.deepEqual(
      (await getPassVoters(tc.deployer, taskId, 1)).sort(),
      [1, 2, 3, 4].map((i) => addr(verifiers[i])).sort(),
    );

    // Key releases: only each asset's owner, once.
    await expectCode(
      recordKeyRelease(outsider, { taskId, attempt: 1, assetIndex: 1, releaseHash: randomHex(32) }),
      'CHAIN_NOT_OWNER',
    );
    await expectCode(
      recordKeyRelease(appOwner, { taskId, attempt: 1, assetIndex: 2, releaseHash: randomHex(32) }),
      'CHAIN_INVALID_PARAMETER',
    );
    await recordKeyRelease(dataOwner, { taskId, attempt: 1, assetIndex: 1, releaseHash: randomHex(32) });
    await expectCode(
      recordKeyRelease(dataOwner, { taskId, attempt: 1, assetIndex: 1, releaseHash: randomHex(32) }),
      'CHAIN_ALREADY_RELEASED',
    );
    assert.equal((await getTask(tc.deployer, taskId))?.status, 'attested');
    const receipt = randomHex(300);
    await expectCode(
      submitReceipt(execDE, {
        taskId,
        attempt: 1,
        receipt,
        signature: randomHex(64),
        resultHash: randomHex(32),
        resultLocation: 'r',
      }),
      'CHAIN_WRONG_STATE',
    );
    await recordKeyRelease(appOwner, { taskId, attempt: 1, assetIndex: 0, releaseHash: randomHex(32) });
    assert.equal((await getTask(tc.deployer, taskId))?.status, 'running');
    await expectCode(castVote(outsider, taskId, true), 'CHAIN_WRONG_STATE');

    // Receipt: the executor only; it is paid its share at once.
    const receiptArgs = {
      taskId,
      attempt: 1,
      receipt,
      signature: randomHex(64),
      resultHash: randomHex(32),
      resultLocation: 'http://r',
    };
    await expectCode(submitReceipt(execUS, receiptArgs), 'CHAIN_NOT_EXECUTOR');
    await expectCode(claimVoteReward(verifiers[1], taskId), 'CHAIN_WRONG_STATE');
    const execBefore = await execDE.public.getBalance({ address: addr(execDE) });
    const done = await submitReceipt(execDE, receiptArgs);
    assert.equal(done.receiptHash, sha256(receipt));
    // fee 10: app 1, dataset 2, rest 7: verifiers 30 % = 2.1 split by 4 = 0.525 each, executor 4.9.
    assert.equal(done.paid, (49n * ETH) / 10n);
    const execReceipt = await execDE.public.getTransactionReceipt({ hash: done.hash });
    assert.equal(
      (await execDE.public.getBalance({ address: addr(execDE) })) - execBefore,
      done.paid - execReceipt.gasUsed * execReceipt.effectiveGasPrice,
    );
    t = await getTask(tc.deployer, taskId);
    assert.equal(t?.status, 'completed');
    assert.equal((await getNode(tc.deployer, addr(execDE)))?.openAttempts, 0, 'completed: unlocked');
    assert.equal(t?.receiptHash, sha256(receipt));
    assert.equal(t?.fee, 0n);
    assert.equal(t?.voterReward, (525n * ETH) / 1000n);
    // Settlement twice is refused.
    await expectCode(submitReceipt(execDE, receiptArgs), 'CHAIN_WRONG_STATE');
    await expectCode(timeoutTask(outsider, taskId), 'CHAIN_WRONG_STATE');

    assert.equal(await getCredits(tc.deployer, addr(appOwner)), ETH);
    assert.equal(await getCredits(tc.deployer, addr(dataOwner)), 2n * ETH);
    assert.equal(await getCredits(tc.deployer, addr(execDE)), 0n);
    for (const v of [1, 2, 3, 4]) {
      assert.equal((await claimVoteReward(verifiers[v], taskId)).amount, (525n * ETH) / 1000n);
    }
    assert.equal(
      await getVote(tc.deployer, { taskId, attempt: 1, verifier: addr(verifiers[1]) }),
      'pass-paid',
    );
    // Twice, by a fail voter, by a stranger: nothing.
    await expectCode(claimVoteReward(verifiers[1], taskId), 'CHAIN_NOTHING_TO_WITHDRAW');
    await expectCode(claimVoteReward(verifiers[0], taskId), 'CHAIN_NOTHING_TO_WITHDRAW');
    await expectCode(claimVoteReward(outsider, taskId), 'CHAIN_NOTHING_TO_WITHDRAW');

    const w = await withdraw(dataOwner);
    assert.equal(w.amount, 2n * ETH);
    await expectCode(withdraw(dataOwner), 'CHAIN_NOTHING_TO_WITHDRAW');
    await expectCode(withdraw(verifiers[0]), 'CHAIN_NOTHING_TO_WITHDRAW');
    // The contract holds exactly what is still owed: the app owner's credit.
    assert.equal(await tc.deployer.public.getBalance({ address: tc.contracts.Tasks }), ETH);
  });

  test('a rejected attempt excludes the executor (not slashed: fail seats are unverified); the next attempt re-seeds; replays are refused', async () => {
    const taskId = await newTask();
    const other = await newTask();
    await tc.mine(1);
    for (const id of [taskId, other]) {
      await seedTask(requester, id);
      await claimTask(execDE, {
        taskId: id,
        attempt: 1,
        vrfOutput: outputWithPrefix(1),
        vrfProof: randomHex(80),
      });
    }
    await tc.advance(CLAIM + 1);
    for (const id of [taskId, other]) {
      await commitEvidence(execDE, {
        taskId: id,
        attempt: 1,
        evidenceHash: randomHex(32),
        location: 'http://e',
      });
    }
    // threshold 3 of tau 5: rejected at 5 - 3 + 1 = 3 fail seats; one verifier with 2 seats.
    await castVote(verifiers[0], taskId, false, 1, 2);
    const r = await castVote(verifiers[1], taskId, false);
    assert.equal(r.status, 'rejected');
    const t = await getTask(tc.deployer, taskId);
    assert.equal(t?.status, 'rejected');
    assert.equal(t?.attempt, 2);
    assert.equal(t?.executor, null);
    assert.equal(await isExcluded(tc.deployer, { taskId, node: addr(execDE) }), true);
    assert.equal(await isExcluded(tc.deployer, { taskId: other, node: addr(execDE) }), false);
    const n = await getNode(tc.deployer, addr(execDE));
    assert.equal(n?.status, 'active');
    assert.equal(n?.stake, 10n * ETH);
    assert.equal(n?.openAttempts, 1, 'still executing the other task');
    assert.equal(await getCredits(tc.deployer, addr(requester)), 0n);
    // The same votes cannot be replayed into the other task: it counted nothing.
    const o = await getTask(tc.deployer, other);
    assert.equal(o?.failSeats, 0);
    assert.equal(o?.status, 'attesting');
    // Attempt-1 votes and claims cannot be replayed into attempt 2.
    await expectCode(castVote(verifiers[2], taskId, false, 1), 'CHAIN_WRONG_STATE');
    await seeded(taskId);
    const seed2 = (await getTask(tc.deployer, taskId))?.seed;
    assert.notEqual(seed2, t?.seed);
    await expectCode(
      claimTask(execDE, { taskId, attempt: 1, vrfOutput: randomHex(64), vrfProof: randomHex(80) }),
      'CHAIN_WRONG_ATTEMPT',
    );
    // Excluded executors are not eligible in this task (reason 7) even when active.
    await expectCode(
      claimTask(execDE, { taskId, attempt: 2, vrfOutput: randomHex(64), vrfProof: randomHex(80) }),
      'CHAIN_NOT_ELIGIBLE',
      (d) => assert.equal((d.args as unknown[])[1], 7),
    );
    // An inactive verifier cannot vote on the other task.
    await setNodeActive(verifiers[3], false);
    await expectCode(castVote(verifiers[3], other, true), 'CHAIN_NOT_ELIGIBLE', (d) =>
      assert.equal((d.args as unknown[])[1], 3),
    );
    // The executor (also a verifier) never votes on its own attempt.
    await expectCode(castVote(execDE, other, true), 'CHAIN_NOT_ELIGIBLE', (d) =>
      assert.equal((d.args as unknown[])[1], 8),
    );
  });

  test('nodes that changed after task creation are not eligible (frozen keys and stake)', async () => {
    const taskId = await newTask();
    await updateNode(execDE, await keepKey(execDE, 'DE', ['executor', 'verifier'], ['tpm2']));
    await seeded(taskId);
    await expectCode(
      claimTask(execDE, { taskId, attempt: 1, vrfOutput: randomHex(64), vrfProof: randomHex(80) }),
      'CHAIN_NOT_ELIGIBLE',
      (d) => assert.equal((d.args as unknown[])[1], 4),
    );
  });

  test('votes after the deadline are refused; timeouts at every stage; bounded attempts then refund', async () => {
    const third = await freshExecutor('FR');
    const taskId = await newTask({ fee: 5n * ETH });
    // Refund before the deadline: refused.
    await expectCode(timeoutTask(outsider, taskId), 'CHAIN_TOO_EARLY');
    // Attempt 1: attesting, votes missed (1 pass, 0 fail): excluded, not slashed.
    await toAttesting(taskId, execDE, 1);
    await castVote(verifiers[0], taskId, true);
    await expectCode(timeoutTask(outsider, taskId), 'CHAIN_TOO_EARLY');
    await tc.advance(VOTE + 1);
    await expectCode(castVote(verifiers[1], taskId, true), 'CHAIN_DEADLINE_PASSED');
    assert.equal((await timeoutTask(outsider, taskId)).status, 'rejected');
    assert.equal((await getNode(tc.deployer, addr(execDE)))?.stake, 10n * ETH);
    // Attempt 2: nobody claims.
    await seeded(taskId);
    await tc.advance(CLAIM + 1);
    assert.equal((await timeoutTask(outsider, taskId)).status, 'rejected');
    // Attempt 3: a claim without evidence: slashed, then the task fails and is refunded.
    await seeded(taskId);
    const fr = await tc.account();
    await expectCode(
      claimTask(fr, { taskId, attempt: 3, vrfOutput: randomHex(64), vrfProof: randomHex(80) }),
      'CHAIN_NOT_ELIGIBLE',
    );
    await expectCode(
      claimTask(execDE, { taskId, attempt: 3, vrfOutput: randomHex(64), vrfProof: randomHex(80) }),
      'CHAIN_NOT_ELIGIBLE',
      (d) => assert.equal((d.args as unknown[])[1], 7),
    );
    await claimTask(third, { taskId, attempt: 3, vrfOutput: outputWithPrefix(1), vrfProof: randomHex(80) });
    await tc.advance(CLAIM + EVIDENCE + 1);
    const end = await timeoutTask(outsider, taskId);
    assert.equal((await getNode(tc.deployer, addr(third)))?.status, 'jailed');
    // The slashed 10 % of 5 ether is burnt: the requester gets its refund only.
    assert.equal(end.status, 'failed');
    assert.equal((await getTask(tc.deployer, taskId))?.status, 'failed');
    assert.equal(await getCredits(tc.deployer, addr(requester)), 5n * ETH);
    assert.equal(await getBurned(tc.deployer), ETH / 2n);
    assert.equal((await getNode(tc.deployer, addr(third)))?.openAttempts, 0, 'failed: unlocked');
    await expectCode(timeoutTask(outsider, taskId), 'CHAIN_WRONG_STATE');
    const before = await requester.public.getBalance({ address: addr(requester) });
    const w = await withdraw(requester);
    assert.equal(w.amount, 5n * ETH);
    assert.ok((await requester.public.getBalance({ address: addr(requester) })) > before);
  });

  test('missed evidence and missed receipt slash the executor', async () => {
    const taskId = await newTask();
    await seeded(taskId);
    await claimTask(execDE, { taskId, attempt: 1, vrfOutput: outputWithPrefix(1), vrfProof: randomHex(80) });
    await tc.advance(CLAIM + 1);
    await expectCode(timeoutTask(outsider, taskId), 'CHAIN_TOO_EARLY');
    await tc.advance(EVIDENCE);
    await expectCode(
      commitEvidence(execDE, { taskId, attempt: 1, evidenceHash: randomHex(32), location: 'x' }),
      'CHAIN_DEADLINE_PASSED',
    );
    await timeoutTask(outsider, taskId);
    assert.equal((await getNode(tc.deployer, addr(execDE)))?.status, 'jailed');

    // Attested, but one owner never released its key: the executor is excluded, not slashed
    // (an owner agent refusing — e.g. after a lying voter made the attempt attested — or away
    // is nothing the executor can cause or prevent).
    const fresh = await freshExecutor('DE');
    const t2 = await newTask();
    await toAttesting(t2, fresh);
    for (const v of verifiers.slice(0, 3)) await castVote(v, t2, true);
    await recordKeyRelease(dataOwner, { taskId: t2, attempt: 1, assetIndex: 1, releaseHash: randomHex(32) });
    await tc.advance(RUN + 1);
    const ex = (await getTask(tc.deployer, t2))?.executor as Address;
    const stakeBefore = (await getNode(tc.deployer, ex))?.stake;
    const r2 = await timeoutTask(outsider, t2);
    const ended2 = (await getFerryEvents(tc.deployer, r2.blockNumber, r2.blockNumber)).find(
      (e) => e.eventName === 'AttemptEnded',
    );
    assert.equal(Number(ended2?.args.reason), 6, 'keys-missed');
    assert.equal(ended2?.args.slashed, 0n);
    assert.equal((await getNode(tc.deployer, ex))?.status, 'active');
    assert.equal((await getNode(tc.deployer, ex))?.stake, stakeBefore);
    assert.equal(await isExcluded(tc.deployer, { taskId: t2, node: ex }), true);
    const after2 = await getTask(tc.deployer, t2);
    assert.equal(after2?.status, 'rejected');
    // A key was released in that attempt: the dataset use is not given back if the task fails.
    assert.equal(after2?.keysEverReleased, true);

    // Running (every key released) and no receipt by the run deadline: excluded and slashed.
    const third = await freshExecutor('DE');
    const t3 = await newTask();
    await toAttesting(t3, third);
    for (const v of verifiers.slice(0, 3)) await castVote(v, t3, true);
    await recordKeyRelease(dataOwner, { taskId: t3, attempt: 1, assetIndex: 1, releaseHash: randomHex(32) });
    await recordKeyRelease(appOwner, { taskId: t3, attempt: 1, assetIndex: 0, releaseHash: randomHex(32) });
    assert.equal((await getTask(tc.deployer, t3))?.status, 'running');
    // The run deadline restarted at the last release, at least MIN_RUN_TIME (60 s) > RUN ahead.
    await tc.advance(RUN + 1);
    await expectCode(timeoutTask(outsider, t3), 'CHAIN_TOO_EARLY');
    await tc.advance(MIN_RUN_TIME - RUN);
    const ex3 = (await getTask(tc.deployer, t3))?.executor as Address;
    const r3 = await timeoutTask(outsider, t3);
    const ended3 = (await getFerryEvents(tc.deployer, r3.blockNumber, r3.blockNumber)).find(
      (e) => e.eventName === 'AttemptEnded',
    );
    assert.equal(Number(ended3?.args.reason), 5, 'receipt-missed');
    assert.ok((ended3?.args.slashed as bigint) > 0n);
    assert.equal((await getNode(tc.deployer, ex3))?.status, 'jailed');
  });

  test('the executor may abandon an attested or running attempt: excluded, not slashed, the task goes on', async () => {
    const ex = await freshExecutor('DE');
    const exAddr = addr(ex);
    const t = await newTask();
    await toAttesting(t, ex);
    // Not while the evidence is being judged (it would dodge a rejection's slash), nor by others.
    await expectCode(abandonAttempt(ex, { taskId: t, attempt: 1, cause: 'X: y' }), 'CHAIN_WRONG_STATE');
    for (const v of verifiers.slice(0, 3)) await castVote(v, t, true);
    await expectCode(
      abandonAttempt(outsider, { taskId: t, attempt: 1, cause: 'X: y' }),
      'CHAIN_NOT_EXECUTOR',
    );
    await expectCode(abandonAttempt(ex, { taskId: t, attempt: 2, cause: 'X: y' }), 'CHAIN_WRONG_ATTEMPT');
    // The cause is 1..256 bytes: the contract refuses more, abandonAttempt cuts it to fit (on a
    // character boundary) and names an empty one.
    assert.equal(abandonCause('  '), 'ABANDONED: no cause given');
    assert.equal(abandonCause(`X: ${'a'.repeat(10_000)}`).length, 256);
    assert.equal(abandonCause(`X:${'é'.repeat(200)}`), `X:${'é'.repeat(127)}`);
    await expectCode(
      sendTx(ex, { address: ex.contracts.Tasks, abi: tasksAbi, functionName: 'abandon', args: [t, 1n, ''] }),
      'CHAIN_INVALID_PARAMETER',
    );
    await expectCode(
      sendTx(ex, {
        address: ex.contracts.Tasks,
        abi: tasksAbi,
        functionName: 'abandon',
        args: [t, 1n, 'x'.repeat(257)],
      }),
      'CHAIN_INVALID_PARAMETER',
    );
    await recordKeyRelease(dataOwner, { taskId: t, attempt: 1, assetIndex: 1, releaseHash: randomHex(32) });
    await recordKeyRelease(appOwner, { taskId: t, attempt: 1, assetIndex: 0, releaseHash: randomHex(32) });
    assert.equal((await getTask(tc.deployer, t))?.status, 'running');
    const stakeBefore = (await getNode(tc.deployer, exAddr))?.stake;
    const cause = `ENCLAVE_DATA_UNAVAILABLE: ${'é'.repeat(200)}`;
    const r = await abandonAttempt(ex, { taskId: t, attempt: 1, cause });
    assert.equal(r.status, 'rejected');
    const evs = await getFerryEvents(tc.deployer, r.blockNumber, r.blockNumber);
    const abandoned = evs.find((e) => e.eventName === 'AttemptAbandoned');
    assert.ok(abandoned, 'AttemptAbandoned emitted');
    assert.equal((abandoned.args.executor as string).toLowerCase(), exAddr.toLowerCase());
    const said = abandoned.args.cause as string;
    assert.ok(
      cause.startsWith(said) && Buffer.byteLength(said) <= 256 && Buffer.byteLength(said) > 250,
      said,
    );
    const ended = evs.find((e) => e.eventName === 'AttemptEnded');
    assert.equal(Number(ended?.args.reason), 7, 'abandoned');
    assert.equal(ended?.args.slashed, 0n);
    assert.equal((await getNode(tc.deployer, exAddr))?.status, 'active');
    assert.equal((await getNode(tc.deployer, exAddr))?.stake, stakeBefore);
    assert.equal(await isExcluded(tc.deployer, { taskId: t, node: exAddr }), true);
    const after = await getTask(tc.deployer, t);
    assert.equal(after?.attempt, 2);
    assert.equal(after?.status, 'rejected');
    // Once ended, the attempt cannot be abandoned again.
    await expectCode(abandonAttempt(ex, { taskId: t, attempt: 1, cause: 'X: y' }), 'CHAIN_WRONG_STATE');

    // After the run deadline only `timeout` ends the attempt (an attested one: keys-missed).
    const ex2 = await freshExecutor('DE');
    const t2 = await newTask();
    await toAttesting(t2, ex2);
    for (const v of verifiers.slice(0, 3)) await castVote(v, t2, true);
    await tc.advance(RUN + 1);
    await expectCode(abandonAttempt(ex2, { taskId: t2, attempt: 1, cause: 'X: y' }), 'CHAIN_DEADLINE_PASSED');
  });

  test('a seed whose anchor block hash expired re-anchors; a jailed node reactivates after jail', async () => {
    const taskId = await newTask({ expiresIn: 36_000 });
    await tc.mine(300);
    const r = await seedTask(requester, taskId);
    assert.equal(r.seed, null);
    const t = await getTask(tc.deployer, taskId);
    assert.equal(t?.status, 'created');
    assert.equal(t?.anchorBlock, r.blockNumber);
    await tc.mine(1);
    assert.match((await seedTask(requester, taskId)).seed ?? '', /^0x[0-9a-f]{64}$/);

    // Jail by a missed evidence deadline, then reactivate after jailDuration.
    await claimTask(execDE, { taskId, attempt: 1, vrfOutput: outputWithPrefix(1), vrfProof: randomHex(80) });
    await tc.advance(CLAIM + EVIDENCE + 1);
    await timeoutTask(outsider, taskId);
    assert.equal((await getNode(tc.deployer, addr(execDE)))?.status, 'jailed');
    await expectCode(setNodeActive(execDE, true), 'CHAIN_TOO_EARLY');
    await tc.advance(101);
    await setNodeActive(execDE, true);
    const n = await getNode(tc.deployer, addr(execDE));
    assert.equal(n?.status, 'active');
    assert.equal(n?.stake, 9n * ETH);
    // Registry penalties come only from the Tasks contract.
    await expectCode(
      sendTx(outsider, {
        address: tc.contracts.NodeRegistry,
        abi: nodeRegistryAbi,
        functionName: 'slash',
        args: [addr(execUS), 1n],
      }),
      'CHAIN_UNAUTHORIZED',
    );
    for (const functionName of ['lock', 'unlock'] as const) {
      await expectCode(
        sendTx(outsider, {
          address: tc.contracts.NodeRegistry,
          abi: nodeRegistryAbi,
          functionName,
          args: [addr(execUS)],
        }),
        'CHAIN_UNAUTHORIZED',
      );
    }
    // Tasks accepts no plain ether (slashed stake is burnt in the registry, never sent).
    await expectCode(
      outsider.wallet
        .sendTransaction({ to: tc.contracts.Tasks, value: 1n })
        .catch((e) => Promise.reject(toChainError(e, 'send'))),
      'CHAIN_REVERTED',
    );
    // A node's parameters can only be changed by the node itself.
    await expectCode(updateNode(outsider, await nodeParams('DE', ['executor'], ['tpm2'])), 'CHAIN_NOT_FOUND');
  });

  test('seven datasets: every region must be allowed by every dataset; eight key releases', async () => {
    const frExec = await freshExecutor('FR');
    const ids: bigint[] = [datasetId];
    for (let i = 0; i < 6; i++) {
      const regions = i === 5 ? ['FR'] : ['FR', 'DE', 'NL'];
      const d = await createDataset(dataOwner, {
        ciphertextHash: randomHex(32),
        endpoint: 'http://d',
        price: 0n,
        policy: policy({ allowedRegions: regions }),
      });
      ids.push(d.datasetId);
    }
    await expectCode(newTask({ datasetIds: [...ids, 99n] }), 'CHAIN_INVALID_PARAMETER');
    await expectCode(newTask({ datasetIds: [ids[1], ids[0]] }), 'CHAIN_INVALID_PARAMETER');
    const taskId = await newTask({ datasetIds: ids });
    await seeded(taskId);
    await expectCode(
      claimTask(execDE, { taskId, attempt: 1, vrfOutput: randomHex(64), vrfProof: randomHex(80) }),
      'CHAIN_NOT_ELIGIBLE',
      (d) => assert.equal((d.args as unknown[])[1], 5),
    );
    await claimTask(frExec, { taskId, attempt: 1, vrfOutput: outputWithPrefix(1), vrfProof: randomHex(80) });
    await tc.advance(CLAIM + 1);
    await commitEvidence(frExec, { taskId, attempt: 1, evidenceHash: randomHex(32), location: 'x' });
    for (const v of verifiers.slice(0, 3)) await castVote(v, taskId, true);
    await recordKeyRelease(appOwner, { taskId, attempt: 1, assetIndex: 0, releaseHash: randomHex(32) });
    for (let i = 1; i <= 7; i++) {
      assert.equal((await getTask(tc.deployer, taskId))?.status, 'attested');
      await recordKeyRelease(dataOwner, { taskId, attempt: 1, assetIndex: i, releaseHash: randomHex(32) });
    }
    const t = await getTask(tc.deployer, taskId);
    assert.equal(t?.status, 'running');
    assert.equal(t?.releasedMask, 255);
    await expectCode(
      recordKeyRelease(dataOwner, { taskId, attempt: 1, assetIndex: 8, releaseHash: randomHex(32) }),
      'INVALID_ARGUMENT',
    );
  });

  test('expiry refunds the escrow in any non-final state', async () => {
    const taskId = await newTask({ fee: 4n * ETH, expiresIn: 100 });
    await toAttesting(taskId);
    await tc.advance(101);
    assert.equal((await timeoutTask(outsider, taskId)).status, 'expired');
    assert.equal(await getCredits(tc.deployer, addr(requester)), 4n * ETH);
  });
});

/** A new executor registered now (for tasks created later). */
async function freshExecutor(region: string): Promise<ChainWriter> {
  const c = await tc.account();
  await registerNode(c, { ...(await nodeParams(region, ['executor'], ['tpm2'])), stake: 5n * ETH });
  return c;
}

async function deployAttacker(): Promise<Address> {
  const hash = await tc.deployer.wallet.deployContract({
    abi: reentrantReceiverAbi,
    bytecode: reentrantReceiverBytecode as Hex,
    account: tc.deployer.wallet.account,
    chain: tc.deployer.wallet.chain,
  });
  return (await tc.deployer.public.waitForTransactionReceipt({ hash })).contractAddress as Address;
}

describe('operators', () => {
  test('a node declares its operator (default itself); getNode returns it, also as of a past block', async () => {
    const op = addr(outsider);
    assert.equal(
      (await getNode(tc.deployer, addr(execUS)))?.operator,
      addr(execUS),
      'no declaration: itself',
    );
    const before = await tc.deployer.public.getBlockNumber();
    const r = await updateNode(execUS, {
      ...(await keepKey(execUS, 'US', ['executor'], ['tpm2'])),
      operator: op,
    });
    assert.equal((await getNode(tc.deployer, addr(execUS)))?.operator, op);
    assert.equal(
      (await getNode(tc.deployer, addr(execUS)))?.changedBlock,
      r.blockNumber,
      'eligibility restarts',
    );
    // The registry as it was before the update (anvil keeps the state history).
    const then = await getNode(tc.deployer, addr(execUS), { blockNumber: before });
    assert.equal(then?.operator, addr(execUS));
    assert.ok(then && then.changedBlock < r.blockNumber);
    assert.equal(await getNode(tc.deployer, addr(outsider), { blockNumber: before }), null);
    // Declaring oneself is the same as declaring none.
    await updateNode(execUS, {
      ...(await keepKey(execUS, 'US', ['executor'], ['tpm2'])),
      operator: addr(execUS),
    });
    assert.equal((await getNode(tc.deployer, addr(execUS)))?.operator, addr(execUS));
    await assert.rejects(
      updateNode(execUS, {
        ...(await keepKey(execUS, 'US', ['executor'], ['tpm2'])),
        operator: '0x1234' as Address,
      }),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
    );
  });

  test("a verifier of the executor's operator cannot vote (NotEligible 9); others can", async () => {
    const op = addr(outsider);
    // execUS (the executor) and verifiers[0] declare the same operator; verifiers[1] declares
    // execUS itself as its operator, i.e. the executor's own (undeclared) operator would match.
    await updateNode(execUS, { ...(await keepKey(execUS, 'US', ['executor'], ['tpm2'])), operator: op });
    await updateNode(verifiers[0], {
      ...(await keepKey(verifiers[0], 'FR', ['verifier'], ['tpm2'])),
      operator: op,
    });
    await updateNode(verifiers[1], {
      ...(await keepKey(verifiers[1], 'FR', ['verifier'], ['tpm2'])),
      operator: addr(execSim),
    });
    await updateNode(verifiers[2], {
      ...(await keepKey(verifiers[2], 'FR', ['verifier'], ['tpm2'])),
      operator: addr(execDE),
    });
    await tc.mine(1);
    const taskId = await newTask({ datasetIds: [await usDataset()] });
    await toAttesting(taskId, execUS);
    await expectCode(castVote(verifiers[0], taskId, true), 'CHAIN_NOT_ELIGIBLE', (d) =>
      assert.equal((d.args as unknown[])[1], 9),
    );
    await castVote(verifiers[1], taskId, true);
    await castVote(verifiers[3], taskId, true);
    // A node whose operator is the executor itself.
    await updateNode(verifiers[4], {
      ...(await keepKey(verifiers[4], 'FR', ['verifier'], ['tpm2'])),
      operator: addr(execSim),
    });
    await tc.mine(1);
    const t3 = await newTask({ datasetIds: [await usDataset(['tpm2', 'sim'])] });
    await toAttesting(t3, execSim);
    await expectCode(castVote(verifiers[1], t3, true), 'CHAIN_NOT_ELIGIBLE', (d) =>
      assert.equal((d.args as unknown[])[1], 9),
    );
    await expectCode(castVote(verifiers[4], t3, true), 'CHAIN_NOT_ELIGIBLE', (d) =>
      assert.equal((d.args as unknown[])[1], 9),
    );
    await castVote(verifiers[2], t3, true);
  });
});

/** A dataset open to any region (and the given TEE kinds), for executors outside DE/FR. */
async function usDataset(teeKinds: ('tpm2' | 'sim')[] = ['tpm2']): Promise<bigint> {
  const r = await createDataset(dataOwner, {
    ciphertextHash: randomHex(32),
    endpoint: 'http://d',
    price: 0n,
    policy: policy({ allowedRegions: [], teeKinds }),
  });
  return r.datasetId;
}

describe('appraisal policy documents', () => {
  test('registerDataset and updateDatasetPolicy publish the document; its SHA-256 must be the hash', async () => {
    const doc1 = randomHex(100);
    const doc2 = randomHex(16384);
    const start = await tc.deployer.public.getBlockNumber();
    const { datasetId: id } = await createDataset(dataOwner, {
      ciphertextHash: randomHex(32),
      endpoint: 'http://d',
      price: 0n,
      policy: policy({ appraisalPolicyDocument: doc1 }),
    });
    assert.equal((await getDataset(tc.deployer, id))?.policy.appraisalPolicyHash, sha256(doc1));
    await updateDatasetPolicy(dataOwner, {
      datasetId: id,
      policy: policy({ appraisalPolicyDocument: doc2 }),
    });
    assert.equal((await getDataset(tc.deployer, id))?.policy.appraisalPolicyHash, sha256(doc2));
    const docs = await getPolicyDocuments(tc.deployer, id, { fromBlock: start });
    assert.deepEqual(
      docs.map((d) => [d.policyEpoch, d.appraisalPolicyHash, `0x${Buffer.from(d.document).toString('hex')}`]),
      [
        [0, sha256(doc1), doc1],
        [1, sha256(doc2), doc2],
      ],
    );
    assert.deepEqual(await getPolicyDocuments(tc.deployer, 999n), []);
    // The contract refuses a hash that is not the document's, an empty and an oversized document.
    await expectCode(
      createDataset(dataOwner, {
        ciphertextHash: randomHex(32),
        endpoint: 'http://d',
        price: 0n,
        policy: policy({ appraisalPolicyDocument: doc1, appraisalPolicyHash: sha256(doc2) }),
      }),
      'CHAIN_INVALID_PARAMETER',
      (d) => assert.deepEqual(d.args, ['appraisalPolicyHash']),
    );
    await expectCode(
      updateDatasetPolicy(dataOwner, {
        datasetId: id,
        policy: policy({ appraisalPolicyDocument: doc1, appraisalPolicyHash: randomHex(32) }),
      }),
      'CHAIN_INVALID_PARAMETER',
      (d) => assert.deepEqual(d.args, ['appraisalPolicyHash']),
    );
    const raw = (document: Hex) =>
      sendTx(dataOwner, {
        address: tc.contracts.Assets,
        abi: assetsAbi,
        functionName: 'registerDataset',
        args: [
          randomHex(32),
          'http://d',
          0n,
          {
            anyApp: true,
            allowedApps: [],
            allowedRegions: [],
            teeKinds: 2,
            tau: 1,
            threshold: 1,
            maxUses: 0,
            expiresAt: 0,
            requesters: [],
            appraisalPolicyHash: sha256(document),
          },
          document,
        ],
      });
    await expectCode(raw('0x'), 'CHAIN_INVALID_PARAMETER', (d) =>
      assert.deepEqual(d.args, ['appraisalPolicy']),
    );
    await expectCode(raw(randomHex(16385)), 'CHAIN_INVALID_PARAMETER', (d) =>
      assert.deepEqual(d.args, ['appraisalPolicy']),
    );
    // The client refuses them before sending.
    for (const bad of ['0x', randomHex(16385)] as Hex[]) {
      await assert.rejects(
        createDataset(dataOwner, {
          ciphertextHash: randomHex(32),
          endpoint: 'http://d',
          price: 0n,
          policy: policy({ appraisalPolicyDocument: bad }),
        }),
        (e) => isFerryError(e, 'INVALID_ARGUMENT'),
      );
    }
  });
});

describe('re-entrancy on payouts', () => {
  test('an executor contract that re-enters on its receipt payment gains nothing', async () => {
    const attacker = await deployAttacker();
    const exec = (target: Address, data: Hex, value = 0n) =>
      sendTx(requester, {
        address: attacker,
        abi: reentrantReceiverAbi,
        functionName: 'exec',
        args: [target, value, data],
        value,
      });
    await exec(
      tc.contracts.NodeRegistry,
      encodeFunctionData({
        abi: nodeRegistryAbi,
        functionName: 'register',
        args: [
          {
            roles: 1,
            region: '0x4445',
            teeKinds: 2,
            vrfPublicKey: randomHex(32),
            signingKey: randomHex(32),
            endpoint: 'http://evil',
            operator: '0x0000000000000000000000000000000000000000',
          },
        ],
      }),
      5n * ETH,
    );
    const taskId = await newTask({ fee: 10n * ETH });
    await seeded(taskId);
    const T = tc.contracts.Tasks;
    await exec(
      T,
      encodeFunctionData({
        abi: tasksAbi,
        functionName: 'claim',
        args: [taskId, 1n, outputWithPrefix(0), randomHex(80)],
      }),
    );
    await tc.advance(CLAIM + 1);
    await exec(
      T,
      encodeFunctionData({
        abi: tasksAbi,
        functionName: 'commitEvidence',
        args: [taskId, 1n, randomHex(32), 'x'],
      }),
    );
    for (const v of verifiers.slice(0, 3)) await castVote(v, taskId, true);
    await recordKeyRelease(appOwner, { taskId, attempt: 1, assetIndex: 0, releaseHash: randomHex(32) });
    await recordKeyRelease(dataOwner, { taskId, attempt: 1, assetIndex: 1, releaseHash: randomHex(32) });
    // On payment it tries to settle again.
    const again = encodeFunctionData({
      abi: tasksAbi,
      functionName: 'submitReceipt',
      args: [taskId, 1n, randomHex(100), randomHex(64), randomHex(32), 'r'],
    });
    await sendTx(requester, {
      address: attacker,
      abi: reentrantReceiverAbi,
      functionName: 'configure',
      args: [T, again, true],
    });
    await exec(T, again);
    assert.equal((await getTask(tc.deployer, taskId))?.status, 'completed');
    const read = (fn: 'reentrySucceeded' | 'reentryFailed' | 'received') =>
      tc.deployer.public.readContract({ address: attacker, abi: reentrantReceiverAbi, functionName: fn });
    assert.equal(await read('reentrySucceeded'), 0n);
    assert.equal(await read('reentryFailed'), 1n);
    // Paid once: 10 - 1 - 2 = 7, 70 % of it.
    assert.equal(await read('received'), (49n * ETH) / 10n);
  });

  test('a receiver that re-enters withdraw cannot take more than its credit', async () => {
    const attacker = await deployAttacker();
    const call = (data: Hex, value = 0n) =>
      sendTx(requester, {
        address: attacker,
        abi: reentrantReceiverAbi,
        functionName: 'exec',
        args: [tc.contracts.Tasks, value, data],
        value,
      });
    // The attacker requests a task that expires: its refund is credited to it.
    await call(
      encodeFunctionData({
        abi: tasksAbi,
        functionName: 'createTask',
        args: [
          {
            appId,
            datasetIds: [datasetId],
            inputHash: randomHex(32),
            resultRecipient: randomHex(32),
            inputLocation: '',
            expiresAt: (await now()) + 20,
            claimWindow: 5,
            evidenceWindow: 10,
            voteWindow: 5,
            runWindow: 5,
            claimTarget: 0,
          },
        ],
      }),
      3n * ETH,
    );
    await tc.advance(21);
    await timeoutTask(outsider, 1n);
    assert.equal(await getCredits(tc.deployer, attacker), 3n * ETH);
    const withdrawData = encodeFunctionData({ abi: tasksAbi, functionName: 'withdraw' });
    await sendTx(requester, {
      address: attacker,
      abi: reentrantReceiverAbi,
      functionName: 'configure',
      args: [tc.contracts.Tasks, withdrawData, false],
    });
    // Re-entry refused -> the payment fails -> the withdrawal reverts; the credit stays.
    await expectCode(call(withdrawData), 'CHAIN_TRANSFER_FAILED');
    assert.equal(await getCredits(tc.deployer, attacker), 3n * ETH);
    // Swallowing the refused re-entry: paid exactly once.
    await sendTx(requester, {
      address: attacker,
      abi: reentrantReceiverAbi,
      functionName: 'configure',
      args: [tc.contracts.Tasks, withdrawData, true],
    });
    await call(withdrawData);
    assert.equal(await getCredits(tc.deployer, attacker), 0n);
    assert.equal(await tc.deployer.public.getBalance({ address: attacker }), 3n * ETH);
    const read = (fn: 'reentrySucceeded' | 'reentryFailed' | 'received') =>
      tc.deployer.public.readContract({ address: attacker, abi: reentrantReceiverAbi, functionName: fn });
    assert.equal(await read('reentrySucceeded'), 0n);
    assert.equal(await read('reentryFailed'), 1n);
    assert.equal(await read('received'), 3n * ETH);
  });
});
