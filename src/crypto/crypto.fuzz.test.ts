// Fuzz: VRF proof decoding and verification (both backends) and HPKE open inputs (issue 13
// item 5). Seeds: RFC 9381 and RFC 9180 vectors in test/vectors. Every failure must be a coded
// FerryError (VRF_*, HPKE_*, INVALID_ARGUMENT), never a library error.
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

for (const backend of ['js', 'sodium-native'] as const) {
  test(`fuzz VRF (${backend} backend): vrfVerify, vrfProofToHash, vrfValidatePublicKey`, (t) => {
    const before = vrfBackend();
    try {
      useVrfBackend(backend);
    } catch {
      t.skip('sodium-native is not installed (optional dependency)');
      return;
    }
    try {
      const stats = fuzz(
        `vrf/${backend}`,
        { seed: 0x0f1, iterations: backend === 'js' ? 400 : 1000, seeds: vrfSeeds, generate: fieldMutations },
        ({ pk, alpha, pi }) => {
          let first: unknown = null;
          for (const f of [
            () => vrfValidatePublicKey(pk as Uint8Array),
            () => vrfProofToHash(pi as Uint8Array),
          ]) {
            try {
              f();
            } catch (e) {
              first ??= e;
              if (!(e instanceof Error) || e.name !== 'FerryError') throw e;
            }
          }
          vrfVerify(pk as Uint8Array, alpha as Uint8Array, pi as Uint8Array);
          if (first !== null) throw first;
        },
      );
      assertExercised(`vrf/${backend}`, stats);
      t.diagnostic(summary(stats));
    } finally {
      useVrfBackend(before);
    }
  });
}

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
