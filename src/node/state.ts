/**
 * The node daemon's local state (SQLite, docs/protocol.md §13.6). It makes a node that is
 * killed at any moment and restarted resume without double-claiming, double-voting or losing
 * a result.
 *
 * Every on-chain action the node takes at most once per (task, attempt) follows the same
 * pattern:
 * 1. `begin*` writes an *intent* row before the transaction is sent. The row's key is
 *    UNIQUE(task, attempt), so a second `begin*` for the same attempt returns the existing
 *    row with `fresh: false` instead of creating another: the caller must not send again.
 * 2. `mark*Sent(txHash)` records the transaction hash once it is known.
 * 3. `mark*Outcome` records the final fate: `confirmed` (mined, succeeded), `reverted`,
 *    `lost` (someone else won) or `failed` (not sent, and never will be: the attempt moved on).
 * Every move goes through the one transition table of src/daemon/intents.ts. Rows in `intent`
 * have an unknown fate (after a restart, or a send that failed in a way that may have reached
 * the chain): the daemon looks the action up on chain before it ever sends again, and resends
 * while the attempt still takes it. Rows in `sent` are awaited by hash.
 *
 * Task ids are uint256 stored as decimal text; attempts are integers from 1.
 */
import type { DatabaseSync } from 'node:sqlite';
import {
  ACTION_NEXT,
  type ActionStatus,
  advance,
  attemptNumber,
  getCursor,
  getListenPort,
  type IntentRef,
  LISTENER_TABLE_SQL,
  type Migration,
  type Outcome,
  openStateDb,
  setCursor,
  setListenPort,
  taskKey,
  transaction,
} from '../daemon/index.ts';
import { FerryError } from '../kernel/index.ts';

export type { ActionStatus, Outcome };

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE registration (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        chain_id INTEGER NOT NULL,
        registry TEXT NOT NULL,
        address TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('intent','sent','confirmed','reverted','lost','failed')),
        tx_hash TEXT,
        detail TEXT,
        updated_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE cursor (
        name TEXT PRIMARY KEY,
        block INTEGER NOT NULL,
        block_hash TEXT,
        updated_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE claims (
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        vrf_output BLOB NOT NULL,
        vrf_proof BLOB NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('intent','sent','confirmed','reverted','lost','failed')),
        tx_hash TEXT,
        detail TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (task, attempt)
      ) STRICT;
      CREATE TABLE votes (
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('pass','fail')),
        result_hash BLOB NOT NULL,
        vrf_proof BLOB NOT NULL,
        seats INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('intent','sent','confirmed','reverted','lost','failed')),
        tx_hash TEXT,
        detail TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (task, attempt)
      ) STRICT;
      CREATE TABLE attempts (
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        evidence BLOB,
        evidence_hash BLOB,
        result_path TEXT,
        result_hash BLOB,
        receipt BLOB,
        receipt_status TEXT CHECK (receipt_status IN ('intent','sent','confirmed','reverted','lost','failed')),
        receipt_tx TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (task, attempt)
      ) STRICT;
      CREATE TABLE key_deliveries (
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        asset TEXT NOT NULL,
        sender TEXT NOT NULL,
        sealed BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (task, attempt, asset)
      ) STRICT;
    `,
  },
  {
    version: 2,
    sql: `
      ALTER TABLE attempts ADD COLUMN enclave_x25519 BLOB;
      ALTER TABLE attempts ADD COLUMN enclave_ed25519 BLOB;
      ALTER TABLE attempts ADD COLUMN seed BLOB;
    `,
  },
  {
    // The verifier's signed attestation result (canonical CBOR {result, signature}), served to auditors.
    version: 3,
    sql: `ALTER TABLE votes ADD COLUMN result BLOB;`,
  },
  {
    // Key deliveries are authenticated by the asset owner's EVM signature (§13.4): `sender` is
    // the recovered owner address, `signature` the 65-byte EIP-191 signature (0x-hex).
    version: 4,
    sql: `ALTER TABLE key_deliveries ADD COLUMN signature TEXT;`,
  },
  {
    // The executor gives up an attempt its enclave cannot finish (Tasks.abandon, §11.3): the
    // intent and its cause are stored before the transaction, so a restart sends it again.
    version: 5,
    sql: `
      ALTER TABLE attempts ADD COLUMN abandon_cause TEXT;
      ALTER TABLE attempts ADD COLUMN abandon_status TEXT
        CHECK (abandon_status IN ('intent','sent','confirmed','reverted','lost','failed'));
    `,
  },
  {
    // The port listened on with port 0, kept across restarts: evidence and result locations
    // published in events name it (§13.6).
    version: 6,
    sql: LISTENER_TABLE_SQL,
  },
  {
    // Evidence stored but not yet committed on chain (a failed or interrupted commitEvidence)
    // is committed again by the reconciler. Evidence stored before this migration was
    // committed then (it was never retried).
    version: 7,
    sql: `
      ALTER TABLE attempts ADD COLUMN evidence_committed INTEGER NOT NULL DEFAULT 0
        CHECK (evidence_committed IN (0, 1));
      UPDATE attempts SET evidence_committed = 1 WHERE evidence IS NOT NULL;
    `,
  },
  {
    // Attempts a verifier must judge (from EvidenceCommitted), recorded before any network I/O
    // so the event watcher never waits on an executor's server: the vote job reads the evidence
    // afterwards, and a restart finds what is left to judge here.
    version: 8,
    sql: `
      CREATE TABLE to_judge (
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        executor TEXT NOT NULL,
        location TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (task, attempt)
      );
    `,
  },
];

export type Registration = {
  chainId: number;
  registry: string;
  address: string;
  /** Registration parameters (stake, region, roles, TEE kinds, endpoint...), JSON. */
  params: Record<string, unknown>;
  status: ActionStatus;
  txHash: string | null;
  detail: string | null;
};

export type Claim = {
  task: string;
  attempt: number;
  vrfOutput: Uint8Array;
  vrfProof: Uint8Array;
  status: ActionStatus;
  txHash: string | null;
  detail: string | null;
};

export type Vote = {
  task: string;
  attempt: number;
  verdict: 'pass' | 'fail';
  resultHash: Uint8Array;
  vrfProof: Uint8Array;
  seats: number;
  status: ActionStatus;
  txHash: string | null;
  detail: string | null;
  /** The signed attestation result whose hash is `resultHash` (null for a refusal). */
  result: Uint8Array | null;
};

export type AttemptRecord = {
  task: string;
  attempt: number;
  evidence: Uint8Array | null;
  evidenceHash: Uint8Array | null;
  /** The evidence hash is committed on chain (Tasks.commitEvidence went through). */
  evidenceCommitted: boolean;
  resultPath: string | null;
  resultHash: Uint8Array | null;
  receipt: Uint8Array | null;
  receiptStatus: ActionStatus | null;
  receiptTx: string | null;
  /** The enclave's public keys (key release / result sealing, receipts) and the attempt seed. */
  enclaveX25519: Uint8Array | null;
  enclaveEd25519: Uint8Array | null;
  seed: Uint8Array | null;
  /** Why the executor gives the attempt up (Tasks.abandon), and where that stands. */
  abandonCause: string | null;
  abandonStatus: ActionStatus | null;
};

export type KeyDelivery = {
  task: string;
  attempt: number;
  asset: string;
  /** The asset owner's EVM address that signed it (lowercase 0x-hex). */
  sender: string;
  sealed: Uint8Array;
  /** The owner's EIP-191 signature over the key-release statement (0x-hex), §13.4. */
  signature?: string | null;
};

type Row = Record<string, unknown>;
const bytes = (v: unknown): Uint8Array | null => (v == null ? null : new Uint8Array(v as Uint8Array));
const str = (v: unknown): string | null => (v == null ? null : String(v));

function toClaim(r: Row): Claim {
  return {
    task: String(r.task),
    attempt: Number(r.attempt),
    vrfOutput: bytes(r.vrf_output)!,
    vrfProof: bytes(r.vrf_proof)!,
    status: r.status as ActionStatus,
    txHash: str(r.tx_hash),
    detail: str(r.detail),
  };
}

function toVote(r: Row): Vote {
  return {
    task: String(r.task),
    attempt: Number(r.attempt),
    verdict: r.verdict as 'pass' | 'fail',
    resultHash: bytes(r.result_hash)!,
    vrfProof: bytes(r.vrf_proof)!,
    seats: Number(r.seats),
    status: r.status as ActionStatus,
    txHash: str(r.tx_hash),
    detail: str(r.detail),
    result: bytes(r.result),
  };
}

function conflict(what: string, hints: string[]): FerryError {
  return new FerryError('STATE_CONFLICT', what, { hints });
}

/** A row of claims, votes or registration moved by the one transition table (daemon/intents.ts). */
function move(
  db: DatabaseSync,
  table: string,
  where: string,
  args: (string | number)[],
  to: ActionStatus,
  opts: { tx?: string; detail?: string } = {},
): void {
  advance(db, ACTION_NEXT, { table, where, args, tx: 'tx_hash', what: `${table} ${args.join('/')}` }, to, {
    tx: opts.tx,
    set: to === 'sent' ? {} : { detail: opts.detail ?? null },
  });
}

export class NodeState {
  readonly db: DatabaseSync;

  private constructor(db: DatabaseSync) {
    this.db = db;
  }

  /** Opens (creating and migrating) the node's database at `path` (`:memory:` for tests). */
  static open(path: string): NodeState {
    return new NodeState(openStateDb(path, 'node', MIGRATIONS));
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  // --- registration -------------------------------------------------------------------

  getRegistration(): Registration | null {
    const r = this.db.prepare('SELECT * FROM registration WHERE id = 1').get() as Row | undefined;
    if (!r) return null;
    return {
      chainId: Number(r.chain_id),
      registry: String(r.registry),
      address: String(r.address),
      params: JSON.parse(String(r.params)) as Record<string, unknown>,
      status: r.status as ActionStatus,
      txHash: str(r.tx_hash),
      detail: str(r.detail),
    };
  }

  /**
   * Writes the registration intent. When one exists for the same chain, registry and address
   * it is returned with `fresh: false` (resume, do not register again); a different chain,
   * registry or address is STATE_CONFLICT (use a separate node home).
   */
  beginRegistration(r: {
    chainId: number;
    registry: string;
    address: string;
    params: Record<string, unknown>;
  }): { fresh: boolean; registration: Registration } {
    return transaction(this.db, () => {
      const existing = this.getRegistration();
      if (existing) {
        if (
          existing.chainId !== r.chainId ||
          existing.registry.toLowerCase() !== r.registry.toLowerCase() ||
          existing.address.toLowerCase() !== r.address.toLowerCase()
        ) {
          throw conflict('this node home is registered elsewhere', [
            `recorded: chain ${existing.chainId}, registry ${existing.registry}, address ${existing.address}`,
            `requested: chain ${r.chainId}, registry ${r.registry}, address ${r.address}`,
          ]);
        }
        return { fresh: false, registration: existing };
      }
      this.db
        .prepare(
          `INSERT INTO registration (id, chain_id, registry, address, params, status, updated_at)
           VALUES (1, ?, ?, ?, ?, 'intent', ?)`,
        )
        .run(r.chainId, r.registry, r.address, JSON.stringify(r.params), Date.now());
      return { fresh: true, registration: this.getRegistration()! };
    });
  }

  markRegistrationSent(txHash: string): void {
    move(this.db, 'registration', 'id = ?', [1], 'sent', { tx: txHash });
  }

  markRegistrationOutcome(outcome: Outcome, detail?: string): void {
    move(this.db, 'registration', 'id = ?', [1], outcome, { detail });
  }

  // --- chain cursor -------------------------------------------------------------------

  /** The last block fully processed by the watcher named `name`. */
  getCursor(name = 'chain'): { block: number; blockHash: string | null } | null {
    return getCursor(this.db, name);
  }

  /** Moves the cursor; it never moves backwards unless `allowRewind` (reorg handling). */
  setCursor(name: string, block: number, blockHash: string | null = null, allowRewind = false): void {
    setCursor(this.db, name, block, blockHash, allowRewind);
  }

  // --- claims -------------------------------------------------------------------------

  /** Writes a claim intent, or returns the existing claim for this attempt (`fresh: false`). */
  beginClaim(c: {
    task: bigint | number | string;
    attempt: number;
    vrfOutput: Uint8Array;
    vrfProof: Uint8Array;
  }): { fresh: boolean; claim: Claim } {
    const task = taskKey(c.task);
    const attempt = attemptNumber(c.attempt);
    const now = Date.now();
    const info = this.db
      .prepare(
        `INSERT INTO claims (task, attempt, vrf_output, vrf_proof, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'intent', ?, ?) ON CONFLICT (task, attempt) DO NOTHING`,
      )
      .run(task, attempt, c.vrfOutput, c.vrfProof, now, now);
    return { fresh: Number(info.changes) === 1, claim: this.getClaim(task, attempt)! };
  }

  getClaim(task: bigint | number | string, attempt: number): Claim | null {
    const r = this.db
      .prepare('SELECT * FROM claims WHERE task = ? AND attempt = ?')
      .get(taskKey(task), attemptNumber(attempt)) as Row | undefined;
    return r ? toClaim(r) : null;
  }

  listClaims(status?: ActionStatus): Claim[] {
    const rows = (
      status
        ? this.db
            .prepare('SELECT * FROM claims WHERE status = ? ORDER BY created_at, task, attempt')
            .all(status)
        : this.db.prepare('SELECT * FROM claims ORDER BY created_at, task, attempt').all()
    ) as Row[];
    return rows.map(toClaim);
  }

  markClaimSent(task: bigint | number | string, attempt: number, txHash: string): void {
    move(this.db, 'claims', 'task = ? AND attempt = ?', [taskKey(task), attemptNumber(attempt)], 'sent', {
      tx: txHash,
    });
  }

  markClaimOutcome(task: bigint | number | string, attempt: number, outcome: Outcome, detail?: string): void {
    move(this.db, 'claims', 'task = ? AND attempt = ?', [taskKey(task), attemptNumber(attempt)], outcome, {
      detail,
    });
  }

  /**
   * Settles a confirmed claim that did not win the attempt (another executor's output was
   * lower, or the attempt ended before this node became its executor): `confirmed` → `lost`.
   */
  markClaimLost(task: bigint | number | string, attempt: number, detail?: string): void {
    if (this.getClaim(task, attempt)?.status !== 'confirmed') {
      throw conflict('no confirmed claim to mark lost', [`key: ${taskKey(task)}/${attemptNumber(attempt)}`]);
    }
    move(this.db, 'claims', 'task = ? AND attempt = ?', [taskKey(task), attemptNumber(attempt)], 'lost', {
      detail,
    });
  }

  /** Confirmed claims whose attempt has no evidence here yet (won, or not settled as lost). */
  claimsAwaitingEvidence(): Claim[] {
    const rows = this.db
      .prepare(
        `SELECT c.* FROM claims c LEFT JOIN attempts a ON a.task = c.task AND a.attempt = c.attempt
         WHERE c.status = 'confirmed' AND (a.evidence IS NULL OR a.evidence_committed = 0)
         ORDER BY c.updated_at`,
      )
      .all() as Row[];
    return rows.map(toClaim);
  }

  // --- attempts to judge (verifier) ---------------------------------------------------

  /** Records an attempt to judge (idempotent). */
  addToJudge(task: bigint | number | string, attempt: number, executor: string, location: string): void {
    this.db
      .prepare(
        `INSERT INTO to_judge (task, attempt, executor, location, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (task, attempt) DO NOTHING`,
      )
      .run(String(task), attempt, executor, location, Date.now());
  }

  /** The attempt is judged (voted, abstained for good, or its vote window closed). */
  removeToJudge(task: bigint | number | string, attempt: number): void {
    this.db.prepare('DELETE FROM to_judge WHERE task = ? AND attempt = ?').run(String(task), attempt);
  }

  /** Attempts still to judge, oldest first. */
  listToJudge(): { task: string; attempt: number; executor: string; location: string }[] {
    return this.db
      .prepare('SELECT task, attempt, executor, location FROM to_judge ORDER BY created_at')
      .all() as { task: string; attempt: number; executor: string; location: string }[];
  }

  // --- votes --------------------------------------------------------------------------

  /** Writes a vote intent, or returns the existing vote for this attempt (`fresh: false`). */
  beginVote(v: {
    task: bigint | number | string;
    attempt: number;
    verdict: 'pass' | 'fail';
    resultHash: Uint8Array;
    vrfProof: Uint8Array;
    seats: number;
    result?: Uint8Array | null;
  }): { fresh: boolean; vote: Vote } {
    const task = taskKey(v.task);
    const attempt = attemptNumber(v.attempt);
    if (v.verdict !== 'pass' && v.verdict !== 'fail') {
      throw new FerryError('INVALID_ARGUMENT', 'verdict must be pass or fail', {
        hints: [`got: ${String(v.verdict)}`],
      });
    }
    const now = Date.now();
    const info = this.db
      .prepare(
        `INSERT INTO votes (task, attempt, verdict, result_hash, vrf_proof, seats, result, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'intent', ?, ?) ON CONFLICT (task, attempt) DO NOTHING`,
      )
      .run(task, attempt, v.verdict, v.resultHash, v.vrfProof, v.seats, v.result ?? null, now, now);
    return { fresh: Number(info.changes) === 1, vote: this.getVote(task, attempt)! };
  }

  getVote(task: bigint | number | string, attempt: number): Vote | null {
    const r = this.db
      .prepare('SELECT * FROM votes WHERE task = ? AND attempt = ?')
      .get(taskKey(task), attemptNumber(attempt)) as Row | undefined;
    return r ? toVote(r) : null;
  }

  listVotes(status?: ActionStatus): Vote[] {
    const rows = (
      status
        ? this.db
            .prepare('SELECT * FROM votes WHERE status = ? ORDER BY created_at, task, attempt')
            .all(status)
        : this.db.prepare('SELECT * FROM votes ORDER BY created_at, task, attempt').all()
    ) as Row[];
    return rows.map(toVote);
  }

  markVoteSent(task: bigint | number | string, attempt: number, txHash: string): void {
    move(this.db, 'votes', 'task = ? AND attempt = ?', [taskKey(task), attemptNumber(attempt)], 'sent', {
      tx: txHash,
    });
  }

  markVoteOutcome(task: bigint | number | string, attempt: number, outcome: Outcome, detail?: string): void {
    move(this.db, 'votes', 'task = ? AND attempt = ?', [taskKey(task), attemptNumber(attempt)], outcome, {
      detail,
    });
  }

  // --- executor attempts: evidence, result, receipt -----------------------------------

  #upsertAttempt(task: string, attempt: number, set: Record<string, unknown>): void {
    const cols = Object.keys(set);
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO attempts (task, attempt, ${cols.join(', ')}, updated_at) VALUES (?, ?, ${cols.map(() => '?').join(', ')}, ?)
         ON CONFLICT (task, attempt) DO UPDATE SET ${cols.map((c) => `${c} = excluded.${c}`).join(', ')},
         updated_at = excluded.updated_at`,
      )
      .run(task, attempt, ...(Object.values(set) as (string | Uint8Array | null)[]), now);
  }

  getAttempt(task: bigint | number | string, attempt: number): AttemptRecord | null {
    const r = this.db
      .prepare('SELECT * FROM attempts WHERE task = ? AND attempt = ?')
      .get(taskKey(task), attemptNumber(attempt)) as Row | undefined;
    if (!r) return null;
    return {
      task: String(r.task),
      attempt: Number(r.attempt),
      evidence: bytes(r.evidence),
      evidenceHash: bytes(r.evidence_hash),
      evidenceCommitted: Number(r.evidence_committed) === 1,
      resultPath: str(r.result_path),
      resultHash: bytes(r.result_hash),
      receipt: bytes(r.receipt),
      receiptStatus: (r.receipt_status as ActionStatus | null) ?? null,
      receiptTx: str(r.receipt_tx),
      enclaveX25519: bytes(r.enclave_x25519),
      enclaveEd25519: bytes(r.enclave_ed25519),
      seed: bytes(r.seed),
      abandonCause: str(r.abandon_cause),
      abandonStatus: (r.abandon_status as ActionStatus | null) ?? null,
    };
  }

  /**
   * Stores the attempt's encoded evidence and its hash. Evidence is written once: the same
   * bytes again are a no-op, different bytes are STATE_CONFLICT (the hash is committed on chain).
   */
  saveEvidence(
    task: bigint | number | string,
    attempt: number,
    evidence: Uint8Array,
    evidenceHash: Uint8Array,
    enclave?: { x25519Pub: Uint8Array; ed25519Pub: Uint8Array; seed: Uint8Array },
  ): void {
    const t = taskKey(task);
    const a = attemptNumber(attempt);
    transaction(this.db, () => {
      const cur = this.getAttempt(t, a);
      if (cur?.evidence) {
        if (Buffer.compare(Buffer.from(cur.evidence), Buffer.from(evidence)) === 0) return;
        throw conflict('evidence for this attempt is already stored', [`task ${t} attempt ${a}`]);
      }
      this.#upsertAttempt(t, a, {
        evidence,
        evidence_hash: evidenceHash,
        enclave_x25519: enclave?.x25519Pub ?? null,
        enclave_ed25519: enclave?.ed25519Pub ?? null,
        seed: enclave?.seed ?? null,
      });
    });
  }

  /** Records that the attempt's stored evidence is committed on chain. */
  markEvidenceCommitted(task: bigint | number | string, attempt: number): void {
    const t = taskKey(task);
    const a = attemptNumber(attempt);
    transaction(this.db, () => {
      if (!this.getAttempt(t, a)?.evidence)
        throw conflict('no evidence to mark committed', [`task ${t} attempt ${a}`]);
      this.db
        .prepare('UPDATE attempts SET evidence_committed = 1, updated_at = ? WHERE task = ? AND attempt = ?')
        .run(Date.now(), t, a);
    });
  }

  /**
   * Stores where the result ciphertext is, its hash and the signed receipt, with the receipt
   * marked `intent` (to be posted). Written once, like evidence.
   */
  saveResult(
    task: bigint | number | string,
    attempt: number,
    r: { resultPath: string; resultHash: Uint8Array; receipt: Uint8Array },
  ): void {
    const t = taskKey(task);
    const a = attemptNumber(attempt);
    transaction(this.db, () => {
      const cur = this.getAttempt(t, a);
      if (cur?.receipt) {
        if (Buffer.compare(Buffer.from(cur.receipt), Buffer.from(r.receipt)) === 0) return;
        throw conflict('a result for this attempt is already stored', [`task ${t} attempt ${a}`]);
      }
      this.#upsertAttempt(t, a, {
        result_path: r.resultPath,
        result_hash: r.resultHash,
        receipt: r.receipt,
        receipt_status: 'intent',
      });
    });
  }

  markReceiptSent(task: bigint | number | string, attempt: number, txHash: string): void {
    advance(this.db, ACTION_NEXT, this.#attemptRef(task, attempt, 'receipt'), 'sent', { tx: txHash });
  }

  markReceiptOutcome(task: bigint | number | string, attempt: number, outcome: Outcome): void {
    advance(this.db, ACTION_NEXT, this.#attemptRef(task, attempt, 'receipt'), outcome);
  }

  /** The receipt or abandonment intent of an attempt, in its columns of `attempts`. */
  #attemptRef(task: bigint | number | string, attempt: number, what: 'receipt' | 'abandon'): IntentRef {
    const t = taskKey(task);
    const a = attemptNumber(attempt);
    return {
      table: 'attempts',
      where: 'task = ? AND attempt = ?',
      args: [t, a],
      status: `${what}_status`,
      tx: what === 'receipt' ? 'receipt_tx' : undefined,
      what: `${what === 'receipt' ? 'receipt' : 'abandonment'} of task ${t} attempt ${a}`,
    };
  }

  /**
   * Records that the executor gives this attempt up (its enclave cannot finish), with the cause
   * to send: status `intent`. The first cause stays; an attempt with a stored result is never
   * abandoned (STATE_CONFLICT).
   */
  beginAbandon(task: bigint | number | string, attempt: number, cause: string): AttemptRecord {
    const t = taskKey(task);
    const a = attemptNumber(attempt);
    return transaction(this.db, () => {
      const cur = this.getAttempt(t, a);
      if (cur?.receipt)
        throw conflict('this attempt has a result; it is not abandoned', [`task ${t} attempt ${a}`]);
      if (!cur?.abandonStatus) this.#upsertAttempt(t, a, { abandon_cause: cause, abandon_status: 'intent' });
      return this.getAttempt(t, a)!;
    });
  }

  /** Settles an abandonment: sent on chain (`confirmed`) or refused (`reverted`). */
  markAbandonOutcome(task: bigint | number | string, attempt: number, outcome: Outcome): void {
    advance(this.db, ACTION_NEXT, this.#attemptRef(task, attempt, 'abandon'), outcome);
  }

  /** Attempts this node still has to abandon on chain. */
  pendingAbandons(): AttemptRecord[] {
    const rows = this.db
      .prepare(
        `SELECT task, attempt FROM attempts WHERE abandon_status IN ('intent', 'sent') ORDER BY updated_at`,
      )
      .all() as Row[];
    return rows.map((r) => this.getAttempt(String(r.task), Number(r.attempt))!);
  }

  /**
   * Attempts with evidence from this node but no result and no abandonment: after a restart
   * their enclave is gone, so each is either still to be judged or to be given up.
   */
  attemptsWithoutResult(): AttemptRecord[] {
    const rows = this.db
      .prepare(
        `SELECT task, attempt FROM attempts
         WHERE evidence IS NOT NULL AND receipt IS NULL AND abandon_status IS NULL ORDER BY updated_at`,
      )
      .all() as Row[];
    return rows.map((r) => this.getAttempt(String(r.task), Number(r.attempt))!);
  }

  /** The port last listened on at `host` (configured port 0), or null when none is remembered. */
  getListenPort(host: string): number | null {
    return getListenPort(this.db, host);
  }

  /** Remembers the port listened on at `host` (1 to 65535). */
  setListenPort(host: string, port: number): void {
    setListenPort(this.db, host, port);
  }

  /** Attempts whose receipt still has to be posted or awaited. */
  pendingReceipts(): AttemptRecord[] {
    const rows = this.db
      .prepare(
        `SELECT task, attempt FROM attempts WHERE receipt_status IN ('intent', 'sent') ORDER BY updated_at`,
      )
      .all() as Row[];
    return rows.map((r) => this.getAttempt(String(r.task), Number(r.attempt))!);
  }

  // --- sealed key deliveries from owner agents -----------------------------------------

  /**
   * Stores a sealed file key delivered by an agent. One delivery per (task, attempt, asset):
   * the same bytes again are a no-op (`fresh: false`), different bytes are STATE_CONFLICT.
   */
  saveKeyDelivery(d: KeyDelivery): { fresh: boolean } {
    const t = taskKey(d.task);
    const a = attemptNumber(d.attempt);
    return transaction(this.db, () => {
      const cur = this.db
        .prepare('SELECT sealed FROM key_deliveries WHERE task = ? AND attempt = ? AND asset = ?')
        .get(t, a, d.asset) as Row | undefined;
      if (cur) {
        if (Buffer.compare(Buffer.from(cur.sealed as Uint8Array), Buffer.from(d.sealed)) === 0)
          return { fresh: false };
        throw conflict('a different key was already delivered for this asset', [`task ${t} attempt ${a}`]);
      }
      this.db
        .prepare(
          'INSERT INTO key_deliveries (task, attempt, asset, sender, sealed, received_at, signature) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(t, a, d.asset, d.sender, d.sealed, Date.now(), d.signature ?? null);
      return { fresh: true };
    });
  }

  listKeyDeliveries(task: bigint | number | string, attempt: number): KeyDelivery[] {
    const rows = this.db
      .prepare('SELECT * FROM key_deliveries WHERE task = ? AND attempt = ? ORDER BY asset')
      .all(taskKey(task), attemptNumber(attempt)) as Row[];
    return rows.map((r) => ({
      task: String(r.task),
      attempt: Number(r.attempt),
      asset: String(r.asset),
      sender: String(r.sender),
      sealed: bytes(r.sealed)!,
      signature: str(r.signature),
    }));
  }
}
