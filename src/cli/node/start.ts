/** `ferry node start`: runs a node daemon until SIGINT/SIGTERM. */
import { loadNodeConfig, nodeHome, NodeDaemon } from '../../node/index.ts';
import { optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';
import { loadProfileSecrets } from '../../profile/index.ts';
import { ferryHome } from '../../kernel/index.ts';
import { daemonFlags, runUntilSignal } from '../daemon-run.ts';

export default defineCommand({
  name: 'node start',
  summary: 'run a node (executor and/or verifier) until interrupted',
  usage:
    'node start --profile NAME --roles executor,verifier --tee sim|tpm2|tdx|sev-snp|vm --region DE --rpc URL --contracts JSON [--stake WEI] [--operator ADDRESS] [--enclave-slots N] [--max-jobs N] [--port N] [--json]',
  description: `
Registers the profile's account as a node with stake (or resumes its registration), serves
evidence and results over HTTP on 127.0.0.1, watches the chain, claims tasks (executor) and
votes (verifier). State lives in $FERRY_HOME/nodes/NAME/ (SQLite), so a restart resumes.
--operator declares who runs the node (an address; default: none, the node is its own operator):
a verifier never judges an executor of its own operator (protocol.md §11.1).
--enclave-slots bounds the enclaves running at once (each decrypts and runs an app: about one
per core); --max-jobs bounds all jobs at once (most wait on the chain or a peer), at least
2 x enclave slots + 2.
--tee vm runs each attempt's enclave in a VM booted once at start from the node image
(--vm-image DIR, from ferry image build) with OVMF and a vTPM (--vm-tpm-state DIR, provisioned
with its AK before; --tpm2-ek-cert, --tpm2-activation, --tpm2-ek-chain give its public parts);
KVM when it can run guests here, else QEMU's emulation (TCG), said in the log (protocol.md §17.5).
Options may also come from FERRY_* variables or $FERRY_HOME/nodes/NAME/node.json (--config).
When ready it prints one line: {"ready": true, "address", "endpoint", "keyId", "vrfPublicKey", ...}.`,
  options: {
    profile: { type: 'string', value: 'NAME', description: 'profile with the EVM account and signing key' },
    roles: { type: 'string', value: 'LIST', description: 'executor, verifier or both (comma-separated)' },
    tee: { type: 'string', value: 'KIND', description: 'sim, tpm2, tdx, sev-snp or vm' },
    region: { type: 'string', value: 'CC', description: 'ISO 3166-1 alpha-2 region, e.g. DE' },
    stake: { type: 'string', value: 'WEI', description: 'stake to register with (default 1 ether)' },
    operator: {
      type: 'string',
      value: 'ADDRESS',
      description: 'who runs the node (default: none, the node itself)',
    },
    'sim-attester': { type: 'string', value: 'FILE', description: 'sim: the attester file for enclaves' },
    'tpm2-tcti': {
      type: 'string',
      value: 'TCTI',
      description: 'tpm2: the TPM (swtpm:…, device:/dev/tpmrm0)',
    },
    'tpm2-ak-handle': { type: 'string', value: 'HANDLE', description: 'tpm2: persistent AK handle' },
    'tpm2-activation': { type: 'string', value: 'FILE', description: 'tpm2: the signed activation record' },
    'tpm2-ek-cert': { type: 'string', value: 'FILE', description: 'tpm2: EK certificate instead of NV' },
    'tpm2-ek-chain': { type: 'string', value: 'FILE,...', description: 'tpm2: EK intermediate CA files' },
    'vm-image': { type: 'string', value: 'DIR', description: 'vm: the node image (ferry image build --out)' },
    'vm-tpm-state': { type: 'string', value: 'DIR', description: 'vm: the provisioned vTPM state directory' },
    'vm-accel': { type: 'string', value: 'auto|kvm|tcg', description: 'vm: the accelerator (default auto)' },
    'enclave-slots': {
      type: 'string',
      value: 'N',
      description: 'enclave runs (and enclave creations) at once (default 2; about one per core)',
    },
    'max-jobs': {
      type: 'string',
      value: 'N',
      description: 'jobs at once overall: claims, votes, runs, receipts (default 32)',
    },
    'max-enclaves': {
      type: 'string',
      value: 'N',
      description: 'live enclaves at most; with this many the executor claims nothing (default 8)',
    },
    'enclave-pool': {
      type: 'string',
      value: 'N',
      description: 'enclave processes kept started (no keys) for the next claims; 0: off (default 1)',
    },
    'min-evidence-window': {
      type: 'string',
      value: 'SECONDS',
      description: 'claim only tasks whose evidence window is at least this (default 10)',
    },
    'max-run-window': {
      type: 'string',
      value: 'SECONDS',
      description: 'claim only tasks whose run window is at most this (default 3600)',
    },
    'keys-wait': {
      type: 'string',
      value: 'SECONDS',
      description:
        'how long an attested enclave waits for its keys before the attempt is abandoned (default 300)',
    },
    'no-challenge': {
      type: 'boolean',
      description:
        'log the lies that hurt this executor (false votes, a false winning claim) without proving them on chain',
    },
    ...daemonFlags,
  },
  async run(ctx) {
    const flags = {
      profile: optionalString(ctx, 'profile'),
      roles: optionalString(ctx, 'roles'),
      tee: optionalString(ctx, 'tee'),
      region: optionalString(ctx, 'region'),
      rpc: optionalString(ctx, 'rpc'),
      contracts: optionalString(ctx, 'contracts'),
      stake: optionalString(ctx, 'stake'),
      operator: optionalString(ctx, 'operator'),
      host: optionalString(ctx, 'host'),
      port: optionalString(ctx, 'port'),
      simAttester: optionalString(ctx, 'sim-attester'),
      simRoots: optionalString(ctx, 'sim-roots'),
      allowSim: ctx.values['allow-sim'] === true ? true : undefined,
      localNetwork: ctx.values['local-network'] === true ? true : undefined,
      tpm2Tcti: optionalString(ctx, 'tpm2-tcti'),
      tpm2AkHandle: optionalString(ctx, 'tpm2-ak-handle'),
      tpm2Activation: optionalString(ctx, 'tpm2-activation'),
      tpm2EkCert: optionalString(ctx, 'tpm2-ek-cert'),
      tpm2EkChain: optionalString(ctx, 'tpm2-ek-chain'),
      vmImage: optionalString(ctx, 'vm-image'),
      vmTpmState: optionalString(ctx, 'vm-tpm-state'),
      vmAccel: optionalString(ctx, 'vm-accel'),
      tpm2Cas: optionalString(ctx, 'tpm2-cas'),
      tpm2Activators: optionalString(ctx, 'tpm2-activators'),
      enclaveSlots: optionalString(ctx, 'enclave-slots'),
      maxJobs: optionalString(ctx, 'max-jobs'),
      maxEnclaves: optionalString(ctx, 'max-enclaves'),
      enclavePool: optionalString(ctx, 'enclave-pool'),
      keysWaitSeconds: optionalString(ctx, 'keys-wait'),
      minEvidenceWindow: optionalString(ctx, 'min-evidence-window'),
      maxRunWindow: optionalString(ctx, 'max-run-window'),
      challengeLies: ctx.values['no-challenge'] === true ? false : undefined,
    };
    const config = loadNodeConfig(flags, ctx.env, optionalString(ctx, 'config'));
    const secrets = loadProfileSecrets(ferryHome(ctx.env), config.profile);
    const daemon = new NodeDaemon({
      config,
      home: nodeHome(config.profile, ctx.env),
      keys: {
        evmPrivateKey: secrets.evmPrivateKey,
        signer: secrets.signer,
        signingSecretKey: secrets.signingSecretKey,
      },
      log: ctx.log,
    });
    return runUntilSignal(
      ctx,
      daemon,
      (r) => `node ${r.address} ready at ${r.endpoint} (${r.roles.join(',')}, ${r.tee}, ${r.region})`,
    );
  },
});
