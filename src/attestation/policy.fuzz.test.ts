// Fuzz: appraisal policies as JSON (parsePolicy) and as policy documents (decodePolicyDocument,
// canonical CBOR) (issue 13 item 5). Seeds: the built-in policies and policies with reference
// values of every kind built here. Every failure must be a coded FerryError.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertExercised,
  byteMutations,
  fuzz,
  mutateValue,
  type Rng,
  summary,
} from '../../test/helpers/fuzz.ts';
import { type CanonicalValue, decodeCanonical, encodeCanonical, equalBytes } from '../kernel/index.ts';
import {
  decodePolicyDocument,
  developmentPolicy,
  encodePolicyDocument,
  PRODUCTION_POLICY,
  parsePolicy,
  policyHash,
} from './policy.ts';

const h = (n: number, len: number) => n.toString(16).padStart(2, '0').repeat(len);
const policies = [
  developmentPolicy(),
  PRODUCTION_POLICY,
  parsePolicy({
    ...PRODUCTION_POLICY,
    name: 'fuzz-pinned',
    allowDebug: true,
    referenceValues: {
      'sev-snp': { measurement: [h(1, 48)] },
      tdx: { mrTd: [h(2, 48)], rtmr0: [h(3, 48)] },
      sgx: { mrEnclave: [h(4, 32)] },
      tpm2: { pcrs: { sha256: { '23': [h(5, 32)], '7': [h(6, 32), h(7, 32)] } } },
    },
  }),
];
const docs = policies.map((p) => encodePolicyDocument(p));
const texts = policies.map((p) => new TextEncoder().encode(JSON.stringify(p)));

function docGen(rng: Rng, seeds: readonly Uint8Array[]): Uint8Array {
  if (rng.below(2) === 0) return byteMutations(rng, seeds);
  const v = decodeCanonical(rng.pick(seeds));
  return Uint8Array.from(encodeCanonical(mutateValue(rng, v as never) as CanonicalValue));
}

test('fuzz decodePolicyDocument: bytes and structure; what decodes re-encodes to the same bytes', (t) => {
  const stats = fuzz(
    'decodePolicyDocument',
    { seed: 0x9011, iterations: 3000, seeds: docs, generate: docGen },
    (b) => {
      const p = decodePolicyDocument(b);
      assert.ok(equalBytes(encodePolicyDocument(p), b), 'a decoded policy document is in normalized form');
      assert.ok(policyHash(p).length === 32);
    },
  );
  assertExercised('decodePolicyDocument', stats);
  t.diagnostic(summary(stats));
});

test('fuzz parsePolicy: JSON text bytes and mutated values', (t) => {
  const stats = fuzz(
    'parsePolicy',
    {
      seed: 0x9a25,
      iterations: 3000,
      seeds: texts,
      generate: (rng, s) => {
        if (rng.below(2) === 0) return byteMutations(rng, s);
        const v = JSON.parse(new TextDecoder().decode(rng.pick(s)));
        const m = mutateValue(rng, v);
        return new TextEncoder().encode(
          JSON.stringify(m, (_k, w) =>
            typeof w === 'bigint' ? Number(w) : w instanceof Uint8Array ? [...w] : w,
          ),
        );
      },
    },
    (b) => {
      const text = new TextDecoder().decode(b);
      const p = parsePolicy(text);
      // A policy parsePolicy accepts has a document that decodes back to it.
      assert.deepEqual(decodePolicyDocument(encodePolicyDocument(p)), p);
    },
  );
  assertExercised('parsePolicy', stats);
  t.diagnostic(summary(stats));
});
