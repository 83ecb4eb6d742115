/**
 * Bearer-token auth for a service's admin API: an `onRequest` hook that refuses (401
 * NOT_AUTHORISED, `WWW-Authenticate: Bearer`) every request without `Authorization: Bearer <token>`.
 */
import { equalBytes, ProtocolError, utf8 } from '@clefnet/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Shortest admin token a service accepts. */
export const MIN_TOKEN_LENGTH = 16;

/** Add it with `app.addHook('onRequest', bearerAuth(token))` inside the admin routes' scope. */
export function bearerAuth(token: string): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const expected = utf8(`Bearer ${token}`);
  return async (request, reply) => {
    const given = utf8(request.headers.authorization ?? '');
    // equalBytes does not stop at the first difference (only the length can be told apart).
    if (!equalBytes(given, expected)) {
      reply.header('www-authenticate', 'Bearer');
      throw new ProtocolError('NOT_AUTHORISED', 'the admin API needs Authorization: Bearer <token>');
    }
  };
}
