/**
 * `ferry attest verify tpm2` as a process: --json output shape and exit codes 0 / 3 / 2, on the
 * captured quote sets in test/vectors/tpm2 (no swtpm needed). --event-log: a log of what
 * generate.sh extended (PCR 16 "debug", PCR 23 "runtime") replays to the quote; a forged one does
 * not, and a policy pinning other events refuses the true one.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { encodeEventLog } from '../src/attestation/index.ts';
import { requireTool } from './helpers/tools.ts';

const ROOT = join(import.meta.dirname, '..');
const V = join(ROOT, 'test/vectors/tpm2');
const NONCE = readFileSync(join(V, 'nonce.hex'), 'utf8').trim();
const tmp = mkdtempSync(join(tmpdir(), 'ferry-tpm2-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(join(ROOT, 'bin/ferry'), ['attest', 'verify', 'tpm2', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// No policy accepts unmeasured software (ATTESTATION_NO_REFERENCE_VALUES, docs/protocol.md §9.1):
// the vectors are appraised under production settings pinning the PCR digest each quote reports
// (read from the quotes themselves, as an operator reads them with `attest verify --json`).
const digests = ['rsa-sha256', 'ecc-sha256', 'rsa-sha384-sha1bank', 'rsapss-sha256'].map((set) => {
  const j = JSON.parse(
    run([
      '--quote',
      join(V, set, 'quote.msg'),
      '--signature',
      join(V, set, 'quote.sig'),
      '--ak',
      join(V, set, 'ak.tpm2b'),
      '--nonce',
      NONCE,
      '--json',
    ]).out,
  );
  assert.deepEqual(
    j.reasons.map((x: { code: string }) => x.code),
    ['ATTESTATION_NO_REFERENCE_VALUES'],
    `${set}: without reference values the production policy accepts nothing`,
  );
  return j.measurement as string;
});
const POLICY = join(tmp, 'policy.json');
writeFileSync(
  POLICY,
  JSON.stringify({
    version: 1,
    name: 'vectors-pinned',
    allowedKinds: ['tpm2'],
    allowDebug: false,
    allowedTcbStatuses: ['UpToDate'],
    maxEvidenceAgeSeconds: 600,
    referenceValues: { tpm2: { pcrDigest: digests } },
  }),
);

function ferry(args: string[]): { code: number | null; out: string; err: string } {
  return run(args.includes('--policy') ? args : [...args, '--policy', POLICY]);
}
function base(set: string, ak = 'ak.tpm2b'): string[] {
  return [
    '--quote',
    join(V, set, 'quote.msg'),
    '--signature',
    join(V, set, 'quote.sig'),
    '--ak',
    join(V, set, ak),
  ];
}
const KEYS = [
  'kind',
  'valid',
  'accepted',
  'status',
  'tcbStatus',
  'advisoryIds',
  'measurement',
  'reportData',
  'debug',
  'reasons',
];

describe('ferry attest verify tpm2', () => {
  test('accepted: exit 0 and the documented JSON fields, in order', () => {
    const r = ferry([
      ...base('rsa-sha256'),
      '--nonce',
      NONCE,
      '--pcrs',
      join(V, 'rsa-sha256/pcrs.bin'),
      '--json',
    ]);
    assert.equal(r.code, 0, r.out + r.err);
    const j = JSON.parse(r.out);
    assert.deepEqual(Object.keys(j), KEYS);
    assert.equal(j.kind, 'tpm2');
    assert.equal(j.valid, true);
    assert.equal(j.accepted, true);
    assert.equal(j.status, 'affirming');
    assert.equal(j.tcbStatus, null);
    assert.deepEqual(j.advisoryIds, []);
    assert.equal(j.debug, null);
    assert.equal(j.reportData, NONCE);
    assert.match(j.measurement, /^[0-9a-f]{64}$/);
    assert.deepEqual(j.reasons, []);
  });
  test('ECC AK as PEM, JSON PCRs, SHA-384 over a SHA-1 bank: exit 0', () => {
    const e = ferry([
      ...base('ecc-sha256', 'ak.pem'),
      '--nonce',
      NONCE,
      '--pcrs',
      join(V, 'ecc-sha256/pcrs.json'),
      '--json',
    ]);
    assert.equal(e.code, 0, e.out);
    const s = ferry([
      ...base('rsa-sha384-sha1bank'),
      '--nonce',
      NONCE,
      '--pcrs',
      join(V, 'rsa-sha384-sha1bank/pcrs.bin'),
    ]);
    assert.equal(s.code, 0, s.out);
    assert.match(s.out, /ACCEPTED/);
    assert.equal(
      JSON.parse(ferry([...base('rsa-sha384-sha1bank'), '--nonce', NONCE, '--json']).out).measurement.length,
      96,
    );
  });
  test('wrong nonce, wrong PCRs, another AK, a flipped bit: exit 3 with reasons', () => {
    const wrong = `${NONCE.slice(0, -2)}00`;
    const n = ferry([...base('rsa-sha256'), '--nonce', wrong, '--json']);
    assert.equal(n.code, 3);
    assert.deepEqual(
      JSON.parse(n.out).reasons.map((x: { code: string }) => x.code),
      ['ATTESTATION_NONCE_MISMATCH'],
    );
    const pcrs = JSON.parse(readFileSync(join(V, 'ecc-sha256/pcrs.json'), 'utf8'));
    pcrs.sha256['23'] = `01${pcrs.sha256['23'].slice(2)}`;
    writeFileSync(join(tmp, 'pcrs.json'), JSON.stringify(pcrs));
    const p = ferry([...base('ecc-sha256'), '--nonce', NONCE, '--pcrs', join(tmp, 'pcrs.json'), '--json']);
    assert.equal(p.code, 3);
    assert.equal(JSON.parse(p.out).reasons[0].code, 'ATTESTATION_PCR_MISMATCH');
    const o = ferry([
      ...base('rsa-sha256').slice(0, 4),
      '--ak',
      join(V, 'other-ak.tpm2b'),
      '--nonce',
      NONCE,
      '--json',
    ]);
    assert.equal(o.code, 3);
    assert.equal(JSON.parse(o.out).reasons[0].code, 'ATTESTATION_SIGNATURE_INVALID');
    const q = new Uint8Array(readFileSync(join(V, 'rsapss-sha256/quote.msg')));
    q[q.length - 3] ^= 4;
    writeFileSync(join(tmp, 'flipped.msg'), q);
    const f = ferry([
      '--quote',
      join(tmp, 'flipped.msg'),
      ...base('rsapss-sha256').slice(2),
      '--nonce',
      NONCE,
      '--json',
    ]);
    assert.equal(f.code, 3);
    assert.equal(JSON.parse(f.out).valid, false);
    writeFileSync(join(tmp, 'junk'), 'junk');
    const m = ferry([
      '--quote',
      join(tmp, 'junk'),
      ...base('rsa-sha256').slice(2),
      '--nonce',
      NONCE,
      '--json',
    ]);
    assert.equal(m.code, 3);
    assert.equal(JSON.parse(m.out).reasons[0].code, 'ATTESTATION_MALFORMED');
  });
  test('EK certificate: trusted chain is valid but does not bind the AK (exit 3); untrusted CA is invalid', () => {
    const bundle = join(tmp, 'ek-bundle.pem');
    const ekPem = `-----BEGIN CERTIFICATE-----\n${readFileSync(join(V, 'ek-cert.der')).toString('base64')}\n-----END CERTIFICATE-----\n`;
    writeFileSync(bundle, ekPem + readFileSync(join(V, 'ca-issuer.pem'), 'utf8'));
    const ok = ferry([
      ...base('rsa-sha256'),
      '--nonce',
      NONCE,
      '--ek-cert',
      bundle,
      '--ca',
      join(V, 'ca-root.pem'),
      '--json',
    ]);
    assert.equal(ok.code, 3);
    const j = JSON.parse(ok.out);
    assert.equal(j.valid, true);
    assert.equal(j.accepted, false);
    assert.deepEqual(
      j.reasons.map((x: { code: string }) => x.code),
      ['ATTESTATION_AK_NOT_PROVEN'],
    );
    const bad = ferry([
      ...base('rsa-sha256'),
      '--nonce',
      NONCE,
      '--ek-cert',
      bundle,
      '--ca',
      join(V, 'other-ca-root.pem'),
      '--json',
    ]);
    assert.equal(bad.code, 3);
    assert.equal(JSON.parse(bad.out).valid, false);
    assert.equal(JSON.parse(bad.out).reasons[0].code, 'ATTESTATION_CHAIN_INVALID');
    const old = ferry([
      ...base('rsa-sha256'),
      '--nonce',
      NONCE,
      '--ek-cert',
      bundle,
      '--ca',
      join(V, 'ca-root.pem'),
      '--now',
      '2001-01-01T00:00:00Z',
      '--json',
    ]);
    assert.equal(old.code, 3);
    assert.match(JSON.parse(old.out).reasons[0].message, /not valid at/);
  });
  test('AK certificate (issued by a test CA with openssl): accepted; other CA, other AK or expired: not', (t) => {
    if (!requireTool(t, 'openssl')) return;
    const ossl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    const ca = (name: string) => {
      ossl([
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(tmp, `${name}.key`),
        '-out',
        join(tmp, `${name}.pem`),
        '-subj',
        `/CN=${name}`,
        '-days',
        '30',
      ]);
      return join(tmp, `${name}.pem`);
    };
    const caA = ca('ak-ca');
    const caB = ca('other-ca');
    const akCert = join(tmp, 'ak-cert.pem');
    ossl([
      'x509',
      '-new',
      '-subj',
      '/CN=ak',
      '-force_pubkey',
      join(V, 'rsa-sha256/ak.pem'),
      '-CA',
      caA,
      '-CAkey',
      join(tmp, 'ak-ca.key'),
      '-days',
      '30',
      '-out',
      akCert,
    ]);
    const ok = ferry([...base('rsa-sha256'), '--nonce', NONCE, '--ak-cert', akCert, '--ca', caA, '--json']);
    assert.equal(ok.code, 0, ok.out);
    assert.equal(JSON.parse(ok.out).accepted, true);
    const other = ferry([
      ...base('rsa-sha256'),
      '--nonce',
      NONCE,
      '--ak-cert',
      akCert,
      '--ca',
      caB,
      '--json',
    ]);
    assert.equal(other.code, 3);
    assert.equal(JSON.parse(other.out).reasons[0].code, 'ATTESTATION_CHAIN_INVALID');
    const later = new Date(Date.now() + 60 * 86400_000).toISOString();
    const expired = ferry([
      ...base('rsa-sha256'),
      '--nonce',
      NONCE,
      '--ak-cert',
      akCert,
      '--ca',
      caA,
      '--now',
      later,
      '--json',
    ]);
    assert.equal(expired.code, 3);
    assert.match(JSON.parse(expired.out).reasons[0].message, /not valid at/);
    // The certificate is for the rsa-sha256 AK, not the ECC one.
    const wrong = ferry([
      ...base('ecc-sha256'),
      '--nonce',
      NONCE,
      '--ak-cert',
      akCert,
      '--ca',
      caA,
      '--json',
    ]);
    assert.equal(wrong.code, 3);
    assert.equal(JSON.parse(wrong.out).reasons[0].code, 'ATTESTATION_AK_NOT_PROVEN');
  });
  test('a policy pinning another PCR digest: valid, not accepted (exit 3)', () => {
    const pol = join(tmp, 'policy.json');
    writeFileSync(
      pol,
      JSON.stringify({
        version: 1,
        name: 'pinned',
        allowedKinds: ['tpm2'],
        allowDebug: false,
        allowedTcbStatuses: ['UpToDate'],
        maxEvidenceAgeSeconds: 600,
        referenceValues: { tpm2: { pcrDigest: ['ab'.repeat(32)] } },
      }),
    );
    const r = ferry([...base('ecc-sha256'), '--nonce', NONCE, '--policy', pol, '--json']);
    assert.equal(r.code, 3);
    const j = JSON.parse(r.out);
    assert.equal(j.valid, true);
    assert.equal(j.reasons[0].code, 'ATTESTATION_MEASUREMENT_MISMATCH');
  });
  test('--event-log: the true log replays and satisfies a policy pinning it; a forged one does not', () => {
    const digest = (alg: string, s: string) => createHash(alg).update(s).digest('hex');
    const ev = (pcr: number, what: string) => ({
      pcr,
      type: 'EV_IPL',
      digests: { sha1: digest('sha1', what), sha256: digest('sha256', what), sha384: digest('sha384', what) },
    });
    const log = (debug: string) => {
      const f = join(tmp, `log-${debug}`);
      writeFileSync(f, encodeEventLog(['sha1', 'sha256', 'sha384'], [ev(16, debug), ev(23, 'runtime')]));
      return f;
    };
    const pinned = (what: string) => {
      const f = join(tmp, `events-${what}.json`);
      writeFileSync(
        f,
        JSON.stringify({
          version: 1,
          name: 'events-pinned',
          allowedKinds: ['tpm2'],
          allowDebug: false,
          allowedTcbStatuses: ['UpToDate'],
          maxEvidenceAgeSeconds: 600,
          referenceValues: {
            tpm2: { events: { sha256: { '16': [{ type: 'EV_IPL', digest: digest('sha256', what) }] } } },
          },
        }),
      );
      return f;
    };
    const args = [
      ...base('rsa-sha256'),
      '--nonce',
      NONCE,
      '--pcrs',
      join(V, 'rsa-sha256/pcrs.bin'),
      '--json',
    ];

    const ok = ferry([...args, '--event-log', log('debug'), '--policy', pinned('debug')]);
    assert.equal(ok.code, 0, ok.out + ok.err);
    assert.equal(JSON.parse(ok.out).accepted, true);

    // The same true log against a policy that pins another event: valid, not accepted.
    const other = JSON.parse(ferry([...args, '--event-log', log('debug'), '--policy', pinned('other')]).out);
    assert.equal(other.valid, true);
    assert.deepEqual(
      other.reasons.map((r: { code: string }) => r.code),
      ['ATTESTATION_MEASUREMENT_MISMATCH'],
    );

    // A log claiming PCR 16 measured "other": it does not replay to the quoted PCR, so invalid.
    const forged = ferry([...args, '--event-log', log('other'), '--policy', pinned('other')]);
    assert.equal(forged.code, 3);
    const fj = JSON.parse(forged.out);
    assert.equal(fj.valid, false);
    assert.ok(
      fj.reasons.some((r: { code: string }) => r.code === 'ATTESTATION_PCR_MISMATCH'),
      forged.out,
    );

    // A policy pinning events and no log: refused, saying so.
    const none = JSON.parse(ferry([...args, '--policy', pinned('debug')]).out);
    assert.equal(none.accepted, false);
    assert.match(none.reasons[0].message, /no event log/);

    // Bytes that are no event log: invalid evidence (exit 3), not a crash.
    const junk = join(tmp, 'junk-log');
    writeFileSync(junk, Buffer.from('not an event log'));
    const bad = ferry([...args, '--event-log', junk]);
    assert.equal(bad.code, 3, bad.out + bad.err);
    assert.equal(JSON.parse(bad.out).reasons[0].code, 'ATTESTATION_MALFORMED');
  });
  test('usage errors: exit 2', () => {
    const cases: string[][] = [
      [...base('rsa-sha256'), '--json'],
      [...base('rsa-sha256'), '--nonce', 'xyz', '--json'],
      [...base('rsa-sha256'), '--nonce', NONCE, '--ek-cert', join(V, 'ek-cert.der'), '--json'],
      [...base('rsa-sha256'), '--nonce', NONCE, '--ca', join(V, 'ca-root.pem'), '--json'],
      [...base('rsa-sha256'), '--nonce', NONCE, '--now', 'yesterday', '--json'],
      [...base('rsa-sha256'), '--nonce', NONCE, '--bogus', '--json'],
      [...base('rsa-sha256'), '--nonce', NONCE, '--event-log', join(V, 'nonce.hex'), '--json'],
      ['--quote', join(tmp, 'does-not-exist'), ...base('rsa-sha256').slice(2), '--nonce', NONCE, '--json'],
    ];
    for (const c of cases) {
      const r = ferry(c);
      assert.equal(r.code, 2, `${c.join(' ')}\n${r.out}${r.err}`);
      assert.ok(JSON.parse(r.out).error.code.startsWith('USAGE'), r.out);
    }
  });
});
