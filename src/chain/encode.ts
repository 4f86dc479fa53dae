/** Input validation for chain actions: every bad argument is named (noble style). */
import type { Address, Hex } from 'viem';
import { describe, FerryError } from '../kernel/index.ts';

/** Bytes as 0x-hex, from a Uint8Array or a 0x-hex string, optionally of an exact length. */
export function hexBytes(value: Uint8Array | string, what: string, length?: number): Hex {
  let hex: string;
  if (value instanceof Uint8Array) hex = `0x${Buffer.from(value).toString('hex')}`;
  else if (typeof value === 'string' && /^0x([0-9a-fA-F]{2})*$/.test(value)) hex = value.toLowerCase();
  else {
    throw new FerryError('INVALID_ARGUMENT', `${what}: expected bytes (Uint8Array or 0x-hex)`, {
      hints: [`got: ${describe(value)}`],
    });
  }
  const n = (hex.length - 2) / 2;
  if (length !== undefined && n !== length) {
    throw new FerryError('INVALID_ARGUMENT', `${what}: wrong length`, {
      hints: [`expected: ${length} bytes`, `got: ${n} bytes`],
    });
  }
  return hex as Hex;
}

export function address(value: string, what: string): Address {
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(value)) {
    throw new FerryError('INVALID_ARGUMENT', `${what}: expected a 0x-prefixed 20-byte address`, {
      hints: [`got: ${describe(value)}`],
    });
  }
  return value as Address;
}

/** A non-negative integer (bigint or safe number) as bigint, within `max`. */
export function uint(value: bigint | number, what: string, max = 2n ** 256n - 1n): bigint {
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else {
    throw new FerryError('INVALID_ARGUMENT', `${what}: expected a non-negative integer`, {
      hints: [`got: ${describe(value)}`],
    });
  }
  if (v < 0n || v > max) {
    throw new FerryError('INVALID_ARGUMENT', `${what}: out of range`, {
      hints: [`expected: 0 to ${max}`, `got: ${v}`],
    });
  }
  return v;
}

export function smallUint(value: number, what: string, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new FerryError('INVALID_ARGUMENT', `${what}: expected an integer from 0 to ${max}`, {
      hints: [`got: ${String(value)}`],
    });
  }
  return value;
}

export function text(value: string, what: string, maxBytes = 256, allowEmpty = false): string {
  if (
    typeof value !== 'string' ||
    (!allowEmpty && value.length === 0) ||
    Buffer.byteLength(value) > maxBytes
  ) {
    throw new FerryError('INVALID_ARGUMENT', `${what}: expected a string of 1 to ${maxBytes} bytes`, {
      hints: [`got: ${describe(value)}`],
    });
  }
  return value;
}
