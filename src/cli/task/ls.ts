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

export default defineCommand({
  name: 'task ls',
  summary: 'list the tasks on chain with their status',
  usage: 'task ls [--mine [--profile NAME]] [--json]',
  description: `
Lists every task of the network's Tasks contract; --mine keeps the profile's (as requester).
--json prints {"tasks": [{"taskId", "status", "attempt", "requester", "appId", "datasetIds",
"executor", ...}]} with status one of created, seeded, claimed, attesting, attested, running,
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
    return {
      json: { tasks: list.map(taskJson) },
      text: list.length
        ? table(
            ['ID', 'STATUS', 'ATTEMPT', 'APP', 'DATASETS', 'REQUESTER'],
            list.map((t) => [
              t.taskId.toString(),
              t.status,
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
