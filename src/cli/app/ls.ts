/** `ferry app ls`: apps registered on chain. */
import { ferryHome } from '../../kernel/index.ts';
import { defineCommand } from '../command.ts';
import { appJson, listApps, table } from '../journey/listing.ts';
import {
  chainReader,
  locateNetwork,
  NETWORK_OPTIONS,
  PROFILE_OPTION,
  profileName,
} from '../journey/network.ts';
import { loadProfile } from '../profile/store.ts';

export default defineCommand({
  name: 'app ls',
  summary: 'list the apps registered on chain',
  usage: 'app ls [--mine [--profile NAME]] [--json]',
  description: `
Lists every app registered with the network's Assets contract; --mine keeps the profile's.
--json prints {"apps": [{"appId", "owner", "measurement", "ciphertextHash", "endpoint",
"price", "revoked"}]}.`,
  options: {
    mine: { type: 'boolean', description: "only the profile's apps" },
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
    const list = (await listApps(c)).filter((a) => owner === null || a.owner.toLowerCase() === owner);
    return {
      json: { apps: list.map(appJson) },
      text: list.length
        ? table(
            ['ID', 'OWNER', 'MEASUREMENT', 'PRICE', 'STATE'],
            list.map((a) => [
              a.appId.toString(),
              `${a.owner.slice(0, 10)}…`,
              a.measurement.slice(2),
              a.price.toString(),
              a.revoked ? 'revoked' : 'active',
            ]),
          )
        : 'no apps',
    };
  },
});
