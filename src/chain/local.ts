/**
 * The embedded local chain: anvil (`@foundry-rs/anvil` from npm) on 127.0.0.1.
 *
 * `startLocalChain` spawns the platform's anvil binary from this package's node_modules
 * (never from PATH or the working directory), waits until it answers `eth_chainId`, and
 * returns its URL, chain id, the well-known development accounts and an idempotent `stop`.
 * Aborting `signal` stops it too. Always stop it: it is a separate process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Address, Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { FerryError } from '../kernel/index.ts';

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * anvil's default development accounts (mnemonic "test test ... junk"). Public knowledge:
 * never use them on a real chain.
 */
export const ANVIL_DEV_KEYS: readonly Hex[] = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
  '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
  '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba',
  '0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e',
  '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356',
  '0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97',
  '0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6',
];

export type LocalChainOptions = {
  /** TCP port on `host`; default: a free port (on 127.0.0.1). */
  port?: number;
  /**
   * Listen address (an IP literal); default 127.0.0.1. The devnet's namespace tests bind anvil
   * to an address of its own network namespace (§13.7); never the wildcard.
   */
  host?: string;
  /** A command prefix anvil is run under, e.g. `['ip', 'netns', 'exec', NAME]`; default none. */
  prefix?: string[];
  /**
   * Seconds between blocks mined without traffic (so deadlines close by themselves);
   * transactions are still mined at once (anvil --mixed-mining). 0 or undefined: mine only
   * on transactions (automine), as tests want.
   */
  blockTime?: number;
  /** Aborting stops anvil. */
  signal?: AbortSignal;
  /** Milliseconds to wait for anvil to answer; default 10000. */
  readyTimeoutMs?: number;
};

export type LocalChain = {
  rpcUrl: string;
  chainId: number;
  port: number;
  /** Development accounts funded with 10000 ether each. */
  accounts: { address: Address; privateKey: Hex }[];
  /** Stops anvil and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
  /** Resolves when anvil exits (for any reason). */
  exited: Promise<number | null>;
};

/** Path of the platform-specific anvil binary shipped by @foundry-rs/anvil. */
export function anvilPath(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const exe = process.platform === 'win32' ? 'anvil.exe' : 'anvil';
  const direct = `${PACKAGE_ROOT}node_modules/@foundry-rs/anvil-${process.platform}-${arch}/bin/${exe}`;
  if (existsSync(direct)) return direct;
  const launcher = `${PACKAGE_ROOT}node_modules/.bin/anvil`;
  if (existsSync(launcher)) return launcher;
  throw new FerryError('CHAIN_ANVIL_FAILED', 'anvil is not installed', {
    hints: [`looked for: ${direct}`, "run 'npm install' in the Ferry package"],
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function rpc(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = (await res.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(body.error.message);
  return body.result;
}

/** Starts anvil on 127.0.0.1 (or `host`) and waits until it answers. */
export async function startLocalChain(options: LocalChainOptions = {}): Promise<LocalChain> {
  const { blockTime, signal, readyTimeoutMs = 10_000 } = options;
  if (
    options.port !== undefined &&
    (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535)
  ) {
    throw new FerryError('INVALID_ARGUMENT', 'port: expected an integer from 1 to 65535', {
      hints: [`got: ${String(options.port)}`],
    });
  }
  // Fractions of a second are anvil's too (`--block-time 0.25`); timestamps stay whole seconds.
  if (
    blockTime !== undefined &&
    (typeof blockTime !== 'number' ||
      !Number.isFinite(blockTime) ||
      blockTime < 0 ||
      (blockTime > 0 && blockTime < 0.01))
  ) {
    throw new FerryError('INVALID_ARGUMENT', 'blockTime: expected 0 or a number of seconds >= 0.01', {
      hints: [`got: ${String(blockTime)}`],
    });
  }
  const host = options.host ?? '127.0.0.1';
  if (isIP(host) === 0 || host === '0.0.0.0' || host === '::') {
    throw new FerryError('INVALID_ARGUMENT', 'host: expected a specific IP address to listen on', {
      hints: [`got: ${String(options.host)}`, 'never the wildcard address'],
    });
  }
  const prefix = options.prefix ?? [];
  signal?.throwIfAborted();
  const port = options.port ?? (await freePort());
  const args = ['--host', host, '--port', String(port), '--silent', '--hardfork', 'prague'];
  if (blockTime) args.push('--block-time', String(blockTime), '--mixed-mining');
  const command = prefix.length > 0 ? prefix[0] : anvilPath();
  const argv = prefix.length > 0 ? [...prefix.slice(1), anvilPath(), ...args] : args;
  const child: ChildProcess = spawn(command, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (!stopped) {
      stopped = true;
      signal?.removeEventListener('abort', onAbort);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
    await exited;
  };
  const onAbort = () => void stop();
  signal?.addEventListener('abort', onAbort, { once: true });

  const rpcUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  let chainId = 0;
  let spawnError: Error | undefined;
  child.once('error', (e) => {
    spawnError = e;
  });
  for (;;) {
    if (spawnError || child.exitCode !== null) {
      await stop();
      throw new FerryError('CHAIN_ANVIL_FAILED', 'anvil exited before it was ready', {
        cause: spawnError,
        hints: [stderr.trim().split('\n').slice(-3).join(' ') || `port ${port} may be in use`],
      });
    }
    if (signal?.aborted) {
      await stop();
      signal.throwIfAborted();
    }
    try {
      chainId = Number(BigInt((await rpc(rpcUrl, 'eth_chainId')) as string));
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new FerryError('CHAIN_ANVIL_FAILED', 'anvil did not become ready', {
          hints: [`waited ${readyTimeoutMs} ms for ${rpcUrl}`],
        });
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return {
    rpcUrl,
    chainId,
    port,
    accounts: ANVIL_DEV_KEYS.map((privateKey) => ({
      address: privateKeyToAccount(privateKey).address,
      privateKey,
    })),
    stop,
    exited,
  };
}
