/** `ferry agent start`: runs an owner agent until SIGINT/SIGTERM. */
import { agentHome, loadAgentConfig, AgentDaemon } from '../../agent/index.ts';
import { ferryHome } from '../../kernel/index.ts';
import { optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';
import { daemonFlags, runUntilSignal } from '../daemon-run.ts';
import { loadProfileSecrets } from '../../profile/index.ts';

export default defineCommand({
  name: 'agent start',
  summary: "run a profile's owner agent until interrupted",
  usage: 'agent start --profile NAME --rpc URL --contracts JSON [--port N] [--public-url URL] [--json]',
  description: `
Holds the profile's identities, serves its assets' ciphertext (stored in
$FERRY_HOME/agents/NAME/) to executors of attested tasks, and on "attested" checks the VRF
proofs, the vote threshold, its policy and the evidence, then releases file keys sealed to
the enclave and records the release on chain. A restart resumes from its SQLite state, at
the same port when --port is 0 (remembered); at start it points the on-chain endpoint of every
asset it holds at its URL (--public-url when it is reached through a proxy).
When ready it prints one line: {"ready": true, "address", "endpoint", "keyId", "ageRecipient", ...}.`,
  options: {
    profile: { type: 'string', value: 'NAME', description: 'the owner profile' },
    'public-url': {
      type: 'string',
      value: 'URL',
      description: 'the URL executors reach this agent at (default: its listening address)',
    },
    ...daemonFlags,
  },
  async run(ctx) {
    const flags = {
      profile: optionalString(ctx, 'profile'),
      rpc: optionalString(ctx, 'rpc'),
      contracts: optionalString(ctx, 'contracts'),
      host: optionalString(ctx, 'host'),
      port: optionalString(ctx, 'port'),
      publicUrl: optionalString(ctx, 'public-url'),
      simRoots: optionalString(ctx, 'sim-roots'),
      allowSim: ctx.values['allow-sim'] === true ? true : undefined,
      localNetwork: ctx.values['local-network'] === true ? true : undefined,
      tpm2Cas: optionalString(ctx, 'tpm2-cas'),
      tpm2Activators: optionalString(ctx, 'tpm2-activators'),
    };
    const config = loadAgentConfig(flags, ctx.env, optionalString(ctx, 'config'));
    const secrets = loadProfileSecrets(ferryHome(ctx.env), config.profile);
    const daemon = new AgentDaemon({
      config,
      home: agentHome(config.profile, ctx.env),
      keys: {
        evmPrivateKey: secrets.evmPrivateKey,
        signer: secrets.signer,
        ageIdentity: secrets.ageIdentity,
      },
      log: ctx.log,
    });
    return runUntilSignal(ctx, daemon, (r) => `agent for ${r.profile} ready at ${r.endpoint}`);
  },
});
