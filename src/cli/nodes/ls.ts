/** `ferry nodes ls`: the nodes in the registry. */
import { defineCommand } from '../command.ts';
import { nodeJson, table } from '../journey/listing.ts';
import { chainReader, locateNetwork, NETWORK_OPTIONS } from '../journey/network.ts';
import { listNodes } from '../journey/ops.ts';

export default defineCommand({
  name: 'nodes ls',
  summary: 'list the nodes in the registry: roles, region, TEE kinds, status, stake',
  usage: 'nodes ls [--json]',
  description: `
Reads every node registered with the network's NodeRegistry (its NodeRegistered events and
getNode). --json prints {"nodes": [{"address", "roles", "status", "region", "teeKinds",
"stake" (wei, decimal), "endpoint", "vrfPublicKey", "signingKey", "lastHeartbeat"}]}.`,
  options: { ...NETWORK_OPTIONS },
  async run(ctx) {
    const c = await chainReader(locateNetwork(ctx));
    const nodes = await listNodes(c);
    return {
      json: { nodes: nodes.map(nodeJson) },
      text: nodes.length
        ? table(
            ['ADDRESS', 'ROLES', 'REGION', 'TEE', 'STATUS', 'STAKE (wei)', 'ENDPOINT'],
            nodes.map((n) => [
              n.address,
              n.roles.join(','),
              n.region,
              n.teeKinds.join(','),
              n.status,
              n.stake.toString(),
              n.endpoint,
            ]),
          )
        : 'no nodes',
    };
  },
});
