/**
 * The admin API (Bearer token): list the stored records, of one application or all; revoke an
 * application at this ASD (PROTO-26: independently of KServ2 and of the ANC); list revocations.
 * Handlers validate, call the service, and map the result.
 */
import { type Name, parseName, toHex } from '@clefnet/protocol';
import { bearerAuth } from '@clefnet/service-host';
import type { FastifyInstance } from 'fastify';
import type { AsdRecord, AsdRevocation } from '../store.js';

/** What the admin routes need from the service. Each may throw a ClefnetError. */
export interface AdminOps {
  readonly token: string;
  records(app?: Name): readonly AsdRecord[];
  revoke(app: Name): AsdRevocation;
  revocations(): readonly AsdRevocation[];
}

/** A record as the admin API shows it: the data as hex, its length, the time in ms since the epoch. */
export interface RecordJson {
  readonly id: number;
  readonly app: string;
  readonly data: string;
  readonly bytes: number;
  readonly receivedAt: number;
}

export function recordToJson(r: AsdRecord): RecordJson {
  return { id: r.id, app: r.app, data: toHex(r.data), bytes: r.data.length, receivedAt: r.receivedAt };
}

const nameSchema = { type: 'string', minLength: 1, maxLength: 253 } as const;
const revokeSchema = {
  type: 'object',
  required: ['app'],
  additionalProperties: false,
  properties: { app: nameSchema },
} as const;
const recordsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { app: nameSchema },
} as const;

export function adminRoutes(app: FastifyInstance, ops: AdminOps): void {
  app.register(
    async (admin) => {
      admin.addHook('onRequest', bearerAuth(ops.token));

      admin.get<{ Querystring: { app?: string } }>(
        '/records',
        { schema: { querystring: recordsQuery } },
        async (request) => {
          const name = request.query.app === undefined ? undefined : parseName(request.query.app);
          return { records: ops.records(name).map(recordToJson) };
        },
      );

      admin.post<{ Body: { app: string } }>('/revoke', { schema: { body: revokeSchema } }, async (request) =>
        ops.revoke(parseName(request.body.app)),
      );

      admin.get('/revocations', async () => ({ revocations: ops.revocations() }));
    },
    { prefix: '/admin' },
  );
}
