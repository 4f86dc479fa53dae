/**
 * The last step shared by `task run --wait` and `task result`: given a finished task (fetched,
 * audited and decrypted by finishTask), save the receipt bundle and the result, and turn the
 * audit and the app's outcome into the command's JSON, text and exit code:
 * 3 when a check failed (the result is then never decrypted nor written), the fetch error's
 * code when the result could not be had, 1 when the app did not exit 0, else 0.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { bundleToJson } from '../../audit/index.ts';
import { FerryError } from '../../kernel/index.ts';
import type { Finished } from '../../requester/index.ts';
import type { CommandContext, CommandResult } from '../command.ts';
import { type AppOutcome, appFailure, outcomeJson, outcomeOf } from '../journey/outcome.ts';
import { formatChecks } from '../journey/timeline.ts';

async function writeOut(
  path: string,
  data: Uint8Array | string,
  what: string,
  taskId: bigint,
): Promise<void> {
  try {
    await writeFile(path, data, { mode: 0o600 });
  } catch (e) {
    throw new FerryError('IO_WRITE_FAILED', `task ${taskId}: cannot write ${what} to ${path}`, {
      cause: e,
      hints: [
        (e as NodeJS.ErrnoException).code ?? String(e),
        `the task is done; fetch it again with: ferry task result ${taskId} --out FILE --receipt FILE`,
      ],
    });
  }
}

export async function deliver(
  ctx: CommandContext,
  p: {
    taskId: bigint;
    fin: Finished;
    out: string | undefined;
    receiptFile: string | undefined;
    /** Fields put first in the JSON (taskId, status, attempt, stagesMs...). */
    base: Record<string, unknown>;
    /** Written on success, without --out and without --json; default the result itself. */
    successText?: string;
  },
): Promise<CommandResult> {
  const { fin, out, receiptFile, taskId } = p;
  if (receiptFile && fin.bundle)
    await writeOut(
      receiptFile,
      `${JSON.stringify(bundleToJson(fin.bundle), null, 2)}\n`,
      'the receipt bundle',
      taskId,
    );
  if (out && fin.plaintext) await writeOut(out, fin.plaintext, 'the result', taskId);
  const outcome: AppOutcome | null = fin.report.receipt ? outcomeOf(fin.report.receipt) : null;
  const result = {
    ...p.base,
    verified: fin.report.verified,
    ...outcomeJson(outcome),
    out: out && fin.plaintext ? out : null,
    receipt: receiptFile && fin.bundle ? receiptFile : null,
    resultSha256: fin.plaintext ? createHash('sha256').update(fin.plaintext).digest('hex') : null,
    checks: fin.report.checks,
  };
  if (!fin.report.verified) {
    const failed = fin.report.checks.filter((c) => !c.ok);
    const err = new FerryError(
      'RECEIPT_INVALID',
      `task ${taskId}: ${failed.length} check(s) failed: ${failed.map((c) => c.name).join(', ')}`,
      { hints: failed.map((c) => `${c.name}: ${c.detail}`) },
    );
    if (!ctx.json)
      ctx.stderr.write(`ferry: ${err.message} [${err.code}]\n${formatChecks(fin.report.checks)}\n`);
    return { json: { ...result, error: err.toJSON() }, exitCode: err.exitCode };
  }
  if (!fin.plaintext) {
    const err = fin.resultError ?? new FerryError('PEER_UNAVAILABLE', 'the result could not be fetched');
    if (!ctx.json) {
      ctx.stderr.write(`ferry: task ${taskId}: ${err.message} [${err.code}]\n`);
      for (const h of err.hints) ctx.stderr.write(`  ${h}\n`);
    }
    return { json: { ...result, error: err.toJSON() }, exitCode: err.exitCode };
  }
  const failed = outcome ? appFailure(outcome, taskId) : null;
  if (failed) {
    if (!ctx.json) {
      ctx.stderr.write(`ferry: ${failed.message} [${failed.code}]\n`);
      for (const h of failed.hints) ctx.stderr.write(`  ${h}\n`);
    }
    return {
      json: { ...result, error: failed.toJSON() },
      text: out ? undefined : Buffer.from(fin.plaintext).toString('utf8'),
      exitCode: failed.exitCode,
    };
  }
  return {
    json: result,
    text: out
      ? (p.successText ?? `task ${taskId}: verified; result written to ${out}`)
      : Buffer.from(fin.plaintext).toString('utf8'),
  };
}
