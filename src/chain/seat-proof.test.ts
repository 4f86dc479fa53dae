/**
 * contracts/SeatProof.sol against its TypeScript reference (src/protocol/seat-proof.ts,
 * docs/protocol.md section 4.1) on a real anvil, through contracts/test/SeatProofHarness.sol:
 * the same boolean on a few hundred random inputs, on the x just below and at the threshold,
 * and on invalid inputs (the library returns false, the reference throws); and the gas of the
 * check for 1, 10, 100 and 1000 seats (printed, not asserted).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Address, Hex } from 'viem';
import { seatProofLimit, seatsProvablyTooMany } from '../protocol/index.ts';
import { seatProofHarnessAbi, seatProofHarnessBytecode } from './generated/SeatProofHarness.ts';
import { startTestChain, type TestChain } from './testing.ts';

const TWO_64 = 1n << 64n;

let tc: TestChain;
let harness: Address;

before(async () => {
  tc = await startTestChain();
  const hash = await tc.deployer.wallet.deployContract({
    abi: seatProofHarnessAbi,
    bytecode: seatProofHarnessBytecode as Hex,
    account: tc.deployer.wallet.account,
    chain: tc.deployer.wallet.chain,
  });
  harness = (await tc.deployer.public.waitForTransactionReceipt({ hash })).contractAddress as Address;
});

after(async () => {
  await tc?.stop();
});

type Input = { x: bigint; w: bigint; W: bigint; tau: bigint; seats: bigint };

async function onChain(i: Input): Promise<boolean> {
  return tc.deployer.public.readContract({
    address: harness,
    abi: seatProofHarnessAbi,
    functionName: 'tooManySeats',
    args: [i.x, i.w, i.W, i.tau, i.seats],
  });
}

async function onChainGas(i: Input): Promise<{ flagged: boolean; gas: bigint }> {
  const [flagged, gas] = await tc.deployer.public.readContract({
    address: harness,
    abi: seatProofHarnessAbi,
    functionName: 'tooManySeatsGas',
    args: [i.x, i.w, i.W, i.tau, i.seats],
  });
  return { flagged, gas };
}

/** The reference, with invalid inputs mapped to false as the library does. */
function reference(i: Input): boolean {
  try {
    return seatsProvablyTooMany(i);
  } catch {
    return false;
  }
}

/** A deterministic generator (xorshift64*). */
function rng(seed: bigint) {
  let s = seed;
  const next = (): bigint => {
    s ^= s >> 12n;
    s ^= (s << 25n) & (TWO_64 - 1n);
    s ^= s >> 27n;
    return (s * 0x2545f4914f6cdd1dn) & (TWO_64 - 1n);
  };
  const below = (n: bigint): bigint => {
    let v = 0n;
    for (let i = 0; i < 3; i++) v = (v << 64n) | next();
    return v % n;
  };
  /** Log-uniform in [1, hi]. */
  const logInt = (hi: bigint): bigint => {
    const bits = 1n + below(BigInt(hi.toString(2).length));
    const v = (1n << (bits - 1n)) + below(1n << (bits - 1n));
    return v > hi ? hi : v;
  };
  return { next, below, logInt };
}

/** Random valid parameters with a bounded loop (seats <= 300). */
function randomInputs(n: number, seed: bigint): Omit<Input, 'x'>[] {
  const r = rng(seed);
  const out: Omit<Input, 'x'>[] = [];
  while (out.length < n) {
    const W = r.logInt((1n << 128n) - 1n);
    const w = r.logInt(W);
    const tau = r.logInt(65535n);
    const mean = (w * tau) / W;
    const top = mean + 20n < w ? mean + 20n : w;
    if (top > 300n) continue;
    out.push({ w, W, tau, seats: 1n + r.below(top) });
  }
  return out;
}

describe('SeatProof.sol agrees with the TypeScript reference', () => {
  test('random inputs, and x at 0, 2^64 - 1 and around the threshold', async (t) => {
    const r = rng(0xc0ffeen);
    let flagged = 0;
    let calls = 0;
    for (const p of randomInputs(80, 0x5eedn)) {
      const limit = seatProofLimit(p);
      const xs = new Set<bigint>([0n, TWO_64 - 1n, r.next()]);
      for (const d of [-2n, -1n, 0n, 1n]) {
        const x = limit + d;
        if (x >= 0n && x < TWO_64) xs.add(x);
      }
      for (const x of xs) {
        const input = { ...p, x };
        const want = reference(input);
        assert.equal(
          await onChain(input),
          want,
          JSON.stringify(input, (_k, v) => String(v)),
        );
        if (want) flagged++;
        calls++;
      }
    }
    t.diagnostic(`${calls} calls, ${flagged} flagged`);
    assert.ok(calls >= 300 && flagged >= 80 && calls - flagged >= 80);
  });

  test('the threshold found by bisection on the reference is where the library switches', async () => {
    for (const p of randomInputs(12, 0xb15ecn)) {
      // Smallest x not flagged, by bisection over x on the reference.
      let lo = 0n;
      let hi = TWO_64;
      while (lo < hi) {
        const mid = (lo + hi) >> 1n;
        if (seatsProvablyTooMany({ ...p, x: mid })) lo = mid + 1n;
        else hi = mid;
      }
      assert.equal(lo, seatProofLimit(p));
      if (lo > 0n) assert.equal(await onChain({ ...p, x: lo - 1n }), true);
      if (lo < TWO_64) assert.equal(await onChain({ ...p, x: lo }), false);
    }
  });

  test('edge cases: p >= 1, w = W, W near 2^128, tau = 65535, seats = w', async () => {
    const W128 = (1n << 128n) - 1n;
    const edges: Omit<Input, 'x'>[] = [
      { w: 1n, W: 1n, tau: 1n, seats: 1n },
      { w: 3n, W: 3n, tau: 5n, seats: 3n },
      { w: 2n, W: 3n, tau: 2n, seats: 2n },
      { w: 1n, W: 2n, tau: 1n, seats: 1n },
      { w: 7n, W: 8n, tau: 7n, seats: 7n },
      { w: W128, W: W128, tau: 65535n, seats: 1n },
      { w: W128, W: W128, tau: 1n, seats: 3n },
      { w: 1n, W: W128, tau: 65535n, seats: 1n },
      { w: W128 / 3n, W: W128, tau: 300n, seats: 120n },
      { w: 65536n, W: 65536n, tau: 65535n, seats: 200n },
      { w: 10n ** 18n, W: 10n ** 18n + 1n, tau: 65535n, seats: 250n },
    ];
    for (const p of edges) {
      const limit = seatProofLimit(p);
      for (const x of [0n, 1n, TWO_64 - 1n, limit - 1n, limit]) {
        if (x < 0n || x >= TWO_64) continue;
        const input = { ...p, x };
        assert.equal(
          await onChain(input),
          reference(input),
          JSON.stringify(input, (_k, v) => String(v)),
        );
      }
    }
  });

  test('invalid inputs: the library returns false (never reverts), the reference throws', async () => {
    const ok = { x: 1n, w: 10n, W: 100n, tau: 10n, seats: 1n };
    assert.equal(await onChain(ok), reference(ok));
    const bad: Partial<Input>[] = [
      { W: 0n, w: 0n },
      { W: 1n << 128n },
      { W: (1n << 200n) + 5n, w: 3n },
      { w: 0n },
      { w: 101n },
      { tau: 0n },
      { tau: 65536n },
      { tau: (1n << 255n) + 10n },
      { seats: 0n },
      { seats: 11n },
      { w: 100000n, W: 100000n, seats: 65536n },
      { seats: (1n << 256n) - 1n },
    ];
    for (const over of bad) {
      const input = { ...ok, x: 0n, ...over };
      assert.throws(() => seatsProvablyTooMany(input));
      assert.equal(
        await onChain(input),
        false,
        JSON.stringify(over, (_k, v) => String(v)),
      );
    }
  });

  test('gas for 1, 10, 100 and 1000 seats (worst case: not flagged, the loop runs to the end)', async (t) => {
    const rows: string[] = [];
    for (const seats of [1n, 10n, 100n, 1000n]) {
      // mean = seats: the claim is honest-looking and x = 2^64 - 1 runs every step.
      for (const [w, W] of [
        [10n ** 5n, 10n ** 6n],
        [(1n << 126n) + 12345n, (1n << 127n) + 3n],
      ]) {
        const tau = (seats * W) / w > 65535n ? 65535n : (seats * W) / w;
        const input = { x: TWO_64 - 1n, w, W, tau, seats };
        const { flagged, gas } = await onChainGas(input);
        assert.equal(flagged, reference(input));
        rows.push(`seats ${seats}, w ${w.toString(2).length} bits, tau ${tau}: ${gas} gas`);
      }
    }
    for (const row of rows) t.diagnostic(row);
  });
});
