import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { compileCacheDir } from './config.ts';

const root = mkdtempSync(join(tmpdir(), 'ferry-cache-dir-'));
after(() => rmSync(root, { recursive: true, force: true }));
const envAt = (name: string) => ({ XDG_CACHE_HOME: join(root, name) });

test('the compile cache is made in the user cache directory, private', () => {
  const dir = compileCacheDir('cli', envAt('fresh'));
  assert.equal(dir, join(root, 'fresh', 'ferry', 'compile-cache-cli'));
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  // Again: the same directory, kept.
  assert.equal(compileCacheDir('cli', envAt('fresh')), dir);
});

test('a relative XDG_CACHE_HOME is ignored (the spec requires an absolute path)', () => {
  const dir = compileCacheDir('cli', { XDG_CACHE_HOME: 'relative/cache' });
  assert.ok(dir === null || dir.startsWith('/'));
  assert.ok(dir === null || !dir.includes('relative/cache'));
});

test('attacker: a cache directory others can write is not used', () => {
  const dir = join(root, 'open', 'ferry', 'compile-cache-enclave');
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  assert.equal(compileCacheDir('enclave', envAt('open')), null);
  chmodSync(dir, 0o775);
  assert.equal(compileCacheDir('enclave', envAt('open')), null);
});

test('attacker: a symlink planted where the cache goes is not followed', () => {
  const target = join(root, 'elsewhere');
  mkdirSync(target, { mode: 0o700 });
  mkdirSync(join(root, 'link', 'ferry'), { recursive: true });
  symlinkSync(target, join(root, 'link', 'ferry', 'compile-cache-cli'));
  assert.equal(compileCacheDir('cli', envAt('link')), null);
});

test('attacker: a cache directory another user owns is not used', {
  skip: process.getuid?.() !== 0 && 'needs root to chown',
}, () => {
  const dir = join(root, 'theirs', 'ferry', 'compile-cache-cli');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chownSync(dir, 65534, 65534);
  assert.equal(compileCacheDir('cli', envAt('theirs')), null);
});

test('a cache that cannot be made gives no cache, not an error', () => {
  const file = join(root, 'a-file');
  writeFileSync(file, '');
  assert.equal(compileCacheDir('cli', { XDG_CACHE_HOME: file }), null);
});
