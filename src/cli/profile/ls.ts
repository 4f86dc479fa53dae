/** `ferry profile ls`: every profile under $FERRY_HOME. */
import { ferryHome } from '../../kernel/index.ts';
import { defineCommand } from '../command.ts';
import { listProfiles, profileDir } from '../../profile/index.ts';

export default defineCommand({
  name: 'profile ls',
  summary: 'list profiles',
  usage: 'profile ls [--json]',
  description: `
JSON: {"profiles": [{"name", "address", "signingPublicKey", "ageRecipient", "createdAt", "path"}]}`,
  options: {},
  async run(ctx) {
    const home = ferryHome(ctx.env);
    const profiles = listProfiles(home).map(({ version: _v, ...p }) => ({
      ...p,
      path: profileDir(home, p.name),
    }));
    const w = Math.max(4, ...profiles.map((p) => p.name.length));
    return {
      json: { profiles },
      text:
        profiles.length === 0
          ? 'no profiles (create one with: ferry profile create NAME)'
          : profiles.map((p) => `${p.name.padEnd(w)}  ${p.address}  ${p.ageRecipient}`).join('\n'),
    };
  },
});
