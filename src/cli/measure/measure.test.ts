import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkSoftwareIdentified, parsePolicy } from '../../attestation/policy.ts';
import { runtimeMeasurement } from '../../enclave/measure.ts';
import { toHex } from '../../kernel/index.ts';
import { runtimeReferenceValues } from '../../enclave/release.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TMP = mkdtempSync(join(tmpdir(), 'ferry-measure-cli-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

function ferry(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(join(ROOT, 'bin/ferry'), args, { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('measure runtime: the measurement, its reference values, the files, and a production policy that pins it', async () => {
  const policyOut = join(TMP, 'policy.json');
  const [j, text] = await Promise.all([
    ferry(['measure', 'runtime', '--policy-out', policyOut, '--json']),
    ferry(['measure', 'runtime']),
  ]);
  assert.equal(j.code, 0, j.stderr);
  assert.equal(j.stdout.trim().split('\n').length, 1);
  const out = JSON.parse(j.stdout);
  const m = await runtimeMeasurement();
  assert.equal(out.runtimeMeasurement, toHex(m));
  assert.deepEqual(out.referenceValues, runtimeReferenceValues(m));
  assert.equal(out.fileCount, out.files.length);
  const paths = out.files.map((f: { path: string }) => f.path);
  assert.ok(paths.includes('src/enclave/process.ts') && paths.includes('src/kernel/canonical.ts'));
  assert.equal(typeof out.published.matches, 'boolean');
  // The policy file is a policy document `--policy FILE` accepts: tpm2 only, production settings.
  const policy = parsePolicy(readFileSync(policyOut, 'utf8'));
  assert.deepEqual(policy.allowedKinds, ['tpm2']);
  assert.equal(policy.allowDebug, false);
  assert.deepEqual(policy.allowedTcbStatuses, ['UpToDate']);
  assert.deepEqual(policy.referenceValues, { tpm2: runtimeReferenceValues(m).tpm2 });
  assert.equal(checkSoftwareIdentified(policy, 'tpm2'), null);
  assert.equal(text.code, 0);
  assert.match(text.stdout, new RegExp(`runtime measurement: ${toHex(m)}`));
  assert.match(text.stdout, /tpm2 +referenceValues\.tpm2\.pcrs\.sha256\.23: +[0-9a-f]{64}/);
});

test('measure APP.wasm: the SHA-256 of the module; a file that is not WASM is refused', async () => {
  // The smallest valid module: header only, then a custom section so the bytes are ours.
  const wasm = Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0, 4, 3, 0x66, 0x65, 0x72]);
  const good = join(TMP, 'app.wasm');
  writeFileSync(good, wasm);
  const wat = join(TMP, 'app.wat');
  writeFileSync(wat, '(module)\n');
  const v2 = join(TMP, 'v2.wasm');
  writeFileSync(v2, Uint8Array.from([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0]));
  const empty = join(TMP, 'empty.wasm');
  writeFileSync(empty, new Uint8Array(0));
  const [ok, okText, text, version, none, missing, noArg] = await Promise.all([
    ferry(['measure', good, '--json']),
    ferry(['measure', good]),
    ferry(['measure', wat, '--json']),
    ferry(['measure', v2, '--json']),
    ferry(['measure', empty, '--json']),
    ferry(['measure', join(TMP, 'missing.wasm'), '--json']),
    ferry(['measure', '--json']),
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const expected = createHash('sha256').update(wasm).digest('hex');
  assert.deepEqual(JSON.parse(ok.stdout), { file: good, measurement: expected, size: wasm.length });
  assert.equal(okText.stdout.trim(), `${expected}  ${good}`);
  for (const r of [text, version, none]) {
    assert.equal(r.code, 2, r.stdout);
    assert.equal(JSON.parse(r.stdout).error.code, 'APP_NOT_WASM');
  }
  assert.equal(missing.code, 2);
  assert.equal(JSON.parse(missing.stdout).error.code, 'USAGE_INVALID_ARGUMENT');
  assert.equal(noArg.code, 2);
});
