/**
 * A deterministic writer (and a reader, for checks) of the cpio "newc" format, the format the
 * Linux kernel unpacks as an initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
 *
 * Each entry is a 110-byte ASCII header — the magic `070701` then 13 fields of 8 uppercase hex
 * digits: ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
 * namesize (including the NUL), check (0) — then the name and a NUL, padded with NULs to a
 * multiple of 4, then the data (a file's bytes or a symlink's target), padded the same way. The
 * archive ends with the entry `TRAILER!!!`.
 *
 * Determinism: the output depends only on the set of entries and `mtime`. Entries are sorted
 * by path (bytewise, UTF-8), every missing parent directory is added (mode 0555), inode
 * numbers are 1, 2, ... in that order, uid = gid = 0, every mtime is the given one, nlink is 1
 * (2 for directories), device numbers of the archive are 0. Paths are relative (no leading `/`,
 * no `.` or `..` component, no empty component, no NUL); a path given twice is refused.
 */
import { FerryError } from '../kernel/index.ts';

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = 'TRAILER!!!';
const enc = new TextEncoder();

function invalid(message: string, hints: string[] = []): FerryError {
  return new FerryError('INVALID_ARGUMENT', `cpio: ${message}`, { hints });
}

function checkPath(path: unknown): string {
  if (typeof path !== 'string' || path.length === 0) throw invalid('entry path must be a non-empty string');
  const parts = path.split('/');
  if (path.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..') || path === TRAILER) {
    throw invalid(`bad entry path ${JSON.stringify(path)}`, [
      'expected: a relative path like "bin/node": no leading or doubled "/", no "." or ".." component, no NUL',
    ]);
  }
  return path;
}

function checkU32(value: unknown, what: string, max = 0xffffffff): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalid(`${what} must be an integer in 0..${max}`, [`got: ${String(value)}`]);
  }
  return value;
}

/** Bytewise comparison of the UTF-8 encodings (what `LC_ALL=C sort` does). */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function header(fields: number[], nameSize: number): string {
  let h = '070701';
  for (const v of [...fields.slice(0, 11), nameSize, 0]) h += v.toString(16).toUpperCase().padStart(8, '0');
  return h;
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

/**
 * Writes `entries` as a newc archive; returns its chunks in order (concatenate them, or feed
 * them to a compressor). `mtime` (Unix seconds) is stamped on every entry.
 */
export function writeCpio(entries: readonly CpioEntry[], options: { mtime: number }): Uint8Array[] {
  const mtime = checkU32(options?.mtime, 'mtime');
  if (!Array.isArray(entries)) throw invalid('entries must be an array');
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    const path = checkPath(e?.path);
    if (byPath.has(path)) throw invalid(`path ${JSON.stringify(path)} is given twice`);
    byPath.set(path, e);
  }
  for (const path of [...byPath.keys()]) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const p = byPath.get(parent);
      if (p === undefined) byPath.set(parent, { type: 'dir', path: parent });
      else if (p.type !== 'dir')
        throw invalid(`${JSON.stringify(parent)} is a parent of ${JSON.stringify(path)} but not a directory`);
    }
  }
  const sorted = [...byPath.keys()].sort(compareUtf8);
  const out: Uint8Array[] = [];
  let ino = 0;
  const push = (fields: number[], name: string, data: Uint8Array) => {
    const nameBytes = enc.encode(`${name}\0`);
    const head = enc.encode(header(fields, nameBytes.length));
    out.push(head, nameBytes, new Uint8Array(pad4(head.length + nameBytes.length)));
    if (data.length > 0) out.push(data, new Uint8Array(pad4(data.length)));
  };
  for (const path of sorted) {
    const e = byPath.get(path) as CpioEntry;
    ino++;
    let mode: number;
    let nlink = 1;
    let data: Uint8Array = new Uint8Array(0);
    let rdev: [number, number] = [0, 0];
    switch (e.type) {
      case 'dir':
        mode = S_IFDIR | checkU32(e.mode ?? 0o555, `mode of ${path}`, 0o7777);
        nlink = 2;
        break;
      case 'file':
        if (!(e.data instanceof Uint8Array))
          throw invalid(`data of ${JSON.stringify(path)} must be a Uint8Array`);
        mode = S_IFREG | checkU32(e.mode ?? 0o444, `mode of ${path}`, 0o7777);
        data = e.data;
        break;
      case 'symlink':
        if (typeof e.target !== 'string' || e.target.length === 0 || e.target.includes('\0')) {
          throw invalid(`symlink ${JSON.stringify(path)} needs a non-empty target without NUL`);
        }
        mode = S_IFLNK | 0o777;
        data = enc.encode(e.target);
        break;
      case 'char':
        mode = S_IFCHR | checkU32(e.mode ?? 0o600, `mode of ${path}`, 0o7777);
        rdev = [checkU32(e.major, `major of ${path}`), checkU32(e.minor, `minor of ${path}`)];
        break;
      default:
        throw invalid(`unknown entry type ${JSON.stringify((e as { type: unknown }).type)} for ${path}`, [
          'expected: dir, file, symlink or char',
        ]);
    }
    push([ino, mode, 0, 0, nlink, mtime, data.length, 0, 0, rdev[0], rdev[1]], path, data);
  }
  push([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], TRAILER, new Uint8Array(0));
  return out;
}

/** One entry as `readCpio` returns it. */
export type CpioRecord = {
  path: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Uint8Array;
};

/**
 * Reads a newc archive (up to its trailer) into records. Throws INVALID_ARGUMENT on a bad
 * magic, a truncated entry or a missing trailer. Used to check what the writer produced.
 */
export function readCpio(bytes: Uint8Array): CpioRecord[] {
  if (!(bytes instanceof Uint8Array)) throw invalid('archive must be a Uint8Array');
  const dec = new TextDecoder();
  const out: CpioRecord[] = [];
  let o = 0;
  for (;;) {
    if (o + 110 > bytes.length) throw invalid('truncated archive (no trailer)');
    const head = dec.decode(bytes.subarray(o, o + 110));
    if (!head.startsWith('070701')) throw invalid(`bad magic at offset ${o}`, ['expected: 070701 (newc)']);
    const f: number[] = [];
    for (let i = 0; i < 13; i++) {
      const field = head.slice(6 + 8 * i, 14 + 8 * i);
      if (!/^[0-9A-Fa-f]{8}$/.test(field)) throw invalid(`bad header field at offset ${o}`);
      f.push(Number.parseInt(field, 16));
    }
    const nameSize = f[11];
    if (nameSize < 1 || o + 110 + nameSize > bytes.length) throw invalid(`truncated name at offset ${o}`);
    const name = dec.decode(bytes.subarray(o + 110, o + 110 + nameSize - 1));
    o += 110 + nameSize;
    o += pad4(110 + nameSize);
    const size = f[6];
    if (o + size > bytes.length) throw invalid(`truncated data of ${JSON.stringify(name)}`);
    const data = bytes.subarray(o, o + size);
    o += size + pad4(size);
    if (name === TRAILER) return out;
    out.push({
      path: name,
      ino: f[0],
      mode: f[1],
      uid: f[2],
      gid: f[3],
      nlink: f[4],
      mtime: f[5],
      rdevMajor: f[9],
      rdevMinor: f[10],
      data,
    });
  }
}
