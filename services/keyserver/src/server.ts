/**
 * `createKeyServerService(opts)`: one key server process (KServ1 or KServ2, by `serves`): the
 * protocol's KeyServer party over a SQLite store, behind the Fastify app of app.ts, with a logger,
 * a listener and a graceful stop. Everything the protocol decides is the party's; this file only
 * wires it to storage, sockets and time.
 */
import { join } from 'node:path';
import {
  type AccessPair,
  type AclEntry,
  type AuthorityTriple,
  type Binding,
  ClefnetError,
  type Clock,
  type CryptoBackend,
  KeyServer,
  type KeyServerJob,
  type KnownKeyServer,
  LIMITS,
  type Name,
  nodeBackend,
  type Outcome,
  type ProfileName,
  parseName,
  type RandomSource,
  type Rules,
  systemRandom,
} from '@clefnet/protocol';
import type { FastifyInstance } from 'fastify';
import { type Logger, pino } from 'pino';
import { WebSocket } from 'ws';
import { buildApp, WS_PATH } from './app.js';
import { createEventHub, hostErrorEvent, type ServiceEventListener } from './events.js';
import { openSqliteKeyServerStore, type SqliteKeyServerStore } from './store.js';
import { createGateway } from './ws/gateway.js';

/** The SQLite file inside `dataDir`. */
export const DB_FILE = 'keyserver.sqlite';

export interface KeyServerServiceOptions {
  /** This server's authority triple (KEY-12 provisioning; e.g. from tripleFromJson). */
  readonly identity: AuthorityTriple;
  /** Its jobs: KServ1 `['clef', 'mint']`, KServ2 `['mint', 'relay']` (protocol.md §1). */
  readonly serves: readonly KeyServerJob[];
  /** Key servers it knows; one with scope `clef` is asked for unknown requesters (PROTO-19). */
  readonly keyServers?: readonly KnownKeyServer[];
  /** Default `patent`. */
  readonly profile?: ProfileName;
  /** This server's creation policy over the profile's (TB-16; KServ1: `{ policy: 'owner-only' }`). */
  readonly nameOwnership?: Partial<Rules['nameOwnership']>;
  /** Clef-query ACL (TB-16; default: any registered Name may learn any Clef). */
  readonly acl?: readonly AclEntry[];
  /** Folder of the SQLite file (created if missing). Required unless `store` is given. */
  readonly dataDir?: string;
  /** An open store to use instead of `dataDir` (tests put failures in it). Closed by stop(). */
  readonly store?: SqliteKeyServerStore;
  /** Commit durability (see SqliteStoreOptions). Default `full`. */
  readonly synchronous?: 'full' | 'normal';
  /** Bearer token of the admin API, at least 16 characters. */
  readonly adminToken: string;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port; start() says which). */
  readonly port?: number;
  /** Name -> WebSocket URL of the other services this one sends to (TB-15). */
  readonly directory?: Readonly<Record<string, string>>;
  /** Opens every outgoing WebSocket; point it at a proxy to sit on the hop. */
  readonly connect?: (url: string, peer: Name) => WebSocket;
  /** Default the node:crypto backend (same bytes as noble, faster). */
  readonly backend?: CryptoBackend;
  /** Default Date.now. */
  readonly clock?: Clock;
  /** Default the system CSPRNG. */
  readonly random?: RandomSource;
  /** Default pino at `info` on stdout. */
  readonly logger?: Logger;
  /** Outstanding requests (upstream lookups, relays) fail after this long (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** How often timed-out requests are failed (default 1000 ms). */
  readonly expireEveryMs?: number;
  /** WebSocket ping interval; a socket that missed a ping is dropped (default 30 s; 0 = off). */
  readonly heartbeatMs?: number;
  /** How long stop() waits for sockets to close before it cuts them (default 2000 ms). */
  readonly closeGraceMs?: number;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  /** Base URL of the HTTP API. */
  readonly http: string;
  /** URL of the WebSocket endpoint. */
  readonly ws: string;
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
  const logger = opts.logger ?? pino({ level: 'info' });
  const events = createEventHub(logger.child({ name: opts.identity.name }));
  const store =
    opts.store ??
    openSqliteKeyServerStore(join(opts.dataDir!, DB_FILE), {
      ...(opts.synchronous === undefined ? {} : { synchronous: opts.synchronous }),
    });
  let party: KeyServer;
  try {
    party = new KeyServer({
      triple: opts.identity,
      backend: opts.backend ?? nodeBackend,
      random: opts.random ?? systemRandom,
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

  const gateway = createGateway({
    party,
    transaction: (fn) => store.transaction(fn),
    events,
    clock,
    directory: new Map(Object.entries(opts.directory ?? {}).map(([n, url]) => [parseName(n), url])),
    connect:
      opts.connect ??
      ((url) => new WebSocket(url, { maxPayload: LIMITS.FRAME_MAX_BYTES, perMessageDeflate: false })),
    heartbeatMs: opts.heartbeatMs ?? 30_000,
  });

  /** A party operation outside a message, in one transaction; a host failure is an event, then thrown. */
  const operate = (where: string, op: () => Outcome): Outcome => {
    let outcome: Outcome;
    try {
      outcome = store.transaction(op);
    } catch (e) {
      events.emit(hostErrorEvent(clock(), where, e));
      throw e;
    }
    gateway.dispatch(outcome);
    return outcome;
  };
  const stored = (name: Name): Binding => {
    const b = store.get(name);
    if (b === undefined) throw new ClefnetError('BAD_STATE', `${name} is not stored after the operation`);
    return b;
  };

  let state: 'created' | 'listening' | 'stopping' | 'stopped' = 'created';
  const app = buildApp({
    logger,
    admin: {
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
    },
    readiness: () => ({
      storeOpen: store.isOpen,
      listening: state === 'listening',
      stopping: state === 'stopping' || state === 'stopped',
    }),
    acceptingSockets: () => state === 'listening',
    onSocket: (ws, remote) => gateway.accept(ws, remote),
  });

  let expireTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;

  return {
    app,
    party,
    store,
    subscribe: (listener) => events.subscribe(listener),
    async start() {
      if (state !== 'created') throw new ClefnetError('BAD_STATE', `cannot start a service that is ${state}`);
      const host = opts.host ?? '127.0.0.1';
      await app.listen({ host, port: opts.port ?? 0 });
      state = 'listening';
      expireTimer = setInterval(() => {
        try {
          operate('expire', () => party.expire());
        } catch {
          // Already an event; the next tick tries again.
        }
      }, opts.expireEveryMs ?? 1000);
      expireTimer.unref();
      const address = app.server.address();
      const port = typeof address === 'object' && address !== null ? address.port : (opts.port ?? 0);
      const base = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      return { host, port, http: `http://${base}`, ws: `ws://${base}${WS_PATH}` };
    },
    stop() {
      stopping ??= (async () => {
        state = 'stopping';
        if (expireTimer !== undefined) clearInterval(expireTimer);
        await gateway.close(opts.closeGraceMs ?? 2000);
        await app.close();
        store.close();
        state = 'stopped';
      })();
      return stopping;
    },
  };
}

function checkOptions(opts: KeyServerServiceOptions): void {
  const bad = (message: string) => new ClefnetError('CONFIG_INVALID', message);
  if (opts.dataDir === undefined && opts.store === undefined)
    throw bad('either dataDir or store is required');
  if (typeof opts.adminToken !== 'string' || opts.adminToken.length < 16)
    throw bad('adminToken must be a string of at least 16 characters');
  if (/[\s]/.test(opts.adminToken)) throw bad('adminToken must not contain whitespace');
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw bad(`port ${port} is not 0..65535`);
  for (const [name, url] of Object.entries(opts.directory ?? {})) {
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      throw bad(`directory entry for ${name} is not a URL: ${url}`);
    }
    if (protocol !== 'ws:' && protocol !== 'wss:')
      throw bad(`directory entry for ${name} is not ws:// or wss://`);
  }
}
