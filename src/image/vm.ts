/**
 * Boots a node image under QEMU with OVMF and a swtpm vTPM — the shape `measureImage` predicts
 * (docs/protocol.md §17): q35, TCG unless `accel` says otherwise, `-kernel/-initrd/-append` from
 * the image directory, pflash OVMF code (read-only) and a fresh copy of the OVMF variable store,
 * a tpm-crb device backed by a fresh swtpm. Collects the serial console and the guest's
 * `FERRY-IMAGE-REPORT` line (guest.ts), and stops QEMU and swtpm whatever happens.
 */
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../kernel/index.ts';
import { IMAGE_FILES } from './build.ts';
import { DEFAULT_FIRMWARE, DEFAULT_VARS } from './firmware.ts';
import { spawnTied } from './tied.ts';

export type BootOptions = {
  dir: string;
  firmware?: string;
  vars?: string;
  memoryMiB?: number;
  cpus?: number;
  /** `tcg` (default) or `kvm`. */
  accel?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
};

export type GuestReport = {
  node: string;
  uptime: number;
  runtimeMeasurement: string | null;
  pcrs: { sha256: Record<string, string> };
  eventLog: string | null;
};

export type BootResult = {
  report: GuestReport | null;
  serial: string;
  /** Milliseconds from QEMU's start: first serial byte, the report line, QEMU's exit. */
  times: { firstOutput: number | null; report: number | null; exit: number };
  exitCode: number | null;
};

/** True when qemu-system-x86_64 and swtpm are on PATH. */
export function canBoot(): boolean {
  const path = (process.env.PATH ?? '').split(':');
  const has = (b: string) => path.some((d) => d !== '' && existsSync(join(d, b)));
  return has('qemu-system-x86_64') && has('swtpm') && existsSync(DEFAULT_FIRMWARE);
}

function stop(child: ChildProcess | undefined): void {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

function exited(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/** Boots the image once and returns what the guest printed. */
export async function bootImage(options: BootOptions): Promise<BootResult> {
  const state = await mkdtemp(join(tmpdir(), 'ferry-vm-'));
  let swtpm: ChildProcess | undefined;
  let qemu: ChildProcess | undefined;
  try {
    const vars = join(state, 'vars.fd');
    copyFileSync(options.vars ?? DEFAULT_VARS, vars);
    const sock = join(state, 'swtpm.sock');
    swtpm = spawnTied(
      'swtpm',
      ['socket', '--tpm2', '--tpmstate', `dir=${state}`, '--ctrl', `type=unixio,path=${sock}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const swtpmStarted = swtpm;
    await new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const poll = () => {
        if (existsSync(sock)) return resolve();
        if (swtpmStarted.exitCode !== null || Date.now() - t0 > 10_000) {
          return reject(
            new FerryError('IMAGE_BOOT_FAILED', 'swtpm did not start', { hints: ['is swtpm installed?'] }),
          );
        }
        setTimeout(poll, 50);
      };
      poll();
    });
    const args = [
      '-accel',
      options.accel ?? 'tcg',
      '-machine',
      'q35',
      '-m',
      String(options.memoryMiB ?? 1024),
      '-smp',
      String(options.cpus ?? 1),
      '-nodefaults',
      '-display',
      'none',
      '-vga',
      'none',
      '-serial',
      'stdio',
      '-no-reboot',
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${options.firmware ?? DEFAULT_FIRMWARE}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${vars}`,
      '-chardev',
      `socket,id=chrtpm,path=${sock}`,
      '-tpmdev',
      'emulator,id=tpm0,chardev=chrtpm',
      '-device',
      'tpm-crb,tpmdev=tpm0',
      '-kernel',
      join(options.dir, IMAGE_FILES.kernel),
      '-initrd',
      join(options.dir, IMAGE_FILES.initrd),
      '-append',
      readFileSync(join(options.dir, IMAGE_FILES.cmdline), 'utf8'),
    ];
    const t0 = Date.now();
    const started = spawnTied('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    qemu = started;
    let serial = '';
    let stderr = '';
    let firstOutput: number | null = null;
    let reportAt: number | null = null;
    let report: GuestReport | null = null;
    started.stdout?.on('data', (d: Buffer) => {
      firstOutput ??= Date.now() - t0;
      serial += d.toString('latin1');
      if (report === null) {
        const m = /FERRY-IMAGE-REPORT (\{[^\r\n]*\})\r?\n/.exec(serial);
        if (m) {
          reportAt = Date.now() - t0;
          report = JSON.parse(m[1]) as GuestReport;
        }
      }
    });
    started.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        stop(started);
        reject(
          new FerryError(
            'IMAGE_BOOT_FAILED',
            `the VM did not power off within ${options.timeoutMs ?? 180_000} ms`,
            {
              hints: [serial.slice(-400)],
            },
          ),
        );
      }, options.timeoutMs ?? 180_000);
      const onAbort = () => stop(started);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      started.on('error', (e) => {
        clearTimeout(timer);
        reject(new FerryError('IMAGE_BOOT_FAILED', 'cannot start qemu-system-x86_64', { cause: e }));
      });
      started.on('exit', (code) => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        resolve(code);
      });
    });
    if (exitCode !== 0 && report === null) {
      throw new FerryError('IMAGE_BOOT_FAILED', `qemu-system-x86_64 exited with ${exitCode}`, {
        hints: [stderr.trim().slice(-400), serial.slice(-400)],
      });
    }
    return { report, serial, times: { firstOutput, report: reportAt, exit: Date.now() - t0 }, exitCode };
  } finally {
    stop(qemu);
    stop(swtpm);
    // swtpm writes its state as it exits: remove the directory after both have exited.
    await Promise.all([exited(qemu), exited(swtpm)]);
    await rm(state, { recursive: true, force: true });
  }
}
