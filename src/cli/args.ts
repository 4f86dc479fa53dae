import { readFile } from 'node:fs/promises';
import { FerryError, fromHex } from '../kernel/index.ts';
import type { CommandContext } from './command.ts';

/** A required string option, or USAGE_MISSING_ARGUMENT. */
export function requireString(ctx: CommandContext, name: string): string {
  const v = ctx.values[name];
  if (typeof v !== 'string' || v.length === 0) {
    throw new FerryError('USAGE_MISSING_ARGUMENT', `missing --${name}`, {
      hints: [`run with --help for usage`],
    });
  }
  return v;
}

export function optionalString(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function stringList(ctx: CommandContext, name: string): string[] {
  const v = ctx.values[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [String(v)];
}

/** A hex option, with its name in the error. */
export function requireHex(ctx: CommandContext, name: string, length?: number): Uint8Array {
  const s = requireString(ctx, name);
  try {
    return fromHex(s, `--${name}`, length);
  } catch (e) {
    const fe = e as FerryError;
    throw new FerryError('USAGE_INVALID_ARGUMENT', fe.message, { hints: fe.hints, cause: e });
  }
}

/** A non-negative integer option (or its default). */
export function intOption(ctx: CommandContext, name: string, dflt?: number, min = 0): number {
  const v = ctx.values[name];
  if (v === undefined) {
    if (dflt === undefined) throw new FerryError('USAGE_MISSING_ARGUMENT', `missing --${name}`);
    return dflt;
  }
  const n = Number(v);
  if (typeof v !== 'string' || !/^-?[0-9]+$/.test(v) || !Number.isSafeInteger(n) || n < min) {
    throw new FerryError('USAGE_INVALID_ARGUMENT', `--${name} must be an integer >= ${min}`, {
      hints: [`got: ${String(v)}`],
    });
  }
  return n;
}

/** A finite number option (or its default). */
export function numberOption(ctx: CommandContext, name: string, dflt?: number): number {
  const v = ctx.values[name];
  if (v === undefined) {
    if (dflt === undefined) throw new FerryError('USAGE_MISSING_ARGUMENT', `missing --${name}`);
    return dflt;
  }
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) {
    throw new FerryError('USAGE_INVALID_ARGUMENT', `--${name} must be a number`, {
      hints: [`got: ${String(v)}`],
    });
  }
  return n;
}

/** Reads a file named by an option, with a clear error. */
export async function readFileOption(ctx: CommandContext, name: string): Promise<Uint8Array> {
  const path = requireString(ctx, name);
  return readInputFile(path, `--${name}`);
}

export async function readInputFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new FerryError('IO_READ_FAILED', `cannot read ${what} file ${path}`, {
      cause: e,
      hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
    });
  }
}
