/**
 * Children that must not outlive this process: the QEMU and swtpm of a VM. Its normal paths stop
 * them (destroy, errors, signals), but a process killed with SIGKILL runs no code, and a VM left
 * behind keeps its memory and its vTPM state. So they are started through util-linux's
 * `setpriv --pdeathsig SIGKILL`, which sets the kernel's parent-death signal and then execs the
 * program (same pid): when this process dies, however it dies, the kernel kills them.
 *
 * The signal follows the thread that spawned the child; libuv spawns from the calling thread, so
 * call this from the main thread (a worker's children would die with the worker). When `setpriv`
 * is not installed the child is spawned as is, and only the normal paths stop it.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';

let setprivUsable: boolean | undefined;

/** Whether children can be tied to this process (util-linux's setpriv is installed). */
export function canTieChildren(): boolean {
  if (setprivUsable === undefined) {
    try {
      accessSync(SETPRIV, constants.X_OK);
      setprivUsable = true;
    } catch {
      setprivUsable = false;
    }
  }
  return setprivUsable;
}

/** `spawn(command, args, options)`, the child killed by the kernel when this process dies. */
export function spawnTied(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  if (!canTieChildren()) return spawn(command, args, options);
  return spawn(SETPRIV, ['--pdeathsig', 'SIGKILL', '--', command, ...args], options);
}
