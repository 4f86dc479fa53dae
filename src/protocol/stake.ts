/**
 * Sortition's arithmetic every judgement shares (docs/protocol.md §13.8): stake enters it in
 * whole units of 10^15 wei (a node's stake and the task's total verifier stake are both divided
 * by STAKE_UNIT and floored), a VRF proof check that never throws, and the seats a verifier's
 * output gives it.
 */
import type { Hex } from 'viem';
import type { TaskInfo } from '../chain/index.ts';
import { sortitionSeats } from '../crypto/index.ts';
import { vrfVerify } from '../crypto/vrf/index.ts';
import { equalBytes, fromHex } from '../kernel/index.ts';

export const STAKE_UNIT = 10n ** 15n;

export function stakeUnits(wei: bigint): bigint {
  return wei / STAKE_UNIT;
}

export function hexBytes(h: Hex | string): Uint8Array {
  return fromHex(h, 'hex');
}

/** True when `proof` is a valid VRF proof by `vrfPublicKey` over `alpha` whose output is `output`. */
export function vrfProofMatches(
  vrfPublicKey: Uint8Array,
  alpha: Uint8Array,
  proof: Uint8Array,
  output: Uint8Array,
): boolean {
  try {
    return equalBytes(vrfVerify(vrfPublicKey, alpha, proof), output);
  } catch {
    return false;
  }
}

/** Seats a verifier holds for a task by sortition (0 when not selected). */
export function seatsFor(
  beta: Uint8Array,
  stakeWei: bigint,
  task: Pick<TaskInfo, 'totalVerifierStake' | 'tau'>,
): number {
  const W = stakeUnits(task.totalVerifierStake);
  let w = stakeUnits(stakeWei);
  if (W <= 0n || w <= 0n) return 0;
  if (w > W) w = W;
  return sortitionSeats(beta, w, W, task.tau);
}
