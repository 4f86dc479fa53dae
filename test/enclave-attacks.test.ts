/**
 * The hostile executor (security review findings 1 and 14, issue 11): real enclave processes,
 * with this process as their host, playing an executor that received the owners' genuine keys
 * for a task and tries to get the data out anyway. Each attack must lose: the enclave was
 * created for the task's commitments (app, input, datasets, result recipient) and enforces them.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ExampleName, ensureExamplesBuilt, examplePath } from '../examples/index.ts';
import { appraiseEvidence, defaultVerifiers } from '../src/attestation/appraise.ts';
import { decrypt, generateX25519Identity, parseIdentity } from '../src/crypto/age/index.ts';
import { CHUNK_SIZE, NONCE_SIZE, PayloadEncryptor, TAG_SIZE } from '../src/crypto/age/stream.ts';
import { createDevEnclave, developmentMeasurement } from '../src/enclave/dev.ts';
import { createEnclave, type EnclaveHandle, type RunJob } from '../src/enclave/handle.ts';
import { runtimeMeasurement } from '../src/enclave/measure.ts';
import { type Message, readFrames, writeFrame } from '../src/enclave/protocol.ts';
import { verifyReceipt } from '../src/enclave/receipt.ts';
import { type CanonicalValue, type FerryError, toHex } from '../src/kernel/index.ts';
import { reportDataFor } from '../src/protocol/binding.ts';
import { commitmentsHash, commitmentsValue, type TaskCommitments } from '../src/protocol/commitments.ts';
import { pinnedDevelopmentPolicy } from '../src/enclave/policies.ts';
import {
  commitmentsFor,
  type Fixture,
  fixture,
  ownerEncrypt,
  recipientKey,
  requester,
  sealFor,
} from './enclave-helpers.ts';

const MAIN = fileURLToPath(new URL('../src/enclave/main.ts', import.meta.url));
/** The owner's secret: it must appear in nothing the host receives. */
const SECRET = 'patient,diagnosis\nalice,HIV+\nbob,diabetes\n';
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

let fx: Fixture;
const open: EnclaveHandle[] = [];
type Asset = { path: string; ciphertext: Uint8Array; fileKey: Uint8Array; plaintext: Uint8Array };
let genuineApp: Asset;
let data: Asset;
let otherData: Asset;

async function asset(name: string, plaintext: Uint8Array): Promise<Asset> {
  return { ...(await ownerEncrypt(fx.dir, name, plaintext)), plaintext };
}
const appAsset = async (name: ExampleName, file = `${name}.wasm.age`) =>
  asset(file, new Uint8Array(await readFile(examplePath(name))));

before(async () => {
  await ensureExamplesBuilt();
  fx = await fixture();
  // The task: the owner-approved app counts bytes; it never prints the data.
  genuineApp = await appAsset('count-bytes');
  data = await asset('patients.age', enc(SECRET));
  otherData = await asset('other.age', enc('more,rows\n1,2\n'));
});
after(async () => {
  await Promise.all(open.map((h) => h.destroy()));
  await fx.cleanup();
});

/** The task as the chain fixes it: genuine app (id 1), dataset 2 (and 3), args, requester. */
function theTask(o: { args?: string[]; two?: boolean } = {}) {
  const rq = requester();
  const datasets = [{ id: 2n, ciphertext: data.ciphertext }];
  if (o.two) datasets.push({ id: 3n, ciphertext: otherData.ciphertext });
  const c = commitmentsFor({
    app: genuineApp.plaintext,
    datasets,
    args: o.args ?? [],
    recipient: rq.recipient,
  });
  return { c, rq };
}

async function enclave(commitments: TaskCommitments, onLog?: (l: string) => void): Promise<EnclaveHandle> {
  const h = await createEnclave({
    commitments,
    backend: { kind: 'sim', attesterFile: fx.attesterFile },
    onLog,
  });
  open.push(h);
  return h;
}

/** The owners' genuine releases for the task (what the executor legitimately receives). */
async function ownersRelease(h: EnclaveHandle, two = false) {
  const keys = [
    await sealFor(h, 1n, 'app', genuineApp.fileKey),
    await sealFor(h, 2n, 'dataset', data.fileKey),
  ];
  if (two) keys.push(await sealFor(h, 3n, 'dataset', otherData.fileKey));
  await h.deliverKeys(keys);
}

const file = (path: string) => ({ kind: 'file' as const, location: path, encrypted: true });

/** A server that counts the requests for the inputs it serves (to show nothing was fetched). */
async function countingServer(
  files: Record<string, string>,
): Promise<{ server: Server; url: (p: string) => string; hits: () => number }> {
  let hits = 0;
  const server = createServer(async (req, res) => {
    hits++;
    const f = files[req.url ?? ''];
    if (!f) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.end(await readFile(f));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { server, url: (p) => `http://127.0.0.1:${port}${p}`, hits: () => hits };
}

/** Everything a host saw of a failure, as text. */
const seen = (e: unknown, log: string[]) =>
  JSON.stringify({ message: (e as Error).message, hints: (e as FerryError).hints, log });

test('(a) the host seals its own app key under the committed app id: measurement mismatch, no plaintext out', async () => {
  // HPKE base mode: anyone can seal to the enclave's public key under the right info.
  const own = await appAsset('cat', 'host-cat.wasm.age');
  const { c } = theTask();
  for (const replaceGenuine of [false, true]) {
    const log: string[] = [];
    const h = await enclave(c, (l) => log.push(l));
    if (replaceGenuine) await ownersRelease(h);
    await h.deliverKeys([
      await sealFor(h, 1n, 'app', own.fileKey),
      ...(replaceGenuine ? [] : [await sealFor(h, 2n, 'dataset', data.fileKey)]),
    ]);
    const err = await h
      .run({ app: { source: file(own.path) }, datasets: [{ id: 2n, source: file(data.path) }], args: [] })
      .then(
        () => assert.fail('the host app ran'),
        (e) => e,
      );
    assert.equal(err.code, 'ENCLAVE_MEASUREMENT_MISMATCH');
    assert.ok(!seen(err, log).includes('HIV'), 'dataset plaintext reached the host');
    assert.deepEqual((await h.destroy()).exitCode, 0);
  }
});

test('(b) a key for an asset the commitments do not name is refused, and nothing of that message is kept', async () => {
  const { c } = theTask();
  const h = await enclave(c);
  const own = await appAsset('cat', 'host-cat-b.wasm.age');
  for (const [id, kind] of [
    [7n, 'app'],
    [1n, 'dataset'],
    [3n, 'dataset'],
  ] as const) {
    await assert.rejects(
      h.deliverKeys([await sealFor(h, id, kind, own.fileKey)]),
      (e: FerryError) => e.code === 'ENCLAVE_COMMITMENT_MISMATCH' && e.message.includes(`${kind} ${id}`),
    );
  }
  // A genuine key in the same message as a refused one is not kept either.
  await assert.rejects(
    h.deliverKeys([
      await sealFor(h, 1n, 'app', genuineApp.fileKey),
      await sealFor(h, 9n, 'dataset', data.fileKey),
    ]),
    (e: FerryError) => e.code === 'ENCLAVE_COMMITMENT_MISMATCH',
  );
  await h.deliverKeys([await sealFor(h, 2n, 'dataset', data.fileKey)]);
  await assert.rejects(
    h.run({
      app: { source: file(genuineApp.path) },
      datasets: [{ id: 2n, source: file(data.path) }],
      args: [],
    }),
    (e: FerryError) => e.code === 'ENCLAVE_KEY_UNSEAL_FAILED' && /app 1/.test(e.message),
  );
});

test('(c) other arguments than the committed input: refused before anything is fetched', async () => {
  const srv = await countingServer({ '/app': genuineApp.path, '/d2': data.path });
  try {
    const { c } = theTask({ args: ['--column', 'salary'] });
    for (const args of [[], ['--column', 'name'], ['--column', 'salary', 'x']]) {
      const h = await enclave(c);
      await ownersRelease(h);
      await assert.rejects(
        h.run({
          app: { source: { kind: 'url', location: srv.url('/app'), encrypted: true } },
          datasets: [{ id: 2n, source: { kind: 'url', location: srv.url('/d2'), encrypted: true } }],
          args,
        }),
        (e: FerryError) => e.code === 'ENCLAVE_COMMITMENT_MISMATCH' && /arguments/.test(e.message),
      );
      await h.destroy();
    }
    assert.equal(srv.hits(), 0, 'the enclave fetched an input before refusing');
  } finally {
    srv.server.close();
  }
});

test('(d) other datasets than committed, in another order, or fewer: refused before anything is fetched', async () => {
  const srv = await countingServer({ '/app': genuineApp.path, '/d2': data.path, '/d3': otherData.path });
  const url = (p: string) => ({ kind: 'url' as const, location: srv.url(p), encrypted: true });
  try {
    const { c } = theTask({ two: true });
    for (const datasets of [
      [
        { id: 3n, source: url('/d3') },
        { id: 2n, source: url('/d2') },
      ],
      [{ id: 2n, source: url('/d2') }],
      [
        { id: 2n, source: url('/d2') },
        { id: 4n, source: url('/d3') },
      ],
      [
        { id: 2n, source: url('/d2') },
        { id: 3n, source: url('/d3') },
        { id: 3n, source: url('/d3') },
      ],
    ]) {
      const h = await enclave(c);
      await ownersRelease(h, true);
      await assert.rejects(
        h.run({ app: { source: url('/app') }, datasets, args: [] }),
        (e: FerryError) => e.code === 'ENCLAVE_COMMITMENT_MISMATCH',
      );
      await h.destroy();
    }
    assert.equal(srv.hits(), 0);
  } finally {
    srv.server.close();
  }
});

/** Another age file under the same file key (the owner made both): same header, other payload. */
function sameKeyOtherContent(a: Asset, plaintext: Uint8Array): Uint8Array {
  const chunks = Math.max(1, Math.ceil(a.plaintext.length / CHUNK_SIZE));
  const headerLen = a.ciphertext.length - NONCE_SIZE - a.plaintext.length - chunks * TAG_SIZE;
  const parts: Uint8Array[] = [a.ciphertext.subarray(0, headerLen)];
  const e = new PayloadEncryptor(a.fileKey, new Uint8Array(randomBytes(NONCE_SIZE)), (b) =>
    parts.push(Uint8Array.from(b)),
  );
  e.push(plaintext);
  e.end();
  return new Uint8Array(Buffer.concat(parts));
}

test('(e) a dataset ciphertext swapped for another file under the same key: no result', async () => {
  const swappedPath = join(fx.dir, 'swapped.age');
  await writeFile(swappedPath, sameKeyOtherContent(data, enc('x\n'.repeat(50))));
  const { c, rq } = theTask();
  const h = await enclave(c);
  await ownersRelease(h);
  // The swapped file opens with the owner's key (the header MAC holds): only its hash differs.
  await assert.rejects(
    h.run({
      app: { source: file(genuineApp.path) },
      datasets: [{ id: 2n, source: file(swappedPath) }],
      args: [],
    }),
    (e: FerryError) =>
      e.code === 'ENCLAVE_COMMITMENT_MISMATCH' && /dataset 2/.test(e.message) && /no result/.test(e.message),
  );
  // The committed file gives a result to the requester.
  const { c: c2, rq: rq2 } = theTask();
  const h2 = await enclave(c2);
  await ownersRelease(h2);
  const out = await h2.run({
    app: { source: file(genuineApp.path) },
    datasets: [{ id: 2n, source: file(data.path) }],
    args: [],
  });
  assert.equal(dec(await decrypt([parseIdentity(rq2.identity)], out.result)), `${SECRET.length}\n`);
  assert.notEqual(rq.identity, rq2.identity);
});

test('(f) the result goes to the committed recipient only; the receipt names it and the commitments', async () => {
  const { c, rq } = theTask();
  const h = await enclave(c);
  await ownersRelease(h);
  const job: RunJob = {
    app: { source: file(genuineApp.path) },
    datasets: [{ id: 2n, source: file(data.path) }],
    args: [],
  };
  const out = await h.run(job);
  assert.equal(dec(await decrypt([parseIdentity(rq.identity)], out.result)), `${SECRET.length}\n`);
  const host = generateX25519Identity();
  for (const ct of [out.result, out.log]) {
    await assert.rejects(decrypt([parseIdentity(host.identity)], ct), (e: FerryError) =>
      e.code.startsWith('AGE_'),
    );
  }
  const r = verifyReceipt(out.receipt, out.signature, h.ed25519Pub);
  assert.deepEqual(r.resultRecipient, recipientKey(rq.recipient));
  assert.deepEqual(r.commitmentsHash, commitmentsHash(c));
  assert.deepEqual(r.inputHash, c.inputHash);
  assert.deepEqual(r.appMeasurement, c.appMeasurement);
  assert.deepEqual(r.datasets, [{ id: '2', ciphertextHash: c.datasets[0].ciphertextHash, complete: true }]);
});

/** A raw host on the enclave's pipe: sends any message it likes. */
function rawEnclave(entry = MAIN): { call: (m: Message) => Promise<Message>; child: ChildProcess } {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', entry], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: {},
  });
  const pipe = child.stdio[3] as Socket;
  const waiting: ((m: Message) => void)[] = [];
  readFrames(
    pipe,
    (m) => waiting.shift()?.(m),
    () => {},
  );
  return {
    child,
    call: async (m) => {
      const answer = new Promise<Message>((r) => waiting.push(r));
      await writeFrame(pipe, m);
      return answer;
    },
  };
}

async function endRaw(r: ReturnType<typeof rawEnclave>): Promise<void> {
  const exited = new Promise((res) => r.child.once('exit', res));
  if (r.child.exitCode === null) {
    await r.call({ type: 'destroy' });
    await exited;
  }
}

test('(f) a run naming a recipient, or any other unknown field, is refused', async () => {
  const { c } = theTask();
  const host = generateX25519Identity();
  const extras: Record<string, CanonicalValue>[] = [
    { recipient: host.recipient },
    { measurement: genuineApp.ciphertext.subarray(0, 32) },
  ];
  for (const extra of extras) {
    const r = rawEnclave();
    try {
      const ready = await r.call({
        type: 'init',
        commitments: commitmentsValue(c),
        backend: { kind: 'sim', attesterFile: fx.attesterFile },
      });
      assert.equal(ready.type, 'ready');
      const answer = await r.call({
        type: 'run',
        app: { source: file(genuineApp.path) },
        datasets: [{ id: 2n, source: file(data.path) }],
        args: [],
        ...extra,
      });
      assert.equal(answer.type, 'error');
      assert.equal(answer.code, 'ENCLAVE_PROTOCOL');
      assert.match(String(answer.message), new RegExp(Object.keys(extra)[0]));
    } finally {
      await endRaw(r);
    }
  }
});

test('(g) the attested runtime has no plaintext switch', async () => {
  const { c } = theTask();
  const r = rawEnclave();
  try {
    const init = {
      type: 'init',
      commitments: commitmentsValue(c),
      backend: { kind: 'sim', attesterFile: fx.attesterFile },
    };
    const refused = await r.call({ ...init, devPlaintext: true });
    assert.deepEqual([refused.type, refused.code], ['error', 'ENCLAVE_PROTOCOL']);
    assert.match(String(refused.message), /devPlaintext/);
    // Initialised properly, it still refuses plaintext sources.
    assert.equal((await r.call(init)).type, 'ready');
    const plain = join(fx.dir, 'plain.csv');
    await writeFile(plain, SECRET);
    const answer = await r.call({
      type: 'run',
      app: { source: { kind: 'file', location: examplePath('cat'), encrypted: false } },
      datasets: [{ id: 2n, source: { kind: 'file', location: plain, encrypted: false } }],
      args: [],
    });
    assert.deepEqual([answer.type, answer.code], ['error', 'ENCLAVE_PROTOCOL']);
  } finally {
    await endRaw(r);
  }
  // Malformed commitments are refused with the field named.
  const bad = rawEnclave();
  try {
    const answer = await bad.call({
      type: 'init',
      commitments: { ...(commitmentsValue(c) as object), inputHash: new Uint8Array(3) },
      backend: { kind: 'sim', attesterFile: fx.attesterFile },
    });
    assert.deepEqual([answer.type, answer.code], ['error', 'ENCLAVE_PROTOCOL']);
    assert.match(String(answer.message), /inputHash/);
  } finally {
    await endRaw(bad);
  }
});

test('(g) the development entry point reports its own measurement: a policy pinning the runtime rejects it', async () => {
  const { c } = theTask();
  const policy = await pinnedDevelopmentPolicy();
  const registry = defaultVerifiers({ sim: { roots: [fx.root.publicKey] } });
  const appraise = (h: EnclaveHandle) =>
    appraiseEvidence(
      h.evidence(),
      {
        policy,
        now: new Date(),
        expectedReportData: reportDataFor({
          commitments: c,
          x25519Pub: h.x25519Pub,
          ed25519Pub: h.ed25519Pub,
        }),
      },
      registry,
    );
  const attested = await enclave(c);
  const ok = await appraise(attested);
  assert.equal(ok.accepted, true, JSON.stringify(ok.reasons));

  const dev = await createDevEnclave({
    commitments: c,
    backend: { kind: 'sim', attesterFile: fx.attesterFile },
  });
  open.push(dev);
  assert.notEqual(toHex(await developmentMeasurement()), toHex(await runtimeMeasurement()));
  const refused = await appraise(dev);
  assert.equal(refused.accepted, false);
  assert.ok(
    refused.reasons.some((x) => x.code === 'ATTESTATION_MEASUREMENT_MISMATCH'),
    JSON.stringify(refused.reasons),
  );
  // The development entry runs only with the sim backend.
  await assert.rejects(
    createDevEnclave({ commitments: c, backend: { kind: 'tdx' } as never }),
    (e: FerryError) => e.code === 'INVALID_ARGUMENT' && /sim/.test(e.message),
  );
  // And it does take plaintext (what `ferry app run` needs), still within the commitments.
  const plain = join(fx.dir, 'plain-dev.csv');
  await writeFile(plain, SECRET);
  const rq = requester();
  const dc = commitmentsFor({
    app: genuineApp.plaintext,
    datasets: [{ id: 1n, ciphertext: enc(SECRET) }],
    recipient: rq.recipient,
  });
  const d2 = await createDevEnclave({
    commitments: dc,
    backend: { kind: 'sim', attesterFile: fx.attesterFile },
  });
  open.push(d2);
  const out = await d2.run({
    app: { source: { kind: 'file', location: examplePath('count-bytes'), encrypted: false } },
    datasets: [{ id: 1n, name: 'plain.csv', source: { kind: 'file', location: plain, encrypted: false } }],
    args: [],
  });
  assert.equal(dec(await decrypt([parseIdentity(rq.identity)], out.result)), `${SECRET.length}\n`);
  assert.equal(verifyReceipt(out.receipt, out.signature, d2.ed25519Pub).datasets[0].id, 'plain.csv');
});
