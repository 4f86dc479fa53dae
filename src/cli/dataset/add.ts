/**
 * `ferry dataset add FILE --region DE [--allow-app M]... [--tee KINDS] [--committee TAU
 * --threshold T] [--max-uses N] [--expires TIME] [--policy P]`: encrypts FILE into the
 * profile's owner-agent store (age, to the profile's recipient; the plaintext is never
 * written), registers it on chain with its policy, and shows the committee's capture and
 * liveness-failure probabilities for the chosen tau and threshold.
 */
import { FerryError, ferryHome } from '../../kernel/index.ts';
import { parseThreshold } from '../../crypto/index.ts';
import { numberOption, optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';
import {
  defaultTeeKinds,
  fileProblem,
  listOption,
  parseExpires,
  parseMeasurement,
  parseRegions,
  parseTeeKinds,
  parseWei,
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
import { addDataset } from '../../agent/index.ts';
import { committeeFigures, currentVerifierStake } from '../../protocol/index.ts';
import { formatProbability } from '../journey/timeline.ts';
import { basename, resolve } from 'node:path';
import { statSync } from 'node:fs';
import type { Address } from 'viem';

export default defineCommand({
  name: 'dataset add',
  summary: "encrypt a dataset into the profile's agent and register it with its policy",
  usage:
    'dataset add FILE --region DE [--allow-app MEASUREMENT]... [--tee KINDS] [--committee TAU --threshold T] [--max-uses N] [--expires TIME] [--policy P] [--profile NAME] [--json]',
  description: `
Encrypts FILE with age to the profile's recipient into its owner agent's store (the agent
serves the ciphertext to attested executors and releases the key), then registers the
dataset on chain: ciphertext hash, agent endpoint, and the policy (regions, allowed app
measurements, TEE kinds, committee tau and threshold, uses, expiry) with the appraisal
policy document itself (published in the registration event, so every verifier can apply it;
its SHA-256 is the appraisalPolicyHash). --policy release|production|development|pinned|FILE: release pins this release's published runtime (production settings); pinned is
the development policy with reference values pinned to this checkout's enclave runtime (sim
measurement and tpm2 PCR 23), so an executor running a modified runtime is rejected.
Defaults on a devnet: --tee sim, --policy pinned; elsewhere --tee is every hardware kind and
--policy is required (no default accepts every platform). --threshold is a seat count or a fraction of tau (2/3). The committee's
capture probability is computed for an adversary holding --adversary of the stake (0.2).
--json prints {"datasetId", "localId", "ciphertextHash", "size", "regions", "allowedApps",
"teeKinds", "tau", "threshold", "maxUses", "expiresAt", "appraisalPolicy", "appraisalPolicyHash",
"endpoint", "committee": {"capture", "livenessFailure", "adversary", "model"}, "txHash"}.`,
  options: {
    ...PROFILE_OPTION,
    region: { type: 'string', multiple: true, value: 'CC', description: 'allowed executor regions (or any)' },
    'allow-app': {
      type: 'string',
      multiple: true,
      value: 'MEASUREMENT',
      description: 'allowed app measurement (or any)',
    },
    tee: { type: 'string', value: 'KINDS', description: 'allowed TEE kinds, comma-separated' },
    committee: { type: 'string', value: 'TAU', description: 'expected verifier committee size (default 10)' },
    threshold: {
      type: 'string',
      value: 'T',
      description: 'pass seats needed: a count or a fraction of tau (default 2/3)',
    },
    'max-uses': { type: 'string', value: 'N', description: 'uses allowed (default 0: unlimited)' },
    expires: { type: 'string', value: 'TIME', description: 'expiry: ISO 8601 date-time or +N[s|m|h|d]' },
    policy: {
      type: 'string',
      value: 'P',
      description: 'appraisal policy: release, production, development, pinned or a JSON file',
    },
    requester: {
      type: 'string',
      multiple: true,
      value: 'ADDRESS',
      description: 'allowed requester (default anyone)',
    },
    price: { type: 'string', value: 'WEI', description: 'price per use in wei (default 0)' },
    name: { type: 'string', value: 'NAME', description: 'a name for the dataset (default the file name)' },
    endpoint: { type: 'string', value: 'URL', description: "the owner agent's URL (default the devnet's)" },
    adversary: {
      type: 'string',
      value: 'F',
      description: 'adversarial stake fraction for the figures (default 0.2)',
    },
    ...NETWORK_OPTIONS,
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const file = ctx.positionals[0];
    try {
      if (!statSync(file).isFile()) throw new Error('not a file');
    } catch (e) {
      throw new FerryError('IO_READ_FAILED', `cannot read dataset file ${file}`, {
        cause: e,
        hints: [`path: ${resolve(file)}`, fileProblem(e)],
      });
    }
    const regionValues = listOption(ctx, 'region');
    if (regionValues.length === 0) {
      throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing --region', {
        hints: ['where executors may run: --region DE (repeatable), or --region any'],
      });
    }
    const regions = parseRegions(regionValues);
    const appValues = listOption(ctx, 'allow-app');
    if (appValues.length === 0) {
      throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing --allow-app', {
        hints: ['the measurement of each app allowed on the dataset (ferry app ls), or --allow-app any'],
      });
    }
    const allowApps =
      appValues.length === 1 && appValues[0] === 'any' ? ('any' as const) : appValues.map(parseMeasurement);
    const tauText = optionalString(ctx, 'committee') ?? '10';
    const tau = Number(tauText);
    if (!/^[0-9]+$/.test(tauText) || tau < 1 || tau > 65535) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--committee must be an integer from 1 to 65535', {
        hints: [`got: ${tauText}`],
      });
    }
    let threshold: number;
    try {
      threshold = parseThreshold(optionalString(ctx, 'threshold') ?? '2/3', tau);
    } catch (e) {
      throw new FerryError(
        'USAGE_INVALID_ARGUMENT',
        '--threshold must be a seat count or a fraction of tau',
        {
          cause: e,
          hints: [`got: ${optionalString(ctx, 'threshold')}`],
        },
      );
    }
    if (threshold < 1 || threshold > tau) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--threshold must be between 1 and --committee', {
        hints: [`got: ${threshold} seats for tau ${tau}`],
      });
    }
    const maxUsesText = optionalString(ctx, 'max-uses') ?? '0';
    if (!/^[0-9]{1,10}$/.test(maxUsesText) || Number(maxUsesText) > 2 ** 32 - 1) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--max-uses must be an integer from 0 to 4294967295', {
        hints: [`got: ${maxUsesText}`],
      });
    }
    const adversary = numberOption(ctx, 'adversary', 0.2);
    if (adversary < 0 || adversary >= 1) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--adversary must be in [0, 1)', {
        hints: [`got: ${adversary}`],
      });
    }
    const requesters = listOption(ctx, 'requester');
    for (const r of requesters) {
      if (!/^0x[0-9a-fA-F]{40}$/.test(r)) {
        throw new FerryError('USAGE_INVALID_ARGUMENT', '--requester must be an 0x address', {
          hints: [`got: ${r}`],
        });
      }
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
    const home = ferryHome(ctx.env);
    const { secrets, chain } = await actAs(net, home, profile);
    const now = Number((await chain.public.getBlock()).timestamp);
    const expiresAt = parseExpires(optionalString(ctx, 'expires'), now);
    const committee = committeeFigures(tau, threshold, adversary, await currentVerifierStake(chain));
    ctx.progress(`encrypting ${file} into ${profile}'s agent and registering it...`);
    const added = await addDataset({
      env: ctx.env,
      profile,
      secrets,
      chain,
      endpoint,
      source: file,
      name: optionalString(ctx, 'name') ?? basename(file),
      regions,
      allowApps,
      tee,
      tau,
      threshold,
      maxUses: Number(maxUsesText),
      expiresAt,
      requesters: requesters as Address[],
      policy,
      price,
      signal: ctx.signal,
    });
    const out = {
      datasetId: added.datasetId.toString(),
      localId: added.localId,
      ciphertextHash: added.ciphertextHash,
      size: added.size,
      regions,
      allowedApps: allowApps === 'any' ? 'any' : allowApps.map((m) => m.slice(2)),
      teeKinds: tee,
      tau,
      threshold,
      maxUses: Number(maxUsesText),
      expiresAt,
      price: price.toString(),
      appraisalPolicy: (policy as { name?: string }).name ?? null,
      appraisalPolicyHash: added.appraisalPolicyHash,
      endpoint,
      committee: {
        capture: committee.capture,
        livenessFailure: committee.livenessFailure,
        adversary,
        model: committee.model,
      },
      txHash: added.txHash,
    };
    return {
      json: out,
      text: [
        `dataset ${out.datasetId} registered (${out.size} bytes of ciphertext in ${profile}'s agent)`,
        `  regions: ${regions.length ? regions.join(', ') : 'any'}; apps: ${allowApps === 'any' ? 'any' : allowApps.length}; TEE: ${tee.join(', ')}; appraisal policy: ${out.appraisalPolicy ?? out.appraisalPolicyHash}`,
        `  committee: tau ${tau}, threshold ${threshold} seats`,
        `  with ${Number((adversary * 100).toPrecision(6))}% adversarial stake: capture ${formatProbability(committee.capture)}, liveness failure ${formatProbability(committee.livenessFailure)} (${committee.model} model)`,
      ].join('\n'),
    };
  },
});
