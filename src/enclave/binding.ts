/** The evidence binding (docs/protocol.md §8): report_data for one attempt and the enclave's keys. */
import { createHash } from 'node:crypto';
import { describe, FerryError } from '../kernel/index.ts';

export type BindingParams = {
  chainId: bigint;
  taskId: bigint;
  attempt: number;
  x25519Pub: Uint8Array;
  ed25519Pub: Uint8Array;
  seed: Uint8Array;
};

const U64 = (1n << 64n) - 1n;
const U256 = (1n << 256n) - 1n;

function bytesArg(v: unknown, what: string, len: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== len) {
    throw new FerryError('INVALID_ARGUMENT', `${what} must be ${len} bytes`, {
      hints: [`expected: Uint8Array(${len})`, `got: ${describe(v)}`],
    });
  }
  return v;
}

/**
 * report_data = SHA512(DST("ferry/evidence-binding/v1") || u64(chainId) || b32(taskId) ||
 * u32(attempt) || x25519Pub || ed25519Pub || seed). Throws INVALID_ARGUMENT naming the field.
 */
export function reportDataFor(p: BindingParams): Uint8Array {
  if (typeof p?.chainId !== 'bigint' || p.chainId < 0n || p.chainId > U64) {
    throw new FerryError('INVALID_ARGUMENT', 'chainId must be a bigint in [0, 2^64)', {
      hints: [`got: ${describe(p?.chainId)}`],
    });
  }
  if (typeof p.taskId !== 'bigint' || p.taskId < 0n || p.taskId > U256) {
    throw new FerryError('INVALID_ARGUMENT', 'taskId must be a bigint in [0, 2^256)', {
      hints: [`got: ${describe(p.taskId)}`],
    });
  }
  if (!Number.isSafeInteger(p.attempt) || p.attempt < 1 || p.attempt > 0xffffffff) {
    throw new FerryError('INVALID_ARGUMENT', 'attempt must be an integer in 1..2^32-1', {
      hints: [`got: ${describe(p.attempt)}`],
    });
  }
  const fixed = Buffer.alloc(8 + 32 + 4);
  fixed.writeBigUInt64BE(p.chainId, 0);
  const task = Buffer.from(p.taskId.toString(16).padStart(64, '0'), 'hex');
  task.copy(fixed, 8);
  fixed.writeUInt32BE(p.attempt, 40);
  return new Uint8Array(
    createHash('sha512')
      .update('ferry/evidence-binding/v1\0')
      .update(fixed)
      .update(bytesArg(p.x25519Pub, 'x25519Pub', 32))
      .update(bytesArg(p.ed25519Pub, 'ed25519Pub', 32))
      .update(bytesArg(p.seed, 'seed', 32))
      .digest(),
  );
}
