/**
 * The challenger (§11.5): an executor proves on chain the lies that hurt it. When an attempt it
 * executed ends for a reason a lie can cause (evidence rejected, votes missed, keys missed), it
 * judges every vote of that attempt by the contract's rule and proves the false ones
 * (`challengeVote`): the liar is slashed and jailed, and the contract lifts this node's
 * exclusion and gives the task its attempt back. When another node's claim beats the claim it
 * made for the same attempt, it judges that claim and proves it if false (`challengeClaim`: the
 * attempt ends, reason fraud, and is given back).
 *
 * Best effort and at the node's cost (about 1 M gas a proof): anyone can also prove a lie with
 * `ferry task challenge`. With `challengeLies` off it only logs what it finds. A proof another
 * challenger sent first fails with CHAIN_CHALLENGE_MISMATCH, which is logged, not retried.
 */
import type { Address } from 'viem';
import { type ChainWriter, challengeClaim, challengeVote, hasClaimed } from '../chain/index.ts';
import { type Logger, toFerryError } from '../kernel/index.ts';
import { attemptRecord, claimCase, voteCase } from '../protocol/index.ts';
import type { Jobs } from './duties.ts';

export type ChallengerComponents = {
  chain: ChainWriter;
  chainId: number;
  address: string;
  jobs: Jobs;
  /** Send the proofs (true) or only log the lies found (false). */
  send: boolean;
  log: Logger;
};

export class Challenger {
  readonly #c: ChallengerComponents;

  constructor(c: ChallengerComponents) {
    this.#c = c;
  }

  /** The votes of an attempt this node executed, after it ended for a reason a lie can cause. */
  votes(taskId: bigint, attempt: number): void {
    const k = `challenge votes ${taskId}/${attempt}`;
    this.#c.jobs.enqueue(`task ${taskId}`, k, () => this.#votes(taskId, attempt), { key: k });
  }

  /** Another node's best claim of an attempt; judged only when this node claimed it too. */
  claim(taskId: bigint, attempt: number, claimant: string): void {
    const k = `check claim ${taskId}/${attempt}/${claimant.toLowerCase()}`;
    this.#c.jobs.enqueue(`task ${taskId}`, k, () => this.#claim(taskId, attempt, claimant as Address), {
      key: k,
    });
  }

  async #votes(taskId: bigint, attempt: number): Promise<void> {
    const { chain, chainId, log } = this.#c;
    // The task and the attempt's events are read once, from the task's creation block, and
    // every vote is judged from that one read.
    const record = await attemptRecord(chain, { taskId, attempt });
    const voters = record.events
      .filter((e) => e.eventName === 'VoteCast')
      .map((e) => String(e.args.verifier) as Address);
    for (const voter of voters) {
      const c = await voteCase(chain, chainId, { taskId, attempt, voter }, record);
      if (c.fraud === null) continue;
      log.warn('a false vote in an attempt this node executed', {
        taskId: String(taskId),
        attempt,
        voter,
        fraud: c.fraud,
      });
      if (!this.#c.send) continue;
      try {
        const r = await challengeVote(chain, { taskId, attempt, voter, proof: c.proof });
        log.info('proved a false vote', {
          taskId: String(taskId),
          attempt,
          voter,
          fraud: r.fraud,
          slashed: String(r.slashed),
          restored: r.restored,
          gasUsed: String(r.gasUsed),
        });
      } catch (e) {
        this.#refused(e, { taskId: String(taskId), attempt, voter });
      }
    }
  }

  async #claim(taskId: bigint, attempt: number, claimant: Address): Promise<void> {
    const { chain, chainId, log, address } = this.#c;
    if (!(await hasClaimed(chain, { taskId, attempt, node: address as Address }))) return;
    const c = await claimCase(chain, chainId, { taskId, attempt });
    if (c.fraud === null || !c.recorded || c.node.toLowerCase() !== claimant.toLowerCase()) return;
    log.warn('a false claim beat this node’s claim', {
      taskId: String(taskId),
      attempt,
      claimant,
      fraud: c.fraud,
    });
    if (!this.#c.send) return;
    try {
      const r = await challengeClaim(chain, { taskId, attempt, claimant, proof: c.proof });
      log.info('proved a false claim', {
        taskId: String(taskId),
        attempt,
        claimant,
        slashed: String(r.slashed),
        gasUsed: String(r.gasUsed),
      });
    } catch (e) {
      this.#refused(e, { taskId: String(taskId), attempt, claimant });
    }
  }

  #refused(e: unknown, fields: Record<string, unknown>): void {
    const fe = toFerryError(e);
    // Another challenger was first, or the record changed: nothing left to prove.
    if (fe.code === 'CHAIN_CHALLENGE_MISMATCH' || fe.code === 'CHAIN_NO_FRAUD') {
      this.#c.log.info('fraud proof not needed', { ...fields, code: fe.code });
      return;
    }
    throw fe;
  }
}
