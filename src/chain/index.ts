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
  type ClaimProof,
  challengeClaim,
  challengeVote,
  claimRecord,
  FRAUD_KINDS,
  type FraudKind,
  type FraudProven,
  type VoteProof,
  voteRecord,
} from './fraud.ts';
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
  getBurned,
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
  unjailNode,
  updateNode,
  withdrawUnbonded,
} from './nodes.ts';
export { deploymentBlock, listNodes } from './listing.ts';
export {
  type CreateTaskParams,
  claimTask,
  claimVoteReward,
  commitEvidence,
  createTask,
  DEFAULT_CLAIM_TARGET,
  getCredits,
  getPassVoters,
  getTask,
  getVote,
  hasClaimed,
  isExcluded,
  MIN_RUN_TIME,
  recordKeyRelease,
  seatBound,
  seedTask,
  submitReceipt,
  TASK_WINDOW_BOUNDS,
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
  deployVrfVerifier,
  type VrfOnChainInput,
  type VrfOnChainResult,
  type VrfVerifierDeployment,
  verifyVrfOnChain,
  vrfVerifierAbi,
  vrfVerifierBytecode,
} from './vrf-verifier.ts';
export {
  decodeFerryLogs,
  type FerryEvent,
  getFerryEvents,
  getTaskEvents,
  type WatchOptions,
  type Watcher,
  watchFerryEvents,
} from './watch.ts';
export { type HeadSource, type NewHeadsOptions, parseWsUrl, subscribeNewHeads, wsUrlFor } from './heads.ts';
