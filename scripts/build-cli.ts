/**
 * `npm run build:cli [-- --out DIR] [-- --metafile FILE]`: bundles the CLI (src/cli/main.ts and everything it imports, npm packages
 * included) with esbuild into dist/cli/: main.js plus one chunk per lazily imported command and
 * shared chunks. `bin/ferry` runs dist/cli/main.js instead of the sources when it exists and no
 * file under src/ (nor package.json or the lock files) is newer than it, so a stale build is
 * never run; FERRY_SOURCES=1 runs the sources regardless. `npm install` builds it (package.json
 * `prepare`; a failed build is reported and the install goes on, bin/ferry then runs the
 * sources). Every test that spawns src/cli/main.ts runs the sources.
 *
 * Why: the sources load ~860 modules for a chain command (viem alone is 375), each resolved,
 * type-stripped and instantiated one by one, and every folder's face (index.ts) pulls in the
 * whole folder; the bundle loads a few dozen files holding only what the command reaches.
 * Two things make the chunks small: imports from a face are rewritten to the files that declare
 * the names (importDeclarers), and Ferry's source files are declared free of import-time
 * effects, so a file none of whose exports are used is left out.
 *
 * What the bundle keeps the same as the sources:
 * - `import.meta.url` of every source file is rewritten to that source file's own URL
 *   (relative to the chunk), so `new URL('./x.ts', import.meta.url)` still names the source
 *   files: the enclave process (src/enclave/main.ts, measured as sources), worker threads,
 *   the devnet's daemons (src/cli/main.ts), app templates and the demo's WASM.
 * - `require` exists in every chunk (CommonJS packages bundled into ESM require built-ins).
 * - `node:http` is taken with process.getBuiltinModule: importing it as an ES module builds a
 *   namespace that reads every export, including the lazy WebSocket getters that load undici
 *   (~40 ms). The sources pay that still; see README's performance section.
 */
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_OUT = join(REPO_ROOT, 'dist', 'cli');

/** Built-ins taken through process.getBuiltinModule, with the exports never read. */
const LAZY_BUILTINS: Record<string, readonly string[]> = {
  'node:http': ['WebSocket', 'CloseEvent', 'MessageEvent'],
};

function builtinFacade(name: string, skip: readonly string[]): string {
  const m = createRequire(import.meta.url)(name) as Record<string, unknown>;
  const names = Object.keys(m).filter((k) => !skip.includes(k) && /^[A-Za-z_$][\w$]*$/.test(k));
  return [
    `const m = process.getBuiltinModule(${JSON.stringify(name)});`,
    'export default m;',
    ...names.map((k) => `export const ${k} = m.${k};`),
  ].join('\n');
}

/** Source text with comments blanked (strings kept; the files parsed here quote specifiers only). */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/(^|[^:'"])\/\/.*$/gm, '$1');
}

type Origin = { file: string; name: string };

/**
 * The value exports of a source file: for `export { a as b } from './x.ts'` (and `export *`),
 * followed through re-exports to the file that declares them; a name declared in the file
 * itself maps to the file. Type-only exports are left out.
 */
function exportsOf(file: string, cache: Map<string, Map<string, Origin>>): Map<string, Origin> {
  const hit = cache.get(file);
  if (hit) return hit;
  const out = new Map<string, Origin>();
  cache.set(file, out);
  let text: string;
  try {
    text = stripComments(readFileSync(file, 'utf8'));
  } catch {
    return out;
  }
  const here = dirname(file);
  for (const m of text.matchAll(
    /export\s+(?:async\s+)?(?:function\*?|const|let|var|class)\s+([A-Za-z_$][\w$]*)/g,
  )) {
    out.set(m[1], { file, name: m[1] });
  }
  for (const m of text.matchAll(/export\s+(type\s+)?\{([^}]*)\}\s+from\s+'(\.[^']+\.ts)'/g)) {
    if (m[1]) continue;
    const target = resolve(here, m[3]);
    const inner = exportsOf(target, cache);
    for (const item of m[2].split(',')) {
      const t = item.trim();
      if (!t || t.startsWith('type ')) continue;
      const [orig, alias = orig] = t.split(/\s+as\s+/);
      out.set(alias, inner.get(orig) ?? { file: target, name: orig });
    }
  }
  for (const m of text.matchAll(/export\s+\*\s+from\s+'(\.[^']+\.ts)'/g)) {
    for (const [k, v] of exportsOf(resolve(here, m[1]), cache)) if (!out.has(k)) out.set(k, v);
  }
  return out;
}

/**
 * Rewrites `import { a, type T } from '../x/index.ts'` into imports from the files that declare
 * `a`: a folder's face (index.ts) re-exports the whole folder, and esbuild's code splitting
 * loads every file a face reaches, whether its exports are used or not. Names it cannot place
 * stay imported from the face; type-only names are dropped (types are erased anyway).
 */
function importDeclarers(file: string, text: string, cache: Map<string, Map<string, Origin>>): string {
  const here = dirname(file);
  return text.replace(
    /^import\s+(type\s+)?\{([^}]*)\}\s+from\s+'(\.[^']*\/index\.ts)';/gm,
    (all, typeOnly: string | undefined, list: string, spec: string) => {
      if (typeOnly) return all;
      const face = resolve(here, spec);
      const map = exportsOf(face, cache);
      const byFile = new Map<string, string[]>();
      for (const item of stripComments(list).split(',')) {
        const t = item.trim();
        if (!t || t.startsWith('type ')) continue;
        const [name, local = name] = t.split(/\s+as\s+/);
        const o = map.get(name) ?? { file: face, name };
        const list2 = byFile.get(o.file) ?? [];
        list2.push(o.name === local ? local : `${o.name} as ${local}`);
        byFile.set(o.file, list2);
      }
      const lines = [...byFile].map(([f, names]) => {
        let rel = relative(here, f).split(sep).join('/');
        if (!rel.startsWith('.')) rel = `./${rel}`;
        return `import { ${names.join(', ')} } from '${rel}';`;
      });
      // Keep the line count: stack traces and esbuild's messages point at the right lines.
      const pad = '\n'.repeat(Math.max(0, all.split('\n').length - lines.length));
      return lines.join(' ') + pad;
    },
  );
}

/**
 * Builds the bundle into `out` (default dist/cli). Writes to a sibling directory first and
 * renames the files into place; main.js gets the build's start time as its modification time,
 * so a source saved during the build makes the build stale. Returns the files written.
 */
export async function buildCli(out = DEFAULT_OUT, metafile?: string): Promise<string[]> {
  const started = new Date();
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const srcDir = join(REPO_ROOT, 'src') + sep;
  const faces = new Map<string, Map<string, Origin>>();
  const plugin: esbuild.Plugin = {
    name: 'ferry-cli',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (a) => {
        let text = await readFile(a.path, 'utf8');
        if (!a.path.startsWith(srcDir)) return { contents: text, loader: 'ts' };
        if (text.includes('import.meta.url')) {
          const rel = relative(out, a.path).split(sep).join('/');
          text = text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
        }
        text = importDeclarers(a.path, text, faces);
        return { contents: text, loader: 'ts' };
      });
      // Ferry's sources have no import-time effects that other code relies on (no bare
      // imports; module-level code only computes the module's own constants): a module none of
      // whose exports a command uses is left out of that command's chunks.
      b.onResolve({ filter: /^\.\.?\// }, async (a) => {
        if (a.pluginData === 'ferry-resolved' || !a.importer.startsWith(srcDir)) return undefined;
        const r = await b.resolve(a.path, {
          kind: a.kind,
          importer: a.importer,
          resolveDir: a.resolveDir,
          pluginData: 'ferry-resolved',
        });
        if (r.errors.length > 0 || !r.path.startsWith(srcDir)) return r;
        return { path: r.path, sideEffects: false };
      });
      const filter = new RegExp(`^(${Object.keys(LAZY_BUILTINS).join('|')})$`);
      b.onResolve({ filter }, (a) => ({ path: a.path, namespace: 'ferry-builtin' }));
      b.onLoad({ filter: /.*/, namespace: 'ferry-builtin' }, (a) => ({
        contents: builtinFacade(a.path, LAZY_BUILTINS[a.path]),
        loader: 'js',
      }));
    },
  };
  const result = await esbuild.build({
    entryPoints: { main: join(REPO_ROOT, 'src', 'cli', 'main.ts') },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    outdir: tmp,
    chunkNames: 'chunk-[hash]',
    entryNames: '[name]',
    // An optional native addon, loaded with createRequire when present (src/crypto/vrf).
    external: ['sodium-native'],
    banner: {
      js: "import { createRequire as __ferryRequire } from 'node:module'; const require = __ferryRequire(import.meta.url);",
    },
    plugins: [plugin],
    metafile: true,
    logLevel: 'warning',
  });
  if (metafile) writeFileSync(metafile, JSON.stringify(result.metafile));
  // Chunk names carry their content's hash; only main.js keeps its name. The chunks go in first
  // and main.js last (each a rename, so atomic): a process already running the previous build
  // still finds the chunks it imports later. A previous build's chunks are removed a day on.
  const names = Object.keys(result.metafile.outputs).map((f) => relative(tmp, resolve(f)));
  mkdirSync(out, { recursive: true });
  const old = readdirSync(out);
  for (const n of names) if (n !== 'main.js') renameSync(join(tmp, n), join(out, n));
  renameSync(join(tmp, 'main.js'), join(out, 'main.js'));
  utimesSync(join(out, 'main.js'), started, started);
  rmSync(tmp, { recursive: true, force: true });
  const dayAgo = Date.now() - 86_400_000;
  for (const n of old) {
    const f = join(out, n);
    if (!names.includes(n) && statSync(f).mtimeMs < dayAgo) rmSync(f, { recursive: true, force: true });
  }
  return names.map((n) => join(out, n));
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, metafile: { type: 'string' } } });
  const files = await buildCli(values.out ? resolve(values.out) : DEFAULT_OUT, values.metafile);
  process.stdout.write(`${values.out ?? relative(REPO_ROOT, DEFAULT_OUT)}: ${files.length} files\n`);
}
