import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireTool } from '../../../test/helpers/tools.ts';
import { encrypt, X25519Recipient } from '../../crypto/age/index.ts';
import { isFerryError, toHex } from '../../kernel/index.ts';
import { verifyEd25519 } from '../../net/index.ts';
import { createProfile, listProfiles, loadProfile, loadProfileSecrets } from '../../profile/index.ts';

const FERRY = fileURLToPath(new URL('../../../bin/ferry', import.meta.url));

function home(): string {
  return mkdtempSync(join(tmpdir(), 'ferry-profile-'));
}

test('create, load secrets, list; keys match the public parts', () => {
  const h = home();
  try {
    const p = createProfile(h, 'alice');
    const s = loadProfileSecrets(h, 'alice');
    assert.equal(s.profile.address, p.address);
    const sig = s.signer.sign(new Uint8Array([1]));
    assert.equal(verifyEd25519(Buffer.from(p.signingPublicKey, 'hex'), new Uint8Array([1]), sig), true);
    assert.equal(toHex(s.signer.keyId), p.signingPublicKey);
    assert.equal(s.ageIdentity.recipient.toString(), p.ageRecipient);
    createProfile(h, 'bob');
    assert.deepEqual(
      listProfiles(h).map((x) => x.name),
      ['alice', 'bob'],
    );
    assert.throws(
      () => createProfile(h, 'alice'),
      (e) => isFerryError(e, 'PROFILE_EXISTS'),
    );
    assert.throws(
      () => loadProfile(h, 'carol'),
      (e) => isFerryError(e, 'PROFILE_NOT_FOUND'),
    );
    for (const bad of ['', 'A', '../x', 'a'.repeat(33), '-a']) {
      assert.throws(
        () => createProfile(h, bad),
        (e) => isFerryError(e, 'USAGE_INVALID_ARGUMENT'),
      );
    }
  } finally {
    rmSync(h, { recursive: true, force: true });
  }
});

test('imported EVM key: the anvil dev account 0 gives its well-known address', () => {
  const h = home();
  try {
    const p = createProfile(h, 'dev', {
      evmPrivateKey: '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
    });
    assert.equal(p.address, '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');
  } finally {
    rmSync(h, { recursive: true, force: true });
  }
});

test('secrets: readable-by-others and mismatched keys are refused without echoing secrets', () => {
  const h = home();
  try {
    createProfile(h, 'alice');
    const dir = join(h, 'profiles', 'alice');
    chmodSync(join(dir, 'evm.key'), 0o644);
    assert.throws(
      () => loadProfileSecrets(h, 'alice'),
      (e) => isFerryError(e, 'PROFILE_INVALID') && /readable by others/.test(e.message),
    );
    chmodSync(join(dir, 'evm.key'), 0o600);
    const other = `0x${'11'.repeat(32)}`;
    writeFileSync(join(dir, 'evm.key'), `${other}\n`, { mode: 0o600 });
    assert.throws(
      () => loadProfileSecrets(h, 'alice'),
      (e) => isFerryError(e, 'PROFILE_INVALID') && !JSON.stringify(e.toJSON()).includes('1111'),
    );
  } finally {
    rmSync(h, { recursive: true, force: true });
  }
});

test('the profile age.key is an identity file the age tool accepts', async (t) => {
  if (!requireTool(t, 'age')) return;
  const h = home();
  try {
    const p = createProfile(h, 'alice');
    const ct = await encrypt([new X25519Recipient(p.ageRecipient)], new TextEncoder().encode('hello'));
    const f = join(h, 'x.age');
    writeFileSync(f, ct);
    const out = execFileSync('age', ['-d', '-i', join(h, 'profiles', 'alice', 'age.key'), f]);
    assert.equal(out.toString(), 'hello');
  } finally {
    rmSync(h, { recursive: true, force: true });
  }
});

function ferry(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(FERRY, args, { encoding: 'utf8', env: { ...process.env, ...env } }, (err, stdout) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout });
    });
  });
}

test('CLI: profile create / show / ls --json print only public parts', async () => {
  const h = home();
  try {
    const env = { FERRY_HOME: h };
    const c = await ferry(env, 'profile', 'create', 'carol', '--json');
    assert.equal(c.code, 0);
    const created = JSON.parse(c.stdout);
    assert.deepEqual(Object.keys(created).sort(), [
      'address',
      'ageRecipient',
      'createdAt',
      'name',
      'path',
      'signingPublicKey',
    ]);
    const s = await ferry(env, 'profile', 'show', 'carol', '--json');
    assert.deepEqual(JSON.parse(s.stdout), created);
    const l = await ferry(env, 'profile', 'ls', '--json');
    assert.deepEqual(JSON.parse(l.stdout), { profiles: [created] });
    const secrets = ['evm.key', 'signing.key', 'age.key'].map((f) =>
      readFileSync(join(h, 'profiles', 'carol', f), 'utf8')
        .split('\n')
        .filter((x) => x && !x.startsWith('#'))[0]
        .replace(/^0x/, ''),
    );
    for (const out of [c.stdout, s.stdout, l.stdout])
      for (const sec of secrets) assert.ok(!out.includes(sec));
    const dup = await ferry(env, 'profile', 'create', 'carol', '--json');
    assert.equal(dup.code, 2);
    assert.equal(JSON.parse(dup.stdout).error.code, 'PROFILE_EXISTS');
    const missing = await ferry(env, 'profile', 'show', 'dave', '--json');
    assert.equal(JSON.parse(missing.stdout).error.code, 'PROFILE_NOT_FOUND');
    assert.deepEqual(JSON.parse(missing.stdout).error.hints, [
      'known profiles: carol',
      'create it with: ferry profile create dave',
    ]);
  } finally {
    rmSync(h, { recursive: true, force: true });
  }
});
