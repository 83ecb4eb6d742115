/**
 * The ASD's SQLite store (better-sqlite3): the records applications send over their channel
 * ({app Name, data bytes, receivedAt}) and the applications revoked at this ASD (PROTO-26), WAL
 * journal, schema versions in `PRAGMA user_version` (migrations.ts). Every method is synchronous, so
 * the service runs one `receive()` (which appends the record and counts) inside one
 * {@link SqliteAsdStore.transaction}: a request is stored whole or not at all, and its answer leaves
 * only after the commit.
 *
 * Rows read back are checked strictly: a row that is not a valid record or revocation is a
 * {@link StoreError} (STORE_CORRUPT), never a crash and never half a row handed out.
 */
import { isName, type Name } from '@clefnet/protocol';
import { isTime, openSqlite, type SqliteOptions, StoreError } from '@clefnet/service-host';
import { MIGRATIONS } from './migrations.js';

export { StoreError };

/** One request an application sent over its channel. */
export interface AsdRecord {
  /** Increasing with arrival (SQLite rowid, never reused). */
  readonly id: number;
  readonly app: Name;
  readonly data: Uint8Array;
  /** ms since the epoch (the service's clock). */
  readonly receivedAt: number;
}

/** An application refused at this ASD since `revokedAt` (ms since the epoch). */
export interface AsdRevocation {
  readonly app: Name;
  readonly revokedAt: number;
}

export interface SqliteAsdStore {
  /** The database file. */
  readonly path: string;
  /** Schema version after migrations (`PRAGMA user_version`). */
  readonly version: number;
  /** False once {@link close} ran. */
  readonly isOpen: boolean;
  /** Stores one record; returns how many records `app` has now (this one included). */
  append(app: Name, data: Uint8Array, at: number): number;
  /** Records in arrival order, of one application or of all. */
  records(app?: Name): AsdRecord[];
  /** How many records `app` has. */
  count(app: Name): number;
  /** Stores a revocation; an application already revoked keeps its first time. Returns the row. */
  revoke(app: Name, at: number): AsdRevocation;
  /** Revocations ordered by Name. */
  revocations(): AsdRevocation[];
  /** Runs `fn` in one SQLite transaction: committed when it returns, rolled back when it throws. */
  transaction<T>(fn: () => T): T;
  close(): void;
}

/** Commit durability (service-host's SqliteOptions). */
export type SqliteStoreOptions = Pick<SqliteOptions, 'synchronous'>;

interface RecordRow {
  readonly id: unknown;
  readonly app: unknown;
  readonly data: unknown;
  readonly received_at: unknown;
}

interface RevocationRow {
  readonly app: unknown;
  readonly revoked_at: unknown;
}

/** Opens (creating it and its folder if needed) and migrates the ASD database at `path`. */
export function openSqliteAsdStore(path: string, opts: SqliteStoreOptions = {}): SqliteAsdStore {
  const { db, version } = openSqlite(path, MIGRATIONS, opts);
  const cols = 'id, app, data, received_at';
  const insertStmt = db.prepare('INSERT INTO records (app, data, received_at) VALUES (?, ?, ?)');
  const countStmt = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM records WHERE app = ?');
  const allStmt = db.prepare<[], RecordRow>(`SELECT ${cols} FROM records ORDER BY id`);
  const byAppStmt = db.prepare<[string], RecordRow>(`SELECT ${cols} FROM records WHERE app = ? ORDER BY id`);
  const revokeStmt = db.prepare(
    'INSERT INTO revocations (app, revoked_at) VALUES (?, ?) ON CONFLICT (app) DO NOTHING',
  );
  const getRevocationStmt = db.prepare<[string], RevocationRow>(
    'SELECT app, revoked_at FROM revocations WHERE app = ?',
  );
  const revocationsStmt = db.prepare<[], RevocationRow>(
    'SELECT app, revoked_at FROM revocations ORDER BY app',
  );
  const count = (app: Name): number => countStmt.get(app)?.n ?? 0;

  return {
    path,
    version,
    get isOpen() {
      return db.open;
    },
    append(app: Name, data: Uint8Array, at: number): number {
      insertStmt.run(app, Buffer.from(data), at);
      return count(app);
    },
    records(app?: Name): AsdRecord[] {
      const rows = app === undefined ? allStmt.all() : byAppStmt.all(app);
      return rows.map((r) => toRecord(r, path));
    },
    count,
    revoke(app: Name, at: number): AsdRevocation {
      revokeStmt.run(app, at);
      const row = getRevocationStmt.get(app);
      if (row === undefined) throw new StoreError(`revocation of ${app} is not stored`, { app });
      return toRevocation(row, path);
    },
    revocations(): AsdRevocation[] {
      return revocationsStmt.all().map((r) => toRevocation(r, path));
    },
    transaction<T>(fn: () => T): T {
      return db.transaction(fn)();
    },
    close(): void {
      if (db.open) db.close();
    },
  };
}

function toRecord(row: RecordRow, path: string): AsdRecord {
  const id = row.id;
  const bad = (column: string, why: string): StoreError =>
    new StoreError(`corrupt record in ${path}: ${column} ${why}`, { column, id: String(id) });
  if (!isTime(id)) throw bad('id', 'is not a non-negative integer');
  const app = row.app;
  if (typeof app !== 'string' || !isName(app)) throw bad('app', 'is not a valid Name');
  if (!(row.data instanceof Uint8Array)) throw bad('data', 'is not a blob');
  const receivedAt = row.received_at;
  if (!isTime(receivedAt)) throw bad('received_at', 'is not a non-negative integer');
  return { id, app, data: new Uint8Array(row.data), receivedAt };
}

function toRevocation(row: RevocationRow, path: string): AsdRevocation {
  const app = typeof row.app === 'string' ? row.app : '';
  const bad = (column: string, why: string): StoreError =>
    new StoreError(`corrupt revocation in ${path}: ${column} ${why}`, { column, app });
  if (!isName(app)) throw bad('app', 'is not a valid Name');
  const revokedAt = row.revoked_at;
  if (!isTime(revokedAt)) throw bad('revoked_at', 'is not a non-negative integer');
  return { app, revokedAt };
}
