/**
 * Local state in SQLite (node:sqlite) for the node daemon and the owner agent.
 *
 * `openStateDb` opens (creating the file and its directory, mode 0700) a database in WAL mode
 * with `synchronous = FULL`, so a row written before a transaction is sent survives a crash
 * at any later moment. The schema is versioned: table `schema_version` holds one row per
 * applied migration; migrations run in order, each in its own IMMEDIATE transaction. A
 * database written by a newer Ferry (higher version than this code knows) is refused with
 * STATE_SCHEMA_TOO_NEW rather than modified. The `app` name ("node", "agent") is recorded at
 * creation and checked on open, so a node never opens an agent's database.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { FerryError } from '../kernel/index.ts';

export type Migration = { version: number; sql: string };

export type StateDb = DatabaseSync;

/** Runs `fn` inside BEGIN IMMEDIATE ... COMMIT, rolling back if it throws. */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const out = fn();
    db.exec('COMMIT');
    return out;
  } catch (e) {
    try {
      db.exec('ROLLBACK');
    } catch {
      // The transaction was already rolled back by SQLite.
    }
    throw e;
  }
}

export function openStateDb(path: string, app: string, migrations: readonly Migration[]): DatabaseSync {
  for (let i = 0; i < migrations.length; i++) {
    if (migrations[i].version !== i + 1) {
      throw new FerryError('INTERNAL', 'migrations must be numbered 1, 2, 3, ... in order');
    }
  }
  let db: DatabaseSync;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new DatabaseSync(path);
    db.exec('PRAGMA busy_timeout = 5000');
    if (path !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = FULL');
    db.exec('PRAGMA foreign_keys = ON');
  } catch (e) {
    throw new FerryError('STATE_UNAVAILABLE', 'cannot open the state database', {
      cause: e,
      hints: [`path: ${path}`, (e as Error).message],
    });
  }
  try {
    transaction(db, () => {
      db.exec(`CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER PRIMARY KEY,
        app TEXT NOT NULL,
        applied_at INTEGER NOT NULL
      ) STRICT`);
    });
    const rows = db.prepare('SELECT version, app FROM schema_version ORDER BY version').all() as {
      version: number;
      app: string;
    }[];
    if (rows.length > 0 && rows[0].app !== app) {
      throw new FerryError('STATE_UNAVAILABLE', 'the state database belongs to another program', {
        hints: [`expected: ${app}`, `got: ${rows[0].app}`, `path: ${path}`],
      });
    }
    const current = rows.length === 0 ? 0 : rows[rows.length - 1].version;
    if (current > migrations.length) {
      throw new FerryError('STATE_SCHEMA_TOO_NEW', 'the state database was written by a newer Ferry', {
        hints: [`schema version: ${current}`, `this Ferry knows up to: ${migrations.length}`],
      });
    }
    for (const m of migrations.slice(current)) {
      transaction(db, () => {
        db.exec(m.sql);
        db.prepare('INSERT INTO schema_version (version, app, applied_at) VALUES (?, ?, ?)').run(
          m.version,
          app,
          Date.now(),
        );
      });
    }
  } catch (e) {
    db.close();
    if (e instanceof FerryError) throw e;
    throw new FerryError('STATE_UNAVAILABLE', 'cannot migrate the state database', {
      cause: e,
      hints: [`path: ${path}`, (e as Error).message],
    });
  }
  return db;
}

/** The schema version of an open database. */
export function schemaVersion(db: DatabaseSync): number {
  const r = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
  return r.v ?? 0;
}

const UINT256_MAX = (1n << 256n) - 1n;

/** A task id (uint256) as the decimal text used in state tables; INVALID_ARGUMENT otherwise. */
export function taskKey(task: bigint | number | string): string {
  let v: bigint;
  try {
    if (typeof task === 'string' && !/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(task)) throw new Error('bad');
    if (typeof task === 'number' && !Number.isSafeInteger(task)) throw new Error('bad');
    v = BigInt(task);
  } catch {
    throw new FerryError('INVALID_ARGUMENT', 'task id must be a uint256', {
      hints: [`got: ${String(task)}`],
    });
  }
  if (v < 0n || v > UINT256_MAX) {
    throw new FerryError('INVALID_ARGUMENT', 'task id must be a uint256', {
      hints: [`got: ${String(task)}`],
    });
  }
  return v.toString();
}

/** An attempt number (u32, from 1); INVALID_ARGUMENT otherwise. */
export function attemptNumber(n: number | string): number {
  const v = typeof n === 'string' && /^[0-9]{1,10}$/.test(n) ? Number(n) : n;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > 0xffffffff) {
    throw new FerryError('INVALID_ARGUMENT', 'attempt must be an integer from 1 to 2^32-1', {
      hints: [`got: ${String(n)}`],
    });
  }
  return v;
}

/**
 * The `listener` table (a migration of each app's schema): the port a daemon configured with
 * port 0 listened on, per host, tried first on its next start so that the endpoints it
 * published (on chain, in events) stay valid across restarts.
 */
export const LISTENER_TABLE_SQL = `
  CREATE TABLE listener (
    host TEXT PRIMARY KEY,
    port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    updated_at INTEGER NOT NULL
  ) STRICT;
`;

/** The port last listened on at `host`, or null when none is remembered. */
export function getListenPort(db: DatabaseSync, host: string): number | null {
  const r = db.prepare('SELECT port FROM listener WHERE host = ?').get(host) as { port: number } | undefined;
  return r ? Number(r.port) : null;
}

/** Remembers the port listened on at `host` (1 to 65535). */
export function setListenPort(db: DatabaseSync, host: string, port: number): void {
  if (typeof host !== 'string' || host.length === 0 || host.length > 255) {
    throw new FerryError('INVALID_ARGUMENT', 'host must be a non-empty string of at most 255 characters', {
      hints: [`got: ${String(host).slice(0, 80)}`],
    });
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new FerryError('INVALID_ARGUMENT', 'port must be an integer from 1 to 65535', {
      hints: [`got: ${String(port).slice(0, 80)}`],
    });
  }
  db.prepare(
    `INSERT INTO listener (host, port, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (host) DO UPDATE SET port = excluded.port, updated_at = excluded.updated_at`,
  ).run(host, port, Date.now());
}

/** The last block fully processed by the watcher named `name`, or null. */
export function getCursor(
  db: DatabaseSync,
  name: string,
): { block: number; blockHash: string | null } | null {
  const r = db.prepare('SELECT block, block_hash FROM cursor WHERE name = ?').get(name) as
    | { block: number; block_hash: string | null }
    | undefined;
  return r ? { block: Number(r.block), blockHash: r.block_hash ?? null } : null;
}

/**
 * Moves the cursor named `name` to `block`; it never moves backwards (STATE_CONFLICT) unless
 * `allowRewind` (after a reorganisation).
 */
export function setCursor(
  db: DatabaseSync,
  name: string,
  block: number,
  blockHash: string | null = null,
  allowRewind = false,
): void {
  if (!Number.isSafeInteger(block) || block < 0) {
    throw new FerryError('INVALID_ARGUMENT', 'block number must be a non-negative integer', {
      hints: [`got: ${block}`],
    });
  }
  transaction(db, () => {
    const cur = getCursor(db, name);
    if (cur && block < cur.block && !allowRewind) {
      throw new FerryError('STATE_CONFLICT', 'cursor would move backwards', {
        hints: [`at: ${cur.block}`, `requested: ${block}`],
      });
    }
    db.prepare(
      `INSERT INTO cursor (name, block, block_hash, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET block = excluded.block, block_hash = excluded.block_hash,
       updated_at = excluded.updated_at`,
    ).run(name, block, blockHash, Date.now());
  });
}
