/**
 * Rule `answerBinding` (SPEC §17.1 obs. 2, §17.3; stops ATK-2, ATK-3, the replay part of ATK-11).
 *
 * Under the patent an answer carries nothing that ties it to a question: a requester pairs it with
 * an outstanding request by the transport's correlation id (routing data an attacker controls,
 * TB-15) or, failing that, takes it as the answer to its oldest outstanding request. With the rule
 * on, an answer carries the nonce of the request it answers inside the signed part (the request
 * nonce is chosen by the party that receives the answer), the request is consumed when answered,
 * and the answer must be about the Name that was asked.
 */
import { type FieldReader, toHex } from '../codec.js';
import { ProtocolError } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { Name } from '../names.js';
import type { Rules } from '../profile.js';

export interface BindingHeader {
  /** Nonce of the request this payload answers; empty for a payload that answers nothing. */
  readonly inReplyTo: Uint8Array;
}

const EMPTY = new Uint8Array(0);

export function writeBinding(h: Partial<BindingHeader>, out: Uint8Array[]): void {
  out.push(h.inReplyTo ?? EMPTY);
}

export function readBinding(r: FieldReader): BindingHeader {
  const inReplyTo = r.bytesField(LIMITS.NONCE_BYTES, 'header.inReplyTo').slice();
  if (inReplyTo.length !== 0 && inReplyTo.length !== LIMITS.NONCE_BYTES) {
    throw new ProtocolError(
      'ENCODING_BAD_VALUE',
      `header.inReplyTo must be empty or ${LIMITS.NONCE_BYTES} bytes`,
    );
  }
  return { inReplyTo };
}

export function replyHeader(rules: Rules, requestNonce: Uint8Array | undefined): Partial<BindingHeader> {
  return rules.answerBinding ? { inReplyTo: requestNonce ?? EMPTY } : {};
}

/** True when a received payload presents itself as an answer (binding rule on). */
export function isBoundAnswer(h: Partial<BindingHeader>): boolean {
  return h.inReplyTo !== undefined && h.inReplyTo.length > 0;
}

/** The key under which a request waits for its answer. */
export function bindingKey(nonce: Uint8Array): string {
  return toHex(nonce);
}

/** Checks that an answer is about the Name that was asked. */
export function checkSubject(rules: Rules, asked: Name | undefined, answered: Name | ''): void {
  if (!rules.answerBinding || asked === undefined) return;
  if (asked !== answered) {
    throw new ProtocolError(
      'SUBJECT_MISMATCH',
      `asked about ${asked}, answer is about ${answered || '(none)'}`,
      {
        asked,
        answered,
      },
    );
  }
}
