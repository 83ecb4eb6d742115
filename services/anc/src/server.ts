/**
 * `createAncService(opts)`: one ANC process: the machine of node.ts (VM manager, VEs, firewall,
 * DTMs, agent, key service) in the service host of @clefnet/service-host. Frames that arrive on the
 * service's WebSocket enter the machine through its real NIC (node.fromNetwork); what the real
 * environment sends (step 9, the ASD channel, KEY-7) leaves through the host's links, addressed by
 * Name through the directory and the connect hook. Every trap, ring change, DTM transfer, console
 * line and agent action is a `machine` event on the host's stream (TB-2); protocol events are
 * `protocol` events as in every service.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type FirewallConfig, fileNvramBackend, type NvramBackend } from '@clefnet/emulator';
import {
  ClefnetError,
  type KnownKeyServer,
  type Name,
  nodeBackend,
  type Outcome,
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
import { AncNode, type NodeVe } from './node.js';
import { adminRoutes } from './routes/admin.js';
import { TrafficLog } from './traffic.js';

/** The real NVRAM's file inside `dataDir`. */
export const NVRAM_FILE = 'machine.nvram';
const NOTHING: Outcome = { send: [], deliver: [], events: [] };
/** Frames kept for GET /traffic. */
const TRAFFIC_KEEP = 65_536;

export interface AncServiceOptions extends ServiceOptions {
  /**
   * KServ1 with scopes `clef` and `mint` (step 9 and VE keys); any other (KServ2, scope `relay`) is
   * provisioned to the node VEs: a hand-over naming it needs no resolution of its Clef.
   */
  readonly keyServers: readonly KnownKeyServer[];
  /** In VE id order: exactly one `firewall`, at least one `node`. */
  readonly ves: readonly NodeVe[];
  readonly firewall: { readonly config: FirewallConfig; readonly confirmOutbound?: boolean };
  /** The ASD's Name: where node VEs' reports go. */
  readonly asd?: Name;
  /** Folder of the real NVRAM file (created if missing); without it the NVRAM is in memory. */
  readonly dataDir?: string;
  /** Real RAM (default 32 MiB). */
  readonly ramBytes?: number;
  /** Instructions per VE per turn (default 50,000). */
  readonly slice?: number;
  /** A request without an answer after this long fails with TIMEOUT (default 30 s). */
  readonly requestTimeoutMs?: number;
}

export interface AncService {
  readonly app: FastifyInstance;
  readonly node: AncNode;
  readonly traffic: TrafficLog;
  /** TB-2: protocol events, frames, connections, host errors and machine events. */
  subscribe(listener: ServiceEventListener): () => void;
  start(): Promise<ListenAddress>;
  /** Stops the machine, closes every socket and the HTTP server. Idempotent. */
  stop(): Promise<void>;
}

export function createAncService(opts: AncServiceOptions): AncService {
  checkOptions(opts);
  const clock = opts.clock ?? Date.now;
  const logger = opts.logger ?? pino({ level: 'info' });
  const backend = opts.backend ?? nodeBackend;
  const random = opts.random ?? systemRandom;
  // Ephemeral keys made in idle time (closed by stop()).
  const keys = idleEphemeralKeys(backend, opts);
  const keyServer = opts.keyServers.find((k) => k.scopes.includes('mint'))!;
  const traffic = new TrafficLog(TRAFFIC_KEEP, clock);
  let nvram: NvramBackend | undefined;
  if (opts.dataDir !== undefined) {
    mkdirSync(opts.dataDir, { recursive: true });
    nvram = fileNvramBackend(join(opts.dataDir, NVRAM_FILE), { fsync: true });
  }

  let host: ReturnType<typeof createServiceHost> | undefined;
  const node = new AncNode({
    machine: opts.identity,
    keyServer,
    otherKeyServers: opts.keyServers.filter((k) => k !== keyServer),
    ves: opts.ves,
    firewall: opts.firewall,
    backend,
    random,
    ...keys,
    clock,
    profile: opts.profile ?? 'patent',
    ...(opts.asd === undefined ? {} : { asd: opts.asd }),
    ...(nvram === undefined ? {} : { nvram }),
    ...(opts.ramBytes === undefined ? {} : { ramBytes: opts.ramBytes }),
    ...(opts.slice === undefined ? {} : { slice: opts.slice }),
    ...(opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs }),
    toNetwork: (o) => host?.operate('network', () => ({ send: [o], deliver: [], events: [] })),
    onTraffic: (f) => traffic.add(f),
    onEvent: (event) => host?.emit({ type: 'machine', at: clock(), event }),
    onProtocolEvent: (event) => host?.emit({ type: 'protocol', at: clock(), event }),
  });

  host = createServiceHost({
    name: opts.identity.name,
    party: {
      receive: (bytes) => {
        node.fromNetwork(bytes);
        return NOTHING;
      },
    },
    transaction: (fn) => fn(),
    logger,
    clock,
    ...hostOptionsOf(opts),
    bodyLimit: 4 << 20,
    storeOpen: () => true,
    routes: (app) => adminRoutes(app, { token: opts.adminToken, node, traffic }),
    onStopped: () => {
      keys.ephemeral?.close();
      node.stop();
    },
  });
  const h = host;

  return {
    app: h.app,
    node,
    traffic,
    subscribe: (listener) => h.subscribe(listener),
    async start() {
      const address = await h.start();
      node.start();
      return address;
    },
    // The machine first: nothing it sends then races the sockets' closing.
    stop: () => {
      node.stop();
      return h.stop();
    },
  };
}

function checkOptions(opts: AncServiceOptions): void {
  const ks1 = opts.keyServers.find((k) => k.scopes.includes('mint'));
  if (ks1 === undefined || !ks1.scopes.includes('clef'))
    throw new ClefnetError('CONFIG_INVALID', 'keyServers must list KServ1 with scopes clef and mint');
  checkHostOptions(opts);
}
