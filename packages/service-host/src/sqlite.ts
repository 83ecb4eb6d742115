/**
 * The embedded SQLite every service keeps its state in (better-sqlite3): opened in WAL mode with
 * the durability the service asks for, and migrated to its schema by `PRAGMA user_version` (one
 * migration per version, each in its own transaction). A database of a newer schema than the code
 * knows is refused untouched. A store's host errors (that, a corrupt row) are {@link StoreError}.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ClefnetError, type ErrorMeta } from '@clefnet/protocol';
import Database from 'better-sqlite3';

/**
 * A host error of a store (a corrupt row, a schema newer than the code): thrown, never sent; the
 * peer whose message hit it gets no answer, the service logs it and keeps serving. STORE_CORRUPT.
 */
export class StoreError extends ClefnetError {
  constructor(message: string, meta: ErrorMeta = {}) {
    super('STORE_CORRUPT', message, meta);
    this.name = 'StoreError';
  }
}

export interface SqliteOptions {
  /**
   * `full` (default): a commit is on disk before the answer that depends on it is sent. `normal`:
   * WAL's usual setting; survives a killed process, may lose the last commits on power loss.
   */
  readonly synchronous?: 'full' | 'normal';
  /** Enforce foreign keys (default false). */
  readonly foreignKeys?: boolean;
}

/**
 * Opens (creating it and its folder if needed) and migrates the database at `path`; `migrations[v]`
 * takes the schema from version v to v + 1. Returns the handle and the schema version.
 */
export function openSqlite(
  path: string,
  migrations: readonly string[],
  opts: SqliteOptions = {},
): { readonly db: Database.Database; readonly version: number } {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    db.pragma('busy_timeout = 5000');
    if (opts.foreignKeys === true) db.pragma('foreign_keys = ON');
    migrate(db, path, migrations);
  } catch (e) {
    db.close();
    throw e;
  }
  return { db, version: db.pragma('user_version', { simple: true }) as number };
}

function migrate(db: Database.Database, path: string, migrations: readonly string[]): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new StoreError(`${path} has schema version ${current}; this service knows ${migrations.length}`, {
      version: current,
    });
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/** A time or id column read back: a non-negative safe integer. */
export function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
