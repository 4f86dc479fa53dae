/**
 * The devnet activator against a real swtpm: an EK certificate that chains to the trusted CA is
 * activated and the record holds under the appraisal's check; an EK certificate judged against
 * another CA (a second swtpm's), against no CA, or at a time outside its validity is refused with
 * ATTESTATION_CHAIN_INVALID before any credential is made.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { hasTool, requireTool } from '../../test/helpers/tools.ts';
import { checkActivationRecord, Swtpm, Tpm2Backend, Tpm2Tools } from '../attestation/tpm2/index.ts';
import { FerryError } from '../kernel/index.ts';
import { activateAk } from './activator.ts';

const TOOLS = ['swtpm', 'swtpm_setup', 'swtpm_ioctl', 'tpm2_activatecredential'];

const activator = generateKeyPairSync('ed25519');
const activatorPub = new Uint8Array(
  Buffer.from(activator.publicKey.export({ format: 'jwk' }).x as string, 'base64url'),
);

describe('devnet activator', () => {
  let sw: Swtpm | null = null;
  let other: Swtpm | null = null;
  let be: Tpm2Backend;
  let root: X509Certificate;
  let issuer: X509Certificate;
  let otherRoot: X509Certificate;
  let otherIssuer: X509Certificate;
  let ready = false;

  before(async () => {
    // before() cannot skip: each test calls requireTool itself.
    if (!TOOLS.every(hasTool)) return;
    sw = await Swtpm.start();
    other = await Swtpm.start();
    be = await Tpm2Backend.open({ tools: new Tpm2Tools({ tcti: sw.tcti }), recreateAk: true });
    root = new X509Certificate(await sw.rootCaPem());
    issuer = new X509Certificate(await sw.issuerCaPem());
    otherRoot = new X509Certificate(await other.rootCaPem());
    otherIssuer = new X509Certificate(await other.issuerCaPem());
    ready = true;
  });
  after(async () => {
    await sw?.stop();
    await other?.stop();
  });

  /** A backend whose credential activations are counted (the real TPM underneath). */
  const counting = () => {
    let calls = 0;
    return {
      backend: {
        readEkCertificate: (s?: AbortSignal) => be.readEkCertificate(s),
        activateCredential: (c: Parameters<Tpm2Backend['activateCredential']>[0], s?: AbortSignal) => {
          calls++;
          return be.activateCredential(c, s);
        },
        get akName() {
          return be.akName;
        },
      },
      calls: () => calls,
    };
  };

  test('an EK chaining to the trusted CA is activated; the record holds', async (t) => {
    if (!TOOLS.every((n) => requireTool(t, n)) || !ready) return;
    const c = counting();
    const record = await activateAk({
      backend: c.backend,
      trustedCas: [root],
      intermediates: [issuer],
      activatorKey: activator.privateKey,
      label: 'executor-1',
    });
    assert.equal(c.calls(), 1);
    const ek = new X509Certificate(Buffer.from(await be.readEkCertificate()));
    assert.equal(checkActivationRecord(record, be.akName, ek, [activatorPub]), null);
    assert.deepEqual(record.activator, activatorPub);
  });

  test("another swtpm's CA: refused with ATTESTATION_CHAIN_INVALID, nothing activated", async (t) => {
    if (!TOOLS.every((n) => requireTool(t, n)) || !ready) return;
    for (const [name, trustedCas, intermediates] of [
      ['wrong root', [otherRoot], [issuer]],
      ['wrong root and issuer', [otherRoot], [otherIssuer]],
      ['no CA', [], [issuer]],
      ["the other TPM's issuer as anchor", [otherIssuer], []],
    ] as const) {
      const c = counting();
      await assert.rejects(
        activateAk({
          backend: c.backend,
          trustedCas,
          intermediates,
          activatorKey: activator.privateKey,
          label: 'executor-1',
        }),
        (e: unknown) => {
          assert.ok(e instanceof FerryError, name);
          assert.equal(e.code, 'ATTESTATION_CHAIN_INVALID', name);
          assert.match(e.message, /EK certificate refused before activation/);
          assert.ok(e.hints.includes('TPM: executor-1'), name);
          return true;
        },
      );
      assert.equal(c.calls(), 0, `${name}: no credential activation`);
    }
  });

  test('the intermediate missing: the EK does not chain to the root alone', async (t) => {
    if (!TOOLS.every((n) => requireTool(t, n)) || !ready) return;
    const c = counting();
    await assert.rejects(
      activateAk({ backend: c.backend, trustedCas: [root], activatorKey: activator.privateKey }),
      { code: 'ATTESTATION_CHAIN_INVALID' },
    );
    assert.equal(c.calls(), 0);
  });

  test('judged at a time outside the certificates’ validity: refused', async (t) => {
    if (!TOOLS.every((n) => requireTool(t, n)) || !ready) return;
    const c = counting();
    await assert.rejects(
      activateAk({
        backend: c.backend,
        trustedCas: [root],
        intermediates: [issuer],
        activatorKey: activator.privateKey,
        now: new Date(new Date(root.validFrom).getTime() - 86_400_000),
      }),
      (e: unknown) =>
        e instanceof FerryError && e.code === 'ATTESTATION_CHAIN_INVALID' && /not valid at/.test(e.message),
    );
    assert.equal(c.calls(), 0);
  });
});
