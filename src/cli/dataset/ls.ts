/** `ferry dataset ls [--owner ADDRESS|--mine]`: datasets registered on chain. */
import { ferryHome } from '../../kernel/index.ts';
import { defineCommand } from '../command.ts';
import { datasetJson, listDatasets, table } from '../journey/listing.ts';
import {
  chainReader,
  locateNetwork,
  NETWORK_OPTIONS,
  PROFILE_OPTION,
  profileName,
} from '../journey/network.ts';
import { loadProfile } from '../../profile/index.ts';

export default defineCommand({
  name: 'dataset ls',
  summary: 'list the datasets registered on chain',
  usage: 'dataset ls [--mine [--profile NAME]] [--json]',
  description: `
Lists every dataset registered with the network's Assets contract (from its events and the
getDataset reader); --mine keeps those owned by the profile's account.
--json prints {"datasets": [{"datasetId", "owner", "ciphertextHash", "endpoint", "price",
"revoked", "uses", "policy": {...}}]}.`,
  options: {
    mine: { type: 'boolean', description: "only the profile's datasets" },
    ...PROFILE_OPTION,
    ...NETWORK_OPTIONS,
  },
  async run(ctx) {
    const net = locateNetwork(ctx);
    const owner =
      ctx.values.mine === true
        ? loadProfile(ferryHome(ctx.env), profileName(ctx)).address.toLowerCase()
        : null;
    const c = await chainReader(net);
    const list = (await listDatasets(c)).filter((d) => owner === null || d.owner.toLowerCase() === owner);
    return {
      json: { datasets: list.map(datasetJson) },
      text: list.length
        ? table(
            ['ID', 'OWNER', 'REGIONS', 'TEE', 'TAU/T', 'USES', 'STATE'],
            list.map((d) => [
              d.datasetId.toString(),
              `${d.owner.slice(0, 10)}…`,
              d.policy.allowedRegions.join(',') || 'any',
              d.policy.teeKinds.join(','),
              `${d.policy.tau}/${d.policy.threshold}`,
              d.policy.maxUses ? `${d.uses}/${d.policy.maxUses}` : String(d.uses),
              d.revoked ? 'revoked' : 'active',
            ]),
          )
        : 'no datasets',
    };
  },
});
