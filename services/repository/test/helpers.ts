/**
 * Test fixtures of the AR: fixed triples, the service on 127.0.0.1 port 0 with its SQLite file and
 * module files in a temp folder, and its peers as protocol parties in-process (services never
 * import each other), each served on its own real WebSocket server by service-host's
 * createServiceHost (memory state, no-op transaction): KServ1 and KServ2 as KeyServer parties, the
 * ANC as an AncVe party holding a VE triple KServ1 issued to the ANC machine (KEY-7).
 */
import {
  AncMachine,
  AncVe,
  type AuthorityTriple,
  createMemoryKeyServerStore,
  DEFAULT_NAMES,
  generateTriple,
  KeyServer,
  type KnownKeyServer,
  type Name,
  nodeBackend,
  type ProfileName,
  seededRandom,
} from '@clefnet/protocol';
import type { ListenAddress } from '@clefnet/service-host';
import {
  type HostedParty,
  hostParty,
  tempDir as hostTempDir,
  httpJson,
  silent,
} from '@clefnet/service-host/testing';
import {
  createRepositoryService,
  type RepositoryService,
  type RepositoryServiceOptions,
  type ServiceEvent,
} from '../src/index.js';

export {
  httpJson,
  manualClock,
  silent,
  startRecordingProxy,
  T0,
  until,
} from '@clefnet/service-host/testing';

export const TOKEN = 'test-admin-token-0123456789abcdef';
export const AUTH = { authorization: `Bearer ${TOKEN}` };
export const N = DEFAULT_NAMES;

function fixedTriples(): Record<'ks1' | 'ks2' | 'ar' | 'machine', AuthorityTriple> {
  const r = seededRandom('repository-tests/provision');
  const t = (name: Name) => generateTriple(nodeBackend, r, name);
  return { ks1: t(N.ks1), ks2: t(N.ks2), ar: t(N.ar), machine: t(N.machine) };
}
export const TRIPLES = fixedTriples();

export const known = (t: AuthorityTriple, scopes: KnownKeyServer['scopes']): KnownKeyServer => ({
  name: t.name,
  clef: t.clef,
  scopes,
});

export function tempDir(): { path: string; remove: () => void } {
  return hostTempDir('clefnet-repository-');
}

export interface Running {
  readonly service: RepositoryService;
  readonly address: ListenAddress;
  readonly events: ServiceEvent[];
}

/** The AR knowing KServ1 (`clef`) and KServ2 (`mint`); started on 127.0.0.1 port 0. */
export async function startRepository(
  opts: Partial<RepositoryServiceOptions> & { dataDir: string },
): Promise<Running> {
  const service = createRepositoryService({
    identity: TRIPLES.ar,
    keyServers: [known(TRIPLES.ks1, ['clef']), known(TRIPLES.ks2, ['mint'])],
    adminToken: TOKEN,
    logger: silent,
    random: seededRandom('repository-tests/ar'),
    heartbeatMs: 0,
    closeGraceMs: 500,
    ...opts,
  });
  const events: ServiceEvent[] = [];
  service.subscribe((e) => events.push(e));
  const address = await service.start();
  return { service, address, events };
}

/** Polls the admin API until deployment `id` is `sent` or `failed`; returns its row. */
export async function finished(ar: Running, id: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = await httpJson('GET', `${ar.address.http}/admin/deployments/${id}`, undefined, AUTH);
    const body = r.body as Record<string, unknown>;
    if (body.state === 'sent' || body.state === 'failed') return body;
    if (Date.now() > deadline) throw new Error(`deployment ${id} did not finish: ${JSON.stringify(body)}`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** KServ1, KServ2 and the ANC's VE on real sockets, provisioned as KEY-12 says. */
export interface Peers {
  readonly ks1: HostedParty<KeyServer>;
  readonly ks2: HostedParty<KeyServer>;
  readonly ve: HostedParty<AncVe>;
  /** Name -> ws URL, for the AR's directory. */
  readonly directory: Record<string, string>;
  stop(): Promise<void>;
}

export async function startPeers(profile: ProfileName, clock: () => number): Promise<Peers> {
  const common = (who: string) => ({
    backend: nodeBackend,
    random: seededRandom(`repository-tests/${who}`),
    clock,
    profile,
  });
  const ks1 = new KeyServer({
    ...common('ks1'),
    triple: TRIPLES.ks1,
    store: createMemoryKeyServerStore(),
    serves: ['clef', 'mint'],
    nameOwnership: { policy: 'owner-only' },
  });
  const ks2 = new KeyServer({
    ...common('ks2'),
    triple: TRIPLES.ks2,
    store: createMemoryKeyServerStore(),
    serves: ['mint', 'relay'],
    keyServers: [known(TRIPLES.ks1, ['clef'])],
  });
  for (const t of [TRIPLES.ar, TRIPLES.ks2, TRIPLES.machine]) ks1.register(t);

  // KEY-7: the machine asks KServ1 for the VE's limited-use triple (in memory, before any socket).
  const machine = new AncMachine({
    ...common('machine'),
    triple: TRIPLES.machine,
    keyServers: [known(TRIPLES.ks1, ['clef', 'mint'])],
  });
  let veTriple: AuthorityTriple | undefined;
  for (const q of machine.requestVeKey(N.ve).send)
    for (const a of ks1.receive(q.bytes).send)
      for (const d of machine.receive(a.bytes).deliver) if (d.kind === 've-key') veTriple = d.triple;
  if (veTriple === undefined) throw new Error('KServ1 issued no VE triple');
  const ve = new AncVe({
    ...common('ve'),
    triple: veTriple,
    keyServers: [known(TRIPLES.ks1, ['clef'])],
    senders: [N.ar],
  });

  const h1 = await hostParty(ks1, clock);
  const h2 = await hostParty(ks2, clock, { [N.ks1]: h1.address.ws });
  const hv = await hostParty(ve, clock, { [N.ks1]: h1.address.ws });
  return {
    ks1: h1,
    ks2: h2,
    ve: hv,
    directory: { [N.ks1]: h1.address.ws, [N.ks2]: h2.address.ws, [N.ve]: hv.address.ws },
    stop: async () => {
      for (const h of [hv, h2, h1]) await h.host.stop();
    },
  };
}
