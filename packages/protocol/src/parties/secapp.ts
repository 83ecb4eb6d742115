/**
 * The new application's side of the ASD channel (PROTO-25, TB-17): with the SecApp triple it was
 * handed (PROTO-23) it sends `< Name-SecApp ‖ <("OPEN", Name-ASD, request)>Key-SecApp >Clef-KServ2`
 * and receives the data server's answer relayed by KServ2, sealed to Clef-SecApp.
 */
import type { Envelope } from '../envelope.js';
import { ProtocolError } from '../errors.js';
import type { Frame } from '../frame.js';
import { LIMITS } from '../limits.js';
import type { Payload } from '../messages.js';
import type { Name } from '../names.js';
import { type Outcome, Party, type PartyOptions } from './core.js';

export class SecApp extends Party {
  /** Sends `data` to the data server `asd` through the relaying key server. */
  request(asd: Name, data: Uint8Array): Outcome {
    return this.run(() => {
      if (data.length > LIMITS.CHANNEL_DATA_MAX_BYTES) {
        throw new ProtocolError('ENCODING_TOO_LARGE', `channel data of ${data.length} bytes`);
      }
      const relay = [...this.keyServers.values()].find((k) => k.scopes.includes('relay'));
      if (relay === undefined)
        throw new ProtocolError('CONFIG_INVALID', 'the application knows no relaying key server');
      this.ask({
        to: relay,
        scope: 'relay',
        body: { type: 'channel-open', peer: asd, data },
        step: 'OPEN',
        expect: 'channel-from',
        answerStep: 'FROM-SECAPP',
        subject: asd,
        ctx: asd,
      });
    });
  }

  protected onMessage(_frame: Frame, env: Envelope): void {
    throw new ProtocolError(
      'BAD_STATE',
      `the application takes no unsolicited messages (from ${env.sender})`,
    );
  }

  protected onResolved(): void {
    throw new ProtocolError('BAD_STATE', 'the application resolves no senders');
  }

  protected override onAnswer(_p: unknown, answer: Payload): void {
    if (answer.body.type !== 'channel-from')
      throw new ProtocolError('BAD_STATE', `unexpected answer ${answer.tag}`);
    this.event('channel-answered', { peer: answer.body.peer, bytes: answer.body.data.length });
    this.deliver({ kind: 'channel-data', peer: answer.body.peer, data: answer.body.data });
  }
}

export function createSecApp(opts: PartyOptions): SecApp {
  return new SecApp(opts);
}
