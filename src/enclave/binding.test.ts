import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { FerryError } from '../kernel/index.ts';
import { reportDataFor } from './binding.ts';

test('report_data is SHA-512 over the documented layout (computed by us, independently)', () => {
  const x = new Uint8Array(32).fill(1);
  const e = new Uint8Array(32).fill(2);
  const seed = new Uint8Array(32).fill(3);
  const expected = createHash('sha512')
    .update(
      Buffer.concat([
        Buffer.from('ferry/evidence-binding/v1\0', 'ascii'),
        Buffer.from('0000000000007a69', 'hex'), // u64(31337)
        Buffer.from(`${'00'.repeat(31)}2a`, 'hex'), // b32(42)
        Buffer.from('00000003', 'hex'), // u32(3)
        x,
        e,
        seed,
      ]),
    )
    .digest();
  const got = reportDataFor({ chainId: 31337n, taskId: 42n, attempt: 3, x25519Pub: x, ed25519Pub: e, seed });
  assert.equal(got.length, 64);
  assert.deepEqual(Buffer.from(got), expected);
  // Every input matters.
  const other = reportDataFor({
    chainId: 31337n,
    taskId: 42n,
    attempt: 4,
    x25519Pub: x,
    ed25519Pub: e,
    seed,
  });
  assert.notDeepEqual(got, other);
});

test('bad inputs are named', () => {
  const k = new Uint8Array(32);
  const base = { chainId: 1n, taskId: 1n, attempt: 1, x25519Pub: k, ed25519Pub: k, seed: k };
  for (const [patch, name] of [
    [{ chainId: 1 }, 'chainId'],
    [{ taskId: 2n ** 256n }, 'taskId'],
    [{ attempt: 0 }, 'attempt'],
    [{ seed: new Uint8Array(31) }, 'seed'],
    [{ x25519Pub: null }, 'x25519Pub'],
  ] as const) {
    assert.throws(
      () => reportDataFor({ ...base, ...patch } as never),
      (err: FerryError) => err.code === 'INVALID_ARGUMENT' && err.message.startsWith(name),
    );
  }
});
