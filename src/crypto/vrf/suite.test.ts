import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { bytesToNumberLE, isNonCanonicalEncoding, numberToBytesLE, P } from './suite.ts';

/** The RFC 8032 section 5.1.3 rule written with bigints: y >= p, or x = 0 (y^2 = 1) with sign 1. */
function oracle(b: Uint8Array): boolean {
  const sign = b[31] >> 7;
  const y = bytesToNumberLE(b) & ((1n << 255n) - 1n);
  if (y >= P) return true;
  return sign === 1 && (y === 1n || y === P - 1n);
}

function enc(y: bigint, sign: number): Uint8Array {
  const b = numberToBytesLE(y, 32);
  b[31] |= sign << 7;
  return b;
}

test('isNonCanonicalEncoding agrees with the bigint rule on every boundary and on random inputs', () => {
  const ys = [0n, 1n, 2n, 0xecn, 0xedn, P - 2n, P - 1n, P, P + 1n, P + 17n, P + 18n, (1n << 255n) - 1n];
  for (let i = 0n; i < 40n; i++) ys.push(P - 20n + i);
  const inputs: Uint8Array[] = [];
  for (const y of ys) for (const s of [0, 1]) inputs.push(enc(y, s));
  for (let i = 0; i < 2000; i++) inputs.push(new Uint8Array(randomBytes(32)));
  // Near-misses: all 0xff except one byte, and y = 1 with one extra bit.
  for (let i = 0; i < 31; i++) {
    const b = enc(P + 5n, 0);
    b[i] = 0xfe;
    inputs.push(b);
    inputs.push(enc(1n | (1n << BigInt(8 * i + 3)), 1));
  }
  let nonCanonical = 0;
  for (const b of inputs) {
    assert.equal(isNonCanonicalEncoding(b), oracle(b), Buffer.from(b).toString('hex'));
    if (oracle(b)) nonCanonical++;
  }
  assert.ok(nonCanonical > 40);
});

test('little-endian helpers round-trip', () => {
  for (const n of [0n, 1n, 255n, 256n, P, (1n << 256n) - 1n]) {
    assert.equal(bytesToNumberLE(numberToBytesLE(n, 32)), n);
  }
  assert.deepEqual(numberToBytesLE(0x0102n, 4), Uint8Array.of(2, 1, 0, 0));
});
