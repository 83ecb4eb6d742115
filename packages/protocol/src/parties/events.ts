/**
 * Protocol events (TB-2): every message a party sends, receives or refuses and every change to its
 * stored state is one event. Events never carry secret keys or plaintext; services timestamp and
 * log them, tests assert on them.
 */
import type { ErrorCode } from '../errors.js';
import type { Name } from '../names.js';

export type EventType =
  | 'sent'
  | 'received'
  | 'rejected'
  | 'clef-accepted'
  /** The AR took a SecApp triple from KServ2's answer (M6): the checks of the triple passed. */
  | 'triple-accepted'
  | 'binding-created'
  | 'binding-revoked'
  | 'program-installed'
  | 'handover-received'
  | 've-key-issued'
  | 'channel-relayed'
  | 'channel-served'
  | 'channel-answered'
  | 'deployment'
  | 'request-failed';

/** Message labels of the exchange, as in SPEC §16.6 plus TB-12, TB-17 and error answers. */
export type Step =
  | 'M1'
  | 'M3'
  | 'M5'
  | 'M6'
  | 'M7'
  | 'M9a'
  | 'M9b'
  /** What a key server labels every Clef answer it sends (M3, M9b, RESOLVE-ANS: it cannot tell which). */
  | 'CLEF-ANS'
  /** What a key server labels every triple it sends (M6, VEKEY-ANS). */
  | 'TRIPLE-ANS'
  | 'HANDOVER'
  | 'VEKEY-REQ'
  | 'VEKEY-ANS'
  | 'RESOLVE-REQ'
  | 'RESOLVE-ANS'
  | 'OPEN'
  | 'FROM-ASD'
  | 'REPLY'
  | 'FROM-SECAPP'
  | 'ERR';

export interface ProtocolEvent {
  readonly at: number;
  readonly party: Name;
  readonly type: EventType;
  readonly step?: Step;
  /** The other party (claimed sender for received messages). */
  readonly peer?: Name;
  /** The Name a query, binding or program is about. */
  readonly subject?: Name;
  readonly code?: ErrorCode;
  readonly detail?: string;
  readonly bytes?: number;
  /** Short id of a Clef involved (never a secret). */
  readonly clef?: string;
  /** SHA-256 (hex) of an installed program. */
  readonly digest?: string;
  readonly deployment?: string;
  readonly state?: string;
}
