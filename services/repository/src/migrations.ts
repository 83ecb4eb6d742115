/**
 * The AR's SQLite schema, as an ordered list of migrations. Migration i (0-based) takes a database
 * from `PRAGMA user_version` i to i + 1; each runs in its own transaction with the version bump, so
 * a database is always at exactly one version. Never edit a migration that has shipped: append a
 * new one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the published modules (a name bound to the SHA-256 of its bytes; the bytes are the file
  // modules/<digest> under dataDir), the deployments and the outcome of each of their steps.
  `CREATE TABLE modules (
     name         TEXT    PRIMARY KEY NOT NULL,
     digest       TEXT    NOT NULL CHECK (length(digest) = 64),
     size         INTEGER NOT NULL CHECK (size > 0),
     published_at INTEGER NOT NULL CHECK (published_at >= 0)
   ) STRICT;
   CREATE TABLE deployments (
     id         INTEGER PRIMARY KEY AUTOINCREMENT,
     module     TEXT    NOT NULL,
     digest     TEXT    NOT NULL,
     anc        TEXT    NOT NULL,
     sec_app    TEXT,
     state      TEXT    NOT NULL CHECK (state IN ('resolving', 'minting', 'sent', 'failed')),
     code       TEXT,
     created_at INTEGER NOT NULL CHECK (created_at >= 0),
     updated_at INTEGER NOT NULL CHECK (updated_at >= 0)
   ) STRICT;
   CREATE TABLE deployment_steps (
     deployment INTEGER NOT NULL REFERENCES deployments (id),
     seq        INTEGER NOT NULL,
     at         INTEGER NOT NULL CHECK (at >= 0),
     step       TEXT    NOT NULL,
     kind       TEXT    NOT NULL CHECK (kind IN ('sent', 'received', 'accepted', 'failed')),
     peer       TEXT,
     result     TEXT    NOT NULL,
     detail     TEXT,
     PRIMARY KEY (deployment, seq)
   ) STRICT`,
];
