/** `ferry devnet up --json` and `ferry devnet down` as processes: readiness line, pid file, clean stop. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isAlive } from '../src/devnet/pidfile.ts';

const FERRY = fileURLToPath(new URL('../bin/ferry', import.meta.url));

function ferry(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(FERRY, args, { encoding: 'utf8', env }, (err, stdout) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout });
    });
  });
}

test('devnet up prints one JSON line, refuses a second up, and devnet down stops everything', {
  timeout: 120_000,
}, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ferry-devnet-cli-'));
  const env = { ...process.env, FERRY_HOME: home };
  const up = spawn(
    FERRY,
    ['devnet', 'up', '--executors', '1', '--verifiers', '1', '--regions', 'DE,FR', '--json'],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((r) => up.once('exit', (code) => r(code)));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: up.stdout }).once('line', resolve);
      up.once('exit', (code) => reject(new Error(`devnet up exited early: ${code}`)));
    });
    const info = JSON.parse(line);
    assert.deepEqual(Object.keys(info).sort(), ['chainId', 'contracts', 'nodes', 'profiles', 'rpcUrl']);
    assert.deepEqual(
      info.nodes.map((n: { name: string; region: string }) => `${n.name}@${n.region}`),
      ['executor-1@DE', 'verifier-1@FR'],
    );
    assert.deepEqual(
      info.profiles.map((p: { name: string; agent: string | null }) => [p.name, p.agent !== null]),
      [
        ['alice', true],
        ['bob', true],
        ['carol', false],
      ],
    );
    assert.equal(Number(readFileSync(join(home, 'devnet.pid'), 'utf8').split(' ')[0]), up.pid);
    const second = await ferry(env, 'devnet', 'up', '--json');
    assert.equal(second.code, 2);
    assert.equal(JSON.parse(second.stdout).error.code, 'DEVNET_ALREADY_RUNNING');
    const pids = JSON.parse(readFileSync(join(home, 'devnet.json'), 'utf8')).nodes.length;
    assert.equal(pids, 2);
    const down = await ferry(env, 'devnet', 'down', '--json');
    assert.equal(down.code, 0);
    assert.deepEqual(JSON.parse(down.stdout), { stopped: true, pid: up.pid });
    assert.equal(await exited, 0);
    assert.equal(existsSync(join(home, 'devnet.pid')), false);
    assert.equal(existsSync(join(home, 'devnet.json')), false);
    const again = await ferry(env, 'devnet', 'down', '--json');
    assert.equal(JSON.parse(again.stdout).error.code, 'DEVNET_NOT_RUNNING');
  } finally {
    if (up.pid && isAlive(up.pid)) up.kill('SIGTERM');
    await exited;
    rmSync(home, { recursive: true, force: true });
  }
});
