/**
 * tpm2 quote verification against a raw node:crypto signature verify over the same TPMS_ATTEST
 * with the same key, in the same run, on the captured quote sets (test/vectors/tpm2). Rows:
 * - raw verify: `crypto.verify` only (the floor: what any verifier must spend);
 * - verifyQuote: parse TPMS_ATTEST and TPMT_SIGNATURE, verify, nonce, PCR digest (AK pre-parsed);
 * - verifyQuote + parse AK: also parses the AK's TPM2B_PUBLIC into a KeyObject each time;
 * - Tpm2Verifier.appraise: a whole evidence appraisal with EK certificate chain and activation
 *   record (what a verifier node does per claim).
 * With swtpm installed (and not --quick), the time to produce a quote on swtpm is measured too.
 */
import { constants, generateKeyPairSync, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PRODUCTION_POLICY, parsePolicy } from '../src/attestation/policy.ts';
import { signActivationRecord } from '../src/attestation/tpm2/activation.ts';
import { Tpm2Backend } from '../src/attestation/tpm2/backend.ts';
import { pcrValuesFromSerialized } from '../src/attestation/tpm2/pcrs.ts';
import { parseSignature, parseTpm2bPublic } from '../src/attestation/tpm2/structures.ts';
import { Swtpm } from '../src/attestation/tpm2/swtpm.ts';
import { Tpm2Tools } from '../src/attestation/tpm2/tools.ts';
import { Tpm2Verifier } from '../src/attestation/tpm2/verifier.ts';
import { parseAkPublic, verifyQuote } from '../src/attestation/tpm2/verify.ts';
import type { Evidence } from '../src/attestation/types.ts';
import { fromHex } from '../src/kernel/index.ts';
import { hasTool } from '../test/helpers/tools.ts';
import { type Bench, type BenchRow, opsPerSecond } from './harness.ts';

const V = join(import.meta.dirname, '../test/vectors/tpm2');
const read = (p: string) => new Uint8Array(readFileSync(join(V, p)));

const bench: Bench = async ({ quick, log }) => {
  const ms = quick ? 300 : 1500;
  const rows: BenchRow[] = [];
  const nonce = fromHex(readFileSync(join(V, 'nonce.hex'), 'utf8').trim());
  const reportData = fromHex(readFileSync(join(V, 'report-data.hex'), 'utf8').trim());
  const ek = new X509Certificate(read('ek-cert.der'));
  const root = new X509Certificate(read('ca-root.pem'));
  const issuer = new X509Certificate(read('ca-issuer.pem'));
  const activator = generateKeyPairSync('ed25519');
  const activatorPub = new Uint8Array(
    Buffer.from(activator.publicKey.export({ format: 'jwk' }).x as string, 'base64url'),
  );
  const verifier = new Tpm2Verifier({ trustedCas: [root], trustedActivators: [activatorPub] });
  const now = new Date('2026-12-01T00:00:00Z');

  for (const set of ['rsa-sha256', 'ecc-sha256']) {
    const quote = read(`${set}/quote.msg`);
    const sigBytes = read(`${set}/quote.sig`);
    const akBytes = read(`${set}/ak.tpm2b`);
    const pcrBin = read(`${set}/pcrs.bin`);
    const ak = parseAkPublic(akBytes);
    const pcrs = pcrValuesFromSerialized(pcrBin);
    const sig = parseSignature(sigBytes);
    const key = ak.key;
    let raw: () => boolean;
    if ('sig' in sig) {
      const s = sig.sig;
      raw = () => cryptoVerify('sha256', quote, { key, padding: constants.RSA_PKCS1_PADDING }, s);
    } else {
      const p1363 = new Uint8Array(64);
      p1363.set(sig.r, 32 - sig.r.length);
      p1363.set(sig.s, 64 - sig.s.length);
      raw = () => cryptoVerify('sha256', quote, { key, dsaEncoding: 'ieee-p1363' }, p1363);
    }
    if (!raw()) throw new Error(`bench: raw verify of ${set} failed`);
    const full = () => {
      const r = verifyQuote({ quote, signature: sigBytes, ak, nonce, pcrs, now });
      if (!r.valid) throw new Error(`bench: ${set} quote not valid`);
    };
    full();
    const withParse = () => {
      const r = verifyQuote({ quote, signature: sigBytes, ak: parseAkPublic(akBytes), nonce, pcrs, now });
      if (!r.valid) throw new Error('bench: not valid');
    };
    const name = parseTpm2bPublic(akBytes).name;
    const record = signActivationRecord(activator.privateKey, { akName: name, ekCert: ek, activatedAt: 1 });
    const pcrsBody: Record<string, Record<string, Uint8Array>> = {};
    for (const [bank, m] of pcrs) {
      pcrsBody[bank] = {};
      for (const [i, v] of m) pcrsBody[bank][String(i)] = v;
    }
    const evidence: Evidence = {
      kind: 'tpm2',
      reportData,
      body: {
        quote,
        signature: sigBytes,
        akPublic: akBytes,
        pcrs: pcrsBody,
        ekCert: new Uint8Array(ek.raw),
        certChain: [new Uint8Array(issuer.raw)],
        akCert: null,
        activation: { ...record },
      },
    };
    // Production settings pinning the quoted PCR 23 (a policy must identify the software).
    const bank = Object.keys(pcrsBody).find((b) => pcrsBody[b]['23'] !== undefined) as string;
    const pinned = Buffer.from(pcrsBody[bank]['23']).toString('hex');
    const policy = parsePolicy({
      ...PRODUCTION_POLICY,
      name: 'bench-pinned',
      referenceValues: { tpm2: { pcrs: { [bank]: { '23': [pinned] } } } },
    });
    const ctx = { policy, now, expectedReportData: reportData };
    const a0 = await verifier.appraise(evidence, ctx);
    if (!a0.accepted) throw new Error(`bench: evidence not accepted: ${JSON.stringify(a0.reasons)}`);

    const group = `tpm2 ${set}`;
    const rRaw = await opsPerSecond(raw, ms);
    const rFull = await opsPerSecond(full, ms);
    const rParse = await opsPerSecond(withParse, ms);
    const rAppraise = await opsPerSecond(() => verifier.appraise(evidence, ctx), ms);
    const base = 'raw node:crypto verify';
    rows.push({ group, name: base, value: rRaw, unit: 'ops/s', note: `${(1000 / rRaw).toFixed(3)} ms` });
    rows.push({
      group,
      name: 'verifyQuote',
      value: rFull,
      unit: 'ops/s',
      baseline: base,
      note: `${(1000 / rFull).toFixed(3)} ms`,
    });
    rows.push({
      group,
      name: 'verifyQuote + parse AK',
      value: rParse,
      unit: 'ops/s',
      baseline: base,
      note: `${(1000 / rParse).toFixed(3)} ms`,
    });
    rows.push({
      group,
      name: 'Tpm2Verifier.appraise (EK chain + activation)',
      value: rAppraise,
      unit: 'ops/s',
      baseline: base,
      note: `${(1000 / rAppraise).toFixed(3)} ms`,
    });
    log(
      `${set}: raw ${rRaw.toFixed(0)}/s, verifyQuote ${rFull.toFixed(0)}/s, appraise ${rAppraise.toFixed(0)}/s`,
    );
  }

  if (!quick && hasTool('swtpm') && hasTool('tpm2_quote')) {
    const sw = await Swtpm.start();
    try {
      const be = await Tpm2Backend.open({ tools: new Tpm2Tools({ tcti: sw.tcti }), akAlg: 'ecc' });
      const q = await opsPerSecond(() => be.collect(reportData), 2000, 2);
      rows.push({
        group: 'tpm2 swtpm',
        name: 'Tpm2Backend.collect (tpm2_quote, ECC AK)',
        value: q,
        unit: 'ops/s',
        note: `${(1000 / q).toFixed(1)} ms`,
      });
    } finally {
      await sw.stop();
    }
  }
  return rows;
};

export default bench;
