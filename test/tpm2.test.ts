/**
 * tpm2 end to end on swtpm: create AKs, activate a credential, measure the runtime into PCR 23,
 * quote with the evidence binding, and appraise with Tpm2Verifier; then the failures (wrong
 * nonce, wrong PCR, another TPM's AK, an untrusted EK CA, a credential for another EK or AK).
 * Two swtpm instances are shared by the whole file.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { after, describe, type TestContext, test } from 'node:test';
import { makeCredential, signActivationRecord } from '../src/attestation/tpm2/activation.ts';
import { expectedRuntimePcr, Tpm2Backend } from '../src/attestation/tpm2/backend.ts';
import { Swtpm } from '../src/attestation/tpm2/swtpm.ts';
import { Tpm2Tools } from '../src/attestation/tpm2/tools.ts';
import { Tpm2Verifier } from '../src/attestation/tpm2/verifier.ts';
import { developmentPolicy, parsePolicy, PRODUCTION_POLICY } from '../src/attestation/policy.ts';
import type { AppraisalPolicy, Evidence } from '../src/attestation/types.ts';
import { type CanonicalValue, decodeTagged, encodeTagged, isFerryError, toHex } from '../src/kernel/index.ts';
import { requireTool } from './helpers/tools.ts';

/** Skips (or in CI fails) the test unless swtpm and tpm2-tools are installed. */
function haveTpmTools(t: TestContext): boolean {
  return ['swtpm', 'swtpm_setup', 'swtpm_ioctl', 'tpm2_quote'].every((name) => requireTool(t, name));
}

type Tpm = {
  sw: Swtpm;
  tools: Tpm2Tools;
  root: X509Certificate;
  issuer: X509Certificate;
};

async function startTpm(): Promise<Tpm> {
  const sw = await Swtpm.start();
  return {
    sw,
    tools: new Tpm2Tools({ tcti: sw.tcti }),
    root: new X509Certificate(await sw.rootCaPem()),
    issuer: new X509Certificate(await sw.issuerCaPem()),
  };
}

const activator = generateKeyPairSync('ed25519');
const activatorPub = new Uint8Array(
  Buffer.from(activator.publicKey.export({ format: 'jwk' }).x as string, 'base64url'),
);
const now = () => new Date();
const rd = () => new Uint8Array(randomBytes(64));
const codes = (a: { reasons: { code: string }[] }) => a.reasons.map((r) => r.code);
/** Production settings pinning PCR 23 (sha256) at `pcr23` (hex): a policy that identifies the software. */
const pinned23 = (pcr23: string): AppraisalPolicy =>
  parsePolicy({
    ...PRODUCTION_POLICY,
    name: 'pcr23-pinned',
    referenceValues: { tpm2: { pcrs: { sha256: { '23': [pcr23] } } } },
  });
/** The PCR 23 (sha256) value the evidence carries (the quote covers it; validity checks that). */
const pcr23Of = (ev: Evidence): string =>
  toHex((ev.body.pcrs as { [b: string]: { [i: string]: Uint8Array } }).sha256['23']);

/** Provisions a backend the way node registration does: EK cert, MakeCredential, activation, record. */
async function register(
  t: Tpm,
  opts: {
    akAlg: 'rsa' | 'ecc' | 'rsapss';
    akHandle: number;
    pcrSelection?: string;
    ekHandle?: number;
    ekCertIndex?: number;
  },
) {
  const be = await Tpm2Backend.open({ tools: t.tools, ...opts, recreateAk: true });
  const ek = new X509Certificate(Buffer.from(await be.readEkCertificate()));
  be.setEkChain([new Uint8Array(t.issuer.raw)]);
  const secret = new Uint8Array(randomBytes(32));
  const got = await be.activateCredential(makeCredential(ek.publicKey, be.akName, secret));
  assert.equal(toHex(got), toHex(secret));
  be.setActivationRecord(
    signActivationRecord(activator.privateKey, {
      akName: be.akName,
      ekCert: ek,
      activatedAt: Math.floor(Date.now() / 1000),
    }),
  );
  return { be, ek };
}

function verifier(t: Tpm) {
  return new Tpm2Verifier({ trustedCas: [t.root], trustedActivators: [activatorPub] });
}

function withBody(ev: Evidence, patch: Record<string, unknown>): Evidence {
  return { ...ev, body: { ...ev.body, ...patch } as Evidence['body'] };
}

describe('tpm2 on swtpm', () => {
  // Two TPMs shared by every test, started by the first test that runs.
  let started: Promise<Tpm[]> | undefined;
  let a: Tpm;
  let b: Tpm;
  async function tpms(t: TestContext): Promise<boolean> {
    if (!haveTpmTools(t)) return false;
    started ??= Promise.all([startTpm(), startTpm()]);
    [a, b] = await started;
    return true;
  }
  after(async () => {
    if (started) await Promise.all((await started).map((x) => x.sw.stop()));
  });

  for (const akAlg of ['rsa', 'ecc', 'rsapss'] as const) {
    test(`${akAlg} AK: activate, measure, quote, appraise: accepted`, async (t) => {
      if (!(await tpms(t))) return;
      const { be } = await register(a, { akAlg, akHandle: 0x81010010 });
      const m = await be.measureRuntime([
        { name: 'enclave.js', content: new TextEncoder().encode('console.log(1)') },
        { name: 'config.json', content: new TextEncoder().encode('{}') },
      ]);
      const reportData = rd();
      const ev = await be.collect(reportData);
      const policy: AppraisalPolicy = parsePolicy({
        ...PRODUCTION_POLICY,
        name: 'runtime-pinned',
        referenceValues: { tpm2: { pcrs: { sha256: { '23': [toHex(expectedRuntimePcr(m))] } } } },
      });
      const ap = await verifier(a).appraise(ev, { policy, now: now(), expectedReportData: reportData });
      assert.deepEqual(ap.reasons, []);
      assert.equal(ap.valid, true);
      assert.equal(ap.accepted, true);
      assert.equal(ap.status, 'affirming');
      assert.equal(ap.claims.akProof, 'activation');
      assert.equal(ap.claims['pcr.sha256.23'], toHex(expectedRuntimePcr(m)));
      assert.equal(ap.reportData, toHex(reportData));
      assert.equal(ap.tcbStatus, null);
      assert.equal(ap.debug, null);
    });
  }

  test('SHA-1, SHA-256 and SHA-384 banks in one quote, ECC AK signing with SHA-256', async (t) => {
    if (!(await tpms(t))) return;
    const { be } = await register(a, {
      akAlg: 'ecc',
      akHandle: 0x81010011,
      pcrSelection: 'sha1:0,16,23+sha256:23+sha384:0,23',
    });
    const collected = await be.collect(rd());
    // Through the canonical encoding, as evidence travels (docs/protocol.md §8).
    const decoded = decodeTagged(
      'ferry/evidence/v1',
      encodeTagged('ferry/evidence/v1', collected as unknown as CanonicalValue),
    ) as unknown as Evidence;
    const ev = decoded;
    assert.equal(toHex(ev.body.quote as Uint8Array), toHex(collected.body.quote as Uint8Array));
    const ap = await verifier(a).appraise(ev, { policy: pinned23(pcr23Of(ev)), now: now() });
    assert.equal(ap.accepted, true, JSON.stringify(ap.reasons));
    assert.equal(ap.claims.pcrSelection, 'sha1:0,16,23+sha256:23+sha384:0,23');
    assert.equal(String(ap.claims['pcr.sha384.0']).length, 96);
  });

  test('failures: wrong nonce, wrong PCR, other TPM AK, untrusted EK CA, unpinned runtime', async (t) => {
    if (!(await tpms(t))) return;
    const { be } = await register(a, { akAlg: 'rsa', akHandle: 0x81010012 });
    const m = await be.measureRuntime([{ name: 'x', content: new Uint8Array([1]) }]);
    const reportData = rd();
    const ev = await be.collect(reportData);
    const v = verifier(a);
    const ctx = {
      policy: pinned23(toHex(expectedRuntimePcr(m))),
      now: now(),
      expectedReportData: reportData,
    };
    assert.equal((await v.appraise(ev, ctx)).accepted, true);
    // A genuine TPM, but a policy that pins no PCR: the runtime is not identified.
    assert.deepEqual(codes(await v.appraise(ev, { ...ctx, policy: PRODUCTION_POLICY })), [
      'ATTESTATION_NO_REFERENCE_VALUES',
    ]);

    // The verifier expects another binding.
    const other = await v.appraise(ev, { ...ctx, expectedReportData: rd() });
    assert.equal(other.valid, true);
    assert.deepEqual(codes(other), ['ATTESTATION_REPORT_DATA_MISMATCH']);
    // The evidence claims another report_data than the TPM quoted.
    const swapped = { ...ev, reportData: ctx.expectedReportData.map((x, i) => (i === 0 ? x ^ 1 : x)) };
    const n = await v.appraise(swapped, { ...ctx, expectedReportData: swapped.reportData });
    assert.equal(n.valid, false);
    assert.deepEqual(codes(n), ['ATTESTATION_NONCE_MISMATCH']);

    // A PCR value in the body that is not what the TPM quoted.
    const pcrs = ev.body.pcrs as { [b: string]: { [i: string]: Uint8Array } };
    const bad23 = pcrs.sha256['23'].slice();
    bad23[0] ^= 1;
    const p = await v.appraise(withBody(ev, { pcrs: { sha256: { ...pcrs.sha256, '23': bad23 } } }), ctx);
    assert.equal(p.valid, false);
    assert.ok(codes(p).includes('ATTESTATION_PCR_MISMATCH'));

    // A policy pinning another runtime.
    const pinned = parsePolicy({
      ...PRODUCTION_POLICY,
      name: 'pinned',
      referenceValues: { tpm2: { pcrs: { sha256: { '23': ['00'.repeat(32)] } } } },
    });
    const r = await v.appraise(ev, { ...ctx, policy: pinned });
    assert.equal(r.valid, true);
    assert.deepEqual(codes(r), ['ATTESTATION_MEASUREMENT_MISMATCH']);
    const digest = parsePolicy({
      ...PRODUCTION_POLICY,
      name: 'd',
      referenceValues: { tpm2: { pcrDigest: ['11'.repeat(32)] } },
    });
    assert.deepEqual(codes(await v.appraise(ev, { ...ctx, policy: digest })), [
      'ATTESTATION_MEASUREMENT_MISMATCH',
    ]);

    // Another TPM's AK (with its own valid activation) substituted into this evidence.
    const { be: beB } = await register(b, { akAlg: 'rsa', akHandle: 0x81010012 });
    await beB.measureRuntime([{ name: 'x', content: new Uint8Array([1]) }]);
    const evB = await beB.collect(reportData);
    const mix = await v.appraise(withBody(ev, { akPublic: evB.body.akPublic }), ctx);
    assert.equal(mix.valid, false);
    assert.ok(codes(mix).includes('ATTESTATION_SIGNATURE_INVALID'));
    // TPM B's evidence, fully self-consistent, but its EK CA is not trusted by this verifier.
    const untrusted = await v.appraise(evB, ctx);
    assert.equal(untrusted.valid, false);
    assert.deepEqual(codes(untrusted), ['ATTESTATION_CHAIN_INVALID']);
    // ... and accepted by a verifier that trusts B's CA.
    assert.equal((await verifier(b).appraise(evB, ctx)).accepted, true);

    // No activation record: the EK certificate alone proves nothing about the AK.
    const noAct = await v.appraise(withBody(ev, { activation: null }), ctx);
    assert.equal(noAct.accepted, false);
    assert.deepEqual(codes(noAct), ['ATTESTATION_AK_NOT_PROVEN']);
    // A record signed by an activator nobody trusts.
    const v2 = new Tpm2Verifier({ trustedCas: [a.root], trustedActivators: [new Uint8Array(32)] });
    assert.deepEqual(codes(await v2.appraise(ev, ctx)), ['ATTESTATION_AK_NOT_PROVEN']);

    // Production policy refuses nothing about tpm2 itself, a policy without tpm2 does.
    const noTpm = parsePolicy({ ...developmentPolicy(), name: 'sim-only', allowedKinds: ['sim'] });
    assert.deepEqual(codes(await v.appraise(ev, { ...ctx, policy: noTpm })), [
      'ATTESTATION_KIND_NOT_ALLOWED',
    ]);
  });

  test('ECC P-384 EK (swtpm 0x81010016, certificate 0x1c00016): MakeCredential with SHA-384 and AES-256', async (t) => {
    if (!(await tpms(t))) return;
    const { be, ek } = await register(a, {
      akAlg: 'ecc',
      akHandle: 0x81010014,
      ekHandle: 0x81010016,
      ekCertIndex: 0x1c00016,
    });
    assert.equal(ek.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
    const reportData = rd();
    const ev = await be.collect(reportData);
    const ap = await verifier(a).appraise(ev, {
      policy: pinned23(pcr23Of(ev)),
      now: now(),
      expectedReportData: reportData,
    });
    assert.equal(ap.accepted, true, JSON.stringify(ap.reasons));
    assert.equal(ap.claims.akProof, 'activation');
  });

  test('credential activation fails for another EK and for another AK name', async (t) => {
    if (!(await tpms(t))) return;
    const { be } = await register(a, { akAlg: 'ecc', akHandle: 0x81010013 });
    const ekB = new X509Certificate(
      Buffer.from(
        await (
          await Tpm2Backend.open({ tools: b.tools, akHandle: 0x81010013, akAlg: 'ecc' })
        ).readEkCertificate(),
      ),
    );
    const secret = new Uint8Array(randomBytes(32));
    await assert.rejects(be.activateCredential(makeCredential(ekB.publicKey, be.akName, secret)), (e) =>
      isFerryError(e, 'ATTESTATION_TPM2_COMMAND_FAILED'),
    );
    const ekA = new X509Certificate(Buffer.from(await be.readEkCertificate()));
    const wrongName = be.akName.slice();
    wrongName[10] ^= 1;
    await assert.rejects(be.activateCredential(makeCredential(ekA.publicKey, wrongName, secret)), (e) =>
      isFerryError(e, 'ATTESTATION_TPM2_COMMAND_FAILED'),
    );
    // The TPM still works after the failures (sessions were flushed).
    assert.equal(
      toHex(await be.activateCredential(makeCredential(ekA.publicKey, be.akName, secret))),
      toHex(secret),
    );
  });
});
