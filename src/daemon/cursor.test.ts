import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ThrottledCursor } from './cursor.ts';

test('the cursor is written at once, then at most once a period, always the newest value', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 10_000 });
  const written: bigint[] = [];
  const c = new ThrottledCursor((n) => written.push(n), 1000);
  c.set(1n);
  assert.deepEqual(written, [1n]);
  c.set(2n);
  c.set(3n);
  t.mock.timers.tick(999);
  assert.deepEqual(written, [1n], 'nothing more within the period');
  t.mock.timers.tick(1);
  assert.deepEqual(written, [1n, 3n], 'the newest value once the period is up, not the skipped one');
  t.mock.timers.tick(5000);
  assert.deepEqual(written, [1n, 3n], 'no write without a new value');
  c.set(4n);
  assert.deepEqual(written, [1n, 3n, 4n], 'a period has passed: at once');
});

test('flush writes what is pending at stop, and only a value the driver gave', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 10_000 });
  const written: bigint[] = [];
  const c = new ThrottledCursor((n) => written.push(n), 1000);
  c.flush();
  assert.deepEqual(written, [], 'nothing given, nothing written');
  c.set(7n);
  c.set(8n);
  c.flush();
  assert.deepEqual(written, [7n, 8n]);
  t.mock.timers.tick(2000);
  assert.deepEqual(written, [7n, 8n], 'the flushed value is not written twice');
});
