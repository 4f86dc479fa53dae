/**
 * Owner agent configuration (`ferry agent start`): flags, then FERRY_* variables, then the
 * JSON file `$FERRY_HOME/agents/<profile>/agent.json` (or --config), then defaults.
 */
import { join } from 'node:path';
import { z } from 'zod';
import type { FerryContracts } from '../chain/index.ts';
import { contractsOption as contracts, fileList, hexKeyList } from '../daemon/index.ts';
import { ferryHome, loadConfig } from '../kernel/index.ts';
import { PROFILE_NAME_RE } from '../profile/index.ts';

export const AgentConfigSchema = z.object({
  profile: z.string().regex(PROFILE_NAME_RE),
  rpc: z.string().regex(/^https?:\/\//),
  contracts,
  host: z.string().default('127.0.0.1'),
  /**
   * 0: any free port, remembered in the agent's state and tried first on the next start (so the
   * endpoint registered on chain for its assets stays valid across restarts).
   */
  port: z.coerce.number().int().min(0).max(65535).default(0),
  /**
   * The URL executors reach this agent at, kept current on chain for its assets at every start
   * (default: the listener's `http://HOST:PORT`). Set it when the agent sits behind a proxy.
   */
  publicUrl: z
    .string()
    .regex(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/)
    .max(256)
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  confirmations: z.coerce.number().int().min(0).max(64).default(1),
  pollIntervalMs: z.coerce.number().int().min(20).max(60_000).default(250),
  /**
   * A WebSocket endpoint of the same chain (ws:// or wss://, FERRY_WS_RPC): new-head
   * notifications start a poll and a reconcile as soon as a block arrives; polling stays the
   * fallback (src/chain/heads.ts); reads go over it while it is up, HTTP otherwise, transactions
   * always over HTTP (src/chain/ws-rpc.ts). Absent: polling only, every read over HTTP.
   */
  wsRpc: z
    .string()
    .regex(/^wss?:\/\//)
    .optional(),
  /** Trusted simulation root public keys (hex), comma-separated, for re-appraisal. */
  simRoots: z
    .preprocess(
      (v) => (typeof v === 'string' ? v.split(',').filter(Boolean) : v),
      z.array(z.string().regex(/^[0-9a-f]{64}$/)),
    )
    .default([]),
  /** Accept sim evidence when re-appraising (development networks only). */
  allowSim: z.preprocess((v) => v === true || v === 'true' || v === '1', z.boolean()).default(false),
  /**
   * Call executors at loopback, private and link-local addresses (a local or development
   * network; the devnet sets it). Off: such endpoints on chain are refused (§13.1).
   */
  localNetwork: z.preprocess((v) => v === true || v === 'true' || v === '1', z.boolean()).default(false),
  /** CA certificate files trusted for TPM EK/AK certificates (re-appraising tpm2 evidence). */
  tpm2Cas: fileList,
  /** Trusted tpm2 credential activators' Ed25519 public keys (hex), comma-separated. */
  tpm2Activators: hexKeyList,
});

export type AgentConfig = Readonly<
  Omit<z.infer<typeof AgentConfigSchema>, 'contracts'> & { contracts: FerryContracts }
>;

export function agentHome(profile: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(ferryHome(env), 'agents', profile);
}

export function loadAgentConfig(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
  file?: string,
): AgentConfig {
  const profile = typeof flags.profile === 'string' ? flags.profile : env.FERRY_PROFILE;
  const path =
    file ??
    (profile && PROFILE_NAME_RE.test(profile) ? join(agentHome(profile, env), 'agent.json') : undefined);
  return loadConfig(AgentConfigSchema, {
    flags,
    env,
    file: path,
    fileRequired: file !== undefined,
  }) as AgentConfig;
}
