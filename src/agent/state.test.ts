import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError } from '../kernel/index.ts';
import { AgentState } from './state.ts';

const TX1 = `0x${'ab'.repeat(32)}`;
const TX2 = `0x${'cd'.repeat(32)}`;

function asset(id: string) {
  return {
    id,
    kind: 'dataset' as const,
    name: 'data.csv',
    path: `/x/${id}.age`,
    ciphertextSha256: new Uint8Array(32).fill(1),
    size: 100,
    identityRef: 'age',
    measurement: null,
  };
}

test('assets: add, list, register once, revoke, remove', () => {
  const s = AgentState.open(':memory:');
  const a = s.addAsset(asset('0123456789abcdef'));
  assert.equal(a.status, 'local');
  assert.throws(
    () => s.addAsset(asset('0123456789abcdef')),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  assert.throws(
    () => s.addAsset(asset('../etc/passwd')),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  s.addAsset({ ...asset('fedcba9876543210'), kind: 'app', measurement: new Uint8Array(32) });
  assert.equal(s.listAssets().length, 2);
  assert.equal(s.listAssets('app').length, 1);
  s.markAssetRegistered('0123456789abcdef', 5n);
  s.markAssetRegistered('0123456789abcdef', '5');
  assert.throws(
    () => s.markAssetRegistered('0123456789abcdef', 6n),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  s.addAsset(asset('1111111111aaaaaa'));
  assert.throws(
    () => s.markAssetRegistered('1111111111aaaaaa', 5n),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
    'two datasets cannot share an on-chain id',
  );
  // App and dataset ids are separate sequences on chain.
  s.markAssetRegistered('fedcba9876543210', 5n);
  assert.equal(s.getAssetByChainId('app', 5n)?.id, 'fedcba9876543210');
  assert.equal(s.getAssetByChainId('dataset', 5n)?.id, '0123456789abcdef');

  s.markAssetRevoked('0123456789abcdef');
  assert.equal(s.getAsset('0123456789abcdef')?.status, 'revoked');
  s.removeAsset('fedcba9876543210');
  assert.throws(
    () => s.removeAsset('fedcba9876543210'),
    (e) => isFerryError(e, 'ASSET_NOT_FOUND'),
  );
  s.close();
});

test('releases: one per (task, attempt, asset) and a strict lifecycle', () => {
  const s = AgentState.open(':memory:');
  s.addAsset(asset('00000000aaaaaaaa'));
  const r = {
    task: 9n,
    attempt: 1,
    asset: '00000000aaaaaaaa',
    executor: 'ee',
    sealed: new Uint8Array([1, 2]),
    releaseHash: new Uint8Array(32),
  };
  assert.equal(s.beginRelease(r).fresh, true);
  const again = s.beginRelease({ ...r, sealed: new Uint8Array([9]) });
  assert.equal(again.fresh, false);
  assert.deepEqual(again.release.sealed, new Uint8Array([1, 2]), 'the stored sealed key is kept');
  assert.throws(
    () => s.markReleaseRecorded(9n, 1, r.asset, TX1),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
    'cannot record before delivering',
  );
  s.markReleaseDelivered(9n, 1, r.asset);
  s.markReleaseDelivered(9n, 1, r.asset);
  s.markReleaseRecorded(9n, 1, r.asset, TX1);
  s.markReleaseRecorded(9n, 1, r.asset, TX1);
  assert.throws(
    () => s.markReleaseRecorded(9n, 1, r.asset, TX2),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  s.markReleaseOutcome(9n, 1, r.asset, 'confirmed');
  assert.equal(s.getRelease(9n, 1, r.asset)?.status, 'confirmed');
  assert.equal(s.countReleases(r.asset), 1);
  assert.equal(s.beginRelease({ ...r, attempt: 2 }).fresh, true);
  assert.equal(s.countReleases(r.asset), 1, 'uses count tasks, not attempts');
  assert.throws(
    () => s.beginRelease({ ...r, asset: 'ffffffffffffffff' }),
    (e) => isFerryError(e, 'ASSET_NOT_FOUND'),
  );
  assert.throws(
    () => s.removeAsset(r.asset),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  assert.deepEqual(
    s.listReleases('intent').map((x) => x.attempt),
    [2],
  );
  s.close();
});

test('agent cursor', () => {
  const s = AgentState.open(':memory:');
  s.setCursor('chain', 3);
  assert.throws(
    () => s.setCursor('chain', 2),
    (e) => isFerryError(e, 'STATE_CONFLICT'),
  );
  assert.deepEqual(s.getCursor(), { block: 3, blockHash: null });
  s.close();
});

test('listener port: remembered per host, validated', () => {
  const s = AgentState.open(':memory:');
  assert.equal(s.getListenPort('127.0.0.1'), null);
  s.setListenPort('127.0.0.1', 4100);
  s.setListenPort('127.0.0.1', 4101);
  s.setListenPort('::1', 4200);
  assert.equal(s.getListenPort('127.0.0.1'), 4101);
  assert.equal(s.getListenPort('::1'), 4200);
  for (const bad of [0, 65536, 1.5, Number.NaN]) {
    assert.throws(
      () => s.setListenPort('127.0.0.1', bad),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
      `port ${bad}`,
    );
  }
  assert.throws(
    () => s.setListenPort('', 4100),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  s.close();
});
