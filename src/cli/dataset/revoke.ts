/** `ferry dataset revoke ID`: the owner revokes a dataset; no new task can use it. */
import { markDatasetRevoked } from '../../agent/index.ts';
import { getDataset, revokeDataset } from '../../chain/index.ts';
import { FerryError, ferryHome } from '../../kernel/index.ts';
import { defineCommand } from '../command.ts';
import { parseId } from '../journey/args.ts';
import { actAs, locateNetwork, NETWORK_OPTIONS, PROFILE_OPTION, profileName } from '../journey/network.ts';

export default defineCommand({
  name: 'dataset revoke',
  summary: 'revoke a dataset (owner only): no new task may use it',
  usage: 'dataset revoke ID [--profile NAME] [--json]',
  description: `
Revokes the dataset on chain (the owner's account must send it) and marks it revoked in the
profile's agent store, so the agent neither releases its key nor serves its ciphertext again.
--json prints {"datasetId", "revoked": true, "txHash"}.`,
  options: { ...PROFILE_OPTION, ...NETWORK_OPTIONS },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const id = parseId(ctx.positionals[0], 'dataset ID');
    const net = locateNetwork(ctx);
    const profile = profileName(ctx);
    const { chain } = await actAs(net, ferryHome(ctx.env), profile);
    const ds = await getDataset(chain, id);
    if (!ds) {
      throw new FerryError('ASSET_NOT_FOUND', `dataset ${id} does not exist`, {
        hints: ['list datasets with: ferry dataset ls'],
      });
    }
    const tx = await revokeDataset(chain, id);
    markDatasetRevoked(ctx.env, profile, id);
    return {
      json: { datasetId: id.toString(), revoked: true, txHash: tx.hash },
      text: `dataset ${id} revoked`,
    };
  },
});
