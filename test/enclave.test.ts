/**
 * Multi-process suite: real enclave processes (sim backend) driven through EnclaveHandle, with
 * assets encrypted by an owner (age), keys released sealed (HPKE), results sealed to a requester.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type ExampleName, ensureExamplesBuilt, examplePath } from '../examples/index.ts';
import { developmentPolicy } from '../src/attestation/policy.ts';
import { SimVerifier } from '../src/attestation/sim/index.ts';
import { decrypt, parseIdentity } from '../src/crypto/age/index.ts';
import { reportDataFor } from '../src/enclave/binding.ts';
import { createEnclave, type EnclaveHandle, type RunJob } from '../src/enclave/handle.ts';
import { verifyReceipt } from '../src/enclave/receipt.ts';
import { type FerryError, toHex } from '../src/kernel/index.ts';
import {
  type Fixture,
  fixture,
  ownerEncrypt,
  randomSeed,
  requester,
  sealFor,
  sha256,
} from './enclave-helpers.ts';

const task = { chainId: 31337n, taskId: 9n, attempt: 1 };
let fx: Fixture;
const open: EnclaveHandle[] = [];
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

before(async () => {
  await ensureExamplesBuilt();
  fx = await fixture();
});
after(async () => {
  await Promise.all(open.map((h) => h.destroy()));
  await fx.cleanup();
});

async function enclave(seed = randomSeed()): Promise<EnclaveHandle> {
  const h = await createEnclave({ ...task, seed, backend: { kind: 'sim', attesterFile: fx.attesterFile } });
  open.push(h);
  return h;
}

type Asset = { path: string; ciphertext: Uint8Array; fileKey: Uint8Array; plaintext: Uint8Array };
async function asset(name: string, plaintext: Uint8Array): Promise<Asset> {
  return { ...(await ownerEncrypt(fx.dir, name, plaintext)), plaintext };
}
async function appAsset(name: ExampleName): Promise<Asset> {
  return asset(`${name}.wasm.age`, new Uint8Array(await readFile(examplePath(name))));
}

function job(app: Asset, datasets: { id: string; assetId: bigint; a: Asset }[], recipient: string): RunJob {
  return {
    app: {
      assetId: 1n,
      measurement: sha256(app.plaintext),
      source: { kind: 'file', location: app.path, encrypted: true },
    },
    datasets: datasets.map((d) => ({
      id: d.id,
      assetId: d.assetId,
      source: { kind: 'file', location: d.a.path, encrypted: true },
    })),
    args: [],
    recipient,
  };
}

test('full pipeline: evidence, sealed keys, encrypted app and data, sealed result, verified receipt', async () => {
  const seed = randomSeed();
  const h = await enclave(seed);
  // Evidence: sim, bound to this attempt and to the enclave's keys.
  const evidence = h.evidence();
  const expected = reportDataFor({ ...task, x25519Pub: h.x25519Pub, ed25519Pub: h.ed25519Pub, seed });
  const appraisal = await new SimVerifier({ roots: [fx.root.publicKey] }).appraise(evidence, {
    policy: developmentPolicy(),
    now: new Date(),
    expectedReportData: expected,
  });
  assert.equal(appraisal.accepted, true, JSON.stringify(appraisal.reasons));

  const app = await appAsset('sha256');
  const data = new Uint8Array(300_000).map((_, i) => (i * 31) & 0xff);
  const ds = await asset('data.age', data);
  await h.deliverKeys([
    await sealFor(h, task, 1n, 'app', app.fileKey),
    await sealFor(h, task, 2n, 'dataset', ds.fileKey),
  ]);
  const rq = requester();
  const j = job(app, [{ id: '2', assetId: 2n, a: ds }], rq.recipient);
  j.args = [];
  const out = await h.run(j);
  assert.equal(out.outcome, 'exit');
  assert.equal(out.exitCode, 0);
  const stdout = await decrypt([parseIdentity(rq.identity)], out.result);
  assert.equal(dec(stdout), `${toHex(sha256(data))}  -\n`);
  assert.equal(out.outputBytes, stdout.length);

  const r = verifyReceipt(out.receipt, out.signature, h.ed25519Pub);
  assert.deepEqual(r.appMeasurement, sha256(app.plaintext));
  assert.deepEqual(r.datasets, [{ id: '2', ciphertextHash: sha256(ds.ciphertext), complete: true }]);
  assert.deepEqual(r.resultHash, sha256(out.result));
  assert.deepEqual(r.logHash, sha256(out.log));
  assert.deepEqual(r.evidenceHash, h.evidenceHash);
  assert.deepEqual([r.chainId, r.taskId, r.attempt, r.exitCode, r.limitHit], [31337n, 9n, 1, 0, null]);
  assert.ok(r.startedAt <= r.endedAt);
  // Tampered receipt or signature: rejected.
  const bad = Uint8Array.from(out.receipt);
  bad[bad.length - 5] ^= 1;
  assert.throws(() => verifyReceipt(bad, out.signature, h.ed25519Pub));
  assert.throws(() => verifyReceipt(out.receipt, out.signature, h.x25519Pub));

  // One run per enclave; then destruction is confirmed and nothing is served any more.
  await assert.rejects(h.run(j), (e: FerryError) => e.code === 'ENCLAVE_PROTOCOL');
  const pid = h.pid!;
  const report = await h.destroy();
  assert.deepEqual(report, { exitCode: 0, signal: null, killed: false });
  assert.equal(h.exited, true);
  assert.throws(() => process.kill(pid, 0), /ESRCH/);
  await assert.rejects(
    h.deliverKeys([await sealFor(h, task, 2n, 'dataset', ds.fileKey)]),
    (e: FerryError) => e.code === 'ENCLAVE_PROTOCOL',
  );
  assert.deepEqual(await h.destroy(), report);
});

test('several datasets are files under /data/, stdin empty; sources may be URLs', async () => {
  const h = await enclave();
  const app = await appAsset('sha256');
  const a = await asset('a.age', enc('alpha\n'.repeat(1000)));
  const b = await asset('b.age', new Uint8Array(200_000).fill(3));
  const server = createServer(async (req, res) => {
    res.end(await readFile(join(fx.dir, req.url === '/b' ? 'b.age' : 'missing')));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/b`;
    await h.deliverKeys([
      await sealFor(h, task, 1n, 'app', app.fileKey),
      await sealFor(h, task, 10n, 'dataset', a.fileKey),
      await sealFor(h, task, 11n, 'dataset', b.fileKey),
    ]);
    const rq = requester();
    const j = job(app, [{ id: '10', assetId: 10n, a }], rq.recipient);
    j.datasets.push({ id: '11', assetId: 11n, source: { kind: 'url', location: url, encrypted: true } });
    j.args = ['10', '11'];
    const out = await h.run(j);
    assert.equal(out.exitCode, 0);
    const stdout = dec(await decrypt([parseIdentity(rq.identity)], out.result));
    assert.equal(stdout, `${toHex(sha256(a.plaintext))}  10\n${toHex(sha256(b.plaintext))}  11\n`);
    const r = verifyReceipt(out.receipt, out.signature, h.ed25519Pub);
    assert.deepEqual(
      r.datasets.map((d) => [d.id, toHex(d.ciphertextHash), d.complete]),
      [
        ['10', toHex(sha256(a.ciphertext)), true],
        ['11', toHex(sha256(b.ciphertext)), true],
      ],
    );
  } finally {
    server.close();
  }
});

test('a wrong measurement: nothing runs', async () => {
  const h = await enclave();
  const app = await appAsset('count-bytes');
  await h.deliverKeys([await sealFor(h, task, 1n, 'app', app.fileKey)]);
  const j = job(app, [], requester().recipient);
  j.app.measurement = sha256(enc('another app'));
  await assert.rejects(h.run(j), (e: FerryError) => e.code === 'ENCLAVE_MEASUREMENT_MISMATCH');
});

test('wrong keys: sealed for another attempt, or the file key of another asset', async () => {
  const h = await enclave();
  const app = await appAsset('count-bytes');
  const ds = await asset('d.age', enc('data'));
  await assert.rejects(
    h.deliverKeys([await sealFor(h, { ...task, attempt: 2 }, 1n, 'app', app.fileKey)]),
    (e: FerryError) => e.code === 'ENCLAVE_KEY_UNSEAL_FAILED',
  );
  // Sealed to this enclave but under another asset kind than the one it opens.
  const wrongKind = await sealFor(h, task, 1n, 'dataset', app.fileKey);
  await h.deliverKeys([wrongKind]);
  // The dataset's key delivered as the app key: the age header MAC fails; nothing runs.
  await h.deliverKeys([await sealFor(h, task, 1n, 'app', ds.fileKey)]);
  await assert.rejects(
    h.run(job(app, [], requester().recipient)),
    (e: FerryError) => e.code === 'AGE_HMAC_INVALID',
  );
  // No key at all for a dataset.
  const h2 = await enclave();
  await h2.deliverKeys([await sealFor(h2, task, 1n, 'app', app.fileKey)]);
  await assert.rejects(
    h2.run(job(app, [{ id: '5', assetId: 5n, a: ds }], requester().recipient)),
    (e: FerryError) => e.code === 'ENCLAVE_KEY_UNSEAL_FAILED',
  );
});

test('truncated or tampered dataset ciphertext fails the run with the age error and no result', async () => {
  const app = await appAsset('cat');
  const data = new Uint8Array(5 * 65536 + 100).fill(65);
  const ds = await asset('t.age', data);
  const truncated = join(fx.dir, 'truncated.age');
  await writeFile(truncated, ds.ciphertext.subarray(0, ds.ciphertext.length - 70_000));
  const tampered = join(fx.dir, 'tampered.age');
  const t = Uint8Array.from(ds.ciphertext);
  t[t.length - 3 * 65552] ^= 1;
  await writeFile(tampered, t);
  for (const [path, codes] of [
    [truncated, ['AGE_PAYLOAD_TRUNCATED', 'AGE_PAYLOAD_INVALID']],
    [tampered, ['AGE_PAYLOAD_INVALID']],
  ] as const) {
    const h = await enclave();
    await h.deliverKeys([
      await sealFor(h, task, 1n, 'app', app.fileKey),
      await sealFor(h, task, 2n, 'dataset', ds.fileKey),
    ]);
    const j = job(app, [{ id: '2', assetId: 2n, a: { ...ds, path } }], requester().recipient);
    await assert.rejects(h.run(j), (e: FerryError) => (codes as readonly string[]).includes(e.code));
    assert.deepEqual((await h.destroy()).exitCode, 0);
  }
});

test('limits inside the enclave: reported in the result and the receipt; the enclave stays healthy', async () => {
  for (const [name, limits, hit] of [
    ['loop', { timeoutMs: 300 }, 'time'],
    ['memory-hog', { memoryMb: 4 }, 'memory'],
    ['output-flood', { maxOutputBytes: 5000 }, 'output'],
  ] as const) {
    const h = await enclave();
    const app = await appAsset(name);
    await h.deliverKeys([await sealFor(h, task, 1n, 'app', app.fileKey)]);
    const rq = requester();
    const out = await h.run({ ...job(app, [], rq.recipient), limits });
    assert.equal(out.limitHit, hit);
    const r = verifyReceipt(out.receipt, out.signature, h.ed25519Pub);
    assert.equal(r.limitHit, hit);
    assert.equal(r.outcome, 'limit');
    const kept = await decrypt([parseIdentity(rq.identity)], out.result);
    assert.equal(kept.length, hit === 'output' ? 5000 : 0);
    assert.deepEqual(await h.destroy(), { exitCode: 0, signal: null, killed: false });
  }
});

test('createEnclave validates its arguments before spawning anything', async () => {
  const base = {
    ...task,
    seed: randomSeed(),
    backend: { kind: 'sim' as const, attesterFile: fx.attesterFile },
  };
  for (const [patch, name] of [
    [{ seed: new Uint8Array(8) }, /seed/],
    [{ taskId: 2n ** 64n }, /taskId/],
    [{ chainId: 1 }, /chainId/],
    [{ attempt: 0 }, /attempt/],
    [{ backend: { kind: 'sgx' } }, /backend/],
    [{ backend: { kind: 'tpm2' } }, /tcti/],
  ] as const) {
    await assert.rejects(
      createEnclave({ ...base, ...patch } as never),
      (e: FerryError) => e.code === 'INVALID_ARGUMENT' && name.test(e.message),
    );
  }
  // A missing attester file: the enclave reports the backend as unavailable, then exits.
  await assert.rejects(
    createEnclave({ ...base, backend: { kind: 'sim', attesterFile: join(fx.dir, 'nope') } }),
    (e: FerryError) => e.code === 'ATTESTATION_BACKEND_UNAVAILABLE',
  );
});

test('plaintext sources are refused outside a development enclave', async () => {
  const h = await enclave();
  const app = await appAsset('cat');
  await h.deliverKeys([await sealFor(h, task, 1n, 'app', app.fileKey)]);
  const j = job(app, [], requester().recipient);
  j.datasets = [{ id: 'p', source: { kind: 'file', location: app.path, encrypted: false } }];
  await assert.rejects(
    h.run(j),
    (e: FerryError) => e.code === 'ENCLAVE_PROTOCOL' && /plaintext/.test(e.message),
  );
  await h.destroy();
  await assert.rejects(
    h.run(j),
    (e: FerryError) => e.code === 'ENCLAVE_PROTOCOL' && /destroyed/.test(e.message),
  );
});

test('an unreachable dataset source fails the run with ENCLAVE_DATA_UNAVAILABLE', async () => {
  const server = createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const h = await enclave();
    const app = await appAsset('count-bytes');
    const ds = await asset('u.age', enc('x'));
    await h.deliverKeys([
      await sealFor(h, task, 1n, 'app', app.fileKey),
      await sealFor(h, task, 2n, 'dataset', ds.fileKey),
    ]);
    const j = job(app, [], requester().recipient);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gone`;
    j.datasets = [{ id: '2', assetId: 2n, source: { kind: 'url', location: url, encrypted: true } }];
    await assert.rejects(
      h.run(j),
      (e: FerryError) => e.code === 'ENCLAVE_DATA_UNAVAILABLE' && /404/.test(e.message),
    );
  } finally {
    server.close();
  }
});
