/**
 * Node HTTP API with the transport: public evidence and result (Range), and sealed key
 * delivery from an owner agent (signed, authorized, stored once, opened with HPKE).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { hpkeGenerateKeyPair, hpkeOpen, hpkeSeal, keyReleaseInfo } from '../src/crypto/hpke.ts';
import { isFerryError, toHex } from '../src/kernel/index.ts';
import { createPeerClient, Ed25519Signer } from '../src/net/index.ts';
import { createNodeServer, decodeSealed, type SealedKeyDelivery } from '../src/node/server.ts';
import { NodeState } from '../src/node/state.ts';
import { EnclaveKeysSchema } from '../src/task/index.ts';

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

test('node server: evidence and result are public; sealed keys only from authorized agents', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-node-srv-'));
  const state = NodeState.open(join(dir, 'state.db'));
  const agent = Ed25519Signer.generate().signer;
  const stranger = Ed25519Signer.generate().signer;
  const delivered: SealedKeyDelivery[] = [];
  const server = createNodeServer({
    state,
    log: quiet,
    authorizeKeys: async ({ caller, body }) => caller.keyIdHex === toHex(agent.keyId) && body.assetId === '3',
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

    // The agent seals a file key to the enclave's HPKE key, bound to task, attempt, evidence.
    const enclave = hpkeGenerateKeyPair();
    const fileKey = randomBytes(16);
    const info = keyReleaseInfo({
      chainId: 31337n,
      taskId: 1n,
      attempt: 1,
      evidenceHash,
      assetId: 3n,
      assetKind: 'dataset',
    });
    const sealed = await hpkeSeal(enclave.publicKey, fileKey, info);
    const body = {
      assetId: '3',
      assetKind: 'dataset',
      enc: toHex(sealed.enc),
      ciphertext: toHex(sealed.ciphertext),
    };
    const ac = createPeerClient({ baseUrl: server.url, signer: agent });
    const schema = z.object({ accepted: z.literal(true), fresh: z.boolean() });
    assert.deepEqual(await ac.json('POST', '/v1/tasks/1/attempts/1/keys', schema, { signed: true, body }), {
      accepted: true,
      fresh: true,
    });
    // A retry after a lost acknowledgement is harmless.
    assert.deepEqual(await ac.json('POST', '/v1/tasks/1/attempts/1/keys', schema, { signed: true, body }), {
      accepted: true,
      fresh: false,
    });
    assert.equal(delivered.length, 1);
    const other = await hpkeSeal(enclave.publicKey, randomBytes(16), info);
    await assert.rejects(
      ac.json('POST', '/v1/tasks/1/attempts/1/keys', schema, {
        signed: true,
        body: { ...body, enc: toHex(other.enc), ciphertext: toHex(other.ciphertext) },
      }),
      (e) => isFerryError(e, 'STATE_CONFLICT'),
    );
    await assert.rejects(
      ac.json('POST', '/v1/tasks/1/attempts/1/keys', schema, {
        signed: true,
        body: { ...body, assetId: '4' },
      }),
      (e) => isFerryError(e, 'PEER_UNAUTHORIZED'),
    );
    await assert.rejects(
      createPeerClient({ baseUrl: server.url, signer: stranger }).json(
        'POST',
        '/v1/tasks/1/attempts/1/keys',
        schema,
        {
          signed: true,
          body,
        },
      ),
      (e) => isFerryError(e, 'PEER_UNAUTHORIZED'),
    );
    await assert.rejects(
      ac.json('POST', '/v1/tasks/1/attempts/1/keys', schema, { signed: true, body: { ...body, enc: 'zz' } }),
      (e) => isFerryError(e, 'PEER_BAD_REQUEST'),
    );

    // What the node stored opens inside the enclave to the same file key.
    const stored = state.listKeyDeliveries(1n, 1).map(decodeSealed);
    assert.equal(stored.length, 1);
    assert.equal(stored[0].sender, toHex(agent.keyId));
    const opened = await hpkeOpen(enclave.privateKey, stored[0].enc, stored[0].ciphertext, info);
    assert.ok(Buffer.from(opened).equals(fileKey));
  } finally {
    await server.stop();
    state.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
