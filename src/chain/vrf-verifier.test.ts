/**
 * contracts/VrfVerifier.sol against a real anvil, with the TypeScript `vrfVerify` as the
 * reference: the RFC 9381 B.3 vectors, random keys with Ferry's alphas, and the attacker's
 * side (every tampered proof or key must be refused on chain exactly when vrfVerify refuses
 * it, and the contract must answer false rather than revert). Also measures the gas of one
 * verification in a real transaction under the EIP-7825 per-transaction cap.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Address, bytesToHex, encodeFunctionData, type Hex } from 'viem';
import { ed25519 } from '@noble/curves/ed25519.js';
import { claimAlpha, verifierAlpha, vrfKeygen, vrfProve, vrfVerify } from '../crypto/vrf/index.ts';
import { decodePoint, pureEncodeToCurve } from '../crypto/vrf/pure.ts';
import { challengeBytes, P, Q } from '../crypto/vrf/suite.ts';
import { isFerryError } from '../kernel/index.ts';
import { type Clients, connect } from './client.ts';
import { type LocalChain, startLocalChain } from './local.ts';
import { deployVrfVerifier, verifyVrfOnChain, vrfVerifierAbi } from './vrf-verifier.ts';

const VECTORS = JSON.parse(
  readFileSync(new URL('../../test/vectors/vrf/rfc9381-edwards25519-tai.json', import.meta.url), 'utf8'),
) as { vectors: { PK: string; alpha: string; pi: string; beta: string }[] };

/** EIP-7825: the largest gas limit of one transaction. */
const TX_GAS_CAP = 16_777_216n;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

/** vrfVerify's decision: the beta, or null when it throws a VRF_* FerryError. */
function tsVerify(pk: Uint8Array, alpha: Uint8Array, pi: Uint8Array): Uint8Array | null {
  try {
    return vrfVerify(pk, alpha, pi);
  } catch (e) {
    if (isFerryError(e) && e.code.startsWith('VRF_')) return null;
    throw e;
  }
}

function le(n: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  }
  return out;
}

/** The 32-byte encoding with little-endian y and the sign bit `sign` (y may be >= p). */
function encodingOf(y: bigint, sign: 0 | 1): Uint8Array {
  const b = le(y, 32);
  b[31] |= sign << 7;
  return b;
}

function flip(b: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(b);
  out[bit >> 3] ^= 1 << (bit & 7);
  return out;
}

function withPart(pi: Uint8Array, offset: number, part: Uint8Array): Uint8Array {
  const out = Uint8Array.from(pi);
  out.set(part, offset);
  return out;
}

function ferryAlpha(kind: 'claim' | 'verifier'): Uint8Array {
  const p = {
    chainId: 31337n,
    taskId: BigInt(`0x${randomBytes(32).toString('hex')}`),
    attempt: 1 + (randomBytes(1)[0] % 3),
    seed: new Uint8Array(randomBytes(32)),
  };
  return kind === 'claim' ? claimAlpha(p) : verifierAlpha(p);
}

/** The eight points of small order: multiples of a point of order 8. */
function smallOrderEncodings(): Uint8Array[] {
  const T = ed25519.Point.fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05');
  assert.ok(T.multiplyUnsafe(8n).is0() && !T.multiplyUnsafe(4n).is0(), 'T has order 8');
  const out: Uint8Array[] = [];
  let X = ed25519.Point.ZERO;
  for (let i = 0; i < 8; i++) {
    out.push(X.toBytes());
    X = X.add(T);
  }
  return out;
}

describe('VrfVerifier (contracts/VrfVerifier.sol)', () => {
  let chain: LocalChain;
  let clients: Clients;
  let verifier: Address;

  before(async () => {
    chain = await startLocalChain();
    clients = await connect({
      rpcUrl: chain.rpcUrl,
      privateKey: chain.accounts[0].privateKey,
      chainId: chain.chainId,
    });
    verifier = (await deployVrfVerifier(clients.wallet!, clients.public)).address;
  });
  after(async () => {
    await chain?.stop();
  });

  const onChain = (publicKey: Uint8Array, alpha: Uint8Array, proof: Uint8Array) =>
    verifyVrfOnChain(clients.public, verifier, { publicKey, alpha, proof });

  /** The contract's answer equals vrfVerify's; returns whether TS accepted. */
  async function agrees(pk: Uint8Array, alpha: Uint8Array, pi: Uint8Array, what: string): Promise<boolean> {
    const want = tsVerify(pk, alpha, pi);
    const got = await onChain(pk, alpha, pi);
    if (want === null) {
      assert.equal(got.valid, false, `${what}: vrfVerify refuses, the contract accepted`);
      assert.equal(got.beta, null);
    } else {
      assert.equal(got.valid, true, `${what}: vrfVerify accepts, the contract refused`);
      assert.equal(hex(got.beta!), hex(want), `${what}: beta differs`);
    }
    return want !== null;
  }

  test('RFC 9381 B.3 vectors: valid, beta byte for byte', async () => {
    for (const v of VECTORS.vectors) {
      const r = await onChain(fromHex(v.PK), fromHex(v.alpha), fromHex(v.pi));
      assert.equal(r.valid, true);
      assert.equal(hex(r.beta!), v.beta);
    }
  });

  test('random keys with Ferry-shaped and edge-size alphas: the same beta as vrfVerify', async () => {
    const alphas = [
      () => ferryAlpha('claim'),
      () => ferryAlpha('verifier'),
      () => new Uint8Array(0),
      () => new Uint8Array(randomBytes(1)),
      () => new Uint8Array(randomBytes(200)),
    ];
    for (let i = 0; i < 45; i++) {
      const { sk, pk } = vrfKeygen();
      const alpha = alphas[i % alphas.length]();
      if (i < 10) assert.equal(alpha.length, [91, 104, 0, 1, 200][i % 5]);
      const pi = vrfProve(sk, alpha);
      assert.equal(await agrees(pk, alpha, pi, `key ${i}, alpha of ${alpha.length} bytes`), true);
    }
  });

  describe('attacker side: every tampering is refused exactly when vrfVerify refuses it', () => {
    const { sk, pk } = vrfKeygen();
    const alpha = ferryAlpha('claim');
    const pi = vrfProve(sk, alpha);
    const gamma = pi.subarray(0, 32);
    const s = pi.subarray(48, 80);
    const sValue = BigInt(`0x${hex(Uint8Array.from(s).reverse())}`);

    test('a flipped bit in Gamma, c or s', async () => {
      assert.equal(await agrees(pk, alpha, pi, 'the untouched proof'), true);
      // Gamma: bits 0..255 sampled (the sign bit and the top y bit included); c: 256..383;
      // s: 384..639 (bit 636+ push s past q).
      const bits = [
        0, 1, 7, 8, 100, 200, 253, 254, 255, 256, 300, 383, 384, 385, 500, 635, 636, 637, 638, 639,
      ];
      for (const bit of bits) {
        assert.equal(await agrees(pk, alpha, flip(pi, bit), `bit ${bit} flipped`), false);
      }
    });

    test('s >= q: s = q, s + q, s = 2^256 - 1', async () => {
      for (const bad of [Q, sValue + Q, (1n << 256n) - 1n, (1n << 253n) + sValue]) {
        assert.equal(await agrees(pk, alpha, withPart(pi, 48, le(bad, 32)), `s = ${bad}`), false);
      }
    });

    test('non-canonical Gamma: y >= p with either sign, negative zero', async () => {
      for (let y = P; y < 1n << 255n; y++) {
        for (const sign of [0, 1] as const) {
          const g = encodingOf(y, sign);
          assert.equal(decodePoint(g), 'non-canonical');
          assert.equal(await agrees(pk, alpha, withPart(pi, 0, g), `Gamma y = p + ${y - P}`), false);
        }
      }
      for (const y of [1n, P - 1n]) {
        const g = encodingOf(y, 1);
        assert.equal(decodePoint(g), 'non-canonical');
        assert.equal(await agrees(pk, alpha, withPart(pi, 0, g), `negative zero, y = ${y}`), false);
      }
    });

    test('Gamma off the curve, Gamma of small order, Gamma plus a small-order point', async () => {
      let found = 0;
      for (let y = 2n; found < 4; y++) {
        const g = encodingOf(y, 0);
        if (decodePoint(g) !== 'not-on-curve') continue;
        found++;
        assert.equal(await agrees(pk, alpha, withPart(pi, 0, g), `Gamma off curve, y = ${y}`), false);
      }
      const small = smallOrderEncodings();
      for (const g of small) {
        assert.equal(await agrees(pk, alpha, withPart(pi, 0, g), `Gamma ${hex(g)}`), false);
      }
      // Gamma + T changes V, so c no longer matches (beta would be the same: 8T = 0).
      const G = ed25519.Point.fromBytes(gamma);
      const T = ed25519.Point.fromBytes(small[1]);
      const g2 = G.add(T).toBytes();
      assert.equal(await agrees(pk, alpha, withPart(pi, 0, g2), 'Gamma + T'), false);
    });

    test('another public key, small-order and non-canonical keys, keys off the curve', async () => {
      assert.equal(await agrees(vrfKeygen().pk, alpha, pi, 'another key'), false);
      assert.equal(await agrees(flip(pk, 3), alpha, pi, 'a flipped key bit'), false);
      for (const k of smallOrderEncodings()) {
        assert.equal(await agrees(k, alpha, pi, `small-order key ${hex(k)}`), false);
      }
      for (let y = P; y < 1n << 255n; y++) {
        for (const sign of [0, 1] as const) {
          assert.equal(await agrees(encodingOf(y, sign), alpha, pi, `key y = p + ${y - P}`), false);
        }
      }
      for (const y of [1n, P - 1n]) {
        assert.equal(await agrees(encodingOf(y, 1), alpha, pi, `key negative zero, y = ${y}`), false);
      }
      let found = 0;
      for (let y = 2n; found < 2; y++) {
        const k = encodingOf(y, 1);
        if (decodePoint(k) !== 'not-on-curve') continue;
        found++;
        assert.equal(await agrees(k, alpha, pi, `key off curve, y = ${y}`), false);
      }
    });

    test('a proof forged under a small-order key (it satisfies both equations) is refused', async () => {
      // With 8*Y = 0 and Gamma = identity, U = s*B - c*Y = s*B and V = s*H hold for any s
      // once c*Y = 0 (c = 0 mod 8 suffices): the forger needs no secret key. Only the key
      // validation stands in the way, so a contract without it would accept.
      const B = ed25519.Point.BASE;
      const identity = ed25519.Point.ZERO.toBytes();
      for (const key of smallOrderEncodings()) {
        const Y = ed25519.Point.fromBytes(key);
        const H = pureEncodeToCurve(key, alpha)!.H;
        const Hb = H.toBytes();
        let forged: Uint8Array | null = null;
        while (forged === null) {
          const sv = BigInt(`0x${randomBytes(32).toString('hex')}`) % Q;
          const c = challengeBytes(
            key,
            Hb,
            identity,
            B.multiply(sv).toBytes(),
            H.multiplyUnsafe(sv).toBytes(),
          );
          const cv = BigInt(`0x${hex(Uint8Array.from(c).reverse())}`);
          if (!Y.multiplyUnsafe(cv).is0()) continue;
          forged = new Uint8Array(80);
          forged.set(identity, 0);
          forged.set(c, 32);
          forged.set(le(sv, 32), 48);
        }
        assert.equal(await agrees(key, alpha, forged, `forgery under key ${hex(key)}`), false);
      }
    });

    test('wrong proof lengths and a valid proof for another alpha', async () => {
      for (const len of [0, 32, 79, 81, 160]) {
        const bad = new Uint8Array(len);
        bad.set(pi.subarray(0, Math.min(len, 80)));
        assert.equal(await agrees(pk, alpha, bad, `${len}-byte proof`), false);
      }
      const other = ferryAlpha('claim');
      assert.equal(await agrees(pk, other, pi, 'the proof of another alpha'), false);
      assert.equal(await agrees(pk, other, vrfProve(sk, other), 'its own proof'), true);
      const trimmed = alpha.subarray(0, 90);
      assert.equal(await agrees(pk, trimmed, pi, 'alpha minus its last byte'), false);
    });
  });

  test('verifyVrfOnChain refuses a key that is not 32 bytes and non-bytes arguments', async () => {
    const { sk, pk } = vrfKeygen();
    const pi = vrfProve(sk, new Uint8Array(0));
    await assert.rejects(
      verifyVrfOnChain(clients.public, verifier, { publicKey: pk.subarray(0, 31), alpha: '0x', proof: pi }),
      (e) => isFerryError(e) && e.code === 'VRF_INVALID_PUBLIC_KEY',
    );
    await assert.rejects(
      verifyVrfOnChain(clients.public, verifier, {
        publicKey: pk,
        alpha: 'hello' as Hex,
        proof: pi,
      }),
      (e) => isFerryError(e) && e.code === 'INVALID_ARGUMENT' && e.message.startsWith('alpha'),
    );
  });

  test('a real transaction: Ferry alphas verify well under the per-transaction gas cap', async () => {
    const wallet = clients.wallet!;
    for (const kind of ['claim', 'verifier'] as const) {
      const { sk, pk } = vrfKeygen();
      const alpha = ferryAlpha(kind);
      const pi = vrfProve(sk, alpha);
      const data = encodeFunctionData({
        abi: vrfVerifierAbi,
        functionName: 'verify',
        args: [bytesToHex(pk), bytesToHex(alpha), bytesToHex(pi)],
      });
      const gas = await clients.public.estimateGas({ account: wallet.account, to: verifier, data });
      assert.ok(gas < TX_GAS_CAP, `estimate ${gas} under the cap`);
      const hash = await wallet.sendTransaction({
        account: wallet.account,
        chain: wallet.chain,
        to: verifier,
        data,
        gas,
      });
      const r = await clients.public.waitForTransactionReceipt({ hash, pollingInterval: 50 });
      assert.equal(r.status, 'success');
      assert.ok(r.gasUsed <= gas);
    }
  });
});
