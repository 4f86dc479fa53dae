import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Address, Hex } from 'viem';
import { claimRecord, type NodeInfo, type NodeStatus, type Role, type TaskInfo } from '../chain/index.ts';
import { claimAlpha, verifierAlpha, vrfKeygen, vrfProofToHash, vrfProve } from '../crypto/vrf/index.ts';
import { toHex } from '../kernel/index.ts';
import { type JudgedClaim, judgeClaimEvent, judgeVoteEvent, judgeWinningClaim } from './judge.ts';
import { seatsFor } from './stake.ts';

const ETH = 10n ** 18n;
const params = { chainId: 31337n, taskId: 9n, attempt: 1, seed: new Uint8Array(32).fill(3) };
const seedHex = `0x${toHex(params.seed)}` as Hex;
const CLAIM_ALPHA = claimAlpha(params);
const VOTE_ALPHA = verifierAlpha(params);
const task = { totalVerifierStake: 3n * ETH, tau: 2000 } as TaskInfo;

let n = 0;
function node(over: Partial<{ roles: Role[]; status: NodeStatus; stake: bigint; operator: Address }> = {}) {
  const keys = vrfKeygen();
  const address = `0x${(++n).toString(16).padStart(40, '0')}` as Address;
  const info: NodeInfo = {
    address,
    roles: over.roles ?? ['executor', 'verifier'],
    status: over.status ?? 'active',
    teeKinds: ['sim'],
    region: 'EU',
    changedBlock: 1n,
    lastHeartbeat: 0,
    jailedUntil: 0,
    jailedTask: null,
    openAttempts: 0,
    stake: over.stake ?? ETH,
    unbonding: 0n,
    unbondingAt: 0,
    vrfPublicKey: `0x${toHex(keys.pk)}`,
    signingKey: '0x',
    endpoint: '',
    operator: over.operator ?? address,
  };
  return { info, sk: keys.sk };
}

function prove(sk: Uint8Array, alpha: Uint8Array) {
  const vrfProof = vrfProve(sk, alpha);
  return { vrfProof, vrfOutput: vrfProofToHash(vrfProof) };
}

// --- claims ---------------------------------------------------------------------------------

test('judgeClaimEvent: an honest claim is valid; every attacker case names its reason', () => {
  const honest = node();
  const jailed = node({ status: 'jailed' });
  const unstaked = node({ stake: 0n });
  const verifierOnly = node({ roles: ['verifier'] });
  const other = node();
  const cases: [string, Parameters<typeof judgeClaimEvent>[0], string | null, boolean | null][] = [
    ['honest', { node: honest.info, alpha: CLAIM_ALPHA, claim: prove(honest.sk, CLAIM_ALPHA) }, null, true],
    [
      'honest, in time',
      {
        node: honest.info,
        alpha: CLAIM_ALPHA,
        claim: prove(honest.sk, CLAIM_ALPHA),
        window: { claimedAt: 100, claimDeadline: 100 },
      },
      null,
      true,
    ],
    [
      'a jailed node',
      { node: jailed.info, alpha: CLAIM_ALPHA, claim: prove(jailed.sk, CLAIM_ALPHA) },
      'not-eligible',
      true,
    ],
    [
      'an unstaked node',
      { node: unstaked.info, alpha: CLAIM_ALPHA, claim: prove(unstaked.sk, CLAIM_ALPHA) },
      'not-eligible',
      true,
    ],
    [
      'a node without the executor role',
      { node: verifierOnly.info, alpha: CLAIM_ALPHA, claim: prove(verifierOnly.sk, CLAIM_ALPHA) },
      'not-eligible',
      true,
    ],
    [
      'not registered before the task',
      { node: null, alpha: CLAIM_ALPHA, claim: prove(honest.sk, CLAIM_ALPHA) },
      'not-eligible',
      false,
    ],
    [
      'a proof for another alpha (the verifier alpha)',
      { node: honest.info, alpha: CLAIM_ALPHA, claim: prove(honest.sk, VOTE_ALPHA) },
      'vrf-proof',
      false,
    ],
    [
      'a proof for another attempt',
      {
        node: honest.info,
        alpha: CLAIM_ALPHA,
        claim: prove(honest.sk, claimAlpha({ ...params, attempt: 2 })),
      },
      'vrf-proof',
      false,
    ],
    [
      "another node's proof",
      { node: honest.info, alpha: CLAIM_ALPHA, claim: prove(other.sk, CLAIM_ALPHA) },
      'vrf-proof',
      false,
    ],
    [
      'after the claim deadline',
      {
        node: honest.info,
        alpha: CLAIM_ALPHA,
        claim: prove(honest.sk, CLAIM_ALPHA),
        window: { claimedAt: 101, claimDeadline: 100 },
      },
      'late',
      true,
    ],
    [
      'registry snapshot unknown',
      { node: undefined, alpha: CLAIM_ALPHA, claim: prove(honest.sk, CLAIM_ALPHA) },
      'unchecked',
      null,
    ],
    [
      'seed unknown',
      { node: honest.info, alpha: null, claim: prove(honest.sk, CLAIM_ALPHA) },
      'unchecked',
      null,
    ],
  ];
  for (const [name, input, reason, vrfProofValid] of cases) {
    const j = judgeClaimEvent(input);
    assert.equal(j.reason, reason, name);
    assert.equal(j.valid, reason === null, name);
    assert.equal(j.vrfProofValid, vrfProofValid, `${name}: vrfProofValid`);
  }
});

function judged(who: ReturnType<typeof node>, claim = prove(who.sk, CLAIM_ALPHA)): JudgedClaim {
  return {
    executor: who.info.address,
    vrfOutput: claim.vrfOutput,
    node: who.info,
    judgement: judgeClaimEvent({ node: who.info, alpha: CLAIM_ALPHA, claim }),
    record: claimRecord(params.attempt, who.info.address, { seed: seedHex, ...claim }),
  };
}

/** Output / stake order as the contract ranks claims (first 8 bytes of the output, equal stakes). */
const x = (c: JudgedClaim) => BigInt(`0x${toHex(c.vrfOutput.slice(0, 8))}`);

test('judgeWinningClaim: the best claim stands only when it is the recorded, valid and lowest one', () => {
  const [a, b] = [judged(node()), judged(node())].sort((p, q) => (x(p) < x(q) ? -1 : 1));
  const best = (c: JudgedClaim) => ({ executor: c.executor, bestOutput: c.record as string });
  assert.equal(judgeWinningClaim(best(a), [a, b]).reason, null, 'the lowest valid claim stands');
  assert.deepEqual(
    [judgeWinningClaim(best(a), [a, b]).valid, judgeWinningClaim(best(a), [a, b]).invalid],
    [2, 0],
  );
  // Attacker: a worse claim recorded as the best (e.g. by racing the lower one) does not stand.
  assert.equal(judgeWinningClaim(best(b), [a, b]).reason, 'not-lowest');
  // A forged lower claim (proof for another alpha) does not displace the honest best one.
  const liar = node();
  const forged = judged(liar, prove(liar.sk, VOTE_ALPHA));
  assert.equal(forged.judgement.reason, 'vrf-proof');
  const r = judgeWinningClaim(best(a), [a, b, forged]);
  assert.deepEqual([r.reason, r.valid, r.invalid], [null, 2, 1]);
  // ... and recorded as the best itself, it fails on its proof.
  assert.equal(judgeWinningClaim(best(forged), [a, forged]).reason, 'vrf-proof');
  // A claim by a jailed executor recorded as best.
  const jailed = judged(node({ status: 'jailed' }));
  assert.equal(judgeWinningClaim(best(jailed), [jailed]).reason, 'not-eligible');
  // The task names an executor whose claim is not among the events, or none at all.
  assert.equal(
    judgeWinningClaim({ executor: a.executor, bestOutput: b.record as string }, [a, b]).reason,
    'not-found',
  );
  assert.equal(
    judgeWinningClaim({ executor: b.executor, bestOutput: a.record as string }, [a, b]).reason,
    'not-found',
  );
  assert.equal(
    judgeWinningClaim({ executor: null, bestOutput: a.record as string }, [a]).reason,
    'no-executor',
  );
});

// --- votes ----------------------------------------------------------------------------------

test('judgeVoteEvent: an honest vote is valid; every attacker case names its reason', () => {
  const exec = node();
  const honest = node();
  const honestVote = prove(honest.sk, VOTE_ALPHA);
  const maxSeats = seatsFor(honestVote.vrfOutput, honest.info.stake, task);
  assert.ok(maxSeats >= 1, 'the fixture verifier holds a seat');
  const sameOp = node({ operator: exec.info.operator });
  const jailed = node({ status: 'jailed' });
  const executorOnly = node({ roles: ['executor'] });
  const base = {
    voter: honest.info.address,
    executor: exec.info.address as string | null,
    executorNode: exec.info as NodeInfo | null | undefined,
    alpha: VOTE_ALPHA as Uint8Array | null,
    task,
  };
  const vote = (who: ReturnType<typeof node>, alpha = VOTE_ALPHA, seats = 1) => ({
    ...prove(who.sk, alpha),
    seats,
  });
  const cases: [string, Parameters<typeof judgeVoteEvent>[0], string | null][] = [
    ['honest', { ...base, node: honest.info, vote: { ...honestVote, seats: maxSeats } }, null],
    [
      'more seats than sortition gives',
      { ...base, node: honest.info, vote: { ...honestVote, seats: maxSeats + 1 } },
      'seats',
    ],
    ['zero seats', { ...base, node: honest.info, vote: { ...honestVote, seats: 0 } }, 'seats'],
    [
      'a jailed verifier',
      { ...base, node: jailed.info, voter: jailed.info.address, vote: vote(jailed) },
      'not-eligible',
    ],
    [
      'not a verifier',
      { ...base, node: executorOnly.info, voter: executorOnly.info.address, vote: vote(executorOnly) },
      'not-eligible',
    ],
    ['not registered before the task', { ...base, node: null, vote: vote(honest) }, 'not-eligible'],
    [
      'the executor itself',
      { ...base, node: exec.info, voter: exec.info.address, vote: vote(exec) },
      'executor-operator',
    ],
    [
      "of the executor's operator",
      { ...base, node: sameOp.info, voter: sameOp.info.address, vote: vote(sameOp) },
      'executor-operator',
    ],
    [
      'a proof for another alpha (the claim alpha)',
      { ...base, node: honest.info, vote: vote(honest, CLAIM_ALPHA) },
      'vrf-proof',
    ],
    ["another verifier's proof", { ...base, node: honest.info, vote: vote(exec) }, 'vrf-proof'],
    ['registry snapshot unknown', { ...base, node: undefined, vote: vote(honest) }, 'unchecked'],
    [
      'executor unknown',
      { ...base, executor: null, node: honest.info, vote: { ...honestVote, seats: 1 } },
      'unchecked',
    ],
    ['seed unknown', { ...base, alpha: null, node: honest.info, vote: vote(honest) }, 'unchecked'],
  ];
  for (const [name, input, reason] of cases) {
    const j = judgeVoteEvent(input);
    assert.equal(j.reason, reason, name);
    assert.equal(j.valid, reason === null, name);
  }
  // The honest judgement carries the figures the dashboard shows.
  assert.deepEqual(judgeVoteEvent({ ...base, node: honest.info, vote: { ...honestVote, seats: maxSeats } }), {
    valid: true,
    reason: null,
    eligible: true,
    vrfProofValid: true,
    maxSeats,
    seatsValid: true,
  });
  // An executor not registered then: its own address stands for its operator.
  const unregistered = judgeVoteEvent({
    ...base,
    executorNode: null,
    node: honest.info,
    vote: { ...honestVote, seats: 1 },
  });
  assert.equal(unregistered.valid, true);
});
