/**
 * Apps' own policies and the committee combination, against a real anvil (one chain, evm
 * snapshot / revert around every test): an app registers its TEE kinds and appraisal policy
 * document, only its owner updates them, bad kinds / hashes / documents are refused; a task's
 * TEE kinds are the app's AND its datasets' (an executor of a kind only the datasets allow
 * cannot claim); a co-dataset cannot dilute another owner's committee ratio (security review
 * finding 12); getApp and getDataset read the state as of an earlier block.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeEventLog, type Hex, sha256 } from 'viem';
import { isFerryError } from '../kernel/index.ts';
import { assetsAbi } from './abi.ts';
import {
  type ChainWriter,
  claimTask,
  commitEvidence,
  createApp,
  createDataset,
  createTask,
  type DatasetPolicy,
  getApp,
  getDataset,
  getPolicyDocuments,
  getTask,
  registerNode,
  revokeApp,
  seedTask,
  sendTx,
  type TeeKind,
  updateAppPolicy,
  updateDatasetPolicy,
  vote,
} from './index.ts';
import { outputWithPrefix, randomHex, isolateEachTest, startTestChain, type TestChain } from './testing.ts';

const ETH = 10n ** 18n;
const MEASUREMENT = sha256(new TextEncoder().encode('an app module'));
const WINDOW = 10;

let tc: TestChain;
let appOwner: ChainWriter;
let dataOwner: ChainWriter;
let mallory: ChainWriter;
let execTpm2: ChainWriter;
let execSim: ChainWriter;
let verifier: ChainWriter;

function policy(over: Partial<DatasetPolicy> = {}): DatasetPolicy {
  return {
    allowedApps: 'any',
    allowedRegions: [],
    teeKinds: ['sim', 'tpm2', 'tdx'],
    tau: 5,
    threshold: 3,
    maxUses: 0,
    expiresAt: 0,
    requesters: [],
    appraisalPolicyDocument: randomHex(64),
    ...over,
  };
}

async function app(teeKinds: TeeKind[], document: Hex = randomHex(64), by = appOwner) {
  return createApp(by, {
    measurement: MEASUREMENT,
    ciphertextHash: randomHex(32),
    endpoint: 'http://a',
    price: 0n,
    teeKinds,
    appraisalPolicyDocument: document,
  });
}

async function dataset(over: Partial<DatasetPolicy> = {}, by = dataOwner): Promise<bigint> {
  return (
    await createDataset(by, {
      ciphertextHash: randomHex(32),
      endpoint: 'http://d',
      price: 0n,
      policy: policy(over),
    })
  ).datasetId;
}

async function task(appId: bigint, datasetIds: bigint[], by = mallory) {
  const now = Number((await tc.deployer.public.getBlock()).timestamp);
  return createTask(by, {
    appId,
    datasetIds,
    inputHash: randomHex(32),
    resultRecipient: randomHex(32),
    inputLocation: 'http://127.0.0.1:1/input',
    fee: 0n,
    expiresAt: now + 3600,
    claimWindow: WINDOW,
    evidenceWindow: WINDOW,
    voteWindow: WINDOW,
    runWindow: WINDOW,
  });
}

async function expectCode(p: Promise<unknown>, code: string, args?: unknown[]) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isFerryError(e), `expected a FerryError, got ${String(e)}`);
    assert.equal(e.code, code, `${e.code}: ${e.message} ${e.hints.join(' / ')}`);
    if (args) assert.deepEqual((e.details as { args?: unknown[] } | undefined)?.args, args);
    return true;
  });
}

const hexOf = (b: Uint8Array) => `0x${Buffer.from(b).toString('hex')}`;

before(async () => {
  tc = await startTestChain();
  [appOwner, dataOwner, mallory, execTpm2, execSim, verifier] = await Promise.all(
    Array.from({ length: 6 }, () => tc.account()),
  );
  const node = (roles: ('executor' | 'verifier')[], teeKinds: TeeKind[]) => ({
    roles,
    region: 'DE',
    teeKinds,
    vrfPublicKey: randomHex(32),
    signingKey: randomHex(32),
    endpoint: 'http://127.0.0.1:1/node',
    stake: 2n * ETH,
  });
  await registerNode(execTpm2, node(['executor'], ['tpm2']));
  await registerNode(execSim, node(['executor'], ['sim']));
  // 10 ether (10,000 stake units): enough for the 4000 seats voted below (seats never exceed
  // the voter's stake units, Tasks.seatBound).
  await registerNode(verifier, { ...node(['verifier'], ['tpm2']), stake: 10n * ETH });
  await tc.mine(1);
});

after(async () => {
  await tc?.stop();
});

isolateEachTest(() => tc);

describe('app policies', () => {
  test('registerApp stores the TEE kinds and policy hash and emits the document', async () => {
    const doc = randomHex(300);
    const start = await tc.deployer.public.getBlockNumber();
    const r = await app(['tpm2', 'sev-snp'], doc);
    const a = await getApp(tc.deployer, r.appId);
    assert.ok(a);
    assert.deepEqual(a.teeKinds, ['tpm2', 'sev-snp']);
    assert.equal(a.appraisalPolicyHash, sha256(doc));
    assert.equal(a.policyEpoch, 0);
    // The event carries everything a verifier needs, the document included.
    const receipt = await tc.deployer.public.getTransactionReceipt({ hash: r.hash });
    const ev = receipt.logs
      .map((l) => decodeEventLog({ abi: assetsAbi, data: l.data, topics: l.topics }))
      .find((e) => e.eventName === 'AppRegistered');
    assert.ok(ev && ev.eventName === 'AppRegistered');
    assert.equal(ev.args.teeKinds, 2 | 8);
    assert.equal(ev.args.appraisalPolicyHash, sha256(doc));
    assert.equal(ev.args.appraisalPolicy, doc);
    const docs = await getPolicyDocuments(tc.deployer, r.appId, { assetKind: 'app', fromBlock: start });
    assert.deepEqual(
      docs.map((d) => [d.assetKind, d.assetId, d.policyEpoch, d.appraisalPolicyHash, hexOf(d.document)]),
      [['app', r.appId, 0, sha256(doc), doc]],
    );
    // The dataset namespace is separate: no dataset with that id published this document.
    assert.deepEqual(await getPolicyDocuments(tc.deployer, r.appId), []);
    assert.deepEqual(await getPolicyDocuments(tc.deployer, 999n, { assetKind: 'app' }), []);
  });

  test('only the owner updates the policy, not after revocation; the epoch counts updates', async () => {
    const doc0 = randomHex(64);
    const doc1 = randomHex(16384);
    const { appId } = await app(['tpm2'], doc0);
    // mallory plays the attacker: she would widen the app's kinds to sim and swap its policy.
    await expectCode(
      updateAppPolicy(mallory, { appId, teeKinds: ['sim'], appraisalPolicyDocument: randomHex(64) }),
      'CHAIN_NOT_OWNER',
    );
    await expectCode(
      updateAppPolicy(appOwner, { appId: 999n, teeKinds: ['sim'], appraisalPolicyDocument: doc1 }),
      'CHAIN_NOT_FOUND',
    );
    const a0 = await getApp(tc.deployer, appId);
    assert.deepEqual([a0?.teeKinds, a0?.appraisalPolicyHash, a0?.policyEpoch], [['tpm2'], sha256(doc0), 0]);
    await updateAppPolicy(appOwner, { appId, teeKinds: ['tdx', 'sgx'], appraisalPolicyDocument: doc1 });
    const a1 = await getApp(tc.deployer, appId);
    assert.deepEqual(
      [a1?.teeKinds, a1?.appraisalPolicyHash, a1?.policyEpoch],
      [['tdx', 'sgx'], sha256(doc1), 1],
    );
    const docs = await getPolicyDocuments(tc.deployer, appId, { assetKind: 'app' });
    assert.deepEqual(
      docs.map((d) => [d.policyEpoch, d.appraisalPolicyHash, hexOf(d.document)]),
      [
        [0, sha256(doc0), doc0],
        [1, sha256(doc1), doc1],
      ],
    );
    await revokeApp(appOwner, appId);
    await expectCode(
      updateAppPolicy(appOwner, { appId, teeKinds: ['tpm2'], appraisalPolicyDocument: doc0 }),
      'CHAIN_ASSET_REVOKED',
    );
  });

  test('bad TEE kinds, a zero or wrong hash and bad documents are refused', async () => {
    const doc = randomHex(64);
    const raw = (teeKinds: number, hash: Hex, document: Hex) =>
      sendTx(appOwner, {
        address: tc.contracts.Assets,
        abi: assetsAbi,
        functionName: 'registerApp',
        args: [MEASUREMENT, randomHex(32), 'http://a', 0n, teeKinds, hash, document],
      });
    await expectCode(raw(0, sha256(doc), doc), 'CHAIN_INVALID_PARAMETER', ['teeKinds']);
    await expectCode(raw(0x20, sha256(doc), doc), 'CHAIN_INVALID_PARAMETER', ['teeKinds']);
    await expectCode(raw(2, `0x${'00'.repeat(32)}`, doc), 'CHAIN_INVALID_PARAMETER', ['appraisalPolicyHash']);
    await expectCode(raw(2, sha256(randomHex(64)), doc), 'CHAIN_INVALID_PARAMETER', ['appraisalPolicyHash']);
    await expectCode(raw(2, sha256('0x'), '0x'), 'CHAIN_INVALID_PARAMETER', ['appraisalPolicy']);
    const big = randomHex(16385);
    await expectCode(raw(2, sha256(big), big), 'CHAIN_INVALID_PARAMETER', ['appraisalPolicy']);
    // The same through the client: the contract's refusals, or the client's own before sending.
    await expectCode(
      createApp(appOwner, {
        measurement: MEASUREMENT,
        ciphertextHash: randomHex(32),
        endpoint: 'http://a',
        price: 0n,
        teeKinds: ['tpm2'],
        appraisalPolicyDocument: doc,
        appraisalPolicyHash: `0x${'00'.repeat(32)}`,
      }),
      'CHAIN_INVALID_PARAMETER',
      ['appraisalPolicyHash'],
    );
    const { appId } = await app(['tpm2'], doc);
    await expectCode(
      updateAppPolicy(appOwner, {
        appId,
        teeKinds: ['tpm2'],
        appraisalPolicyDocument: doc,
        appraisalPolicyHash: sha256(randomHex(8)),
      }),
      'CHAIN_INVALID_PARAMETER',
      ['appraisalPolicyHash'],
    );
    const rawUpdate = (teeKinds: number) =>
      sendTx(appOwner, {
        address: tc.contracts.Assets,
        abi: assetsAbi,
        functionName: 'updateAppPolicy',
        args: [appId, teeKinds, sha256(doc), doc],
      });
    await expectCode(rawUpdate(0), 'CHAIN_INVALID_PARAMETER', ['teeKinds']);
    await expectCode(rawUpdate(0xffff), 'CHAIN_INVALID_PARAMETER', ['teeKinds']);
    for (const bad of [
      { teeKinds: [] as TeeKind[], appraisalPolicyDocument: doc },
      { teeKinds: ['nitro' as TeeKind], appraisalPolicyDocument: doc },
      { teeKinds: ['tpm2'] as TeeKind[], appraisalPolicyDocument: '0x' as Hex },
      { teeKinds: ['tpm2'] as TeeKind[], appraisalPolicyDocument: big },
    ]) {
      await assert.rejects(updateAppPolicy(appOwner, { appId, ...bad }), (e) =>
        isFerryError(e, 'INVALID_ARGUMENT'),
      );
    }
    assert.equal((await getApp(tc.deployer, appId))?.policyEpoch, 0);
  });
});

describe('task TEE kinds', () => {
  test("a task's TEE kinds are the app's AND every dataset's; none in common is refused", async () => {
    const { appId } = await app(['sim', 'tpm2']);
    const d1 = await dataset({ teeKinds: ['tpm2', 'tdx', 'sim'] });
    const d2 = await dataset({ teeKinds: ['tpm2', 'tdx'] });
    const { taskId } = await task(appId, [d1, d2]);
    assert.deepEqual((await getTask(tc.deployer, taskId))?.teeKinds, ['tpm2']);
    const { appId: tdxOnly } = await app(['tdx', 'sgx']);
    const d3 = await dataset({ teeKinds: ['tpm2', 'sim'] });
    await expectCode(task(tdxOnly, [d3]), 'CHAIN_POLICY_FORBIDS');
    // No use was counted by the refused task.
    assert.equal((await getDataset(tc.deployer, d3))?.uses, 0);
  });

  test('an executor of a kind only the datasets allow cannot claim; tasks keep their kinds after an app update', async () => {
    // The dataset allows sim; the app owner does not. A sim executor (mallory's) loses the claim.
    const { appId } = await app(['tpm2']);
    const ds = await dataset({ teeKinds: ['sim', 'tpm2'] });
    const { taskId } = await task(appId, [ds]);
    await tc.mine(1);
    await seedTask(mallory, taskId);
    const claim = (c: ChainWriter) =>
      claimTask(c, { taskId, attempt: 1, vrfOutput: outputWithPrefix(1), vrfProof: randomHex(80) });
    await expectCode(claim(execSim), 'CHAIN_NOT_ELIGIBLE');
    // The app owner now allows sim: the task already created keeps tpm2 only.
    await updateAppPolicy(appOwner, {
      appId,
      teeKinds: ['sim', 'tpm2'],
      appraisalPolicyDocument: randomHex(64),
    });
    await expectCode(claim(execSim), 'CHAIN_NOT_ELIGIBLE');
    await claim(execTpm2);
    const { taskId: later } = await task(appId, [ds]);
    assert.deepEqual((await getTask(tc.deployer, later))?.teeKinds, ['sim', 'tpm2']);
  });
});

describe('committee combination', () => {
  /** The task's tau and threshold for datasets with these (tau, threshold) pairs. */
  async function combined(pairs: [number, number][]): Promise<[number, number]> {
    const { appId } = await app(['tpm2']);
    const ids: bigint[] = [];
    for (const [tau, threshold] of pairs) ids.push(await dataset({ tau, threshold }));
    const { taskId } = await task(appId, ids);
    const t = await getTask(tc.deployer, taskId);
    assert.ok(t);
    return [t.tau, t.threshold];
  }

  test("a co-dataset with tau 65535 / threshold 1 cannot dilute another owner's 5000/4000", async () => {
    // security-review finding 12: independent maxima gave 65535/4000 (6 % of the seats pass).
    const [tau, threshold] = await combined([
      [5000, 4000],
      [65535, 1],
    ]);
    assert.equal(tau, 65535);
    assert.equal(threshold, Math.ceil((4000 * 65535) / 5000));
    assert.ok(threshold / tau >= 4000 / 5000);
    // Rejection needs tau - threshold + 1 fail seats: at most alice's fraction (1001/5000).
    assert.ok((tau - threshold + 1) / tau <= 1001 / 5000 + 1 / tau);
    assert.deepEqual(
      await combined([
        [65535, 1],
        [5000, 4000],
      ]),
      [tau, threshold],
      'order does not matter',
    );
  });

  test('the seats that passed the diluted task no longer attest it', async () => {
    const { appId } = await app(['tpm2']);
    const alice = await dataset({ tau: 5000, threshold: 4000 });
    const mine = await dataset({ tau: 65535, threshold: 1 }, mallory);
    const { taskId } = await task(appId, [alice, mine]);
    await tc.mine(1);
    await seedTask(mallory, taskId);
    await claimTask(execTpm2, {
      taskId,
      attempt: 1,
      vrfOutput: outputWithPrefix(1),
      vrfProof: randomHex(80),
    });
    await tc.advance(WINDOW + 1);
    await commitEvidence(execTpm2, {
      taskId,
      attempt: 1,
      evidenceHash: randomHex(32),
      location: 'http://e/1',
    });
    // 4000 pass seats: what the old maxima (65535/4000) needed to attest.
    await vote(verifier, {
      taskId,
      attempt: 1,
      pass: true,
      resultHash: randomHex(32),
      seats: 4000,
      vrfOutput: randomHex(64),
      vrfProof: randomHex(80),
    });
    const t = await getTask(tc.deployer, taskId);
    assert.equal(t?.status, 'attesting');
    assert.equal(t?.passSeats, 4000);
    assert.equal(t?.threshold, 52428);
  });

  test('ratios round up, never exceed tau, and a single dataset keeps its own parameters', async () => {
    assert.deepEqual(await combined([[5, 3]]), [5, 3]);
    // ceil(5 * 10 / 7) = 8: 8/10 >= 5/7.
    assert.deepEqual(
      await combined([
        [7, 5],
        [10, 1],
      ]),
      [10, 8],
    );
    // A unanimous dataset keeps the task unanimous.
    assert.deepEqual(
      await combined([
        [3, 3],
        [10, 1],
        [4, 2],
      ]),
      [10, 10],
    );
    assert.deepEqual(
      await combined([
        [65535, 65535],
        [1, 1],
      ]),
      [65535, 65535],
    );
    // Equal ratios: the larger committee at the same ratio.
    assert.deepEqual(
      await combined([
        [10, 6],
        [20, 12],
      ]),
      [20, 12],
    );
  });
});

describe('reading at a block', () => {
  test('getApp and getDataset return the state as of an earlier block', async () => {
    const doc0 = randomHex(64);
    const { appId, blockNumber: appBlock } = await app(['tpm2'], doc0);
    const ds = await dataset({ tau: 5, threshold: 3, teeKinds: ['tpm2'] });
    const before = await tc.deployer.public.getBlockNumber();
    await tc.mine(2);
    await updateAppPolicy(appOwner, { appId, teeKinds: ['tdx'], appraisalPolicyDocument: randomHex(64) });
    await updateDatasetPolicy(dataOwner, {
      datasetId: ds,
      policy: policy({ tau: 9, threshold: 9, teeKinds: ['sgx'] }),
    });
    const aThen = await getApp(tc.deployer, appId, { blockNumber: before });
    assert.deepEqual(
      [aThen?.teeKinds, aThen?.appraisalPolicyHash, aThen?.policyEpoch],
      [['tpm2'], sha256(doc0), 0],
    );
    const aNow = await getApp(tc.deployer, appId);
    assert.deepEqual([aNow?.teeKinds, aNow?.policyEpoch], [['tdx'], 1]);
    const dThen = await getDataset(tc.deployer, ds, { blockNumber: before });
    assert.deepEqual(
      [dThen?.policy.tau, dThen?.policy.threshold, dThen?.policy.teeKinds, dThen?.policyEpoch],
      [5, 3, ['tpm2'], 0],
    );
    const dNow = await getDataset(tc.deployer, ds);
    assert.deepEqual([dNow?.policy.tau, dNow?.policy.teeKinds, dNow?.policyEpoch], [9, ['sgx'], 1]);
    // Before registration the app did not exist.
    assert.equal(await getApp(tc.deployer, appId, { blockNumber: appBlock - 1n }), null);
    await assert.rejects(getApp(tc.deployer, appId, { blockNumber: -1n }), (e) =>
      isFerryError(e, 'INVALID_ARGUMENT'),
    );
  });
});
