/** `ferry dashboard`: serves the dashboard page and its JSON API until SIGINT/SIGTERM. */
import { Dashboard, LOOPBACK_HOSTS } from '../../dashboard/index.ts';
import { FerryError } from '../../kernel/index.ts';
import { intOption, optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';
import { chainReader, locateNetwork, NETWORK_OPTIONS } from '../journey/network.ts';
import { runUntilSignal } from '../daemon-run.ts';

export default defineCommand({
  name: 'dashboard',
  summary: 'serve a web page of the network: nodes, tasks with their timelines, votes',
  usage: 'dashboard [--port N] [--host 127.0.0.1] [--rpc URL --contracts JSON] [--json]',
  description: `
Follows the chain's Ferry events from block 0 (one confirmation) into an in-memory index and
serves it on a loopback address: the page at / (polls every 2 s) and a read-only JSON API,
GET /api/summary, /api/nodes, /api/assets, /api/tasks?status=S[,S]&limit=N, /api/tasks/ID
(docs/protocol.md §13.9). Every vote and claim is shown with its VRF proof and seat count
checked as an owner agent checks them. The network is the devnet in $FERRY_HOME unless --rpc
and --contracts (or FERRY_RPC / FERRY_CONTRACTS) name another. When ready it prints one line,
with --json {"ready": true, "url", "host", "port", "chainId"}; it runs until interrupted.`,
  options: {
    port: { type: 'string', value: 'N', description: 'listen port (default 0: any free port)' },
    host: { type: 'string', value: 'HOST', description: 'loopback listen address (default 127.0.0.1)' },
    ...NETWORK_OPTIONS,
  },
  async run(ctx) {
    const port = intOption(ctx, 'port', 0);
    if (port > 65535) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--port must be an integer from 0 to 65535', {
        hints: [`got: ${port}`],
      });
    }
    const host = optionalString(ctx, 'host') ?? '127.0.0.1';
    if (!(LOOPBACK_HOSTS as readonly string[]).includes(host)) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--host must be a loopback address', {
        hints: [`expected: ${LOOPBACK_HOSTS.join(', ')}`, `got: ${host}`],
      });
    }
    const net = locateNetwork(ctx);
    const chain = await chainReader(net);
    const dashboard = new Dashboard({ chain, chainId: chain.chainId, host, port, log: ctx.log });
    return runUntilSignal(
      ctx,
      dashboard,
      (r) => `dashboard on ${r.url} (chain ${r.chainId}, ${net.rpcUrl}); Ctrl-C to stop`,
    );
  },
});
