/**
 * Rule `namesInSignature` (SPEC §17.1 obs. 3, §17.3; Lowe's fix; stops ATK-5, part of ATK-7).
 *
 * Under the patent the signed part names neither sender nor receiver; the sender's Name sits
 * outside the signature. With the rule on, the signed payload carries both, and a receiver checks
 * that the inner sender equals the Name outside the signature and that the receiver is itself.
 */
import { type FieldReader, utf8Shared } from '../codec.js';
import { ProtocolError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { Name } from '../names.js';
import { parseName } from '../names.js';
import type { Rules } from '../profile.js';

export interface NamesHeader {
  readonly sender: Name;
  readonly receiver: Name;
}

export function writeNames(h: Partial<NamesHeader>, out: Uint8Array[]): void {
  if (h.sender === undefined || h.receiver === undefined) {
    throw new ProtocolError('CONFIG_INVALID', 'namesInSignature: header needs sender and receiver');
  }
  out.push(utf8Shared(h.sender), utf8Shared(h.receiver));
}

export function readNames(r: FieldReader): NamesHeader {
  const sender = parseName(r.text(LIMITS.NAME_MAX_BYTES, 'header.sender'));
  const receiver = parseName(r.text(LIMITS.NAME_MAX_BYTES, 'header.receiver'));
  return { sender, receiver };
}

export function checkNames(rules: Rules, h: Partial<NamesHeader>, outerSender: Name, self: Name): void {
  if (!rules.namesInSignature) return;
  if (h.sender !== outerSender) {
    throw new ProtocolError(
      'SENDER_MISMATCH',
      `signed sender ${h.sender ?? '?'} but envelope says ${outerSender}`,
      {
        outer: outerSender,
      },
    );
  }
  if (h.receiver !== self) {
    throw new ProtocolError('WRONG_RECEIVER', `signed for ${h.receiver ?? '?'}, not for ${self}`, {
      receiver: h.receiver,
    });
  }
}
