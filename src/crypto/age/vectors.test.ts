/**
 * Every C2SP CCTV age vector (the workspace subset in test/vectors/age and the full set from
 * the `cctv-age` npm package) through every decryption path: whole buffer, the Transform fed
 * in one write, the Transform fed in odd-sized pieces, and the Decryptor byte by byte (for
 * files up to 8 KiB). Each expected failure kind maps to its own family of error codes, and
 * the SHA-256 of all plaintext released must equal the vector's `payload`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { inflateSync } from 'node:zlib';
import * as cctv from 'cctv-age';
import { isFerryError } from '../../kernel/index.ts';
import {
  createDecryptStream,
  Decryptor,
  decrypt,
  encodeHeader,
  generateX25519Identity,
  type Identity,
  parseHeader,
  parseIdentity,
  ScryptIdentity,
} from './index.ts';
import { encodeHeaderNoMac } from './format.ts';

type Vector = {
  name: string;
  expect: string;
  payload?: string;
  identities: string[];
  passphrases: string[];
  armored: boolean;
  fileKey?: string;
  file: Uint8Array;
};

function parseVector(name: string, raw: Uint8Array): Vector {
  const buf = Buffer.from(raw);
  const sep = buf.indexOf('\n\n');
  const head = buf.subarray(0, sep).toString('utf8');
  let file: Uint8Array = new Uint8Array(buf.subarray(sep + 2));
  const v: Vector = { name, expect: '', identities: [], passphrases: [], armored: false, file };
  let compressed = false;
  for (const line of head.split('\n')) {
    const i = line.indexOf(': ');
    const k = line.slice(0, i);
    const val = line.slice(i + 2);
    if (k === 'expect') v.expect = val;
    else if (k === 'payload') v.payload = val;
    else if (k === 'identity') v.identities.push(val);
    else if (k === 'passphrase') v.passphrases.push(val);
    else if (k === 'armored') v.armored = val === 'yes';
    else if (k === 'compressed') compressed = val === 'zlib';
    else if (k === 'file key') v.fileKey = val;
  }
  if (compressed) file = new Uint8Array(inflateSync(file));
  v.file = file;
  return v;
}

/** Error codes allowed for each CCTV failure kind; the families are disjoint. */
const FAMILY: Record<string, string[]> = {
  'no match': ['AGE_NO_MATCH'],
  'HMAC failure': ['AGE_HMAC_INVALID'],
  'header failure': [
    'AGE_HEADER_INVALID',
    'AGE_VERSION_UNSUPPORTED',
    'AGE_STANZA_INVALID',
    'AGE_X25519_LOW_ORDER',
    'AGE_SCRYPT_WORK_FACTOR',
    'AGE_SCRYPT_NOT_ALONE',
  ],
  'payload failure': ['AGE_PAYLOAD_INVALID', 'AGE_PAYLOAD_TRUNCATED'],
  'armor failure': ['AGE_ARMOR_INVALID'],
};

function identitiesFor(v: Vector): Identity[] {
  const ids: Identity[] = v.identities.map((s) => parseIdentity(s));
  for (const p of v.passphrases) ids.push(new ScryptIdentity(p));
  // Vectors without keys still need one identity (the API refuses an empty list).
  if (ids.length === 0) ids.push(parseIdentity(generateX25519Identity().identity));
  return ids;
}

type Outcome = { code: string | null; released: Buffer };

async function runWhole(ids: Identity[], file: Uint8Array): Promise<Outcome> {
  try {
    const pt = await decrypt(ids, file);
    return { code: null, released: Buffer.from(pt) };
  } catch (e) {
    if (!isFerryError(e)) throw e;
    // The whole-buffer API releases nothing on failure.
    return { code: e.code, released: Buffer.alloc(0) };
  }
}

async function runStream(ids: Identity[], file: Uint8Array, piece: number): Promise<Outcome> {
  const s = createDecryptStream(ids);
  const out: Buffer[] = [];
  s.on('data', (b: Buffer) => out.push(b));
  const done = new Promise<string | null>((resolve) => {
    s.on('end', () => resolve(null));
    s.on('error', (e) => resolve(isFerryError(e) ? e.code : `NOT_FERRY: ${e}`));
  });
  for (let o = 0; o < file.length; o += piece) {
    if (s.destroyed) break;
    s.write(file.subarray(o, o + piece));
  }
  if (!s.destroyed) s.end();
  const code = await done;
  return { code, released: Buffer.concat(out) };
}

async function runBytewise(ids: Identity[], file: Uint8Array): Promise<Outcome> {
  const out: Buffer[] = [];
  const d = new Decryptor(ids, (p) => out.push(Buffer.from(p)));
  try {
    for (let i = 0; i < file.length; i++) await d.write(file.subarray(i, i + 1));
    await d.end();
    return { code: null, released: Buffer.concat(out) };
  } catch (e) {
    if (!isFerryError(e)) throw e;
    return { code: e.code, released: Buffer.concat(out) };
  }
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const EMPTY_SHA256 = sha256(new Uint8Array(0));

function check(v: Vector, path: string, o: Outcome): void {
  const where = `${v.name} [${path}]`;
  if (v.expect === 'success') {
    assert.equal(o.code, null, `${where}: expected success, got ${o.code}`);
    assert.equal(sha256(o.released), v.payload, `${where}: payload hash`);
    return;
  }
  const family = FAMILY[v.expect];
  assert.ok(family, `${where}: unknown expect ${v.expect}`);
  assert.ok(o.code !== null && family.includes(o.code), `${where}: expected ${v.expect}, got ${o.code}`);
  if (path === 'whole') {
    assert.equal(o.released.length, 0);
  } else if (v.payload !== undefined) {
    assert.equal(sha256(o.released), v.payload, `${where}: released plaintext hash`);
  } else if (v.expect !== 'payload failure') {
    assert.equal(sha256(o.released), EMPTY_SHA256, `${where}: nothing may be released`);
  }
}

async function runVector(v: Vector): Promise<void> {
  const ids = identitiesFor(v);
  check(v, 'whole', await runWhole(ids, v.file));
  check(v, 'stream-1', await runStream(ids, v.file, v.file.length || 1));
  check(v, 'stream-4093', await runStream(ids, v.file, 4093));
  check(v, 'stream-65553', await runStream(ids, v.file, 65553));
  if (v.file.length <= 8192) check(v, 'bytewise', await runBytewise(ids, v.file));
  // Header round trip: every vector whose header parses re-encodes to the same bytes.
  if (!v.armored && v.expect !== 'header failure') {
    const { header } = parseHeader(v.file);
    const noMac = encodeHeaderNoMac(header.stanzas);
    assert.deepEqual(Buffer.from(noMac), Buffer.from(header.headerNoMac), `${v.name}: header re-encoding`);
    if (v.fileKey && v.expect !== 'HMAC failure') {
      const again = encodeHeader(header.stanzas, Buffer.from(v.fileKey, 'hex'));
      assert.deepEqual(Buffer.from(again), Buffer.from(v.file.subarray(0, header.size)));
    }
  }
}

const localDir = join(import.meta.dirname, '../../../test/vectors/age');
const local = readdirSync(localDir)
  .filter((f) => f !== 'README.md')
  .map((f) => parseVector(f, readFileSync(join(localDir, f))));
const full = Object.entries(cctv as unknown as Record<string, Uint8Array>)
  .filter(([, b]) => b instanceof Uint8Array)
  .map(([name, b]) => parseVector(name, b));

test('the vector sets are complete', () => {
  assert.equal(local.length, 16);
  assert.equal(full.length, 143);
  // The workspace subset is byte-identical to the same-named CCTV vectors.
  for (const v of local) {
    const twin = full.find((f) => f.name === v.name);
    assert.ok(twin, v.name);
    assert.deepEqual(Buffer.from(twin.file), Buffer.from(v.file));
  }
});

for (const [set, vectors] of [
  ['workspace', local],
  ['cctv', full],
] as const) {
  for (const v of vectors) {
    test(`${set} ${v.name} (${v.expect})`, async () => {
      await runVector(v);
    });
  }
}
