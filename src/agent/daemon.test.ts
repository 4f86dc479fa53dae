/**
 * The owner agent's address across restarts, against a real anvil: port memory (port 0 ->
 * the remembered port first, a fresh one if it is taken) and the endpoint refresh of the assets
 * it holds (only those registered locally, not revoked and owned by its account), including a
 * chain that is unavailable at the refresh and comes back (the reconciler retries).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sha256 } from 'viem';
import { generatePrivateKey } from 'viem/accounts';
import {
  type ChainWriter,
  connect,
  createApp,
  createDataset,
  type DatasetPolicy,
  getApp,
  getDataset,
  revokeDataset,
  writer,
} from '../chain/index.ts';
import { randomHex, startTestChain, type TestChain } from '../chain/testing.ts';
import { X25519Identity } from '../crypto/age/index.ts';
import { createLogger } from '../kernel/index.ts';
import { Ed25519Signer } from '../net/index.ts';
import { AgentConfigSchema, type AgentConfig } from './config.ts';
import { AgentDaemon, type AgentKeys } from './daemon.ts';
import { AgentState } from './state.ts';

const STALE = 'http://127.0.0.1:9';
const MEASUREMENT = sha256(new TextEncoder().encode('app module'));

let tc: TestChain;
const homes: string[] = [];
/** Every daemon made, stopped (idempotent) after the tests even when an assertion fails. */
const daemons: AgentDaemon[] = [];

before(async () => {
  tc = await startTestChain();
});

after(async () => {
  for (const d of daemons) await d.stop();
  await tc?.stop();
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

function policy(): DatasetPolicy {
  return {
    allowedApps: [MEASUREMENT],
    allowedRegions: ['DE'],
    teeKinds: ['sim'],
    tau: 1,
    threshold: 1,
    maxUses: 0,
    expiresAt: 0,
    requesters: [],
    appraisalPolicyDocument: randomHex(64),
  };
}

/** A funded owner account with its keys, and a writer for it. */
async function owner(): Promise<{ keys: AgentKeys; chain: ChainWriter }> {
  const evmPrivateKey = generatePrivateKey();
  const c = await connect({ rpcUrl: tc.chain.rpcUrl, privateKey: evmPrivateKey, chainId: tc.chain.chainId });
  await tc.rpc('anvil_setBalance', [c.wallet!.account.address, '0x21e19e0c9bab2400000']);
  return {
    keys: {
      evmPrivateKey,
      signer: Ed25519Signer.generate().signer,
      ageIdentity: new X25519Identity(new Uint8Array(randomBytes(32))),
    },
    chain: writer(c, tc.contracts),
  };
}

function config(over: Record<string, unknown> = {}): AgentConfig {
  return AgentConfigSchema.parse({
    profile: 'test',
    rpc: tc.chain.rpcUrl,
    contracts: tc.contracts,
    pollIntervalMs: 50,
    ...over,
  }) as AgentConfig;
}

/** Records the asset in the agent home's state as `dataset add` / `app publish` do. */
function hold(home: string, kind: 'dataset' | 'app', chainId: bigint): void {
  const s = AgentState.open(join(home, 'state.db'));
  try {
    const id = randomBytes(16).toString('hex');
    s.addAsset({
      id,
      kind,
      name: `${kind}-${chainId}`,
      path: join(home, 'assets', `${id}.age`),
      ciphertextSha256: new Uint8Array(32).fill(7),
      size: 1,
      identityRef: 'age',
      measurement: kind === 'app' ? new Uint8Array(32) : null,
    });
    s.markAssetRegistered(id, chainId);
  } finally {
    s.close();
  }
}

function agent(opts: ConstructorParameters<typeof AgentDaemon>[0]): AgentDaemon {
  const d = new AgentDaemon(opts);
  daemons.push(d);
  return d;
}

function newHome(): string {
  const h = mkdtempSync(join(tmpdir(), 'ferry-agent-'));
  homes.push(h);
  return h;
}

type Lines = { lines: string[]; log: ReturnType<typeof createLogger> };
function capture(): Lines {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'info', json: true, write: (l) => lines.push(l) }) };
}

async function nonce(c: ChainWriter): Promise<number> {
  return c.public.getTransactionCount({ address: c.wallet.account.address, blockTag: 'latest' });
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  ms = 30_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('port 0: the agent listens again on its remembered port, else on a fresh one it remembers', async () => {
  const { keys } = await owner();
  const home = newHome();
  const a1 = agent({ config: config(), home, keys, log: capture().log });
  const r1 = await a1.start();
  const port1 = Number(new URL(r1.endpoint).port);
  await a1.stop();

  const a2 = agent({ config: config(), home, keys, log: capture().log });
  const r2 = await a2.start();
  assert.equal(r2.endpoint, r1.endpoint, 'the same address after a restart');
  await a2.stop();

  // Another process holds the port: a fresh one, remembered for the next start.
  const squatter = createTcpServer();
  await new Promise<void>((resolve, reject) => {
    squatter.once('error', reject);
    squatter.listen(port1, '127.0.0.1', resolve);
  });
  const cap = capture();
  const a3 = agent({ config: config(), home, keys, log: cap.log });
  try {
    const r3 = await a3.start();
    assert.notEqual(r3.endpoint, r1.endpoint);
    assert.ok(
      cap.lines.some((l) => l.includes('remembered port is not available') && l.includes(String(port1))),
      'the fallback is logged',
    );
    await a3.stop();
    const s = AgentState.open(join(home, 'state.db'));
    try {
      assert.equal(s.getListenPort('127.0.0.1'), Number(new URL(r3.endpoint).port));
    } finally {
      s.close();
    }
  } finally {
    await a3.stop();
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
  }
});

test('a configured port is used as is and not remembered', async () => {
  const { keys } = await owner();
  const home = newHome();
  // A port free right now: listen on 0, note it, close.
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const a = agent({ config: config({ port }), home, keys, log: capture().log });
  try {
    const r = await a.start();
    assert.equal(r.endpoint, `http://127.0.0.1:${port}`);
  } finally {
    await a.stop();
  }
  const s = AgentState.open(join(home, 'state.db'));
  try {
    assert.equal(s.getListenPort('127.0.0.1'), null);
  } finally {
    s.close();
  }
});

test('at start the agent points the endpoint of the assets it holds at its URL, and only those', async () => {
  const alice = await owner();
  const mallory = await owner();
  const home = newHome();
  const ds = await createDataset(alice.chain, {
    ciphertextHash: randomHex(32),
    endpoint: STALE,
    price: 0n,
    policy: policy(),
  });
  const app = await createApp(alice.chain, {
    measurement: MEASUREMENT,
    ciphertextHash: randomHex(32),
    endpoint: STALE,
    price: 0n,
    teeKinds: ['sim'],
    appraisalPolicyDocument: randomHex(64),
  });
  const revoked = await createDataset(alice.chain, {
    ciphertextHash: randomHex(32),
    endpoint: STALE,
    price: 0n,
    policy: policy(),
  });
  await revokeDataset(alice.chain, revoked.datasetId);
  const notMine = await createDataset(mallory.chain, {
    ciphertextHash: randomHex(32),
    endpoint: STALE,
    price: 0n,
    policy: policy(),
  });
  // Not held by this agent: registered on chain by alice, absent from its state.
  const notHeld = await createDataset(alice.chain, {
    ciphertextHash: randomHex(32),
    endpoint: STALE,
    price: 0n,
    policy: policy(),
  });
  hold(home, 'dataset', ds.datasetId);
  hold(home, 'app', app.appId);
  hold(home, 'dataset', revoked.datasetId);
  hold(home, 'dataset', notMine.datasetId);
  const before = (await getDataset(alice.chain, ds.datasetId))!;

  const cap = capture();
  const a1 = agent({ config: config(), home, keys: alice.keys, log: cap.log });
  let url: string;
  try {
    url = (await a1.start()).endpoint;
    // Done before start resolves: no waiting.
    const d = (await getDataset(alice.chain, ds.datasetId))!;
    assert.equal(d.endpoint, url);
    assert.equal(d.ciphertextHash, before.ciphertextHash, 'the ciphertext hash is kept');
    assert.equal((await getApp(alice.chain, app.appId))!.endpoint, url);
    assert.equal((await getDataset(alice.chain, revoked.datasetId))!.endpoint, STALE, 'revoked: left');
    assert.equal((await getDataset(alice.chain, notMine.datasetId))!.endpoint, STALE, 'not its own: left');
    assert.equal((await getDataset(alice.chain, notHeld.datasetId))!.endpoint, STALE, 'not held: left');
    const updates = cap.lines.filter((l) => l.includes('asset endpoint updated')).map((l) => JSON.parse(l));
    assert.deepEqual(
      updates.map((u) => [u.kind, u.id, u.from, u.to]).sort(),
      [
        ['app', String(app.appId), STALE, url],
        ['dataset', String(ds.datasetId), STALE, url],
      ],
      'each update is logged',
    );
  } finally {
    await a1.stop();
  }

  // A restart on the remembered port sends no transaction.
  const n = await nonce(alice.chain);
  const a2 = agent({ config: config(), home, keys: alice.keys, log: capture().log });
  try {
    assert.equal((await a2.start()).endpoint, url);
    assert.equal(await nonce(alice.chain), n, 'no transaction when the endpoints are current');
  } finally {
    await a2.stop();
  }

  // publicUrl, when configured, is what the chain gets.
  const a3 = agent({
    config: config({ publicUrl: 'https://alice.example/agent/' }),
    home,
    keys: alice.keys,
    log: capture().log,
  });
  try {
    assert.equal((await a3.start()).endpoint, 'https://alice.example/agent');
    assert.equal((await getDataset(alice.chain, ds.datasetId))!.endpoint, 'https://alice.example/agent');
    assert.equal((await getApp(alice.chain, app.appId))!.endpoint, 'https://alice.example/agent');
  } finally {
    await a3.stop();
  }
});

/** A JSON-RPC proxy to anvil that answers 503 to reads of contracts and sends while `down`. */
async function flakyRpc(target: string): Promise<{ url: string; down: boolean; close(): Promise<void> }> {
  const state = { down: false };
  const read = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => resolve(Buffer.concat(parts)));
      req.on('error', reject);
    });
  const server: Server = createServer(async (req, res) => {
    const body = await read(req);
    const text = body.toString('utf8');
    if (state.down && /"eth_(call|sendRawTransaction|estimateGas)"/.test(text)) {
      res.writeHead(503).end();
      return;
    }
    try {
      const up = await fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      res
        .writeHead(up.status, { 'content-type': 'application/json' })
        .end(Buffer.from(await up.arrayBuffer()));
    } catch {
      res.writeHead(502).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get down() {
      return state.down;
    },
    set down(v: boolean) {
      state.down = v;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

test('the chain unavailable at the refresh: the agent starts, logs the code, and the reconciler retries', async () => {
  const alice = await owner();
  const home = newHome();
  const ds = await createDataset(alice.chain, {
    ciphertextHash: randomHex(32),
    endpoint: STALE,
    price: 0n,
    policy: policy(),
  });
  hold(home, 'dataset', ds.datasetId);
  const rpc = await flakyRpc(tc.chain.rpcUrl);
  const cap = capture();
  const a = agent({ config: config({ rpc: rpc.url }), home, keys: alice.keys, log: cap.log });
  try {
    rpc.down = true;
    const r = await a.start();
    const failed = cap.lines
      .filter((l) => l.includes('asset endpoint update failed'))
      .map((l) => JSON.parse(l));
    assert.ok(failed.length >= 1, 'the failure is logged');
    assert.equal(failed[0].id, String(ds.datasetId));
    assert.equal(failed[0].code, 'CHAIN_UNAVAILABLE');
    assert.equal((await getDataset(alice.chain, ds.datasetId))!.endpoint, STALE);
    rpc.down = false;
    await waitFor('the endpoint updated by a retry', async () => {
      return (await getDataset(alice.chain, ds.datasetId))!.endpoint === r.endpoint;
    });
    // The reconciler logs the line after its update is mined: wait for it, not for the chain.
    await waitFor('the retry logged', async () =>
      cap.lines.some((l) => l.includes('asset endpoints are current')),
    );
  } finally {
    await a.stop();
    await rpc.close();
  }
});
