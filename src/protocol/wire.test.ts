import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attemptLocation, attemptPath, executorBaseUrl } from './wire.ts';

test('attempt locations: the one format an executor commits and every party reads back', () => {
  assert.equal(attemptPath(7n, 2, 'keys'), '/v1/tasks/7/attempts/2/keys');
  assert.equal(attemptPath('7', 2, 'enclave'), '/v1/tasks/7/attempts/2/enclave');
  const base = 'http://127.0.0.1:4100/node';
  const evidence = attemptLocation(base, 7n, 2, 'evidence');
  assert.equal(evidence, 'http://127.0.0.1:4100/node/v1/tasks/7/attempts/2/evidence');
  assert.equal(
    attemptLocation(base, 7n, 2, 'result'),
    'http://127.0.0.1:4100/node/v1/tasks/7/attempts/2/result',
  );
  // The base the location was made from is what a verifier, agent or auditor contacts.
  assert.equal(executorBaseUrl(evidence), base);
  assert.equal(executorBaseUrl(attemptLocation('https://e.example', 1n, 1, 'evidence')), 'https://e.example');
});
