import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { before, test } from 'node:test';
import { type ExampleName, ensureExamplesBuilt, examplePath } from '../../examples/index.ts';
import { FerryError } from '../kernel/index.ts';
import { startAppWorker } from './app-worker.ts';
import { MAX_TABLE_ENTRIES, MAX_TABLES } from './limits.ts';
import { appThreadAbandoned, runApp } from './runner.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const apps = new Map<ExampleName, Uint8Array>();
const app = (n: ExampleName) => apps.get(n)!;

async function* chunks(b: Uint8Array, size = 7000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.slice(i, i + size);
}

before(async () => {
  await ensureExamplesBuilt();
  for (const n of [
    'csv-stats',
    'wordcount',
    'sha256',
    'count-bytes',
    'cat',
    'loop',
    'memory-hog',
    'output-flood',
    'trap',
  ] as const) {
    apps.set(n, new Uint8Array(await readFile(examplePath(n))));
  }
});

test('csv-stats: statistics of the column named by the argument', async () => {
  const csv = enc('name,value,other\na,1,9\nb,2.5,9\nc,x,9\nd,10,9\n');
  for (const args of [['value'], ['--column', 'value']]) {
    const r = await runApp({ module: app('csv-stats'), args, stdin: chunks(csv, 5) });
    assert.equal(r.exitCode, 0);
    assert.deepEqual(JSON.parse(dec(r.stdout)), {
      column: 'value',
      count: 3,
      mean: 4.5,
      min: 1,
      max: 10,
      skipped: 1,
    });
  }
  // The column name is JSON-escaped in the output.
  const odd = await runApp({
    module: app('csv-stats'),
    args: ['a"b\\c'],
    stdin: chunks(enc('x,a"b\\c\n1,2\n3,4\n')),
  });
  assert.deepEqual(JSON.parse(dec(odd.stdout)), {
    column: 'a"b\\c',
    count: 2,
    mean: 3,
    min: 2,
    max: 4,
    skipped: 0,
  });
  const missing = await runApp({ module: app('csv-stats'), args: ['nope'], stdin: chunks(csv) });
  assert.equal(missing.exitCode, 1);
  assert.match(dec(missing.stderr), /no column named nope/);
});

test('wordcount and sha256 agree with the host on 1 MiB of input', async () => {
  const data = new Uint8Array(1 << 20);
  for (let i = 0; i < data.length; i++) data[i] = i % 7 === 0 ? 32 : i % 50 === 0 ? 10 : 97 + (i % 26);
  const wc = await runApp({ module: app('wordcount'), stdin: chunks(data, 65536 + 3) });
  const text = dec(data);
  assert.deepEqual(JSON.parse(dec(wc.stdout)), {
    lines: text.split('\n').length - 1,
    words: text.split(/[ \n\t\r\v\f]+/).filter(Boolean).length,
    bytes: data.length,
  });
  const sh = await runApp({ module: app('sha256'), stdin: chunks(data, 100_000) });
  assert.equal(dec(sh.stdout), `${hex(data)}  -\n`);
});

test('no stdin: the app reads end of file at once', async () => {
  const r = await runApp({ module: app('count-bytes') });
  assert.equal(dec(r.stdout), '0\n');
});

test('several datasets are read-only files under /data/, each readable once', async () => {
  const a = enc('first dataset\n');
  const b = new Uint8Array(300_000).fill(7);
  const r = await runApp({
    module: app('sha256'),
    args: ['a.csv', 'b', 'missing', 'a.csv'],
    files: [
      { name: 'a.csv', chunks: chunks(a) },
      { name: 'b', chunks: chunks(b) },
    ],
  });
  assert.equal(r.exitCode, 1);
  assert.equal(dec(r.stdout), `${hex(a)}  a.csv\n${hex(b)}  b\n`);
  // ENOENT (44) for an unknown name, EBUSY (10) for a second open.
  assert.match(dec(r.stderr), /cannot open \/data\/missing \(errno 44\)/);
  assert.match(dec(r.stderr), /cannot open \/data\/a.csv \(errno 10\)/);
});

test('time limit: a runaway loop is stopped at the limit, its thread terminated', async () => {
  // The loop never returns and never calls the host: only the time limit can end it. What is
  // checked is the behaviour (the limit is reported and the app's thread is gone), not how
  // fast a loaded machine gets there.
  const worker = startAppWorker();
  let exited = false;
  worker.once('exit', () => {
    exited = true;
  });
  const r = await runApp({ module: app('loop'), limits: { timeoutMs: 200 }, worker });
  assert.equal(r.limitHit, 'time');
  assert.equal(r.outcome, 'limit');
  assert.equal(r.exitCode, null);
  assert.equal(r.trap, null);
  assert.ok(exited, 'the app thread was terminated');
  assert.equal(worker.threadId, -1);
});

test('time limit also applies to an app blocked on input', async () => {
  // One byte, then an input that never ends: cat copies the byte and blocks on its next read,
  // where only the time limit can end it. The limit is generous so that even a loaded machine
  // starts the app and copies the byte first (its thread is started ahead, as the enclave does).
  async function* never(): AsyncGenerator<Uint8Array> {
    yield enc('x');
    await new Promise(() => {});
  }
  const worker = startAppWorker();
  await new Promise((resolve) => worker.once('online', resolve));
  const r = await runApp({ module: app('cat'), stdin: never(), limits: { timeoutMs: 3000 }, worker });
  assert.equal(r.limitHit, 'time');
  assert.equal(r.outcome, 'limit');
  assert.equal(dec(r.stdout), 'x');
  assert.equal(worker.threadId, -1, 'the app thread was terminated');
});

test('memory limit: growth past --memory-mb is refused even with no declared maximum', async () => {
  const r = await runApp({ module: app('memory-hog'), limits: { memoryMb: 8 } });
  assert.equal(r.limitHit, 'memory');
  assert.ok(r.memoryPages <= 8 * 16, `pages ${r.memoryPages} within the limit`);
  assert.ok(r.memoryPages > 8 * 16 - 16);
});

test('output limit: exactly max-output-bytes are kept, then the app is stopped', async () => {
  const r = await runApp({ module: app('output-flood'), limits: { maxOutputBytes: 100_001 } });
  assert.equal(r.limitHit, 'output');
  assert.equal(r.stdout.length, 100_001);
  assert.ok(r.stdout.every((b) => b === 121));
});

test('a trap is reported with its message and the stderr written before it', async () => {
  const r = await runApp({ module: app('trap') });
  assert.equal(r.outcome, 'trap');
  assert.equal(r.limitHit, null);
  assert.equal(r.exitCode, null);
  assert.match(r.trap ?? '', /unreachable/);
  assert.equal(dec(r.stderr), 'about to trap\n');
});

test('after a trap the unread input is drained to its end (the receipt hashes it whole)', async () => {
  let yielded = 0;
  async function* big(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < 64; i++) {
      yielded++;
      yield new Uint8Array(65536).fill(10);
    }
  }
  const r = await runApp({ module: app('trap'), stdin: big(), ringBytes: 1 << 16 });
  assert.equal(r.outcome, 'trap');
  assert.equal(yielded, 64, 'every chunk was consumed');
  // After the time limit the input is cancelled instead: a stalled source must not hold the run.
  let stalled = 0;
  async function* slow(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < 64; i++) {
      stalled++;
      yield new Uint8Array(65536);
    }
  }
  const t = await runApp({
    module: app('loop'),
    stdin: slow(),
    ringBytes: 1 << 16,
    limits: { timeoutMs: 200 },
  });
  assert.equal(t.limitHit, 'time');
  assert.ok(stalled < 64, `cancelled after ${stalled} chunk(s)`);
});

test('a failing input stops the app: it saw only the bytes before the failure', async () => {
  async function* failing(): AsyncGenerator<Uint8Array> {
    yield enc('authenticated-1 ');
    yield enc('authenticated-2 ');
    throw new FerryError('AGE_PAYLOAD_INVALID', 'chunk 3 failed authentication');
  }
  await assert.rejects(
    runApp({ module: app('cat'), stdin: failing() }),
    (e: FerryError) => e.code === 'AGE_PAYLOAD_INVALID',
  );
  // An app that exits before reading everything: the rest is drained and the failure still fails the run.
  async function* failingLater(): AsyncGenerator<Uint8Array> {
    yield enc('name,value\na,1\n');
    for (let i = 0; i < 40; i++) yield new Uint8Array(65536).fill(10);
    throw new FerryError('AGE_PAYLOAD_TRUNCATED', 'truncated');
  }
  await assert.rejects(
    runApp({ module: app('csv-stats'), args: ['nope'], stdin: failingLater() }),
    (e: FerryError) => e.code === 'AGE_PAYLOAD_TRUNCATED',
  );
});

test('modules that are not WASI commands are refused before running', async () => {
  await assert.rejects(runApp({ module: enc('nope') }), (e: FerryError) => e.code === 'ENCLAVE_APP_INVALID');
  // (module (import "env" "f" (func)) (memory (export "memory") 1) (func (export "_start")))
  const envImport = Uint8Array.from([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 2, 9, 1, 3, 101, 110, 118, 1, 102, 0, 0, 3, 2, 1, 0, 5, 3,
    1, 0, 1, 7, 19, 2, 6, 109, 101, 109, 111, 114, 121, 2, 0, 6, 95, 115, 116, 97, 114, 116, 0, 1, 10, 4, 1,
    2, 0, 11,
  ]);
  await assert.rejects(
    runApp({ module: envImport }),
    (e: FerryError) => e.code === 'ENCLAVE_APP_INVALID' && /env\.f/.test(e.message),
  );
  await assert.rejects(
    runApp({ module: app('cat'), args: ['a\0b'] }),
    (e: FerryError) => e.code === 'INVALID_ARGUMENT',
  );
});

test('the host stays healthy after runaway apps', async () => {
  await Promise.all([
    runApp({ module: app('loop'), limits: { timeoutMs: 100 } }),
    runApp({ module: app('memory-hog'), limits: { memoryMb: 16 } }),
    runApp({ module: app('output-flood'), limits: { maxOutputBytes: 1000 } }),
  ]);
  const r = await runApp({ module: app('count-bytes'), stdin: chunks(new Uint8Array(123_457)) });
  assert.equal(dec(r.stdout), '123457\n');
});

/** A module from WAT text, built with wabt (a devDependency), as examples/index.ts does. */
async function wat(text: string, features: object = {}): Promise<Uint8Array> {
  const wabt = await (
    createRequire(import.meta.url)('wabt') as () => Promise<{
      parseWat(
        file: string,
        text: string,
        features?: object,
      ): {
        toBinary(o: object): { buffer: Uint8Array };
        resolveNames(): void;
        validate(): void;
        destroy(): void;
      };
    }>
  )();
  const m = wabt.parseWat('test.wat', text, features);
  try {
    m.resolveNames();
    m.validate();
    return m.toBinary({}).buffer;
  } finally {
    m.destroy();
  }
}

/** A WASI command that imports `name` from `module` and calls it, then exits 7 through proc_exit. */
const importing = (module: string, name: string) =>
  wat(`(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import ${JSON.stringify(module)} ${JSON.stringify(name)} (func $f (param i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start") (drop (call $f (i32.const 0))) (call $exit (i32.const 7))))`);

test('WASI exposes only its own functions: inherited JS names and unknown imports are refused before running', async () => {
  // Each of these linked to a JS builtin (Object, Object.prototype.toString...) when the
  // host looked names up with inherited properties.
  for (const name of ['constructor', 'toString', '__proto__', 'valueOf', 'hasOwnProperty', 'fd_write_v2']) {
    await assert.rejects(
      runApp({ module: await importing('wasi_snapshot_preview1', name) }),
      (e: FerryError) =>
        e.code === 'ENCLAVE_APP_INVALID' && e.message.includes(`wasi_snapshot_preview1.${name},`),
      name,
    );
  }
  // Another module, even with a WASI name.
  await assert.rejects(
    runApp({ module: await importing('wasi_unstable', 'fd_write') }),
    (e: FerryError) => e.code === 'ENCLAVE_APP_INVALID' && /wasi_unstable/.test(e.message),
  );
  // A WASI preview 1 function the host does not implement links and answers ENOSYS (52).
  const nosys = await wat(`(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import "wasi_snapshot_preview1" "sock_shutdown" (func $f (param i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start") (call $exit (call $f (i32.const 0) (i32.const 0)))))`);
  assert.equal((await runApp({ module: nosys })).exitCode, 52);
  // A normal app still runs.
  const r = await runApp({ module: app('cat'), stdin: chunks(enc('still fine')) });
  assert.deepEqual([r.exitCode, dec(r.stdout)], [0, 'still fine']);
});

// The fuzz report of 2026-12-03 (docs/protocol.md §10.3, §10.5): each hostile module plays the
// attacker against the sandbox's limits.
const fromHex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

test('time limit: an app growing its memory page by page is stopped at the limit', async () => {
  // (loop (drop (memory.grow 1)) (br 0)), verbatim from the report: each grow of an unshared
  // memory was a full GC during which worker.terminate() was not acted on (minutes past a 3 s
  // limit). The test's own timeout is the hang guard; nothing here asserts a speed.
  const growLoop = fromHex(
    '0061736d01000000010401600000030201000503010001071302066d656d6f72790200065f737461727400000a0e010c000340410140001a0c000b0b',
  );
  const worker = startAppWorker();
  const r = await runApp({ module: growLoop, limits: { timeoutMs: 2000, memoryMb: 1024 }, worker });
  assert.equal(r.outcome, 'limit');
  assert.equal(r.limitHit, 'time');
  assert.equal(r.exitCode, null);
  assert.equal(worker.threadId, -1, 'the app thread was terminated');
  // The host is healthy afterwards.
  const ok = await runApp({ module: app('count-bytes'), stdin: chunks(new Uint8Array(1000)) });
  assert.equal(dec(ok.stdout), '1000\n');
});

test('tables: a 10-million-entry table is refused before instantiation, growth is capped', async () => {
  // 59 bytes from the report: (table 10000000 funcref); it aborted the enclave process.
  const huge = fromHex(
    '0061736d0100000001040160000003020100040701700080ade2040503010001071302066d656d6f72790200065f737461727400000a040102000b',
  );
  await assert.rejects(
    runApp({ module: huge }),
    (e: FerryError) => e.code === 'ENCLAVE_LIMIT_MEMORY' && /table/.test(e.message),
  );
  // An imported table is capped the same way (refused before anything links).
  const imported = await wat(`(module (import "env" "t" (table 2000000 funcref))
    (memory (export "memory") 1) (func (export "_start")))`);
  await assert.rejects(runApp({ module: imported }), (e: FerryError) => e.code === 'ENCLAVE_LIMIT_MEMORY');
  // Too many tables: refused.
  const tables = (n: number, size: number) =>
    Array.from({ length: n }, (_, i) => `(table $t${i} ${size} ${i % 2 ? 'externref' : 'funcref'})`).join(
      ' ',
    );
  const many = await wat(
    `(module ${tables(MAX_TABLES + 1, 1)} (memory (export "memory") 1) (func (export "_start")))`,
  );
  await assert.rejects(runApp({ module: many }), (e: FerryError) => e.code === 'ENCLAVE_LIMIT_MEMORY');
  // At most MAX_TABLES tables grown to MAX_TABLE_ENTRIES each: table.grow past the cap returns
  // -1 inside the app (exit code = size + (-1)), and the run ends normally.
  const grow = (i: number, ref: string) =>
    `(drop (table.grow $t${i} (ref.null ${ref}) (i32.const ${MAX_TABLE_ENTRIES - 1000})))`;
  const full = await wat(`(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    ${tables(MAX_TABLES, 1000)} (memory (export "memory") 1)
    (func (export "_start")
      ${Array.from({ length: MAX_TABLES }, (_, i) => grow(i, i % 2 ? 'extern' : 'func')).join(' ')}
      (call $exit (i32.add (table.size $t0) (table.grow $t0 (ref.null func) (i32.const 1))))))`);
  const r = await runApp({ module: full });
  assert.deepEqual([r.outcome, r.exitCode], ['exit', MAX_TABLE_ENTRIES - 1]);
});

/** Calls each expression (an errno); exits i + 1 when call i did not answer EFAULT (21), else writes "ok". */
const faultApp = (imports: string, calls: string[]) =>
  wat(`(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    ${imports}
    (memory (export "memory") 1)
    (data (i32.const 16) "ok")
    (func (export "_start")
      ${calls.map((c, i) => `(if (i32.ne ${c} (i32.const 21)) (then (call $exit (i32.const ${i + 1}))))`).join('\n      ')}
      ;; iovec {16, 2} at 0; nwritten at 8.
      (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 2))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`);

test('host calls given out-of-range or >= 2^31 pointers return EFAULT and the app continues', async () => {
  const module = await faultApp(
    `(import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
    (import "wasi_snapshot_preview1" "clock_res_get" (func $clock_res_get (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fd_filestat_get (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))`,
    [
      '(call $args_sizes_get (i32.const 0xfffffff0) (i32.const 0))',
      '(call $args_sizes_get (i32.const 0) (i32.const 65533))',
      '(call $args_get (i32.const 0x80000000) (i32.const 100))',
      '(call $args_get (i32.const 100) (i32.const 65535))',
      '(call $environ_sizes_get (i32.const -4) (i32.const 0))',
      '(call $clock_time_get (i32.const 0) (i64.const 0) (i32.const 65529))',
      '(call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 0x80000000))',
      '(call $clock_res_get (i32.const 0) (i32.const -1))',
      // Past the end, and at 2^31 (which once counted from the end of memory).
      '(call $random_get (i32.const 65530) (i32.const 100))',
      '(call $random_get (i32.const 0x80000000) (i32.const 16))',
      '(call $fd_fdstat_get (i32.const 1) (i32.const 65530))',
      '(call $fd_filestat_get (i32.const 1) (i32.const 65500))',
      // fd_write: nwritten out of range; an iovec array running past the end or at 2^31.
      '(call $fd_write (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0xfffffffc))',
      '(call $fd_write (i32.const 1) (i32.const 65528) (i32.const 2) (i32.const 0))',
      '(call $fd_write (i32.const 2) (i32.const 0x80000000) (i32.const 1) (i32.const 0))',
      '(call $fd_read (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 65535))',
      '(call $fd_read (i32.const 0) (i32.const 65532) (i32.const 1) (i32.const 0))',
    ],
  );
  const r = await runApp({ module });
  assert.equal(r.trap, null);
  assert.deepEqual([r.outcome, r.exitCode, dec(r.stdout)], ['exit', 0, 'ok']);
  // path_open with a path pointer at 2^31, or an fd out pointer past the end.
  const open = await faultApp(
    `(import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))`,
    [
      '(call $path_open (i32.const 3) (i32.const 0) (i32.const 0x80000000) (i32.const 5) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 100))',
      '(call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 2) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 65534))',
    ],
  );
  const o = await runApp({ module: open, files: [{ name: 'ok', chunks: chunks(enc('data')) }] });
  assert.deepEqual([o.outcome, o.exitCode, dec(o.stdout)], ['exit', 0, 'ok']);
});

test('pointers at or above 2^31 are unsigned: random_get(2^31, 16) fills 2^31, not 2^30', async () => {
  // 3 GiB of (untouched, lazily committed) memory, as in the report's random_hi.wasm.
  const module = await wat(`(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
    (memory (export "memory") 49152)
    (func (export "_start")
      (if (i32.ne (call $random_get (i32.const 0x80000000) (i32.const 16)) (i32.const 0)) (then (call $exit (i32.const 1))))
      ;; 2^30 untouched; the 16 bytes at 2^31 not all zero (odds 2^-128).
      (if (i64.ne (i64.or (i64.load (i32.const 0x40000000)) (i64.load (i32.const 0x40000008))) (i64.const 0)) (then (call $exit (i32.const 2))))
      (if (i64.eqz (i64.or (i64.load (i32.const 0x80000000)) (i64.load (i32.const 0x80000008)))) (then (call $exit (i32.const 3))))
      (call $exit (i32.const 0))))`);
  const r = await runApp({ module, limits: { memoryMb: 4096 } });
  assert.deepEqual([r.outcome, r.exitCode], ['exit', 0]);
});

test('memory limit: a refused memory.grow that ends the app is reported as limit memory, not a trap', async () => {
  // Page by page until memory.grow returns -1, then the app gives up: a trap, or exit 1.
  const giveUp = (end: string) =>
    wat(`(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "_start")
      (loop (br_if 0 (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
      ${end}))`);
  const trapped = await runApp({ module: await giveUp('(unreachable)'), limits: { memoryMb: 4 } });
  assert.deepEqual([trapped.outcome, trapped.limitHit], ['limit', 'memory']);
  assert.equal(trapped.memoryPages, 4 * 16);
  assert.match(trapped.trap ?? '', /unreachable/);
  const exited = await runApp({
    module: await giveUp('(call $exit (i32.const 1))'),
    limits: { memoryMb: 4 },
  });
  assert.deepEqual([exited.outcome, exited.exitCode, exited.limitHit], ['exit', 1, 'memory']);
  // A trap far from the limit stays a trap.
  const plain = await runApp({
    module: await wat('(module (memory (export "memory") 1) (func (export "_start") (unreachable)))'),
    limits: { memoryMb: 4 },
  });
  assert.deepEqual([plain.outcome, plain.limitHit], ['trap', null]);
});

test('a start section calling WASI before the memory is bound gets EFAULT, not a host TypeError', async () => {
  // start_section.wasm from the report: its start function calls fd_write(1, 0, 1, 8) before
  // instantiation has finished (the exported memory is not bound yet).
  const module = fromHex(
    '0061736d01000000010c0260047f7f7f7f017f60000002230116776173695f736e617073686f745f70726576696577310866645f7772697465000003030201010503010001071302066d656d6f72790200065f737461727400020801010a12020d00410141004101410810001a0b02000b',
  );
  const r = await runApp({ module });
  assert.deepEqual([r.outcome, r.exitCode, r.trap, r.stdout.length], ['exit', 0, null, 0]);
});

test('memory limit: one huge memory.grow refused far below the limit ends as limit memory, not a trap', async () => {
  // The attacker's allocator asks for 3 GiB at once while using one page of a 4 MiB limit; the
  // sandbox refuses (-1) and the app aborts. Its memory is nowhere near the limit.
  const huge = (delta: string, end: string) =>
    wat(`(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "_start")
      (if (i32.eq (memory.grow (i32.const ${delta})) (i32.const -1)) (then ${end}))))`);
  const trapped = await runApp({ module: await huge('49152', '(unreachable)'), limits: { memoryMb: 4 } });
  assert.deepEqual([trapped.outcome, trapped.limitHit, trapped.memoryPages], ['limit', 'memory', 1]);
  assert.match(trapped.trap ?? '', /unreachable/);
  const exited = await runApp({
    module: await huge('65', '(call $exit (i32.const 3))'),
    limits: { memoryMb: 4 },
  });
  assert.deepEqual([exited.outcome, exited.exitCode, exited.limitHit], ['exit', 3, 'memory']);
  // A delta of 2^32 - 1 (negative as an i32) is a refused grow all the same.
  const negative = await runApp({ module: await huge('-1', '(unreachable)'), limits: { memoryMb: 4 } });
  assert.deepEqual([negative.outcome, negative.limitHit], ['limit', 'memory']);
});

test("memory limit: an app that handles a refused grow continues, and its own lower maximum is not Ferry's limit", async () => {
  // Refused once (-1), then it asks for less and succeeds: it runs to its end, exit 0.
  const copes = await wat(`(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "_start")
      (if (i32.ne (memory.grow (i32.const 100000)) (i32.const -1)) (then (unreachable)))
      (if (i32.eq (memory.grow (i32.const 2)) (i32.const -1)) (then (unreachable)))
      (call $exit (i32.const 0))))`);
  const r = await runApp({ module: copes, limits: { memoryMb: 4 } });
  assert.deepEqual([r.outcome, r.exitCode, r.limitHit, r.memoryPages], ['exit', 0, null, 3]);
  // The module declares its own maximum of 2 pages, far below the 4 MiB limit: a grow past it
  // is the app's own refusal, and the trap that follows stays a trap.
  const own = await wat(`(module
    (memory (export "memory") 1 2)
    (func (export "_start") (drop (memory.grow (i32.const 5))) (unreachable)))`);
  const o = await runApp({ module: own, limits: { memoryMb: 4 } });
  assert.deepEqual([o.outcome, o.limitHit], ['trap', null]);
  // Past Ferry's limit as well: that is the limit.
  const both = await wat(`(module
    (memory (export "memory") 1 2)
    (func (export "_start") (drop (memory.grow (i32.const 100))) (unreachable)))`);
  const b = await runApp({ module: both, limits: { memoryMb: 4 } });
  assert.deepEqual([b.outcome, b.limitHit], ['limit', 'memory']);
});

test('the grow rewrite keeps the app: immediates that contain the memory.grow byte (0x40) are not touched', async () => {
  // i32.const 64 and f64.const 2 hold 0x40 bytes, an empty block type is 0x40, SIMD, bulk
  // memory and atomics have their own immediates: the app computes the same result after the
  // rewrite (exit 0 only if every value is right), and its real grow is still seen.
  const m = await wat(
    `(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func $check (param i32) (if (i32.eqz (local.get 0)) (then (call $exit (i32.const 9)))))
    (func (export "_start") (local $v v128)
      (block (nop))
      (call $check (i32.eq (i32.const 64) (i32.add (i32.const 32) (i32.const 32))))
      (call $check (f64.eq (f64.const 2) (f64.add (f64.const 1) (f64.const 1))))
      (local.set $v (v128.const i8x16 64 64 64 64 64 64 64 64 64 64 64 64 64 64 64 64))
      (call $check (i32.eq (i8x16.extract_lane_u 3 (local.get $v)) (i32.const 64)))
      (memory.fill (i32.const 64) (i32.const 64) (i32.const 64))
      (call $check (i32.eq (i32.atomic.load8_u offset=64 (i32.const 0)) (i32.const 64)))
      (call $check (i32.eq (memory.grow (i32.const 64)) (i32.const -1)))
      (call $check (i32.eq (memory.size) (i32.const 1)))
      (call $check (i32.eq (memory.grow (i32.const 1)) (i32.const 1)))
      (call $exit (i32.const 0))))`,
    { simd: true, threads: true, bulk_memory: true },
  );
  const r = await runApp({ module: m, limits: { memoryMb: 2 } });
  assert.deepEqual([r.outcome, r.exitCode, r.limitHit, r.memoryPages], ['exit', 0, null, 2]);
});

test('time limit: an app thread that ignores its termination is abandoned; the run still ends with limit time', async () => {
  // The attacker's thread: blocked in a system call (a read of a FIFO nobody writes), where
  // `worker.terminate()` cannot reach it, as V8 cannot interrupt a long native operation. It
  // takes the place of the app thread; the limit is enforced from the runner's thread.
  const dir = mkdtempSync(join(tmpdir(), 'ferry-stuck-'));
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const stuck = new Worker(
    `require('node:worker_threads').parentPort.postMessage('blocking');
    require('node:fs').readFileSync(${JSON.stringify(fifo)})`,
    { eval: true },
  );
  await new Promise((resolve) => stuck.once('message', resolve));
  await new Promise((resolve) => setTimeout(resolve, 100)); // into the read (the limit adds 200 ms)
  try {
    assert.equal(appThreadAbandoned(), false);
    const r = await runApp({ module: app('loop'), limits: { timeoutMs: 200 }, worker: stuck });
    assert.deepEqual([r.outcome, r.limitHit, r.exitCode, r.trap], ['limit', 'time', null, null]);
    assert.notEqual(stuck.threadId, -1, 'the thread is still running: it was abandoned');
    assert.equal(appThreadAbandoned(), true);
  } finally {
    // Release the thread (its read returns), so that it ends and this test process can exit. A
    // non-blocking open: should the thread be gone already, there is no reader to wait for.
    if (stuck.threadId !== -1) {
      const ended = new Promise((resolve) => stuck.once('exit', resolve));
      try {
        const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        writeSync(fd, 'x');
        closeSync(fd);
      } catch {
        await stuck.terminate();
      }
      await ended;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
