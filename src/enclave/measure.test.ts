import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isFerryError, toHex } from '../kernel/index.ts';
import {
  computeRuntimeManifest,
  moduleReferences,
  REPO_ROOT,
  RUNTIME_MANIFEST_VERSION,
  runtimeMeasuredFiles,
  runtimeMeasurement,
} from './measure.ts';

const tmp = mkdtempSync(join(tmpdir(), 'ferry-measure-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A fresh copy of the tree the measurement reads: src/ and package-lock.json. */
function copyTree(name: string): string {
  const root = join(tmp, name);
  cpSync(join(REPO_ROOT, 'src'), join(root, 'src'), { recursive: true });
  cpSync(join(REPO_ROOT, 'package-lock.json'), join(root, 'package-lock.json'));
  return root;
}
const append = (root: string, path: string, text: string) =>
  writeFileSync(join(root, path), readFileSync(join(root, path), 'utf8') + text);
const hex = async (root: string) => toHex((await computeRuntimeManifest(root)).measurement);

test('the runtime measurement is the SHA-256 of its manifest: every loaded file and package, sorted', async () => {
  const m = await computeRuntimeManifest();
  const { files, packages } = await runtimeMeasuredFiles();
  const paths = files.map((f) => f.path);
  for (const p of [
    'src/enclave/main.ts',
    'src/enclave/process.ts',
    'src/enclave/worker.ts',
    'src/enclave/hash-worker.ts',
    'src/enclave/wasi.ts',
    'src/kernel/canonical.ts',
    'src/crypto/hpke.ts',
    'src/attestation/sim/backend.ts',
  ]) {
    assert.ok(paths.includes(p), `${p} is measured`);
  }
  assert.ok(!paths.some((p) => p.endsWith('.test.ts')), 'no test file');
  assert.ok(!paths.some((p) => p.startsWith('src/node/') || p.startsWith('src/cli/')), 'no daemon or CLI');
  assert.deepEqual(paths, [...paths].sort());
  for (const f of files) {
    assert.equal(
      f.sha256,
      createHash('sha256')
        .update(readFileSync(join(REPO_ROOT, f.path)))
        .digest('hex'),
    );
  }
  assert.ok(packages.some((p) => p.name === 'cborg' && p.integrity.startsWith('sha512-')));
  assert.ok(!packages.some((p) => p.name === 'viem'), 'the chain client is not in the enclave');
  // Recomputable by anyone from the manifest text.
  assert.ok(m.text.startsWith(`${RUNTIME_MANIFEST_VERSION}\n`));
  assert.equal(toHex(m.measurement), createHash('sha256').update(m.text).digest('hex'));
  assert.equal(toHex(await runtimeMeasurement()), toHex(m.measurement));
  // Callers get copies: mutating one does not change the next.
  const a = await runtimeMeasurement();
  a.fill(0);
  assert.equal(toHex(await runtimeMeasurement()), toHex(m.measurement));
});

test('an executor that modifies a kernel or crypto file, or adds a module to the runtime, changes the measurement', async () => {
  const base = await hex(copyTree('base'));
  assert.equal(base, toHex(await runtimeMeasurement()), 'a faithful copy measures the same');

  const kernel = copyTree('kernel');
  append(kernel, 'src/kernel/canonical.ts', '\n// exfiltrate\n');
  assert.notEqual(await hex(kernel), base);

  const crypto = copyTree('crypto');
  append(crypto, 'src/crypto/hpke.ts', '\nexport const leak = 1;\n');
  assert.notEqual(await hex(crypto), base);

  // A new module imported (statically or dynamically) from a measured file is measured too.
  const added = copyTree('added');
  writeFileSync(join(added, 'src/kernel/exfil.ts'), 'export const x = 1;\n');
  append(added, 'src/kernel/bytes.ts', "\nawait import('./exfil.ts');\n");
  const withAdded = await computeRuntimeManifest(added);
  assert.ok(withAdded.files.some((f) => f.path === 'src/kernel/exfil.ts'));
  assert.notEqual(toHex(withAdded.measurement), base);

  // A different locked release of a package the runtime imports.
  const pkg = copyTree('pkg');
  const lock = JSON.parse(readFileSync(join(pkg, 'package-lock.json'), 'utf8'));
  lock.packages['node_modules/cborg'].integrity = 'sha512-AAAA';
  writeFileSync(join(pkg, 'package-lock.json'), JSON.stringify(lock));
  assert.notEqual(await hex(pkg), base);
});

test('files the enclave process does not load are not measured', async () => {
  const root = copyTree('unloaded');
  append(root, 'src/kernel/canonical.test.ts', '\n// changed\n');
  append(root, 'src/node/daemon.ts', '\n// changed\n');
  writeFileSync(join(root, 'src/enclave/dev-main.ts'), "import './process.ts';\n");
  // A comment that mentions an import is not an import.
  append(root, 'src/enclave/ring.ts', "\n// import('./nowhere.ts')\n/* import x from './nowhere.ts' */\n");
  const m = await computeRuntimeManifest(root);
  assert.ok(!m.files.some((f) => f.path === 'src/enclave/dev-main.ts'));
  const ring = m.files.find((f) => f.path === 'src/enclave/ring.ts');
  assert.ok(ring);
  // Only ring.ts changed among the measured files.
  const orig = await runtimeMeasuredFiles();
  const changed = m.files.filter((f) => orig.files.find((o) => o.path === f.path)?.sha256 !== f.sha256);
  assert.deepEqual(
    changed.map((f) => f.path),
    ['src/enclave/ring.ts'],
  );
});

test('a reference to a missing module or an unlocked package fails loudly', async () => {
  const missing = copyTree('missing');
  append(missing, 'src/enclave/ring.ts', "\nimport './gone.ts';\n");
  await assert.rejects(computeRuntimeManifest(missing), (e) => isFerryError(e, 'INTERNAL'));
  const unlocked = copyTree('unlocked');
  append(unlocked, 'src/enclave/ring.ts', "\nimport 'left-pad';\n");
  await assert.rejects(computeRuntimeManifest(unlocked), (e) => isFerryError(e, 'INTERNAL'));
});

test('moduleReferences: static, re-export, side-effect, type-only, dynamic and worker references', () => {
  const src = [
    "import { a } from './a.ts';",
    'import {',
    '  b,',
    '  type C,',
    "} from '../b.ts';",
    "import type { D } from './d.ts';",
    "export { e } from './e.ts';",
    "import './f.ts';",
    "const g = await import('./g.ts');",
    "new Worker(new URL('./h.ts', import.meta.url));",
    "import { z } from 'zod';",
    "import { x } from 'node:fs';",
    'const s = \'import("./not-code.ts") is only text\';',
    "// import './commented.ts';",
  ].join('\n');
  assert.deepEqual(moduleReferences(src).sort(), [
    '../b.ts',
    './a.ts',
    './d.ts',
    './e.ts',
    './f.ts',
    './g.ts',
    './h.ts',
    'node:fs',
    'zod',
  ]);
});

test('moduleReferences: a reference after escaped quotes, comments holding quotes, a template literal or a division is still found', () => {
  // What someone hiding a module from the measurement would try: make the lexer believe a real
  // reference is inside a string or a comment.
  const src = [
    "const a = 'it\\'s'; import './after-escaped-quote.ts';",
    'const b = "say \\"hi\\""; import \'./after-escaped-double.ts\';',
    "/* a ' quote and a \" quote */ import './after-block-comment.ts';",
    "// a ' quote in a line comment",
    "import './after-line-comment.ts';",
    'const d = `multi',
    "line import('./inside-template.ts')`;",
    "const e = a / b; import('./after-division.ts');",
    "const f = '\\\\'; import './after-escaped-backslash.ts';",
  ].join('\n');
  assert.deepEqual(moduleReferences(src).sort(), [
    './after-block-comment.ts',
    './after-division.ts',
    './after-escaped-backslash.ts',
    './after-escaped-double.ts',
    './after-escaped-quote.ts',
    './after-line-comment.ts',
  ]);
});
