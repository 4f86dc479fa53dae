/**
 * Process hygiene of `ferry devnet up` as a process: its children exit when it is SIGKILLed
 * (through its reaper, and, with the reaper killed too, the daemons through their own
 * lifelines), a second `up` on the same home refuses while any of the first one's processes
 * lives, `down` stops what a killed supervisor left, and a new
 * `up` starts once everything is gone. Liveness is read from /proc here, independently of
 * src/devnet/pidfile.ts: a pid counts only with the start time the pid file recorded.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const FERRY = fileURLToPath(new URL('../bin/ferry', import.meta.url));

type Rec = { pid: number; start: number; name: string };

function stat(pid: number): { state: string; ppid: number; start: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]), start: Number(f[19]) };
  } catch {
    return null;
  }
}

/** The process the pid file recorded is still running (same pid, same start time, not a zombie). */
function live(r: Rec): boolean {
  const s = stat(r.pid);
  return s !== null && s.state !== 'Z' && s.start === r.start;
}

function records(home: string): Rec[] {
  return readFileSync(join(home, 'devnet.pid'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const [pid, start, name] = l.split(' ');
      return { pid: Number(pid), start: Number(start), name };
    });
}

/** Polls until `cond` holds; the test's timeout is the hang guard (no speed is asserted). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 100));
}

function ferry(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(FERRY, args, { encoding: 'utf8', env }, (err, stdout) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout });
    });
  });
}

/** Starts `ferry devnet up --json` and waits for its readiness line. */
async function up(env: NodeJS.ProcessEnv): Promise<{ proc: ChildProcess; exited: Promise<unknown> }> {
  const proc = spawn(FERRY, ['devnet', 'up', '--executors', '1', '--verifiers', '1', '--json'], {
    env,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = new Promise((r) => proc.once('exit', r));
  await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`devnet up exited early: ${code}`)));
  });
  return { proc, exited };
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

test('devnet up: children die with a SIGKILLed supervisor; a second up refuses while any lives', {
  timeout: 240_000,
}, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ferry-devnet-hygiene-'));
  const env: NodeJS.ProcessEnv = { ...process.env, FERRY_HOME: home };
  delete env.FERRY_PROFILE;
  const started: Rec[] = [];
  try {
    // 1. SIGKILL of the supervisor: every child it recorded exits.
    const first = await up(env);
    const recs = records(home);
    started.push(...recs);
    assert.equal(recs[0].pid, first.proc.pid);
    assert.deepEqual(
      recs
        .slice(1)
        .map((r) => r.name)
        .sort(),
      ['agent-alice', 'agent-bob', 'anvil', 'executor-1', 'verifier-1'],
    );
    assert.ok(recs.every(live));
    const second = await ferry(env, 'devnet', 'up', '--json');
    assert.equal(second.code, 2);
    const err = JSON.parse(second.stdout).error;
    assert.equal(err.code, 'DEVNET_ALREADY_RUNNING');
    assert.match(err.hints.join('\n'), new RegExp(`anvil ${recs.find((r) => r.name === 'anvil')!.pid}`));
    assert.match(err.hints.join('\n'), /ferry devnet down/);
    kill(first.proc.pid!, 'SIGKILL');
    await first.exited;
    // Every child of the killed devnet exits.
    await until(() => !recs.some(live));

    // 2. The stale pid file does not block a new devnet. This time the reaper (the supervisor's
    //    watchdog) is killed before the supervisor: the agents and nodes still exit, each on its
    //    own lifeline (end of file on a pipe from the supervisor); anvil, which has none,
    //    survives, and a third up refuses until `devnet down` has stopped it.
    const again = await up(env);
    const recs2 = records(home);
    started.push(...recs2);
    const reaper = readdirSync('/proc')
      .filter((n) => /^[0-9]+$/.test(n))
      .map(Number)
      .find(
        (p) =>
          stat(p)?.ppid === again.proc.pid &&
          readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('reaper.ts'),
      );
    assert.ok(reaper, 'the reaper runs beside the supervisor');
    kill(reaper, 'SIGKILL');
    kill(again.proc.pid!, 'SIGKILL');
    await again.exited;
    const daemons = recs2.filter((r) => r.name.startsWith('agent-') || /^(executor|verifier)-/.test(r.name));
    assert.equal(daemons.length, 4);
    await until(() => !daemons.some(live));
    const anvil = recs2.find((r) => r.name === 'anvil')!;
    assert.ok(live(anvil), 'anvil outlives a supervisor whose reaper was killed first');
    const refused = await ferry(env, 'devnet', 'up', '--json');
    assert.equal(refused.code, 2);
    assert.equal(JSON.parse(refused.stdout).error.code, 'DEVNET_ALREADY_RUNNING');
    assert.match(JSON.parse(refused.stdout).error.hints.join('\n'), new RegExp(`anvil ${anvil.pid}`));
    const down = await ferry(env, 'devnet', 'down', '--json');
    assert.equal(down.code, 0);
    assert.deepEqual(JSON.parse(down.stdout), { stopped: true, pid: again.proc.pid });
    assert.ok(!recs2.some(live), 'devnet down stopped every recorded process');
    assert.equal(existsSync(join(home, 'devnet.pid')), false);

    // 3. Everything gone: a new devnet starts, and down stops it cleanly.
    const third = await up(env);
    const recs3 = records(home);
    started.push(...recs3);
    const stop = await ferry(env, 'devnet', 'down', '--json');
    assert.equal(stop.code, 0);
    await third.exited;
    assert.ok(!recs3.some(live));
  } finally {
    for (const r of started) if (live(r)) kill(r.pid, 'SIGKILL');
    rmSync(home, { recursive: true, force: true });
  }
});
