/**
 * `ferry keygen / encrypt / decrypt` as processes, and interoperability with Debian's age
 * CLI (/usr/bin/age, age-keygen) in both directions: binary and armored files, keys made by
 * each side used by the other, multi-chunk payloads. Also the CLI's failure behaviour: exit
 * codes, error codes in --json, and no partial plaintext left behind with -o.
 */
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { requireTool } from './helpers/tools.ts';

const FERRY = join(import.meta.dirname, '../bin/ferry');
const dir = mkdtempSync(join(tmpdir(), 'ferry-age-cli-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

type Run = SpawnSyncReturns<Buffer>;
function ferry(args: string[], input?: Uint8Array, env: Record<string, string> = {}): Run {
  return spawnSync(FERRY, args, { cwd: dir, input, maxBuffer: 1 << 28, env: { ...process.env, ...env } });
}
function tool(cmd: string, args: string[], input?: Uint8Array): Run {
  return spawnSync(cmd, args, { cwd: dir, input, maxBuffer: 1 << 28 });
}
function ok(r: Run, what: string): Buffer {
  assert.equal(r.status, 0, `${what} failed (${r.status}): ${r.stderr.toString()}`);
  return r.stdout;
}
function json(r: Run): Record<string, unknown> {
  const lines = r.stdout.toString().trim().split('\n');
  assert.equal(lines.length, 1, 'exactly one JSON line');
  return JSON.parse(lines[0]);
}
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function ferryKey(name: string): { path: string; recipient: string } {
  const r = ferry(['keygen', '-o', name, '--json']);
  const out = json(r);
  assert.equal(r.status, 0);
  assert.deepEqual(Object.keys(out).sort(), ['output', 'recipient']);
  return { path: name, recipient: out.recipient as string };
}

function ageKey(name: string): { path: string; recipient: string } {
  ok(tool('age-keygen', ['-o', name]), 'age-keygen');
  const recipient = ok(tool('age-keygen', ['-y', name]), 'age-keygen -y')
    .toString()
    .trim();
  return { path: name, recipient };
}

const plaintext = randomBytes(3 * 65536 + 1234);
writeFileSync(join(dir, 'plain.bin'), plaintext);

test('keygen prints an age-keygen style identity file', () => {
  const r = ferry(['keygen']);
  const text = ok(r, 'keygen').toString();
  assert.match(
    text,
    /^# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)\n# public key: (age1[a-z0-9]{58})\nAGE-SECRET-KEY-1[A-Z0-9]{58}\n$/,
  );
  const recipient = text.split('\n')[1].slice('# public key: '.length);
  assert.equal(r.stderr.toString(), `Public key: ${recipient}\n`);
  // -o with --json never prints the secret key.
  const j = ferry(['keygen', '-o', 'k-json.txt', '--json']);
  assert.equal(j.status, 0);
  assert.ok(!j.stdout.toString().includes('AGE-SECRET-KEY'));
  assert.ok(readFileSync(join(dir, 'k-json.txt'), 'utf8').includes('AGE-SECRET-KEY-1'));
  // Never overwrites an identity.
  const again = ferry(['keygen', '-o', 'k-json.txt', '--json']);
  assert.equal(again.status, 2);
  // -y converts to the recipient.
  assert.equal(
    ok(ferry(['keygen', '-y', 'k-json.txt']), '-y')
      .toString()
      .trim(),
    json(j).recipient,
  );
});

test('interop: age encrypts to a ferry key, ferry decrypts (binary and armored)', (t) => {
  if (!requireTool(t, 'age')) return;
  const k = ferryKey('ferry-key-1.txt');
  const bin = ok(tool('age', ['-e', '-r', k.recipient, 'plain.bin']), 'age -e');
  assert.deepEqual(ok(ferry(['decrypt', '-i', k.path], bin), 'ferry decrypt'), plaintext);
  const armored = ok(tool('age', ['-e', '-a', '-r', k.recipient, 'plain.bin']), 'age -e -a');
  assert.match(armored.toString('latin1'), /^-----BEGIN AGE ENCRYPTED FILE-----/);
  assert.deepEqual(ok(ferry(['decrypt', '-i', k.path], armored), 'ferry decrypt armored'), plaintext);
  // age's own identity file, read by ferry.
  const a = ageKey('age-key-1.txt');
  const bin2 = ok(tool('age', ['-e', '-r', a.recipient, '-r', k.recipient, 'plain.bin']), 'age -e');
  assert.deepEqual(
    ok(ferry(['decrypt', '-i', a.path], bin2), 'ferry decrypt with an age-keygen key'),
    plaintext,
  );
});

test('interop: ferry encrypts, age decrypts (binary, armored, -R file, age-keygen keys)', (t) => {
  if (!requireTool(t, 'age')) return;
  const a = ageKey('age-key-2.txt');
  const k = ferryKey('ferry-key-2.txt');
  writeFileSync(join(dir, 'recips.txt'), `# recipients\n${a.recipient}\n\n${k.recipient}\n`);
  const r = ferry(['encrypt', '-R', 'recips.txt', '-o', 'out.age', '--json', 'plain.bin']);
  const j = json(r);
  assert.equal(r.status, 0);
  const file = readFileSync(join(dir, 'out.age'));
  assert.equal(j.bytes, file.length);
  assert.equal(j.sha256, sha256(file));
  assert.deepEqual(ok(tool('age', ['-d', '-i', a.path, 'out.age']), 'age -d'), plaintext);
  assert.deepEqual(ok(tool('age', ['-d', '-i', k.path, 'out.age']), 'age -d ferry key'), plaintext);
  const armored = ok(ferry(['encrypt', '-a', '-r', a.recipient], plaintext), 'ferry encrypt -a');
  assert.match(armored.toString('latin1'), /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
  assert.deepEqual(ok(tool('age', ['-d', '-i', a.path], armored), 'age -d armored'), plaintext);
  // Empty input.
  const empty = ok(ferry(['encrypt', '-r', a.recipient], new Uint8Array(0)), 'encrypt empty');
  assert.equal(ok(tool('age', ['-d', '-i', a.path], empty), 'age -d empty').length, 0);
});

test('decrypt failures: exit 3 with the failure code, and no file left with -o', () => {
  const k = ferryKey('ferry-key-3.txt');
  const other = ferryKey('ferry-key-4.txt');
  const ct = ok(ferry(['encrypt', '-r', k.recipient, 'plain.bin']), 'encrypt');
  const before = readdirSync(dir).sort();
  const cases: [string, Uint8Array, string][] = [
    ['no match', ct, 'ferry-key-4.txt'],
    ['payload', Buffer.concat([ct.subarray(0, ct.length - 10), Buffer.from('0123456789')]), k.path],
    ['truncated', ct.subarray(0, ct.length - 2000), k.path],
    [
      'header',
      Buffer.from(ct.toString('latin1').replace('age-encryption.org/v1', 'age-encryption.org/v2'), 'latin1'),
      k.path,
    ],
    ['armor', Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----\nnot base64!\n'), k.path],
  ];
  const expected: Record<string, string[]> = {
    'no match': ['AGE_NO_MATCH'],
    payload: ['AGE_PAYLOAD_INVALID'],
    truncated: ['AGE_PAYLOAD_INVALID', 'AGE_PAYLOAD_TRUNCATED'],
    header: ['AGE_VERSION_UNSUPPORTED'],
    armor: ['AGE_ARMOR_INVALID'],
  };
  for (const [name, input, id] of cases) {
    const r = ferry(['decrypt', '-i', id, '-o', 'plain.out', '--json'], input);
    assert.equal(r.status, 3, `${name}: exit code`);
    const err = json(r).error as { code: string };
    assert.ok(expected[name].includes(err.code), `${name}: got ${err.code}`);
    assert.deepEqual(readdirSync(dir).sort(), before, `${name}: no output or temp file left`);
  }
  // Without --json the code is on stderr.
  const r = ferry(['decrypt', '-i', other.path], ct);
  assert.equal(r.status, 3);
  assert.match(r.stderr.toString(), /\[AGE_NO_MATCH\]/);
});

test('usage errors: bad recipient or identity exit 2; missing input exits 1', () => {
  const bad = ferry(['encrypt', '-r', 'age1notarecipient', '--json', '-o', 'x.age'], Buffer.from('x'));
  assert.equal(bad.status, 2);
  assert.equal((json(bad).error as { code: string }).code, 'AGE_INVALID_RECIPIENT');
  writeFileSync(join(dir, 'bad-id.txt'), '# comment\nAGE-SECRET-KEY-1NOTAKEY\n');
  const badId = ferry(['decrypt', '-i', 'bad-id.txt', '--json', '-o', 'x.out'], Buffer.from('x'));
  assert.equal(badId.status, 2);
  const e = json(badId).error as { code: string; message: string };
  assert.equal(e.code, 'AGE_INVALID_IDENTITY');
  assert.ok(!JSON.stringify(e).includes('NOTAKEY'), 'the identity text is not echoed');
  const noR = ferry(['encrypt', '--json', '-o', 'x.age'], Buffer.from('x'));
  assert.equal(noR.status, 2);
  assert.equal((json(noR).error as { code: string }).code, 'USAGE_MISSING_ARGUMENT');
  const k = ferryKey('ferry-key-5.txt');
  const jsonNoOut = ferry(['encrypt', '-r', k.recipient, '--json'], Buffer.from('x'));
  assert.equal(jsonNoOut.status, 2);
  const missing = ferry(['encrypt', '-r', k.recipient, '--json', '-o', 'y.age', 'does-not-exist']);
  assert.equal(missing.status, 1);
  assert.equal((json(missing).error as { code: string }).code, 'IO_READ_FAILED');
  const noI = ferry(['decrypt'], Buffer.from('x'));
  assert.equal(noI.status, 2);
});

test('binary ciphertext is refused on a terminal; armor is allowed; -o /dev/null works', (t) => {
  const k = ferryKey('ferry-key-6.txt');
  const toNull = ferry(
    ['decrypt', '-i', k.path, '-o', '/dev/null', '--json'],
    ok(ferry(['encrypt', '-r', k.recipient], plaintext), 'enc'),
  );
  assert.equal(toNull.status, 0);
  assert.equal(json(toNull).bytes, plaintext.length);
  assert.equal(json(toNull).sha256, sha256(plaintext));
  if (!requireTool(t, 'script')) return;
  // script(1) gives the command a pseudo-terminal as stdout.
  const tty = tool('script', ['-qec', `${FERRY} encrypt -r ${k.recipient} plain.bin`, '/dev/null']);
  assert.equal(tty.status, 2);
  assert.match(tty.stdout.toString(), /refusing to write binary ciphertext to a terminal/);
  const armored = tool('script', [
    '-qec',
    `${FERRY} encrypt -a -r ${k.recipient} ferry-key-6.txt`,
    '/dev/null',
  ]);
  assert.equal(armored.status, 0);
  assert.match(armored.stdout.toString(), /-----BEGIN AGE ENCRYPTED FILE-----/);
});

test('keygen --pq: a hybrid identity whose recipient round-trips through encrypt/decrypt', () => {
  const r = ferry(['keygen', '--pq', '-o', 'pq-key.txt', '--json']);
  assert.equal(r.status, 0);
  const recipient = json(r).recipient as string;
  assert.match(recipient, /^age1pq1/);
  assert.equal(
    ok(ferry(['keygen', '-y', 'pq-key.txt']), '-y')
      .toString()
      .trim(),
    recipient,
  );
  const ct = ok(ferry(['encrypt', '-r', recipient], plaintext), 'encrypt to age1pq1');
  assert.deepEqual(ok(ferry(['decrypt', '-i', 'pq-key.txt'], ct), 'decrypt with PQ identity'), plaintext);
});

// --- the parallel pipeline of ferry encrypt/decrypt (issue 16): boundaries and the attacker ---

test('interop at chunk boundaries, both directions, file and stdin input, through -o and stdout', (t) => {
  if (!requireTool(t, 'age')) return;
  const a = ageKey('age-key-b.txt');
  const sizes = [0, 1, 65535, 65536, 65537, 8 * 65536, 8 * 65536 + 1, 5 * 1024 * 1024 + 3];
  for (const n of sizes) {
    const pt = randomBytes(n);
    writeFileSync(join(dir, 'b.bin'), pt);
    // ferry encrypts (file in, -o out; and stdin in, stdout out); age decrypts.
    ok(ferry(['encrypt', '-r', a.recipient, '-o', 'b.age', 'b.bin']), `encrypt ${n}`);
    assert.deepEqual(ok(tool('age', ['-d', '-i', a.path, 'b.age']), `age -d ${n}`), pt, `${n}: ferry -> age`);
    const viaStdin = ok(ferry(['encrypt', '-r', a.recipient], pt), `encrypt stdin ${n}`);
    assert.deepEqual(ok(tool('age', ['-d', '-i', a.path], viaStdin), `age -d stdin ${n}`), pt);
    // age encrypts; ferry decrypts (file in, -o out; and stdin in, stdout out).
    ok(tool('age', ['-e', '-r', a.recipient, '-o', 'b2.age', 'b.bin']), `age -e ${n}`);
    ok(ferry(['decrypt', '-i', a.path, '-o', 'b.out', 'b2.age']), `decrypt ${n}`);
    assert.deepEqual(readFileSync(join(dir, 'b.out')), pt, `${n}: age -> ferry`);
    const ct = readFileSync(join(dir, 'b2.age'));
    assert.deepEqual(ok(ferry(['decrypt', '-i', a.path], ct), `decrypt stdin ${n}`), pt);
  }
  for (const f of ['b.bin', 'b.age', 'b2.age', 'b.out']) rmSync(join(dir, f));
});

test('a tampered chunk k or a truncated file: exit 3, stdout ends after chunk k-1, no file with -o', () => {
  const k = ferryKey('ferry-key-t.txt');
  const n = 40;
  const pt = randomBytes(n * 65536 + 999);
  const ct = ok(ferry(['encrypt', '-r', k.recipient], pt), 'encrypt');
  const payloadStart = ct.length - (n * 65552 + 999 + 16);
  const before = readdirSync(dir).sort();
  for (const chunk of [0, 1, 8, 9, 39, 40]) {
    const bad = Buffer.from(ct);
    bad[payloadStart + chunk * 65552 + 100] ^= 0x80;
    // On the main thread alone and with worker threads.
    const out = ferry(['decrypt', '-i', k.path], bad, { FERRY_AGE_WORKERS: chunk % 2 ? '0' : '3' });
    assert.equal(out.status, 3, `chunk ${chunk}: exit code`);
    assert.match(out.stderr.toString(), /\[AGE_PAYLOAD_INVALID\]/);
    assert.equal(out.stdout.length, chunk * 65536, `chunk ${chunk}: plaintext bytes released`);
    assert.deepEqual(out.stdout, pt.subarray(0, chunk * 65536));
    const toFile = ferry(['decrypt', '-i', k.path, '-o', 'tampered.out', '--json'], bad);
    assert.equal(toFile.status, 3);
    assert.equal((json(toFile).error as { code: string }).code, 'AGE_PAYLOAD_INVALID');
    assert.deepEqual(readdirSync(dir).sort(), before, `chunk ${chunk}: no output or temp file left`);
  }
  // Cut at a chunk boundary (no final chunk), and inside the last chunk; input from a file too.
  const cuts: [Buffer, string][] = [
    [ct.subarray(0, payloadStart + 20 * 65552), 'AGE_PAYLOAD_TRUNCATED'],
    [ct.subarray(0, ct.length - 10), 'AGE_PAYLOAD_INVALID'],
  ];
  for (const [cut, want] of cuts) {
    writeFileSync(join(dir, 'cut.age'), cut);
    const r = ferry(['decrypt', '-i', k.path, '-o', 'cut.out', '--json', 'cut.age']);
    assert.equal(r.status, 3);
    assert.equal((json(r).error as { code: string }).code, want);
    assert.ok(!readdirSync(dir).some((f) => f.startsWith('cut.out') || f.includes('.cut.out.')));
    rmSync(join(dir, 'cut.age'));
  }
});

test('FERRY_AGE_WORKERS: the worker path round-trips with age; a bad value is a usage error', (t) => {
  if (!requireTool(t, 'age')) return;
  const a = ageKey('age-key-p.txt');
  const pt = randomBytes(3 * 1024 * 1024 + 11);
  const env = { FERRY_AGE_WORKERS: '4' };
  const ct = ok(ferry(['encrypt', '-r', a.recipient], pt, env), 'encrypt with workers');
  assert.deepEqual(ok(tool('age', ['-d', '-i', a.path], ct), 'age -d'), pt);
  const ct2 = ok(tool('age', ['-e', '-r', a.recipient], pt), 'age -e');
  assert.deepEqual(ok(ferry(['decrypt', '-i', a.path], ct2, env), 'decrypt with workers'), pt);
  const bad = ferry(['decrypt', '-i', a.path, '--json', '-o', 'p.out'], ct2, {
    FERRY_AGE_WORKERS: 'many',
  });
  assert.equal(bad.status, 2);
  assert.equal((json(bad).error as { code: string }).code, 'USAGE_INVALID_ARGUMENT');
});

test('a read error of the input is IO_READ_FAILED (exit 1) and leaves no output file', () => {
  const k = ferryKey('ferry-key-r.txt');
  mkdirSync(join(dir, 'a-dir'));
  const before = readdirSync(dir).sort();
  for (const args of [
    ['encrypt', '-r', k.recipient, '-o', 'r.age', '--json', 'a-dir'],
    ['decrypt', '-i', k.path, '-o', 'r.out', '--json', 'a-dir'],
  ]) {
    const r = ferry(args);
    assert.equal(r.status, 1, args[0]);
    assert.equal((json(r).error as { code: string }).code, 'IO_READ_FAILED');
    assert.deepEqual(readdirSync(dir).sort(), before, `${args[0]}: no output or temp file left`);
  }
  rmSync(join(dir, 'a-dir'), { recursive: true });
});

test('stdin redirected from a regular file (read in place, synchronously): both directions against age', (t) => {
  if (!requireTool(t, 'age')) return;
  const a = ageKey('age-key-s.txt');
  for (const n of [0, 65536, 8 * 65536 + 1, 3 * 1024 * 1024 + 5]) {
    const pt = randomBytes(n);
    writeFileSync(join(dir, 's.bin'), pt);
    const fromFile = (args: string[], file: string, env: Record<string, string> = {}): Run => {
      const fd = openSync(join(dir, file), 'r');
      try {
        return spawnSync(FERRY, args, {
          cwd: dir,
          stdio: [fd, 'pipe', 'pipe'],
          maxBuffer: 1 << 28,
          env: { ...process.env, ...env },
        });
      } finally {
        closeSync(fd);
      }
    };
    for (const workers of ['0', '2']) {
      const env = { FERRY_AGE_WORKERS: workers };
      ok(fromFile(['encrypt', '-r', a.recipient, '-o', 's.age'], 's.bin', env), `encrypt < file ${n}`);
      assert.deepEqual(
        ok(tool('age', ['-d', '-i', a.path, 's.age']), `age -d ${n}`),
        pt,
        `${n}: ferry -> age`,
      );
      ok(tool('age', ['-e', '-r', a.recipient, '-o', 's2.age', 's.bin']), `age -e ${n}`);
      assert.deepEqual(ok(fromFile(['decrypt', '-i', a.path], 's2.age', env), `decrypt < file ${n}`), pt);
    }
  }
  for (const f of ['s.bin', 's.age', 's2.age']) rmSync(join(dir, f));
});

test('SIGINT during a long encryption from a file (synchronous reads and writes): ABORTED, no output file', async () => {
  const k = ferryKey('ferry-key-i.txt');
  // 1 GiB of holes: cheap to make and to read, long enough to encrypt that the signal lands mid-way.
  const big = join(dir, 'big.bin');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, 1024 * 1024 * 1024);
  closeSync(fd);
  const before = readdirSync(dir).sort();
  const child = spawn(FERRY, ['encrypt', '-r', k.recipient, '-o', 'big.age', '--json', 'big.bin'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  // Once the temporary output exists, the pipeline is running.
  while (!readdirSync(dir).some((f) => f.startsWith('.big.age.ferry-'))) {
    await new Promise((r) => setTimeout(r, 2));
  }
  child.kill('SIGINT');
  const code = await exited;
  assert.notEqual(code, 0, 'the encryption was interrupted');
  assert.equal((JSON.parse(out.trim()).error as { code: string }).code, 'ABORTED');
  assert.deepEqual(readdirSync(dir).sort(), before, 'no output or temporary file left');
  rmSync(big);
});
