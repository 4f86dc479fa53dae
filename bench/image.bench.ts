/**
 * The node image (docs/protocol.md §17): how long `buildImage` takes with the Debian packages
 * already cached, and its two heavy steps on their own in the same run (writing the cpio,
 * zstd level 9 of it), `measureImage`, and — not with --quick, and only where QEMU, swtpm and
 * OVMF are installed — one boot under TCG to the guest's first evidence (its report line),
 * against QEMU's first serial output (the firmware's own start-up) as the baseline.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants as zc, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { bootImage, buildImage, canBoot, measureImage, readCpio, writeCpio } from '../src/image/index.ts';
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
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
};
export default bench;
