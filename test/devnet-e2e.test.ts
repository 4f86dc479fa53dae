/**
 * The network end to end on a local devnet (1 executor, 2 verifiers, sim TEE): alice stores and
 * registers a dataset, bob an app (csv-stats), carol creates a task; the nodes seed, claim,
 * attest and vote; the agents check and release keys; the enclave runs; carol decrypts the
 * result. Then `ferry devnet down`-style shutdown leaves no process behind.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { z } from 'zod';
import { ensureExamplesBuilt, examplePath } from '../examples/index.ts';
import { agentHome } from '../src/agent/config.ts';
import { agentStore } from '../src/agent/daemon.ts';
import { AgentState } from '../src/agent/state.ts';
import { developmentPolicy, policyHash } from '../src/attestation/index.ts';
import {
  connect,
  createApp,
  createDataset,
  createTask,
  getFerryEvents,
  getTask,
  type TaskInfo,
  writer,
} from '../src/chain/index.ts';
import { loadProfileSecrets } from '../src/cli/profile/store.ts';
import { decrypt } from '../src/crypto/age/index.ts';
import { isAlive } from '../src/devnet/pidfile.ts';
import { devnetUp } from '../src/devnet/up.ts';
import { createPeerClient } from '../src/net/index.ts';

const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

test('devnet: a task runs end to end and the devnet stops cleanly', { timeout: 240_000 }, async () => {
  await ensureExamplesBuilt();
  const home = mkdtempSync(join(tmpdir(), 'ferry-devnet-'));
  const env = { ...process.env, FERRY_HOME: home, FERRY_LOG_LEVEL: 'info' };
  const devnet = await devnetUp({ home, executors: 1, verifiers: 2, log: quiet, env });
  const pids: number[] = [];
  let lastTask: TaskInfo | null = null;
  try {
    const { info } = devnet;
    assert.equal(info.nodes.length, 3);
    assert.deepEqual(
      info.profiles.map((p) => p.name),
      ['alice', 'bob', 'carol'],
    );
    const devnetJson = JSON.parse(readFileSync(join(home, 'devnet.json'), 'utf8'));
    assert.equal(devnetJson.rpcUrl, info.rpcUrl);
    for (const n of info.nodes) {
      const h = await createPeerClient({ baseUrl: n.endpoint }).json(
        'GET',
        '/v1/health',
        z.object({ ok: z.literal(true) }).passthrough(),
      );
      assert.equal(h.keyId, n.keyId);
    }
    const agentUrl = (name: string) => info.profiles.find((p) => p.name === name)!.agent!;
    const chainFor = async (name: string) =>
      writer(
        await connect({ rpcUrl: info.rpcUrl, privateKey: loadProfileSecrets(home, name).evmPrivateKey }),
        info.contracts,
      );

    // alice: the dataset, encrypted into her agent's store, registered on chain.
    const alice = loadProfileSecrets(home, 'alice');
    const aliceState = AgentState.open(join(agentHome('alice', env), 'state.db'));
    const csv = 'temp,city\n10,Berlin\n14,Paris\n21,Rome\n';
    const ds = await agentStore(agentHome('alice', env), aliceState, alice.ageIdentity).add(
      Readable.from([Buffer.from(csv)]),
      { kind: 'dataset', name: 'cities.csv' },
    );
    const { datasetId } = await createDataset(await chainFor('alice'), {
      ciphertextHash: ds.ciphertextSha256,
      endpoint: agentUrl('alice'),
      price: 0n,
      policy: {
        allowedApps: 'any',
        allowedRegions: ['DE'],
        teeKinds: ['sim'],
        // tau above the total stake units: every verifier holds all its units as seats.
        tau: 60_000,
        threshold: 1000,
        maxUses: 0,
        expiresAt: 0,
        requesters: [],
        appraisalPolicyHash: policyHash(developmentPolicy()),
      },
    });
    aliceState.markAssetRegistered(ds.id, datasetId);
    aliceState.close();

    // bob: the app.
    const bob = loadProfileSecrets(home, 'bob');
    const bobState = AgentState.open(join(agentHome('bob', env), 'state.db'));
    const app = await agentStore(agentHome('bob', env), bobState, bob.ageIdentity).add(
      examplePath('csv-stats'),
      {
        kind: 'app',
        name: 'csv-stats.wasm',
      },
    );
    const { appId } = await createApp(await chainFor('bob'), {
      measurement: app.measurement!,
      ciphertextHash: app.ciphertextSha256,
      endpoint: agentUrl('bob'),
      price: 0n,
    });
    bobState.markAssetRegistered(app.id, appId);
    bobState.close();

    // carol: the task.
    const carol = loadProfileSecrets(home, 'carol');
    const carolChain = await chainFor('carol');
    const now = Number((await carolChain.public.getBlock()).timestamp);
    const { taskId } = await createTask(carolChain, {
      appId,
      datasetIds: [datasetId],
      inputHash: createHash('sha256').update('').digest(),
      resultRecipient: carol.ageIdentity.publicKey,
      inputLocation: '',
      fee: 10n ** 15n,
      expiresAt: now + 600,
      claimWindow: 3,
      evidenceWindow: 30,
      voteWindow: 30,
      runWindow: 60,
    });

    const deadline = Date.now() + 150_000;
    for (;;) {
      lastTask = await getTask(carolChain, taskId);
      if (lastTask?.status === 'completed' || lastTask?.status === 'failed' || lastTask?.status === 'expired')
        break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(lastTask?.status, 'completed', `task ended as ${lastTask?.status}; logs in ${home}/logs`);

    // The result: fetched from the executor (public), decrypted by carol only.
    const events = await getFerryEvents(
      carolChain,
      lastTask!.createdBlock,
      await carolChain.public.getBlockNumber(),
    );
    const done = events.find((e) => e.eventName === 'TaskCompleted' && e.args.taskId === taskId)!;
    const loc = String(done.args.resultLocation);
    const base = loc.replace(/\/v1\/tasks\/.*$/, '');
    const ciphertext = await createPeerClient({ baseUrl: base }).bytes('GET', loc.slice(base.length));
    assert.equal(`0x${createHash('sha256').update(ciphertext).digest('hex')}`, String(done.args.resultHash));
    const out = JSON.parse(Buffer.from(await decrypt([carol.ageIdentity], ciphertext)).toString('utf8'));
    assert.equal(out.column, 'temp');
    assert.equal(out.count, 3);
    assert.equal(out.mean, 15);
    assert.equal(out.min, 10);
    assert.equal(out.max, 21);
  } finally {
    for (const c of devnet.children()) if (c.pid) pids.push(c.pid);
    await devnet.stop();
    if (lastTask?.status !== 'completed') {
      for (const f of ['executor-1', 'verifier-1', 'verifier-2', 'agent-alice', 'agent-bob']) {
        process.stderr.write(
          `--- ${f}\n${readFileSync(join(home, 'logs', `${f}.log`), 'utf8').slice(-3000)}\n`,
        );
      }
    }
    rmSync(home, { recursive: true, force: true });
  }
  assert.ok(pids.every((p) => !isAlive(p)));
});
