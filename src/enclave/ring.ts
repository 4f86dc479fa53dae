/**
 * A bounded single-producer single-consumer channel of byte chunks: the enclave's main thread
 * (producer, asynchronous) feeds authenticated plaintext to the app's worker thread (consumer,
 * blocking with Atomics.wait, because WASI calls are synchronous).
 *
 * Chunks travel over a MessagePort in batches, their memory transferred when the producer
 * hands it over (`owned`: the age decryptor's output, which nothing else holds) and copied
 * otherwise; the consumer takes them with `receiveMessageOnPort`, copies each into the app's
 * memory as `fd_read` asks, and zeroes it once read. So the main thread neither copies nor
 * wipes the plaintext: its work per chunk is the decryption. A control block in a
 * SharedArrayBuffer bounds the memory:
 *
 * Int32 [inFlight, gone, state, seq] (16 bytes). `inFlight` counts the bytes posted and not
 * yet read whole; the producer posts only while it stays within `capacity`; `gone` is set by the
 * consumer when the app has ended (the producer then sends nothing more); `state` is 0 open,
 * 1 end of stream, 2 failed (the producer saw an error: the consumer must stop, having seen only
 * the bytes posted before); `seq` is bumped on every producer event so the consumer never misses
 * a wake-up.
 */
import { MessageChannel, type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { FerryError } from '../kernel/errors.ts';

const IN_FLIGHT = 0;
const GONE = 1;
const S = 2;
const SEQ = 3;

export const RING_OPEN = 0;
export const RING_EOF = 1;
export const RING_FAILED = 2;

/** The consumer's end of a channel, sent to the app's thread (its port in the transfer list). */
export type RingEnd = { control: SharedArrayBuffer; port: MessagePort };

/**
 * A channel holding at most `capacity` bytes in flight (a power of two, at least 4 KiB): the
 * producer's writer and the consumer's end.
 */
export function createRing(capacity = 1 << 20): { writer: RingWriter; end: RingEnd } {
  if (
    !Number.isSafeInteger(capacity) ||
    capacity < 4096 ||
    capacity > 1 << 30 ||
    (capacity & (capacity - 1)) !== 0
  ) {
    throw new FerryError('INVALID_ARGUMENT', 'ring capacity must be a power of two from 4096 to 2^30', {
      hints: [`got: ${capacity}`],
    });
  }
  const control = new SharedArrayBuffer(16);
  const { port1, port2 } = new MessageChannel();
  return { writer: new RingWriter(control, port1, capacity), end: { control, port: port2 } };
}

/** True when `c` is the whole of a (non-shared) ArrayBuffer, so that it can be transferred. */
function wholeBuffer(c: Uint8Array): boolean {
  return c.byteOffset === 0 && c.buffer instanceof ArrayBuffer && c.byteLength === c.buffer.byteLength;
}

/** A copy of bytes [from, to) of `c` in a buffer of its own (Buffer#slice would be a view). */
function copy(c: Uint8Array, from: number, to: number): Uint8Array {
  return new Uint8Array(c.subarray(from, to));
}

/** Producer side. */
export class RingWriter {
  readonly #h: Int32Array;
  readonly #port: MessagePort;
  readonly #cap: number;
  #stopped = false;

  constructor(control: SharedArrayBuffer, port: MessagePort, capacity: number) {
    this.#h = new Int32Array(control);
    this.#port = port;
    this.#cap = capacity;
  }

  /** Stops waiting for space (the consumer is gone); later writes send nothing. */
  stop(): void {
    this.#stopped = true;
  }

  get stopped(): boolean {
    return this.#stopped || Atomics.load(this.#h, GONE) !== 0;
  }

  /** Bytes posted and not yet read whole (never more than the capacity). */
  get inFlight(): number {
    return Atomics.load(this.#h, IN_FLIGHT);
  }

  /**
   * Sends `chunks` in order, waiting while the bytes in flight would pass the capacity; resolves
   * (or returns undefined, when nothing had to wait) once all are sent, or as soon as the writer
   * is stopped. With `owned`, the caller gives the chunks away: one that is a whole ArrayBuffer
   * of at most `capacity` bytes is transferred (it is then detached here, length 0) and zeroed
   * by the consumer once read; any other chunk is copied, and the caller keeps it (and wipes it).
   */
  write(chunks: readonly Uint8Array[], owned = false): Promise<void> | undefined {
    let i = 0;
    let off = 0;
    const send = (): Promise<void> | undefined => {
      while (i < chunks.length && !this.stopped) {
        const inFlight = Atomics.load(this.#h, IN_FLIGHT);
        const space = this.#cap - inFlight;
        if (space <= 0 || (space < Math.min(chunks[i].length - off, 65536) && inFlight > 0)) {
          const res = Atomics.waitAsync(this.#h, IN_FLIGHT, inFlight, 200);
          if (!res.async) continue;
          return res.value.then(send);
        }
        // One batch: whole chunks that fit (transferred when owned), or a piece of one.
        const batch: Uint8Array[] = [];
        const transfer: ArrayBuffer[] = [];
        let bytes = 0;
        while (i < chunks.length) {
          const c = chunks[i];
          const left = c.length - off;
          if (left === 0) {
            i++;
            off = 0;
            continue;
          }
          if (bytes + left <= space) {
            // A copy is a fresh whole buffer: transferred too (never cloned again).
            const sent = owned && off === 0 && wholeBuffer(c) ? c : copy(c, off, c.length);
            batch.push(sent);
            transfer.push(sent.buffer as ArrayBuffer);
            bytes += left;
            i++;
            off = 0;
          } else {
            if (bytes === 0) {
              const piece = copy(c, off, off + space);
              batch.push(piece);
              transfer.push(piece.buffer as ArrayBuffer);
              bytes = space;
              off += space;
            }
            break;
          }
        }
        if (bytes === 0) continue;
        Atomics.add(this.#h, IN_FLIGHT, bytes);
        this.#port.postMessage(batch, transfer);
        Atomics.add(this.#h, SEQ, 1);
        Atomics.notify(this.#h, SEQ);
      }
      return undefined;
    };
    return send();
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
  readonly #port: MessagePort;
  #queue: Uint8Array[] = [];
  #next = 0;
  #off = 0;

  constructor(end: RingEnd) {
    this.#h = new Int32Array(end.control);
    this.#port = end.port;
  }

  /**
   * Copies up to `dst.length` bytes into `dst`, blocking until at least one byte is there.
   * Returns the count, 0 at end of stream, or -1 when the producer failed (after every byte
   * posted before the failure was read). With `block` false, returns 0 at once when nothing is
   * buffered (use `state` to tell). A chunk is zeroed as soon as it has been read whole.
   */
  read(dst: Uint8Array, block = true): number {
    if (dst.length === 0) return 0;
    for (;;) {
      if (this.#next < this.#queue.length) {
        const c = this.#queue[this.#next];
        const n = Math.min(c.length - this.#off, dst.length);
        dst.set(n === c.length ? c : c.subarray(this.#off, this.#off + n), 0);
        this.#off += n;
        if (this.#off === c.length) {
          const len = c.length;
          release(c);
          this.#queue[this.#next++] = EMPTY;
          this.#off = 0;
          Atomics.sub(this.#h, IN_FLIGHT, len);
          Atomics.notify(this.#h, IN_FLIGHT);
        }
        return n;
      }
      const seq = Atomics.load(this.#h, SEQ);
      // State before the port: every batch posted before a close is then received below.
      const state = Atomics.load(this.#h, S);
      if (this.#receive()) continue;
      if (state === RING_FAILED) return -1;
      if (state === RING_EOF) return 0;
      if (!block) return 0;
      Atomics.wait(this.#h, SEQ, seq, 1000);
    }
  }

  #receive(): boolean {
    const m = receiveMessageOnPort(this.#port);
    if (!m) return false;
    this.#queue = m.message as Uint8Array[];
    this.#next = 0;
    this.#off = 0;
    return true;
  }

  get state(): number {
    return Atomics.load(this.#h, S);
  }

  /**
   * The app has ended: tells the producer to send nothing more, zeroes every chunk received or
   * still queued on the port, and closes it.
   */
  wipe(): void {
    Atomics.store(this.#h, GONE, 1);
    do {
      for (let i = this.#next; i < this.#queue.length; i++) release(this.#queue[i]);
      this.#queue = [];
      this.#next = 0;
    } while (this.#receive());
    this.#port.close();
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Zeroes a chunk the consumer is done with and, when it is a whole buffer (every chunk sent is),
 * frees its memory at once (ArrayBuffer#transfer to length 0 detaches it): left to the garbage
 * collector, thousands of 64 KiB buffers made the app's thread run full collections for
 * "external memory pressure" (~80 ms per 128 MiB).
 */
function release(c: Uint8Array): void {
  c.fill(0);
  const b = c.buffer;
  if (b instanceof ArrayBuffer && c.byteOffset === 0 && c.byteLength === b.byteLength) b.transfer(0);
}
