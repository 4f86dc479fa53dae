/**
 * An enclave entry point for test/enclave-stuck.test.ts: the attested runtime (process.ts with
 * ATTESTED_PROFILE) whose app thread, once given its app, blocks in a system call that V8 cannot
 * interrupt (a read of a FIFO nobody writes). This is the thread an app would be if it found a
 * way to hang inside a native operation: `worker.terminate()` does not reach it, and Node's
 * `process.exit` would wait for it. The FIFO's directory is printed on stderr (a public log
 * line) so that the test can remove it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

const dir = mkdtempSync(join(tmpdir(), 'ferry-stuck-app-'));
const fifo = join(dir, 'fifo');
// The enclave's environment has no PATH.
execFileSync('/usr/bin/mkfifo', [fifo]);
process.stderr.write(`stuck-app fifo dir: ${dir}\n`);
const appWorker = new Worker(
  `require('node:worker_threads').parentPort.once('message', () => {
    require('node:fs').readFileSync(${JSON.stringify(fifo)});
  });`,
  { eval: true },
);
const { ATTESTED_PROFILE, main } = await import('../../src/enclave/process.ts');
main({ appWorker }, ATTESTED_PROFILE);
