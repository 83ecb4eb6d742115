/**
 * Rule `signedErrors` (TB-15; stops ATK-15c, forged negative answers).
 *
 * Negative answers are not in the patent. Under `patent` they travel as unsigned, unsealed ERROR
 * frames that anyone can forge; a requester still believes them. With the rule on, a server signs
 * its negative answers (a SIGNED frame, bound to the request like any answer) and requesters
 * ignore unsigned ERROR frames.
 */
import { ProtocolError } from '../errors.js';
import type { Rules } from '../profile.js';

/** The frame kind a server uses for a negative answer. */
export function errorFrameKind(rules: Rules): 'ERROR' | 'SIGNED' {
  return rules.signedErrors ? 'SIGNED' : 'ERROR';
}

/** Whether a requester may act on an unsigned ERROR frame. */
export function acceptUnsignedError(rules: Rules): void {
  if (rules.signedErrors) {
    throw new ProtocolError('FRAME_KIND', 'unsigned error frames are refused (signedErrors rule)');
  }
}
