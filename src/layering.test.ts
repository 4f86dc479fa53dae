// The import rule of docs/architecture.md, checked over every non-test source file in src/:
// imports flow one way down the layers below, and a folder is entered through its index.ts.
// Reads files only; runs in milliseconds.
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { computeRuntimeManifest } from './enclave/measure.ts';

const SRC = dirname(fileURLToPath(import.meta.url));

/** The layers, top to bottom. A folder may import folders of lower layers only. */
const LAYERS: readonly (readonly string[])[] = [
  ['cli'],
  ['node', 'agent', 'requester', 'audit', 'dashboard', 'devnet', 'image'],
  ['daemon', 'enclave'],
  ['protocol'],
  ['chain', 'attestation', 'profile'],
  ['crypto', 'net'],
  ['kernel'],
];

/** Imports between two folders of the same layer that the rule allows (from -> to). */
const SIBLINGS: Record<string, readonly string[]> = {
  // The devnet assembles and supervises the daemons: it is their harness, not their peer.
  devnet: ['node', 'agent', 'image'],
  // A `--tee vm` node boots its enclave VM from the node image (image/vm-enclave.ts).
  node: ['image'],
  // The requester verifies its own task's result with the auditor (and reads events through
  // it): the auditor is the requester's tool, and never imports it.
  requester: ['audit'],
};

/**
 * The breaches that remain, `from -> to` (files relative to src/), each with what keeps it.
 * The test fails on a breach not listed here and on an entry that no longer occurs, so the
 * list only shrinks. docs/architecture.md says what would remove each one.
 */
const ALLOWED: Record<string, string> = {
  'image/guest.ts -> enclave/protocol.ts':
    'the guest agent runs in the node image, which holds the enclave runtime closure only (not enclave/index.ts and what it loads)',
  'devnet/up.ts -> cli/main.ts':
    'not a module import: the CLI entry point the devnet spawns as each daemon process',
};

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
  for (const re of [STATIC_RE, DYNAMIC_RE]) {
    for (const m of code.matchAll(re)) out.push(strings[Number(m[1])]);
  }
  // A URL is a module only when it names one (`new URL('../../', …)` names a directory).
  for (const m of code.matchAll(WORKER_RE)) {
    const ref = strings[Number(m[1])];
    if (ref.spec.endsWith('.ts')) out.push(ref);
  }
  return out.sort((a, b) => a.line - b.line);
}

const posix = (p: string) => p.split(sep).join('/');

/** Every non-test, non-generated .ts file under src/, relative to src/. */
function sources(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const abs = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'generated' && e.name !== 'node_modules') out.push(...sources(root, abs));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) {
      out.push(posix(relative(root, abs)));
    }
  }
  return out.sort();
}

function layerOf(folder: string): number {
  return LAYERS.findIndex((l) => l.includes(folder));
}

type Breach = { at: string; from: string; to: string; rule: string };

/**
 * The files of the enclave runtime's measured closure (src/enclave/measure.ts), relative to
 * src/. They may import single files of another folder: a face would pull its whole folder
 * into the trusted computing base and into the measurement.
 */
let closure: Promise<Set<string>> | undefined;
function measuredClosure(): Promise<Set<string>> {
  closure ??= computeRuntimeManifest().then(
    ({ files }) => new Set(files.map((f) => f.path.replace(/^src\//, ''))),
  );
  return closure;
}

/** The breaches of the rule in the tree, in file order. */
function breaches(root: string, closure: Set<string>): { found: Breach[]; unmapped: string[] } {
  const found: Breach[] = [];
  const unmapped = new Set<string>();
  for (const file of sources(root)) {
    const folder = file.split('/')[0];
    if (!file.includes('/')) {
      unmapped.add(file);
      continue;
    }
    const mine = layerOf(folder);
    if (mine < 0) unmapped.add(folder);
    for (const { spec, line } of references(readFileSync(join(root, file), 'utf8'))) {
      if (!spec.startsWith('./') && !spec.startsWith('../')) continue;
      const to = posix(relative(root, resolve(root, dirname(file), spec)));
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
      if (existsSync(join(root, target, 'index.ts')) && !to.endsWith('/index.ts') && !closure.has(file)) {
        found.push({ at, from: file, to, rule: `deep import: bypasses src/${target}/index.ts` });
      }
    }
  }
  return { found, unmapped: [...unmapped].sort() };
}

test('every folder of src/ sits in a layer and has an index.ts', async () => {
  const { unmapped } = breaches(SRC, await measuredClosure());
  assert.deepEqual(unmapped, [], `folders or files with no layer: ${unmapped.join(', ')}`);
  const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory());
  const faceless = folders.filter((e) => !existsSync(join(SRC, e.name, 'index.ts'))).map((e) => e.name);
  assert.deepEqual(faceless, [], 'folders of src/ without an index.ts (their public face)');
});

test('imports flow down the layers and enter a folder through its index.ts', async () => {
  const { found } = breaches(SRC, await measuredClosure());
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

test('a tree that breaks the rule is caught, file:line and rule named', () => {
  const root = mkdtempSync(join(tmpdir(), 'ferry-layering-'));
  try {
    const put = (path: string, text: string) => {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    put('kernel/index.ts', 'export const k = 1;\n');
    put('crypto/index.ts', "export { s } from './sign.ts';\n");
    put('crypto/sign.ts', "import { k } from '../kernel/index.ts';\nexport const s = k;\n");
    put('chain/index.ts', 'export const c = 1;\n');
    put('agent/index.ts', 'export const a = 1;\n');
    put('node/index.ts', "// import { a } from '../agent/index.ts';\nexport const n = 1;\n");
    // Up a layer; a sibling; a deep import; a dynamic import up; a type-only import up.
    put('kernel/up.ts', "\nimport { c } from '../chain/index.ts';\nexport const u = c;\n");
    put('node/side.ts', "import { a } from '../agent/index.ts';\nexport const x = a;\n");
    put('node/deep.ts', "import { s } from '../crypto/sign.ts';\nexport const y = s;\n");
    put('crypto/lazy.ts', "export const z = () => import('../chain/index.ts');\n");
    put('net/types.ts', "import type { N } from '../node/index.ts';\nexport type M = N;\n");
    // Exempt: tests, generated code, strings and comments.
    put('kernel/up.test.ts', "import '../node/index.ts';\n");
    put('kernel/generated/abi.ts', "import '../../node/index.ts';\n");
    put('kernel/text.ts', "export const t = \"import '../node/index.ts'\"; /* import '../cli/main.ts' */\n");
    const { found } = breaches(root, new Set());
    assert.deepEqual(
      found.map((b) => `${b.at.replace(/^src\//, '')} ${b.rule}`),
      [
        'crypto/lazy.ts:1 crypto (layer 5) imports chain (layer 4), a higher layer',
        'kernel/up.ts:2 kernel (layer 6) imports chain (layer 4), a higher layer',
        'net/types.ts:1 net (layer 5) imports node (layer 1), a higher layer',
        'node/deep.ts:1 deep import: bypasses src/crypto/index.ts',
        'node/side.ts:1 node imports its sibling agent (same layer 1)',
      ],
    );
    // The measured closure may import single files; it still may not import upward.
    const exempt = breaches(root, new Set(['node/deep.ts', 'kernel/up.ts'])).found.map((b) => b.at);
    assert.ok(!exempt.includes('src/node/deep.ts:1'));
    assert.ok(exempt.includes('src/kernel/up.ts:2'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
