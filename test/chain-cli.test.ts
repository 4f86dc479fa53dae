/**
 * `ferry chain up` and `ferry chain deploy` as separate processes: the JSON line, a live RPC,
 * a clean stop on SIGTERM (exit 0, port closed, anvil gone), and deployment with a key from
 * the environment or a file (never a flag).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ANVIL_DEV_KEYS, startLocalChain } from '../src/chain/index.ts';

const FERRY = fileURLToPath(new URL('../bin/ferry', import.meta.url));

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function rpc(url: string, method: string): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: [] }),
  });
  return ((await res.json()) as { result: unknown }).result;
}

function ferry(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      FERRY,
      args,
      { env: { ...process.env, FERRY_DEPLOYER_KEY: '', ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

test('ferry chain up prints one JSON line, serves RPC, and stops cleanly on SIGTERM', async (t) => {
  const child = spawn(FERRY, ['chain', 'up', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', () => reject(new Error('ferry chain up exited before printing')));
  });
  const info = JSON.parse(first) as { rpcUrl: string; chainId: number; contracts: Record<string, string> };
  assert.deepEqual(Object.keys(info).sort(), ['chainId', 'contracts', 'rpcUrl']);
  assert.equal(info.chainId, 31337);
  assert.match(info.rpcUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.deepEqual(Object.keys(info.contracts).sort(), ['Assets', 'NodeRegistry', 'Tasks']);
  assert.equal(await rpc(info.rpcUrl, 'eth_chainId'), '0x7a69');
  const port = Number(new URL(info.rpcUrl).port);
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.equal(await portOpen(port), false);
});

test('ferry chain deploy takes the key from the environment or a file, never a flag', async (t) => {
  const chain = await startLocalChain();
  t.after(() => chain.stop());
  const env = await ferry(['chain', 'deploy', '--rpc', chain.rpcUrl, '--json'], {
    FERRY_DEPLOYER_KEY: ANVIL_DEV_KEYS[1],
  });
  assert.equal(env.code, 0, env.stderr);
  const out = JSON.parse(env.stdout) as { chainId: number; contracts: Record<string, string> };
  assert.equal(out.chainId, 31337);
  const code = (await fetch(chain.rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'eth_getCode',
      params: [out.contracts.Tasks, 'latest'],
    }),
  }).then((r) => r.json())) as { result: string };
  assert.ok(code.result.length > 1000, 'Tasks has code');

  const dir = mkdtempSync(join(tmpdir(), 'ferry-deploy-'));
  const keyFile = join(dir, 'key');
  writeFileSync(keyFile, `${ANVIL_DEV_KEYS[2]}\n`, { mode: 0o600 });
  const file = await ferry(['chain', 'deploy', '--rpc', chain.rpcUrl, '--key-file', keyFile, '--json']);
  assert.equal(file.code, 0, file.stderr);
  assert.notDeepEqual(JSON.parse(file.stdout).contracts, out.contracts);

  const missing = await ferry(['chain', 'deploy', '--rpc', chain.rpcUrl, '--json']);
  assert.equal(missing.code, 2);
  assert.equal(JSON.parse(missing.stdout).error.code, 'CHAIN_KEY_MISSING');
  const flag = await ferry(['chain', 'deploy', '--rpc', chain.rpcUrl, '--key', ANVIL_DEV_KEYS[1], '--json']);
  assert.equal(flag.code, 2);
  assert.equal(JSON.parse(flag.stdout).error.code, 'USAGE_UNKNOWN_OPTION');
  assert.ok(!flag.stdout.includes(ANVIL_DEV_KEYS[1].slice(2)), 'the key is not echoed');
  const down = await ferry(['chain', 'deploy', '--rpc', 'http://127.0.0.1:1', '--json'], {
    FERRY_DEPLOYER_KEY: ANVIL_DEV_KEYS[1],
  });
  assert.equal(down.code, 4);
  assert.equal(JSON.parse(down.stdout).error.code, 'CHAIN_UNAVAILABLE');
});
