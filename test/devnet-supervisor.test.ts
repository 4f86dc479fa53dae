/** The devnet supervisor with real child processes: readiness, restarts, reverse-order stop. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { claimPidFile, isAlive, readLivePid, releasePidFile, stopDevnet } from '../src/devnet/pidfile.ts';
import { Supervisor } from '../src/devnet/supervisor.ts';
import { isFerryError } from '../src/kernel/index.ts';

const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

/** A child that prints a readiness line after `delay` ms and records its SIGTERM in `order`. */
function child(
  name: string,
  dir: string,
  opts: { delay?: number; exitAfter?: number; ready?: boolean } = {},
) {
  const script = `
    const fs = require('node:fs');
    process.on('SIGTERM', () => { fs.appendFileSync(${JSON.stringify(join(dir, 'order'))}, ${JSON.stringify(name)} + '\\n'); process.exit(0); });
    console.log('starting');
    setTimeout(() => {
      ${opts.ready === false ? '' : `console.log(JSON.stringify({ ready: true, name: ${JSON.stringify(name)}, pid: process.pid }));`}
      ${opts.exitAfter !== undefined ? `setTimeout(() => process.exit(3), ${opts.exitAfter});` : ''}
    }, ${opts.delay ?? 10});
    setInterval(() => {}, 1000);
  `;
  return {
    name,
    command: process.execPath,
    args: ['-e', script],
    logFile: join(dir, `${name}.log`),
    readyTimeoutMs: 5000,
  };
}

test('children become ready and are stopped in reverse order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sup-'));
  const sup = new Supervisor({ log: quiet });
  try {
    const a = await sup.start(child('a', dir));
    const b = await sup.start(child('b', dir, { delay: 100 }));
    assert.equal(a.name, 'a');
    assert.equal(b.name, 'b');
    assert.deepEqual(
      sup.children().map((c) => c.state),
      ['ready', 'ready'],
    );
    const pids = sup.children().map((c) => c.pid!);
    await sup.stopAll();
    assert.deepEqual(readFileSync(join(dir, 'order'), 'utf8').trim().split('\n'), ['b', 'a']);
    assert.ok(pids.every((p) => !isAlive(p)));
    assert.match(readFileSync(join(dir, 'a.log'), 'utf8'), /starting/);
  } finally {
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a child that never becomes ready fails start and is stopped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sup-'));
  const sup = new Supervisor({ log: quiet });
  try {
    const spec = { ...child('mute', dir, { ready: false }), readyTimeoutMs: 300 };
    await assert.rejects(sup.start(spec), (e) => isFerryError(e, 'DEVNET_CHILD_FAILED'));
    assert.equal(sup.children()[0].state, 'failed');
    assert.ok(!isAlive(sup.children()[0].pid!));
    const crash = { ...child('crash', dir), args: ['-e', 'process.exit(5)'] };
    await assert.rejects(
      sup.start(crash),
      (e) => isFerryError(e, 'DEVNET_CHILD_FAILED') && /exit: 5/.test(e.hints.join()),
    );
  } finally {
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a child that keeps exiting is restarted a bounded number of times, then reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sup-'));
  let fatal: string | null = null;
  const sup = new Supervisor({
    log: quiet,
    onFatal: (name) => {
      fatal = name;
    },
  });
  try {
    await sup.start({ ...child('flaky', dir, { exitAfter: 50 }), maxRestarts: 2 });
    for (let i = 0; i < 100 && fatal === null; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(fatal, 'flaky');
    assert.equal(sup.children()[0].restarts, 2);
    assert.equal(sup.children()[0].state, 'failed');
  } finally {
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pid file: claim, refuse a second live claim, replace a stale one, stop by signal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pid-'));
  const path = join(dir, 'devnet.pid');
  const sup = new Supervisor({ log: quiet });
  try {
    await assert.rejects(stopDevnet(path), (e) => isFerryError(e, 'DEVNET_NOT_RUNNING'));
    claimPidFile(path);
    assert.equal(readLivePid(path), process.pid);
    const other = await sup.start(child('holder', dir));
    assert.throws(
      () => claimPidFile(path, other.pid as number),
      (e) => isFerryError(e, 'DEVNET_ALREADY_RUNNING'),
    );
    releasePidFile(path);
    assert.equal(readLivePid(path), null);
    claimPidFile(path, other.pid as number);
    assert.equal(await stopDevnet(path, 5000), other.pid);
    assert.ok(!isAlive(other.pid as number));
    // The stale file (dead pid) is replaced.
    claimPidFile(path);
    assert.equal(readLivePid(path), process.pid);
  } finally {
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});
