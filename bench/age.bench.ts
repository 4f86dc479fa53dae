/**
 * age encryption and decryption.
 *
 * Whole process (issue 16 aim 2): `ferry encrypt` / `ferry decrypt` (bin/ferry, file to
 * /dev/null) against Debian's `age -e` / `age -d` on the same 512 MiB file
 * (FERRY_BENCH_AGE_MIB; 128 MiB with --quick), runs interleaved, median of 5 (3 with --quick):
 * seconds, CPU seconds (user + system, all threads) and peak RSS of each process; ferry both
 * with its default (worker threads beside the main thread) and with FERRY_AGE_WORKERS=0 (the
 * main thread alone). Peak RSS is the kernel's own figure for the child:
 * `/usr/bin/time -f %M` (getrusage of the waited-for child) when installed, otherwise
 * python3's `resource.getrusage(RUSAGE_CHILDREN)` around the child, otherwise VmHWM polled
 * from /proc every 2 ms (a lower bound; the note says which).
 *
 * In process (MiB/s): the pipeline the CLI uses (src/crypto/age/parallel.ts; its default and
 * the main thread alone), the sequential streams (createEncryptStream / createDecryptStream, the enclave's decryptor),
 * the pure-JS `age-encryption` package (typage, whole buffer, capped at 64 MiB because it is
 * slow) and the ceiling: node:crypto ChaCha20-Poly1305 over the same file's chunks with their
 * real nonces (tags verify), no I/O, on one thread and on two worker threads.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import { Decrypter, Encrypter } from 'age-encryption';
import { hkdf32 } from '../src/crypto/age/format.ts';
import {
  createDecryptStream,
  createEncryptStream,
  encrypt,
  generateX25519Identity,
  parseHeader,
  parseIdentity,
  parseRecipient,
  readFileKey,
} from '../src/crypto/age/index.ts';
import { decryptParallel, encryptParallel, fileSource } from '../src/crypto/age/parallel.ts';
import type { Bench, BenchRow } from './harness.ts';

const FERRY = join(import.meta.dirname, '../bin/ferry');

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const ENC_CHUNK = CHUNK + 16;

function hasAge(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v age'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function sink(): Writable {
  return new Writable({
    highWaterMark: 1 << 20,
    write(_c, _e, cb) {
      cb();
    },
  });
}

/** The shortest of `reps` timed runs, in seconds (the machine is shared: take the best). */
async function bestSeconds(reps: number, fn: () => unknown | Promise<unknown>): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t) / 1000);
  }
  return best;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// --- whole-process runs with the child's peak RSS ---

type RssMethod = 'time' | 'python' | 'proc';

function rssMethod(): RssMethod {
  if (existsSync('/usr/bin/time')) return 'time';
  try {
    execFileSync('python3', ['-c', 'import resource'], { stdio: 'ignore' });
    return 'python';
  } catch {
    return 'proc';
  }
}

const RSS_NOTE: Record<RssMethod, string> = {
  time: 'peak RSS: /usr/bin/time %M (getrusage of the child)',
  python: 'peak RSS: getrusage(RUSAGE_CHILDREN) of a python3 wrapper around the child',
  proc: 'peak RSS: VmHWM polled every 2 ms (a lower bound)',
};

const PY_WRAPPER =
  'import resource,subprocess,sys\n' +
  'r=subprocess.run(sys.argv[2:],stdout=subprocess.DEVNULL)\n' +
  'open(sys.argv[1],"w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n' +
  'sys.exit(r.returncode)';

/** Runs `cmd args` to completion: wall seconds (spawn to exit) and its peak RSS in MiB. */
async function runMeasured(
  method: RssMethod,
  dir: string,
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ seconds: number; rssMiB: number; anonMiB: number; cpu: number | null }> {
  const rssFile = join(dir, 'rss.txt');
  rmSync(rssFile, { force: true });
  const [file, argv] =
    method === 'time'
      ? ['/usr/bin/time', ['-f', '%M %U %S', '-o', rssFile, cmd, ...args]]
      : method === 'python'
        ? ['python3', ['-c', PY_WRAPPER, rssFile, cmd, ...args]]
        : [cmd, args];
  const t = performance.now();
  const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  // Polled every 2 ms: VmHWM (for the 'proc' method) and the private part of the RSS,
  // RssAnon (the rest, RssFile, is mostly the executable's shared, clean pages: ~42 MiB of
  // Node's binary). The measured process is the child, or the wrapper's child.
  let hwm = 0;
  let anon = 0;
  const pids = (): number[] => {
    if (method === 'proc') return [child.pid!];
    try {
      return readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .map(Number);
    } catch {
      return [];
    }
  };
  const poll = setInterval(() => {
    for (const pid of pids()) {
      try {
        const st = readFileSync(`/proc/${pid}/status`, 'utf8');
        hwm = Math.max(hwm, Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0));
        anon = Math.max(anon, Number(/RssAnon:\s+(\d+)/.exec(st)?.[1] ?? 0));
      } catch {
        // exited
      }
    }
  }, 2);
  const status = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  const seconds = (performance.now() - t) / 1000;
  clearInterval(poll);
  if (status !== 0) throw new Error(`bench: ${cmd} ${args.join(' ')} failed (${status}): ${stderr}`);
  const fields = method === 'proc' ? [] : readFileSync(rssFile, 'utf8').trim().split('\n').pop()!.split(' ');
  const kib = method === 'proc' ? hwm : Number(fields[0]);
  // CPU seconds of the child (every thread), from /usr/bin/time only.
  const cpu = method === 'time' ? Number(fields[1]) + Number(fields[2]) : null;
  return { seconds, rssMiB: kib / 1024, anonMiB: anon / 1024, cpu };
}

// --- the in-process ceiling: node:crypto over the file's real chunks ---

type Ceiling = { key: Buffer; data: SharedArrayBuffer; offset: number; length: number; decrypt: boolean };

/** The payload key and payload bytes of an age file (read into shared memory). */
function payloadOf(ctPath: string, identityText: string): Promise<Ceiling> {
  const fd = openSync(ctPath, 'r');
  const head = Buffer.alloc(64 * 1024);
  readSync(fd, head, 0, head.length, 0);
  return readFileKey([parseIdentity(identityText)], head).then((fileKey) => {
    const size = parseHeader(head).header.size;
    const key = Buffer.from(hkdf32(fileKey, head.subarray(size, size + 16), 'payload'));
    const all = readFileSync(ctPath);
    const data = new SharedArrayBuffer(all.length - size - 16);
    Buffer.from(data).set(all.subarray(size + 16));
    return { key, data, offset: 0, length: data.byteLength, decrypt: true };
  });
}

/** Worker (and one-thread) body: seals or opens chunks [from, to) of the payload, in order. */
const CEILING_JS = `
const { createCipheriv, createDecipheriv } = require('node:crypto');
function run(c, from, to) {
  const buf = Buffer.from(c.data);
  const iv = Buffer.alloc(12);
  const size = c.decrypt ? ${ENC_CHUNK} : ${CHUNK};
  const n = Math.ceil(c.length / size);
  for (let i = from; i < to; i++) {
    const chunk = buf.subarray(i * size, Math.min((i + 1) * size, c.length));
    iv.writeUInt32BE(i, 7);
    iv[11] = i === n - 1 ? 1 : 0;
    let out;
    if (c.decrypt) {
      const d = createDecipheriv('chacha20-poly1305', c.key, iv, { authTagLength: 16 });
      d.setAuthTag(chunk.subarray(chunk.length - 16));
      out = d.update(chunk.subarray(0, chunk.length - 16));
      d.final();
    } else {
      const e = createCipheriv('chacha20-poly1305', c.key, iv, { authTagLength: 16 });
      out = e.update(chunk);
      e.final();
      e.getAuthTag();
    }
    // As the pipeline does: free the output now rather than at the next GC.
    if (out.byteOffset === 0 && out.byteLength === out.buffer.byteLength) out.buffer.transfer(0);
  }
}
`;
const runCeiling = new Function('require', `${CEILING_JS}; return run;`)(
  (await import('node:module')).createRequire(import.meta.url),
) as (c: Ceiling, from: number, to: number) => void;

/** Seconds to seal/open every chunk on `threads` threads (1: this thread; more: workers). */
async function ceilingSeconds(c: Ceiling, threads: number): Promise<number> {
  const n = Math.ceil(c.length / (c.decrypt ? ENC_CHUNK : CHUNK));
  if (threads === 1) {
    const t = performance.now();
    runCeiling(c, 0, n);
    return (performance.now() - t) / 1000;
  }
  const workers = Array.from({ length: threads }, (_, i) => {
    const from = Math.floor((n * i) / threads);
    const to = Math.floor((n * (i + 1)) / threads);
    return new Worker(
      `${CEILING_JS}
const { parentPort, workerData } = require('node:worker_threads');
parentPort.once('message', () => { run(workerData.c, workerData.from, workerData.to); parentPort.postMessage('done'); });`,
      { eval: true, workerData: { c, from, to } },
    );
  });
  // Started and idle: the clock covers only the work.
  await Promise.all(workers.map((w) => new Promise((r) => w.once('online', r))));
  const t = performance.now();
  const done = workers.map((w) => new Promise((r) => w.once('message', r)));
  for (const w of workers) w.postMessage('go');
  await Promise.all(done);
  const s = (performance.now() - t) / 1000;
  await Promise.all(workers.map((w) => w.terminate()));
  return s;
}

const bench: Bench = async ({ quick, log }) => {
  const reps = quick ? 3 : 5;
  const size = Number(process.env.FERRY_BENCH_AGE_MIB ?? (quick ? 128 : 512)) * MiB;
  const jsSize = Math.min(size, quick ? 32 * MiB : 64 * MiB);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-age-bench-'));
  const rows: BenchRow[] = [];
  const TYPAGE = 'age-encryption (pure JS)';
  const mib = `${size / MiB} MiB`;
  const row = (
    group: string,
    name: string,
    bytes: number,
    seconds: number,
    note: string,
    baseline?: string,
  ) => {
    const value = bytes / MiB / seconds;
    log(`${group} ${name}: ${value.toFixed(0)} MiB/s (${bytes / MiB} MiB)`);
    rows.push({ group, name, value, unit: 'MiB/s', baseline, note });
    return value;
  };
  try {
    const { identity, recipient } = generateX25519Identity();
    const keyPath = join(dir, 'key.txt');
    writeFileSync(keyPath, `${identity}\n`);
    const plainPath = join(dir, 'plain.bin');
    const ctPath = join(dir, 'cipher.age');
    const block = randomBytes(MiB);
    await pipeline(
      Readable.from(
        (function* () {
          for (let i = 0; i < size / MiB; i++) yield block;
        })(),
      ),
      createWriteStream(plainPath),
    );
    // The decrypt input, made untimed.
    await pipeline(
      createReadStream(plainPath, { highWaterMark: MiB }),
      createEncryptStream([parseRecipient(recipient)]),
      createWriteStream(ctPath),
    );

    // --- whole process: ferry vs age, interleaved, median of `reps` ---
    if (hasAge()) {
      const method = rssMethod();
      const cmds = {
        'ferry decrypt': [FERRY, ['decrypt', '-i', keyPath, '-o', '/dev/null', ctPath]],
        'age -d': ['age', ['-d', '-i', keyPath, '-o', '/dev/null', ctPath]],
        'ferry encrypt': [FERRY, ['encrypt', '-r', recipient, '-o', '/dev/null', plainPath]],
        'age -e': ['age', ['-e', '-r', recipient, '-o', '/dev/null', plainPath]],
      } as Record<string, [string, string[], Record<string, string>?]>;
      // The main thread alone as well (no worker threads: less memory, more wall time).
      const POOL = 'no workers';
      cmds[`ferry decrypt (${POOL})`] = [FERRY, cmds['ferry decrypt'][1], { FERRY_AGE_WORKERS: '0' }];
      cmds[`ferry encrypt (${POOL})`] = [FERRY, cmds['ferry encrypt'][1], { FERRY_AGE_WORKERS: '0' }];
      // FERRY_BENCH_AGE_BEFORE=/other/checkout/bin/ferry adds that build's rows (a before/after).
      const before = process.env.FERRY_BENCH_AGE_BEFORE;
      if (before) {
        cmds['ferry decrypt (before)'] = [before, cmds['ferry decrypt'][1]];
        cmds['ferry encrypt (before)'] = [before, cmds['ferry encrypt'][1]];
      }
      const got: Record<string, { seconds: number[]; rss: number[]; anon: number[]; cpu: number[] }> = {};
      for (const name of Object.keys(cmds)) got[name] = { seconds: [], rss: [], anon: [], cpu: [] };
      // One untimed run of each (page cache, Node's compile cache), then `reps` rounds.
      for (const [cmd, args, env] of Object.values(cmds)) await runMeasured(method, dir, cmd, args, env);
      for (let i = 0; i < reps; i++) {
        for (const [name, [cmd, args, env]] of Object.entries(cmds)) {
          const r = await runMeasured(method, dir, cmd, args, env);
          got[name].seconds.push(r.seconds);
          got[name].rss.push(r.rssMiB);
          got[name].anon.push(r.anonMiB);
          if (r.cpu !== null) got[name].cpu.push(r.cpu);
        }
      }
      for (const [op, ours, theirs] of [
        ['decrypt', 'ferry decrypt', 'age -d'],
        ['encrypt', 'ferry encrypt', 'age -e'],
      ]) {
        const group = `age ${op}, whole process (${mib})`;
        const names = [ours, theirs, `${ours} (${POOL})`, ...(before ? [`${ours} (before)`] : [])];
        for (const name of names) {
          const sec = median(got[name].seconds);
          const rss = Math.max(...got[name].rss);
          const cpu = got[name].cpu.length > 0 ? median(got[name].cpu) : null;
          log(
            `${group} ${name}: ${sec.toFixed(2)} s${cpu === null ? '' : `, CPU ${cpu.toFixed(2)} s`}, peak ${rss.toFixed(0)} MiB`,
          );
          rows.push({
            group,
            name,
            value: sec,
            unit: 's',
            baseline: name === theirs ? undefined : theirs,
            note: `file -> /dev/null, median of ${reps} (runs: ${got[name].seconds.map((x) => x.toFixed(2)).join(' ')}); ${(size / MiB / 1024 / sec).toFixed(2)} GiB/s; load average ${loadavg()[0].toFixed(1)}; aim: ratio <= 1`,
          });
        }
        if (got[ours].cpu.length > 0) {
          for (const name of names) {
            rows.push({
              group: `${group} CPU`,
              name,
              value: median(got[name].cpu),
              unit: 's',
              baseline: name === theirs ? undefined : theirs,
              note: `user + system of every thread, /usr/bin/time, median of ${reps}`,
            });
          }
        }
        for (const name of names) {
          rows.push({
            group: `${group} peak RSS`,
            name,
            value: Math.max(...got[name].rss),
            unit: 'MiB',
            baseline: name === theirs ? undefined : theirs,
            note: `highest of ${reps} runs; ${RSS_NOTE[method]}${name === ours ? '; aim < 64 MiB' : ''}`,
          });
        }
        for (const name of names) {
          rows.push({
            group: `${group} peak private RSS`,
            name,
            value: Math.max(...got[name].anon),
            unit: 'MiB',
            baseline: name === theirs ? undefined : theirs,
            note: `RssAnon polled every 2 ms (a lower bound), highest of ${reps} runs: the RSS without the executable's shared file pages`,
          });
        }
      }
    } else {
      log('age CLI not installed: whole-process rows skipped');
    }

    // --- in process ---
    const warm = await encrypt([parseRecipient(recipient)], randomBytes(16 * MiB));
    await pipeline(Readable.from([warm]), createDecryptStream([parseIdentity(identity)]), sink());
    await pipeline(Readable.from([warm]), createEncryptStream([parseRecipient(recipient)]), sink());
    const nullSink = async () => {};
    const CEIL1 = 'node:crypto ChaCha20-Poly1305, 1 thread (ceiling)';

    // The CLI's pipeline: its default (main thread and workers) and the main thread alone.
    const pipelineRows = async (op: 'encrypt' | 'decrypt'): Promise<number> => {
      let best = 0;
      for (const [label, opts] of [
        ['ours, pipeline (CLI default)', {}],
        ['ours, pipeline, main thread alone', { workers: 0 }],
      ] as const) {
        const sec = await bestSeconds(reps, async () => {
          const fh = await open(op === 'encrypt' ? plainPath : ctPath, 'r');
          try {
            if (op === 'encrypt')
              await encryptParallel([parseRecipient(recipient)], fileSource(fh), nullSink, opts);
            else await decryptParallel([parseIdentity(identity)], fileSource(fh), nullSink, opts);
          } finally {
            await fh.close();
          }
        });
        best = Math.max(
          best,
          row(`age ${op}`, label, size, sec, `file -> null sink, best of ${reps}`, CEIL1),
        );
      }
      return best;
    };
    const encParV = await pipelineRows('encrypt');
    const encSec = await bestSeconds(reps, () =>
      pipeline(
        createReadStream(plainPath, { highWaterMark: MiB }),
        createEncryptStream([parseRecipient(recipient)]),
        sink(),
      ),
    );
    row('age encrypt', 'ours, sequential stream', size, encSec, `file -> sink, best of ${reps}`, CEIL1);

    const decParV = await pipelineRows('decrypt');
    const decSec = await bestSeconds(reps, () =>
      pipeline(
        createReadStream(ctPath, { highWaterMark: MiB }),
        createDecryptStream([parseIdentity(identity)]),
        sink(),
      ),
    );
    row(
      'age decrypt',
      'ours, sequential stream (enclave path)',
      size,
      decSec,
      `file -> sink, best of ${reps}`,
      CEIL1,
    );

    // Baseline: typage, whole buffers in memory (it has no native AEAD), on jsSize bytes.
    const jsPlain = new Uint8Array(jsSize);
    for (let o = 0; o < jsSize; o += MiB) jsPlain.set(block.subarray(0, Math.min(MiB, jsSize - o)), o);
    const e = new Encrypter();
    e.addRecipient(recipient);
    let jsCt: Uint8Array = new Uint8Array(0);
    const jsEnc = await bestSeconds(2, async () => {
      jsCt = await e.encrypt(jsPlain);
    });
    row('age encrypt', TYPAGE, jsSize, jsEnc, 'in memory, whole buffer, best of 2', CEIL1);
    const d = new Decrypter();
    d.addIdentity(identity);
    let back: Uint8Array = new Uint8Array(0);
    const jsDec = await bestSeconds(2, async () => {
      back = await d.decrypt(jsCt);
    });
    row('age decrypt', TYPAGE, jsSize, jsDec, 'in memory, whole buffer, best of 2', CEIL1);
    if (back.length !== jsSize) throw new Error('bench: typage round trip failed');

    // Ceiling: the same chunks with their real nonces, no I/O, on 1 and 2 threads.
    const dec = await payloadOf(ctPath, identity);
    const plainData = new SharedArrayBuffer(size);
    Buffer.from(plainData).set(readFileSync(plainPath));
    const enc: Ceiling = { key: dec.key, data: plainData, offset: 0, length: size, decrypt: false };
    for (const [group, c, ours] of [
      ['age encrypt', enc, encParV],
      ['age decrypt', dec, decParV],
    ] as const) {
      let one = Number.POSITIVE_INFINITY;
      let two = Number.POSITIVE_INFINITY;
      for (let i = 0; i < reps; i++) {
        one = Math.min(one, await ceilingSeconds(c, 1));
        two = Math.min(two, await ceilingSeconds(c, 2));
      }
      const v1 = size / MiB / one;
      const v2 = size / MiB / two;
      rows.push({
        group,
        name: CEIL1,
        value: v1,
        unit: 'MiB/s',
        note: `64 KiB chunks of the same file, real nonces, no I/O, best of ${reps}; ours (the faster pipeline row) = ${((100 * ours) / v1).toFixed(0)}% of it`,
      });
      rows.push({
        group,
        name: 'node:crypto ChaCha20-Poly1305, 2 worker threads (ceiling)',
        value: v2,
        unit: 'MiB/s',
        baseline: CEIL1,
        note: `half the chunks each, timed from go to both done, best of ${reps}; ours (the faster pipeline row) = ${((100 * ours) / v2).toFixed(0)}% of it`,
      });
      log(`${group} ceiling: ${v1.toFixed(0)} MiB/s on 1 thread, ${v2.toFixed(0)} MiB/s on 2`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
};

export default bench;
