import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ed25519KeyPair } from '../attestation/sim/ed25519.ts';
import { decodeTagged, encodeTagged, type FerryError } from '../kernel/index.ts';
import {
  decodeReceipt,
  encodeReceipt,
  type Receipt,
  receiptToJson,
  signReceipt,
  verifyReceipt,
} from './receipt.ts';

const h = () => new Uint8Array(randomBytes(32));

function sample(enclaveKey: Uint8Array): Receipt {
  return {
    chainId: 31337n,
    taskId: 2n ** 63n + 5n,
    attempt: 2,
    commitmentsHash: h(),
    resultRecipient: h(),
    appMeasurement: h(),
    datasets: [
      { id: '1', ciphertextHash: h(), complete: true },
      { id: 'b.csv', ciphertextHash: h(), complete: false },
    ],
    inputHash: h(),
    resultHash: h(),
    logHash: h(),
    outcome: 'limit',
    exitCode: null,
    limitHit: 'output',
    startedAt: 1_700_000_000_000,
    endedAt: 1_700_000_000_123,
    evidenceHash: h(),
    enclaveKey,
  };
}

test('a signed receipt verifies under the enclave key and round-trips', () => {
  const kp = ed25519KeyPair();
  const r = sample(kp.publicKey);
  const { receipt, signature } = signReceipt(kp.secretKey, r);
  assert.deepEqual(receipt, encodeReceipt(r));
  assert.deepEqual(verifyReceipt(receipt, signature, kp.publicKey), r);
  assert.deepEqual(decodeReceipt(receipt), r);
  assert.equal(receiptToJson(r).taskId, (2n ** 63n + 5n).toString());
  assert.throws(() => encodeReceipt({ ...r, taskId: 2n ** 64n }), /taskId/);
});

test('a tampered receipt, a bad signature or another key is rejected', () => {
  const kp = ed25519KeyPair();
  const other = ed25519KeyPair();
  const r = sample(kp.publicKey);
  const { receipt, signature } = signReceipt(kp.secretKey, r);
  // Change a field and re-encode canonically: the signature no longer matches.
  const body = decodeTagged('ferry/receipt/v2', receipt) as Record<string, unknown>;
  const altered = encodeTagged('ferry/receipt/v2', { ...body, exitCode: 0 } as never);
  assert.throws(
    () => verifyReceipt(altered, signature, kp.publicKey),
    (e: FerryError) => e.code === 'SIGNATURE_INVALID',
  );
  const badSig = Uint8Array.from(signature);
  badSig[5] ^= 1;
  assert.throws(
    () => verifyReceipt(receipt, badSig, kp.publicKey),
    (e: FerryError) => e.code === 'SIGNATURE_INVALID',
  );
  assert.throws(
    () => verifyReceipt(receipt, signature, other.publicKey),
    (e: FerryError) => e.code === 'RECEIPT_INVALID',
  );
  // Signed by another key that claims to be this enclave.
  const forged = signReceipt(other.secretKey, r);
  assert.throws(
    () => verifyReceipt(forged.receipt, forged.signature, kp.publicKey),
    (e: FerryError) => e.code === 'SIGNATURE_INVALID',
  );
  const flipped = Uint8Array.from(receipt);
  flipped[flipped.length - 40] ^= 0x40;
  assert.throws(
    () => verifyReceipt(flipped, signature, kp.publicKey),
    (e: FerryError) => ['SIGNATURE_INVALID', 'RECEIPT_INVALID'].includes(e.code),
  );
});

test('malformed receipts and bad arguments are refused with the field named', () => {
  const kp = ed25519KeyPair();
  const body = { ...(decodeTagged('ferry/receipt/v2', encodeReceipt(sample(kp.publicKey))) as object) };
  const bad = (patch: object, field: RegExp) =>
    assert.throws(
      () => decodeReceipt(encodeTagged('ferry/receipt/v2', { ...body, ...patch } as never)),
      (e: FerryError) => e.code === 'RECEIPT_INVALID' && field.test(e.message),
    );
  bad({ resultHash: new Uint8Array(31) }, /resultHash/);
  bad({ commitmentsHash: new Uint8Array(31) }, /commitmentsHash/);
  bad({ resultRecipient: null }, /resultRecipient/);
  bad({ limitHit: 'cpu' }, /limitHit/);
  bad({ outcome: 'ok' }, /outcome/);
  bad({ extra: 1 }, /unknown fields/);
  assert.throws(
    () => decodeReceipt(encodeTagged('ferry/evidence/v1', body as never)),
    (e: FerryError) => e.code === 'RECEIPT_INVALID',
  );
  assert.throws(
    () => verifyReceipt('x' as never, new Uint8Array(64), kp.publicKey),
    (e: FerryError) => e.code === 'INVALID_ARGUMENT',
  );
  assert.throws(
    () => verifyReceipt(new Uint8Array(1), new Uint8Array(64), new Uint8Array(3)),
    /enclavePublicKey/,
  );
});

test('a v1 receipt (no commitments hash, no recipient) is no longer decoded', () => {
  const kp = ed25519KeyPair();
  const {
    commitmentsHash: _c,
    resultRecipient: _r,
    ...v1
  } = decodeTagged('ferry/receipt/v2', encodeReceipt(sample(kp.publicKey))) as Record<string, unknown>;
  assert.throws(
    () => decodeReceipt(encodeTagged('ferry/receipt/v1', v1 as never)),
    (e: FerryError) => e.code === 'RECEIPT_INVALID',
  );
  // Nor under the v2 tag without the new fields.
  assert.throws(
    () => decodeReceipt(encodeTagged('ferry/receipt/v2', v1 as never)),
    (e: FerryError) => e.code === 'RECEIPT_INVALID' && /commitmentsHash/.test(e.message),
  );
});
