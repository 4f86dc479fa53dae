import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError, toHex } from '../../kernel/index.ts';
import { betaFraction, betaScore, claimAlpha, verifierAlpha } from './alpha.ts';

/** The layout of docs/protocol.md section 3, built independently with Buffer writes. */
function expected(dst: string, chainId: bigint, taskId: bigint, attempt: number, seed: Uint8Array): string {
  const u64 = Buffer.alloc(8);
  u64.writeBigUInt64BE(chainId);
  const b32 = Buffer.from(taskId.toString(16).padStart(64, '0'), 'hex');
  const u32 = Buffer.alloc(4);
  u32.writeUInt32BE(attempt);
  return Buffer.concat([Buffer.from(dst, 'ascii'), Buffer.of(0), u64, b32, u32, seed]).toString('hex');
}

const seed = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

test('claimAlpha and verifierAlpha follow the specified layout', () => {
  for (const [chainId, taskId, attempt] of [
    [31337n, 5n, 1],
    [0n, 0n, 1],
    [(1n << 64n) - 1n, (1n << 256n) - 1n, 0xffffffff],
    [1n, 0x0102030405060708090a0b0c0d0e0f10n << 100n, 7],
  ] as const) {
    const p = { chainId, taskId, attempt, seed };
    assert.equal(toHex(claimAlpha(p)), expected('ferry/claim/v1', chainId, taskId, attempt, seed));
    assert.equal(
      toHex(verifierAlpha(p)),
      expected('ferry/verifier-selection/v1', chainId, taskId, attempt, seed),
    );
  }
  const p = { chainId: 1n, taskId: 2n, attempt: 3, seed };
  assert.equal(claimAlpha(p).length, 15 + 8 + 32 + 4 + 32);
  assert.notEqual(toHex(claimAlpha(p)), toHex(verifierAlpha(p)));
});

test('alpha builders reject out-of-range or mistyped fields, naming them', () => {
  const ok = { chainId: 1n, taskId: 2n, attempt: 1, seed };
  const bad: [string, Record<string, unknown>][] = [
    ['chainId', { chainId: -1n }],
    ['chainId', { chainId: 1n << 64n }],
    ['chainId', { chainId: 1 }],
    ['taskId', { taskId: -1n }],
    ['taskId', { taskId: 1n << 256n }],
    ['taskId', { taskId: '2' }],
    ['attempt', { attempt: 0 }],
    ['attempt', { attempt: 2 ** 32 }],
    ['attempt', { attempt: 1.5 }],
    ['attempt', { attempt: 1n }],
    ['seed', { seed: new Uint8Array(31) }],
    ['seed', { seed: 'ab'.repeat(32) }],
  ];
  for (const [name, patch] of bad) {
    for (const f of [claimAlpha, verifierAlpha]) {
      assert.throws(
        () => f({ ...ok, ...patch } as never),
        (e) => isFerryError(e, 'INVALID_ARGUMENT') && e.message.startsWith(name),
        `${name}: ${String(Object.values(patch)[0])}`,
      );
    }
  }
  assert.throws(
    () => claimAlpha(null as never),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
});

test('betaScore reads the first 32 bytes big-endian; betaFraction the first 8 bytes over 2^64', () => {
  const beta = new Uint8Array(64);
  beta[31] = 1;
  beta[32] = 0xff; // beyond the score's 32 bytes
  assert.equal(betaScore(beta), 1n);
  beta[0] = 0x80;
  assert.equal(betaScore(beta), (1n << 255n) + 1n);
  assert.equal(betaFraction(beta), 0.5);
  assert.equal(betaFraction(new Uint8Array(64)), 0);
  const ones = new Uint8Array(64).fill(0xff);
  assert.ok(betaFraction(ones) < 1, 'rounded down, never 1');
  assert.equal(betaFraction(ones), 1 - 2 ** -53);
  const q = new Uint8Array(64);
  q[1] = 0x40; // 2^-10
  assert.equal(betaFraction(q), 2 ** -10);
  for (const f of [betaScore, betaFraction]) {
    assert.throws(
      () => f(new Uint8Array(32)),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
    );
  }
});
