/** A daemon's life: ready once started, stopped once aborted, and stopped when start fails. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serveUntilAborted } from './run.ts';

test('started, reported ready, served until the signal aborts, then stopped', async () => {
  const seen: string[] = [];
  const ac = new AbortController();
  const daemon = {
    start: async () => {
      seen.push('start');
      return { ready: true };
    },
    stop: async () => {
      seen.push('stop');
    },
  };
  const run = serveUntilAborted(daemon, ac.signal, (r) => {
    seen.push(`ready ${r.ready}`);
    ac.abort();
  });
  await run;
  assert.deepEqual(seen, ['start', 'ready true', 'stop']);
});

test('a start that fails still stops the daemon, and the failure reaches the caller', async () => {
  const seen: string[] = [];
  const daemon = {
    start: async (): Promise<never> => {
      throw new Error('no port');
    },
    stop: async () => {
      seen.push('stop');
    },
  };
  await assert.rejects(
    serveUntilAborted(daemon, new AbortController().signal, () => seen.push('ready')),
    /no port/,
  );
  assert.deepEqual(seen, ['stop']);
});
