// The runtime the node and agent daemons share.
export { AddressSchema, ContractsSchema, contractsOption, enumList, fileList, hexKeyList } from './config.ts';
export { ThrottledCursor } from './cursor.ts';
export { ChainDriver, type ChainDriverOptions, type JobContext, JobLanes } from './driver.ts';
export {
  ACTION_NEXT,
  ACTION_STATUSES,
  type ActionStatus,
  advance,
  checkTxHash,
  type IntentRef,
  type Outcome,
  RELEASE_NEXT,
  type ReleaseStatus,
  transitionOf,
} from './intents.ts';
export {
  attemptNumber,
  getCursor,
  getListenPort,
  LISTENER_TABLE_SQL,
  type Migration,
  openStateDb,
  type StateDb,
  schemaVersion,
  setCursor,
  setListenPort,
  taskKey,
  transaction,
} from './store.ts';
export { type Daemon, serveUntilAborted } from './run.ts';
