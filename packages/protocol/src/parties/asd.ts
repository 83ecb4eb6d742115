/**
 * The Application-Specific Data server, ASD (PROTO-25, PROTO-26, TB-17). It is reached only through
 * the relaying key server: it takes `("FROM", Name-SecApp, Clef-SecApp, request)` signed by
 * KServ2, asks its host to serve the request, and answers through KServ2. It can refuse an
 * application on its own (local revocation), independently of KServ2 and of the ANC.
 */
import type { Envelope } from '../envelope.js';
import { ProtocolError } from '../errors.js';
import type { Frame } from '../frame.js';
import { type Name, parentName } from '../names.js';
import { type Outcome, Party, type PartyOptions } from './core.js';

/** Serves one request of application `app`; throws a ProtocolError to refuse it. */
export type AsdHandler = (app: Name, data: Uint8Array) => Uint8Array;

export interface AsdOptions extends PartyOptions {
  readonly serve: AsdHandler;
  /** Applications refused from the start. */
  readonly revoked?: Iterable<Name>;
}

export class Asd extends Party {
  private readonly serveRequest: AsdHandler;
  private readonly revoked: Set<Name>;

  constructor(opts: AsdOptions) {
    super(opts);
    this.serveRequest = opts.serve;
    this.revoked = new Set(opts.revoked ?? []);
  }

  /** PROTO-26: the ASD's own revocation. */
  revoke(app: Name): Outcome {
    return this.run(() => {
      this.revoked.add(app);
      this.event('binding-revoked', { subject: app });
    });
  }

  isRevoked(app: Name): boolean {
    // Revoking a Name revokes the Names below it.
    for (let n: Name | undefined = app; n !== undefined; n = parentName(n))
      if (this.revoked.has(n)) return true;
    return false;
  }

  /** Everything the ASD receives is a request relayed by a key server. */
  protected override isAnswerFrom(): boolean {
    return false;
  }

  protected onMessage(frame: Frame, env: Envelope): void {
    const relay = this.keyServers.get(env.sender);
    if (relay === undefined || !relay.scopes.includes('relay')) {
      throw new ProtocolError('NOT_KEY_SERVER', `${env.sender} is not a relaying key server`, {
        peer: env.sender,
      });
    }
    const p = this.accept(env, relay.clef, ['channel-from']);
    const { peer: app, data } = p.body;
    try {
      if (this.isRevoked(app))
        throw new ProtocolError('REVOKED', `${app} is revoked at this data server`, { subject: app });
      const answer = this.serveRequest(app, data);
      this.event('channel-served', { peer: relay.name, subject: app, bytes: data.length });
      this.sendTo(relay, { type: 'channel-reply', peer: app, data: answer }, 'REPLY', {
        inReplyTo: p.header.nonce,
        corr: frame.corr,
      });
    } catch (e) {
      if (e instanceof ProtocolError) this.sendError(relay.name, e, app, p.header, frame.corr, relay.clef);
      throw e;
    }
  }

  protected onResolved(): void {
    throw new ProtocolError('BAD_STATE', 'the data server resolves no senders');
  }
}

export function createAsd(opts: AsdOptions): Asd {
  return new Asd(opts);
}
