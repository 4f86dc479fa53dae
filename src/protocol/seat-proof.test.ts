/**
 * The "provably too many seats" rule (docs/protocol.md section 4.1) against the normative
 * binary64 sortition (section 4, src/crypto/sortition.ts): an honest voter is never flagged —
 * also with its VRF output at the very edge of its seat count, found by bisection — and a
 * voter that claims more seats than it holds loses, unless its VRF output lies within the
 * band just below the CDF value. Pure and deterministic (seeded), no chain.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sortitionSeats } from '../crypto/index.ts';
import { isFerryError } from '../kernel/index.ts';
import { seatProofLimit, seatsProvablyTooMany } from './seat-proof.ts';

const TWO_64 = 1n << 64n;

/** A deterministic generator (xorshift64*), so a failure reproduces. */
function rng(seed: bigint) {
  let s = seed;
  const next = (): bigint => {
    s ^= s >> 12n;
    s ^= (s << 25n) & (TWO_64 - 1n);
    s ^= s >> 27n;
    return (s * 0x2545f4914f6cdd1dn) & (TWO_64 - 1n);
  };
  /** Uniform-ish in [lo, hi] (bigints, hi - lo < 2^64). */
  const int = (lo: bigint, hi: bigint): bigint => lo + (next() % (hi - lo + 1n));
  /** Log-uniform in [lo, hi]. */
  const logInt = (lo: bigint, hi: bigint): bigint => {
    const bits = int(BigInt(lo.toString(2).length), BigInt(hi.toString(2).length));
    const top = 1n << bits;
    const v = int(top >> 1n, top - 1n);
    return v < lo ? lo : v > hi ? hi : v;
  };
  return { next, int, logInt };
}

/** A VRF output whose first 8 bytes are x (big-endian). */
function beta(x: bigint): Uint8Array {
  const b = new Uint8Array(64);
  for (let i = 0; i < 8; i++) b[i] = Number((x >> BigInt(8 * (7 - i))) & 0xffn);
  return b;
}

function seats(x: bigint, w: bigint, W: bigint, tau: bigint): number {
  return sortitionSeats(beta(x), w, W, Number(tau));
}

/**
 * The smallest x for which sortition gives at least j seats (sortition is monotone in x): the
 * honest voter closest to being flagged for j seats.
 */
function firstXWith(j: number, w: bigint, W: bigint, tau: bigint): bigint {
  let lo = 0n;
  let hi = TWO_64 - 1n;
  if (seats(hi, w, W, tau) < j) return -1n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1n;
    if (seats(mid, w, W, tau) >= j) hi = mid;
    else lo = mid + 1n;
  }
  return lo;
}

/** The band of section 4.1 as a fraction: 2^-40 + seats (M + 64) 2^-49. */
function band(w: bigint, W: bigint, tau: bigint, j: bigint): number {
  const M = (w * tau + (W - tau) - 1n) / (W - tau);
  return 2 ** -40 + Number(j * (M + 64n)) * 2 ** -49;
}

/** BinomCDF(k; w, tau / W) in binary64, operation by operation as section 4. */
function cdfDouble(w: number, W: number, tau: number, k: number): number {
  const p = tau / W;
  const lq = Math.log1p(-p);
  const lodds = Math.log(p) - lq;
  let lpmf = w * lq;
  let cdf = Math.exp(lpmf);
  for (let j = 0; j < k; ) {
    lpmf = lpmf + (Math.log((w - j) / (j + 1)) + lodds);
    j = j + 1;
    cdf = cdf + Math.exp(lpmf);
  }
  return cdf;
}

type Case = { w: bigint; W: bigint; tau: bigint };

/** A broad sample: totals from 1 to 2^53 - 1, stakes log-uniform, tau log-uniform to 65535. */
function randomCases(n: number, seed: bigint): Case[] {
  const r = rng(seed);
  const out: Case[] = [];
  while (out.length < n) {
    const W = r.logInt(1n, (1n << 53n) - 1n);
    const w = r.logInt(1n, W);
    const tau = r.logInt(1n, 65535n);
    // Bound the work: the mean w tau / W sets the loop length.
    if ((w * tau) / W > 3000n) continue;
    out.push({ w, W, tau });
  }
  return out;
}

function grid(): Case[] {
  const out: Case[] = [];
  for (const W of [1n, 2n, 7n, 100n, 1000n, 65536n, 10n ** 6n, 10n ** 12n, (1n << 53n) - 1n]) {
    for (const frac of [1n, 10n, 2n, 1000n]) {
      const w = W / frac > 0n ? W / frac : 1n;
      for (const tau of [1n, 5n, 10n, 30n, 100n, 1000n]) out.push({ w, W, tau });
    }
  }
  return out;
}

/** Large means: tau 1000..65535 with w / W near 1 and near 0. */
function largeMeanCases(): Case[] {
  const out: Case[] = [];
  for (const tau of [1000n, 4096n, 20000n, 65535n]) {
    for (const W of [tau + 1n, 2n * tau, 10n ** 6n, 10n ** 12n, (1n << 53n) - 1n]) {
      if (W <= tau) continue;
      for (const w of [W, W - 1n, (W * 9n) / 10n, W / 1000n, 1n]) {
        if (w < 1n) continue;
        out.push({ w, W, tau });
      }
    }
  }
  return out;
}

/** Honest at the edge: for each seat count j the voter can hold, the smallest x giving j. */
function assertHonestEdges(c: Case, js: number[]): number {
  let checked = 0;
  for (const j of js) {
    if (j < 1 || BigInt(j) > c.w || j > 65535) continue;
    const x = firstXWith(j, c.w, c.W, c.tau);
    if (x < 0n) continue;
    const got = seats(x, c.w, c.W, c.tau);
    assert.ok(got >= j);
    // The voter's own seats at its smallest x, and the seat count j it would also be honest for
    // at any x just above that edge (x - 1 gives fewer seats).
    for (const s of new Set([got, j])) {
      if (s > 65535) continue;
      const flagged = seatsProvablyTooMany({ x, ...c, seats: BigInt(s) });
      assert.equal(flagged, false, `honest voter flagged: ${JSON.stringify(show(c))} x=${x} j=${s}`);
      checked++;
    }
  }
  return checked;
}

function show(c: Case) {
  return { w: String(c.w), W: String(c.W), tau: String(c.tau) };
}

/**
 * Honest voter at x (random): not flagged; every claim of more seats (up to +5) is flagged
 * unless x lies within the band below BinomCDF(j' - 1). Returns the number of such exceptions.
 */
function assertRandomVoter(c: Case, x: bigint): { liars: number; exceptions: number; wide: number } {
  const j = seats(x, c.w, c.W, c.tau);
  if (j >= 1 && j <= 65535) {
    assert.equal(
      seatsProvablyTooMany({ x, ...c, seats: BigInt(j) }),
      false,
      `honest flagged ${JSON.stringify(show(c))} x=${x}`,
    );
  }
  let liars = 0;
  let exceptions = 0;
  let wide = 0;
  const top = Math.min(Number(c.w < 65535n ? c.w : 65535n), j + 5);
  for (let claim = j + 1; claim <= top; claim++) {
    liars++;
    if (seatsProvablyTooMany({ x, ...c, seats: BigInt(claim) })) continue;
    // Not flagged: allowed only inside the band just below CDF(claim - 1).
    const r = Number(x) / 2 ** 64;
    const cdf = cdfDouble(Number(c.w), Number(c.W), Number(c.tau), claim - 1);
    const b = band(c.w, c.W, c.tau, BigInt(claim));
    assert.ok(
      cdf - r <= 2 * b,
      `liar escaped outside the band: ${JSON.stringify(show(c))} x=${x} j=${j} claim=${claim} gap=${cdf - r} band=${b}`,
    );
    // A band this wide occurs only when tau is close to W (p near 1, section 4.1).
    if (b < 2 ** -20) exceptions++;
    else wide++;
  }
  return { liars, exceptions, wide };
}

/** Random-sample sizes scale with FERRY_TEST_SCALE (default 1: fast enough for `npm test`). */
const SCALE = Math.max(1, Number(process.env.FERRY_TEST_SCALE ?? 1) || 1);
/** The large-mean cases (each walks up to 65,535 seats): every third at scale 1, all above. */
const largeMeans = (): Case[] => largeMeanCases().filter((_, i) => SCALE > 1 || i % 3 === 0);

describe('seat proof: honest voters are never flagged', () => {
  test('at the edge of every seat count, on a grid and a random sample of (w, W, tau)', () => {
    let checked = 0;
    const cases = [...grid(), ...randomCases(100 * SCALE, 0x5ea7n)];
    for (const c of cases) {
      if (c.tau >= c.W) continue;
      const mean = Number((c.w * c.tau) / c.W);
      const sd = Math.sqrt(mean + 1);
      const js = [
        1,
        2,
        3,
        Math.round(mean),
        Math.round(mean + sd),
        Math.round(mean + 3 * sd),
        Math.round(mean + 6 * sd),
      ];
      checked += assertHonestEdges(c, js);
    }
    assert.ok(checked > 700, `checked ${checked}`);
  });

  test('large means (tau 1000..65535, w / W near 1 and near 0) at the edges around the mean', () => {
    let checked = 0;
    for (const c of largeMeans()) {
      const mean = Number((c.w * c.tau) / c.W);
      const sd = Math.sqrt(mean + 1);
      const js = [1, Math.round(mean - 3 * sd), Math.round(mean), Math.round(mean + 4 * sd)];
      checked += assertHonestEdges(c, js);
    }
    assert.ok(checked > 30, `checked ${checked}`);
  });

  test('p >= 1 (tau >= W): sortition gives w seats, never flagged, for any x and any claim', () => {
    for (const [w, W, tau] of [
      [1n, 1n, 1n],
      [5n, 10n, 10n],
      [10n, 10n, 65535n],
      [65535n, 65535n, 65535n],
    ]) {
      assert.equal(seats(0n, w, W, tau), Number(w));
      for (const x of [0n, 1n, TWO_64 - 1n]) {
        for (const s of [1n, w]) assert.equal(seatsProvablyTooMany({ x, w, W, tau, seats: s }), false);
      }
    }
  });
});

describe('seat proof: liars lose', () => {
  test('random voters: every claim above the true seats (up to +5) is flagged outside the band', (t) => {
    const r = rng(0xb0bn);
    let liars = 0;
    let exceptions = 0;
    let wide = 0;
    for (const c of [...grid(), ...randomCases(120 * SCALE, 0x11a2n), ...largeMeans()]) {
      if (c.tau >= c.W) continue;
      for (let n = 0; n < 2; n++) {
        const got = assertRandomVoter(c, r.next());
        liars += got.liars;
        exceptions += got.exceptions;
        wide += got.wide;
      }
    }
    assert.ok(liars > 1500, `liars ${liars}`);
    // Where the band is below 2^-20 a random x falls in it about never; it is wide only for
    // tau close to W (here W = tau + 1 with tau = 65535), where few lies escape.
    t.diagnostic(`${liars} lies: ${exceptions} escaped in a band < 2^-20, ${wide} in a wide band (p near 1)`);
    assert.equal(exceptions, 0, `${exceptions} of ${liars} lies fell in a narrow band`);
    assert.ok(wide <= liars / 200, `${wide} of ${liars} lies fell in a wide band`);
  });

  test('the common attack: a verifier not selected (0 seats) claims 1 and is flagged', () => {
    const r = rng(0xa77acn);
    let attacks = 0;
    for (let n = 0; attacks < 500 && n < 100000; n++) {
      const W = r.logInt(100n, (1n << 53n) - 1n);
      const w = r.logInt(1n, W / 20n > 0n ? W / 20n : 1n);
      const tau = r.logInt(1n, 200n);
      if (tau >= W) continue;
      const x = r.next();
      if (seats(x, w, W, tau) !== 0) continue;
      attacks++;
      assert.equal(seatsProvablyTooMany({ x, w, W, tau, seats: 1n }), true, `${w}/${W} tau ${tau} x ${x}`);
    }
    assert.equal(attacks, 500);
  });

  test('at the edge: the last x short of j seats claiming j is flagged unless inside the band', () => {
    // x one below the smallest x with j seats holds j - 1 seats: the hardest lie to catch. Its
    // r is at CDF(j - 1) minus 2^-53, so it lies inside the band and must NOT be flagged — the
    // price of never flagging an honest voter — while x = CDF(j - 1) - 2 band is flagged.
    for (const c of [...grid().slice(0, 120), ...largeMeanCases().slice(0, 30)]) {
      if (c.tau >= c.W) continue;
      const mean = Number((c.w * c.tau) / c.W);
      const j = Math.max(1, Math.round(mean));
      if (BigInt(j) > c.w) continue;
      const x = firstXWith(j, c.w, c.W, c.tau);
      if (x <= 0n) continue;
      const limit = seatProofLimit({ ...c, seats: BigInt(j) });
      assert.ok(limit <= x, 'the limit is at or below the honest edge');
      assert.equal(seats(x - 1n, c.w, c.W, c.tau), j - 1);
      assert.equal(seatsProvablyTooMany({ x: x - 1n, ...c, seats: BigInt(j) }), false, 'inside the band');
      if (limit > 0n) {
        assert.equal(seatsProvablyTooMany({ x: limit - 1n, ...c, seats: BigInt(j) }), true);
        assert.equal(seatsProvablyTooMany({ x: limit, ...c, seats: BigInt(j) }), false);
        const gap = Number(x - limit) / 2 ** 64;
        assert.ok(gap <= 2 * band(c.w, c.W, c.tau, BigInt(j)), `gap ${gap}`);
      }
    }
  });
});

describe('seat proof: inputs', () => {
  const ok = { x: 1n, w: 10n, W: 100n, tau: 10n, seats: 1n };
  const cases: [string, Record<string, unknown>][] = [
    ['x', { x: -1n }],
    ['x', { x: TWO_64 }],
    ['x', { x: 1 }],
    ['W', { W: 0n, w: 0n }],
    ['W', { W: 1n << 128n }],
    ['W', { W: 100 }],
    ['w', { w: 0n }],
    ['w', { w: 101n }],
    ['tau', { tau: 0n }],
    ['tau', { tau: 65536n }],
    ['tau', { tau: 10 }],
    ['seats', { seats: 0n }],
    ['seats', { seats: 11n }],
    ['seats', { w: 100000n, W: 100000n, seats: 65536n }],
  ];
  for (const [what, over] of cases) {
    test(`bad ${what}: ${JSON.stringify(over, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`, () => {
      assert.throws(
        () => seatsProvablyTooMany({ ...ok, ...over } as never),
        (e: unknown) =>
          isFerryError(e) && e.code === 'SORTITION_INVALID_PARAMETERS' && e.message === `invalid ${what}`,
      );
    });
  }
  test('not an object', () => {
    assert.throws(
      () => seatsProvablyTooMany(null as never),
      (e: unknown) => isFerryError(e) && e.code === 'SORTITION_INVALID_PARAMETERS',
    );
  });
  test('the extremes are accepted: W = 2^128 - 1, w = W, tau = 65535, seats = 65535', () => {
    const W = (1n << 128n) - 1n;
    // The mean is about 65535: claiming 65535 seats is honest for x near the median.
    assert.equal(seatsProvablyTooMany({ x: TWO_64 / 2n, w: W, W, tau: 65535n, seats: 65535n }), false);
    assert.equal(seatsProvablyTooMany({ x: 0n, w: W, W, tau: 65535n, seats: 65535n }), true);
  });
});
