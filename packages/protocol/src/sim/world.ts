/**
 * The reference world of SPEC §18.6 (Fig. 14) in memory: KServ1, KServ2, AR, an ANC (machine and
 * authorised VE), the ASD, and the SecApp once handed over, provisioned as KEY-12 says and wired
 * through a {@link MemoryNetwork}. Everything is derived from one seed and a manual clock, so a run
 * replays byte for byte. Used by the reference-run tests, the attack tests, the benchmark and
 * `npm start`.
 */
import { utf8 } from '../codec.js';
import type { CryptoBackend } from '../crypto/backend.js';
import { seededRandom } from '../crypto/random.js';
import { ProtocolError } from '../errors.js';
import { type AuthorityTriple, generateTriple } from '../identity.js';
import { type Name, parseName } from '../names.js';
import { AncMachine, AncVe } from '../parties/anc.js';
import { Asd } from '../parties/asd.js';
import type { KnownKeyServer } from '../parties/core.js';
import { KeyServer } from '../parties/key-server.js';
import { Repository, type StepOrder } from '../parties/repository.js';
import { SecApp } from '../parties/secapp.js';
import { createProfile, type Profile, type ProfileName } from '../profile.js';
import { createMemoryKeyServerStore } from '../stores.js';
import { MemoryNetwork } from './network.js';

export interface WorldNames {
  readonly ks1: Name;
  readonly ks2: Name;
  readonly ar: Name;
  readonly machine: Name;
  readonly ve: Name;
  readonly secApp: Name;
  readonly asd: Name;
}

export const DEFAULT_NAMES: WorldNames = {
  ks1: parseName('ks1.clefnet.test'),
  ks2: parseName('ks2.clefnet.test'),
  ar: parseName('ar.clefnet.test'),
  machine: parseName('anc1.clefnet.test'),
  ve: parseName('ve1.anc1.clefnet.test'),
  secApp: parseName('billing.ar.clefnet.test'),
  asd: parseName('asd.clefnet.test'),
};

export interface WorldOptions {
  readonly profile: ProfileName | Profile;
  readonly backend: CryptoBackend;
  /** Everything random in the world comes from this seed. */
  readonly seed?: string;
  /** Clock start, ms since the epoch (default 2026-01-01T00:00:00Z). */
  readonly startTime?: number;
  /**
   * Step-8 model of the VE, overriding the profile's `closedModel` rule: `open`, or `closed` with
   * the AR as the only listed sender. Default: as the profile says.
   */
  readonly senderModel?: 'open' | 'closed';
  /**
   * TB-11 / AMB-3: `issued` (default) gives the VE its own limited-use triple from KServ1 (KEY-7);
   * `machine` is the alternative reading in which Name-ANC is the machine's own Name and Key-ANC
   * the machine key, so no VE key is requested.
   */
  readonly veIdentity?: 'issued' | 'machine';
  /** Keep the record of frames, events and deliveries on the network (default true; see NetworkOptions). */
  readonly record?: boolean;
  /** The AR and the VE keep the Clefs they obtain (PartyOptions.clefCache; default false). */
  readonly clefCache?: boolean;
  /**
   * KEY-12 provisioning. `minimal` (default): KServ2 resolves the AR's Clef at KServ1 (PROTO-19's
   * "may first have to obtain") and the VE resolves KServ2's for the hand-over. `direct`: KServ2
   * holds the AR's access pair and the VE KServ2's, so neither asks.
   */
  readonly provisioning?: 'minimal' | 'direct';
  /** The AR's step order (RepositoryOptions.stepOrder; default by profile). */
  readonly stepOrder?: StepOrder;
}

/** A record the ASD keeps per request (the billing data of [0113]). */
export interface AsdRecord {
  readonly app: Name;
  readonly data: Uint8Array;
  readonly at: number;
}

export class World {
  readonly net: MemoryNetwork;
  readonly names: WorldNames;
  readonly profile: Profile;
  readonly backend: CryptoBackend;
  readonly triples: Readonly<Record<'ks1' | 'ks2' | 'ar' | 'machine' | 'asd', AuthorityTriple>>;
  readonly ks1: KeyServer;
  readonly ks2: KeyServer;
  readonly ar: Repository;
  readonly machine: AncMachine;
  readonly asd: Asd;
  /** The VE, once KServ1 issued its limited-use triple. */
  ve: AncVe | undefined;
  /** The VE triple as issued (an attacker script may "leak" it). */
  veTriple: AuthorityTriple | undefined;
  /** The application, once its triple was handed over. */
  secApp: SecApp | undefined;
  /** Its triple as handed over (an attack script may use it as the application would). */
  secAppTriple: AuthorityTriple | undefined;
  /** Programs the VE installed, with their bytes, in order. */
  readonly programs: { readonly sender: Name; readonly program: Uint8Array }[] = [];
  /** Answers the application received over the ASD channel. */
  readonly channelAnswers: { readonly peer: Name; readonly data: Uint8Array }[] = [];
  /** The ASD's stored records. */
  readonly asdRecords: AsdRecord[] = [];
  private now: number;
  private readonly seed: string;
  readonly veIdentity: 'issued' | 'machine';
  private readonly clefCache: boolean;
  private readonly direct: boolean;

  constructor(opts: WorldOptions) {
    this.net = new MemoryNetwork({ record: opts.record ?? true });
    this.clefCache = opts.clefCache ?? false;
    this.direct = opts.provisioning === 'direct';
    this.veIdentity = opts.veIdentity ?? 'issued';
    this.names =
      this.veIdentity === 'machine' ? { ...DEFAULT_NAMES, ve: DEFAULT_NAMES.machine } : DEFAULT_NAMES;
    const base = typeof opts.profile === 'object' ? opts.profile : createProfile(opts.profile);
    this.profile =
      opts.senderModel === undefined || (opts.senderModel === 'closed') === base.rules.closedModel
        ? base
        : { ...base, name: 'custom', rules: { ...base.rules, closedModel: opts.senderModel === 'closed' } };
    this.backend = opts.backend;
    this.seed = opts.seed ?? 'clefnet';
    this.now = opts.startTime ?? Date.UTC(2026, 0, 1);
    const provision = seededRandom(`${this.seed}/provision`);
    const n = this.names;
    const t = (name: Name) => generateTriple(this.backend, provision, name);
    this.triples = { ks1: t(n.ks1), ks2: t(n.ks2), ar: t(n.ar), machine: t(n.machine), asd: t(n.asd) };
    const pair = (k: AuthorityTriple, scopes: KnownKeyServer['scopes']): KnownKeyServer => ({
      name: k.name,
      clef: k.clef,
      scopes,
    });
    const ks1Pair = pair(this.triples.ks1, ['clef', 'mint']);

    this.ks1 = new KeyServer({
      ...this.common('ks1'),
      store: createMemoryKeyServerStore(),
      serves: ['clef', 'mint'],
      // VE keys are re-issued only to the machine that owns them (KEY-9), in both profiles: TB-16's
      // overwrite policy is KServ2's, and at KServ1 it would let anyone take over any Name.
      nameOwnership: { policy: 'owner-only' },
    });
    this.ks2 = new KeyServer({
      ...this.common('ks2'),
      store: createMemoryKeyServerStore(),
      serves: ['mint', 'relay'],
      keyServers: [pair(this.triples.ks1, ['clef'])],
    });
    this.ar = new Repository({
      ...this.common('ar'),
      clefCache: opts.clefCache ?? false,
      ...(opts.stepOrder === undefined ? {} : { stepOrder: opts.stepOrder }),
      keyServers: [pair(this.triples.ks1, ['clef']), pair(this.triples.ks2, ['mint'])],
      mintLocation: 'ws://127.0.0.1:0/ks2',
    });
    this.machine = new AncMachine({ ...this.common('machine'), keyServers: [ks1Pair] });
    this.asd = new Asd({
      ...this.common('asd'),
      keyServers: [pair(this.triples.ks2, ['relay'])],
      serve: (app, data) => {
        this.asdRecords.push({ app, data: data.slice(), at: this.now });
        const count = this.asdRecords.filter((r) => r.app === app).length;
        return utf8(`ok ${count}`);
      },
    });

    // KEY-12: configuration enters access pairs at the key servers.
    for (const k of [this.triples.ar, this.triples.ks2, this.triples.machine]) this.ks1.register(k);
    this.ks2.register(this.triples.asd);
    if (this.direct) this.ks2.register(this.triples.ar);

    for (const p of [this.ks1, this.ks2, this.ar, this.machine, this.asd]) this.net.attach(p.name, p);
    this.net.onDeliver((party, d) => {
      if (d.kind === 've-key') this.installVe(d.triple);
      else if (d.kind === 'program') this.programs.push({ sender: d.sender, program: d.program });
      else if (d.kind === 'secapp') this.startSecApp(d.triple, d.keyServer);
      else if (d.kind === 'channel-data') this.channelAnswers.push({ peer: d.peer, data: d.data });
      void party;
    });
  }

  /** The manual clock. */
  clock = (): number => this.now;

  advance(ms: number): void {
    this.now += ms;
  }

  /**
   * KEY-6..8 / TB-12: the machine obtains the VE's limited-use triple from KServ1. Under the
   * `machine` reading of TB-11 the VE simply holds the machine triple.
   */
  issueVeKey(): void {
    if (this.veIdentity === 'machine') {
      this.installVe(this.triples.machine);
      return;
    }
    this.net.post(this.machine.name, this.machine.requestVeKey(this.names.ve));
    this.net.run();
  }

  /** Steps 1-9 and the hand-over for one program. Returns the deployment id. */
  deploy(program: Uint8Array, withSecApp = true, id?: string): string {
    const outcome = this.ar.deploy({
      anc: this.names.ve,
      program,
      ...(withSecApp ? { secApp: this.names.secApp } : {}),
      ...(id === undefined ? {} : { id }),
    });
    this.net.post(this.ar.name, outcome);
    this.net.run();
    const d = outcome.events.find((e) => e.type === 'deployment');
    return d?.deployment ?? '';
  }

  /** PROTO-25: the application sends one request to the ASD through KServ2. */
  channel(data: Uint8Array): void {
    if (this.secApp === undefined) {
      throw new ProtocolError('BAD_STATE', 'no application has been handed its triple yet');
    }
    this.net.post(this.secApp.name, this.secApp.request(this.names.asd, data));
    this.net.run();
  }

  private common(who: 'ks1' | 'ks2' | 'ar' | 'machine' | 'asd') {
    return {
      triple: this.triples[who],
      backend: this.backend,
      random: seededRandom(`${this.seed}/${who}`),
      clock: this.clock,
      profile: this.profile,
    };
  }

  private installVe(triple: AuthorityTriple): void {
    this.veTriple = triple;
    if (this.ve !== undefined) {
      this.ve.rekey(triple);
      return;
    }
    this.ve = new AncVe({
      triple,
      clefCache: this.clefCache,
      backend: this.backend,
      random: seededRandom(`${this.seed}/ve`),
      clock: this.clock,
      profile: this.profile,
      keyServers: [
        { name: this.triples.ks1.name, clef: this.triples.ks1.clef, scopes: ['clef'] },
        ...(this.direct
          ? [{ name: this.triples.ks2.name, clef: this.triples.ks2.clef, scopes: ['relay' as const] }]
          : []),
      ],
      senders: [this.names.ar],
    });
    this.net.attach(triple.name, this.ve);
  }

  private startSecApp(
    triple: AuthorityTriple,
    keyServer: { name: Name; clef: AuthorityTriple['clef'] },
  ): void {
    this.secAppTriple = triple;
    this.secApp = new SecApp({
      triple,
      backend: this.backend,
      random: seededRandom(`${this.seed}/secapp`),
      clock: this.clock,
      profile: this.profile,
      keyServers: [{ ...keyServer, scopes: ['relay'] }],
    });
    this.net.attach(triple.name, this.secApp);
  }
}

export function createWorld(opts: WorldOptions): World {
  return new World(opts);
}
