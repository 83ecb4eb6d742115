/**
 * KServ1 and KServ2 (PROTO-7, PROTO-8, PROTO-15, PROTO-16, PROTO-19, TB-12, TB-16, TB-17).
 *
 * One party serves any mix of three jobs, chosen by `serves`:
 * - `clef`:  answers `Clef(N) = ?` for authorised requesters (steps 2-3, 9; ACL of TB-16);
 * - `mint`:  creates a triple for `New(N) = ?`, stores its Name and Clef, returns the triple
 *            (steps 5-6 at KServ2; the VE limited-use key of TB-12 at KServ1), under the
 *            name-ownership rule;
 * - `relay`: carries the ASD channel (TB-17) for applications whose triples it minted.
 * A requester it does not know is looked up at an upstream Clef server when one is configured
 * (KServ2 fetching Clef-AR from KServ1, PROTO-19), its message waiting meanwhile.
 */
import type { Envelope } from '../envelope.js';
import { ERROR_CODES, type ErrorCode, ProtocolError } from '../errors.js';
import type { Frame } from '../frame.js';
import { type AccessPair, type Clef, clefId, generateTriple } from '../identity.js';
import { type BodyType, decodeHeader, type Header, type Payload } from '../messages.js';
import { checkPattern, matchesPattern, type Name, parentName } from '../names.js';
import type { Rules } from '../profile.js';
import { precheckUnverified } from '../rules/freshness.js';
import { checkCreate } from '../rules/name-ownership.js';
import type { KeyServerStore } from '../stores.js';
import { type Outcome, Party, type PartyOptions, type Pending } from './core.js';

/** Refusals a key server does not answer: answering a replay would repeat its cost (ATK-6). */
const SILENT: ReadonlySet<string> = new Set(['REPLAY', 'STALE']);

export type KeyServerJob = 'clef' | 'mint' | 'relay';

/** One ACL line (TB-16): `requester` may learn the Clef of `subject`. Patterns: `*`, `*.zone`, exact. */
export interface AclEntry {
  readonly requester: string;
  readonly subject: string;
}

export interface KeyServerOptions extends PartyOptions {
  readonly store: KeyServerStore;
  readonly serves: readonly KeyServerJob[];
  /** Default: any registered Name may query any Name (TB-16). */
  readonly acl?: readonly AclEntry[];
  /**
   * This server's own creation policy, overriding the profile's name-ownership rule (e.g. KServ1
   * re-issuing VE keys to the machine that owns them, KEY-9, while KServ2 rejects existing Names).
   */
  readonly nameOwnership?: Partial<Rules['nameOwnership']>;
}

interface RelayCtx {
  readonly app: Name;
  readonly appClef: Clef;
  readonly openHeader: Header;
  readonly corr: string;
}

export class KeyServer extends Party {
  readonly store: KeyServerStore;
  private readonly serves: ReadonlySet<KeyServerJob>;
  private readonly acl: readonly AclEntry[];
  private readonly expected: readonly [BodyType, ...BodyType[]];
  private readonly createRules: Rules;

  constructor(opts: KeyServerOptions) {
    super(opts);
    if (opts.serves.length === 0)
      throw new ProtocolError('CONFIG_INVALID', 'a key server must serve at least one job');
    this.store = opts.store;
    this.serves = new Set(opts.serves);
    this.createRules = {
      ...this.profile.rules,
      nameOwnership: { ...this.profile.rules.nameOwnership, ...opts.nameOwnership },
    };
    this.acl = (opts.acl ?? [{ requester: '*', subject: '*' }]).map((e) => ({
      requester: checkPattern(e.requester),
      subject: checkPattern(e.subject),
    }));
    const types: BodyType[] = [];
    if (this.serves.has('clef')) types.push('clef-query');
    if (this.serves.has('mint')) types.push('new-query');
    if (this.serves.has('relay')) types.push('channel-open');
    this.expected = types as [BodyType, ...BodyType[]];
  }

  /** Admin: enters an access pair (KEY-12: the ANC's pair is entered at configuration). */
  register(pair: AccessPair): Outcome {
    return this.run(() => {
      this.store.put({
        name: pair.name,
        clef: pair.clef,
        owner: null,
        createdAt: this.clock(),
        revokedAt: null,
      });
      this.event('binding-created', { subject: pair.name, clef: clefId(pair.clef) });
    });
  }

  /** Admin: revokes a Name (PROTO-26); later queries, channels and requests from it fail. */
  revoke(name: Name): Outcome {
    return this.run(() => {
      if (!this.store.revoke(name, this.clock()))
        throw new ProtocolError('UNKNOWN_NAME', `${name} is not registered`);
      this.event('binding-revoked', { subject: name });
    });
  }

  /**
   * The Name, or the nearest ancestor of it with a binding here, that is revoked: revoking a Name
   * revokes every Name below it, so an application cannot outlive its revocation through Names it
   * had minted below itself.
   */
  private revokedIn(name: Name): Name | undefined {
    for (let n: Name | undefined = name; n !== undefined; n = parentName(n)) {
      if (this.store.get(n)?.revokedAt != null) return n;
    }
    return undefined;
  }

  protected onMessage(frame: Frame, env: Envelope): void {
    if (this.profile.rules.freshness) {
      // Freshness rule: a replayed or expired request is dropped before any signature work, and
      // not answered, so replays cost the server (and the requester's inbound link) nothing (ATK-6).
      precheckUnverified(
        this.profile,
        this.replay,
        env.sender,
        decodeHeader(this.profile.rules, env.signed.payload),
        this.clock(),
      );
    }
    const binding = this.store.get(env.sender);
    if (binding === undefined) {
      if (this.hasUpstream()) {
        try {
          this.resolveAndPark(env.sender, frame, env);
        } catch (e) {
          if (e instanceof ProtocolError) this.refuse(frame, env, e);
          throw e;
        }
        return;
      }
      this.refuse(frame, env, new ProtocolError('UNKNOWN_SENDER', `${env.sender} is not registered here`));
    }
    const revoked = this.revokedIn(env.sender);
    if (revoked !== undefined) this.refuse(frame, env, new ProtocolError('REVOKED', `${revoked} is revoked`));
    this.serve(frame, env, binding.clef);
  }

  protected onResolved(_subject: Name, clef: Clef, frame: Frame, env: Envelope): void {
    // A requester known only upstream is still below any Name revoked here.
    const revoked = this.revokedIn(env.sender);
    if (revoked !== undefined) this.refuse(frame, env, new ProtocolError('REVOKED', `${revoked} is revoked`));
    this.serve(frame, env, clef);
  }

  private hasUpstream(): boolean {
    for (const k of this.keyServers.values()) if (k.scopes.includes('clef')) return true;
    return false;
  }

  private serve(frame: Frame, env: Envelope, requesterClef: Clef): void {
    let p: Payload;
    try {
      p = this.accept(env, requesterClef, this.expected);
    } catch (e) {
      if (e instanceof ProtocolError && !SILENT.has(e.code)) this.refuse(frame, env, e);
      throw e;
    }
    const requester: AccessPair = { name: env.sender, clef: requesterClef };
    const body = p.body;
    try {
      if (body.type === 'clef-query') this.answerClef(requester, body.subject, p.header, frame.corr);
      else if (body.type === 'new-query') this.mint(requester, body.subject, p.header, frame.corr);
      else if (body.type === 'channel-open')
        this.relayOpen(requester, body.peer, body.data, p.header, frame.corr);
      else throw new ProtocolError('TYPE_MISMATCH', `a key server does not take ${p.tag}`);
    } catch (e) {
      if (e instanceof ProtocolError) {
        const subject = 'subject' in body ? body.subject : '';
        this.answerError(requester.name, e, subject, p.header, frame.corr, requester.clef);
      }
      throw e;
    }
  }

  /** Steps 2-3 (and the key server's half of step 9). */
  private answerClef(requester: AccessPair, subject: Name, header: Header, corr: string): void {
    if (
      !this.acl.some((e) => matchesPattern(requester.name, e.requester) && matchesPattern(subject, e.subject))
    ) {
      throw new ProtocolError('NOT_AUTHORISED', `${requester.name} may not learn the Clef of ${subject}`);
    }
    const b = this.store.get(subject);
    if (b === undefined) throw new ProtocolError('UNKNOWN_NAME', `${subject} is not registered`, { subject });
    const revoked = this.revokedIn(subject);
    if (revoked !== undefined) throw new ProtocolError('REVOKED', `${revoked} is revoked`, { subject });
    this.sendTo(requester, { type: 'clef-answer', subject, clef: b.clef }, 'CLEF-ANS', {
      inReplyTo: header.nonce,
      corr,
      validityMs: this.profile.answerValidityMs,
    });
  }

  /** Step 6 (KServ2) and the VE key of TB-12 (KServ1): a new triple, its Name and Clef stored. */
  private mint(requester: AccessPair, subject: Name, header: Header, corr: string): void {
    const minted = this.store.get(requester.name)?.owner != null;
    checkCreate(this.createRules, requester.name, subject, this.store.get(subject), minted);
    const triple = generateTriple(this.backend, this.random, subject);
    this.store.put({
      name: subject,
      clef: triple.clef,
      owner: requester.name,
      createdAt: this.clock(),
      revokedAt: null,
    });
    this.event('binding-created', { subject, peer: requester.name, clef: clefId(triple.clef) });
    this.sendTo(requester, { type: 'triple', triple }, 'TRIPLE-ANS', { inReplyTo: header.nonce, corr });
  }

  /** TB-17: SecApp -> KServ2 -> ASD, only for applications whose triples this server minted. */
  private relayOpen(app: AccessPair, peer: Name, data: Uint8Array, header: Header, corr: string): void {
    if (this.store.get(app.name)?.owner == null) {
      throw new ProtocolError(
        'NOT_AUTHORISED',
        `${app.name} is not an application whose triple was minted here`,
      );
    }
    const asd = this.store.get(peer);
    if (asd === undefined || asd.revokedAt !== null) {
      throw new ProtocolError('NO_CHANNEL_PEER', `no data server ${peer} is registered here`, { peer });
    }
    this.ask<RelayCtx>({
      to: { name: peer, clef: asd.clef },
      scope: null,
      body: { type: 'channel-from', peer: app.name, clef: app.clef, data },
      step: 'FROM-ASD',
      expect: 'channel-reply',
      answerStep: 'REPLY',
      subject: app.name,
      ctx: { app: app.name, appClef: app.clef, openHeader: header, corr },
    });
    this.event('channel-relayed', { peer, subject: app.name, bytes: data.length });
  }

  /** TB-17: ASD -> KServ2 -> SecApp. Under `patent` the reply goes to whichever application it names. */
  protected override onAnswer(p: Pending, answer: Payload, from: Name): void {
    const ctx = p.ctx as RelayCtx;
    if (answer.body.type !== 'channel-reply')
      throw new ProtocolError('BAD_STATE', `unexpected answer ${answer.tag}`);
    const target = this.store.get(answer.body.peer);
    if (target === undefined || target.owner === null) {
      throw new ProtocolError('UNKNOWN_NAME', `${answer.body.peer} is not an application minted here`);
    }
    if (this.revokedIn(target.name) !== undefined) {
      throw new ProtocolError('REVOKED', `${answer.body.peer} is revoked`);
    }
    const asd = this.store.get(from);
    if (asd === undefined) throw new ProtocolError('UNKNOWN_SENDER', `${from} is not registered here`);
    this.sendTo(
      { name: target.name, clef: target.clef },
      { type: 'channel-from', peer: from, clef: asd.clef, data: answer.body.data },
      'FROM-SECAPP',
      { inReplyTo: ctx.openHeader.nonce, corr: ctx.corr },
    );
  }

  /** The data server refused or did not answer: tell the application, with the server's own code. */
  protected override onFailed(p: Pending, error: ProtocolError): void {
    const ctx = p.ctx as RelayCtx;
    const remote = error.meta.remote;
    const passed =
      error.code === 'REMOTE_ERROR' && typeof remote === 'string' && remote in ERROR_CODES
        ? new ProtocolError(remote as ErrorCode, `${p.peer}: ${error.message}`)
        : error;
    this.answerError(ctx.app, passed, p.peer, ctx.openHeader, ctx.corr, ctx.appClef);
  }

  /** The requester's Clef could not be obtained upstream (PROTO-19): say so instead of staying silent. */
  protected override onParkedFailed(frame: Frame, env: Envelope, error: ProtocolError): void {
    const e = new ProtocolError('UNKNOWN_SENDER', `no Clef for ${env.sender}: ${error.message}`);
    this.answerError(env.sender, e, '', this.unverifiedHeader(env), frame.corr);
  }

  private refuse(frame: Frame, env: Envelope, error: ProtocolError): never {
    this.answerError(env.sender, error, '', this.unverifiedHeader(env), frame.corr);
    throw error;
  }

  /** The request was not verified: its header is read only to address the error answer. */
  private unverifiedHeader(env: Envelope): Header | undefined {
    try {
      return decodeHeader(this.profile.rules, env.signed.payload);
    } catch {
      return undefined;
    }
  }

  private answerError(
    to: Name,
    error: ProtocolError,
    subject: Name | '',
    header: Header | undefined,
    corr: string,
    verifiedClef?: Clef,
  ): void {
    this.sendError(to, error, subject, header, corr, verifiedClef);
  }
}

export function createKeyServer(opts: KeyServerOptions): KeyServer {
  return new KeyServer(opts);
}
