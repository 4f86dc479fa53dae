/**
 * Owner agent store and HTTP API with the transport: an executor key fetches ciphertext
 * (signed, authorized, Range-resumable) and decrypts it with the file key the agent unwraps;
 * the key-release statement the agent signs its deliveries with (§13.4).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { z } from 'zod';
import { createAgentServer } from '../src/agent/server.ts';
import { AgentState } from '../src/agent/state.ts';
import { AssetStore } from '../src/agent/store.ts';
import { decrypt, FileKeyIdentity, generateX25519Identity, X25519Identity } from '../src/crypto/age/index.ts';
import { hashTagged, isFerryError, toHex } from '../src/kernel/index.ts';
import { createPeerClient, Ed25519Signer } from '../src/net/index.ts';
import {
  keyReleaseDigest,
  recoverKeyReleaseSigner,
  releaseHashOf,
  signKeyRelease,
} from '../src/protocol/key-release.ts';

const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-agent-'));
  const state = AgentState.open(join(dir, 'state.db'));
  const id = generateX25519Identity();
  const identity = new X25519Identity(id.identity);
  const store = new AssetStore({
    dir: join(dir, 'assets'),
    state,
    recipient: identity.recipient,
    identityRef: 'age',
  });
  return { dir, state, identity, store };
}

async function collect(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of s) parts.push(p);
  return Buffer.concat(parts);
}

test('store: encrypts on add (no plaintext on disk), hashes, measures apps, removes', async () => {
  const { dir, state, identity, store } = setup();
  try {
    const marker = `PLAINTEXT-MARKER-${randomBytes(8).toString('hex')}`;
    const plain = Buffer.concat([Buffer.from(marker), randomBytes(300_000), Buffer.from(marker)]);
    const src = join(dir, 'data.csv');
    writeFileSync(src, plain);
    const a = await store.add(src, { kind: 'dataset', name: 'data.csv' });
    const ct = readFileSync(a.path);
    assert.equal(a.size, ct.length);
    assert.equal(toHex(a.ciphertextSha256), createHash('sha256').update(ct).digest('hex'));
    assert.equal(a.measurement, null);
    for (const f of readdirSync(store.dir)) {
      assert.ok(!readFileSync(join(store.dir, f)).includes(marker), `${f} must not contain plaintext`);
    }
    assert.ok(Buffer.from(await decrypt([identity], ct)).equals(plain));

    const wasm = randomBytes(5000);
    const app = await store.add(Readable.from([wasm]), { kind: 'app', name: 'app.wasm' });
    assert.equal(toHex(app.measurement!), createHash('sha256').update(wasm).digest('hex'));
    const fk = await store.fileKey(app.id, [identity]);
    assert.equal(fk.length, 16);
    assert.ok(Buffer.from(await decrypt([new FileKeyIdentity(fk)], readFileSync(app.path))).equals(wasm));
    const wrong = new X25519Identity(generateX25519Identity().identity);
    await assert.rejects(store.fileKey(app.id, [wrong]), (e) => isFerryError(e, 'AGE_NO_MATCH'));

    assert.deepEqual(
      store.list().map((x) => x.kind),
      ['dataset', 'app'],
    );
    await store.remove(app.id);
    assert.equal(store.list().length, 1);
    assert.ok(!readdirSync(store.dir).includes(`${app.id}.age`));
    await assert.rejects(store.add(join(dir, 'missing'), { kind: 'dataset', name: 'x' }), (e) =>
      isFerryError(e, 'IO_READ_FAILED'),
    );
    assert.equal(readdirSync(store.dir).filter((f) => f.startsWith('.tmp-')).length, 0);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(store.add(src, { kind: 'dataset', name: 'x', signal: ac.signal }), (e) =>
      isFerryError(e, 'ABORTED'),
    );
    assert.equal(store.list().length, 1);
  } finally {
    state.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('agent server: only authorized executor keys read ciphertext; Range resume; revocation', async () => {
  const { dir, state, identity, store } = setup();
  const executor = Ed25519Signer.generate().signer;
  const stranger = Ed25519Signer.generate().signer;
  const seen: string[] = [];
  const server = createAgentServer({
    state,
    keyId: 'aa',
    log: quiet,
    authorize: async ({ caller, asset }) => {
      seen.push(asset.id);
      return caller.keyIdHex === toHex(executor.keyId);
    },
  });
  await server.start();
  try {
    const plain = randomBytes(1_000_000);
    const src = join(dir, 'd.bin');
    writeFileSync(src, plain);
    const a = await store.add(src, { kind: 'dataset', name: 'd.bin' });
    state.markAssetRegistered(a.id, 12n);

    const health = await createPeerClient({ baseUrl: server.url }).json(
      'GET',
      '/v1/health',
      z.object({ ok: z.literal(true), role: z.literal('agent'), assets: z.number() }),
    );
    assert.equal(health.assets, 1);

    const c = createPeerClient({ baseUrl: server.url, signer: executor });
    // By on-chain id: first half, then resume from where it stopped.
    const half = Math.floor(a.size / 2);
    const first = await c.stream('/v1/datasets/12/ciphertext', {
      signed: true,
      range: { start: 0, end: half - 1 },
    });
    assert.equal(first.status, 206);
    assert.equal(first.headers.etag, `"${toHex(a.ciphertextSha256)}"`);
    const p1 = await collect(first.body);
    const rest = await c.stream('/v1/datasets/12/ciphertext', {
      signed: true,
      range: { start: half },
      headers: { 'if-range': String(first.headers.etag) },
    });
    const ct = Buffer.concat([p1, await collect(rest.body)]);
    assert.equal(toHex(createHash('sha256').update(ct).digest()), toHex(a.ciphertextSha256));
    const fk = await store.fileKey(a.id, [identity]);
    assert.ok(Buffer.from(await decrypt([new FileKeyIdentity(fk)], ct)).equals(plain));
    // By local id too.
    const byLocal = await c.stream(`/v1/assets/${a.id}/ciphertext`, {
      signed: true,
      range: { start: 0, end: 9 },
    });
    assert.ok((await collect(byLocal.body)).equals(ct.subarray(0, 10)));

    const s = createPeerClient({ baseUrl: server.url, signer: stranger });
    await assert.rejects(s.stream('/v1/datasets/12/ciphertext', { signed: true }), (e) =>
      isFerryError(e, 'PEER_UNAUTHORIZED'),
    );
    await assert.rejects(c.stream('/v1/datasets/12/ciphertext'), (e) => isFerryError(e, 'PEER_UNAUTHORIZED'));
    // Unknown ids look the same as refused ones to the caller.
    await assert.rejects(c.stream('/v1/datasets/99/ciphertext', { signed: true }), (e) =>
      isFerryError(e, 'PEER_UNAUTHORIZED'),
    );
    state.markAssetRevoked(a.id);
    await assert.rejects(c.stream('/v1/datasets/12/ciphertext', { signed: true }), (e) =>
      isFerryError(e, 'PEER_UNAUTHORIZED'),
    );
    assert.ok(seen.every((x) => x === a.id));
  } finally {
    await server.stop();
    state.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('key-release statement: the owner signs deterministically; any changed field recovers another signer', async () => {
  const owner = privateKeyToAccount(generatePrivateKey());
  const statement = {
    chainId: 31337n,
    tasks: '0x00000000000000000000000000000000000000aa' as const,
    taskId: 5n,
    attempt: 2,
    assetKind: 'dataset' as const,
    assetId: 12n,
    releaseHash: releaseHashOf(randomBytes(32), randomBytes(32)),
  };
  const sig = await signKeyRelease(owner, statement);
  // A re-sent delivery after a restart carries the same bytes (the node answers fresh: false).
  assert.equal(await signKeyRelease(owner, statement), sig);
  assert.equal(await recoverKeyReleaseSigner(statement, sig), owner.address);
  // Values computed by us: the digest is SHA-256 of the tagged canonical CBOR.
  assert.equal(
    toHex(keyReleaseDigest(statement)),
    toHex(
      hashTagged('ferry/key-release/v1', {
        chainId: 31337n,
        tasks: new Uint8Array(20).fill(0xaa, 19),
        taskId: 5n,
        attempt: 2,
        assetKind: 'dataset',
        assetId: 12n,
        releaseHash: statement.releaseHash,
      }),
    ),
  );
  const changes = [
    { chainId: 1n },
    { tasks: '0x00000000000000000000000000000000000000ab' as const },
    { taskId: 6n },
    { attempt: 3 },
    { assetKind: 'app' as const },
    { assetId: 13n },
    { releaseHash: new Uint8Array(32) },
  ];
  for (const c of changes) {
    assert.notEqual(
      await recoverKeyReleaseSigner({ ...statement, ...c }, sig),
      owner.address,
      JSON.stringify(Object.keys(c)),
    );
  }
  await assert.rejects(recoverKeyReleaseSigner(statement, '0x1234'), (e) =>
    isFerryError(e, 'KEY_DELIVERY_REFUSED'),
  );
  assert.throws(
    () => keyReleaseDigest({ ...statement, attempt: 0 }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  assert.throws(
    () => keyReleaseDigest({ ...statement, releaseHash: new Uint8Array(31) }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
});
