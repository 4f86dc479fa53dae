/**
 * Fraud proofs on a real anvil (docs/protocol.md section 11.5), from both sides: a liar who
 * invents seats or VRF outputs is proven false, slashed and jailed, and the honest executor its
 * lie excluded gets its place back; a challenger who attacks an honest vote or claim, or
 * resupplies something other than what was recorded, changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Hex } from 'viem';
import { sortitionSeats } from '../crypto/sortition.ts';
import { claimAlpha, verifierAlpha } from '../crypto/vrf/index.ts';
import { isFerryError } from '../kernel/index.ts';
import { claimCase, voteCase } from '../protocol/index.ts';
import {
  type ChainWriter,
  challengeClaim,
  challengeVote,
  claimTask,
  commitEvidence,
  createTask,
  getBurned,
  getNode,
  getTask,
  getTaskEvents,
  getVote,
  isExcluded,
  seedTask,
  vote,
} from './index.ts';
import {
  isolateEachTest,
  proveVrf,
  randomHex,
  startFraudWorld,
  type TestChain,
  type VrfActor,
} from './testing.ts';

const ETH = 10n ** 18n;
const CLAIM = 12;
const TX_GAS_CAP = 16_777_216n; // EIP-7825

let tc: TestChain;
let requester: ChainWriter;
let executors: VrfActor[]; // 2 x 10 ether
let verifiers: VrfActor[]; // 4 x 2 ether, honest
let liar: VrfActor; // a verifier with 2 ether
let appId: bigint;
let datasetId: bigint;

async function expectCode(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isFerryError(e), `expected a FerryError, got ${String(e)}`);
    assert.equal(e.code, code, `${e.code}: ${e.message} ${e.hints.join(' / ')}`);
    return true;
  });
}

async function now(): Promise<number> {
  return Number((await tc.deployer.public.getBlock()).timestamp);
}

async function newTask(): Promise<bigint> {
  return (
    await createTask(requester, {
      appId,
      datasetIds: [datasetId],
      inputHash: randomHex(32),
      resultRecipient: randomHex(32),
      inputLocation: '',
      fee: ETH,
      expiresAt: (await now()) + 3600,
      claimWindow: CLAIM,
      evidenceWindow: 10,
      voteWindow: 10,
      runWindow: 20,
    })
  ).taskId;
}

const alphaOf = (taskId: bigint, attempt: number, seed: Hex) => ({
  chainId: BigInt(tc.chain.chainId),
  taskId,
  attempt,
  seed: Buffer.from(seed.slice(2), 'hex'),
});

/** An honest claim: the real VRF proof over the claim alpha. */
async function honestClaim(a: VrfActor, taskId: bigint, attempt: number, seed: Hex) {
  const { proof, output } = proveVrf(a.vrfKey, claimAlpha(alphaOf(taskId, attempt, seed)));
  return claimTask(a.w, { taskId, attempt, vrfOutput: output, vrfProof: proof });
}

/** The voter's real VRF output and its sortition seats for the attempt. */
async function selection(a: VrfActor, taskId: bigint, attempt: number, seed: Hex) {
  const { proof, output } = proveVrf(a.vrfKey, verifierAlpha(alphaOf(taskId, attempt, seed)));
  const task = (await getTask(tc.deployer, taskId))!;
  const seats = sortitionSeats(output, a.stake / 10n ** 15n, task.totalVerifierStake / 10n ** 15n, task.tau);
  return { proof, output, seats };
}

/** Seeds attempt `attempt`, has executors[0] claim honestly and commit evidence. */
async function toAttesting(taskId: bigint, attempt = 1): Promise<Hex> {
  await tc.mine(1);
  const { seed } = await seedTask(requester, taskId);
  await honestClaim(executors[0], taskId, attempt, seed!);
  await tc.advance(CLAIM + 1);
  await commitEvidence(executors[0].w, {
    taskId,
    attempt,
    evidenceHash: randomHex(32),
    location: 'http://e',
  });
  return seed!;
}

before(async () => {
  ({ tc, requester, executors, verifiers, liar, appId, datasetId } = await startFraudWorld());
});

after(async () => {
  await tc?.stop();
});

isolateEachTest(() => tc);

describe('a lying verifier is proven false', () => {
  test('invented fail seats (a valid VRF proof): rejected attempt restored, liar slashed and jailed', async (t) => {
    const taskId = await newTask();
    const seed = await toAttesting(taskId);
    const sel = await selection(liar, taskId, 1, seed);
    // tau 5, threshold 4: 2 fail seats reject. The liar claims two seats more than it holds.
    const r = await vote(liar.w, {
      taskId,
      attempt: 1,
      pass: false,
      resultHash: randomHex(32),
      seats: sel.seats + 2,
      vrfOutput: sel.output,
      vrfProof: sel.proof,
    });
    assert.equal(r.status, 'rejected');
    assert.equal(await isExcluded(tc.deployer, { taskId, node: executors[0].addr }), true);

    const found = await voteCase(tc.deployer, tc.chain.chainId, { taskId, attempt: 1, voter: liar.addr });
    assert.equal(found.fraud, 'vote-seats');
    const before = await getNode(tc.deployer, liar.addr);
    const proven = await challengeVote(requester, {
      taskId,
      attempt: 1,
      voter: liar.addr,
      proof: found.proof,
    });
    t.diagnostic(`challengeVote (seats) gas: ${proven.gasUsed}`);
    assert.ok(proven.gasUsed < TX_GAS_CAP);
    assert.equal(proven.fraud, 'vote-seats');
    assert.equal(proven.restored, true);
    assert.equal(proven.slashed, before!.stake / 10n);
    const after = await getNode(tc.deployer, liar.addr);
    assert.equal(after?.status, 'jailed');
    assert.equal(after?.stake, before!.stake - proven.slashed);
    assert.equal(await getBurned(tc.deployer), proven.slashed);
    // The honest executor may claim again, and the task got its attempt back.
    assert.equal(await isExcluded(tc.deployer, { taskId, node: executors[0].addr }), false);
    const task = await getTask(tc.deployer, taskId);
    assert.equal(task?.graceAttempts, 1);
    assert.equal(await getVote(tc.deployer, { taskId, attempt: 1, verifier: liar.addr }), 'discarded');
    await tc.mine(1);
    const { seed: seed2 } = await seedTask(requester, taskId);
    await honestClaim(executors[0], taskId, 2, seed2!);
    assert.equal((await getTask(tc.deployer, taskId))?.executor, executors[0].addr);
    // A vote is proven once: the discarded record cannot be challenged again.
    await expectCode(
      challengeVote(requester, { taskId, attempt: 1, voter: liar.addr, proof: found.proof }),
      'CHAIN_CHALLENGE_MISMATCH',
    );
  });

  test('an invented VRF output: the pass seats leave the tally and the vote earns nothing', async (t) => {
    const taskId = await newTask();
    await toAttesting(taskId);
    await vote(liar.w, {
      taskId,
      attempt: 1,
      pass: true,
      resultHash: randomHex(32),
      seats: 3,
      vrfOutput: randomHex(64),
      vrfProof: randomHex(80),
    });
    assert.equal((await getTask(tc.deployer, taskId))?.passSeats, 3);
    const found = await voteCase(tc.deployer, tc.chain.chainId, { taskId, attempt: 1, voter: liar.addr });
    assert.equal(found.fraud, 'vote-vrf');
    const proven = await challengeVote(verifiers[0].w, {
      taskId,
      attempt: 1,
      voter: liar.addr,
      proof: found.proof,
    });
    t.diagnostic(`challengeVote (vrf) gas: ${proven.gasUsed}`);
    assert.equal(proven.fraud, 'vote-vrf');
    assert.equal(proven.restored, false, 'the executor was never excluded');
    const task = await getTask(tc.deployer, taskId);
    assert.equal(task?.passSeats, 0);
    assert.equal(task?.passVoters, 0);
    assert.equal((await getNode(tc.deployer, liar.addr))?.status, 'jailed');
    const ev = (await getTaskEvents(tc.deployer, taskId, { attempt: 1 })).find(
      (e) => e.eventName === 'FraudProven',
    );
    assert.equal(String(ev?.args.challenger).toLowerCase(), verifiers[0].addr.toLowerCase());
  });
});

describe('a challenger cannot hurt an honest voter', () => {
  test('an honest vote: CHAIN_NO_FRAUD, nothing changes; altered resupplies: CHAIN_CHALLENGE_MISMATCH', async () => {
    // Tasks until one of the honest verifiers is selected (each has 1 seat on average).
    let found: { taskId: bigint; v: VrfActor; seats: number; output: Uint8Array; proof: Uint8Array } | null =
      null;
    for (let i = 0; i < 12 && !found; i++) {
      const taskId = await newTask();
      const seed = await toAttesting(taskId);
      for (const v of verifiers) {
        const sel = await selection(v, taskId, 1, seed);
        if (sel.seats > 0) {
          found = { taskId, v, ...sel };
          break;
        }
      }
    }
    assert.ok(found, 'no honest verifier was selected in 12 tasks (probability below 1e-20)');
    const { taskId, v } = found;
    await vote(v.w, {
      taskId,
      attempt: 1,
      pass: true,
      resultHash: randomHex(32),
      seats: found.seats,
      vrfOutput: found.output,
      vrfProof: found.proof,
    });
    const c = await voteCase(tc.deployer, tc.chain.chainId, { taskId, attempt: 1, voter: v.addr });
    assert.equal(c.fraud, null);
    const stake = (await getNode(tc.deployer, v.addr))?.stake;
    await expectCode(
      challengeVote(liar.w, { taskId, attempt: 1, voter: v.addr, proof: c.proof }),
      'CHAIN_NO_FRAUD',
    );
    // Framing attempts: another output, more seats, another stake or seed than recorded.
    const framed = [
      { ...c.proof, vrfOutput: `0x${'00'.repeat(64)}` as Hex },
      { ...c.proof, seats: c.proof.seats + 1 },
      { ...c.proof, seed: randomHex(32) },
      { ...c.proof, stake: c.proof.stake / 2n },
      { ...c.proof, pass: false },
    ];
    for (const proof of framed) {
      await expectCode(
        challengeVote(liar.w, { taskId, attempt: 1, voter: v.addr, proof }),
        'CHAIN_CHALLENGE_MISMATCH',
      );
    }
    assert.equal((await getNode(tc.deployer, v.addr))?.stake, stake);
    assert.equal((await getNode(tc.deployer, v.addr))?.status, 'active');
    assert.equal(await getVote(tc.deployer, { taskId, attempt: 1, verifier: v.addr }), 'pass');
  });
});

describe('a false claim is proven false', () => {
  test('an invented claim output wins the claim; proven false, the attempt ends (fraud) and is given back', async (t) => {
    const taskId = await newTask();
    await tc.mine(1);
    const { seed } = await seedTask(requester, taskId);
    await honestClaim(executors[0], taskId, 1, seed!);
    // executors[1] lies: an output of zeros beats any real one.
    const fake = new Uint8Array(64);
    await claimTask(executors[1].w, { taskId, attempt: 1, vrfOutput: fake, vrfProof: randomHex(80) });
    assert.equal((await getTask(tc.deployer, taskId))?.executor, executors[1].addr);
    const c = await claimCase(tc.deployer, tc.chain.chainId, { taskId, attempt: 1 });
    assert.equal(c.node.toLowerCase(), executors[1].addr.toLowerCase());
    assert.equal(c.recorded, true);
    assert.equal(c.fraud, 'claim-vrf');
    const proven = await challengeClaim(executors[0].w, {
      taskId,
      attempt: 1,
      claimant: c.node,
      proof: c.proof,
    });
    t.diagnostic(`challengeClaim gas: ${proven.gasUsed}`);
    assert.ok(proven.gasUsed < TX_GAS_CAP);
    assert.equal(proven.fraud, 'claim-vrf');
    assert.ok(proven.slashed > 0n);
    const task = await getTask(tc.deployer, taskId);
    assert.equal(task?.status, 'rejected');
    assert.equal(task?.attempt, 2);
    assert.equal(task?.graceAttempts, 1);
    const ended = (await getTaskEvents(tc.deployer, taskId, { attempt: 1 })).find(
      (e) => e.eventName === 'AttemptEnded',
    );
    assert.equal(Number(ended?.args.reason), 8, 'fraud');
    assert.equal((await getNode(tc.deployer, executors[1].addr))?.status, 'jailed');
    assert.equal((await getNode(tc.deployer, executors[1].addr))?.openAttempts, 0);
    assert.equal(await isExcluded(tc.deployer, { taskId, node: executors[1].addr }), true);
  });

  test('an honest best claim: CHAIN_NO_FRAUD; a displaced or altered one: CHAIN_CHALLENGE_MISMATCH', async () => {
    const taskId = await newTask();
    await tc.mine(1);
    const { seed } = await seedTask(requester, taskId);
    await honestClaim(executors[0], taskId, 1, seed!);
    await honestClaim(executors[1], taskId, 1, seed!);
    const c = await claimCase(tc.deployer, tc.chain.chainId, { taskId, attempt: 1 });
    assert.equal(c.fraud, null);
    assert.equal(c.recorded, true);
    await expectCode(
      challengeClaim(liar.w, { taskId, attempt: 1, claimant: c.node, proof: c.proof }),
      'CHAIN_NO_FRAUD',
    );
    const other = executors.find((e) => e.addr.toLowerCase() !== c.node.toLowerCase())!;
    await expectCode(
      challengeClaim(liar.w, { taskId, attempt: 1, claimant: other.addr, proof: c.proof }),
      'CHAIN_CHALLENGE_MISMATCH',
    );
    await expectCode(
      challengeClaim(liar.w, {
        taskId,
        attempt: 1,
        claimant: c.node,
        proof: { ...c.proof, vrfProof: randomHex(80) },
      }),
      'CHAIN_CHALLENGE_MISMATCH',
    );
    const task = await getTask(tc.deployer, taskId);
    assert.equal(task?.status, 'claimed');
    assert.equal(await getBurned(tc.deployer), 0n);
  });
});
