/**
 * `createAsdService(opts)`: one ASD process: the protocol's Asd party over a SQLite store, in the
 * service host of @clefnet/service-host (sockets, routing, events, health, start and stop) with the
 * admin routes of routes/admin.ts. Everything the protocol decides is the party's (which key server
 * may relay, whether the relayed message verifies, whether the application is revoked); this file
 * stores each served request and answers `ok <count>` as the reference world's ASD does.
 */
import { join } from 'node:path';
import {
  Asd,
  ClefnetError,
  type Clock,
  type KnownKeyServer,
  type Name,
  nodeBackend,
  systemRandom,
  utf8,
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
import { adminRoutes } from './routes/admin.js';
import { type AsdRevocation, openSqliteAsdStore, type SqliteAsdStore } from './store.js';

/** The SQLite file inside `dataDir`. */
export const DB_FILE = 'asd.sqlite';
/** Admin request bodies are one Name. */
const BODY_LIMIT = 16 * 1024;

export interface AsdServiceOptions extends ServiceOptions {
  /** The key servers that may relay to it (scope `relay`): KServ2 (TB-17). */
  readonly keyServers: readonly KnownKeyServer[];
  /** Folder of the SQLite file (created if missing). Required unless `store` is given. */
  readonly dataDir?: string;
  /** An open store to use instead of `dataDir` (tests put failures in it). Closed by stop(). */
  readonly store?: SqliteAsdStore;
  /** Default Date.now; also the `receivedAt` of records and the `revokedAt` of revocations. */
  readonly clock?: Clock;
}

export interface AsdService {
  readonly app: FastifyInstance;
  readonly party: Asd;
  readonly store: SqliteAsdStore;
  /** TB-2: every protocol event, frame, connection and host error, as it happens. */
  subscribe(listener: ServiceEventListener): () => void;
  start(): Promise<ListenAddress>;
  /** Stops accepting, closes every socket, the HTTP server and the database. Idempotent. */
  stop(): Promise<void>;
}

export function createAsdService(opts: AsdServiceOptions): AsdService {
  checkOptions(opts);
  const clock = opts.clock ?? Date.now;
  // Ephemeral keys made in idle time (closed by stop()).
  const backend = opts.backend ?? nodeBackend;
  const keys = idleEphemeralKeys(backend, opts);
  const logger = opts.logger ?? pino({ level: 'info' });
  const store =
    opts.store ??
    openSqliteAsdStore(join(opts.dataDir!, DB_FILE), {
      ...(opts.synchronous === undefined ? {} : { synchronous: opts.synchronous }),
    });
  let party: Asd;
  try {
    party = new Asd({
      triple: opts.identity,
      backend,
      random: opts.random ?? systemRandom,
      ...keys,
      clock,
      profile: opts.profile ?? 'patent',
      keyServers: opts.keyServers,
      // PROTO-26: revocations made here survive a restart.
      revoked: store.revocations().map((r) => r.app),
      // Runs inside the message's transaction (the gateway's): the record and the answer go together.
      serve: (app: Name, data: Uint8Array) => utf8(`ok ${store.append(app, data, clock())}`),
    });
  } catch (e) {
    store.close();
    throw e;
  }

  const host = createServiceHost({
    name: opts.identity.name,
    party,
    transaction: (fn) => store.transaction(fn),
    logger,
    clock,
    ...hostOptionsOf(opts),
    bodyLimit: BODY_LIMIT,
    storeOpen: () => store.isOpen,
    routes: (app, { operate }) =>
      adminRoutes(app, {
        token: opts.adminToken,
        records: (appName?: Name) => store.records(appName),
        revoke: (appName: Name) => {
          let row: AsdRevocation | undefined;
          const outcome = operate('revoke', () => {
            row = store.revoke(appName, clock());
            return party.revoke(appName);
          });
          if (outcome.error !== undefined) throw outcome.error;
          if (row === undefined)
            throw new ClefnetError('BAD_STATE', `${appName} is not stored after the revocation`);
          return row;
        },
        revocations: () => store.revocations(),
      }),
    onStopped: () => {
      keys.ephemeral?.close();
      store.close();
    },
  });

  return {
    app: host.app,
    party,
    store,
    subscribe: (listener) => host.subscribe(listener),
    start: () => host.start(),
    stop: () => host.stop(),
  };
}

/** Checked before the store is opened: a bad option leaves nothing behind. */
function checkOptions(opts: AsdServiceOptions): void {
  if (opts.dataDir === undefined && opts.store === undefined)
    throw new ClefnetError('CONFIG_INVALID', 'either dataDir or store is required');
  if (!opts.keyServers.some((k) => k.scopes.includes('relay')))
    throw new ClefnetError('CONFIG_INVALID', 'keyServers must list at least one key server with scope relay');
  checkHostOptions(opts);
}
