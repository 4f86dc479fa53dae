/**
 * The one transition table of the daemons' intent log (src/daemon/intents.ts): every pair of
 * statuses, so a change to the table is a visible change to this test.
 */
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { isFerryError } from '../kernel/index.ts';
import { ACTION_NEXT, ACTION_STATUSES, advance, RELEASE_NEXT, transitionOf } from './intents.ts';

const TX1 = `0x${'a'.repeat(64)}`;
const TX2 = `0x${'b'.repeat(64)}`;

test('ACTION_NEXT: the allowed moves, and every other one refused with STATE_CONFLICT', () => {
  const allowed = new Set([
    'intent>sent',
    'intent>confirmed',
    'intent>reverted',
    'intent>lost',
    'intent>failed',
    'sent>confirmed',
    'sent>reverted',
    'sent>lost',
    'sent>failed',
    'confirmed>lost',
  ]);
  for (const from of ACTION_STATUSES) {
    for (const to of ACTION_STATUSES) {
      const name = `${from}>${to}`;
      if (from === to) assert.equal(transitionOf(ACTION_NEXT, from, to, 'x'), 'same', name);
      else if (allowed.has(name)) assert.equal(transitionOf(ACTION_NEXT, from, to, 'x'), 'move', name);
      else
        assert.throws(
          () => transitionOf(ACTION_NEXT, from, to, 'x'),
          (e) => isFerryError(e, 'STATE_CONFLICT'),
          name,
        );
    }
  }
});

test('RELEASE_NEXT: delivered before recorded; recorded settles; nothing leaves a final status', () => {
  assert.equal(transitionOf(RELEASE_NEXT, 'intent', 'delivered', 'r'), 'move');
  assert.equal(transitionOf(RELEASE_NEXT, 'delivered', 'recorded', 'r'), 'move');
  assert.equal(transitionOf(RELEASE_NEXT, 'recorded', 'confirmed', 'r'), 'move');
  for (const [from, to] of [
    ['intent', 'recorded'],
    ['recorded', 'failed'],
    ['confirmed', 'reverted'],
    ['failed', 'intent'],
  ] as const) {
    assert.throws(
      () => transitionOf(RELEASE_NEXT, from, to, 'r'),
      (e) => isFerryError(e, 'STATE_CONFLICT'),
    );
  }
});

test('advance: moves a row, is idempotent with the same hash, refuses another hash and a missing row', () => {
  const db = new DatabaseSync(':memory:');
  db.exec(
    'CREATE TABLE t (k INTEGER PRIMARY KEY, status TEXT, tx_hash TEXT, detail TEXT, updated_at INTEGER NOT NULL)',
  );
  db.prepare("INSERT INTO t (k, status, updated_at) VALUES (1, 'intent', 0)").run();
  const ref = { table: 't', where: 'k = ?', args: [1], tx: 'tx_hash', what: 'row 1' };
  advance(db, ACTION_NEXT, ref, 'sent', { tx: TX1.toUpperCase().replace('0X', '0x') });
  advance(db, ACTION_NEXT, ref, 'sent', { tx: TX1 });
  assert.throws(
    () => advance(db, ACTION_NEXT, ref, 'sent', { tx: TX2 }),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  assert.throws(
    () => advance(db, ACTION_NEXT, ref, 'sent', { tx: '0x12' }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  advance(db, ACTION_NEXT, ref, 'confirmed', { set: { detail: 'ok' } });
  const row = db.prepare('SELECT status, tx_hash, detail FROM t WHERE k = 1').get() as Record<
    string,
    unknown
  >;
  assert.deepEqual({ ...row }, { status: 'confirmed', tx_hash: TX1, detail: 'ok' });
  assert.throws(
    () => advance(db, ACTION_NEXT, { ...ref, args: [2] }, 'confirmed'),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  db.close();
});
