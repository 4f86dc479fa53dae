/**
 * The evidence binding (docs/protocol.md §8.2): the 64-byte report_data an enclave puts in its
 * evidence, binding the task commitments (commitments.ts) and the enclave's two public keys.
 *
 *   report_data = SHA-512( "ferry/evidence-binding/v2" || 0x00 || commitmentsHash (32)
 *                          || x25519Pub (32) || ed25519Pub (32) )
 *
 * Version 2 replaces v1's (chainId, taskId, attempt, seed): those are inside the commitments,
 * which also fix the app, the input, the result recipient and the datasets. Pure; loaded by the
 * enclave runtime.
 */
import { createHash } from 'node:crypto';
import { describe, FerryError } from '../kernel/index.ts';
import { commitmentsHash, type TaskCommitments } from './commitments.ts';

export const BINDING_DOMAIN = 'ferry/evidence-binding/v2';

export type BindingParams = {
  commitments: TaskCommitments;
  x25519Pub: Uint8Array;
  ed25519Pub: Uint8Array;
};

function key32(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== 32) {
    throw new FerryError('INVALID_ARGUMENT', `${what} must be 32 bytes`, {
      hints: ['expected: Uint8Array(32)', `got: ${describe(v)}`],
    });
  }
  return v;
}

/** report_data for an enclave of this attempt with these keys. Throws INVALID_ARGUMENT naming the field. */
export function reportDataFor(p: BindingParams): Uint8Array {
  if (p === null || typeof p !== 'object') {
    throw new FerryError('INVALID_ARGUMENT', 'reportDataFor expects {commitments, x25519Pub, ed25519Pub}', {
      hints: [`got: ${describe(p)}`],
    });
  }
  const c = commitmentsHash(p.commitments);
  return new Uint8Array(
    createHash('sha512')
      .update(`${BINDING_DOMAIN}\0`)
      .update(c)
      .update(key32(p.x25519Pub, 'x25519Pub'))
      .update(key32(p.ed25519Pub, 'ed25519Pub'))
      .digest(),
  );
}
