/**
 * The key server's SQLite schema, as an ordered list of migrations. Migration i (0-based) takes a
 * database from `PRAGMA user_version` i to i + 1; each runs in its own transaction with the version
 * bump, so a database is always at exactly one version. Never edit a migration that has shipped:
 * append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: access pairs entered by an admin (owner NULL) and Names minted here (owner = requester):
  // the {Name, Clef, owner, createdAt, revokedAt} of the protocol's `Binding` (PROTO-8, TB-16).
  `CREATE TABLE bindings (
     name       TEXT    PRIMARY KEY NOT NULL,
     clef       BLOB    NOT NULL CHECK (length(clef) = 64),
     owner      TEXT,
     created_at INTEGER NOT NULL CHECK (created_at >= 0),
     revoked_at INTEGER CHECK (revoked_at IS NULL OR revoked_at >= 0)
   ) STRICT`,
];
