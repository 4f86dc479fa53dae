/**
 * `ferry image build [--out DIR] [--cache DIR] [--json]`: builds the node image (src/image/,
 * docs/protocol.md §17) and prints the SHA-256 of its kernel, initrd and command line and the
 * image digest over the three.
 */
import { join } from 'node:path';
import { buildImage } from '../../image/index.ts';
import { FerryError, ferryHome } from '../../kernel/index.ts';
import { optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';

export default defineCommand({
  name: 'image build',
  summary: 'build the node image (pinned Debian kernel, Node.js, the enclave runtime) reproducibly',
  usage: 'image build [--out DIR] [--cache DIR] [--json]',
  description: `
Builds the node image: the pinned Debian kernel (apt-get download, checked against its pinned
SHA-256, unpacked with dpkg-deb -x) and an initrd (newc cpio, zstd) holding a minimal init, the
npm "node" binary (not stripped), the Debian libraries it needs, and Ferry's enclave runtime
(the files of the enclave's import closure and the npm packages it loads). No shell, no login;
the root file system is remounted read-only before node starts. Needs a Debian 12 host (apt-get,
dpkg-deb). Two builds of the same checkout give byte-identical files; SOURCE_DATE_EPOCH (default
0) is the mtime of every initrd entry.
Writes DIR/vmlinuz, DIR/initrd.img, DIR/cmdline and DIR/image.json (default DIR ./ferry-image);
.deb files are kept in --cache (default $FERRY_HOME/cache/debian).
--json prints {kernel, initrd, cmdline, digest, out} (SHA-256 hex each).`,
  options: {
    out: { type: 'string', value: 'DIR', description: 'output directory (default ./ferry-image)' },
    cache: { type: 'string', value: 'DIR', description: 'where fetched .deb files are kept' },
  },
  async run(ctx) {
    const out = optionalString(ctx, 'out') ?? join(ctx.cwd, 'ferry-image');
    const cacheDir = optionalString(ctx, 'cache') ?? join(ferryHome(ctx.env), 'cache', 'debian');
    const raw = ctx.env.SOURCE_DATE_EPOCH;
    let sourceDateEpoch = 0;
    if (raw !== undefined && raw !== '') {
      if (!/^[0-9]{1,10}$/.test(raw) || Number(raw) > 0xffffffff) {
        throw new FerryError(
          'USAGE_INVALID_ARGUMENT',
          'SOURCE_DATE_EPOCH must be Unix seconds (0..4294967295)',
          {
            hints: [`got: ${raw}`],
          },
        );
      }
      sourceDateEpoch = Number(raw);
    }
    const m = await buildImage({ out, cacheDir, sourceDateEpoch, progress: (l) => ctx.progress(l) });
    const json = {
      kernel: m.kernel.sha256,
      initrd: m.initrd.sha256,
      cmdline: m.cmdline.sha256,
      digest: m.digest,
      out,
    };
    const text = [
      `node image in ${out}`,
      `  kernel   ${m.kernel.sha256}  ${m.kernel.file} (${m.kernel.package} ${m.kernel.version})`,
      `  initrd   ${m.initrd.sha256}  ${m.initrd.file} (${m.initrd.size} bytes, ${m.initrd.compression})`,
      `  cmdline  ${m.cmdline.sha256}  "${m.cmdline.text}"`,
      `  digest   ${m.digest}`,
      `  node ${m.node.version} (not stripped), enclave runtime ${m.runtimeMeasurement}`,
    ].join('\n');
    return { json, text };
  },
});
