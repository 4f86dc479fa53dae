/** `ferry nodes ls`: the nodes in the registry. */
import { defineCommand } from '../command.ts';
import { nodeJson, table } from '../journey/listing.ts';
import { chainReader, locateNetwork, NETWORK_OPTIONS } from '../journey/network.ts';
import { listNodes } from '../../requester/index.ts';

export default defineCommand({
  name: 'nodes ls',
  summary: 'list the nodes in the registry: roles, region, TEE kinds, status, stake, operator',
  usage: 'nodes ls [--json]',
  description: `
Reads every node registered with the network's NodeRegistry (its NodeRegistered events and
getNode). The operator is the node's declared operator (protocol.md §11.1), "self" in the text
table when it declared none. --json prints {"nodes": [{"address", "roles", "status", "region",
"teeKinds", "stake" (wei, decimal), "endpoint", "vrfPublicKey", "signingKey", "lastHeartbeat",
"operator" (an address; the node's own when it declared none), "jailedUntil" (unix seconds, 0
when never jailed), "jailedTask" (decimal id of the task whose attempt got it jailed, or null),
"openAttempts" (attempts whose stake it locks)}]}. A jailed node returns after jailedUntil (by
itself, or \`ferry node unjail\`).`,
  options: { ...NETWORK_OPTIONS },
  async run(ctx) {
    const c = await chainReader(locateNetwork(ctx));
    const nodes = await listNodes(c);
    return {
      json: {
        nodes: nodes.map((n) => ({
          ...nodeJson(n),
          operator: n.operator,
          jailedUntil: n.jailedUntil,
          jailedTask: n.jailedTask === null ? null : n.jailedTask.toString(),
          openAttempts: n.openAttempts,
        })),
      },
      text: nodes.length
        ? table(
            ['ADDRESS', 'ROLES', 'REGION', 'TEE', 'STATUS', 'STAKE (wei)', 'OPERATOR', 'ENDPOINT'],
            nodes.map((n) => [
              n.address,
              n.roles.join(','),
              n.region,
              n.teeKinds.join(','),
              n.status === 'jailed'
                ? `jailed until ${new Date(n.jailedUntil * 1000).toISOString()}${n.jailedTask === null ? '' : ` (task ${n.jailedTask})`}`
                : n.status,
              n.stake.toString(),
              n.operator.toLowerCase() === n.address.toLowerCase() ? 'self' : n.operator,
              n.endpoint,
            ]),
          )
        : 'no nodes',
    };
  },
});
