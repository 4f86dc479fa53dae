/**
 * Fraud proofs (docs/protocol.md section 11.5): anyone proves on chain that a recorded vote or
 * best claim was false — its VRF proof does not verify under the node's key, or gives another
 * output, or a vote's seats are provably more than sortition gives. The liar is slashed and
 * jailed; what its lie took from an honest executor is given back.
 *
 * The contract stores a record (a hash) of every vote and of the best claim; a challenger
 * resupplies what was recorded (`voteRecord` / `claimRecord` here compute the same hashes), and
 * the contract re-checks it with FraudVerifier. Refusals: CHAIN_CHALLENGE_MISMATCH (what was
 * supplied is not what was recorded), CHAIN_NO_FRAUD (the vote or claim is true).
 */
import { type Address, encodePacked, type Hex, keccak256 } from 'viem';
import { tasksAbi } from './abi.ts';
import { sendTx } from './client.ts';
import { address, hexBytes, smallUint, uint } from './encode.ts';
import { taskEvent } from './tasks.ts';
import type { ChainWriter, TxResult } from './types.ts';

/** What a fraud proof proved (the FraudProven event's `fraud`, 1-based). */
export const FRAUD_KINDS = ['claim-vrf', 'vote-vrf', 'vote-seats'] as const;
export type FraudKind = (typeof FRAUD_KINDS)[number];

/** A vote as recorded, resupplied by a challenger (Tasks.VoteProof). */
export type VoteProof = {
  pass: boolean;
  seats: number;
  /** The voter's stake, wei, as the registry held it before the task was created. */
  stake: bigint;
  /** The attempt's seed (TaskSeeded). */
  seed: Uint8Array | Hex;
  /** The attempt's executor when the vote was cast. */
  executor: Address;
  vrfOutput: Uint8Array | Hex;
  vrfProof: Uint8Array | Hex;
};

/** The best claim as recorded, resupplied by a challenger (Tasks.ClaimProof). */
export type ClaimProof = {
  seed: Uint8Array | Hex;
  vrfOutput: Uint8Array | Hex;
  vrfProof: Uint8Array | Hex;
};

export type FraudProven = TxResult & {
  liar: Address;
  fraud: FraudKind;
  /** Wei burnt from the liar's stake. */
  slashed: bigint;
  /** The lie's victim was given back its exclusion and the task an attempt. */
  restored: boolean;
};

const KIND_MASK = 7n;

function voteArgs(p: VoteProof) {
  return {
    pass: p.pass === true,
    seats: smallUint(p.seats, 'seats', 65535),
    stake: uint(p.stake, 'stake', 2n ** 128n - 1n),
    seed: hexBytes(p.seed, 'seed', 32),
    executor: address(p.executor, 'executor'),
    vrfOutput: hexBytes(p.vrfOutput, 'vrfOutput', 64),
    vrfProof: hexBytes(p.vrfProof, 'vrfProof', 80),
  };
}

function claimArgs(p: ClaimProof) {
  return {
    seed: hexBytes(p.seed, 'seed', 32),
    vrfOutput: hexBytes(p.vrfOutput, 'vrfOutput', 64),
    vrfProof: hexBytes(p.vrfProof, 'vrfProof', 80),
  };
}

/**
 * The record Tasks stores with a vote: keccak256 of the packed (bool pass, uint16 seats, uint128
 * stake, bytes32 seed, address executor, vrfOutput, vrfProof) with its low 3 bits cleared (the
 * contract keeps the vote's kind there).
 */
export function voteRecord(p: VoteProof): Hex {
  const a = voteArgs(p);
  const h = keccak256(
    encodePacked(
      ['bool', 'uint16', 'uint128', 'bytes32', 'address', 'bytes', 'bytes'],
      [a.pass, a.seats, a.stake, a.seed, a.executor, a.vrfOutput, a.vrfProof],
    ),
  );
  return `0x${(BigInt(h) & ~KIND_MASK).toString(16).padStart(64, '0')}`;
}

/**
 * The record Tasks stores as a task's `bestOutput`: the claim output's first 8 bytes (its x),
 * then the last 24 bytes of keccak256 of the packed (uint8 attempt, address claimant, bytes32
 * seed, vrfOutput, vrfProof).
 */
export function claimRecord(attempt: number, claimant: Address, p: ClaimProof): Hex {
  const a = claimArgs(p);
  const h = keccak256(
    encodePacked(
      ['uint8', 'address', 'bytes32', 'bytes', 'bytes'],
      [smallUint(attempt, 'attempt', 255), address(claimant, 'claimant'), a.seed, a.vrfOutput, a.vrfProof],
    ),
  );
  return `0x${a.vrfOutput.slice(2, 18)}${h.slice(-48)}`;
}

function proven(r: TxResult & { logs: readonly { topics: readonly Hex[]; data: Hex }[] }): FraudProven {
  const a = taskEvent(r.logs, 'FraudProven') as
    | { liar: Address; fraud: number; slashed: bigint; restored: boolean }
    | undefined;
  // sendTx resolves only for a successful transaction, and a successful challenge emits it.
  if (!a) throw new Error('FraudProven missing from a successful challenge');
  return {
    hash: r.hash,
    blockNumber: r.blockNumber,
    gasUsed: r.gasUsed,
    liar: a.liar,
    fraud: FRAUD_KINDS[a.fraud - 1],
    slashed: a.slashed,
    restored: a.restored,
  };
}

/** Gas added to a challenge's estimate: the verification's cost depends on the hash-to-curve tries. */
const CHALLENGE_GAS_HEADROOM = 300_000n;

/** Proves `voter`'s vote in `attempt` false on chain (see the module comment). */
export async function challengeVote(
  c: ChainWriter,
  p: { taskId: bigint; attempt: number; voter: Address; proof: VoteProof },
): Promise<FraudProven> {
  const a = voteArgs(p.proof);
  return proven(
    await sendTx(c, {
      address: c.contracts.Tasks,
      abi: tasksAbi,
      functionName: 'challengeVote',
      args: [uint(p.taskId, 'taskId'), uint(p.attempt, 'attempt', 255n), address(p.voter, 'voter'), a],
      gasHeadroom: CHALLENGE_GAS_HEADROOM,
    }),
  );
}

/** Proves the best claim of `attempt`, by `claimant`, false on chain. */
export async function challengeClaim(
  c: ChainWriter,
  p: { taskId: bigint; attempt: number; claimant: Address; proof: ClaimProof },
): Promise<FraudProven> {
  return proven(
    await sendTx(c, {
      address: c.contracts.Tasks,
      abi: tasksAbi,
      functionName: 'challengeClaim',
      args: [
        uint(p.taskId, 'taskId'),
        uint(p.attempt, 'attempt', 255n),
        address(p.claimant, 'claimant'),
        claimArgs(p.proof),
      ],
      gasHeadroom: CHALLENGE_GAS_HEADROOM,
    }),
  );
}
