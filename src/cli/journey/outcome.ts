/**
 * A completed task's outcome for people: how the app ended (exit code, trap, or the limit it
 * hit), read from the enclave's receipt, with a hint for each limit (which one, how to raise
 * it). A task is `completed` on chain whenever a valid receipt was posted; the app may still
 * have failed, and every command that shows a task shows this too (docs/protocol.md §15).
 */
import type { FerryEvent } from '../../chain/index.ts';
import { DEFAULT_LIMITS, decodeReceipt, type Receipt } from '../../enclave/index.ts';
import { FerryError, fromHex } from '../../kernel/index.ts';

export type AppOutcome = {
  /** How the app ended: it exited (see appExitCode), trapped, or hit a limit (see limitHit). */
  outcome: Receipt['outcome'];
  /** The app's exit code when it exited, else null. */
  appExitCode: number | null;
  limitHit: Receipt['limitHit'];
  /** Short form for tables: `exit 0`, `exit 3`, `trap`, `limit time`. */
  summary: string;
  /** What to do about it (for a limit: which one and how to raise it), or null. */
  hint: string | null;
};

const LIMIT_HINTS: Record<NonNullable<Receipt['limitHit']>, string> = {
  time: "the app's time limit is the task's run window less the executor's margin to post the receipt; give it more time with: ferry task run --run-window S",
  memory: `the enclave gives an app ${DEFAULT_LIMITS.memoryMb} MiB of linear memory, not settable per task; the app must use less`,
  output: `the enclave keeps ${DEFAULT_LIMITS.maxOutputBytes / (1024 * 1024)} MiB of app output, not settable per task; the app must write less`,
};

export function outcomeOf(r: Pick<Receipt, 'outcome' | 'exitCode' | 'limitHit'>): AppOutcome {
  const appExitCode = r.outcome === 'exit' ? r.exitCode : null;
  const summary =
    r.outcome === 'exit' ? `exit ${r.exitCode}` : r.outcome === 'trap' ? 'trap' : `limit ${r.limitHit}`;
  const hint =
    r.outcome === 'limit' && r.limitHit
      ? LIMIT_HINTS[r.limitHit]
      : r.outcome === 'trap'
        ? 'the app stopped on a WebAssembly trap (e.g. unreachable, out-of-bounds access); run it locally with: ferry app run'
        : null;
  return { outcome: r.outcome, appExitCode, limitHit: r.limitHit, summary, hint };
}

/** True when the app exited with code 0. */
export function appSucceeded(o: AppOutcome): boolean {
  return o.outcome === 'exit' && o.appExitCode === 0;
}

/** ENCLAVE_APP_FAILED for an app that did not exit 0, else null. */
export function appFailure(o: AppOutcome, taskId: bigint): FerryError | null {
  if (appSucceeded(o)) return null;
  const how =
    o.outcome === 'exit'
      ? `exited with code ${o.appExitCode}`
      : o.outcome === 'limit'
        ? `hit its ${o.limitHit} limit`
        : 'trapped';
  return new FerryError('ENCLAVE_APP_FAILED', `task ${taskId}: the app ${how}`, {
    hints: [
      ...(o.hint ? [o.hint] : []),
      'the receipt is valid; the result is what the app wrote before it stopped',
    ],
  });
}

/**
 * The outcome in a TaskCompleted event's receipt, as the receipt says (not verified here: ferry
 * receipt verify checks its signature). Null when the event carries no decodable receipt.
 */
export function outcomeOfEvent(e: FerryEvent | undefined): AppOutcome | null {
  const raw = e?.args.receipt;
  if (typeof raw !== 'string' || !raw.startsWith('0x')) return null;
  try {
    return outcomeOf(decodeReceipt(fromHex(raw.slice(2))));
  } catch {
    return null;
  }
}

/** The JSON fields every command adds for a completed task: {"outcome", "appExitCode", "limitHit"}. */
export function outcomeJson(o: AppOutcome | null): {
  outcome: string | null;
  appExitCode: number | null;
  limitHit: string | null;
} {
  return { outcome: o?.outcome ?? null, appExitCode: o?.appExitCode ?? null, limitHit: o?.limitHit ?? null };
}
