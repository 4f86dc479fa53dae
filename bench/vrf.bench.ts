/**
 * RFC 9381 VRF (ECVRF-EDWARDS25519-SHA512-TAI): our prove / verify against a straightforward
 * @noble/curves implementation (src/crypto/vrf/reference.ts) in the same run. "ours" is what
 * index.ts uses here (sodium-native when it loads); the pure-JS path used without it is
 * measured too. Inputs rotate over many alphas and a few keys so caches behave as in a node
 * checking claims from several peers.
 */
import { randomBytes } from 'node:crypto';
import { referenceProve, referenceVerify } from '../src/crypto/vrf/reference.ts';
import { useVrfBackend, vrfBackend, vrfProve, vrfPublicKey, vrfVerify } from '../src/crypto/vrf/index.ts';
import { type Bench, type BenchRow, opsPerSecond } from './harness.ts';

const bench: Bench = async ({ quick, log }) => {
  const ms = quick ? 300 : 1500;
  const keys = Array.from({ length: 8 }, () => {
    const sk = new Uint8Array(randomBytes(32));
    return { sk, pk: vrfPublicKey(sk) };
  });
  const inputs = Array.from({ length: 256 }, (_, i) => {
    const key = keys[i % keys.length];
    const alpha = new Uint8Array(randomBytes(111)); // the size of a claim alpha
    return { ...key, alpha, pi: vrfProve(key.sk, alpha) };
  });
  let i = 0;
  const next = () => inputs[i++ % inputs.length];
  const verifyOk = (beta: Uint8Array | null) => {
    if (beta === null || beta.length !== 64) throw new Error('bench: a valid proof failed to verify');
  };

  const rows: BenchRow[] = [];
  const row = (name: string, value: number, baseline?: string, note?: string) => {
    log(`${name}: ${value.toFixed(0)} ops/s`);
    rows.push({ group: 'vrf', name, value, unit: 'ops/s', baseline, note });
  };

  const ours = vrfBackend();
  try {
    useVrfBackend('auto');
    const proveOurs = await opsPerSecond(() => {
      const x = next();
      return vrfProve(x.sk, x.alpha);
    }, ms);
    const verifyOurs = await opsPerSecond(() => {
      const x = next();
      verifyOk(vrfVerify(x.pk, x.alpha, x.pi));
    }, ms);
    useVrfBackend('js');
    const proveJs = await opsPerSecond(() => {
      const x = next();
      return vrfProve(x.sk, x.alpha);
    }, ms);
    const verifyJs = await opsPerSecond(() => {
      const x = next();
      verifyOk(vrfVerify(x.pk, x.alpha, x.pi));
    }, ms);
    useVrfBackend('auto');
    const proveRef = await opsPerSecond(() => {
      const x = next();
      return referenceProve(x.sk, x.alpha);
    }, ms);
    const verifyRef = await opsPerSecond(() => {
      const x = next();
      verifyOk(referenceVerify(x.pk, x.alpha, x.pi));
    }, ms);
    row('prove (ours)', proveOurs, 'prove (noble straightforward)', ours);
    row('verify (ours)', verifyOurs, 'verify (noble straightforward)', ours);
    row('prove (ours, pure JS)', proveJs, 'prove (noble straightforward)', 'without sodium-native');
    row('verify (ours, pure JS)', verifyJs, 'verify (noble straightforward)', 'without sodium-native');
    row('prove (noble straightforward)', proveRef);
    row('verify (noble straightforward)', verifyRef);
  } finally {
    useVrfBackend('auto');
  }
  return rows;
};

export default bench;
