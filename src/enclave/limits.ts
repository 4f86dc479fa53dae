/**
 * Resource limits of an enclave run and the WebAssembly rewrite that enforces the memory limit.
 *
 * The memory limit is enforced in the module itself: every memory the module defines or
 * imports gets a declared maximum of `memoryMb` MiB (16 pages per MiB), even when the module
 * declared none, so a `memory.grow` past the limit returns -1 inside the app. A module whose
 * initial memory already exceeds the limit is refused before it runs (limit `memory`).
 *
 * Every memory is also made *shared* (flag 0x02; a single-threaded app cannot tell): V8
 * accounts each growth of an unshared memory as a new external allocation, so an app growing
 * page by page makes every grow a full GC in the worker's small heap, during which
 * `worker.terminate()` is not acted on (measured: minutes past the time limit). A shared
 * memory grows in place and the thread stays terminable.
 *
 * Tables live on the worker's JS heap, where running out is fatal to the whole process, so
 * their sizes are capped here too: at most MAX_TABLES tables, each declaring at most
 * MAX_TABLE_ENTRIES initial entries (else refused, limit `memory`), and each table's maximum
 * is rewritten to at most MAX_TABLE_ENTRIES so a `table.grow` past it returns -1.
 * docs/protocol.md §10 is the normative description.
 */
import { describe, FerryError } from '../kernel/index.ts';

/** Which limit stopped an app, or null when none did. */
export type LimitHit = null | 'time' | 'memory' | 'output';

export type Limits = {
  /** Wall-clock time of the app, from instantiation to exit, in milliseconds. */
  timeoutMs: number;
  /** Linear memory of the app in MiB (each memory of the module). */
  memoryMb: number;
  /** Bytes of stdout kept; the app is stopped when it writes more. */
  maxOutputBytes: number;
};

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  timeoutMs: 60_000,
  memoryMb: 256,
  maxOutputBytes: 16 * 1024 * 1024,
});

/** Upper bounds accepted for each limit. */
export const MAX_LIMITS: Readonly<Limits> = Object.freeze({
  timeoutMs: 24 * 3600 * 1000,
  memoryMb: 4096,
  maxOutputBytes: 64 * 1024 * 1024,
});

const PAGE = 65536;

/**
 * Entries a table may declare or grow to. A table costs about 20 bytes an entry of the worker's
 * 64 MiB heap (measured: three tables of 2^20 entries exhaust it), so all MAX_TABLES tables at
 * their maximum stay near 20 MiB.
 */
export const MAX_TABLE_ENTRIES = 1 << 18;
/** Tables a module may define and import together. */
export const MAX_TABLES = 4;

/** Validates limits (each a positive safe integer within MAX_LIMITS); fills defaults. */
export function checkLimits(input: Partial<Limits> | undefined): Limits {
  const out: Limits = { ...DEFAULT_LIMITS };
  for (const key of ['timeoutMs', 'memoryMb', 'maxOutputBytes'] as const) {
    const v = input?.[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > MAX_LIMITS[key]) {
      throw new FerryError('INVALID_ARGUMENT', `limits.${key} is out of range`, {
        hints: [
          `expected: an integer from 1 to ${MAX_LIMITS[key]}`,
          `got: ${typeof v === 'number' ? v : describe(v)}`,
        ],
      });
    }
    out[key] = v;
  }
  return out;
}

/** A memory the module imports: the host must provide it with these limits. */
export type ImportedMemory = { module: string; name: string; initial: number; maximum: number };

export type LimitedModule = {
  /** The rewritten module bytes. */
  bytes: Uint8Array;
  /** Memories the module imports, with the limits the host must give them (in pages). */
  importedMemories: ImportedMemory[];
  /** Maximum pages enforced on every memory. */
  maxPages: number;
};

class Reader {
  pos = 0;
  readonly b: Uint8Array;
  constructor(b: Uint8Array) {
    this.b = b;
  }
  byte(): number {
    if (this.pos >= this.b.length) throw invalid('unexpected end of module');
    return this.b[this.pos++];
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.byte();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) break;
      shift += 7;
      if (shift > 35) throw invalid('LEB128 integer too long');
    }
    if (result > 0xffffffff) throw invalid('LEB128 integer out of range');
    return result;
  }
  /** Skips a signed LEB128 of up to 64 bits (s33 heap types, etc.). */
  skipSigned(): void {
    for (let i = 0; i < 10; i++) if ((this.byte() & 0x80) === 0) return;
    throw invalid('LEB128 integer too long');
  }
  name(): string {
    const n = this.u32();
    if (this.pos + n > this.b.length) throw invalid('name past end of module');
    let s: string;
    try {
      s = new TextDecoder('utf-8', { fatal: true }).decode(this.b.subarray(this.pos, this.pos + n));
    } catch {
      throw invalid('a name is not UTF-8');
    }
    this.pos += n;
    return s;
  }
}

function invalid(message: string): FerryError {
  return new FerryError('ENCLAVE_APP_INVALID', `app module is not valid WebAssembly: ${message}`);
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Reads memory limits; returns the initial pages and the declared maximum (or null). */
function readLimits(r: Reader, what: 'memory' | 'table'): { min: number; max: number | null } {
  const flags = r.byte();
  if (what === 'memory' && (flags & 0x02) !== 0) throw invalid('shared memories are not supported');
  if (what === 'memory' && (flags & 0x04) !== 0) throw invalid('64-bit memories are not supported');
  if (what === 'table' && (flags & 0x06) !== 0) throw invalid('shared or 64-bit tables are not supported');
  if ((flags & ~0x07) !== 0) throw invalid(`unknown limits flags 0x${flags.toString(16)}`);
  const min = r.u32();
  const max = (flags & 0x01) !== 0 ? r.u32() : null;
  return { min, max };
}

function skipRefType(r: Reader): void {
  const t = r.byte();
  if (t === 0x63 || t === 0x64) r.skipSigned();
}

function tooLarge(message: string, hints: string[]): FerryError {
  return new FerryError('ENCLAVE_LIMIT_MEMORY', message, { hints });
}

/** Reads a table type (reference type + limits) and returns its bytes with the maximum capped. */
function limitTable(r: Reader, count: { tables: number }): number[] {
  const start = r.pos;
  if (r.b[r.pos] === 0x40) throw invalid('tables with initializer expressions are not supported');
  skipRefType(r);
  const type = [...r.b.subarray(start, r.pos)];
  const { min, max } = readLimits(r, 'table');
  count.tables++;
  if (count.tables > MAX_TABLES) {
    throw tooLarge('the app declares more tables than the enclave allows', [`limit: ${MAX_TABLES} tables`]);
  }
  if (min > MAX_TABLE_ENTRIES) {
    throw tooLarge('the app declares a table larger than the enclave allows', [
      `limit: ${MAX_TABLE_ENTRIES} entries`,
      `app's table: ${min} entries`,
    ]);
  }
  return [...type, 0x01, ...leb(min), ...leb(Math.min(max ?? MAX_TABLE_ENTRIES, MAX_TABLE_ENTRIES))];
}

function checkMemory(min: number, maxPages: number): void {
  if (min > maxPages) {
    throw new FerryError('ENCLAVE_LIMIT_MEMORY', 'app needs more initial memory than the memory limit', {
      hints: [`limit: ${maxPages / 16} MiB`, `app's initial memory: ${(min * PAGE) / 2 ** 20} MiB`],
    });
  }
}

/**
 * Rewrites every memory of `module` (imported or defined) to declare a maximum of at most
 * `memoryMb` MiB. Throws ENCLAVE_APP_INVALID for bytes that are not a WebAssembly module
 * (or use shared / 64-bit memories) and ENCLAVE_LIMIT_MEMORY when a memory's initial size
 * is already above the limit.
 */
export function limitMemory(module: Uint8Array, memoryMb: number): LimitedModule {
  if (!(module instanceof Uint8Array)) {
    throw new FerryError('INVALID_ARGUMENT', 'module must be a Uint8Array', {
      hints: [`got: ${describe(module)}`],
    });
  }
  const maxPages = memoryMb * 16;
  if (
    module.length < 8 ||
    module[0] !== 0 ||
    module[1] !== 0x61 ||
    module[2] !== 0x73 ||
    module[3] !== 0x6d ||
    module[4] !== 1 ||
    module[5] !== 0 ||
    module[6] !== 0 ||
    module[7] !== 0
  ) {
    throw invalid('missing the \\0asm version 1 header');
  }
  const r = new Reader(module);
  r.pos = 8;
  const parts: Uint8Array[] = [module.subarray(0, 8)];
  const importedMemories: ImportedMemory[] = [];
  const tables = { tables: 0 };
  while (r.pos < module.length) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const bodyStart = r.pos;
    const end = bodyStart + size;
    if (end > module.length) throw invalid('section past end of module');
    if (id === 2 || id === 4 || id === 5) {
      const out: number[] = [];
      const count = r.u32();
      out.push(...leb(count));
      for (let i = 0; i < count; i++) {
        if (id === 2) {
          const entryStart = r.pos;
          const mod = r.name();
          const name = r.name();
          const kind = r.byte();
          if (kind === 0x02) {
            out.push(...module.subarray(entryStart, r.pos));
            const { min, max } = readLimits(r, 'memory');
            checkMemory(min, maxPages);
            const newMax = Math.min(max ?? maxPages, maxPages);
            out.push(0x03, ...leb(min), ...leb(newMax));
            importedMemories.push({ module: mod, name, initial: min, maximum: newMax });
            continue;
          }
          if (kind === 0x00) r.u32();
          else if (kind === 0x01) {
            out.push(...module.subarray(entryStart, r.pos), ...limitTable(r, tables));
            continue;
          } else if (kind === 0x03) {
            skipRefType(r);
            r.byte();
          } else if (kind === 0x04) {
            r.byte();
            r.u32();
          } else throw invalid(`unknown import kind ${kind}`);
          out.push(...module.subarray(entryStart, r.pos));
        } else if (id === 4) {
          out.push(...limitTable(r, tables));
        } else {
          const { min, max } = readLimits(r, 'memory');
          checkMemory(min, maxPages);
          out.push(0x03, ...leb(min), ...leb(Math.min(max ?? maxPages, maxPages)));
        }
      }
      if (r.pos !== end) throw invalid(`section ${id} has trailing bytes`);
      parts.push(Uint8Array.from([id, ...leb(out.length)]), Uint8Array.from(out));
    } else {
      parts.push(module.subarray(start, end));
    }
    r.pos = end;
  }
  let len = 0;
  for (const p of parts) len += p.length;
  const bytes = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
  }
  return { bytes, importedMemories, maxPages };
}
