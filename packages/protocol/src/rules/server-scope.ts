/**
 * Rule `serverScope` (SPEC §17.3 "answer accepted only from the server that was asked; per-server
 * scope"; stops ATK-4).
 *
 * Under the patent, step 4 checks only that the answering Name is *some* known key server. With the
 * rule on, the answer must come from the server the request went to, and each known server is
 * trusted only for the kinds of answer its scopes list.
 */
import { ProtocolError } from '../errors.js';
import type { Name } from '../names.js';
import type { Rules } from '../profile.js';

/** What a key server is trusted for. */
export type ServerScope = 'clef' | 'mint' | 'relay';

export function checkServer(
  rules: Rules,
  asked: Name,
  answeredBy: Name,
  scopes: readonly ServerScope[],
  needed: ServerScope,
): void {
  if (!rules.serverScope) return;
  if (asked !== answeredBy) {
    throw new ProtocolError('WRONG_SERVER', `asked ${asked}, answered by ${answeredBy}`, {
      asked,
      answeredBy,
    });
  }
  if (!scopes.includes(needed)) {
    throw new ProtocolError('WRONG_SERVER', `${answeredBy} is not trusted for ${needed} answers`, {
      answeredBy,
      needed,
    });
  }
}
