/**
 * The protocol's {@link KeyServerStore} on SQLite (better-sqlite3): bindings {Name, Clef, owner,
 * createdAt, revokedAt} in one STRICT table, WAL journal, schema versions in `PRAGMA user_version`
 * (migrations.ts). Every method is synchronous, so the service runs one `receive()` inside one
 * {@link SqliteKeyServerStore.transaction}: a message's changes are stored whole or not at all.
 *
 * Bindings read are kept in memory (at most {@link CACHE_SIZE} Names, present or absent; this
 * process is the only writer): a message asks for its sender, its subject and every Name above
 * both (revocation covers the subtree), about ten reads. A write drops the Name from the cache, and
 * a transaction that rolls back drops everything, so after a rollback no read answers what was
 * rolled back. A binding returned is the same object on every call until its Name is written:
 * callers treat it and its Clef bytes as immutable (the party does).
 *
 * Rows read back are checked strictly: a row that is not a valid binding (a bad Name, a Clef that
 * is not 64 bytes, a time that is not a non-negative integer) is a {@link StoreError}, never a crash
 * and never a half-read binding handed to the party.
 */
import {
  type Binding,
  decodeClef,
  encodeClef,
  isName,
  type KeyServerStore,
  type Name,
} from '@clefnet/protocol';
import { isTime, openSqlite, type SqliteOptions, StoreError } from '@clefnet/service-host';
import { MIGRATIONS } from './migrations.js';

export { StoreError };

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

/** Commit durability (service-host's SqliteOptions). */
export type SqliteStoreOptions = Pick<SqliteOptions, 'synchronous'>;

interface Row {
  readonly name: unknown;
  readonly clef: unknown;
  readonly owner: unknown;
  readonly created_at: unknown;
  readonly revoked_at: unknown;
}

/** Opens (creating it and its folder if needed) and migrates the key server database at `path`. */
export function openSqliteKeyServerStore(path: string, opts: SqliteStoreOptions = {}): SqliteKeyServerStore {
  const { db, version } = openSqlite(path, MIGRATIONS, opts);
  const cols = 'name, clef, owner, created_at, revoked_at';
  const getStmt = db.prepare<[string], Row>(`SELECT ${cols} FROM bindings WHERE name = ?`);
  const listStmt = db.prepare<[], Row>(`SELECT ${cols} FROM bindings ORDER BY name`);
  const putStmt = db.prepare(
    `INSERT INTO bindings (${cols}) VALUES (@name, @clef, @owner, @createdAt, @revokedAt)
     ON CONFLICT (name) DO UPDATE SET clef = excluded.clef, owner = excluded.owner,
       created_at = excluded.created_at, revoked_at = excluded.revoked_at`,
  );
  const revokeStmt = db.prepare('UPDATE bindings SET revoked_at = ? WHERE name = ?');
  /** Name -> its binding, or null for a Name without one. */
  const cache = new Map<string, Binding | null>();

  return {
    path,
    version,
    get isOpen() {
      return db.open;
    },
    get(name: Name): Binding | undefined {
      const hit = cache.get(name);
      if (hit !== undefined) return hit ?? undefined;
      const row = getStmt.get(name);
      const b = row === undefined ? undefined : toBinding(row, path);
      if (cache.size >= CACHE_SIZE) cache.clear();
      cache.set(name, b ?? null);
      return b;
    },
    put(b: Binding): void {
      cache.delete(b.name);
      putStmt.run({
        name: b.name,
        clef: Buffer.from(encodeClef(b.clef)),
        owner: b.owner,
        createdAt: b.createdAt,
        revokedAt: b.revokedAt,
      });
    },
    revoke(name: Name, at: number): boolean {
      cache.delete(name);
      return revokeStmt.run(at, name).changes > 0;
    },
    list(): Binding[] {
      return listStmt.all().map((r) => toBinding(r, path));
    },
    transaction<T>(fn: () => T): T {
      try {
        return db.transaction(fn)();
      } catch (e) {
        cache.clear(); // rolled back: what was read inside may not be what is stored
        throw e;
      }
    },
    close(): void {
      cache.clear();
      if (db.open) db.close();
    },
  };
}

/** Names whose bindings (or absence) are kept in memory; the cache starts over when full. */
const CACHE_SIZE = 4096;

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
