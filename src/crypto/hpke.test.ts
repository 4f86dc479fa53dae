import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import { CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { fromHex, isFerryError, toHex } from '../kernel/index.ts';
import {
  createRecipientContext,
  createSenderContext,
  hpkeDeriveKeyPair,
  hpkeGenerateKeyPair,
  hpkeOpen,
  hpkePublicKey,
  hpkeSeal,
  kemDecap,
  kemEncapUnsafe,
  keyScheduleBase,
} from './hpke.ts';

type Vector = {
  setup: Record<string, string | number>;
  encryptions: { 'sequence number': string; pt: string; aad: string; nonce: string; ct: string }[];
  exports: { exporter_context: string; L: string; exported_value: string }[];
};
const V = JSON.parse(
  readFileSync(
    new URL('../../test/vectors/hpke/rfc9180-x25519-sha256-chacha20poly1305-base.json', import.meta.url),
    'utf8',
  ),
) as Vector;
const S = V.setup as Record<string, string>;
const h = (k: string) => fromHex(S[k]);

test('RFC 9180 A.2.1: suite ids are ours', () => {
  assert.deepEqual([V.setup.mode, V.setup.kem_id, V.setup.kdf_id, V.setup.aead_id], [0, 32, 1, 3]);
});

test('RFC 9180 A.2.1: DeriveKeyPair reproduces skEm/pkEm and skRm/pkRm', () => {
  const e = hpkeDeriveKeyPair(h('ikmE'));
  assert.equal(toHex(e.privateKey), S.skEm);
  assert.equal(toHex(e.publicKey), S.pkEm);
  const r = hpkeDeriveKeyPair(h('ikmR'));
  assert.equal(toHex(r.privateKey), S.skRm);
  assert.equal(toHex(r.publicKey), S.pkRm);
  assert.equal(toHex(hpkePublicKey(h('skRm'))), S.pkRm);
});

test('RFC 9180 A.2.1: Encap/Decap and the key schedule', () => {
  const { sharedSecret, enc } = kemEncapUnsafe(h('pkRm'), h('skEm'));
  assert.equal(toHex(enc), S.enc);
  assert.equal(toHex(sharedSecret), S.shared_secret);
  assert.equal(toHex(kemDecap(h('enc'), h('skRm'))), S.shared_secret);
  const ks = keyScheduleBase(sharedSecret, h('info'));
  assert.equal(toHex(ks.key), S.key);
  assert.equal(toHex(ks.baseNonce), S.base_nonce);
  assert.equal(toHex(ks.exporterSecret), S.exporter_secret);
});

test('RFC 9180 A.2.1: all six encryptions, sender and recipient contexts', () => {
  const sender = createSenderContext({
    recipientPublicKey: h('pkRm'),
    info: h('info'),
    ephemeralPrivateKeyUnsafe: h('skEm'),
  });
  const recipient = createRecipientContext({
    recipientPrivateKey: h('skRm'),
    enc: h('enc'),
    info: h('info'),
  });
  assert.equal(toHex(sender.enc), S.enc);
  let checked = 0;
  for (let seq = 0; seq <= 256; seq++) {
    const vec = V.encryptions.find((x) => Number(x['sequence number']) === seq);
    const aad = vec ? fromHex(vec.aad) : new Uint8Array([seq & 0xff]);
    const pt = vec ? fromHex(vec.pt) : new Uint8Array(3);
    assert.equal(sender.seq, seq);
    const ct = sender.seal(pt, aad);
    if (vec) {
      assert.equal(toHex(ct), vec.ct, `seq ${seq}`);
      checked++;
    }
    assert.deepEqual(recipient.open(ct, aad), pt);
  }
  assert.equal(checked, 6);
});

test('RFC 9180 A.2.1: exported values from both sides', () => {
  const sender = createSenderContext({
    recipientPublicKey: h('pkRm'),
    info: h('info'),
    ephemeralPrivateKeyUnsafe: h('skEm'),
  });
  const recipient = createRecipientContext({
    recipientPrivateKey: h('skRm'),
    enc: h('enc'),
    info: h('info'),
  });
  for (const x of V.exports) {
    const ctx = fromHex(x.exporter_context);
    assert.equal(toHex(sender.export(ctx, Number(x.L))), x.exported_value);
    assert.equal(toHex(recipient.export(ctx, Number(x.L))), x.exported_value);
  }
});

test('single-shot seal/open round trip; fresh enc each time', async () => {
  const { privateKey, publicKey } = hpkeGenerateKeyPair();
  assert.equal(privateKey.length, 32);
  assert.deepEqual(hpkePublicKey(privateKey), publicKey);
  const info = new TextEncoder().encode('info');
  for (const len of [0, 1, 32, 1000]) {
    const pt = new Uint8Array(len).map((_, i) => i);
    const a = await hpkeSeal(publicKey, pt, info, Uint8Array.of(1));
    const b = await hpkeSeal(publicKey, pt, info, Uint8Array.of(1));
    assert.notEqual(toHex(a.enc), toHex(b.enc));
    assert.equal(a.ciphertext.length, len + 16);
    assert.deepEqual(await hpkeOpen(privateKey, a.enc, a.ciphertext, info, Uint8Array.of(1)), pt);
  }
});

test('open rejects tampered enc, ciphertext, info, aad and the wrong key', async () => {
  const { privateKey, publicKey } = hpkeGenerateKeyPair();
  const info = Uint8Array.of(1, 2, 3);
  const aad = Uint8Array.of(9);
  const pt = new TextEncoder().encode('file key goes here');
  const { enc, ciphertext } = await hpkeSeal(publicKey, pt, info, aad);
  const flip = (b: Uint8Array, i: number) => {
    const c = Uint8Array.from(b);
    c[i] ^= 1;
    return c;
  };
  const cases: [string, () => Promise<Uint8Array>][] = [
    ['enc', () => hpkeOpen(privateKey, flip(enc, 5), ciphertext, info, aad)],
    ['ciphertext body', () => hpkeOpen(privateKey, enc, flip(ciphertext, 0), info, aad)],
    ['ciphertext tag', () => hpkeOpen(privateKey, enc, flip(ciphertext, ciphertext.length - 1), info, aad)],
    ['truncated', () => hpkeOpen(privateKey, enc, ciphertext.subarray(0, 10), info, aad)],
    ['info', () => hpkeOpen(privateKey, enc, ciphertext, flip(info, 0), aad)],
    ['aad', () => hpkeOpen(privateKey, enc, ciphertext, info, flip(aad, 0))],
    ['missing aad', () => hpkeOpen(privateKey, enc, ciphertext, info)],
    ['wrong key', () => hpkeOpen(hpkeGenerateKeyPair().privateKey, enc, ciphertext, info, aad)],
    ['short enc', () => hpkeOpen(privateKey, enc.subarray(1), ciphertext, info, aad)],
  ];
  for (const [name, fn] of cases) {
    await assert.rejects(fn, (e) => isFerryError(e, 'HPKE_OPEN_FAILED'), name);
  }
});

// Low-order points of Curve25519 (u-coordinates), from the libsodium / cr.yp.to blacklist.
const LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

test('low-order public keys and enc values are refused', async () => {
  const { privateKey } = hpkeGenerateKeyPair();
  for (const hex of LOW_ORDER) {
    await assert.rejects(
      () => hpkeSeal(fromHex(hex), Uint8Array.of(1), new Uint8Array(0)),
      (e) => isFerryError(e, 'HPKE_INVALID_KEY'),
      hex,
    );
    await assert.rejects(
      () => hpkeOpen(privateKey, fromHex(hex), new Uint8Array(17), new Uint8Array(0)),
      (e) => isFerryError(e, 'HPKE_OPEN_FAILED'),
      hex,
    );
  }
});

test('wrong key lengths and types are HPKE_INVALID_KEY; other bad arguments INVALID_ARGUMENT', async () => {
  const { privateKey, publicKey } = hpkeGenerateKeyPair();
  const e0 = new Uint8Array(0);
  for (const bad of [new Uint8Array(31), new Uint8Array(33), 'ab', null]) {
    await assert.rejects(
      () => hpkeSeal(bad as Uint8Array, e0, e0),
      (e) => isFerryError(e, 'HPKE_INVALID_KEY'),
    );
    await assert.rejects(
      () => hpkeOpen(bad as Uint8Array, publicKey, new Uint8Array(16), e0),
      (e) => isFerryError(e, 'HPKE_INVALID_KEY'),
    );
    assert.throws(
      () => hpkePublicKey(bad as Uint8Array),
      (e) => isFerryError(e, 'HPKE_INVALID_KEY'),
    );
  }
  await assert.rejects(
    () => hpkeSeal(publicKey, 'text' as never, e0),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  await assert.rejects(
    () => hpkeSeal(publicKey, e0, null as never),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  assert.throws(
    () => hpkeDeriveKeyPair(new Uint8Array(31)),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  const ctx = createSenderContext({ recipientPublicKey: publicKey, info: e0 });
  assert.throws(
    () => ctx.export(e0, 255 * 32 + 1),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  ctx.destroy();
  assert.throws(
    () => ctx.seal(e0),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  void privateKey;
});

test('error messages never carry key bytes', async () => {
  const { privateKey, publicKey } = hpkeGenerateKeyPair();
  const { enc, ciphertext } = await hpkeSeal(publicKey, Uint8Array.of(1, 2), Uint8Array.of(3));
  const other = hpkeGenerateKeyPair().privateKey;
  try {
    await hpkeOpen(other, enc, ciphertext, Uint8Array.of(3));
    assert.fail('opened with the wrong key');
  } catch (e) {
    const text = JSON.stringify((e as { toJSON(): unknown }).toJSON());
    for (const k of [privateKey, other, publicKey]) assert.ok(!text.includes(toHex(k)));
  }
});

test('a recipient context refuses messages out of order and keeps its sequence number', () => {
  const { privateKey, publicKey } = hpkeGenerateKeyPair();
  const info = Uint8Array.of(7);
  const s = createSenderContext({ recipientPublicKey: publicKey, info });
  const r = createRecipientContext({ recipientPrivateKey: privateKey, enc: s.enc, info });
  const c0 = s.seal(Uint8Array.of(0));
  const c1 = s.seal(Uint8Array.of(1));
  assert.throws(
    () => r.open(c1),
    (e) => isFerryError(e, 'HPKE_OPEN_FAILED'),
  );
  assert.equal(r.seq, 0);
  assert.deepEqual(r.open(c0), Uint8Array.of(0));
  assert.deepEqual(r.open(c1), Uint8Array.of(1));
});

function hpkeCoreSuite(): CipherSuite {
  return new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Chacha20Poly1305(),
  });
}

test('interoperates with @hpke/core in both directions', async () => {
  const suite = hpkeCoreSuite();
  const { privateKey, publicKey } = hpkeGenerateKeyPair();
  const info = Uint8Array.of(1, 2, 3);
  const aad = Uint8Array.of(4);
  const pt = new TextEncoder().encode('hello from ferry');

  const ours = await hpkeSeal(publicKey, pt, info, aad);
  const skR = await suite.kem.importKey('raw', privateKey, false);
  const theirOpen = await suite.open({ recipientKey: skR, enc: ours.enc, info }, ours.ciphertext, aad);
  assert.deepEqual(new Uint8Array(theirOpen), pt);

  const pkR = await suite.kem.importKey('raw', publicKey, true);
  const theirs = await suite.seal({ recipientPublicKey: pkR, info }, pt, aad);
  const opened = await hpkeOpen(privateKey, new Uint8Array(theirs.enc), new Uint8Array(theirs.ct), info, aad);
  assert.deepEqual(opened, pt);
});
