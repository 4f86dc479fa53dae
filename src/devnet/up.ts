/**
 * `ferry devnet up`: a whole local network under `$FERRY_HOME`, supervised until stopped.
 *
 * Order: pid file -> local chain (anvil, a block every 0.25 s) + contracts -> profiles
 * (alice: data owner, bob: app owner, carol: requester, and one per node), each funded with
 * anvil_setBalance -> simulation root and one attester per executor (with --tee tpm2: an
 * activator key, and per executor a swtpm with an activated AK) -> agents for alice and
 * bob -> executor and verifier nodes (regions round-robin) -> `$FERRY_HOME/devnet.json` and
 * the readiness line. Stop (SIGINT/SIGTERM, `ferry devnet down`, or a child failing for good)
 * runs the same steps backwards.
 *
 * The chain is fresh on every `up`, so the devnet's node and agent homes (state and stored
 * ciphertext, registered on the previous chain) are reset; profiles are kept.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hex } from 'viem';
import {
  createSimRoot,
  encodeSimAttester,
  encodeSimRoot,
  issueSimAttester,
} from '../attestation/sim/index.ts';
import {
  encodeActivationRecord,
  parseCertificates,
  Swtpm,
  Tpm2Backend,
  Tpm2Tools,
} from '../attestation/tpm2/index.ts';
import {
  ANVIL_DEV_KEYS,
  connect,
  deployFerry,
  type FerryContracts,
  type LocalChain,
  startLocalChain,
  wsUrlFor,
} from '../chain/index.ts';
import { createProfile, loadProfile, type ProfilePublic } from '../profile/index.ts';
import { createLogger, FerryError, type Logger, toHex } from '../kernel/index.ts';
import { activateAk, createDevnetActivator } from './activator.ts';
import { prepareVmExecutors } from './vm.ts';
import {
  childEntries,
  claimPidFile,
  isEntryAlive,
  type PidEntry,
  procStartTime,
  releasePidFile,
  selfEntry,
  writePidFile,
} from './pidfile.ts';
import { Supervisor } from './supervisor.ts';

const MAIN = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const REAPER = fileURLToPath(new URL('./reaper.ts', import.meta.url));
const LIFELINE = new URL('./lifeline.ts', import.meta.url).href;

/**
 * Every process the devnet starts: recorded in the pid file (so a second `up` refuses and
 * `down` finds them even when the supervisor was killed) and told to the reaper (which kills
 * them when the supervisor exits, however it exits). A process-exit hook kills them too.
 */
class ProcessRecord {
  readonly #path: string;
  readonly #entries: (PidEntry & { group: boolean })[];
  readonly #reaper: ReturnType<typeof spawn>;
  readonly #onExit = () => this.killAll();

  constructor(path: string) {
    this.#path = path;
    this.#entries = [{ ...selfEntry(), group: false }];
    this.#reaper = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', REAPER], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    this.#reaper.stdin?.on('error', () => {});
    this.#reaper.unref();
    process.once('exit', this.#onExit);
  }

  add(name: string, pid: number, group: boolean): void {
    if (this.#entries.some((e) => e.pid === pid) || pid === this.#reaper.pid) return;
    const start = procStartTime(pid) ?? 0;
    const entry = { pid, start, name, group };
    this.#reaper.stdin?.write(`${pid} ${start} ${group ? 1 : 0}\n`);
    const live = this.#entries.filter((e, i) => i === 0 || isEntryAlive(e));
    this.#entries.splice(0, this.#entries.length, ...live, entry);
    writePidFile(this.#path, this.#entries);
  }

  /** Records our direct children not recorded yet (anvil, swtpm: started outside the supervisor). */
  addChildren(): void {
    for (const c of childEntries()) this.add(c.name, c.pid, false);
  }

  /** SIGKILL to every recorded process (and group) still live: the last resort on exit. */
  killAll(): void {
    for (const e of this.#entries.slice(1)) {
      if (e.group) {
        try {
          process.kill(-e.pid, 'SIGKILL');
        } catch {
          // the group is empty
        }
      }
      if (isEntryAlive(e)) {
        try {
          process.kill(e.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
  }

  /** After a clean stop: the reaper finds nothing live and exits. */
  close(): void {
    process.off('exit', this.#onExit);
    this.#reaper.stdin?.end();
  }
}

export type DevnetOptions = {
  home: string;
  executors?: number;
  verifiers?: number;
  tee?: 'sim' | 'tpm2' | 'vm';
  /**
   * --tee vm: a built node image to use; default: the image of this checkout, built into
   * $FERRY_HOME/cache/node-image/KEY (KEY: the hash of what the build reads) or reused from there.
   */
  vmImage?: string;
  regions?: string[];
  /**
   * Seconds between blocks mined without traffic (default 0.25, as on a fast L2; transactions are
   * mined at once either way). A task's seed needs the block after its creation block, so this
   * is the seed's wait; block timestamps stay whole seconds, so deadlines are unchanged.
   */
  blockTime?: number;
  log?: Logger;
  /** Environment for the children (FERRY_HOME is set to `home`). */
  env?: NodeJS.ProcessEnv;
  /** A child failed for good: the caller should stop the devnet. */
  onFatal?: (error: FerryError) => void;
  /**
   * Where each process runs (§13.7; the network-namespace tests): for `anvil`, `agent-NAME` and
   * each node NAME, a command prefix (e.g. `['ip', 'netns', 'exec', NS]`), the address it
   * listens on and its port. Undefined (the default, and for any name it returns undefined
   * for): 127.0.0.1, a free port, no prefix.
   */
  placement?: (name: string) => DevnetPlacement | undefined;
};

export type DevnetPlacement = { prefix: string[]; host: string; port: number };

export type DevnetInfo = {
  rpcUrl: string;
  chainId: number;
  contracts: FerryContracts;
  nodes: {
    name: string;
    address: string;
    roles: string[];
    region: string;
    tee: string;
    endpoint: string;
    keyId: string;
  }[];
  profiles: {
    name: string;
    role: string;
    address: string;
    ageRecipient: string;
    signingPublicKey: string;
    agent: string | null;
  }[];
  simRoot: string | null;
  /** --tee tpm2 or vm: the activator's Ed25519 public key (hex) and the trusted EK CA files. */
  tpm2: { activator: string; cas: string[] } | null;
  /**
   * --tee vm: the node image the executors boot, its digest and the policy `ferry image measure`
   * writes for it (PCR 0-7 and 9 pinned): publish assets with it (`--policy FILE`).
   */
  vm: { image: string; digest: string; policy: string } | null;
  pid: number;
  startedAt: string;
};

export type Devnet = {
  info: DevnetInfo;
  /** The supervised processes (pids, restarts, state). */
  children(): ReturnType<Supervisor['children']>;
  /** --tee tpm2: the executors' swtpms (stopped, and their directories removed, by `stop`). */
  tpms(): { node: string; tcti: string; dir: string }[];
  stop(): Promise<void>;
};

const FUND_WEI = 10_000n * 10n ** 18n;

/** The devnet's block time, seconds (see `DevnetOptions.blockTime`). */
export const DEVNET_BLOCK_TIME = 0.25;

function ensureProfile(home: string, name: string): ProfilePublic {
  try {
    return loadProfile(home, name);
  } catch (e) {
    if (e instanceof FerryError && e.code === 'PROFILE_NOT_FOUND') return createProfile(home, name);
    throw e;
  }
}

export async function devnetUp(opts: DevnetOptions, signal?: AbortSignal): Promise<Devnet> {
  const home = opts.home;
  const log = opts.log ?? createLogger({ component: 'devnet' });
  const executors = opts.executors ?? 2;
  const verifiers = opts.verifiers ?? 5;
  const tee = opts.tee ?? 'sim';
  const regions = opts.regions && opts.regions.length > 0 ? opts.regions : ['DE'];
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const pidFile = join(home, 'devnet.pid');
  claimPidFile(pidFile);
  const procs = new ProcessRecord(pidFile);
  let chain: LocalChain | null = null;
  const swtpms: Swtpm[] = [];
  const tpms: { node: string; tcti: string; dir: string }[] = [];
  let fatal: ((e: FerryError) => void) | undefined;
  let restarted: ((name: string, ready: Record<string, unknown>) => void) | undefined;
  const supervisor = new Supervisor({
    log,
    onFatal: (_name, e) => fatal?.(e),
    onRestarted: (name, ready) => restarted?.(name, ready),
    onSpawn: (name, pid) => procs.add(name, pid, true),
  });
  const stop = async () => {
    await supervisor.stopAll();
    // The TPMs outlive the nodes that use them; stopped in reverse start order.
    for (const sw of swtpms.splice(0).reverse()) await sw.stop().catch(() => {});
    await chain?.stop();
    chain = null;
    procs.killAll();
    procs.close();
    rmSync(join(home, 'devnet.json'), { force: true });
    releasePidFile(pidFile);
  };
  try {
    // Not tied to `signal`: the chain must outlive the children when the devnet stops.
    const anvilAt = opts.placement?.('anvil');
    chain = await startLocalChain({
      blockTime: opts.blockTime ?? DEVNET_BLOCK_TIME,
      ...(anvilAt ? { host: anvilAt.host, port: anvilAt.port, prefix: anvilAt.prefix } : {}),
    });
    procs.addChildren();
    signal?.throwIfAborted();
    const deployer = await connect({
      rpcUrl: chain.rpcUrl,
      privateKey: ANVIL_DEV_KEYS[0],
      chainId: chain.chainId,
    });
    const dep = await deployFerry(deployer.wallet!, deployer.public);
    const contracts = dep.contracts;
    signal?.throwIfAborted();

    const fund = async (address: string) => {
      await deployer.public.request({
        method: 'anvil_setBalance' as never,
        params: [address, `0x${FUND_WEI.toString(16)}`] as never,
      });
    };
    const people = [
      { name: 'alice', role: 'data-owner', agent: true },
      { name: 'bob', role: 'app-owner', agent: true },
      { name: 'carol', role: 'requester', agent: false },
    ];
    const nodeSpecs = [
      ...Array.from({ length: executors }, (_, i) => ({ name: `executor-${i + 1}`, roles: ['executor'] })),
      ...Array.from({ length: verifiers }, (_, i) => ({ name: `verifier-${i + 1}`, roles: ['verifier'] })),
    ].map((n, i) => ({ ...n, region: regions[i % regions.length] }));
    const profiles = new Map<string, ProfilePublic>();
    for (const p of [...people.map((x) => x.name), ...nodeSpecs.map((n) => n.name)]) {
      const pub = ensureProfile(home, p);
      profiles.set(p, pub);
      await fund(pub.address);
      // Fresh chain: reset what the previous devnet registered.
      rmSync(join(home, 'nodes', p), { recursive: true, force: true });
      rmSync(join(home, 'agents', p), { recursive: true, force: true });
    }

    const root = createSimRoot();
    const simRoot = toHex(root.publicKey);
    mkdirSync(join(home, 'devnet'), { recursive: true, mode: 0o700 });
    writeFileSync(join(home, 'devnet', 'sim-root'), encodeSimRoot(root), { mode: 0o600 });
    const base = opts.env ?? process.env;
    const env = {
      // One local anvil never reorganises: its nodes and agents act on an event in the block that
      // carries it (no block on top) and look for new blocks every 100 ms, instead of waiting up
      // to a block time (plus a 250 ms poll) at every stage of a task. A caller's own setting wins.
      FERRY_CONFIRMATIONS: '0',
      FERRY_POLL_INTERVAL_MS: '100',
      // anvil serves eth_subscribe on its HTTP port: new heads wake the watchers and reconciles
      // as a block arrives (polling stays the fallback), src/chain/heads.ts.
      FERRY_WS_RPC: wsUrlFor(chain.rpcUrl),
      ...base,
      FERRY_HOME: home,
    };
    // --tee tpm2: one swtpm per executor, provisioned as node registration does (§13.7).
    const tpm2Args = new Map<string, string[]>();
    let tpm2: DevnetInfo['tpm2'] = null;
    let vm: DevnetInfo['vm'] = null;
    if (tee === 'vm') {
      const r = await prepareVmExecutors({
        home,
        image: opts.vmImage,
        executors: nodeSpecs.filter((x) => x.roles.includes('executor')).map((x) => x.name),
        log,
        signal,
      });
      tpm2 = r.tpm2;
      vm = r.vm;
      for (const [n, a] of r.args) tpm2Args.set(n, a);
    }
    if (tee === 'tpm2') {
      const activator = createDevnetActivator(home);
      const activatorHex = activator.publicKeyHex;
      tpm2 = { activator: activatorHex, cas: [] };
      for (const n of nodeSpecs.filter((x) => x.roles.includes('executor'))) {
        const sw = await Swtpm.start({ signal });
        swtpms.push(sw);
        procs.addChildren();
        tpms.push({ node: n.name, tcti: sw.tcti, dir: sw.dir });
        const dir = join(home, 'nodes', n.name);
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const ca = join(home, 'devnet', `tpm2-ca-${n.name}.pem`);
        writeFileSync(ca, await sw.rootCaPem(), { mode: 0o644 });
        tpm2.cas.push(ca);
        const chainFile = join(dir, 'tpm2-ek-chain.pem');
        writeFileSync(chainFile, await sw.issuerCaPem(), { mode: 0o644 });
        const be = await Tpm2Backend.open({
          tools: new Tpm2Tools({ tcti: sw.tcti }),
          recreateAk: true,
          signal,
        });
        // The EK certificate must chain to the CA the nodes and agents are told to trust
        // before the activator vouches for the AK (ATTESTATION_CHAIN_INVALID otherwise).
        const record = await activateAk({
          backend: be,
          trustedCas: parseCertificates(readFileSync(ca), ca),
          intermediates: parseCertificates(readFileSync(chainFile), chainFile),
          activatorKey: activator.privateKey,
          label: n.name,
          signal,
        });
        const recordFile = join(dir, 'tpm2-activation.cbor');
        writeFileSync(recordFile, encodeActivationRecord(record), { mode: 0o600 });
        tpm2Args.set(n.name, [
          '--tpm2-tcti',
          sw.tcti,
          '--tpm2-ak-handle',
          `0x${be.akHandle.toString(16)}`,
          '--tpm2-activation',
          recordFile,
          '--tpm2-ek-chain',
          chainFile,
        ]);
        log.info('swtpm provisioned', { node: n.name, tcti: sw.tcti, ak: toHex(be.akName) });
        signal?.throwIfAborted();
      }
    }
    const common = [
      '--rpc',
      chain.rpcUrl,
      '--contracts',
      JSON.stringify(contracts),
      '--sim-roots',
      simRoot,
      '--allow-sim',
      // Every endpoint of a devnet is on 127.0.0.1 (§13.1).
      '--local-network',
      ...(tpm2 ? ['--tpm2-cas', tpm2.cas.join(','), '--tpm2-activators', tpm2.activator] : []),
      '--json',
    ];
    const cli = (name: string, args: string[]) => {
      const at = opts.placement?.(name);
      const argv = [process.execPath, '--disable-warning=ExperimentalWarning', '--import', LIFELINE, MAIN];
      argv.push(...args, ...(at ? ['--host', at.host, '--port', String(at.port)] : []));
      const full = [...(at?.prefix ?? []), ...argv];
      return { command: full[0], args: full.slice(1), env, lifeline: true };
    };

    const agents = new Map<string, string>();
    for (const p of people.filter((x) => x.agent)) {
      const ready = await supervisor.start(
        {
          name: `agent-${p.name}`,
          ...cli(`agent-${p.name}`, ['agent', 'start', '--profile', p.name, ...common]),
          logFile: join(home, 'logs', `agent-${p.name}.log`),
        },
        signal,
      );
      agents.set(p.name, String(ready.endpoint));
    }
    const nodes: DevnetInfo['nodes'] = [];
    for (const n of nodeSpecs) {
      const args = [
        'node',
        'start',
        '--profile',
        n.name,
        '--roles',
        n.roles.join(','),
        '--tee',
        tee,
        '--region',
        n.region,
        ...common,
      ];
      if (n.roles.includes('executor') && (tee === 'tpm2' || tee === 'vm')) {
        args.push(...(tpm2Args.get(n.name) ?? []));
      } else if (n.roles.includes('executor')) {
        const dir = join(home, 'nodes', n.name);
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const file = join(dir, 'sim-attester');
        writeFileSync(file, encodeSimAttester(issueSimAttester(root)), { mode: 0o600 });
        args.push('--sim-attester', file);
      }
      const ready = await supervisor.start(
        {
          name: n.name,
          ...cli(n.name, args),
          logFile: join(home, 'logs', `${n.name}.log`),
          // A vm executor boots its VM before it is ready: minutes under TCG on a loaded host.
          ...(tee === 'vm' && n.roles.includes('executor') ? { readyTimeoutMs: 900_000 } : {}),
        },
        signal,
      );
      nodes.push({
        name: n.name,
        address: String(ready.address),
        roles: n.roles,
        region: n.region,
        tee,
        endpoint: String(ready.endpoint),
        keyId: String(ready.keyId),
      });
    }
    root.secretKey.fill(0);
    const info: DevnetInfo = {
      rpcUrl: chain.rpcUrl,
      chainId: chain.chainId,
      contracts,
      nodes,
      profiles: people.map((p) => {
        const pub = profiles.get(p.name)!;
        return {
          name: p.name,
          role: p.role,
          address: pub.address,
          ageRecipient: pub.ageRecipient,
          signingPublicKey: pub.signingPublicKey,
          agent: agents.get(p.name) ?? null,
        };
      }),
      simRoot,
      tpm2,
      vm,
      pid: process.pid,
      startedAt: new Date().toISOString(),
    };
    const writeInfo = () =>
      writeFileSync(join(home, 'devnet.json'), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o644 });
    writeInfo();
    fatal = opts.onFatal;
    // A restarted node or agent listens on a new port: keep devnet.json current.
    restarted = (name, ready) => {
      const node = info.nodes.find((n) => n.name === name);
      if (node) node.endpoint = String(ready.endpoint);
      const person = info.profiles.find((p) => `agent-${p.name}` === name);
      if (person) person.agent = String(ready.endpoint);
      if (node || person) writeInfo();
    };
    log.info('devnet ready', { rpcUrl: info.rpcUrl, nodes: nodes.length });
    return { info, stop, children: () => supervisor.children(), tpms: () => tpms.map((x) => ({ ...x })) };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Hex address helper for callers that need the deployer's key (tests). */
export const DEVNET_DEPLOYER_KEY: Hex = ANVIL_DEV_KEYS[0];
