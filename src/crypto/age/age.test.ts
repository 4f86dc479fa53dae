import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { isFerryError } from '../../kernel/index.ts';
import {
  armor,
  bech32Decode,
  bech32Encode,
  CHUNK_SIZE,
  ciphertextSize,
  createDecryptStream,
  createEncryptStream,
  dearmor,
  decrypt,
  encrypt,
  FileKeyIdentity,
  generateX25519Identity,
  HybridIdentity,
  parseHeader,
  parseIdentity,
  parseIdentityFile,
  parseRecipient,
  parseRecipientsFile,
  readFileKey,
  ScryptIdentity,
  ScryptRecipient,
  X25519Identity,
  X25519Recipient,
} from './index.ts';

const code = (c: string) => (e: unknown) => isFerryError(e) && e.code === c;

async function streamThrough(t: NodeJS.ReadWriteStream, input: Uint8Array, piece: number): Promise<Buffer> {
  const out: Buffer[] = [];
  async function* src() {
    for (let o = 0; o < input.length; o += piece) yield input.subarray(o, o + piece);
  }
  await pipeline(
    Readable.from(src()),
    t,
    new Writable({
      write(c, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

test('X25519 round trip at chunk-boundary sizes, whole and streamed', async () => {
  const { identity, recipient } = generateX25519Identity();
  const r = parseRecipient(recipient);
  const id = parseIdentity(identity);
  for (const n of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE + 17]) {
    const pt = randomBytes(n);
    const ct = await encrypt([r], pt);
    assert.equal(ct.length, ciphertextSize(parseHeader(ct).header.size, n));
    assert.deepEqual(Buffer.from(await decrypt([id], ct)), pt, `whole ${n}`);
    const streamedCt = await streamThrough(createEncryptStream([r]), pt, 1000);
    assert.deepEqual(Buffer.from(await decrypt([id], streamedCt)), pt, `encrypt stream ${n}`);
    assert.deepEqual(await streamThrough(createDecryptStream([id]), ct, 777), pt, `decrypt stream ${n}`);
    const armored = await streamThrough(createEncryptStream([r], { armor: true }), pt, 5000);
    assert.match(armored.toString('latin1'), /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
    assert.deepEqual(Buffer.from(await decrypt([id], armored)), pt, `armored stream ${n}`);
  }
});

test('multiple recipients: each identity opens the file; a stranger gets AGE_NO_MATCH', async () => {
  const a = generateX25519Identity();
  const b = generateX25519Identity();
  const ct = await encrypt([parseRecipient(a.recipient), parseRecipient(b.recipient)], Buffer.from('hello'));
  assert.equal(Buffer.from(await decrypt([parseIdentity(b.identity)], ct)).toString(), 'hello');
  assert.equal(Buffer.from(await decrypt([parseIdentity(a.identity)], ct)).toString(), 'hello');
  const c = generateX25519Identity();
  await assert.rejects(decrypt([parseIdentity(c.identity)], ct), code('AGE_NO_MATCH'));
});

test('FileKeyIdentity: readFileKey hands out the key; a wrong key fails the header MAC', async () => {
  const { identity, recipient } = generateX25519Identity();
  const pt = randomBytes(200_000);
  const ct = await encrypt([parseRecipient(recipient)], pt);
  const key = await readFileKey([parseIdentity(identity)], ct.subarray(0, 300));
  assert.equal(key.length, 16);
  const fk = new FileKeyIdentity(key);
  assert.deepEqual(await streamThrough(createDecryptStream([fk]), ct, 65536), pt);
  const wrong = Uint8Array.from(key);
  wrong[0] ^= 1;
  await assert.rejects(decrypt([new FileKeyIdentity(wrong)], ct), code('AGE_HMAC_INVALID'));
  await assert.rejects(
    readFileKey([parseIdentity(identity)], ct.subarray(0, 20)),
    code('AGE_HEADER_INVALID'),
  );
  // readFileKey also reads armored heads.
  const key2 = await readFileKey([parseIdentity(identity)], Buffer.from(armor(ct)).subarray(0, 600));
  assert.deepEqual(key2, key);
  assert.throws(() => new FileKeyIdentity(new Uint8Array(15)), code('AGE_INVALID_IDENTITY'));
});

test('scrypt round trip; scrypt must be alone; work factor limit', async () => {
  const ct = await encrypt([new ScryptRecipient('correct horse', 10)], Buffer.from('secret'));
  assert.equal(Buffer.from(await decrypt([new ScryptIdentity('correct horse')], ct)).toString(), 'secret');
  await assert.rejects(decrypt([new ScryptIdentity('wrong')], ct), code('AGE_NO_MATCH'));
  await assert.rejects(
    decrypt([new ScryptIdentity('correct horse', { maxWorkFactor: 9 })], ct),
    code('AGE_SCRYPT_WORK_FACTOR'),
  );
  const { recipient } = generateX25519Identity();
  await assert.rejects(
    encrypt([new ScryptRecipient('x', 10), parseRecipient(recipient)], Buffer.from('x')),
    code('AGE_SCRYPT_NOT_ALONE'),
  );
});

test('tampering: header byte, payload byte, truncation, trailing data', async () => {
  const { identity, recipient } = generateX25519Identity();
  const id = parseIdentity(identity);
  const ct = await encrypt([parseRecipient(recipient)], randomBytes(3 * CHUNK_SIZE));
  const hdrEnd = Buffer.from(ct).indexOf('\n---') + 1;
  const h = Uint8Array.from(ct);
  h[hdrEnd - 3] ^= 1; // inside the stanza body: the stanza no longer opens, or is malformed
  await assert.rejects(decrypt([id], h), (e) => isFerryError(e) && e.code.startsWith('AGE_'));
  const p = Uint8Array.from(ct);
  p[p.length - 100] ^= 1;
  await assert.rejects(decrypt([id], p), code('AGE_PAYLOAD_INVALID'));
  await assert.rejects(decrypt([id], ct.subarray(0, ct.length - 1)), code('AGE_PAYLOAD_INVALID'));
  await assert.rejects(
    decrypt([id], ct.subarray(0, ct.length - (CHUNK_SIZE + 16))),
    code('AGE_PAYLOAD_TRUNCATED'),
  );
  await assert.rejects(decrypt([id], Buffer.concat([ct, Buffer.from([0])])), code('AGE_PAYLOAD_INVALID'));
  // Streaming releases only authenticated chunks before the failure.
  const s = createDecryptStream([id]);
  const got: Buffer[] = [];
  s.on('data', (b) => got.push(b));
  const err = await new Promise<unknown>((resolve) => {
    s.on('error', resolve);
    s.end(p);
  });
  assert.ok(isFerryError(err, 'AGE_PAYLOAD_INVALID'));
  assert.equal(Buffer.concat(got).length, 2 * CHUNK_SIZE);
});

test('keys: Bech32 forms, case rules, files, bad input names the problem without echoing secrets', () => {
  const { identity, recipient } = generateX25519Identity();
  assert.match(recipient, /^age1[02-9ac-hj-np-z]{58}$/);
  assert.match(identity, /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/);
  const id = new X25519Identity(identity);
  assert.equal(id.toString(), identity);
  assert.equal(id.recipient.toString(), recipient);
  assert.throws(() => parseRecipient(recipient.toUpperCase()), code('AGE_INVALID_RECIPIENT'));
  assert.throws(() => parseIdentity(identity.toLowerCase()), code('AGE_INVALID_IDENTITY'));
  // One character changed (to another one: the key is random) breaks the bech32 checksum.
  const changed = recipient.slice(0, -1) + (recipient.endsWith('q') ? 'p' : 'q');
  assert.throws(() => parseRecipient(changed), code('AGE_INVALID_RECIPIENT'));
  assert.throws(() => parseRecipient('ssh-ed25519 AAAA'), code('AGE_INVALID_RECIPIENT'));
  assert.throws(() => parseRecipient(42 as never), code('AGE_INVALID_RECIPIENT'));
  assert.throws(() => new X25519Recipient(new Uint8Array(31)), code('AGE_INVALID_RECIPIENT'));
  const bad = identity.slice(0, -1) + (identity.endsWith('Q') ? 'P' : 'Q');
  try {
    parseIdentityFile(`# comment\n\n${identity}\n${bad}\n`);
    assert.fail('expected a throw');
  } catch (e) {
    assert.ok(isFerryError(e, 'AGE_INVALID_IDENTITY'));
    assert.match(e.message, /line 4/);
    assert.ok(!JSON.stringify(e.toJSON()).includes(bad.slice(16)), 'no secret in the error');
  }
  assert.equal(parseIdentityFile(`# created\r\n${identity}\r\n`).length, 1);
  assert.equal(parseRecipientsFile(`${recipient}\n# x\n${recipient}\n`).length, 2);
  assert.throws(() => parseIdentityFile('# nothing\n'), code('AGE_INVALID_IDENTITY'));
  // BIP 173 test vector.
  const d = bech32Decode('A12UEL5L');
  assert.deepEqual(d, { hrp: 'A', data: new Uint8Array(0) });
  assert.equal(bech32Encode('a', new Uint8Array(0)), 'a12uel5l');
  assert.equal(bech32Decode('A12uEL5L'), null);
});

test('API boundaries validate their arguments', async () => {
  const { recipient } = generateX25519Identity();
  await assert.rejects(encrypt([], new Uint8Array(1)), code('INVALID_ARGUMENT'));
  await assert.rejects(encrypt([{} as never], new Uint8Array(1)), code('INVALID_ARGUMENT'));
  await assert.rejects(encrypt([parseRecipient(recipient)], 'text' as never), code('INVALID_ARGUMENT'));
  await assert.rejects(decrypt([], new Uint8Array(1)), code('INVALID_ARGUMENT'));
  await assert.rejects(
    decrypt([new FileKeyIdentity(new Uint8Array(16))], null as never),
    code('INVALID_ARGUMENT'),
  );
  assert.throws(() => createDecryptStream(null as never), code('INVALID_ARGUMENT'));
  assert.throws(() => new ScryptIdentity(''), code('AGE_INVALID_IDENTITY'));
});

test('armor: encode/decode round trip, strictness, CRLF and surrounding whitespace', () => {
  const bin = randomBytes(1000);
  const a = armor(bin);
  const lines = a.trimEnd().split('\n');
  assert.ok(lines.slice(1, -2).every((l) => l.length === 64));
  assert.deepEqual(Buffer.from(dearmor(a)), bin);
  assert.deepEqual(Buffer.from(dearmor(`\n \t${a.replaceAll('\n', '\r\n')}  \n`)), bin);
  assert.throws(() => dearmor(a.replace('\n', '\nComment: x\n')), code('AGE_ARMOR_INVALID'));
  assert.throws(() => dearmor(a.slice(0, -1) + 'x'), code('AGE_ARMOR_INVALID'));
  assert.throws(() => dearmor(lines.slice(0, -1).join('\n')), code('AGE_ARMOR_INVALID'));
});

test('a 64 MiB stream decrypts with bounded buffering', async () => {
  const { identity, recipient } = generateX25519Identity();
  const n = 64 * 1024 * 1024;
  const block = randomBytes(1 << 20);
  const h = createHash('sha256');
  async function* src() {
    for (let i = 0; i < n / block.length; i++) {
      h.update(block);
      yield block;
    }
  }
  const enc = createEncryptStream([parseRecipient(recipient)]);
  const dec = createDecryptStream([parseIdentity(identity)]);
  const h2 = createHash('sha256');
  let total = 0;
  let peak = 0;
  await pipeline(
    Readable.from(src()),
    enc,
    dec,
    new Writable({
      write(c, _e, cb) {
        h2.update(c);
        total += c.length;
        const buffered = enc.readableLength + enc.writableLength + dec.readableLength + dec.writableLength;
        peak = Math.max(peak, buffered);
        cb();
      },
    }),
  );
  assert.equal(total, n);
  assert.equal(h2.digest('hex'), h.digest('hex'));
  // The streams hold a few MiB at most, far below the 64 MiB a buffering implementation would.
  assert.ok(peak < 8 * 1024 * 1024, `streams buffered ${peak} bytes`);
});

test('hybrid ML-KEM-768 + X25519: round trip, key encodings, mixed with X25519 recipients', async () => {
  const id = new HybridIdentity(new Uint8Array(randomBytes(32)));
  const recipient = id.recipient.toString();
  assert.match(recipient, /^age1pq1[02-9ac-hj-np-z]+$/);
  assert.match(id.toString(), /^AGE-SECRET-KEY-PQ-1[02-9AC-HJ-NP-Z]{58}$/);
  const back = parseIdentity(id.toString());
  assert.ok(back instanceof HybridIdentity);
  const x = generateX25519Identity();
  const pt = randomBytes(70_000);
  const ct = await encrypt([parseRecipient(recipient), parseRecipient(x.recipient)], pt);
  assert.deepEqual(Buffer.from(await decrypt([back], ct)), pt);
  assert.deepEqual(Buffer.from(await decrypt([parseIdentity(x.identity)], ct)), pt);
  const stranger = new HybridIdentity(new Uint8Array(randomBytes(32)));
  await assert.rejects(decrypt([stranger], ct), code('AGE_NO_MATCH'));
  // One character changed (to another one: the key is random) breaks the bech32 checksum.
  const changed = recipient.slice(0, -1) + (recipient.endsWith('q') ? 'p' : 'q');
  assert.throws(() => parseRecipient(changed), code('AGE_INVALID_RECIPIENT'));
  assert.throws(() => new HybridIdentity(new Uint8Array(31)), code('AGE_INVALID_IDENTITY'));
});
