/**
 * Node daemon configuration (`ferry node start`): flags, then FERRY_* variables, then the JSON
 * file `$FERRY_HOME/nodes/<profile>/node.json` (or --config), then defaults. See
 * src/kernel/config.ts for the precedence rules.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { type FerryContracts, ROLES, TEE_KINDS } from '../chain/index.ts';
import {
  AddressSchema as address,
  contractsOption as contracts,
  enumList as list,
  fileList,
  hexKeyList,
} from '../daemon/index.ts';
import { ferryHome, loadConfig } from '../kernel/index.ts';
import { PROFILE_NAME_RE } from '../profile/index.ts';

export const NodeConfigSchema = z.object({
  /** The profile whose EVM account and signing key the node uses. */
  profile: z.string().regex(PROFILE_NAME_RE),
  roles: list(Object.keys(ROLES)),
  /** A chain TEE kind, or `vm`: enclaves in a VM booted from the node image (tpm2 evidence, §17.5). */
  tee: z.enum(['vm', ...Object.keys(TEE_KINDS)] as [string, ...string[]]),
  region: z.string().regex(/^[A-Z]{2}$/),
  rpc: z.string().regex(/^https?:\/\//),
  contracts,
  /** Stake to register with, wei (decimal). */
  stake: z.coerce
    .bigint()
    .positive()
    .default(10n ** 18n),
  /** Who runs the node, self-declared (protocol.md §11.1: its verifiers never judge its executors); absent: the node itself. */
  operator: address.optional(),
  host: z.string().default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(0),
  /** Blocks on top before an event is acted on. */
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
  /**
   * Enclave runs at once (each decrypts and runs an app), and enclave creations at once (for
   * evidence); default 2, for a 2-core machine.
   */
  enclaveSlots: z.coerce.number().int().min(1).max(64).default(2),
  /**
   * Jobs at once overall (claims, votes, evidence, runs, receipts); at least 2 × enclaveSlots + 2.
   * Most jobs wait on the chain or a peer (a claim holds its permit until its receipt), so this is
   * well above the cores; the CPU-heavy ones are bounded by their pools.
   */
  maxJobs: z.coerce.number().int().min(2).max(256).default(32),
  /**
   * Live enclaves at most (created for claims won, until their attempt ends): with this many, the
   * executor claims nothing more. Bounds what requesters' windows can pin (issue: unbounded
   * enclaves, each ~120 MiB).
   */
  maxEnclaves: z.coerce.number().int().min(1).max(1024).default(8),
  /**
   * Enclave processes kept spawned and loaded but not initialised (no keys, no commitments), so
   * that a won claim's enclave starts without the spawn (`EnclavePool`, §10.1); each is used once.
   * 0 turns it off. Not counted in `maxEnclaves`: an idle one holds nothing of any task.
   */
  enclavePool: z.coerce.number().int().min(0).max(16).default(1),
  /**
   * Seconds (chain time) an attested attempt's enclave waits for its keys; then it is destroyed
   * and the attempt abandoned (`ENCLAVE_KEYS_MISSING`), so owners that never release cannot pin it.
   */
  keysWaitSeconds: z.coerce.number().int().min(10).max(86_400).default(300),
  /**
   * The executor claims only tasks whose windows it can honour and that cannot pin it for long:
   * an evidence window of at least `minEvidenceWindow` seconds (creating the enclave and
   * committing evidence must fit: a missed evidence deadline is slashed) and a run window of at
   * most `maxRunWindow` seconds.
   */
  minEvidenceWindow: z.coerce.number().int().min(1).max(3600).default(10),
  maxRunWindow: z.coerce.number().int().min(5).max(86_400).default(3600),
  /** sim: the attester file (`ferry/sim-attester/v1`) the enclave signs evidence with. */
  simAttester: z.string().optional(),
  /** sim: trusted simulation root public keys (hex), comma-separated, for appraisal. */
  simRoots: z
    .preprocess(
      (v) => (typeof v === 'string' ? v.split(',').filter(Boolean) : v),
      z.array(z.string().regex(/^[0-9a-f]{64}$/)),
    )
    .default([]),
  /** Allow sim evidence when appraising (development networks only). */
  allowSim: z.preprocess((v) => v === true || v === 'true' || v === '1', z.boolean()).default(false),
  /**
   * Call peers at loopback, private and link-local addresses (a local or development network;
   * the devnet sets it). Off: such endpoints on chain are refused (§13.1).
   */
  localNetwork: z.preprocess((v) => v === true || v === 'true' || v === '1', z.boolean()).default(false),
  /**
   * Prove on chain the lies that hurt this node (§11.5): false votes in an attempt it executed that
   * ended rejected, votes-missed or keys-missed, and a false best claim that beat its own claim.
   * Each proof costs the node about 1 M gas; off: it only logs them.
   */
  challengeLies: z.preprocess(
    (v) => (v === undefined ? true : v === true || v === 'true' || v === '1'),
    z.boolean(),
  ),
  /** tpm2 executor: TPM2TOOLS_TCTI of the node's TPM (`swtpm:…`, `device:/dev/tpmrm0`, …). */
  tpm2Tcti: z
    .string()
    .regex(/^(swtpm|mssim|device|tabrmd):/)
    .optional(),
  /** tpm2 executor: persistent handle of the registered AK (decimal or 0x-hex); default 0x81010002. */
  tpm2AkHandle: z.preprocess(
    (v) => (typeof v === 'string' ? Number(v) : v),
    z.number().int().positive().max(0xffffffff).optional(),
  ),
  /** tpm2 executor: the activator's signed activation record file. */
  tpm2Activation: z.string().optional(),
  /** tpm2 executor: the EK certificate file, instead of reading it from NV. */
  tpm2EkCert: z.string().optional(),
  /** tpm2 executor: intermediate CA certificate files for the EK certificate, comma-separated. */
  tpm2EkChain: fileList,
  /** vm executor: the node image directory (`ferry image build --out`). */
  vmImage: z.string().optional(),
  /** vm executor: the vTPM state directory, provisioned before the VM boots (EK certificate, AK). */
  vmTpmState: z.string().optional(),
  /** vm executor: `auto` (KVM when it can run guests here, else TCG), `kvm` or `tcg`. */
  vmAccel: z.enum(['auto', 'kvm', 'tcg']).default('auto'),
  /** Appraisal: CA certificate files (PEM or DER) trusted for TPM EK/AK certificates, comma-separated. */
  tpm2Cas: fileList,
  /** Appraisal: trusted credential activators' Ed25519 public keys (hex), comma-separated. */
  tpm2Activators: hexKeyList,
});

export type NodeConfig = Readonly<
  Omit<z.infer<typeof NodeConfigSchema>, 'contracts' | 'roles'> & {
    contracts: FerryContracts;
    roles: ('executor' | 'verifier')[];
  }
>;

export function nodeHome(profile: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(ferryHome(env), 'nodes', profile);
}

export function loadNodeConfig(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
  file?: string,
): NodeConfig {
  const profile = typeof flags.profile === 'string' ? flags.profile : env.FERRY_PROFILE;
  const path =
    file ??
    (profile && PROFILE_NAME_RE.test(profile) ? join(nodeHome(profile, env), 'node.json') : undefined);
  return loadConfig(NodeConfigSchema, {
    flags,
    env,
    file: path,
    fileRequired: file !== undefined,
  }) as NodeConfig;
}
