/**
 * A tied child dies with its parent even when the parent is killed with SIGKILL (no cleanup code
 * runs); an untied one, the control, survives it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { canTieChildren } from './tied.ts';

const TIED = new URL('./tied.ts', import.meta.url).pathname;

/** Running (a zombie, killed but not yet reaped by whoever adopted it, counts as dead). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Starts a parent that spawns `sleep 600` (tied or not), prints its pid, and waits. */
async function parentWithChild(tied: boolean): Promise<{ parent: number; child: number }> {
  const script = `
    import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
    import { spawnTied } from ${JSON.stringify(TIED)};
    const c = ${tied ? "spawnTied('sleep', ['600'], { stdio: 'ignore' })" : "spawn('sleep', ['600'], { stdio: 'ignore' })"};
    c.once('spawn', () => process.stdout.write(c.pid + '\\n'));
    setInterval(() => {}, 1000);
  `;
  const p = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const child = await new Promise<number>((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    p.once('exit', (code) => reject(new Error(`parent exited (${code}) before its child started`)));
  });
  return { parent: p.pid as number, child };
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (!alive(pid)) return true;
    await sleep(50);
  }
  return false;
}

test('a tied child is killed when its parent is SIGKILLed; an untied one is not', {
  skip: !canTieChildren() && 'setpriv is not installed',
}, async () => {
  const tied = await parentWithChild(true);
  const untied = await parentWithChild(false);
  try {
    assert.ok(alive(tied.child) && alive(untied.child));
    process.kill(tied.parent, 'SIGKILL');
    process.kill(untied.parent, 'SIGKILL');
    assert.equal(await gone(tied.child), true, 'the tied child outlived its parent');
    // The control: without the tie the child is re-parented and keeps running.
    assert.equal(alive(untied.child), true);
  } finally {
    for (const pid of [tied.child, untied.child]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
});
