/**
 * The node image end to end (issue 17): `ferry image build` twice gives byte-identical kernel,
 * initrd and command line; the initrd holds what it should and nothing to log in with;
 * `ferry image measure` predicts the PCRs; one real boot under QEMU (TCG) + OVMF + swtpm reads
 * the same PCRs and an event log whose every event is the predicted one. Slow (two builds of a
 * 40 MB initrd and a 30-40 s boot): e2e tier only. Needs apt-get/dpkg-deb (Debian 12) and, for
 * the boot, qemu-system-x86 + ovmf + swtpm (.ci/run installs them; in CI nothing is skipped).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { zstdDecompressSync } from 'node:zlib';
import { checkSoftwareIdentified, parsePolicy, policyHash } from '../src/attestation/index.ts';
import { computeRuntimeManifest } from '../src/enclave/index.ts';
import {
  BOOT_PCRS,
  bootImage,
  canBoot,
  IMAGE_FILES,
  parseEventLog,
  readCpio,
  replayEventLog,
} from '../src/image/index.ts';
import { toHex } from '../src/kernel/index.ts';
import { requireTool } from './helpers/tools.ts';

const ROOT = join(import.meta.dirname, '..');
const TMP = mkdtempSync(join(tmpdir(), 'ferry-image-e2e-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function ferry(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { code: number | null; out: string; err: string } {
  const r = spawnSync(join(ROOT, 'bin/ferry'), args, {
    encoding: 'utf8',
    env: { ...process.env, FERRY_HOME: join(TMP, 'home'), ...env },
    maxBuffer: 1 << 26,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const A = join(TMP, 'a');
const B = join(TMP, 'b');
let built: { kernel: string; initrd: string; cmdline: string; digest: string } | undefined;
let measured:
  | {
      events: { pcr: number; type: string; digest: string }[];
      pcrs: { sha256: Record<string, string> };
      policyOut: string;
    }
  | undefined;

test('image build: two builds give byte-identical kernel, initrd and command line', (t) => {
  if (!requireTool(t, 'apt-get') || !requireTool(t, 'dpkg-deb')) return;
  const cache = join(TMP, 'cache');
  const t0 = Date.now();
  const first = ferry(['image', 'build', '--out', A, '--cache', cache, '--json']);
  t.diagnostic(`first build (with download): ${Date.now() - t0} ms`);
  assert.equal(first.code, 0, first.err || first.out);
  const t1 = Date.now();
  const second = ferry(['image', 'build', '--out', B, '--cache', cache, '--json']);
  t.diagnostic(`second build: ${Date.now() - t1} ms`);
  assert.equal(second.code, 0, second.err || second.out);
  const a = JSON.parse(first.out);
  const b = JSON.parse(second.out);
  assert.deepEqual(Object.keys(a).sort(), ['cmdline', 'digest', 'initrd', 'kernel', 'out']);
  for (const k of ['kernel', 'initrd', 'cmdline', 'digest']) {
    assert.match(a[k], /^[0-9a-f]{64}$/);
    assert.equal(a[k], b[k], k);
  }
  for (const f of [IMAGE_FILES.kernel, IMAGE_FILES.initrd, IMAGE_FILES.cmdline]) {
    assert.ok(readFileSync(join(A, f)).equals(readFileSync(join(B, f))), `${f} differs between builds`);
  }
  assert.equal(sha256(readFileSync(join(A, IMAGE_FILES.kernel))), a.kernel);
  assert.equal(sha256(readFileSync(join(A, IMAGE_FILES.initrd))), a.initrd);
  assert.equal(sha256(readFileSync(join(A, IMAGE_FILES.cmdline))), a.cmdline);
  built = a;
});

test('image build: the initrd holds init, node, its libraries and the enclave runtime, read-only, and no shell', async (t) => {
  if (!built) return t.skip('no image was built');
  const records = readCpio(zstdDecompressSync(readFileSync(join(A, IMAGE_FILES.initrd))));
  const byPath = new Map(records.map((r) => [r.path, r]));
  const node = byPath.get('bin/node');
  assert.ok(node);
  assert.equal(
    sha256(node.data),
    sha256(readFileSync(join(ROOT, 'node_modules/node/bin/node'))),
    'node as npm ships it',
  );
  assert.ok(byPath.get('init'));
  for (const lib of ['libc.so.6', 'libstdc++.so.6', 'libgcc_s.so.1', 'libm.so.6', 'ld-linux-x86-64.so.2']) {
    assert.ok(byPath.has(`lib/x86_64-linux-gnu/${lib}`), lib);
  }
  const runtime = await computeRuntimeManifest(ROOT);
  for (const f of runtime.files)
    assert.equal(sha256(byPath.get(`ferry/${f.path}`)?.data ?? new Uint8Array()), f.sha256, f.path);
  for (const p of runtime.packages)
    assert.ok(byPath.has(`ferry/node_modules/${p.name}/package.json`), p.name);
  assert.equal(
    sha256(byPath.get('ferry/runtime-manifest.txt')?.data ?? new Uint8Array()),
    toHex(runtime.measurement),
  );
  const shells = ['sh', 'bash', 'dash', 'ash', 'busybox', 'login', 'getty', 'agetty', 'sshd', 'su'];
  for (const r of records) {
    assert.ok(!shells.includes(basename(r.path)), `${r.path} is in the image`);
    const kind = r.mode & 0o170000;
    if (kind === 0o100000 || kind === 0o040000) assert.equal(r.mode & 0o222, 0, `${r.path} is writable`);
    else
      assert.ok(
        kind === 0o120000 || (kind === 0o020000 && r.path === 'dev/console'),
        `${r.path}: unexpected kind`,
      );
    assert.deepEqual([r.uid, r.gid, r.mtime], [0, 0, 0], r.path);
  }
});

test('image measure: reference values, and a policy for dataset add --policy', (t) => {
  if (!built) return t.skip('no image was built');
  if (!requireTool(t, 'qemu-system-x86_64')) return; // the OVMF files come with the boot stack
  const r = ferry(['image', 'measure', A, '--json']);
  assert.equal(r.code, 0, r.err || r.out);
  const m = JSON.parse(r.out);
  assert.equal(m.image.digest, built.digest);
  assert.deepEqual(Object.keys(m.pcrs.sha256).sort(), BOOT_PCRS.map(String).sort());
  const policy = parsePolicy(readFileSync(m.policyOut, 'utf8'));
  assert.equal(toHex(policyHash(policy)), m.policyHash);
  assert.equal(checkSoftwareIdentified(policy, 'tpm2'), null);
  assert.deepEqual(policy.allowedKinds, ['tpm2']);
  for (const i of BOOT_PCRS)
    assert.deepEqual(policy.referenceValues.tpm2?.pcrs?.sha256?.[String(i)], [m.pcrs.sha256[String(i)]]);
  const other = ferry(['image', 'measure', A, '--cpus', '3', '--json']);
  assert.equal(other.code, 2);
  assert.equal(JSON.parse(other.out).error.code, 'IMAGE_NO_GOLDEN_VALUES');
  measured = m;
});

test('boot: the guest reads the predicted PCRs and logs exactly the predicted events', async (t) => {
  if (!measured) return t.skip('no image was measured');
  if (!canBoot()) {
    if (process.env.CI)
      throw new Error('qemu-system-x86_64, swtpm and ovmf are required in CI (.ci/run installs them)');
    return t.skip('QEMU, swtpm or OVMF missing: cannot boot');
  }
  const r = await bootImage({ dir: A, memoryMiB: 1024, cpus: 1, timeoutMs: 300_000 });
  t.diagnostic(
    `boot: first output ${r.times.firstOutput} ms, report ${r.times.report} ms, power off ${r.times.exit} ms`,
  );
  assert.ok(r.report, `no report on the console:\n${r.serial.slice(-2000)}`);
  assert.equal(r.exitCode, 0, 'the guest powered off');
  assert.equal(
    r.report.node,
    spawnSync(join(ROOT, 'node_modules/node/bin/node'), ['--version'], { encoding: 'utf8' }).stdout.trim(),
  );
  const manifest = JSON.parse(readFileSync(join(A, IMAGE_FILES.manifest), 'utf8'));
  assert.equal(r.report.runtimeMeasurement, manifest.runtimeMeasurement);
  for (const i of BOOT_PCRS) {
    assert.equal(r.report.pcrs.sha256[String(i)], measured.pcrs.sha256[String(i)], `PCR ${i}`);
  }
  assert.ok(r.report.eventLog);
  const log = parseEventLog(Buffer.from(r.report.eventLog, 'base64'));
  const replayed = replayEventLog(log);
  for (const i of BOOT_PCRS)
    assert.equal(replayed[String(i)], r.report.pcrs.sha256[String(i)], `replayed PCR ${i}`);
  for (const i of BOOT_PCRS) {
    assert.deepEqual(
      log.filter((e) => e.pcr === i).map((e) => e.digests.sha256),
      measured.events.filter((e) => e.pcr === i).map((e) => e.digest),
      `events of PCR ${i}`,
    );
  }
});
