import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { requireTool } from '../../../test/helpers/tools.ts';
import { fromHex } from '../../kernel/index.ts';
import { pcrValuesFromSerialized } from './pcrs.ts';
import { checkChain, parseAkPublic, parseCertificates, verifyQuote } from './verify.ts';

const V = join(import.meta.dirname, '../../../test/vectors/tpm2');
const read = (p: string) => new Uint8Array(readFileSync(join(V, p)));
const SETS = ['rsa-sha256', 'ecc-sha256', 'rsapss-sha256', 'rsa-sha384-sha1bank'];
const nonce = fromHex(readFileSync(join(V, 'nonce.hex'), 'utf8').trim());
const now = new Date('2026-12-01T00:00:00Z');
const codes = (r: { failures: { code: string }[] }) => r.failures.map((f) => f.code);

function input(s: string) {
  return {
    quote: read(`${s}/quote.msg`),
    signature: read(`${s}/quote.sig`),
    ak: parseAkPublic(read(`${s}/ak.tpm2b`)),
    nonce,
    pcrs: pcrValuesFromSerialized(read(`${s}/pcrs.bin`)),
    now,
  };
}

describe('verifyQuote on captured quotes', () => {
  for (const s of SETS) {
    test(`${s}: valid with TPM2B_PUBLIC, TPMT_PUBLIC, PEM and DER SPKI AKs`, () => {
      const i = input(s);
      const pem = read(`${s}/ak.pem`);
      const der = new Uint8Array(i.ak.key.export({ format: 'der', type: 'spki' }));
      for (const ak of [
        i.ak,
        parseAkPublic(read(`${s}/ak.tpm2b`).slice(2)),
        parseAkPublic(pem),
        parseAkPublic(der),
      ]) {
        const r = verifyQuote({ ...i, ak });
        assert.deepEqual(r.failures, []);
        assert.equal(r.valid, true);
        assert.equal(r.akProof, 'none');
      }
    });
    test(`${s}: every single-bit flip of the quote is rejected`, () => {
      const i = input(s);
      const q = i.quote;
      for (let bit = 0; bit < q.length * 8; bit++) {
        const f = q.slice();
        f[bit >> 3] ^= 1 << (bit & 7);
        const r = verifyQuote({ ...i, quote: f });
        assert.equal(r.valid, false, `bit ${bit} flipped was accepted`);
      }
    });
    test(`${s}: single-bit flips of the signature are rejected`, () => {
      const i = input(s);
      for (let bit = 0; bit < i.signature.length * 8; bit += 7) {
        const f = i.signature.slice();
        f[bit >> 3] ^= 1 << (bit & 7);
        assert.equal(verifyQuote({ ...i, signature: f }).valid, false, `signature bit ${bit}`);
      }
    });
  }
  test('wrong nonce, wrong PCR value, another TPM AK', () => {
    const i = input('rsa-sha256');
    const n = nonce.slice();
    n[31] ^= 0x80;
    assert.deepEqual(codes(verifyQuote({ ...i, nonce: n })), ['ATTESTATION_NONCE_MISMATCH']);
    const p = pcrValuesFromSerialized(read('rsa-sha256/pcrs.bin'));
    (p.get('sha1')?.get(23) as Uint8Array)[5] ^= 1;
    assert.deepEqual(codes(verifyQuote({ ...i, pcrs: p })), ['ATTESTATION_PCR_MISMATCH']);
    const other = parseAkPublic(read('other-ak.tpm2b'));
    assert.deepEqual(codes(verifyQuote({ ...i, ak: other })), ['ATTESTATION_SIGNATURE_INVALID']);
    // An ECC quote checked with an RSA AK and vice versa.
    const cross = codes(verifyQuote({ ...input('ecc-sha256'), ak: i.ak }));
    assert.ok(cross.length > 0 && cross.every((c) => c === 'ATTESTATION_SIGNATURE_INVALID'), String(cross));
  });
  test('an AK that is not a restricted signing key is refused', () => {
    const raw = read('rsa-sha256/ak.tpm2b');
    const t = raw.slice();
    // objectAttributes at offset 2 (size) + 4 (type, nameAlg): clear "restricted" (bit 16).
    t[2 + 4 + 1] &= ~0x01;
    const r = verifyQuote({ ...input('rsa-sha256'), ak: parseAkPublic(t) });
    assert.ok(codes(r).includes('ATTESTATION_AK_ATTRIBUTES_INVALID'));
  });
  test('EK certificate chain: trusted, untrusted, expired; EK alone does not bind the AK', () => {
    const ek = new X509Certificate(read('ek-cert.der'));
    const issuer = parseCertificates(read('ca-issuer.pem'), 'issuer');
    const root = parseCertificates(read('ca-root.pem'), 'root');
    const other = parseCertificates(read('other-ca-root.pem'), 'other');
    assert.equal(checkChain(ek, issuer, root, now), null);
    assert.match(checkChain(ek, [], root, now) ?? '', /does not chain/);
    assert.match(checkChain(ek, issuer, other, now) ?? '', /does not chain/);
    assert.match(checkChain(ek, issuer, root, new Date('2020-01-01T00:00:00Z')) ?? '', /not valid at/);
    assert.match(checkChain(ek, issuer, [], now) ?? '', /no trusted CA/);

    const i = input('rsa-sha256');
    const ok = verifyQuote({ ...i, proof: { ekCert: ek, intermediates: issuer, trustedCas: root } });
    assert.equal(ok.valid, true);
    assert.equal(ok.akProof, 'ek-cert-only');
    assert.deepEqual(
      ok.notes.map((x) => x.code),
      ['ATTESTATION_AK_NOT_PROVEN'],
    );
    const bad = verifyQuote({ ...i, proof: { ekCert: ek, intermediates: issuer, trustedCas: other } });
    assert.deepEqual(codes(bad), ['ATTESTATION_CHAIN_INVALID']);
    const req = verifyQuote({ ...i, requireAkProof: true });
    assert.deepEqual(codes(req), ['ATTESTATION_AK_NOT_PROVEN']);
  });
  test('a certificate issued by a non-CA leaf does not chain through it', (t) => {
    if (!requireTool(t, 'openssl')) return;
    const dir = mkdtempSync(join(tmpdir(), 'ferry-chain-'));
    try {
      const o = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe', cwd: dir });
      const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
      o(['req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=ca', '-days', '30']);
      o(['req', ...key, '-keyout', 'mid.key', '-out', 'mid.csr', '-subj', '/CN=mid']);
      // Issued twice by the CA: once as a CA, once as a leaf (basicConstraints cA = false).
      writeFileSync(join(dir, 'ca.ext'), 'basicConstraints=critical,CA:TRUE\n');
      writeFileSync(join(dir, 'leaf.ext'), 'basicConstraints=critical,CA:FALSE\n');
      o([
        'x509',
        '-req',
        '-in',
        'mid.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-days',
        '30',
        '-out',
        'mid-ca.pem',
        '-extfile',
        'ca.ext',
      ]);
      o([
        'x509',
        '-req',
        '-in',
        'mid.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-days',
        '30',
        '-out',
        'mid-leaf.pem',
        '-extfile',
        'leaf.ext',
      ]);
      o(['req', ...key, '-keyout', 'end.key', '-out', 'end.csr', '-subj', '/CN=end']);
      o([
        'x509',
        '-req',
        '-in',
        'end.csr',
        '-CA',
        'mid-ca.pem',
        '-CAkey',
        'mid.key',
        '-days',
        '30',
        '-out',
        'end.pem',
      ]);
      const cert = (f: string) => new X509Certificate(readFileSync(join(dir, f)));
      const at = new Date();
      assert.equal(checkChain(cert('end.pem'), [cert('mid-ca.pem')], [cert('ca.pem')], at), null);
      assert.match(
        checkChain(cert('end.pem'), [cert('mid-leaf.pem')], [cert('ca.pem')], at) ?? '',
        /does not chain/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('an AK certificate for another key is refused', () => {
    const ek = new X509Certificate(read('ek-cert.der'));
    const root = parseCertificates(read('ca-root.pem'), 'root');
    const r = verifyQuote({ ...input('rsa-sha256'), proof: { akCert: ek, trustedCas: root } });
    assert.deepEqual(codes(r), ['ATTESTATION_AK_NOT_PROVEN']);
  });
  test('bad argument types throw INVALID_ARGUMENT', () => {
    const i = input('ecc-sha256');
    assert.throws(() => verifyQuote({ ...i, quote: 'x' as unknown as Uint8Array }), /quote/);
    assert.throws(() => verifyQuote({ ...i, now: new Date(Number.NaN) }), /now/);
    assert.throws(() => parseAkPublic(new Uint8Array([1, 2])), /AK public key/);
  });
});
