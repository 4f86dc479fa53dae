/**
 * Tpm2DeviceBackend (raw TPM commands, what the VM guest quotes with) against swtpm's raw
 * command socket: an AK provisioned and activated with tpm2-tools as node registration does;
 * the raw quote is accepted by Tpm2Verifier, and refused for another report_data, another AK's
 * activation and a PCR value changed after the quote.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { after, test } from 'node:test';
import { requireTool } from '../../../test/helpers/tools.ts';
import { tpm2ProductionPolicy } from '../policy.ts';
import { toHex } from '../../kernel/index.ts';
import { makeCredential, signActivationRecord } from './activation.ts';
import { Tpm2Backend } from './backend.ts';
import { readPcrs, Tpm2DeviceBackend, tcpTransport } from './device.ts';
import { parseSelection } from './pcrs.ts';
import { Swtpm } from './swtpm.ts';
import { Tpm2Tools } from './tools.ts';
import { Tpm2Verifier } from './verifier.ts';

let sw: Swtpm | undefined;
after(async () => sw?.stop());

test('tpm2-device: a raw quote with the activated AK is appraised; wrong report_data, wrong AK and a changed PCR are refused', async (t) => {
  for (const tool of ['swtpm', 'swtpm_setup', 'tpm2_quote']) if (!requireTool(t, tool)) return;
  sw = await Swtpm.start({ pcrBanks: ['sha256'] });
  const be = await Tpm2Backend.open({ tools: new Tpm2Tools({ tcti: sw.tcti }), recreateAk: true });
  const ekDer = await be.readEkCertificate();
  const ek = new X509Certificate(Buffer.from(ekDer));
  const secret = new Uint8Array(randomBytes(32));
  assert.deepEqual(await be.activateCredential(makeCredential(ek.publicKey, be.akName, secret)), secret);
  const activator = generateKeyPairSync('ed25519');
  const activation = signActivationRecord(activator.privateKey, {
    akName: be.akName,
    ekCert: ek,
    activatedAt: Math.floor(Date.now() / 1000),
  });
  const issuer = new X509Certificate(await sw.issuerCaPem());
  const root = new X509Certificate(await sw.rootCaPem());
  const selection = 'sha256:0,1,2,3,4,5,6,7,9';
  const dev = await Tpm2DeviceBackend.open({
    transport: tcpTransport('127.0.0.1', sw.port),
    pcrSelection: selection,
    ekCert: ekDer,
    ekChain: [new Uint8Array(issuer.raw)],
    activation,
  });
  assert.deepEqual(dev.akName, be.akName);
  // PCR_Read returns 8 PCRs at most per call: the 9 asked for take two rounds.
  const pcrs = await readPcrs(tcpTransport('127.0.0.1', sw.port), parseSelection(selection));
  assert.deepEqual(
    [...(pcrs.get('sha256')?.keys() ?? [])].sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 9],
  );

  const reportData = new Uint8Array(randomBytes(64));
  const ev = await dev.collect(reportData);
  const activatorPub = new Uint8Array(
    Buffer.from(activator.publicKey.export({ format: 'jwk' }).x as string, 'base64url'),
  );
  const v = new Tpm2Verifier({ trustedCas: [root], trustedActivators: [activatorPub] });
  const pinned: Record<string, string[]> = {};
  for (const [i, d] of pcrs.get('sha256') ?? []) pinned[String(i)] = [toHex(d)];
  const policy = tpm2ProductionPolicy('boot-pcrs', { pcrs: { sha256: pinned } });
  const ok = await v.appraise(ev, { policy, now: new Date(), expectedReportData: reportData });
  assert.equal(ok.accepted, true, JSON.stringify(ok.reasons));

  const other = await v.appraise(ev, {
    policy,
    now: new Date(),
    expectedReportData: new Uint8Array(randomBytes(64)),
  });
  assert.equal(other.accepted, false);

  const stranger = generateKeyPairSync('ed25519');
  const v2 = new Tpm2Verifier({
    trustedCas: [root],
    trustedActivators: [
      new Uint8Array(Buffer.from(stranger.publicKey.export({ format: 'jwk' }).x as string, 'base64url')),
    ],
  });
  assert.equal(
    (await v2.appraise(ev, { policy, now: new Date(), expectedReportData: reportData })).accepted,
    false,
  );

  const body = ev.body as { pcrs: { sha256: Record<string, Uint8Array> } };
  const changed = { ...body.pcrs.sha256, '9': new Uint8Array(32).fill(7) };
  const forged = { ...ev, body: { ...ev.body, pcrs: { sha256: changed } } } as typeof ev;
  const r = await v.appraise(forged, { policy, now: new Date(), expectedReportData: reportData });
  assert.equal(r.accepted, false);
});
