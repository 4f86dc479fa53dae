/** Profile look-ups for commands, with errors that say which profiles exist. */
import { FerryError } from '../../kernel/index.ts';
import { listProfiles, loadProfile, type ProfilePublic } from '../../profile/index.ts';

/** loadProfile, whose PROFILE_NOT_FOUND lists the known profiles (and how to create this one). */
export function loadProfileOrSayWhich(home: string, name: string): ProfilePublic {
  try {
    return loadProfile(home, name);
  } catch (e) {
    if (!(e instanceof FerryError) || e.code !== 'PROFILE_NOT_FOUND') throw e;
    const known = listProfiles(home).map((p) => p.name);
    throw new FerryError('PROFILE_NOT_FOUND', `no profile named ${name}`, {
      hints: [
        known.length > 0 ? `known profiles: ${known.join(', ')}` : `no profiles in ${home} yet`,
        `create it with: ferry profile create ${name}`,
      ],
    });
  }
}
