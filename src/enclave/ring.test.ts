import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError } from '../kernel/index.ts';
import { createRing, RING_EOF, RING_FAILED, RingReader } from './ring.ts';

const tick = () => new Promise((r) => setImmediate(r));

/** Reads what is buffered now (without blocking), in reads of `size` bytes. */
function drainNow(reader: RingReader, size = 1000): number[] {
  const got: number[] = [];
  const buf = new Uint8Array(size);
  for (;;) {
    const n = reader.read(buf, false);
    if (n <= 0) return got;
    got.push(...buf.subarray(0, n));
  }
}

test('ring: a consumer that does not read holds the producer at the capacity, never above', async () => {
  const { writer, end } = createRing(4096);
  const reader = new RingReader(end);
  const chunks = Array.from({ length: 6 }, (_, i) => new Uint8Array(3000).fill(i + 1));
  const expected = chunks.flatMap((c) => [...c]);
  let done = false;
  const w = writer.write(chunks, true);
  void w?.then(() => {
    done = true;
  });
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(done, false, 'the producer waits');
  assert.ok(writer.inFlight <= 4096, `in flight ${writer.inFlight} <= 4096`);
  // Reading frees space; the producer goes on, still within the capacity, until all is read.
  const seen: number[] = [];
  while (seen.length < 18000) {
    seen.push(...drainNow(reader));
    assert.ok(writer.inFlight <= 4096);
    await tick();
  }
  await w;
  assert.deepEqual(seen, expected);
  writer.close();
  assert.equal(reader.read(new Uint8Array(10)), 0, 'end of stream');
  assert.equal(reader.state, RING_EOF);
});

test('ring: owned whole buffers are transferred (detached here); other chunks are copied and left to the caller', async () => {
  const { writer, end } = createRing(1 << 16);
  const reader = new RingReader(end);
  const owned = new Uint8Array(100).fill(7);
  const backing = new Uint8Array(200).fill(9);
  const view = backing.subarray(50, 150);
  assert.equal(writer.write([owned, view], true), undefined, 'nothing had to wait');
  assert.equal(owned.length, 0, 'the owned whole buffer left this thread (detached)');
  assert.equal(view.length, 100, 'a view is copied, not transferred');
  assert.deepEqual(drainNow(reader, 64), [...new Uint8Array(100).fill(7), ...new Uint8Array(100).fill(9)]);
  assert.equal(writer.inFlight, 0);
  // Not owned: nothing is transferred.
  const mine = new Uint8Array(10).fill(3);
  writer.write([mine]);
  assert.equal(mine.length, 10);
  assert.deepEqual(drainNow(reader), [...mine]);
});

test('ring: a failed producer stops the consumer after the bytes posted before the failure', () => {
  const { writer, end } = createRing(4096);
  const reader = new RingReader(end);
  writer.write([new Uint8Array([1, 2, 3])]);
  writer.close(true);
  const buf = new Uint8Array(2);
  assert.equal(reader.read(buf), 2);
  assert.equal(reader.read(buf), 1);
  assert.equal(reader.read(buf), -1);
  assert.equal(reader.state, RING_FAILED);
});

test('ring: once the consumer wiped its end (the app ended), the producer sends nothing more', async () => {
  const { writer, end } = createRing(4096);
  const reader = new RingReader(end);
  writer.write([new Uint8Array(100).fill(1)]);
  reader.wipe();
  assert.equal(writer.stopped, true);
  const late = new Uint8Array(100).fill(2);
  assert.equal(writer.write([late], true), undefined);
  assert.equal(late.length, 100, 'not sent: the caller still holds (and wipes) it');
});

test('ring: the capacity must be a power of two from 4 KiB', () => {
  for (const bad of [0, 4095, 5000, 2 ** 31, 1.5, Number.NaN]) {
    assert.throws(
      () => createRing(bad),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
    );
  }
});
