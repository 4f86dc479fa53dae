import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeTagged, isFerryError, toHex, utf8 } from '../kernel/index.ts';
import { Ed25519Signer, verifyEd25519 } from './ed25519.ts';
import {
  envelopeBytes,
  HEADER_KEY,
  HEADER_NONCE,
  HEADER_SIGNATURE,
  HEADER_TIMESTAMP,
  REQUEST_TAG,
  ReplayCache,
  sha256,
  signRequest,
  verifyRequest,
} from './envelope.ts';

// RFC 8032 section 7.1, TEST 1: secret key, public key and the signature of the empty message.
const RFC8032_SK = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const RFC8032_PK = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const RFC8032_SIG =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

test('Ed25519Signer reproduces RFC 8032 test 1', () => {
  const s = new Ed25519Signer(Buffer.from(RFC8032_SK, 'hex'));
  assert.equal(toHex(s.keyId), RFC8032_PK);
  assert.equal(toHex(s.sign(new Uint8Array(0))), RFC8032_SIG);
  assert.equal(verifyEd25519(s.keyId, new Uint8Array(0), Buffer.from(RFC8032_SIG, 'hex')), true);
  assert.equal(verifyEd25519(s.keyId, new Uint8Array(1), Buffer.from(RFC8032_SIG, 'hex')), false);
  assert.equal(JSON.stringify(s), JSON.stringify({ keyId: RFC8032_PK }));
});

test('Ed25519Signer and verifyEd25519 refuse bad inputs', () => {
  for (const bad of [new Uint8Array(31), new Uint8Array(33), 'x', null]) {
    assert.throws(
      () => new Ed25519Signer(bad as never),
      (e) => isFerryError(e, 'SIGNATURE_KEY_INVALID'),
    );
  }
  assert.equal(verifyEd25519(new Uint8Array(31), new Uint8Array(0), new Uint8Array(64)), false);
  assert.equal(verifyEd25519(new Uint8Array(32), new Uint8Array(0), new Uint8Array(63)), false);
});

test('the envelope is the tagged canonical object ferry/http-request/v1 (bytes computed by us)', () => {
  const env = {
    method: 'GET',
    path: '/v1/health',
    bodyHash: sha256(new Uint8Array(0)),
    timestamp: 1700000000000,
    nonce: new Uint8Array(16).fill(1),
    keyId: new Uint8Array(32).fill(2),
  };
  const bytes = envelopeBytes(env);
  const body = decodeTagged(REQUEST_TAG, bytes) as Record<string, unknown>;
  assert.equal(body.method, 'GET');
  assert.equal(body.timestamp, 1700000000000);
  // Canonical map key order: by encoded length then bytes: path, keyId, nonce, method, bodyHash, timestamp.
  assert.equal(
    toHex(bytes),
    '82' +
      toHex(utf8('\x75ferry/http-request/v1')) +
      'a6' +
      '6470617468' +
      '6a2f76312f6865616c7468' +
      '656b65794964' +
      '5820' +
      '02'.repeat(32) +
      '656e6f6e6365' +
      '50' +
      '01'.repeat(16) +
      '666d6574686f64' +
      '63474554' +
      '68626f647948617368' +
      '5820' +
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' +
      '6974696d657374616d70' +
      '1b0000018bcfe56800',
  );
});

function signed(signer: Ed25519Signer, method: string, path: string, body: Uint8Array, now: number) {
  return signRequest(signer, { method, path, body, now });
}

test('verifyRequest accepts a good request once and refuses its replay', () => {
  const { signer } = Ed25519Signer.generate();
  const now = 1_800_000_000_000;
  const body = utf8('{"a":1}');
  const headers = signed(signer, 'post', '/v1/x?y=1', body, now);
  const replay = new ReplayCache();
  const caller = verifyRequest(
    { method: 'POST', path: '/v1/x?y=1', body, headers },
    { replay, now: now + 10 },
  );
  assert.equal(caller.keyIdHex, toHex(signer.keyId));
  assert.throws(
    () => verifyRequest({ method: 'POST', path: '/v1/x?y=1', body, headers }, { replay, now: now + 20 }),
    (e) => isFerryError(e, 'PEER_UNAUTHORIZED') && /replay/.test(e.hints.join()),
  );
});

test('verifyRequest refuses any change to method, path, query, body or headers', () => {
  const { signer } = Ed25519Signer.generate();
  const other = Ed25519Signer.generate().signer;
  const now = 1_800_000_000_000;
  const body = utf8('payload');
  const good = signed(signer, 'POST', '/v1/a?q=1', body, now);
  const cases: [string, Parameters<typeof verifyRequest>[0]][] = [
    ['method', { method: 'PUT', path: '/v1/a?q=1', body, headers: good }],
    ['path', { method: 'POST', path: '/v1/b?q=1', body, headers: good }],
    ['query', { method: 'POST', path: '/v1/a?q=2', body, headers: good }],
    ['body', { method: 'POST', path: '/v1/a?q=1', body: utf8('payloaD'), headers: good }],
    [
      'key',
      { method: 'POST', path: '/v1/a?q=1', body, headers: { ...good, [HEADER_KEY]: toHex(other.keyId) } },
    ],
    [
      'timestamp',
      { method: 'POST', path: '/v1/a?q=1', body, headers: { ...good, [HEADER_TIMESTAMP]: String(now + 1) } },
    ],
    [
      'nonce',
      { method: 'POST', path: '/v1/a?q=1', body, headers: { ...good, [HEADER_NONCE]: '00'.repeat(16) } },
    ],
    [
      'sig',
      { method: 'POST', path: '/v1/a?q=1', body, headers: { ...good, [HEADER_SIGNATURE]: '00'.repeat(64) } },
    ],
    [
      'missing',
      { method: 'POST', path: '/v1/a?q=1', body, headers: { ...good, [HEADER_SIGNATURE]: undefined } },
    ],
    ['bad hex', { method: 'POST', path: '/v1/a?q=1', body, headers: { ...good, [HEADER_NONCE]: 'zz' } }],
    ['bad ts', { method: 'POST', path: '/v1/a?q=1', body, headers: { ...good, [HEADER_TIMESTAMP]: '-1' } }],
  ];
  for (const [name, req] of cases) {
    assert.throws(
      () => verifyRequest(req, { replay: new ReplayCache(), now }),
      (e) => isFerryError(e, 'PEER_UNAUTHORIZED'),
      name,
    );
  }
  // The unmodified request passes, so the cases above fail for the change alone.
  verifyRequest(
    { method: 'POST', path: '/v1/a?q=1', body, headers: good },
    { replay: new ReplayCache(), now },
  );
});

test('verifyRequest enforces the freshness window in both directions', () => {
  const { signer } = Ed25519Signer.generate();
  const now = 1_800_000_000_000;
  const body = new Uint8Array(0);
  for (const skew of [-60_001, 60_001]) {
    const headers = signed(signer, 'GET', '/p', body, now + skew);
    assert.throws(
      () => verifyRequest({ method: 'GET', path: '/p', body, headers }, { replay: new ReplayCache(), now }),
      (e) => isFerryError(e, 'PEER_UNAUTHORIZED') && /freshness/.test(e.hints.join()),
    );
  }
  for (const skew of [-60_000, 60_000]) {
    const headers = signed(signer, 'GET', '/p', body, now + skew);
    verifyRequest({ method: 'GET', path: '/p', body, headers }, { replay: new ReplayCache(), now });
  }
});

test('ReplayCache forgets expired nonces and fails closed when full of live ones', () => {
  const c = new ReplayCache(2);
  assert.equal(c.checkAndAdd('a', 100, 0), true);
  assert.equal(c.checkAndAdd('a', 100, 50), false);
  assert.equal(c.checkAndAdd('b', 100, 0), true);
  assert.throws(
    () => c.checkAndAdd('c', 100, 10),
    (e) => isFerryError(e, 'PEER_UNAVAILABLE'),
  );
  assert.equal(c.checkAndAdd('c', 300, 150), true);
  assert.equal(c.size, 1);
});
