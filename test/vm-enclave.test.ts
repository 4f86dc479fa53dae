/**
 * The VM enclave backend (`--tee vm`, docs/protocol.md §17.5) end to end: the node image is
 * built and measured (`ferry image measure`'s policy), a vTPM is provisioned as node
 * registration does (EK certificate, AK, credential activation), the VM boots once (TCG here:
 * KVM cannot run guests on these machines), and one attempt runs inside the guest: init (keys
 * made in the guest, a quote from the guest's TPM) -> the evidence appraised against the
 * image's measured policy -> sealed keys -> a run whose inputs the guest fetched through the
 * host relay -> the sealed result and the signed receipt -> destroy. The host's attacks on the
 * channel lose: a file source the host names, and an image with one byte of its initrd changed
 * (booted on the same, genuinely provisioned vTPM), whose evidence the policy rejects at PCR 9.
 *
 * Slow (an image build and two emulated boots of 30-60 s each): e2e tier. Needs apt-get and
 * dpkg-deb (the image build), qemu-system-x86, ovmf, swtpm and tpm2-tools; without QEMU it is
 * skipped with the reason (in CI nothing is skipped).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { constants as zc, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { ensureExamplesBuilt, examplePath } from '../examples/index.ts';
import { Tpm2Verifier } from '../src/attestation/tpm2/verifier.ts';
import { decrypt, parseIdentity } from '../src/crypto/age/index.ts';
import { activateAk } from '../src/devnet/activator.ts';
import type { EnclaveHandle } from '../src/enclave/handle.ts';
import { verifyReceipt } from '../src/enclave/receipt.ts';
import {
  buildImage,
  canBoot,
  IMAGE_FILES,
  type ImageMeasurement,
  measureImage,
  provisionVtpm,
  VmEnclaveHost,
  type VtpmProvision,
} from '../src/image/index.ts';
import { type FerryError, toHex } from '../src/kernel/index.ts';
import { reportDataFor } from '../src/protocol/binding.ts';
import { commitmentsFor, ownerEncrypt, requester, sealFor, sha256 } from './enclave-helpers.ts';
import { requireTool } from './helpers/tools.ts';

const TMP = await mkdtemp(join(tmpdir(), 'ferry-vm-enclave-'));
/** The pinned .debs, kept between runs (each is checked against its pin before use). */
const DEB_CACHE = join(tmpdir(), 'ferry-image-deb-cache');
const IMAGE = join(TMP, 'image');
const activator = generateKeyPairSync('ed25519');
const activatorPub = new Uint8Array(
  Buffer.from(activator.publicKey.export({ format: 'jwk' }).x as string, 'base64url'),
);

let measured: ImageMeasurement | undefined;
let vtpm: VtpmProvision | undefined;
let vm: VmEnclaveHost | undefined;
let server: Server | undefined;
let base = '';
const handles: EnclaveHandle[] = [];
let skipped: string | null = null;

function tools(t: TestContext): boolean {
  if (!canBoot()) {
    if (process.env.CI) throw new Error('qemu-system-x86_64, swtpm and OVMF are required in CI');
    skipped = 'QEMU, swtpm or OVMF is not installed: no VM can run here';
    t.skip(skipped);
    return false;
  }
  return ['apt-get', 'dpkg-deb', 'swtpm_setup', 'swtpm_ioctl', 'tpm2_createak'].every((n) =>
    requireTool(t, n),
  );
}

before(async () => {
  // The ciphertext server the relay fetches from (an owner's storage).
  mkdirSync(join(TMP, 'www'));
  server = createServer((req, res) => {
    try {
      const body = readFileSync(join(TMP, 'www', String(req.url).replace(/[^A-Za-z0-9._-]/g, '')));
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await ensureExamplesBuilt();
});

after(async () => {
  await Promise.all(handles.map((h) => h.destroy().catch(() => {})));
  await vm?.stop();
  server?.close();
  rmSync(TMP, { recursive: true, force: true });
});

const verifier = () =>
  new Tpm2Verifier({
    trustedCas: [new X509Certificate(vtpm?.rootCaPem as Buffer)],
    trustedActivators: [activatorPub],
  });

test('vm: build and measure the image, provision the vTPM, boot the VM once', async (t) => {
  if (!tools(t)) return;
  const t0 = Date.now();
  await buildImage({ out: IMAGE, cacheDir: DEB_CACHE });
  t.diagnostic(`image build: ${Date.now() - t0} ms`);
  measured = await measureImage(IMAGE);
  vtpm = await provisionVtpm({
    stateDir: join(TMP, 'vtpm'),
    activate: (backend, ca) =>
      activateAk({
        backend,
        trustedCas: [new X509Certificate(ca.rootCaPem)],
        intermediates: [new X509Certificate(ca.issuerPem)],
        activatorKey: activator.privateKey,
        label: 'vm-test',
      }),
  });
  const t1 = Date.now();
  vm = await VmEnclaveHost.start({
    image: IMAGE,
    vtpm,
    log: (m, f) => t.diagnostic(`${m} ${JSON.stringify(f ?? {})}`),
  });
  t.diagnostic(`boot to the guest agent (${vm.accel}): ${Date.now() - t1} ms`);
});

test('vm: an attempt in the guest — evidence accepted by the image policy, keys, run over the relay, receipt, destroy', async (t) => {
  if (!vm || !measured) return t.skip(skipped ?? 'no VM');
  const app = new Uint8Array(readFileSync(examplePath('sha256')));
  const appAsset = await ownerEncrypt(join(TMP, 'www'), 'app.age', app);
  const data = new Uint8Array(200_000).map((_, i) => (i * 17) & 0xff);
  const ds = await ownerEncrypt(join(TMP, 'www'), 'data.age', data);
  const rq = requester();
  const c = commitmentsFor({
    app,
    datasets: [{ id: 2n, ciphertext: ds.ciphertext }],
    recipient: rq.recipient,
  });
  const t0 = Date.now();
  const h = await vm.createEnclave({ commitments: c });
  handles.push(h);
  t.diagnostic(`enclave create (init + quote in the guest): ${Date.now() - t0} ms`);

  // The evidence: a tpm2 quote over the boot PCRs, bound to the commitments and the keys made inside.
  const ev = h.evidence();
  assert.equal(ev.kind, 'tpm2');
  const expected = reportDataFor({ commitments: c, x25519Pub: h.x25519Pub, ed25519Pub: h.ed25519Pub });
  const ap = await verifier().appraise(ev, {
    policy: measured.policy,
    now: new Date(),
    expectedReportData: expected,
  });
  assert.equal(ap.accepted, true, JSON.stringify(ap.reasons));
  // With the guest firmware's event log, replayed against the quote and matched event by event
  // against the image's reference events (the policy pins them, so a log is required).
  assert.ok(ev.body.eventLog instanceof Uint8Array, 'the evidence carries the event log');
  assert.ok(
    measured.policy.referenceValues.tpm2?.events?.sha256?.['9']?.length,
    'the policy pins PCR 9 events',
  );
  const pcrs = (ev.body.pcrs as { sha256: Record<string, Uint8Array> }).sha256;
  for (const [i, v] of Object.entries(measured.pcrs.sha256)) assert.equal(toHex(pcrs[i]), v, `PCR ${i}`);

  // The host names a file in the guest: the agent refuses it before the enclave sees it.
  await h.deliverKeys([
    await sealFor(h, 1n, 'app', appAsset.fileKey),
    await sealFor(h, 2n, 'dataset', ds.fileKey),
  ]);
  await assert.rejects(
    h.run({
      app: { source: { kind: 'file', location: '/ferry/runtime-manifest.txt', encrypted: true } },
      datasets: [{ id: 2n, source: { kind: 'url', location: `${base}/data.age`, encrypted: true } }],
      args: [],
    }),
    (e: FerryError) => e.code === 'ENCLAVE_PROTOCOL' && /url sources only/.test(e.message),
  );

  const t1 = Date.now();
  const out = await h.run({
    app: { source: { kind: 'url', location: `${base}/app.age`, encrypted: true } },
    datasets: [{ id: 2n, source: { kind: 'url', location: `${base}/data.age`, encrypted: true } }],
    args: [],
  });
  t.diagnostic(
    `run (relay of ${app.length + data.length} bytes of plaintext as ciphertext): ${Date.now() - t1} ms`,
  );
  assert.equal(out.outcome, 'exit');
  const stdout = await decrypt([parseIdentity(rq.identity)], out.result);
  assert.equal(new TextDecoder().decode(stdout), `${toHex(sha256(data))}  -\n`);
  const r = verifyReceipt(out.receipt, out.signature, h.ed25519Pub);
  assert.deepEqual(r.datasets, [{ id: '2', ciphertextHash: sha256(ds.ciphertext), complete: true }]);
  assert.deepEqual(r.evidenceHash, h.evidenceHash);
  const t2 = Date.now();
  const report = await h.destroy();
  t.diagnostic(`destroy: ${Date.now() - t2} ms`);
  assert.deepEqual(report, { exitCode: 0, signal: null, killed: false });
  assert.equal(h.exited, true);
});

test('vm: an image with one byte of its initrd changed, on the same provisioned vTPM, is rejected: PCR 9 is not the measured one', async (t) => {
  if (!vm || !measured || !vtpm) return t.skip(skipped ?? 'no VM');
  await vm.stop();
  vm = undefined;
  // The host's own build: one byte of the guest agent's text changed inside the initrd.
  const evil = join(TMP, 'evil');
  mkdirSync(evil);
  for (const f of [IMAGE_FILES.kernel, IMAGE_FILES.cmdline]) copyFileSync(join(IMAGE, f), join(evil, f));
  const cpio = Buffer.from(zstdDecompressSync(readFileSync(join(IMAGE, IMAGE_FILES.initrd))));
  const at = cpio.indexOf('the guest\nagent of the VM enclave backend');
  const at2 = at >= 0 ? at : cpio.indexOf('agent of the VM enclave backend');
  assert.ok(at2 >= 0, 'the guest agent is in the initrd');
  cpio[at2] ^= 0x20;
  writeFileSync(
    join(evil, IMAGE_FILES.initrd),
    zstdCompressSync(cpio, { params: { [zc.ZSTD_c_compressionLevel]: 3 } }),
  );
  vm = await VmEnclaveHost.start({ image: evil, vtpm });
  const rq = requester();
  const app = new Uint8Array(readFileSync(examplePath('sha256')));
  const c = commitmentsFor({
    app,
    datasets: [{ id: 2n, ciphertext: new Uint8Array(1) }],
    recipient: rq.recipient,
  });
  const h = await vm.createEnclave({ commitments: c });
  handles.push(h);
  const ev = h.evidence();
  const expected = reportDataFor({ commitments: c, x25519Pub: h.x25519Pub, ed25519Pub: h.ed25519Pub });
  // The quote itself is genuine (the AK is activated, the EK chains): only the measurement lies.
  const ap = await verifier().appraise(ev, {
    policy: measured.policy,
    now: new Date(),
    expectedReportData: expected,
  });
  assert.equal(ap.accepted, false);
  // Every reason is a measurement the policy does not allow (the quote, the AK and the EK are
  // fine); PCR 9 holds the initrd. (PCR 4 changes too when the initrd's size does: QEMU patches
  // the initrd's size into the kernel's setup header before OVMF measures it, §17.3.)
  assert.ok(ap.reasons.length > 0);
  for (const r of ap.reasons)
    assert.equal(r.code, 'ATTESTATION_MEASUREMENT_MISMATCH', JSON.stringify(ap.reasons));
  assert.ok(
    ap.reasons.some((r) => /PCR sha256:9 /.test(r.message)),
    JSON.stringify(ap.reasons),
  );
  // The reason names the event that differs: the initrd the kernel's EFI stub measured.
  assert.ok(
    ap.reasons.some((r) => /PCR sha256:9 event 'Linux initrd/.test(r.message)),
    JSON.stringify(ap.reasons),
  );
  await h.destroy();
});
