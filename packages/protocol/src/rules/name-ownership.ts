/**
 * Rule `nameOwnership` (TB-16, SPEC §17.3; stops ATK-13 and the KServ2 part of ATK-6).
 *
 * Decides whether `requester` may have a key server create a triple for `subject`:
 * - `overwrite` (patent): always; an existing binding is replaced.
 * - `reject-if-exists`: only if no binding exists.
 * - `owner-only`: if no binding exists, or the existing one was created for this requester.
 * With `subtreeOnly`, the subject must also be the requester's Name or lie below it, and a Name
 * that was itself minted by a key server may not mint (no delegation chains that outlive a
 * revocation).
 */
import { ProtocolError } from '../errors.js';
import { isWithin, type Name } from '../names.js';
import type { Rules } from '../profile.js';

export function checkCreate(
  rules: Rules,
  requester: Name,
  subject: Name,
  existing: { readonly owner: Name | null } | undefined,
  requesterMinted = false,
): void {
  const { policy, subtreeOnly } = rules.nameOwnership;
  if (subtreeOnly && requesterMinted) {
    throw new ProtocolError('NOT_AUTHORISED', `${requester} was minted by a key server and may not mint`, {
      requester,
    });
  }
  if (subtreeOnly && !isWithin(subject, requester)) {
    throw new ProtocolError(
      'NOT_AUTHORISED',
      `${requester} may only create Names below itself, not ${subject}`,
      {
        requester,
        subject,
      },
    );
  }
  if (existing === undefined || policy === 'overwrite') return;
  if (policy === 'owner-only' && existing.owner === requester) return;
  throw new ProtocolError('NAME_TAKEN', `${subject} already exists`, { subject });
}
