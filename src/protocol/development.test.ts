/**
 * allowSim is refused outside development chains, checked where the daemons learn the chain id
 * (their start), against a real anvil whose chain id the test switches (anvil_setChainId).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generatePrivateKey } from 'viem/accounts';
import { AgentConfigSchema } from '../agent/config.ts';
import { AgentDaemon } from '../agent/daemon.ts';
import { startTestChain, type TestChain } from '../chain/testing.ts';
import { X25519Identity } from '../crypto/age/index.ts';
import { createLogger, exitCodeFor, isFerryError } from '../kernel/index.ts';
import { Ed25519Signer } from '../net/index.ts';
import { type NodeConfig, NodeConfigSchema } from '../node/config.ts';
import { NodeDaemon } from '../node/daemon.ts';
import {
  assertDevelopmentChain,
  checkAllowSim,
  declaredDevelopmentChains,
  isDevelopmentChain,
  LOCAL_DEVELOPMENT_CHAIN_ID,
} from './development.ts';

const homes: string[] = [];
const newHome = () => {
  const h = mkdtempSync(join(tmpdir(), 'ferry-dev-'));
  homes.push(h);
  return h;
};
after(() => {
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});
const devnetJson = (home: string, info: object) =>
  writeFileSync(join(home, 'devnet.json'), JSON.stringify(info));

type Lines = { lines: string[]; log: ReturnType<typeof createLogger> };
function capture(): Lines {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'info', json: true, write: (l) => lines.push(l) }) };
}
const warned = (c: Lines) =>
  c.lines.some((l) => {
    const o = JSON.parse(l);
    return o.level === 'warn' && /allowSim is on/.test(o.msg ?? o.message ?? '');
  });

test('isDevelopmentChain / assertDevelopmentChain: 31337 or a declared chain id, nothing else', () => {
  assert.equal(isDevelopmentChain(LOCAL_DEVELOPMENT_CHAIN_ID), true);
  assert.equal(isDevelopmentChain(1), false);
  assert.equal(isDevelopmentChain(1, [1]), true);
  assert.equal(isDevelopmentChain(0, [0]), false);
  assert.equal(isDevelopmentChain(Number.NaN), false);
  assert.doesNotThrow(() => assertDevelopmentChain(31337));
  assert.throws(
    () => assertDevelopmentChain(8453, [31338]),
    (e) =>
      isFerryError(e, 'CONFIG_DEVELOPMENT_ONLY') &&
      exitCodeFor(e.code) === 2 &&
      e.hints.some((h) => /got: chain 8453/.test(h)) &&
      e.hints.some((h) => /FERRY_ALLOW_SIM/.test(h)),
  );
});

test('a devnet declares its chain id only with a loopback RPC, and only for that RPC', () => {
  const home = newHome();
  assert.deepEqual(declaredDevelopmentChains({ home }), []);
  devnetJson(home, { chainId: 1, rpcUrl: 'http://127.0.0.1:8545' });
  assert.deepEqual(declaredDevelopmentChains({ home }), [1]);
  assert.deepEqual(declaredDevelopmentChains({ home, rpcUrl: 'http://127.0.0.1:8545/' }), [1]);
  // The attacker's case: an RPC elsewhere claims to be the devnet's chain.
  assert.deepEqual(declaredDevelopmentChains({ home, rpcUrl: 'https://rpc.example.org' }), []);
  devnetJson(home, { chainId: 1, rpcUrl: 'https://mainnet.example.org' });
  assert.deepEqual(declaredDevelopmentChains({ home }), []);
  devnetJson(home, { chainId: '1', rpcUrl: 'http://127.0.0.1:8545' });
  assert.deepEqual(declaredDevelopmentChains({ home }), []);
  writeFileSync(join(home, 'devnet.json'), 'not json');
  assert.deepEqual(declaredDevelopmentChains({ home }), []);
});

test('checkAllowSim: silent when off, refused off development chains, a warning when on', () => {
  const home = newHome();
  const off = capture();
  checkAllowSim({ allowSim: false, chainId: 1, home, log: off.log });
  assert.deepEqual(off.lines, []);
  const on = capture();
  assert.throws(
    () => checkAllowSim({ allowSim: true, chainId: 1, home, log: on.log }),
    (e) => isFerryError(e, 'CONFIG_DEVELOPMENT_ONLY'),
  );
  assert.equal(warned(on), false);
  checkAllowSim({ allowSim: true, chainId: 31337, home, log: on.log });
  assert.equal(warned(on), true);
  devnetJson(home, { chainId: 1, rpcUrl: 'http://127.0.0.1:9545' });
  assert.doesNotThrow(() =>
    checkAllowSim({ allowSim: true, chainId: 1, rpcUrl: 'http://127.0.0.1:9545', home }),
  );
});

let tc: TestChain;
before(async () => {
  tc = await startTestChain();
});
after(async () => {
  await tc?.stop();
});

function agentWith(allowSim: boolean, log: Lines['log']): AgentDaemon {
  return new AgentDaemon({
    config: AgentConfigSchema.parse({
      profile: 'test',
      rpc: tc.chain.rpcUrl,
      contracts: tc.contracts,
      pollIntervalMs: 50,
      allowSim,
    }) as never,
    home: newHome(),
    keys: {
      evmPrivateKey: generatePrivateKey(),
      signer: Ed25519Signer.generate().signer,
      ageIdentity: new X25519Identity(new Uint8Array(randomBytes(32))),
    },
    log,
  });
}

test('daemon start: allowSim on chain 31337 starts with a warning; on chain 1 the agent and the node refuse', async () => {
  // FERRY_HOME without a devnet.json: nothing is declared.
  process.env.FERRY_HOME = newHome();
  const ok = capture();
  const a = agentWith(true, ok.log);
  try {
    const ready = await a.start();
    assert.equal(ready.chainId, 31337);
    assert.equal(warned(ok), true);
  } finally {
    await a.stop();
  }

  await tc.rpc('anvil_setChainId', [1]);
  try {
    const refused = capture();
    const b = agentWith(true, refused.log);
    await assert.rejects(b.start(), (e) => isFerryError(e, 'CONFIG_DEVELOPMENT_ONLY'));
    await b.stop();
    assert.equal(warned(refused), false);
    // Without allowSim the same agent starts on chain 1.
    const c = agentWith(false, capture().log);
    try {
      assert.equal((await c.start()).chainId, 1);
    } finally {
      await c.stop();
    }
    const signer = Ed25519Signer.generate();
    const node = new NodeDaemon({
      config: NodeConfigSchema.parse({
        profile: 'test',
        roles: 'verifier',
        tee: 'sim',
        region: 'DE',
        rpc: tc.chain.rpcUrl,
        contracts: tc.contracts,
        allowSim: '1',
      }) as unknown as NodeConfig,
      home: newHome(),
      keys: { evmPrivateKey: generatePrivateKey(), signer: signer.signer, signingSecretKey: signer.seed },
      log: capture().log,
    });
    await assert.rejects(node.start(), (e) => isFerryError(e, 'CONFIG_DEVELOPMENT_ONLY'));
    await node.stop();
  } finally {
    await tc.rpc('anvil_setChainId', [31337]);
  }
});
