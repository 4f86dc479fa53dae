/**
 * The node image (docs/protocol.md §17): how long `buildImage` takes with the Debian packages
 * already cached, and its two heavy steps on their own in the same run (writing the cpio,
 * zstd level 9 of it), `measureImage`, and — not with --quick, and only where QEMU, swtpm and
 * OVMF are installed — one boot under TCG to the guest's first evidence (its report line),
 * against QEMU's first serial output (the firmware's own start-up) as the baseline; then the
 * VM enclave backend (§17.5): a vTPM provisioned, the VM booted to its guest agent, the first
 * enclave created in it (boot to first evidence), one more enclave created and destroyed, and
 * QEMU's resident memory with the VM idle.
 */
import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants as zc, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { activateAk } from '../src/devnet/index.ts';
import {
  bootImage,
  buildImage,
  canBoot,
  measureImage,
  provisionVtpm,
  readCpio,
  VmEnclaveHost,
  writeCpio,
} from '../src/image/index.ts';
import { checkCommitments } from '../src/protocol/index.ts';
import { hasTool } from '../test/helpers/tools.ts';
import type { Bench, BenchRow } from './harness.ts';

const bench: Bench = async ({ quick, log }) => {
  const rows: BenchRow[] = [];
  if (!hasTool('apt-get') || !hasTool('dpkg-deb')) {
    log('image: apt-get or dpkg-deb missing (not a Debian host): skipped');
    return rows;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'ferry-image-bench-'));
  try {
    const cacheDir = join(tmp, 'cache');
    const out = join(tmp, 'img');
    await buildImage({ out, cacheDir }); // fills the cache
    const t0 = performance.now();
    const m = await buildImage({ out, cacheDir });
    rows.push({
      group: 'image build',
      name: 'buildImage (debs cached)',
      value: performance.now() - t0,
      unit: 'ms',
      note: `initrd ${(m.initrd.size / 1e6).toFixed(1)} MB of ${(m.initrd.uncompressedSize / 1e6).toFixed(1)} MB`,
    });
    const cpio = zstdDecompressSync(readFileSync(join(out, 'initrd.img')));
    const records = readCpio(cpio);
    const t1 = performance.now();
    writeCpio(
      records
        .filter((r) => (r.mode & 0o170000) === 0o100000)
        .map((r) => ({ type: 'file' as const, path: r.path, data: r.data })),
      { mtime: 0 },
    );
    rows.push({
      group: 'image build',
      name: 'writeCpio alone',
      value: performance.now() - t1,
      unit: 'ms',
      baseline: 'buildImage (debs cached)',
    });
    const t2 = performance.now();
    zstdCompressSync(cpio, { params: { [zc.ZSTD_c_compressionLevel]: 9 } });
    rows.push({
      group: 'image build',
      name: 'zstd level 9 alone',
      value: performance.now() - t2,
      unit: 'ms',
      baseline: 'buildImage (debs cached)',
    });
    const t3 = performance.now();
    await measureImage(out);
    rows.push({ group: 'image measure', name: 'measureImage', value: performance.now() - t3, unit: 'ms' });
    if (quick) {
      log('image: --quick: no boot');
    } else if (!canBoot()) {
      log('image: QEMU, swtpm or OVMF missing: no boot');
    } else {
      const r = await bootImage({ dir: out, memoryMiB: 1024, cpus: 1 });
      if (r.times.firstOutput !== null) {
        rows.push({
          group: 'image boot (TCG, 1 vCPU, 1 GiB)',
          name: 'first serial output',
          value: r.times.firstOutput,
          unit: 'ms',
        });
      }
      if (r.times.report !== null) {
        rows.push({
          group: 'image boot (TCG, 1 vCPU, 1 GiB)',
          name: 'first evidence (report line)',
          value: r.times.report,
          unit: 'ms',
          baseline: 'first serial output',
        });
      }
      rows.push({
        group: 'image boot (TCG, 1 vCPU, 1 GiB)',
        name: 'power off',
        value: r.times.exit,
        unit: 'ms',
        baseline: 'first serial output',
      });
      rows.push(...(await vmEnclaveRows(out, tmp)));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
};
/** The VM enclave backend: boot to the agent, to the first evidence, create -> destroy, memory. */
async function vmEnclaveRows(image: string, tmp: string): Promise<BenchRow[]> {
  const activator = generateKeyPairSync('ed25519');
  const vtpm = await provisionVtpm({
    stateDir: join(tmp, 'vtpm'),
    activate: (backend, ca) =>
      activateAk({
        backend,
        trustedCas: [new X509Certificate(ca.rootCaPem)],
        intermediates: [new X509Certificate(ca.issuerPem)],
        activatorKey: activator.privateKey,
      }),
  });
  const commitments = () =>
    checkCommitments({
      chainId: 31337n,
      taskId: 1n,
      attempt: 1,
      seed: new Uint8Array(randomBytes(32)),
      appId: 1n,
      appMeasurement: new Uint8Array(32).fill(1),
      inputHash: new Uint8Array(32).fill(2),
      resultRecipient: new Uint8Array(32).fill(9),
      datasets: [{ id: 2n, ciphertextHash: new Uint8Array(32).fill(3) }],
    });
  const t0 = performance.now();
  const vm = await VmEnclaveHost.start({ image, vtpm });
  const group = `vm enclave (${vm.accel}, 1 vCPU, 1 GiB)`;
  const rows: BenchRow[] = [];
  try {
    const booted = performance.now() - t0;
    rows.push({ group, name: 'boot to the guest agent', value: booted, unit: 'ms' });
    const first = await vm.createEnclave({ commitments: commitments() });
    rows.push({
      group,
      name: 'first evidence (boot + first enclave init)',
      value: performance.now() - t0,
      unit: 'ms',
      baseline: 'boot to the guest agent',
    });
    await first.destroy();
    const t1 = performance.now();
    const h = await vm.createEnclave({ commitments: commitments() });
    await h.destroy();
    rows.push({ group, name: 'enclave create -> destroy', value: performance.now() - t1, unit: 'ms' });
    const status = readFileSync(`/proc/${vm.qemuPid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
    rows.push({ group, name: 'QEMU resident memory (VM idle)', value: rss / 1024, unit: 'MiB' });
  } finally {
    await vm.stop();
  }
  return rows;
}

export default bench;
