/**
 * `createKeyServerService(opts)`: one key server process (KServ1 or KServ2, by `serves`): the
 * protocol's KeyServer party over a SQLite store, in the service host of @clefnet/service-host
 * (sockets, routing, events, health, start and stop) with the admin routes of routes/admin.ts.
 * Everything the protocol decides is the party's; this file only wires it to storage and the host.
 */
import { join } from 'node:path';
import {
  type AccessPair,
  type AclEntry,
  type Binding,
  ClefnetError,
  KeyServer,
  type KeyServerJob,
  type KnownKeyServer,
  type Name,
  nodeBackend,
  type Rules,
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
import { adminRoutes } from './routes/admin.js';
import { openSqliteKeyServerStore, type SqliteKeyServerStore } from './store.js';

/** The SQLite file inside `dataDir`. */
export const DB_FILE = 'keyserver.sqlite';
/** Admin request bodies are one access pair or one Name. */
const BODY_LIMIT = 16 * 1024;

export interface KeyServerServiceOptions extends ServiceOptions {
  /** Its jobs: KServ1 `['clef', 'mint']`, KServ2 `['mint', 'relay']` (protocol.md §1). */
  readonly serves: readonly KeyServerJob[];
  /** Key servers it knows; one with scope `clef` is asked for unknown requesters (PROTO-19). */
  readonly keyServers?: readonly KnownKeyServer[];
  /** This server's creation policy over the profile's (TB-16; KServ1: `{ policy: 'owner-only' }`). */
  readonly nameOwnership?: Partial<Rules['nameOwnership']>;
  /** Clef-query ACL (TB-16; default: any registered Name may learn any Clef). */
  readonly acl?: readonly AclEntry[];
  /** Folder of the SQLite file (created if missing). Required unless `store` is given. */
  readonly dataDir?: string;
  /** An open store to use instead of `dataDir` (tests put failures in it). Closed by stop(). */
  readonly store?: SqliteKeyServerStore;
  /** Outstanding requests (upstream lookups, relays) fail after this long (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** How often timed-out requests are failed (default 1000 ms). */
  readonly expireEveryMs?: number;
}

export interface KeyServerService {
  readonly app: FastifyInstance;
  readonly party: KeyServer;
  readonly store: SqliteKeyServerStore;
  /** TB-2: every protocol event, frame, connection and host error, as it happens. */
  subscribe(listener: ServiceEventListener): () => void;
  start(): Promise<ListenAddress>;
  /** Stops accepting, closes every socket, the HTTP server and the database. Idempotent. */
  stop(): Promise<void>;
}

export function createKeyServerService(opts: KeyServerServiceOptions): KeyServerService {
  checkOptions(opts);
  const clock = opts.clock ?? Date.now;
  // Ephemeral keys made in idle time (closed by stop()).
  const backend = opts.backend ?? nodeBackend;
  const keys = idleEphemeralKeys(backend, opts);
  const logger = opts.logger ?? pino({ level: 'info' });
  const store =
    opts.store ??
    openSqliteKeyServerStore(join(opts.dataDir!, DB_FILE), {
      ...(opts.synchronous === undefined ? {} : { synchronous: opts.synchronous }),
    });
  let party: KeyServer;
  try {
    party = new KeyServer({
      triple: opts.identity,
      backend,
      random: opts.random ?? systemRandom,
      ...keys,
      clock,
      profile: opts.profile ?? 'patent',
      keyServers: opts.keyServers ?? [],
      store,
      serves: opts.serves,
      ...(opts.acl === undefined ? {} : { acl: opts.acl }),
      ...(opts.nameOwnership === undefined ? {} : { nameOwnership: opts.nameOwnership }),
      ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
    });
  } catch (e) {
    store.close();
    throw e;
  }

  const stored = (name: Name): Binding => {
    const b = store.get(name);
    if (b === undefined) throw new ClefnetError('BAD_STATE', `${name} is not stored after the operation`);
    return b;
  };

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
        register: (pair: AccessPair) => {
          operate('register', () => party.register(pair));
          return stored(pair.name);
        },
        revoke: (name: Name) => {
          const outcome = operate('revoke', () => party.revoke(name));
          if (outcome.error !== undefined) throw outcome.error;
          return stored(name);
        },
        list: () => store.list(),
      }),
    periodic: [{ where: 'expire', everyMs: opts.expireEveryMs ?? 1000, run: () => party.expire() }],
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
function checkOptions(opts: KeyServerServiceOptions): void {
  if (opts.dataDir === undefined && opts.store === undefined)
    throw new ClefnetError('CONFIG_INVALID', 'either dataDir or store is required');
  checkHostOptions(opts);
}
