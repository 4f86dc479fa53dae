/**
 * HPKE single-shot seal and open (32-byte file key, key-release info) per second: ours
 * (node:crypto) against @hpke/core with @hpke/chacha20poly1305 (WebCrypto X25519 + JS AEAD).
 * Ed25519 sign and verify of a tagged receipt-sized object per second: ours (node:crypto,
 * cached public KeyObjects) against @noble/curves' ed25519. Sortition: sortitionSeats calls
 * per second for a small stake and for a large one (mean 1000 seats); committeeCapture per
 * second (no baseline). All in the same run.
 */
import { randomBytes } from 'node:crypto';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import { CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hpkeGenerateKeyPair, hpkeOpen, hpkeSeal } from '../src/crypto/hpke.ts';
import { keyReleaseInfo } from '../src/protocol/release-info.ts';
import { generateSigningKeyPair, signTagged, verifyTagged } from '../src/crypto/sign.ts';
import { committeeCapture, sortitionSeats } from '../src/crypto/sortition.ts';
import { encodeTagged } from '../src/kernel/index.ts';
import { type Bench, type BenchRow, opsPerSecond } from './harness.ts';

const bench: Bench = async ({ quick, log }) => {
  const ms = quick ? 300 : 1000;
  const rows: BenchRow[] = [];

  // --- HPKE --------------------------------------------------------------------------------
  const { privateKey, publicKey } = hpkeGenerateKeyPair();
  const info = keyReleaseInfo({
    commitments: new Uint8Array(randomBytes(32)),
    evidenceHash: new Uint8Array(randomBytes(32)),
    assetId: 7n,
    assetKind: 'dataset',
  });
  const fileKey = new Uint8Array(randomBytes(32));
  const sealed = await hpkeSeal(publicKey, fileKey, info);
  const suite = new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Chacha20Poly1305(),
  });
  const pkR = await suite.kem.importKey('raw', publicKey, true);
  const skR = await suite.kem.importKey('raw', privateKey, false);
  const theirSealed = await suite.seal({ recipientPublicKey: pkR, info }, fileKey);
  // Both sides must agree before they are timed.
  if (
    (await hpkeOpen(privateKey, new Uint8Array(theirSealed.enc), new Uint8Array(theirSealed.ct), info))
      .length !== 32
  ) {
    throw new Error('HPKE interop check failed');
  }
  log('hpke seal');
  rows.push({
    group: 'hpke',
    name: 'seal (ferry, node:crypto)',
    value: await opsPerSecond(() => hpkeSeal(publicKey, fileKey, info), ms),
    unit: 'ops/s',
    baseline: 'seal (@hpke/core)',
  });
  rows.push({
    group: 'hpke',
    name: 'seal (@hpke/core)',
    value: await opsPerSecond(() => suite.seal({ recipientPublicKey: pkR, info }, fileKey), ms),
    unit: 'ops/s',
  });
  log('hpke open');
  rows.push({
    group: 'hpke',
    name: 'open (ferry, node:crypto)',
    value: await opsPerSecond(() => hpkeOpen(privateKey, sealed.enc, sealed.ciphertext, info), ms),
    unit: 'ops/s',
    baseline: 'open (@hpke/core)',
  });
  rows.push({
    group: 'hpke',
    name: 'open (@hpke/core)',
    value: await opsPerSecond(
      () => suite.open({ recipientKey: skR, enc: theirSealed.enc, info }, theirSealed.ct),
      ms,
    ),
    unit: 'ops/s',
  });

  // --- Ed25519 ------------------------------------------------------------------------------
  const { secretKey, publicKey: edPub } = generateSigningKeyPair();
  const body = {
    task: 42n,
    attempt: 1,
    appMeasurement: new Uint8Array(32).fill(1),
    datasets: [new Uint8Array(32).fill(2), new Uint8Array(32).fill(3)],
    inputHash: new Uint8Array(32).fill(4),
    resultHash: new Uint8Array(32).fill(5),
    exitStatus: 0,
  };
  const tag = 'ferry/receipt/v1';
  const msg = encodeTagged(tag, body);
  const sig = signTagged(secretKey, tag, body);
  if (!ed25519.verify(sig, msg, edPub)) throw new Error('Ed25519 cross-check failed');
  log('ed25519 sign');
  rows.push({
    group: 'ed25519',
    name: 'signTagged (ferry, node:crypto)',
    value: await opsPerSecond(() => signTagged(secretKey, tag, body), ms),
    unit: 'ops/s',
    baseline: 'encode + sign (@noble/curves)',
  });
  rows.push({
    group: 'ed25519',
    name: 'encode + sign (@noble/curves)',
    value: await opsPerSecond(() => ed25519.sign(encodeTagged(tag, body), secretKey), ms),
    unit: 'ops/s',
  });
  log('ed25519 verify');
  rows.push({
    group: 'ed25519',
    name: 'verifyTagged (ferry, node:crypto)',
    value: await opsPerSecond(() => verifyTagged(edPub, tag, body, sig), ms),
    unit: 'ops/s',
    baseline: 'encode + verify (@noble/curves)',
  });
  rows.push({
    group: 'ed25519',
    name: 'encode + verify (@noble/curves)',
    value: await opsPerSecond(() => ed25519.verify(sig, encodeTagged(tag, body), edPub), ms),
    unit: 'ops/s',
  });

  // --- sortition -------------------------------------------------------------------------------
  log('sortition');
  const betas = Array.from({ length: 1024 }, () => new Uint8Array(randomBytes(64)));
  let i = 0;
  rows.push({
    group: 'sortition',
    name: 'sortitionSeats (w/W = 1%, tau 100)',
    value: await opsPerSecond(() => sortitionSeats(betas[i++ & 1023], 1_000n, 100_000n, 100), ms),
    unit: 'ops/s',
  });
  rows.push({
    group: 'sortition',
    name: 'sortitionSeats (1e12 units, mean 1000)',
    value: await opsPerSecond(() => sortitionSeats(betas[i++ & 1023], 10n ** 12n, 10n ** 12n, 1000), ms),
    unit: 'ops/s',
  });
  rows.push({
    group: 'sortition',
    name: 'committeeCapture (tau 1000, t 2/3)',
    value: await opsPerSecond(() => committeeCapture({ tau: 1000, threshold: 667, adversary: 0.2 }), ms),
    unit: 'ops/s',
  });
  return rows;
};

export default bench;
