// Fuzz: TPM 2.0 structures, PCR files and quote verification (issue 13 item 5). Seeds: the four
// captured sets of test/vectors/tpm2. Every failure must be a coded FerryError, and
// verifyQuote (which reports rather than throws) must report only listed codes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { assertExercised, fuzz, latin1, mutate, type Rng, summary } from '../../../test/helpers/fuzz.ts';
import { ERROR_CODES } from '../../kernel/index.ts';
import { parsePcrValues, parseSelection } from './pcrs.ts';
import { parseQuoteAttest, parseSignature, parseTpm2bPublic, parseTpmtPublic } from './structures.ts';
import { parseAkPublic, parseCertificates, verifyQuote } from './verify.ts';

const V = join(import.meta.dirname, '../../../test/vectors/tpm2');
const read = (p: string) => new Uint8Array(readFileSync(join(V, p)));
const SETS = ['rsa-sha256', 'ecc-sha256', 'rsapss-sha256', 'rsa-sha384-sha1bank'];
const NOW = new Date('2026-01-01T00:00:00Z');

const quotes = SETS.map((s) => read(`${s}/quote.msg`));
const sigs = SETS.map((s) => read(`${s}/quote.sig`));
const aks = SETS.map((s) => read(`${s}/ak.tpm2b`));
const pcrFiles = SETS.map((s) => read(`${s}/pcrs.bin`));

test('fuzz parseQuoteAttest / parseSignature / parseTpm2bPublic / parseTpmtPublic', (t) => {
  const seeds = [...quotes, ...sigs, ...aks, ...aks.map((a) => a.subarray(2))];
  const stats = fuzz('tpm2 structures', { seed: 0x7e2, iterations: 4000, seeds }, (b) => {
    let first: unknown = null;
    let ok = 0;
    for (const f of [parseQuoteAttest, parseSignature, parseTpm2bPublic, parseTpmtPublic, parseAkPublic]) {
      try {
        f(b);
        ok++;
      } catch (e) {
        if (!(e instanceof Error) || e.name !== 'FerryError') throw e;
        first ??= e;
      }
    }
    if (ok === 0) throw first;
  });
  assertExercised('tpm2 structures', stats);
  t.diagnostic(summary(stats));
});

test('fuzz parsePcrValues (serialized and JSON) and parseSelection', (t) => {
  const seeds = [
    ...pcrFiles,
    ...SETS.map((s) => read(`${s}/pcrs.json`)),
    ...SETS.map((s) => read(`${s}/selection.txt`)),
  ];
  const stats = fuzz('pcrs', { seed: 0x9c5, iterations: 3000, seeds }, (b) => {
    try {
      parseSelection(latin1(b).trim());
    } catch (e) {
      if (!(e instanceof Error) || e.name !== 'FerryError') throw e;
    }
    return parsePcrValues(b);
  });
  assertExercised('pcrs', stats);
  t.diagnostic(summary(stats));
});

test('fuzz parseCertificates: the EK certificate and CA PEMs', (t) => {
  const seeds = [read('ek-cert.der'), read('ca-root.pem'), read('ca-issuer.pem')];
  const stats = fuzz('parseCertificates', { seed: 0xce7, iterations: 1500, seeds }, (b) =>
    parseCertificates(b, 'fuzz'),
  );
  assertExercised('parseCertificates', stats);
  t.diagnostic(summary(stats));
});

type QuoteInput = { set: number; quote: Uint8Array; signature: Uint8Array; pcrs: Uint8Array };

test('fuzz verifyQuote: mutated quote, signature or PCRs under the real AK', (t) => {
  const akParsed = aks.map((a) => parseAkPublic(a));
  const pcrParsed = pcrFiles.map((p) => parsePcrValues(p));
  const seeds: QuoteInput[] = SETS.map((_, i) => ({
    set: i,
    quote: quotes[i] as Uint8Array,
    signature: sigs[i] as Uint8Array,
    pcrs: pcrFiles[i] as Uint8Array,
  }));
  const gen = (rng: Rng, s: readonly QuoteInput[]): QuoteInput => {
    const x = { ...rng.pick(s) };
    const f = rng.pick(['quote', 'signature', 'pcrs'] as const);
    x[f] = mutate(rng, x[f], [...quotes, ...sigs]);
    return x;
  };
  const outcomes = { valid: 0, invalid: 0 };
  const stats = fuzz('verifyQuote', { seed: 0x0a7, iterations: 1200, seeds, generate: gen }, (x) => {
    let pcrs = pcrParsed[x.set];
    try {
      pcrs = parsePcrValues(x.pcrs);
    } catch (e) {
      if (!(e instanceof Error) || e.name !== 'FerryError') throw e;
    }
    const v = verifyQuote({
      quote: x.quote,
      signature: x.signature,
      ak: akParsed[x.set] as ReturnType<typeof parseAkPublic>,
      pcrs,
      now: NOW,
    });
    for (const r of [...v.failures, ...v.notes]) {
      assert.ok(Object.hasOwn(ERROR_CODES, r.code), `unlisted code ${r.code}`);
      assert.notEqual(r.code, 'INTERNAL', r.message);
    }
    outcomes[v.valid ? 'valid' : 'invalid']++;
  });
  // The unmutated seeds verify; mutations are caught.
  assert.ok(outcomes.valid >= SETS.length && outcomes.invalid > 0, JSON.stringify(outcomes));
  t.diagnostic(`${summary(stats)}; ${JSON.stringify(outcomes)}`);
});
