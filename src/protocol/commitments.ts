/**
 * The task commitments (docs/protocol.md §8.1): everything an attempt's enclave is created for,
 * as the chain fixes it. The executor reads them from the chain and gives them to the enclave in
 * its first message; the enclave binds their hash into its evidence (report_data) and into every
 * key release it accepts, and refuses to run anything else: another app, other arguments, other
 * datasets, or a result recipient the requester did not name. Verifiers, owner agents and
 * auditors recompute them from the chain (commitments-chain.ts) and refuse evidence that binds
 * anything else.
 *
 *   commitments = ["ferry/task-commitments/v1", {
 *     chainId, taskId, attempt, seed: bytes(32),
 *     appId, appMeasurement: bytes(32),
 *     inputHash: bytes(32), resultRecipient: bytes(32),
 *     datasets: [{id, ciphertextHash: bytes(32)}, ...]   (ids strictly ascending, 1..7)
 *   }]
 *   commitmentsHash = SHA-256(deterministic CBOR of that tagged array)
 *
 * Integers are CBOR unsigned integers below 2^64 (attempt below 2^32). This module is pure (no
 * I/O) and is loaded by the enclave runtime, so it imports only the kernel.
 */
import {
  type CanonicalValue,
  describe,
  encodeTagged,
  FerryError,
  hashTagged,
  toHex,
} from '../kernel/index.ts';

export const COMMITMENTS_TAG = 'ferry/task-commitments/v1';
/** Most datasets a task may name (Tasks.sol MAX_DATASETS). */
export const MAX_TASK_DATASETS = 7;

export type TaskCommitments = {
  readonly chainId: bigint;
  readonly taskId: bigint;
  readonly attempt: number;
  /** The attempt's seed (Tasks.sol `seed`). */
  readonly seed: Uint8Array;
  readonly appId: bigint;
  /** SHA-256 of the plaintext WASM module, as registered with the app. */
  readonly appMeasurement: Uint8Array;
  /** SHA-256 of the canonical CBOR array of the task's arguments (TaskCreated.inputHash). */
  readonly inputHash: Uint8Array;
  /** The requester's X25519 public key (TaskCreated.resultRecipient): the only result recipient. */
  readonly resultRecipient: Uint8Array;
  /** Each dataset with the SHA-256 of its ciphertext as registered when the task was created. */
  readonly datasets: readonly { readonly id: bigint; readonly ciphertextHash: Uint8Array }[];
};

const U64 = (1n << 64n) - 1n;

function bad(field: string, expected: string, got: unknown): FerryError {
  return new FerryError('INVALID_ARGUMENT', `task commitments: ${field} must be ${expected}`, {
    hints: [`expected: ${expected}`, `got: ${describe(got)}`],
  });
}

function u64(v: unknown, field: string): bigint {
  const b = typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
  if (typeof b !== 'bigint' || b < 0n || b > U64) throw bad(field, 'an integer in [0, 2^64)', v);
  return b;
}

function bytes32(v: unknown, field: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== 32) throw bad(field, '32 bytes', v);
  return v;
}

/**
 * Validates commitments (from code or from a decoded message) and returns a normalized copy.
 * Throws INVALID_ARGUMENT naming the bad field: integers out of range, hashes that are not 32
 * bytes, no datasets or more than MAX_TASK_DATASETS, dataset ids not strictly ascending, an
 * all-zero result recipient.
 */
export function checkCommitments(c: unknown): TaskCommitments {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) throw bad('(body)', 'a map', c);
  const o = c as Record<string, unknown>;
  const attempt = o.attempt;
  if (typeof attempt !== 'number' || !Number.isSafeInteger(attempt) || attempt < 1 || attempt > 0xffffffff) {
    throw bad('attempt', 'an integer in 1..2^32-1', attempt);
  }
  const recipient = bytes32(o.resultRecipient, 'resultRecipient');
  if (recipient.every((b) => b === 0))
    throw bad('resultRecipient', 'a non-zero X25519 public key', recipient);
  if (!Array.isArray(o.datasets) || o.datasets.length < 1 || o.datasets.length > MAX_TASK_DATASETS) {
    throw bad('datasets', `an array of 1..${MAX_TASK_DATASETS} datasets`, o.datasets);
  }
  const datasets = o.datasets.map((d: unknown, i: number) => {
    if (d === null || typeof d !== 'object' || Array.isArray(d)) throw bad(`datasets[${i}]`, 'a map', d);
    const dd = d as Record<string, unknown>;
    return {
      id: u64(dd.id, `datasets[${i}].id`),
      ciphertextHash: Uint8Array.from(bytes32(dd.ciphertextHash, `datasets[${i}].ciphertextHash`)),
    };
  });
  for (let i = 1; i < datasets.length; i++) {
    if (datasets[i].id <= datasets[i - 1].id) throw bad('datasets', 'ids strictly ascending', o.datasets);
  }
  return Object.freeze({
    chainId: u64(o.chainId, 'chainId'),
    taskId: u64(o.taskId, 'taskId'),
    attempt,
    seed: Uint8Array.from(bytes32(o.seed, 'seed')),
    appId: u64(o.appId, 'appId'),
    appMeasurement: Uint8Array.from(bytes32(o.appMeasurement, 'appMeasurement')),
    inputHash: Uint8Array.from(bytes32(o.inputHash, 'inputHash')),
    resultRecipient: Uint8Array.from(recipient),
    datasets: Object.freeze(datasets.map((d) => Object.freeze(d))),
  });
}

/** The commitments as a canonical value (the body of the tagged object, and of the enclave's `init`). */
export function commitmentsValue(c: TaskCommitments): CanonicalValue {
  const k = checkCommitments(c);
  return {
    chainId: k.chainId,
    taskId: k.taskId,
    attempt: k.attempt,
    seed: k.seed,
    appId: k.appId,
    appMeasurement: k.appMeasurement,
    inputHash: k.inputHash,
    resultRecipient: k.resultRecipient,
    datasets: k.datasets.map((d) => ({ id: d.id, ciphertextHash: d.ciphertextHash })),
  };
}

/** The tagged canonical encoding `["ferry/task-commitments/v1", {...}]`. */
export function encodeCommitments(c: TaskCommitments): Uint8Array {
  return Uint8Array.from(encodeTagged(COMMITMENTS_TAG, commitmentsValue(c)));
}

/** SHA-256 of the tagged canonical encoding: what report_data and the key-release info bind. */
export function commitmentsHash(c: TaskCommitments): Uint8Array {
  return hashTagged(COMMITMENTS_TAG, commitmentsValue(c));
}

/**
 * The first difference between two sets of commitments, as a field name (`datasets[1].ciphertextHash`),
 * or null when they are equal. For error messages that say what an executor's enclave was bound to
 * that the chain does not say.
 */
export function commitmentsDiff(a: TaskCommitments, b: TaskCommitments): string | null {
  const x = checkCommitments(a);
  const y = checkCommitments(b);
  const hex = (u: Uint8Array) => toHex(u);
  for (const f of ['chainId', 'taskId', 'attempt', 'appId'] as const) if (x[f] !== y[f]) return f;
  for (const f of ['seed', 'appMeasurement', 'inputHash', 'resultRecipient'] as const) {
    if (hex(x[f]) !== hex(y[f])) return f;
  }
  if (x.datasets.length !== y.datasets.length) return 'datasets';
  for (let i = 0; i < x.datasets.length; i++) {
    if (x.datasets[i].id !== y.datasets[i].id) return `datasets[${i}].id`;
    if (hex(x.datasets[i].ciphertextHash) !== hex(y.datasets[i].ciphertextHash)) {
      return `datasets[${i}].ciphertextHash`;
    }
  }
  return null;
}
