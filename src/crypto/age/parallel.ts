/**
 * A parallel, bounded age pipeline for whole files (the CLI's `ferry encrypt` / `decrypt`).
 *
 * STREAM chunks are independent (each has its own nonce `u88be(counter) || last`), so they
 * are sealed and opened concurrently: on the libuv thread pool through WebCrypto's
 * ChaCha20-Poly1305 (`crypto.subtle`, which adds no JavaScript isolate: a worker thread costs
 * ~15 MiB of RSS) and, whenever `threadPool` chunks are already there, on the main thread
 * with node:crypto. Where WebCrypto lacks the algorithm, everything runs on the main thread.
 *
 * Shape: read buffers of whole chunks from a pool of three → at most `window` chunks sealed
 * or opened but not yet written → results taken strictly in chunk order and written in
 * batches. A buffer is read only when one is free and a chunk started only when the window
 * has room, so memory is constant (~2 MiB of buffers) whatever the file size, and a slow sink
 * slows the reader (backpressure). Every result is freed (detached) as soon as the sink is
 * done with it rather than left to the garbage collector.
 *
 * Security rules kept from stream.ts (`PayloadDecryptor`): a chunk's plaintext goes to the
 * sink only after its tag verified and after every earlier chunk's plaintext; on the first
 * failure nothing more is written and the same FerryError codes are thrown
 * (AGE_HEADER_INVALID when the nonce is missing, AGE_PAYLOAD_TRUNCATED when the payload has
 * no final chunk, AGE_PAYLOAD_INVALID for a bad tag, an empty non-only last chunk or trailing
 * data). Plaintext written before a failure was authenticated but is incomplete: the caller
 * must discard the output (the CLI writes to a temporary file and removes it).
 *
 * The enclave does not use this module; it keeps the sequential `Decryptor` of decrypt.ts.
 */
import { randomBytes, webcrypto } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { describe, FerryError } from '../../kernel/index.ts';
import { ArmorEncoder } from './armor.ts';
import { checkIdentities, Decryptor, unwrapHeader } from './decrypt.ts';
import { makeHeader } from './encrypt.ts';
import { HeaderParser, hkdf32 } from './format.ts';
import type { Identity, Recipient } from './recipients.ts';
import {
  CHUNK_SIZE,
  ENC_CHUNK_SIZE,
  NONCE_SIZE,
  openChunk,
  sealChunk,
  streamNonce,
  TAG_SIZE,
} from './stream.ts';

/**
 * Reads into `buf` from offset `off` (at most `buf.length - off` bytes); resolves with the
 * number of bytes read, 0 only at end of input.
 */
export type ByteSource = (buf: Uint8Array, off: number) => Promise<number>;

/**
 * Writes `parts` in order; the pipeline awaits it before writing more (backpressure). When
 * the promise resolves the sink must be done with `parts`: the pipeline then frees their
 * memory (see `release`).
 */
export type ByteSink = (parts: Uint8Array[]) => Promise<void>;

/**
 * Frees a buffer that owns its whole ArrayBuffer now, by detaching it, instead of when the
 * garbage collector runs: V8 collects external memory only after ~64 MiB of it, which would
 * be the pipeline's peak RSS. Views into shared memory (the Buffer pool) are left alone.
 */
function release(b: Uint8Array): void {
  const ab = b.buffer;
  if (b.byteOffset === 0 && b.byteLength === ab.byteLength && ab instanceof ArrayBuffer && !ab.detached) {
    ab.transfer(0);
  }
}

export type ParallelOptions = {
  /** Chunks sealed or opened but not yet written, at most (1..8, default 8). */
  window?: number;
  /**
   * Chunks on the libuv thread pool (WebCrypto) at once, at most (0..8; default 0 on two
   * cores or fewer, else the cores less one, at most 4); 0 runs everything on the main thread.
   */
  threadPool?: number;
  /**
   * When the pool has `threadPool` chunks, the main thread seals or opens the next one itself
   * (default true); false sends every chunk to the pool, up to `window`.
   */
  mainThread?: boolean;
};

export type DecryptParallelOptions = ParallelOptions;
export type EncryptParallelOptions = ParallelOptions & { armor?: boolean };

/** A byte source over an open file handle (positional reads from the current offset). */
export function fileSource(fh: FileHandle): ByteSource {
  return async (buf, off) => (await fh.read(buf, off, buf.length - off, null)).bytesRead;
}

/** A byte source over any async iterable of byte chunks (stdin, a Readable); copies once. */
export function iterableSource(input: AsyncIterable<unknown>): ByteSource {
  const it = input[Symbol.asyncIterator]();
  let cur: Uint8Array | null = null;
  let pos = 0;
  return async (buf, off) => {
    while (cur === null || pos >= cur.length) {
      const r = await it.next();
      if (r.done) return 0;
      const v = r.value;
      cur = typeof v === 'string' ? Buffer.from(v) : (v as Uint8Array);
      pos = 0;
    }
    const n = Math.min(cur.length - pos, buf.length - off);
    buf.set(cur.subarray(pos, pos + n), off);
    pos += n;
    // The stream hands each chunk over once: free it as soon as it is copied.
    if (pos >= cur.length) release(cur);
    return n;
  };
}

/** Reads until `buf` is full or the input ends; returns the number of bytes now in `buf`. */
async function fill(source: ByteSource, buf: Uint8Array, from: number): Promise<number> {
  let n = from;
  while (n < buf.length) {
    const r = await source(buf, n);
    if (r === 0) break;
    n += r;
  }
  return n;
}

// --- the AEAD: one chunk per call, on the main thread or on the thread pool ---

/** One AEAD direction over chunks: `sync` on the calling thread, `pool` on the thread pool. */
type ChunkOp = {
  sync(counter: number, last: boolean, input: Uint8Array): Uint8Array | null;
  pool: ((counter: number, last: boolean, input: Uint8Array) => Promise<Uint8Array | null>) | null;
};

const ALG = 'ChaCha20-Poly1305';

/** The key for WebCrypto, or null when this runtime lacks its ChaCha20-Poly1305 (Node < 24.7). */
async function subtleKey(raw: Uint8Array): Promise<webcrypto.CryptoKey | null> {
  try {
    return await webcrypto.subtle.importKey(
      'raw-secret',
      raw as Uint8Array<ArrayBuffer>,
      { name: ALG },
      false,
      ['encrypt', 'decrypt'],
    );
  } catch {
    return null;
  }
}

/** The payload AEAD under `raw` (copied; the caller wipes it). */
async function makeAead(raw: Uint8Array, usePool: boolean): Promise<{ open: ChunkOp; seal: ChunkOp }> {
  const key = Buffer.from(raw);
  const openSync = (counter: number, last: boolean, chunk: Uint8Array): Buffer | null =>
    openChunk(key, streamNonce(counter, last), chunk);
  const sealSync = (counter: number, last: boolean, pt: Uint8Array): Uint8Array => {
    const [ct, tag] = sealChunk(key, streamNonce(counter, last), pt);
    const out = Buffer.concat([ct, tag]);
    release(ct);
    return out;
  };
  const ck = usePool ? await subtleKey(raw) : null;
  if (ck === null) return { open: { sync: openSync, pool: null }, seal: { sync: sealSync, pool: null } };
  const subtle = webcrypto.subtle;
  return {
    open: {
      sync: openSync,
      pool: (counter, last, chunk) => {
        if (chunk.length < TAG_SIZE) return Promise.resolve(null);
        return subtle
          .decrypt({ name: ALG, iv: streamNonce(counter, last) }, ck, chunk as Uint8Array<ArrayBuffer>)
          .then(
            (b) => new Uint8Array(b),
            // WebCrypto reports every failure alike; the synchronous AEAD decides (and, should
            // the thread-pool call have failed for another reason, still returns the plaintext).
            () => openSync(counter, last, chunk),
          );
      },
    },
    seal: {
      sync: sealSync,
      pool: (counter, last, pt) =>
        subtle
          .encrypt({ name: ALG, iv: streamNonce(counter, last) }, ck, pt as Uint8Array<ArrayBuffer>)
          .then((b) => new Uint8Array(b)),
    },
  };
}

// --- the ordered window of jobs over a pool of read buffers ---

type Block = { buf: Uint8Array; refs: number };

type Job = {
  counter: number;
  last: boolean;
  input: Uint8Array;
  block: Block;
  done: boolean;
  result: Uint8Array | null;
  promise: Promise<void>;
};

class Window {
  readonly #queue: Job[] = [];
  readonly #free: Block[] = [];
  readonly #op: ChunkOp;
  readonly #size: number;
  readonly #poolMax: number;
  readonly #mainThread: boolean;
  #inPool = 0;
  readonly #sink: ByteSink;
  readonly #onFail: (job: Job) => never;

  constructor(
    blockSize: number,
    op: ChunkOp,
    opts: Required<ParallelOptions>,
    sink: ByteSink,
    onFail: (job: Job) => never,
  ) {
    for (let i = 0; i < BLOCKS; i++) this.#free.push({ buf: Buffer.allocUnsafe(blockSize), refs: 0 });
    this.#op = op;
    this.#size = opts.window;
    this.#mainThread = opts.mainThread || op.pool === null || opts.threadPool === 0;
    this.#poolMax = op.pool === null ? 0 : opts.mainThread ? opts.threadPool : opts.window;
    this.#sink = sink;
    this.#onFail = onFail;
  }

  /** A free buffer, after writing out finished jobs if none is free. */
  async block(): Promise<Block> {
    while (this.#free.length === 0) {
      if (this.#queue.length === 0) throw new FerryError('INTERNAL', 'age pipeline: no free buffer');
      await this.drainSome();
    }
    const b = this.#free.pop()!;
    b.refs = 1;
    return b;
  }

  release(b: Block): void {
    if (--b.refs === 0) this.#free.push(b);
  }

  /**
   * Seals or opens the chunk once the window has room: on the thread pool while fewer than
   * `threadPool` jobs are there, otherwise here on the main thread. `input` (a view into
   * `block`) stays valid until the job is written out.
   */
  async submit(counter: number, last: boolean, block: Block, input: Uint8Array): Promise<void> {
    while (this.#queue.length >= this.#size) await this.drainSome();
    block.refs++;
    const job: Job = { counter, last, input, block, done: false, result: null, promise: DONE };
    if (this.#inPool < this.#poolMax || !this.#mainThread) {
      this.#inPool++;
      job.promise = this.#op.pool!(counter, last, input).then(
        (r) => {
          this.#inPool--;
          job.result = r;
          job.done = true;
        },
        () => {
          this.#inPool--;
          job.done = true;
        },
      );
    } else {
      try {
        job.result = this.#op.sync(counter, last, input);
      } catch {
        job.result = null;
      }
      job.done = true;
    }
    this.#queue.push(job);
  }

  /** Waits for the oldest job, then writes it and every following finished job, in order. */
  async drainSome(): Promise<void> {
    await this.#queue[0].promise;
    const parts: Uint8Array[] = [];
    while (this.#queue.length > 0 && this.#queue[0].done) {
      const job = this.#queue[0];
      if (job.result === null) {
        // Write what was authenticated before it, then fail; later results are wiped.
        if (parts.length > 0) await this.#write(parts);
        this.abandon();
        this.#onFail(job);
      }
      this.#queue.shift();
      this.release(job.block);
      if (job.result.length > 0) parts.push(job.result);
    }
    if (parts.length > 0) await this.#write(parts);
  }

  async #write(parts: Uint8Array[]): Promise<void> {
    await this.#sink(parts);
    for (const p of parts) release(p);
  }

  async drainAll(): Promise<void> {
    while (this.#queue.length > 0) await this.drainSome();
  }

  /** Zeroes the free read buffers (plaintext, when encrypting). */
  wipeFree(): void {
    for (const b of this.#free) b.buf.fill(0);
  }

  /** Drops every queued job, wiping the results that were never written. */
  abandon(): void {
    for (const j of this.#queue.splice(0)) {
      j.promise.then(() => j.result?.fill(0));
    }
  }
}

const DONE = Promise.resolve();
/** Chunks per read buffer (512 KiB of plaintext). */
const BLOCK_CHUNKS = 8;
/**
 * Read buffers. Three always suffice: besides the one being filled and one holding a chunk
 * whose finality is not yet known, every buffer in use holds queued jobs, so waiting for the
 * oldest job frees one.
 */
const BLOCKS = 3;

/**
 * The thread pool only where cores are left over. Measured on 2 shared cores (bench
 * age.bench.ts): a WebCrypto call costs ~35 µs of main-thread JavaScript per 64 KiB chunk on
 * top of the ~45 µs of AEAD, so with two cores the pool path used ~40% more CPU than the main
 * thread alone and was slower end to end; with more cores, up to 4 pool jobs (the libuv
 * pool's default size) run beside the main thread.
 */
const DEFAULTS: Required<ParallelOptions> = {
  window: BLOCK_CHUNKS,
  threadPool: availableParallelism() > 2 ? Math.min(4, availableParallelism() - 1) : 0,
  mainThread: true,
};

function checkOptions(options: ParallelOptions): Required<ParallelOptions> {
  if (options === null || typeof options !== 'object') {
    throw new FerryError('INVALID_ARGUMENT', 'options must be an object', {
      hints: [`got: ${describe(options)}`],
    });
  }
  const o = { ...DEFAULTS };
  for (const k of ['window', 'threadPool'] as const) {
    const v = options[k];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < (k === 'window' ? 1 : 0) || v > BLOCK_CHUNKS) {
      throw new FerryError(
        'INVALID_ARGUMENT',
        `options.${k} must be an integer in ${k === 'window' ? 1 : 0}..${BLOCK_CHUNKS}`,
        {
          hints: [`got: ${describe(v)}`],
        },
      );
    }
    o[k] = v;
  }
  if (options.mainThread !== undefined) {
    if (typeof options.mainThread !== 'boolean') {
      throw new FerryError('INVALID_ARGUMENT', 'options.mainThread must be a boolean', {
        hints: [`got: ${describe(options.mainThread)}`],
      });
    }
    o.mainThread = options.mainThread;
  }
  return o;
}

const BINARY_PREFIX = Buffer.from('age-encryption.org/', 'latin1');

/**
 * Decrypts an age file from `source` to `sink` (binary files in parallel; armored files
 * through the sequential `Decryptor`, which decodes the armor). Resolves with the number of
 * plaintext bytes written; throws the AGE_* FerryErrors of `Decryptor` on any failure, after
 * which the sink holds an authenticated but incomplete prefix that must be discarded.
 */
export async function decryptParallel(
  identities: Identity[],
  source: ByteSource,
  sink: ByteSink,
  options: DecryptParallelOptions = {},
): Promise<{ bytes: number }> {
  checkIdentities(identities);
  const opts = checkOptions(options);
  const blockSize = BLOCK_CHUNKS * ENC_CHUNK_SIZE;
  // The head: enough bytes to tell binary from armor and, usually, the whole header.
  let head: Uint8Array = Buffer.allocUnsafe(blockSize);
  let headLen = await fill(source, head, 0);
  const n = Math.min(headLen, BINARY_PREFIX.length);
  let binary = headLen > 0;
  for (let i = 0; i < n; i++) if (head[i] !== BINARY_PREFIX[i]) binary = false;
  if (!binary)
    return decryptSequential(identities, head.subarray(0, headLen), headLen === blockSize, source, sink);

  // Header (it may be longer than one block: up to MAX_HEADER_SIZE).
  const parser = new HeaderParser();
  let parsed = parser.push(head.subarray(0, headLen));
  while (parsed === null) {
    if (headLen < head.length) parser.end(); // EOF inside the header: throws
    head = Buffer.allocUnsafe(blockSize);
    headLen = await fill(source, head, 0);
    parsed = parser.push(head.subarray(0, headLen));
  }
  const fileKey = await unwrapHeader(identities, parsed.header);
  let eof = headLen < head.length;
  // The payload nonce, then the first payload bytes at the start of a pool buffer.
  let rest = parsed.rest;
  const nonce = Buffer.alloc(NONCE_SIZE);
  let nonceLen = Math.min(NONCE_SIZE, rest.length);
  nonce.set(rest.subarray(0, nonceLen));
  rest = rest.subarray(nonceLen);
  while (nonceLen < NONCE_SIZE && !eof) {
    const r = await source(nonce, nonceLen);
    if (r === 0) eof = true;
    nonceLen += r;
  }
  if (nonceLen < NONCE_SIZE) {
    fileKey.fill(0);
    throw new FerryError('AGE_HEADER_INVALID', 'file ends before the 16-byte payload nonce', {
      hints: [`got: ${nonceLen} nonce bytes`],
    });
  }
  const raw = hkdf32(fileKey, nonce, 'payload');
  fileKey.fill(0);
  const aead = await makeAead(raw, opts.threadPool > 0);
  raw.fill(0);

  let bytes = 0;
  const countingSink: ByteSink = (parts) => {
    for (const p of parts) bytes += p.length;
    return sink(parts);
  };
  const fail = (code: 'AGE_PAYLOAD_INVALID' | 'AGE_PAYLOAD_TRUNCATED', message: string, counter: number) =>
    new FerryError(code, message, { hints: [`at payload chunk ${counter}`] });
  // Why a chunk failed, with the codes and messages of PayloadDecryptor.
  const onFail = (job: Job): never => {
    const { counter, last, input } = job;
    if (input.length === TAG_SIZE && last && counter > 0) {
      throw fail('AGE_PAYLOAD_INVALID', 'last payload chunk is empty but is not the only chunk', counter);
    }
    const other = input.length === ENC_CHUNK_SIZE ? aead.open.sync(counter, !last, input) : null;
    if (other !== null) {
      other.fill(0);
      if (last) throw fail('AGE_PAYLOAD_TRUNCATED', 'payload ends without a final chunk', counter + 1);
      throw fail('AGE_PAYLOAD_INVALID', 'trailing data after the final payload chunk', counter + 1);
    }
    throw fail('AGE_PAYLOAD_INVALID', 'payload chunk failed authentication', counter);
  };
  // The last chunk may be empty only when it is the only one: refused before opening it (its
  // tag may well verify).
  const emptyLast = (counter: number, last: boolean, input: Uint8Array) =>
    last && counter > 0 && input.length === TAG_SIZE;
  const open: ChunkOp = {
    sync: (c, l, input) => (emptyLast(c, l, input) ? null : aead.open.sync(c, l, input)),
    pool: (c, l, input) => (emptyLast(c, l, input) ? Promise.resolve(null) : aead.open.pool!(c, l, input)),
  };
  if (aead.open.pool === null) open.pool = null;
  const win = new Window(blockSize, open, opts, countingSink, onFail);
  try {
    let block = await win.block();
    block.buf.set(rest);
    let len = eof ? rest.length : await fill(source, block.buf, rest.length);
    eof ||= len < blockSize;
    head = new Uint8Array(0);
    let counter = 0;
    // A full chunk ending its block: last or not is known only after the next read.
    let held: { block: Block; input: Uint8Array } | null = null;
    for (;;) {
      if (held !== null) {
        // The last read returned bytes (a length-0 read is handled below): more follows it.
        await win.submit(counter++, false, held.block, held.input);
        win.release(held.block);
        held = null;
      }
      let off = 0;
      for (; len - off > ENC_CHUNK_SIZE; off += ENC_CHUNK_SIZE) {
        await win.submit(counter++, false, block, block.buf.subarray(off, off + ENC_CHUNK_SIZE));
      }
      if (eof) {
        if (len - off > 0) {
          await win.submit(counter++, true, block, block.buf.subarray(off, len));
        } else if (counter === 0) {
          win.release(block);
          await win.drainAll();
          throw fail('AGE_PAYLOAD_TRUNCATED', 'payload has no chunks', 0);
        }
        win.release(block);
        break;
      }
      // Not at EOF: the block is full and ends with a whole chunk.
      held = { block, input: block.buf.subarray(off, len) };
      block = await win.block();
      len = await fill(source, block.buf, 0);
      eof = len < blockSize;
      if (len === 0) {
        await win.submit(counter++, true, held.block, held.input);
        win.release(held.block);
        held = null;
        win.release(block);
        break;
      }
    }
    await win.drainAll();
  } catch (e) {
    win.abandon();
    throw e;
  }
  return { bytes };
}

/** The sequential path (armored input): `Decryptor` fed block by block, output batched. */
async function decryptSequential(
  identities: Identity[],
  first: Uint8Array,
  more: boolean,
  source: ByteSource,
  sink: ByteSink,
): Promise<{ bytes: number }> {
  let parts: Uint8Array[] = [];
  let bytes = 0;
  const d = new Decryptor(identities, (p) => {
    parts.push(p);
    bytes += p.length;
  });
  const flush = async () => {
    if (parts.length > 0) {
      const p = parts;
      parts = [];
      await sink(p);
    }
  };
  await d.write(first);
  await flush();
  if (more) {
    const buf = Buffer.allocUnsafe(first.length);
    for (;;) {
      const r = await source(buf, 0);
      if (r === 0) break;
      await d.write(buf.subarray(0, r));
      await flush();
    }
  }
  await d.end();
  await flush();
  return { bytes };
}

/**
 * Encrypts `source` to `recipients` as an age file on `sink` (binary, or armored with
 * `armor: true`), sealing chunks in parallel. Resolves with the number of bytes written.
 */
export async function encryptParallel(
  recipients: Recipient[],
  source: ByteSource,
  sink: ByteSink,
  options: EncryptParallelOptions = {},
): Promise<{ bytes: number }> {
  if (!Array.isArray(recipients) || recipients.length === 0) {
    throw new FerryError('INVALID_ARGUMENT', 'recipients must be a non-empty array of Recipient', {
      hints: ['expected: Recipient[] with at least one element', `got: ${describe(recipients)}`],
    });
  }
  const opts = checkOptions(options);
  const armor = options.armor === true ? new ArmorEncoder() : null;
  let bytes = 0;
  const out: ByteSink = (parts) => {
    if (armor !== null) parts = [armor.push(parts.length === 1 ? parts[0] : Buffer.concat(parts))];
    for (const p of parts) bytes += p.length;
    return sink(parts);
  };

  const { header, fileKey } = await makeHeader(recipients);
  const nonce = randomBytes(NONCE_SIZE);
  const raw = hkdf32(fileKey, nonce, 'payload');
  fileKey.fill(0);
  const aead = await makeAead(raw, opts.threadPool > 0);
  raw.fill(0);
  await out([header, nonce]);

  const blockSize = BLOCK_CHUNKS * CHUNK_SIZE;
  const win = new Window(blockSize, aead.seal, opts, out, () => {
    throw new FerryError('INTERNAL', 'age encryption of a chunk failed');
  });
  try {
    let counter = 0;
    let held: { block: Block; input: Uint8Array } | null = null;
    for (;;) {
      const block = await win.block();
      const len = await fill(source, block.buf, 0);
      const eof = len < blockSize;
      if (held !== null) {
        // A full chunk is sealed as non-final only when more plaintext follows it.
        await win.submit(counter++, len === 0, held.block, held.input);
        win.release(held.block);
        held = null;
      }
      let off = 0;
      for (; len - off > CHUNK_SIZE; off += CHUNK_SIZE) {
        await win.submit(counter++, false, block, block.buf.subarray(off, off + CHUNK_SIZE));
      }
      if (eof) {
        // The final chunk: short, full, or empty when the whole input is empty.
        if (len - off > 0 || counter === 0) {
          await win.submit(counter++, true, block, block.buf.subarray(off, len));
        }
        win.release(block);
        break;
      }
      held = { block, input: block.buf.subarray(off, len) };
    }
    await win.drainAll();
  } catch (e) {
    win.abandon();
    throw e;
  } finally {
    // The read buffers held plaintext; after a failure, some may still be in use by jobs
    // already started (they are dropped, and their buffers collected, when those finish).
    win.wipeFree();
  }
  if (armor !== null) {
    const tail = armor.end();
    bytes += tail.length;
    await sink([tail]);
  }
  return { bytes };
}
