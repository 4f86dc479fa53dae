/** `ferry profile show NAME`: the public parts of a profile. */
import { ferryHome } from '../../kernel/index.ts';
import { type CommandResult, defineCommand } from '../command.ts';
import { type ProfilePublic, profileDir } from '../../profile/index.ts';
import { loadProfileOrSayWhich } from './known.ts';

export function formatProfile(home: string, p: ProfilePublic): CommandResult {
  const path = profileDir(home, p.name);
  const { version: _v, ...pub } = p;
  return {
    json: { ...pub, path },
    text: [
      `profile   ${p.name}`,
      `address   ${p.address}`,
      `signing   ${p.signingPublicKey}`,
      `age       ${p.ageRecipient}`,
      `created   ${p.createdAt}`,
      `path      ${path}`,
    ].join('\n'),
  };
}

export default defineCommand({
  name: 'profile show',
  summary: 'show the public parts of a profile',
  usage: 'profile show NAME [--json]',
  description: `
Prints the profile's EVM address, Ed25519 signing public key (hex) and age recipient.
JSON: {"name", "address", "signingPublicKey", "ageRecipient", "createdAt", "path"}`,
  options: {},
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const home = ferryHome(ctx.env);
    return formatProfile(home, loadProfileOrSayWhich(home, ctx.positionals[0]));
  },
});
