/** `ferry task show ID`: a task's state, its timeline from the chain, and why it failed if it did. */
import { eventsOfTask, eventsSince } from '../../audit/index.ts';
import { getTask } from '../../chain/index.ts';
import { FerryError } from '../../kernel/index.ts';
import { describeTaskEvent } from '../../protocol/index.ts';
import { explainFailure } from '../../requester/index.ts';
import { defineCommand } from '../command.ts';
import { parseId } from '../journey/args.ts';
import { taskJson } from '../journey/listing.ts';
import {
  type AuditTrust,
  auditTrust,
  chainReader,
  locateNetwork,
  type Network,
  NETWORK_OPTIONS,
  TRUST_OPTIONS,
} from '../journey/network.ts';
import { appSucceeded, outcomeJson, outcomeOfEvent } from '../journey/outcome.ts';

export default defineCommand({
  name: 'task show',
  summary: "a task's state, timeline and votes from the chain",
  usage: 'task show ID [--json]',
  description: `
Reads the task and its events from the chain. --json prints the task's fields ("taskId",
"status" (created, seeded, claimed, attesting, attested, running, completed, rejected, failed,
expired), "attempt", "requester", "appId", "datasetIds", "executor", "tau", "threshold",
"passSeats", "failSeats", ...), "timeline": [{"event", "attempt", "block", "detail"}], "votes",
"result" ({"location", "hash"} once completed), "outcome", "appExitCode" and "limitHit"
(how the app ended, as its receipt on chain says; null until completed) and, for a failed or expired task, "error":
{"code", "message", "hints"} saying why.`,
  options: { ...NETWORK_OPTIONS, ...TRUST_OPTIONS },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const taskId = parseId(ctx.positionals[0], 'task ID');
    const net = locateNetwork(ctx);
    const c = await chainReader(net);
    const task = await getTask(c, taskId);
    if (!task) {
      throw new FerryError('TASK_NOT_FOUND', `task ${taskId} does not exist`, {
        hints: ['list tasks with: ferry task ls'],
      });
    }
    const events = eventsOfTask(await eventsSince(c, task.createdBlock), taskId);
    const timeline = events.map((e) => ({
      event: e.eventName,
      attempt: e.args.attempt === undefined ? null : Number(e.args.attempt),
      block: e.blockNumber.toString(),
      detail: describeTaskEvent(e),
    }));
    const votes = events
      .filter((e) => e.eventName === 'VoteCast')
      .map((e) => ({
        attempt: Number(e.args.attempt),
        verifier: String(e.args.verifier),
        pass: e.args.pass === true,
        seats: Number(e.args.seats),
      }));
    const done = events.find((e) => e.eventName === 'TaskCompleted');
    const outcome = outcomeOfEvent(done);
    const error =
      task.status === 'failed' || task.status === 'expired'
        ? (await explainFailure(c, c.chainId, task, events, reappraisalTrust(net))).toJSON()
        : undefined;
    const out = {
      ...taskJson(task),
      ...outcomeJson(outcome),
      timeline,
      votes,
      result: done
        ? { location: String(done.args.resultLocation), hash: String(done.args.resultHash).slice(2) }
        : null,
      ...(error ? { error } : {}),
    };
    const text = [
      `task ${taskId}: ${task.status} (attempt ${task.attempt}), app ${task.appId}, datasets ${task.datasetIds.join(', ')}`,
      ...(outcome
        ? [
            `  outcome: ${outcome.summary}${appSucceeded(outcome) ? '' : ' (the app failed; the receipt is still valid)'}`,
            ...(outcome.hint ? [`    ${outcome.hint}`] : []),
          ]
        : []),
      `  committee tau ${task.tau}, threshold ${task.threshold}; pass seats ${task.passSeats}, fail seats ${task.failSeats}`,
      ...timeline.map((t) => `  block ${t.block.padStart(6)}  ${t.event.padEnd(18)} ${t.detail}`),
      ...(error ? [`  why: ${error.message}`, ...error.hints.map((h) => `    ${h}`)] : []),
    ].join('\n');
    return { json: out, text };
  },
});

/**
 * The trust for explaining a rejected attempt: best effort, like the explanation itself (an
 * unreadable tpm2 CA file leaves tpm2 evidence unappraised rather than failing `task show`).
 */
function reappraisalTrust(net: Network): AuditTrust {
  try {
    return auditTrust(net);
  } catch {
    return { simRoots: net.simRoots };
  }
}
