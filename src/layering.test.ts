// The import rule of docs/architecture.md, checked over every non-test source file in src/:
// imports flow one way down the layers below, and a folder is entered through its index.ts.
// Reads files only; runs in milliseconds.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = dirname(fileURLToPath(import.meta.url));

/** The layers, top to bottom. A folder may import folders of lower layers only. */
const LAYERS: readonly (readonly string[])[] = [
  ['cli'],
  ['node', 'agent', 'requester', 'audit', 'dashboard', 'devnet'],
  ['daemon', 'enclave'],
  ['protocol'],
  ['chain', 'attestation', 'profile'],
  ['crypto', 'net'],
  ['kernel'],
];

/** Imports between two folders of the same layer that the rule allows (from -> to). */
const SIBLINGS: Record<string, readonly string[]> = {
  // The devnet assembles and supervises the daemons: it is their harness, not their peer.
  devnet: ['node', 'agent'],
};

/**
 * The breaches that remain, `from -> to` (files relative to src/), each with what keeps it.
 * The test fails on a breach not listed here and on an entry that no longer occurs, so the
 * list only shrinks. docs/architecture.md says what would remove each one.
 */
const ALLOWED: Record<string, string> = {};

type Reference = { spec: string; line: number };

// Module references on lexed source (comments blanked, each string literal replaced by '#N').
const STATIC_RE = /(?:^|[;\n}])\s*(?:import|export)\s+(?:[^';]*?\s+from\s+)?'#(\d+)'/g;
const DYNAMIC_RE = /\bimport\(\s*'#(\d+)'\s*\)/g;
const WORKER_RE = /\bnew\s+URL\(\s*'#(\d+)'\s*,\s*import\.meta\.url\s*\)/g;

/**
 * The module specifiers a source file loads, with the line of each specifier: static imports
 * (type-only included), `export … from`, literal dynamic imports and worker URLs. The same
 * small lexer as src/enclave/measure.ts (comments and strings cannot look like imports),
 * keeping the line of every string literal.
 */
function references(src: string): Reference[] {
  let code = '';
  const strings: Reference[] = [];
  let line = 1;
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    const d = src[i + 1];
    if (c === '/' && d === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && d === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? src.length : end + 2;
      const lines = src.slice(i, stop).split('\n').length - 1;
      line += lines;
      code += lines > 0 ? '\n'.repeat(lines) : ' ';
      i = stop;
    } else if (c === '"' || c === "'" || c === '`') {
      const start = ++i;
      const at = line;
      while (i < src.length && src[i] !== c) {
        if (src[i] === '\\') i++;
        else if (c !== '`' && src[i] === '\n') break;
        i++;
      }
      const text = src.slice(start, i);
      line += text.split('\n').length - 1;
      strings.push({ spec: text, line: at });
      code += c === '`' ? `\`#${strings.length - 1}\`` : `'#${strings.length - 1}'`;
      i++;
    } else {
      if (c === '\n') line++;
      code += c;
      i++;
    }
  }
  const out: Reference[] = [];
  for (const re of [STATIC_RE, DYNAMIC_RE, WORKER_RE]) {
    for (const m of code.matchAll(re)) out.push(strings[Number(m[1])]);
  }
  return out.sort((a, b) => a.line - b.line);
}

const posix = (p: string) => p.split(sep).join('/');

/** Every non-test, non-generated .ts file under src/, relative to src/. */
function sources(dir = SRC): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const abs = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'generated' && e.name !== 'node_modules') out.push(...sources(abs));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) {
      out.push(posix(relative(SRC, abs)));
    }
  }
  return out.sort();
}

function layerOf(folder: string): number {
  return LAYERS.findIndex((l) => l.includes(folder));
}

type Breach = { at: string; from: string; to: string; rule: string };

/** The breaches of the rule in the tree, in file order. */
function breaches(): { found: Breach[]; unmapped: string[] } {
  const found: Breach[] = [];
  const unmapped = new Set<string>();
  for (const file of sources()) {
    const folder = file.split('/')[0];
    if (!file.includes('/')) {
      unmapped.add(file);
      continue;
    }
    const mine = layerOf(folder);
    if (mine < 0) unmapped.add(folder);
    for (const { spec, line } of references(readFileSync(join(SRC, file), 'utf8'))) {
      if (!spec.startsWith('./') && !spec.startsWith('../')) continue;
      const to = posix(relative(SRC, resolve(SRC, dirname(file), spec)));
      const at = `src/${file}:${line}`;
      if (to.startsWith('../')) {
        found.push({ at, from: file, to: to.slice(3), rule: 'src/ imports a file outside src/' });
        continue;
      }
      const target = to.split('/')[0];
      if (target === folder) continue;
      const theirs = layerOf(target);
      if (theirs < 0) unmapped.add(target);
      if (theirs < mine) {
        found.push({
          at,
          from: file,
          to,
          rule: `${folder} (layer ${mine}) imports ${target} (layer ${theirs}), a higher layer`,
        });
      } else if (theirs === mine && !SIBLINGS[folder]?.includes(target)) {
        found.push({
          at,
          from: file,
          to,
          rule: `${folder} imports its sibling ${target} (same layer ${mine})`,
        });
      }
      if (existsSync(join(SRC, target, 'index.ts')) && !to.endsWith('/index.ts')) {
        found.push({ at, from: file, to, rule: `deep import: bypasses src/${target}/index.ts` });
      }
    }
  }
  return { found, unmapped: [...unmapped].sort() };
}

test('every folder of src/ sits in a layer', () => {
  const { unmapped } = breaches();
  assert.deepEqual(unmapped, [], `folders or files with no layer: ${unmapped.join(', ')}`);
});

test('imports flow down the layers and enter a folder through its index.ts', () => {
  const { found } = breaches();
  const key = (b: Breach) => `${b.from} -> ${b.to}`;
  const bad = found.filter((b) => !(key(b) in ALLOWED));
  const seen = new Set(found.map(key));
  const stale = Object.keys(ALLOWED).filter((k) => !seen.has(k));
  assert.deepEqual(
    bad.map((b) => `${b.at} -> src/${b.to}: ${b.rule}`),
    [],
    'imports that break the rule (docs/architecture.md); fix them, or list them in ALLOWED with a reason',
  );
  assert.deepEqual(stale, [], 'ALLOWED entries that no longer occur: remove them');
});

test('the lexer: static, type-only, re-export, dynamic and worker references; not comments or strings', () => {
  const src = [
    "import { a } from './a.ts';",
    "import type { B } from '../b/index.ts';",
    '/* import { c } from "./c.ts";',
    '   still a comment */',
    "export { d } from './d.ts';",
    "// import './e.ts';",
    'const s = "import { f } from \'./f.ts\'";',
    'const t = `',
    "import { g } from './g.ts';`;",
    "await import('./h.ts');",
    "new Worker(new URL('./i.ts', import.meta.url));",
    "import './j.ts';",
  ].join('\n');
  assert.deepEqual(references(src), [
    { spec: './a.ts', line: 1 },
    { spec: '../b/index.ts', line: 2 },
    { spec: './d.ts', line: 5 },
    { spec: './h.ts', line: 10 },
    { spec: './i.ts', line: 11 },
    { spec: './j.ts', line: 12 },
  ]);
});
