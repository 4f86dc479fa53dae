import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { encodeTagged, fromHex, isFerryError, toHex } from '../kernel/index.ts';
import {
  assertTaggedSignature,
  ed25519Sign,
  ed25519Verify,
  generateSigningKeyPair,
  signingPublicKey,
  signTagged,
  verifyTagged,
} from './sign.ts';

// RFC 8032 section 7.1, TEST 1 and TEST 2 (the key pairs also appear, identical, in the RFC 9381
// Appendix B.3 vectors under /work/shared/vectors/vrf).
const RFC8032 = [
  {
    sk: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pk: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    sk: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pk: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
];

test('RFC 8032 test vectors 1 and 2: public key, signature, verification', () => {
  for (const v of RFC8032) {
    const sk = fromHex(v.sk);
    const pk = fromHex(v.pk);
    const msg = fromHex(v.msg);
    assert.equal(toHex(signingPublicKey(sk)), v.pk);
    assert.equal(toHex(ed25519Sign(sk, msg)), v.sig);
    assert.equal(ed25519Verify(pk, msg, fromHex(v.sig)), true);
    assert.equal(ed25519Verify(pk, Uint8Array.of(1), fromHex(v.sig)), false);
  }
});

test('cross-check with @noble/curves on random keys and messages', () => {
  for (let i = 0; i < 20; i++) {
    const { secretKey, publicKey } = generateSigningKeyPair();
    assert.equal(toHex(ed25519.getPublicKey(secretKey)), toHex(publicKey));
    const msg = new Uint8Array(randomBytes(i * 7));
    const ours = ed25519Sign(secretKey, msg);
    assert.equal(toHex(ed25519.sign(msg, secretKey)), toHex(ours));
    assert.ok(ed25519.verify(ours, msg, publicKey));
    const tagged = signTagged(secretKey, 'ferry/test/v1', { i, m: msg });
    assert.ok(ed25519.verify(tagged, encodeTagged('ferry/test/v1', { i, m: msg }), publicKey));
  }
});

test('signTagged / verifyTagged: domain separation by tag and body', () => {
  const { secretKey, publicKey } = generateSigningKeyPair();
  const body = { task: 7n, attempt: 1, hash: new Uint8Array(32).fill(3) };
  const sig = signTagged(secretKey, 'ferry/receipt/v1', body);
  assert.equal(sig.length, 64);
  assert.equal(verifyTagged(publicKey, 'ferry/receipt/v1', body, sig), true);
  assert.equal(verifyTagged(publicKey, 'ferry/attestation-result/v1', body, sig), false);
  assert.equal(verifyTagged(publicKey, 'ferry/receipt/v1', { ...body, attempt: 2 }, sig), false);
  assert.equal(verifyTagged(generateSigningKeyPair().publicKey, 'ferry/receipt/v1', body, sig), false);
  // The signature is over exactly the tagged encoding.
  assert.equal(ed25519Verify(publicKey, encodeTagged('ferry/receipt/v1', body), sig), true);
  for (const i of [0, 31, 32, 63]) {
    const bad = Uint8Array.from(sig);
    bad[i] ^= 0x01;
    assert.equal(verifyTagged(publicKey, 'ferry/receipt/v1', body, bad), false, `bit flip at ${i}`);
  }
  assert.equal(verifyTagged(publicKey, 'ferry/receipt/v1', body, sig.subarray(0, 63)), false);
  assert.equal(verifyTagged(publicKey, 'ferry/receipt/v1', body, new Uint8Array(0)), false);
  assertTaggedSignature(publicKey, 'ferry/receipt/v1', body, sig);
  assert.throws(
    () => assertTaggedSignature(publicKey, 'ferry/receipt/v1', { ...body, attempt: 3 }, sig, 'receipt'),
    (e) => isFerryError(e, 'SIGNATURE_INVALID') && /receipt/.test(e.message),
  );
});

test('signatures are deterministic (RFC 8032)', () => {
  const { secretKey } = generateSigningKeyPair();
  assert.deepEqual(signTagged(secretKey, 'ferry/x/v1', [1, 2]), signTagged(secretKey, 'ferry/x/v1', [1, 2]));
});

test('a non-canonical S (S + L) is rejected', () => {
  const v = RFC8032[0];
  const sig = fromHex(v.sig);
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  let s = 0n;
  for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]);
  s += L;
  const bad = Uint8Array.from(sig);
  for (let i = 0; i < 32; i++) {
    bad[32 + i] = Number(s & 0xffn);
    s >>= 8n;
  }
  assert.equal(ed25519Verify(fromHex(v.pk), new Uint8Array(0), bad), false);
});

test('malformed keys throw SIGNATURE_KEY_INVALID; bad arguments INVALID_ARGUMENT', () => {
  const { secretKey, publicKey } = generateSigningKeyPair();
  const sig = signTagged(secretKey, 'ferry/x/v1', 1);
  for (const bad of [new Uint8Array(31), new Uint8Array(64), 'aa', null, undefined]) {
    assert.throws(
      () => signTagged(bad as Uint8Array, 'ferry/x/v1', 1),
      (e) => isFerryError(e, 'SIGNATURE_KEY_INVALID'),
    );
    assert.throws(
      () => verifyTagged(bad as Uint8Array, 'ferry/x/v1', 1, sig),
      (e) => isFerryError(e, 'SIGNATURE_KEY_INVALID'),
    );
    assert.throws(
      () => signingPublicKey(bad as Uint8Array),
      (e) => isFerryError(e, 'SIGNATURE_KEY_INVALID'),
    );
  }
  // 32 bytes that do not decode to a point: y = 2^255 - 1 >= p (non-canonical), and y = 2
  // (x^2 = (y^2 - 1) / (d y^2 + 1) is not a square for y = 2).
  const notPoints = [new Uint8Array(32).fill(0xff), Uint8Array.from([2, ...new Array(31).fill(0)])];
  for (const p of notPoints) {
    let decodes = true;
    try {
      ed25519.Point.fromBytes(p);
    } catch {
      decodes = false;
    }
    assert.equal(decodes, false, `noble decodes ${toHex(p)}`);
    assert.throws(
      () => verifyTagged(p, 'ferry/x/v1', 1, sig),
      (e) => isFerryError(e, 'SIGNATURE_KEY_INVALID'),
    );
  }
  assert.throws(
    () => verifyTagged(publicKey, 'ferry/x/v1', 1, 'sig' as never),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  assert.throws(
    () => signTagged(secretKey, 'not a tag', 1),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  assert.throws(
    () => signTagged(secretKey, 'ferry/x/v1', 1.5),
    (e) => isFerryError(e, 'CBOR_UNSUPPORTED_TYPE'),
  );
  assert.throws(
    () => ed25519Sign(secretKey, 'msg' as never),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
});

test('errors never carry the secret key', () => {
  const { secretKey } = generateSigningKeyPair();
  try {
    signTagged(secretKey, 'ferry/x/v1', { bad: 1.5 });
    assert.fail('signed a float');
  } catch (e) {
    assert.ok(!JSON.stringify((e as { toJSON(): unknown }).toJSON()).includes(toHex(secretKey)));
  }
});
