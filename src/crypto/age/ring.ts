/**
 * The shared ring of STREAM chunks that `parallel.ts` (the main thread) and its worker threads
 * (`ring-worker.ts`) work on: chunk slots in a SharedArrayBuffer, sealed or opened in place.
 *
 * The main thread reads the input into slots, publishes each chunk (its length, counter and
 * last-chunk flag) once whether it is the last is known, and writes finished slots out
 * strictly in chunk order. Any thread — the main one when it has nothing else to do, and every
 * worker — claims the oldest published chunk (one compare-and-swap on `NEXT`), seals or opens
 * it in place with node:crypto's ChaCha20-Poly1305, and marks the slot OK or FAIL.
 *
 * Opening writes plaintext into the shared slot only after the chunk's tag verified (a failed
 * chunk keeps its ciphertext); whether anything is released is the main thread's decision
 * alone. This module imports node built-ins only, so a worker starts in a few milliseconds.
 */
import * as nodeCrypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/** Plaintext bytes per STREAM chunk, and the tag (as in stream.ts). */
const CHUNK = 64 * 1024;
const TAG = 16;

/** Slots in the ring (a power of two: slot = chunk index mod SLOTS on wrapping 32-bit counts). */
export const SLOTS = 32;
/** Chunks read at once (one read of up to 512 KiB); SLOTS is a multiple of it. */
export const SPAN = 8;

/** Slot states. */
export const FREE = 0;
export const READY = 1;
export const BUSY = 2;
export const OK = 3;
export const FAIL = 4;

/** Global cells of the control array: chunks published, next chunk to claim, wake-up sequence, stop. */
export const AVAIL = 0;
export const NEXT = 1;
export const SEQ = 2;
export const STOP = 3;
export const HEAD = 4;
/** Per slot: state, length, last flag, counter (low 32 bits), counter (high bits). */
export const FIELDS = 5;
export const STATE = 0;
export const LEN = 1;
export const LAST = 2;
export const CTR_LO = 3;
export const CTR_HI = 4;

/** The ring's layout, handed to the self-contained functions as data. */
const LAYOUT = {
  chunk: CHUNK,
  tag: TAG,
  slots: SLOTS,
  head: HEAD,
  fields: FIELDS,
  avail: AVAIL,
  next: NEXT,
  seq: SEQ,
  stop: STOP,
  state: STATE,
  len: LEN,
  last: LAST,
  ctrLo: CTR_LO,
  ctrHi: CTR_HI,
  busy: BUSY,
  ok: OK,
  fail: FAIL,
};
type Layout = typeof LAYOUT;

/** What a worker needs to map the same ring (structured-cloned as workerData). */
export type RingShared = {
  decrypt: boolean;
  data: SharedArrayBuffer;
  tags: SharedArrayBuffer;
  ctrl: SharedArrayBuffer;
  layout: Layout;
};

export type Ring = {
  decrypt: boolean;
  /** Bytes between slot starts: a sealed chunk when decrypting, a plaintext chunk when encrypting. */
  stride: number;
  data: Buffer;
  /** Encryption only: each slot's 16-byte tag (so that the plaintext slots stay contiguous for reads). */
  tags: Buffer;
  ctrl: Int32Array;
};

export function newRing(decrypt: boolean): RingShared {
  const stride = decrypt ? CHUNK + TAG : CHUNK;
  return {
    decrypt,
    data: new SharedArrayBuffer(SLOTS * stride),
    tags: new SharedArrayBuffer(SLOTS * TAG),
    ctrl: new SharedArrayBuffer((HEAD + SLOTS * FIELDS) * 4),
    layout: LAYOUT,
  };
}

export function mapRing(s: RingShared): Ring {
  return {
    decrypt: s.decrypt,
    stride: s.decrypt ? CHUNK + TAG : CHUNK,
    data: Buffer.from(s.data),
    tags: Buffer.from(s.tags),
    ctrl: new Int32Array(s.ctrl),
  };
}

/** Index in `ctrl` of field `f` of `slot`. */
export const cell = (slot: number, f: number): number => HEAD + slot * FIELDS + f;

/** Writes a chunk's length, flag and counter into its slot and marks it READY (not yet published). */
export function describeSlot(r: Ring, slot: number, len: number, last: boolean, counter: number): void {
  r.ctrl[cell(slot, LEN)] = len;
  r.ctrl[cell(slot, LAST)] = last ? 1 : 0;
  r.ctrl[cell(slot, CTR_LO)] = counter | 0;
  r.ctrl[cell(slot, CTR_HI)] = Math.floor(counter / 2 ** 32);
  Atomics.store(r.ctrl, cell(slot, STATE), READY);
}

/** The slot's counter. */
export const slotCounter = (r: Ring, slot: number): number =>
  r.ctrl[cell(slot, CTR_HI)] * 2 ** 32 + (r.ctrl[cell(slot, CTR_LO)] >>> 0);

type Crypto = Pick<typeof nodeCrypto, 'createCipheriv' | 'createDecipheriv'>;

/**
 * The chunk processor over ring `s`: a function that claims the oldest published chunk and
 * seals or opens it in place, false when none is waiting (`iv` is the calling thread's 12-byte
 * scratch nonce). Self-contained: it is also part of the workers' source text.
 *
 * Opening refuses without trying a chunk shorter than its tag and an empty last chunk that is
 * not the only one (its tag may well verify); the plaintext reaches the shared slot only after
 * final() verified the tag, and a failed chunk keeps its ciphertext.
 *
 * Sealing on the thread that writes the output may pass `keep`: the ciphertext buffer is then
 * handed to it instead of being copied back into the slot (the tag still goes to the ring).
 */
export function chunkProcessor(
  crypto: Crypto,
  s: RingShared,
  keep?: (slot: number, ciphertext: Buffer) => void,
): (key: KeyObject, iv: Buffer) => boolean {
  const L = s.layout;
  const ctrl = new Int32Array(s.ctrl);
  const data = Buffer.from(s.data);
  const tags = Buffer.from(s.tags);
  const stride = s.decrypt ? L.chunk + L.tag : L.chunk;
  // Frees a buffer that owns its whole ArrayBuffer now rather than at the next collection.
  const free = (b: Buffer) => {
    const ab = b.buffer;
    if (b.byteOffset === 0 && b.byteLength === ab.byteLength && ab instanceof ArrayBuffer) ab.transfer(0);
  };
  const run = (key: KeyObject, iv: Buffer, slot: number): boolean => {
    const at = L.head + slot * L.fields;
    const len = ctrl[at + L.len];
    const last = ctrl[at + L.last] === 1;
    const hi = ctrl[at + L.ctrHi] >>> 0;
    const lo = ctrl[at + L.ctrLo] >>> 0;
    iv.fill(0, 0, 3);
    iv.writeUInt32BE(hi, 3);
    iv.writeUInt32BE(lo, 7);
    iv[11] = last ? 1 : 0;
    const off = slot * stride;
    if (!s.decrypt) {
      const c = crypto.createCipheriv('chacha20-poly1305', key, iv, { authTagLength: L.tag });
      const ct = c.update(data.subarray(off, off + len));
      c.final();
      tags.set(c.getAuthTag(), slot * L.tag);
      if (keep) keep(slot, ct);
      else {
        data.set(ct, off);
        free(ct);
      }
      return true;
    }
    if (len < L.tag || (last && (hi > 0 || lo > 0) && len === L.tag)) return false;
    const d = crypto.createDecipheriv('chacha20-poly1305', key, iv, { authTagLength: L.tag });
    d.setAuthTag(data.subarray(off + len - L.tag, off + len));
    const pt = d.update(data.subarray(off, off + len - L.tag));
    try {
      d.final();
    } catch {
      pt.fill(0);
      free(pt);
      return false;
    }
    data.set(pt, off);
    pt.fill(0);
    free(pt);
    return true;
  };
  return (key, iv) => {
    for (;;) {
      const next = Atomics.load(ctrl, L.next);
      if (((Atomics.load(ctrl, L.avail) - next) | 0) <= 0) return false;
      if (Atomics.compareExchange(ctrl, L.next, next, (next + 1) | 0) !== next) continue;
      const state = L.head + (next & (L.slots - 1)) * L.fields + L.state;
      Atomics.store(ctrl, state, L.busy);
      const ok = run(key, iv, next & (L.slots - 1));
      Atomics.store(ctrl, state, ok ? L.ok : L.fail);
      Atomics.notify(ctrl, state);
      return true;
    }
  };
}

/**
 * A worker's body (self-contained): processes chunks until told to stop. workerData is the
 * RingShared plus `key`, the 32-byte payload key (zeroed here once imported).
 */
function workerMain(req: (id: string) => unknown, makeProcessor: typeof chunkProcessor): void {
  const { workerData } = req('node:worker_threads') as { workerData: RingShared & { key: Uint8Array } };
  const crypto = req('node:crypto') as typeof nodeCrypto;
  const processOne = makeProcessor(crypto, workerData);
  const key = crypto.createSecretKey(workerData.key);
  workerData.key.fill(0);
  const iv = Buffer.alloc(12);
  const ctrl = new Int32Array(workerData.ctrl);
  const L = workerData.layout;
  for (;;) {
    // The wake-up sequence is read before looking for work: a chunk published (or a stop)
    // after the look changes it, so the wait returns at once instead of missing it.
    const seq = Atomics.load(ctrl, L.seq);
    if (processOne(key, iv)) continue;
    if (Atomics.load(ctrl, L.stop) === 1) break;
    Atomics.wait(ctrl, L.seq, seq);
  }
}

/** The workers' source text (an eval worker, CommonJS): workerMain over chunkProcessor. */
export function workerSource(): string {
  return `(${workerMain})(require, ${chunkProcessor});`;
}

/** This thread's processor over ring `s` (`keep`: see chunkProcessor). */
export function localProcessor(
  s: RingShared,
  keep?: (slot: number, ciphertext: Buffer) => void,
): (key: KeyObject, iv: Buffer) => boolean {
  return chunkProcessor(nodeCrypto, s, keep);
}
