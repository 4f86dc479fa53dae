/**
 * Input and output plumbing shared by `ferry encrypt` and `ferry decrypt` (the parallel
 * pipeline of src/crypto/age/parallel.ts): stdin or a file in, stdout or a file out. A file
 * output is written to a temporary file beside it and renamed into place only when the whole
 * pipeline succeeded; on failure it is removed, so a failed decryption never leaves partial
 * plaintext behind.
 *
 * A regular file (the INPUT argument, or stdin redirected from one) is read, and a file or a
 * device given with -o is written, with synchronous system calls from the main thread, as
 * Node writes stdout to files: each read or write of half a MiB would otherwise cost a hop to
 * libuv's thread pool and back (two context switches and a thread woken on a 2-core machine
 * that the pipeline keeps busy). Pipes, FIFOs and sockets stay asynchronous.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fstatSync, readSync, writevSync } from 'node:fs';
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  type ByteSink,
  type ByteSource,
  fileSource,
  iterableSource,
  type ParallelOptions,
} from '../../crypto/age/index.ts';
import { FerryError, toHex } from '../../kernel/index.ts';
import type { CommandContext } from '../command.ts';

export type RunResult = { output: string | null; bytes: number; sha256: string | null };

/**
 * The pipeline's options from the environment: FERRY_AGE_WORKERS=N (0..8) sets how many
 * worker threads seal or open chunks beside the main thread (see ParallelOptions.workers).
 */
export function pipelineOptions(ctx: CommandContext): ParallelOptions {
  const v = ctx.env.FERRY_AGE_WORKERS;
  if (v === undefined || v === '') return {};
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 8) {
    throw new FerryError('USAGE_INVALID_ARGUMENT', 'FERRY_AGE_WORKERS must be an integer in 0..8', {
      hints: [`got: ${JSON.stringify(v.slice(0, 20))}`],
    });
  }
  return { workers: n };
}

/** --json needs -o: binary data and one JSON object cannot share stdout. */
export function requireOutputWithJson(ctx: CommandContext, outPath: string | undefined): void {
  if (ctx.json && outPath === undefined) {
    throw new FerryError('USAGE_MISSING_ARGUMENT', '--json needs -o/--output', {
      hints: ['stdout carries the JSON summary, so the data must go to a file: add -o FILE'],
    });
  }
}

/** The input as a byte source: the positional file (read in place), or stdin. */
async function openSource(ctx: CommandContext): Promise<{ source: ByteSource; close: () => Promise<void> }> {
  const path = ctx.positionals[0];
  const what = path === undefined || path === '-' ? 'stdin' : `input file ${path}`;
  const readError = (e: unknown) =>
    new FerryError('IO_READ_FAILED', `cannot read ${what}`, {
      cause: e,
      hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
    });
  let close = async () => {};
  if (path === undefined || path === '-') {
    // stdin redirected from a regular file (`< file`) is read from fd 0 directly, when nothing
    // has read from the stream yet.
    if (ctx.stdin === process.stdin && (process.stdin as { bytesRead?: number }).bytesRead === 0) {
      const fd = regularFileFd(0);
      if (fd !== null) return { source: syncSource(fd, readError), close };
    }
    return { source: asyncSource(iterableSource(ctx.stdin as AsyncIterable<unknown>), readError), close };
  }
  try {
    const fh = await open(resolve(ctx.cwd, path), 'r');
    close = () => fh.close();
    const fd = regularFileFd(fh.fd);
    return {
      source: fd !== null ? syncSource(fd, readError) : asyncSource(fileSource(fh), readError),
      close,
    };
  } catch (e) {
    await close();
    throw readError(e);
  }
}

/** `fd` when it is open on a regular file, else null. */
function regularFileFd(fd: number): number | null {
  try {
    return fstatSync(fd).isFile() ? fd : null;
  } catch {
    return null;
  }
}

/** Synchronous reads from the file's current offset; a read error (EIO...) is the input's. */
function syncSource(fd: number, readError: (e: unknown) => FerryError): ByteSource {
  return (buf, off) => {
    try {
      return readSync(fd, buf, off, buf.length - off, null);
    } catch (e) {
      throw readError(e);
    }
  };
}

/** An asynchronous source whose errors (EISDIR, EIO...) are the input's, not the output's. */
function asyncSource(inner: ByteSource, readError: (e: unknown) => FerryError): ByteSource {
  return async (buf, off) => {
    try {
      return await inner(buf, off);
    } catch (e) {
      throw readError(e);
    }
  };
}

/**
 * A sink over a writable stream (stdout). Each batch resolves once the stream has written
 * it (its last write's callback ran), so the caller may free the buffers.
 */
function streamSink(w: NodeJS.WritableStream): ByteSink {
  return (parts) =>
    new Promise<void>((res, rej) => {
      for (let i = 0; i < parts.length; i++) {
        if (i < parts.length - 1) w.write(parts[i]);
        else w.write(parts[i], (e) => (e ? rej(e) : res()));
      }
    });
}

/** What is left of `parts` after the first `written` bytes. */
function after(parts: Uint8Array[], written: number): Uint8Array[] {
  let skip = written;
  const next: Uint8Array[] = [];
  for (const p of parts) {
    if (skip >= p.length) skip -= p.length;
    else {
      next.push(skip > 0 ? p.subarray(skip) : p);
      skip = 0;
    }
  }
  return next;
}

const total = (parts: Uint8Array[]) => parts.reduce((n, p) => n + p.length, 0);

/**
 * A sink over a file handle: one writev per batch, looping over short writes; synchronous
 * (writevSync) on a regular file or a character device, asynchronous otherwise (a FIFO).
 */
function fileSink(fh: FileHandle, sync: boolean): ByteSink {
  if (sync) {
    return (parts) => {
      let rest = parts;
      while (rest.length > 0) {
        const n = writevSync(fh.fd, rest);
        if (n === total(rest)) return;
        rest = after(rest, n);
      }
    };
  }
  return async (parts) => {
    let rest = parts;
    while (rest.length > 0) {
      const { bytesWritten } = await fh.writev(rest);
      if (bytesWritten === total(rest)) return;
      rest = after(rest, bytesWritten);
    }
  };
}

/**
 * Runs `run(source, sink)` from the input to the output: with `outPath`,
 * into a temporary file beside it that is renamed into place on success and removed on
 * failure (a device such as /dev/null is written directly); without, to ctx.stdout (not
 * ended). The SHA-256 of the output is computed only with --json.
 */
export async function runWithSink(
  ctx: CommandContext,
  outPath: string | undefined,
  run: (source: ByteSource, sink: ByteSink) => Promise<unknown>,
): Promise<RunResult> {
  const hash = ctx.json ? createHash('sha256') : null;
  let bytes = 0;
  const metered =
    (sink: ByteSink): ByteSink =>
    (parts) => {
      for (const p of parts) {
        hash?.update(p);
        bytes += p.length;
      }
      return sink(parts);
    };
  const result = (output: string | null): RunResult => ({
    output,
    bytes,
    sha256: hash ? toHex(hash.digest()) : null,
  });
  const writeError = (e: unknown, what: string): FerryError => {
    if (e instanceof FerryError) return e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ABORT_ERR') return new FerryError('ABORTED', 'interrupted', { cause: e });
    return new FerryError('IO_WRITE_FAILED', `cannot write ${what}`, {
      cause: e,
      hints: [code ?? String(e)],
    });
  };
  const aborted = () => {
    if (ctx.signal?.aborted) throw new FerryError('ABORTED', 'interrupted');
  };
  const withAbort =
    (sink: ByteSink): ByteSink =>
    (parts) => {
      aborted();
      return sink(parts);
    };
  if (outPath === undefined) {
    const { source, close } = await openSource(ctx);
    // A write error (EPIPE...) reaches the write callback; the listener keeps it from also
    // being an uncaught 'error' event.
    const ignore = () => {};
    ctx.stdout.on('error', ignore);
    try {
      await run(source, withAbort(metered(streamSink(ctx.stdout))));
    } catch (e) {
      throw writeError(e, 'to stdout');
    } finally {
      ctx.stdout.off('error', ignore);
      await close();
    }
    return result(null);
  }
  const full = resolve(ctx.cwd, outPath);
  const existing = await stat(full).catch(() => null);
  if (existing?.isDirectory()) {
    throw new FerryError('USAGE_INVALID_ARGUMENT', `output ${outPath} is a directory`);
  }
  // A device or FIFO (e.g. /dev/null) is written directly; a file through a temporary file.
  const direct = existing !== null && !existing.isFile();
  const target = direct
    ? full
    : join(dirname(full), `.${basename(full)}.ferry-${randomBytes(6).toString('hex')}.tmp`);
  const { source, close } = await openSource(ctx);
  let fh: FileHandle;
  try {
    fh = await open(target, direct ? 'w' : 'wx', 0o600);
  } catch (e) {
    await close();
    throw new FerryError('IO_WRITE_FAILED', `cannot create output file ${outPath}`, {
      cause: e,
      hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
    });
  }
  try {
    const st = fstatSync(fh.fd);
    await run(source, withAbort(metered(fileSink(fh, st.isFile() || st.isCharacterDevice()))));
    await fh.close();
    if (!direct) await rename(target, full);
  } catch (e) {
    await fh.close().catch(() => {});
    if (!direct) await rm(target, { force: true });
    throw writeError(e, `output file ${outPath}`);
  } finally {
    await close();
  }
  return result(outPath);
}
