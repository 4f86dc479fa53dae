import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatRange, parseContentRange, parseRange } from './range.ts';

test('parseRange: single byte ranges (RFC 9110 14.1.2 examples)', () => {
  assert.deepEqual(parseRange('bytes=0-499', 10000), { start: 0, end: 499 });
  assert.deepEqual(parseRange('bytes=500-999', 10000), { start: 500, end: 999 });
  assert.deepEqual(parseRange('bytes=-500', 10000), { start: 9500, end: 9999 });
  assert.deepEqual(parseRange('bytes=9500-', 10000), { start: 9500, end: 9999 });
  assert.deepEqual(parseRange('bytes=0-0', 10000), { start: 0, end: 0 });
  assert.deepEqual(parseRange('bytes=9000-20000', 10000), { start: 9000, end: 9999 });
  assert.deepEqual(parseRange('bytes=-20000', 10000), { start: 0, end: 9999 });
});

test('parseRange: unsatisfiable and ignored headers', () => {
  assert.equal(parseRange('bytes=10000-', 10000), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 10000), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
  assert.equal(parseRange(undefined, 10), null);
  assert.equal(parseRange('bytes=5-1', 10), null);
  assert.equal(parseRange('bytes=0-1,3-4', 10), null);
  assert.equal(parseRange('items=0-1', 10), null);
  assert.equal(parseRange('bytes=-', 10), null);
  assert.equal(parseRange('bytes=99999999999999999999-', 10), null);
});

test('formatRange and parseContentRange', () => {
  assert.equal(formatRange(5), 'bytes=5-');
  assert.equal(formatRange(5, 9), 'bytes=5-9');
  assert.deepEqual(parseContentRange('bytes 0-9/100'), { start: 0, end: 9, size: 100 });
  assert.deepEqual(parseContentRange('bytes 0-9/*'), { start: 0, end: 9, size: null });
  assert.equal(parseContentRange('bytes */100'), null);
  assert.equal(parseContentRange(undefined), null);
});
