/**
 * The enclave runtime's measurement (docs/protocol.md §9, "The runtime measurement"): what
 * `sim` evidence reports, what a node extends into PCR 23 for `tpm2`, and what a policy pins
 * in its reference values. It covers everything the enclave process loads:
 *
 * - files: the transitive closure of relative module references from src/enclave/main.ts —
 *   static `import … from '…'` / `export … from '…'` / `import '…'` (type-only imports too:
 *   erased at run time, measured anyway so the closure never depends on telling them apart),
 *   literal dynamic `import('…')`, and worker entries `new URL('./x.ts', import.meta.url)`
 *   (app-worker.ts starts worker.ts, hasher.ts starts hash-worker.ts). Each file is named by
 *   its path relative to the repository root, with `/` separators.
 * - packages: every npm package the closure imports by name (`node:` built-ins excepted),
 *   plus the packages those depend on, as recorded in package-lock.json: name, version and
 *   the lock's `integrity` (the SHA-512 of the package's registry tarball). This pins which
 *   release of each package is part of the runtime; it does not hash the installed files, so
 *   a node_modules edited after `npm ci` is not seen (the Node.js binary is not measured
 *   either: both belong to the platform image that hardware evidence measures).
 *
 * Anything not reachable from main.ts — tests, the node daemon, a development entry point —
 * is not part of the runtime and not measured.
 *
 *   measurement = SHA256( "ferry/enclave-runtime/v2\n"
 *                         || for each file, sorted by path:   "file " path " " hex(SHA256(contents)) "\n"
 *                         || for each package, sorted by name: "npm " name "@" version " " integrity "\n" )
 *
 * The manifest is text so that `ferry measure runtime --json` can print it and anyone can
 * recompute the measurement with sha256sum.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../kernel/errors.ts';

/** The repository root of this checkout (src/enclave/../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The entry point of the enclave process, relative to the repository root. */
export const RUNTIME_ENTRY = 'src/enclave/main.ts';
/** First line of the measured manifest; changes when the manifest's definition does. */
export const RUNTIME_MANIFEST_VERSION = 'ferry/enclave-runtime/v2';

/** One measured file: repo-relative path and SHA-256 of its contents (lowercase hex). */
export type MeasuredFile = { path: string; sha256: string };
/** One measured npm package, from package-lock.json. */
export type MeasuredPackage = { name: string; version: string; integrity: string };
/** Everything the runtime measurement covers, sorted, and the measurement itself. */
export type RuntimeManifest = {
  files: MeasuredFile[];
  packages: MeasuredPackage[];
  /** The manifest text whose SHA-256 is `measurement`. */
  text: string;
  /** SHA-256 of `text` (32 bytes). */
  measurement: Uint8Array;
};

// Module references that load code. The patterns run on lexed source (see `lex`): comments
// removed, each string literal replaced by '#N'; a template literal is never a reference.
const STATIC_RE = /(?:^|[;\n}])\s*(?:import|export)\s+(?:[^';]*?\s+from\s+)?'#(\d+)'/g;
const DYNAMIC_RE = /\bimport\(\s*'#(\d+)'\s*\)/g;
const WORKER_RE = /\bnew\s+URL\(\s*'#(\d+)'\s*,\s*import\.meta\.url\s*\)/g;

// What the lexer looks for: the start of a comment, a string or a template literal (or a lone
// slash, copied as is); and the body of each kind of literal, from after its opening quote to
// before its closing one (a '…' or "…" literal also ends, unclosed, at a line break).
const SPECIAL_RE = /[/'"`]/g;
const BODY_RE: Readonly<Record<string, RegExp>> = {
  "'": /(?:[^'\\\n]|\\[\s\S]?)*/y,
  '"': /(?:[^"\\\n]|\\[\s\S]?)*/y,
  '`': /(?:[^`\\]|\\[\s\S]?)*/y,
};

/**
 * A small lexer: removes // and /* comments and replaces each string or template literal by
 * a placeholder `'#N'` (N indexes `strings`), so that neither comments nor text inside
 * strings look like module references. Enough for the project's own sources, which contain
 * no regex literal holding a quote or a comment opener. It jumps from one special character
 * to the next (the enclave process measures its closure as it starts: a loop over every
 * character cost most of that measurement's ~40 ms of CPU).
 */
function lex(src: string): { code: string; strings: string[] } {
  const code: string[] = [];
  const strings: string[] = [];
  let i = 0;
  while (i < src.length) {
    SPECIAL_RE.lastIndex = i;
    const hit = SPECIAL_RE.exec(src);
    if (!hit) {
      code.push(src.slice(i));
      break;
    }
    const at = hit.index;
    if (at > i) code.push(src.slice(i, at));
    const c = src[at];
    const d = src[at + 1];
    if (c === '/' && d === '/') {
      const nl = src.indexOf('\n', at);
      i = nl < 0 ? src.length : nl;
    } else if (c === '/' && d === '*') {
      const end = src.indexOf('*/', at + 2);
      i = end < 0 ? src.length : end + 2;
      code.push(' ');
    } else if (c === '/') {
      code.push('/');
      i = at + 1;
    } else {
      // The body ends before its closing quote, before the line break that ends an unclosed
      // '…' or "…" literal (skipped with it, as the quote is), or at the end of the source.
      const body = BODY_RE[c];
      body.lastIndex = at + 1;
      body.exec(src);
      strings.push(src.slice(at + 1, body.lastIndex));
      const q = c === '`' ? '`' : "'";
      code.push(`${q}#${strings.length - 1}${q}`);
      i = body.lastIndex + 1;
    }
  }
  return { code: code.join(''), strings };
}

/** The module specifiers a source file loads (relative paths and bare package names). */
export function moduleReferences(source: string): string[] {
  const { code, strings } = lex(source);
  const out = new Set<string>();
  for (const re of [STATIC_RE, DYNAMIC_RE, WORKER_RE]) {
    for (const m of code.matchAll(re)) out.add(strings[Number(m[1])]);
  }
  return [...out];
}

// The same references read from the raw text, comments and strings included: a safety net in
// case the lexer is ever misled (say, by a quote in a regex literal). Relative references
// found only this way are measured when the file exists, and ignored otherwise.
const LOOSE_RE = /\b(?:from|import|import\(|new\s+URL\()\s*['"](\.{1,2}\/[^'"\n]+\.ts)['"]/g;

/** `@scope/name/sub` -> `@scope/name`; `name/sub` -> `name`. */
function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const toPosix = (p: string) => p.split(sep).join('/');

type LockEntry = { version?: string; integrity?: string; dependencies?: Record<string, string> };

/** npm's lookup: node_modules/<name> nearest to `fromDir` (a lock key), then upward. */
function lockLookup(
  lock: Record<string, LockEntry>,
  fromKey: string,
  name: string,
): [string, LockEntry] | undefined {
  let base = fromKey;
  for (;;) {
    const key = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (lock[key]) return [key, lock[key]];
    if (base === '') return undefined;
    const cut = base.lastIndexOf('/node_modules/');
    base = cut < 0 ? '' : base.slice(0, cut);
  }
}

/**
 * Computes the manifest of the runtime rooted at `root` (a repository checkout; default this
 * one). Throws INTERNAL when a relative reference names a missing file or an imported
 * package is not in package-lock.json: the closure must be complete to mean anything.
 */
export async function computeRuntimeManifest(root: string = REPO_ROOT): Promise<RuntimeManifest> {
  const files = new Map<string, string>();
  const bare = new Set<string>();
  const queue = [join(root, RUNTIME_ENTRY)];
  while (queue.length > 0) {
    const abs = queue.pop() as string;
    const rel = toPosix(relative(root, abs));
    if (files.has(rel)) continue;
    let bytes: Buffer;
    try {
      bytes = readFileSync(abs);
    } catch (e) {
      throw new FerryError('INTERNAL', `runtime measurement: cannot read ${rel}`, { cause: e });
    }
    files.set(rel, createHash('sha256').update(bytes).digest('hex'));
    const source = bytes.toString('utf8');
    for (const m of source.matchAll(LOOSE_RE)) {
      const target = resolve(dirname(abs), m[1]);
      if (existsSync(target) && toPosix(relative(root, target)).startsWith('src/')) queue.push(target);
    }
    for (const spec of moduleReferences(source)) {
      if (spec.startsWith('node:')) continue;
      if (spec.startsWith('./') || spec.startsWith('../')) {
        const target = resolve(dirname(abs), spec);
        if (!existsSync(target)) {
          throw new FerryError('INTERNAL', `runtime measurement: ${rel} references missing ${spec}`);
        }
        if (!toPosix(relative(root, target)).startsWith('src/')) {
          throw new FerryError('INTERNAL', `runtime measurement: ${rel} references ${spec} outside src/`);
        }
        queue.push(target);
      } else if (!spec.startsWith('/')) {
        bare.add(packageName(spec));
      } else {
        throw new FerryError('INTERNAL', `runtime measurement: ${rel} imports an absolute path ${spec}`);
      }
    }
  }
  let lock: Record<string, LockEntry>;
  try {
    lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')).packages ?? {};
  } catch (e) {
    throw new FerryError('INTERNAL', 'runtime measurement: cannot read package-lock.json', { cause: e });
  }
  const packages = new Map<string, MeasuredPackage>();
  const pending: [string, string][] = [...bare].map((n) => ['', n]);
  while (pending.length > 0) {
    const [from, name] = pending.pop() as [string, string];
    const hit = lockLookup(lock, from, name);
    if (!hit?.[1].version || !hit[1].integrity) {
      throw new FerryError(
        'INTERNAL',
        `runtime measurement: package ${name} is not locked in package-lock.json`,
      );
    }
    const [key, entry] = hit;
    const id = `${name}@${entry.version}`;
    if (packages.has(id)) continue;
    packages.set(id, { name, version: entry.version as string, integrity: entry.integrity as string });
    for (const dep of Object.keys(entry.dependencies ?? {})) pending.push([key, dep]);
  }
  const fileList = [...files]
    .map(([path, sha256]) => ({ path, sha256 }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const pkgList = [...packages.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1,
  );
  const text = [
    `${RUNTIME_MANIFEST_VERSION}\n`,
    ...fileList.map((f) => `file ${f.path} ${f.sha256}\n`),
    ...pkgList.map((p) => `npm ${p.name}@${p.version} ${p.integrity}\n`),
  ].join('');
  const measurement = new Uint8Array(createHash('sha256').update(text).digest());
  return { files: fileList, packages: pkgList, text, measurement };
}

let cached: Promise<RuntimeManifest> | undefined;

function manifest(): Promise<RuntimeManifest> {
  cached ??= computeRuntimeManifest();
  return cached;
}

/** SHA-256 measurement of the enclave runtime (computed once per process; a fresh copy). */
export function runtimeMeasurement(): Promise<Uint8Array> {
  return manifest().then((m) => Uint8Array.from(m.measurement));
}

/** The files and packages the runtime measurement covers (computed once per process). */
export async function runtimeMeasuredFiles(): Promise<{
  files: MeasuredFile[];
  packages: MeasuredPackage[];
}> {
  const m = await manifest();
  return { files: m.files.map((f) => ({ ...f })), packages: m.packages.map((p) => ({ ...p })) };
}
