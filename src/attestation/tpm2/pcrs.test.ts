import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isFerryError, toHex } from '../../kernel/index.ts';
import {
  computePcrDigest,
  extendPcr,
  parsePcrValues,
  parseSelection,
  pcrValuesFromJson,
  pcrValuesFromSerialized,
  pcrValuesToJson,
  selectionToString,
} from './pcrs.ts';
import { parseQuoteAttest, parseSignature } from './structures.ts';

const V = join(import.meta.dirname, '../../../test/vectors/tpm2');
const read = (p: string) => new Uint8Array(readFileSync(join(V, p)));
const SETS = ['rsa-sha256', 'ecc-sha256', 'rsapss-sha256', 'rsa-sha384-sha1bank'];

describe('PCR values', () => {
  for (const s of SETS) {
    test(`${s}: serialized (tpm2_quote -o) equals JSON (tpm2_pcrread), and digests to the quote's pcrDigest`, () => {
      const bin = pcrValuesFromSerialized(read(`${s}/pcrs.bin`));
      const json = pcrValuesFromJson(readFileSync(join(V, s, 'pcrs.json'), 'utf8'));
      assert.deepEqual(pcrValuesToJson(bin), pcrValuesToJson(json));
      assert.deepEqual(pcrValuesToJson(parsePcrValues(read(`${s}/pcrs.json`))), pcrValuesToJson(json));
      const q = parseQuoteAttest(read(`${s}/quote.msg`));
      const sig = parseSignature(read(`${s}/quote.sig`));
      assert.equal(toHex(computePcrDigest(q.pcrSelect, bin, sig.hash)), toHex(q.pcrDigest));
    });
  }
  test('the digest uses the signing hash, not the bank hash (SHA-384 over a SHA-1 bank)', () => {
    const s = 'rsa-sha384-sha1bank';
    const q = parseQuoteAttest(read(`${s}/quote.msg`));
    const v = pcrValuesFromSerialized(read(`${s}/pcrs.bin`));
    assert.notEqual(toHex(computePcrDigest(q.pcrSelect, v, 'sha1')), toHex(q.pcrDigest));
    const h = createHash('sha384');
    for (const i of q.pcrSelect[0].pcrs) h.update(v.get('sha1')?.get(i) as Uint8Array);
    assert.equal(h.digest('hex'), toHex(q.pcrDigest));
  });
  test('PCR 23 holds the extend of H("runtime") from zero, in every bank', () => {
    const v = pcrValuesFromSerialized(read('rsa-sha256/pcrs.bin'));
    for (const bank of ['sha1', 'sha256', 'sha384'] as const) {
      const size = createHash(bank).digest().length;
      const m = new Uint8Array(createHash(bank).update('runtime').digest());
      assert.equal(
        toHex(v.get(bank)?.get(23) as Uint8Array),
        toHex(extendPcr(bank, new Uint8Array(size), m)),
      );
    }
  });
  test('a missing or changed PCR value changes or refuses the digest', () => {
    const q = parseQuoteAttest(read('ecc-sha256/quote.msg'));
    const v = pcrValuesFromSerialized(read('ecc-sha256/pcrs.bin'));
    v.get('sha256')?.delete(16);
    assert.throws(
      () => computePcrDigest(q.pcrSelect, v, 'sha256'),
      (e) => isFerryError(e, 'ATTESTATION_PCR_MISMATCH'),
    );
    const w = pcrValuesFromSerialized(read('ecc-sha256/pcrs.bin'));
    (w.get('sha256')?.get(0) as Uint8Array)[0] ^= 1;
    assert.notEqual(toHex(computePcrDigest(q.pcrSelect, w, 'sha256')), toHex(q.pcrDigest));
  });
  test('malformed inputs are refused with ATTESTATION_MALFORMED', () => {
    const m = (e: unknown) => isFerryError(e, 'ATTESTATION_MALFORMED');
    const bin = read('ecc-sha256/pcrs.bin');
    assert.throws(() => pcrValuesFromSerialized(bin.slice(0, bin.length - 1)), m);
    assert.throws(() => pcrValuesFromSerialized(new Uint8Array(10)), m);
    const badCount = bin.slice();
    badCount[0] = 17;
    assert.throws(() => pcrValuesFromSerialized(badCount), m);
    assert.throws(() => pcrValuesFromJson('{"md5": {}}'), m);
    assert.throws(() => pcrValuesFromJson('{"sha256": {"0": "00"}}'), m);
    assert.throws(() => pcrValuesFromJson('{"sha256": {"x": "00"}}'), m);
    assert.throws(() => pcrValuesFromJson('[1]'), m);
    assert.throws(() => pcrValuesFromJson('{'), m);
  });
  test('selection strings round-trip', () => {
    const s = parseSelection('sha256:23,0,1+sha1:0');
    assert.equal(selectionToString(s), 'sha256:0,1,23+sha1:0');
    assert.throws(
      () => parseSelection('md5:0'),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
    );
    assert.throws(
      () => parseSelection('sha256:24'),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
    );
  });
});
