/**
 * The AR's SQLite store (better-sqlite3): the published modules' metadata (name, digest, size,
 * publishedAt; the bytes are files, see blobs.ts), the deployments and the outcome of each of their
 * steps; WAL journal, schema versions in `PRAGMA user_version` (migrations.ts). Every method is
 * synchronous, so the service runs a party operation or one received message and the rows it
 * produces inside one {@link SqliteRepositoryStore.transaction}.
 *
 * Rows read back are checked: a row that is not valid is a {@link StoreError} (STORE_CORRUPT),
 * never a crash and never half a row handed out.
 */
import { type DeploymentState, isName, type Name } from '@clefnet/protocol';
import { openSqlite, type SqliteOptions, StoreError } from '@clefnet/service-host';
import { MIGRATIONS } from './migrations.js';

export { StoreError };

/** A published module: `name` bound to the SHA-256 (hex) of its bytes. */
export interface ModuleRecord {
  readonly name: string;
  readonly digest: string;
  readonly size: number;
  /** ms since the epoch (the service's clock). */
  readonly publishedAt: number;
}

/** What the AR did in one step of a deployment, as its party's events and deliveries say. */
export interface StepRecord {
  /** ms since the epoch. */
  readonly at: number;
  /** The message label (M1, M3, M5, M6, M7, HANDOVER, ERR). */
  readonly step: string;
  /** `sent` a frame, `received` a verified answer, `accepted` a Clef (step 4), or the request `failed`. */
  readonly kind: 'sent' | 'received' | 'accepted' | 'failed';
  readonly peer: Name | null;
  /** `ok`, or the error code. */
  readonly result: string;
  /** The Clef id taken in step 4, or the remote error code. */
  readonly detail: string | null;
}

export interface DeploymentRecord {
  readonly id: number;
  readonly module: string;
  readonly digest: string;
  readonly anc: Name;
  readonly secApp: Name | null;
  readonly state: DeploymentState;
  readonly code: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** In the order they happened. */
  readonly steps: readonly StepRecord[];
}

export interface NewDeployment {
  readonly module: string;
  readonly digest: string;
  readonly anc: Name;
  readonly secApp: Name | undefined;
  readonly at: number;
}

export interface SqliteRepositoryStore {
  readonly path: string;
  readonly version: number;
  readonly isOpen: boolean;
  /** Binds `name` to `digest` (a name published again is bound to its new content). Returns the row. */
  publish(name: string, digest: string, size: number, at: number): ModuleRecord;
  module(name: string): ModuleRecord | undefined;
  /** Ordered by name. */
  modules(): ModuleRecord[];
  /** A new deployment in state `resolving`; returns its id. */
  createDeployment(d: NewDeployment): number;
  /** Removes a deployment that the party refused outright (it has no steps). */
  dropDeployment(id: number): void;
  setState(id: number, state: DeploymentState, code: string | null, at: number): void;
  addStep(id: number, step: StepRecord): void;
  /** Whether deployment `id` exists. */
  hasDeployment(id: number): boolean;
  deployment(id: number): DeploymentRecord | undefined;
  /** Ordered by id. */
  deployments(): DeploymentRecord[];
  /**
   * Deployments left `resolving` or `minting` by an earlier process (whose party, and so the
   * outstanding requests, are gone) become `failed` with TIMEOUT. Returns how many.
   */
  failUnfinished(at: number): number;
  transaction<T>(fn: () => T): T;
  close(): void;
}

/** Commit durability (service-host's SqliteOptions). */
export type SqliteStoreOptions = Pick<SqliteOptions, 'synchronous'>;

interface ModuleRow {
  readonly name: unknown;
  readonly digest: unknown;
  readonly size: unknown;
  readonly published_at: unknown;
}
interface DeploymentRow {
  readonly id: unknown;
  readonly module: unknown;
  readonly digest: unknown;
  readonly anc: unknown;
  readonly sec_app: unknown;
  readonly state: unknown;
  readonly code: unknown;
  readonly created_at: unknown;
  readonly updated_at: unknown;
}
interface StepRow {
  readonly at: unknown;
  readonly step: unknown;
  readonly kind: unknown;
  readonly peer: unknown;
  readonly result: unknown;
  readonly detail: unknown;
}

const STATES: readonly DeploymentState[] = ['resolving', 'minting', 'sent', 'failed'];
const KINDS: readonly StepRecord['kind'][] = ['sent', 'received', 'accepted', 'failed'];

/** Opens (creating it and its folder if needed) and migrates the AR database at `path`. */
export function openSqliteRepositoryStore(
  path: string,
  opts: SqliteStoreOptions = {},
): SqliteRepositoryStore {
  const { db, version } = openSqlite(path, MIGRATIONS, { ...opts, foreignKeys: true });
  const publishStmt = db.prepare(
    `INSERT INTO modules (name, digest, size, published_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, size = excluded.size,
       published_at = excluded.published_at`,
  );
  const moduleStmt = db.prepare<[string], ModuleRow>(
    'SELECT name, digest, size, published_at FROM modules WHERE name = ?',
  );
  const modulesStmt = db.prepare<[], ModuleRow>(
    'SELECT name, digest, size, published_at FROM modules ORDER BY name',
  );
  const createStmt = db.prepare(
    `INSERT INTO deployments (module, digest, anc, sec_app, state, code, created_at, updated_at)
     VALUES (?, ?, ?, ?, 'resolving', NULL, ?, ?)`,
  );
  const dropStmt = db.prepare('DELETE FROM deployments WHERE id = ?');
  const stateStmt = db.prepare('UPDATE deployments SET state = ?, code = ?, updated_at = ? WHERE id = ?');
  const stepStmt = db.prepare(
    `INSERT INTO deployment_steps (deployment, seq, at, step, kind, peer, result, detail)
     VALUES (?, (SELECT count(*) FROM deployment_steps WHERE deployment = ?), ?, ?, ?, ?, ?, ?)`,
  );
  const dcols = 'id, module, digest, anc, sec_app, state, code, created_at, updated_at';
  const deploymentStmt = db.prepare<[number], DeploymentRow>(`SELECT ${dcols} FROM deployments WHERE id = ?`);
  const existsStmt = db.prepare<[number], { one: number }>('SELECT 1 AS one FROM deployments WHERE id = ?');
  const deploymentsStmt = db.prepare<[], DeploymentRow>(`SELECT ${dcols} FROM deployments ORDER BY id`);
  const stepsStmt = db.prepare<[number], StepRow>(
    'SELECT at, step, kind, peer, result, detail FROM deployment_steps WHERE deployment = ? ORDER BY seq',
  );
  const unfinishedStmt = db.prepare(
    `UPDATE deployments SET state = 'failed', code = 'TIMEOUT', updated_at = ?
     WHERE state IN ('resolving', 'minting')`,
  );

  const toDeployment = (row: DeploymentRow): DeploymentRecord => {
    const d = checkDeployment(row, path);
    return { ...d, steps: stepsStmt.all(d.id).map((s) => toStep(s, d.id, path)) };
  };

  return {
    path,
    version,
    get isOpen() {
      return db.open;
    },
    publish(name, digest, size, at) {
      publishStmt.run(name, digest, size, at);
      const row = moduleStmt.get(name);
      if (row === undefined) throw new StoreError(`module ${name} is not stored`, { module: name });
      return toModule(row, path);
    },
    module(name) {
      const row = moduleStmt.get(name);
      return row === undefined ? undefined : toModule(row, path);
    },
    modules() {
      return modulesStmt.all().map((r) => toModule(r, path));
    },
    createDeployment(d) {
      const r = createStmt.run(d.module, d.digest, d.anc, d.secApp ?? null, d.at, d.at);
      return Number(r.lastInsertRowid);
    },
    dropDeployment(id) {
      dropStmt.run(id);
    },
    setState(id, state, code, at) {
      stateStmt.run(state, code, at, id);
    },
    addStep(id, s) {
      stepStmt.run(id, id, s.at, s.step, s.kind, s.peer, s.result, s.detail);
    },
    hasDeployment(id) {
      return existsStmt.get(id) !== undefined;
    },
    deployment(id) {
      const row = deploymentStmt.get(id);
      return row === undefined ? undefined : toDeployment(row);
    },
    deployments() {
      return deploymentsStmt.all().map(toDeployment);
    },
    failUnfinished(at) {
      return unfinishedStmt.run(at).changes;
    },
    transaction<T>(fn: () => T): T {
      return db.transaction(fn)();
    },
    close() {
      if (db.open) db.close();
    },
  };
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isDigest = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isNameOrNull = (v: unknown): v is Name | null => v === null || (typeof v === 'string' && isName(v));
const isTextOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

function toModule(row: ModuleRow, path: string): ModuleRecord {
  const bad = (column: string) =>
    new StoreError(`corrupt module in ${path}: ${column}`, { column, module: String(row.name) });
  if (typeof row.name !== 'string') throw bad('name');
  if (!isDigest(row.digest)) throw bad('digest');
  if (!isCount(row.size)) throw bad('size');
  if (!isCount(row.published_at)) throw bad('published_at');
  return { name: row.name, digest: row.digest, size: row.size, publishedAt: row.published_at };
}

function checkDeployment(row: DeploymentRow, path: string): Omit<DeploymentRecord, 'steps'> {
  const bad = (column: string) =>
    new StoreError(`corrupt deployment in ${path}: ${column}`, { column, id: String(row.id) });
  if (!isCount(row.id)) throw bad('id');
  if (typeof row.module !== 'string') throw bad('module');
  if (!isDigest(row.digest)) throw bad('digest');
  if (typeof row.anc !== 'string' || !isName(row.anc)) throw bad('anc');
  if (!isNameOrNull(row.sec_app)) throw bad('sec_app');
  if (!STATES.includes(row.state as DeploymentState)) throw bad('state');
  if (!isTextOrNull(row.code)) throw bad('code');
  if (!isCount(row.created_at)) throw bad('created_at');
  if (!isCount(row.updated_at)) throw bad('updated_at');
  return {
    id: row.id,
    module: row.module,
    digest: row.digest,
    anc: row.anc,
    secApp: row.sec_app,
    state: row.state as DeploymentState,
    code: row.code,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toStep(row: StepRow, id: number, path: string): StepRecord {
  const bad = (column: string) =>
    new StoreError(`corrupt step of deployment ${id} in ${path}: ${column}`, { column, id: String(id) });
  if (!isCount(row.at)) throw bad('at');
  if (typeof row.step !== 'string') throw bad('step');
  if (!KINDS.includes(row.kind as StepRecord['kind'])) throw bad('kind');
  if (!isNameOrNull(row.peer)) throw bad('peer');
  if (typeof row.result !== 'string') throw bad('result');
  if (!isTextOrNull(row.detail)) throw bad('detail');
  return {
    at: row.at,
    step: row.step,
    kind: row.kind as StepRecord['kind'],
    peer: row.peer,
    result: row.result,
    detail: row.detail,
  };
}
