import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError } from '../kernel/index.ts';
import { betaFraction } from './vrf/index.ts';
import {
  binomialAtLeast,
  binomialBelow,
  committeeCapture,
  committeeCaptureForStake,
  committeeThresholdSeats,
  parseThreshold,
  poissonAtLeast,
  poissonBelow,
  sortitionSeats,
  thresholdSeats,
  vrfFraction,
} from './sortition.ts';

// --- a high-precision reference, computed by us in this test (BigInt fixed point) -------------

const DIGITS = 400n;
const SCALE = 10n ** DIGITS;

/**
 * P[Poisson(a/b) >= t] and P[Poisson(a/b) < t] in fixed point with 400 decimal digits: the
 * series e^lambda = sum lambda^n / n! is summed exactly (each term truncated at 1e-400), split
 * at t, and each part divided by e^lambda. Truncation error is below 1e-390 relative to
 * e^lambda, far under the smallest value compared here (~1e-306).
 */
function referencePoisson(a: bigint, b: bigint, t: number): { atLeast: number; below: number } {
  let term = SCALE; // lambda^0 / 0!
  let below = 0n;
  let above = 0n;
  for (let n = 0; ; n++) {
    if (n < t) below += term;
    else above += term;
    const next = (term * a) / (b * BigInt(n + 1));
    if (next === 0n && n > t) break;
    term = next;
  }
  const total = below + above; // e^lambda * SCALE
  const toNumber = (part: bigint) => {
    // part / total as a double: scale to keep ~30 significant digits, then divide.
    if (part === 0n) return 0;
    const shift = BigInt(part.toString().length - total.toString().length) - 30n;
    const q = shift >= 0n ? part / (total * 10n ** shift) : (part * 10n ** -shift) / total;
    return Number(`${q}e${shift}`); // decimal parsing rounds correctly, also near underflow
  };
  return { atLeast: toNumber(above), below: toNumber(below) };
}

function closeRel(got: number, want: number, rel: number, what: string): void {
  const err = Math.abs(got - want) / Math.abs(want);
  assert.ok(err <= rel, `${what}: got ${got}, want ${want}, relative error ${err}`);
}

test('the reference itself: P[Poisson(2) >= 1] = 1 - e^-2', () => {
  closeRel(referencePoisson(2n, 1n, 1).atLeast, 1 - Math.exp(-2), 1e-15, 'reference');
  closeRel(referencePoisson(2n, 1n, 1).below, Math.exp(-2), 1e-15, 'reference');
});

test('Poisson tails match the high-precision reference to 1e-10 relative', () => {
  const cases: [bigint, bigint, number][] = [
    [2n, 1n, 7], // tau 10, f 0.2, t 2/3
    [10n, 1n, 34], // tau 50
    [8n, 1n, 7], // liveness at tau 10
    [40n, 1n, 34], // liveness at tau 50
    [1n, 2n, 30], // 2e-42
    [40n, 1n, 134], // ~1e-31
    [40n, 1n, 40], // at the mean
    [41n, 1n, 40],
    [39n, 1n, 40],
    [1000n, 1n, 1200], // far right
    [1000n, 1n, 800], // far left
    [7n, 3n, 1],
    [1n, 1000n, 1],
    [1n, 1000n, 5],
  ];
  for (const [a, b, t] of cases) {
    const lambda = Number(a) / Number(b);
    const ref = referencePoisson(a, b, t);
    closeRel(poissonAtLeast(lambda, t), ref.atLeast, 1e-10, `P[Poisson(${lambda}) >= ${t}]`);
    closeRel(poissonBelow(lambda, t), ref.below, 1e-10, `P[Poisson(${lambda}) < ${t}]`);
  }
});

test('committeeCapture: the design figures (t = 2/3, f = 0.2)', () => {
  const at10 = committeeCapture({ tau: 10, threshold: 2 / 3, adversary: 0.2 });
  closeRel(at10.capture, referencePoisson(2n, 1n, 7).atLeast, 1e-10, 'tau 10');
  assert.ok(at10.capture > 4.4e-3 && at10.capture < 4.6e-3, `about 4.5e-3, got ${at10.capture}`);
  closeRel(at10.livenessFailure, referencePoisson(8n, 1n, 7).below, 1e-10, 'tau 10 liveness');
  const at50 = committeeCapture({ tau: 50, threshold: 2 / 3, adversary: 0.2 });
  closeRel(at50.capture, referencePoisson(10n, 1n, 34).atLeast, 1e-10, 'tau 50');
  assert.ok(at50.capture > 1.5e-9 && at50.capture < 2.5e-9, `about 2e-9, got ${at50.capture}`);
  closeRel(at50.livenessFailure, referencePoisson(40n, 1n, 34).below, 1e-10, 'tau 50 liveness');
  // A seat count gives the same as the fraction that rounds up to it.
  assert.deepEqual(committeeCapture({ tau: 50, threshold: 34, adversary: 0.2 }), at50);
});

test('committeeCapture: extreme values down to 1e-30 and beyond stay exact', () => {
  const c = committeeCapture({ tau: 200, threshold: 134, adversary: 0.2 });
  closeRel(c.capture, referencePoisson(40n, 1n, 134).atLeast, 1e-10, 'tau 200');
  assert.ok(c.capture < 1e-30 && c.capture > 1e-32);
  const tiny = committeeCapture({ tau: 1000, threshold: 667, adversary: 0.1 });
  closeRel(tiny.capture, referencePoisson(100n, 1n, 667).atLeast, 1e-10, 'tau 1000 f 0.1');
  assert.ok(tiny.capture > 0 && tiny.capture < 1e-200);
  assert.deepEqual(committeeCapture({ tau: 10, threshold: 7, adversary: 0 }), {
    capture: 0,
    livenessFailure: poissonBelow(10, 7),
  });
});

test('committeeCapture is monotone in tau, adversary and threshold', () => {
  let prev = 1;
  for (let tau = 3; tau <= 300; tau += 3) {
    const c = committeeCapture({ tau, threshold: 2 / 3, adversary: 0.2 }).capture;
    assert.ok(c <= prev, `capture grew at tau ${tau}`);
    prev = c;
  }
  prev = 0;
  for (let f = 0; f < 0.99; f += 0.05) {
    const c = committeeCapture({ tau: 30, threshold: 20, adversary: f });
    assert.ok(c.capture >= prev, `capture shrank at f ${f}`);
    prev = c.capture;
  }
  let prevCap = 1;
  let prevLive = 0;
  for (let t = 1; t <= 60; t++) {
    const c = committeeCapture({ tau: 30, threshold: t, adversary: 0.3 });
    assert.ok(c.capture <= prevCap && c.livenessFailure >= prevLive, `threshold ${t}`);
    prevCap = c.capture;
    prevLive = c.livenessFailure;
  }
});

test('tails are complementary where both are representable', () => {
  for (const lambda of [0.3, 2, 9.5, 50, 333.3]) {
    for (const t of [0, 1, 2, 5, 10, 50, 60, 300, 400]) {
      const s = poissonAtLeast(lambda, t) + poissonBelow(lambda, t);
      assert.ok(Math.abs(s - 1) < 1e-13, `lambda ${lambda} t ${t}: sum ${s}`);
    }
  }
});

// --- Monte Carlo cross-checks with a seeded PRNG --------------------------------------------

/** sfc32, a small seeded PRNG (not for cryptography): uniform doubles in [0, 1). */
function prng(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 20; i++) next();
  return next;
}

/** A beta whose first 8 bytes are uniform (vrfFraction reads only those). */
function randomBeta(rand: () => number): Uint8Array {
  const b = new Uint8Array(64);
  for (let i = 0; i < 8; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

test('Monte Carlo: sampled Poisson seat counts agree with the capture probability', () => {
  const rand = prng(1);
  const lambda = 2;
  const t = 6;
  const L = Math.exp(-lambda);
  const N = 200_000;
  let hits = 0;
  for (let i = 0; i < N; i++) {
    let k = 0;
    let p = rand();
    while (p > L) {
      k++;
      p *= rand();
    }
    if (k >= t) hits++;
  }
  const want = committeeCapture({ tau: 10, threshold: t, adversary: 0.2 }).capture; // ~1.7e-2
  const sd = Math.sqrt((want * (1 - want)) / N);
  assert.ok(Math.abs(hits / N - want) < 5 * sd, `frequency ${hits / N} vs ${want} (sd ${sd})`);
});

test('Monte Carlo: sortition over many small stakes approaches the Poisson capture', () => {
  // 40 adversarial nodes of 500 units in a total of 100000: f = 0.2, tau = 10, t = 5.
  const rand = prng(2);
  const N = 20_000;
  let hits = 0;
  for (let i = 0; i < N; i++) {
    let seats = 0;
    for (let n = 0; n < 40; n++) seats += sortitionSeats(randomBeta(rand), 500n, 100_000n, 10);
    if (seats >= 5) hits++;
  }
  // The exact law is Binomial(20000, 1e-4), within 1e-3 relative of Poisson(2) here.
  const want = committeeCapture({ tau: 10, threshold: 5, adversary: 0.2 }).capture; // ~5.3e-2
  const sd = Math.sqrt((want * (1 - want)) / N);
  assert.ok(Math.abs(hits / N - want) < 5 * sd, `frequency ${hits / N} vs ${want} (sd ${sd})`);
});

test('Monte Carlo: mean seats of sortitionSeats is tau * w / W', () => {
  const rand = prng(3);
  for (const [w, W, tau] of [
    [1000n, 100_000n, 50],
    [30n, 100n, 20],
    [10n ** 12n, 10n ** 13n, 100],
  ] as [bigint, bigint, number][]) {
    const N = 4000;
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < N; i++) {
      const s = sortitionSeats(randomBeta(rand), w, W, tau);
      sum += s;
      sumSq += s * s;
    }
    const p = tau / Number(W);
    const mean = Number(w) * p;
    const variance = mean * (1 - p);
    assert.ok(
      Math.abs(sum / N - mean) < 5 * Math.sqrt(variance / N),
      `w ${w} W ${W} tau ${tau}: mean ${sum / N}, want ${mean}`,
    );
    const sampleVar = sumSq / N - (sum / N) ** 2;
    assert.ok(Math.abs(sampleVar / variance - 1) < 0.2, `variance ${sampleVar}, want ${variance}`);
  }
});

// --- sortitionSeats: exact behaviour -----------------------------------------------------------------

function betaFor(r: number): Uint8Array {
  // The beta whose vrfFraction is r rounded down to a multiple of 2^-53.
  const x = BigInt(Math.floor(r * 2 ** 53)) << 11n;
  const b = new Uint8Array(64);
  for (let i = 0; i < 8; i++) b[i] = Number((x >> BigInt(56 - 8 * i)) & 0xffn);
  return b;
}

test('vrfFraction: top 53 bits of the first 8 bytes, in [0, 1)', () => {
  assert.equal(vrfFraction(new Uint8Array(64)), 0);
  assert.equal(vrfFraction(new Uint8Array(64).fill(0xff)), 1 - 2 ** -53);
  assert.ok(vrfFraction(new Uint8Array(64).fill(0xff)) < 1);
  assert.equal(vrfFraction(Uint8Array.from([0x80, 0, 0, 0, 0, 0, 0, 0])), 0.5);
  assert.equal(vrfFraction(Uint8Array.from([0, 0, 0, 0, 0, 0, 0x08, 0])), 2 ** -53);
  assert.equal(vrfFraction(Uint8Array.from([0, 0, 0, 0, 0, 0, 0x07, 0xff])), 0);
  assert.equal(
    vrfFraction(Uint8Array.from([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0xff])),
    Number(0x123456789abcdef0n >> 11n) / 2 ** 53,
  );
  assert.equal(vrfFraction(betaFor(0.25)), 0.25);
  assert.throws(
    () => vrfFraction(new Uint8Array(7)),
    (e) => isFerryError(e, 'SORTITION_INVALID_PARAMETERS'),
  );
});

test('sortitionSeats: the smallest j with r < BinomCDF(j; w, p), against an exact CDF', () => {
  // Small case computed exactly with rationals by us: w = 3, p = 1/2: CDF = 1/8, 4/8, 7/8, 1.
  // The CDF is computed in double precision, so r is taken 2^-40 away from each boundary.
  const seats = (r: number) => sortitionSeats(betaFor(r), 3n, 20n, 10);
  const e = 2 ** -40;
  assert.equal(seats(0), 0);
  assert.equal(seats(0.125 - e), 0);
  assert.equal(seats(0.125 + e), 1);
  assert.equal(seats(0.5 - e), 1);
  assert.equal(seats(0.5 + e), 2);
  assert.equal(seats(0.875 - e), 2);
  assert.equal(seats(0.875 + e), 3);
  assert.equal(seats(1 - 2 ** -53), 3);
  // w = 10, p = 0.1 (tau 1, W 10): CDF(0) = 0.9^10 = 0.3486784401, CDF(1) = 0.7360989291.
  const tenth = (r: number) => sortitionSeats(betaFor(r), 10n, 10n, 1);
  assert.equal(tenth(0.3486784401 - e), 0);
  assert.equal(tenth(0.3486784401 + e), 1);
  assert.equal(tenth(0.7360989291 - e), 1);
  assert.equal(tenth(0.7360989291 + e), 2);
  // Zero stake, full probability.
  assert.equal(sortitionSeats(betaFor(0.99), 0n, 20n, 10), 0);
  assert.equal(sortitionSeats(betaFor(0.5), 5n, 20n, 20), 5);
  assert.equal(sortitionSeats(betaFor(0.5), 5n, 20n, 1e6), 5);
});

test('sortitionSeats: large stakes (1e12 units) and large means stay finite and monotone', () => {
  // pmf(0) = exp(-2000) underflows; the log-space sum still finds the median near 2000.
  const mid = sortitionSeats(betaFor(0.5), 10n ** 12n, 10n ** 12n - 1n + 1n, 2000);
  assert.ok(Math.abs(mid - 2000) <= 1, `median ${mid}`);
  let prev = 0;
  for (let i = 0; i <= 64; i++) {
    const r = Math.min(i / 64, 1 - 2 ** -53);
    const s = sortitionSeats(betaFor(r), 10n ** 12n, 3n * 10n ** 12n, 3000);
    assert.ok(s >= prev, `not monotone in r at ${r}`);
    prev = s;
  }
  // r = 1 - 2^-53 is the 1e-16 quantile: about 8 standard deviations (31.6) above the mean.
  assert.ok(prev > 1200 && prev < 1320, `r near 1 gives ${prev} seats (mean 1000)`);
  assert.equal(sortitionSeats(betaFor(0), 1n, 2n ** 53n - 1n, 1), 0);
});

test('bad sortition parameters are SORTITION_INVALID_PARAMETERS naming the argument', () => {
  const beta = new Uint8Array(64);
  const cases: [() => unknown, RegExp][] = [
    [() => sortitionSeats(beta, 1 as never, 10n, 5), /stake/],
    [() => sortitionSeats(beta, -1n, 10n, 5), /stake/],
    [() => sortitionSeats(beta, 11n, 10n, 5), /stake/],
    [() => sortitionSeats(beta, 0n, 0n, 5), /totalStake/],
    [() => sortitionSeats(beta, 1n, 2n ** 53n, 5), /totalStake/],
    [() => sortitionSeats(beta, 1n, 10n, 0), /tau/],
    [() => sortitionSeats(beta, 1n, 10n, Number.NaN), /tau/],
    [() => sortitionSeats(beta, 1n, 10n, 2e6), /tau/],
    [() => committeeCapture({ tau: 0, threshold: 1, adversary: 0 }), /tau/],
    [() => committeeCapture({ tau: 10, threshold: 1, adversary: 1 }), /adversary/],
    [() => committeeCapture({ tau: 10, threshold: 1, adversary: -0.1 }), /adversary/],
    [() => committeeCapture({ tau: 10, threshold: 0, adversary: 0.1 }), /threshold/],
    [() => committeeCapture({ tau: 10, threshold: 1.5, adversary: 0.1 }), /threshold/],
    [() => committeeCapture({ tau: 10.5, threshold: 0.5, adversary: 0.1 }), /tau/],
    [() => committeeCapture(null as never), /parameters/],
    [() => parseThreshold('abc', 10), /threshold/],
    [() => parseThreshold('0', 10), /threshold/],
    [() => parseThreshold('3/2', 10), /threshold/],
    [() => parseThreshold('0/3', 10), /threshold/],
    [() => parseThreshold('1.5', 10), /threshold/],
  ];
  for (const [fn, re] of cases) {
    assert.throws(
      fn,
      (e) => isFerryError(e, 'SORTITION_INVALID_PARAMETERS') && re.test(e.message),
      String(fn),
    );
  }
});

test('thresholds: fractions become seats by exact ceil(fraction * tau)', () => {
  assert.equal(parseThreshold('2/3', 10), 7);
  assert.equal(parseThreshold('2/3', 30), 20);
  assert.equal(parseThreshold('0.6667', 30), 21);
  assert.equal(parseThreshold('0.6', 10), 6);
  assert.equal(parseThreshold('.5', 9), 5);
  assert.equal(parseThreshold('1.0', 12), 12);
  assert.equal(parseThreshold('1', 12), 1);
  assert.equal(parseThreshold(' 34 ', 50), 34);
  assert.equal(thresholdSeats({ numerator: 1n, denominator: 1n }, 7), 7);
  // Doubles are read as the decimal a person wrote: 0.1 of 10 is 1 seat, although the double
  // 0.1 is slightly above 1/10.
  assert.equal(committeeThresholdSeats({ tau: 10, threshold: 0.6 }), 6);
  assert.equal(committeeThresholdSeats({ tau: 10, threshold: 0.1 }), 1);
  assert.equal(committeeThresholdSeats({ tau: 10, threshold: 0.7 }), 7);
  assert.equal(committeeThresholdSeats({ tau: 30, threshold: 2 / 3 }), 20);
  assert.equal(committeeThresholdSeats({ tau: 10, threshold: 7 }), 7);
});

// --- exact binomial model ---------------------------------------------------------------------------

/** P[Binomial(n, a/b) >= t] and P[... < t] exactly with BigInt rationals (computed by us). */
function referenceBinomial(n: number, a: bigint, b: bigint, t: number): { atLeast: number; below: number } {
  let c = 1n; // C(n, k)
  let above = 0n;
  let below = 0n;
  for (let k = 0; k <= n; k++) {
    const w = c * a ** BigInt(k) * (b - a) ** BigInt(n - k);
    if (k >= t) above += w;
    else below += w;
    c = (c * BigInt(n - k)) / BigInt(k + 1);
  }
  const total = b ** BigInt(n);
  const toNumber = (part: bigint) => {
    if (part === 0n) return 0;
    const shift = BigInt(part.toString().length - total.toString().length) - 30n;
    const q = shift >= 0n ? part / (total * 10n ** shift) : (part * 10n ** -shift) / total;
    return Number(`${q}e${shift}`);
  };
  return { atLeast: toNumber(above), below: toNumber(below) };
}

test('binomial tails match exact rational arithmetic to 1e-10 relative', () => {
  const cases: [number, bigint, bigint, number][] = [
    [10, 1n, 2n, 5],
    [200, 1n, 20n, 10],
    [200, 1n, 20n, 30], // far right, ~1e-9
    [200, 1n, 20n, 60], // ~1e-22
    [200, 1n, 20n, 2], // left tail
    [1000, 1n, 100n, 67],
    [1000, 1n, 100n, 1],
    [500, 3n, 7n, 250],
    [500, 3n, 7n, 150],
    [50, 99n, 100n, 50],
  ];
  for (const [n, a, b, t] of cases) {
    const p = Number(a) / Number(b);
    const ref = referenceBinomial(n, a, b, t);
    closeRel(binomialAtLeast(n, p, t), ref.atLeast, 1e-10, `P[Bin(${n}, ${p}) >= ${t}]`);
    closeRel(binomialBelow(n, p, t), ref.below, 1e-10, `P[Bin(${n}, ${p}) < ${t}]`);
  }
  assert.equal(binomialAtLeast(10, 0.5, 11), 0);
  assert.equal(binomialBelow(10, 0.5, 11), 1);
  assert.equal(binomialAtLeast(10, 0, 1), 0);
  assert.equal(binomialAtLeast(10, 1, 10), 1);
});

test('committeeCaptureForStake: exact for small stakes, tends to the Poisson model', () => {
  const small = committeeCaptureForStake({ tau: 10, threshold: 7, adversaryStake: 40n, totalStake: 200n });
  const ref = referenceBinomial(40, 1n, 20n, 7);
  closeRel(small.capture, ref.atLeast, 1e-10, 'capture');
  closeRel(small.livenessFailure, referenceBinomial(160, 1n, 20n, 7).below, 1e-10, 'liveness');
  const poisson = committeeCapture({ tau: 50, threshold: 34, adversary: 0.2 });
  const big = committeeCaptureForStake({
    tau: 50,
    threshold: 34,
    adversaryStake: 2n * 10n ** 11n,
    totalStake: 10n ** 12n,
  });
  closeRel(big.capture, poisson.capture, 1e-6, 'large stake vs Poisson');
  closeRel(big.livenessFailure, poisson.livenessFailure, 1e-6, 'large stake vs Poisson');
  // Fewer, larger units concentrate less: capture is below the Poisson figure here.
  const coarse = committeeCaptureForStake({
    tau: 50,
    threshold: 34,
    adversaryStake: 200n,
    totalStake: 1000n,
  });
  assert.ok(coarse.capture < poisson.capture);
  for (const bad of [
    { adversaryStake: 200n, totalStake: 200n },
    { adversaryStake: -1n, totalStake: 200n },
    { adversaryStake: 1n, totalStake: 5n },
  ]) {
    assert.throws(
      () => committeeCaptureForStake({ tau: 10, threshold: 7, ...bad }),
      (e) => isFerryError(e, 'SORTITION_INVALID_PARAMETERS'),
    );
  }
});

test('sortitionSeats agrees with an exact rational binomial CDF on random r', () => {
  // Exact CDF of Binomial(w, a/b) with BigInt rationals (computed by us), for r away from the
  // boundaries by more than 1e-12 (double-precision summation is specified, not exact).
  const rand = prng(4);
  for (const [w, W, tau] of [
    [50, 2500, 50],
    [7, 70, 20],
    [300, 3000, 100],
  ] as [number, number, number][]) {
    const a = BigInt(tau);
    const b = BigInt(W);
    const cdf: number[] = [];
    let c = 1n;
    let acc = 0n;
    const total = b ** BigInt(w);
    for (let k = 0; k <= w; k++) {
      acc += c * a ** BigInt(k) * (b - a) ** BigInt(w - k);
      c = (c * BigInt(w - k)) / BigInt(k + 1);
      cdf.push(Number((acc * 10n ** 30n) / total) / 1e30);
    }
    let checked = 0;
    for (let i = 0; i < 500; i++) {
      const beta = randomBeta(rand);
      const r = vrfFraction(beta);
      if (cdf.some((x) => Math.abs(x - r) < 1e-12)) continue;
      const want = cdf.findIndex((x) => r < x);
      assert.equal(sortitionSeats(beta, BigInt(w), BigInt(W), tau), want === -1 ? w : want, `r ${r}`);
      checked++;
    }
    assert.ok(checked > 490);
  }
});

test("vrfFraction is the same number as the VRF module's betaFraction (protocol sections 3 and 4)", () => {
  const rand = prng(5);
  for (let i = 0; i < 200; i++) {
    const beta = new Uint8Array(64).map(() => Math.floor(rand() * 256));
    assert.equal(vrfFraction(beta), betaFraction(beta));
  }
  assert.equal(vrfFraction(new Uint8Array(64).fill(0xff)), betaFraction(new Uint8Array(64).fill(0xff)));
});
