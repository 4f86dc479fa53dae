/**
 * The owner's assets as library calls, on a real anvil: a dataset added is encrypted into the
 * agent store and registered with its policy; a registration the contract refuses leaves
 * nothing in the store; a revoked dataset is marked in the store (and only a held one).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { PRODUCTION_POLICY } from '../attestation/index.ts';
import { type ChainWriter, getDataset, revokeDataset } from '../chain/index.ts';
import { startTestChain, type TestChain } from '../chain/testing.ts';
import { isFerryError, toHex } from '../kernel/index.ts';
import { createProfile, loadProfileSecrets, type ProfileSecrets } from '../profile/index.ts';
import { addDataset, markDatasetRevoked } from './assets.ts';
import { agentHome } from './config.ts';
import { AgentState } from './state.ts';

let tc: TestChain;
let owner: ChainWriter;
let home: string;
let env: NodeJS.ProcessEnv;
let secrets: ProfileSecrets;

before(async () => {
  tc = await startTestChain();
  owner = tc.deployer;
  home = mkdtempSync(join(tmpdir(), 'ferry-assets-'));
  env = { FERRY_HOME: home };
  createProfile(home, 'alice', { evmPrivateKey: tc.chain.accounts[0].privateKey });
  secrets = loadProfileSecrets(home, 'alice');
});
after(async () => {
  await tc?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

function params(over: Partial<Parameters<typeof addDataset>[0]> = {}): Parameters<typeof addDataset>[0] {
  return {
    env,
    profile: 'alice',
    secrets,
    chain: owner,
    endpoint: 'http://127.0.0.1:1/agent',
    source: Readable.from([Buffer.from('a,b\n1,2\n')]),
    name: 'numbers.csv',
    regions: ['DE'],
    allowApps: 'any',
    tee: ['sim'],
    tau: 10,
    threshold: 7,
    maxUses: 0,
    expiresAt: 0,
    requesters: [],
    policy: PRODUCTION_POLICY,
    price: 0n,
    ...over,
  };
}

function assets(): ReturnType<AgentState['listAssets']> {
  const state = AgentState.open(join(agentHome('alice', env), 'state.db'));
  try {
    return state.listAssets('dataset');
  } finally {
    state.close();
  }
}

test('addDataset: encrypted into the agent store and registered with its policy', async () => {
  const added = await addDataset(params());
  const onChain = await getDataset(owner, added.datasetId);
  assert.ok(onChain);
  assert.equal(onChain.ciphertextHash.slice(2).toLowerCase(), added.ciphertextHash);
  assert.equal(onChain.endpoint, 'http://127.0.0.1:1/agent');
  assert.equal(onChain.policy.appraisalPolicyHash.slice(2).toLowerCase(), added.appraisalPolicyHash);
  const held = assets().find((a) => a.id === added.localId);
  assert.equal(held?.chainId, added.datasetId.toString());
  assert.equal(held?.status, 'registered');
  assert.equal(toHex(held.ciphertextSha256), added.ciphertextHash);
});

test('a registration the contract refuses leaves nothing in the store', async () => {
  const before = assets().length;
  await assert.rejects(
    addDataset(params({ threshold: 11 })),
    (e) => isFerryError(e) && e.code.startsWith('CHAIN_'),
  );
  assert.equal(assets().length, before);
});

test('markDatasetRevoked marks only a dataset the store holds', async () => {
  const added = await addDataset(params({ source: Readable.from([Buffer.from('x\n')]) }));
  await revokeDataset(owner, added.datasetId);
  assert.equal(markDatasetRevoked(env, 'alice', added.datasetId), true);
  assert.equal(assets().find((a) => a.id === added.localId)?.status, 'revoked');
  assert.equal(markDatasetRevoked(env, 'alice', added.datasetId + 100n), false);
  assert.equal(markDatasetRevoked({ FERRY_HOME: join(home, 'nowhere') }, 'alice', added.datasetId), false);
});
