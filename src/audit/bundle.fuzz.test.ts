// Fuzz: receipt bundle text (parseBundle) (issue 13 item 5). Every failure must be a coded
// FerryError; what parses converts back to the same JSON.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertExercised, byteMutations, fuzz, mutateValue, summary } from '../../test/helpers/fuzz.ts';
import { bundleToJson, parseBundle } from './bundle.ts';

const h = (n: number, len: number) => n.toString(16).padStart(2, '0').repeat(len);
const seed = {
  format: 'ferry/receipt-bundle/v1',
  chainId: 31337,
  contracts: {
    NodeRegistry: `0x${h(1, 20)}`,
    Assets: `0x${h(2, 20)}`,
    Tasks: `0x${h(3, 20)}`,
  },
  taskId: (2n ** 255n).toString(),
  attempt: 1,
  receipt: h(4, 100),
  signature: h(5, 64),
  evidence: h(6, 300),
  enclave: { x25519Pub: h(7, 32), ed25519Pub: h(8, 32) },
  resultHash: h(9, 32),
  resultLocation: 'http://127.0.0.1:1/v1/tasks/1/result',
};
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

test('fuzz parseBundle: JSON text bytes and mutated values', (t) => {
  const stats = fuzz(
    'parseBundle',
    {
      seed: 0xb0d1,
      iterations: 3000,
      seeds: [enc(seed)],
      generate: (rng, s) => {
        if (rng.below(2) === 0) return byteMutations(rng, s);
        const m = mutateValue(rng, JSON.parse(new TextDecoder().decode(rng.pick(s))));
        return enc(
          JSON.parse(
            JSON.stringify(m, (_k, w) =>
              typeof w === 'bigint'
                ? Number(w)
                : w instanceof Uint8Array
                  ? Buffer.from(w).toString('hex')
                  : w,
            ),
          ),
        );
      },
    },
    (b) => {
      const text = new TextDecoder().decode(b);
      const parsed = parseBundle(text);
      assert.deepEqual(bundleToJson(parsed), { format: 'ferry/receipt-bundle/v1', ...JSON.parse(text) });
    },
  );
  assertExercised('parseBundle', stats);
  t.diagnostic(summary(stats));
});
