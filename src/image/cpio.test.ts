import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError } from '../kernel/index.ts';
import { type CpioEntry, readCpio, writeCpio } from './cpio.ts';

const enc = new TextEncoder();
const cat = (chunks: Uint8Array[]) => Buffer.concat(chunks);

const ENTRIES: CpioEntry[] = [
  { type: 'file', path: 'bin/node', data: enc.encode('#!not really node\n'), mode: 0o555 },
  { type: 'file', path: 'ferry/src/a.ts', data: enc.encode('export const a = 1;\n') },
  {
    type: 'symlink',
    path: 'lib64/ld-linux-x86-64.so.2',
    target: '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
  },
  { type: 'char', path: 'dev/console', major: 5, minor: 1 },
  { type: 'dir', path: 'proc' },
  { type: 'file', path: 'empty', data: new Uint8Array(0) },
];

test('cpio: the same entries in any order give the same bytes; a changed byte, mode or mtime does not', () => {
  const a = cat(writeCpio(ENTRIES, { mtime: 1700000000 }));
  const shuffled = [ENTRIES[3], ENTRIES[0], ENTRIES[5], ENTRIES[2], ENTRIES[4], ENTRIES[1]];
  assert.deepEqual(cat(writeCpio(shuffled, { mtime: 1700000000 })), a);
  assert.deepEqual(cat(writeCpio(ENTRIES, { mtime: 1700000000 })), a);
  const variants: CpioEntry[][] = [
    [{ ...ENTRIES[0], data: enc.encode('#!not really node!') } as CpioEntry, ...ENTRIES.slice(1)],
    [{ ...ENTRIES[0], mode: 0o755 } as CpioEntry, ...ENTRIES.slice(1)],
    [...ENTRIES, { type: 'dir', path: 'tmp' }],
  ];
  for (const v of variants) assert.notDeepEqual(cat(writeCpio(v, { mtime: 1700000000 })), a);
  assert.notDeepEqual(cat(writeCpio(ENTRIES, { mtime: 1700000001 })), a);
});

test('cpio: newc layout — header fields, 4-byte alignment, parents added, sorted, trailer', () => {
  const bytes = cat(
    writeCpio([{ type: 'file', path: 'a/b', data: enc.encode('xyz'), mode: 0o444 }], { mtime: 16 }),
  );
  // Entry 1: the directory "a" (added), entry 2: the file, then the trailer.
  const dirHeader = `070701${['1', '416d', '0', '0', '2', '10', '0', '0', '0', '0', '0', '2', '0'].map((f) => f.toUpperCase().padStart(8, '0')).join('')}`;
  assert.equal(bytes.subarray(0, 110).toString('latin1'), dirHeader);
  assert.equal(bytes.subarray(110, 112).toString('latin1'), 'a\0'); // 110 + 2 = 112: aligned
  const fileHeader = `070701${['2', '8124', '0', '0', '1', '10', '3', '0', '0', '0', '0', '4', '0'].map((f) => f.toUpperCase().padStart(8, '0')).join('')}`;
  assert.equal(bytes.subarray(112, 222).toString('latin1'), fileHeader);
  assert.equal(bytes.subarray(222, 228).toString('latin1'), 'a/b\0\0\0'); // 110 + 4 -> 116
  assert.equal(bytes.subarray(228, 232).toString('latin1'), 'xyz\0');
  assert.equal(bytes.subarray(232, 238).toString('latin1'), '070701');
  assert.ok(bytes.subarray(232).toString('latin1').includes('TRAILER!!!\0'));
  assert.equal(bytes.length % 4, 0);
});

test('cpio: what the reader gets back is what was written, uid/gid 0, one mtime, inodes in order', () => {
  const records = readCpio(cat(writeCpio(ENTRIES, { mtime: 42 })));
  assert.deepEqual(
    records.map((r) => r.path),
    [
      'bin',
      'bin/node',
      'dev',
      'dev/console',
      'empty',
      'ferry',
      'ferry/src',
      'ferry/src/a.ts',
      'lib64',
      'lib64/ld-linux-x86-64.so.2',
      'proc',
    ],
  );
  assert.deepEqual(
    records.map((r) => r.ino),
    records.map((_, i) => i + 1),
  );
  for (const r of records) {
    assert.equal(r.uid, 0);
    assert.equal(r.gid, 0);
    assert.equal(r.mtime, 42);
  }
  const get = (p: string) => records.find((r) => r.path === p) as (typeof records)[number];
  assert.equal(get('bin/node').mode, 0o100555);
  assert.equal(Buffer.from(get('bin/node').data).toString(), '#!not really node\n');
  assert.equal(get('ferry/src/a.ts').mode, 0o100444, 'files are read-only by default');
  assert.equal(get('bin').mode, 0o040555, 'added parents are read-only directories');
  assert.equal(get('lib64/ld-linux-x86-64.so.2').mode, 0o120777);
  assert.equal(
    Buffer.from(get('lib64/ld-linux-x86-64.so.2').data).toString(),
    '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
  );
  assert.deepEqual(
    [get('dev/console').mode, get('dev/console').rdevMajor, get('dev/console').rdevMinor],
    [0o020600, 5, 1],
  );
});

test('cpio: bad paths, duplicates, a file as a parent and bad numbers are refused', () => {
  const refuse = (entries: unknown[], mtime = 0) =>
    assert.throws(
      () => writeCpio(entries as CpioEntry[], { mtime }),
      (e) => isFerryError(e) && e.code === 'INVALID_ARGUMENT',
    );
  const f = (path: string): CpioEntry => ({ type: 'file', path, data: new Uint8Array(1) });
  for (const p of ['/etc/passwd', '../x', 'a/../b', 'a//b', 'a/', '', 'a/./b', 'x\0y', 'TRAILER!!!'])
    refuse([f(p)]);
  refuse([f('a'), f('a')]);
  refuse([f('a'), f('a/b')]);
  refuse([f('a')], -1);
  refuse([f('a')], 2 ** 32);
  refuse([{ type: 'char', path: 'c', major: -1, minor: 0 }]);
  refuse([{ type: 'symlink', path: 's', target: '' }]);
  refuse([{ type: 'file', path: 'f', data: 'text' }]);
  refuse([{ type: 'fifo', path: 'p' }]);
  refuse([{ type: 'file', path: 'f', data: new Uint8Array(0), mode: 0o10000 }]);
  assert.throws(
    () => readCpio(enc.encode('070707')),
    (e) => isFerryError(e) && e.code === 'INVALID_ARGUMENT',
  );
  const ok = cat(writeCpio([f('a')], { mtime: 0 }));
  assert.throws(
    () => readCpio(ok.subarray(0, ok.length - 8)),
    (e) => isFerryError(e) && e.code === 'INVALID_ARGUMENT',
  );
});
