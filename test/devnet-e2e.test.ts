/**
 * The network end to end on a local devnet (sim TEE): alice stores and registers a dataset, bob
 * an app (csv-stats), carol creates a task; the nodes seed, claim, attest and vote; the agents
 * check and release keys; the enclave runs; carol decrypts the result and verifies the receipt.
 * A second run kills nodes with SIGKILL and lets the supervisor restart them before the task.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { Hex } from 'viem';
import { z } from 'zod';
import { examplePath } from '../examples/index.ts';
import { agentHome } from '../src/agent/config.ts';
import { agentStore } from '../src/agent/daemon.ts';
import { AgentState } from '../src/agent/state.ts';
import { developmentPolicy, encodePolicyDocument } from '../src/attestation/index.ts';
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
import { verifyReceipt } from '../src/enclave/receipt.ts';
import { encodeCanonical, fromHex, toHex } from '../src/kernel/index.ts';
import { createPeerClient } from '../src/net/index.ts';
import { chainFor, type Net, withDevnet } from './helpers/devnet.ts';
import { verifierAlpha, vrfProofToHash, vrfProve } from '../src/crypto/vrf/index.ts';
import { hexBytes, seatsFor } from '../src/protocol/index.ts';
import { loadOrCreateVrfKey } from '../src/node/daemon.ts';
import {
  attemptResultHash,
  decodeSignedAttemptResult,
  EnclaveKeysSchema,
  readTaskCommitments,
} from '../src/protocol/index.ts';
import { NodeState } from '../src/node/state.ts';
import { createEnclave } from '../src/enclave/index.ts';

async function registerAssets(net: Net) {
  const { info } = net.devnet;
  const agentUrl = (name: string) => info.profiles.find((p) => p.name === name)!.agent!;
  const alice = loadProfileSecrets(net.home, 'alice');
  const aliceState = AgentState.open(join(agentHome('alice', net.env), 'state.db'));
  const csv = 'temp,city\n10,Berlin\n14,Paris\n21,Rome\n';
  const ds = await agentStore(agentHome('alice', net.env), aliceState, alice.ageIdentity).add(
    Readable.from([Buffer.from(csv)]),
    { kind: 'dataset', name: 'cities.csv' },
  );
  const { datasetId } = await createDataset(await chainFor(net, 'alice'), {
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
      appraisalPolicyDocument: encodePolicyDocument(developmentPolicy()),
    },
  });
  aliceState.markAssetRegistered(ds.id, datasetId);
  aliceState.close();

  const bob = loadProfileSecrets(net.home, 'bob');
  const bobState = AgentState.open(join(agentHome('bob', net.env), 'state.db'));
  const app = await agentStore(agentHome('bob', net.env), bobState, bob.ageIdentity).add(
    examplePath('csv-stats'),
    { kind: 'app', name: 'csv-stats.wasm' },
  );
  const { appId } = await createApp(await chainFor(net, 'bob'), {
    measurement: app.measurement!,
    ciphertextHash: app.ciphertextSha256,
    endpoint: agentUrl('bob'),
    price: 0n,
    teeKinds: ['sim'],
    appraisalPolicyDocument: encodePolicyDocument(developmentPolicy()),
  });
  bobState.markAssetRegistered(app.id, appId);
  bobState.close();
  return { datasetId, appId, datasetCiphertextHash: ds.ciphertextSha256, appMeasurement: app.measurement! };
}

/** carol's task; resolves with the final task state and its TaskCompleted event (if any). */
async function runTask(
  net: Net,
  appId: bigint,
  datasetId: bigint,
  opts: { claimWindow?: number; runWindow?: number; onPoll?: (task: TaskInfo) => Promise<void> } = {},
) {
  const carol = loadProfileSecrets(net.home, 'carol');
  const c = await chainFor(net, 'carol');
  const now = Number((await c.public.getBlock()).timestamp);
  const { taskId } = await createTask(c, {
    appId,
    datasetIds: [datasetId],
    inputHash: createHash('sha256').update(encodeCanonical([])).digest(),
    resultRecipient: carol.ageIdentity.publicKey,
    inputLocation: '',
    fee: 10n ** 15n,
    expiresAt: now + 600,
    claimWindow: opts.claimWindow ?? 3,
    evidenceWindow: 30,
    voteWindow: 30,
    runWindow: opts.runWindow ?? 60,
  });
  let task: TaskInfo | null = null;
  const deadline = Date.now() + 150_000;
  for (;;) {
    task = await getTask(c, taskId);
    if (task && opts.onPoll) await opts.onPoll(task);
    if (task?.status === 'completed' || task?.status === 'failed' || task?.status === 'expired') break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const events = task ? await getFerryEvents(c, task.createdBlock, await c.public.getBlockNumber()) : [];
  const done = events.find((e) => e.eventName === 'TaskCompleted' && e.args.taskId === taskId);
  return { taskId, task, done, carol, chain: c };
}

test('devnet: a task runs end to end; result and receipt check out', { timeout: 240_000 }, async () => {
  await withDevnet({ executors: 1, verifiers: 2 }, async (net) => {
    const { info } = net.devnet;
    assert.equal(info.nodes.length, 3);
    assert.deepEqual(
      info.profiles.map((p) => p.name),
      ['alice', 'bob', 'carol'],
    );
    assert.equal(JSON.parse(readFileSync(join(net.home, 'devnet.json'), 'utf8')).rpcUrl, info.rpcUrl);
    for (const n of info.nodes) {
      const h = await createPeerClient({ baseUrl: n.endpoint }).json(
        'GET',
        '/v1/health',
        z.object({ ok: z.literal(true) }).passthrough(),
      );
      assert.equal(h.keyId, n.keyId);
    }
    const assets = await registerAssets(net);
    const { taskId, task, done, carol } = await runTask(net, assets.appId, assets.datasetId);
    assert.equal(task?.status, 'completed', `task ended as ${task?.status}`);
    assert.ok(done);

    // The result: fetched from the executor (public), decrypted by carol only.
    const loc = String(done.args.resultLocation);
    const base = loc.replace(/\/v1\/tasks\/.*$/, '');
    const executor = createPeerClient({ baseUrl: base });
    const ciphertext = await executor.bytes('GET', loc.slice(base.length));
    assert.equal(`0x${createHash('sha256').update(ciphertext).digest('hex')}`, String(done.args.resultHash));
    const out = JSON.parse(Buffer.from(await decrypt([carol.ageIdentity], ciphertext)).toString('utf8'));
    assert.deepEqual([out.column, out.count, out.mean, out.min, out.max], ['temp', 3, 15, 10, 21]);

    // The receipt on chain: signed by the enclave whose key the evidence binds.
    const keys = await executor.json('GET', `/v1/tasks/${taskId}/attempts/1/enclave`, EnclaveKeysSchema);
    const receiptBytes = fromHex(String(done.args.receipt), 'receipt');
    const receipt = verifyReceipt(
      receiptBytes,
      fromHex(String(done.args.signature), 'signature', 64),
      fromHex(keys.ed25519Pub, 'ed25519Pub', 32),
    );
    assert.equal(receipt.taskId, taskId);
    assert.equal(toHex(receipt.resultHash), String(done.args.resultHash).slice(2));
    assert.equal(toHex(receipt.appMeasurement), toHex(assets.appMeasurement));
    assert.equal(toHex(receipt.datasets[0].ciphertextHash), toHex(assets.datasetCiphertextHash));
    assert.equal(`0x${createHash('sha256').update(receiptBytes).digest('hex')}`, task!.receiptHash);

    // Each vote's attestation result: served by its verifier, signed by its key, hashed on chain.
    const c = await chainFor(net, 'carol');
    const votes = (await getFerryEvents(c, task!.createdBlock, await c.public.getBlockNumber())).filter(
      (e) => e.eventName === 'VoteCast' && e.args.taskId === taskId,
    );
    // The first pass vote reaches the threshold (1000 seats); a later one finds the task attested.
    assert.ok(votes.length >= 1);
    for (const v of votes) {
      const n = info.nodes.find((x) => x.address.toLowerCase() === String(v.args.verifier).toLowerCase())!;
      const bytes = await createPeerClient({ baseUrl: n.endpoint }).bytes(
        'GET',
        `/v1/tasks/${taskId}/attempts/1/attestation-result`,
      );
      const signed = decodeSignedAttemptResult(bytes, fromHex(n.keyId, 'keyId', 32));
      assert.equal(`0x${toHex(attemptResultHash(signed.result))}`, String(v.args.resultHash));
    }
  });
});

test('devnet: nodes killed with SIGKILL are restarted, resume their registration, and still serve', {
  timeout: 240_000,
}, async () => {
  await withDevnet({ executors: 1, verifiers: 1 }, async (net) => {
    const before = net.devnet
      .children()
      .filter((c) => c.name.startsWith('executor') || c.name.startsWith('verifier'));
    assert.equal(before.length, 2);
    const endpointsBefore = new Map(
      before.map((b) => [b.name, (b.ready as { endpoint: string }).endpoint] as const),
    );
    for (const c of before) process.kill(c.pid!, 'SIGKILL');
    const deadline = Date.now() + 60_000;
    for (;;) {
      const now = net.devnet.children().filter((c) => before.some((b) => b.name === c.name));
      if (now.every((c) => c.state === 'ready' && c.restarts === 1)) break;
      assert.ok(Date.now() < deadline, `not restarted: ${JSON.stringify(now)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // Resumed, not re-registered: one registration row, confirmed, and the chain has the new endpoint.
    const c = await chainFor(net, 'carol');
    for (const b of before) {
      const restarted = net.devnet.children().find((x) => x.name === b.name)!;
      const ready = restarted.ready as { address: string; endpoint: string };
      const node = await getNode(c, ready.address as Hex);
      assert.equal(node?.endpoint, ready.endpoint);
      // Listening again on its previous port (remembered in its state): the evidence and result
      // locations it published in events stay valid.
      assert.equal(ready.endpoint, endpointsBefore.get(b.name), `${b.name} keeps its address`);
      assert.equal(node?.stake, 10n ** 18n, 'staked once');
      const file = JSON.parse(readFileSync(join(net.home, 'devnet.json'), 'utf8')) as {
        nodes: { name: string; endpoint: string }[];
      };
      assert.equal(
        file.nodes.find((n) => n.name === b.name)?.endpoint,
        ready.endpoint,
        'devnet.json follows the restart',
      );
    }
    const assets = await registerAssets(net);
    const { task, chain: cc } = await runTask(net, assets.appId, assets.datasetId);
    if (task?.status !== 'completed') {
      const evs = await getFerryEvents(cc, 0n, await cc.public.getBlockNumber());
      process.stderr.write(
        `created at block ${task?.createdBlock}; events: ${evs.map((e) => `${e.blockNumber}:${e.eventName}`).join(' ')}\n`,
      );
    }
    assert.equal(task?.status, 'completed', `task ended as ${task?.status}`);
  });
});

test('devnet: an executor killed right after winning its claim resumes, commits evidence once and completes', {
  timeout: 240_000,
}, async () => {
  await withDevnet({ executors: 1, verifiers: 1 }, async (net) => {
    const assets = await registerAssets(net);
    let killed: number | undefined;
    const {
      task,
      chain: c,
      taskId,
    } = await runTask(net, assets.appId, assets.datasetId, {
      claimWindow: 8,
      onPoll: async (t) => {
        if (killed === undefined && t.status === 'claimed') {
          const ex = net.devnet.children().find((x) => x.name === 'executor-1')!;
          killed = ex.pid!;
          process.kill(killed, 'SIGKILL');
        }
      },
    });
    assert.ok(killed !== undefined, 'the executor was killed while its claim stood');
    assert.equal(task?.status, 'completed', `task ended as ${task?.status}`);
    assert.equal(net.devnet.children().find((x) => x.name === 'executor-1')!.restarts, 1);
    const evs = await getFerryEvents(c, task!.createdBlock, await c.public.getBlockNumber());
    const mine = (name: string) => evs.filter((e) => e.eventName === name && e.args.taskId === taskId);
    assert.equal(mine('TaskClaimed').length, 1, 'claimed once');
    assert.equal(mine('EvidenceCommitted').length, 1, 'evidence committed once');
    assert.equal(mine('VoteCast').length, 1, 'one vote');
    assert.equal(mine('TaskCompleted').length, 1);
  });
});

test('devnet: an executor that dies with its enclave gives its attempt up once restarted (not slashed); the next attempt completes elsewhere', {
  timeout: 240_000,
}, async () => {
  await withDevnet({ executors: 2, verifiers: 1 }, async (net) => {
    const assets = await registerAssets(net);
    let victim: string | undefined;
    // The owner agents are paused from the claim until the kill, so the attempt cannot go past
    // `attested` (no keys) before this test's poll sees it: with push-woken daemons attesting
    // and attested can last less than one poll.
    const agents = net.devnet.children().filter((x) => x.name.startsWith('agent-'));
    assert.equal(agents.length, 2);
    let paused = false;
    const resume = () => {
      if (!paused) return;
      paused = false;
      for (const a of agents) process.kill(a.pid!, 'SIGCONT');
    };
    let ran: Awaited<ReturnType<typeof runTask>>;
    try {
      ran = await runTask(net, assets.appId, assets.datasetId, {
        runWindow: 8,
        onPoll: async (t) => {
          if (victim !== undefined || t.attempt !== 1) return;
          if (!paused && (t.status === 'seeded' || t.status === 'claimed')) {
            paused = true;
            for (const a of agents) process.kill(a.pid!, 'SIGSTOP');
          } else if (t.status === 'attesting' || t.status === 'attested') {
            const winner = net.devnet.info.nodes.find(
              (n) => n.address.toLowerCase() === t.executor?.toLowerCase(),
            )!;
            victim = winner.address;
            process.kill(net.devnet.children().find((x) => x.name === winner.name)!.pid!, 'SIGKILL');
            resume();
          }
        },
      });
    } finally {
      resume();
    }
    const { task, chain: c, taskId } = ran;
    assert.ok(victim, 'the attempt-1 executor was killed after committing its evidence');
    assert.equal(task?.status, 'completed', `task ended as ${task?.status}`);
    assert.equal(task!.attempt, 2);
    assert.notEqual(task!.executor?.toLowerCase(), victim.toLowerCase());
    const evs = await getFerryEvents(c, task!.createdBlock, await c.public.getBlockNumber());
    const ended = evs.filter((e) => e.eventName === 'AttemptEnded' && e.args.taskId === taskId);
    assert.equal(ended.length, 1);
    assert.equal(String(ended[0].args.executor).toLowerCase(), victim.toLowerCase());
    // Restarted by the devnet, it finds the attempt's evidence without a result: its enclave
    // died with it, so it abandons the attempt (§13.8) instead of leaving it to the run
    // deadline, and is not slashed.
    assert.equal(Number(ended[0].args.reason), 7, 'abandoned');
    assert.equal(ended[0].args.slashed, 0n);
    const abandoned = evs.filter((e) => e.eventName === 'AttemptAbandoned' && e.args.taskId === taskId);
    assert.equal(abandoned.length, 1);
    assert.match(String(abandoned[0].args.cause), /^ENCLAVE_LOST: /);
    assert.equal((await getNode(c, victim as Hex))?.status, 'active');
  });
});

test('devnet: evidence stored just before a crash is committed after the restart; the executor, its enclave gone, gives the attempt up once attested; the next attempt completes elsewhere', {
  timeout: 240_000,
}, async () => {
  await withDevnet({ executors: 2, verifiers: 1 }, async (net) => {
    const assets = await registerAssets(net);
    let victim: { name: string; address: string } | undefined;
    let evidenceHash: Uint8Array | undefined;
    const reader = await chainFor(net, 'carol');
    const {
      task,
      chain: c,
      taskId,
    } = await runTask(net, assets.appId, assets.datasetId, {
      claimWindow: 8,
      onPoll: async (t) => {
        if (victim || t.attempt !== 1 || t.status !== 'claimed') return;
        // Both executors claim: act once both claims are in, so the best claim no longer changes.
        const claims = (
          await getFerryEvents(reader, t.createdBlock, await reader.public.getBlockNumber())
        ).filter((e) => e.eventName === 'TaskClaimed' && e.args.taskId === t.taskId);
        if (claims.length < 2) return;
        const fresh = await getTask(reader, t.taskId);
        if (fresh?.status !== 'claimed') return;
        t = fresh;
        const winner = net.devnet.info.nodes.find(
          (n) => n.address.toLowerCase() === t.executor?.toLowerCase(),
        )!;
        const home = join(net.home, 'nodes', winner.name);
        // The evidence the executor would create once the claim window closes (a real sim
        // enclave with its attester), stored as if it crashed right after storing it.
        const handle = await createEnclave({
          commitments: await readTaskCommitments(reader, { chainId: 31337, task: t }),
          backend: { kind: 'sim', attesterFile: join(home, 'sim-attester') },
        });
        try {
          const now = await getTask(reader, t.taskId);
          assert.equal(now?.status, 'claimed', 'still within the claim window');
          process.kill(net.devnet.children().find((x) => x.name === winner.name)!.pid!, 'SIGKILL');
          const state = NodeState.open(join(home, 'state.db'));
          const claim = state.getClaim(t.taskId, t.attempt);
          assert.ok(claim, 'the executor recorded its claim');
          if (claim.status !== 'confirmed') state.markClaimOutcome(t.taskId, t.attempt, 'confirmed');
          state.saveEvidence(t.taskId, t.attempt, handle.evidenceBytes, handle.evidenceHash, {
            x25519Pub: handle.x25519Pub,
            ed25519Pub: handle.ed25519Pub,
            seed: hexBytes(t.seed),
          });
          state.close();
        } finally {
          await handle.destroy();
        }
        evidenceHash = handle.evidenceHash;
        victim = winner;
      },
    });
    assert.ok(victim && evidenceHash, 'the winner was killed with its evidence stored');
    assert.equal(task?.status, 'completed', `task ended as ${task?.status}`);
    assert.equal(task!.attempt, 2);
    assert.notEqual(task!.executor?.toLowerCase(), victim.address.toLowerCase());
    const evs = await getFerryEvents(c, task!.createdBlock, await c.public.getBlockNumber());
    const of = (name: string, attempt: number) =>
      evs.filter(
        (e) => e.eventName === name && e.args.taskId === taskId && Number(e.args.attempt) === attempt,
      );
    const committed = of('EvidenceCommitted', 1);
    assert.equal(committed.length, 1);
    assert.equal(String(committed[0].args.evidenceHash), `0x${toHex(evidenceHash)}`, 'the stored evidence');
    assert.equal(of('TaskAttested', 1).length, 1, 'the stored evidence was approved');
    const abandoned = of('AttemptAbandoned', 1);
    assert.equal(abandoned.length, 1);
    assert.match(String(abandoned[0].args.cause), /^ENCLAVE_LOST: /);
    const ended = of('AttemptEnded', 1);
    assert.equal(Number(ended[0].args.reason), 7, 'abandoned');
    assert.equal(ended[0].args.slashed, 0n);
  });
});

test('devnet: nodes send a heartbeat once an hour of chain time has passed', {
  timeout: 120_000,
}, async () => {
  await withDevnet({ executors: 1, verifiers: 1 }, async (net) => {
    const c = await chainFor(net, 'carol');
    const start = await c.public.getBlockNumber();
    await c.public.request({ method: 'evm_increaseTime' as never, params: [3601] as never });
    await c.public.request({ method: 'evm_mine' as never, params: [] as never });
    const want = new Set(net.devnet.info.nodes.map((n) => n.address.toLowerCase()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      const evs = await getFerryEvents(c, start, await c.public.getBlockNumber());
      const beats = new Set(
        evs.filter((e) => e.eventName === 'Heartbeat').map((e) => String(e.args.node).toLowerCase()),
      );
      if ([...want].every((a) => beats.has(a))) break;
      assert.ok(Date.now() < deadline, `heartbeats seen from ${[...beats].join(', ') || 'nobody'}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    for (const n of net.devnet.info.nodes) {
      const node = await getNode(c, n.address as Hex);
      assert.equal(node?.status, 'active');
    }
  });
});

test('devnet: a vote intent left by a crash is sent after the restart exactly as recorded, once', {
  timeout: 240_000,
}, async () => {
  await withDevnet({ executors: 1, verifiers: 1 }, async (net) => {
    const verifier = net.devnet.children().find((x) => x.name === 'verifier-1')!;
    const vinfo = net.devnet.info.nodes.find((n) => n.name === 'verifier-1')!;
    // Frozen, it sees nothing: the evidence event stays ahead of its cursor.
    process.kill(verifier.pid!, 'SIGSTOP');
    const assets = await registerAssets(net);
    const recorded = new Uint8Array(createHash('sha256').update('the recorded attestation result').digest());
    let written = false;
    const reader = await chainFor(net, 'carol');
    const {
      task,
      chain: c,
      taskId,
    } = await runTask(net, assets.appId, assets.datasetId, {
      onPoll: async (t) => {
        if (written || t.status !== 'attesting') return;
        const home = join(net.home, 'nodes', 'verifier-1');
        const { sk } = loadOrCreateVrfKey(home);
        const me = await getNode(reader, vinfo.address as Hex);
        const alpha = verifierAlpha({
          chainId: 31337n,
          taskId: t.taskId,
          attempt: t.attempt,
          seed: hexBytes(t.seed),
        });
        const proof = vrfProve(sk, alpha);
        const seats = seatsFor(vrfProofToHash(proof), me!.stake, t);
        // The crash: killed, with the intent written just before the transaction would have gone
        // out (synchronously, before the supervisor can restart it).
        process.kill(verifier.pid!, 'SIGKILL');
        const state = NodeState.open(join(home, 'state.db'));
        state.beginVote({
          task: t.taskId,
          attempt: t.attempt,
          verdict: 'pass',
          resultHash: recorded,
          vrfProof: proof,
          seats,
        });
        state.close();
        written = true;
      },
    });
    assert.ok(written);
    assert.equal(task?.status, 'completed', `task ended as ${task?.status}`);
    const evs = await getFerryEvents(c, task!.createdBlock, await c.public.getBlockNumber());
    const votes = evs.filter(
      (e) =>
        e.eventName === 'VoteCast' &&
        e.args.taskId === taskId &&
        String(e.args.verifier).toLowerCase() === vinfo.address.toLowerCase(),
    );
    assert.equal(votes.length, 1, 'voted once');
    assert.equal(
      String(votes[0].args.resultHash),
      `0x${toHex(recorded)}`,
      'the recorded result hash, not a new one',
    );
    const state = NodeState.open(join(net.home, 'nodes', 'verifier-1', 'state.db'));
    try {
      assert.equal(state.getVote(taskId, 1)?.status, 'confirmed');
    } finally {
      state.close();
    }
  });
});
