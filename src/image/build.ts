/**
 * `buildImage`: the node image (docs/protocol.md §17) — a pinned Debian kernel, and an initrd
 * holding the init of init.ts, the npm `node` binary (as installed, not stripped: its bytes are
 * those of the npm package), the Debian libraries it needs, and Ferry's enclave runtime (the
 * files of the enclave's import closure, src/enclave/measure.ts, and the npm packages it loads)
 * plus the guest agent (guest.ts, channel.ts). Reproducible: the same checkout, `node_modules` and SOURCE_DATE_EPOCH give
 * byte-identical kernel, initrd and command line (entries sorted, uid/gid 0, one mtime, zstd at a
 * fixed level with the zstd bundled in the Node.js that builds).
 *
 * Output directory: `vmlinuz`, `initrd.img`, `cmdline` (the exact bytes, no newline) and
 * `image.json` (the manifest below).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { constants as zc, zstdCompress } from 'node:zlib';
import { computeRuntimeManifest, REPO_ROOT } from '../enclave/index.ts';
import { FerryError } from '../kernel/index.ts';
import { type CpioEntry, writeCpio } from './cpio.ts';
import { initExecutable } from './init.ts';
import { type DebianPin, KERNEL_PATH, KERNEL_PIN, LIBRARIES, LIBRARY_PINS } from './pins.ts';

const run = promisify(execFile);
const zstd = promisify(zstdCompress);

/** The manifest format tag, also the first line of the image digest's text. */
export const IMAGE_FORMAT = 'ferry/node-image/v1';
/** The kernel command line of every image (the VM appends nothing but OVMF's ` initrd=initrd`). */
export const IMAGE_CMDLINE = 'console=ttyS0 panic=-1 quiet';
/** zstd level of the initrd (level 9: 37 MB in about 6 s; 19 saves 1 MB for ten times the time). */
export const ZSTD_LEVEL = 9;
/** Where Ferry's files live in the image. */
export const FERRY_DIR = 'ferry';
/** The guest program init runs. */
export const GUEST_ENTRY = 'src/image/guest.ts';
/** The guest program's files outside the enclave runtime's closure (it imports the rest from it). */
export const GUEST_FILES = [GUEST_ENTRY, 'src/image/channel.ts'];
export const IMAGE_FILES = {
  kernel: 'vmlinuz',
  initrd: 'initrd.img',
  cmdline: 'cmdline',
  manifest: 'image.json',
};

export type ImageManifest = {
  format: typeof IMAGE_FORMAT;
  kernel: { file: string; sha256: string; size: number; package: string; version: string; debSha256: string };
  initrd: { file: string; sha256: string; size: number; compression: string; uncompressedSize: number };
  cmdline: { file: string; sha256: string; text: string };
  digest: string;
  sourceDateEpoch: number;
  node: { version: string; sha256: string; stripped: false };
  libraries: { path: string; sha256: string; package: string; version: string }[];
  runtimeMeasurement: string;
  build: { node: string; zstd: string };
};

export type BuildOptions = {
  /** Output directory (created; existing image files are replaced). */
  out: string;
  /** Where fetched .deb files are kept between builds. */
  cacheDir: string;
  /** Unix seconds stamped on every initrd entry (SOURCE_DATE_EPOCH); default 0. */
  sourceDateEpoch?: number;
  /** The checkout whose runtime goes into the image (default this one). */
  root?: string;
  /** Progress lines (stderr on a terminal). */
  progress?: (line: string) => void;
};

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * The image digest: SHA-256 of the text `ferry/node-image/v1\nkernel K\ninitrd I\ncmdline C\n`
 * with K, I, C the SHA-256 (hex) of the kernel file, the initrd file and the command line bytes.
 */
export function imageDigest(kernel: string, initrd: string, cmdline: string): string {
  return createHash('sha256')
    .update(`${IMAGE_FORMAT}\nkernel ${kernel}\ninitrd ${initrd}\ncmdline ${cmdline}\n`)
    .digest('hex');
}

/** Fetches a pinned .deb into `cacheDir` (unless a verified copy is there) and returns its path. */
export async function fetchDeb(pin: DebianPin, cacheDir: string): Promise<string> {
  await mkdir(cacheDir, { recursive: true });
  const path = join(cacheDir, pin.file);
  if (existsSync(path) && sha256(readFileSync(path)) === pin.sha256) return path;
  try {
    await run('apt-get', ['download', `${pin.name}=${pin.version}`], { cwd: cacheDir, maxBuffer: 1 << 24 });
  } catch (e) {
    throw new FerryError('IMAGE_BUILD_FAILED', `apt-get download ${pin.name}=${pin.version} failed`, {
      cause: e,
      hints: [
        String((e as { stderr?: string }).stderr ?? (e as Error).message)
          .trim()
          .split('\n')
          .slice(-2)
          .join(' '),
        'needs a Debian 12 host with bookworm and bookworm-security in its sources (apt-get update first)',
        `or place ${pin.file} (SHA-256 ${pin.sha256}, e.g. from snapshot.debian.org) in ${cacheDir}`,
      ],
    });
  }
  if (!existsSync(path)) {
    throw new FerryError('IMAGE_BUILD_FAILED', `apt-get download did not write ${pin.file}`);
  }
  const got = sha256(readFileSync(path));
  if (got !== pin.sha256) {
    await rm(path, { force: true });
    throw new FerryError('IMAGE_PIN_MISMATCH', `${pin.file} is not the pinned package`, {
      hints: [`expected SHA-256: ${pin.sha256}`, `got: ${got}`, 'the file was removed from the cache'],
    });
  }
  return path;
}

async function unpack(deb: string, dir: string): Promise<void> {
  try {
    await run('dpkg-deb', ['-x', deb, dir]);
  } catch (e) {
    throw new FerryError('IMAGE_BUILD_FAILED', `dpkg-deb -x ${deb} failed`, {
      cause: e,
      hints: ['needs dpkg-deb (Debian package dpkg)'],
    });
  }
}

/** Every file and symlink under `dir` (no nested node_modules), as image entries under `prefix`. */
function packageEntries(dir: string, prefix: string): CpioEntry[] {
  const out: CpioEntry[] = [];
  const walk = (abs: string) => {
    for (const name of readdirSync(abs)) {
      const p = join(abs, name);
      const rel = relative(dir, p).split('\\').join('/');
      const st = lstatSync(p);
      if (st.isDirectory()) {
        if (name !== 'node_modules') walk(p);
      } else if (st.isSymbolicLink()) {
        out.push({ type: 'symlink', path: `${prefix}/${rel}`, target: readlinkSync(p) });
      } else if (st.isFile()) {
        out.push({ type: 'file', path: `${prefix}/${rel}`, data: readFileSync(p) });
      }
    }
  };
  walk(dir);
  return out;
}

/** Builds the image into `options.out` and returns its manifest. */
export async function buildImage(options: BuildOptions): Promise<ImageManifest> {
  const root = options.root ?? REPO_ROOT;
  const epoch = options.sourceDateEpoch ?? 0;
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > 0xffffffff) {
    throw new FerryError('INVALID_ARGUMENT', 'sourceDateEpoch must be an integer in 0..2^32-1', {
      hints: [`got: ${String(epoch)}`],
    });
  }
  const progress = options.progress ?? (() => {});
  const work = await mkdtemp(join(tmpdir(), 'ferry-image-'));
  try {
    // Debian inputs, verified before use.
    progress('fetching the pinned Debian packages');
    const pins = [KERNEL_PIN, ...LIBRARY_PINS];
    const debs = await Promise.all(pins.map((p) => fetchDeb(p, options.cacheDir)));
    const trees = new Map<string, string>();
    await Promise.all(
      pins.map(async (p, i) => {
        const dir = join(work, p.name);
        await unpack(debs[i], dir);
        trees.set(p.name, dir);
      }),
    );
    const kernel = readFileSync(join(trees.get(KERNEL_PIN.name) as string, KERNEL_PATH));

    const entries: CpioEntry[] = [];
    const libraries: ImageManifest['libraries'] = [];
    for (const [pkg, from, to] of LIBRARIES) {
      const tree = trees.get(pkg) as string;
      let abs = join(tree, from);
      // Follow symlinks inside the package (libstdc++.so.6 -> libstdc++.so.6.0.30).
      for (let hops = 0; lstatSync(abs).isSymbolicLink(); hops++) {
        const t = readlinkSync(abs);
        if (hops > 8 || t.startsWith('/'))
          throw new FerryError('IMAGE_BUILD_FAILED', `cannot resolve ${from} in ${pkg}`);
        abs = resolve(abs, '..', t);
      }
      const data = readFileSync(abs);
      const pin = pins.find((p) => p.name === pkg) as DebianPin;
      entries.push({ type: 'file', path: to, data, mode: 0o555 });
      libraries.push({ path: to, sha256: sha256(data), package: pkg, version: pin.version });
    }
    entries.push({
      type: 'symlink',
      path: 'lib64/ld-linux-x86-64.so.2',
      target: '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
    });

    // Node.js: the npm package's binary, unmodified.
    const nodePath = realpathSync(join(root, 'node_modules', 'node', 'bin', 'node'));
    const node = readFileSync(nodePath);
    const nodeVersion = (await run(nodePath, ['--version'])).stdout.trim();
    entries.push({ type: 'file', path: 'bin/node', data: node, mode: 0o555 });

    // Ferry: the enclave runtime's files and packages, the guest program, its manifest.
    progress('collecting the enclave runtime');
    const runtime = await computeRuntimeManifest(root);
    for (const f of runtime.files) {
      const data = readFileSync(join(root, f.path));
      if (sha256(data) !== f.sha256)
        throw new FerryError('IMAGE_BUILD_FAILED', `${f.path} changed during the build`);
      entries.push({ type: 'file', path: `${FERRY_DIR}/${f.path}`, data });
    }
    for (const g of GUEST_FILES) {
      if (runtime.files.some((f) => f.path === g)) continue;
      entries.push({ type: 'file', path: `${FERRY_DIR}/${g}`, data: readFileSync(join(root, g)) });
    }
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')).packages ?? {};
    for (const p of runtime.packages) {
      const key = `node_modules/${p.name}`;
      if (lock[key]?.version !== p.version) {
        throw new FerryError('IMAGE_BUILD_FAILED', `${p.name}@${p.version} is not installed at ${key}`, {
          hints: ['run npm install'],
        });
      }
      entries.push(...packageEntries(join(root, key), `${FERRY_DIR}/${key}`));
    }
    entries.push({
      type: 'file',
      path: `${FERRY_DIR}/runtime-manifest.txt`,
      data: Buffer.from(runtime.text, 'utf8'),
    });
    entries.push({
      type: 'file',
      path: `${FERRY_DIR}/package.json`,
      data: Buffer.from('{"name":"ferry-node-image","private":true,"type":"module"}\n'),
    });

    // The skeleton: init, mount points, the console the kernel opens for init.
    entries.push({
      type: 'file',
      path: 'init',
      mode: 0o555,
      data: initExecutable({
        program: '/bin/node',
        argv: ['/bin/node', `/${FERRY_DIR}/${GUEST_ENTRY}`],
        env: ['HOME=/tmp', 'TMPDIR=/tmp'],
      }),
    });
    for (const d of ['proc', 'sys', 'dev', 'tmp']) entries.push({ type: 'dir', path: d, mode: 0o555 });
    entries.push({ type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 });

    progress(`writing the initrd (${entries.length} entries, zstd level ${ZSTD_LEVEL})`);
    const cpio = Buffer.concat(writeCpio(entries, { mtime: epoch }));
    const initrd = await zstd(cpio, { params: { [zc.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
    const cmdline = Buffer.from(IMAGE_CMDLINE, 'utf8');

    const k = sha256(kernel);
    const i = sha256(initrd);
    const c = sha256(cmdline);
    const manifest: ImageManifest = {
      format: IMAGE_FORMAT,
      kernel: {
        file: IMAGE_FILES.kernel,
        sha256: k,
        size: kernel.length,
        package: KERNEL_PIN.name,
        version: KERNEL_PIN.version,
        debSha256: KERNEL_PIN.sha256,
      },
      initrd: {
        file: IMAGE_FILES.initrd,
        sha256: i,
        size: initrd.length,
        compression: `zstd-${ZSTD_LEVEL}`,
        uncompressedSize: cpio.length,
      },
      cmdline: { file: IMAGE_FILES.cmdline, sha256: c, text: IMAGE_CMDLINE },
      digest: imageDigest(k, i, c),
      sourceDateEpoch: epoch,
      node: { version: nodeVersion, sha256: sha256(node), stripped: false },
      libraries,
      runtimeMeasurement: Buffer.from(runtime.measurement).toString('hex'),
      build: { node: process.version, zstd: process.versions.zstd ?? 'unknown' },
    };
    await mkdir(options.out, { recursive: true });
    const put = async (name: string, data: Uint8Array | string) => {
      const tmp = join(options.out, `.${name}.tmp`);
      await writeFile(tmp, data);
      await rename(tmp, join(options.out, name));
    };
    await put(IMAGE_FILES.kernel, kernel);
    await put(IMAGE_FILES.initrd, initrd);
    await put(IMAGE_FILES.cmdline, cmdline);
    await put(IMAGE_FILES.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Reads an image directory's manifest and checks that its three files are the ones it names. */
export async function readImage(dir: string): Promise<{
  manifest: ImageManifest;
  kernel: Uint8Array;
  initrd: Uint8Array;
  cmdline: string;
}> {
  let manifest: ImageManifest;
  const read = async (name: string) => {
    try {
      return await readFile(join(dir, name));
    } catch (e) {
      throw new FerryError('IMAGE_INVALID', `${dir} is not a node image: cannot read ${name}`, {
        cause: e,
        hints: ['expected the output directory of "ferry image build"'],
      });
    }
  };
  try {
    manifest = JSON.parse((await read(IMAGE_FILES.manifest)).toString('utf8'));
  } catch (e) {
    if (e instanceof FerryError) throw e;
    throw new FerryError('IMAGE_INVALID', `${dir}/${IMAGE_FILES.manifest} is not JSON`, { cause: e });
  }
  if (manifest?.format !== IMAGE_FORMAT) {
    throw new FerryError('IMAGE_INVALID', `${dir}/${IMAGE_FILES.manifest} is not a ${IMAGE_FORMAT} manifest`);
  }
  const kernel = await read(IMAGE_FILES.kernel);
  const initrd = await read(IMAGE_FILES.initrd);
  const cmdlineBytes = await read(IMAGE_FILES.cmdline);
  for (const [name, bytes, want] of [
    ['kernel', kernel, manifest.kernel?.sha256],
    ['initrd', initrd, manifest.initrd?.sha256],
    ['cmdline', cmdlineBytes, manifest.cmdline?.sha256],
  ] as const) {
    const got = sha256(bytes);
    if (got !== want) {
      throw new FerryError('IMAGE_INVALID', `the ${name} file of ${dir} is not the one its manifest names`, {
        hints: [`manifest: ${String(want)}`, `file: ${got}`],
      });
    }
  }
  return { manifest, kernel, initrd, cmdline: cmdlineBytes.toString('utf8') };
}
