/**
 * Shared by the user-journey commands: where the network is (`--rpc` and `--contracts`, or the
 * FERRY_RPC / FERRY_CONTRACTS variables, or the running devnet's `$FERRY_HOME/devnet.json`),
 * whom it trusts for evidence (TRUST_OPTIONS, else the devnet's sim root and tpm2 CAs and
 * activator), which profile acts (`--profile` or FERRY_PROFILE), and the chain clients for them.
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
import { parseCertificates, type Tpm2VerifierOptions } from '../../attestation/index.ts';
import { ContractsSchema } from '../../daemon/index.ts';
import { FerryError, ferryHome, fromHex } from '../../kernel/index.ts';
import type { CommandContext, OptionSpec } from '../command.ts';
import { loadProfileSecrets, type ProfileSecrets } from '../../profile/index.ts';
import { loadProfileOrSayWhich } from '../profile/known.ts';

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

/**
 * Trust for appraising evidence again (the audit of `receipt verify` and `task run --wait`, the
 * reason given for a rejected attempt), named as `ferry node start` names it. Each, when given
 * (flag, else FERRY_SIM_ROOTS / FERRY_TPM2_CAS / FERRY_TPM2_ACTIVATORS), replaces what the
 * devnet's devnet.json says.
 */
export const TRUST_OPTIONS: Record<string, OptionSpec> = {
  'sim-roots': {
    type: 'string',
    value: 'HEX,...',
    description: "trusted simulation root keys (default: the devnet's)",
  },
  'tpm2-cas': {
    type: 'string',
    value: 'FILE,...',
    description: "CA certificates (PEM or DER) trusted for TPM EK/AK certificates (default: the devnet's)",
  },
  'tpm2-activators': {
    type: 'string',
    value: 'HEX,...',
    description: "trusted tpm2 credential activator keys (Ed25519, hex; default: the devnet's)",
  },
};

export const PROFILE_OPTION: Record<string, OptionSpec> = {
  profile: { type: 'string', value: 'NAME', description: 'the acting profile (default: $FERRY_PROFILE)' },
};

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
    tpm2: z
      .object({ activator: z.string(), cas: z.array(z.string()) })
      .passthrough()
      .nullable()
      .optional(),
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
  /** Trusted simulation roots (the flags', else the devnet's), for appraising sim evidence. */
  simRoots: Uint8Array[];
  /** Trusted tpm2 EK/AK CA files and credential activator keys (the flags', else the devnet's). */
  tpm2?: { cas: string[]; activators: Uint8Array[] };
};

/** What an auditor needs to appraise evidence again: the verifier options of each kind. */
export type AuditTrust = {
  simRoots: Uint8Array[];
  /** Absent when no tpm2 CA is trusted (tpm2 evidence then cannot be appraised). */
  tpm2?: Tpm2VerifierOptions;
};

function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

/** The trust given by flags or environment (undefined per item when not given). */
function givenTrust(ctx: CommandContext): {
  simRoots?: Uint8Array[];
  tpm2Cas?: string[];
  tpm2Activators?: Uint8Array[];
} {
  const pick = (flag: string, env: string) => str(ctx, flag) ?? (ctx.env[env] || undefined);
  const keys = (flag: string, env: string) =>
    list(pick(flag, env))?.map((h) => fromHex(h, `--${flag} (or ${env})`, 32));
  return {
    simRoots: keys('sim-roots', 'FERRY_SIM_ROOTS'),
    tpm2Cas: list(pick('tpm2-cas', 'FERRY_TPM2_CAS')),
    tpm2Activators: keys('tpm2-activators', 'FERRY_TPM2_ACTIVATORS'),
  };
}

/** The devnet's trust (sim root; with --tee tpm2 the swtpm CA files and the activator key). */
function devnetTrust(devnet: DevnetFile | null): {
  simRoots: Uint8Array[];
  tpm2Cas: string[];
  tpm2Activators: Uint8Array[];
} {
  return {
    simRoots: devnet?.simRoot ? [fromHex(devnet.simRoot, 'devnet.json simRoot', 32)] : [],
    tpm2Cas: devnet?.tpm2 ? [...devnet.tpm2.cas] : [],
    tpm2Activators: devnet?.tpm2 ? [fromHex(devnet.tpm2.activator, 'devnet.json tpm2.activator', 32)] : [],
  };
}

/**
 * The verifier options to appraise evidence with: the sim roots, and the tpm2 CAs (read and
 * parsed here) with the activator keys. Throws CONFIG_INVALID for an unreadable CA file and
 * ATTESTATION_MALFORMED for one that holds no X.509 certificate.
 */
export function auditTrust(net: Network): AuditTrust {
  const trustedCas = (net.tpm2?.cas ?? []).flatMap((f) => {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(f));
    } catch (e) {
      throw new FerryError('CONFIG_INVALID', 'cannot read a tpm2 CA file', {
        hints: [
          `file: ${f}`,
          (e as NodeJS.ErrnoException).code ?? String(e),
          'given by --tpm2-cas, FERRY_TPM2_CAS or devnet.json',
        ],
        cause: e,
      });
    }
    return parseCertificates(bytes, f);
  });
  return {
    simRoots: net.simRoots,
    ...(trustedCas.length > 0 ? { tpm2: { trustedCas, trustedActivators: net.tpm2?.activators ?? [] } } : {}),
  };
}

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
  const given = givenTrust(ctx);
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
      ...trustOf(given, same ? devnet : null),
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
    ...trustOf(given, devnet),
  };
}

function trustOf(
  given: ReturnType<typeof givenTrust>,
  devnet: DevnetFile | null,
): Pick<Network, 'simRoots' | 'tpm2'> {
  const d = devnetTrust(devnet);
  return {
    simRoots: given.simRoots ?? d.simRoots,
    tpm2: { cas: given.tpm2Cas ?? d.tpm2Cas, activators: given.tpm2Activators ?? d.tpm2Activators },
  };
}

/** Read-only chain access to the network. */
export async function chainReader(net: Network): Promise<ChainReader & { chainId: number }> {
  const clients = await connect({ rpcUrl: net.rpcUrl, chainId: net.chainId, pollingInterval: 100 });
  return { ...reader(clients, net.contracts), chainId: clients.chain.id };
}

/**
 * The acting profile's name: --profile, then FERRY_PROFILE. PROFILE_NOT_FOUND, naming the
 * known profiles, when there is none by that name.
 */
export function profileName(ctx: CommandContext): string {
  const name = str(ctx, 'profile') ?? ctx.env.FERRY_PROFILE;
  if (!name) {
    throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing --profile', {
      hints: ['pass --profile NAME or set FERRY_PROFILE (the devnet has alice, bob and carol)'],
    });
  }
  loadProfileOrSayWhich(ferryHome(ctx.env), name);
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
