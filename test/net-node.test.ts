/**
 * Node HTTP API with the transport: public evidence and result (Range); sealed key delivery
 * from an owner agent (signed by the asset owner's EVM account, checked, stored once, opened
 * with HPKE), forged deliveries refused; and the loopback ciphertext relay (one-time URLs,
 * resume with Range after a dropped connection, a clear code when the agent cannot resume).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { z } from 'zod';
import { createAgentServer } from '../src/agent/server.ts';
import { AgentState } from '../src/agent/state.ts';
import { AssetStore } from '../src/agent/store.ts';
import type { TaskInfo } from '../src/chain/index.ts';
import { generateX25519Identity, X25519Identity } from '../src/crypto/age/index.ts';
import { hpkeGenerateKeyPair, hpkeOpen, hpkeSeal } from '../src/crypto/hpke.ts';
import { keyReleaseInfo } from '../src/protocol/release-info.ts';
import { type FerryError, isFerryError, toHex } from '../src/kernel/index.ts';
import { createPeerClient, Ed25519Signer } from '../src/net/index.ts';
import { verifyKeyDelivery } from '../src/node/deliveries.ts';
import { CiphertextRelay } from '../src/node/relay.ts';
import {
  createNodeServer,
  decodeSealed,
  type KeyDeliveryBody,
  type SealedKeyDelivery,
} from '../src/node/server.ts';
import { NodeState } from '../src/node/state.ts';
import { EnclaveKeysSchema } from '../src/protocol/index.ts';
import { releaseHashOf, signKeyRelease } from '../src/protocol/key-release.ts';

const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

async function collect(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of s) parts.push(p);
  return Buffer.concat(parts);
}

const CHAIN_ID = 31337n;
const TASKS: Hex = '0x00000000000000000000000000000000000000aa';
const NODE = '0x00000000000000000000000000000000000000e1';

/** A task row as the chain would report it (only the fields the delivery check reads matter). */
function taskRow(over: Partial<TaskInfo> = {}): TaskInfo {
  return {
    taskId: 1n,
    requester: '0x00000000000000000000000000000000000000c0',
    status: 'attested',
    attempt: 1,
    appId: 2n,
    datasetIds: [3n],
    tau: 5,
    threshold: 4,
    teeKinds: ['sim'],
    executor: NODE,
    deadline: 0,
    passSeats: 0,
    failSeats: 0,
    passVoters: 0,
    releasedMask: 0,
    keysEverReleased: false,
    anchorBlock: 0n,
    createdBlock: 0n,
    fee: 0n,
    expiresAt: 0,
    windows: { claim: 3, evidence: 30, vote: 30, run: 60 },
    totalVerifierStake: 0n,
    voterReward: 0n,
    seed: `0x${'00'.repeat(32)}`,
    bestOutput: `0x${'00'.repeat(64)}`,
    evidenceHash: `0x${'00'.repeat(32)}`,
    receiptHash: `0x${'00'.repeat(32)}`,
    ...over,
  } as TaskInfo;
}

/** A sealed key delivery body for (task, attempt, dataset 3), signed by `account`. */
async function delivery(
  account: ReturnType<typeof privateKeyToAccount>,
  sealed: { enc: Uint8Array; ciphertext: Uint8Array },
  over: { taskId?: bigint; attempt?: number; assetId?: bigint } = {},
): Promise<KeyDeliveryBody> {
  const assetId = over.assetId ?? 3n;
  return {
    assetId: String(assetId),
    assetKind: 'dataset',
    enc: toHex(sealed.enc),
    ciphertext: toHex(sealed.ciphertext),
    signature: await signKeyRelease(account, {
      chainId: CHAIN_ID,
      tasks: TASKS,
      taskId: over.taskId ?? 1n,
      attempt: over.attempt ?? 1,
      assetKind: 'dataset',
      assetId,
      releaseHash: releaseHashOf(sealed.enc, sealed.ciphertext),
    }),
  };
}

/** POSTs a delivery and returns the status and the error code of a refusal. */
async function post(url: string, path: string, body: unknown): Promise<{ status: number; code?: string }> {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const j = (await res.json()) as { error?: { code: string } };
  return { status: res.status, code: j.error?.code };
}

test('node server: evidence and result are public; sealed keys only when signed by the asset owner', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-node-srv-'));
  const state = NodeState.open(join(dir, 'state.db'));
  const owner = privateKeyToAccount(generatePrivateKey());
  const stranger = privateKeyToAccount(generatePrivateKey());
  const delivered: SealedKeyDelivery[] = [];
  // The chain as this test sets it: task 1 attempt 1 (or what `current` says), dataset 3 owned by `owner`.
  let current: TaskInfo | null = taskRow();
  const server = createNodeServer({
    state,
    log: quiet,
    verifyDelivery: async ({ task, attempt, body }) =>
      verifyKeyDelivery(
        {
          chainId: CHAIN_ID,
          tasks: TASKS,
          executor: NODE,
          task: current && String(current.taskId) === task ? current : null,
          ownerOf: async (kind, id) => (kind === 'dataset' && id === 3n ? owner.address : null),
        },
        attempt,
        body,
      ),
    onKeys: (d) => {
      delivered.push(d);
    },
  });
  await server.start();
  try {
    const pub = createPeerClient({ baseUrl: server.url });
    await assert.rejects(pub.bytes('GET', '/v1/tasks/1/attempts/1/evidence'), (e) =>
      isFerryError(e, 'PEER_NOT_FOUND'),
    );
    await assert.rejects(pub.bytes('GET', '/v1/tasks/x/attempts/1/evidence'), (e) =>
      isFerryError(e, 'PEER_BAD_REQUEST'),
    );
    await assert.rejects(pub.bytes('GET', '/v1/tasks/1/attempts/0/evidence'), (e) =>
      isFerryError(e, 'PEER_BAD_REQUEST'),
    );

    const evidence = randomBytes(700);
    const evidenceHash = new Uint8Array(createHash('sha256').update(evidence).digest());
    const x25519Pub = randomBytes(32);
    const ed25519Pub = randomBytes(32);
    state.saveEvidence(1n, 1, evidence, evidenceHash, { x25519Pub, ed25519Pub, seed: randomBytes(32) });
    assert.ok(Buffer.from(await pub.bytes('GET', '/v1/tasks/1/attempts/1/evidence')).equals(evidence));
    assert.deepEqual(await pub.json('GET', '/v1/tasks/1/attempts/1/enclave', EnclaveKeysSchema), {
      x25519Pub: toHex(x25519Pub),
      ed25519Pub: toHex(ed25519Pub),
      evidenceHash: toHex(evidenceHash),
    });
    await assert.rejects(pub.json('GET', '/v1/tasks/2/attempts/1/enclave', EnclaveKeysSchema), (e) =>
      isFerryError(e, 'PEER_NOT_FOUND'),
    );

    const result = randomBytes(200_000);
    const resultPath = join(dir, 'result.age');
    writeFileSync(resultPath, result);
    state.saveResult(1n, 1, {
      resultPath,
      resultHash: new Uint8Array(32).fill(1),
      receipt: new Uint8Array([1]),
    });
    const whole = await pub.stream('/v1/tasks/1/attempts/1/result');
    assert.ok((await collect(whole.body)).equals(result));
    const tail = await pub.stream('/v1/tasks/1/attempts/1/result', { range: { start: 199_990 } });
    assert.ok((await collect(tail.body)).equals(result.subarray(199_990)));

    // The agent seals a file key to the enclave's HPKE key, bound to commitments, evidence, asset,
    // and signs the delivery with the dataset owner's account.
    const enclave = hpkeGenerateKeyPair();
    const fileKey = randomBytes(16);
    const info = keyReleaseInfo({
      commitments: new Uint8Array(32).fill(7),
      evidenceHash,
      assetId: 3n,
      assetKind: 'dataset',
    });
    const sealed = await hpkeSeal(enclave.publicKey, fileKey, info);
    const body = await delivery(owner, sealed);

    // Forged first: a delivery signed by anyone but the owner is refused and not stored, so it
    // cannot take the genuine one's place.
    const forgedSealed = await hpkeSeal(enclave.publicKey, randomBytes(16), info);
    assert.deepEqual(
      await post(server.url, '/v1/tasks/1/attempts/1/keys', await delivery(stranger, forgedSealed)),
      {
        status: 403,
        code: 'KEY_DELIVERY_REFUSED',
      },
    );
    // The owner's signature does not transfer to other bytes.
    assert.deepEqual(
      await post(server.url, '/v1/tasks/1/attempts/1/keys', {
        ...body,
        enc: toHex(forgedSealed.enc),
        ciphertext: toHex(forgedSealed.ciphertext),
      }),
      { status: 403, code: 'KEY_DELIVERY_REFUSED' },
    );
    assert.equal(state.listKeyDeliveries(1n, 1).length, 0);

    const ac = createPeerClient({ baseUrl: server.url });
    const schema = z.object({ accepted: z.literal(true), fresh: z.boolean() });
    assert.deepEqual(await ac.json('POST', '/v1/tasks/1/attempts/1/keys', schema, { body }), {
      accepted: true,
      fresh: true,
    });
    // A retry after a lost acknowledgement is harmless.
    assert.deepEqual(await ac.json('POST', '/v1/tasks/1/attempts/1/keys', schema, { body }), {
      accepted: true,
      fresh: false,
    });
    assert.equal(delivered.length, 1);
    assert.equal(delivered[0].sender, owner.address.toLowerCase());
    // The owner itself sending other bytes later is a conflict: the first genuine one stays.
    const other = await hpkeSeal(enclave.publicKey, randomBytes(16), info);
    await assert.rejects(
      ac.json('POST', '/v1/tasks/1/attempts/1/keys', schema, { body: await delivery(owner, other) }),
      (e) => isFerryError(e, 'STATE_CONFLICT'),
    );
    // An asset the task does not use, and a malformed body.
    await assert.rejects(
      ac.json('POST', '/v1/tasks/1/attempts/1/keys', schema, {
        body: await delivery(owner, sealed, { assetId: 4n }),
      }),
      (e) => isFerryError(e, 'PEER_UNAUTHORIZED') && /not one of the task/.test(e.message),
    );
    await assert.rejects(
      ac.json('POST', '/v1/tasks/1/attempts/1/keys', schema, { body: { ...body, enc: 'zz' } }),
      (e) => isFerryError(e, 'PEER_BAD_REQUEST'),
    );
    await assert.rejects(
      ac.json('POST', '/v1/tasks/1/attempts/1/keys', schema, { body: { ...body, signature: '0x12' } }),
      (e) => isFerryError(e, 'PEER_BAD_REQUEST'),
    );
    const { signature: _, ...unsigned } = body;
    assert.deepEqual(await post(server.url, '/v1/tasks/1/attempts/1/keys', unsigned), {
      status: 403,
      code: 'KEY_DELIVERY_REFUSED',
    });

    // What the node stored opens inside the enclave to the same file key.
    const stored = state.listKeyDeliveries(1n, 1);
    assert.equal(stored.length, 1);
    assert.equal(stored[0].signature, body.signature?.toLowerCase());
    const d = decodeSealed(stored[0]);
    assert.equal(d.sender, owner.address.toLowerCase());
    const opened = await hpkeOpen(enclave.privateKey, d.enc, d.ciphertext, info);
    assert.ok(Buffer.from(opened).equals(fileKey));

    // Replays: the genuine delivery of task 1 attempt 1 posted for another task, or for the
    // next attempt of the same task, does not verify (the statement binds task and attempt).
    current = taskRow({ taskId: 2n });
    assert.deepEqual(await post(server.url, '/v1/tasks/2/attempts/1/keys', body), {
      status: 403,
      code: 'KEY_DELIVERY_REFUSED',
    });
    current = taskRow({ attempt: 2 });
    assert.deepEqual(await post(server.url, '/v1/tasks/1/attempts/2/keys', body), {
      status: 403,
      code: 'KEY_DELIVERY_REFUSED',
    });
    // Nor is anything accepted for an attempt that is not attested, or executed by another node.
    assert.deepEqual(await post(server.url, '/v1/tasks/1/attempts/1/keys', body), {
      status: 403,
      code: 'KEY_DELIVERY_REFUSED',
    });
    current = taskRow({ attempt: 2, status: 'attesting' });
    assert.deepEqual(
      await post(server.url, '/v1/tasks/1/attempts/2/keys', await delivery(owner, sealed, { attempt: 2 })),
      {
        status: 403,
        code: 'KEY_DELIVERY_REFUSED',
      },
    );
    current = taskRow({ attempt: 2, executor: '0x00000000000000000000000000000000000000e2' });
    assert.deepEqual(
      await post(server.url, '/v1/tasks/1/attempts/2/keys', await delivery(owner, sealed, { attempt: 2 })),
      {
        status: 403,
        code: 'KEY_DELIVERY_REFUSED',
      },
    );
    // The owner's own delivery for attempt 2, once it is attested here, is accepted.
    current = taskRow({ attempt: 2, status: 'running' });
    assert.deepEqual(
      await post(server.url, '/v1/tasks/1/attempts/2/keys', await delivery(owner, sealed, { attempt: 2 })),
      {
        status: 200,
        code: undefined,
      },
    );
    assert.equal(state.listKeyDeliveries(1n, 2).length, 1);
    assert.equal(state.listKeyDeliveries(2n, 1).length, 0);
  } finally {
    await server.stop();
    state.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** An owner agent serving one registered dataset to one executor key. */
async function agentWith(plaintextBytes: number) {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-relay-'));
  const state = AgentState.open(join(dir, 'state.db'));
  const identity = new X25519Identity(generateX25519Identity().identity);
  const store = new AssetStore({
    dir: join(dir, 'assets'),
    state,
    recipient: identity.recipient,
    identityRef: 'age',
  });
  const src = join(dir, 'plain.bin');
  writeFileSync(src, randomBytes(plaintextBytes));
  const asset = await store.add(src, { kind: 'dataset', name: 'd' });
  state.markAssetRegistered(asset.id, 7n);
  const node = Ed25519Signer.generate().signer;
  const server = createAgentServer({
    state,
    log: quiet,
    authorize: async ({ caller }) => caller.keyIdHex === toHex(node.keyId),
  });
  await server.start();
  return {
    node,
    url: server.url,
    ciphertext: readFileSync(asset.path),
    async close() {
      await server.stop();
      state.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('relay: one-time loopback URLs stream the agent’s ciphertext (signed by the node key)', async () => {
  const agent = await agentWith(3 << 20);
  const relay = new CiphertextRelay({
    signer: agent.node,
    endpointPolicy: { localNetwork: true },
    log: quiet,
  });
  await relay.start();
  try {
    const { url, token } = relay.issue({ baseUrl: agent.url, path: '/v1/datasets/7/ciphertext' });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/relay\/[A-Za-z0-9_-]{43}$/);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(agent.ciphertext.length));
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(agent.ciphertext));
    assert.equal(relay.failure(token), null);
    // One time only; unknown and malformed tokens look the same.
    assert.equal((await fetch(url)).status, 404);
    assert.equal((await fetch(`${relay.url}/relay/${'A'.repeat(43)}`)).status, 404);
    assert.equal((await fetch(`${relay.url}/relay/x`)).status, 404);
    // A revoked token is gone.
    const unused = relay.issue({ baseUrl: agent.url, path: '/v1/datasets/7/ciphertext' });
    relay.revoke(unused.token);
    assert.equal((await fetch(unused.url)).status, 404);
    // The agent refuses another node key: the relay answers 502 and records why.
    const other = new CiphertextRelay({
      signer: Ed25519Signer.generate().signer,
      endpointPolicy: { localNetwork: true },
      log: quiet,
    });
    await other.start();
    try {
      const refused = other.issue({ baseUrl: agent.url, path: '/v1/datasets/7/ciphertext' });
      assert.equal((await fetch(refused.url)).status, 502);
      assert.equal(other.failure(refused.token)?.code, 'PEER_UNAUTHORIZED');
    } finally {
      await other.stop();
    }
  } finally {
    await relay.stop();
    await agent.close();
  }
});

/**
 * A bare upstream that drops the connection after `dropAfter` bytes on its first answer;
 * with `ranges` it announces and honours Range/If-Range, without it ignores them.
 */
async function flakyUpstream(data: Buffer, dropAfter: number, ranges: boolean) {
  const seen: string[] = [];
  let first = true;
  const server: Server = createServer((req, res) => {
    seen.push(String(req.headers.range ?? ''));
    const etag = '"v1"';
    const m =
      ranges && req.headers['if-range'] === etag ? /^bytes=(\d+)-$/.exec(String(req.headers.range)) : null;
    if (m) {
      const start = Number(m[1]);
      res.writeHead(206, {
        'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
        'content-length': String(data.length - start),
        'accept-ranges': 'bytes',
        etag,
      });
      res.end(data.subarray(start));
      return;
    }
    res.writeHead(200, {
      'content-length': String(data.length),
      ...(ranges ? { 'accept-ranges': 'bytes', etag } : {}),
    });
    if (first) {
      first = false;
      res.write(data.subarray(0, dropAfter), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(data);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('relay: a dropped agent connection is resumed with Range; without Range it fails with a clear code', async () => {
  const data = randomBytes(2 << 20);
  const relay = new CiphertextRelay({
    signer: Ed25519Signer.generate().signer,
    endpointPolicy: { localNetwork: true },
    log: quiet,
  });
  await relay.start();
  const resumable = await flakyUpstream(data, 700_000, true);
  const plain = await flakyUpstream(data, 700_000, false);
  try {
    const a = relay.issue({ baseUrl: resumable.url, path: '/v1/datasets/1/ciphertext' });
    const res = await fetch(a.url);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
    assert.equal(relay.failure(a.token), null);
    assert.equal(resumable.seen.length, 2);
    assert.match(resumable.seen[1], /^bytes=\d+-$/);
    assert.ok(Number(/\d+/.exec(resumable.seen[1])![0]) >= 700_000 - 65_536);

    const b = relay.issue({ baseUrl: plain.url, path: '/v1/datasets/1/ciphertext' });
    const res2 = await fetch(b.url);
    await assert.rejects(res2.arrayBuffer());
    const why = relay.failure(b.token) as FerryError;
    assert.equal(why?.code, 'RELAY_RESUME_UNSUPPORTED');
    assert.equal(plain.seen.length, 1);
  } finally {
    await relay.stop();
    await resumable.close();
    await plain.close();
  }
});
