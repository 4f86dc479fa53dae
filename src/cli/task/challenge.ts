/**
 * `ferry task challenge ID (--voter ADDRESS | --claim) [--attempt N] [--dry-run]`: proves a
 * false vote or best claim on chain (a fraud proof, docs/protocol.md section 11.5). Judges the
 * recorded vote or claim first with the contract's own rules and sends nothing when it is true.
 */
import { type Address, isAddress } from 'viem';
import { challengeClaim, challengeVote, type FerryEvent, getTask, getTaskEvents } from '../../chain/index.ts';
import { FerryError, ferryHome } from '../../kernel/index.ts';
import { type AttemptRecord, attemptRecord, claimCase, voteCase } from '../../protocol/index.ts';
import { intOption, optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';
import { parseId } from '../journey/args.ts';
import { actAs, locateNetwork, NETWORK_OPTIONS, PROFILE_OPTION, profileName } from '../journey/network.ts';

function usage(message: string, hint?: string): FerryError {
  return new FerryError('USAGE', message, { hints: hint ? [hint] : [] });
}

/** The latest attempt with the voter's vote (or with a best claim). */
function latestAttempt(events: FerryEvent[], voter: Address | null): number | null {
  const hits = events.filter((e) =>
    voter
      ? e.eventName === 'VoteCast' && String(e.args.verifier).toLowerCase() === voter.toLowerCase()
      : e.eventName === 'TaskClaimed' && e.args.best === true,
  );
  const last = hits.at(-1);
  return last ? Number(last.args.attempt) : null;
}

export default defineCommand({
  name: 'task challenge',
  summary: 'prove a false vote or claim on chain (a fraud proof): the liar is slashed',
  usage: 'task challenge ID (--voter ADDRESS | --claim) [--attempt N] [--dry-run] [--profile NAME] [--json]',
  description: `
Gathers what the chain recorded for a verifier's vote (--voter) or for the attempt's best claim
(--claim): the VoteCast or TaskClaimed event, the attempt's seed and the node's VRF key and stake
as registered before the task. Judges it with the contract's rules: a VRF proof that does not
verify or gives another output, or (votes) seats provably more than sortition gives. When it is
false, sends the fraud proof from the profile's account (about 1 M gas); the liar is slashed
and jailed, and an executor its lie excluded is restored. --attempt defaults to the latest
attempt with such a vote or claim. --dry-run judges without sending.
--json prints {"taskId", "attempt", "kind", "node", "fraud", "sent", "transaction", "gasUsed",
"slashed", "restored"} (fraud: "vote-vrf", "vote-seats", "claim-vrf" or null).
Exit 0 when the proof was sent (or, with --dry-run, when the record is false); 1 when the
vote or claim is true (CHAIN_NO_FRAUD) or no longer recorded (CHAIN_CHALLENGE_MISMATCH);
2 for usage or an unknown task, vote or claim; 4 when the chain is unreachable.`,
  options: {
    voter: { type: 'string', value: 'ADDRESS', description: 'the verifier whose vote to challenge' },
    claim: { type: 'boolean', description: "challenge the attempt's best claim" },
    attempt: {
      type: 'string',
      value: 'N',
      description: 'the attempt (default: the latest with such a record)',
    },
    'dry-run': { type: 'boolean', description: 'judge only; send nothing' },
    ...PROFILE_OPTION,
    ...NETWORK_OPTIONS,
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const taskId = parseId(ctx.positionals[0], 'task ID');
    const voterText = optionalString(ctx, 'voter');
    const isClaim = ctx.values.claim === true;
    if ((voterText === undefined) === !isClaim) {
      throw usage('give exactly one of --voter ADDRESS and --claim');
    }
    if (voterText !== undefined && !isAddress(voterText)) {
      throw usage('--voter must be a 0x-prefixed 20-byte address', `got: ${voterText}`);
    }
    const voter = (voterText ?? null) as Address | null;
    const given = ctx.values.attempt === undefined ? null : intOption(ctx, 'attempt', undefined, 1);
    const net = locateNetwork(ctx);
    const { chain } = await actAs(net, ferryHome(ctx.env), profileName(ctx));
    const task = await getTask(chain, taskId);
    if (!task) {
      throw new FerryError('TASK_NOT_FOUND', `task ${taskId} does not exist`, {
        hints: ['list tasks with: ferry task ls'],
      });
    }
    let attempt: number;
    let record: AttemptRecord;
    if (given !== null) {
      attempt = given;
      record = await attemptRecord(chain, { task, attempt });
    } else {
      // Every attempt's events, read once: the latest attempt with such a record, then its events.
      const events = await getTaskEvents(chain, taskId, { fromBlock: task.createdBlock });
      const found = latestAttempt(events, voter);
      if (found === null) {
        throw new FerryError(
          'CHAIN_NOT_FOUND',
          voter ? `${voter} cast no vote in task ${taskId}` : `task ${taskId} has no claim`,
        );
      }
      attempt = found;
      record = { task, attempt, events: events.filter((e) => Number(e.args.attempt) === attempt) };
    }
    const c = voter
      ? await voteCase(chain, chain.chainId, { taskId, attempt, voter }, record)
      : await claimCase(chain, chain.chainId, { taskId, attempt }, record);
    const base = {
      taskId: taskId.toString(),
      attempt,
      kind: c.kind,
      node: c.node,
      fraud: c.fraud,
    };
    if (c.fraud === null) {
      throw new FerryError(
        'CHAIN_NO_FRAUD',
        `the ${c.kind} of ${c.node} in attempt ${attempt} is true: nothing to prove`,
        {
          hints: ['its VRF proof verifies and gives its output, and its seats are not provably too many'],
          details: base,
        },
      );
    }
    if (c.kind === 'claim' && !c.recorded) {
      throw new FerryError(
        'CHAIN_CHALLENGE_MISMATCH',
        `the false claim of ${c.node} in attempt ${attempt} is no longer recorded: a later claim replaced it`,
        { details: base },
      );
    }
    if (ctx.values['dry-run'] === true) {
      return {
        json: { ...base, sent: false, transaction: null, gasUsed: null, slashed: null, restored: null },
        text: `${c.kind} of ${c.node} in attempt ${attempt}: false (${c.fraud}); not sent (--dry-run)`,
      };
    }
    ctx.progress(`sending the fraud proof (${c.fraud}) …`);
    const r =
      c.kind === 'vote'
        ? await challengeVote(chain, { taskId, attempt, voter: c.node, proof: c.proof })
        : await challengeClaim(chain, { taskId, attempt, claimant: c.node, proof: c.proof });
    return {
      json: {
        ...base,
        fraud: r.fraud,
        sent: true,
        transaction: r.hash,
        gasUsed: r.gasUsed.toString(),
        slashed: r.slashed.toString(),
        restored: r.restored,
      },
      text: [
        `proven false: the ${c.kind} of ${c.node} in attempt ${attempt} (${r.fraud})`,
        `slashed ${r.slashed} wei (burnt); the node is jailed`,
        r.restored ? 'the executor the lie excluded may claim again; the task got an attempt back' : '',
        `transaction ${r.hash} (${r.gasUsed} gas)`,
      ]
        .filter(Boolean)
        .join('\n'),
    };
  },
});
