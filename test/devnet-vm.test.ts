/**
 * A devnet task end to end with `--tee vm` (docs/protocol.md §17.5): the devnet builds (or
 * reuses) the node image, measures it and writes its policy; the executor provisions a vTPM,
 * boots its VM at start and runs the attempt's enclave inside it; the dataset and the app are
 * published with the image's measured policy (PCR 0-7 and 9 pinned); the verifiers appraise
 * the guest's tpm2 quote against it and pass it; carol decrypts the result. When the devnet
 * stops, no QEMU and no swtpm of it is left.
 *
 * Very slow under emulation (an image build, a 1-5 minute TCG boot, minutes per enclave on a
 * loaded host): e2e tier. Skipped with the reason only where QEMU cannot run at all.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { ensureExamplesBuilt, examplePath } from '../examples/index.ts';
import { agentHome } from '../src/agent/config.ts';
import { agentStore } from '../src/agent/daemon.ts';
import { AgentState } from '../src/agent/state.ts';
import { encodePolicyDocument, parsePolicy } from '../src/attestation/index.ts';
import { createApp, createDataset, createTask, getNode, getTask, type TaskInfo } from '../src/chain/index.ts';
import { decrypt } from '../src/crypto/age/index.ts';
import { devnetUp } from '../src/devnet/up.ts';
import { canBoot } from '../src/image/index.ts';
import { encodeCanonical, toHex } from '../src/kernel/index.ts';
import { createPeerClient } from '../src/net/index.ts';
import { loadProfileSecrets } from '../src/profile/index.ts';
import { decodeEvidence } from '../src/protocol/index.ts';
import { chainFor, dumpLogs, type Net, quiet } from './helpers/devnet.ts';
import { requireTool } from './helpers/tools.ts';

/** QEMU and swtpm processes whose command line names `dir`. */
function vmProcessesUnder(dir: string): string[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  } catch {
    return [];
  }
  return out
    .split('\n')
    .filter((l) => /qemu-system|swtpm/.test(l) && l.includes(dir))
    .map((l) => l.trim());
}

test('devnet --tee vm: a task runs in the executor VM, its measured-boot evidence appraised against the image policy', {
  timeout: 3_600_000,
}, async (t) => {
  if (!canBoot()) {
    if (process.env.CI) throw new Error('qemu-system-x86_64, swtpm and OVMF are required in CI');
    return t.skip('QEMU, swtpm or OVMF is not installed: no VM can run here');
  }
  if (!['apt-get', 'dpkg-deb', 'swtpm_setup', 'tpm2_createak'].every((n) => requireTool(t, n))) return;
  await ensureExamplesBuilt();
  const home = mkdtempSync(join(tmpdir(), 'ferry-devnet-vm-'));
  const env = {
    ...process.env,
    FERRY_HOME: home,
    FERRY_LOG_LEVEL: process.env.FERRY_TEST_LOG_LEVEL ?? 'info',
  };
  const t0 = Date.now();
  const devnet = await devnetUp({
    home,
    executors: 1,
    verifiers: 2,
    tee: 'vm',
    vmImage: process.env.FERRY_TEST_VM_IMAGE,
    log: quiet,
    env,
  });
  t.diagnostic(`devnet up with the executor's VM booted: ${Date.now() - t0} ms`);
  const net: Net = { devnet, home, env };
  let ok = false;
  try {
    const { info } = devnet;
    assert.ok(info.vm && info.tpm2, 'devnet.json names the image, its policy and the tpm2 trust');
    const POLICY = parsePolicy(JSON.parse(readFileSync(info.vm.policy, 'utf8')));
    const executor = info.nodes.find((n) => n.roles.includes('executor'))!;
    assert.equal(executor.tee, 'vm');
    const reader = await chainFor(net, 'carol');
    assert.deepEqual((await getNode(reader, executor.address as `0x${string}`))?.teeKinds, ['tpm2']);
    const log = readFileSync(join(home, 'logs', `${executor.name}.log`), 'utf8');
    assert.match(log, /vm accelerator/);
    assert.match(log, /vm ready/);

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

    const carol = loadProfileSecrets(home, 'carol');
    const c = await chainFor(net, 'carol');
    const now = Number((await c.public.getBlock()).timestamp);
    const t1 = Date.now();
    // Windows for an emulated guest on a loaded host: creating the enclave takes minutes.
    const { taskId } = await createTask(c, {
      appId,
      datasetIds: [datasetId],
      inputHash: createHash('sha256').update(encodeCanonical([])).digest(),
      resultRecipient: carol.ageIdentity.publicKey,
      inputLocation: '',
      fee: 10n ** 15n,
      expiresAt: now + 3000,
      claimWindow: 10,
      evidenceWindow: 900,
      voteWindow: 120,
      runWindow: 900,
    });
    let task: TaskInfo | null = null;
    const deadline = Date.now() + 2_700_000;
    for (;;) {
      task = await getTask(c, taskId);
      if (task?.status === 'completed' || task?.status === 'failed' || task?.status === 'expired') break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    t.diagnostic(`task created -> ${task?.status}: ${Date.now() - t1} ms`);
    assert.equal(task?.status, 'completed', `task ended as ${task?.status}`);

    // The evidence: a quote by the guest's TPM over PCR 0-7 and 9, equal to the measured values.
    const ex = createPeerClient({ baseUrl: executor.endpoint });
    const evidence = decodeEvidence(await ex.bytes('GET', `/v1/tasks/${taskId}/attempts/1/evidence`));
    assert.equal(evidence.kind, 'tpm2');
    const pcrs = (evidence.body.pcrs as Record<string, Record<string, Uint8Array>>).sha256;
    assert.deepEqual(Object.keys(pcrs).sort(), ['0', '1', '2', '3', '4', '5', '6', '7', '9']);
    const pinned = POLICY.referenceValues?.tpm2?.pcrs?.sha256 ?? {};
    for (const [i, v] of Object.entries(pinned)) assert.deepEqual([toHex(pcrs[i])], v, `PCR ${i}`);

    // The result, decrypted by carol.
    const { getFerryEvents } = await import('../src/chain/index.ts');
    const events = await getFerryEvents(c, task!.createdBlock, await c.public.getBlockNumber());
    const done = events.find((e) => e.eventName === 'TaskCompleted' && e.args.taskId === taskId)!;
    const loc = String(done.args.resultLocation);
    const base = loc.replace(/\/v1\/tasks\/.*$/, '');
    const ciphertext = await createPeerClient({ baseUrl: base }).bytes('GET', loc.slice(base.length));
    const out = JSON.parse(Buffer.from(await decrypt([carol.ageIdentity], ciphertext)).toString('utf8'));
    assert.deepEqual([out.column, out.count, out.mean, out.min, out.max], ['temp', 3, 15, 10, 21]);
    ok = true;
  } finally {
    if (!ok) dumpLogs(net);
    await devnet.stop();
    assert.deepEqual(vmProcessesUnder(home), [], 'no QEMU or swtpm of the devnet is left');
    rmSync(home, { recursive: true, force: true });
  }
});
