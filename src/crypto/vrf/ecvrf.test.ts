import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ED25519_TORSION_SUBGROUP, ed25519 } from '@noble/curves/ed25519.js';
import { fromHex, isFerryError, toHex } from '../../kernel/index.ts';
import {
  useVrfBackend,
  type VrfBackendName,
  vrfKeygen,
  vrfProofToHash,
  vrfProve,
  vrfProveDetailed,
  vrfPublicKey,
  vrfValidatePublicKey,
  vrfVerify,
} from './ecvrf.ts';
import { encodeToCurveTai, referenceProofToHash, referenceProve, referenceVerify } from './reference.ts';
import { loadSodium } from './sodium.ts';
import { bytesToNumberLE, challengeBytes, expandSecretKey, numberToBytesLE, P, Q } from './suite.ts';

const Point = ed25519.Point;
type Pt = InstanceType<typeof Point>;

type Vector = Record<string, string | number>;
const VECTORS: Vector[] = JSON.parse(
  readFileSync(new URL('../../../test/vectors/vrf/rfc9381-edwards25519-tai.json', import.meta.url), 'utf8'),
).vectors;

const HAS_NATIVE = loadSodium() !== null;
const BACKENDS: VrfBackendName[] = HAS_NATIVE ? ['sodium-native', 'js'] : ['js'];

/** Runs `fn` once per available arithmetic backend, restoring 'auto' afterwards. */
function eachBackend(fn: (b: VrfBackendName) => void): void {
  try {
    for (const b of BACKENDS) {
      useVrfBackend(b);
      fn(b);
    }
  } finally {
    useVrfBackend('auto');
  }
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isFerryError(e)) return e.code;
    throw e;
  }
  return 'NO_ERROR';
}

const h = (s: string | number) => fromHex(String(s));

test('sodium-native loads under this Node (the fast path is available)', {
  skip: !HAS_NATIVE && 'sodium-native not installed',
}, () => {
  assert.equal(useVrfBackend('sodium-native'), 'sodium-native');
  useVrfBackend('auto');
});

test('RFC 9381 B.3 vectors: every field, byte for byte, on every backend', () => {
  assert.equal(VECTORS.length, 2);
  eachBackend((b) => {
    for (const v of VECTORS) {
      const d = vrfProveDetailed(h(v.SK), h(v.alpha));
      const got: Record<string, string | number> = {
        PK: toHex(d.Y),
        x: toHex(d.x),
        ctr: d.ctr,
        H: toHex(d.H),
        k: toHex(d.k),
        k_mod_q: toHex(d.kModQ),
        U: toHex(d.U),
        V: toHex(d.V),
        pi: toHex(d.pi),
        pi_Gamma: toHex(d.Gamma),
        pi_c: toHex(d.c),
        pi_s: toHex(d.s),
        beta: toHex(d.beta),
      };
      for (const [field, value] of Object.entries(got))
        assert.equal(value, v[field], `${b} example ${v.example} ${field}`);
      assert.equal(toHex(vrfPublicKey(h(v.SK))), v.PK);
      assert.equal(toHex(vrfProve(h(v.SK), h(v.alpha))), v.pi);
      assert.equal(toHex(vrfVerify(h(v.PK), h(v.alpha), h(v.pi))), v.beta);
      assert.equal(toHex(vrfProofToHash(h(v.pi))), v.beta);
    }
  });
});

test('RFC 9381 B.3 vectors through the straightforward reference', () => {
  for (const v of VECTORS) {
    const r = referenceProve(h(v.SK), h(v.alpha));
    assert.equal(toHex(r.Y), v.PK);
    assert.equal(toHex(numberToBytesLE(r.x, 32)), v.x);
    assert.equal(r.ctr, v.ctr);
    assert.equal(toHex(r.H), v.H);
    assert.equal(toHex(r.k), v.k);
    assert.equal(toHex(numberToBytesLE(r.kModQ, 32)), v.k_mod_q);
    assert.equal(toHex(r.U), v.U);
    assert.equal(toHex(r.V), v.V);
    assert.equal(toHex(r.pi), v.pi);
    assert.equal(toHex(r.beta), v.beta);
    assert.equal(toHex(referenceVerify(h(v.PK), h(v.alpha), h(v.pi))!), v.beta);
  }
});

test('random keys and inputs: backends and the reference agree; proofs verify', () => {
  const cases = Array.from({ length: 12 }, (_, i) => ({
    sk: new Uint8Array(randomBytes(32)),
    alpha: new Uint8Array(randomBytes(i * 7)),
  }));
  const expected = cases.map((c) => referenceProve(c.sk, c.alpha));
  eachBackend((b) => {
    cases.forEach((c, i) => {
      const pk = vrfPublicKey(c.sk);
      assert.equal(toHex(pk), toHex(expected[i].Y), b);
      const pi = vrfProve(c.sk, c.alpha);
      assert.equal(toHex(pi), toHex(expected[i].pi), b);
      assert.equal(toHex(vrfVerify(pk, c.alpha, pi)), toHex(expected[i].beta), b);
      assert.equal(toHex(vrfProofToHash(pi)), toHex(expected[i].beta), b);
    });
  });
});

test('vrfKeygen gives a 32-byte seed and its public key; keys differ', () => {
  const a = vrfKeygen();
  const b = vrfKeygen();
  assert.equal(a.sk.length, 32);
  assert.equal(a.pk.length, 32);
  assert.equal(toHex(a.pk), toHex(vrfPublicKey(a.sk)));
  assert.notEqual(toHex(a.sk), toHex(b.sk));
  const alpha = Uint8Array.of(1, 2, 3);
  assert.equal(vrfVerify(a.pk, alpha, vrfProve(a.sk, alpha)).length, 64);
});

// ---- bad arguments ------------------------------------------------------------------------

const NOT_BYTES: unknown[] = [undefined, null, 'ab', 42, [1, 2, 3], {}, new Uint16Array(16)];

test('sk: wrong types and lengths -> VRF_INVALID_SECRET_KEY at every API', () => {
  for (const bad of [
    ...NOT_BYTES,
    new Uint8Array(0),
    new Uint8Array(31),
    new Uint8Array(33),
    new Uint8Array(64),
  ]) {
    assert.equal(
      code(() => vrfPublicKey(bad as Uint8Array)),
      'VRF_INVALID_SECRET_KEY',
    );
    assert.equal(
      code(() => vrfProve(bad as Uint8Array, new Uint8Array(1))),
      'VRF_INVALID_SECRET_KEY',
    );
    assert.equal(
      code(() => vrfProveDetailed(bad as Uint8Array, new Uint8Array(1))),
      'VRF_INVALID_SECRET_KEY',
    );
  }
});

test('alpha: non-Uint8Array -> INVALID_ARGUMENT naming alpha', () => {
  const { sk, pk } = vrfKeygen();
  const pi = vrfProve(sk, new Uint8Array(0));
  for (const bad of NOT_BYTES) {
    assert.throws(
      () => vrfProve(sk, bad as Uint8Array),
      (e) => isFerryError(e, 'INVALID_ARGUMENT') && /alpha/.test(e.message),
    );
    assert.throws(
      () => vrfVerify(pk, bad as Uint8Array, pi),
      (e) => isFerryError(e, 'INVALID_ARGUMENT') && /alpha/.test(e.message),
    );
  }
});

test('pk: wrong types -> INVALID_ARGUMENT; wrong lengths -> VRF_INVALID_PUBLIC_KEY', () => {
  const pi = vrfProve(new Uint8Array(32), new Uint8Array(0));
  for (const bad of NOT_BYTES) {
    assert.equal(
      code(() => vrfVerify(bad as Uint8Array, new Uint8Array(0), pi)),
      'INVALID_ARGUMENT',
    );
    assert.equal(
      code(() => vrfValidatePublicKey(bad as Uint8Array)),
      'INVALID_ARGUMENT',
    );
  }
  for (const n of [0, 31, 33, 64]) {
    assert.equal(
      code(() => vrfVerify(new Uint8Array(n), new Uint8Array(0), pi)),
      'VRF_INVALID_PUBLIC_KEY',
    );
  }
});

test('pi: wrong types -> INVALID_ARGUMENT; wrong lengths -> VRF_PROOF_WRONG_LENGTH', () => {
  const { sk, pk } = vrfKeygen();
  const pi = vrfProve(sk, new Uint8Array(0));
  eachBackend(() => {
    for (const bad of NOT_BYTES) {
      assert.equal(
        code(() => vrfVerify(pk, new Uint8Array(0), bad as Uint8Array)),
        'INVALID_ARGUMENT',
      );
      assert.equal(
        code(() => vrfProofToHash(bad as Uint8Array)),
        'INVALID_ARGUMENT',
      );
    }
    for (const bad of [new Uint8Array(0), pi.subarray(0, 79), Uint8Array.of(...pi, 0), new Uint8Array(64)]) {
      assert.equal(
        code(() => vrfVerify(pk, new Uint8Array(0), bad)),
        'VRF_PROOF_WRONG_LENGTH',
      );
      assert.equal(
        code(() => vrfProofToHash(bad)),
        'VRF_PROOF_WRONG_LENGTH',
      );
    }
  });
});

// ---- public key validation ----------------------------------------------------------------

// The 8 small-order points in canonical form (cross-checked against @noble/curves below), and
// the 6 non-canonical aliases of small-order points, derived by us from RFC 8032 section 5.1.3:
// y = p and y = p + 1 (aliases of y = 0 and y = 1), each with both sign bits, and the
// "negative zero" x = 0 with the sign bit set for y = 1 and y = p - 1.
const SMALL_ORDER_CANONICAL = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
];
const SMALL_ORDER_NON_CANONICAL = [
  '0100000000000000000000000000000000000000000000000000000000000080',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
];

test('the small-order lists are what they claim (cross-check with @noble/curves)', () => {
  assert.deepEqual([...SMALL_ORDER_CANONICAL].sort(), [...ED25519_TORSION_SUBGROUP].sort());
  for (const e of SMALL_ORDER_NON_CANONICAL) {
    // ZIP-215 decoding accepts these aliases; each is a small-order point...
    assert.ok(Point.fromHex(e, true).multiplyUnsafe(8n).is0(), e);
    // ...and strict RFC 8032 decoding rejects it.
    assert.throws(() => Point.fromHex(e, false));
  }
});

test('small-order public keys -> VRF_PUBLIC_KEY_SMALL_ORDER; their non-canonical aliases -> NON_CANONICAL', () => {
  const alpha = new Uint8Array(0);
  const pi = vrfProve(new Uint8Array(32), alpha);
  eachBackend(() => {
    for (const e of SMALL_ORDER_CANONICAL) {
      assert.equal(
        code(() => vrfVerify(fromHex(e), alpha, pi)),
        'VRF_PUBLIC_KEY_SMALL_ORDER',
        e,
      );
      assert.equal(
        code(() => vrfValidatePublicKey(fromHex(e))),
        'VRF_PUBLIC_KEY_SMALL_ORDER',
        e,
      );
      assert.equal(referenceVerify(fromHex(e), alpha, pi), null);
    }
    for (const e of SMALL_ORDER_NON_CANONICAL) {
      assert.equal(
        code(() => vrfVerify(fromHex(e), alpha, pi)),
        'VRF_PUBLIC_KEY_NON_CANONICAL',
        e,
      );
      assert.equal(referenceVerify(fromHex(e), alpha, pi), null);
    }
  });
});

/** Little-endian 32-byte encoding of y with the sign bit. */
function encodeY(y: bigint, sign: 0 | 1): Uint8Array {
  const b = numberToBytesLE(y, 32);
  b[31] |= sign << 7;
  return b;
}

function decodesZip215(b: Uint8Array): Pt | null {
  try {
    return Point.fromBytes(b, true);
  } catch {
    return null;
  }
}

test('non-canonical encodings of large-order points (y >= p) -> VRF_PUBLIC_KEY_NON_CANONICAL', () => {
  // Computed by us: y in [2, 18] whose alias y + p (< 2^255) is a point of large order.
  const found: Uint8Array[] = [];
  for (let y = 2n; y <= 18n; y++) {
    for (const sign of [0, 1] as const) {
      const alias = encodeY(y + P, sign);
      const pt = decodesZip215(alias);
      if (pt !== null && !pt.multiplyUnsafe(8n).is0()) found.push(alias);
    }
  }
  assert.ok(found.length >= 2, 'expected some large-order points with y < 19');
  for (const alias of found) {
    assert.equal(
      code(() => vrfValidatePublicKey(alias)),
      'VRF_PUBLIC_KEY_NON_CANONICAL',
      toHex(alias),
    );
  }
});

test('encodings that are not curve points -> VRF_INVALID_PUBLIC_KEY', () => {
  let n = 0;
  for (let y = 2n; y < 40n; y++) {
    const b = encodeY(y, 0);
    if (decodesZip215(b) !== null) continue;
    n++;
    assert.equal(
      code(() => vrfValidatePublicKey(b)),
      'VRF_INVALID_PUBLIC_KEY',
      toHex(b),
    );
    assert.equal(
      code(() => vrfValidatePublicKey(b)),
      'VRF_INVALID_PUBLIC_KEY',
      'not cached as valid',
    );
  }
  assert.ok(n > 5);
});

// ---- malformed and wrong proofs -----------------------------------------------------------

function withGamma(pi: Uint8Array, gamma: Uint8Array): Uint8Array {
  const out = Uint8Array.from(pi);
  out.set(gamma, 0);
  return out;
}

function withS(pi: Uint8Array, s: bigint): Uint8Array {
  const out = Uint8Array.from(pi);
  out.set(numberToBytesLE(s, 32), 48);
  return out;
}

function withC(pi: Uint8Array, c: bigint): Uint8Array {
  const out = Uint8Array.from(pi);
  out.set(numberToBytesLE(c, 16), 32);
  return out;
}

function notOnCurve(): Uint8Array {
  for (let y = 2n; ; y++) if (decodesZip215(encodeY(y, 0)) === null) return encodeY(y, 0);
}

test('malformed proofs: each class has its own code, the same on every backend and in proofToHash', () => {
  const { sk, pk } = vrfKeygen();
  const alpha = Uint8Array.of(9);
  const pi = vrfProve(sk, alpha);
  const cases: [string, Uint8Array, string][] = [
    ['Gamma y >= p', withGamma(pi, encodeY(P + 3n, 0)), 'VRF_PROOF_INVALID_GAMMA'],
    ['Gamma negative zero', withGamma(pi, fromHex(SMALL_ORDER_NON_CANONICAL[0])), 'VRF_PROOF_INVALID_GAMMA'],
    ['Gamma not on curve', withGamma(pi, notOnCurve()), 'VRF_PROOF_INVALID_GAMMA'],
    ['s = q', withS(pi, Q), 'VRF_PROOF_S_OUT_OF_RANGE'],
    ['s = q + 1', withS(pi, Q + 1n), 'VRF_PROOF_S_OUT_OF_RANGE'],
    ['s = 2^256 - 1', withS(pi, (1n << 256n) - 1n), 'VRF_PROOF_S_OUT_OF_RANGE'],
    [
      'bad Gamma and s >= q (Gamma is checked first)',
      withS(withGamma(pi, notOnCurve()), Q),
      'VRF_PROOF_INVALID_GAMMA',
    ],
  ];
  eachBackend((b) => {
    for (const [name, bad, expected] of cases) {
      assert.equal(
        code(() => vrfVerify(pk, alpha, bad)),
        expected,
        `${b}: verify, ${name}`,
      );
      assert.equal(
        code(() => vrfProofToHash(bad)),
        expected,
        `${b}: proofToHash, ${name}`,
      );
      assert.equal(referenceVerify(pk, alpha, bad), null, name);
      assert.equal(referenceProofToHash(bad), null, name);
    }
  });
});

test('well-formed but wrong proofs -> VRF_PROOF_INVALID (other alpha, other key, zero c or s, small-order Gamma)', () => {
  const a = vrfKeygen();
  const b = vrfKeygen();
  const alpha = Uint8Array.of(1);
  const pi = vrfProve(a.sk, alpha);
  const cases: [string, Uint8Array, Uint8Array, Uint8Array][] = [
    ['another alpha', a.pk, Uint8Array.of(2), pi],
    ['another key', b.pk, alpha, pi],
    ['c = 0', a.pk, alpha, withC(pi, 0n)],
    ['s = 0', a.pk, alpha, withS(pi, 0n)],
    ['c = s = 0', a.pk, alpha, withS(withC(pi, 0n), 0n)],
    ['s = q - 1', a.pk, alpha, withS(pi, Q - 1n)],
    ['Gamma = identity', a.pk, alpha, withGamma(pi, fromHex(SMALL_ORDER_CANONICAL[0]))],
    ['Gamma of order 8', a.pk, alpha, withGamma(pi, fromHex(SMALL_ORDER_CANONICAL[4]))],
    ['Gamma = B', a.pk, alpha, withGamma(pi, Point.BASE.toBytes())],
  ];
  eachBackend((bk) => {
    assert.equal(vrfVerify(a.pk, alpha, pi).length, 64);
    for (const [name, pk, al, p] of cases) {
      assert.equal(
        code(() => vrfVerify(pk, al, p)),
        'VRF_PROOF_INVALID',
        `${bk}: ${name}`,
      );
      assert.equal(referenceVerify(pk, al, p), null, name);
    }
  });
});

test('every single-byte mutation of a valid proof is rejected, with the same code on every backend', () => {
  const { sk, pk } = vrfKeygen();
  const alpha = Uint8Array.of(4, 2);
  const pi = vrfProve(sk, alpha);
  const codes: Record<string, string[]> = {};
  eachBackend((b) => {
    const list: string[] = [];
    for (let i = 0; i < pi.length; i++) {
      for (const mask of [0x01, 0x80]) {
        const bad = Uint8Array.from(pi);
        bad[i] ^= mask;
        const got = code(() => vrfVerify(pk, alpha, bad));
        assert.match(got, /^VRF_PROOF_(INVALID|INVALID_GAMMA|S_OUT_OF_RANGE)$/, `${b}: byte ${i} ^ ${mask}`);
        list.push(got);
      }
    }
    codes[b] = list;
  });
  for (const b of BACKENDS) assert.deepEqual(codes[b], codes.js);
  // The top bit of s pushes it past q.
  assert.equal(codes.js[2 * 79 + 1], 'VRF_PROOF_S_OUT_OF_RANGE');
});

// ---- keys and proofs with a small-order component (valid per RFC 9381) ----------------------

/**
 * Builds, with a chosen nonce, a proof that verifies under Y' = x*B + T1 with
 * Gamma' = x*H + T2 (T1, T2 of small order). This works when 8 divides c, since then
 * c*T1 = c*T2 = identity; we retry nonces until it does (1 in 8). Such keys and proofs are valid
 * for RFC 9381 but refused by libsodium's scalar multiplication, so they exercise the fallback.
 */
function torsionProof(T1: Pt, T2: Pt, alpha: Uint8Array) {
  const sk = new Uint8Array(randomBytes(32));
  const { x } = expandSecretKey(sk);
  const xq = x % Q;
  const Yp = Point.BASE.multiply(xq).add(T1);
  const pk = Yp.toBytes();
  const { H } = encodeToCurveTai(pk, alpha);
  const Gamma = H.multiply(xq).add(T2).toBytes();
  for (;;) {
    const k = bytesToNumberLE(randomBytes(64)) % Q;
    const U = Point.BASE.multiply(k).toBytes();
    const V = H.multiply(k).toBytes();
    const c = bytesToNumberLE(challengeBytes(pk, H.toBytes(), Gamma, U, V));
    if (c % 8n !== 0n) continue;
    const s = (k + c * xq) % Q;
    const pi = new Uint8Array(80);
    pi.set(Gamma, 0);
    pi.set(numberToBytesLE(c, 16), 32);
    pi.set(numberToBytesLE(s, 32), 48);
    return { pk, pi, honestBeta: referenceProve(sk, alpha).beta };
  }
}

test('public keys and Gamma with a small-order component: accepted as the RFC says, on every backend', () => {
  const T = Point.fromHex(SMALL_ORDER_CANONICAL[4]); // order 8
  const alpha = Uint8Array.of(7, 7);
  for (const [T1, T2] of [
    [T, Point.ZERO],
    [Point.ZERO, T],
    [T, T.double()],
  ]) {
    const { pk, pi } = torsionProof(T1, T2, alpha);
    const ref = referenceVerify(pk, alpha, pi);
    assert.notEqual(ref, null, 'the reference accepts it');
    eachBackend((b) => {
      vrfValidatePublicKey(pk);
      assert.equal(toHex(vrfVerify(pk, alpha, pi)), toHex(ref!), b);
      assert.equal(toHex(vrfProofToHash(pi)), toHex(ref!), b);
      // Another alpha under the same key is still rejected.
      assert.equal(
        code(() => vrfVerify(pk, Uint8Array.of(8), pi)),
        'VRF_PROOF_INVALID',
        b,
      );
    });
  }
});

test('beta ignores a small-order component of Gamma (cofactor * Gamma is hashed)', () => {
  const T = Point.fromHex(SMALL_ORDER_CANONICAL[4]);
  const { pi, honestBeta } = torsionProof(Point.ZERO, T, Uint8Array.of(3));
  eachBackend(() => assert.equal(toHex(vrfProofToHash(pi)), toHex(honestBeta)));
});

test('the public-key cache returns the same answers on repeated use', () => {
  const { sk, pk } = vrfKeygen();
  const alpha = Uint8Array.of(5);
  const pi = vrfProve(sk, alpha);
  for (let i = 0; i < 3; i++) {
    assert.equal(vrfVerify(pk, alpha, pi).length, 64);
    assert.equal(
      code(() => vrfVerify(pk, Uint8Array.of(6), pi)),
      'VRF_PROOF_INVALID',
    );
  }
  // A mutated copy of the key array does not hit the entry of the original.
  const other = Uint8Array.from(pk);
  other[0] ^= 1;
  assert.notEqual(
    code(() => vrfVerify(other, alpha, pi)),
    'NO_ERROR',
  );
  // The caller mutating its array after a call does not corrupt the cache.
  const mine = Uint8Array.from(pk);
  vrfVerify(mine, alpha, pi);
  mine.fill(0);
  assert.equal(vrfVerify(pk, alpha, pi).length, 64);
});

test('proving leaves the caller-visible inputs untouched and is deterministic', () => {
  const sk = new Uint8Array(randomBytes(32));
  const copy = Uint8Array.from(sk);
  const alpha = Uint8Array.of(1, 2, 3);
  const a = vrfProve(sk, alpha);
  assert.deepEqual(sk, copy);
  assert.deepEqual(vrfProve(sk, alpha), a);
  assert.deepEqual(alpha, Uint8Array.of(1, 2, 3));
});

test('useVrfBackend validates its argument and reports the backend in use', () => {
  assert.equal(
    code(() => useVrfBackend('fast' as never)),
    'INVALID_ARGUMENT',
  );
  try {
    assert.equal(useVrfBackend('js'), 'js');
    assert.equal(useVrfBackend('auto'), HAS_NATIVE ? 'sodium-native' : 'js');
  } finally {
    useVrfBackend('auto');
  }
});
