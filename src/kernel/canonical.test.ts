import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCanonical, decodeTagged, encodeCanonical, encodeTagged, hashTagged } from './canonical.ts';
import { toHex } from './bytes.ts';
import { isFerryError } from './errors.ts';

test('map keys are sorted bytewise by their encoding (RFC 8949 4.2.1)', () => {
  // "b" (0x61 0x62) sorts before "aa" (0x62 0x61 0x61) because the length prefix differs.
  assert.equal(toHex(encodeCanonical({ aa: 1, b: 2 })), 'a2616202626161' + '01');
});

test('RFC 8949 Appendix A examples in preferred serialization', () => {
  assert.equal(toHex(encodeCanonical(0)), '00');
  assert.equal(toHex(encodeCanonical(23)), '17');
  assert.equal(toHex(encodeCanonical(24)), '1818');
  assert.equal(toHex(encodeCanonical(1000000)), '1a000f4240');
  assert.equal(toHex(encodeCanonical(1000000000000)), '1b000000e8d4a51000');
  assert.equal(toHex(encodeCanonical(18446744073709551615n)), '1bffffffffffffffff');
  assert.equal(toHex(encodeCanonical(-1000)), '3903e7');
  assert.equal(toHex(encodeCanonical('IETF')), '6449455446');
  assert.equal(toHex(encodeCanonical(new Uint8Array([1, 2, 3, 4]))), '4401020304');
  assert.equal(toHex(encodeCanonical([1, [2, 3], [4, 5]])), '8301820203820405');
  assert.equal(toHex(encodeCanonical({ a: 1, b: [2, 3] })), 'a26161016162820203');
  assert.equal(toHex(encodeCanonical(false)), 'f4');
  assert.equal(toHex(encodeCanonical(null)), 'f6');
});

test('refuses floats, undefined and non-plain objects', () => {
  for (const bad of [1.5, Number.NaN, 2 ** 60, { x: undefined }, new Map(), new Date(0)]) {
    assert.throws(
      () => encodeCanonical(bad as never),
      (e) => isFerryError(e, 'CBOR_UNSUPPORTED_TYPE'),
    );
  }
});

test('decode rejects non-canonical encodings', () => {
  // 0x18 0x01 is a non-preferred encoding of 1.
  assert.throws(
    () => decodeCanonical(Uint8Array.from([0x18, 0x01])),
    (e) => isFerryError(e) && /CBOR_/.test(e.code),
  );
  // Unsorted map {"b":1,"a":2}.
  assert.throws(
    () => decodeCanonical(Uint8Array.from([0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02])),
    (e) => isFerryError(e, 'CBOR_NOT_CANONICAL'),
  );
  // Truncated.
  assert.throws(
    () => decodeCanonical(Uint8Array.from([0x82, 0x01])),
    (e) => isFerryError(e, 'CBOR_MALFORMED'),
  );
  // Indefinite-length array.
  assert.throws(
    () => decodeCanonical(Uint8Array.from([0x9f, 0x01, 0xff])),
    (e) => isFerryError(e) && /CBOR_/.test(e.code),
  );
});

test('tagged objects round-trip and check their domain', () => {
  const body = { task: 7n, hash: new Uint8Array(32).fill(9), ok: true };
  const bytes = encodeTagged('ferry/test/v1', body);
  const back = decodeTagged('ferry/test/v1', bytes) as Record<string, unknown>;
  assert.equal(back.ok, true);
  assert.deepEqual(back.hash, body.hash);
  assert.throws(
    () => decodeTagged('ferry/other/v1', bytes),
    (e) => isFerryError(e, 'CBOR_WRONG_DOMAIN'),
  );
  assert.notEqual(toHex(hashTagged('ferry/test/v1', body)), toHex(hashTagged('ferry/other/v1', body)));
  assert.throws(
    () => encodeTagged('Bad Tag', body),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
});
