/**
 * `ferry app publish APP.wasm [--price WEI] [--tee KINDS] [--policy P]`: encrypts the module
 * into the profile's owner-agent store and registers it with its measurement (SHA-256 of the
 * plaintext module), the TEE kinds its owner allows and the owner's appraisal policy document.
 */
import { statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { FerryError, ferryHome } from '../../kernel/index.ts';
import { optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';
import {
  defaultTeeKinds,
  fileProblem,
  listOption,
  parseTeeKinds,
  parseWei,
  POLICY_CHOICES,
  policyOptionFor,
} from '../journey/args.ts';
import {
  actAs,
  devnetAgentUrl,
  locateNetwork,
  NETWORK_OPTIONS,
  PROFILE_OPTION,
  profileName,
} from '../journey/network.ts';
import { publishApp } from '../../agent/index.ts';

export default defineCommand({
  name: 'app publish',
  summary: "encrypt a WASM app into the profile's agent and register it with its measurement",
  usage: 'app publish APP.wasm [--price WEI] [--tee KINDS] [--policy P] [--profile NAME] [--json]',
  description: `
Encrypts APP.wasm with age to the profile's recipient into its owner agent's store and
registers the app on chain: measurement (SHA-256 of the module: what data owners allow),
ciphertext hash, agent endpoint, price per task (wei, fixed forever), the TEE kinds the app
may run on (a task's kinds are the app's AND its datasets') and the app owner's appraisal
policy document (published in the registration event; verifiers pass evidence only if it
satisfies this policy and every dataset's, and the owner's agent releases the app key only
under it). --policy ${POLICY_CHOICES.replace(', or ', ', ')}: as for dataset add.
Defaults on a devnet: --tee sim, --policy pinned; elsewhere --tee is every hardware kind and
--policy is required.
--json prints {"appId", "measurement", "ciphertextHash", "localId", "size", "price",
"teeKinds", "appraisalPolicy", "appraisalPolicyHash", "endpoint", "txHash"}.`,
  options: {
    ...PROFILE_OPTION,
    price: { type: 'string', value: 'WEI', description: 'price per task in wei (default 0)' },
    tee: { type: 'string', value: 'KINDS', description: 'allowed TEE kinds, comma-separated' },
    policy: {
      type: 'string',
      value: 'P',
      description: 'appraisal policy: release, production, development, pinned or a JSON file',
    },
    name: { type: 'string', value: 'NAME', description: 'a name for the app (default the file name)' },
    endpoint: { type: 'string', value: 'URL', description: "the owner agent's URL (default the devnet's)" },
    ...NETWORK_OPTIONS,
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const file = ctx.positionals[0];
    let magic: Buffer;
    try {
      if (!statSync(file).isFile()) throw new Error('not a file');
      const { openSync, readSync, closeSync } = await import('node:fs');
      const fd = openSync(file, 'r');
      magic = Buffer.alloc(4);
      readSync(fd, magic, 0, 4, 0);
      closeSync(fd);
    } catch (e) {
      throw new FerryError('IO_READ_FAILED', `cannot read app file ${file}`, {
        cause: e,
        hints: [
          `path: ${resolve(file)}`,
          fileProblem(e),
          ...(/(^|\/)build\/examples\//.test(file)
            ? ['build the examples first: npm run build:examples']
            : []),
        ],
      });
    }
    if (!magic.equals(Buffer.from([0, 0x61, 0x73, 0x6d]))) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', `${file} is not a WebAssembly module`, {
        hints: ['expected: a .wasm file starting with \\0asm'],
      });
    }
    const price = parseWei(optionalString(ctx, 'price'), '--price', 0n);
    const net = locateNetwork(ctx);
    const isDevnet = net.devnet !== null;
    const tee = parseTeeKinds(
      listOption(ctx, 'tee').length ? listOption(ctx, 'tee') : defaultTeeKinds(isDevnet),
    );
    // Before anything is encrypted or spent: off a devnet --policy is required.
    const policy = await policyOptionFor(optionalString(ctx, 'policy'), isDevnet);
    const profile = profileName(ctx);
    const endpoint = optionalString(ctx, 'endpoint') ?? devnetAgentUrl(net, profile);
    if (!endpoint) {
      throw new FerryError('USAGE_MISSING_ARGUMENT', `no owner agent known for profile ${profile}`, {
        hints: ['pass --endpoint URL of the running agent (ferry agent start prints it)'],
      });
    }
    const { secrets, chain } = await actAs(net, ferryHome(ctx.env), profile);
    ctx.progress(`encrypting ${file} into ${profile}'s agent and registering it...`);
    const app = await publishApp({
      env: ctx.env,
      profile,
      secrets,
      chain,
      endpoint,
      file,
      name: optionalString(ctx, 'name') ?? basename(file),
      price,
      tee,
      policy,
      signal: ctx.signal,
    });
    const policyName = (policy as { name?: string }).name ?? null;
    return {
      json: {
        appId: app.appId.toString(),
        measurement: app.measurement,
        ciphertextHash: app.ciphertextHash,
        localId: app.localId,
        size: app.size,
        price: price.toString(),
        teeKinds: tee,
        appraisalPolicy: policyName,
        appraisalPolicyHash: app.appraisalPolicyHash,
        endpoint,
        txHash: app.txHash,
      },
      text: [
        `app ${app.appId} published`,
        `  measurement: ${app.measurement}`,
        `  TEE: ${tee.join(', ')}; appraisal policy: ${policyName ?? app.appraisalPolicyHash}`,
        `  (data owners allow it with: --allow-app ${app.measurement})`,
      ].join('\n'),
    };
  },
});
