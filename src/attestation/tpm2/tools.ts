/**
 * A serialised runner for tpm2-tools. One `Tpm2Tools` per TPM: every command goes through one
 * async mutex, because swtpm serves one connection at a time and has no resource manager, and
 * a multi-command sequence (start a policy session, satisfy it, use it, flush it) must not
 * interleave with another. The TCTI string selects the TPM: `swtpm:host=127.0.0.1,port=P` in
 * development and CI, `device:/dev/tpmrm0` in production; the code is the same.
 */
import { execFile } from 'node:child_process';
import { FerryError } from '../../kernel/index.ts';

export type Tpm2ToolsOptions = {
  /** TPM2TOOLS_TCTI value, e.g. `swtpm:host=127.0.0.1,port=2321` or `device:/dev/tpmrm0`. */
  tcti: string;
  /** Per-command timeout; default 30 s. */
  timeoutMs?: number;
};

/** Runs one tool inside a session; see `Tpm2Tools.session`. */
export type Tpm2Run = (tool: string, args: readonly string[], signal?: AbortSignal) => Promise<string>;

const TOOL_RE = /^tpm2_[a-z_]+$/;

export class Tpm2Tools {
  readonly tcti: string;
  readonly timeoutMs: number;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(opts: Tpm2ToolsOptions) {
    if (typeof opts?.tcti !== 'string' || !/^(swtpm|mssim|device|tabrmd):/.test(opts.tcti)) {
      throw new FerryError(
        'INVALID_ARGUMENT',
        'tcti: expected e.g. "swtpm:host=127.0.0.1,port=2321" or "device:/dev/tpmrm0"',
        {
          hints: [`got: ${String(opts?.tcti)}`],
        },
      );
    }
    this.tcti = opts.tcti;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /**
   * Holds the TPM for the whole of `fn`: commands run through the `run` it receives, and no
   * other session's commands interleave. Do not call `run`/`session` of the same object inside.
   */
  session<T>(fn: (run: Tpm2Run) => Promise<T>): Promise<T> {
    const result = this.#tail.then(() => fn((tool, args, signal) => this.#exec(tool, args, signal)));
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** Runs one tool (serialised) and returns its stdout. */
  run(tool: string, args: readonly string[], signal?: AbortSignal): Promise<string> {
    return this.session((run) => run(tool, args, signal));
  }

  #exec(tool: string, args: readonly string[], signal?: AbortSignal): Promise<string> {
    if (!TOOL_RE.test(tool))
      throw new FerryError('INVALID_ARGUMENT', `tool: not a tpm2-tools command: ${tool}`);
    return new Promise((resolve, reject) => {
      execFile(
        tool,
        [...args],
        {
          env: { ...process.env, TPM2TOOLS_TCTI: this.tcti },
          timeout: this.timeoutMs,
          signal,
          maxBuffer: 16 << 20,
          encoding: 'utf8',
        },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          const e = err as NodeJS.ErrnoException & { killed?: boolean };
          if (e.code === 'ENOENT') {
            return reject(
              new FerryError('ATTESTATION_BACKEND_UNAVAILABLE', `${tool} is not installed`, {
                hints: ['install the Debian package tpm2-tools'],
                cause: err,
              }),
            );
          }
          if (e.name === 'AbortError')
            return reject(new FerryError('ABORTED', `${tool} aborted`, { cause: err }));
          const lines = String(stderr).trim().split('\n').filter(Boolean).slice(-3);
          reject(
            new FerryError('ATTESTATION_TPM2_COMMAND_FAILED', `${tool} failed`, {
              hints: [...lines, `tcti: ${this.tcti}`],
              cause: err,
            }),
          );
        },
      );
    });
  }
}
