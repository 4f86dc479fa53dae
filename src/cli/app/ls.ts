/** `ferry app ls`: apps registered on chain, with their TEE kinds and appraisal policy. */
import { ferryHome } from '../../kernel/index.ts';
import { PolicyBook } from '../../protocol/index.ts';
import { defineCommand } from '../command.ts';
import { appJson, listApps, table } from '../journey/listing.ts';
import {
  chainReader,
  locateNetwork,
  NETWORK_OPTIONS,
  PROFILE_OPTION,
  profileName,
} from '../journey/network.ts';
import { loadProfile } from '../../profile/index.ts';

export default defineCommand({
  name: 'app ls',
  summary: 'list the apps registered on chain',
  usage: 'app ls [--mine [--profile NAME]] [--json]',
  description: `
Lists every app registered with the network's Assets contract; --mine keeps the profile's.
The policy is shown by name when its document (built in, or published with the app) decodes.
--json prints {"apps": [{"appId", "owner", "measurement", "ciphertextHash", "endpoint",
"price", "revoked", "teeKinds", "appraisalPolicyHash", "policyEpoch", "appraisalPolicy"}]}
(appraisalPolicy: the policy's name, or null when it cannot be resolved).`,
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
    // Only to name the policy: the document is read, never applied here.
    const book = new PolicyBook({ allowSim: true });
    const names = await Promise.all(
      list.map(async (a) => {
        try {
          const p = await book.resolve(c, { kind: 'app', id: a.appId }, a.appraisalPolicyHash);
          return p?.name ?? null;
        } catch {
          return null;
        }
      }),
    );
    return {
      json: { apps: list.map((a, i) => ({ ...appJson(a), appraisalPolicy: names[i] })) },
      text: list.length
        ? table(
            ['ID', 'OWNER', 'MEASUREMENT', 'PRICE', 'TEE', 'POLICY', 'STATE'],
            list.map((a, i) => [
              a.appId.toString(),
              `${a.owner.slice(0, 10)}…`,
              a.measurement.slice(2),
              a.price.toString(),
              a.teeKinds.join(','),
              names[i] ?? `${a.appraisalPolicyHash.slice(2, 18)}…`,
              a.revoked ? 'revoked' : 'active',
            ]),
          )
        : 'no apps',
    };
  },
});
