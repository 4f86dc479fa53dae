// Fuzz: canonical CBOR decoding and every domain tag the protocol decodes (issue 13 item 5).
// Bounded (FERRY_FUZZ_ITERATIONS replaces the counts); every failure must be a coded FerryError.
import { test } from 'node:test';
import {
  assertExercised,
  fuzz,
  mutateValue,
  randomValue,
  type Rng,
  summary,
} from '../../test/helpers/fuzz.ts';
import {
  type CanonicalValue,
  decodeCanonical,
  decodeTagged,
  encodeCanonical,
  encodeTagged,
} from './canonical.ts';

const TAGS = [
  'ferry/evidence/v1',
  'ferry/receipt/v2',
  'ferry/enclave-msg/v1',
  'ferry/task-commitments/v1',
  'ferry/key-release/v1',
  'ferry/key-release-info/v2',
  'ferry/http-request/v1',
  'ferry/attestation-result/v1',
  'ferry/attestation-result/v2',
  'ferry/appraisal-policy/v1',
  'ferry/sim-cert/v1',
  'ferry/sim-root/v1',
  'ferry/sim-attester/v1',
  'ferry/tpm2-activation/v1',
];

const seeds: Uint8Array[] = [
  encodeCanonical({ a: 1, b: [1, 2, 3], c: new Uint8Array(32).fill(7), d: 'text', e: null, f: true }),
  encodeCanonical([2n ** 64n - 1n, -(2n ** 64n), 0, -1, 23, 24, 255, 65536, 2 ** 40]),
  encodeCanonical({ deep: [[[[{ x: [new Uint8Array(3)] }]]]] }),
  ...TAGS.map((t, i) =>
    encodeTagged(t, { kind: 'sim', reportData: new Uint8Array(64).fill(i), body: { n: i } }),
  ),
];

test('fuzz decodeCanonical: byte mutations fail only with CBOR_* codes', (t) => {
  const stats = fuzz('decodeCanonical', { seed: 0xc0b0, iterations: 4000, seeds }, (b) => decodeCanonical(b));
  assertExercised('decodeCanonical', stats);
  t.diagnostic(summary(stats));
});

test('fuzz decodeTagged: every protocol tag, byte mutations', (t) => {
  let k = 0;
  const stats = fuzz('decodeTagged', { seed: 0x7a66, iterations: 3000, seeds }, (b) =>
    decodeTagged(TAGS[k++ % TAGS.length] as string, b),
  );
  assertExercised('decodeTagged', stats);
  t.diagnostic(summary(stats));
});

test('fuzz decodeCanonical: structure-aware (random trees, deep nesting, huge lengths)', (t) => {
  const gen = (rng: Rng, s: readonly Uint8Array[]): Uint8Array => {
    const pick = rng.below(16);
    if (pick === 0) {
      // Deep nesting: arrays or maps, up to 5k levels.
      const depth = 1 + rng.below(5_000);
      const open = rng.below(2) === 0 ? [0x81] : [0xa1, 0x61, 0x61];
      const out = new Uint8Array(depth * open.length + 1);
      for (let i = 0; i < depth; i++) out.set(open, i * open.length);
      out[out.length - 1] = 0xf6;
      return out;
    }
    if (pick === 1) {
      // A huge declared length for a string, array or map, with a short body.
      const major = rng.pick([0x40, 0x60, 0x80, 0xa0]);
      return Uint8Array.from([major | 0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    }
    if (pick < 6) return encodeCanonical(randomValue(rng, 4) as CanonicalValue);
    const v = decodeCanonical(rng.pick(s));
    return encodeCanonical(mutateValue(rng, v) as CanonicalValue);
  };
  const stats = fuzz(
    'decodeCanonical/tree',
    { seed: 0x5eed, iterations: 1000, seeds, generate: gen },
    (b) => {
      const v = decodeCanonical(b);
      decodeTagged('ferry/evidence/v1', b);
      return v;
    },
  );
  assertExercised('decodeCanonical/tree', stats);
  t.diagnostic(summary(stats));
});
