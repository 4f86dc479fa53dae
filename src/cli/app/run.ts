/**
 * `ferry app run`: runs a WASI app in the enclave runtime's development entry point
 * (src/enclave/dev.ts: same process loop as a task's enclave, sim backend, plaintext data,
 * a measurement no pinned policy accepts), on this machine, so developers can test before
 * publishing. The run is bound to local commitments like a task (docs/protocol.md §10.9):
 * chain id 0 ("a local run, not a chain"), task 0, attempt 1, an all-zero seed, app id 0, the
 * app's SHA-256, the args' input hash, a throwaway result recipient generated here (the result
 * is decrypted for the user), and datasets 1..n with the SHA-256 of each file.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createSimRoot, encodeSimAttester, issueSimAttester } from '../../attestation/sim/index.ts';
import { decrypt, generateX25519Identity, parseIdentity } from '../../crypto/age/index.ts';
import { X25519Identity } from '../../crypto/index.ts';
import { createDevEnclave } from '../../enclave/index.ts';
import { DEFAULT_LIMITS, decodeReceipt, receiptToJson } from '../../enclave/index.ts';
import { encodeCanonical, FerryError, toHex } from '../../kernel/index.ts';
import { MAX_TASK_DATASETS, type TaskCommitments } from '../../protocol/index.ts';
import { intOption, optionalString, readInputFile, stringList } from '../args.ts';
import { type Command, defineCommand } from '../command.ts';

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

/** SHA-256 of a file, streamed. */
async function fileSha256(path: string): Promise<Uint8Array> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  } catch (e) {
    throw new FerryError('IO_READ_FAILED', `cannot read --data file ${path}`, {
      cause: e,
      hints: [(e as NodeJS.ErrnoException).code ?? (e as Error).message],
    });
  }
  return new Uint8Array(h.digest());
}

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
Runs APP.wasm (a WASI preview 1 command module) in a fresh enclave process as a task would run
it, with the runtime's development entry point (sim backend, plaintext inputs, a measurement
no pinned policy accepts). With one --data FILE the file is the app's stdin; with none, stdin
is empty; with several (at most ${MAX_TASK_DATASETS}, as in a task), stdin is empty and each file is readable
once, sequentially, as /data/<file name>. --arg values are the app's argv[1..] (write --arg=-x for a value that starts
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
    if (dataFiles.length > MAX_TASK_DATASETS) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', `at most ${MAX_TASK_DATASETS} --data files`, {
        hints: [`a task names at most ${MAX_TASK_DATASETS} datasets`, `got: ${dataFiles.length}`],
      });
    }
    const app = await readInputFile(appPath, 'app');
    for (const f of dataFiles) await checkReadable(f, '--data file');
    const ids = datasetIds(dataFiles);

    const dir = await mkdtemp(join(tmpdir(), 'ferry-app-run-'));
    try {
      // A task names at least one dataset: with no --data, an empty one (the app's empty stdin).
      const inputs = dataFiles.length > 0 ? dataFiles.map((f, i) => ({ path: f, name: ids[i] })) : [];
      if (inputs.length === 0) {
        const empty = join(dir, 'empty');
        await writeFile(empty, new Uint8Array(0), { mode: 0o600 });
        inputs.push({ path: empty, name: 'empty' });
      }
      const requester = generateX25519Identity();
      const commitments: TaskCommitments = {
        chainId: 0n,
        taskId: 0n,
        attempt: 1,
        seed: new Uint8Array(32),
        appId: 0n,
        appMeasurement: sha256(app),
        inputHash: sha256(encodeCanonical(args)),
        resultRecipient: new X25519Identity(requester.identity).recipient.publicKey,
        datasets: await Promise.all(
          inputs.map(async (d, i) => ({ id: BigInt(i + 1), ciphertextHash: await fileSha256(d.path) })),
        ),
      };
      const attesterFile = join(dir, 'sim-attester.cbor');
      await writeFile(attesterFile, encodeSimAttester(issueSimAttester(createSimRoot())), { mode: 0o600 });
      ctx.progress('starting the enclave');
      const enclave = await createDevEnclave({ commitments, backend: { kind: 'sim', attesterFile } });
      try {
        ctx.progress('running the app');
        const r = await enclave.run(
          {
            app: { source: { kind: 'file', location: appPath, encrypted: false } },
            datasets: inputs.map((d, i) => ({
              id: BigInt(i + 1),
              name: d.name,
              source: { kind: 'file', location: d.path, encrypted: false },
            })),
            args,
            limits,
          },
          ctx.signal,
        );
        return await report(ctx, r, requester.identity, outPath);
      } finally {
        await enclave.destroy();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});

/** Decrypts the result and the log for the user and prints the summary. */
async function report(
  ctx: Parameters<Command['run']>[0],
  r: Awaited<ReturnType<Awaited<ReturnType<typeof createDevEnclave>>['run']>>,
  identityText: string,
  outPath: string | undefined,
) {
  const identity = parseIdentity(identityText);
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
}

export default command;
