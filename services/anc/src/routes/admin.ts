/**
 * The ANC's management API (Bearer token): its VEs with their state, keys and statistics, a VE's
 * console output, installed modules, machine statistics, the DTM hold queue (DTM-9: list, approve,
 * reject), and the traffic source: frames injected into the real NIC and the frames that left it.
 */
import { ProtocolError } from '@clefnet/protocol';
import { bearerAuth } from '@clefnet/service-host';
import type { FastifyInstance } from 'fastify';
import type { AncNode } from '../node.js';
import type { TrafficLog } from '../traffic.js';

export interface AdminOps {
  readonly token: string;
  readonly node: AncNode;
  readonly traffic: TrafficLog;
}

const HEX_RE = /^(?:[0-9a-f]{2}){14,1514}$/;
const MAX_INJECT = 1024;

const veParams = {
  type: 'object',
  required: ['ve'],
  properties: { ve: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } },
} as const;
const holdParams = {
  type: 'object',
  required: ['dtm', 'id'],
  properties: {
    dtm: { type: 'string', maxLength: 32 },
    id: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
  },
} as const;
const trafficQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: { type: 'string', pattern: '^(0|[1-9][0-9]{0,15})$' },
    limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
  },
} as const;
const injectSchema = {
  type: 'object',
  required: ['frames'],
  additionalProperties: false,
  properties: {
    frames: { type: 'array', minItems: 1, maxItems: MAX_INJECT, items: { type: 'string', maxLength: 3028 } },
  },
} as const;

const bad = (message: string) => new ProtocolError('ENCODING_BAD_VALUE', message);

export function adminRoutes(app: FastifyInstance, ops: AdminOps): void {
  const { node } = ops;
  app.register(
    async (admin) => {
      admin.addHook('onRequest', bearerAuth(ops.token));

      admin.get('/info', async () => node.info());
      admin.get('/ves', async () => node.ves());
      admin.get<{ Params: { ve: string } }>(
        '/ves/:ve/console',
        { schema: { params: veParams } },
        async (request) => ({
          ve: request.params.ve,
          text: node.console(request.params.ve),
          total: node.consoleTotal(request.params.ve),
        }),
      );
      admin.get('/modules', async () => node.installed());
      admin.get('/stats', async () => node.stats());
      admin.get('/holds', async () =>
        node.firewall.dtms.flatMap((d) => d.transfers('held').map((t) => ({ dtm: d.name, ...t }))),
      );
      for (const action of ['approve', 'reject'] as const) {
        admin.post<{ Params: { dtm: string; id: string } }>(
          `/holds/:dtm/:id/${action}`,
          { schema: { params: holdParams } },
          async (request) => {
            const dtm = node.firewall.dtms.find((d) => d.name === request.params.dtm);
            if (dtm === undefined) throw new ProtocolError('UNKNOWN_NAME', `no DTM ${request.params.dtm}`);
            dtm[action](Number(request.params.id));
            return { dtm: dtm.name, id: Number(request.params.id), action };
          },
        );
      }
      admin.post<{ Body: { frames: string[] } }>(
        '/traffic',
        { schema: { body: injectSchema } },
        async (request, reply) => {
          const frames = request.body.frames.map((h, i) => {
            if (!HEX_RE.test(h)) throw bad(`frames[${i}] must be 14 to 1514 bytes in lowercase hex`);
            return new Uint8Array(Buffer.from(h, 'hex'));
          });
          for (const f of frames) node.inject(f);
          return reply.code(202).send({ injected: frames.length, outside: node.outsideMacText });
        },
      );
      admin.get<{ Querystring: { since?: string; limit?: string } }>(
        '/traffic',
        { schema: { querystring: trafficQuery } },
        async (request) =>
          ops.traffic.since(
            Number(request.query.since ?? 0),
            Math.min(Number(request.query.limit ?? 1024), 4096),
          ),
      );
    },
    { prefix: '/admin' },
  );
}
