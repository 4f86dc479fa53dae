/** `ferry node unjail`: a jailed node returns to active once its jail has ended. */
import { getNode, unjailNode } from '../../chain/index.ts';
import { FerryError, ferryHome } from '../../kernel/index.ts';
import { defineCommand } from '../command.ts';
import { actAs, locateNetwork, NETWORK_OPTIONS, PROFILE_OPTION, profileName } from '../journey/network.ts';

export default defineCommand({
  name: 'node unjail',
  summary: "return the profile's jailed node to active once its jail has ended",
  usage: 'node unjail [--profile NAME] [--json]',
  description: `
Sends NodeRegistry.unjail from the profile's account (protocol.md §11.1): a node jailed by a
penalty (its own missed evidence or receipt) becomes active again once jailedUntil has passed.
Refused (exit 1) with CHAIN_NOT_JAILED when the node is not jailed, CHAIN_TOO_EARLY before
jailedUntil, CHAIN_INSUFFICIENT_STAKE when the slash left less than the minimum stake (add
stake first); CHAIN_NOT_FOUND when the account is not a registered node.
--json prints {"address", "status": "active", "jailedTask" (the task whose penalty jailed it,
decimal, or null), "stake" (wei, decimal), "txHash"}.`,
  options: { ...PROFILE_OPTION, ...NETWORK_OPTIONS },
  async run(ctx) {
    const net = locateNetwork(ctx);
    const { chain } = await actAs(net, ferryHome(ctx.env), profileName(ctx));
    const address = chain.wallet.account.address;
    const before = await getNode(chain, address);
    if (!before) {
      throw new FerryError('CHAIN_NOT_FOUND', `node ${address} is not registered`, {
        hints: ['register it first: ferry node start --profile NAME ...'],
      });
    }
    if (before.status !== 'jailed') {
      throw new FerryError('CHAIN_NOT_JAILED', `node ${address} is not jailed (status ${before.status})`, {
        hints: ['only a jailed node is unjailed; an inactive node returns by starting it again'],
      });
    }
    const tx = await unjailNode(chain);
    const after = await getNode(chain, address);
    return {
      json: {
        address,
        status: after?.status ?? 'none',
        jailedTask: before.jailedTask === null ? null : before.jailedTask.toString(),
        stake: (after?.stake ?? 0n).toString(),
        txHash: tx.hash,
      },
      text: `node ${address} is ${after?.status} again (jailed by task ${before.jailedTask ?? '?'})`,
    };
  },
});
