/**
 * The intent log both daemons keep (docs/architecture.md, "Intent before send"): every on-chain
 * action a daemon takes at most once is written as an *intent* before it is sent, then moves
 * through one transition table to its fate. This file is the one place the transitions are
 * defined and enforced, for the node's claims, votes, registration, receipts and abandonments
 * and the agent's key releases.
 *
 * Statuses (ACTION_NEXT):
 * - `intent`: written before the send; its fate is unknown until settled. After a restart, or
 *   after a send that failed in a way that may have reached the chain (a retryable error), the
 *   daemon looks the action up on chain before it ever sends again, and resends while the
 *   attempt still takes it.
 * - `sent`: the transaction hash is known; it is awaited.
 * - `confirmed` (mined and succeeded), `reverted` (mined and refused), `lost` (another node won:
 *   a confirmed claim whose attempt went to someone else), `failed` (not sent and never will be:
 *   the attempt moved on, or the send failed in a way that cannot succeed later).
 * The agent's releases have their own statuses (RELEASE_NEXT): a sealed key is delivered to the
 * executor before the release is recorded on chain.
 */
import type { DatabaseSync } from 'node:sqlite';
import { FerryError } from '../kernel/index.ts';
import { transaction } from './store.ts';

export type ActionStatus = 'intent' | 'sent' | 'confirmed' | 'reverted' | 'lost' | 'failed';
export type Outcome = 'confirmed' | 'reverted' | 'lost' | 'failed';
export const ACTION_STATUSES: readonly ActionStatus[] = [
  'intent',
  'sent',
  'confirmed',
  'reverted',
  'lost',
  'failed',
];

/** The one transition table of the node's actions: from -> the statuses it may become. */
export const ACTION_NEXT: Readonly<Record<ActionStatus, readonly ActionStatus[]>> = {
  intent: ['sent', 'confirmed', 'reverted', 'lost', 'failed'],
  sent: ['confirmed', 'reverted', 'lost', 'failed'],
  confirmed: ['lost'],
  reverted: [],
  lost: [],
  failed: [],
};

export type ReleaseStatus = 'intent' | 'delivered' | 'recorded' | 'confirmed' | 'reverted' | 'failed';

/** The agent's key releases: delivered to the executor, then recorded on chain. */
export const RELEASE_NEXT: Readonly<Record<ReleaseStatus, readonly ReleaseStatus[]>> = {
  intent: ['delivered', 'failed'],
  delivered: ['recorded', 'failed'],
  recorded: ['confirmed', 'reverted'],
  confirmed: [],
  reverted: [],
  failed: [],
};

/**
 * Whether a row may go from `from` to `to` under `next`: 'same' (already there: nothing to do),
 * 'move', or STATE_CONFLICT naming both.
 */
export function transitionOf<S extends string>(
  next: Readonly<Record<S, readonly S[]>>,
  from: S,
  to: S,
  what: string,
): 'same' | 'move' {
  if (from === to) return 'same';
  if (next[from]?.includes(to)) return 'move';
  throw new FerryError('STATE_CONFLICT', `${what} is ${from}, cannot become ${to}`, { hints: [`${what}`] });
}

const TX_RE = /^0x[0-9a-f]{64}$/;

/** A transaction hash, lower-cased; INVALID_ARGUMENT unless 0x and 64 hex digits. */
export function checkTxHash(txHash: string): string {
  if (typeof txHash !== 'string' || !TX_RE.test(txHash.toLowerCase())) {
    throw new FerryError('INVALID_ARGUMENT', 'transaction hash must be 0x and 64 hex digits', {
      hints: [`got: ${String(txHash).slice(0, 80)}`],
    });
  }
  return txHash.toLowerCase();
}

/** Where one intent's status lives: a row of `table` selected by `where` with `args`. */
export type IntentRef = {
  table: string;
  where: string;
  args: (string | number)[];
  /** The status column (default `status`). */
  status?: string;
  /** The transaction-hash column, for moves that carry one. */
  tx?: string;
  /** What to call the row in errors, e.g. "claim of task 3 attempt 1". */
  what: string;
};

/**
 * Moves one intent row to `to` under `next`, in a transaction: idempotent when it is already
 * there (with the same transaction hash, when one is given), STATE_CONFLICT when the row is
 * missing, has no status yet, or the table forbids the move. `set` writes other columns with
 * the move (not when it is already there). `tx` is checked and stored in the ref's tx column.
 */
export function advance<S extends string>(
  db: DatabaseSync,
  next: Readonly<Record<S, readonly S[]>>,
  ref: IntentRef,
  to: S,
  opts: { tx?: string; set?: Record<string, string | number | Uint8Array | null> } = {},
): void {
  const statusCol = ref.status ?? 'status';
  const tx = opts.tx === undefined ? undefined : checkTxHash(opts.tx);
  transaction(db, () => {
    const cols = ref.tx ? `${statusCol} AS s, ${ref.tx} AS t` : `${statusCol} AS s`;
    const row = db.prepare(`SELECT ${cols} FROM ${ref.table} WHERE ${ref.where}`).get(...ref.args) as
      | { s: string | null; t?: string | null }
      | undefined;
    if (!row || row.s === null) {
      throw new FerryError('STATE_CONFLICT', `no ${ref.what} to move to ${to}`, { hints: [ref.what] });
    }
    if (transitionOf(next, row.s as S, to, ref.what) === 'same') {
      if (tx !== undefined && ref.tx && row.t !== tx) {
        throw new FerryError('STATE_CONFLICT', `${ref.what} is already ${to} with another transaction`, {
          hints: [ref.what],
        });
      }
      return;
    }
    const set: Record<string, string | number | Uint8Array | null> = { ...(opts.set ?? {}) };
    if (tx !== undefined && ref.tx) set[ref.tx] = tx;
    const names = Object.keys(set);
    db.prepare(
      `UPDATE ${ref.table} SET ${statusCol} = ?, ${names.map((c) => `${c} = ?, `).join('')}updated_at = ? WHERE ${ref.where}`,
    ).run(to, ...names.map((n) => set[n]), Date.now(), ...ref.args);
  });
}
