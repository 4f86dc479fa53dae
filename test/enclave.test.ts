/**
 * Multi-process suite: real enclave processes (sim backend) driven through EnclaveHandle, with
 * assets encrypted by an owner (age), keys released sealed (HPKE), results sealed to the
 * committed requester. The attacker's side of the task commitments is in enclave-attacks.test.ts.
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
import { createEnclave, type EnclaveHandle, type RunJob } from '../src/enclave/handle.ts';
import { verifyReceipt } from '../src/enclave/receipt.ts';
import { type FerryError, toHex } from '../src/kernel/index.ts';
import { reportDataFor } from '../src/protocol/binding.ts';
import { commitmentsHash, type TaskCommitments } from '../src/protocol/commitments.ts';
import {
  commitmentsFor,
  type Fixture,
  fixture,
  ownerEncrypt,
  recipientKey,
  requester,
  sealFor,
  sha256,
} from './enclave-helpers.ts';

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

async function enclave(commitments: TaskCommitments): Promise<EnclaveHandle> {
  const h = await createEnclave({ commitments, backend: { kind: 'sim', attesterFile: fx.attesterFile } });
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

type Ds = { id: bigint; a: Asset };
/** A task: its commitments (app id 1, these datasets and args, a fresh requester) and a job. */
async function task(app: Asset, datasets: Ds[], args: string[] = []) {
  const rq = requester();
  const c = commitmentsFor({
    app: app.plaintext,
    datasets: datasets.map((d) => ({ id: d.id, ciphertext: d.a.ciphertext })),
    args,
    recipient: rq.recipient,
  });
  const h = await enclave(c);
  const job: RunJob = {
    app: { source: { kind: 'file', location: app.path, encrypted: true } },
    datasets: datasets.map((d) => ({
      id: d.id,
      source: { kind: 'file', location: d.a.path, encrypted: true },
    })),
    args,
  };
  const keys = async () => [
    await sealFor(h, 1n, 'app', app.fileKey),
    ...(await Promise.all(datasets.map((d) => sealFor(h, d.id, 'dataset', d.a.fileKey)))),
  ];
  return { h, c, rq, job, keys };
}

/** An empty dataset (tasks name at least one): stdin is empty. */
let emptyDs: Asset | undefined;
async function empty(): Promise<Ds> {
  emptyDs ??= await asset('empty.age', new Uint8Array(0));
  return { id: 2n, a: emptyDs };
}

test('full pipeline: evidence, sealed keys, encrypted app and data, sealed result, verified receipt', async () => {
  const app = await appAsset('sha256');
  const data = new Uint8Array(300_000).map((_, i) => (i * 31) & 0xff);
  const ds = await asset('data.age', data);
  const { h, c, rq, job, keys } = await task(app, [{ id: 2n, a: ds }]);
  // Evidence: sim, bound to the task commitments and to the enclave's keys.
  assert.deepEqual(h.commitmentsHash, commitmentsHash(c));
  const evidence = h.evidence();
  const expected = reportDataFor({ commitments: c, x25519Pub: h.x25519Pub, ed25519Pub: h.ed25519Pub });
  const appraisal = await new SimVerifier({ roots: [fx.root.publicKey] }).appraise(evidence, {
    policy: developmentPolicy(),
    now: new Date(),
    expectedReportData: expected,
  });
  assert.equal(appraisal.accepted, true, JSON.stringify(appraisal.reasons));

  await h.deliverKeys(await keys());
  const out = await h.run(job);
  assert.equal(out.outcome, 'exit');
  assert.equal(out.exitCode, 0);
  const stdout = await decrypt([parseIdentity(rq.identity)], out.result);
  assert.equal(dec(stdout), `${toHex(sha256(data))}  -\n`);
  assert.equal(out.outputBytes, stdout.length);

  const r = verifyReceipt(out.receipt, out.signature, h.ed25519Pub);
  assert.deepEqual(r.appMeasurement, sha256(app.plaintext));
  assert.deepEqual(r.datasets, [{ id: '2', ciphertextHash: sha256(ds.ciphertext), complete: true }]);
  assert.deepEqual(r.commitmentsHash, commitmentsHash(c));
  assert.deepEqual(r.resultRecipient, recipientKey(rq.recipient));
  assert.deepEqual(r.inputHash, c.inputHash);
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
  await assert.rejects(h.run(job), (e: FerryError) => e.code === 'ENCLAVE_PROTOCOL');
  const pid = h.pid!;
  const report = await h.destroy();
  assert.deepEqual(report, { exitCode: 0, signal: null, killed: false });
  assert.equal(h.exited, true);
  assert.throws(() => process.kill(pid, 0), /ESRCH/);
  await assert.rejects(
    h.deliverKeys([await sealFor(h, 2n, 'dataset', ds.fileKey)]),
    (e: FerryError) => e.code === 'ENCLAVE_PROTOCOL',
  );
  assert.deepEqual(await h.destroy(), report);
});

test('several datasets are files under /data/<id>, stdin empty; sources may be URLs', async () => {
  const app = await appAsset('sha256');
  const a = await asset('a.age', enc('alpha\n'.repeat(1000)));
  const b = await asset('b.age', new Uint8Array(200_000).fill(3));
  const server = createServer(async (req, res) => {
    res.end(await readFile(join(fx.dir, req.url === '/b' ? 'b.age' : 'missing')));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/b`;
    const { h, rq, job, keys } = await task(
      app,
      [
        { id: 10n, a },
        { id: 11n, a: b },
      ],
      ['10', '11'],
    );
    job.datasets[1].source = { kind: 'url', location: url, encrypted: true };
    await h.deliverKeys(await keys());
    const out = await h.run(job);
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

test('wrong keys: sealed for other commitments, or the file key of another asset', async () => {
  const app = await appAsset('count-bytes');
  const ds = await asset('d.age', enc('data'));
  const { h, c, job } = await task(app, [{ id: 5n, a: ds }]);
  // Sealed under the commitments of another attempt of the same task.
  const other = commitmentsHash({ ...c, attempt: 2 });
  await assert.rejects(
    h.deliverKeys([await sealFor(h, 1n, 'app', app.fileKey, other)]),
    (e: FerryError) => e.code === 'ENCLAVE_KEY_UNSEAL_FAILED',
  );
  // Sealed to this enclave but under another asset kind than the one it opens.
  await assert.rejects(
    h.deliverKeys([await sealFor(h, 1n, 'dataset', app.fileKey)]),
    (e: FerryError) => e.code === 'ENCLAVE_COMMITMENT_MISMATCH',
  );
  // The dataset's key delivered as the app key: the age header MAC fails; nothing runs.
  await h.deliverKeys([await sealFor(h, 1n, 'app', ds.fileKey), await sealFor(h, 5n, 'dataset', ds.fileKey)]);
  await assert.rejects(h.run(job), (e: FerryError) => e.code === 'AGE_HMAC_INVALID');
  // No key at all for a dataset.
  const t2 = await task(app, [{ id: 5n, a: ds }]);
  await t2.h.deliverKeys([await sealFor(t2.h, 1n, 'app', app.fileKey)]);
  await assert.rejects(t2.h.run(t2.job), (e: FerryError) => e.code === 'ENCLAVE_KEY_UNSEAL_FAILED');
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
    const { h, job, keys } = await task(app, [{ id: 2n, a: ds }]);
    await h.deliverKeys(await keys());
    job.datasets[0].source = { kind: 'file', location: path, encrypted: true };
    await assert.rejects(h.run(job), (e: FerryError) => (codes as readonly string[]).includes(e.code));
    assert.deepEqual((await h.destroy()).exitCode, 0);
  }
});

test('limits inside the enclave: reported in the result and the receipt; the enclave stays healthy', async () => {
  for (const [name, limits, hit] of [
    ['loop', { timeoutMs: 300 }, 'time'],
    ['memory-hog', { memoryMb: 4 }, 'memory'],
    ['output-flood', { maxOutputBytes: 5000 }, 'output'],
  ] as const) {
    const app = await appAsset(name);
    const { h, rq, job, keys } = await task(app, [await empty()]);
    await h.deliverKeys(await keys());
    const out = await h.run({ ...job, limits });
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
  const app = await appAsset('cat');
  const rq = requester();
  const c = commitmentsFor({
    app: app.plaintext,
    datasets: [{ id: 1n, ciphertext: app.ciphertext }],
    recipient: rq.recipient,
  });
  const base = { commitments: c, backend: { kind: 'sim' as const, attesterFile: fx.attesterFile } };
  for (const [patch, name] of [
    [{ commitments: { ...c, seed: new Uint8Array(8) } }, /seed/],
    [{ commitments: { ...c, taskId: 2n ** 64n } }, /taskId/],
    [{ commitments: { ...c, chainId: -1n } }, /chainId/],
    [{ commitments: { ...c, attempt: 0 } }, /attempt/],
    [{ commitments: { ...c, resultRecipient: new Uint8Array(32) } }, /resultRecipient/],
    [{ commitments: { ...c, datasets: [] } }, /datasets/],
    [{ commitments: undefined }, /body/],
    [{ backend: { kind: 'sgx' } }, /backend/],
    [{ backend: { kind: 'tpm2' } }, /tcti/],
  ] as const) {
    await assert.rejects(
      createEnclave({ ...base, ...patch } as never),
      (e: FerryError) => e.code === 'INVALID_ARGUMENT' && name.test(e.message),
      name.source,
    );
  }
  // A missing attester file: the enclave reports the backend as unavailable, then exits.
  await assert.rejects(
    createEnclave({ ...base, backend: { kind: 'sim', attesterFile: join(fx.dir, 'nope') } }),
    (e: FerryError) => e.code === 'ATTESTATION_BACKEND_UNAVAILABLE',
  );
});

test('plaintext sources are refused by the attested runtime', async () => {
  const app = await appAsset('cat');
  const { h, job, keys } = await task(app, [await empty()]);
  await h.deliverKeys(await keys());
  job.datasets[0].source = { kind: 'file', location: app.path, encrypted: false };
  await assert.rejects(
    h.run(job),
    (e: FerryError) => e.code === 'ENCLAVE_PROTOCOL' && /encrypted/.test(e.message),
  );
  await h.destroy();
  await assert.rejects(
    h.run(job),
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
    const app = await appAsset('count-bytes');
    const ds = await asset('u.age', enc('x'));
    const { h, job, keys } = await task(app, [{ id: 2n, a: ds }]);
    await h.deliverKeys(await keys());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gone`;
    job.datasets[0].source = { kind: 'url', location: url, encrypted: true };
    await assert.rejects(
      h.run(job),
      (e: FerryError) => e.code === 'ENCLAVE_DATA_UNAVAILABLE' && /404/.test(e.message),
    );
  } finally {
    server.close();
  }
});

test('time limit from outside the process: an enclave that stops answering during the app is killed (ENCLAVE_LIMIT_TIME)', async () => {
  // The attacker freezes the whole enclave process (SIGSTOP) once the app has started — a stand-in
  // for anything that keeps it from reporting: its own limit timer cannot fire. The handle, told
  // `app-started`, kills it past the time limit and the run fails with a clear code.
  let h: EnclaveHandle | undefined;
  const server = createServer(() => {
    // The app's input is requested once runApp has begun (after `app-started`): freeze now.
    if (h?.pid) process.kill(h.pid, 'SIGSTOP');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const app = await appAsset('loop');
    const ds = await asset('frozen.age', enc('never read'));
    const t = await task(app, [{ id: 2n, a: ds }]);
    h = t.h;
    await h.deliverKeys(await t.keys());
    t.job.datasets[0].source = {
      kind: 'url',
      location: `http://127.0.0.1:${(server.address() as AddressInfo).port}/frozen`,
      encrypted: true,
    };
    await assert.rejects(
      h.run({ ...t.job, limits: { timeoutMs: 300 } }),
      (e: FerryError) => e.code === 'ENCLAVE_LIMIT_TIME' && /killed/.test(e.message),
    );
    assert.ok(h.exited, 'the enclave process is gone');
    const report = await h.destroy();
    assert.equal(report.signal, 'SIGKILL');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
