/**
 * Enclave receipts: the tagged canonical object `ferry/receipt/v2`, signed with the enclave's
 * Ed25519 key (signature over the tagged encoding). docs/protocol.md §10.6 lists the fields.
 * Version 2 adds the task commitments hash and the result recipient the enclave was created
 * for; v1 receipts (without them) are no longer decoded.
 */
import {
  type CanonicalValue,
  decodeTagged,
  describe,
  encodeTagged,
  FerryError,
  toHex,
} from '../kernel/index.ts';
import { signBytesEd25519, verifyBytesEd25519 } from '../attestation/sim/ed25519.ts';

export const RECEIPT_TAG = 'ferry/receipt/v2';

export type Receipt = {
  chainId: bigint;
  taskId: bigint;
  attempt: number;
  /** commitmentsHash of the task commitments the enclave was created for (bound in its evidence). */
  commitmentsHash: Uint8Array;
  /** The committed result recipient (X25519 public key): result and log are encrypted to it only. */
  resultRecipient: Uint8Array;
  /** SHA-256 of the plaintext app (the committed measurement). */
  appMeasurement: Uint8Array;
  /**
   * Each dataset: its id, the SHA-256 of the bytes read (the ciphertext), and whether they were
   * read to the end (false when a limit or trap stopped the app before; the hash then covers
   * only the bytes read).
   */
  datasets: { id: string; ciphertextHash: Uint8Array; complete: boolean }[];
  /** SHA-256 of the canonical CBOR array of the app's arguments. */
  inputHash: Uint8Array;
  /** SHA-256 of the result ciphertext (stdout, age-encrypted to the requester). */
  resultHash: Uint8Array;
  /** SHA-256 of the log ciphertext (stderr, age-encrypted to the requester). */
  logHash: Uint8Array;
  outcome: 'exit' | 'trap' | 'limit';
  exitCode: number | null;
  limitHit: null | 'time' | 'memory' | 'output';
  /** Unix milliseconds. */
  startedAt: number;
  endedAt: number;
  /** SHA-256 of the enclave's evidence (ferry/evidence/v1). */
  evidenceHash: Uint8Array;
  /** The enclave's Ed25519 public key (the signer). */
  enclaveKey: Uint8Array;
};

function toCanonical(r: Receipt): CanonicalValue {
  return {
    chainId: r.chainId,
    taskId: r.taskId,
    attempt: r.attempt,
    commitmentsHash: r.commitmentsHash,
    resultRecipient: r.resultRecipient,
    appMeasurement: r.appMeasurement,
    datasets: r.datasets.map((d) => ({ id: d.id, ciphertextHash: d.ciphertextHash, complete: d.complete })),
    inputHash: r.inputHash,
    resultHash: r.resultHash,
    logHash: r.logHash,
    outcome: r.outcome,
    exitCode: r.exitCode,
    limitHit: r.limitHit,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    evidenceHash: r.evidenceHash,
    enclaveKey: r.enclaveKey,
  };
}

const U64 = (1n << 64n) - 1n;

/**
 * The receipt's tagged canonical encoding (what is signed and hashed). chainId and taskId are
 * CBOR unsigned integers, so each must be below 2^64 (INVALID_ARGUMENT otherwise).
 */
export function encodeReceipt(r: Receipt): Uint8Array {
  for (const f of ['chainId', 'taskId'] as const) {
    const v = r?.[f];
    if (typeof v !== 'bigint' || v < 0n || v > U64) {
      throw new FerryError('INVALID_ARGUMENT', `receipt ${f} must be a bigint in [0, 2^64)`, {
        hints: [`got: ${typeof v === 'bigint' ? v.toString() : describe(v)}`],
      });
    }
  }
  return Uint8Array.from(encodeTagged(RECEIPT_TAG, toCanonical(r)));
}

/** Encodes and signs; returns the receipt bytes and the 64-byte signature. */
export function signReceipt(
  secretKey: Uint8Array,
  r: Receipt,
): { receipt: Uint8Array; signature: Uint8Array } {
  const receipt = encodeReceipt(r);
  return { receipt, signature: signBytesEd25519(secretKey, receipt) };
}

const big = (v: CanonicalValue): bigint | null =>
  typeof v === 'bigint' ? v : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : null;
const h32 = (v: CanonicalValue): v is Uint8Array => v instanceof Uint8Array && v.length === 32;

/** Decodes receipt bytes (canonical, right tag, right shape); throws RECEIPT_INVALID. */
export function decodeReceipt(bytes: Uint8Array): Receipt {
  let v: CanonicalValue;
  try {
    v = decodeTagged(RECEIPT_TAG, bytes);
  } catch (e) {
    throw new FerryError('RECEIPT_INVALID', 'receipt does not decode', {
      cause: e,
      hints: [(e as Error).message],
    });
  }
  const o = v as Record<string, CanonicalValue>;
  const bad = (field: string) =>
    new FerryError('RECEIPT_INVALID', `receipt field ${field} is missing or malformed`, {
      hints: [`got: ${describe(o?.[field])}`],
    });
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw bad('(body)');
  const chainId = big(o.chainId);
  if (chainId === null) throw bad('chainId');
  const taskId = big(o.taskId);
  if (taskId === null) throw bad('taskId');
  if (typeof o.attempt !== 'number' || o.attempt < 1) throw bad('attempt');
  for (const f of [
    'commitmentsHash',
    'resultRecipient',
    'appMeasurement',
    'inputHash',
    'resultHash',
    'logHash',
    'evidenceHash',
    'enclaveKey',
  ]) {
    if (!h32(o[f])) throw bad(f);
  }
  if (!Array.isArray(o.datasets)) throw bad('datasets');
  const datasets = (o.datasets as CanonicalValue[]).map((d) => {
    const x = d as Record<string, CanonicalValue>;
    if (typeof x?.id !== 'string' || !h32(x.ciphertextHash) || typeof x.complete !== 'boolean') {
      throw bad('datasets');
    }
    if (Object.keys(x).length !== 3) throw bad('datasets');
    return { id: x.id, ciphertextHash: x.ciphertextHash, complete: x.complete };
  });
  if (o.outcome !== 'exit' && o.outcome !== 'trap' && o.outcome !== 'limit') throw bad('outcome');
  if (o.exitCode !== null && typeof o.exitCode !== 'number') throw bad('exitCode');
  if (o.limitHit !== null && o.limitHit !== 'time' && o.limitHit !== 'memory' && o.limitHit !== 'output') {
    throw bad('limitHit');
  }
  if (typeof o.startedAt !== 'number') throw bad('startedAt');
  if (typeof o.endedAt !== 'number') throw bad('endedAt');
  if (Object.keys(o).length !== 17) throw new FerryError('RECEIPT_INVALID', 'receipt has unknown fields');
  return {
    chainId,
    taskId,
    attempt: o.attempt,
    commitmentsHash: o.commitmentsHash as Uint8Array,
    resultRecipient: o.resultRecipient as Uint8Array,
    appMeasurement: o.appMeasurement as Uint8Array,
    datasets,
    inputHash: o.inputHash as Uint8Array,
    resultHash: o.resultHash as Uint8Array,
    logHash: o.logHash as Uint8Array,
    outcome: o.outcome,
    exitCode: o.exitCode as number | null,
    limitHit: o.limitHit as Receipt['limitHit'],
    startedAt: o.startedAt,
    endedAt: o.endedAt,
    evidenceHash: o.evidenceHash as Uint8Array,
    enclaveKey: o.enclaveKey as Uint8Array,
  };
}

/**
 * Verifies a receipt: decodes it and checks the Ed25519 signature under `enclavePublicKey`,
 * which must also be the receipt's own `enclaveKey`. Returns the receipt; throws
 * RECEIPT_INVALID (malformed, other key) or SIGNATURE_INVALID (bad signature).
 */
export function verifyReceipt(
  receiptBytes: Uint8Array,
  signature: Uint8Array,
  enclavePublicKey: Uint8Array,
): Receipt {
  if (!(receiptBytes instanceof Uint8Array)) {
    throw new FerryError('INVALID_ARGUMENT', 'receiptBytes must be a Uint8Array', {
      hints: [`got: ${describe(receiptBytes)}`],
    });
  }
  if (!(enclavePublicKey instanceof Uint8Array) || enclavePublicKey.length !== 32) {
    throw new FerryError('INVALID_ARGUMENT', 'enclavePublicKey must be 32 bytes', {
      hints: [`got: ${describe(enclavePublicKey)}`],
    });
  }
  const r = decodeReceipt(receiptBytes);
  if (toHex(r.enclaveKey) !== toHex(enclavePublicKey)) {
    throw new FerryError('RECEIPT_INVALID', 'the receipt names another enclave key');
  }
  if (!verifyBytesEd25519(enclavePublicKey, receiptBytes, signature)) {
    throw new FerryError('SIGNATURE_INVALID', 'the receipt signature does not verify under the enclave key');
  }
  return r;
}

/** A JSON view of a receipt (hex strings, decimal strings for big integers). */
export function receiptToJson(r: Receipt): Record<string, unknown> {
  return {
    chainId: r.chainId.toString(),
    taskId: r.taskId.toString(),
    attempt: r.attempt,
    commitmentsHash: toHex(r.commitmentsHash),
    resultRecipient: toHex(r.resultRecipient),
    appMeasurement: toHex(r.appMeasurement),
    datasets: r.datasets.map((d) => ({
      id: d.id,
      ciphertextHash: toHex(d.ciphertextHash),
      complete: d.complete,
    })),
    inputHash: toHex(r.inputHash),
    resultHash: toHex(r.resultHash),
    logHash: toHex(r.logHash),
    outcome: r.outcome,
    exitCode: r.exitCode,
    limitHit: r.limitHit,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    evidenceHash: toHex(r.evidenceHash),
    enclaveKey: toHex(r.enclaveKey),
  };
}
