// Fuzz: DCAP quotes (TDX and SGX), collateral JSON and CRLs (issue 13 item 5). Seeds: the Intel
// samples of test/vectors/intel-dcap. Every failure must be a coded FerryError (dcap-qvl's own
// errors are wrapped), never a library exception.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  assertExercised,
  fuzz,
  mutate,
  mutateValue,
  type Rng,
  randomValue,
  summary,
} from '../../../test/helpers/fuzz.ts';
import { checkDcapCrls, parseCrl } from './crl.ts';
import { intelSgxRootCaDer } from './roots.ts';
import { parseCollateral, verifyDcapQuote } from './verify.ts';

const V = new URL('../../../test/vectors/intel-dcap/', import.meta.url);
const AT = new Date('2025-07-01T00:00:00Z');
const KINDS = ['tdx', 'sgx'] as const;
const quotes = KINDS.map((k) => new Uint8Array(readFileSync(new URL(`${k}_quote`, V))));
const collateralText = KINDS.map((k) => readFileSync(new URL(`${k}_quote_collateral.json`, V), 'utf8'));
const collaterals = collateralText.map((c) => parseCollateral(c));
const ROOT = new X509Certificate(intelSgxRootCaDer());

type QuoteIn = { kind: 0 | 1; quote: Uint8Array };

test('fuzz verifyDcapQuote: mutated TDX and SGX quotes with their collateral', (t) => {
  const outcomes = { verified: 0 };
  const stats = fuzz(
    'verifyDcapQuote',
    {
      seed: 0xdca9,
      iterations: 600,
      seeds: [
        { kind: 0, quote: quotes[0] as Uint8Array },
        { kind: 1, quote: quotes[1] as Uint8Array },
      ] as QuoteIn[],
      generate: (rng: Rng, s: readonly QuoteIn[]): QuoteIn => {
        const x = rng.pick(s);
        let q = x.quote;
        for (let k = 0, n = 1 + rng.below(3); k < n; k++) q = mutate(rng, q, quotes);
        // Sometimes the other kind's verifier, on purpose.
        return { kind: (rng.below(8) === 0 ? 1 - x.kind : x.kind) as 0 | 1, quote: q };
      },
    },
    ({ kind, quote }) => {
      verifyDcapQuote(KINDS[kind] as 'tdx' | 'sgx', quote, collaterals[kind] as never, AT);
      outcomes.verified++;
    },
  );
  assertExercised('verifyDcapQuote', stats);
  t.diagnostic(`${summary(stats)}; ${JSON.stringify(outcomes)}`);
});

type CollIn = { kind: 0 | 1; text: string };

test('fuzz parseCollateral + verifyDcapQuote: mutated collateral fields, types and JSON text', (t) => {
  const stats = fuzz(
    'collateral',
    {
      seed: 0xc011,
      iterations: 400,
      seeds: collateralText.map((text, i) => ({ kind: i as 0 | 1, text })),
      generate: (rng: Rng, s: readonly CollIn[]): CollIn => {
        const x = rng.pick(s);
        if (rng.below(3) === 0) {
          // Bytes of the JSON text.
          return { kind: x.kind, text: Buffer.from(mutate(rng, Buffer.from(x.text))).toString('latin1') };
        }
        const o = JSON.parse(x.text) as Record<string, unknown>;
        const k = rng.pick(Object.keys(o));
        const v = o[k];
        if (typeof v === 'string' && rng.below(4) !== 0) {
          o[k] = Buffer.from(mutate(rng, Buffer.from(v))).toString('latin1');
        } else if (rng.below(2) === 0) {
          delete o[k];
        } else {
          const r = mutateValue(rng, randomValue(rng, 2));
          o[k] = JSON.parse(
            JSON.stringify(r, (_k, w) =>
              typeof w === 'bigint' ? Number(w) : w instanceof Uint8Array ? [...w] : w,
            ),
          );
        }
        return { kind: x.kind, text: JSON.stringify(o) };
      },
    },
    ({ kind, text }) => {
      const c = parseCollateral(text);
      return verifyDcapQuote(KINDS[kind] as 'tdx' | 'sgx', quotes[kind] as Uint8Array, c, AT);
    },
  );
  assertExercised('collateral', stats);
  t.diagnostic(summary(stats));
});

test('fuzz parseCrl and checkDcapCrls: mutated root CA and PCK CRLs', (t) => {
  const c = collaterals[0] as unknown as {
    root_ca_crl: string;
    pck_crl: string;
    pck_crl_issuer_chain: string;
  };
  const der = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
  type CrlIn = { field: 'root_ca_crl' | 'pck_crl'; crl: Uint8Array };
  const seeds: CrlIn[] = [
    { field: 'root_ca_crl', crl: der(c.root_ca_crl) },
    { field: 'pck_crl', crl: der(c.pck_crl) },
  ];
  const gen = (rng: Rng, s: readonly CrlIn[]): CrlIn => {
    const x = rng.pick(s);
    return { field: x.field, crl: mutate(rng, x.crl, [der(c.root_ca_crl), der(c.pck_crl)]) };
  };
  const stats = fuzz('crl', { seed: 0xc71, iterations: 1500, seeds, generate: gen }, ({ field, crl }) => {
    parseCrl(crl);
    return checkDcapCrls({ ...c, [field]: Buffer.from(crl).toString('hex') }, ROOT, AT);
  });
  assertExercised('crl', stats);
  t.diagnostic(summary(stats));
});
