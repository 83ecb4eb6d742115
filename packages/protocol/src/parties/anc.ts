/**
 * The ANC (PROTO-21, PROTO-22, PROTO-23, KEY-6..KEY-12, TB-11, TB-12), in two parties:
 *
 * - {@link AncMachine}: the real environment. It holds the machine triple {Name-M, Clef-M, Key-M}
 *   (NVRAM, KEY-1) and, when a VE traps for a key (KEY-6), asks KServ1 for a limited-use VE triple
 *   with a message secured by Key-M (KEY-7, TB-12). The triple goes to the host, which hands it to
 *   the VE (KEY-8); Key-M never leaves this party (KEY-10).
 * - {@link AncVe}: the authorised VE that holds the limited-use Key-ANC. The firewall hands it every
 *   packet sealed to Clef-ANC (step 8); it opens it, checks the sender Name against its list in the
 *   closed model, obtains Clef-AR from KServ1 (step 9, M9a/M9b), verifies, and installs the program;
 *   the triple hand-over is verified the same way and delivered with KServ2's access pair.
 */
import { toHex } from '../codec.js';
import type { Envelope } from '../envelope.js';
import { ProtocolError } from '../errors.js';
import type { Frame } from '../frame.js';
import { type AuthorityTriple, type Clef, checkTriple, clefId } from '../identity.js';
import { type BodyOf, decodeHeader, type Payload } from '../messages.js';
import type { Name } from '../names.js';
import { createProfile } from '../profile.js';
import { checkSender } from '../rules/closed-model.js';
import { PushOrder, precheckUnverified } from '../rules/freshness.js';
import { type Outcome, Party, type PartyOptions, type Pending } from './core.js';

export class AncMachine extends Party {
  /** KEY-7 / TB-12: `< Name-M ‖ <New(Name-VE)=?>Key-M >Clef-KServ1`. */
  requestVeKey(ve: Name): Outcome {
    return this.run(() => {
      const server = [...this.keyServers.values()].find((k) => k.scopes.includes('mint'));
      if (server === undefined)
        throw new ProtocolError('CONFIG_INVALID', 'the machine knows no key server that issues VE keys');
      this.ask({
        to: server,
        scope: 'mint',
        body: { type: 'new-query', subject: ve },
        step: 'VEKEY-REQ',
        expect: 'triple',
        answerStep: 'VEKEY-ANS',
        subject: ve,
        ctx: ve,
      });
    });
  }

  protected onMessage(_frame: Frame, env: Envelope): void {
    throw new ProtocolError('BAD_STATE', `the machine takes no unsolicited messages (from ${env.sender})`);
  }

  protected onResolved(): void {
    throw new ProtocolError('BAD_STATE', 'the machine resolves no senders');
  }

  protected override onAnswer(p: Pending, answer: Payload): void {
    if (answer.body.type !== 'triple')
      throw new ProtocolError('BAD_STATE', `unexpected answer ${answer.tag}`);
    const triple = answer.body.triple;
    checkTriple(this.backend, triple);
    this.event('ve-key-issued', { subject: triple.name, clef: clefId(triple.clef) });
    this.deliver({ kind: 've-key', ve: p.ctx as Name, triple });
  }
}

export interface AncVeOptions extends PartyOptions {
  /** Authorised sender Names for the closed model (rule `closedModel`; ignored in the open model). */
  readonly senders?: readonly Name[];
  /** Installed programs remembered for inspection (default 64, oldest dropped). */
  readonly historySize?: number;
}

export interface InstalledProgram {
  readonly sender: Name;
  readonly digest: string;
  readonly bytes: number;
  readonly at: number;
}

interface HandoverCtx {
  readonly sender: Name;
  readonly body: BodyOf<'handover'>;
}

export class AncVe extends Party {
  private readonly senders: ReadonlySet<Name>;
  /** Freshness rule: pushes from one sender are accepted in issue order only (no rollback). */
  private readonly order = new PushOrder();
  private readonly historySize: number;
  private readonly history: InstalledProgram[] = [];

  constructor(opts: AncVeOptions) {
    super(closedModelShare(opts));
    this.senders = new Set(opts.senders ?? []);
    this.historySize = opts.historySize ?? 64;
  }

  /** Programs installed so far, oldest first. */
  get installed(): readonly InstalledProgram[] {
    return this.history;
  }

  /** The VE's current Clef (changes with {@link rekey}). */
  get clef(): Clef {
    return this.triple.clef;
  }

  /** KEY-9: the VE's key pair changes without the applications knowing. */
  rekey(triple: AuthorityTriple): void {
    if (triple.name !== this.name)
      throw new ProtocolError('CONFIG_INVALID', `a new triple for ${triple.name}, not ${this.name}`);
    checkTriple(this.backend, triple);
    this.triple = triple;
  }

  /** Step 8: opened by the firewall hand-off; the sender's Name is revealed but not yet proven. */
  protected onMessage(frame: Frame, env: Envelope): void {
    checkSender(this.profile.rules, this.senders, env.sender);
    if (this.profile.rules.freshness) {
      const header = decodeHeader(this.profile.rules, env.signed.payload);
      precheckUnverified(this.profile, this.replay, env.sender, header, this.clock());
      this.order.check(this.profile, env.sender, header);
    }
    this.resolveAndPark(env.sender, frame, env, 'M9a');
  }

  /** Step 9: Clef-AR obtained; verify and install. */
  protected onResolved(_subject: Name, clef: Clef, _frame: Frame, env: Envelope): void {
    const p = this.accept(env, clef, ['program', 'handover']);
    this.order.check(this.profile, env.sender, p.header);
    this.order.accept(this.profile, env.sender, p.header);
    const body = p.body;
    if (body.type === 'program') {
      const digest = toHex(this.backend.sha256(body.program));
      const record: InstalledProgram = {
        sender: env.sender,
        digest,
        bytes: body.program.length,
        at: this.clock(),
      };
      this.history.push(record);
      if (this.history.length > this.historySize) this.history.shift();
      this.event('program-installed', { peer: env.sender, digest, bytes: body.program.length });
      this.deliver({ kind: 'program', sender: env.sender, program: body.program, digest });
      return;
    }
    checkTriple(this.backend, body.triple);
    // The SecApp will talk to KServ2. A key server this VE was provisioned with (KEY-12) is known
    // by its access pair; any other is resolved the same way as the AR (steps 1-4).
    const provisioned = this.keyServers.get(body.keyServer);
    if (provisioned !== undefined) {
      this.handedOver({ sender: env.sender, body }, provisioned.clef);
      return;
    }
    this.ask<HandoverCtx>({
      to: this.clefServer(),
      scope: 'clef',
      body: { type: 'clef-query', subject: body.keyServer },
      step: 'RESOLVE-REQ',
      expect: 'clef-answer',
      answerStep: 'RESOLVE-ANS',
      subject: body.keyServer,
      ctx: { sender: env.sender, body },
    });
  }

  protected override onAnswer(p: Pending, answer: Payload): void {
    const ctx = p.ctx as HandoverCtx;
    if (answer.body.type !== 'clef-answer')
      throw new ProtocolError('BAD_STATE', `unexpected answer ${answer.tag}`);
    this.handedOver(ctx, answer.body.clef);
  }

  /** PROTO-23: the SecApp triple with its key server's access pair, to the host. */
  private handedOver(ctx: HandoverCtx, keyServerClef: Clef): void {
    this.event('handover-received', {
      peer: ctx.sender,
      subject: ctx.body.triple.name,
      clef: clefId(ctx.body.triple.clef),
    });
    this.deliver({
      kind: 'secapp',
      sender: ctx.sender,
      triple: ctx.body.triple,
      keyServer: { name: ctx.body.keyServer, clef: keyServerClef },
      location: ctx.body.location,
    });
  }
}

/** The replay cache's default capacity (core.ts). */
const REPLAY_CAPACITY = 65_536;

/**
 * In the closed model only listed senders reach the replay cache (step 8 checks the list first),
 * so the per-sender share, which keeps one sender from crowding out the others, may be the whole
 * cache: under `hardened`, the default share of 4096 within a 30 s validity refused a single AR
 * pushing more than about 58 programs a second. An explicit `replayPerSender` stays.
 */
function closedModelShare(opts: AncVeOptions): AncVeOptions {
  if (opts.replayPerSender !== undefined || (opts.senders ?? []).length === 0) return opts;
  const profile = typeof opts.profile === 'object' ? opts.profile : createProfile(opts.profile ?? 'patent');
  if (!profile.rules.closedModel) return opts;
  return { ...opts, replayPerSender: opts.replayCapacity ?? REPLAY_CAPACITY };
}

export function createAncMachine(opts: PartyOptions): AncMachine {
  return new AncMachine(opts);
}

export function createAncVe(opts: AncVeOptions): AncVe {
  return new AncVe(opts);
}
