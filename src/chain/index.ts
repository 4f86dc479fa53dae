/**
 * Ferry's chain bindings: generated ABIs, deployment, the local anvil chain, actions on the
 * node registry, assets and tasks, and event watching. See docs/protocol.md sections 11-12.
 */
export {
  assetsAbi,
  assetsBytecode,
  ferryErrorsAbi,
  ferryEventsAbi,
  nodeRegistryAbi,
  nodeRegistryBytecode,
  tasksAbi,
  tasksBytecode,
} from './abi.ts';
export {
  type AppInfo,
  type AppPolicy,
  createApp,
  createDataset,
  type DatasetInfo,
  type DatasetPolicy,
  getApp,
  getDataset,
  getPolicyDocuments,
  isAllowed,
  MAX_POLICY_DOCUMENT,
  type PolicyDocumentEvent,
  type ReadAt,
  revokeApp,
  revokeDataset,
  updateApp,
  updateAppPolicy,
  updateDataset,
  updateDatasetPolicy,
} from './assets.ts';
export { type Clients, type ConnectOptions, chainFor, connect, reader, sendTx, writer } from './client.ts';
export { DEFAULT_DEPLOY_OPTIONS, type DeployOptions, type Deployment, deployFerry } from './deploy.ts';
export { decodeRevertData, REVERT_CODES, toChainError } from './errors.ts';
export {
  ANVIL_DEV_KEYS,
  anvilPath,
  freePort,
  type LocalChain,
  type LocalChainOptions,
  startLocalChain,
} from './local.ts';
export {
  addStake,
  getNode,
  getStakeTotals,
  heartbeat,
  markStale,
  type NodeInfo,
  type NodeParams,
  registerNode,
  sameOperator,
  requestUnbond,
  setNodeActive,
  setNodeEndpoint,
  updateNode,
  withdrawUnbonded,
} from './nodes.ts';
export {
  type CreateTaskParams,
  claimTask,
  claimVoteReward,
  commitEvidence,
  createTask,
  getCredits,
  getPassVoters,
  getTask,
  getVote,
  isExcluded,
  recordKeyRelease,
  seedTask,
  submitReceipt,
  abandonAttempt,
  abandonCause,
  MAX_ABANDON_CAUSE,
  type TaskInfo,
  timeoutTask,
  type VoteParams,
  vote,
  withdraw,
} from './tasks.ts';
export {
  ATTEMPT_END_REASONS,
  type AttemptEndReason,
  type ChainReader,
  type ChainWriter,
  type FerryContracts,
  NODE_STATUSES,
  type NodeStatus,
  ROLES,
  type Role,
  TASK_STATES,
  type TaskState,
  TEE_KINDS,
  type TeeKind,
  type TxResult,
} from './types.ts';
export {
  decodeFerryLogs,
  type FerryEvent,
  getFerryEvents,
  type WatchOptions,
  type Watcher,
  watchFerryEvents,
} from './watch.ts';
