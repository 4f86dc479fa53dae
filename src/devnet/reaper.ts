/**
 * The devnet's reaper: a small process `ferry devnet up` starts first, in its own session,
 * with a pipe on its stdin. The supervisor writes one line per process it starts,
 * `PID START GROUP` (START: /proc start time, 0 if unknown; GROUP 1 when PID leads its own
 * process group, whose members are then signalled too). When the pipe reaches end of file
 * (the supervisor exited, however: a clean stop, a crash, SIGKILL) the reaper sends SIGTERM to
 * every recorded process still live, SIGKILL after `FERRY_REAPER_GRACE_MS` (default 5 s), and
 * exits. After a clean stop nothing is live and it exits at once. It ignores SIGINT and
 * SIGHUP: a terminal's Ctrl-C or hang-up reaches the supervisor, which stops things in order.
 *
 * Run as a script: `node src/devnet/reaper.ts`.
 */
import { createInterface } from 'node:readline';
import { isEntryAlive, type PidEntry } from './pidfile.ts';

type Tracked = PidEntry & { group: boolean };

function send(t: Tracked, signal: NodeJS.Signals): void {
  if (t.group) {
    try {
      process.kill(-t.pid, signal);
    } catch {
      // the group is empty
    }
  }
  if (!isEntryAlive(t)) return;
  try {
    process.kill(t.pid, signal);
  } catch {
    // gone meanwhile
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function reap(tracked: Tracked[], graceMs: number): Promise<void> {
  const live = () => tracked.filter((t) => isEntryAlive(t) || (t.group && groupAlive(t.pid)));
  const first = live();
  for (const t of first) send(t, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (live().length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  for (const t of live()) send(t, 'SIGKILL');
}

function main(): void {
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  const grace = Number(process.env.FERRY_REAPER_GRACE_MS ?? 5000);
  const tracked: Tracked[] = [];
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const m = /^([0-9]{1,10}) ([0-9]{1,20}) ([01])$/.exec(line.trim());
    if (m) tracked.push({ pid: Number(m[1]), start: Number(m[2]), name: 'child', group: m[3] === '1' });
  });
  rl.once('close', () => {
    void reap(tracked, Number.isFinite(grace) && grace >= 0 ? grace : 5000).finally(() => process.exit(0));
  });
}

main();
