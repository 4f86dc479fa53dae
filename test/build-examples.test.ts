/**
 * The demo app committed under src/cli/generated/ is exactly what `npm run build:examples`
 * gives today (scripts/build-examples.ts), so `ferry demo` never publishes a stale build. In
 * the slow tier (npm run test:e2e) with the other build check, test/build-contracts.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { compileExample } from '../examples/index.ts';
import { DEMO_APP_PATH } from '../src/cli/demo-app.ts';

test('the committed demo app is exactly examples/csv-stats compiled again', async () => {
  const committed = new Uint8Array(readFileSync(DEMO_APP_PATH));
  const fresh = await compileExample('csv-stats');
  assert.ok(
    Buffer.from(fresh).equals(Buffer.from(committed)),
    `${DEMO_APP_PATH} is stale (${committed.length} bytes, a rebuild gives ${fresh.length}): run npm run build:examples`,
  );
});
