// The owner agent (asset serving, policy, key release): its public face.
export { type AgentConfig, AgentConfigSchema, agentHome, loadAgentConfig } from './config.ts';
export {
  AgentDaemon,
  type AgentDaemonOptions,
  type AgentKeys,
  type AgentReady,
  agentStore,
} from './daemon.ts';
export {
  type Asset,
  type AssetKind,
  type AssetStatus,
  AgentState,
  type Release,
  type ReleaseStatus,
} from './state.ts';
export { AssetStore } from './store.ts';
export {
  type AddDatasetParams,
  type AddedDataset,
  addDataset,
  markDatasetRevoked,
  type PublishedApp,
  publishApp,
} from './assets.ts';
