/** The devnet supervisor with real child processes: readiness, restarts, reverse-order stop. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeFileSync } from 'node:fs';
import {
  claimPidFile,
  isAlive,
  liveEntries,
  procStartTime,
  readLivePid,
  releasePidFile,
  stopDevnet,
  writePidFile,
} from '../src/devnet/pidfile.ts';
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

test('pid file: a recycled pid (other start time) is not the devnet; a live child blocks a claim', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pid-'));
  const path = join(dir, 'devnet.pid');
  const sup = new Supervisor({ log: quiet });
  try {
    // The pid exists (it is ours) but started at another time: a stale record, replaced.
    const start = procStartTime(process.pid)!;
    writeFileSync(path, `${process.pid} ${start + 1} devnet\n`);
    assert.deepEqual(liveEntries(path), []);
    claimPidFile(path, 999_999_999);
    // A dead supervisor with a live child (what a SIGKILL leaves behind) blocks the claim,
    // naming the child; stopDevnet stops it and reports the supervisor's pid.
    const kid = await sup.start(child('orphan', dir));
    const pid = kid.pid as number;
    writePidFile(path, [
      { pid: 999_999_999, start: 1, name: 'devnet' },
      { pid, start: procStartTime(pid)!, name: 'orphan' },
    ]);
    assert.equal(readLivePid(path), null);
    assert.throws(
      () => claimPidFile(path),
      (e) => isFerryError(e, 'DEVNET_ALREADY_RUNNING') && e.hints.join().includes(`orphan ${pid}`),
    );
    assert.equal(await stopDevnet(path, 5000), 999_999_999);
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!isAlive(pid));
    claimPidFile(path);
    assert.equal(readLivePid(path), process.pid);
    releasePidFile(path);
  } finally {
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a child leads its own process group; stopping it also stops what it left in the group', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sup-'));
  const sup = new Supervisor({ log: quiet });
  try {
    // The child starts a grandchild in its group and ignores SIGTERM for it (it dies alone).
    const script = `
      const { spawn } = require('node:child_process');
      const g = spawn(process.execPath, ['-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      process.on('SIGTERM', () => process.exit(0));
      setTimeout(() => console.log(JSON.stringify({ ready: true, grandchild: g.pid })), 200);
      setInterval(() => {}, 1000);
    `;
    const ready = await sup.start({ name: 'parent', command: process.execPath, args: ['-e', script] });
    const pid = sup.children()[0].pid!;
    const grandchild = ready.grandchild as number;
    const pgid = (p: number) => Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[2]);
    assert.equal(pgid(pid), pid);
    assert.equal(pgid(grandchild), pid);
    await sup.stopAll();
    for (let i = 0; i < 100 && isAlive(grandchild); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!isAlive(grandchild));
  } finally {
    await sup.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});
