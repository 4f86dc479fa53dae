import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { ensureExamplesBuilt, examplePath } from '../../examples/index.ts';
import {
  commitmentsFor,
  type Fixture,
  fixture,
  ownerEncrypt,
  requester,
  sealFor,
} from '../../test/enclave-helpers.ts';
import { isFerryError } from '../kernel/index.ts';
import { createEnclave, DEV_PROCESS_FILE, PROCESS_FILE } from './handle.ts';
import { EnclavePool } from './pool.ts';

let fx: Fixture;
let appPlain: Uint8Array;
let app: Awaited<ReturnType<typeof ownerEncrypt>>;
let data: Awaited<ReturnType<typeof ownerEncrypt>>;
const pools: EnclavePool[] = [];

before(async () => {
  await ensureExamplesBuilt();
  fx = await fixture();
  appPlain = new Uint8Array(await readFile(examplePath('count-bytes')));
  app = await ownerEncrypt(fx.dir, 'app.wasm.age', appPlain);
  data = await ownerEncrypt(fx.dir, 'data.age', new TextEncoder().encode('a,b\n1,2\n'));
});
after(async () => {
  for (const p of pools) p.close();
  await fx.cleanup();
});

function pool(size: number, entry?: string): EnclavePool {
  const p = new EnclavePool({ size, entry });
  pools.push(p);
  return p;
}

const commitments = () =>
  commitmentsFor({
    app: appPlain,
    datasets: [{ id: 2n, ciphertext: data.ciphertext }],
    recipient: requester().recipient,
  });

test('pool: each attempt takes a process never used before; its keys are made at init, for it alone', async () => {
  const p = pool(2);
  assert.equal(p.ready, 2);
  const c = commitments();
  const pids = new Set<number>();
  const keys = new Set<string>();
  for (let i = 0; i < 3; i++) {
    // The same commitments each time: what differs can only have been made inside, per process.
    const h = await createEnclave({
      commitments: c,
      backend: { kind: 'sim', attesterFile: fx.attesterFile },
      pool: p,
    });
    try {
      assert.equal(p.ready, 2, 'a taken process is replaced at once');
      assert.ok(h.pid !== undefined && !pids.has(h.pid), 'a process is never handed out twice');
      pids.add(h.pid);
      keys.add(Buffer.from(h.x25519Pub).toString('hex'));
      keys.add(Buffer.from(h.ed25519Pub).toString('hex'));
      await h.deliverKeys([
        await sealFor(h, 1n, 'app', app.fileKey),
        await sealFor(h, 2n, 'dataset', data.fileKey),
      ]);
      const out = await h.run({
        app: { source: { kind: 'file', location: app.path, encrypted: true } },
        datasets: [{ id: 2n, source: { kind: 'file', location: data.path, encrypted: true } }],
        args: [],
      });
      assert.equal(out.exitCode, 0);
    } finally {
      assert.deepEqual(await h.destroy(), { exitCode: 0, signal: null, killed: false });
    }
  }
  assert.equal(keys.size, 6, 'fresh X25519 and Ed25519 keys in every enclave');
});

test('pool: a key sealed to one pooled enclave does not open in the next one', async () => {
  const p = pool(2);
  const c = commitments();
  const backend = { kind: 'sim' as const, attesterFile: fx.attesterFile };
  const first = await createEnclave({ commitments: c, backend, pool: p });
  const second = await createEnclave({ commitments: c, backend, pool: p });
  try {
    const sealedToFirst = await sealFor(first, 1n, 'app', app.fileKey);
    await assert.rejects(second.deliverKeys([sealedToFirst]), (e) =>
      isFerryError(e, 'ENCLAVE_KEY_UNSEAL_FAILED'),
    );
  } finally {
    await first.destroy();
    await second.destroy();
  }
});

test('pool: an idle process that dies is dropped and replaced; repeated deaths stop the refill, and enclaves are then spawned on demand', async () => {
  const p = pool(1);
  for (let i = 0; i < 3; i++) {
    assert.equal(p.ready, 1);
    const idle = p.take(PROCESS_FILE);
    assert.ok(idle);
    // A taken process is the caller's: killing it does not count as an idle death.
    idle.child.kill('SIGKILL');
    await once(idle.child, 'exit');
  }
  assert.equal(p.ready, 1, 'taken processes are replaced');
  // Idle deaths: the process dies while in the pool.
  for (let i = 0; i < 3; i++) {
    const pid = await waitReady(p);
    process.kill(pid, 'SIGKILL');
    await waitUntil(() => p.ready === 0 || currentPid(p) !== pid);
  }
  assert.equal(p.ready, 0, 'after three idle deaths in a row the pool stops refilling');
  const h = await createEnclave({
    commitments: commitments(),
    backend: { kind: 'sim', attesterFile: fx.attesterFile },
    pool: p,
  });
  await h.destroy();
});

test('pool: another entry point is never served; close kills the idle processes', async () => {
  const p = pool(1);
  assert.equal(p.take(DEV_PROCESS_FILE), undefined, 'the development runtime is not the pooled one');
  assert.equal(p.ready, 1);
  const pid = currentPid(p);
  p.close();
  assert.equal(p.ready, 0);
  assert.equal(p.take(PROCESS_FILE), undefined);
  await waitUntil(() => !alive(pid));
  assert.throws(
    () => new EnclavePool({ size: 17 }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  assert.throws(
    () => new EnclavePool({ size: -1 }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
});

function currentPid(p: EnclavePool): number {
  const pid = p.idlePids()[0];
  if (pid === undefined) throw new Error('no idle process');
  return pid;
}
async function waitReady(p: EnclavePool): Promise<number> {
  await waitUntil(() => p.ready > 0);
  return currentPid(p);
}
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
async function waitUntil(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}
