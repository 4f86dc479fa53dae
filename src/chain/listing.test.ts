/**
 * listNodes on a real anvil whose registry was deployed late (after many empty blocks): the scan
 * starts at the registry's deployment block, found from the chain, and still lists every node
 * (including one registered in the deployment's own neighbourhood); where past state cannot be
 * read it starts at block 0 and misses nothing either.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { PublicClient } from 'viem';
import { isFerryError } from '../kernel/index.ts';
import { connect, writer } from './client.ts';
import { deployFerry } from './deploy.ts';
import { deploymentBlock, listNodes } from './listing.ts';
import { type LocalChain, startLocalChain } from './local.ts';
import { registerNode } from './nodes.ts';
import type { ChainReader, ChainWriter } from './types.ts';
import { randomHex } from './testing.ts';

let chain: LocalChain;
let deployer: ChainWriter;
let registryBlock: bigint;

async function rpc(method: string, params: unknown[] = []): Promise<unknown> {
  const res = await fetch(chain.rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return ((await res.json()) as { result?: unknown }).result;
}

before(async () => {
  chain = await startLocalChain();
  await rpc('anvil_mine', ['0x3e8']); // 1000 blocks before Ferry exists
  const clients = await connect({
    rpcUrl: chain.rpcUrl,
    privateKey: chain.accounts[0].privateKey,
    chainId: chain.chainId,
  });
  const dep = await deployFerry(clients.wallet!, clients.public);
  deployer = writer(clients, dep.contracts);
  // The block that holds the registry's creation: its code appears at the end of that block.
  registryBlock = -1n;
  for (let b = dep.blockNumber; b >= 0n; b--) {
    const code = await clients.public.getCode({ address: dep.contracts.NodeRegistry, blockNumber: b });
    if (!code || code === '0x') break;
    registryBlock = b;
  }
  assert.ok(registryBlock > 1000n, 'the registry was deployed after the empty blocks');
  for (let i = 1; i <= 3; i++) {
    const c = await connect({
      rpcUrl: chain.rpcUrl,
      privateKey: chain.accounts[i].privateKey,
      chainId: chain.chainId,
    });
    await registerNode(writer(c, dep.contracts), {
      roles: i === 1 ? ['executor'] : ['verifier'],
      region: 'DE',
      teeKinds: ['sim'],
      vrfPublicKey: randomHex(32),
      signingKey: randomHex(32),
      endpoint: `http://127.0.0.1:1/n${i}`,
      stake: 10n ** 18n,
    });
    await rpc('anvil_mine', ['0x5']);
  }
});
after(async () => {
  await chain?.stop();
});

/** The reader with its public client's getLogs ranges recorded (every call goes to anvil). */
function recorded(c: ChainReader, opts: { noHistory?: boolean } = {}): { c: ChainReader; ranges: bigint[] } {
  const ranges: bigint[] = [];
  const pub = new Proxy(c.public, {
    get(target, prop, receiver) {
      if (prop === 'getContractEvents') {
        return (args: { fromBlock: bigint }) => {
          ranges.push(args.fromBlock);
          return target.getContractEvents(args as never);
        };
      }
      if (prop === 'getCode' && opts.noHistory) {
        // An endpoint that prunes state: only the head can be read.
        return async (args: { address: `0x${string}`; blockNumber: bigint }) => {
          const head = await target.getBlockNumber({ cacheTime: 0 });
          if (args.blockNumber !== head) throw new Error('missing trie node');
          return target.getCode(args);
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  }) as PublicClient;
  return { c: { public: pub, contracts: c.contracts }, ranges };
}

test('deploymentBlock: the block of the registry creation, found by bisection', async () => {
  assert.equal(await deploymentBlock(deployer, deployer.contracts.NodeRegistry), registryBlock);
  const r = recorded(deployer, { noHistory: true });
  assert.equal(await deploymentBlock(r.c, r.c.contracts.NodeRegistry), 0n, 'no history: from genesis');
  await assert.rejects(deploymentBlock(deployer, '0x000000000000000000000000000000000000dEaD'), (e) =>
    isFerryError(e, 'CHAIN_NOT_FOUND'),
  );
});

test('listNodes scans from the registry deployment and lists every node once', async () => {
  const r = recorded(deployer);
  const nodes = await listNodes(r.c);
  assert.deepEqual(
    nodes.map((n) => n.address),
    chain.accounts.slice(1, 4).map((a) => a.address),
  );
  assert.deepEqual(r.ranges, [registryBlock]);
  // From genesis (no history): the same nodes.
  const g = recorded(deployer, { noHistory: true });
  assert.deepEqual(
    (await listNodes(g.c)).map((n) => n.address),
    nodes.map((n) => n.address),
  );
  assert.deepEqual(g.ranges, [0n]);
});
