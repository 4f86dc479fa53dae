/**
 * `ferry chain deploy --rpc URL`: deploys Ferry's contracts to any EVM chain. The deployer key
 * comes from FERRY_DEPLOYER_KEY or --key-file (never from a flag value, never printed).
 */
import { readFile } from 'node:fs/promises';
import type { Hex } from 'viem';
import { connect, deployFerry } from '../../chain/index.ts';
import { FerryError } from '../../kernel/index.ts';
import { optionalString, requireString } from '../args.ts';
import { defineCommand } from '../command.ts';

const KEY_RE = /^0x[0-9a-fA-F]{64}$/;

async function deployerKey(env: NodeJS.ProcessEnv, keyFile: string | undefined): Promise<Hex> {
  let raw: string | undefined;
  let source: string;
  if (keyFile !== undefined) {
    source = `--key-file ${keyFile}`;
    try {
      raw = (await readFile(keyFile, 'utf8')).trim();
    } catch (e) {
      throw new FerryError('IO_READ_FAILED', `cannot read the key file ${keyFile}`, {
        cause: e,
        hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
      });
    }
  } else {
    source = 'FERRY_DEPLOYER_KEY';
    raw = env.FERRY_DEPLOYER_KEY?.trim();
  }
  if (!raw) {
    throw new FerryError('CHAIN_KEY_MISSING', 'no deployer key', {
      hints: ['set FERRY_DEPLOYER_KEY or pass --key-file FILE (a file holding the 0x-prefixed key)'],
    });
  }
  const key = raw.startsWith('0x') ? raw : `0x${raw}`;
  if (!KEY_RE.test(key)) {
    throw new FerryError('CHAIN_KEY_MISSING', `the deployer key from ${source} is malformed`, {
      hints: ['expected: 32 bytes as hex (64 hex digits, optionally 0x-prefixed)'],
    });
  }
  return key as Hex;
}

export default defineCommand({
  name: 'chain deploy',
  summary: "deploy Ferry's contracts to an EVM chain (key from FERRY_DEPLOYER_KEY or --key-file)",
  usage: 'chain deploy --rpc URL [--key-file FILE] [--json]',
  description: `
The deployer key is read from FERRY_DEPLOYER_KEY, or from --key-file (a file holding the hex
key). Prints {"chainId", "contracts": {NodeRegistry, Assets, Tasks}}.`,
  options: {
    rpc: { type: 'string', value: 'URL', description: 'JSON-RPC endpoint of the chain' },
    'key-file': { type: 'string', value: 'FILE', description: 'file holding the deployer private key (hex)' },
  },
  async run(ctx) {
    const rpcUrl = requireString(ctx, 'rpc');
    if (!/^https?:\/\//.test(rpcUrl)) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--rpc must be an http(s) URL', {
        hints: [`got: ${rpcUrl}`],
      });
    }
    const key = await deployerKey(ctx.env, optionalString(ctx, 'key-file'));
    const clients = await connect({ rpcUrl, privateKey: key });
    ctx.progress(`deploying from ${clients.wallet!.account.address} to chain ${clients.chain.id}`);
    const d = await deployFerry(clients.wallet!, clients.public);
    const out = { chainId: d.chainId, contracts: d.contracts };
    return {
      json: out,
      text: [
        `chainId       ${d.chainId}`,
        ...Object.entries(d.contracts).map(([n, a]) => `${n.padEnd(13)} ${a}`),
        `gas used      ${d.gasUsed}`,
      ].join('\n'),
    };
  },
});
