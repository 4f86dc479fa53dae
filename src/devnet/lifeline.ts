/**
 * A devnet child's lifeline to its supervisor. `ferry devnet up` starts each agent and node
 * with `--import` of this module, a pipe on file descriptor N and FERRY_DEVNET_LIFELINE_FD=N.
 * The supervisor never writes to it; when the pipe reaches end of file the supervisor is gone
 * (however it went, SIGKILL included), and this process sends itself SIGTERM (the daemon's
 * ordinary stop: its enclaves and servers are closed), then exits after 10 s if still running.
 * Without the variable the module does nothing; it removes the variable so that processes this
 * one starts do not take an unrelated descriptor for a lifeline.
 */
import { Socket } from 'node:net';

const GRACE_MS = 10_000;

export function watchLifeline(env: NodeJS.ProcessEnv = process.env): void {
  const raw = env.FERRY_DEVNET_LIFELINE_FD;
  delete env.FERRY_DEVNET_LIFELINE_FD;
  if (raw === undefined || !/^[0-9]{1,4}$/.test(raw) || Number(raw) < 3) return;
  let sock: Socket;
  try {
    sock = new Socket({ fd: Number(raw), readable: true, writable: false });
  } catch {
    return;
  }
  let fired = false;
  const gone = () => {
    if (fired) return;
    fired = true;
    setTimeout(() => process.exit(1), GRACE_MS).unref();
    process.kill(process.pid, 'SIGTERM');
  };
  sock.on('data', () => {});
  sock.once('end', gone);
  sock.once('close', gone);
  sock.once('error', gone);
  // The lifeline alone never keeps the process running.
  sock.unref();
}

watchLifeline();
