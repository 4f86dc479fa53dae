/**
 * The running devnet's pid file (`$FERRY_HOME/devnet.pid`): one decimal pid and a newline.
 * `ferry devnet up` claims it (refusing while another live supervisor holds it, replacing a
 * stale one); `ferry devnet down` signals the pid and waits for it to exit.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { FerryError } from '../kernel/index.ts';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in the file when that process is alive; null otherwise (missing, garbage, stale). */
export function readLivePid(path: string): number | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
  if (!/^[0-9]{1,10}$/.test(text)) return null;
  const pid = Number(text);
  return pid > 0 && isAlive(pid) ? pid : null;
}

/** Writes our pid; DEVNET_ALREADY_RUNNING when a live process holds the file. */
export function claimPidFile(path: string, pid = process.pid): void {
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(path, `${pid}\n`, { flag: 'wx', mode: 0o644 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new FerryError('IO_WRITE_FAILED', 'cannot write the devnet pid file', {
          cause: e,
          hints: [path],
        });
      }
      const live = readLivePid(path);
      if (live !== null && live !== pid) {
        throw new FerryError('DEVNET_ALREADY_RUNNING', 'a devnet is already running', {
          hints: [`pid: ${live}`, 'stop it with: ferry devnet down'],
        });
      }
      rmSync(path, { force: true });
    }
  }
  throw new FerryError('IO_WRITE_FAILED', 'cannot claim the devnet pid file', { hints: [path] });
}

/** Removes the pid file if it still names `pid`. */
export function releasePidFile(path: string, pid = process.pid): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(pid)) rmSync(path, { force: true });
  } catch {
    // already gone
  }
}

/**
 * Sends SIGTERM to the devnet named by the pid file and waits until it exits (SIGKILL after
 * `timeoutMs`). DEVNET_NOT_RUNNING when there is none. Returns the pid it stopped.
 */
export async function stopDevnet(path: string, timeoutMs = 30_000, signal?: AbortSignal): Promise<number> {
  const pid = readLivePid(path);
  if (pid === null) {
    rmSync(path, { force: true });
    throw new FerryError('DEVNET_NOT_RUNNING', 'no devnet is running', {
      hints: ['start one with: ferry devnet up'],
    });
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    signal?.throwIfAborted();
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return pid;
}
