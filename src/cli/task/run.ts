/**
 * `ferry task run --app ID --dataset ID [--arg A]... [--wait] [--out FILE] [--receipt FILE]`:
 * creates a task (escrowing the fee) and, with --wait, follows it stage by stage, then fetches
 * the result, audits the task from the chain (src/audit) and decrypts the result into --out.
 */
import { TASK_WINDOW_BOUNDS } from '../../chain/index.ts';
import { FerryError, ferryHome } from '../../kernel/index.ts';
import type { ProgressEvent } from '../../protocol/index.ts';
import {
  checkFunds,
  createTaskFor,
  DEFAULT_WINDOWS,
  explainFailure,
  finishTask,
  preflightExecutors,
  taskPrices,
  waitForTask,
} from '../../requester/index.ts';
import { intOption, optionalString, stringList } from '../args.ts';
import { defineCommand } from '../command.ts';
import { checkWritable, parseId, parseWei } from '../journey/args.ts';
import {
  actAs,
  auditTrust,
  locateNetwork,
  NETWORK_OPTIONS,
  PROFILE_OPTION,
  profileName,
  TRUST_OPTIONS,
} from '../journey/network.ts';
import { deliver } from './deliver.ts';
import { stageReporter } from './progress.ts';

/** An integer option within the contract's bounds (a usage error before any chain call). */
function boundedInt(
  ctx: Parameters<typeof intOption>[0],
  name: string,
  dflt: number,
  b: { min: number; max: number },
): number {
  const v = intOption(ctx, name, dflt, b.min);
  if (v > b.max) {
    throw new FerryError('USAGE_INVALID_ARGUMENT', `--${name} is too large`, {
      hints: [`expected: at most ${b.max} seconds`, `got: ${v}`],
    });
  }
  return v;
}

export default defineCommand({
  name: 'task run',
  summary: 'run an app on datasets; with --wait, follow it, verify the receipt and decrypt the result',
  usage:
    'task run --app ID --dataset ID [--dataset ID]... [--arg A]... [--wait] [--out FILE] [--receipt FILE] [--fee WEI] [--ttl S] [--profile NAME] [--json]',
  description: `
Creates a task on chain for the profile (the requester): the app, the datasets, the input
hash of the arguments, and the profile's age recipient for the result; the fee (default the
prices plus 0.001 ether for the executor and verifiers) is escrowed. Refuses first when no
active executor is in a region and TEE kind every dataset allows.
Without --wait prints {"taskId", "status", "txHash"}. Refuses first (exit 2, nothing spent)
when --out or --receipt cannot be written, or the profile's balance does not cover the fee.
With --wait it shows each stage as it happens (seeded, claimed, evidence, votes, keys
released, running, receipt, done) with its time since creation: on a terminal as a stage view,
elsewhere (logs, CI) one line per stage on stderr starting with "task ID"; it calls timeout
when a deadline passes, and when the task completes fetches the result, verifies the task from
the chain (ferry receipt verify's checks, plus the result's hash), and decrypts it into --out
(default: stdout without --json). --receipt FILE saves the receipt bundle for "ferry receipt
verify FILE". "ferry task result ID" does the same later.
--json prints {"taskId", "status", "attempt", "stagesMs": {...}, "verified", "outcome" (exit,
trap or limit: how the app ended, from the receipt), "appExitCode" (the app's exit code, or
null), "limitHit" (time, memory, output or null), "out", "receipt", "resultSha256", "checks"};
a failure adds {"error": {"code", "message", "hints"}}.
Exit 0 only when the task completed, verified and the app exited 0; 1 when the task failed or
the app did not exit 0 (ENCLAVE_APP_FAILED: the task is still completed on chain and its
receipt valid; the hints say which limit was hit and how to raise it); 2 for usage, an
unwritable --out or an unfunded profile; 3 when verification failed.`,
  options: {
    ...PROFILE_OPTION,
    app: { type: 'string', value: 'ID', description: 'the app id' },
    dataset: { type: 'string', multiple: true, value: 'ID', description: 'a dataset id' },
    arg: {
      type: 'string',
      multiple: true,
      value: 'A',
      description: "an argument for the app (use --arg=-x for one starting with '-')",
    },
    wait: { type: 'boolean', description: 'follow the task, verify and decrypt the result' },
    out: { type: 'string', value: 'FILE', description: 'write the decrypted result here (with --wait)' },
    receipt: { type: 'string', value: 'FILE', description: 'save the receipt bundle here (with --wait)' },
    fee: { type: 'string', value: 'WEI', description: 'escrowed fee (default: prices + 10^15 wei)' },
    ttl: { type: 'string', value: 'S', description: 'seconds until the task expires (default 600)' },
    'claim-window': {
      type: 'string',
      value: 'S',
      description: `claim window, seconds (default ${DEFAULT_WINDOWS.claim})`,
    },
    'run-window': {
      type: 'string',
      value: 'S',
      description: `run window, seconds (default ${DEFAULT_WINDOWS.run})`,
    },
    ...NETWORK_OPTIONS,
    ...TRUST_OPTIONS,
  },
  async run(ctx) {
    const appText = optionalString(ctx, 'app');
    if (!appText)
      throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing --app', {
        hints: ['list apps with: ferry app ls'],
      });
    const appId = parseId(appText, '--app');
    const dsTexts = stringList(ctx, 'dataset');
    if (dsTexts.length === 0) {
      throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing --dataset', {
        hints: ['list datasets with: ferry dataset ls'],
      });
    }
    const datasetIds = [...new Set(dsTexts.map((d) => parseId(d, '--dataset')))];
    if (datasetIds.length > 7) throw new FerryError('USAGE_INVALID_ARGUMENT', 'at most 7 datasets per task');
    const args = stringList(ctx, 'arg');
    const wait = ctx.values.wait === true;
    const out = optionalString(ctx, 'out');
    const receiptFile = optionalString(ctx, 'receipt');
    if ((out || receiptFile) && !wait) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--out and --receipt need --wait');
    }
    // Before anything is spent: a result that cannot be saved is refused now, not after paying.
    if (out) checkWritable(out, '--out');
    if (receiptFile) checkWritable(receiptFile, '--receipt');
    const B = TASK_WINDOW_BOUNDS;
    const ttl = boundedInt(ctx, 'ttl', 600, B.ttl);
    const windows = {
      ...DEFAULT_WINDOWS,
      claim: boundedInt(ctx, 'claim-window', DEFAULT_WINDOWS.claim, B.claimWindow),
      run: boundedInt(ctx, 'run-window', DEFAULT_WINDOWS.run, B.runWindow),
    };
    const net = locateNetwork(ctx);
    // Read before the task exists: a bad trust setting is a usage error, not a lost task.
    const trust = auditTrust(net);
    const profile = profileName(ctx);
    const { secrets, chain } = await actAs(net, ferryHome(ctx.env), profile);
    const prices = await taskPrices(chain, appId, datasetIds);
    const fee = parseWei(optionalString(ctx, 'fee'), '--fee', prices + 10n ** 15n);
    await preflightExecutors(chain, datasetIds);
    await checkFunds(chain, {
      profile,
      address: secrets.profile.address as `0x${string}`,
      fee,
      devnetRpcUrl: net.devnet ? net.rpcUrl : undefined,
    });
    const created = await createTaskFor({
      chain,
      secrets,
      appId,
      datasetIds,
      args,
      fee,
      ttlSeconds: ttl,
      windows,
    });
    if (!wait) {
      return {
        json: { taskId: created.taskId.toString(), status: 'created', txHash: created.txHash },
        text: `task ${created.taskId} created; follow it with: ferry task show ${created.taskId}`,
      };
    }
    const report = stageReporter(ctx, created.taskId, { startedAt: created.startedAt });
    report.created();
    const waited = await waitForTask(chain, created.taskId, {
      startedAt: created.startedAt,
      signal: ctx.signal,
      maxWaitMs: (ttl + 30) * 1000,
      onStage: (st: ProgressEvent) => report.stage(st),
    })
      .finally(() => report.finish())
      .catch((e) => {
        if (!ctx.signal.aborted) throw e;
        throw new FerryError(
          'ABORTED',
          `stopped waiting; task ${created.taskId} goes on without this command`,
          {
            cause: e,
            hints: [
              `follow it with: ferry task show ${created.taskId}`,
              `fetch, verify and decrypt its result later with: ferry task result ${created.taskId}`,
            ],
          },
        );
      });
    const base = {
      taskId: created.taskId.toString(),
      status: waited.task.status,
      attempt: waited.task.attempt,
    };
    if (waited.task.status !== 'completed') {
      const err = await explainFailure(chain, chain.chainId, waited.task, waited.events, trust);
      if (!ctx.json) {
        ctx.stderr.write(
          `ferry: task ${created.taskId} ${waited.task.status}: ${err.message} [${err.code}]\n`,
        );
        for (const h of err.hints) ctx.stderr.write(`  ${h}\n`);
      }
      return {
        json: { ...base, verified: false, stagesMs: waited.stagesMs, error: err.toJSON() },
        exitCode: err.exitCode,
      };
    }
    const fin = await finishTask({
      chain,
      chainId: chain.chainId,
      contracts: net.contracts,
      taskId: created.taskId,
      secrets,
      trust,
      signal: ctx.signal,
    });
    const stagesMs = { ...waited.stagesMs, done: Date.now() - created.startedAt };
    report.stage({
      stage: 'done',
      attempt: waited.task.attempt,
      ms: stagesMs.done,
      detail: fin.report.verified
        ? `result fetched, verified (${fin.report.checks.length} checks) and decrypted`
        : 'result fetched; verification FAILED',
    });
    return deliver(ctx, {
      taskId: created.taskId,
      fin,
      out,
      receiptFile,
      base: { ...base, stagesMs },
      successText: `task ${created.taskId} completed and verified; result written to ${out}`,
    });
  },
});
