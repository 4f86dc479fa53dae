/**
 * The committed bindings in src/chain/generated/ are exactly what compiling contracts/ gives
 * today, so they can never be stale; every contract fits the EIP-170 code size limit. In the
 * slow tier (npm run test:e2e): solc compiles every contract with via-IR, which takes 15 to 50 s.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  CODE_SIZE_LIMIT,
  CONTRACTS,
  compileContracts,
  generateBindings,
} from '../scripts/build-contracts.ts';

test('recompiling contracts/ reproduces src/chain/generated/ byte for byte', () => {
  const compiled = compileContracts();
  for (const c of compiled)
    assert.ok(c.deployedSize <= CODE_SIZE_LIMIT, `${c.name}: ${c.deployedSize} bytes`);
  const files = generateBindings(compiled);
  assert.equal(files.size, CONTRACTS.length);
  for (const [path, content] of files) {
    assert.equal(readFileSync(path, 'utf8'), content, `${path} is stale: run npm run build:contracts`);
  }
});
