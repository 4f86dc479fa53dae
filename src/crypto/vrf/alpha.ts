/**
 * The VRF inputs (alpha) of Ferry's two self-selections (docs/protocol.md sections 1 and 3):
 *
 *     claimAlpha    = DST("ferry/claim/v1")              || u64(chainId) || b32(taskId) || u32(attempt) || seed(32)
 *     verifierAlpha = DST("ferry/verifier-selection/v1") || u64(chainId) || b32(taskId) || u32(attempt) || seed(32)
 *
 * DST(s) is ASCII s followed by one zero byte; integers are unsigned big-endian.
 */
import { describe, FerryError, utf8 } from '../../kernel/index.ts';

export type AlphaParams = {
  /** EVM chain id, 0 <= chainId < 2^64. */
  chainId: bigint;
  /** The task's uint256 id, 0 <= taskId < 2^256. */
  taskId: bigint;
  /** Attempt number, 1 <= attempt < 2^32. */
  attempt: number;
  /** The attempt's 32-byte seed. */
  seed: Uint8Array;
};

export const CLAIM_DST = 'ferry/claim/v1';
export const VERIFIER_SELECTION_DST = 'ferry/verifier-selection/v1';

function bad(what: string, expected: string, got: unknown): FerryError {
  return new FerryError('INVALID_ARGUMENT', `${what}: expected ${expected}`, {
    hints: [
      `expected: ${expected}`,
      `got: ${typeof got === 'bigint' || typeof got === 'number' ? String(got) : describe(got)}`,
    ],
  });
}

function bigEndian(n: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

function build(dst: string, p: AlphaParams): Uint8Array {
  if (p === null || typeof p !== 'object') throw bad('alpha params', '{chainId, taskId, attempt, seed}', p);
  const { chainId, taskId, attempt, seed } = p;
  if (typeof chainId !== 'bigint' || chainId < 0n || chainId >= 1n << 64n) {
    throw bad('chainId', 'a bigint in [0, 2^64)', chainId);
  }
  if (typeof taskId !== 'bigint' || taskId < 0n || taskId >= 1n << 256n) {
    throw bad('taskId', 'a bigint in [0, 2^256)', taskId);
  }
  if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1 || attempt > 0xffffffff) {
    throw bad('attempt', 'an integer in [1, 2^32)', attempt);
  }
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw bad('seed', 'Uint8Array(32)', seed);
  const d = utf8(dst);
  const out = new Uint8Array(d.length + 1 + 8 + 32 + 4 + 32);
  let o = 0;
  out.set(d, o);
  o += d.length + 1; // the DST's zero byte
  out.set(bigEndian(chainId, 8), o);
  o += 8;
  out.set(bigEndian(taskId, 32), o);
  o += 32;
  out.set(bigEndian(BigInt(attempt), 4), o);
  o += 4;
  out.set(seed, o);
  return out;
}

/** alpha for an executor's claim of (chainId, taskId, attempt). Throws INVALID_ARGUMENT. */
export function claimAlpha(p: AlphaParams): Uint8Array {
  return build(CLAIM_DST, p);
}

/** alpha for a verifier's committee self-selection. Throws INVALID_ARGUMENT. */
export function verifierAlpha(p: AlphaParams): Uint8Array {
  return build(VERIFIER_SELECTION_DST, p);
}

/**
 * How beta is used: "lowest output wins" compares the first 32 bytes of beta as a big-endian
 * uint256. Throws INVALID_ARGUMENT unless beta is 64 bytes.
 */
export function betaScore(beta: Uint8Array): bigint {
  if (!(beta instanceof Uint8Array) || beta.length !== 64) throw bad('beta', 'Uint8Array(64)', beta);
  let n = 0n;
  for (let i = 0; i < 32; i++) n = (n << 8n) | BigInt(beta[i]);
  return n;
}

/**
 * The sortition fraction r in [0, 1): the first 8 bytes of beta as a big-endian integer n,
 * divided by 2^64. As a double, n / 2^64 rounded down to 53 bits (n >> 11 over 2^53), so
 * r < 1 always. Throws INVALID_ARGUMENT unless beta is 64 bytes.
 */
export function betaFraction(beta: Uint8Array): number {
  if (!(beta instanceof Uint8Array) || beta.length !== 64) throw bad('beta', 'Uint8Array(64)', beta);
  let n = 0n;
  for (let i = 0; i < 8; i++) n = (n << 8n) | BigInt(beta[i]);
  return Number(n >> 11n) / 2 ** 53;
}
