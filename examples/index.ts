/**
 * Ferry's example apps, built from the sources in this folder: WAT modules compiled with the
 * `wabt` npm package, AssemblyScript modules with `asc` (both from node_modules; nothing is
 * downloaded). Output: build/examples/<name>.wasm. `npm run build:examples` builds them all
 * (and refreshes the demo's committed copy of csv-stats, src/cli/generated/csv-stats.wasm);
 * tests and the benchmark call `ensureExamplesBuilt()`, which builds what is missing or older
 * than its sources (atomically: write to a temporary file, then rename). The compilers are
 * devDependencies: only tests, the benchmark and scripts import this file, never the CLI.
 */
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
  const asc = (await import('assemblyscript/asc')) as unknown as {
    main(argv: string[], options: object): Promise<{ error: Error | null; stderr: { toString(): string } }>;
  };
  const entry = join(HERE, name, 'assembly', 'index.ts');
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
