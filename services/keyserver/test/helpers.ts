/**
 * Test fixtures of the key server: fixed triples, services on 127.0.0.1 port 0 with SQLite files in
 * a temp folder, a probe requester. The generic ones (a manual clock, a client party over real
 * WebSockets, polling, JSON over HTTP) come from @clefnet/service-host/testing, re-exported here.
 */
import {
  type AuthorityTriple,
  DEFAULT_NAMES,
  generateTriple,
  type KnownKeyServer,
  type Name,
  nodeBackend,
  type Outcome,
  Party,
  type PartyOptions,
  type Payload,
  type ProfileName,
  ProtocolError,
  parseName,
  seededRandom,
} from '@clefnet/protocol';
import { tempDir as hostTempDir, silent } from '@clefnet/service-host/testing';
import {
  createKeyServerService,
  type KeyServerService,
  type KeyServerServiceOptions,
  type ListenAddress,
  type ServiceEvent,
} from '../src/index.js';

export {
  httpJson,
  manualClock,
  PartyLink,
  silent,
  T0,
  until,
} from '@clefnet/service-host/testing';

export const TOKEN = 'test-admin-token-0123456789abcdef';
export const AUTH = { authorization: `Bearer ${TOKEN}` };
export const N = { ...DEFAULT_NAMES, probe: parseName('probe.clefnet.test') };
/** Fixed triples: the same bytes in every run. */
export function fixedTriples(): Record<
  'ks1' | 'ks2' | 'ar' | 'machine' | 'asd' | 've' | 'probe',
  AuthorityTriple
> {
  const r = seededRandom('keyserver-tests/provision');
  const t = (name: Name) => generateTriple(nodeBackend, r, name);
  return {
    ks1: t(N.ks1),
    ks2: t(N.ks2),
    ar: t(N.ar),
    machine: t(N.machine),
    asd: t(N.asd),
    ve: t(N.ve),
    probe: t(N.probe),
  };
}
export const TRIPLES = fixedTriples();

export function tempDir(): { path: string; remove: () => void } {
  return hostTempDir('clefnet-keyserver-');
}

export interface Running {
  readonly service: KeyServerService;
  readonly address: ListenAddress;
  /** Every event the service emitted, in order. */
  readonly events: ServiceEvent[];
}

/** KServ1 (`clef`, `mint`, owner-only) unless told otherwise; started on 127.0.0.1 port 0. */
export async function startKeyServer(
  opts: Partial<KeyServerServiceOptions> & { dataDir?: string; clock?: () => number },
): Promise<Running> {
  const service = createKeyServerService({
    identity: TRIPLES.ks1,
    serves: ['clef', 'mint'],
    nameOwnership: { policy: 'owner-only' },
    adminToken: TOKEN,
    logger: silent,
    random: seededRandom(`keyserver-tests/${opts.identity?.name ?? 'ks1'}`),
    heartbeatMs: 0,
    closeGraceMs: 500,
    ...opts,
  });
  const events: ServiceEvent[] = [];
  service.subscribe((e) => events.push(e));
  const address = await service.start();
  return { service, address, events };
}

/** KServ2 as the reference world sets it up: `mint`, `relay`, knows KServ1 for Clefs. */
export function ks2Options(profile: ProfileName): Partial<KeyServerServiceOptions> {
  return {
    identity: TRIPLES.ks2,
    serves: ['mint', 'relay'],
    profile,
    nameOwnership: {},
    keyServers: [{ name: TRIPLES.ks1.name, clef: TRIPLES.ks1.clef, scopes: ['clef'] }],
  };
}

export const known = (t: AuthorityTriple, scopes: KnownKeyServer['scopes']): KnownKeyServer => ({
  name: t.name,
  clef: t.clef,
  scopes,
});

/**
 * A requester that asks exactly what a test tells it: a Clef query (steps 1-3) or a creation
 * (steps 5-6), and keeps every verified answer.
 */
export class Probe extends Party {
  readonly answers: Payload[] = [];

  clefQuery(server: KnownKeyServer, subject: Name): Outcome {
    return this.run(() => {
      this.ask({
        to: server,
        scope: 'clef',
        body: { type: 'clef-query', subject },
        step: 'M1',
        expect: 'clef-answer',
        answerStep: 'M3',
        subject,
        ctx: null,
      });
    });
  }

  newQuery(server: KnownKeyServer, subject: Name): Outcome {
    return this.run(() => {
      this.ask({
        to: server,
        scope: 'mint',
        body: { type: 'new-query', subject },
        step: 'M5',
        expect: 'triple',
        answerStep: 'M6',
        subject,
        ctx: null,
      });
    });
  }

  protected onMessage(): void {
    throw new ProtocolError('BAD_STATE', 'a probe takes no requests');
  }

  protected onResolved(): void {
    throw new ProtocolError('BAD_STATE', 'a probe resolves no senders');
  }

  protected override onAnswer(_p: unknown, answer: Payload): void {
    this.answers.push(answer);
  }
}

export function probeAs(
  triple: AuthorityTriple,
  keyServers: readonly KnownKeyServer[],
  clock: () => number,
  profile: ProfileName = 'patent',
  extra: Partial<PartyOptions> = {},
): Probe {
  return new Probe({
    triple,
    backend: nodeBackend,
    random: seededRandom(`keyserver-tests/client/${triple.name}`),
    clock,
    profile,
    keyServers,
    ...extra,
  });
}
