// Profiles: a person's keys on disk, used by the CLI, the devnet and the tests.
export {
  type CreateProfileOptions,
  createProfile,
  listProfiles,
  loadProfile,
  loadProfileSecrets,
  PROFILE_NAME_RE,
  type ProfilePublic,
  ProfilePublicSchema,
  type ProfileSecrets,
  profileDir,
  profilesDir,
} from './store.ts';
