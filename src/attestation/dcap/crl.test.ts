import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isFerryError } from '../../kernel/index.ts';
import { developmentPolicy } from '../policy.ts';
import { checkDcapCrls, parseCrl } from './crl.ts';
import { INTEL_SGX_ROOT_CA_PEM } from './roots.ts';
import { TdxVerifier } from './verify.ts';

const V = new URL('../../../test/vectors/intel-dcap/', import.meta.url);
const coll = (k: string) => JSON.parse(readFileSync(new URL(`${k}_quote_collateral.json`, V), 'utf8'));
const ROOT = new X509Certificate(INTEL_SGX_ROOT_CA_PEM);
const AT = new Date('2025-07-01T00:00:00Z');

test("the samples' CRLs parse, are signed by their issuers and current on 2025-07-01", () => {
  const tdx = coll('tdx');
  const crl = parseCrl(Uint8Array.from(Buffer.from(tdx.pck_crl, 'hex')));
  assert.equal(crl.thisUpdate.toISOString(), '2025-06-19T10:00:35.000Z');
  assert.equal(crl.nextUpdate?.toISOString(), '2025-07-19T10:00:35.000Z');
  checkDcapCrls(tdx, ROOT, AT);
  checkDcapCrls(coll('sgx'), ROOT, AT);
});

test('a CRL with a flipped signature or TBS byte, a stale CRL, or one from the wrong CA is rejected', () => {
  const tdx = coll('tdx');
  const flip = (hex: string, at: number) => {
    const b = Buffer.from(hex, 'hex');
    b[at] ^= 1;
    return b.toString('hex');
  };
  const n = tdx.pck_crl.length / 2;
  for (const at of [n - 5, 40]) {
    assert.throws(
      () => checkDcapCrls({ ...tdx, pck_crl: flip(tdx.pck_crl, at) }, ROOT, AT),
      (e) => isFerryError(e) && /CHAIN_INVALID|MALFORMED/.test(e.code),
      `byte ${at}`,
    );
  }
  assert.throws(
    () =>
      checkDcapCrls({ ...tdx, root_ca_crl: flip(tdx.root_ca_crl, tdx.root_ca_crl.length / 2 - 3) }, ROOT, AT),
    (e) => isFerryError(e, 'ATTESTATION_CHAIN_INVALID'),
  );
  assert.throws(
    () => checkDcapCrls(tdx, ROOT, new Date('2025-07-19T10:05:00Z')),
    (e) => isFerryError(e, 'ATTESTATION_COLLATERAL_EXPIRED') && /PCK CRL/.test(e.message),
  );
  const sgx = coll('sgx');
  // The SGX sample's PCK CRL comes from the Processor CA; the TDX PCK was issued by the Platform CA.
  const mixed = { ...tdx, pck_crl: sgx.pck_crl, pck_crl_issuer_chain: sgx.pck_crl_issuer_chain };
  checkDcapCrls(mixed, ROOT, AT); // consistent on its own...
  assert.throws(
    () =>
      checkDcapCrls(
        mixed,
        ROOT,
        AT,
        new X509Certificate(
          tdx.pck_crl_issuer_chain.match(/-----BEGIN[\s\S]*?END CERTIFICATE-----/)?.[0] ?? '',
        ).subject,
      ),
    (e) => isFerryError(e, 'ATTESTATION_CHAIN_INVALID') && /not from the CA/.test(e.message),
  );
});

test('the TDX verifier applies the CRL checks dcap-qvl leaves out', async () => {
  const quote = new Uint8Array(readFileSync(new URL('tdx_quote', V)));
  const tdx = coll('tdx');
  const sgx = coll('sgx');
  const v = new TdxVerifier();
  const appraise = (c: object, now: Date) =>
    v.appraise(
      { kind: 'tdx', reportData: quote.slice(568, 632), body: { quote, collateral: JSON.stringify(c) } },
      { policy: developmentPolicy(), now },
    );
  // Just after the PCK CRL's nextUpdate, while TCB info and QE identity are still current.
  const stale = await appraise(tdx, new Date('2025-07-19T10:05:00Z'));
  assert.equal(stale.valid, false);
  assert.equal(stale.reasons[0].code, 'ATTESTATION_COLLATERAL_EXPIRED');
  // A PCK CRL (and its chain) from the Processor CA cannot vouch for a Platform-CA PCK.
  const mixed = await appraise(
    { ...tdx, pck_crl: sgx.pck_crl, pck_crl_issuer_chain: sgx.pck_crl_issuer_chain },
    AT,
  );
  assert.equal(mixed.valid, false);
  assert.equal(mixed.reasons[0].code, 'ATTESTATION_CHAIN_INVALID');
  assert.equal((await appraise(tdx, AT)).valid, true);
});
