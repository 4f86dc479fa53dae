// A small deterministic mutation fuzzer for the parser fuzz tests (issue 13 item 5).
//
// Every fuzz test seeds it with valid inputs (test/vectors or objects built in the test), a
// fixed PRNG seed and a bounded iteration count, and asserts that each input either parses or
// fails with a FerryError whose code is listed in src/kernel/codes.ts and is not INTERNAL.
// `FERRY_FUZZ_ITERATIONS` (CI) replaces every target's default iteration count; `FERRY_FUZZ_SEED`
// varies the PRNG seeds (see seedOf).
import assert from 'node:assert/strict';
import { ERROR_CODES } from '../../src/kernel/codes.ts';
import { FerryError } from '../../src/kernel/errors.ts';

/** xorshift128+ style PRNG on 32-bit state words: fast, seedable, reproducible. */
export class Rng {
  #s: Uint32Array;
  constructor(seed: number) {
    this.#s = new Uint32Array(4);
    let x = seed >>> 0 || 0x9e3779b9;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }
  /** A uniform 32-bit unsigned integer (xoshiro128**). */
  u32(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1] as number, 5), 7), 9) >>> 0;
    const t = ((s[1] as number) << 9) >>> 0;
    s[2] = (s[2] as number) ^ (s[0] as number);
    s[3] = (s[3] as number) ^ (s[1] as number);
    s[1] = (s[1] as number) ^ (s[2] as number);
    s[0] = (s[0] as number) ^ (s[3] as number);
    s[2] = (s[2] as number) ^ t;
    s[3] = rotl(s[3] as number, 11);
    return r;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)] as T;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x40, 0x60, 0x9f, 0xbf];
const INTERESTING_16 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x0400, 0x1000];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 0x01000000, 0xfffffffe];

/** One mutation of `input` (never modifies it); `pool` supplies splice partners. */
export function mutate(rng: Rng, input: Uint8Array, pool: readonly Uint8Array[] = []): Uint8Array {
  const b = new Uint8Array(input);
  const len = b.length;
  const at = (extra = 0) => rng.below(Math.max(1, len - extra));
  switch (rng.below(12)) {
    case 0: // bit flip
      if (len) b[at()] = (b[at()] as number) ^ (1 << rng.below(8));
      return b;
    case 1: // byte set to random
      if (len) b[at()] = rng.u32() & 0xff;
      return b;
    case 2: // interesting byte
      if (len) b[at()] = rng.pick(INTERESTING_8);
      return b;
    case 3: {
      // interesting u16, either endianness
      if (len < 2) return b;
      const v = rng.pick(INTERESTING_16);
      const i = at(1);
      const le = rng.below(2) === 0;
      b[i] = le ? v & 0xff : v >>> 8;
      b[i + 1] = le ? v >>> 8 : v & 0xff;
      return b;
    }
    case 4: {
      // interesting u32, either endianness
      if (len < 4) return b;
      const v = rng.pick(INTERESTING_32);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      dv.setUint32(at(3), v, rng.below(2) === 0);
      return b;
    }
    case 5: // truncate
      return b.slice(0, rng.below(len + 1));
    case 6: {
      // delete a run
      if (!len) return b;
      const i = at();
      const n = 1 + rng.below(Math.min(16, len - i));
      return concat(b.subarray(0, i), b.subarray(i + n));
    }
    case 7: {
      // insert random bytes
      const i = rng.below(len + 1);
      return concat(b.subarray(0, i), rng.bytes(1 + rng.below(8)), b.subarray(i));
    }
    case 8: {
      // duplicate a run in place
      if (!len) return b;
      const i = at();
      const n = 1 + rng.below(Math.min(32, len - i));
      return concat(b.subarray(0, i + n), b.subarray(i, i + n), b.subarray(i + n));
    }
    case 9: {
      // splice with another seed
      const other = pool.length ? rng.pick(pool) : b;
      const i = rng.below(len + 1);
      const j = rng.below(other.length + 1);
      return concat(b.subarray(0, i), other.subarray(j));
    }
    case 10: {
      // run of one byte
      const i = rng.below(len + 1);
      const run = new Uint8Array(1 + rng.below(64)).fill(rng.pick(INTERESTING_8));
      return concat(b.subarray(0, i), run, b.subarray(i));
    }
    default: {
      // several byte flips
      for (let k = 0, n = 2 + rng.below(6); k < n && len; k++) b[at()] = rng.u32() & 0xff;
      return b;
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The PRNG seed of a target: its fixed seed, XORed with `FERRY_FUZZ_SEED` when set (a CI job
 * that explores beyond the fixed inputs; a failure message names the seed to replay).
 */
export function seedOf(fixed: number): number {
  const env = process.env.FERRY_FUZZ_SEED;
  if (env === undefined || env === '') return fixed >>> 0;
  const n = Number(env);
  assert.ok(Number.isSafeInteger(n) && n >= 0, `FERRY_FUZZ_SEED must be a non-negative integer, got ${env}`);
  return (fixed ^ n) >>> 0;
}

/** The iteration count: `FERRY_FUZZ_ITERATIONS` if set, else the target's default. */
export function iterations(dflt: number): number {
  const env = process.env.FERRY_FUZZ_ITERATIONS;
  if (env === undefined || env === '') return dflt;
  const n = Number(env);
  assert.ok(Number.isSafeInteger(n) && n > 0, `FERRY_FUZZ_ITERATIONS must be a positive integer, got ${env}`);
  return n;
}

/**
 * Asserts `e` is a FerryError with a code of src/kernel/codes.ts other than INTERNAL; the
 * message names the reproducer (hex) so a failure can be replayed.
 */
export function assertCoded(e: unknown, input: Uint8Array | string, what: string): FerryError {
  const repro =
    typeof input === 'string' ? JSON.stringify(input.slice(0, 400)) : Buffer.from(input).toString('hex');
  if (!(e instanceof FerryError)) {
    const where = String((e as Error)?.stack ?? '')
      .split('\n')
      .slice(1, 5)
      .join('\n');
    assert.fail(
      `${what}: non-Ferry error ${(e as Error)?.name}: ${(e as Error)?.message}\n${where}\n  input: ${repro}`,
    );
  }
  assert.ok(Object.hasOwn(ERROR_CODES, e.code), `${what}: unlisted code ${e.code}\n  input: ${repro}`);
  assert.notEqual(e.code, 'INTERNAL', `${what}: INTERNAL (${e.message})\n  input: ${repro}`);
  return e;
}

export type FuzzStats = { runs: number; ok: number; codes: Map<string, number> };

export type FuzzOptions<I> = {
  /** The PRNG seed: fixed per target so every run replays the same inputs. */
  seed: number;
  /** Default iteration count (replaced by FERRY_FUZZ_ITERATIONS). */
  iterations: number;
  /** Valid inputs to mutate. */
  seeds: readonly I[];
  /** Produce one fuzz input from the seeds (default: byte mutation, 1..4 stacked). */
  generate?: (rng: Rng, seeds: readonly I[]) => I;
  /**
   * Upper bound on one iteration, in ms; an iteration past it fails the test as a hang. Not a
   * performance assertion: set far above the normal cost (a loaded CI machine).
   */
  hangMs?: number;
};

/** Byte-level generator: pick a seed and stack 1..4 mutations (splicing with the others). */
export function byteMutations(rng: Rng, seeds: readonly Uint8Array[]): Uint8Array {
  let x = rng.pick(seeds);
  for (let k = 0, n = 1 + rng.below(4); k < n; k++) x = mutate(rng, x, seeds);
  return x;
}

/**
 * Runs `target` on `iterations` inputs; the target returns normally or throws. Every thrown
 * error must be coded (assertCoded). Synchronous targets only, so a hang is measurable after
 * the fact; the bound catches super-linear blow-ups, not true infinite loops (which the
 * node:test timeout catches).
 */
export function fuzz(
  what: string,
  opts: FuzzOptions<Uint8Array>,
  target: (input: Uint8Array) => unknown,
): FuzzStats;
export function fuzz<I>(
  what: string,
  opts: FuzzOptions<I> & { generate: (rng: Rng, seeds: readonly I[]) => I },
  target: (input: I) => unknown,
): FuzzStats;
export function fuzz<I>(what: string, opts: FuzzOptions<I>, target: (input: I) => unknown): FuzzStats {
  assert.ok(opts.seeds.length > 0, `${what}: no seeds`);
  const rng = new Rng(seedOf(opts.seed));
  const gen = opts.generate ?? (byteMutations as unknown as (rng: Rng, seeds: readonly I[]) => I);
  const n = iterations(opts.iterations);
  const hang = opts.hangMs ?? 10_000;
  const stats: FuzzStats = { runs: 0, ok: 0, codes: new Map() };
  for (let i = 0; i < n; i++) {
    // Seeds are run as-is first so a target that rejects its own seeds is noticed.
    const input = i < opts.seeds.length ? (opts.seeds[i] as I) : gen(rng, opts.seeds);
    const t0 = performance.now();
    try {
      target(input);
      stats.ok++;
    } catch (e) {
      const fe = assertCoded(e, reproOf(input), `${what} (seed ${seedOf(opts.seed)}, iteration ${i})`);
      stats.codes.set(fe.code, (stats.codes.get(fe.code) ?? 0) + 1);
    }
    const dt = performance.now() - t0;
    assert.ok(
      dt < hang,
      `${what}: iteration ${i} took ${Math.round(dt)} ms\n  input: ${hexOf(reproOf(input))}`,
    );
    stats.runs++;
  }
  return stats;
}

/** Async variant for targets that return promises (awaited one at a time). */
export async function fuzzAsync<I>(
  what: string,
  opts: FuzzOptions<I> & { generate?: (rng: Rng, seeds: readonly I[]) => I },
  target: (input: I) => Promise<unknown>,
): Promise<FuzzStats> {
  assert.ok(opts.seeds.length > 0, `${what}: no seeds`);
  const rng = new Rng(seedOf(opts.seed));
  const gen = opts.generate ?? (byteMutations as unknown as (rng: Rng, seeds: readonly I[]) => I);
  const n = iterations(opts.iterations);
  const hang = opts.hangMs ?? 10_000;
  const stats: FuzzStats = { runs: 0, ok: 0, codes: new Map() };
  for (let i = 0; i < n; i++) {
    const input = i < opts.seeds.length ? (opts.seeds[i] as I) : gen(rng, opts.seeds);
    const t0 = performance.now();
    try {
      await target(input);
      stats.ok++;
    } catch (e) {
      const fe = assertCoded(e, reproOf(input), `${what} (seed ${seedOf(opts.seed)}, iteration ${i})`);
      stats.codes.set(fe.code, (stats.codes.get(fe.code) ?? 0) + 1);
    }
    const dt = performance.now() - t0;
    assert.ok(
      dt < hang,
      `${what}: iteration ${i} took ${Math.round(dt)} ms\n  input: ${hexOf(reproOf(input))}`,
    );
    stats.runs++;
  }
  return stats;
}

function reproOf(input: unknown): Uint8Array | string {
  if (input instanceof Uint8Array || typeof input === 'string') return input;
  try {
    return JSON.stringify(input, (_k, v) =>
      typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
    );
  } catch {
    return String(input);
  }
}

function hexOf(x: Uint8Array | string): string {
  return typeof x === 'string'
    ? JSON.stringify(x.slice(0, 400))
    : Buffer.from(x).toString('hex').slice(0, 800);
}

/** Decodes the ASCII of `bytes` leniently (for text parsers fed byte mutations). */
export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('latin1');
}

/** Asserts the fuzzer exercised both outcomes where a target has both (the seeds parse). */
export function assertExercised(what: string, stats: FuzzStats, { ok = true, failed = true } = {}): void {
  if (ok) assert.ok(stats.ok > 0, `${what}: no input parsed (seeds rejected?)`);
  if (failed) assert.ok(stats.codes.size > 0, `${what}: no input failed (mutator ineffective?)`);
}

type Value =
  | number
  | bigint
  | string
  | boolean
  | null
  | Uint8Array
  | readonly Value[]
  | { readonly [key: string]: Value };

const INTERESTING_INTS: readonly (number | bigint)[] = [
  0,
  1,
  -1,
  23,
  24,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  2n ** 64n - 1n,
  -(2n ** 64n),
];

/** A random protocol value (canonical CBOR subset) of bounded depth. */
export function randomValue(rng: Rng, depth = 3): Value {
  switch (rng.below(depth > 0 ? 9 : 6)) {
    case 0:
      return rng.pick(INTERESTING_INTS);
    case 1:
      return rng.pick([
        '',
        'sim',
        'tpm2',
        'sev-snp',
        'tdx',
        'sgx',
        'ferry/evidence/v1',
        '__proto__',
        'x'.repeat(100),
      ]);
    case 2:
      return rng.pick([true, false, null]);
    case 3:
      return rng.bytes(rng.pick([0, 1, 16, 31, 32, 33, 64, 65, 96]));
    case 4:
      return rng.below(1000) - 500;
    case 5:
      return null;
    case 6: {
      const n = rng.below(5);
      return Array.from({ length: n }, () => randomValue(rng, depth - 1));
    }
    default: {
      const o: Record<string, Value> = {};
      for (let i = 0, n = rng.below(5); i < n; i++)
        o[rng.pick(['kind', 'body', 'a', 'id', 'x'])] = randomValue(rng, depth - 1);
      return o;
    }
  }
}

/**
 * A structure-aware mutation of a decoded protocol value: replace, drop or add one node somewhere
 * in the tree (maps keep plain-object form, so the result re-encodes canonically).
 */
export function mutateValue(rng: Rng, v: Value, depth = 0): Value {
  const isMap = v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
  const isArr = Array.isArray(v);
  // At a leaf, or by chance at an inner node, replace here.
  if ((!isMap && !isArr) || rng.below(4) === 0 || depth > 8) {
    if (v instanceof Uint8Array && v.length && rng.below(2) === 0) return mutate(rng, v);
    if (typeof v === 'number' || typeof v === 'bigint') {
      if (rng.below(2) === 0) return rng.pick(INTERESTING_INTS);
    }
    return randomValue(rng, 2);
  }
  if (isArr) {
    const a = [...(v as readonly Value[])];
    const op = rng.below(5);
    if (op === 0 && a.length) a.splice(rng.below(a.length), 1);
    else if (op === 1) a.splice(rng.below(a.length + 1), 0, randomValue(rng, 2));
    else if (a.length) {
      const i = rng.below(a.length);
      a[i] = mutateValue(rng, a[i] as Value, depth + 1);
    }
    return a;
  }
  const o: Record<string, Value> = { ...(v as Record<string, Value>) };
  const keys = Object.keys(o);
  const op = rng.below(5);
  if (op === 0 && keys.length) delete o[rng.pick(keys)];
  else if (op === 1) o[rng.pick(['kind', 'body', 'extra', 'id', 'version', ...keys])] = randomValue(rng, 2);
  else if (keys.length) {
    const k = rng.pick(keys);
    o[k] = mutateValue(rng, o[k] as Value, depth + 1);
  }
  return o;
}

/** One line for `t.diagnostic`: runs, parsed, and the codes seen. */
export function summary(stats: FuzzStats): string {
  const codes = [...stats.codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c}=${n}`);
  return `${stats.runs} runs, ${stats.ok} parsed; ${codes.join(' ')}`;
}
