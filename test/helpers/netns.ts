/**
 * A test network of Linux network namespaces (root only; the namespace fault suite).
 *
 * Layout, all names prefixed `ferry-t<pid>-` (namespaces) or `ft<pid>` (the one link in the
 * root namespace), all addresses in one free 10.213.K.0/24 that the lab creates:
 * - a hub namespace `ferry-t<pid>-hub` that routes between its links (ip_forward on in the hub
 *   only) and holds the lab's nftables table;
 * - the test process (root namespace) on link 0: hub 10.213.K.1, host 10.213.K.2, and a route
 *   to 10.213.K.0/24 through the hub;
 * - one namespace per participant (`ferry-t<pid>-NAME`) on link i: a veth pair, `eth0` in the
 *   participant (10.213.K.4i+2/30, default route through the hub) and `pI` in the hub
 *   (10.213.K.4i+1); loopback up.
 *
 * Faults: `partition(name)` takes the participant's link down in the hub (it reaches nobody,
 * nobody reaches it) and `heal` brings it back. Latency: `proxy(name, port)` starts a
 * DelayProxy in the test process and an nftables DNAT rule in the hub that sends every
 * connection to NAME:port from another participant through it (the proxy's own connection,
 * from the host address, goes straight).
 *
 * `cleanup()` removes every namespace (which removes their links, the root link and the hub's
 * nftables table with them) and is also run on process exit and on SIGINT/SIGTERM. Namespaces
 * and links left by a test process that no longer exists are removed at the next `createLab`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { DelayProxy } from './delay-proxy.ts';

const PREFIX = `ferry-t${process.pid}-`;
const HOST_LINK = `ft${process.pid}h`;

function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    input,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
}
const ip = (...args: string[]) => run('ip', args);

/**
 * Why this machine cannot run the namespace tests (not root, no `ip netns`, no `nft`), or null.
 */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'the network namespace tests need root';
  try {
    ip('netns', 'list');
  } catch (e) {
    return `ip netns is unavailable (apt-get install iproute2): ${(e as Error).message.split('\n')[0]}`;
  }
  try {
    run('nft', ['--version']);
  } catch (e) {
    return `nft is unavailable (apt-get install nftables): ${(e as Error).message.split('\n')[0]}`;
  }
  return null;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces and root links that test processes now gone left behind. */
function removeStale(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const m = /^(ferry-t(\d+)-\S+)/.exec(line);
    if (m && !pidAlive(Number(m[2]))) {
      try {
        ip('netns', 'del', m[1]);
      } catch {
        // gone meanwhile
      }
    }
  }
  for (const line of ip('-o', 'link', 'show').split('\n')) {
    const m = /^\d+: (ft(\d+)h)[@:]/.exec(line);
    if (m && !pidAlive(Number(m[2]))) {
      try {
        ip('link', 'del', m[1]);
      } catch {
        // gone meanwhile
      }
    }
  }
}

/** A /24 in 10.213.0.0/16 that no address or route of the root namespace touches. */
function freeSubnet(): number {
  const used = ip('-4', 'route', 'show', 'table', 'all') + ip('-4', '-o', 'addr', 'show');
  for (let i = 0; i < 250; i++) {
    const k = 1 + ((process.pid + i) % 250);
    if (!used.includes(`10.213.${k}.`)) return k;
  }
  throw new Error('no free 10.213.K.0/24 for the test network');
}

export type Participant = { name: string; ns: string; addr: string; link: string };

export class NetnsLab {
  readonly prefix = PREFIX;
  readonly hub = `${PREFIX}hub`;
  readonly hostAddr: string;
  readonly #k: number;
  readonly #participants = new Map<string, Participant>();
  readonly #proxies: DelayProxy[] = [];
  #namespaces: string[] = [];
  #cleaned = false;
  readonly #onExit = () => this.cleanup();
  readonly #onSignal = (sig: NodeJS.Signals) => {
    this.cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };

  private constructor(k: number) {
    this.#k = k;
    this.hostAddr = `10.213.${k}.2`;
    process.once('exit', this.#onExit);
    process.once('SIGINT', this.#onSignal);
    process.once('SIGTERM', this.#onSignal);
  }

  /** Builds the hub and one namespace per name (any failure removes what was made). */
  static create(names: string[]): NetnsLab {
    if (names.length > 62) throw new Error('at most 62 participants');
    removeStale();
    const lab = new NetnsLab(freeSubnet());
    try {
      lab.#build(names);
    } catch (e) {
      lab.cleanup();
      throw e;
    }
    return lab;
  }

  #addr(i: number, host: 1 | 2): string {
    return `10.213.${this.#k}.${4 * i + host}`;
  }

  #addNs(ns: string): void {
    ip('netns', 'add', ns);
    this.#namespaces.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  #build(names: string[]): void {
    const hub = this.hub;
    this.#addNs(hub);
    run('ip', ['netns', 'exec', hub, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    // Link 0: the test process.
    ip('link', 'add', HOST_LINK, 'type', 'veth', 'peer', 'name', 'p0', 'netns', hub);
    ip('-n', hub, 'addr', 'add', `${this.#addr(0, 1)}/30`, 'dev', 'p0');
    ip('-n', hub, 'link', 'set', 'p0', 'up');
    ip('addr', 'add', `${this.hostAddr}/30`, 'dev', HOST_LINK);
    ip('link', 'set', HOST_LINK, 'up');
    ip('route', 'add', `10.213.${this.#k}.0/24`, 'via', this.#addr(0, 1), 'dev', HOST_LINK);
    names.forEach((name, j) => {
      const i = j + 1;
      const ns = `${PREFIX}${name}`;
      const link = `p${i}`;
      this.#addNs(ns);
      ip('link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', link, 'netns', hub);
      ip('-n', hub, 'addr', 'add', `${this.#addr(i, 1)}/30`, 'dev', link);
      ip('-n', hub, 'link', 'set', link, 'up');
      ip('-n', ns, 'addr', 'add', `${this.#addr(i, 2)}/30`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'route', 'add', 'default', 'via', this.#addr(i, 1));
      this.#participants.set(name, { name, ns, addr: this.#addr(i, 2), link });
    });
    // The lab's table: DNAT to the delay proxies (rules added by `proxy`).
    run(
      'ip',
      ['netns', 'exec', hub, 'nft', '-f', '-'],
      'table ip ferry_lab {\n chain pre { type nat hook prerouting priority dstnat; }\n}\n',
    );
  }

  participant(name: string): Participant {
    const p = this.#participants.get(name);
    if (!p) throw new Error(`no participant ${name}`);
    return p;
  }

  /** The command prefix that runs a program inside NAME's namespace. */
  prefixFor(name: string): string[] {
    return ['ip', 'netns', 'exec', this.participant(name).ns];
  }

  /** Runs `cmd` inside NAME's namespace and resolves with its stdout (rejects on failure). */
  exec(name: string, cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        'ip',
        ['netns', 'exec', this.participant(name).ns, cmd, ...args],
        { encoding: 'utf8', timeout: timeoutMs },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      );
    });
  }

  /** NAME reaches nobody and nobody reaches it (its link in the hub is down). */
  partition(name: string): void {
    ip('-n', this.hub, 'link', 'set', this.participant(name).link, 'down');
  }

  heal(name: string): void {
    ip('-n', this.hub, 'link', 'set', this.participant(name).link, 'up');
  }

  /**
   * Every connection from another participant to NAME:port goes through a DelayProxy in the
   * test process (delay `delayMs`, changeable on the returned proxy).
   */
  async proxy(name: string, port: number, delayMs = 0): Promise<DelayProxy> {
    const p = this.participant(name);
    const proxy = await DelayProxy.start({
      listenHost: this.hostAddr,
      targetHost: p.addr,
      targetPort: port,
      delayMs,
    });
    this.#proxies.push(proxy);
    run('ip', [
      'netns',
      'exec',
      this.hub,
      'nft',
      'add',
      'rule',
      'ip',
      'ferry_lab',
      'pre',
      'ip',
      'daddr',
      p.addr,
      'tcp',
      'dport',
      String(port),
      'ip',
      'saddr',
      '!=',
      this.hostAddr,
      'dnat',
      'to',
      `${this.hostAddr}:${proxy.port}`,
    ]);
    return proxy;
  }

  /** Removes every namespace (their links and nftables table go with them); idempotent. */
  cleanup(): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    process.off('exit', this.#onExit);
    process.off('SIGINT', this.#onSignal);
    process.off('SIGTERM', this.#onSignal);
    for (const p of this.#proxies.splice(0)) void p.close();
    for (const ns of this.#namespaces.splice(0).reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
    try {
      ip('link', 'del', HOST_LINK);
    } catch {
      // removed with the hub
    }
  }
}
