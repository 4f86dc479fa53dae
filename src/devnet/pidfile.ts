/**
 * The running devnet's pid file (`$FERRY_HOME/devnet.pid`): one line per process the devnet
 * runs, `PID START NAME`, the supervisor (`ferry devnet up`, name `devnet`) first. START is the
 * process's start time (field 22 of `/proc/PID/stat`, clock ticks since boot; `0` where there is
 * no /proc), so a recycled pid is never mistaken for a devnet process. A line is *live* when its
 * pid exists, is not a zombie and (START not 0) started at START.
 *
 * `ferry devnet up` claims the file (refusing while any recorded process is live, replacing the
 * file otherwise) and rewrites it as it starts and restarts children; `ferry devnet down`
 * signals the supervisor, waits for it, then stops whatever recorded process is still live
 * (children left behind by a supervisor that was killed).
 */
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { FerryError } from '../kernel/index.ts';

export type PidEntry = { pid: number; start: number; name: string };

/** Field 22 of /proc/PID/stat (start time in clock ticks), or null when unreadable. */
export function procStartTime(pid: number): number | null {
  const stat = procStat(pid);
  return stat ? stat.start : null;
}

function procStat(pid: number): { comm: string; state: string; ppid: number; start: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields resume after the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const rest = text.slice(close + 2).split(' ');
  const start = Number(rest[19]);
  return Number.isSafeInteger(start) ? { comm, state: rest[0], ppid: Number(rest[1]), start } : null;
}

/** The live direct children of `ppid` (Linux: from /proc; [] elsewhere), named by their command. */
export function childEntries(ppid = process.pid): PidEntry[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: PidEntry[] = [];
  for (const n of names) {
    if (!/^[0-9]+$/.test(n)) continue;
    const stat = procStat(Number(n));
    if (stat && stat.ppid === ppid && stat.state !== 'Z') {
      out.push({
        pid: Number(n),
        start: stat.start,
        name: stat.comm.replace(/[^A-Za-z0-9._-]/g, '_') || 'child',
      });
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  return stat === null || stat.state !== 'Z';
}

/** Live when the pid exists (not a zombie) and, if a start time was recorded, started then. */
export function isEntryAlive(e: PidEntry): boolean {
  if (!isAlive(e.pid)) return false;
  if (e.start === 0) return true;
  const now = procStartTime(e.pid);
  return now === null || now === e.start;
}

/** This process as a pid-file entry. */
export function selfEntry(name = 'devnet', pid = process.pid): PidEntry {
  return { pid, start: procStartTime(pid) ?? 0, name };
}

/** The entries of a pid file; [] when missing. Lines that do not parse are skipped. */
export function readPidFile(path: string): PidEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const out: PidEntry[] = [];
  for (const line of text.split('\n')) {
    // A bare pid is the format before start times were recorded.
    const m = /^([0-9]{1,10})(?: ([0-9]{1,20}) ([A-Za-z0-9._-]{1,64}))?$/.exec(line.trim());
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid > 0) out.push({ pid, start: m[2] ? Number(m[2]) : 0, name: m[3] ?? 'devnet' });
  }
  return out;
}

/** The recorded processes that are still live. */
export function liveEntries(path: string): PidEntry[] {
  return readPidFile(path).filter(isEntryAlive);
}

/** The supervisor's pid (the first entry) when it is live; null otherwise. */
export function readLivePid(path: string): number | null {
  const first = readPidFile(path)[0];
  return first && isEntryAlive(first) ? first.pid : null;
}

function format(entries: PidEntry[]): string {
  return entries.map((e) => `${e.pid} ${e.start} ${e.name}\n`).join('');
}

/** Replaces the file's content atomically (write then rename), so readers never see half. */
export function writePidFile(path: string, entries: PidEntry[]): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, format(entries), { mode: 0o644 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new FerryError('IO_WRITE_FAILED', 'cannot write the devnet pid file', { cause: e, hints: [path] });
  }
}

function alreadyRunning(live: PidEntry[]): FerryError {
  return new FerryError('DEVNET_ALREADY_RUNNING', 'a devnet is already running', {
    hints: [
      `processes: ${live
        .slice(0, 12)
        .map((e) => `${e.name} ${e.pid}`)
        .join(', ')}${live.length > 12 ? ', ...' : ''}`,
      'stop it with: ferry devnet down',
    ],
  });
}

/**
 * Creates the file with our entry; DEVNET_ALREADY_RUNNING while any process recorded in an
 * existing file is live (the supervisor, or children a killed supervisor left behind).
 */
export function claimPidFile(path: string, pid = process.pid): void {
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(path, format([selfEntry('devnet', pid)]), { flag: 'wx', mode: 0o644 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new FerryError('IO_WRITE_FAILED', 'cannot write the devnet pid file', {
          cause: e,
          hints: [path],
        });
      }
      const live = liveEntries(path).filter((x) => x.pid !== pid);
      if (live.length > 0) throw alreadyRunning(live);
      rmSync(path, { force: true });
    }
  }
  throw new FerryError('IO_WRITE_FAILED', 'cannot claim the devnet pid file', { hints: [path] });
}

/** Removes the pid file if its first entry still names `pid`. */
export function releasePidFile(path: string, pid = process.pid): void {
  if (readPidFile(path)[0]?.pid === pid) rmSync(path, { force: true });
}

function signalEntry(e: PidEntry, signal: NodeJS.Signals): void {
  if (!isEntryAlive(e)) return;
  try {
    process.kill(e.pid, signal);
  } catch {
    // gone meanwhile
  }
}

async function waitGone(entries: PidEntry[], until: number, signal?: AbortSignal): Promise<boolean> {
  for (;;) {
    if (!entries.some(isEntryAlive)) return true;
    signal?.throwIfAborted();
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Stops the devnet recorded in the pid file: SIGTERM to the supervisor, then (SIGKILL after
 * `timeoutMs`) to every recorded process still live. DEVNET_NOT_RUNNING when none is live.
 * Returns the supervisor's pid (the first entry).
 */
export async function stopDevnet(path: string, timeoutMs = 30_000, signal?: AbortSignal): Promise<number> {
  const entries = readPidFile(path);
  const live = entries.filter(isEntryAlive);
  if (live.length === 0) {
    rmSync(path, { force: true });
    throw new FerryError('DEVNET_NOT_RUNNING', 'no devnet is running', {
      hints: ['start one with: ferry devnet up'],
    });
  }
  const deadline = Date.now() + timeoutMs;
  const [head] = entries;
  // The supervisor stops its children itself, in order; it rewrites the file as it restarts them.
  if (isEntryAlive(head)) {
    signalEntry(head, 'SIGTERM');
    if (!(await waitGone([head], deadline, signal))) signalEntry(head, 'SIGKILL');
  }
  // What it left behind (it was killed, or is killed now): every entry ever recorded here.
  const rest = [...entries, ...readPidFile(path)].filter(isEntryAlive);
  for (const e of rest) signalEntry(e, 'SIGTERM');
  if (!(await waitGone(rest, Math.max(deadline, Date.now() + 5_000), signal))) {
    for (const e of rest) signalEntry(e, 'SIGKILL');
    await waitGone(rest, Date.now() + 5_000, signal);
  }
  rmSync(path, { force: true });
  return head.pid;
}
