/**
 * `GET /admin/events` (Bearer token): the service's event stream (TB-2) as server-sent events, one
 * `data:` line of JSON per {@link ServiceEvent}, for `clefnet events` and a viewer. `?type=` keeps
 * events of the listed types (`protocol,machine,...`), `?kind=` machine events of the listed kinds
 * (`trap,dtm,console,...`). A client that does not keep up loses events rather than making the
 * service buffer them: while more than {@link SSE_BACKLOG_BYTES} wait to be written, events are
 * counted as dropped and reported in a `dropped` comment before the next event it gets. Streams end when the
 * service stops.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { EventHub, ServiceEvent } from '../events.js';
import { bearerAuth } from './auth.js';

export const EVENTS_PATH = '/admin/events';
/** Bytes a stream may have waiting before events are dropped. */
export const SSE_BACKLOG_BYTES = 1 << 20;

const LIST = '^[a-z0-9-]{1,32}(,[a-z0-9-]{1,32}){0,31}$';
const query = {
  type: 'object',
  additionalProperties: false,
  properties: { type: { type: 'string', pattern: LIST }, kind: { type: 'string', pattern: LIST } },
} as const;

export interface EventStreams {
  /** Open streams. */
  readonly open: number;
  /** Ends every stream (the service is stopping). */
  closeAll(): void;
}

export function eventRoutes(app: FastifyInstance, hub: EventHub, token: string): EventStreams {
  const streams = new Set<ServerResponse>();
  let closing = false;
  app.get<{ Querystring: { type?: string; kind?: string } }>(
    EVENTS_PATH,
    { onRequest: bearerAuth(token), schema: { querystring: query } },
    (request, reply) => {
      // A stream asked for while the service stops would hold its HTTP server open.
      if (closing) return reply.code(503).send({ code: 'BAD_STATE', message: 'the service is stopping' });
      const types = request.query.type?.split(',');
      const kinds = request.query.kind?.split(',');
      const wanted = (e: ServiceEvent) =>
        (types === undefined || types.includes(e.type)) &&
        (kinds === undefined || (e.type === 'machine' && kinds.includes(e.event.kind)));
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write(': clefnet events\n\n');
      streams.add(res);
      let dropped = 0;
      const off = hub.subscribe((e) => {
        if (!wanted(e)) return;
        if (res.writableLength > SSE_BACKLOG_BYTES) {
          dropped++;
          return;
        }
        if (dropped > 0) {
          res.write(`: dropped ${dropped}\n\n`);
          dropped = 0;
        }
        res.write(`data: ${JSON.stringify(e)}\n\n`);
        // Node's HTTP response corks its socket until the next tick, and an event can be emitted
        // early in a long synchronous stretch (an ANC turn runs its VEs' slices): out now, so a
        // viewer sees it when it happened, not when the service next yields.
        const socket = res.socket;
        if (socket !== null && socket.writableCorked > 0) socket.uncork();
      });
      const done = () => {
        off();
        streams.delete(res);
      };
      res.on('close', done);
      res.on('error', done);
    },
  );
  return {
    get open() {
      return streams.size;
    },
    closeAll() {
      closing = true;
      for (const res of streams) res.end();
      streams.clear();
    },
  };
}
