/**
 * SHA-256 of input streams on a separate thread, so that hashing the ciphertext (for the
 * receipt) runs beside its decryption instead of after it. Bytes travel in pooled 4 MiB
 * ArrayBuffers that are transferred (not copied) to the hashing thread and back; at most
 * POOL_PER_STREAM buffers per stream exist, which bounds memory.
 */
import { Worker } from 'node:worker_threads';
import { workerEnv } from './app-worker.ts';

export const HASH_BUFFER_BYTES = 4 << 20;
const POOL_PER_STREAM = 4;

type Out = { id: number; buf?: ArrayBuffer; digest?: Uint8Array };

/** One hashing thread serving any number of streams. Call `close()` when done. */
export class HashThread {
  readonly #worker: Worker;
  readonly #streams = new Map<number, ParallelHash>();
  #next = 1;

  constructor() {
    this.#worker = new Worker(new URL('./hash-worker.ts', import.meta.url), {
      env: workerEnv(),
      resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 },
    });
    this.#worker.unref();
    this.#worker.on('message', (m: Out) => this.#streams.get(m.id)?.onMessage(m));
    this.#worker.on('error', (e) => {
      for (const s of this.#streams.values()) s.fail(e);
    });
  }

  /** A new stream; feed it with `take` / `submit` in order, then `digest`. */
  stream(): ParallelHash {
    const id = this.#next++;
    const s = new ParallelHash(id, this.#worker, () => this.#streams.delete(id));
    this.#streams.set(id, s);
    return s;
  }

  close(): Promise<number> {
    return this.#worker.terminate();
  }
}

export class ParallelHash {
  readonly #id: number;
  readonly #worker: Worker;
  readonly #done: () => void;
  readonly #free: ArrayBuffer[] = [];
  #allocated = 0;
  #waiters: ((b: ArrayBuffer) => void)[] = [];
  #digest: { resolve: (d: Uint8Array) => void; reject: (e: unknown) => void } | undefined;
  #error: unknown;

  constructor(id: number, worker: Worker, done: () => void) {
    this.#id = id;
    this.#worker = worker;
    this.#done = done;
  }

  /** An empty buffer of HASH_BUFFER_BYTES to fill (waits while the pool is all in flight). */
  take(): Promise<ArrayBuffer> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    const b = this.#free.pop();
    if (b) return Promise.resolve(b);
    if (this.#allocated < POOL_PER_STREAM) {
      this.#allocated++;
      return Promise.resolve(new ArrayBuffer(HASH_BUFFER_BYTES));
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Hashes the first `len` bytes of `buf` (taken from `take`); `buf` is transferred. */
  submit(buf: ArrayBuffer, len: number): void {
    this.#worker.postMessage({ id: this.#id, buf, len }, [buf]);
  }

  /** Gives back an unused buffer. */
  release(buf: ArrayBuffer): void {
    this.#put(buf);
  }

  /** SHA-256 of everything submitted, in order. */
  digest(): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      if (this.#error !== undefined) {
        reject(this.#error);
        return;
      }
      this.#digest = { resolve, reject };
      this.#worker.postMessage({ id: this.#id, final: true });
    });
  }

  #put(buf: ArrayBuffer): void {
    const w = this.#waiters.shift();
    if (w) w(buf);
    else this.#free.push(buf);
  }

  /** @internal */
  onMessage(m: Out): void {
    if (m.buf) this.#put(m.buf);
    if (m.digest) {
      this.#done();
      this.#digest?.resolve(m.digest);
    }
  }

  /** @internal */
  fail(e: unknown): void {
    this.#error = e;
    this.#digest?.reject(e);
  }
}
