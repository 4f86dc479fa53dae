/**
 * A small process supervisor for the local network (`ferry devnet up`).
 *
 * Each child is spawned with its stdout read line by line; it is *ready* when it prints a
 * JSON line `{"ready": true, ...}` (the object is returned to the caller). A child that exits
 * after it was ready is restarted, at most `maxRestarts` times within `restartWindowMs`; past
 * that the supervisor calls `onFatal` (the devnet then shuts down). `stopAll` stops children
 * in reverse start order: SIGTERM, then SIGKILL after `stopTimeoutMs`. Children's output goes
 * to a per-child log file, never to the supervisor's stdout. Each child leads its own process
 * group; stopping a child also kills what is left in its group.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { createLogger, FerryError, type Logger } from '../kernel/index.ts';

export type ChildSpec = {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Appends the child's stdout and stderr here. */
  logFile?: string;
  /** Default 30 s. */
  readyTimeoutMs?: number;
  /** Restarts allowed within `restartWindowMs` (default 3 within 60 s). */
  maxRestarts?: number;
  restartWindowMs?: number;
  /**
   * Give the child a lifeline: a pipe on fd 3 named by FERRY_DEVNET_LIFELINE_FD, which reaches
   * end of file when the supervisor's process is gone (the child loads src/devnet/lifeline.ts).
   */
  lifeline?: boolean;
};

export type ChildInfo = {
  name: string;
  pid: number | undefined;
  restarts: number;
  state: 'starting' | 'ready' | 'restarting' | 'stopped' | 'failed';
  /** The readiness object the child printed last. */
  ready: Record<string, unknown> | null;
};

type Child = {
  spec: ChildSpec;
  proc: ChildProcess | null;
  info: ChildInfo;
  restartTimes: number[];
  log: WriteStream | null;
  exited: Promise<void>;
};

export type SupervisorOptions = {
  log?: Logger;
  /** A child failed for good (restarts exhausted or never ready on restart). */
  onFatal?: (name: string, error: FerryError) => void;
  /** A restarted child printed its readiness line again (its endpoint may have changed). */
  onRestarted?: (name: string, ready: Record<string, unknown>) => void;
  /** Time between SIGTERM and SIGKILL on stop; default 10 s. */
  stopTimeoutMs?: number;
  /** Every spawn, first or restart, with the new process's pid (it leads its own process group). */
  onSpawn?: (name: string, pid: number) => void;
};

function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // the group is empty
  }
}

export class Supervisor {
  readonly #children: Child[] = [];
  readonly #log: Logger;
  readonly #opts: SupervisorOptions;
  #stopping = false;

  constructor(opts: SupervisorOptions = {}) {
    this.#opts = opts;
    this.#log = opts.log ?? createLogger({ component: 'devnet' });
  }

  children(): ChildInfo[] {
    return this.#children.map((c) => ({ ...c.info }));
  }

  /** Spawns a child and resolves with its readiness object; rejects (and stops it) otherwise. */
  async start(spec: ChildSpec, signal?: AbortSignal): Promise<Record<string, unknown>> {
    if (this.#stopping) throw new FerryError('ABORTED', 'the supervisor is stopping');
    if (this.#children.some((c) => c.spec.name === spec.name)) {
      throw new FerryError('INVALID_ARGUMENT', `a child named ${spec.name} already exists`);
    }
    let log: WriteStream | null = null;
    if (spec.logFile) {
      mkdirSync(dirname(spec.logFile), { recursive: true });
      log = createWriteStream(spec.logFile, { flags: 'a' });
    }
    const child: Child = {
      spec,
      proc: null,
      info: { name: spec.name, pid: undefined, restarts: 0, state: 'starting', ready: null },
      restartTimes: [],
      log,
      exited: Promise.resolve(),
    };
    this.#children.push(child);
    try {
      return await this.#spawn(child, signal);
    } catch (e) {
      await this.#stopChild(child);
      child.info.state = 'failed';
      throw e;
    }
  }

  #spawn(child: Child, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const { spec } = child;
    const env = spec.env ?? process.env;
    const proc = spawn(spec.command, spec.args, {
      env: spec.lifeline ? { ...env, FERRY_DEVNET_LIFELINE_FD: '3' } : env,
      cwd: spec.cwd,
      stdio: spec.lifeline ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
      // Its own process group (and session): a terminal's Ctrl-C reaches the supervisor only,
      // which stops children in order, and the group is signalled as a whole when killed.
      detached: true,
    });
    child.proc = proc;
    (proc.stdio[3] as NodeJS.Socket | undefined)?.on('error', () => {});
    if (proc.pid !== undefined) this.#opts.onSpawn?.(spec.name, proc.pid);
    child.info.pid = proc.pid;
    child.info.state = child.info.restarts > 0 ? 'restarting' : 'starting';
    proc.stderr?.on('data', (d: Buffer) => child.log?.write(d));
    child.exited = new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.once('error', () => resolve());
    });
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      let settled = false;
      const timeout = setTimeout(
        () =>
          fail(
            new FerryError('DEVNET_CHILD_FAILED', `${spec.name} did not become ready`, {
              hints: [
                `waited ${spec.readyTimeoutMs ?? 30_000} ms`,
                spec.logFile ? `log: ${spec.logFile}` : '',
              ],
            }),
          ),
        spec.readyTimeoutMs ?? 30_000,
      );
      const onAbort = () => fail(new FerryError('ABORTED', `starting ${spec.name} was aborted`));
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        settled = true;
        clearTimeout(timeout);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (e: FerryError) => {
        if (settled) return;
        done();
        reject(e);
      };
      const rl = createInterface({ input: proc.stdout! });
      rl.on('line', (line) => {
        child.log?.write(`${line}\n`);
        if (settled) return;
        let v: unknown;
        try {
          v = JSON.parse(line);
        } catch {
          return;
        }
        if (v && typeof v === 'object' && (v as { ready?: unknown }).ready === true) {
          done();
          child.info.state = 'ready';
          child.info.ready = v as Record<string, unknown>;
          resolve(v as Record<string, unknown>);
        }
      });
      proc.once('error', (e) =>
        fail(
          new FerryError('DEVNET_CHILD_FAILED', `cannot start ${spec.name}`, {
            cause: e,
            hints: [e.message],
          }),
        ),
      );
      proc.once('exit', (code, sig) => {
        if (!settled) {
          fail(
            new FerryError('DEVNET_CHILD_FAILED', `${spec.name} exited before it was ready`, {
              hints: [`exit: ${code ?? sig}`, spec.logFile ? `log: ${spec.logFile}` : ''].filter(Boolean),
            }),
          );
          return;
        }
        this.#onExit(child, code, sig);
      });
    });
  }

  #onExit(child: Child, code: number | null, sig: NodeJS.Signals | null): void {
    if (this.#stopping || child.info.state === 'stopped') return;
    const { spec } = child;
    const now = Date.now();
    const window = spec.restartWindowMs ?? 60_000;
    child.restartTimes = child.restartTimes.filter((t) => now - t < window);
    if (child.restartTimes.length >= (spec.maxRestarts ?? 3)) {
      child.info.state = 'failed';
      const err = new FerryError('DEVNET_CHILD_FAILED', `${spec.name} keeps exiting`, {
        hints: [
          `last exit: ${code ?? sig}`,
          `restarts: ${child.info.restarts}`,
          spec.logFile ? `log: ${spec.logFile}` : '',
        ],
      });
      this.#log.error('child failed for good', { child: spec.name });
      this.#opts.onFatal?.(spec.name, err);
      return;
    }
    child.restartTimes.push(now);
    child.info.restarts++;
    child.info.state = 'restarting';
    child.info.ready = null;
    child.info.pid = undefined;
    this.#log.warn('child exited; restarting', {
      child: spec.name,
      exit: code ?? sig,
      restarts: child.info.restarts,
    });
    const delay = Math.min(200 * 2 ** (child.restartTimes.length - 1), 5000);
    setTimeout(() => {
      if (this.#stopping) return;
      this.#spawn(child).then(
        (ready) => this.#opts.onRestarted?.(spec.name, ready),
        (e: FerryError) => {
          if (this.#stopping) return;
          child.info.state = 'failed';
          this.#opts.onFatal?.(spec.name, e);
        },
      );
    }, delay);
  }

  async #stopChild(child: Child): Promise<void> {
    const proc = child.proc;
    child.info.state = 'stopped';
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        child.exited,
        new Promise<void>((r) => {
          timer = setTimeout(() => {
            killGroup(proc, 'SIGKILL');
            r();
          }, this.#opts.stopTimeoutMs ?? 10_000);
        }),
      ]);
      clearTimeout(timer);
      await child.exited;
    }
    // Whatever the child left in its group (its own children) goes with it.
    if (proc) killGroup(proc, 'SIGKILL');
    await new Promise<void>((r) => (child.log ? child.log.end(r) : r()));
    child.log = null;
  }

  /** Stops every child in reverse start order; idempotent. */
  async stopAll(): Promise<void> {
    this.#stopping = true;
    for (const c of [...this.#children].reverse()) await this.#stopChild(c);
  }
}
