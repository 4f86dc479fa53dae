/**
 * A small TCP proxy for fault tests: it forwards connections made to its listen address to a
 * target, holding every chunk `delayMs` in each direction (latency on a link, without netem),
 * and can reset every open connection (`cut`), reset the next connection mid-stream once it
 * has carried some bytes back (`cutAfter`), or hold all traffic (`pause` / `resume`).
 *
 * Chunks keep their order (each direction is one queue with a constant delay). A side that
 * closes is closed on the other side after the same delay; a side that errors resets the other.
 */
import { createServer, type Server, type Socket, connect } from 'node:net';

export type DelayProxyOptions = {
  listenHost: string;
  /** Default 0: a free port. */
  listenPort?: number;
  targetHost: string;
  targetPort: number;
  /** Per chunk, per direction; default 0. Can be changed later (`proxy.delayMs = …`). */
  delayMs?: number;
};

type Pipe = { client: Socket; server: Socket; down: number };

export class DelayProxy {
  delayMs: number;
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #pipes = new Set<Pipe>();
  #paused = false;
  #held: (() => void)[] = [];
  #cutAfter: number | null = null;
  #onCut: (() => void) | null = null;
  /** Connections accepted, and connections reset by `cut` / `cutAfter`. */
  readonly stats = { connections: 0, cuts: 0 };

  private constructor(server: Server, opts: DelayProxyOptions) {
    this.#server = server;
    this.#target = { host: opts.targetHost, port: opts.targetPort };
    this.delayMs = opts.delayMs ?? 0;
    server.on('connection', (c) => this.#accept(c));
  }

  static async start(opts: DelayProxyOptions): Promise<DelayProxy> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const proxy = new DelayProxy(server, opts);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.listenPort ?? 0, opts.listenHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  get port(): number {
    const a = this.#server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  /** Open connections. */
  get open(): number {
    return this.#pipes.size;
  }

  /** Resets every open connection (both sides) now. */
  cut(): number {
    const n = this.#pipes.size;
    for (const p of [...this.#pipes]) this.#reset(p);
    this.stats.cuts += n;
    return n;
  }

  /**
   * One shot: the next connection whose answer (target to client) passes `bytes` is reset
   * there, mid-stream; resolves when that happened.
   */
  cutAfter(bytes: number): Promise<void> {
    this.#cutAfter = bytes;
    return new Promise((resolve) => {
      this.#onCut = resolve;
    });
  }

  /** Holds all traffic (and new connections) until `resume`. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    for (const f of this.#held.splice(0)) f();
  }

  async close(): Promise<void> {
    this.#paused = false;
    this.#held = [];
    for (const p of [...this.#pipes]) this.#reset(p);
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  #later(f: () => void): void {
    const run = () => (this.#paused ? this.#held.push(run) : f());
    if (this.delayMs > 0) setTimeout(run, this.delayMs);
    else if (this.#paused) this.#held.push(run);
    else f();
  }

  #reset(p: Pipe): void {
    this.#pipes.delete(p);
    for (const s of [p.client, p.server]) {
      if (s.destroyed) continue;
      // A reset is refused by libuv while a shutdown (our `end`) is pending, and the handle
      // is then never closed (the process spins at exit): destroy those plainly.
      if (s.writableEnded || s.connecting) s.destroy();
      else s.resetAndDestroy();
    }
  }

  #accept(client: Socket): void {
    this.stats.connections++;
    const server = connect({ host: this.#target.host, port: this.#target.port, allowHalfOpen: true });
    const pipe: Pipe = { client, server, down: 0 };
    this.#pipes.add(pipe);
    const gone = () => {
      if (this.#pipes.has(pipe)) this.#reset(pipe);
    };
    client.on('error', gone);
    server.on('error', gone);
    client.on('close', () => this.#later(gone));
    server.on('close', () => this.#later(gone));
    this.#forward(client, server, pipe, false);
    this.#forward(server, client, pipe, true);
    client.resume();
  }

  #forward(from: Socket, to: Socket, pipe: Pipe, answer: boolean): void {
    let inFlight = 0;
    from.on('data', (chunk: Buffer) => {
      inFlight += chunk.length;
      if (inFlight > 1 << 20) from.pause();
      this.#later(() => {
        inFlight -= chunk.length;
        if (from.isPaused() && inFlight <= 1 << 19) from.resume();
        if (!this.#pipes.has(pipe) || to.destroyed) return;
        if (answer && this.#cutAfter !== null && pipe.down + chunk.length > this.#cutAfter) {
          // Deliver the first part, then reset: the answer stops mid-stream.
          const part = chunk.subarray(0, Math.max(0, this.#cutAfter - pipe.down));
          this.#cutAfter = null;
          const done = this.#onCut;
          this.#onCut = null;
          this.stats.cuts++;
          to.write(part, () => {
            this.#reset(pipe);
            done?.();
          });
          return;
        }
        if (answer) pipe.down += chunk.length;
        to.write(chunk);
      });
    });
    from.on('end', () => this.#later(() => to.destroyed || to.end()));
  }
}
