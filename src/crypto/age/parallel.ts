/**
 * A parallel, bounded age pipeline for whole files (the CLI's `ferry encrypt` / `decrypt`).
 *
 * STREAM chunks are independent (each has its own nonce `u88be(counter) || last`), so they
 * are sealed and opened concurrently, in place in a ring of 32 chunk slots in shared memory
 * (ring.ts): the main thread reads the input into the ring 8 chunks (512 KiB) at a time,
 * publishes each chunk once it knows whether it is the last, writes finished chunks out
 * strictly in order in batches, and seals or opens chunks itself when it has nothing else to
 * do; `workers` worker threads (ring.ts, node:crypto ChaCha20-Poly1305 on whole chunks)
 * claim published chunks beside it. Memory is constant (~2 MiB of ring) whatever the file
 * size, and a slow sink slows the reader (backpressure). Workers start only when the input is
 * longer than one read.
 *
 * Security rules kept from stream.ts (`PayloadDecryptor`): a chunk's plaintext goes to the
 * sink only after its tag verified and after every earlier chunk's plaintext; on the first
 * failure nothing more is written and the same FerryError codes are thrown
 * (AGE_HEADER_INVALID when the nonce is missing, AGE_PAYLOAD_TRUNCATED when the payload has
 * no final chunk, AGE_PAYLOAD_INVALID for a bad tag, an empty non-only last chunk or trailing
 * data). Plaintext written before a failure was authenticated but is incomplete: the caller
 * must discard the output (the CLI writes to a temporary file and removes it).
 *
 * Every thread opens a chunk into the shared ring only after its tag verified; a failed chunk
 * keeps its ciphertext. The ring is zeroed when the run ends, however it ends, after the
 * workers stopped.
 *
 * The enclave does not use this module; it keeps the sequential `Decryptor` of decrypt.ts.
 */
import { createSecretKey, randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { describe, FerryError } from '../../kernel/index.ts';
import { ArmorEncoder } from './armor.ts';
import { checkIdentities, Decryptor, unwrapHeader } from './decrypt.ts';
import { makeHeader } from './encrypt.ts';
import { HeaderParser, hkdf32 } from './format.ts';
import type { Identity, Recipient } from './recipients.ts';
import {
  AVAIL,
  BUSY,
  cell,
  describeSlot,
  FAIL,
  FREE,
  LAST,
  LEN,
  localProcessor,
  mapRing,
  newRing,
  OK,
  SEQ,
  SLOTS,
  SPAN,
  STATE,
  STOP,
  slotCounter,
  workerSource,
} from './ring.ts';
import { ENC_CHUNK_SIZE, NONCE_SIZE, openChunk, streamNonce, TAG_SIZE } from './stream.ts';

/**
 * Reads into `buf` from offset `off` (at most `buf.length - off` bytes); returns or resolves
 * with the number of bytes read, 0 only at end of input. A source that reads synchronously
 * (a regular file) returns the number itself: the pipeline then reads without a round trip
 * through the event loop and libuv's thread pool.
 */
export type ByteSource = (buf: Uint8Array, off: number) => number | Promise<number>;

/**
 * Writes `parts` in order; the pipeline awaits it before writing more (backpressure). When
 * it returns (a synchronous sink) or its promise resolves, the sink must be done with `parts`:
 * they are views into the pipeline's ring (shared memory), reused for later chunks.
 */
export type ByteSink = (parts: Uint8Array[]) => void | Promise<void>;

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
  /**
   * Worker threads that seal or open chunks beside the main thread (0..8; default the cores
   * less one, at most 3); 0 does everything on the main thread.
   */
  workers?: number;
  /**
   * Whether the main thread seals or opens chunks too (default true); false leaves every chunk
   * to the workers (for tests and measurements of the worker path; needs `workers` >= 1).
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
    let r = source(buf, n);
    if (typeof r !== 'number') r = await r;
    if (r === 0) break;
    n += r;
  }
  return n;
}

// --- the ring: reads, publication, ordered writes; chunks sealed or opened by any thread ---

/**
 * Spans read between two turns of the event loop (16 MiB): with a synchronous source and
 * sink nothing else would return to it, and a signal (SIGINT) or a worker's 'error' and
 * 'exit' events are handled there.
 */
const YIELD_SPANS = 32;

/** Upper bound of `workers`. */
const MAX_WORKERS = 8;

/**
 * Worker threads by default: the cores less one (the main thread reads, writes and seals or
 * opens chunks too), at most 3. A worker costs ~20 MiB of RSS and ~20 ms to start, so it is
 * started only once the input is known to be longer than one read (512 KiB).
 */
const DEFAULTS: Required<ParallelOptions> = {
  workers: Math.max(0, Math.min(3, availableParallelism() - 1)),
  mainThread: true,
};

function checkOptions(options: ParallelOptions): Required<ParallelOptions> {
  if (options === null || typeof options !== 'object') {
    throw new FerryError('INVALID_ARGUMENT', 'options must be an object', {
      hints: [`got: ${describe(options)}`],
    });
  }
  const o = { ...DEFAULTS };
  const v = options.workers;
  if (v !== undefined) {
    if (!Number.isSafeInteger(v) || v < 0 || v > MAX_WORKERS) {
      throw new FerryError('INVALID_ARGUMENT', `options.workers must be an integer in 0..${MAX_WORKERS}`, {
        hints: [`got: ${describe(v)}`],
      });
    }
    o.workers = v;
  }
  if (options.mainThread !== undefined) {
    if (typeof options.mainThread !== 'boolean') {
      throw new FerryError('INVALID_ARGUMENT', 'options.mainThread must be a boolean', {
        hints: [`got: ${describe(options.mainThread)}`],
      });
    }
    o.mainThread = options.mainThread;
  }
  if (!o.mainThread && o.workers === 0) {
    throw new FerryError('INVALID_ARGUMENT', 'options.mainThread false needs options.workers >= 1', {
      hints: ['got: workers 0'],
    });
  }
  return o;
}

/** The failure of chunk `counter` (its slot still holds the input): throws the right FerryError. */
type OnFail = (counter: number, last: boolean, input: Uint8Array) => never;

/**
 * Runs the payload through the ring: `first` bytes (already read; `ended` when they are all
 * of it) then `source`, to `sink`.
 * `rawKey` is the payload key (the caller wipes it). Throws from `onFail` at the first chunk
 * that fails, after writing every chunk before it; the ring is wiped on every exit.
 */
async function runRing(
  decrypt: boolean,
  rawKey: Uint8Array,
  first: Uint8Array,
  ended: boolean,
  source: ByteSource,
  sink: ByteSink,
  opts: Required<ParallelOptions>,
  onFail: OnFail | null,
): Promise<void> {
  const shared = newRing(decrypt);
  const r = mapRing(shared);
  // Encryption: chunks sealed on this thread are written from node:crypto's output buffer
  // rather than copied back into their slot first (one 64 KiB copy less per chunk).
  const own: (Uint8Array | null)[] = new Array(SLOTS).fill(null);
  const processOne = decrypt
    ? localProcessor(shared)
    : localProcessor(shared, (slot, ct) => {
        own[slot] = ct;
      });
  const dropOwn = (slot: number) => {
    const b = own[slot];
    if (b !== null) {
      own[slot] = null;
      release(b);
    }
  };
  const { ctrl, stride, data, tags } = r;
  const key = createSecretKey(rawKey);
  const iv = Buffer.alloc(12);
  const workers: Worker[] = [];
  let workerFailure: unknown = null;
  const startWorkers = () => {
    for (let i = 0; i < opts.workers; i++) {
      const w = new Worker(workerSource(), {
        eval: true,
        workerData: { ...shared, key: Uint8Array.from(rawKey) },
        // The AEAD allocates little on the V8 heap: a small young generation keeps RSS down.
        resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
        stdout: false,
        stderr: false,
      });
      w.on('error', (e) => {
        workerFailure ??= e;
      });
      w.on('exit', (code) => {
        if (code !== 0 || Atomics.load(ctrl, STOP) === 0) workerFailure ??= new Error(`exit code ${code}`);
      });
      workers.push(w);
    }
  };
  const stop = async () => {
    Atomics.store(ctrl, STOP, 1);
    Atomics.add(ctrl, SEQ, 1);
    Atomics.notify(ctrl, SEQ);
    await Promise.all(workers.map((w) => w.terminate()));
  };

  /** Chunks read into slots (published, or the one held), published, and written out. */
  let read = 0;
  let published = 0;
  let written = 0;
  let eof = false;
  let held = false;
  const publish = (count: number) => {
    published += count;
    Atomics.store(ctrl, AVAIL, published | 0);
    Atomics.add(ctrl, SEQ, 1);
    Atomics.notify(ctrl, SEQ);
  };
  const slotOf = (i: number) => i & (SLOTS - 1);

  /** Reads the next span into free slots and publishes what it can (a full last chunk is held). */
  let spans = 0;
  const readSpan = async () => {
    // Without the main thread's help the workers are needed from the first chunk on.
    if (!opts.mainThread && workers.length === 0) startWorkers();
    if (++spans % YIELD_SPANS === 0) await new Promise((res) => setImmediate(res));
    const slot = slotOf(read);
    const buf = data.subarray(slot * stride, (slot + SPAN) * stride);
    let pre = 0;
    if (read === 0 && first.length > 0) {
      buf.set(first);
      pre = first.length;
    }
    // After a first read that reached the end, the source is not asked again.
    const n = ended ? pre : await fill(source, buf, pre);
    eof = n < buf.length;
    if (n === 0) {
      if (held) {
        // Nothing follows the held full chunk: it is the last.
        Atomics.store(ctrl, cell(slotOf(read - 1), LAST), 1);
        held = false;
        publish(1);
      } else if (read === 0) {
        if (decrypt)
          throw new FerryError('AGE_PAYLOAD_TRUNCATED', 'payload has no chunks', {
            hints: ['at payload chunk 0'],
          });
        // The empty plaintext: one empty, last chunk.
        describeSlot(r, slot, 0, true, read++);
        publish(1);
      }
      return;
    }
    let count = 0;
    if (held) {
      held = false;
      count++;
    }
    const full = Math.floor(n / stride);
    for (let i = 0; i < full; i++) describeSlot(r, slotOf(read + i), stride, false, read + i);
    let pieces = full;
    if (n % stride > 0) {
      describeSlot(r, slotOf(read + full), n % stride, true, read + full);
      pieces++;
    } else if (eof) {
      Atomics.store(ctrl, cell(slotOf(read + full - 1), LAST), 1);
    }
    read += pieces;
    if (!eof) {
      // The span is full and ends with a whole chunk: whether it is the last shows only later.
      held = true;
      pieces--;
    }
    publish(count + pieces);
    if (!eof && workers.length === 0 && opts.workers > 0) startWorkers();
  };

  /** Consecutive finished chunks from `written` on, and whether the one after them failed. */
  const finished = (): { ready: number; failed: boolean } => {
    let ready = 0;
    while (written + ready < published) {
      const st = Atomics.load(ctrl, cell(slotOf(written + ready), STATE));
      if (st === FAIL) return { ready, failed: true };
      if (st !== OK) break;
      ready++;
    }
    return { ready, failed: false };
  };

  const flush = async (count: number) => {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const slot = slotOf(written + i);
      const off = slot * stride;
      const len = ctrl[cell(slot, LEN)];
      if (decrypt) {
        if (len > TAG_SIZE) parts.push(data.subarray(off, off + len - TAG_SIZE));
      } else {
        if (len > 0) parts.push(own[slot] ?? data.subarray(off, off + len));
        parts.push(tags.subarray(slot * TAG_SIZE, (slot + 1) * TAG_SIZE));
      }
    }
    if (parts.length > 0) {
      const w = sink(parts);
      if (w !== undefined) await w;
    }
    for (let i = 0; i < count; i++) {
      dropOwn(slotOf(written + i));
      Atomics.store(ctrl, cell(slotOf(written + i), STATE), FREE);
    }
    written += count;
  };

  const failAt = (index: number): never => {
    const slot = slotOf(index);
    const len = ctrl[cell(slot, LEN)];
    const last = ctrl[cell(slot, LAST)] === 1;
    const input = Buffer.from(data.subarray(slot * stride, slot * stride + len));
    if (onFail === null) throw new FerryError('INTERNAL', 'age encryption of a chunk failed');
    return onFail(slotCounter(r, slot), last, input);
  };

  try {
    for (;;) {
      if (!eof && read - written <= SLOTS - SPAN) {
        await readSpan();
        continue;
      }
      const { ready, failed } = finished();
      const all = eof && !held && written + ready === read;
      if (failed) {
        if (ready > 0) await flush(ready);
        failAt(written);
      }
      if (ready >= SPAN || (all && ready > 0)) {
        await flush(ready);
        if (all) break;
        continue;
      }
      if (eof && !held && written === read) break;
      // Nothing to read or write yet: seal or open a chunk here, else wait for the oldest.
      if (opts.mainThread && processOne(key, iv)) continue;
      if (ready > 0) {
        await flush(ready);
        continue;
      }
      const head = cell(slotOf(written), STATE);
      if (Atomics.wait(ctrl, head, BUSY, 20) === 'timed-out') {
        // Let a worker's 'exit' or 'error' event in; a worker that died holding a chunk
        // would leave it BUSY forever.
        await new Promise((res) => setImmediate(res));
        if (workerFailure !== null && Atomics.load(ctrl, head) === BUSY) {
          throw new FerryError('INTERNAL', 'an age worker thread failed', { cause: workerFailure });
        }
      }
    }
  } finally {
    await stop();
    for (let i = 0; i < SLOTS; i++) dropOwn(i);
    data.fill(0);
    iv.fill(0);
  }
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
  const blockSize = SPAN * ENC_CHUNK_SIZE;
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
  let bytes = 0;
  const countingSink: ByteSink = (parts) => {
    for (const p of parts) bytes += p.length;
    return sink(parts);
  };
  const fail = (code: 'AGE_PAYLOAD_INVALID' | 'AGE_PAYLOAD_TRUNCATED', message: string, counter: number) =>
    new FerryError(code, message, { hints: [`at payload chunk ${counter}`] });
  // Why a chunk failed, with the codes and messages of PayloadDecryptor.
  const key = createSecretKey(raw);
  const onFail: OnFail = (counter, last, input) => {
    if (input.length === TAG_SIZE && last && counter > 0) {
      throw fail('AGE_PAYLOAD_INVALID', 'last payload chunk is empty but is not the only chunk', counter);
    }
    const other = input.length === ENC_CHUNK_SIZE ? openChunk(key, streamNonce(counter, !last), input) : null;
    if (other !== null) {
      other.fill(0);
      if (last) throw fail('AGE_PAYLOAD_TRUNCATED', 'payload ends without a final chunk', counter + 1);
      throw fail('AGE_PAYLOAD_INVALID', 'trailing data after the final payload chunk', counter + 1);
    }
    throw fail('AGE_PAYLOAD_INVALID', 'payload chunk failed authentication', counter);
  };
  try {
    await runRing(true, raw, rest, eof, source, countingSink, opts, onFail);
  } finally {
    raw.fill(0);
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
  try {
    await out([header, nonce]);
    await runRing(false, raw, new Uint8Array(0), false, source, out, opts, null);
  } finally {
    raw.fill(0);
  }
  if (armor !== null) {
    const tail = armor.end();
    bytes += tail.length;
    await sink([tail]);
  }
  return { bytes };
}
