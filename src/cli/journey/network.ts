/**
 * Shared by the user-journey commands: where the network is (`--rpc` and `--contracts`, or the
 * FERRY_RPC / FERRY_CONTRACTS variables, or the running devnet's `$FERRY_HOME/devnet.json`),
 * which profile acts (`--profile` or FERRY_PROFILE), and the chain clients for them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import {
  type ChainReader,
  type ChainWriter,
  connect,
  type FerryContracts,
  reader,
  writer,
} from '../../chain/index.ts';
import { FerryError, ferryHome, fromHex } from '../../kernel/index.ts';
import type { CommandContext, OptionSpec } from '../command.ts';
import { loadProfileSecrets, type ProfileSecrets } from '../profile/store.ts';

/** Options every journey command takes. */
export const NETWORK_OPTIONS: Record<string, OptionSpec> = {
  rpc: {
    type: 'string',
    value: 'URL',
    description: 'chain JSON-RPC URL (default: the devnet in $FERRY_HOME)',
  },
  contracts: {
    type: 'string',
    value: 'JSON',
    description: 'contract addresses {"NodeRegistry","Assets","Tasks"} (with --rpc)',
  },
};

export const PROFILE_OPTION: Record<string, OptionSpec> = {
  profile: { type: 'string', value: 'NAME', description: 'the acting profile (default: $FERRY_PROFILE)' },
};

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/);
const ContractsSchema = z.object({ NodeRegistry: address, Assets: address, Tasks: address });

const DevnetFileSchema = z
  .object({
    rpcUrl: z.string(),
    chainId: z.number().int(),
    contracts: ContractsSchema,
    simRoot: z.string().nullable().optional(),
    profiles: z
      .array(z.object({ name: z.string(), agent: z.string().nullable().optional() }).passthrough())
      .default([]),
    nodes: z.array(z.object({ name: z.string() }).passthrough()).default([]),
  })
  .passthrough();

export type DevnetFile = z.infer<typeof DevnetFileSchema>;

/** A located network. */
export type Network = {
  rpcUrl: string;
  chainId: number | undefined;
  contracts: FerryContracts;
  /** The devnet description when the network is the local devnet. */
  devnet: DevnetFile | null;
  /** Trusted simulation roots (the devnet's), for appraising sim evidence. */
  simRoots: Uint8Array[];
};

function str(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Reads `$FERRY_HOME/devnet.json`, or null when there is none. */
export function readDevnetFile(home: string): DevnetFile | null {
  let text: string;
  try {
    text = readFileSync(join(home, 'devnet.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new FerryError('CONFIG_FILE_UNREADABLE', 'cannot read devnet.json', {
      cause: e,
      hints: [`home: ${home}`],
    });
  }
  try {
    return DevnetFileSchema.parse(JSON.parse(text));
  } catch (e) {
    throw new FerryError('CONFIG_INVALID', 'devnet.json is malformed', {
      cause: e,
      hints: [`home: ${home}`],
    });
  }
}

/** Finds the network from flags, environment, or the devnet file. DEVNET_NOT_RUNNING when none. */
export function locateNetwork(ctx: CommandContext): Network {
  const home = ferryHome(ctx.env);
  const rpc = str(ctx, 'rpc') ?? ctx.env.FERRY_RPC;
  const contractsText = str(ctx, 'contracts') ?? ctx.env.FERRY_CONTRACTS;
  const devnet = readDevnetFile(home);
  if (rpc) {
    let contracts: FerryContracts | undefined;
    if (contractsText) {
      try {
        contracts = ContractsSchema.parse(JSON.parse(contractsText)) as FerryContracts;
      } catch (e) {
        throw new FerryError(
          'USAGE_INVALID_ARGUMENT',
          '--contracts must be JSON {"NodeRegistry","Assets","Tasks"}',
          {
            cause: e,
            hints: ['each an 0x-prefixed address'],
          },
        );
      }
    } else if (devnet && devnet.rpcUrl === rpc) {
      contracts = devnet.contracts as FerryContracts;
    }
    if (!contracts) {
      throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing --contracts for --rpc', {
        hints: [
          'pass --contracts \'{"NodeRegistry":"0x..","Assets":"0x..","Tasks":"0x.."}\' or set FERRY_CONTRACTS',
        ],
      });
    }
    const same = devnet !== null && devnet.rpcUrl === rpc;
    return {
      rpcUrl: rpc,
      chainId: same ? devnet.chainId : undefined,
      contracts,
      devnet: same ? devnet : null,
      simRoots: same && devnet.simRoot ? [fromHex(devnet.simRoot, 'simRoot', 32)] : [],
    };
  }
  if (!devnet) {
    throw new FerryError('DEVNET_NOT_RUNNING', 'no network configured and no devnet running', {
      hints: [
        `looked for: ${join(home, 'devnet.json')}`,
        'start one with "ferry devnet up", or pass --rpc URL --contracts JSON',
      ],
    });
  }
  return {
    rpcUrl: devnet.rpcUrl,
    chainId: devnet.chainId,
    contracts: devnet.contracts as FerryContracts,
    devnet,
    simRoots: devnet.simRoot ? [fromHex(devnet.simRoot, 'simRoot', 32)] : [],
  };
}

/** Read-only chain access to the network. */
export async function chainReader(net: Network): Promise<ChainReader & { chainId: number }> {
  const clients = await connect({ rpcUrl: net.rpcUrl, chainId: net.chainId, pollingInterval: 100 });
  return { ...reader(clients, net.contracts), chainId: clients.chain.id };
}

/** The acting profile's name: --profile, then FERRY_PROFILE. */
export function profileName(ctx: CommandContext): string {
  const name = str(ctx, 'profile') ?? ctx.env.FERRY_PROFILE;
  if (!name) {
    throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing --profile', {
      hints: ['pass --profile NAME or set FERRY_PROFILE (the devnet has alice, bob and carol)'],
    });
  }
  return name;
}

/** The acting profile's secrets and a chain writer from its account. */
export async function actAs(
  net: Network,
  home: string,
  name: string,
): Promise<{ secrets: ProfileSecrets; chain: ChainWriter & { chainId: number } }> {
  const secrets = loadProfileSecrets(home, name);
  const clients = await connect({
    rpcUrl: net.rpcUrl,
    chainId: net.chainId,
    privateKey: secrets.evmPrivateKey,
    pollingInterval: 100,
  });
  return { secrets, chain: { ...writer(clients, net.contracts), chainId: clients.chain.id } };
}

/** The owner agent URL of a profile on the devnet, or null. */
export function devnetAgentUrl(net: Network, name: string): string | null {
  const p = net.devnet?.profiles.find((x) => x.name === name);
  return (p?.agent as string | null | undefined) ?? null;
}
