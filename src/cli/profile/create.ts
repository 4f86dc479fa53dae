/** `ferry profile create NAME`: fresh keys for a person under $FERRY_HOME/profiles/NAME. */
import { readFileSync } from 'node:fs';
import { FerryError, ferryHome } from '../../kernel/index.ts';
import { optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';
import { createProfile } from '../../profile/index.ts';
import { formatProfile } from './show.ts';

export default defineCommand({
  name: 'profile create',
  summary: 'create a profile: an EVM account, an Ed25519 signing key and an age identity',
  usage: 'profile create NAME [--evm-key-file FILE] [--json]',
  description: `
Writes $FERRY_HOME/profiles/NAME/ (FERRY_HOME defaults to ~/.ferry): evm.key, signing.key and
age.key (mode 0600) and profile.json with the public parts, which are printed. Secrets are
never printed. --evm-key-file imports an existing EVM private key (0x + 64 hex digits).
JSON: {"name", "address", "signingPublicKey", "ageRecipient", "createdAt", "path"}`,
  options: {
    'evm-key-file': { type: 'string', value: 'FILE', description: 'import this EVM private key' },
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const home = ferryHome(ctx.env);
    const keyFile = optionalString(ctx, 'evm-key-file');
    let evmPrivateKey: `0x${string}` | undefined;
    if (keyFile !== undefined) {
      try {
        evmPrivateKey = readFileSync(keyFile, 'utf8').trim() as `0x${string}`;
      } catch (e) {
        throw new FerryError('IO_READ_FAILED', `cannot read --evm-key-file ${keyFile}`, { cause: e });
      }
    }
    const p = createProfile(home, ctx.positionals[0], { evmPrivateKey });
    return formatProfile(home, p);
  },
});
