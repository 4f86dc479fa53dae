import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BaseError, encodeErrorResult, InsufficientFundsError } from 'viem';
import { ERROR_CODES, FerryError } from '../kernel/index.ts';
import { ferryErrorsAbi } from './abi.ts';
import { decodeRevertData, REVERT_CODES, toChainError } from './errors.ts';

test('every custom error of the contracts maps to a registered FerryError code', () => {
  const names = ferryErrorsAbi.filter((i) => i.type === 'error').map((i) => (i as { name: string }).name);
  assert.ok(names.length >= 25);
  for (const n of names) {
    assert.ok(REVERT_CODES[n], `no mapping for ${n}`);
    assert.ok(REVERT_CODES[n].code in ERROR_CODES, `${n}: code ${REVERT_CODES[n].code} is not registered`);
  }
  for (const n of Object.keys(REVERT_CODES)) assert.ok(names.includes(n), `mapping for unknown error ${n}`);
});

test('raw revert data decodes into code, message, hints and details', () => {
  const data = encodeErrorResult({
    abi: ferryErrorsAbi,
    errorName: 'NotEligible',
    args: ['0x0000000000000000000000000000000000000001', 5],
  });
  assert.deepEqual(decodeRevertData(data)?.errorName, 'NotEligible');
  assert.equal(decodeRevertData('0xdeadbeef'), undefined);
  const wrong = encodeErrorResult({ abi: ferryErrorsAbi, errorName: 'WrongState', args: [7n, 3] });
  const e = toChainError(Object.assign(new Error('x'), {}), 'vote');
  assert.equal(e.code, 'CHAIN_REVERTED');
  const d = decodeRevertData(wrong);
  assert.equal(d?.errorName, 'WrongState');
  assert.deepEqual(d?.args, [7n, 3]);
});

test('unreachable endpoints are CHAIN_UNAVAILABLE; FerryErrors pass through', () => {
  assert.equal(toChainError(new TypeError('fetch failed'), 'getTask').code, 'CHAIN_UNAVAILABLE');
  const f = new FerryError('CHAIN_WRONG_STATE', 'x');
  assert.equal(toChainError(f, 'y'), f);
});

test('an account that cannot pay is CHAIN_INSUFFICIENT_FUNDS in words, not CHAIN_REVERTED', () => {
  const e = toChainError(
    new InsufficientFundsError({ cause: new BaseError('exceeds the balance') }),
    'createTask',
  );
  assert.equal(e.code, 'CHAIN_INSUFFICIENT_FUNDS');
  assert.match(e.message, /^createTask: the account cannot pay for this transaction/);
  assert.ok(e.hints.some((h) => h.includes('anvil_setBalance')));
});
