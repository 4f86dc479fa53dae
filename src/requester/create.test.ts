/**
 * The requester's half of the task input and its refusals in words: what it encodes, the
 * executor's decoder (src/protocol) reads back; an input swapped after creation is refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError, toHex } from '../kernel/index.ts';
import { decodeTaskInput } from '../protocol/index.ts';
import { encodeTaskInput, explainCreateError, inputHashOf } from './create.ts';

test('encodeTaskInput: the executor decodes the same arguments, none as an empty location', () => {
  for (const args of [[], ['--column', 'reading'], ['a,b', 'ü 100%', '-x', '{"k":[1]}']]) {
    const { inputHash, inputLocation } = encodeTaskInput(args);
    assert.deepEqual(decodeTaskInput(inputLocation, inputHash), args);
    assert.equal(toHex(inputHash), toHex(inputHashOf(args)));
  }
  assert.equal(encodeTaskInput([]).inputLocation, '');
  assert.match(encodeTaskInput(['x']).inputLocation, /^data:application\/json,/);
});

test('an input swapped for another (same scheme, other arguments) is refused by the hash', () => {
  const committed = encodeTaskInput(['--limit', '10']);
  const swapped = encodeTaskInput(['--limit', '1000000']);
  assert.throws(
    () => decodeTaskInput(swapped.inputLocation, committed.inputHash),
    (e: unknown) => e instanceof FerryError && e.code === 'TASK_FAILED' && /input hash/.test(e.message),
  );
  // Dropping the arguments altogether is no way around it either.
  assert.throws(() => decodeTaskInput('', committed.inputHash), /input hash/);
});

test('explainCreateError: a known revert in words, the code kept; others unchanged', () => {
  const revert = new FerryError('CHAIN_REVERTED', 'execution reverted', {
    details: { revert: 'UnknownApp' },
  });
  const e = explainCreateError(revert, 42n);
  assert.equal(e.code, 'CHAIN_REVERTED');
  assert.equal(e.message, 'app 42 does not exist: execution reverted');
  assert.equal(e.cause, revert);
  const other = new FerryError('CHAIN_REVERTED', 'execution reverted', { details: { revert: 'Other' } });
  assert.equal(explainCreateError(other, 1n), other);
});
