/**
 * A daemon's life (`ferry node start`, `ferry agent start`, `ferry dashboard`): start it, say it
 * is ready, serve until the signal aborts (the CLI aborts on SIGINT and SIGTERM), then stop it —
 * also when starting or serving fails.
 */

/** What a daemon exposes to its runner. */
export type Daemon<R> = { start(signal?: AbortSignal): Promise<R>; stop(): Promise<void> };

/** Starts `daemon`, calls `onReady` with what it reports, and stops it once `signal` aborts. */
export async function serveUntilAborted<R>(
  daemon: Daemon<R>,
  signal: AbortSignal,
  onReady: (ready: R) => void,
): Promise<void> {
  try {
    onReady(await daemon.start(signal));
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    await daemon.stop();
  }
}
