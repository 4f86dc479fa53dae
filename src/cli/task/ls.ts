/** `ferry task ls [--mine]`: tasks on chain with their status. */
import { ferryHome } from '../../kernel/index.ts';
import { defineCommand } from '../command.ts';
import { listTasks, table, taskJson } from '../journey/listing.ts';
import {
  chainReader,
  locateNetwork,
  NETWORK_OPTIONS,
  PROFILE_OPTION,
  profileName,
} from '../journey/network.ts';
import { loadProfile } from '../../profile/index.ts';
import { eventsSince } from '../../audit/index.ts';
import { type AppOutcome, outcomeJson, outcomeOfEvent } from '../journey/outcome.ts';

export default defineCommand({
  name: 'task ls',
  summary: 'list the tasks on chain with their status',
  usage: 'task ls [--mine [--profile NAME]] [--json]',
  description: `
Lists every task of the network's Tasks contract; --mine keeps the profile's (as requester).
--json prints {"tasks": [{"taskId", "status", "attempt", "requester", "appId", "datasetIds",
"executor", ..., "outcome", "appExitCode", "limitHit"}]} with status one of created, seeded, claimed, attesting, attested, running,
completed, rejected, failed, expired.`,
  options: {
    mine: { type: 'boolean', description: "only the profile's tasks" },
    ...PROFILE_OPTION,
    ...NETWORK_OPTIONS,
  },
  async run(ctx) {
    const net = locateNetwork(ctx);
    const who =
      ctx.values.mine === true
        ? loadProfile(ferryHome(ctx.env), profileName(ctx)).address.toLowerCase()
        : null;
    const c = await chainReader(net);
    const list = (await listTasks(c)).filter((t) => who === null || t.requester.toLowerCase() === who);
    // The outcome of each completed task, from its receipt in the TaskCompleted event.
    const completed = list.filter((t) => t.status === 'completed');
    const outcomes = new Map<bigint, AppOutcome | null>();
    if (completed.length > 0) {
      let from = completed[0].createdBlock;
      for (const t of completed) if (t.createdBlock < from) from = t.createdBlock;
      for (const e of await eventsSince(c, from)) {
        if (e.eventName === 'TaskCompleted') outcomes.set(BigInt(e.args.taskId as bigint), outcomeOfEvent(e));
      }
    }
    return {
      json: { tasks: list.map((t) => ({ ...taskJson(t), ...outcomeJson(outcomes.get(t.taskId) ?? null) })) },
      text: list.length
        ? table(
            ['ID', 'STATUS', 'OUTCOME', 'ATTEMPT', 'APP', 'DATASETS', 'REQUESTER'],
            list.map((t) => [
              t.taskId.toString(),
              t.status,
              outcomes.get(t.taskId)?.summary ?? '-',
              String(t.attempt),
              t.appId.toString(),
              t.datasetIds.join(','),
              `${t.requester.slice(0, 10)}…`,
            ]),
          )
        : 'no tasks',
    };
  },
});
