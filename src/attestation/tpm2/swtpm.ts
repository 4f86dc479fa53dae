/**
 * A software TPM (swtpm 0.7.1) for development and CI: manufactured with `swtpm_setup` in a
 * temporary directory with an EK certificate from `swtpm_localca` (configuration files written
 * by us into that directory, so nothing is read or written under /etc or /var/lib), then served
 * on 127.0.0.1 on two consecutive free TCP ports (the swtpm TCTI finds the control
 * channel at port + 1). `stop()` is idempotent and removes the directory.
 *
 * The manufactured TPM has a persistent RSA EK at 0x81010001 whose certificate is at NV index
 * 0x1c00002, an ECC P-384 EK at 0x81010016 (certificate at 0x1c00016), and the PCR banks asked
 * for (default sha1, sha256, sha384). The EK certificate chains EK -> `issuercert.pem`
 * ("swtpm-localca") -> `swtpm-localca-rootca-cert.pem` ("swtpm-localca-rootca").
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../../kernel/index.ts';

export type SwtpmOptions = {
  /** PCR banks to activate; default sha1, sha256, sha384. */
  pcrBanks?: readonly ('sha1' | 'sha256' | 'sha384' | 'sha512')[];
  signal?: AbortSignal;
};

function execOk(cmd: string, args: string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 30_000, signal, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const code = (err as NodeJS.ErrnoException).code;
      reject(
        new FerryError(
          code === 'ENOENT' ? 'ATTESTATION_BACKEND_UNAVAILABLE' : 'ATTESTATION_TPM2_COMMAND_FAILED',
          `${cmd} failed`,
          {
            hints: String(stderr || stdout)
              .trim()
              .split('\n')
              .slice(-3),
            cause: err,
          },
        ),
      );
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A port P with P and P+1 free: the swtpm TCTI reaches the control channel at P+1. */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = 20000 + 2 * Math.floor(Math.random() * 20000);
    if ((await portFree(p)) && (await portFree(p + 1))) return p;
  }
  throw new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', 'no two consecutive free TCP ports for swtpm');
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port }, () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export class Swtpm {
  readonly dir: string;
  readonly port: number;
  readonly ctrlPort: number;
  #child: ChildProcess | null;
  #stopped = false;

  private constructor(dir: string, port: number, ctrlPort: number, child: ChildProcess) {
    this.dir = dir;
    this.port = port;
    this.ctrlPort = ctrlPort;
    this.#child = child;
  }

  /** The TCTI string tpm2-tools use to reach this TPM. */
  get tcti(): string {
    return `swtpm:host=127.0.0.1,port=${this.port}`;
  }

  /** PEM of the local CA's root certificate (the EK certificate's trust anchor). */
  rootCaPem(): Promise<Buffer> {
    return readFile(join(this.dir, 'ca', 'swtpm-localca-rootca-cert.pem'));
  }

  /** PEM of the intermediate that issued the EK certificate. */
  issuerCaPem(): Promise<Buffer> {
    return readFile(join(this.dir, 'ca', 'issuercert.pem'));
  }

  /** Manufactures a new TPM in a fresh temporary directory and starts serving it. */
  static async start(opts: SwtpmOptions = {}): Promise<Swtpm> {
    const banks = opts.pcrBanks ?? ['sha1', 'sha256', 'sha384'];
    const dir = await mkdtemp(join(tmpdir(), 'ferry-swtpm-'));
    try {
      const ca = join(dir, 'ca');
      await execOk('mkdir', ['-p', ca, join(dir, 'state')]);
      await writeFile(
        join(dir, 'swtpm-localca.conf'),
        `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`,
      );
      await writeFile(
        join(dir, 'swtpm-localca.options'),
        '--platform-manufacturer Ferry\n--platform-version 2.1\n--platform-model swtpm\n',
      );
      await writeFile(
        join(dir, 'swtpm_setup.conf'),
        `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${dir}/swtpm-localca.conf\ncreate_certs_tool_options = ${dir}/swtpm-localca.options\nactive_pcr_banks = ${banks.join(',')}\n`,
      );
      await execOk(
        'swtpm_setup',
        [
          '--tpm2',
          '--tpmstate',
          join(dir, 'state'),
          '--config',
          join(dir, 'swtpm_setup.conf'),
          '--create-ek-cert',
          '--create-platform-cert',
          '--lock-nvram',
          '--overwrite',
          '--pcr-banks',
          banks.join(','),
        ],
        opts.signal,
      );
      let lastErr: unknown;
      for (let attempt = 0; attempt < 3; attempt++) {
        const port = await freePortPair();
        const ctrlPort = port + 1;
        const child = spawn(
          'swtpm',
          [
            'socket',
            '--tpm2',
            '--server',
            `type=tcp,port=${port},bindaddr=127.0.0.1`,
            '--ctrl',
            `type=tcp,port=${ctrlPort},bindaddr=127.0.0.1`,
            '--tpmstate',
            `dir=${join(dir, 'state')}`,
            '--flags',
            'not-need-init,startup-clear',
          ],
          { stdio: ['ignore', 'ignore', 'pipe'] },
        );
        let exited = false;
        child.once('exit', () => {
          exited = true;
        });
        const t0 = Date.now();
        while (!exited && Date.now() - t0 < 3000) {
          if (await canConnect(ctrlPort)) return new Swtpm(dir, port, ctrlPort, child);
          await new Promise((r) => setTimeout(r, 20));
        }
        lastErr = new Error(`swtpm did not start on ports ${port}/${ctrlPort}`);
        if (!exited) child.kill('SIGKILL');
      }
      throw new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', 'swtpm did not start', { cause: lastErr });
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Stops the TPM (swtpm_ioctl -s, then SIGKILL after 2 s) and deletes its directory; with
   * `keepStateIn`, the TPM state (a provisioned vTPM for a VM) is first copied there.
   */
  async stop(opts: { keepStateIn?: string } = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const child = this.#child;
    this.#child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      await execOk('swtpm_ioctl', ['--tcp', `127.0.0.1:${this.ctrlPort}`, '-s']).catch(() =>
        child.kill('SIGTERM'),
      );
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
    if (opts.keepStateIn) await cp(join(this.dir, 'state'), opts.keepStateIn, { recursive: true });
    await rm(this.dir, { recursive: true, force: true });
  }
}
