/**
 * The VM enclave backend (`--tee vm`, docs/protocol.md §17.5), host side: one VM per node,
 * booted once from the node image with OVMF and a vTPM (swtpm), KVM when it can run guests
 * here, else TCG. Each attempt is one enclave process inside the guest (the guest agent,
 * guest.ts, starts it); its keys are made inside that process; its evidence is a tpm2 quote
 * from the guest's /dev/tpmrm0 over the boot PCRs (0-7 and 9: firmware, kernel, command line,
 * initrd) with the AK provisioned in the vTPM before the boot.
 *
 * `provisionVtpm` manufactures the vTPM state (EK certificate from swtpm's local CA, AK
 * persistent at 0x81010002, credential activation by the caller's activator). `VmEnclaveHost`
 * boots the VM on that state and creates enclaves; `stop` ends QEMU and swtpm whatever happens.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { accessSync, constants, copyFileSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import {
  type ActivationRecord,
  decodeActivationRecord,
  encodeActivationRecord,
  Swtpm,
  Tpm2Backend,
  Tpm2Tools,
} from '../attestation/tpm2/index.ts';
import {
  attachEnclave,
  type CreateEnclaveOptions,
  type EnclaveHandle,
  type EnclaveProcess,
} from '../enclave/index.ts';
import { FerryError, toHex } from '../kernel/index.ts';
import { IMAGE_FILES } from './build.ts';
import { encodeLine, KIND, lineReader, RELAY_CHUNK, RELAY_WINDOW } from './channel.ts';
import { DEFAULT_FIRMWARE, DEFAULT_VARS } from './firmware.ts';
import { spawnTied } from './tied.ts';

/** The PCRs a VM enclave quotes: firmware and boot (0-7) and the EFI stub's command line and initrd (9). */
export const VM_PCR_SELECTION = 'sha256:0,1,2,3,4,5,6,7,9';
/** The firmware's event log as the guest's kernel publishes it (the guest agent allows no other file). */
export const GUEST_EVENT_LOG = '/sys/kernel/security/tpm0/binary_bios_measurements';
/** The VM shape with recorded firmware values (PCR 0 depends on it). */
export const VM_MEMORY_MIB = 1024;
export const VM_CPUS = 1;
export const VM_AK_HANDLE = 0x81010002;

export type VtpmProvision = {
  /** The vTPM state directory (swtpm --tpmstate dir=). */
  stateDir: string;
  akHandle: number;
  akName: Uint8Array;
  /** DER. */
  ekCert: Uint8Array;
  /** The EK's intermediate CA (DER) and the root CA (PEM) the verifiers must trust. */
  ekChain: Uint8Array[];
  rootCaPem: Buffer;
  activation: ActivationRecord;
};

/**
 * Manufactures a vTPM into `stateDir` (created; must not hold a TPM): swtpm_setup with an EK
 * certificate, an AK made persistent, then `activate` (credential activation by the
 * activator: devnet/activator.ts `activateAk`). Returns the public values the enclaves send.
 */
export async function provisionVtpm(p: {
  stateDir: string;
  activate: (
    backend: Tpm2Backend,
    chain: { rootCaPem: Buffer; issuerPem: Buffer },
  ) => Promise<ActivationRecord>;
  signal?: AbortSignal;
}): Promise<VtpmProvision> {
  const sw = await Swtpm.start({ pcrBanks: ['sha256'], signal: p.signal });
  let keep = false;
  try {
    const be = await Tpm2Backend.open({
      tools: new Tpm2Tools({ tcti: sw.tcti }),
      akHandle: VM_AK_HANDLE,
      recreateAk: true,
      signal: p.signal,
    });
    const ekCert = await be.readEkCertificate(p.signal);
    const rootCaPem = await sw.rootCaPem();
    const issuerPem = await sw.issuerCaPem();
    const activation = await p.activate(be, { rootCaPem, issuerPem });
    keep = true;
    return {
      stateDir: p.stateDir,
      akHandle: VM_AK_HANDLE,
      akName: be.akName,
      ekCert,
      ekChain: [new Uint8Array(new X509Certificate(issuerPem).raw)],
      rootCaPem,
      activation,
    };
  } finally {
    await sw.stop(keep ? { keepStateIn: p.stateDir } : undefined);
  }
}

/** True when /dev/kvm can run a guest here: it opens, and OVMF starts without a KVM internal error. */
export function kvmUsable(): { usable: boolean; reason: string } {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { usable: false, reason: '/dev/kvm cannot be opened' };
  }
  const r = spawnSync(
    'qemu-system-x86_64',
    [
      '-accel',
      'kvm',
      '-machine',
      'q35',
      '-m',
      '64',
      '-nodefaults',
      '-display',
      'none',
      '-bios',
      '/usr/share/ovmf/OVMF.fd',
    ],
    { timeout: 3000, encoding: 'utf8', killSignal: 'SIGKILL' },
  );
  const err = `${r.stderr ?? ''}`;
  const bad = err
    .split('\n')
    .find((l) => /KVM internal error|failed to initialize kvm|Could not access KVM/i.test(l));
  if (bad !== undefined) return { usable: false, reason: `a KVM guest stopped: ${bad.trim()}` };
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    return { usable: false, reason: 'qemu-system-x86_64 is not installed' };
  }
  // Still running after 3 s (killed by the timeout) with no error: the firmware runs under KVM.
  return r.signal === 'SIGKILL'
    ? { usable: true, reason: 'a KVM guest ran OVMF for 3 s' }
    : { usable: false, reason: `qemu exited with ${r.status}: ${err.trim().split('\n')[0] ?? ''}` };
}

/** What the VM host needs of a provisioned vTPM (the root CA is for the verifiers). */
export type VmTpm = Omit<VtpmProvision, 'rootCaPem'>;

export type VmEnclaveHostOptions = {
  /** The node image directory (`ferry image build --out`). */
  image: string;
  vtpm: VmTpm;
  /** `auto` (default): KVM when usable, else TCG. */
  accel?: 'auto' | 'kvm' | 'tcg';
  firmware?: string;
  vars?: string;
  /** Time allowed for the boot to the agent's hello (default 600 s: TCG on a loaded host). */
  bootTimeoutMs?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
  signal?: AbortSignal;
};

/** The stand-in for an enclave process inside the VM (see EnclaveProcess in enclave/handle.ts). */
class GuestProcess extends EventEmitter {
  exitCode: number | null = null;
  signalCode: string | null = null;
  readonly pid = undefined;
  readonly #kill: () => void;
  constructor(kill: () => void) {
    super();
    this.#kill = kill;
  }
  kill(): boolean {
    if (this.exitCode !== null || this.signalCode !== null) return false;
    this.#kill();
    return true;
  }
  exited(code: number | null, signal: string | null): void {
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.exitCode = code;
    this.signalCode = code === null ? (signal ?? 'SIGKILL') : signal;
    this.emit('exit', this.exitCode, this.signalCode);
  }
}

type HostAttempt = { proc: GuestProcess; pipe: Duplex; stderr: PassThrough };

export class VmEnclaveHost {
  readonly accel: 'kvm' | 'tcg';
  readonly bootMs: number;
  readonly #qemu: ChildProcess;
  readonly #swtpm: ChildProcess;
  readonly #run: string;
  readonly #chan: Socket;
  readonly #vtpm: VmTpm;
  readonly #attempts = new Map<number, HostAttempt>();
  readonly #relays = new Map<number, { unacked: number; wake?: () => void; abort: AbortController }>();
  #next = 1;
  #dead: FerryError | null = null;
  #stopped: Promise<void> | undefined;
  #offExit: () => void = () => {};
  serial = '';

  private constructor(p: {
    accel: 'kvm' | 'tcg';
    bootMs: number;
    qemu: ChildProcess;
    swtpm: ChildProcess;
    run: string;
    chan: Socket;
    vtpm: VmTpm;
  }) {
    this.accel = p.accel;
    this.bootMs = p.bootMs;
    this.#qemu = p.qemu;
    this.#swtpm = p.swtpm;
    this.#run = p.run;
    this.#chan = p.chan;
    this.#vtpm = p.vtpm;
  }

  /** Boots the VM and waits for the guest agent's hello. Stops what it started on failure. */
  static async start(opts: VmEnclaveHostOptions): Promise<VmEnclaveHost> {
    const log = opts.log ?? (() => {});
    let accel: 'kvm' | 'tcg';
    if (opts.accel === 'kvm' || opts.accel === 'tcg') {
      accel = opts.accel;
      log('vm accelerator', { accel, reason: 'configured' });
    } else {
      const k = kvmUsable();
      accel = k.usable ? 'kvm' : 'tcg';
      log('vm accelerator', { accel, reason: k.reason });
    }
    const run = await mkdtemp(join(tmpdir(), 'ferry-vm-'));
    let swtpm: ChildProcess | undefined;
    let qemu: ChildProcess | undefined;
    let serial = '';
    try {
      const vars = join(run, 'vars.fd');
      copyFileSync(opts.vars ?? DEFAULT_VARS, vars);
      const tpmSock = join(run, 'swtpm.sock');
      swtpm = spawnTied(
        'swtpm',
        [
          'socket',
          '--tpm2',
          '--tpmstate',
          `dir=${opts.vtpm.stateDir}`,
          '--ctrl',
          `type=unixio,path=${tpmSock}`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      await waitFor(() => existsSync(tpmSock), swtpm, 10_000, 'swtpm did not start');
      const chanSock = join(run, 'channel.sock');
      const args = [
        ...['-accel', accel, '-machine', 'q35', '-m', String(VM_MEMORY_MIB), '-smp', String(VM_CPUS)],
        ...['-nodefaults', '-display', 'none', '-vga', 'none', '-no-reboot'],
        ...['-serial', 'stdio', '-chardev', `socket,id=ferry,path=${chanSock},server=on,wait=on`],
        ...['-serial', 'chardev:ferry'],
        ...['-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${opts.firmware ?? DEFAULT_FIRMWARE}`],
        ...['-drive', `if=pflash,format=raw,unit=1,file=${vars}`],
        ...['-chardev', `socket,id=chrtpm,path=${tpmSock}`, '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm'],
        ...['-device', 'tpm-crb,tpmdev=tpm0'],
        ...['-kernel', join(opts.image, IMAGE_FILES.kernel), '-initrd', join(opts.image, IMAGE_FILES.initrd)],
        ...['-append', readFileSync(join(opts.image, IMAGE_FILES.cmdline), 'utf8')],
      ];
      const t0 = Date.now();
      qemu = spawnTied('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      qemu.stdout?.on('data', (d: Buffer) => {
        serial = (serial + d.toString('latin1')).slice(-20_000);
      });
      qemu.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString('utf8')).slice(-4000);
      });
      await waitFor(() => existsSync(chanSock), qemu, 10_000, 'qemu did not start');
      // QEMU binds the socket, then listens: retry a refused connection for a moment.
      let chan: Socket | undefined;
      for (let i = 0; !chan; i++) {
        chan = await new Promise<Socket | undefined>((resolve, reject) => {
          const c = connect(chanSock);
          c.once('connect', () => resolve(c));
          c.once('error', (e) => (i < 50 ? resolve(undefined) : reject(e)));
        });
        if (!chan) await new Promise((r) => setTimeout(r, 100));
      }
      const hello = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const q = qemu as ChildProcess;
        const fail = (why: string) =>
          reject(
            new FerryError('IMAGE_BOOT_FAILED', `the VM did not reach its guest agent: ${why}`, {
              hints: [stderr.trim().slice(-300), serial.slice(-600)].filter((x) => x),
            }),
          );
        const timer = setTimeout(
          () => fail(`no hello within ${opts.bootTimeoutMs ?? 600_000} ms`),
          opts.bootTimeoutMs ?? 600_000,
        );
        const onExit = (code: number | null) => {
          clearTimeout(timer);
          fail(`qemu exited with ${code}`);
        };
        q.once('exit', onExit);
        const onAbort = () => {
          clearTimeout(timer);
          fail('aborted');
        };
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        chan.on('error', (e) => fail(`channel: ${e.message}`));
        const read = lineReader(
          (m) => {
            if (m.kind !== KIND.hello) return;
            clearTimeout(timer);
            q.off('exit', onExit);
            opts.signal?.removeEventListener('abort', onAbort);
            chan.off('data', read);
            try {
              resolve(JSON.parse(Buffer.from(m.payload).toString('utf8')));
            } catch {
              resolve({});
            }
          },
          (why) => fail(why),
          { skipOthers: true },
        );
        chan.on('data', read);
      });
      const host = new VmEnclaveHost({
        accel,
        bootMs: Date.now() - t0,
        qemu,
        swtpm,
        run,
        chan,
        vtpm: opts.vtpm,
      });
      host.serial = serial;
      qemu.stdout?.on('data', (d: Buffer) => {
        host.serial = (host.serial + d.toString('latin1')).slice(-20_000);
      });
      host.#listen();
      // If this process ends without stop() (an uncaught error, process.exit), the VM and its
      // vTPM end with it; after SIGKILL only the caller's process records can find them.
      const onExit = () => {
        kill(host.#qemu);
        kill(host.#swtpm);
      };
      process.once('exit', onExit);
      host.#offExit = () => process.off('exit', onExit);
      log('vm ready', { accel, bootMs: host.bootMs, guestNode: hello.node });
      return host;
    } catch (e) {
      kill(qemu);
      await stopSwtpm(swtpm, join(run, 'swtpm.sock'));
      await rm(run, { recursive: true, force: true });
      throw e;
    }
  }

  /** The backend map the enclaves in this VM are initialised with (all public). */
  get backend() {
    return {
      kind: 'tpm2-device' as const,
      device: '/dev/tpmrm0',
      pcrSelection: VM_PCR_SELECTION,
      akHandle: this.#vtpm.akHandle,
      ekCert: this.#vtpm.ekCert,
      ekChain: this.#vtpm.ekChain,
      activationRecord: encodeActivationRecord(this.#vtpm.activation),
      eventLogFile: GUEST_EVENT_LOG,
    };
  }

  /** QEMU's process id (its resident memory is the VM's cost). */
  get qemuPid(): number | undefined {
    return this.#qemu.pid;
  }

  get alive(): boolean {
    return this.#dead === null;
  }

  #send(kind: number, id: number, payload?: Uint8Array): void {
    if (this.#dead) return;
    this.#chan.write(encodeLine(kind, id, payload));
  }

  #die(e: FerryError): void {
    if (this.#dead) return;
    this.#dead = e;
    for (const [id, a] of this.#attempts) {
      this.#attempts.delete(id);
      a.pipe.push(null);
      a.stderr.end();
      a.proc.exited(null, 'SIGKILL');
    }
    for (const r of this.#relays.values()) r.abort.abort();
  }

  #listen(): void {
    this.#qemu.once('exit', (code) =>
      this.#die(new FerryError('ENCLAVE_CRASHED', `the enclave VM stopped (qemu exited with ${code})`)),
    );
    this.#chan.on('close', () =>
      this.#die(new FerryError('ENCLAVE_CRASHED', 'the enclave VM channel closed')),
    );
    this.#chan.on('error', () => {});
    this.#chan.on(
      'data',
      lineReader(
        (m) => {
          const a = this.#attempts.get(m.id);
          switch (m.kind) {
            case KIND.fromEnclave:
              a?.pipe.push(Buffer.from(m.payload));
              return;
            case KIND.log:
              a?.stderr.write(`${Buffer.from(m.payload).toString('utf8')}\n`);
              return;
            case KIND.exited: {
              if (!a) return;
              this.#attempts.delete(m.id);
              let st: { code?: number | null; signal?: string | null } = {};
              try {
                st = JSON.parse(Buffer.from(m.payload).toString('utf8'));
              } catch {}
              a.pipe.push(null);
              a.stderr.end();
              a.proc.exited(st.code ?? null, st.signal ?? null);
              return;
            }
            case KIND.relayRequest:
              void this.#relay(m.id, Buffer.from(m.payload).toString('utf8'));
              return;
            case KIND.relayAck: {
              const r = this.#relays.get(m.id);
              if (r) {
                r.unacked--;
                r.wake?.();
              }
              return;
            }
          }
        },
        (why) => this.#die(new FerryError('ENCLAVE_PROTOCOL', `the enclave VM channel: ${why}`)),
      ),
    );
  }

  /** Fetches a URL for the guest and streams the bytes (ciphertext) in acknowledged chunks. */
  async #relay(id: number, url: string): Promise<void> {
    const r: { unacked: number; wake?: () => void; abort: AbortController } = {
      unacked: 0,
      abort: new AbortController(),
    };
    this.#relays.set(id, r);
    try {
      if (!/^https?:\/\//.test(url)) throw new Error('only http and https sources are relayed');
      const res = await fetch(url, { signal: r.abort.signal });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        for (let off = 0; off < chunk.length; off += RELAY_CHUNK) {
          while (r.unacked >= RELAY_WINDOW) {
            if (this.#dead) throw this.#dead;
            await new Promise<void>((w) => {
              r.wake = w;
            });
          }
          r.unacked++;
          this.#send(KIND.relayData, id, chunk.subarray(off, off + RELAY_CHUNK));
        }
      }
      this.#send(KIND.relayEnd, id);
    } catch (e) {
      this.#send(KIND.relayEnd, id, Buffer.from(String((e as Error).message ?? e).slice(0, 200), 'utf8'));
    } finally {
      this.#relays.delete(id);
    }
  }

  /**
   * Starts an enclave process in the guest for one attempt and initialises it (keys made
   * inside, evidence from the guest's TPM). Same handle as createEnclave; the backend is the VM's.
   */
  async createEnclave(opts: Omit<CreateEnclaveOptions, 'backend'>): Promise<EnclaveHandle> {
    if (this.#dead) throw this.#dead;
    const id = this.#next++;
    const proc = new GuestProcess(() => this.#send(KIND.kill, id));
    const send = (b: Uint8Array) => this.#send(KIND.toEnclave, id, b);
    const pipe = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        send(chunk);
        cb();
      },
    });
    const stderr = new PassThrough();
    this.#attempts.set(id, { proc, pipe, stderr });
    this.#send(KIND.open, id);
    return attachEnclave(proc as EnclaveProcess, pipe, stderr, {
      ...opts,
      backend: this.backend,
      // Under TCG the guest's Node.js starts in seconds, not milliseconds.
      startTimeoutMs: opts.startTimeoutMs ?? (this.accel === 'tcg' ? 300_000 : 30_000),
      exitTimeoutMs: opts.exitTimeoutMs ?? 10_000,
    });
  }

  /** Stops QEMU and swtpm and removes the run directory. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#die(new FerryError('ENCLAVE_CRASHED', 'the enclave VM was stopped'));
      this.#chan.destroy();
      const exited = new Promise<void>((r) => {
        if (this.#qemu.exitCode !== null || this.#qemu.signalCode !== null) r();
        else this.#qemu.once('exit', () => r());
      });
      kill(this.#qemu);
      await exited;
      await stopSwtpm(this.#swtpm, join(this.#run, 'swtpm.sock'));
      await rm(this.#run, { recursive: true, force: true });
      this.#offExit();
    })();
    return this.#stopped;
  }

  /** A summary for logs. */
  describe(): string {
    return `VM enclave host (${this.accel}, AK ${toHex(this.#vtpm.akName)})`;
  }
}

/** The `ferry node start --tee vm` settings (src/node/config.ts). */
export type NodeVmConfig = {
  vmImage?: string;
  vmTpmState?: string;
  vmAccel?: 'auto' | 'kvm' | 'tcg' | string;
  tpm2AkHandle?: number;
  tpm2Activation?: string;
  tpm2EkCert?: string;
  tpm2EkChain: readonly string[];
};

function derOf(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(new X509Certificate(readFileSync(path)).raw);
  } catch (e) {
    throw new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', `cannot read the ${what} certificate ${path}`, {
      cause: e,
      hints: ['expected a PEM or DER X.509 certificate'],
    });
  }
}

/** Boots a node's enclave VM from its configuration (the image, the provisioned vTPM, its public parts). */
export async function startNodeVm(
  c: NodeVmConfig,
  opts: { log?: { info(msg: string, fields?: Record<string, unknown>): void }; signal?: AbortSignal } = {},
): Promise<VmEnclaveHost> {
  const missing = (
    [
      ['vmImage', '--vm-image DIR (ferry image build --out DIR)'],
      ['vmTpmState', '--vm-tpm-state DIR (the provisioned vTPM)'],
      ['tpm2Activation', "--tpm2-activation FILE (the activator's record)"],
      ['tpm2EkCert', "--tpm2-ek-cert FILE (the vTPM's EK certificate)"],
    ] as const
  ).filter(([k]) => !c[k]);
  if (missing.length > 0) {
    throw new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', 'this node cannot create vm enclaves', {
      hints: missing.map(([, h]) => `needs ${h}`),
    });
  }
  let activation: ActivationRecord;
  try {
    activation = decodeActivationRecord(new Uint8Array(readFileSync(c.tpm2Activation as string)));
  } catch (e) {
    throw new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', 'cannot read the activation record', {
      cause: e,
      hints: [String(c.tpm2Activation)],
    });
  }
  const accel = c.vmAccel === 'kvm' || c.vmAccel === 'tcg' ? c.vmAccel : 'auto';
  return VmEnclaveHost.start({
    image: c.vmImage as string,
    accel,
    vtpm: {
      stateDir: c.vmTpmState as string,
      akHandle: c.tpm2AkHandle ?? VM_AK_HANDLE,
      akName: activation.akName,
      ekCert: derOf(c.tpm2EkCert as string, 'EK'),
      ekChain: c.tpm2EkChain.map((f) => derOf(f, 'EK chain')),
      activation,
    },
    log: (m, f) => opts.log?.info(m, f),
    signal: opts.signal,
  });
}

function kill(child: ChildProcess | undefined): void {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** swtpm exits when QEMU's connection ends; otherwise swtpm_ioctl -s, then SIGKILL. */
async function stopSwtpm(child: ChildProcess | undefined, sock: string): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  spawnSync('swtpm_ioctl', ['--unix', sock, '-s'], { timeout: 3000, stdio: 'ignore' });
  const timer = setTimeout(() => kill(child), 2000);
  await exited;
  clearTimeout(timer);
}

async function waitFor(ok: () => boolean, child: ChildProcess, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() - t0 > ms) {
      throw new FerryError('IMAGE_BOOT_FAILED', what, {
        hints: ['are qemu-system-x86 and swtpm installed?'],
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
