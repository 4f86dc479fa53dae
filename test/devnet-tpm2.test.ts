/**
 * The network end to end on a devnet with `--tee tpm2`: the executor has its own swtpm, its AK
 * activated by the devnet's activator; the dataset's appraisal policy is the production policy
 * (tpm2 allowed, sim not); the verifiers and the agents appraise the tpm2 evidence with the
 * swtpm CAs and the activator key; the task completes and carol decrypts the result.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { ensureExamplesBuilt, examplePath } from '../examples/index.ts';
import { agentHome } from '../src/agent/config.ts';
import { agentStore } from '../src/agent/daemon.ts';
import { AgentState } from '../src/agent/state.ts';
import {
  decodeSignedResult,
  expectedRuntimePcr,
  PRODUCTION_POLICY,
  encodePolicyDocument,
  policyHash,
  runtimeMeasurement as tpm2RuntimeMeasurement,
} from '../src/attestation/index.ts';
import {
  createApp,
  createDataset,
  createTask,
  getFerryEvents,
  getNode,
  getTask,
  type TaskInfo,
} from '../src/chain/index.ts';
import { loadProfileSecrets } from '../src/cli/profile/store.ts';
import { decrypt } from '../src/crypto/age/index.ts';
import { isAlive } from '../src/devnet/pidfile.ts';
import { devnetUp } from '../src/devnet/up.ts';
import { runtimeMeasurement as enclaveRuntimeMeasurement } from '../src/enclave/index.ts';
import { encodeCanonical, fromHex, toHex } from '../src/kernel/index.ts';
import { createPeerClient } from '../src/net/index.ts';
import { chainFor, dumpLogs, type Net, quiet } from './helpers/devnet.ts';
import { decodeEvidence } from '../src/task/index.ts';
import { requireTool } from './helpers/tools.ts';

test('devnet --tee tpm2: each executor has its own swtpm; a task completes with tpm2 evidence', {
  timeout: 120_000,
}, async (t) => {
  if (!['swtpm', 'swtpm_setup', 'swtpm_ioctl', 'tpm2_quote'].every((n) => requireTool(t, n))) return;
  await ensureExamplesBuilt();
  const home = mkdtempSync(join(tmpdir(), 'ferry-devnet-tpm2-'));
  const env = {
    ...process.env,
    FERRY_HOME: home,
    FERRY_LOG_LEVEL: process.env.FERRY_TEST_LOG_LEVEL ?? 'info',
  };
  const devnet = await devnetUp({ home, executors: 1, verifiers: 2, tee: 'tpm2', log: quiet, env });
  const net: Net = { devnet, home, env };
  const pids: number[] = [];
  let swtpmDirs: string[] = [];
  let ok = false;
  try {
    const { info } = devnet;
    assert.ok(info.tpm2, 'devnet.json names the tpm2 trust');
    assert.match(info.tpm2.activator, /^[0-9a-f]{64}$/);
    assert.equal(info.tpm2.cas.length, 1);
    const executor = info.nodes.find((n) => n.roles.includes('executor'))!;
    assert.equal(executor.tee, 'tpm2');
    const reader = await chainFor(net, 'carol');
    assert.deepEqual((await getNode(reader, executor.address as `0x${string}`))?.teeKinds, ['tpm2']);
    // The executor's TPM: a swtpm on 127.0.0.1 (its state directory lives while the devnet runs).
    const log = readFileSync(join(home, 'logs', `${executor.name}.log`), 'utf8');
    assert.match(log, /runtime measured into PCR 23/);
    const tpms = devnet.tpms();
    assert.deepEqual(
      tpms.map((x) => x.node),
      [executor.name],
    );
    assert.match(tpms[0].tcti, /^swtpm:host=127\.0\.0\.1,port=\d+$/);
    assert.ok(existsSync(tpms[0].dir));
    swtpmDirs = tpms.map((x) => x.dir);

    // alice's dataset (production policy, tpm2 only) and bob's app.
    const agentUrl = (name: string) => info.profiles.find((p) => p.name === name)!.agent!;
    const alice = loadProfileSecrets(home, 'alice');
    const aliceState = AgentState.open(join(agentHome('alice', env), 'state.db'));
    const ds = await agentStore(agentHome('alice', env), aliceState, alice.ageIdentity).add(
      Readable.from([Buffer.from('temp,city\n10,Berlin\n14,Paris\n21,Rome\n')]),
      { kind: 'dataset', name: 'cities.csv' },
    );
    const { datasetId } = await createDataset(await chainFor(net, 'alice'), {
      ciphertextHash: ds.ciphertextSha256,
      endpoint: agentUrl('alice'),
      price: 0n,
      policy: {
        allowedApps: 'any',
        allowedRegions: ['DE'],
        teeKinds: ['tpm2'],
        tau: 60_000,
        threshold: 1000,
        maxUses: 0,
        expiresAt: 0,
        requesters: [],
        appraisalPolicyDocument: encodePolicyDocument(PRODUCTION_POLICY),
      },
    });
    aliceState.markAssetRegistered(ds.id, datasetId);
    aliceState.close();
    const bob = loadProfileSecrets(home, 'bob');
    const bobState = AgentState.open(join(agentHome('bob', env), 'state.db'));
    const app = await agentStore(agentHome('bob', env), bobState, bob.ageIdentity).add(
      examplePath('csv-stats'),
      { kind: 'app', name: 'csv-stats.wasm' },
    );
    const { appId } = await createApp(await chainFor(net, 'bob'), {
      measurement: app.measurement!,
      ciphertextHash: app.ciphertextSha256,
      endpoint: agentUrl('bob'),
      price: 0n,
    });
    bobState.markAssetRegistered(app.id, appId);
    bobState.close();

    // carol's task.
    const carol = loadProfileSecrets(home, 'carol');
    const c = await chainFor(net, 'carol');
    const now = Number((await c.public.getBlock()).timestamp);
    const { taskId } = await createTask(c, {
      appId,
      datasetIds: [datasetId],
      // No arguments: the hash of the empty canonical array (§15).
      inputHash: createHash('sha256').update(encodeCanonical([])).digest(),
      resultRecipient: carol.ageIdentity.publicKey,
      inputLocation: '',
      fee: 10n ** 15n,
      expiresAt: now + 600,
      claimWindow: 3,
      evidenceWindow: 30,
      voteWindow: 30,
      runWindow: 60,
    });
    let task: TaskInfo | null = null;
    const deadline = Date.now() + 90_000;
    for (;;) {
      task = await getTask(c, taskId);
      if (task?.status === 'completed' || task?.status === 'failed' || task?.status === 'expired') break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(task?.status, 'completed', `task ended as ${task?.status}`);
    assert.equal(task?.attempt, 1, 'the first attempt passed');
    const events = await getFerryEvents(c, task!.createdBlock, await c.public.getBlockNumber());
    const done = events.find((e) => e.eventName === 'TaskCompleted' && e.args.taskId === taskId);
    assert.ok(done);

    // The evidence on the executor endpoint: a TPM quote, PCR 23 holding the runtime measurement.
    const ex = createPeerClient({ baseUrl: executor.endpoint });
    const evidenceBytes = await ex.bytes('GET', `/v1/tasks/${taskId}/attempts/1/evidence`);
    assert.equal(`0x${createHash('sha256').update(evidenceBytes).digest('hex')}`, task!.evidenceHash);
    const evidence = decodeEvidence(evidenceBytes);
    assert.equal(evidence.kind, 'tpm2');
    assert.ok(evidence.body.activation, 'the evidence carries the activation record');
    const pcrs = evidence.body.pcrs as Record<string, Record<string, Uint8Array>>;
    const m = tpm2RuntimeMeasurement([
      { name: 'ferry/enclave-runtime', content: await enclaveRuntimeMeasurement() },
    ]);
    assert.equal(toHex(pcrs.sha256['23']), toHex(expectedRuntimePcr(m)));

    // Each verifier appraised it as tpm2 with the AK proven by activation, and passed.
    const votes = events.filter((e) => e.eventName === 'VoteCast' && e.args.taskId === taskId);
    assert.ok(votes.length >= 1);
    for (const v of votes) {
      assert.equal(v.args.pass, true);
      const n = info.nodes.find((x) => x.address.toLowerCase() === String(v.args.verifier).toLowerCase())!;
      const bytes = await createPeerClient({ baseUrl: n.endpoint }).bytes(
        'GET',
        `/v1/tasks/${taskId}/attempts/1/attestation-result`,
      );
      const signed = decodeSignedResult(bytes, fromHex(n.keyId, 'keyId', 32));
      const r = signed.result;
      assert.equal(r.kind, 'tpm2');
      assert.equal(r.accepted, true);
      assert.equal(r.claims.akProof, 'activation');
      assert.equal(toHex(r.policyHash), toHex(policyHash(PRODUCTION_POLICY)));
    }

    // The result: decrypted by carol.
    const loc = String(done.args.resultLocation);
    const base = loc.replace(/\/v1\/tasks\/.*$/, '');
    const ciphertext = await createPeerClient({ baseUrl: base }).bytes('GET', loc.slice(base.length));
    assert.equal(`0x${createHash('sha256').update(ciphertext).digest('hex')}`, String(done.args.resultHash));
    const out = JSON.parse(Buffer.from(await decrypt([carol.ageIdentity], ciphertext)).toString('utf8'));
    assert.deepEqual([out.column, out.count, out.mean, out.min, out.max], ['temp', 3, 15, 10, 21]);
    ok = true;
  } finally {
    for (const ch of devnet.children()) if (ch.pid) pids.push(ch.pid);
    if (!ok) dumpLogs(net);
    await devnet.stop();
    rmSync(home, { recursive: true, force: true });
  }
  assert.ok(
    pids.every((p) => !isAlive(p)),
    'every supervised process has exited',
  );
  assert.ok(
    swtpmDirs.every((d) => !existsSync(d)),
    'the swtpms are stopped and their directories removed',
  );
});
