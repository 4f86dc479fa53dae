import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError } from '../kernel/index.ts';
import { loadAgentConfig } from './config.ts';

const CONTRACTS = JSON.stringify({
  NodeRegistry: `0x${'11'.repeat(20)}`,
  Assets: `0x${'22'.repeat(20)}`,
  Tasks: `0x${'33'.repeat(20)}`,
});
const base = { profile: 'alice', rpc: 'http://127.0.0.1:8545', contracts: CONTRACTS };

test('publicUrl: absent by default, from the flag or FERRY_PUBLIC_URL, without a trailing slash', () => {
  const env = { FERRY_HOME: '/nonexistent-ferry-home' };
  assert.equal(loadAgentConfig(base, env).publicUrl, undefined);
  assert.equal(loadAgentConfig(base, env).port, 0);
  assert.equal(
    loadAgentConfig({ ...base, publicUrl: 'https://alice.example/agent/' }, env).publicUrl,
    'https://alice.example/agent',
  );
  assert.equal(
    loadAgentConfig(base, { ...env, FERRY_PUBLIC_URL: 'http://10.0.0.7:4100' }).publicUrl,
    'http://10.0.0.7:4100',
  );
  for (const bad of ['ftp://x', 'alice.example', 'http://a b', `https://x/${'a'.repeat(300)}`]) {
    assert.throws(
      () => loadAgentConfig({ ...base, publicUrl: bad }, env),
      (e) => isFerryError(e, 'CONFIG_INVALID'),
      bad,
    );
  }
});
