/**
 * A single-producer single-consumer byte ring in a SharedArrayBuffer: the enclave's main
 * thread (producer, asynchronous) feeds authenticated plaintext to the app's worker thread
 * (consumer, blocking with Atomics.wait, because WASI calls are synchronous).
 *
 * Layout: Int32 header [write, read, state, seq] (16 bytes) followed by `capacity` data bytes
 * (a power of two). `write` and `read` are byte counters modulo 2^32; `state` is 0 open,
 * 1 end of stream, 2 failed (the producer saw an error: the consumer must stop, having seen
 * only the bytes written before); `seq` is bumped on every producer event so the consumer
 * never misses a wake-up.
 */
import { FerryError } from '../kernel/errors.ts';

const W = 0;
const R = 1;
const S = 2;
const SEQ = 3;
const HEADER = 16;

export const RING_OPEN = 0;
export const RING_EOF = 1;
export const RING_FAILED = 2;

/** Allocates a ring with `capacity` data bytes (a power of two, at least 4 KiB). */
export function createRing(capacity = 1 << 20): SharedArrayBuffer {
  if (!Number.isSafeInteger(capacity) || capacity < 4096 || (capacity & (capacity - 1)) !== 0) {
    throw new FerryError('INVALID_ARGUMENT', 'ring capacity must be a power of two >= 4096', {
      hints: [`got: ${capacity}`],
    });
  }
  return new SharedArrayBuffer(HEADER + capacity);
}

/** Producer side. `write` resolves once every byte is in the ring (waits for space). */
export class RingWriter {
  readonly #h: Int32Array;
  readonly #data: Uint8Array;
  readonly #cap: number;
  #stopped = false;

  constructor(sab: SharedArrayBuffer) {
    this.#h = new Int32Array(sab, 0, 4);
    this.#data = new Uint8Array(sab, HEADER);
    this.#cap = this.#data.length;
  }

  /** Stops waiting for space (the consumer is gone); later writes are dropped. */
  stop(): void {
    this.#stopped = true;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  async write(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.length && !this.#stopped) {
      const w = Atomics.load(this.#h, W);
      const r = Atomics.load(this.#h, R);
      const used = (w - r) | 0;
      const space = this.#cap - used;
      if (space === 0) {
        const res = Atomics.waitAsync(this.#h, R, r, 200);
        if (res.async) await res.value;
        continue;
      }
      const n = Math.min(space, chunk.length - off);
      const at = w & (this.#cap - 1);
      const first = Math.min(n, this.#cap - at);
      this.#data.set(chunk.subarray(off, off + first), at);
      if (first < n) this.#data.set(chunk.subarray(off + first, off + n), 0);
      off += n;
      Atomics.store(this.#h, W, (w + n) | 0);
      Atomics.add(this.#h, SEQ, 1);
      Atomics.notify(this.#h, SEQ);
    }
  }

  /** Marks the end of the stream (state 1) or a failure (state 2) and wakes the consumer. */
  close(failed = false): void {
    Atomics.store(this.#h, S, failed ? RING_FAILED : RING_EOF);
    Atomics.add(this.#h, SEQ, 1);
    Atomics.notify(this.#h, SEQ);
  }
}

/** Consumer side, used inside the worker thread. */
export class RingReader {
  readonly #h: Int32Array;
  readonly #data: Uint8Array;
  readonly #cap: number;

  constructor(sab: SharedArrayBuffer) {
    this.#h = new Int32Array(sab, 0, 4);
    this.#data = new Uint8Array(sab, HEADER);
    this.#cap = this.#data.length;
  }

  /**
   * Copies up to `dst.length` bytes into `dst`, blocking until at least one byte is there.
   * Returns the count, 0 at end of stream, or -1 when the producer failed.
   * With `block` false, returns 0 at once when nothing is buffered (use `state` to tell).
   */
  read(dst: Uint8Array, block = true): number {
    if (dst.length === 0) return 0;
    for (;;) {
      const seq = Atomics.load(this.#h, SEQ);
      // State before the write counter: every byte written before a close is then visible.
      const state = Atomics.load(this.#h, S);
      const w = Atomics.load(this.#h, W);
      const r = Atomics.load(this.#h, R);
      const avail = (w - r) | 0;
      if (avail > 0) {
        const n = Math.min(avail, dst.length);
        const at = r & (this.#cap - 1);
        const first = Math.min(n, this.#cap - at);
        dst.set(this.#data.subarray(at, at + first), 0);
        if (first < n) dst.set(this.#data.subarray(0, n - first), first);
        Atomics.store(this.#h, R, (r + n) | 0);
        Atomics.notify(this.#h, R);
        return n;
      }
      if (state === RING_FAILED) return -1;
      if (state === RING_EOF) return 0;
      if (!block) return 0;
      Atomics.wait(this.#h, SEQ, seq, 1000);
    }
  }

  get state(): number {
    return Atomics.load(this.#h, S);
  }
}
