// The node daemon (executor and verifier roles): its public face.
export { loadNodeConfig, type NodeConfig, NodeConfigSchema, nodeHome } from './config.ts';
export {
  loadOrCreateVrfKey,
  NodeDaemon,
  type NodeDaemonOptions,
  type NodeKeys,
  type NodeReady,
} from './daemon.ts';
