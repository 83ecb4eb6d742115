/**
 * The ASD's SQLite schema, as an ordered list of migrations. Migration i (0-based) takes a database
 * from `PRAGMA user_version` i to i + 1; each runs in its own transaction with the version bump, so
 * a database is always at exactly one version. Never edit a migration that has shipped: append a
 * new one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: one row per request an application sent over its channel (the billing data of [0113]), and
  // the applications this ASD refuses on its own (PROTO-26, the party's `revoked` set).
  `CREATE TABLE records (
     id          INTEGER PRIMARY KEY AUTOINCREMENT,
     app         TEXT    NOT NULL,
     data        BLOB    NOT NULL,
     received_at INTEGER NOT NULL CHECK (received_at >= 0)
   ) STRICT;
   CREATE INDEX records_by_app ON records (app, id);
   CREATE TABLE revocations (
     app        TEXT    PRIMARY KEY NOT NULL,
     revoked_at INTEGER NOT NULL CHECK (revoked_at >= 0)
   ) STRICT`,
];
