/**
 * The network end to end on a devnet with `--tee tpm2`: the executor has its own swtpm, its AK
 * activated by the devnet's activator; the dataset's appraisal policy is the production-settings
 * policy pinning this tree's runtime (`ferry measure runtime --policy-out`: tpm2 only, PCR 23); the verifiers and the agents appraise the tpm2 evidence with the
 * swtpm CAs and the activator key; the task completes and carol decrypts the result; `ferry
 * receipt verify` re-appraises the tpm2 evidence under that policy with the devnet's
 * trust (devnet.json) or trust given by flags or environment, and fails without it; carol's
 * `ferry task run --wait` completes and verifies a second task.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { ensureExamplesBuilt, examplePath } from '../examples/index.ts';
import { runtimePolicy } from '../src/enclave/release.ts';
import { agentHome } from '../src/agent/config.ts';
import { agentStore } from '../src/agent/daemon.ts';
import { AgentState } from '../src/agent/state.ts';
import {
  expectedRuntimePcr,
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
import { loadProfileSecrets } from '../src/profile/index.ts';
import { decrypt } from '../src/crypto/age/index.ts';
import { isAlive } from '../src/devnet/pidfile.ts';
import { devnetUp } from '../src/devnet/up.ts';
import { runtimeMeasurement as enclaveRuntimeMeasurement } from '../src/enclave/index.ts';
import { encodeCanonical, fromHex, toHex } from '../src/kernel/index.ts';
import { createPeerClient } from '../src/net/index.ts';
import { type CliRun, chainFor, dumpLogs, ferry, type Net, quiet } from './helpers/devnet.ts';
import { decodeEvidence, decodeSignedAttemptResult } from '../src/protocol/index.ts';
import { requireTool } from './helpers/tools.ts';

test('devnet --tee tpm2: each executor has its own swtpm; a task completes with tpm2 evidence', {
  timeout: 180_000,
}, async (t) => {
  if (!['swtpm', 'swtpm_setup', 'swtpm_ioctl', 'tpm2_quote'].every((n) => requireTool(t, n))) return;
  await ensureExamplesBuilt();
  const home = mkdtempSync(join(tmpdir(), 'ferry-devnet-tpm2-'));
  const env = {
    ...process.env,
    FERRY_HOME: home,
    FERRY_LOG_LEVEL: process.env.FERRY_TEST_LOG_LEVEL ?? 'info',
  };
  const POLICY = runtimePolicy(await enclaveRuntimeMeasurement(), 'runtime-pinned');
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

    // alice's dataset (production settings pinning the runtime, tpm2 only) and bob's app.
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
        appraisalPolicyDocument: encodePolicyDocument(POLICY),
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
      teeKinds: ['tpm2'],
      appraisalPolicyDocument: encodePolicyDocument(POLICY),
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
      const signed = decodeSignedAttemptResult(bytes, fromHex(n.keyId, 'keyId', 32));
      assert.equal(signed.result.accepted, true);
      // One entry per policy applied: the app's and the dataset's (both the runtime-pinned one).
      assert.deepEqual(
        signed.result.policies.map((p) => p.assetKind),
        ['app', 'dataset'],
      );
      for (const { result: r } of signed.result.policies) {
        assert.equal(r.kind, 'tpm2');
        assert.equal(r.accepted, true);
        assert.equal(r.claims.akProof, 'activation');
        assert.equal(toHex(r.policyHash), toHex(policyHash(POLICY)));
      }
    }

    // The result: decrypted by carol.
    const loc = String(done.args.resultLocation);
    const base = loc.replace(/\/v1\/tasks\/.*$/, '');
    const ciphertext = await createPeerClient({ baseUrl: base }).bytes('GET', loc.slice(base.length));
    assert.equal(`0x${createHash('sha256').update(ciphertext).digest('hex')}`, String(done.args.resultHash));
    const out = JSON.parse(Buffer.from(await decrypt([carol.ageIdentity], ciphertext)).toString('utf8'));
    assert.deepEqual([out.column, out.count, out.mean, out.min, out.max], ['temp', 3, 15, 10, 21]);

    // The auditor: `ferry receipt verify` and `ferry task run --wait` take the tpm2 trust from
    // devnet.json (the swtpm CA files and the activator key), or from --tpm2-cas /
    // --tpm2-activators or FERRY_TPM2_CAS / FERRY_TPM2_ACTIVATORS away from the devnet.
    const id = String(taskId);
    const appraisal = (r: CliRun) =>
      (r.json.checks ?? []).find((x: { name: string }) => x.name === 'evidence-appraisal');
    const away = { ...env, FERRY_HOME: mkdtempSync(join(tmpdir(), 'ferry-auditor-')) };
    const where = ['--rpc', info.rpcUrl, '--contracts', JSON.stringify(info.contracts)];
    const cas = info.tpm2.cas.join(',');
    try {
      // Without that trust (a home without devnet.json) the evidence cannot be appraised.
      const untrusted = await ferry(['receipt', 'verify', id, ...where], away);
      assert.equal(untrusted.code, 3, untrusted.stdout);
      assert.equal(untrusted.json.verified, false);
      assert.equal(appraisal(untrusted).ok, false);
      // A malformed activator key or an unreadable CA file is a usage error, not a failed audit.
      const badHex = await ferry(['receipt', 'verify', id, ...where, '--tpm2-activators', 'xyz'], away);
      assert.equal(badHex.code, 2, badHex.stdout);
      assert.equal(badHex.json.error.code, 'INVALID_HEX');
      const noFile = await ferry(
        ['receipt', 'verify', id, ...where, '--tpm2-cas', join(away.FERRY_HOME, 'missing.pem')],
        away,
      );
      assert.equal(noFile.code, 2, noFile.stdout);
      assert.equal(noFile.json.error.code, 'CONFIG_INVALID');

      await t.test(
        'with that trust the audit re-appraises the tpm2 evidence under the pinned production policy',
        async () => {
          const onDevnet = await ferry(['receipt', 'verify', id], env);
          assert.equal(onDevnet.code, 0, onDevnet.stdout + onDevnet.stderr);
          assert.equal(onDevnet.json.verified, true);
          assert.equal(appraisal(onDevnet).ok, true);
          assert.match(appraisal(onDevnet).detail, /accepted under the runtime-pinned policy \(kind tpm2/);
          const byFlags = await ferry(
            ['receipt', 'verify', id, ...where, '--tpm2-cas', cas, '--tpm2-activators', info.tpm2!.activator],
            away,
          );
          assert.equal(byFlags.code, 0, byFlags.stdout + byFlags.stderr);
          assert.match(appraisal(byFlags).detail, /accepted under the runtime-pinned policy \(kind tpm2/);
          const byEnv = await ferry(['receipt', 'verify', id, ...where], {
            ...away,
            FERRY_TPM2_CAS: cas,
            FERRY_TPM2_ACTIVATORS: info.tpm2!.activator,
          });
          assert.equal(byEnv.code, 0, byEnv.stdout + byEnv.stderr);
          // Another activator: nothing proves the AK (the CA alone does not).
          const otherActivator = await ferry(
            ['receipt', 'verify', id, ...where, '--tpm2-cas', cas, '--tpm2-activators', 'ab'.repeat(32)],
            away,
          );
          assert.equal(otherActivator.code, 3, otherActivator.stdout);
          assert.match(appraisal(otherActivator).detail, /ATTESTATION_AK_NOT_PROVEN/);
          // carol's `task run --wait` audits a second task with the devnet's tpm2 trust.
          const run = await ferry(
            [
              'task',
              'run',
              '--app',
              String(appId),
              '--dataset',
              String(datasetId),
              '--wait',
              '--profile',
              'carol',
            ],
            env,
          );
          assert.equal(run.json.status, 'completed', run.stdout + run.stderr);
          assert.equal(run.code, 0, run.stdout + run.stderr);
          assert.equal(run.json.verified, true);
          assert.match(appraisal(run).detail, /accepted under the runtime-pinned policy \(kind tpm2/);
        },
      );
    } finally {
      rmSync(away.FERRY_HOME, { recursive: true, force: true });
    }
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
