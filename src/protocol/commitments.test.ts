import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { decodeTagged, encodeTagged, type FerryError, toHex } from '../kernel/index.ts';
import { reportDataFor } from './binding.ts';
import {
  COMMITMENTS_TAG,
  checkCommitments,
  commitmentsDiff,
  commitmentsHash,
  encodeCommitments,
  type TaskCommitments,
} from './commitments.ts';
import { KEY_RELEASE_INFO_TAG, keyReleaseInfo } from './release-info.ts';

const b = (n: number) => new Uint8Array(32).fill(n);
const base: TaskCommitments = {
  chainId: 31337n,
  taskId: 42n,
  attempt: 2,
  seed: b(1),
  appId: 3n,
  appMeasurement: b(2),
  inputHash: b(3),
  resultRecipient: b(4),
  datasets: [
    { id: 5n, ciphertextHash: b(5) },
    { id: 9n, ciphertextHash: b(6) },
  ],
};

test('commitments: tagged canonical CBOR whose SHA-256 is the commitments hash', () => {
  const bytes = encodeCommitments(base);
  const body = decodeTagged(COMMITMENTS_TAG, bytes) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), [
    'appId',
    'appMeasurement',
    'attempt',
    'chainId',
    'datasets',
    'inputHash',
    'resultRecipient',
    'seed',
    'taskId',
  ]);
  assert.equal(toHex(commitmentsHash(base)), createHash('sha256').update(bytes).digest('hex'));
  // Re-encoding the decoded body gives the same bytes (deterministic).
  assert.deepEqual(encodeTagged(COMMITMENTS_TAG, body as never), bytes);
});

test('commitments: every field changes the hash; commitmentsDiff names it', () => {
  const variants: [string, Partial<TaskCommitments>][] = [
    ['chainId', { chainId: 1n }],
    ['taskId', { taskId: 43n }],
    ['attempt', { attempt: 3 }],
    ['seed', { seed: b(9) }],
    ['appId', { appId: 4n }],
    ['appMeasurement', { appMeasurement: b(9) }],
    ['inputHash', { inputHash: b(9) }],
    ['resultRecipient', { resultRecipient: b(9) }],
    ['datasets[1].ciphertextHash', { datasets: [base.datasets[0], { id: 9n, ciphertextHash: b(9) }] }],
    ['datasets[1].id', { datasets: [base.datasets[0], { id: 10n, ciphertextHash: b(6) }] }],
    ['datasets', { datasets: [base.datasets[0]] }],
  ];
  const seen = new Set([toHex(commitmentsHash(base))]);
  for (const [field, patch] of variants) {
    const v = { ...base, ...patch };
    seen.add(toHex(commitmentsHash(v)));
    assert.equal(commitmentsDiff(base, v), field);
  }
  assert.equal(seen.size, variants.length + 1);
  assert.equal(commitmentsDiff(base, { ...base }), null);
});

test('commitments: bad fields are refused with INVALID_ARGUMENT naming the field', () => {
  const bad: [string, Record<string, unknown>][] = [
    ['attempt', { attempt: 0 }],
    ['attempt', { attempt: 2 ** 32 }],
    ['chainId', { chainId: -1n }],
    ['taskId', { taskId: 1n << 64n }],
    ['seed', { seed: new Uint8Array(31) }],
    ['resultRecipient', { resultRecipient: new Uint8Array(32) }],
    ['datasets', { datasets: [] }],
    [
      'datasets',
      { datasets: new Array(8).fill(0).map((_, i) => ({ id: BigInt(i + 1), ciphertextHash: b(1) })) },
    ],
    ['datasets', { datasets: [base.datasets[1], base.datasets[0]] }],
    ['datasets', { datasets: [base.datasets[0], base.datasets[0]] }],
    ['datasets[0].ciphertextHash', { datasets: [{ id: 1n, ciphertextHash: 'ab' }] }],
    ['(body)', null as never],
  ];
  for (const [field, patch] of bad) {
    const v = patch === null ? null : { ...base, ...patch };
    assert.throws(
      () => checkCommitments(v),
      (e: FerryError) => e.code === 'INVALID_ARGUMENT' && e.message.includes(field),
      field,
    );
  }
});

test('report_data v2 is SHA-512 over the documented layout (computed by us, independently)', () => {
  const x = b(0x11);
  const e = b(0x22);
  const expected = createHash('sha512')
    .update(Buffer.from('ferry/evidence-binding/v2\0', 'ascii'))
    .update(createHash('sha256').update(encodeCommitments(base)).digest())
    .update(x)
    .update(e)
    .digest();
  assert.deepEqual(Buffer.from(reportDataFor({ commitments: base, x25519Pub: x, ed25519Pub: e })), expected);
  // A different recipient (or anything else committed) gives different report_data.
  const other = reportDataFor({
    commitments: { ...base, resultRecipient: b(7) },
    x25519Pub: x,
    ed25519Pub: e,
  });
  assert.notDeepEqual(Buffer.from(other), expected);
  assert.throws(
    () => reportDataFor({ commitments: base, x25519Pub: new Uint8Array(31), ed25519Pub: e }),
    (err: FerryError) => err.code === 'INVALID_ARGUMENT' && err.message.includes('x25519Pub'),
  );
});

test('key-release info v2 binds the commitments hash, the evidence hash and the asset', () => {
  const commitments = commitmentsHash(base);
  const info = keyReleaseInfo({ commitments, evidenceHash: b(8), assetId: 5n, assetKind: 'dataset' });
  const body = decodeTagged(KEY_RELEASE_INFO_TAG, info) as Record<string, unknown>;
  assert.equal(KEY_RELEASE_INFO_TAG, 'ferry/key-release-info/v2');
  assert.deepEqual(Object.keys(body).sort(), ['assetId', 'assetKind', 'commitments', 'evidenceHash']);
  assert.deepEqual(body.commitments, commitments);
  const seen = new Set([toHex(info)]);
  seen.add(
    toHex(keyReleaseInfo({ commitments: b(1), evidenceHash: b(8), assetId: 5n, assetKind: 'dataset' })),
  );
  seen.add(toHex(keyReleaseInfo({ commitments, evidenceHash: b(9), assetId: 5n, assetKind: 'dataset' })));
  seen.add(toHex(keyReleaseInfo({ commitments, evidenceHash: b(8), assetId: 6n, assetKind: 'dataset' })));
  seen.add(toHex(keyReleaseInfo({ commitments, evidenceHash: b(8), assetId: 5n, assetKind: 'app' })));
  assert.equal(seen.size, 5);
  for (const patch of [
    { commitments: b(1).subarray(1) },
    { assetId: -1n },
    { assetKind: 'code' },
    { evidenceHash: null },
  ]) {
    assert.throws(
      () =>
        keyReleaseInfo({
          commitments,
          evidenceHash: b(8),
          assetId: 5n,
          assetKind: 'dataset',
          ...patch,
        } as never),
      (err: FerryError) => err.code === 'INVALID_ARGUMENT',
    );
  }
});
