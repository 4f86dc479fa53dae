/**
 * `ferry chain up`: a local chain in one command. Starts anvil on 127.0.0.1, deploys Ferry's
 * contracts from the first development account, prints one JSON line
 * `{"rpcUrl", "chainId", "contracts": {name: address}}` on stdout and runs until SIGINT or
 * SIGTERM, then stops anvil and exits 0.
 */
import { connect, deployFerry, startLocalChain } from '../../chain/index.ts';
import { FerryError } from '../../kernel/index.ts';
import { intOption } from '../args.ts';
import { defineCommand } from '../command.ts';

export default defineCommand({
  name: 'chain up',
  summary: 'start a local chain (anvil on 127.0.0.1) with Ferry deployed; runs until interrupted',
  usage: 'chain up [--port N] [--block-time S] [--json]',
  description: `
Prints one JSON line {"rpcUrl", "chainId", "contracts"} once the chain is ready, then keeps
running until SIGINT or SIGTERM. Transactions are mined at once; an empty block is also mined
every --block-time seconds so deadlines pass without traffic. The accounts are anvil's
well-known development accounts: never use them on a real chain.`,
  options: {
    port: { type: 'string', value: 'N', description: 'port on 127.0.0.1 (default: a free port)' },
    'block-time': {
      type: 'string',
      value: 'S',
      description: 'seconds between idle blocks (default 1; 0: none)',
    },
  },
  async run(ctx) {
    const port = ctx.values.port === undefined ? undefined : intOption(ctx, 'port', undefined, 1);
    if (port !== undefined && port > 65535) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--port must be at most 65535', {
        hints: [`got: ${port}`],
      });
    }
    const blockTime = intOption(ctx, 'block-time', 1, 0);
    const chain = await startLocalChain({ port, blockTime, signal: ctx.signal });
    try {
      const clients = await connect({
        rpcUrl: chain.rpcUrl,
        privateKey: chain.accounts[0].privateKey,
        chainId: chain.chainId,
      });
      const d = await deployFerry(clients.wallet!, clients.public);
      ctx.stdout.write(
        `${JSON.stringify({ rpcUrl: chain.rpcUrl, chainId: chain.chainId, contracts: d.contracts })}\n`,
      );
      ctx.progress(`ferry: local chain at ${chain.rpcUrl}; Ctrl-C to stop`);
      const stopped = await Promise.race([
        new Promise<'signal'>((resolve) => {
          if (ctx.signal.aborted) resolve('signal');
          ctx.signal.addEventListener('abort', () => resolve('signal'), { once: true });
        }),
        chain.exited.then(() => 'exited' as const),
      ]);
      if (stopped === 'exited') {
        throw new FerryError('CHAIN_ANVIL_FAILED', 'anvil exited unexpectedly');
      }
    } finally {
      await chain.stop();
    }
    return {};
  },
});
