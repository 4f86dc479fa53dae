// Fuzz: VRF proof decoding and verification (both backends) and HPKE open inputs (issue 13
// item 5). Seeds: RFC 9381 and RFC 9180 vectors in test/vectors. Every failure must be a coded
// FerryError (VRF_*, HPKE_*, INVALID_ARGUMENT), never a library error.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { assertExercised, fuzz, fuzzAsync, mutate, type Rng, summary } from '../../test/helpers/fuzz.ts';
import { fromHex } from '../kernel/index.ts';
import { createRecipientContext, hpkeOpen } from './hpke.ts';
import { useVrfBackend, vrfBackend, vrfProofToHash, vrfValidatePublicKey, vrfVerify } from './vrf/index.ts';

const V = new URL('../../test/vectors/', import.meta.url);
const json = (p: string) => JSON.parse(readFileSync(new URL(p, V), 'utf8'));

type Fields = Record<string, Uint8Array>;

/** Mutates one field (or, rarely, swaps two) of a record of byte strings. */
function fieldMutations(rng: Rng, seeds: readonly Fields[]): Fields {
  const s = { ...rng.pick(seeds) };
  const keys = Object.keys(s);
  for (let k = 0, n = 1 + rng.below(2); k < n; k++) {
    const f = rng.pick(keys);
    s[f] = mutate(rng, s[f] as Uint8Array, Object.values(s));
  }
  return s;
}

const vrfSeeds: Fields[] = (
  json('vrf/rfc9381-edwards25519-tai.json').vectors as Record<string, string>[]
).map((v) => ({
  pk: fromHex(v.PK as string),
  alpha: fromHex(v.alpha as string),
  pi: fromHex(v.pi as string),
}));

/** What the three VRF calls return on one input, under the current backend: codes or outputs. */
function vrfOutcome(pk: Uint8Array, alpha: Uint8Array, pi: Uint8Array): string[] {
  const out: string[] = [];
  const calls: (() => Uint8Array | null)[] = [
    () => {
      vrfValidatePublicKey(pk);
      return null;
    },
    () => vrfProofToHash(pi),
    () => vrfVerify(pk, alpha, pi),
  ];
  for (const f of calls) {
    try {
      const r = f();
      out.push(r instanceof Uint8Array ? Buffer.from(r).toString('hex') : 'ok');
    } catch (e) {
      if (!(e instanceof Error) || e.name !== 'FerryError') throw e;
      out.push((e as Error & { code: string }).code);
    }
  }
  return out;
}

test('fuzz VRF: vrfVerify, vrfProofToHash, vrfValidatePublicKey; both backends agree', (t) => {
  const before = vrfBackend();
  let sodium = true;
  try {
    useVrfBackend('sodium-native');
  } catch {
    sodium = false; // optional dependency: the JS backend is fuzzed alone
  }
  try {
    const stats = fuzz(
      'vrf',
      { seed: 0x0f1, iterations: 600, seeds: vrfSeeds, generate: fieldMutations },
      ({ pk, alpha, pi }) => {
        useVrfBackend('js');
        const js = vrfOutcome(pk as Uint8Array, alpha as Uint8Array, pi as Uint8Array);
        if (sodium) {
          useVrfBackend('sodium-native');
          const na = vrfOutcome(pk as Uint8Array, alpha as Uint8Array, pi as Uint8Array);
          assert.deepEqual(na, js, 'the sodium-native and JS backends disagree');
        }
        // Replay the verification so the harness sees its error code.
        vrfVerify(pk as Uint8Array, alpha as Uint8Array, pi as Uint8Array);
      },
    );
    assertExercised('vrf', stats);
    t.diagnostic(`${summary(stats)}; backends: ${sodium ? 'js and sodium-native' : 'js'}`);
  } finally {
    useVrfBackend(before);
  }
});

const H = json('hpke/rfc9180-x25519-sha256-chacha20poly1305-base.json');
const hpkeSeeds: Fields[] = (H.encryptions as Record<string, string>[]).slice(0, 1).map((e) => ({
  sk: fromHex(H.setup.skRm),
  enc: fromHex(H.setup.enc),
  ct: fromHex(e.ct as string),
  info: fromHex(H.setup.info),
  aad: fromHex(e.aad as string),
}));

test('fuzz hpkeOpen and the recipient context: mutated key, enc, ciphertext, info, aad', async (t) => {
  const stats = await fuzzAsync(
    'hpkeOpen',
    { seed: 0x49e3, iterations: 1500, seeds: hpkeSeeds, generate: fieldMutations },
    async ({ sk, enc, ct, info, aad }) => {
      try {
        const ctx = createRecipientContext({
          recipientPrivateKey: sk as Uint8Array,
          enc: enc as Uint8Array,
          info: info as Uint8Array,
        });
        ctx.export(aad as Uint8Array, (ct as Uint8Array).length % 300);
        ctx.destroy();
      } catch (e) {
        if (!(e instanceof Error) || e.name !== 'FerryError') throw e;
      }
      return hpkeOpen(
        sk as Uint8Array,
        enc as Uint8Array,
        ct as Uint8Array,
        info as Uint8Array,
        aad as Uint8Array,
      );
    },
  );
  assertExercised('hpkeOpen', stats);
  t.diagnostic(summary(stats));
});
