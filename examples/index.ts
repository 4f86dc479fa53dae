/**
 * Ferry's example apps, built from the sources in this folder: WAT modules compiled with the
 * `wabt` npm package, AssemblyScript modules with `asc` (both from node_modules; nothing is
 * downloaded). Output: build/examples/<name>.wasm. `npm run build:examples` builds them all
 * (and refreshes the demo's committed copy of csv-stats, src/cli/generated/csv-stats.wasm);
 * tests and the benchmark call `ensureExamplesBuilt()`, which builds what is missing or older
 * than its sources (atomically: write to a temporary file, then rename). The compilers are
 * devDependencies: only tests, the benchmark and scripts import this file, never the CLI.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../src/kernel/index.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);
export const EXAMPLES_BUILD_DIR = join(ROOT, 'build', 'examples');

export type ExampleName =
  | 'csv-stats'
  | 'wordcount'
  | 'sha256'
  | 'count-bytes'
  | 'cat'
  | 'loop'
  | 'memory-hog'
  | 'output-flood'
  | 'trap';

/** Every example: `wat` ones from <name>/app.wat, `as` ones from <name>/assembly/index.ts. */
export const EXAMPLES: Readonly<Record<ExampleName, 'wat' | 'as'>> = Object.freeze({
  'csv-stats': 'as',
  wordcount: 'as',
  sha256: 'as',
  'count-bytes': 'wat',
  cat: 'wat',
  loop: 'wat',
  'memory-hog': 'wat',
  'output-flood': 'wat',
  trap: 'wat',
});

/** Path of a built example (it may not exist yet: see ensureExamplesBuilt). */
export function examplePath(name: ExampleName): string {
  if (!(name in EXAMPLES)) {
    throw new FerryError('INVALID_ARGUMENT', `unknown example ${String(name)}`, {
      hints: [`expected one of: ${Object.keys(EXAMPLES).join(', ')}`],
    });
  }
  return join(EXAMPLES_BUILD_DIR, `${name}.wasm`);
}

async function mtime(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return -1;
  }
}

async function sources(name: ExampleName): Promise<string[]> {
  if (EXAMPLES[name] === 'wat') return [join(HERE, name, 'app.wat')];
  const lib = join(HERE, 'lib', 'assembly');
  return [join(HERE, name, 'assembly', 'index.ts'), ...(await readdir(lib)).map((f) => join(lib, f))];
}

async function compileWat(name: string): Promise<Uint8Array> {
  const require = createRequire(import.meta.url);
  const wabt = await (require('wabt') as () => Promise<{
    parseWat(file: string, text: string): {
      toBinary(o: object): { buffer: Uint8Array };
      resolveNames(): void;
      validate(): void;
      destroy(): void;
    };
  }>)();
  const text = await readFile(join(HERE, name, 'app.wat'), 'utf8');
  const m = wabt.parseWat(`${name}.wat`, text);
  try {
    m.resolveNames();
    m.validate();
    return m.toBinary({}).buffer;
  } finally {
    m.destroy();
  }
}

async function compileAs(name: string, out: string): Promise<void> {
  await compileAssemblyScript(join(HERE, name, 'assembly', 'index.ts'), out, name);
}

/**
 * Compiles an AssemblyScript WASI app (entry: its assembly/index.ts) with the flags of the
 * examples and of `ferry app new --lang assemblyscript`.
 */
export async function compileAssemblyScript(entry: string, out: string, name = basename(entry)): Promise<void> {
  const asc = (await import('assemblyscript/asc')) as unknown as {
    main(argv: string[], options: object): Promise<{ error: Error | null; stderr: { toString(): string } }>;
  };
  const res = await asc.main(
    [entry, '-o', out, '--runtime', 'incremental', '--use', 'abort=', '-O3', '--noAssert'],
    {},
  );
  if (res.error) {
    throw new FerryError('INTERNAL', `cannot compile example ${name}`, {
      cause: res.error,
      hints: [res.stderr.toString().slice(0, 2000)],
    });
  }
}

/** Builds one example when missing or stale; returns its path. */
export async function buildExample(name: ExampleName, force = false): Promise<string> {
  const out = examplePath(name);
  if (!force) {
    const built = await mtime(out);
    const newest = Math.max(...(await Promise.all((await sources(name)).map(mtime))));
    if (built >= 0 && built >= newest) return out;
  }
  await mkdir(EXAMPLES_BUILD_DIR, { recursive: true });
  const tmp = `${out}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await compileTo(name, tmp);
  await rename(tmp, out);
  return out;
}

async function compileTo(name: ExampleName, out: string): Promise<void> {
  if (EXAMPLES[name] === 'wat') await writeFile(out, await compileWat(name));
  else await compileAs(name, out);
}

/**
 * One example compiled afresh from its sources, in a temporary directory (build/ is left
 * alone): what a committed copy of it must equal.
 */
export async function compileExample(name: ExampleName): Promise<Uint8Array> {
  examplePath(name);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-example-'));
  try {
    const out = join(dir, `${name}.wasm`);
    await compileTo(name, out);
    return new Uint8Array(await readFile(out));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Builds every example that is missing or stale. */
export async function ensureExamplesBuilt(force = false): Promise<void> {
  for (const name of Object.keys(EXAMPLES) as ExampleName[]) await buildExample(name, force);
}

// --- Apps in C and Rust ------------------------------------------------------------------

/**
 * Examples compiled with a system toolchain (not from node_modules): C with clang, lld and
 * wasi-libc (Debian: clang lld wasi-libc libclang-rt-14-dev-wasm32), Rust with rustc and its
 * WASI standard library (Debian: rustc libstd-rust-dev-wasm32). `npm run build:examples` builds
 * them when the toolchain is present (`.ci/run` installs it) and says why it skipped them
 * otherwise; they are not committed. Sources: <name>/app.c, <name>/main.rs.
 */
export type NativeExampleName = 'wordcount-c' | 'wordcount-rust';
export type NativeLang = 'c' | 'rust';
export const NATIVE_EXAMPLES: Readonly<Record<NativeExampleName, NativeLang>> = Object.freeze({
  'wordcount-c': 'c',
  'wordcount-rust': 'rust',
});

/** The source file of a C or Rust app in its directory. */
export const NATIVE_SOURCE: Readonly<Record<NativeLang, string>> = Object.freeze({ c: 'app.c', rust: 'main.rs' });

export type Toolchain = { lang: NativeLang; command: string; args: string[] };

/**
 * PATH without the directories holding a `wasm-opt`: clang runs the first wasm-opt it finds on
 * an optimized wasm link (binaryen's, e.g. node_modules/.bin under npm run), which would make
 * the output depend on the environment. Ferry's builds never run it.
 */
function pathWithoutWasmOpt(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => d !== '' && !existsSync(join(d, 'wasm-opt')))
    .join(delimiter);
}

function run(command: string, args: string[], cwd?: string): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const env = { ...process.env, LC_ALL: 'C', PATH: pathWithoutWasmOpt() };
    execFile(command, args, { cwd, maxBuffer: 16 << 20, env }, (err, stdout, stderr) => {
      const code = err ? ((err as NodeJS.ErrnoException).code ?? 1) : 0;
      resolveRun({ code: typeof code === 'number' || typeof code === 'string' ? code : 1, stdout, stderr });
    });
  });
}

/**
 * The compiler and fixed flags for a language, or the reason it is unavailable. The flags are
 * deterministic: no debug information (so no paths), symbols stripped, no timestamps — the
 * same sources and toolchain give the same bytes wherever they are built. Compilers:
 * FERRY_CLANG (default `clang`), FERRY_RUSTC (default Debian's /usr/bin/rustc when present,
 * else `rustc`); WASI_SYSROOT, when set, is passed to clang as --sysroot.
 */
export async function findToolchain(lang: NativeLang): Promise<Toolchain | { missing: string }> {
  if (lang === 'c') {
    const clang = process.env.FERRY_CLANG || 'clang';
    const sysroot = process.env.WASI_SYSROOT ? [`--sysroot=${process.env.WASI_SYSROOT}`] : [];
    const base = ['--target=wasm32-wasi', ...sysroot];
    const v = await run(clang, ['--version']);
    if (v.code !== 0) return { missing: `${clang} not found (Debian: apt-get install clang lld)` };
    const libc = await run(clang, [...base, '-print-file-name=libc.a']);
    if (libc.code !== 0 || !libc.stdout.trim().startsWith('/')) {
      return { missing: `wasi-libc not found for ${clang} (Debian: apt-get install wasi-libc)` };
    }
    const rt = await run(clang, [...base, '--rtlib=compiler-rt', '-print-libgcc-file-name']);
    if (rt.code !== 0 || (await mtime(rt.stdout.trim())) < 0) {
      return { missing: `wasm32 compiler-rt not found for ${clang} (Debian: apt-get install libclang-rt-14-dev-wasm32)` };
    }
    const ld = await run('wasm-ld', ['--version']);
    if (ld.code !== 0) return { missing: 'wasm-ld not found (Debian: apt-get install lld)' };
    return { lang, command: clang, args: [...base, '-O2', '-s'] };
  }
  const rustc = process.env.FERRY_RUSTC || ((await mtime('/usr/bin/rustc')) >= 0 ? '/usr/bin/rustc' : 'rustc');
  const sysroot = await run(rustc, ['--print', 'sysroot']);
  if (sysroot.code !== 0) return { missing: `${rustc} not found (Debian: apt-get install rustc libstd-rust-dev-wasm32)` };
  // wasm32-wasip1 in current Rust, wasm32-wasi in older ones (Debian 12's 1.63).
  for (const target of ['wasm32-wasip1', 'wasm32-wasi']) {
    if ((await mtime(join(sysroot.stdout.trim(), 'lib', 'rustlib', target, 'lib'))) >= 0) {
      return {
        lang,
        command: rustc,
        args: ['--target', target, '--edition', '2021', '-O', '-C', 'strip=symbols', '-C', 'codegen-units=1'],
      };
    }
  }
  return { missing: `${rustc} has no WASI standard library (Debian: apt-get install libstd-rust-dev-wasm32)` };
}

/**
 * Compiles the C or Rust app whose source (NATIVE_SOURCE) is in `dir` into `out`, run from
 * `dir` with a relative source path (Rust records source paths for panic messages; they are
 * remapped to the file name, so the build directory never reaches the module).
 */
export async function compileNative(tool: Toolchain, dir: string, out: string): Promise<void> {
  const src = NATIVE_SOURCE[tool.lang];
  const extra = tool.lang === 'rust' ? [`--remap-path-prefix=${dir}=.`, '--crate-name', 'app'] : [];
  const res = await run(tool.command, [...tool.args, ...extra, '-o', out, src], dir);
  if (res.code !== 0) {
    throw new FerryError('INTERNAL', `cannot compile ${join(dir, src)} with ${tool.command}`, {
      hints: [res.stderr.slice(0, 2000)],
    });
  }
}

/** Path of a built C or Rust example. */
export function nativeExamplePath(name: NativeExampleName): string {
  if (!(name in NATIVE_EXAMPLES)) {
    throw new FerryError('INVALID_ARGUMENT', `unknown example ${String(name)}`, {
      hints: [`expected one of: ${Object.keys(NATIVE_EXAMPLES).join(', ')}`],
    });
  }
  return join(EXAMPLES_BUILD_DIR, `${name}.wasm`);
}

/**
 * Builds a C or Rust example when missing or stale (atomically, like buildExample); returns its
 * path, or `{missing}` (why) when its toolchain is absent.
 */
export async function buildNativeExample(name: NativeExampleName, force = false): Promise<string | { missing: string }> {
  const out = nativeExamplePath(name);
  const lang = NATIVE_EXAMPLES[name];
  const dir = join(HERE, name);
  if (!force) {
    const built = await mtime(out);
    if (built >= 0 && built >= (await mtime(join(dir, NATIVE_SOURCE[lang])))) return out;
  }
  const tool = await findToolchain(lang);
  if ('missing' in tool) return tool;
  await mkdir(EXAMPLES_BUILD_DIR, { recursive: true });
  const tmp = `${out}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await compileNative(tool, dir, tmp);
    await rename(tmp, out);
  } finally {
    await rm(tmp, { force: true });
  }
  return out;
}
