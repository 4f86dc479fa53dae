/**
 * The owner agent's local state (SQLite, docs/protocol.md §13.6): the assets it stores and
 * serves, the key releases it made, the chain cursor, and the port it last listened on.
 *
 * A key release is done at most once per (task, attempt, asset), with the same
 * intent-before-send pattern as the node (src/node/state.ts):
 *   `beginRelease` (intent, UNIQUE) -> `markReleaseDelivered` (the sealed key was accepted by
 *   the executor) -> `markReleaseRecorded(txHash)` (the release transaction was sent) ->
 *   `markReleaseOutcome('confirmed' | 'reverted' | 'failed')`.
 * After a restart, a release in `intent` may or may not have reached the executor: delivering
 * the same sealed bytes again is safe (the executor keeps one delivery per asset), so the
 * agent stores the sealed key with the intent and re-sends exactly those bytes.
 */
import type { DatabaseSync } from 'node:sqlite';
import {
  advance,
  attemptNumber,
  getCursor,
  getListenPort,
  LISTENER_TABLE_SQL,
  type Migration,
  openStateDb,
  RELEASE_NEXT,
  type ReleaseStatus,
  setCursor,
  setListenPort,
  taskKey,
  transaction,
} from '../daemon/index.ts';
import { FerryError } from '../kernel/index.ts';

export type AssetKind = 'dataset' | 'app';
export type AssetStatus = 'local' | 'registered' | 'revoked';
export type { ReleaseStatus };

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE assets (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('dataset','app')),
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        ciphertext_sha256 BLOB NOT NULL,
        size INTEGER NOT NULL,
        identity_ref TEXT NOT NULL,
        measurement BLOB,
        chain_id TEXT,
        status TEXT NOT NULL CHECK (status IN ('local','registered','revoked')),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;
      CREATE UNIQUE INDEX assets_chain_id ON assets (chain_id) WHERE chain_id IS NOT NULL;
      CREATE TABLE releases (
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        asset TEXT NOT NULL REFERENCES assets (id),
        executor TEXT NOT NULL,
        sealed BLOB NOT NULL,
        release_hash BLOB NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('intent','delivered','recorded','confirmed','reverted','failed')),
        tx_hash TEXT,
        detail TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (task, attempt, asset)
      ) STRICT;
      CREATE TABLE cursor (
        name TEXT PRIMARY KEY,
        block INTEGER NOT NULL,
        block_hash TEXT,
        updated_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    // App and dataset ids are separate sequences on chain: an id is unique per kind.
    version: 2,
    sql: `
      DROP INDEX assets_chain_id;
      CREATE UNIQUE INDEX assets_kind_chain_id ON assets (kind, chain_id) WHERE chain_id IS NOT NULL;
    `,
  },
  {
    // The port the agent listened on per host when configured with port 0, tried first on the
    // next start so that the endpoint registered on chain for its assets stays valid.
    version: 3,
    sql: LISTENER_TABLE_SQL,
  },
  {
    // Attested attempts to consider for release, recorded before any network I/O so the event
    // watcher never waits on an executor's server; the reconciler retries from here.
    version: 4,
    sql: `
      CREATE TABLE to_release (
        task TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (task, attempt)
      );
    `,
  },
];

export type Asset = {
  /** Local id (lowercase hex); the ciphertext lives at `path`. */
  id: string;
  kind: AssetKind;
  name: string;
  path: string;
  ciphertextSha256: Uint8Array;
  size: number;
  /** Which identity of the profile encrypts it (e.g. `age` for the profile's age identity). */
  identityRef: string;
  /** Apps: SHA-256 of the plaintext module. */
  measurement: Uint8Array | null;
  /** The asset's id on chain once registered (decimal uint256). */
  chainId: string | null;
  status: AssetStatus;
};

export type Release = {
  task: string;
  attempt: number;
  asset: string;
  /** Executor node key (hex) the key was delivered to. */
  executor: string;
  sealed: Uint8Array;
  releaseHash: Uint8Array;
  status: ReleaseStatus;
  txHash: string | null;
  detail: string | null;
};

type Row = Record<string, unknown>;
const bytes = (v: unknown): Uint8Array | null => (v == null ? null : new Uint8Array(v as Uint8Array));
const str = (v: unknown): string | null => (v == null ? null : String(v));

function toAsset(r: Row): Asset {
  return {
    id: String(r.id),
    kind: r.kind as AssetKind,
    name: String(r.name),
    path: String(r.path),
    ciphertextSha256: bytes(r.ciphertext_sha256)!,
    size: Number(r.size),
    identityRef: String(r.identity_ref),
    measurement: bytes(r.measurement),
    chainId: str(r.chain_id),
    status: r.status as AssetStatus,
  };
}

function toRelease(r: Row): Release {
  return {
    task: String(r.task),
    attempt: Number(r.attempt),
    asset: String(r.asset),
    executor: String(r.executor),
    sealed: bytes(r.sealed)!,
    releaseHash: bytes(r.release_hash)!,
    status: r.status as ReleaseStatus,
    txHash: str(r.tx_hash),
    detail: str(r.detail),
  };
}

const ID_RE = /^[0-9a-f]{8,64}$/;

function conflict(what: string, hints: string[]): FerryError {
  return new FerryError('STATE_CONFLICT', what, { hints });
}

export class AgentState {
  readonly db: DatabaseSync;

  private constructor(db: DatabaseSync) {
    this.db = db;
  }

  static open(path: string): AgentState {
    return new AgentState(openStateDb(path, 'agent', MIGRATIONS));
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  // --- assets -------------------------------------------------------------------------

  addAsset(a: Omit<Asset, 'chainId' | 'status'>): Asset {
    if (!ID_RE.test(a.id)) {
      throw new FerryError('INVALID_ARGUMENT', 'asset id must be 8 to 64 lowercase hex digits', {
        hints: [`got: ${a.id.slice(0, 80)}`],
      });
    }
    if (a.kind !== 'dataset' && a.kind !== 'app') {
      throw new FerryError('INVALID_ARGUMENT', 'asset kind must be dataset or app', {
        hints: [`got: ${a.kind}`],
      });
    }
    const now = Date.now();
    try {
      this.db
        .prepare(
          `INSERT INTO assets (id, kind, name, path, ciphertext_sha256, size, identity_ref, measurement, status, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'local', ?, ?)`,
        )
        .run(
          a.id,
          a.kind,
          a.name,
          a.path,
          a.ciphertextSha256,
          a.size,
          a.identityRef,
          a.measurement,
          now,
          now,
        );
    } catch (e) {
      throw conflict('an asset with this id already exists', [`id: ${a.id}`, (e as Error).message]);
    }
    return this.getAsset(a.id)!;
  }

  getAsset(id: string): Asset | null {
    const r = this.db.prepare('SELECT * FROM assets WHERE id = ?').get(id) as Row | undefined;
    return r ? toAsset(r) : null;
  }

  /** The asset of `kind` registered on chain under `chainId` (app and dataset ids are separate). */
  getAssetByChainId(kind: AssetKind, chainId: bigint | string): Asset | null {
    const r = this.db
      .prepare('SELECT * FROM assets WHERE kind = ? AND chain_id = ?')
      .get(kind, taskKey(chainId)) as Row | undefined;
    return r ? toAsset(r) : null;
  }

  listAssets(kind?: AssetKind): Asset[] {
    const rows = (
      kind
        ? this.db.prepare('SELECT * FROM assets WHERE kind = ? ORDER BY created_at, id').all(kind)
        : this.db.prepare('SELECT * FROM assets ORDER BY created_at, id').all()
    ) as Row[];
    return rows.map(toAsset);
  }

  /** Records the on-chain id of a local asset (once; the same id again is a no-op). */
  markAssetRegistered(id: string, chainId: bigint | string): void {
    const cid = taskKey(chainId);
    transaction(this.db, () => {
      const a = this.getAsset(id);
      if (!a) throw new FerryError('ASSET_NOT_FOUND', 'no such asset', { hints: [`id: ${id}`] });
      if (a.chainId === cid) return;
      if (a.chainId !== null) throw conflict('asset is already registered under another id', [`id: ${id}`]);
      const other = this.getAssetByChainId(a.kind, cid);
      if (other) throw conflict('another asset is registered under this on-chain id', [`id: ${other.id}`]);
      this.db
        .prepare(`UPDATE assets SET chain_id = ?, status = 'registered', updated_at = ? WHERE id = ?`)
        .run(cid, Date.now(), id);
    });
  }

  markAssetRevoked(id: string): void {
    const info = this.db
      .prepare(`UPDATE assets SET status = 'revoked', updated_at = ? WHERE id = ?`)
      .run(Date.now(), id);
    if (Number(info.changes) !== 1)
      throw new FerryError('ASSET_NOT_FOUND', 'no such asset', { hints: [`id: ${id}`] });
  }

  /** Deletes a local asset row (the store removes the file); refused once releases exist. */
  removeAsset(id: string): void {
    transaction(this.db, () => {
      const n = this.db.prepare('SELECT COUNT(*) AS n FROM releases WHERE asset = ?').get(id) as {
        n: number;
      };
      if (n.n > 0) {
        throw conflict('asset has key releases on record; revoke it instead of removing it', [`id: ${id}`]);
      }
      const info = this.db.prepare('DELETE FROM assets WHERE id = ?').run(id);
      if (Number(info.changes) !== 1)
        throw new FerryError('ASSET_NOT_FOUND', 'no such asset', { hints: [`id: ${id}`] });
    });
  }

  // --- attempts to consider for release -------------------------------------------------

  /** Records an attested attempt to consider (idempotent). */
  addToRelease(task: bigint | number | string, attempt: number): void {
    this.db
      .prepare(
        `INSERT INTO to_release (task, attempt, created_at) VALUES (?, ?, ?) ON CONFLICT (task, attempt) DO NOTHING`,
      )
      .run(String(task), attempt, Date.now());
  }

  /** The attempt was considered for good (released, refused, or no longer attested). */
  removeToRelease(task: bigint | number | string, attempt: number): void {
    this.db.prepare('DELETE FROM to_release WHERE task = ? AND attempt = ?').run(String(task), attempt);
  }

  /** Attempts still to consider, oldest first. */
  listToRelease(): { task: string; attempt: number }[] {
    return this.db.prepare('SELECT task, attempt FROM to_release ORDER BY created_at').all() as {
      task: string;
      attempt: number;
    }[];
  }

  // --- releases -----------------------------------------------------------------------

  /**
   * Writes a release intent with the sealed key, or returns the existing release for this
   * (task, attempt, asset) with `fresh: false` (the caller re-sends the stored bytes, never
   * new ones).
   */
  beginRelease(r: {
    task: bigint | number | string;
    attempt: number;
    asset: string;
    executor: string;
    sealed: Uint8Array;
    releaseHash: Uint8Array;
  }): { fresh: boolean; release: Release } {
    const task = taskKey(r.task);
    const attempt = attemptNumber(r.attempt);
    if (!this.getAsset(r.asset))
      throw new FerryError('ASSET_NOT_FOUND', 'no such asset', { hints: [`id: ${r.asset}`] });
    const now = Date.now();
    const info = this.db
      .prepare(
        `INSERT INTO releases (task, attempt, asset, executor, sealed, release_hash, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, 'intent', ?, ?) ON CONFLICT (task, attempt, asset) DO NOTHING`,
      )
      .run(task, attempt, r.asset, r.executor, r.sealed, r.releaseHash, now, now);
    return { fresh: Number(info.changes) === 1, release: this.getRelease(task, attempt, r.asset)! };
  }

  getRelease(task: bigint | number | string, attempt: number, asset: string): Release | null {
    const r = this.db
      .prepare('SELECT * FROM releases WHERE task = ? AND attempt = ? AND asset = ?')
      .get(taskKey(task), attemptNumber(attempt), asset) as Row | undefined;
    return r ? toRelease(r) : null;
  }

  listReleases(status?: ReleaseStatus): Release[] {
    const rows = (
      status
        ? this.db.prepare('SELECT * FROM releases WHERE status = ? ORDER BY created_at').all(status)
        : this.db.prepare('SELECT * FROM releases ORDER BY created_at').all()
    ) as Row[];
    return rows.map(toRelease);
  }

  /** How many releases (not failed) an asset has had: for a policy's "uses left". */
  countReleases(asset: string): number {
    const r = this.db
      .prepare(`SELECT COUNT(DISTINCT task) AS n FROM releases WHERE asset = ? AND status NOT IN ('failed')`)
      .get(asset) as { n: number };
    return Number(r.n);
  }

  #move(
    task: bigint | number | string,
    attempt: number,
    asset: string,
    to: ReleaseStatus,
    opts: { tx?: string; detail?: string | null } = {},
  ): void {
    const t = taskKey(task);
    const a = attemptNumber(attempt);
    advance(
      this.db,
      RELEASE_NEXT,
      {
        table: 'releases',
        where: 'task = ? AND attempt = ? AND asset = ?',
        args: [t, a, asset],
        tx: 'tx_hash',
        what: `release of task ${t} attempt ${a} asset ${asset}`,
      },
      to,
      { tx: opts.tx, set: opts.detail === undefined ? {} : { detail: opts.detail } },
    );
  }

  markReleaseDelivered(task: bigint | number | string, attempt: number, asset: string): void {
    this.#move(task, attempt, asset, 'delivered');
  }

  markReleaseRecorded(task: bigint | number | string, attempt: number, asset: string, txHash: string): void {
    this.#move(task, attempt, asset, 'recorded', { tx: txHash });
  }

  markReleaseOutcome(
    task: bigint | number | string,
    attempt: number,
    asset: string,
    outcome: 'confirmed' | 'reverted' | 'failed',
    detail?: string,
  ): void {
    this.#move(task, attempt, asset, outcome, { detail: detail ?? null });
  }

  // --- listener -----------------------------------------------------------------------

  /** The port last listened on at `host` (configured port 0), or null when none is remembered. */
  getListenPort(host: string): number | null {
    return getListenPort(this.db, host);
  }

  /** Remembers the port listened on at `host` (1 to 65535). */
  setListenPort(host: string, port: number): void {
    setListenPort(this.db, host, port);
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
}
