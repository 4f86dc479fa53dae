import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { test } from 'node:test';
import { isFerryError } from '../kernel/index.ts';
import { connect, deployFerry, getStakeTotals, reader, startLocalChain } from './index.ts';

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

test('startLocalChain binds 127.0.0.1, deployFerry deploys, stop closes the port', async () => {
  const chain = await startLocalChain({ blockTime: 1 });
  try {
    assert.equal(chain.chainId, 31337);
    assert.match(chain.rpcUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(chain.accounts.length, 10);
    const clients = await connect({ rpcUrl: chain.rpcUrl, privateKey: chain.accounts[0].privateKey });
    const d = await deployFerry(clients.wallet!, clients.public);
    assert.equal(d.chainId, 31337);
    assert.deepEqual(Object.keys(d.contracts).sort(), ['Assets', 'NodeRegistry', 'Tasks']);
    assert.deepEqual(await getStakeTotals(reader(clients, d.contracts)), {
      executorStake: 0n,
      verifierStake: 0n,
    });
    // Mixed mining: blocks keep coming without traffic.
    const b0 = await clients.public.getBlockNumber({ cacheTime: 0 });
    await new Promise((r) => setTimeout(r, 2200));
    assert.ok((await clients.public.getBlockNumber({ cacheTime: 0 })) > b0);
  } finally {
    await chain.stop();
  }
  assert.equal(await portOpen(chain.port), false);
  await chain.stop();
});

test('abort stops it; bad options are refused; unreachable RPC is CHAIN_UNAVAILABLE', async () => {
  const ac = new AbortController();
  const chain = await startLocalChain({ signal: ac.signal });
  ac.abort();
  await chain.exited;
  assert.equal(await portOpen(chain.port), false);
  await assert.rejects(startLocalChain({ port: 70000 }), (e) => isFerryError(e, 'INVALID_ARGUMENT'));
  // Never the wildcard, never a name: a specific address (the namespace tests give their own).
  for (const host of ['0.0.0.0', '::', 'localhost', '']) {
    await assert.rejects(startLocalChain({ host }), (e) => isFerryError(e, 'INVALID_ARGUMENT'), host);
  }
  await assert.rejects(connect({ rpcUrl: `http://127.0.0.1:${chain.port}` }), (e) =>
    isFerryError(e, 'CHAIN_UNAVAILABLE'),
  );
});
