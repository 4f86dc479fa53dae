import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isFerryError, toHex } from '../../kernel/index.ts';
import {
  parseQuoteAttest,
  parseSignature,
  parseTpm2bPublic,
  parseTpmtPublic,
  selectBitsToIndices,
  TPM_ALG,
  TPMA_OBJECT,
} from './structures.ts';

const V = join(import.meta.dirname, '../../../test/vectors/tpm2');
const read = (p: string) => new Uint8Array(readFileSync(join(V, p)));
const SETS = ['rsa-sha256', 'ecc-sha256', 'rsapss-sha256', 'rsa-sha384-sha1bank'];
const malformed = (e: unknown) => isFerryError(e, 'ATTESTATION_MALFORMED');

describe('TPMS_ATTEST', () => {
  for (const s of SETS) {
    test(`${s}: parses the quote tpm2_quote -m wrote`, () => {
      const q = parseQuoteAttest(read(`${s}/quote.msg`));
      assert.equal(q.magic, 0xff544347);
      assert.equal(q.type, 0x8018);
      assert.equal(toHex(q.extraData), readFileSync(join(V, 'nonce.hex'), 'utf8').trim());
      // selection.txt is the -l argument: the parsed selection must say the same.
      const sel = q.pcrSelect.map((x) => `${x.bank}:${x.pcrs.join(',')}`).join('+');
      assert.equal(sel, readFileSync(join(V, s, 'selection.txt'), 'utf8').trim());
      assert.equal(q.qualifiedSigner.length, 34);
      assert.equal(q.pcrDigest.length, s.includes('sha384') ? 48 : 32);
      assert.equal(q.clockInfo.safe, true);
    });
  }
  test('rejects bad magic, wrong type, truncation and trailing bytes', () => {
    const q = read('rsa-sha256/quote.msg');
    const bad = q.slice();
    bad[0] ^= 1;
    assert.throws(() => parseQuoteAttest(bad), malformed);
    const t = q.slice();
    t[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
    assert.throws(() => parseQuoteAttest(t), /not a quote/);
    for (const n of [0, 3, 6, 40, q.length - 1])
      assert.throws(() => parseQuoteAttest(q.slice(0, n)), malformed);
    assert.throws(() => parseQuoteAttest(new Uint8Array([...q, 0])), /trailing/);
    assert.throws(
      () => parseQuoteAttest('x' as unknown as Uint8Array),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
    );
  });
});

describe('TPMT_SIGNATURE', () => {
  test('RSASSA, RSAPSS and ECDSA with their hashes', () => {
    const a = parseSignature(read('rsa-sha256/quote.sig'));
    assert.equal(a.sigAlg, TPM_ALG.RSASSA);
    assert.equal(a.hash, 'sha256');
    assert.ok('sig' in a && a.sig.length === 256);
    assert.equal(parseSignature(read('rsapss-sha256/quote.sig')).sigAlg, TPM_ALG.RSAPSS);
    assert.equal(parseSignature(read('rsa-sha384-sha1bank/quote.sig')).hash, 'sha384');
    const e = parseSignature(read('ecc-sha256/quote.sig'));
    assert.equal(e.sigAlg, TPM_ALG.ECDSA);
    assert.ok('r' in e && e.r.length <= 32 && e.s.length <= 32);
  });
  test('rejects unknown schemes, hashes and bad lengths', () => {
    const s = read('rsa-sha256/quote.sig');
    const hmac = s.slice();
    hmac[1] = 0x05;
    assert.throws(() => parseSignature(hmac), /unsupported signature scheme/);
    const h = s.slice();
    h[3] = 0x12; // SM3
    assert.throws(() => parseSignature(h), /unsupported hash/);
    assert.throws(() => parseSignature(s.slice(0, 100)), malformed);
    assert.throws(() => parseSignature(new Uint8Array([...s, 1])), malformed);
  });
});

describe('TPMT_PUBLIC / TPM2B_PUBLIC', () => {
  for (const s of SETS) {
    test(`${s}: key equals tpm2_readpublic -f pem, name equals tpm2_createak -n`, () => {
      const p = parseTpm2bPublic(read(`${s}/ak.tpm2b`));
      const pem = createPublicKey(readFileSync(join(V, s, 'ak.pem')));
      assert.deepEqual(
        p.key.export({ format: 'der', type: 'spki' }),
        pem.export({ format: 'der', type: 'spki' }),
      );
      assert.equal(toHex(p.name), toHex(read(`${s}/ak.name`)));
      const need = TPMA_OBJECT.restricted | TPMA_OBJECT.sign | TPMA_OBJECT.fixedTPM;
      assert.equal(p.objectAttributes & need, need);
      assert.equal(p.type, s.startsWith('ecc') ? TPM_ALG.ECC : TPM_ALG.RSA);
      // The same structure without its size prefix parses as TPMT_PUBLIC to the same name.
      const t = parseTpmtPublic(read(`${s}/ak.tpm2b`).slice(2));
      assert.equal(toHex(t.name), toHex(p.name));
      assert.equal(toHex(t.name.slice(2)), createHash('sha256').update(t.raw).digest('hex'));
    });
  }
  test('rejects truncation, trailing bytes and unsupported types', () => {
    const b = read('ecc-sha256/ak.tpm2b');
    assert.throws(() => parseTpm2bPublic(b.slice(0, b.length - 1)), malformed);
    assert.throws(() => parseTpmtPublic(new Uint8Array([...b.slice(2), 0])), /trailing/);
    const k = b.slice(2);
    k[1] = 0x08; // KEYEDHASH
    assert.throws(() => parseTpmtPublic(k), /unsupported key type/);
    const c = read('ecc-sha256/ak.tpm2b').slice(2);
    // Flip a bit of the point's x: no longer on the curve.
    c[c.length - 40] ^= 1;
    assert.throws(() => parseTpmtPublic(c), malformed);
  });
  test('selectBitsToIndices', () => {
    assert.deepEqual(selectBitsToIndices(new Uint8Array([0x01, 0x00, 0x81])), [0, 16, 23]);
    assert.deepEqual(selectBitsToIndices(new Uint8Array([0xff])), [0, 1, 2, 3, 4, 5, 6, 7]);
  });
});
