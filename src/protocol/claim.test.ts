import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { test } from 'node:test';
import { isFerryError } from '../kernel/index.ts';
import {
  CLAIM_ONE,
  CLAIM_ROUNDS,
  type ClaimStake,
  claimEligibility,
  claimRound,
  claimThreshold,
  claimValue,
  compareClaims,
  expectedClaimants,
  firstClaimRound,
} from './claim.ts';

// --- deterministic randomness: a ChaCha20 keystream keyed by a label (fixed seeds, no flakes) ---

function stream(label: string): (n: number) => Buffer {
  const key = createHash('sha256').update(`ferry/claim.test/${label}`).digest();
  const c = createCipheriv('chacha20', key, Buffer.alloc(16));
  return (n) => c.update(Buffer.alloc(n));
}

/** n VRF-output stand-ins: 64 uniform bytes each (what a VRF output is to anyone without the key). */
function betas(next: (n: number) => Buffer, n: number): Uint8Array[] {
  const b = next(64 * n);
  return Array.from({ length: n }, (_, i) => new Uint8Array(b.subarray(64 * i, 64 * i + 64)));
}

function betaWithValue(x: bigint): Uint8Array {
  const b = new Uint8Array(64).fill(0xa5); // bytes 8..63 must not matter
  for (let i = 7; i >= 0; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b;
}

/** Pareto(alpha = 1.16, the 80/20 law) stakes from 1 unit, floored to whole units. */
function paretoStakes(next: (n: number) => Buffer, n: number): bigint[] {
  const b = next(4 * n);
  return Array.from({ length: n }, (_, i) => {
    const u = (b.readUInt32BE(4 * i) + 1) / 2 ** 32; // (0, 1]
    return BigInt(Math.floor(1000 * u ** (-1 / 1.16)));
  });
}

const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);

// --- table tests (expectations computed by hand from the formula in docs/protocol.md §11.3) -----

test('claimValue: the first 8 bytes, big-endian; the rest is ignored', () => {
  assert.equal(claimValue(betaWithValue(0x0102030405060708n)), 0x0102030405060708n);
  assert.equal(claimValue(betaWithValue(0n)), 0n);
  assert.equal(claimValue(betaWithValue(CLAIM_ONE - 1n)), 18446744073709551615n);
});

test('claimThreshold: floor((k w) << (64 + 2r) / W), and 2^64 in the last round', () => {
  const p = { stake: 1n, totalStake: 1000n, target: 3 };
  // 3 * 2^64 = 55340232221128654848; / 1000, floored
  assert.equal(claimThreshold({ ...p, round: 0 }), 55340232221128654n);
  // 12 * 2^64 / 1000 = 221360928884514619.392
  assert.equal(claimThreshold({ ...p, round: 1 }), 221360928884514619n);
  // 48 * 2^64 / 1000 = 885443715538058477.568
  assert.equal(claimThreshold({ ...p, round: 2 }), 885443715538058477n);
  // 192 * 2^64 / 1000 = 3541774862152233910.272; 768 * 2^64 / 1000 = 14167099448608935641.088
  assert.equal(claimThreshold({ ...p, round: 3 }), 3541774862152233910n);
  assert.equal(claimThreshold({ ...p, round: 4 }), 14167099448608935641n);
  assert.equal(claimThreshold({ ...p, round: 5 }), CLAIM_ONE);
  assert.equal(CLAIM_ROUNDS, 6);
  // k w = W: exactly 2^64 (always); more saturates above 2^64
  assert.equal(claimThreshold({ stake: 1n, totalStake: 3n, target: 3, round: 0 }), CLAIM_ONE);
  assert.equal(claimThreshold({ stake: 2n, totalStake: 3n, target: 3, round: 0 }), 2n * CLAIM_ONE);
  // wei-sized stakes: 2 ether of 10^6 ether, k = 1: 2^64 / 500000 = 36893488147419.103232
  const ETH = 10n ** 18n;
  assert.equal(
    claimThreshold({ stake: 2n * ETH, totalStake: 10n ** 6n * ETH, target: 1, round: 0 }),
    36893488147419n,
  );
  // zero stake never claims, not even in the last round
  for (let round = 0; round < CLAIM_ROUNDS; round++) {
    assert.equal(claimThreshold({ stake: 0n, totalStake: 5n, target: 3, round }), 0n);
    assert.equal(
      claimEligibility(betaWithValue(0n), { stake: 0n, totalStake: 5n, target: 3, round }).mayClaim,
      false,
    );
  }
});

test('claimEligibility: x < T claims, x = T does not; the last round admits every x', () => {
  const p = { stake: 1n, totalStake: 1000n, target: 3, round: 0 };
  const T = 55340232221128654n;
  assert.deepEqual(claimEligibility(betaWithValue(T - 1n), p), {
    mayClaim: true,
    threshold: T,
    value: T - 1n,
    round: 0,
  });
  assert.equal(claimEligibility(betaWithValue(T), p).mayClaim, false);
  assert.equal(claimEligibility(betaWithValue(CLAIM_ONE - 1n), { ...p, round: 4 }).mayClaim, false);
  assert.equal(claimEligibility(betaWithValue(CLAIM_ONE - 1n), { ...p, round: 5 }).mayClaim, true);
});

test('claimRound: min(5, floor(elapsed * 6 / claimWindow))', () => {
  const cases: [number, number, number][] = [
    [0, 100, 0],
    [16, 100, 0],
    [17, 100, 1],
    [50, 100, 3],
    [83, 100, 4],
    [84, 100, 5],
    [100, 100, 5],
    [10_000, 100, 5],
    // the 3-second development window: rounds 0, 2, 4, then the last from 3 s (rounds merge
    // when the window is shorter than 6 seconds: the rule only relaxes sooner)
    [0, 3, 0],
    [1, 3, 2],
    [2, 3, 4],
    [3, 3, 5],
    [0, 1, 0],
    [1, 1, 5],
  ];
  for (const [elapsed, window, round] of cases)
    assert.equal(claimRound(elapsed, window), round, `${elapsed}/${window}`);
});

test('firstClaimRound: the first round whose threshold exceeds x; eligibility only grows with the round', () => {
  const p = { stake: 1n, totalStake: 1000n, target: 3 };
  assert.equal(firstClaimRound(betaWithValue(0n), p), 0);
  assert.equal(firstClaimRound(betaWithValue(55340232221128653n), p), 0);
  assert.equal(firstClaimRound(betaWithValue(55340232221128654n), p), 1);
  assert.equal(firstClaimRound(betaWithValue(221360928884514619n), p), 2);
  assert.equal(firstClaimRound(betaWithValue(885443715538058477n), p), 3);
  assert.equal(firstClaimRound(betaWithValue(3541774862152233910n), p), 4);
  assert.equal(firstClaimRound(betaWithValue(14167099448608935640n), p), 4);
  assert.equal(firstClaimRound(betaWithValue(14167099448608935641n), p), 5);
  assert.equal(firstClaimRound(betaWithValue(CLAIM_ONE - 1n), p), 5);
  assert.equal(firstClaimRound(betaWithValue(0n), { ...p, stake: 0n }), -1);
  const next = stream('monotone');
  for (const beta of betas(next, 300)) {
    const q = { stake: 7n, totalStake: 500n, target: 2 };
    const first = firstClaimRound(beta, q);
    for (let round = 0; round < CLAIM_ROUNDS; round++) {
      assert.equal(claimEligibility(beta, { ...q, round }).mayClaim, round >= first);
    }
  }
});

test('compareClaims ranks by x / w (cross-multiplied); ties are 0', () => {
  const c = (x: bigint, stake: bigint) => ({ beta: betaWithValue(x), stake });
  assert.equal(compareClaims(c(100n, 1n), c(150n, 2n)), 1); // 100 > 75
  assert.equal(compareClaims(c(150n, 2n), c(100n, 1n)), -1);
  assert.equal(compareClaims(c(100n, 1n), c(200n, 2n)), 0);
  assert.equal(compareClaims(c(CLAIM_ONE - 1n, 1n << 127n), c(CLAIM_ONE - 1n, (1n << 127n) - 1n)), -1);
});

test('bad parameters: SORTITION_INVALID_PARAMETERS naming the argument', () => {
  const ok = { stake: 1n, totalStake: 10n, target: 3, round: 0 };
  const cases: [string, () => unknown][] = [
    ['beta', () => claimValue(new Uint8Array(32))],
    ['beta', () => claimEligibility('00' as unknown as Uint8Array, ok)],
    ['stake', () => claimThreshold({ ...ok, stake: -1n })],
    ['stake', () => claimThreshold({ ...ok, stake: 11n })],
    ['stake', () => claimThreshold({ ...ok, stake: 1 as unknown as bigint })],
    ['totalStake', () => claimThreshold({ ...ok, totalStake: 0n })],
    ['totalStake', () => claimThreshold({ ...ok, totalStake: 1n << 128n })],
    ['target', () => claimThreshold({ ...ok, target: 0 })],
    ['target', () => claimThreshold({ ...ok, target: 256 })],
    ['target', () => claimThreshold({ ...ok, target: 2.5 })],
    ['round', () => claimThreshold({ ...ok, round: 6 })],
    ['round', () => claimThreshold({ ...ok, round: -1 })],
    ['elapsed', () => claimRound(-1, 10)],
    ['claimWindow', () => claimRound(1, 0)],
    [
      'a.stake',
      () => compareClaims({ beta: betaWithValue(1n), stake: 0n }, { beta: betaWithValue(1n), stake: 1n }),
    ],
    ['parameters', () => firstClaimRound(betaWithValue(1n), null as unknown as ClaimStake)],
  ];
  for (const [what, fn] of cases) {
    assert.throws(
      fn,
      (e) => isFerryError(e) && e.code === 'SORTITION_INVALID_PARAMETERS' && e.message.includes(what),
      what,
    );
  }
});

// --- Monte-Carlo (fixed seeds; bounds of 6 standard errors) ------------------------------------

/** Round-0 claimants over `trials` draws: the mean, and the exact mean and variance of the count. */
function roundZeroClaims(stakes: bigint[], label: string, trials: number) {
  const totalStake = sum(stakes);
  const p = { totalStake, target: 3, round: 0 };
  const thresholds = stakes.map((stake) => claimThreshold({ ...p, stake }));
  const q = thresholds.map((t) => (t >= CLAIM_ONE ? 1 : Number(t) / 2 ** 64));
  const mu = q.reduce((a, b) => a + b, 0);
  const variance = q.reduce((a, b) => a + b * (1 - b), 0);
  const next = stream(label);
  let claims = 0;
  for (let i = 0; i < trials; i++) {
    const b = next(8 * stakes.length);
    for (let j = 0; j < stakes.length; j++) if (b.readBigUInt64BE(8 * j) < thresholds[j]) claims++;
  }
  return { mean: claims / trials, mu, se: Math.sqrt(variance / trials) };
}

test('expected claimants are ~k = 3 whatever the number of executors (10, 1000, 20000)', () => {
  for (const [n, trials] of [
    [10, 4000],
    [1000, 1000],
    [20_000, 100],
  ] as const) {
    const stakes = paretoStakes(stream(`stakes-${n}`), n);
    const r = roundZeroClaims(stakes, `claims-${n}`, trials);
    assert.ok(Math.abs(r.mean - r.mu) < 6 * r.se, `n=${n}: mean ${r.mean} vs ${r.mu} (se ${r.se})`);
    assert.ok(r.mu > 2.5 && r.mu <= 3 + 1e-9, `n=${n}: expected ${r.mu}`);
    assert.equal(r.mu, expectedClaimants(stakes, { totalStake: sum(stakes), target: 3, round: 0 }));
  }
});

test('twice the stake, about twice the chance to claim (exact thresholds and Monte-Carlo)', () => {
  const base = { totalStake: 10_000n, target: 3, round: 0 };
  const t1 = claimThreshold({ ...base, stake: 100n });
  const t2 = claimThreshold({ ...base, stake: 200n });
  assert.ok(t2 - 2n * t1 >= 0n && t2 - 2n * t1 <= 1n);
  const next = stream('double');
  const n = 40_000;
  let c1 = 0;
  let c2 = 0;
  for (const beta of betas(next, n)) {
    if (claimEligibility(beta, { ...base, stake: 100n }).mayClaim) c1++;
  }
  for (const beta of betas(next, n)) {
    if (claimEligibility(beta, { ...base, stake: 200n }).mayClaim) c2++;
  }
  // p1 = 0.03, p2 = 0.06: 6 standard errors each
  assert.ok(Math.abs(c1 / n - 0.03) < 6 * Math.sqrt((0.03 * 0.97) / n), `p1 ${c1 / n}`);
  assert.ok(Math.abs(c2 / n - 0.06) < 6 * Math.sqrt((0.06 * 0.94) / n), `p2 ${c2 / n}`);
});

/**
 * One attempt with the claim rule: everyone whose first round is the earliest claims (later
 * rounds see a claim on chain and stay silent); the best claim by compareClaims wins. Returns the
 * index of the winner and the claimants' count, or null when nobody has stake.
 */
function runAttempt(betaList: Uint8Array[], stakes: bigint[], totalStake: bigint) {
  let first = CLAIM_ROUNDS;
  const rounds = betaList.map((beta, i) =>
    firstClaimRound(beta, { stake: stakes[i], totalStake, target: 3 }),
  );
  for (const r of rounds) if (r >= 0 && r < first) first = r;
  if (first === CLAIM_ROUNDS) return null;
  let best = -1;
  let claimants = 0;
  for (let i = 0; i < stakes.length; i++) {
    if (rounds[i] !== first) continue;
    claimants++;
    if (
      best < 0 ||
      compareClaims({ beta: betaList[i], stake: stakes[i] }, { beta: betaList[best], stake: stakes[best] }) <
        0
    ) {
      best = i;
    }
  }
  return { best, claimants, round: first };
}

test('attacker: splitting stake over 25 Sybil nodes raises neither its claims nor its wins', () => {
  const honest = paretoStakes(stream('sybil-honest'), 60);
  const H = sum(honest);
  const A = H / 4n - ((H / 4n) % 25n); // 20 % of the total, divisible by 25
  const f = Number(A) / Number(H + A);
  const single = [A];
  const split = Array.from({ length: 25 }, () => A / 25n);
  const total = H + A;
  const p = { totalStake: total, target: 3, round: 0 };
  // Expected attacker claimants: the same (to the flooring of 25 thresholds).
  const e1 = expectedClaimants(single, p);
  const e25 = expectedClaimants(split, p);
  assert.ok(Math.abs(e1 - e25) < 1e-15 * 25 + 1e-12, `${e1} vs ${e25}`);
  assert.ok(Math.abs(e1 - 3 * f) < 1e-12);
  // P[at least one attacker claimant] is lower when split: 1 - prod(1 - q_i) <= sum q_i.
  const atLeastOne = (st: bigint[]) =>
    1 - st.reduce((acc, s) => acc * (1 - Number(claimThreshold({ ...p, stake: s })) / 2 ** 64), 1);
  assert.ok(atLeastOne(split) < atLeastOne(single));

  // Monte-Carlo: the same honest outputs in both worlds, the attacker's drawn afresh.
  const trials = 3000;
  const next = stream('sybil-trials');
  let winsSingle = 0;
  let winsSplit = 0;
  let winsSplitRawOrder = 0;
  let winsToday = 0;
  for (let t = 0; t < trials; t++) {
    const hb = betas(next, honest.length);
    const a1 = betas(next, 1);
    const a25 = betas(next, 25);
    const r1 = runAttempt([...hb, ...a1], [...honest, ...single], total);
    const r25 = runAttempt([...hb, ...a25], [...honest, ...split], total);
    assert.ok(r1 && r25);
    if (r1.best >= honest.length) winsSingle++;
    if (r25.best >= honest.length) winsSplit++;
    // The same claimants ranked by the raw output instead of x / w (what the contract does today).
    const all = [...hb, ...a25];
    const stakes = [...honest, ...split];
    let raw = -1;
    for (let i = 0; i < all.length; i++) {
      if (firstClaimRound(all[i], { stake: stakes[i], totalStake: total, target: 3 }) !== r25.round) continue;
      if (raw < 0 || claimValue(all[i]) < claimValue(all[raw])) raw = i;
    }
    if (raw >= honest.length) winsSplitRawOrder++;
    // Today's rule: every eligible executor claims, the lowest output wins: a node lottery.
    let low = 0;
    for (let i = 1; i < all.length; i++) if (claimValue(all[i]) < claimValue(all[low])) low = i;
    if (low >= honest.length) winsToday++;
  }
  const se = Math.sqrt((f * (1 - f)) / trials);
  const rate = (w: number) => w / trials;
  // The attacker holding 20 % of the stake wins about 20 % split or not, never clearly more by
  // splitting (one node wins a little more than its share: thresholds are linear in stake).
  assert.ok(rate(winsSplit) < f + 4 * se, `split ${rate(winsSplit)} vs f ${f}`);
  assert.ok(
    rate(winsSplit) <= rate(winsSingle) + 4 * se,
    `split ${rate(winsSplit)} single ${rate(winsSingle)}`,
  );
  assert.ok(rate(winsSingle) < f + 0.06, `single ${rate(winsSingle)}`);
  // Contrasts: under the raw-output order, and under today's everyone-claims rule, the same
  // split pays off (25 of 85 nodes: about 29 % today).
  assert.ok(rate(winsSplitRawOrder) > f + 4 * se, `raw order ${rate(winsSplitRawOrder)}`);
  assert.ok(rate(winsToday) > f + 4 * se, `today ${rate(winsToday)}`);
});

test('an attempt with few eligible executors recovers within the window (relaxation)', () => {
  // 2000 executors of which 40 (about 2 % of the stake) are eligible for the task; W is the
  // total executor stake, so round 0 expects only ~0.06 claimants.
  const stakes = paretoStakes(stream('relax-stakes'), 2000);
  const W = sum(stakes);
  const eligible = stakes.slice(0, 40);
  const share = Number(sum(eligible)) / Number(W);
  assert.ok(share > 0.005 && share < 0.05, `share ${share}`);
  const trials = 3000;
  const next = stream('relax-trials');
  let emptyRoundZero = 0;
  let empty = 0;
  let claims = 0;
  for (let t = 0; t < trials; t++) {
    const r = runAttempt(betas(next, eligible.length), eligible, W);
    if (!r) empty++;
    else {
      if (r.round > 0) emptyRoundZero++;
      claims += r.claimants;
    }
  }
  // Round 0 alone: P[no claim] = prod(1 - q_i), exactly.
  const p0 = eligible.reduce(
    (acc, s) =>
      acc * (1 - Number(claimThreshold({ stake: s, totalStake: W, target: 3, round: 0 })) / 2 ** 64),
    1,
  );
  const se = Math.sqrt((p0 * (1 - p0)) / trials);
  assert.ok(Math.abs(emptyRoundZero / trials - p0) < 6 * se, `${emptyRoundZero / trials} vs ${p0}`);
  assert.ok(p0 > 0.8);
  assert.equal(empty, 0); // the last round admits every eligible executor
  assert.ok(claims / trials < 3 * 4, `mean claims ${claims / trials}`);
});
