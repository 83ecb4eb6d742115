/**
 * Test fixtures: fixed triples, a manual clock, services on 127.0.0.1 port 0 with SQLite files in
 * a temp folder, and protocol parties connected over real WebSockets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AuthorityTriple,
  DEFAULT_NAMES,
  type Delivery,
  generateTriple,
  type KnownKeyServer,
  type Name,
  nodeBackend,
  type Outbound,
  type Outcome,
  Party,
  type PartyOptions,
  type Payload,
  type ProfileName,
  ProtocolError,
  parseName,
  seededRandom,
} from '@clefnet/protocol';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import {
  createKeyServerService,
  type KeyServerService,
  type KeyServerServiceOptions,
  type ListenAddress,
  type ServiceEvent,
} from '../src/index.js';

export const TOKEN = 'test-admin-token-0123456789abcdef';
export const AUTH = { authorization: `Bearer ${TOKEN}` };
export const N = { ...DEFAULT_NAMES, probe: parseName('probe.clefnet.test') };
/** 2026-01-01T00:00:00Z, the reference world's start. */
export const T0 = Date.UTC(2026, 0, 1);

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

/** A clock that moves only when told (the services and the clients share it). */
export function manualClock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

export function tempDir(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'clefnet-keyserver-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export const silent = pino({ level: 'silent' });

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

/** A client party on real WebSockets: frames to a connected Name go on its socket, others are kept. */
export class PartyLink {
  readonly deliveries: Delivery[] = [];
  readonly errors: ProtocolError[] = [];
  readonly unrouted: Outbound[] = [];
  readonly received: Uint8Array[] = [];
  private readonly sockets = new Map<Name, WebSocket>();

  constructor(readonly party: Party) {}

  async connect(name: Name, url: string): Promise<WebSocket> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('message', (data: Buffer) => {
      const bytes = new Uint8Array(data);
      this.received.push(bytes);
      this.post(this.party.receive(bytes));
    });
    this.sockets.set(name, ws);
    return ws;
  }

  post(outcome: Outcome): Outcome {
    this.deliveries.push(...outcome.deliver);
    if (outcome.error !== undefined) this.errors.push(outcome.error);
    for (const o of outcome.send) {
      const ws = this.sockets.get(o.to);
      if (ws === undefined) this.unrouted.push(o);
      else ws.send(o.bytes);
    }
    return outcome;
  }

  close(): void {
    for (const ws of this.sockets.values()) ws.close();
  }
}

/** Waits until `probe` returns something other than undefined (polling; fails after `ms`). */
export async function until<T>(probe: () => T | undefined, ms = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function httpJson(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(url, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
}
