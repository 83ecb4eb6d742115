/**
 * `createRepositoryService(opts)`: one AR process: the protocol's Repository party, its modules as
 * content-addressed files (blobs.ts) with their metadata, deployments and steps in SQLite
 * (store.ts), in the service host of @clefnet/service-host (sockets, routing through the directory
 * and the connect hook, events, health, start and stop) with the admin routes of routes/admin.ts.
 * Everything the protocol decides is the party's (steps 1-7 and the hand-over); this file keeps the
 * modules, starts deployments and stores what each step did (record.ts).
 */
import { join } from 'node:path';
import {
  ClefnetError,
  type KnownKeyServer,
  LIMITS,
  type Name,
  nodeBackend,
  ProtocolError,
  Repository,
  type StepOrder,
  systemRandom,
} from '@clefnet/protocol';
import {
  checkHostOptions,
  createServiceHost,
  hostOptionsOf,
  idleEphemeralKeys,
  type ListenAddress,
  type ServiceEventListener,
  type ServiceOptions,
} from '@clefnet/service-host';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { type BlobStore, openBlobStore } from './blobs.js';
import { deploymentId, recordOutcome } from './record.js';
import { adminRoutes } from './routes/admin.js';
import {
  type DeploymentRecord,
  type ModuleRecord,
  openSqliteRepositoryStore,
  type SqliteRepositoryStore,
} from './store.js';

/** The SQLite file inside `dataDir`. */
export const DB_FILE = 'repository.sqlite';
/** The folder of the module files inside `dataDir`. */
export const MODULES_DIR = 'modules';
/** A publish body: the largest program as base64 in JSON, with room for the name. */
const BODY_LIMIT = Math.ceil(LIMITS.PROGRAM_MAX_BYTES / 3) * 4 + 4096;
/** How often outstanding requests are checked for their timeout. */
const EXPIRE_EVERY_MS = 1000;

export interface RepositoryServiceOptions extends ServiceOptions {
  /** KServ1 with scope `clef` (steps 1-4) and KServ2 with scope `mint` (steps 5-6). */
  readonly keyServers: readonly KnownKeyServer[];
  /** KServ2's network location, passed on in the hand-over (PROTO-23). Default empty. */
  readonly mintLocation?: string;
  /** Folder of the SQLite file and the module files (created if missing). */
  readonly dataDir: string;
  /** A request without an answer after this long fails with TIMEOUT (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** M5 after step 4 (`published`, the default) or with M1 (`overlapped`): RepositoryOptions.stepOrder. */
  readonly stepOrder?: StepOrder;
}

export interface DeployCommand {
  readonly module: string;
  readonly anc: Name;
  readonly secApp?: Name;
}

export interface RepositoryService {
  readonly app: FastifyInstance;
  readonly party: Repository;
  readonly store: SqliteRepositoryStore;
  readonly blobs: BlobStore;
  /** Stores a module's bytes and binds `name` to their digest. */
  publish(name: string, program: Uint8Array): ModuleRecord;
  /** Starts steps 1-7 (and the hand-over if `secApp`) for a published module. */
  deploy(cmd: DeployCommand): DeploymentRecord;
  /** TB-2: every protocol event, frame, connection and host error, as it happens. */
  subscribe(listener: ServiceEventListener): () => void;
  start(): Promise<ListenAddress>;
  /** Stops accepting, closes every socket, the HTTP server and the database. Idempotent. */
  stop(): Promise<void>;
}

export function createRepositoryService(opts: RepositoryServiceOptions): RepositoryService {
  checkOptions(opts);
  const clock = opts.clock ?? Date.now;
  const logger = opts.logger ?? pino({ level: 'info' });
  const backend = opts.backend ?? nodeBackend;
  const random = opts.random ?? systemRandom;
  // Ephemeral keys made in idle time (closed by stop()).
  const keys = idleEphemeralKeys(backend, opts);
  const blobs = openBlobStore(join(opts.dataDir, MODULES_DIR), backend, random);
  const store = openSqliteRepositoryStore(join(opts.dataDir, DB_FILE), {
    ...(opts.synchronous === undefined ? {} : { synchronous: opts.synchronous }),
  });
  let party: Repository;
  try {
    // The party of an earlier process is gone with its outstanding requests.
    store.failUnfinished(clock());
    party = new Repository({
      triple: opts.identity,
      backend,
      random,
      ...keys,
      clock,
      profile: opts.profile ?? 'patent',
      keyServers: opts.keyServers,
      ...(opts.mintLocation === undefined ? {} : { mintLocation: opts.mintLocation }),
      ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
      ...(opts.stepOrder === undefined ? {} : { stepOrder: opts.stepOrder }),
    });
  } catch (e) {
    store.close();
    throw e;
  }

  const host = createServiceHost({
    name: opts.identity.name,
    // Every frame's outcome is recorded in the message's transaction (the gateway's).
    party: {
      receive: (bytes) => {
        const outcome = party.receive(bytes);
        recordOutcome(store, outcome, clock());
        return outcome;
      },
    },
    transaction: (fn) => store.transaction(fn),
    logger,
    clock,
    ...hostOptionsOf(opts),
    bodyLimit: BODY_LIMIT,
    storeOpen: () => store.isOpen,
    periodic: [
      {
        where: 'expire',
        everyMs: EXPIRE_EVERY_MS,
        run: () => {
          const outcome = party.expire();
          recordOutcome(store, outcome, clock());
          return outcome;
        },
      },
    ],
    routes: (app) =>
      adminRoutes(app, {
        token: opts.adminToken,
        publish,
        modules: () => store.modules(),
        deploy,
        deployment: (id) => store.deployment(id),
        deployments: () => store.deployments(),
      }),
    onStopped: () => {
      keys.ephemeral?.close();
      store.close();
    },
  });

  function publish(name: string, program: Uint8Array): ModuleRecord {
    if (program.length === 0) throw new ProtocolError('ENCODING_BAD_VALUE', 'a module has at least one byte');
    if (program.length > LIMITS.PROGRAM_MAX_BYTES)
      throw new ProtocolError('ENCODING_TOO_LARGE', `a module of ${program.length} bytes`);
    // The file first: a row never names a file that is not there.
    const digest = blobs.put(program);
    return store.publish(name, digest, program.length, clock());
  }

  function deploy(cmd: DeployCommand): DeploymentRecord {
    const module = store.module(cmd.module);
    if (module === undefined) throw new ProtocolError('UNKNOWN_NAME', `no module ${cmd.module}`);
    const program = blobs.get(module.digest);
    let id = 0;
    const outcome = host.operate('deploy', () => {
      id = store.createDeployment({
        module: module.name,
        digest: module.digest,
        anc: cmd.anc,
        secApp: cmd.secApp,
        at: clock(),
      });
      const o = party.deploy({
        anc: cmd.anc,
        program,
        id: deploymentId(id),
        ...(cmd.secApp === undefined ? {} : { secApp: cmd.secApp }),
      });
      // Refused outright (no key server for a step, a limit): nothing is stored.
      if (o.error !== undefined) store.dropDeployment(id);
      else recordOutcome(store, o, clock());
      return o;
    });
    if (outcome.error !== undefined) throw outcome.error;
    const record = store.deployment(id);
    if (record === undefined) throw new ClefnetError('BAD_STATE', `deployment ${id} is not stored`);
    return record;
  }

  return {
    app: host.app,
    party,
    store,
    blobs,
    publish,
    deploy,
    subscribe: (listener) => host.subscribe(listener),
    start: () => host.start(),
    stop: () => host.stop(),
  };
}

/** Checked before the store is opened: a bad option leaves nothing behind. */
function checkOptions(opts: RepositoryServiceOptions): void {
  if (!opts.keyServers.some((k) => k.scopes.includes('clef')))
    throw new ClefnetError('CONFIG_INVALID', 'keyServers must list a key server with scope clef (KServ1)');
  checkHostOptions(opts);
}
