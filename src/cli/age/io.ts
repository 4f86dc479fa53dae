/**
 * Input and output plumbing shared by `ferry encrypt` and `ferry decrypt`: stdin or a file
 * in, stdout or a file out. A file output is written to a temporary file beside it and
 * renamed into place only when the whole pipeline succeeded; on failure it is removed, so a
 * failed decryption never leaves partial plaintext behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { Transform as NodeTransform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FerryError, toHex } from '../../kernel/index.ts';
import type { CommandContext } from '../command.ts';

const READ_CHUNK = 1 << 20;

/** Opens the input: the positional file, or stdin. Throws IO_READ_FAILED. */
export async function openInput(ctx: CommandContext): Promise<Readable | NodeJS.ReadableStream> {
  const path = ctx.positionals[0];
  if (path === undefined || path === '-') return ctx.stdin;
  const full = resolve(ctx.cwd, path);
  try {
    const fh = await open(full, 'r');
    return fh.createReadStream({ highWaterMark: READ_CHUNK, autoClose: true });
  } catch (e) {
    throw new FerryError('IO_READ_FAILED', `cannot read input file ${path}`, {
      cause: e,
      hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
    });
  }
}

export type RunResult = { output: string | null; bytes: number; sha256: string | null };

/**
 * Runs input -> transform -> output. With `outPath`, writes a temp file beside it and
 * renames it on success (removes it on failure). Without, writes to ctx.stdout (not ended).
 */
export async function runPipeline(
  ctx: CommandContext,
  input: Readable | NodeJS.ReadableStream,
  transform: Transform,
  outPath: string | undefined,
): Promise<RunResult> {
  // The SHA-256 is only reported with --json; hashing costs about as much as the AEAD.
  const hash = ctx.json ? createHash('sha256') : null;
  let bytes = 0;
  // Coalesces the 64 KiB chunks into ~1 MiB writes: one syscall per MiB instead of 16.
  let parts: Buffer[] = [];
  let partsLen = 0;
  const meter = new NodeTransform({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, cb) {
      hash?.update(chunk);
      bytes += chunk.length;
      parts.push(chunk);
      partsLen += chunk.length;
      if (partsLen >= 1 << 20) {
        const out = Buffer.concat(parts, partsLen);
        parts = [];
        partsLen = 0;
        cb(null, out);
      } else {
        cb();
      }
    },
    flush(cb) {
      cb(null, partsLen > 0 ? Buffer.concat(parts, partsLen) : undefined);
    },
  });
  if (outPath === undefined) {
    try {
      await pipeline(input, transform, meter, ctx.stdout, { end: false, signal: ctx.signal });
    } catch (e) {
      if (e instanceof FerryError) throw e;
      throw new FerryError('IO_WRITE_FAILED', 'cannot write to stdout', {
        cause: e,
        hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
      });
    }
    return { output: null, bytes, sha256: hash ? toHex(hash.digest()) : null };
  }
  const full = resolve(ctx.cwd, outPath);
  const existing = await stat(full).catch(() => null);
  if (existing !== null && !existing.isFile()) {
    // A device or FIFO (e.g. /dev/null): no temp file and rename, write to it directly.
    if (existing.isDirectory()) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', `output ${outPath} is a directory`);
    }
    try {
      await pipeline(input, transform, meter, createWriteStream(full), { signal: ctx.signal });
    } catch (e) {
      if (e instanceof FerryError) throw e;
      throw new FerryError('IO_WRITE_FAILED', `cannot write output ${outPath}`, {
        cause: e,
        hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
      });
    }
    return { output: outPath, bytes, sha256: hash ? toHex(hash.digest()) : null };
  }
  const tmp = join(dirname(full), `.${basename(full)}.ferry-${randomBytes(6).toString('hex')}.tmp`);
  let out: NodeJS.WritableStream;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    out = fh.createWriteStream({ autoClose: true });
  } catch (e) {
    throw new FerryError('IO_WRITE_FAILED', `cannot create output file ${outPath}`, {
      cause: e,
      hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
    });
  }
  try {
    await pipeline(input, transform, meter, out, { signal: ctx.signal });
    await rename(tmp, full);
  } catch (e) {
    await rm(tmp, { force: true });
    if (e instanceof FerryError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ABORT_ERR') throw new FerryError('ABORTED', 'interrupted', { cause: e });
    throw new FerryError('IO_WRITE_FAILED', `cannot write output file ${outPath}`, {
      cause: e,
      hints: [code ?? String(e)],
    });
  }
  return { output: outPath, bytes, sha256: hash ? toHex(hash.digest()) : null };
}

/** --json needs -o: binary data and one JSON object cannot share stdout. */
export function requireOutputWithJson(ctx: CommandContext, outPath: string | undefined): void {
  if (ctx.json && outPath === undefined) {
    throw new FerryError('USAGE_MISSING_ARGUMENT', '--json needs -o/--output', {
      hints: ['stdout carries the JSON summary, so the data must go to a file: add -o FILE'],
    });
  }
}
