// The lazy registry and the help text stay in step: every command listed loads, under its own
// name and with its own summary; `ferry --help` lists each with that summary; and the entry
// point loads no command module before a command is chosen (start-up, issue 16).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { commandHelp } from './main.ts';
import { COMMANDS } from './registry.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const CLI_DIR = fileURLToPath(new URL('.', import.meta.url));

function run(
  args: string[],
  nodeArgs: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', ...nodeArgs, MAIN, ...args],
      { encoding: 'utf8', env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' } },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr });
      },
    );
  });
}

test('every registered command loads, with the name and summary the registry lists', async () => {
  const names = new Set<string>();
  for (const entry of COMMANDS) {
    assert.ok(!names.has(entry.name), `listed twice: ${entry.name}`);
    names.add(entry.name);
    const command = (await entry.load()).default;
    assert.equal(command.name, entry.name, `registry entry "${entry.name}" loads "${command.name}"`);
    assert.equal(command.summary, entry.summary, `summary of "${entry.name}"`);
    assert.equal(typeof command.run, 'function', entry.name);
    assert.ok(command.usage.startsWith(entry.name), `usage of "${entry.name}": ${command.usage}`);
    // The per-command help names the command and carries the same summary line.
    const help = commandHelp(command).split('\n');
    assert.equal(help[0], `Usage: ferry ${command.usage.split('\n')[0]}`);
    assert.ok(help.includes(entry.summary), entry.name);
  }
});

test('ferry --help lists every command with its summary, once', async () => {
  const r = await run(['--help']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('  '));
  assert.equal(lines.length, COMMANDS.length);
  for (const entry of COMMANDS) {
    const line = lines.find((l) => l.trimStart().startsWith(`${entry.name} `));
    assert.ok(line, `not listed: ${entry.name}`);
    assert.ok(line.endsWith(`  ${entry.summary}`), `${entry.name}: ${line}`);
  }
  // A group's help lists the group's commands only.
  const vrf = await run(['vrf']);
  assert.equal(vrf.code, 0, vrf.stderr);
  const vrfNames = COMMANDS.filter((e) => e.name.startsWith('vrf ')).map((e) => e.name);
  assert.deepEqual(
    vrf.stdout
      .split('\n')
      .filter((l) => l.startsWith('  '))
      .map((l) => l.trim().split(/\s{2,}/)[0]),
    vrfNames,
  );
});

test('the registry imports no command module; --help loads none, a command loads its own', async () => {
  // Statically: registry.ts imports types only; main.ts imports no command module.
  const registry = readFileSync(new URL('./registry.ts', import.meta.url), 'utf8');
  for (const m of registry.matchAll(/^import\s+(type\s+)?[^;]*;/gm)) {
    assert.ok(m[1], `registry.ts must import types only: ${m[0]}`);
  }
  // At run time: the files under src/cli/ that a process loaded, seen by a module hook.
  const hook = `data:text/javascript,${encodeURIComponent(`
    import { registerHooks } from 'node:module';
    const seen = [];
    registerHooks({ load(url, ctx, next) { seen.push(url); return next(url, ctx); } });
    process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(seen) + '\\n'));
  `)}`;
  const loaded = async (args: string[]) => {
    const r = await run(args, ['--import', hook]);
    const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
    assert.ok(line, r.stderr);
    return (JSON.parse(line.slice(7)) as string[])
      .filter((u) => u.startsWith('file:'))
      .map((u) => fileURLToPath(u))
      .filter((p) => p.startsWith(CLI_DIR))
      .map((p) => p.slice(CLI_DIR.length))
      .sort();
  };
  assert.deepEqual(await loaded(['--help']), ['main.ts', 'registry.ts']);
  const vrf = await loaded(['vrf', 'keygen', '--help']);
  assert.ok(vrf.includes('vrf/keygen.ts'), vrf.join(' '));
  assert.ok(!vrf.some((p) => p.startsWith('age/') || p.startsWith('task/')), vrf.join(' '));
});
