/**
 * The admin API (Bearer token): register access pairs (KEY-12), revoke Names (PROTO-26), list the
 * bindings. Handlers validate, call the party through the service, and map the result.
 */
import {
  type AccessPair,
  type AccessPairJson,
  accessPairFromJson,
  type Binding,
  encodeClef,
  type Name,
  parseName,
  toHex,
} from '@clefnet/protocol';
import { bearerAuth } from '@clefnet/service-host';
import type { FastifyInstance } from 'fastify';

/** What the admin routes need from the service. Each may throw a ClefnetError. */
export interface AdminOps {
  readonly token: string;
  register(pair: AccessPair): Binding;
  revoke(name: Name): Binding;
  list(): readonly Binding[];
}

/** A binding as the admin API shows it (the Clef as 128 hex digits, times in ms since the epoch). */
export interface BindingJson {
  readonly name: string;
  readonly clef: string;
  readonly owner: string | null;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

export function bindingToJson(b: Binding): BindingJson {
  return {
    name: b.name,
    clef: toHex(encodeClef(b.clef)),
    owner: b.owner,
    createdAt: b.createdAt,
    revokedAt: b.revokedAt,
  };
}

const nameSchema = { type: 'string', minLength: 1, maxLength: 253 } as const;
const pairSchema = {
  type: 'object',
  required: ['name', 'clef'],
  additionalProperties: false,
  properties: { name: nameSchema, clef: { type: 'string', minLength: 128, maxLength: 128 } },
} as const;
const revokeSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: nameSchema },
} as const;

export function adminRoutes(app: FastifyInstance, ops: AdminOps): void {
  app.register(
    async (admin) => {
      admin.addHook('onRequest', bearerAuth(ops.token));

      admin.post<{ Body: AccessPairJson }>(
        '/pairs',
        { schema: { body: pairSchema } },
        async (request, reply) => {
          const binding = ops.register(accessPairFromJson(request.body));
          return reply.code(201).send(bindingToJson(binding));
        },
      );

      admin.post<{ Body: { name: string } }>('/revoke', { schema: { body: revokeSchema } }, async (request) =>
        bindingToJson(ops.revoke(parseName(request.body.name))),
      );

      admin.get('/bindings', async () => ({ bindings: ops.list().map(bindingToJson) }));
    },
    { prefix: '/admin' },
  );
}
