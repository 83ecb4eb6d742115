/**
 * `createServiceHost(opts)`: the process around a party, the same for every service. It owns the
 * event stream, the WebSocket gateway (one message -> one transaction -> sends after commit), the
 * Fastify app (health, readiness, /ws, the service's routes), periodic party operations (expiry),
 * listening and the graceful stop. The service brings the party, its store's transaction and its
 * admin routes; everything the protocol decides stays in the party.
 */
import {
  type AuthorityTriple,
  ClefnetError,
  type Clock,
  type CryptoBackend,
  type EphemeralPool,
  type Name,
  type Outcome,
  type ProfileName,
  parseName,
  type RandomSource,
} from '@clefnet/protocol';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createEventHub, hostErrorEvent, type ServiceEvent, type ServiceEventListener } from './events.js';
import { buildHostApp, WS_PATH } from './http/app.js';
import { type EventStreams, eventRoutes } from './http/events.js';
import { type ConnectHook, createGateway, directConnect, type FrameEndpoint } from './ws/gateway.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  /** Base URL of the HTTP API. */
  readonly http: string;
  /** URL of the WebSocket endpoint. */
  readonly ws: string;
}

/** What a service may do through the host outside a message (its admin routes use it). */
export interface HostOperations {
  /**
   * Runs a party operation (register, revoke, ...) in one transaction and sends what it produced;
   * a host failure is a `host-error` event (`where`), then thrown.
   */
  operate(where: string, op: () => Outcome): Outcome;
}

/** A party operation run every `everyMs` through {@link HostOperations.operate} while listening. */
export interface PeriodicOperation {
  /** The `where` of its host errors, e.g. `expire`. */
  readonly where: string;
  readonly everyMs: number;
  readonly run: () => Outcome;
}

export interface ServiceHostOptions {
  /** The service's Name: the `name` of every event's log line. */
  readonly name: Name;
  readonly party: FrameEndpoint;
  /** The store's transaction: a message's or operation's changes are stored whole or not at all. */
  readonly transaction: <T>(fn: () => T) => T;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port; start() says which). */
  readonly port?: number;
  /** Name -> WebSocket URL of the other services this one sends to (TB-15). */
  readonly directory?: Readonly<Record<string, string>>;
  /** Opens every outgoing WebSocket (default {@link directConnect}); point it at a proxy. */
  readonly connect?: ConnectHook;
  /** WebSocket ping interval; a socket that missed a ping is dropped (default 30 s; 0 = off). */
  readonly heartbeatMs?: number;
  /** How long stop() waits for sockets to close before it cuts them (default 2000 ms). */
  readonly closeGraceMs?: number;
  /** Readiness: is the store open. */
  readonly storeOpen: () => boolean;
  /** The service's own routes (its admin API). */
  readonly routes?: (app: FastifyInstance, ops: HostOperations) => void;
  /** HTTP body limit (default 16 KiB). */
  readonly bodyLimit?: number;
  /** Run while listening (a party's `expire()`). */
  readonly periodic?: readonly PeriodicOperation[];
  /** The admin token: with it, `GET /admin/events` streams the events (http/events.ts). */
  readonly eventsToken?: string;
  /** Called by stop() after the sockets and the HTTP server are closed (close the store here). */
  readonly onStopped?: () => void | Promise<void>;
}

export interface ServiceHost extends HostOperations {
  readonly app: FastifyInstance;
  /** TB-2: every protocol event, frame, connection and host error, as it happens. */
  subscribe(listener: ServiceEventListener): () => void;
  /** Puts a service's own event (e.g. `machine`) on the stream and in the log. */
  emit(event: ServiceEvent): void;
  start(): Promise<ListenAddress>;
  /** Stops accepting, closes every socket and the HTTP server, then calls `onStopped`. Idempotent. */
  stop(): Promise<void>;
}

export function createServiceHost(opts: ServiceHostOptions): ServiceHost {
  const { clock, logger } = opts;
  const events = createEventHub(logger.child({ name: opts.name }));
  const gateway = createGateway({
    party: opts.party,
    transaction: opts.transaction,
    events,
    clock,
    directory: new Map(Object.entries(opts.directory ?? {}).map(([n, url]) => [parseName(n), url])),
    connect: opts.connect ?? directConnect,
    heartbeatMs: opts.heartbeatMs ?? 30_000,
  });

  const operate = (where: string, op: () => Outcome): Outcome => {
    let outcome: Outcome;
    try {
      outcome = opts.transaction(op);
    } catch (e) {
      events.emit(hostErrorEvent(clock(), where, e));
      throw e;
    }
    gateway.dispatch(outcome);
    return outcome;
  };

  let state: 'created' | 'listening' | 'stopping' | 'stopped' = 'created';
  let streams: EventStreams | undefined;
  const app = buildHostApp({
    logger,
    readiness: () => ({
      storeOpen: opts.storeOpen(),
      listening: state === 'listening',
      stopping: state === 'stopping' || state === 'stopped',
    }),
    acceptingSockets: () => state === 'listening',
    onSocket: (ws, remote) => gateway.accept(ws, remote),
    routes: (a: FastifyInstance) => {
      if (opts.eventsToken !== undefined) streams = eventRoutes(a, events, opts.eventsToken);
      opts.routes?.(a, { operate });
    },
    ...(opts.bodyLimit === undefined ? {} : { bodyLimit: opts.bodyLimit }),
  });

  const timers: NodeJS.Timeout[] = [];
  let stopping: Promise<void> | undefined;

  return {
    app,
    operate,
    subscribe: (listener) => events.subscribe(listener),
    emit: (event) => events.emit(event),
    async start() {
      if (state !== 'created') throw new ClefnetError('BAD_STATE', `cannot start a service that is ${state}`);
      const host = opts.host ?? '127.0.0.1';
      await app.listen({ host, port: opts.port ?? 0 });
      state = 'listening';
      for (const p of opts.periodic ?? []) {
        const timer = setInterval(() => {
          try {
            operate(p.where, p.run);
          } catch {
            // Already an event; the next tick tries again.
          }
        }, p.everyMs);
        timer.unref();
        timers.push(timer);
      }
      const address = app.server.address();
      const port = typeof address === 'object' && address !== null ? address.port : (opts.port ?? 0);
      const base = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      return { host, port, http: `http://${base}`, ws: `ws://${base}${WS_PATH}` };
    },
    stop() {
      stopping ??= (async () => {
        state = 'stopping';
        for (const t of timers.splice(0)) clearInterval(t);
        streams?.closeAll();
        try {
          await gateway.close(opts.closeGraceMs ?? 2000);
          await app.close();
        } finally {
          // The service's own resources (its store, its ephemeral keys) are released even when
          // closing the server failed; stop() then rejects with that failure.
          try {
            await opts.onStopped?.();
          } finally {
            state = 'stopped';
          }
        }
      })();
      return stopping;
    },
  };
}

/** The options every service takes besides its own (its party's and its store's). */
export interface ServiceOptions {
  /** The service's authority triple (KEY-12 provisioning; e.g. from tripleFromJson). */
  readonly identity: AuthorityTriple;
  /** Default `patent`. */
  readonly profile?: ProfileName;
  /** Commit durability of its SQLite store (see SqliteOptions). Default `full`. */
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
  readonly connect?: ConnectHook;
  /** Default the node:crypto backend (same bytes as noble, faster). */
  readonly backend?: CryptoBackend;
  /** Default Date.now. */
  readonly clock?: Clock;
  /** Default the system CSPRNG. */
  readonly random?: RandomSource;
  /**
   * Where the party's sealed messages take their ephemeral keys. Default: a pool filled in idle
   * time over the system CSPRNG (idleEphemeralKeys), or, when `random` is given, that source as each
   * message is sealed. The service closes the pool when it stops: give each service its own.
   */
  readonly ephemeral?: EphemeralPool;
  /** Default pino at `info` on stdout. */
  readonly logger?: Logger;
  /** WebSocket ping interval; a socket that missed a ping is dropped (default 30 s; 0 = off). */
  readonly heartbeatMs?: number;
  /** How long stop() waits for sockets to close before it cuts them (default 2000 ms). */
  readonly closeGraceMs?: number;
}

/**
 * What a service passes on to its host from its {@link ServiceOptions} as they are: the listen
 * address, the directory and the connect hook, the heartbeat, the stop grace, and the admin token
 * as the event stream's.
 */
export function hostOptionsOf(
  opts: ServiceOptions,
): Pick<
  ServiceHostOptions,
  'host' | 'port' | 'directory' | 'connect' | 'heartbeatMs' | 'closeGraceMs' | 'eventsToken'
> {
  return {
    ...(opts.host === undefined ? {} : { host: opts.host }),
    ...(opts.port === undefined ? {} : { port: opts.port }),
    ...(opts.directory === undefined ? {} : { directory: opts.directory }),
    ...(opts.connect === undefined ? {} : { connect: opts.connect }),
    ...(opts.heartbeatMs === undefined ? {} : { heartbeatMs: opts.heartbeatMs }),
    ...(opts.closeGraceMs === undefined ? {} : { closeGraceMs: opts.closeGraceMs }),
    eventsToken: opts.adminToken,
  };
}
