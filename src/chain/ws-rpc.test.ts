/**
 * Reads over the chain's WebSocket (ws-rpc.ts) against a real anvil: the same answers and the
 * same FerryError codes as over HTTP, HTTP when the socket is down or serves another chain,
 * CHAIN_UNAVAILABLE when both are down, and never a transaction over the socket.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { createPublicClient } from 'viem';
import { isFerryError } from '../kernel/index.ts';
import { ANVIL_DEV_KEYS, connect, getNode, getTask, reader, seedTask, writer, wsUrlFor } from './index.ts';
import { startTestChain, type TestChain } from './testing.ts';
import { openWsReads, readsOverWebSocket, type WsReads } from './ws-rpc.ts';

let tc: TestChain;

before(async () => {
  tc = await startTestChain();
});
after(async () => {
  await tc?.stop();
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The socket, recording the methods it carried. */
function recording(ws: WsReads): WsReads & { methods: string[] } {
  const methods: string[] = [];
  return {
    methods,
    get live() {
      return ws.live;
    },
    request(method, params) {
      methods.push(method);
      return ws.request(method, params);
    },
    close: () => ws.close(),
  };
}

test('reads go over the socket once it is up, with the answers HTTP gives', async () => {
  const ws = recording(openWsReads(wsUrlFor(tc.chain.rpcUrl), { chainId: tc.chain.chainId }));
  try {
    await until(() => ws.live);
    const pub = createPublicClient({
      chain: tc.deployer.public.chain,
      transport: readsOverWebSocket(tc.chain.rpcUrl, ws),
    });
    const c = reader({ public: pub as never }, tc.deployer.contracts);
    const me = tc.deployer.wallet.account.address;
    assert.equal(
      await pub.getBlockNumber({ cacheTime: 0 }),
      await tc.deployer.public.getBlockNumber({ cacheTime: 0 }),
    );
    assert.deepEqual(await getNode(c, me), await getNode(tc.deployer, me));
    assert.equal(await getTask(c, 999n), null);
    assert.ok(ws.methods.includes('eth_blockNumber'));
    assert.ok(ws.methods.includes('eth_call'));
  } finally {
    ws.close();
  }
});

test('a refusal read over the socket is the same FerryError as over HTTP; transactions never go over it', async () => {
  const key = ANVIL_DEV_KEYS[0];
  const plain = writer(
    await connect({ rpcUrl: tc.chain.rpcUrl, privateKey: key, chainId: tc.chain.chainId }),
    tc.deployer.contracts,
  );
  const viaWs = await connect({
    rpcUrl: tc.chain.rpcUrl,
    privateKey: key,
    chainId: tc.chain.chainId,
    wsRpcUrl: wsUrlFor(tc.chain.rpcUrl),
  });
  try {
    await until(() => viaWs.wsReads?.live === true);
    // The estimate (a read) reverts with UnknownTask over both transports.
    const codes = await Promise.all(
      [plain, writer(viaWs, tc.deployer.contracts)].map((w) =>
        seedTask(w, 424242n).then(
          () => 'sent',
          (e: unknown) => (isFerryError(e) ? e.code : String(e)),
        ),
      ),
    );
    assert.equal(codes[0], codes[1]);
    assert.equal(codes[0], 'CHAIN_NOT_FOUND');
  } finally {
    viaWs.close();
  }
  // Attacker's view: a socket that takes what it is given never sees a transaction.
  const ws = recording(openWsReads(wsUrlFor(tc.chain.rpcUrl), { chainId: tc.chain.chainId }));
  try {
    await until(() => ws.live);
    const t = readsOverWebSocket(tc.chain.rpcUrl, ws)({ chain: tc.deployer.public.chain, retryCount: 0 });
    await t.request({ method: 'eth_sendRawTransaction', params: ['0x01'] }).catch(() => {});
    await t.request({ method: 'eth_sendTransaction', params: [{}] } as never).catch(() => {});
    assert.deepEqual(
      ws.methods.filter((m) => m.startsWith('eth_send')),
      [],
    );
  } finally {
    ws.close();
  }
});

test('a socket that is down, or serves another chain, leaves every read to HTTP', async () => {
  const down = openWsReads(`ws://127.0.0.1:${await deadPort()}`, { chainId: tc.chain.chainId, retryMs: 20 });
  const other = recording(openWsReads(wsUrlFor(tc.chain.rpcUrl), { chainId: tc.chain.chainId + 1 }));
  try {
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(down.live, false);
    assert.equal(other.live, false, 'a socket of another chain is never used');
    for (const ws of [down, other]) {
      const pub = createPublicClient({
        chain: tc.deployer.public.chain,
        transport: readsOverWebSocket(tc.chain.rpcUrl, ws),
      });
      assert.equal(
        await pub.getBlockNumber({ cacheTime: 0 }),
        await tc.deployer.public.getBlockNumber({ cacheTime: 0 }),
      );
    }
    assert.deepEqual(other.methods, []);
  } finally {
    down.close();
    other.close();
  }
});

test('with both endpoints down a read is CHAIN_UNAVAILABLE', async () => {
  const port = await deadPort();
  const clients = await connect({
    rpcUrl: `http://127.0.0.1:${port}`,
    chainId: tc.chain.chainId,
    wsRpcUrl: `ws://127.0.0.1:${port}`,
  });
  try {
    await assert.rejects(
      () => getTask(reader(clients, tc.deployer.contracts), 1n),
      (e: unknown) => isFerryError(e, 'CHAIN_UNAVAILABLE'),
    );
  } finally {
    clients.close();
  }
});

test('a socket that closes under a read hands the read to HTTP', async () => {
  const ws = openWsReads(wsUrlFor(tc.chain.rpcUrl), { chainId: tc.chain.chainId });
  await until(() => ws.live);
  const pub = createPublicClient({
    chain: tc.deployer.public.chain,
    transport: readsOverWebSocket(tc.chain.rpcUrl, ws),
  });
  const read = pub.getBlockNumber({ cacheTime: 0 });
  ws.close();
  assert.equal(await read, await tc.deployer.public.getBlockNumber({ cacheTime: 0 }));
  assert.equal(ws.live, false);
});
