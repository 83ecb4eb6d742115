/**
 * The protocol's {@link KeyServerStore} on SQLite (better-sqlite3): bindings {Name, Clef, owner,
 * createdAt, revokedAt} in one STRICT table, WAL journal, schema versions in `PRAGMA user_version`
 * (migrations.ts). Every method is synchronous, so the service runs one `receive()` inside one
 * {@link SqliteKeyServerStore.transaction}: a message's changes are stored whole or not at all.
 *
 * Rows read back are checked strictly: a row that is not a valid binding (a bad Name, a Clef that
 * is not 64 bytes, a time that is not a non-negative integer) is a {@link StoreError}, never a crash
 * and never a half-read binding handed to the party.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type Binding,
  ClefnetError,
  decodeClef,
  type ErrorMeta,
  encodeClef,
  isName,
  type KeyServerStore,
  type Name,
} from '@clefnet/protocol';
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.js';

/**
 * A host error of the store (a corrupt row, a schema newer than this code). Thrown, not sent: the
 * peer whose message hit it gets no answer, the service logs it and keeps serving.
 * Code: STORE_CORRUPT.
 */
export class StoreError extends ClefnetError {
  constructor(message: string, meta: ErrorMeta = {}) {
    super('STORE_CORRUPT', message, meta);
    this.name = 'StoreError';
  }
}

export interface SqliteKeyServerStore extends KeyServerStore {
  /** The database file. */
  readonly path: string;
  /** Schema version after migrations (`PRAGMA user_version`). */
  readonly version: number;
  /** False once {@link close} ran. */
  readonly isOpen: boolean;
  /** Runs `fn` in one SQLite transaction: committed when it returns, rolled back when it throws. */
  transaction<T>(fn: () => T): T;
  close(): void;
}

export interface SqliteStoreOptions {
  /**
   * `full` (default): a commit is on disk before the answer that depends on it is sent. `normal`:
   * WAL's usual setting; survives a killed process, may lose the last commits on power loss.
   */
  readonly synchronous?: 'full' | 'normal';
}

interface Row {
  readonly name: unknown;
  readonly clef: unknown;
  readonly owner: unknown;
  readonly created_at: unknown;
  readonly revoked_at: unknown;
}

/** Opens (creating it and its folder if needed) and migrates the key server database at `path`. */
export function openSqliteKeyServerStore(path: string, opts: SqliteStoreOptions = {}): SqliteKeyServerStore {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    db.pragma('busy_timeout = 5000');
    migrate(db, path);
  } catch (e) {
    db.close();
    throw e;
  }
  const version = db.pragma('user_version', { simple: true }) as number;
  const cols = 'name, clef, owner, created_at, revoked_at';
  const getStmt = db.prepare<[string], Row>(`SELECT ${cols} FROM bindings WHERE name = ?`);
  const listStmt = db.prepare<[], Row>(`SELECT ${cols} FROM bindings ORDER BY name`);
  const putStmt = db.prepare(
    `INSERT INTO bindings (${cols}) VALUES (@name, @clef, @owner, @createdAt, @revokedAt)
     ON CONFLICT (name) DO UPDATE SET clef = excluded.clef, owner = excluded.owner,
       created_at = excluded.created_at, revoked_at = excluded.revoked_at`,
  );
  const revokeStmt = db.prepare('UPDATE bindings SET revoked_at = ? WHERE name = ?');

  return {
    path,
    version,
    get isOpen() {
      return db.open;
    },
    get(name: Name): Binding | undefined {
      const row = getStmt.get(name);
      return row === undefined ? undefined : toBinding(row, path);
    },
    put(b: Binding): void {
      putStmt.run({
        name: b.name,
        clef: Buffer.from(encodeClef(b.clef)),
        owner: b.owner,
        createdAt: b.createdAt,
        revokedAt: b.revokedAt,
      });
    },
    revoke(name: Name, at: number): boolean {
      return revokeStmt.run(at, name).changes > 0;
    },
    list(): Binding[] {
      return listStmt.all().map((r) => toBinding(r, path));
    },
    transaction<T>(fn: () => T): T {
      return db.transaction(fn)();
    },
    close(): void {
      if (db.open) db.close();
    },
  };
}

function migrate(db: Database.Database, path: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new StoreError(`${path} has schema version ${current}; this service knows ${MIGRATIONS.length}`, {
      version: current,
    });
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/** A stored row as a Binding, or a StoreError saying which column is wrong. */
function toBinding(row: Row, path: string): Binding {
  const name = typeof row.name === 'string' ? row.name : '';
  const bad = (column: string, why: string): StoreError =>
    new StoreError(`corrupt binding in ${path}: ${column} ${why}`, { column, name });
  if (!isName(name)) throw bad('name', 'is not a valid Name');
  if (!(row.clef instanceof Uint8Array) || row.clef.length !== 64) throw bad('clef', 'is not 64 bytes');
  const owner = row.owner;
  if (owner !== null && (typeof owner !== 'string' || !isName(owner)))
    throw bad('owner', 'is neither null nor a valid Name');
  const createdAt = row.created_at;
  if (!isTime(createdAt)) throw bad('created_at', 'is not a non-negative integer');
  const revokedAt = row.revoked_at;
  if (revokedAt !== null && !isTime(revokedAt))
    throw bad('revoked_at', 'is neither null nor a non-negative integer');
  return { name, clef: decodeClef(new Uint8Array(row.clef)), owner, createdAt, revokedAt };
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
