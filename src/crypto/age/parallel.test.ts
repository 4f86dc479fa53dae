import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isFerryError } from '../../kernel/index.ts';
import { armor } from './armor.ts';
import { Decryptor, decrypt } from './decrypt.ts';
import { encrypt } from './encrypt.ts';
import { encodeHeader, hkdf32 } from './format.ts';
import {
  type ByteSink,
  type ByteSource,
  decryptParallel,
  encryptParallel,
  iterableSource,
  type ParallelOptions,
} from './parallel.ts';
import type { Identity } from './recipients.ts';
import { CHUNK_SIZE, ENC_CHUNK_SIZE } from './stream.ts';
import { parseIdentity, parseRecipient } from './keys.ts';
import { generateX25519Identity, type X25519Recipient } from './x25519.ts';

const code = (c: string) => (e: unknown) => isFerryError(e) && e.code === c;

/** A source over bytes in memory, `piece` bytes per read at most (a pipe gives short reads). */
function memSource(bytes: Uint8Array, piece = 1 << 30): ByteSource & { read: () => number } {
  let pos = 0;
  const src = async (buf: Uint8Array, off: number) => {
    const n = Math.min(piece, buf.length - off, bytes.length - pos);
    buf.set(bytes.subarray(pos, pos + n), off);
    pos += n;
    return n;
  };
  return Object.assign(src, { read: () => pos });
}

/** A sink that copies what it is given (the pipeline frees the buffers afterwards). */
function memSink(): { sink: ByteSink; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  return {
    sink: async (ps) => {
      for (const p of ps) parts.push(Buffer.from(p));
    },
    bytes: () => Buffer.concat(parts),
  };
}

const { identity, recipient } = generateX25519Identity();
const ids: Identity[] = [parseIdentity(identity)];
const recips = [parseRecipient(recipient) as X25519Recipient];

const MODES: [string, ParallelOptions][] = [
  ['default (main thread + workers)', {}],
  ['main thread only', { workers: 0 }],
  ['one worker', { workers: 1 }],
  ['three workers', { workers: 3 }],
  // The worker path alone: every chunk sealed or opened on a worker thread.
  ['one worker only', { workers: 1, mainThread: false }],
  ['two workers only', { workers: 2, mainThread: false }],
];

const SIZES = [
  0,
  1,
  CHUNK_SIZE - 1,
  CHUNK_SIZE,
  CHUNK_SIZE + 1,
  8 * CHUNK_SIZE - 1, // one read buffer of plaintext
  8 * CHUNK_SIZE,
  8 * CHUNK_SIZE + 1,
  24 * CHUNK_SIZE,
  24 * CHUNK_SIZE + 1,
  32 * CHUNK_SIZE, // the whole ring
  32 * CHUNK_SIZE + 1,
  64 * CHUNK_SIZE, // twice round it
  3 * 1024 * 1024 + 7,
];

test('round trips at chunk and block boundaries, every mode, against the sequential code', async () => {
  for (const n of SIZES) {
    const pt = randomBytes(n);
    for (const [name, opts] of MODES) {
      // Parallel encryption, sequential decryption.
      const enc = memSink();
      const r = await encryptParallel(recips, memSource(pt), enc.sink, opts);
      const ct = enc.bytes();
      assert.equal(r.bytes, ct.length);
      assert.deepEqual(Buffer.from(await decrypt(ids, ct)), pt, `${name}, ${n} bytes: encrypt`);
      // Sequential encryption, parallel decryption, with short reads too.
      const ct2 = await encrypt(recips, pt);
      for (const piece of [1 << 30, 7919]) {
        const dec = memSink();
        const d = await decryptParallel(ids, memSource(ct2, piece), dec.sink, opts);
        assert.equal(d.bytes, n);
        assert.deepEqual(dec.bytes(), pt, `${name}, ${n} bytes, reads of ${piece}: decrypt`);
      }
    }
  }
});

test('armored files: encrypted with armor, decrypted through the sequential path', async () => {
  const pt = randomBytes(2 * CHUNK_SIZE + 5);
  const enc = memSink();
  await encryptParallel(recips, memSource(pt), enc.sink, { armor: true });
  const text = enc.bytes().toString('latin1');
  assert.match(text, /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
  assert.deepEqual(Buffer.from(await decrypt(ids, Buffer.from(text, 'latin1'))), pt);
  const dec = memSink();
  const armored = Buffer.from(armor(await encrypt(recips, pt)), 'latin1');
  await decryptParallel(ids, memSource(armored, 1000), dec.sink);
  assert.deepEqual(dec.bytes(), pt);
});

test('iterableSource reads any chunking of an async iterable', async () => {
  const pt = randomBytes(5 * CHUNK_SIZE + 3);
  const ct = Buffer.from(await encrypt(recips, pt));
  async function* pieces() {
    for (let o = 0; o < ct.length; ) {
      const n = 1 + Math.floor(Math.random() * 100_000);
      // Copies: the source frees each chunk it has consumed.
      yield Buffer.from(ct.subarray(o, o + n));
      o += n;
    }
  }
  const dec = memSink();
  await decryptParallel(ids, iterableSource(pieces()), dec.sink);
  assert.deepEqual(dec.bytes(), pt);
});

// --- the attacker's side: crafted payloads under a valid header ---

/** An age file whose payload chunks are given explicitly (plaintext and last flag each). */
function craft(chunks: { pt: Uint8Array; last: boolean }[], nonceBytes = 16, extraStanzas = 0): Buffer {
  const fileKey = randomBytes(16);
  const stanzas = [
    // Stanzas of a type no identity knows come first (age ignores them).
    ...Array.from({ length: extraStanzas }, (_, i) => ({
      type: 'ferry-test',
      args: [String(i)],
      body: randomBytes(48),
    })),
    ...recips[0].wrapFileKey(Uint8Array.from(fileKey)),
  ];
  const header = encodeHeader(stanzas, fileKey);
  const nonce = randomBytes(16);
  const key = hkdf32(fileKey, nonce, 'payload');
  const parts: Uint8Array[] = [header, nonce.subarray(0, nonceBytes)];
  chunks.forEach(({ pt, last }, i) => {
    const iv = Buffer.alloc(12);
    iv.writeUInt32BE(i, 7);
    iv[11] = last ? 1 : 0;
    const c = createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
    parts.push(c.update(pt), c.final(), c.getAuthTag());
  });
  return Buffer.concat(parts);
}

/** Runs the sequential Decryptor: its output (until it threw) and its error code. */
async function sequential(ct: Uint8Array): Promise<{ out: Buffer; code: string | null }> {
  const out: Buffer[] = [];
  try {
    const d = new Decryptor(ids, (p) => out.push(Buffer.from(p)));
    await d.write(ct);
    await d.end();
    return { out: Buffer.concat(out), code: null };
  } catch (e) {
    assert.ok(isFerryError(e), String(e));
    return { out: Buffer.concat(out), code: e.code };
  }
}

async function parallel(ct: Uint8Array, opts: ParallelOptions, piece?: number) {
  const dec = memSink();
  try {
    await decryptParallel(ids, memSource(ct, piece), dec.sink, opts);
    return { out: dec.bytes(), code: null };
  } catch (e) {
    assert.ok(isFerryError(e), String(e));
    return { out: dec.bytes(), code: e.code };
  }
}

const full = () => randomBytes(CHUNK_SIZE);

test('crafted payloads fail with the codes of the sequential decryptor, releasing no more', async () => {
  const cases: [string, Buffer, string | null][] = [
    ['only an empty final chunk', craft([{ pt: new Uint8Array(0), last: true }]), null],
    ['a full final chunk', craft([{ pt: full(), last: true }]), null],
    ['no chunks', craft([]), 'AGE_PAYLOAD_TRUNCATED'],
    ['half a nonce', craft([], 7), 'AGE_HEADER_INVALID'],
    [
      'no final chunk',
      craft([
        { pt: full(), last: false },
        { pt: full(), last: false },
      ]),
      'AGE_PAYLOAD_TRUNCATED',
    ],
    [
      'no final chunk after a block',
      craft(Array.from({ length: 8 }, () => ({ pt: full(), last: false }))),
      'AGE_PAYLOAD_TRUNCATED',
    ],
    [
      'empty final chunk after a full one',
      craft([
        { pt: full(), last: false },
        { pt: new Uint8Array(0), last: true },
      ]),
      'AGE_PAYLOAD_INVALID',
    ],
    [
      'a chunk after the final one',
      craft([
        { pt: full(), last: true },
        { pt: randomBytes(10), last: true },
      ]),
      'AGE_PAYLOAD_INVALID',
    ],
    ['a short non-final chunk', craft([{ pt: randomBytes(100), last: false }]), 'AGE_PAYLOAD_INVALID'],
    [
      'a short chunk in the middle',
      craft([
        { pt: full(), last: false },
        { pt: randomBytes(100), last: false },
        { pt: randomBytes(100), last: true },
      ]),
      'AGE_PAYLOAD_INVALID',
    ],
  ];
  const valid = craft([
    ...Array.from({ length: 20 }, () => ({ pt: full(), last: false })),
    { pt: randomBytes(999), last: true },
  ]);
  const payloadStart = valid.length - (20 * ENC_CHUNK_SIZE + 999 + 16);
  const fulls = (n: number) => Array.from({ length: n }, () => ({ pt: full(), last: false }));
  cases.push(
    // Past one read (512 KiB), so that workers take part.
    [
      'empty final chunk after 20 full ones',
      craft([...fulls(20), { pt: new Uint8Array(0), last: true }]),
      'AGE_PAYLOAD_INVALID',
    ],
    [
      'a final chunk in the middle',
      craft([...fulls(10), { pt: full(), last: true }, ...fulls(10), { pt: randomBytes(5), last: true }]),
      'AGE_PAYLOAD_INVALID',
    ],
    ['no final chunk after 40', craft(fulls(40)), 'AGE_PAYLOAD_TRUNCATED'],
    [
      'a short chunk after 30',
      craft([...fulls(30), { pt: randomBytes(100), last: false }, { pt: randomBytes(9), last: true }]),
      'AGE_PAYLOAD_INVALID',
    ],
    ['trailing bytes', Buffer.concat([valid, Buffer.from('x')]), 'AGE_PAYLOAD_INVALID'],
    ['cut inside the last chunk', valid.subarray(0, valid.length - 500), 'AGE_PAYLOAD_INVALID'],
    ['cut to 5 bytes of the last chunk', valid.subarray(0, valid.length - 999 - 11), 'AGE_PAYLOAD_INVALID'],
    [
      'cut at a chunk boundary',
      valid.subarray(0, payloadStart + 17 * ENC_CHUNK_SIZE),
      'AGE_PAYLOAD_TRUNCATED',
    ],
    ['cut after the nonce', valid.subarray(0, payloadStart), 'AGE_PAYLOAD_TRUNCATED'],
  );
  for (const [name, ct, want] of cases) {
    const seq = await sequential(ct);
    assert.equal(seq.code, want, `${name}: the sequential decryptor`);
    for (const [mode, opts] of MODES) {
      for (const piece of [undefined, 4096]) {
        const par = await parallel(ct, opts, piece);
        assert.equal(par.code, want, `${name}, ${mode}: code`);
        // Never more plaintext than the sequential decryptor released, and the same bytes.
        assert.ok(par.out.length <= seq.out.length, `${name}, ${mode}: released too much`);
        assert.deepEqual(par.out, seq.out.subarray(0, par.out.length), `${name}, ${mode}: output`);
        if (want === null) assert.deepEqual(par.out, seq.out);
      }
    }
  }
});

test('a tampered chunk k: refused, and exactly the plaintext of chunks 0..k-1 was written', async () => {
  const n = 40;
  const pt = randomBytes(n * CHUNK_SIZE + 1234);
  const ct = Buffer.from(await encrypt(recips, pt));
  const payloadStart = ct.length - (n * ENC_CHUNK_SIZE + 1234 + 16);
  for (const k of [0, 1, 7, 8, 9, 16, 23, 24, 25, 33, n]) {
    for (const where of ['ciphertext', 'tag']) {
      const bad = Buffer.from(ct);
      const chunkEnd = Math.min(payloadStart + (k + 1) * ENC_CHUNK_SIZE, bad.length);
      bad[where === 'tag' ? chunkEnd - 1 : payloadStart + k * ENC_CHUNK_SIZE + 5] ^= 0x01;
      for (const [mode, opts] of MODES) {
        const r = await parallel(bad, opts);
        assert.equal(r.code, 'AGE_PAYLOAD_INVALID', `chunk ${k} ${where}, ${mode}`);
        assert.equal(r.out.length, k * CHUNK_SIZE, `chunk ${k} ${where}, ${mode}: bytes written`);
        assert.deepEqual(r.out, pt.subarray(0, k * CHUNK_SIZE));
      }
    }
  }
  // Two chunks swapped: refused at the first of them.
  const swapped = Buffer.from(ct);
  const a = payloadStart + 3 * ENC_CHUNK_SIZE;
  ct.copy(swapped, a, a + ENC_CHUNK_SIZE, a + 2 * ENC_CHUNK_SIZE);
  ct.copy(swapped, a + ENC_CHUNK_SIZE, a, a + ENC_CHUNK_SIZE);
  const r = await parallel(swapped, {});
  assert.equal(r.code, 'AGE_PAYLOAD_INVALID');
  assert.equal(r.out.length, 3 * CHUNK_SIZE);
});

test('a header longer than a read buffer (up to the 1 MiB limit) is read across buffers', async () => {
  const pt = [randomBytes(CHUNK_SIZE), randomBytes(77)];
  const ct = craft(
    [
      { pt: pt[0], last: false },
      { pt: pt[1], last: true },
    ],
    16,
    7000,
  );
  assert.ok(ct.length > 8 * ENC_CHUNK_SIZE, `header of ${ct.length} bytes`);
  for (const piece of [undefined, 100_000]) {
    const dec = memSink();
    await decryptParallel(ids, memSource(ct, piece), dec.sink);
    assert.deepEqual(dec.bytes(), Buffer.concat(pt));
  }
});

test('header failures pass through: no match, modified header', async () => {
  const ct = Buffer.from(await encrypt(recips, randomBytes(1000)));
  const other = [parseIdentity(generateX25519Identity().identity)];
  await assert.rejects(decryptParallel(other, memSource(ct), memSink().sink), code('AGE_NO_MATCH'));
  const bad = Buffer.from(ct);
  const line = bad.indexOf('\n-> X25519 ') + 12;
  bad[line] = bad[line] === 0x41 ? 0x42 : 0x41; // a base64 letter of the ephemeral share
  await assert.rejects(decryptParallel(ids, memSource(bad), memSink().sink), (e: unknown) => isFerryError(e));
  await assert.rejects(
    decryptParallel(ids, memSource(new Uint8Array(0)), memSink().sink),
    code('AGE_HEADER_INVALID'),
  );
});

test('memory is bounded: with a stalled sink the pipeline stops reading', async () => {
  const ct = Buffer.from(await encrypt(recips, randomBytes(64 * CHUNK_SIZE)));
  let release: () => void = () => {};
  let calls = 0;
  const stalled: ByteSink = (parts) => {
    calls++;
    assert.ok(parts.length > 0);
    return new Promise((res) => {
      release = res;
    });
  };
  const src = memSource(ct);
  const run = decryptParallel(ids, src, stalled);
  for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
  assert.equal(calls, 1, 'one write outstanding');
  // The ring's 32 chunks at most (plus the header), out of 64 chunks.
  assert.ok(src.read() <= 32 * ENC_CHUNK_SIZE + 300, `read ${src.read()} bytes while stalled`);
  // Let it go: each stalled write is released in turn until the run settles.
  let settled = false;
  run.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  while (!settled) {
    release();
    await new Promise((r) => setImmediate(r));
  }
  assert.equal((await run).bytes, 64 * CHUNK_SIZE);
});

test('bad arguments are refused, naming the argument', async () => {
  const src = memSource(new Uint8Array(0));
  const sink = memSink().sink;
  await assert.rejects(decryptParallel([], src, sink), code('INVALID_ARGUMENT'));
  await assert.rejects(encryptParallel([], src, sink), code('INVALID_ARGUMENT'));
  for (const bad of [
    { workers: -1 },
    { workers: 1.5 },
    { workers: 9 },
    { workers: '2' },
    { mainThread: 1 },
    { workers: 0, mainThread: false },
  ]) {
    await assert.rejects(
      encryptParallel(recips, src, sink, bad as ParallelOptions),
      (e: unknown) => isFerryError(e) && e.code === 'INVALID_ARGUMENT' && /options\./.test(e.message),
    );
  }
});
