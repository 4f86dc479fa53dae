/** `ferry devnet up`: the local network, supervised until SIGINT/SIGTERM or `ferry devnet down`. */
import { devnetUp } from '../../devnet/index.ts';
import { FerryError, ferryHome } from '../../kernel/index.ts';
import { intOption, optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';

export default defineCommand({
  name: 'devnet up',
  summary: 'start a local network: chain, contracts, nodes, agents and funded profiles',
  usage:
    'devnet up [--executors N] [--verifiers M] [--tee sim|tpm2|vm] [--vm-image DIR] [--regions DE,FR] [--json]',
  description: `
Starts, under $FERRY_HOME (default ~/.ferry): a local chain (anvil) with Ferry's contracts,
N executor and M verifier nodes (default 2 and 5; regions round-robin, default DE), and the
funded profiles alice (data owner, with an agent), bob (app owner, with an agent) and carol
(requester). Prints one JSON line when ready:
{"rpcUrl", "chainId", "contracts", "nodes": [...], "profiles": [...]}
and writes it to $FERRY_HOME/devnet.json. Runs until SIGINT/SIGTERM or "ferry devnet down",
then stops every process it started. The chain is fresh each time: the devnet's node and
agent homes are reset (profiles are kept). Logs: $FERRY_HOME/logs/.
With --tee tpm2 each executor gets its own swtpm (swtpm, swtpm-tools and tpm2-tools must be
installed), provisioned with an AK activated by the devnet's activator key; every node and
agent trusts the swtpm CAs and that key.
With --tee vm each executor runs its enclaves in a VM booted from the node image (qemu-system-x86,
ovmf, swtpm and tpm2-tools must be installed; protocol.md §17.5): the image of this checkout is
built into $FERRY_HOME/cache/node-image/ (or reused from there; --vm-image DIR uses a built one),
measured, and its policy written to $FERRY_HOME/devnet/vm-policy.json (publish assets with
--policy that file); each executor gets a vTPM provisioned like --tee tpm2's. Under emulation
(TCG) an executor takes minutes to be ready.`,
  options: {
    executors: { type: 'string', value: 'N', description: 'executor nodes (default 2)' },
    verifiers: { type: 'string', value: 'M', description: 'verifier nodes (default 5)' },
    tee: {
      type: 'string',
      value: 'KIND',
      description: 'TEE kind of the executors: sim (default), tpm2 or vm',
    },
    'vm-image': {
      type: 'string',
      value: 'DIR',
      description: '--tee vm: a built node image (default: build)',
    },
    regions: { type: 'string', value: 'LIST', description: 'regions, round-robin (default DE)' },
  },
  async run(ctx) {
    const tee = optionalString(ctx, 'tee') ?? 'sim';
    if (tee !== 'sim' && tee !== 'tpm2' && tee !== 'vm') {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--tee must be sim, tpm2 or vm', {
        hints: [`got: ${tee}`],
      });
    }
    const regions = (optionalString(ctx, 'regions') ?? 'DE').split(',').map((r) => r.trim());
    for (const r of regions) {
      if (!/^[A-Z]{2}$/.test(r)) {
        throw new FerryError('USAGE_INVALID_ARGUMENT', '--regions must be ISO 3166-1 alpha-2 codes', {
          hints: [`got: ${r}`],
        });
      }
    }
    let failed: FerryError | null = null;
    const stopOnFatal = new AbortController();
    ctx.progress('starting the local chain, nodes and agents...');
    const devnet = await devnetUp(
      {
        home: ferryHome(ctx.env),
        executors: intOption(ctx, 'executors', 2, 1),
        verifiers: intOption(ctx, 'verifiers', 5, 1),
        tee,
        vmImage: optionalString(ctx, 'vm-image'),
        regions,
        log: ctx.log,
        env: ctx.env,
        onFatal: (e) => {
          failed = e;
          stopOnFatal.abort();
        },
      },
      ctx.signal,
    );
    const { info } = devnet;
    ctx.stdout.write(
      ctx.json
        ? `${JSON.stringify({ rpcUrl: info.rpcUrl, chainId: info.chainId, contracts: info.contracts, nodes: info.nodes, profiles: info.profiles })}\n`
        : `devnet ready: ${info.rpcUrl} (chain ${info.chainId}), ${info.nodes.length} nodes, agents for alice and bob\nstop with Ctrl-C or: ferry devnet down\n`,
    );
    try {
      await new Promise<void>((resolve) => {
        const both = AbortSignal.any([ctx.signal, stopOnFatal.signal]);
        if (both.aborted) resolve();
        both.addEventListener('abort', () => resolve(), { once: true });
      });
    } finally {
      await devnet.stop();
    }
    if (failed) throw failed;
    return {};
  },
});
