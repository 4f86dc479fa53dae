/**
 * Ferry's WASI preview 1 host (`wasi_snapshot_preview1`), run inside the app's worker thread.
 *
 * What an app gets: argv (argv[0] is `app`), an empty environment, stdin (fd 0) fed from a
 * ring of authenticated plaintext (or empty), stdout (fd 1) counted against the output limit,
 * stderr (fd 2) kept up to STDERR_CAP bytes, and with several datasets a read-only preopened
 * directory `/data` (fd 3) whose files are the datasets by id, each readable once,
 * sequentially. Clocks and random numbers come from the host. Everything else (network,
 * host files, sockets, writes to files, poll_oneoff) is refused: ENOSYS for WASI preview 1
 * functions we do not provide, EBADF for unknown descriptors, ENOTCAPABLE for disallowed
 * operations. A module that imports anything else (a name that is not a WASI preview 1
 * function, or from another module) is refused before it is instantiated (refusedImport).
 * docs/protocol.md §10 lists the exact behaviour of each call.
 */
import { getRandomValues } from 'node:crypto';
import type { ImportedMemory } from './limits.ts';
import { type RingEnd, RingReader } from './ring.ts';
import type { WasmImportDescriptor, WasmMemory } from './wasm.ts';

export const WASI_MODULE = 'wasi_snapshot_preview1';

/**
 * The functions of WASI preview 1 (the `wasi_snapshot_preview1` witx, including
 * `sock_accept`): the only names an app may import. Those the host does not implement answer
 * ENOSYS.
 */
export const WASI_PREVIEW1_FUNCTIONS: ReadonlySet<string> = new Set([
  'args_get',
  'args_sizes_get',
  'environ_get',
  'environ_sizes_get',
  'clock_res_get',
  'clock_time_get',
  'fd_advise',
  'fd_allocate',
  'fd_close',
  'fd_datasync',
  'fd_fdstat_get',
  'fd_fdstat_set_flags',
  'fd_fdstat_set_rights',
  'fd_filestat_get',
  'fd_filestat_set_size',
  'fd_filestat_set_times',
  'fd_pread',
  'fd_prestat_get',
  'fd_prestat_dir_name',
  'fd_pwrite',
  'fd_read',
  'fd_readdir',
  'fd_renumber',
  'fd_seek',
  'fd_sync',
  'fd_tell',
  'fd_write',
  'path_create_directory',
  'path_filestat_get',
  'path_filestat_set_times',
  'path_link',
  'path_open',
  'path_readlink',
  'path_remove_directory',
  'path_rename',
  'path_symlink',
  'path_unlink_file',
  'poll_oneoff',
  'proc_exit',
  'proc_raise',
  'sched_yield',
  'random_get',
  'sock_accept',
  'sock_recv',
  'sock_send',
  'sock_shutdown',
]);

/**
 * The first import the host refuses, as a message naming it, or null when every import is a
 * WASI preview 1 function or a memory the limiter rewrote (`importedMemories`). Names are
 * compared as data, never looked up on an object, so `constructor` or `__proto__` are just
 * unknown names.
 */
/** An import name for a message: as is when short and printable ASCII, else JSON-quoted and cut. */
const shown = (n: string) => (/^[\x21-\x7e]{1,64}$/.test(n) ? n : JSON.stringify(n.slice(0, 64)));

export function refusedImport(
  imports: readonly WasmImportDescriptor[],
  importedMemories: readonly ImportedMemory[],
): string | null {
  for (const imp of imports) {
    if (imp.module === WASI_MODULE && imp.kind === 'function') {
      if (WASI_PREVIEW1_FUNCTIONS.has(imp.name)) continue;
      return `the app imports ${imp.module}.${shown(imp.name)}, which is not a WASI preview 1 function`;
    }
    if (
      imp.kind === 'memory' &&
      importedMemories.some((m) => m.module === imp.module && m.name === imp.name)
    ) {
      continue;
    }
    return `the app imports ${shown(imp.module)}.${shown(imp.name)} (${imp.kind}); only WASI preview 1 functions are provided`;
  }
  return null;
}

export const E = {
  SUCCESS: 0,
  ACCES: 2,
  BADF: 8,
  BUSY: 10,
  FAULT: 21,
  INVAL: 28,
  IO: 29,
  ISDIR: 31,
  NOENT: 44,
  NOSYS: 52,
  NOTDIR: 54,
  SPIPE: 70,
  NOTCAPABLE: 76,
} as const;

/** Bytes of stderr kept; the rest is dropped and `stderrTruncated` set. */
export const STDERR_CAP = 1 << 20;

const FILETYPE_CHAR = 2;
const FILETYPE_DIR = 3;
const FILETYPE_FILE = 4;
const ALL_RIGHTS = 0x1fffffffn;
const DATA_DIR_FD = 3;

/** Thrown by proc_exit to unwind the app. */
export class ProcExit {
  readonly code: number;
  constructor(code: number) {
    this.code = code;
  }
}

/** Thrown when stdout passes the limit: the app is stopped. */
export class OutputLimit {}

/** Thrown when an input stream failed (authentication, truncation, I/O): the app is stopped. */
export class InputFailed {}

export type OutputSink = {
  sab: SharedArrayBuffer;
  /** Int32 counter slot (in `counters`) holding the bytes kept so far. */
  slot: number;
  cap: number;
};

export type WasiHostOptions = {
  args: string[];
  stdin: RingEnd | null;
  files: { name: string; ring: RingEnd }[];
  counters: Int32Array;
  stdout: OutputSink;
  stderr: OutputSink;
};

type OpenFile = { reader: RingReader; pos: bigint; isStdin: boolean };

export class WasiHost {
  memory: WasmMemory | undefined;
  stderrTruncated = false;
  readonly #args: Uint8Array[];
  readonly #fds = new Map<number, OpenFile>();
  readonly #files: Map<string, RingEnd>;
  readonly #readers: RingReader[] = [];
  readonly #opened = new Set<string>();
  readonly #counters: Int32Array;
  readonly #stdout: OutputSink;
  readonly #stderr: OutputSink;
  readonly #hasDataDir: boolean;
  #nextFd = 4;

  constructor(o: WasiHostOptions) {
    const enc = new TextEncoder();
    this.#args = ['app', ...o.args].map((a) => enc.encode(`${a}\0`));
    if (o.stdin) this.#fds.set(0, { reader: this.#reader(o.stdin), pos: 0n, isStdin: true });
    this.#files = new Map(o.files.map((f) => [f.name, f.ring]));
    this.#hasDataDir = o.files.length > 0;
    this.#counters = o.counters;
    this.#stdout = o.stdout;
    this.#stderr = o.stderr;
  }

  #reader(end: RingEnd): RingReader {
    const r = new RingReader(end);
    this.#readers.push(r);
    return r;
  }

  /**
   * Zeroes the plaintext the app's inputs still hold (received, or queued and never read) and
   * closes them: called when the app has ended. Inputs never opened are wiped too.
   */
  wipeInputs(): void {
    for (const [name, end] of this.#files) if (!this.#opened.has(name)) this.#reader(end);
    for (const r of this.#readers) r.wipe();
  }

  #view(): DataView {
    return new DataView(this.memory!.buffer);
  }

  #bytes(): Uint8Array {
    return new Uint8Array(this.memory!.buffer);
  }

  /**
   * Whether guest bytes [ptr, ptr + len) lie inside the memory. Both are read as unsigned
   * 32-bit (wasm i32 parameters reach JS signed); the host answers EFAULT otherwise.
   */
  #ok(ptr: number, len: number): boolean {
    if (!this.memory) return false;
    return (ptr >>> 0) + (len >>> 0) <= this.memory.buffer.byteLength;
  }

  #write(sink: OutputSink, data: Uint8Array, isStdout: boolean): void {
    const kept = Atomics.load(this.#counters, sink.slot);
    const room = sink.cap - kept;
    const n = Math.min(room, data.length);
    if (n > 0) {
      if (sink.sab.byteLength < kept + n) {
        sink.sab.grow(Math.min(sink.cap, Math.max(kept + n, sink.sab.byteLength * 2, 65536)));
      }
      new Uint8Array(sink.sab).set(data.subarray(0, n), kept);
      Atomics.store(this.#counters, sink.slot, kept + n);
    }
    if (n < data.length) {
      if (isStdout) throw new OutputLimit();
      this.stderrTruncated = true;
    }
  }

  /** The import object `{wasi_snapshot_preview1: {...}}` for `WebAssembly.instantiate`. */
  imports(needed: string[]): Record<string, (...a: never[]) => number | undefined> {
    const impl: Record<string, (...a: never[]) => number | undefined> = {
      args_sizes_get: (argc: number, size: number) => {
        argc >>>= 0;
        size >>>= 0;
        if (!this.#ok(argc, 4) || !this.#ok(size, 4)) return E.FAULT;
        const v = this.#view();
        v.setUint32(argc, this.#args.length, true);
        v.setUint32(
          size,
          this.#args.reduce((s, a) => s + a.length, 0),
          true,
        );
        return E.SUCCESS;
      },
      args_get: (argv: number, buf: number) => {
        argv >>>= 0;
        buf >>>= 0;
        const total = this.#args.reduce((s, a) => s + a.length, 0);
        if (!this.#ok(argv, 4 * this.#args.length) || !this.#ok(buf, total)) return E.FAULT;
        const v = this.#view();
        const m = this.#bytes();
        for (const a of this.#args) {
          v.setUint32(argv, buf, true);
          m.set(a, buf);
          argv += 4;
          buf += a.length;
        }
        return E.SUCCESS;
      },
      environ_sizes_get: (count: number, size: number) => {
        count >>>= 0;
        size >>>= 0;
        if (!this.#ok(count, 4) || !this.#ok(size, 4)) return E.FAULT;
        const v = this.#view();
        v.setUint32(count, 0, true);
        v.setUint32(size, 0, true);
        return E.SUCCESS;
      },
      environ_get: () => E.SUCCESS,
      clock_res_get: (id: number, out: number) => {
        if (id < 0 || id > 3) return E.INVAL;
        out >>>= 0;
        if (!this.#ok(out, 8)) return E.FAULT;
        this.#view().setBigUint64(out, 1000n, true);
        return E.SUCCESS;
      },
      clock_time_get: (id: number, _precision: bigint, out: number) => {
        let t: bigint;
        if (id === 0) t = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
        else if (id >= 1 && id <= 3) t = process.hrtime.bigint();
        else return E.INVAL;
        out >>>= 0;
        if (!this.#ok(out, 8)) return E.FAULT;
        this.#view().setBigUint64(out, t, true);
        return E.SUCCESS;
      },
      random_get: (buf: number, len: number) => {
        buf >>>= 0;
        len >>>= 0;
        if (!this.#ok(buf, len)) return E.FAULT;
        // Through a private buffer: getRandomValues does not fill views of a shared memory.
        const m = this.#bytes();
        const chunk = new Uint8Array(Math.min(len, 65536));
        for (let o = 0; o < len; o += 65536) {
          const n = Math.min(65536, len - o);
          getRandomValues(chunk.subarray(0, n));
          m.set(chunk.subarray(0, n), buf + o);
        }
        return E.SUCCESS;
      },
      sched_yield: () => E.SUCCESS,
      proc_exit: (code: number) => {
        throw new ProcExit(code >>> 0);
      },
      fd_write: (fd: number, iovs: number, iovsLen: number, nwritten: number) => {
        if (fd !== 1 && fd !== 2) return this.#fds.has(fd) || fd === DATA_DIR_FD ? E.NOTCAPABLE : E.BADF;
        iovs >>>= 0;
        iovsLen >>>= 0;
        nwritten >>>= 0;
        if (!this.#ok(iovs, iovsLen * 8) || !this.#ok(nwritten, 4)) return E.FAULT;
        const v = this.#view();
        const m = this.#bytes();
        let total = 0;
        for (let i = 0; i < iovsLen; i++) {
          const ptr = v.getUint32(iovs + i * 8, true);
          const len = v.getUint32(iovs + i * 8 + 4, true);
          if (ptr + len > m.length) return E.FAULT;
          this.#write(fd === 1 ? this.#stdout : this.#stderr, m.subarray(ptr, ptr + len), fd === 1);
          total += len;
        }
        v.setUint32(nwritten, total, true);
        return E.SUCCESS;
      },
      fd_read: (fd: number, iovs: number, iovsLen: number, nread: number) => {
        iovs >>>= 0;
        iovsLen >>>= 0;
        nread >>>= 0;
        if (!this.#ok(iovs, iovsLen * 8) || !this.#ok(nread, 4)) return E.FAULT;
        const v = this.#view();
        if (fd === 0 && !this.#fds.has(0)) {
          v.setUint32(nread, 0, true);
          return E.SUCCESS;
        }
        if (fd === 1 || fd === 2 || fd === DATA_DIR_FD) return E.NOTCAPABLE;
        const f = this.#fds.get(fd);
        if (!f) return E.BADF;
        const m = this.#bytes();
        let total = 0;
        for (let i = 0; i < iovsLen; i++) {
          const ptr = v.getUint32(iovs + i * 8, true);
          const len = v.getUint32(iovs + i * 8 + 4, true);
          if (ptr + len > m.length) return E.FAULT;
          if (len === 0) continue;
          const n = f.reader.read(m.subarray(ptr, ptr + len), total === 0);
          if (n < 0) throw new InputFailed();
          total += n;
          if (n < len) break;
        }
        f.pos += BigInt(total);
        v.setUint32(nread, total, true);
        return E.SUCCESS;
      },
      fd_close: (fd: number) => {
        if (fd <= DATA_DIR_FD) return fd === DATA_DIR_FD && !this.#hasDataDir ? E.BADF : E.SUCCESS;
        return this.#fds.delete(fd) ? E.SUCCESS : E.BADF;
      },
      fd_fdstat_get: (fd: number, out: number) => {
        let type: number;
        if (fd <= 2) type = FILETYPE_CHAR;
        else if (fd === DATA_DIR_FD && this.#hasDataDir) type = FILETYPE_DIR;
        else if (this.#fds.has(fd)) type = FILETYPE_FILE;
        else return E.BADF;
        out >>>= 0;
        if (!this.#ok(out, 24)) return E.FAULT;
        const v = this.#view();
        v.setUint8(out, type);
        v.setUint16(out + 2, 0, true);
        v.setBigUint64(out + 8, ALL_RIGHTS, true);
        v.setBigUint64(out + 16, ALL_RIGHTS, true);
        return E.SUCCESS;
      },
      fd_fdstat_set_flags: (fd: number) => (fd <= 2 || this.#fds.has(fd) ? E.NOTCAPABLE : E.BADF),
      fd_filestat_get: (fd: number, out: number) => {
        let type: number;
        if (fd <= 2) type = FILETYPE_CHAR;
        else if (fd === DATA_DIR_FD && this.#hasDataDir) type = FILETYPE_DIR;
        else if (this.#fds.has(fd)) type = FILETYPE_FILE;
        else return E.BADF;
        out >>>= 0;
        if (!this.#ok(out, 64)) return E.FAULT;
        const m = this.#bytes();
        m.fill(0, out, out + 64);
        this.#view().setUint8(out + 16, type);
        this.#view().setBigUint64(out + 24, 1n, true);
        return E.SUCCESS;
      },
      fd_seek: (fd: number, offset: bigint, whence: number, out: number) => {
        const f = this.#fds.get(fd);
        if (fd <= 2 && !f) return E.SPIPE;
        if (!f) return fd === DATA_DIR_FD ? E.ISDIR : E.BADF;
        if (offset !== 0n || whence !== 1) return E.SPIPE;
        out >>>= 0;
        if (!this.#ok(out, 8)) return E.FAULT;
        this.#view().setBigUint64(out, f.pos, true);
        return E.SUCCESS;
      },
      fd_tell: (fd: number, out: number) => {
        const f = this.#fds.get(fd);
        if (!f) return fd <= 2 ? E.SPIPE : E.BADF;
        out >>>= 0;
        if (!this.#ok(out, 8)) return E.FAULT;
        this.#view().setBigUint64(out, f.pos, true);
        return E.SUCCESS;
      },
      fd_prestat_get: (fd: number, out: number) => {
        if (fd !== DATA_DIR_FD || !this.#hasDataDir) return E.BADF;
        out >>>= 0;
        if (!this.#ok(out, 8)) return E.FAULT;
        const v = this.#view();
        v.setUint8(out, 0);
        v.setUint32(out + 4, 5, true);
        return E.SUCCESS;
      },
      fd_prestat_dir_name: (fd: number, buf: number, len: number) => {
        if (fd !== DATA_DIR_FD || !this.#hasDataDir) return E.BADF;
        buf >>>= 0;
        if (len >>> 0 < 5) return E.INVAL;
        if (!this.#ok(buf, 5)) return E.FAULT;
        this.#bytes().set(new TextEncoder().encode('/data'), buf);
        return E.SUCCESS;
      },
      path_open: (
        dirfd: number,
        _dirflags: number,
        pathPtr: number,
        pathLen: number,
        oflags: number,
        rightsBase: bigint,
        _rightsInheriting: bigint,
        fdflags: number,
        out: number,
      ) => {
        if (dirfd !== DATA_DIR_FD || !this.#hasDataDir) return this.#fds.has(dirfd) ? E.NOTDIR : E.BADF;
        // Writes, creation, truncation, append: refused.
        if ((oflags & (1 | 4 | 8)) !== 0 || (fdflags & 1) !== 0) return E.NOTCAPABLE;
        // fd_write (1<<6) or fd_allocate, fd_filestat_set_size.
        if ((rightsBase & ((1n << 6n) | (1n << 8n) | (1n << 22n))) !== 0n) return E.NOTCAPABLE;
        pathPtr >>>= 0;
        pathLen >>>= 0;
        out >>>= 0;
        if (!this.#ok(pathPtr, pathLen) || !this.#ok(out, 4)) return E.FAULT;
        // A copy: the memory may be shared (limits.ts), which TextDecoder does not read.
        let name = new TextDecoder().decode(this.#bytes().slice(pathPtr, pathPtr + pathLen));
        while (name.startsWith('./')) name = name.slice(2);
        if (name === '.' || name === '') return (oflags & 2) !== 0 ? E.NOTCAPABLE : E.ISDIR;
        const ring = this.#files.get(name);
        if (!ring) return E.NOENT;
        if ((oflags & 2) !== 0) return E.NOTDIR;
        if (this.#opened.has(name)) return E.BUSY;
        this.#opened.add(name);
        const fd = this.#nextFd++;
        this.#fds.set(fd, { reader: this.#reader(ring), pos: 0n, isStdin: false });
        this.#view().setUint32(out, fd, true);
        return E.SUCCESS;
      },
    };
    // Own properties of `impl` only (never `constructor`, `toString`... of Object.prototype),
    // for preview 1 names only (refusedImport refused the others before instantiation).
    const out: Record<string, (...a: never[]) => number | undefined> = Object.create(null);
    for (const name of needed) {
      if (!WASI_PREVIEW1_FUNCTIONS.has(name)) continue;
      out[name] = Object.hasOwn(impl, name) ? impl[name] : () => E.NOSYS;
    }
    return out;
  }
}
