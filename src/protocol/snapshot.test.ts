/**
 * The registry as a task sees it, against a real anvil (which keeps state history): stake and
 * eligibility at the end of block createdBlock - 1 however nodes changed afterwards (stake
 * added, unbonded, registered late, reactivated, operator switched), and checkVotes counting
 * seats against that snapshot and refusing voters of the executor's operator.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Address } from 'viem';
import {
  addStake,
  type ChainWriter,
  claimTask,
  createApp,
  createDataset,
  createTask,
  getNode,
  getTask,
  type NodeParams,
  registerNode,
  requestUnbond,
  seedTask,
  setNodeActive,
  type TaskInfo,
  updateNode,
} from '../chain/index.ts';
import { randomHex, startTestChain, type TestChain } from '../chain/testing.ts';
import { verifierAlpha, vrfKeygen, vrfProofToHash, vrfProve } from '../crypto/vrf/index.ts';
import { fromHex, isFerryError } from '../kernel/index.ts';
import { checkVotes, seatsFor, type VoteEvent } from './checks.ts';
import { eligibleAtCreation, nodeAtCreation, stakeAt } from './snapshot.ts';

const ETH = 10n ** 18n;

type Node = { c: ChainWriter; vrf: { sk: Uint8Array; pk: Uint8Array }; params: NodeParams };

let tc: TestChain;
const addr = (n: Node): Address => n.c.wallet.account.address;

async function node(roles: ('executor' | 'verifier')[], stake: bigint, operator?: Address): Promise<Node> {
  const c = await tc.account();
  const vrf = vrfKeygen();
  const params: NodeParams = {
    roles,
    region: 'DE',
    teeKinds: ['sim'],
    vrfPublicKey: vrf.pk,
    signingKey: new Uint8Array(randomBytes(32)),
    endpoint: 'http://127.0.0.1:9',
    operator,
  };
  await registerNode(c, { ...params, stake });
  return { c, vrf, params };
}

let executor: Node;
let v1: Node; // 3 ETH, unbonds 1 ETH after the task was created
let v2: Node; // 2 ETH, adds 10 ETH after
let v3: Node; // 2 ETH, declares the executor's operator
let v5: Node; // 2 ETH, inactive at creation, active after
let v4: Node; // registered after the task was created
let task: TaskInfo;
const operator = '0x00000000000000000000000000000000000000aa' as Address;

before(async () => {
  tc = await startTestChain();
  executor = await node(['executor'], 2n * ETH, operator);
  v1 = await node(['verifier'], 3n * ETH);
  v2 = await node(['verifier'], 2n * ETH);
  v3 = await node(['verifier'], 2n * ETH, operator);
  v5 = await node(['verifier'], 2n * ETH);
  await setNodeActive(v5.c, false);
  const owner = await tc.account();
  const measurement = randomHex(32);
  const { appId } = await createApp(owner, {
    measurement,
    ciphertextHash: randomHex(32),
    endpoint: 'http://a',
    price: 0n,
    teeKinds: ['sim'],
    appraisalPolicyDocument: randomHex(32),
  });
  const { datasetId } = await createDataset(owner, {
    ciphertextHash: randomHex(32),
    endpoint: 'http://d',
    price: 0n,
    policy: {
      allowedApps: [measurement],
      allowedRegions: [],
      teeKinds: ['sim'],
      // tau = the verifier stake at creation in units (7 ETH): every unit is a seat.
      tau: 7000,
      threshold: 1,
      maxUses: 0,
      expiresAt: 0,
      requesters: [],
      appraisalPolicyDocument: randomHex(32),
    },
  });
  const now = Number((await owner.public.getBlock()).timestamp);
  const { taskId } = await createTask(owner, {
    appId,
    datasetIds: [datasetId],
    inputHash: randomHex(32),
    resultRecipient: randomHex(32),
    inputLocation: '',
    fee: 0n,
    expiresAt: now + 3600,
    claimWindow: 100,
    evidenceWindow: 100,
    voteWindow: 100,
    runWindow: 100,
  });
  await tc.mine(2);
  await seedTask(owner, taskId);
  await claimTask(executor.c, { taskId, attempt: 1, vrfOutput: randomHex(64), vrfProof: randomHex(80) });
  task = (await getTask(owner, taskId))!;
  assert.equal(task.totalVerifierStake, 7n * ETH);
  // After the task's creation: stake moves, a late registration, a reactivation, and the
  // executor switches its operator (which would let v3 vote on chain).
  await requestUnbond(v1.c, ETH);
  await addStake(v2.c, 10n * ETH);
  await setNodeActive(v5.c, true);
  v4 = await node(['verifier'], 5n * ETH);
  await updateNode(executor.c, { ...executor.params, operator: undefined });
});

after(async () => {
  await tc?.stop();
});

test('stakeAt and nodeAtCreation read the registry as of block createdBlock - 1', async () => {
  // Current state differs from the snapshot for v1, v2, v5 and the executor.
  assert.equal((await getNode(tc.deployer, addr(v1)))?.stake, 2n * ETH);
  assert.equal((await getNode(tc.deployer, addr(v2)))?.stake, 12n * ETH);
  assert.equal(await stakeAt(tc.deployer, addr(v1), task), 3n * ETH);
  assert.equal(await stakeAt(tc.deployer, addr(v2), task), 2n * ETH);
  assert.equal(await stakeAt(tc.deployer, addr(v3), task), 2n * ETH, 'unchanged: the current entry');
  assert.equal(await stakeAt(tc.deployer, addr(v4), task), 0n, 'registered after: not eligible then');
  assert.equal(await stakeAt(tc.deployer, addr(v5), task), 0n, 'inactive then: not eligible then');
  assert.equal(await stakeAt(tc.deployer, addr(v1), task, 'executor'), 0n, 'no executor role');
  assert.equal(await stakeAt(tc.deployer, addr(executor), task, 'executor'), 2n * ETH);
  assert.equal(await stakeAt(tc.deployer, randomHex(20), task), 0n, 'never registered');
  const ex = await nodeAtCreation(tc.deployer, addr(executor), task);
  assert.equal(ex?.operator.toLowerCase(), operator, "the executor's operator then");
  assert.equal((await getNode(tc.deployer, addr(executor)))?.operator, addr(executor), 'and now');
  assert.ok(ex && ex.changedBlock < task.createdBlock);
  const late = await nodeAtCreation(tc.deployer, addr(v5), task);
  assert.equal(late?.status, 'inactive');
  assert.equal(eligibleAtCreation(late, 'verifier'), false);
  assert.equal(await nodeAtCreation(tc.deployer, addr(v1), { createdBlock: 0n }), null);
  await assert.rejects(stakeAt(tc.deployer, 'not-an-address', task), (e) =>
    isFerryError(e, 'INVALID_ARGUMENT'),
  );
});

function voteOf(n: Node, seats: (beta: Uint8Array) => number): VoteEvent {
  const alpha = verifierAlpha({
    chainId: BigInt(tc.chain.chainId),
    taskId: task.taskId,
    attempt: task.attempt,
    seed: fromHex(task.seed, 'seed', 32),
  });
  const vrfProof = vrfProve(n.vrf.sk, alpha);
  const vrfOutput = vrfProofToHash(vrfProof);
  return {
    verifier: addr(n),
    pass: true,
    resultHash: new Uint8Array(32).fill(1),
    seats: seats(vrfOutput),
    vrfOutput,
    vrfProof,
  };
}

test("checkVotes counts seats against the snapshot stake and refuses the executor's operator", async () => {
  const chainId = tc.chain.chainId;
  const votes = [
    // Its stake then: valid although its current stake gives fewer seats.
    voteOf(v1, (b) => seatsFor(b, 3n * ETH, task)),
    // Seats its current (added) stake would give: more than it held then.
    voteOf(v2, (b) => seatsFor(b, 12n * ETH, task)),
    // Honest seats, but it declared the executor's operator before the task.
    voteOf(v3, (b) => seatsFor(b, 2n * ETH, task)),
    // Not eligible then: counts nothing.
    voteOf(v4, (b) => seatsFor(b, 5n * ETH, task)),
    voteOf(v5, (b) => seatsFor(b, 2n * ETH, task)),
  ];
  assert.equal(votes[0].seats, 3000);
  assert.ok(votes[0].seats > seatsFor(votes[0].vrfOutput, 2n * ETH, task), 'current stake gives fewer');
  assert.ok(votes[1].seats > 2000);
  const r = await checkVotes(tc.deployer, chainId, task, votes);
  assert.equal(r.validPassSeats, 3000);
  assert.deepEqual(r.invalidVoters, [addr(v2), addr(v3), addr(v4), addr(v5)]);
  // v2 with its seats then is valid; without v1 the threshold is missed only if no seat is valid.
  const honestV2 = voteOf(v2, (b) => seatsFor(b, 2n * ETH, task));
  assert.equal((await checkVotes(tc.deployer, chainId, task, [honestV2])).validPassSeats, 2000);
  await assert.rejects(checkVotes(tc.deployer, chainId, task, votes.slice(1)), (e) =>
    isFerryError(e, 'POLICY_DENIED'),
  );
});
