/**
 * Issue 13 item 4, the last resort of the time limit: an app thread that ignores its termination
 * (blocked in a native operation) is abandoned after the limit (src/enclave/runner.ts), and the
 * enclave process then cannot end by `process.exit` (Node joins its threads), so it ends itself
 * with SIGKILL once its keys are wiped (src/enclave/process.ts). Played with a real enclave
 * process whose app thread blocks on a FIFO (test/helpers/stuck-app-enclave.ts): the run ends
 * with the time limit, `destroy` is answered, and the process is gone by its own SIGKILL — the
 * host never had to kill it (its own kill waits far longer than any run here takes).
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureExamplesBuilt, examplePath } from '../examples/index.ts';
import { startEnclave } from '../src/enclave/handle.ts';
import {
  commitmentsFor,
  type Fixture,
  fixture,
  ownerEncrypt,
  requester,
  sealFor,
} from './enclave-helpers.ts';

const STUCK = fileURLToPath(new URL('./helpers/stuck-app-enclave.ts', import.meta.url));
let fx: Fixture;
const fifoDirs: string[] = [];

before(async () => {
  await ensureExamplesBuilt();
  fx = await fixture();
});
after(async () => {
  for (const d of fifoDirs) await rm(d, { recursive: true, force: true });
  await fx.cleanup();
});

test('time limit: an enclave whose app thread cannot be terminated still answers, wipes and ends itself by SIGKILL', async () => {
  const appPlain = new Uint8Array(await readFile(examplePath('count-bytes')));
  const app = await ownerEncrypt(fx.dir, 'app.wasm.age', appPlain);
  const data = await ownerEncrypt(fx.dir, 'data.age', new TextEncoder().encode('a,b\n1,2\n'));
  const rq = requester();
  const c = commitmentsFor({
    app: appPlain,
    datasets: [{ id: 2n, ciphertext: data.ciphertext }],
    recipient: rq.recipient,
  });
  const log: string[] = [];
  const h = await startEnclave(STUCK, {
    commitments: c,
    backend: { kind: 'sim', attesterFile: fx.attesterFile },
    onLog: (l) => {
      log.push(l);
      const m = /^stuck-app fifo dir: (.+)$/.exec(l);
      if (m) fifoDirs.push(m[1] as string);
    },
    // The host's own kill comes only after two minutes: an exit before that is the enclave's.
    exitTimeoutMs: 120_000,
  });
  try {
    await h.deliverKeys([
      await sealFor(h, 1n, 'app', app.fileKey),
      await sealFor(h, 2n, 'dataset', data.fileKey),
    ]);
    const out = await h.run({
      app: { source: { kind: 'file', location: app.path, encrypted: true } },
      datasets: [{ id: 2n, source: { kind: 'file', location: data.path, encrypted: true } }],
      args: [],
      limits: { timeoutMs: 200 },
    });
    assert.deepEqual([out.outcome, out.limitHit], ['limit', 'time']);
  } finally {
    const report = await h.destroy();
    assert.deepEqual(
      { signal: report.signal, killed: report.killed },
      { signal: 'SIGKILL', killed: false },
      `the enclave ended itself (log: ${log.join(' | ')})`,
    );
  }
  assert.equal(fifoDirs.length, 1, 'the stuck entry point started');
});
