// Fuzz: SEV-SNP reports, DER / X.509 parsing and report verification (issue 13 item 5). Seeds:
// the Milan sample and the synthetic PKI of test/vectors/sev-snp-milan (whose VCEK key re-signs
// mutated reports, so mutations reach the checks behind the signature). Every failure must be a
// coded FerryError; appraiseSevSnp must report only listed codes.
import assert from 'node:assert/strict';
import { createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { assertExercised, fuzz, mutate, type Rng, summary } from '../../../test/helpers/fuzz.ts';
import { ERROR_CODES } from '../../kernel/index.ts';
import { developmentPolicy } from '../policy.ts';
import { certificateFields, derIa5, derSmallUint } from './der.ts';
import { parseSnpReport, SIGNED_LENGTH } from './report.ts';
import { parseAmdChain, parsePemCertificates } from './roots.ts';
import { buildSnpCertTable, parseSnpCertTable } from '../tsm/backend.ts';
import { appraiseSevSnp, verifySnpReport } from './verify.ts';

const V = new URL('../../../test/vectors/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, V)));
const REPORT = read('sev-snp-milan/attestation.bin');
const VCEK = read('sev-snp-milan/vcek.der');
const SYN = 'sev-snp-milan/synthetic/';
const SYN_NOW = new Date('2027-01-01T00:00:00Z');
const testChain = read(`${SYN}ask_ark_test.pem`);
const testArk = parsePemCertificates(testChain, 'test chain')[1];
const key = createPrivateKey(readFileSync(new URL(`${SYN}vcek.key`, V)));

function resign(report: Uint8Array): Uint8Array {
  if (report.length < SIGNED_LENGTH + 144) return report;
  const sig = sign('sha384', report.subarray(0, SIGNED_LENGTH), { key, dsaEncoding: 'ieee-p1363' });
  const out = Uint8Array.from(report);
  out.fill(0, SIGNED_LENGTH, SIGNED_LENGTH + 144);
  out.set(Uint8Array.from(sig.subarray(0, 48)).reverse(), SIGNED_LENGTH);
  out.set(Uint8Array.from(sig.subarray(48)).reverse(), SIGNED_LENGTH + 72);
  return out;
}

/** Mutations confined to the signed part of the report (so the report keeps its length). */
function reportMutation(rng: Rng, seeds: readonly Uint8Array[]): Uint8Array {
  const r = Uint8Array.from(rng.pick(seeds));
  if (rng.below(8) === 0) return mutate(rng, r);
  for (let k = 0, n = 1 + rng.below(4); k < n; k++) {
    const at = rng.below(SIGNED_LENGTH);
    r[at] = rng.below(2) === 0 ? rng.u32() & 0xff : rng.pick([0, 1, 0x7f, 0xff]);
  }
  return r;
}

test('fuzz parseSnpReport: byte and in-place mutations', (t) => {
  const stats = fuzz(
    'parseSnpReport',
    { seed: 0x5e5, iterations: 3000, seeds: [REPORT], generate: reportMutation },
    (b) => parseSnpReport(b),
  );
  assertExercised('parseSnpReport', stats);
  t.diagnostic(summary(stats));
});

test('fuzz SEV-SNP DER: certificateFields, derSmallUint, derIa5, parsePemCertificates, parseAmdChain', (t) => {
  const ders = [VCEK, ...['vcek-good.der', 'vcek-bl3.der', 'vcek-pkcs1.der'].map((f) => read(SYN + f))];
  const exts = ders.flatMap((d) => [...certificateFields(d).extensions.values()]);
  const pems = [read('sev-snp-milan/ask_ark_milan.pem'), testChain];
  const stats = fuzz(
    'sev-snp der',
    { seed: 0xde2, iterations: 3000, seeds: [...ders, ...exts, ...pems] },
    (b) => {
      let ok = 0;
      let first: unknown = null;
      for (const f of [
        () => certificateFields(b),
        () => derSmallUint(b, 'fuzz'),
        () => derIa5(b, 'fuzz'),
        () => parsePemCertificates(b, 'fuzz'),
        () => parseAmdChain(b, 'fuzz'),
      ]) {
        try {
          f();
          ok++;
        } catch (e) {
          if (!(e instanceof Error) || e.name !== 'FerryError') throw e;
          first ??= e;
        }
      }
      if (ok === 0) throw first;
    },
  );
  assertExercised('sev-snp der', stats);
  t.diagnostic(summary(stats));
});

test('fuzz verifySnpReport: re-signed mutated reports under the synthetic PKI, and mutated VCEKs', (t) => {
  const good = read(`${SYN}vcek-good.der`);
  type In = { report: Uint8Array; vcek: Uint8Array };
  const outcomes = { verified: 0 };
  const stats = fuzz(
    'verifySnpReport',
    {
      seed: 0x7e5,
      iterations: 800,
      seeds: [{ report: resign(REPORT), vcek: good }],
      generate: (rng: Rng, s: readonly In[]): In => {
        const x = rng.pick(s);
        if (rng.below(4) === 0) return { report: x.report, vcek: mutate(rng, x.vcek) };
        return { report: resign(reportMutation(rng, [x.report])), vcek: x.vcek };
      },
    },
    ({ report, vcek }) => {
      verifySnpReport({ report, vcek, chain: testChain, now: SYN_NOW, trustAnchors: [testArk] });
      outcomes.verified++;
    },
  );
  assertExercised('verifySnpReport', stats);
  t.diagnostic(`${summary(stats)}; ${JSON.stringify(outcomes)}`);
});

test('fuzz appraiseSevSnp: re-signed mutated reports, reasons carry listed codes', (t) => {
  const good = read(`${SYN}vcek-good.der`);
  const policy = developmentPolicy();
  const stats = fuzz(
    'appraiseSevSnp',
    {
      seed: 0xa55,
      iterations: 600,
      seeds: [resign(REPORT)],
      generate: (rng, s) => resign(reportMutation(rng, s)),
    },
    (report) => {
      const a = appraiseSevSnp(
        {
          kind: 'sev-snp',
          reportData: report.slice(0x50, 0x90),
          body: { report, vcek: good, chain: testChain },
        },
        { policy, now: SYN_NOW },
        { trustAnchors: [testArk] },
      );
      for (const r of a.reasons) {
        assert.ok(Object.hasOwn(ERROR_CODES, r.code), `unlisted code ${r.code}`);
        assert.notEqual(r.code, 'INTERNAL', r.message);
      }
    },
  );
  t.diagnostic(summary(stats));
});

test('fuzz parseSnpCertTable: the certificate table of TSM reports (GUID entries, DER bodies)', (t) => {
  const table = buildSnpCertTable([
    { guid: '63da758d-e664-4564-adc5-f4b93be8accd', der: VCEK },
    { guid: '4ab7b379-bbac-4fe4-a02f-05aef327c782', der: read(`${SYN}vcek-good.der`) },
  ]);
  const stats = fuzz('parseSnpCertTable', { seed: 0x7ab, iterations: 3000, seeds: [table] }, (b) => {
    for (const der of parseSnpCertTable(b).values()) assert.ok(der.length <= b.length);
  });
  assertExercised('parseSnpCertTable', stats);
  t.diagnostic(summary(stats));
});
