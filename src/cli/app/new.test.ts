/**
 * `ferry app new`: each template is written with its name, never over an existing path, and
 * (where the toolchain exists: Debian's clang/lld/wasi-libc, rustc with libstd-rust-dev-wasm32;
 * AssemblyScript from node_modules) builds with the exact line its README gives and runs with
 * `ferry app run`, all three languages giving the same result on stdin and on /data files.
 * C and Rust are skipped with the reason when their toolchain is missing, except under CI.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findToolchain } from '../../../examples/index.ts';
import { isFerryError } from '../../kernel/index.ts';
import { APP_LANGS, type AppLang, writeAppTemplate } from './new.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FERRY = join(ROOT, 'bin', 'ferry');
let dir: string;

function exec(
  cmd: string,
  args: string[],
  cwd?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-app-new-'));
  await writeFile(join(dir, 'a.csv'), 'x,y\n1,2\n3,4\n');
  await writeFile(join(dir, 'b.txt'), 'no newline');
});
after(() => rm(dir, { recursive: true, force: true }));

/** The README's build line (the indented line after "):"), as argv. */
async function buildLine(project: string): Promise<string[]> {
  const readme = await readFile(join(project, 'README.md'), 'utf8');
  const line = readme.split('\n').find((l) => /^ {4}(clang|rustc|npx asc) /.test(l));
  assert.ok(line, 'README.md gives a build line');
  return line.trim().split(/ +/);
}

const results = new Map<AppLang, string[]>();

for (const lang of APP_LANGS) {
  test(`app new --lang ${lang}: written, built with its README line, runs with ferry app run`, async (t) => {
    const name = `my-${lang}_app`;
    const project = join(dir, 'projects', lang);
    const r = await exec(FERRY, ['app', 'new', name, '--lang', lang, '--dir', project, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const files = JSON.parse(r.stdout).files as string[];
    assert.ok(files.includes('README.md'));
    for (const f of files) {
      const text = await readFile(join(project, f), 'utf8');
      assert.ok(!text.includes('{{'.concat('NAME}}')), `${f} has no placeholder left`);
    }
    assert.match(await readFile(join(project, 'README.md'), 'utf8'), new RegExp(`${name}\\.wasm`));

    let argv = await buildLine(project);
    if (lang === 'assemblyscript') {
      argv = [
        process.execPath,
        join(ROOT, 'node_modules', 'assemblyscript', 'bin', 'asc.js'),
        ...argv.slice(2),
      ];
    } else {
      const tool = await findToolchain(lang);
      if ('missing' in tool) {
        assert.ok(!process.env.CI, `CI is set and ${tool.missing}`);
        t.skip(tool.missing);
        return;
      }
      argv[0] = tool.command;
      if (lang === 'rust') argv[argv.indexOf('--target') + 1] = tool.args[tool.args.indexOf('--target') + 1];
    }
    const built = await new Promise<string>((resolve, reject) =>
      execFile(argv[0], argv.slice(1), { cwd: project }, (e, _o, stderr) =>
        e ? reject(new Error(stderr)) : resolve(stderr),
      ),
    );
    assert.equal(typeof built, 'string');
    const app = join(project, `${name}.wasm`);

    const one = await exec(FERRY, ['app', 'run', app, '--data', join(dir, 'a.csv')]);
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual(JSON.parse(one.stdout), { inputs: [{ name: '-', bytes: 12, lines: 3 }] });
    const two = await exec(FERRY, [
      'app',
      'run',
      app,
      ...['--data', join(dir, 'a.csv'), '--data', join(dir, 'b.txt'), '--arg', 'b.txt', '--arg', 'a.csv'],
    ]);
    assert.equal(two.code, 0, two.stderr);
    assert.deepEqual(JSON.parse(two.stdout), {
      inputs: [
        { name: 'b.txt', bytes: 10, lines: 0 },
        { name: 'a.csv', bytes: 12, lines: 3 },
      ],
    });
    const missing = await exec(FERRY, [
      'app',
      'run',
      app,
      '--data',
      join(dir, 'a.csv'),
      '--data',
      join(dir, 'b.txt'),
      '--arg',
      'c',
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(`${name}: cannot open /data/c`));
    results.set(lang, [one.stdout, two.stdout]);
  });
}

test('the three templates give byte-identical results', (t) => {
  const outs = [...results.values()].map((v) => v.join(''));
  if (outs.length < 2) {
    t.skip('fewer than two languages were built');
    return;
  }
  for (const o of outs) assert.equal(o, outs[0]);
});

test('app new refuses bad names and languages, and never overwrites', async () => {
  for (const bad of ['', 'Upper', '../escape', 'a/b', '-dash', '9lives', 'x'.repeat(65), 'a b', 'a"b']) {
    await assert.rejects(writeAppTemplate(bad, 'c', join(dir, 'never')), (e) =>
      isFerryError(e, 'USAGE_INVALID_ARGUMENT'),
    );
  }
  for (const bad of ['go', 'C', '', 'constructor', '../c']) {
    await assert.rejects(writeAppTemplate('ok', bad, join(dir, 'never')), (e) =>
      isFerryError(e, 'USAGE_INVALID_ARGUMENT'),
    );
  }
  // An existing directory, file or symbolic link: refused, nothing written through it.
  const existing = join(dir, 'existing');
  await writeAppTemplate('first', 'c', existing);
  const before = await readFile(join(existing, 'app.c'), 'utf8');
  await assert.rejects(writeAppTemplate('second', 'rust', existing), (e) =>
    isFerryError(e, 'APP_DIR_EXISTS'),
  );
  assert.equal(await readFile(join(existing, 'app.c'), 'utf8'), before);
  const victim = join(dir, 'victim');
  await writeAppTemplate('victim', 'c', victim);
  await symlink(victim, join(dir, 'link'));
  await assert.rejects(writeAppTemplate('evil', 'c', join(dir, 'link')), (e) =>
    isFerryError(e, 'APP_DIR_EXISTS'),
  );
  assert.match(await readFile(join(victim, 'app.c'), 'utf8'), /^\/\/ victim:/);
  await writeFile(join(dir, 'file'), 'mine');
  await assert.rejects(writeAppTemplate('f', 'c', join(dir, 'file')), (e) =>
    isFerryError(e, 'APP_DIR_EXISTS'),
  );
  assert.equal(await readFile(join(dir, 'file'), 'utf8'), 'mine');
  const cli = await exec(FERRY, ['app', 'new', 'again', '--lang', 'c', '--dir', existing, '--json']);
  assert.equal(cli.code, 2);
  assert.equal(JSON.parse(cli.stdout).error.code, 'APP_DIR_EXISTS');
  const noLang = await exec(FERRY, ['app', 'new', 'x', '--dir', join(dir, 'nolang')]);
  assert.equal(noLang.code, 2);
});

test('the AssemblyScript template carries the examples WASI bindings', async () => {
  const strip = (s: string) => s.split('\n').slice(2).join('\n');
  assert.equal(
    strip(
      await readFile(
        join(ROOT, 'src', 'cli', 'app', 'templates', 'assemblyscript', 'assembly', 'wasi.ts.tmpl'),
        'utf8',
      ),
    ),
    strip(await readFile(join(ROOT, 'examples', 'lib', 'assembly', 'wasi.ts'), 'utf8')),
  );
});
