/**
 * Rule `closedModel` (PROTO-21, SPEC §17.3 "closed-model sender lists"; stops ATK-14).
 *
 * Step 8 reveals the sender's Name before anything is authenticated. In the closed model the ANC
 * accepts a push only from a Name on its list of authorised senders (and an empty list accepts
 * nobody); in the open model any Name is taken at face value and step 9 decides.
 */
import { ProtocolError } from '../errors.js';
import type { Name } from '../names.js';
import type { Rules } from '../profile.js';

export function checkSender(rules: Rules, senders: ReadonlySet<Name>, sender: Name): void {
  if (rules.closedModel && !senders.has(sender)) {
    throw new ProtocolError('SENDER_NOT_LISTED', `${sender} is not an authorised sender`, { peer: sender });
  }
}
