/**
 * One mapping from errors to HTTP answers for every route: `{ code, message }` with a code of the
 * project's registry (docs/errors.md). A ProtocolError is the caller's fault (4xx); any other
 * ClefnetError is a host error (500, e.g. a corrupt stored row); anything else is `INTERNAL`.
 */
import { ClefnetError, type ErrorCode, ProtocolError } from '@clefnet/protocol';
import type { FastifyError, FastifyInstance } from 'fastify';

/** The body of every error answer. `INTERNAL`: an unexpected failure, details only in the log. */
export interface ErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  NOT_AUTHORISED: 401,
  UNKNOWN_NAME: 404,
  ENCODING_TOO_LARGE: 413,
};

export function errorAnswer(e: unknown): { status: number; body: ErrorBody } {
  if (e instanceof ProtocolError)
    return { status: STATUS[e.code] ?? 400, body: { code: e.code, message: e.message } };
  if (e instanceof ClefnetError) return { status: 500, body: { code: e.code, message: e.message } };
  const f = e as Partial<FastifyError>;
  if (f.validation !== undefined)
    return { status: 400, body: { code: 'ENCODING_BAD_VALUE', message: String(f.message) } };
  if (f.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return { status: 413, body: { code: 'ENCODING_TOO_LARGE', message: String(f.message) } };
  if (typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500)
    return { status: f.statusCode, body: { code: 'ENCODING_BAD_VALUE', message: String(f.message) } };
  return { status: 500, body: { code: 'INTERNAL', message: 'internal error' } };
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const { status, body } = errorAnswer(error);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ code: 'UNKNOWN_NAME', message: `no route ${request.method} ${request.url}` }),
  );
}
