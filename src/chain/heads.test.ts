/**
 * New-head subscriptions against a real anvil: notifications flow, the subscription comes back
 * after the endpoint restarts (polling covers the gap), and close() ends it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLocalChain } from './local.ts';
import { subscribeNewHeads, wsUrlFor } from './heads.ts';

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function mine(rpcUrl: string): Promise<void> {
  await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'evm_mine', params: [] }),
  });
}

test('new heads arrive, the subscription survives an endpoint restart, close() ends it', async () => {
  let chain = await startLocalChain();
  const heads = subscribeNewHeads(wsUrlFor(chain.rpcUrl), { retryMs: 50 });
  const got: bigint[] = [];
  heads.subscribe((n) => got.push(n));
  try {
    await until(() => heads.live);
    await mine(chain.rpcUrl);
    await until(() => got.length === 1);
    assert.equal(got[0], 1n);
    await chain.stop();
    await until(() => !heads.live);
    chain = await startLocalChain({ port: chain.port });
    await until(() => heads.live);
    await mine(chain.rpcUrl);
    await mine(chain.rpcUrl);
    await until(() => got.length === 3);
    assert.deepEqual(got.slice(1), [1n, 2n], 'the new chain numbers its own blocks');
    heads.close();
    assert.equal(heads.live, false);
    await mine(chain.rpcUrl);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got.length, 3, 'nothing after close');
  } finally {
    heads.close();
    await chain.stop();
  }
});
