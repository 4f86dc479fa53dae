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
 *
 * The host cannot see a `memory.grow` refused inside the app, so the rewrite makes it visible:
 * each `memory.grow` becomes a call to an added function that records a refusal in a global
 * exported as REFUSED_GROW_EXPORT (instrumentGrows), and the runner reports `limitHit: "memory"`
 * when the app then ends abnormally, however far below the limit its memory was.
 * docs/protocol.md §10 is the normative description.
 */
// errors.ts, not the kernel's index: the app's thread (worker.ts) loads this file, and the index
// would bring the canonical encoding, configuration and logging into it.
import { describe, FerryError } from '../kernel/errors.ts';

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
  skip(n: number): void {
    if (this.pos + n > this.b.length) throw invalid('unexpected end of module');
    this.pos += n;
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
  const sections: Section[] = [];
  const importedMemories: ImportedMemory[] = [];
  const tables = { tables: 0 };
  const m: ModuleFacts = {
    types: 0,
    importedFuncs: 0,
    importedGlobals: 0,
    definedFuncs: 0,
    definedGlobals: 0,
    memoryMax: [],
  };
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
            m.memoryMax.push(max);
            continue;
          }
          if (kind === 0x00) {
            r.u32();
            m.importedFuncs++;
          } else if (kind === 0x01) {
            out.push(...module.subarray(entryStart, r.pos), ...limitTable(r, tables));
            continue;
          } else if (kind === 0x03) {
            skipValType(r);
            r.byte();
            m.importedGlobals++;
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
          m.memoryMax.push(max);
        }
      }
      if (r.pos !== end) throw invalid(`section ${id} has trailing bytes`);
      sections.push({ id, body: Uint8Array.from(out) });
    } else {
      if (id === 1) m.types = countFuncTypes(module.subarray(bodyStart, end));
      else if (id === 3) m.definedFuncs = new Reader(module.subarray(bodyStart, end)).u32();
      else if (id === 6) m.definedGlobals = new Reader(module.subarray(bodyStart, end)).u32();
      sections.push({ id, body: module.subarray(bodyStart, end), raw: module.subarray(start, end) });
    }
    r.pos = end;
  }
  instrumentGrows(sections, m, maxPages);
  const parts: Uint8Array[] = [module.subarray(0, 8)];
  for (const sec of sections) {
    parts.push(sec.raw ?? Uint8Array.from([sec.id, ...leb(sec.body.length), ...sec.body]));
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

/** A section of the module: its id and body; `raw` (header included) when unchanged. */
type Section = { id: number; body: Uint8Array; raw?: Uint8Array };

type ModuleFacts = {
  types: number;
  importedFuncs: number;
  importedGlobals: number;
  definedFuncs: number;
  definedGlobals: number;
  /** The declared maximum of each memory (index order: imported, then defined), or null. */
  memoryMax: (number | null)[];
};

/**
 * The export through which the app thread reads the pages asked by the last `memory.grow`
 * that Ferry's limit (or the engine) refused: 0 when none was (an i32 global, read unsigned).
 */
export const REFUSED_GROW_EXPORT = 'ferry:refused-grow';

/** Section order of the binary format (custom sections aside), as ranks. */
const SECTION_ORDER = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n = Math.floor(n / 128);
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/**
 * Makes every refused `memory.grow` visible to the host. Each `memory.grow` of the code becomes
 * a call to an added function (one per memory) that grows the memory and, when the grow returns
 * -1 for a reason other than the module's own declared maximum (below Ferry's limit), stores the
 * pages asked in an added global exported as REFUSED_GROW_EXPORT. The app sees the same -1 and
 * may continue. A module without `memory.grow` is left as it is.
 */
function instrumentGrows(sections: Section[], m: ModuleFacts, maxPages: number): void {
  const code = sections.find((s) => s.id === 10);
  if (!code || m.memoryMax.length === 0) return;
  const firstWrapper = m.importedFuncs + m.definedFuncs;
  const rewritten = rewriteCode(code.body, firstWrapper);
  if (!rewritten) return;
  const global = m.importedGlobals + m.definedGlobals;
  const wrappers = m.memoryMax.map((own, k) => wrapperBody(k, own, maxPages, global));
  const append = (id: number, entries: number[][]) => {
    const at = sections.findIndex((s) => s.id === id);
    if (at >= 0) {
      const r = new Reader(sections[at].body);
      const count = r.u32();
      sections[at] = {
        id,
        body: Uint8Array.from([
          ...leb(count + entries.length),
          ...sections[at].body.subarray(r.pos),
          ...entries.flat(),
        ]),
      };
      return;
    }
    const rank = SECTION_ORDER.indexOf(id);
    let i = 0;
    for (; i < sections.length; i++) {
      const r2 = SECTION_ORDER.indexOf(sections[i].id);
      if (r2 > rank) break;
    }
    sections.splice(i, 0, { id, body: Uint8Array.from([...leb(entries.length), ...entries.flat()]) });
  };
  code.body = rewritten;
  code.raw = undefined;
  append(1, [[0x60, 0x01, 0x7f, 0x01, 0x7f]]);
  append(
    3,
    wrappers.map(() => leb(m.types)),
  );
  append(6, [[0x7f, 0x01, 0x41, 0x00, 0x0b]]);
  const name = [...new TextEncoder().encode(REFUSED_GROW_EXPORT)];
  append(7, [[...leb(name.length), ...name, 0x03, ...leb(global)]]);
  append(
    10,
    wrappers.map((b) => [...leb(b.length), ...b]),
  );
}

/** (func (param $delta i32) (result i32)) growing memory k; see instrumentGrows. */
function wrapperBody(k: number, own: number | null, maxPages: number, global: number): number[] {
  const record = [0x20, 0x00, 0x24, ...leb(global)]; // local.get 0; global.set G
  let onRefusal = record;
  if (own !== null && own < maxPages) {
    // Record unless size + delta is past the module's own maximum and within Ferry's.
    onRefusal = [
      ...[0x3f, ...leb(k), 0xad, 0x20, 0x00, 0xad, 0x7c, 0x22, 0x02], // $want = size + delta (i64)
      ...[0x42, ...sleb(own), 0x56], // $want > own
      ...[0x20, 0x02, 0x42, ...sleb(maxPages), 0x58], // $want <= maxPages
      ...[0x71, 0x45, 0x04, 0x40, ...record, 0x0b], // if !(both) record
    ];
  }
  return [
    ...[0x02, 0x01, 0x7f, 0x01, 0x7e], // locals: $result i32, $want i64
    ...[0x20, 0x00, 0x40, ...leb(k), 0x22, 0x01], // $result = memory.grow k ($delta)
    ...[0x41, 0x7f, 0x46, 0x04, 0x40, ...onRefusal, 0x0b], // if $result == -1
    ...[0x20, 0x01, 0x0b],
  ];
}

/** Counts the types of a type section; only function types are supported. */
function countFuncTypes(body: Uint8Array): number {
  const r = new Reader(body);
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    if (r.byte() !== 0x60) throw invalid('only function types are supported (no GC types)');
    for (let side = 0; side < 2; side++) {
      const n = r.u32();
      for (let j = 0; j < n; j++) skipValType(r);
    }
  }
  if (r.pos !== body.length) throw invalid('section 1 has trailing bytes');
  return count;
}

function skipValType(r: Reader): void {
  const t = r.byte();
  if (t === 0x63 || t === 0x64) r.skipSigned();
}

function skipBlockType(r: Reader): void {
  const b = r.byte();
  if (b === 0x63 || b === 0x64) r.skipSigned();
  else if (b & 0x80) {
    for (let i = 0; i < 4 && r.byte() & 0x80; i++) if (i === 3) throw invalid('LEB128 integer too long');
  }
}

function skipMemarg(r: Reader): void {
  const align = r.u32();
  if (align & 0x40) r.u32();
  r.skipSigned(); // offset: up to 64 bits
}

/**
 * Rewrites a code section, replacing each `memory.grow k` by `call (firstWrapper + k)`; null when
 * it has none. ENCLAVE_APP_INVALID for an instruction it does not know (GC and other proposals
 * the enclave does not support).
 */
function rewriteCode(body: Uint8Array, firstWrapper: number): Uint8Array | null {
  const r = new Reader(body);
  const count = r.u32();
  const out: Uint8Array[] = [Uint8Array.from(leb(count))];
  let found = false;
  for (let f = 0; f < count; f++) {
    const size = r.u32();
    const start = r.pos;
    const end = start + size;
    if (end > body.length) throw invalid('function body past end of section');
    const fn = new Reader(body.subarray(0, end));
    fn.pos = start;
    const locals = fn.u32();
    for (let i = 0; i < locals; i++) {
      fn.u32();
      skipValType(fn);
    }
    // Unchanged stretches are kept as views; only the grows are replaced.
    const parts: Uint8Array[] = [];
    let from = start;
    while (fn.pos < end) {
      const at = fn.pos;
      const op = fn.byte();
      if (op === 0x40) {
        const k = fn.u32();
        parts.push(body.subarray(from, at), Uint8Array.from([0x10, ...leb(firstWrapper + k)]));
        from = fn.pos;
        found = true;
        continue;
      }
      skipImmediates(fn, op);
    }
    parts.push(body.subarray(from, end));
    let len = 0;
    for (const p of parts) len += p.length;
    out.push(Uint8Array.from(leb(len)), ...parts);
    r.pos = end;
  }
  if (r.pos !== body.length) throw invalid('section 10 has trailing bytes');
  return found ? concat(out) : null;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const bytes = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
  }
  return bytes;
}

/** Immediates of the one-byte opcodes: 0 none, 1 one u32, 2 two u32, 3 block type, 4 memarg,
 * 5 a signed LEB, 6 handled one by one below, 7 unknown. */
const IMMEDIATES = (() => {
  const t = new Uint8Array(256).fill(7);
  const set = (kind: number, ...ops: number[]) => {
    for (const op of ops) t[op] = kind;
  };
  set(0, 0x00, 0x01, 0x05, 0x0a, 0x0b, 0x0f, 0x19, 0x1a, 0x1b, 0xd1, 0xd3, 0xd4);
  for (let op = 0x45; op <= 0xc4; op++) t[op] = 0;
  set(1, 0x07, 0x08, 0x09, 0x0c, 0x0d, 0x10, 0x12, 0x14, 0x15, 0x18, 0x3f, 0xd2, 0xd5, 0xd6);
  for (let op = 0x20; op <= 0x26; op++) t[op] = 1;
  set(2, 0x11, 0x13);
  set(3, 0x02, 0x03, 0x04, 0x06);
  for (let op = 0x28; op <= 0x3e; op++) t[op] = 4;
  set(5, 0x41, 0x42, 0xd0);
  set(6, 0x0e, 0x1c, 0x1f, 0x43, 0x44, 0xfc, 0xfd, 0xfe);
  return t;
})();

function skipImmediates(r: Reader, op: number): void {
  switch (IMMEDIATES[op]) {
    case 0:
      return;
    case 1:
      r.u32();
      return;
    case 2:
      r.u32();
      r.u32();
      return;
    case 3:
      skipBlockType(r);
      return;
    case 4:
      skipMemarg(r);
      return;
    case 5:
      r.skipSigned();
      return;
    case 7:
      throw invalid(`unsupported instruction 0x${op.toString(16)}`);
  }
  if (op === 0x0e) {
    const n = r.u32();
    for (let i = 0; i <= n; i++) r.u32();
    return;
  }
  if (op === 0x1c) {
    const n = r.u32();
    for (let i = 0; i < n; i++) skipValType(r);
    return;
  }
  if (op === 0x1f) {
    skipBlockType(r);
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      const kind = r.byte();
      if (kind > 3) throw invalid(`unknown catch kind ${kind}`);
      if (kind < 2) r.u32();
      r.u32();
    }
    return;
  }
  if (op === 0x43 || op === 0x44) {
    r.skip(op === 0x43 ? 4 : 8);
    return;
  }
  if (op === 0xfc) {
    const sub = r.u32();
    if (sub <= 7) return;
    if (sub === 8 || sub === 10 || sub === 12 || sub === 14) {
      r.u32();
      r.u32();
      return;
    }
    if (sub <= 17) {
      r.u32();
      return;
    }
    throw invalid(`unsupported instruction 0xfc ${sub}`);
  }
  if (op === 0xfd) {
    const sub = r.u32();
    if (sub <= 11 || sub === 92 || sub === 93) {
      skipMemarg(r);
      return;
    }
    if (sub === 12 || sub === 13) {
      r.skip(16);
      return;
    }
    if (sub >= 21 && sub <= 34) {
      r.skip(1);
      return;
    }
    if (sub >= 84 && sub <= 91) {
      skipMemarg(r);
      r.skip(1);
      return;
    }
    if (sub <= 0x113) return;
    throw invalid(`unsupported instruction 0xfd ${sub}`);
  }
  if (op === 0xfe) {
    const sub = r.u32();
    if (sub === 3) {
      r.skip(1);
      return;
    }
    if (sub <= 2 || (sub >= 0x10 && sub <= 0x4e)) {
      skipMemarg(r);
      return;
    }
    throw invalid(`unsupported instruction 0xfe ${sub}`);
  }
  throw invalid(`unsupported instruction 0x${op.toString(16)}`);
}
