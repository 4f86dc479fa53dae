// Fuzz: age header, armor, whole-file and chunked decryption, and recipient / identity parsing
// (issue 13 item 5). Seeds: every CCTV vector (the cctv-age package and test/vectors/age) and
// keys built here. Every failure must be a coded FerryError (AGE_*), never a library error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inflateSync } from 'node:zlib';
import * as cctv from 'cctv-age';
import {
  assertExercised,
  byteMutations,
  fuzz,
  fuzzAsync,
  latin1,
  mutate,
  type Rng,
  summary,
} from '../../../test/helpers/fuzz.ts';
import { bech32Encode } from './bech32.ts';
import { dearmor } from './armor.ts';
import { Decryptor, decrypt } from './decrypt.ts';
import { encrypt } from './encrypt.ts';
import { HeaderParser, parseHeader } from './format.ts';
import { type Identity, parseIdentity, parseRecipient, ScryptIdentity } from './index.ts';

type Vec = { file: Uint8Array; armored: boolean; identities: string[]; passphrases: string[] };

function parseVector(raw: Uint8Array): Vec {
  const buf = Buffer.from(raw);
  const sep = buf.indexOf('\n\n');
  const v: Vec = {
    file: new Uint8Array(buf.subarray(sep + 2)),
    armored: false,
    identities: [],
    passphrases: [],
  };
  let compressed = false;
  for (const line of buf.subarray(0, sep).toString('utf8').split('\n')) {
    const [k, val = ''] = [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)];
    if (k === 'identity') v.identities.push(val);
    else if (k === 'passphrase') v.passphrases.push(val);
    else if (k === 'armored') v.armored = val === 'yes';
    else if (k === 'compressed') compressed = val === 'zlib';
  }
  if (compressed) v.file = new Uint8Array(inflateSync(v.file));
  return v;
}

// The three 16 MiB stream vectors are left out: they add nothing a mutator reaches in time.
const vectors = Object.values(cctv as unknown as Record<string, unknown>)
  .filter((b): b is Uint8Array => b instanceof Uint8Array)
  .map(parseVector)
  .filter((v) => v.file.length <= 256 * 1024);
/** A header-parser seed: the header and the first bytes after it (or the first 4 KiB). */
function headPart(f: Uint8Array): Uint8Array {
  try {
    return f.slice(0, parseHeader(f).header.size + 32);
  } catch {
    return f.slice(0, 4096);
  }
}
const binaries = vectors.filter((v) => !v.armored).map((v) => headPart(v.file));
const armored = vectors.filter((v) => v.armored).map((v) => v.file);
/** A vector's own identities (scrypt with a small work-factor limit, so mutations stay cheap). */
function identitiesOf(v: Vec): Identity[] {
  const ids: Identity[] = v.identities.map((s) => parseIdentity(s));
  for (const p of v.passphrases) ids.push(new ScryptIdentity(p, { maxWorkFactor: 10 }));
  if (ids.length === 0)
    ids.push(parseIdentity(vectors.find((w) => w.identities.length)?.identities[0] as string));
  return ids;
}
const decryptSeeds = vectors.map((v) => ({ file: v.file, ids: identitiesOf(v) }));

test('fuzz parseHeader: CCTV files, byte mutations', (t) => {
  const stats = fuzz('parseHeader', { seed: 0xa9e1, iterations: 4000, seeds: binaries }, (b) =>
    parseHeader(b),
  );
  assertExercised('parseHeader', stats);
  t.diagnostic(summary(stats));
});

test('fuzz HeaderParser: mutated files pushed in random pieces', (t) => {
  const stats = fuzz(
    'HeaderParser',
    {
      seed: 0x5b11,
      iterations: 2000,
      seeds: binaries.map((f) => ({ f, cuts: [] as number[] })),
      generate: (rng: Rng, s: readonly { f: Uint8Array; cuts: number[] }[]) => {
        const f = byteMutations(
          rng,
          s.map((x) => x.f),
        );
        const cuts = Array.from({ length: rng.below(6) }, () => rng.below(f.length + 1)).sort(
          (a, b) => a - b,
        );
        return { f, cuts };
      },
    },
    ({ f, cuts }) => {
      const p = new HeaderParser();
      let prev = 0;
      for (const c of [...cuts, f.length]) {
        if (p.push(f.subarray(prev, c)) !== null) return;
        prev = c;
      }
    },
  );
  assertExercised('HeaderParser', stats);
  t.diagnostic(summary(stats));
});

test('fuzz dearmor: armored CCTV files as text, byte mutations', (t) => {
  const stats = fuzz('dearmor', { seed: 0xa4a0, iterations: 3000, seeds: armored }, (b) => {
    dearmor(latin1(b));
    return dearmor(b);
  });
  assertExercised('dearmor', stats);
  t.diagnostic(summary(stats));
});

test('fuzz decrypt and the chunked Decryptor: every CCTV file with its own identities', async (t) => {
  const stats = await fuzzAsync(
    'decrypt',
    {
      seed: 0xdec0,
      iterations: 800,
      seeds: decryptSeeds,
      generate: (rng: Rng, s: readonly { file: Uint8Array; ids: Identity[] }[]) => {
        const seed = rng.pick(s);
        let file = seed.file;
        for (let k = 0, n = 1 + rng.below(3); k < n; k++) file = mutate(rng, file, binaries);
        return { file, ids: seed.ids };
      },
    },
    async ({ file, ids }) => {
      let first: unknown = null;
      try {
        await decrypt(ids, file);
      } catch (e) {
        first = e;
      }
      // The same bytes in 1..97-byte pieces through the incremental Decryptor.
      const d = new Decryptor(ids, () => {});
      const piece = 1 + (file.length % 97);
      for (let o = 0; o < file.length; o += piece) await d.write(file.subarray(o, o + piece));
      await d.end();
      if (first !== null) throw first;
    },
  );
  assertExercised('decrypt', stats);
  t.diagnostic(summary(stats));
});

// Bech32 strings with valid checksums and random payloads (lengths around the real ones, and
// low-order X25519 points), then encrypting to whatever parses.
const LOW_ORDER_X25519 = [
  new Uint8Array(32),
  Uint8Array.from([1, ...new Uint8Array(31)]),
  Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'),
  Buffer.from('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', 'hex'),
  Buffer.from('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex'),
];
function keyString(rng: Rng): string {
  const kind = rng.below(4);
  const hrp = ['age', 'age1pq', 'AGE-SECRET-KEY-', 'AGE-SECRET-KEY-PQ-'][kind] as string;
  const size = kind === 1 ? rng.pick([1216, 1215, 1217, 0]) : rng.pick([32, 31, 33, 0, 64]);
  let data = rng.bytes(size);
  if (size === 32 && kind === 0 && rng.below(2) === 0) data = rng.pick(LOW_ORDER_X25519);
  if (size === 1216 && rng.below(2) === 0) {
    data = new Uint8Array(1216).fill(rng.pick([0, 0xff]));
    if (rng.below(2) === 0) data.set(rng.pick(LOW_ORDER_X25519), 1184);
  }
  const s = bech32Encode(hrp, data, kind >= 2);
  if (rng.below(4) !== 0) return s;
  const b = byteMutations(rng, [new TextEncoder().encode(s)]);
  return latin1(b);
}

test('fuzz parseRecipient / parseIdentity, then encrypting to the recipient', async (t) => {
  const stats = await fuzzAsync(
    'recipients',
    {
      seed: 0x4ec1,
      iterations: 300,
      seeds: ['age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq5cu47z'],
      generate: keyString,
    },
    async (s) => {
      if (s.startsWith('AGE-')) return parseIdentity(s);
      return encrypt([parseRecipient(s)], new Uint8Array(1));
    },
  );
  assertExercised('recipients', stats);
  t.diagnostic(summary(stats));
});

// The fuzz report's finding 5, as fixed reproducers: an attacker hands out a recipient string
// that parses but cannot be encrypted to safely.
test('encrypting to a low-order or unreduced recipient fails with a coded error', async () => {
  const zeros = 'age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq5cu47z';
  await assert.rejects(encrypt([parseRecipient(zeros)], new Uint8Array(1)), { code: 'AGE_X25519_LOW_ORDER' });
  for (const low of LOW_ORDER_X25519) {
    await assert.rejects(encrypt([parseRecipient(bech32Encode('age', low))], new Uint8Array(1)), {
      code: 'AGE_X25519_LOW_ORDER',
    });
  }
  // Hybrid: a reduced ML-KEM key with a low-order X25519 part.
  const hybridZero = bech32Encode('age1pq', new Uint8Array(1216));
  await assert.rejects(encrypt([parseRecipient(hybridZero)], new Uint8Array(1)), {
    code: 'AGE_X25519_LOW_ORDER',
  });
  // Hybrid: ML-KEM coefficients above q are refused when the recipient is parsed.
  assert.throws(() => parseRecipient(bech32Encode('age1pq', new Uint8Array(1216).fill(0xff))), {
    code: 'AGE_INVALID_RECIPIENT',
  });
  const oneHigh = new Uint8Array(1216);
  oneHigh.set([0x01, 0x0d], 300); // coefficient 200 = 0xd01 = 3329 = q
  oneHigh[1190] = 9; // a non-zero X25519 part
  assert.throws(() => parseRecipient(bech32Encode('age1pq', oneHigh)), { code: 'AGE_INVALID_RECIPIENT' });
  oneHigh.set([0x00, 0x0d], 300); // 3328 = q - 1: in range
  assert.ok(parseRecipient(bech32Encode('age1pq', oneHigh)));
});
