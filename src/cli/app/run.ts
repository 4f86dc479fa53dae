/**
 * `ferry app run`: runs a WASI app in the same enclave runtime as a task, on this machine
 * (sim backend, plaintext data), so developers can test before publishing.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createSimRoot, encodeSimAttester, issueSimAttester } from '../../attestation/sim/index.ts';
import { decrypt, generateX25519Identity, parseIdentity } from '../../crypto/age/index.ts';
import { createEnclave, DEFAULT_LIMITS, decodeReceipt, receiptToJson } from '../../enclave/index.ts';
import { FerryError, toHex } from '../../kernel/index.ts';
import { intOption, optionalString, readInputFile, stringList } from '../args.ts';
import { type Command, defineCommand } from '../command.ts';
import { createHash } from 'node:crypto';

async function checkReadable(path: string, what: string): Promise<void> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new Error('not a regular file');
  } catch (e) {
    throw new FerryError('IO_READ_FAILED', `cannot read ${what} ${path}`, {
      cause: e,
      hints: [(e as NodeJS.ErrnoException).code ?? (e as Error).message],
    });
  }
}

/** Dataset ids from file names: [A-Za-z0-9._-], unique (a numeric suffix is added on clashes). */
export function datasetIds(files: string[]): string[] {
  const seen = new Set<string>();
  return files.map((f) => {
    let id =
      basename(f)
        .replace(/[^A-Za-z0-9._-]/g, '_')
        .slice(0, 120) || 'data';
    if (id === '.' || id === '..') id = 'data';
    let candidate = id;
    for (let i = 2; seen.has(candidate); i++) candidate = `${id}.${i}`;
    seen.add(candidate);
    return candidate;
  });
}

const command: Command = defineCommand({
  name: 'app run',
  summary: 'run a WASI app locally in the enclave runtime (sim backend, plaintext data)',
  usage:
    'app run APP.wasm [--data FILE]... [--arg A]... [--timeout-ms N] [--memory-mb N] [--max-output-bytes N] [--out FILE] [--json]',
  description: `
Runs APP.wasm (a WASI preview 1 command module) in a fresh enclave process exactly as a task
would run it, with the sim backend and plaintext inputs. With one --data FILE the file is the
app's stdin; with several, stdin is empty and each file is readable once, sequentially, as
/data/<file name>. --arg values are the app's argv[1..] (write --arg=-x for a value that starts
with a dash). The app's stdout goes to --out FILE
(default: this terminal; with --json and no --out it is not printed, only measured); its
stderr is copied to this stderr. Limits: wall time (--timeout-ms, default ${DEFAULT_LIMITS.timeoutMs}), linear
memory (--memory-mb, default ${DEFAULT_LIMITS.memoryMb}), stdout bytes (--max-output-bytes, default ${DEFAULT_LIMITS.maxOutputBytes}).
--json prints {"exitCode", "limitHit", "outputBytes", "outputSha256", "durationMs", "receipt"}.
Exits 1 when the app did not exit with status 0 or a limit was hit.`,
  options: {
    data: { type: 'string', multiple: true, value: 'FILE', description: 'a plaintext dataset' },
    arg: { type: 'string', multiple: true, value: 'A', description: 'an argument for the app' },
    'timeout-ms': { type: 'string', value: 'N', description: 'wall-time limit in milliseconds' },
    'memory-mb': { type: 'string', value: 'N', description: 'linear-memory limit in MiB' },
    'max-output-bytes': { type: 'string', value: 'N', description: 'stdout limit in bytes' },
    out: { type: 'string', value: 'FILE', description: 'write the app stdout to FILE' },
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const appPath = resolve(ctx.cwd, ctx.positionals[0]);
    const dataFiles = stringList(ctx, 'data').map((f) => resolve(ctx.cwd, f));
    const args = stringList(ctx, 'arg');
    const limits = {
      timeoutMs: intOption(ctx, 'timeout-ms', DEFAULT_LIMITS.timeoutMs, 1),
      memoryMb: intOption(ctx, 'memory-mb', DEFAULT_LIMITS.memoryMb, 1),
      maxOutputBytes: intOption(ctx, 'max-output-bytes', DEFAULT_LIMITS.maxOutputBytes, 1),
    };
    const outPath = optionalString(ctx, 'out');
    const app = await readInputFile(appPath, 'app');
    for (const f of dataFiles) await checkReadable(f, '--data file');
    const measurement = new Uint8Array(createHash('sha256').update(app).digest());
    const ids = datasetIds(dataFiles);

    const dir = await mkdtemp(join(tmpdir(), 'ferry-app-run-'));
    const enclave = await (async () => {
      try {
        const attesterFile = join(dir, 'sim-attester.cbor');
        await writeFile(attesterFile, encodeSimAttester(issueSimAttester(createSimRoot())), { mode: 0o600 });
        ctx.progress('starting the enclave');
        return await createEnclave({
          chainId: 0n,
          taskId: 0n,
          attempt: 1,
          seed: new Uint8Array(randomBytes(32)),
          backend: { kind: 'sim', attesterFile },
          devPlaintext: true,
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    })();
    const requester = generateX25519Identity();
    try {
      ctx.progress('running the app');
      const r = await enclave.run(
        {
          app: { measurement, source: { kind: 'file', location: appPath, encrypted: false } },
          datasets: dataFiles.map((f, i) => ({
            id: ids[i],
            source: { kind: 'file', location: f, encrypted: false },
          })),
          args,
          recipient: requester.recipient,
          limits,
        },
        ctx.signal,
      );
      const identity = parseIdentity(requester.identity);
      const stdout = await decrypt([identity], r.result);
      const stderr = await decrypt([identity], r.log);
      if (stderr.length > 0) ctx.stderr.write(stderr);
      if (r.stderrTruncated) ctx.stderr.write('ferry: the app stderr was truncated\n');
      if (outPath !== undefined) {
        try {
          await writeFile(resolve(ctx.cwd, outPath), stdout);
        } catch (e) {
          throw new FerryError('IO_WRITE_FAILED', `cannot write --out file ${outPath}`, { cause: e });
        }
      } else if (!ctx.json && stdout.length > 0) {
        await new Promise<void>((res, rej) => ctx.stdout.write(stdout, (e) => (e ? rej(e) : res())));
      }
      const failed = r.outcome !== 'exit' || r.exitCode !== 0 || r.limitHit !== null;
      const summary = {
        exitCode: r.exitCode,
        limitHit: r.limitHit,
        outcome: r.outcome,
        trap: r.trap,
        outputBytes: stdout.length,
        outputSha256: toHex(new Uint8Array(createHash('sha256').update(stdout).digest())),
        durationMs: r.durationMs,
        receipt: receiptToJson(decodeReceipt(r.receipt)),
      };
      if (!ctx.json) {
        const what =
          r.limitHit !== null
            ? `stopped: ${r.limitHit} limit`
            : r.outcome === 'trap'
              ? `trapped (${r.trap})`
              : `exit status ${r.exitCode}`;
        ctx.stderr.write(`ferry: app ${what}; ${stdout.length} output bytes; ${r.durationMs} ms\n`);
      }
      return { json: summary, exitCode: failed ? 1 : 0 };
    } finally {
      await enclave.destroy();
    }
  },
});

export default command;
