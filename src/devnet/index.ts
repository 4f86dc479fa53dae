// The local development network (anvil, contracts, profiles, supervised daemons): its public face.
export { type ActivateAkParams, activateAk } from './activator.ts';
export {
  childEntries,
  claimPidFile,
  isAlive,
  isEntryAlive,
  liveEntries,
  type PidEntry,
  procStartTime,
  readLivePid,
  readPidFile,
  releasePidFile,
  stopDevnet,
} from './pidfile.ts';
export { type ChildInfo, type ChildSpec, Supervisor, type SupervisorOptions } from './supervisor.ts';
export { DEVNET_DEPLOYER_KEY, type Devnet, type DevnetInfo, type DevnetOptions, devnetUp } from './up.ts';
