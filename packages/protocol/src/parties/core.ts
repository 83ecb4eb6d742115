/**
 * What every party shares: building and sending messages, receiving frames, outstanding requests
 * and how answers are paired with them, resolving an unknown sender's Clef at a key server
 * (steps 1-4 / 9) while its messages wait, and the checks every receiver runs.
 *
 * Parties are transport-free and synchronous: `receive(bytes)` and each operation return an
 * {@link Outcome} holding the frames to send (addressed by Name), the events (TB-2) and what is
 * delivered to the host (programs, keys). Clock and randomness are injected (STYLE: determinism).
 * A party never throws for anything a peer sent: the outcome carries the ProtocolError instead.
 */
import { toHex } from '../codec.js';
import type { Clock, CryptoBackend, RandomSource } from '../crypto/backend.js';
import type { EphemeralPool, EphemeralSource } from '../crypto/hpke.js';
import {
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  openEnvelope,
  recover,
  sealEnvelope,
  sign,
} from '../envelope.js';
import { type ErrorCode, ProtocolError } from '../errors.js';
import { decodeFrame, encodeFrame, type Frame } from '../frame.js';
import { type AccessPair, type AuthorityTriple, type Clef, clefId } from '../identity.js';
import { LIMITS } from '../limits.js';
import {
  type Body,
  type BodyOf,
  type BodyType,
  buildHeader,
  decodeHeader,
  decodePayload,
  encodePayload,
  type Header,
  type Payload,
  payload,
} from '../messages.js';
import type { Name } from '../names.js';
import { createProfile, type Profile, type ProfileName } from '../profile.js';
import { bindingKey, checkSubject, isBoundAnswer } from '../rules/answer-binding.js';
import { checkFreshness, ReplayCache } from '../rules/freshness.js';
import { checkNames } from '../rules/names-in-signature.js';
import { checkServer, type ServerScope } from '../rules/server-scope.js';
import { acceptUnsignedError, errorFrameKind } from '../rules/signed-errors.js';
import type { ProtocolEvent, Step } from './events.js';

/** A key server this party knows: its access pair (provisioned, KEY-12) and what it is trusted for. */
export interface KnownKeyServer extends AccessPair {
  readonly scopes: readonly ServerScope[];
}

export interface PartyOptions {
  /** This party's authority triple {Name, Clef, Key}. */
  readonly triple: AuthorityTriple;
  readonly backend: CryptoBackend;
  readonly random: RandomSource;
  /**
   * Where sealed messages' ephemeral keys come from: a pool made in idle time (services, over
   * `systemRandom`), else `random` as each message is sealed (the default; replayable runs).
   */
  readonly ephemeral?: EphemeralPool;
  readonly clock: Clock;
  /** `patent` (default) or `hardened`, or a custom profile from createProfile(). */
  readonly profile?: Profile | ProfileName;
  /** Known key servers; the first with scope `clef` answers this party's Clef queries. */
  readonly keyServers?: readonly KnownKeyServer[];
  /** An outstanding request fails after this long (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** At most this many outstanding requests (default 1024). */
  readonly maxPending?: number;
  /** At most this many messages waiting for their sender's Clef (default 256). */
  readonly maxParked?: number;
  /** Replay cache capacity (freshness rule; default 65536). */
  readonly replayCapacity?: number;
  /** Live replay-cache entries one sender may hold (default 4096). */
  readonly replayPerSender?: number;
  /**
   * Keep the Clefs obtained in steps 1-4 / 9 and use them again instead of asking (default false:
   * every transaction asks, as the patent's steps read). A cached Clef is used until the expiry of
   * the answer that gave it (its validity period, `hardened`), or for ever when the answer has none
   * (`patent`): this is what lets ATK-15 (a) and (b) use a revoked key.
   */
  readonly clefCache?: boolean;
}

export interface Outbound {
  /** Addressee, for the router (TB-15). */
  readonly to: Name;
  readonly bytes: Uint8Array;
  readonly step: Step;
}

/** What a party hands to its host (never logged: may hold secrets or program bytes). */
export type Delivery =
  | { readonly kind: 've-key'; readonly ve: Name; readonly triple: AuthorityTriple }
  | { readonly kind: 'program'; readonly sender: Name; readonly program: Uint8Array; readonly digest: string }
  | {
      readonly kind: 'secapp';
      readonly sender: Name;
      readonly triple: AuthorityTriple;
      readonly keyServer: AccessPair;
      readonly location: string;
    }
  | { readonly kind: 'channel-data'; readonly peer: Name; readonly data: Uint8Array }
  | {
      /** A request of this party ended without an answer: error answer, timeout, refused resolution. */
      readonly kind: 'request-failed';
      readonly step: Step;
      readonly peer: Name;
      readonly subject: Name | undefined;
      readonly code: ErrorCode;
      /** The code the peer sent, for REMOTE_ERROR. */
      readonly remote: string | undefined;
      /** The deployment the request belonged to (the AR's requests). */
      readonly deployment?: string;
    }
  | {
      readonly kind: 'deployment';
      readonly id: string;
      readonly state: 'sent' | 'failed';
      readonly code?: ErrorCode;
    };

export interface Outcome {
  readonly send: Outbound[];
  readonly events: ProtocolEvent[];
  readonly deliver: Delivery[];
  /** Set when the input was refused; the same error is also an event of type `rejected`. */
  error?: ProtocolError;
}

/** A request waiting for its answer. */
export interface Pending<C = unknown> {
  readonly key: string;
  readonly corr: string;
  /** Whom it went to. */
  readonly peer: Name;
  readonly peerClef: Clef;
  /** Scope the answering key server needs (server-scope rule); null when the peer is not a key server. */
  readonly scope: ServerScope | null;
  readonly expect: BodyType;
  readonly step: Step;
  readonly answerStep: Step;
  readonly subject: Name | undefined;
  readonly createdAt: number;
  readonly ctx: C;
}

interface Resolution {
  readonly parked: { frame: Frame; env: Envelope }[];
}

export interface RequestSpec<C> {
  readonly to: AccessPair;
  readonly scope: ServerScope | null;
  readonly body: Body;
  readonly step: Step;
  readonly expect: BodyType;
  readonly answerStep: Step;
  readonly subject?: Name;
  readonly ctx: C;
  readonly sender?: AuthorityTriple;
}

const RESOLVE = Symbol('resolve');
const UNSIGNED_ERROR_RULES = createProfile('patent').rules;
type ResolveCtx = { readonly [RESOLVE]: Resolution };

export abstract class Party {
  readonly name: Name;
  readonly profile: Profile;
  protected triple: AuthorityTriple;
  protected readonly backend: CryptoBackend;
  protected readonly random: RandomSource;
  protected readonly ephemeral: EphemeralSource;
  protected readonly clock: Clock;
  protected readonly keyServers: ReadonlyMap<Name, KnownKeyServer>;
  protected readonly replay: ReplayCache;
  private readonly pending = new Map<string, Pending>();
  private readonly resolving = new Map<Name, Pending<ResolveCtx>>();
  private parkedCount = 0;
  private readonly requestTimeoutMs: number;
  private readonly clefCache: boolean;
  private readonly clefs = new Map<Name, { readonly clef: Clef; readonly until: number }>();
  private readonly maxPending: number;
  private readonly maxParked: number;
  private batch: Outcome = { send: [], events: [], deliver: [] };

  constructor(opts: PartyOptions) {
    this.triple = opts.triple;
    this.name = opts.triple.name;
    this.backend = opts.backend;
    this.random = opts.random;
    this.ephemeral = opts.ephemeral ?? opts.random;
    this.clock = opts.clock;
    this.profile = typeof opts.profile === 'object' ? opts.profile : createProfile(opts.profile ?? 'patent');
    this.keyServers = new Map((opts.keyServers ?? []).map((k) => [k.name, k]));
    this.replay = new ReplayCache(opts.replayCapacity ?? 65_536, opts.replayPerSender ?? 4096);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.maxPending = opts.maxPending ?? 1024;
    this.maxParked = opts.maxParked ?? 256;
    this.clefCache = opts.clefCache ?? false;
  }

  /** This party's own Clef (public). */
  clefOfSelf(): Clef {
    return this.triple.clef;
  }

  /** Number of outstanding requests (for state assertions and leak checks). */
  get pendingCount(): number {
    return this.pending.size;
  }

  get parkedMessages(): number {
    return this.parkedCount;
  }

  /** Takes one frame from the wire. Never throws for bad input. */
  receive(bytes: Uint8Array): Outcome {
    return this.run(() => {
      const frame = decodeFrame(bytes);
      if (frame.kind === 'SEALED') {
        const env = openEnvelope(this.backend, this.triple.key, frame.body);
        this.event('received', { peer: env.sender, bytes: bytes.length });
        if (this.isAnswerFrom(env.sender)) this.onAnswerEnvelope(frame, env);
        else this.onUnsolicited(frame, env);
      } else if (frame.kind === 'SIGNED') {
        const env = decodeEnvelope(frame.body);
        this.event('received', { peer: env.sender, bytes: bytes.length, step: 'ERR' });
        this.onAnswerEnvelope(frame, env);
      } else {
        this.onUnsignedError(frame);
      }
    });
  }

  /** Fails every request older than the timeout. */
  expire(): Outcome {
    return this.run(() => {
      const now = this.clock();
      for (const p of [...this.pending.values()]) {
        if (now - p.createdAt >= this.requestTimeoutMs) {
          this.pending.delete(p.key);
          this.failPending(p, new ProtocolError('TIMEOUT', `no answer from ${p.peer}`, { peer: p.peer }));
        }
      }
    });
  }

  // ---- hooks for the concrete parties ----

  /** A message that answers nothing (a request, a push). */
  protected abstract onMessage(frame: Frame, env: Envelope): void;
  /** A verified, checked answer to one of this party's requests. */
  protected onAnswer(_p: Pending, _answer: Payload, _from: Name): void {}
  /** A request of this party failed (error answer, timeout, resolution failure). */
  protected onFailed(_p: Pending, _error: ProtocolError): void {}
  /** The deployment a request belongs to, named on its `request-failed` event and delivery. */
  protected deploymentOf(_p: Pending): string | undefined {
    return undefined;
  }

  /** Whether `n` more requests may be outstanding (timed-out ones are failed first, as ask() does). */
  protected roomFor(n: number): boolean {
    this.sweepPending(n);
    return this.pending.size + n <= this.maxPending;
  }

  /** Whether a sealed message from `sender` is taken as an answer (patent: by who sent it). */
  protected isAnswerFrom(sender: Name): boolean {
    if (this.keyServers.has(sender)) return true;
    for (const p of this.pending.values()) if (p.peer === sender) return true;
    return false;
  }

  // ---- building blocks ----

  protected run(work: () => void): Outcome {
    const outer = this.batch;
    const batch: Outcome = { send: [], events: [], deliver: [] };
    this.batch = batch;
    try {
      work();
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      batch.error = e;
      this.event('rejected', { code: e.code, detail: e.message });
    } finally {
      this.batch = outer;
    }
    return batch;
  }

  protected event(
    type: ProtocolEvent['type'],
    fields: Omit<ProtocolEvent, 'at' | 'party' | 'type'> = {},
  ): void {
    this.batch.events.push({ at: this.clock(), party: this.name, type, ...fields });
  }

  protected deliver(d: Delivery): void {
    this.batch.deliver.push(d);
  }

  /** Signs `body` as `sender` (default: this party), seals it to `to` and queues the frame. Returns the header. */
  protected sendTo(
    to: AccessPair,
    body: Body,
    step: Step,
    opts: {
      inReplyTo?: Uint8Array | undefined;
      corr?: string;
      validityMs?: number;
      sender?: AuthorityTriple;
    } = {},
  ): Header {
    const sender = opts.sender ?? this.triple;
    const rules = this.profile.rules;
    const header = buildHeader(this.profile, this.random, this.clock(), sender.name, to.name, {
      inReplyTo: opts.inReplyTo,
      ...(opts.validityMs === undefined ? {} : { validityMs: opts.validityMs }),
    });
    const signed = sign(this.backend, sender.key, encodePayload(rules, payload(body, header)));
    const sealed = sealEnvelope(this.backend, { sender: sender.name, signed }, to.clef, this.ephemeral);
    // `from` stays empty: PROTO-12 puts Name-S inside the seal, so the frame does not show it.
    const bytes = encodeFrame({ kind: 'SEALED', to: to.name, from: '', corr: opts.corr ?? '', body: sealed });
    this.batch.send.push({ to: to.name, bytes, step });
    this.event('sent', { step, peer: to.name, bytes: bytes.length });
    return header;
  }

  /** Sends a request and records it as outstanding. */
  protected ask<C>(spec: RequestSpec<C>): Pending<C> {
    this.sweepPending();
    if (this.pending.size >= this.maxPending) {
      throw new ProtocolError('LIMIT_EXCEEDED', `${this.maxPending} requests outstanding`);
    }
    const corr = toHex(this.random(8));
    const header = this.sendTo(spec.to, spec.body, spec.step, {
      corr,
      ...(spec.sender ? { sender: spec.sender } : {}),
    });
    const key = header.nonce !== undefined ? bindingKey(header.nonce) : `corr:${corr}`;
    const p: Pending<C> = {
      key,
      corr,
      peer: spec.to.name,
      peerClef: spec.to.clef,
      scope: spec.scope,
      expect: spec.expect,
      step: spec.step,
      answerStep: spec.answerStep,
      subject: spec.subject,
      createdAt: this.clock(),
      ctx: spec.ctx,
    };
    this.pending.set(key, p);
    return p;
  }

  /** The key server that answers Clef queries for this party. */
  protected clefServer(): KnownKeyServer {
    for (const k of this.keyServers.values()) if (k.scopes.includes('clef')) return k;
    throw new ProtocolError('CONFIG_INVALID', `${this.name} knows no key server with scope clef`);
  }

  /**
   * Steps 1-4 (and 9) for `subject`: asks the Clef server and parks the message until the answer
   * comes; concurrent messages from the same sender share one query.
   */
  protected resolveAndPark(subject: Name, frame: Frame, env: Envelope, step: Step = 'RESOLVE-REQ'): void {
    const cached = this.cachedClef(subject);
    if (cached !== undefined) {
      this.onResolved(subject, cached, frame, env);
      return;
    }
    const existing = this.resolving.get(subject);
    if (this.parkedCount >= this.maxParked) {
      throw new ProtocolError('LIMIT_EXCEEDED', `${this.maxParked} messages already wait for a Clef`);
    }
    if (existing !== undefined && this.pending.has(existing.key)) {
      existing.ctx[RESOLVE].parked.push({ frame, env });
      this.parkedCount++;
      return;
    }
    const server = this.clefServer();
    const p = this.ask<ResolveCtx>({
      to: server,
      scope: 'clef',
      body: { type: 'clef-query', subject },
      step,
      expect: 'clef-answer',
      answerStep: step === 'M9a' ? 'M9b' : 'RESOLVE-ANS',
      subject,
      ctx: { [RESOLVE]: { parked: [{ frame, env }] } },
    });
    this.parkedCount++;
    this.resolving.set(subject, p);
  }

  /** A Clef kept from an earlier answer, when the Clef cache is on and the answer is still valid. */
  protected cachedClef(name: Name): Clef | undefined {
    if (!this.clefCache) return undefined;
    const c = this.clefs.get(name);
    if (c === undefined) return undefined;
    if (c.until <= this.clock()) {
      this.clefs.delete(name);
      return undefined;
    }
    return c.clef;
  }

  /** Keeps a Clef taken from a verified answer (bounded: 1024 Names, oldest forgotten first). */
  protected rememberClef(name: Name, clef: Clef, answer: Header): void {
    if (!this.clefCache) return;
    this.clefs.delete(name);
    this.clefs.set(name, { clef, until: answer.expiresAt ?? Number.POSITIVE_INFINITY });
    if (this.clefs.size > 1024) {
      const oldest = this.clefs.keys().next();
      if (oldest.done !== true) this.clefs.delete(oldest.value);
    }
  }

  /** Called with the Clef a resolution produced; handles the parked messages in arrival order. */
  protected abstract onResolved(subject: Name, clef: Clef, frame: Frame, env: Envelope): void;

  /**
   * Verifies a message's signature with `clef`, decodes its payload as one of `expected` and runs
   * the receiver checks of the rules in force (names in signature, validity period, replay cache).
   */
  protected accept<T extends BodyType>(
    env: Envelope,
    clef: Clef,
    expected: readonly [T, ...T[]],
    opts: { replay?: boolean } = {},
  ): Payload<BodyOf<T>> {
    const bytes = recover(this.backend, clef, env.signed, env.sender);
    const p = decodePayload(this.profile.rules, bytes, expected);
    const now = this.clock();
    checkNames(this.profile.rules, p.header, env.sender, this.name);
    checkFreshness(this.profile, p.header, now);
    if (opts.replay !== false) this.replay.admit(this.profile, env.sender, p.header, now);
    return p;
  }

  /**
   * Answers a request with an error. Under `patent`: an unsigned, unsealed ERROR frame (TB-15).
   * Under `signedErrors`: signed by this party and bound to the request; sealed to the requester
   * when its Clef is known (it was verified), else a SIGNED frame in clear.
   */
  protected sendError(
    to: Name,
    error: ProtocolError,
    subject: Name | '',
    request: Header | undefined,
    corr: string,
    toClef?: Clef,
  ): void {
    const body: Body = {
      type: 'error',
      code: error.code,
      detail: truncateUtf8(error.message, LIMITS.ERROR_DETAIL_MAX_BYTES),
      subject,
    };
    const rules = this.profile.rules;
    const kind = errorFrameKind(rules);
    if (kind === 'SIGNED' && toClef !== undefined) {
      this.sendTo({ name: to, clef: toClef }, body, 'ERR', { inReplyTo: request?.nonce, corr });
      return;
    }
    let frameBody: Uint8Array;
    if (kind === 'ERROR') {
      // Unsigned error frames carry no header at all: unauthenticated by design (TB-15).
      frameBody = encodePayload(UNSIGNED_ERROR_RULES, payload(body));
    } else {
      const header = buildHeader(this.profile, this.random, this.clock(), this.name, to, {
        inReplyTo: request?.nonce,
      });
      const signed = sign(this.backend, this.triple.key, encodePayload(rules, payload(body, header)));
      frameBody = encodeEnvelope({ sender: this.name, signed });
    }
    const bytes = encodeFrame({ kind, to, from: this.name, corr, body: frameBody });
    this.batch.send.push({ to, bytes, step: 'ERR' });
    this.event('sent', { step: 'ERR', peer: to, code: error.code, bytes: bytes.length });
  }

  /** Called for each parked message whose sender's Clef could not be obtained. */
  protected onParkedFailed(_frame: Frame, _env: Envelope, _error: ProtocolError): void {}

  // ---- answer handling ----

  private onUnsolicited(frame: Frame, env: Envelope): void {
    this.onMessage(frame, env);
  }

  private findPending(frame: Frame, env: Envelope): Pending {
    const rules = this.profile.rules;
    if (rules.answerBinding) {
      const header = decodeHeader(this.profile.rules, env.signed.payload);
      if (!isBoundAnswer(header))
        throw new ProtocolError('UNSOLICITED_ANSWER', `answer from ${env.sender} names no request`);
      const p = this.pending.get(bindingKey(header.inReplyTo!));
      if (p === undefined) {
        throw new ProtocolError(
          'UNSOLICITED_ANSWER',
          `answer from ${env.sender} matches no outstanding request`,
          {
            peer: env.sender,
          },
        );
      }
      return p;
    }
    return this.findUnbound(frame.corr, env.sender);
  }

  /** Patent pairing: the correlation id if it matches, else the oldest request (TB-15: routing data is untrusted). */
  private findUnbound(corr: string, sender: Name | ''): Pending {
    for (const p of this.pending.values()) if (corr !== '' && p.corr === corr) return p;
    for (const p of this.pending.values()) {
      if (p.scope !== null || p.peer === sender) return p;
    }
    throw new ProtocolError(
      'UNSOLICITED_ANSWER',
      `answer from ${sender || '(unknown)'} matches no outstanding request`,
    );
  }

  private onAnswerEnvelope(frame: Frame, env: Envelope): void {
    const p = this.findPending(frame, env);
    const server = this.keyServers.get(env.sender);
    if (p.scope !== null && server === undefined) {
      // Step 4: the answer must come from a known key server.
      throw new ProtocolError('NOT_KEY_SERVER', `${env.sender} is not a known key server`, {
        peer: env.sender,
      });
    }
    const clef = server?.clef ?? (env.sender === p.peer ? p.peerClef : undefined);
    if (clef === undefined) throw new ProtocolError('UNKNOWN_SENDER', `no Clef known for ${env.sender}`);
    if (p.scope !== null) checkServer(this.profile.rules, p.peer, env.sender, server?.scopes ?? [], p.scope);
    const expected: readonly [BodyType, ...BodyType[]] =
      frame.kind === 'SIGNED' ? ['error'] : [p.expect, 'error'];
    const answer = this.accept(env, clef, expected, { replay: false });
    const body = answer.body;
    if (body.type === 'error') {
      this.pending.delete(p.key);
      this.event('received', { step: 'ERR', peer: env.sender, code: 'REMOTE_ERROR', detail: body.code });
      this.failPending(p, remoteError(body.code, body.detail, env.sender));
      return;
    }
    checkSubject(this.profile.rules, p.subject, subjectOf(body));
    this.pending.delete(p.key);
    this.event('received', { step: p.answerStep, peer: env.sender });
    const resolution = (p.ctx as Partial<ResolveCtx> | null)?.[RESOLVE];
    if (resolution !== undefined && body.type === 'clef-answer' && p.subject !== undefined) {
      this.rememberClef(p.subject, body.clef, answer.header);
      this.finishResolution(p.subject, body.clef, resolution);
      return;
    }
    try {
      this.onAnswer(p, answer, env.sender);
    } catch (e) {
      // The request is used up: its owner must still learn that it failed.
      if (e instanceof ProtocolError) this.failPending(p, e);
      throw e;
    }
  }

  private finishResolution(subject: Name, clef: Clef, resolution: Resolution): void {
    this.resolving.delete(subject);
    this.event('clef-accepted', { subject, clef: clefId(clef) });
    for (const { frame, env } of resolution.parked) {
      this.parkedCount--;
      // Each parked message stands alone: one bad message must not stop the others.
      const sub = this.run(() => this.onResolved(subject, clef, frame, env));
      this.merge(sub);
    }
  }

  private merge(sub: Outcome): void {
    this.batch.send.push(...sub.send);
    this.batch.events.push(...sub.events);
    this.batch.deliver.push(...sub.deliver);
    if (sub.error !== undefined && this.batch.error === undefined) this.batch.error = sub.error;
  }

  private onUnsignedError(frame: Frame): void {
    acceptUnsignedError(this.profile.rules);
    const { code, detail } = decodePayload(UNSIGNED_ERROR_RULES, frame.body, ['error']).body;
    const p = this.findUnbound(frame.corr, frame.from);
    this.pending.delete(p.key);
    this.event('received', {
      step: 'ERR',
      ...(frame.from ? { peer: frame.from } : {}),
      code: 'REMOTE_ERROR',
      detail: code,
    });
    this.failPending(p, remoteError(code, detail, frame.from));
  }

  private failPending(p: Pending, error: ProtocolError): void {
    const resolution = (p.ctx as Partial<ResolveCtx> | null)?.[RESOLVE];
    const deployment = this.deploymentOf(p);
    const tag = deployment === undefined ? {} : { deployment };
    this.event('request-failed', {
      peer: p.peer,
      code: error.code,
      detail: error.message,
      ...subjectField(p.subject),
      ...tag,
    });
    const remote = error.meta.remote;
    this.deliver({
      kind: 'request-failed',
      step: p.step,
      peer: p.peer,
      subject: p.subject,
      code: error.code,
      remote: typeof remote === 'string' ? remote : undefined,
      ...tag,
    });
    if (resolution !== undefined) {
      if (p.subject !== undefined) this.resolving.delete(p.subject);
      this.parkedCount -= resolution.parked.length;
      for (const { frame, env } of resolution.parked) {
        this.onParkedFailed(frame, env, error);
        this.event('rejected', {
          peer: env.sender,
          code: error.code,
          detail: `Clef of ${env.sender} unavailable`,
        });
      }
      return;
    }
    this.onFailed(p, error);
  }

  /** Fails the timed-out requests when `room` more would not fit. */
  private sweepPending(room = 1): void {
    if (this.pending.size + room <= this.maxPending) return;
    const now = this.clock();
    for (const p of [...this.pending.values()]) {
      if (now - p.createdAt >= this.requestTimeoutMs) {
        this.pending.delete(p.key);
        this.failPending(p, new ProtocolError('TIMEOUT', `no answer from ${p.peer}`));
      }
    }
  }
}

/** The longest prefix of `text` whose UTF-8 encoding fits in `max` bytes, cut on a character boundary. */
export function truncateUtf8(text: string, max: number): string {
  if (text.length * 3 <= max) return text;
  let bytes = 0;
  let end = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (bytes + n > max) break;
    bytes += n;
    end += ch.length;
  }
  return text.slice(0, end);
}

function subjectField(subject: Name | undefined): { subject?: Name } {
  return subject === undefined ? {} : { subject };
}

function remoteError(code: string, detail: string, from: string): ProtocolError {
  return new ProtocolError('REMOTE_ERROR', `${from || 'peer'} answered ${code}: ${detail}`, { remote: code });
}

function subjectOf(body: Body): Name | '' {
  switch (body.type) {
    case 'clef-answer':
      return body.subject;
    case 'triple':
      return body.triple.name;
    case 'channel-from':
    case 'channel-reply':
      return body.peer;
    default:
      return '';
  }
}
