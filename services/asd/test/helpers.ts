/**
 * Test fixtures of the ASD: fixed triples, the service on 127.0.0.1 port 0 with its SQLite file in a
 * temp folder, and the channel of TB-17 driven from the test: KServ2 is the protocol's KeyServer
 * party in-process (services never import each other), wired to the ASD's WebSocket with
 * service-host's PartyLink, and a SecApp party whose frames the test hands to KServ2 and back.
 */
import {
  type AuthorityTriple,
  type Binding,
  createMemoryKeyServerStore,
  DEFAULT_NAMES,
  type Delivery,
  generateTriple,
  KeyServer,
  type KnownKeyServer,
  type Name,
  nodeBackend,
  type ProfileName,
  parseName,
  SecApp,
  seededRandom,
} from '@clefnet/protocol';
import { tempDir as hostTempDir, PartyLink, silent, until } from '@clefnet/service-host/testing';
import {
  type AsdService,
  type AsdServiceOptions,
  createAsdService,
  type ListenAddress,
  type ServiceEvent,
} from '../src/index.js';

export { httpJson, manualClock, PartyLink, silent, T0, until } from '@clefnet/service-host/testing';

export const TOKEN = 'test-admin-token-0123456789abcdef';
export const AUTH = { authorization: `Bearer ${TOKEN}` };
export const N = { ...DEFAULT_NAMES, billing: parseName('billing.ar.clefnet.test') };

/** Fixed triples: the same bytes in every run. */
function fixedTriples(): Record<'ks2' | 'asd' | 'billing' | 'other', AuthorityTriple> {
  const r = seededRandom('asd-tests/provision');
  const t = (name: Name) => generateTriple(nodeBackend, r, name);
  return {
    ks2: t(N.ks2),
    asd: t(N.asd),
    billing: t(N.billing),
    other: t(parseName('counter.ar.clefnet.test')),
  };
}
export const TRIPLES = fixedTriples();

export const known = (t: AuthorityTriple, scopes: KnownKeyServer['scopes']): KnownKeyServer => ({
  name: t.name,
  clef: t.clef,
  scopes,
});

export function tempDir(): { path: string; remove: () => void } {
  return hostTempDir('clefnet-asd-');
}

export interface Running {
  readonly service: AsdService;
  readonly address: ListenAddress;
  /** Every event the service emitted, in order. */
  readonly events: ServiceEvent[];
}

/** The ASD knowing KServ2 as its relay; started on 127.0.0.1 port 0. */
export async function startAsd(opts: Partial<AsdServiceOptions> & { dataDir?: string }): Promise<Running> {
  const service = createAsdService({
    identity: TRIPLES.asd,
    keyServers: [known(TRIPLES.ks2, ['relay'])],
    adminToken: TOKEN,
    logger: silent,
    random: seededRandom('asd-tests/asd'),
    heartbeatMs: 0,
    closeGraceMs: 500,
    ...opts,
  });
  const events: ServiceEvent[] = [];
  service.subscribe((e) => events.push(e));
  const address = await service.start();
  return { service, address, events };
}

/**
 * KServ2 in-process (a KeyServer party serving `mint` and `relay`, the ASD's access pair registered,
 * the applications' bindings stored as if it had minted them for the AR) and SecApp parties.
 */
export class Channel {
  readonly ks2: KeyServer;
  readonly link: PartyLink;
  private readonly store = createMemoryKeyServerStore();
  private readonly apps = new Map<Name, { app: SecApp; deliveries: Delivery[] }>();

  constructor(
    readonly profile: ProfileName,
    readonly clock: () => number,
  ) {
    const store = this.store;
    this.ks2 = new KeyServer({
      triple: TRIPLES.ks2,
      backend: nodeBackend,
      random: seededRandom('asd-tests/ks2'),
      clock,
      profile,
      keyServers: [],
      store,
      serves: ['mint', 'relay'],
    });
    this.ks2.register(TRIPLES.asd);
    for (const t of [TRIPLES.billing, TRIPLES.other])
      store.put({ name: t.name, clef: t.clef, owner: N.ar, createdAt: clock(), revokedAt: null });
    this.link = new PartyLink(this.ks2);
    for (const t of [TRIPLES.billing, TRIPLES.other]) {
      const app = new SecApp({
        triple: t,
        backend: nodeBackend,
        random: seededRandom(`asd-tests/secapp/${t.name}`),
        clock,
        profile,
        keyServers: [known(TRIPLES.ks2, ['relay'])],
      });
      this.apps.set(t.name, { app, deliveries: [] });
    }
  }

  /** KServ2's binding of `name`. */
  ks2Binding(name: Name): Binding | undefined {
    return this.store.get(name);
  }

  /** The SecApp party of `name`. */
  appParty(name: Name): SecApp {
    const a = this.apps.get(name);
    if (a === undefined) throw new Error(`no application ${name}`);
    return a.app;
  }

  /** KServ2 dials the ASD (as its directory would). */
  async connect(asdWs: string): Promise<void> {
    await this.link.connect(N.asd, asdWs);
  }

  /** The application `app` sends `data` to the ASD; resolves to what it gets back. */
  async request(app: Name, data: Uint8Array, timeoutMs = 5000): Promise<Delivery> {
    const a = this.apps.get(app);
    if (a === undefined) throw new Error(`no application ${app}`);
    const before = a.deliveries.length;
    const open = a.app.request(N.asd, data);
    if (open.error !== undefined) throw open.error;
    for (const o of open.send) this.link.post(this.ks2.receive(o.bytes));
    return until(
      () => {
        this.pump();
        return a.deliveries[before];
      },
      timeoutMs,
      `an answer to ${app}`,
    );
  }

  /** Frames KServ2 addressed to an application go to that application's party. */
  private pump(): void {
    for (const o of this.link.unrouted.splice(0)) {
      const a = this.apps.get(o.to);
      if (a !== undefined) a.deliveries.push(...a.app.receive(o.bytes).deliver);
    }
  }

  close(): void {
    this.link.close();
  }
}
