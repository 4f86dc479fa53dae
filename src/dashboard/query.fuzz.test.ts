// Fuzz: the dashboard's query and path parameter parsers (issue 13 item 5). Every failure must
// be a coded FerryError.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertExercised, fuzz, latin1, summary } from '../../test/helpers/fuzz.ts';
import { parseLimit, parseStatuses, parseTaskId } from './server.ts';

const enc = (s: string) => new TextEncoder().encode(s);

test('fuzz parseStatuses / parseLimit / parseTaskId', (t) => {
  const seeds = ['open,claimed', '1', '1000', '0', (2n ** 256n - 1n).toString(), '7', ''].map(enc);
  const stats = fuzz('dashboard query', { seed: 0xda5, iterations: 3000, seeds }, (b) => {
    const v = latin1(b);
    let first: unknown = null;
    let ok = 0;
    for (const f of [
      () => parseStatuses(v),
      () => {
        const n = parseLimit(v);
        assert.ok(Number.isInteger(n) && n >= 1 && n <= 1000);
      },
      () => {
        const id = parseTaskId(v);
        assert.ok(id >= 0n && id < 2n ** 256n);
      },
    ]) {
      try {
        f();
        ok++;
      } catch (e) {
        if (!(e instanceof Error) || e.name !== 'FerryError') throw e;
        first ??= e;
      }
    }
    if (ok === 0) throw first;
  });
  assertExercised('dashboard query', stats);
  t.diagnostic(summary(stats));
});
