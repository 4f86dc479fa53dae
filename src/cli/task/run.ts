/**
 * `ferry task run --app ID --dataset ID [--arg A]... [--wait] [--out FILE] [--receipt FILE]`:
 * creates a task (escrowing the fee) and, with --wait, follows it stage by stage, then fetches
 * the result, audits the task from the chain (src/audit) and decrypts the result into --out.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { bundleToJson } from '../../audit/index.ts';
import { getApp, getDataset } from '../../chain/index.ts';
import { FerryError, ferryHome } from '../../kernel/index.ts';
import { intOption, optionalString, stringList } from '../args.ts';
import { defineCommand } from '../command.ts';
import { parseId, parseWei } from '../journey/args.ts';
import { finishTask } from '../journey/finish.ts';
import {
  actAs,
  auditTrust,
  locateNetwork,
  NETWORK_OPTIONS,
  PROFILE_OPTION,
  profileName,
  TRUST_OPTIONS,
} from '../journey/network.ts';
import {
  createTaskFor,
  DEFAULT_WINDOWS,
  explainFailure,
  preflightExecutors,
  waitForTask,
} from '../journey/ops.ts';
import { formatChecks, formatStage } from '../journey/timeline.ts';

async function writeOut(path: string, data: Uint8Array | string, what: string): Promise<void> {
  try {
    await writeFile(path, data, { mode: 0o600 });
  } catch (e) {
    throw new FerryError('IO_WRITE_FAILED', `cannot write ${what} to ${path}`, {
      cause: e,
      hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
    });
  }
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
Without --wait prints {"taskId", "status", "txHash"}.
With --wait it shows each stage as it happens (seeded, claimed, evidence, votes, keys
released, running, receipt, done) with its time since creation, calls timeout when a deadline
passes, and when the task completes fetches the result, verifies the task from the chain
(ferry receipt verify's checks, plus the result's hash), and decrypts it into --out (default:
stdout without --json). --receipt FILE saves the receipt bundle for "ferry receipt verify FILE".
--json prints {"taskId", "status", "verified", "stagesMs": {...}, "attempt", "out",
"resultSha256", "checks"}; a failed task adds {"error": {"code", "message", "hints"}}.
Exit 0 only when the task completed and verified; 1 when it failed, 3 when verification failed.`,
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
    const ttl = intOption(ctx, 'ttl', 600, 10);
    const windows = {
      ...DEFAULT_WINDOWS,
      claim: intOption(ctx, 'claim-window', DEFAULT_WINDOWS.claim, 1),
      run: intOption(ctx, 'run-window', DEFAULT_WINDOWS.run, 1),
    };
    const net = locateNetwork(ctx);
    // Read before the task exists: a bad trust setting is a usage error, not a lost task.
    const trust = auditTrust(net);
    const profile = profileName(ctx);
    const { secrets, chain } = await actAs(net, ferryHome(ctx.env), profile);
    const app = await getApp(chain, appId);
    if (!app)
      throw new FerryError('ASSET_NOT_FOUND', `app ${appId} does not exist`, {
        hints: ['list apps with: ferry app ls'],
      });
    let prices = app.price;
    for (const d of datasetIds) {
      const ds = await getDataset(chain, d);
      if (!ds) {
        throw new FerryError('ASSET_NOT_FOUND', `dataset ${d} does not exist`, {
          hints: ['list datasets with: ferry dataset ls'],
        });
      }
      prices += ds.price;
    }
    const fee = parseWei(optionalString(ctx, 'fee'), '--fee', prices + 10n ** 15n);
    await preflightExecutors(chain, datasetIds);
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
    ctx.progress(`task ${created.taskId} created; waiting (Ctrl-C stops waiting, not the task):`);
    const waited = await waitForTask(chain, created.taskId, {
      startedAt: created.startedAt,
      signal: ctx.signal,
      maxWaitMs: (ttl + 30) * 1000,
      onStage: (s) => ctx.progress(formatStage(s)),
    }).catch((e) => {
      if (!ctx.signal.aborted) throw e;
      throw new FerryError(
        'ABORTED',
        `stopped waiting; task ${created.taskId} goes on without this command`,
        {
          cause: e,
          hints: [
            `follow it with: ferry task show ${created.taskId}`,
            `verify it later with: ferry receipt verify ${created.taskId}`,
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
    ctx.progress(
      formatStage({
        stage: 'done',
        attempt: waited.task.attempt,
        ms: stagesMs.done,
        detail: 'result fetched, verified and decrypted',
      }),
    );
    if (receiptFile && fin.bundle)
      await writeOut(
        receiptFile,
        `${JSON.stringify(bundleToJson(fin.bundle), null, 2)}\n`,
        'the receipt bundle',
      );
    if (out && fin.plaintext) await writeOut(out, fin.plaintext, 'the result');
    const result = {
      ...base,
      verified: fin.report.verified,
      stagesMs,
      out: out && fin.plaintext ? out : null,
      receipt: receiptFile && fin.bundle ? receiptFile : null,
      resultSha256: fin.plaintext ? createHash('sha256').update(fin.plaintext).digest('hex') : null,
      outcome: fin.report.receipt
        ? {
            outcome: fin.report.receipt.outcome,
            exitCode: fin.report.receipt.exitCode,
            limitHit: fin.report.receipt.limitHit,
          }
        : null,
      checks: fin.report.checks,
    };
    if (!fin.report.verified) {
      const failed = fin.report.checks.filter((c) => !c.ok);
      const err = new FerryError(
        'RECEIPT_INVALID',
        `the task completed but ${failed.length} check(s) failed: ${failed.map((c) => c.name).join(', ')}`,
        {
          hints: failed.map((c) => `${c.name}: ${c.detail}`),
        },
      );
      if (!ctx.json)
        ctx.stderr.write(`ferry: ${err.message} [${err.code}]\n${formatChecks(fin.report.checks)}\n`);
      return { json: { ...result, error: err.toJSON() }, exitCode: err.exitCode };
    }
    if (!fin.plaintext) {
      const err = fin.resultError ?? new FerryError('PEER_UNAVAILABLE', 'the result could not be fetched');
      if (!ctx.json) ctx.stderr.write(`ferry: ${err.message} [${err.code}]\n`);
      return { json: { ...result, error: err.toJSON() }, exitCode: err.exitCode };
    }
    const appFailed =
      fin.report.receipt && (fin.report.receipt.outcome !== 'exit' || fin.report.receipt.exitCode !== 0);
    if (appFailed) {
      const r = fin.report.receipt!;
      const err = new FerryError(
        'ENCLAVE_APP_FAILED',
        `the app ${r.outcome === 'exit' ? `exited with code ${r.exitCode}` : r.outcome === 'limit' ? `hit its ${r.limitHit} limit` : 'trapped'}`,
        {
          hints: ['the receipt is valid; the output is what the app wrote before it stopped'],
        },
      );
      if (!ctx.json) ctx.stderr.write(`ferry: ${err.message} [${err.code}]\n`);
      return {
        json: { ...result, error: err.toJSON() },
        text: out ? undefined : Buffer.from(fin.plaintext).toString('utf8'),
        exitCode: err.exitCode,
      };
    }
    ctx.progress(`verified: ${fin.report.checks.length} checks passed`);
    return {
      json: result,
      text: out
        ? `task ${created.taskId} completed and verified; result written to ${out}`
        : Buffer.from(fin.plaintext).toString('utf8'),
    };
  },
});
