/**
 * `ferry devnet up --tee vm` (docs/protocol.md §17.5): the node image of this checkout, built
 * once into $FERRY_HOME/cache/node-image/KEY (KEY = SHA-256 over what the build reads from the
 * checkout: the enclave runtime's measurement, the guest agent's and the image builder's files,
 * the node binary's version) or reused from there; its measured policy; and per executor a vTPM
 * provisioned as node registration does (EK certificate from swtpm's local CA, AK persistent,
 * credential activation by the devnet's activator), with the node flags that boot its VM.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeActivationRecord } from '../attestation/tpm2/index.ts';
import { computeRuntimeManifest, REPO_ROOT } from '../enclave/index.ts';
import { buildImage, IMAGE_FILES, measureImage, provisionVtpm } from '../image/index.ts';
import { type Logger, toHex } from '../kernel/index.ts';
import { activateAk, createDevnetActivator } from './activator.ts';

/** The files of this checkout the image build reads besides the runtime closure. */
const BUILD_INPUTS = [
  'src/image/guest.ts',
  'src/image/channel.ts',
  'src/image/build.ts',
  'src/image/init.ts',
  'src/image/pins.ts',
  'src/image/cpio.ts',
];

async function imageKey(): Promise<string> {
  const h = createHash('sha256');
  const runtime = await computeRuntimeManifest(REPO_ROOT);
  h.update(`runtime ${toHex(runtime.measurement)}\n`);
  for (const f of BUILD_INPUTS)
    h.update(
      `${f} ${createHash('sha256')
        .update(readFileSync(join(REPO_ROOT, f)))
        .digest('hex')}\n`,
    );
  h.update(`node ${process.version}\n`);
  return h.digest('hex').slice(0, 32);
}

/** The image to boot: `image` as given, or this checkout's, built or reused from the cache. */
async function nodeImage(home: string, image: string | undefined, log: Logger): Promise<string> {
  if (image) return image;
  const dir = join(home, 'cache', 'node-image', await imageKey());
  if (existsSync(join(dir, IMAGE_FILES.manifest))) {
    log.info('node image reused', { dir });
    return dir;
  }
  rmSync(dir, { recursive: true, force: true });
  const t0 = Date.now();
  await buildImage({ out: dir, cacheDir: join(home, 'cache', 'debian') });
  log.info('node image built', { dir, ms: Date.now() - t0 });
  return dir;
}

export async function prepareVmExecutors(p: {
  home: string;
  image?: string;
  executors: string[];
  log: Logger;
  signal?: AbortSignal;
}): Promise<{
  tpm2: { activator: string; cas: string[] };
  vm: { image: string; digest: string; policy: string };
  args: Map<string, string[]>;
}> {
  const { home, log } = p;
  const image = await nodeImage(home, p.image, log);
  const m = await measureImage(image);
  const policy = join(home, 'devnet', 'vm-policy.json');
  writeFileSync(policy, `${JSON.stringify(m.policy, null, 2)}\n`, { mode: 0o644 });
  log.info('node image measured', { digest: m.image.digest, policy });
  const activator = createDevnetActivator(home);
  const activatorHex = activator.publicKeyHex;
  const cas: string[] = [];
  const args = new Map<string, string[]>();
  for (const name of p.executors) {
    const dir = join(home, 'nodes', name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stateDir = join(dir, 'vtpm');
    rmSync(stateDir, { recursive: true, force: true });
    const v = await provisionVtpm({
      stateDir,
      signal: p.signal,
      activate: (backend, ca) =>
        activateAk({
          backend,
          trustedCas: [new X509Certificate(ca.rootCaPem)],
          intermediates: [new X509Certificate(ca.issuerPem)],
          activatorKey: activator.privateKey,
          label: name,
          signal: p.signal,
        }),
    });
    const ca = join(home, 'devnet', `tpm2-ca-${name}.pem`);
    writeFileSync(ca, v.rootCaPem, { mode: 0o644 });
    cas.push(ca);
    const ekFile = join(dir, 'vm-ek.pem');
    writeFileSync(ekFile, new X509Certificate(Buffer.from(v.ekCert)).toString(), { mode: 0o644 });
    const chainFile = join(dir, 'vm-ek-chain.pem');
    writeFileSync(chainFile, new X509Certificate(Buffer.from(v.ekChain[0])).toString(), { mode: 0o644 });
    const recordFile = join(dir, 'vm-activation.cbor');
    writeFileSync(recordFile, encodeActivationRecord(v.activation), { mode: 0o600 });
    args.set(name, [
      '--vm-image',
      image,
      '--vm-tpm-state',
      stateDir,
      '--tpm2-ak-handle',
      `0x${v.akHandle.toString(16)}`,
      '--tpm2-ek-cert',
      ekFile,
      '--tpm2-ek-chain',
      chainFile,
      '--tpm2-activation',
      recordFile,
    ]);
    log.info('vTPM provisioned', { node: name, ak: toHex(v.akName) });
    p.signal?.throwIfAborted();
  }
  return { tpm2: { activator: activatorHex, cas }, vm: { image, digest: m.image.digest, policy }, args };
}
