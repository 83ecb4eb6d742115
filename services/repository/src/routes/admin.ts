/**
 * The admin API (Bearer token): publish a module (JSON `{name, program: base64}`, or the raw bytes
 * as `application/octet-stream` with `?name=`), list modules, start a deployment of a module to an
 * ANC (a VE's Name), read a deployment with its steps. Handlers validate, call the service, and map
 * the result; errors are `{code, message}` (service-host's mapping).
 */
import { type Name, ProtocolError, parseName } from '@clefnet/protocol';
import { bearerAuth } from '@clefnet/service-host';
import type { FastifyInstance } from 'fastify';
import type { DeployCommand } from '../server.js';
import type { DeploymentRecord, ModuleRecord } from '../store.js';

/** What the admin routes need from the service. Each may throw a ClefnetError. */
export interface AdminOps {
  readonly token: string;
  publish(name: string, program: Uint8Array): ModuleRecord;
  modules(): readonly ModuleRecord[];
  deploy(cmd: DeployCommand): DeploymentRecord;
  deployment(id: number): DeploymentRecord | undefined;
  deployments(): readonly DeploymentRecord[];
}

/** A module name: letters, digits, `.`, `_`, `-`; 1 to 128 characters, starting with a letter or digit. */
export const MODULE_NAME = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';
const MODULE_NAME_RE = new RegExp(MODULE_NAME);
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const moduleName = { type: 'string', pattern: MODULE_NAME } as const;
const nameSchema = { type: 'string', minLength: 1, maxLength: 253 } as const;
const publishQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { name: moduleName },
} as const;
const deploySchema = {
  type: 'object',
  required: ['module', 'anc'],
  additionalProperties: false,
  properties: { module: moduleName, anc: nameSchema, secApp: nameSchema },
} as const;
const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' } },
} as const;

const bad = (message: string) => new ProtocolError('ENCODING_BAD_VALUE', message);

/** The publish body: `{name, program}` (JSON) or the bytes (octet-stream) with `?name=`. */
function publishInput(body: unknown, queryName: string | undefined): { name: string; program: Uint8Array } {
  if (body instanceof Uint8Array) {
    if (queryName === undefined) throw bad('an octet-stream publish needs ?name=');
    return { name: queryName, program: new Uint8Array(body) };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw bad('the body must be {name, program} or application/octet-stream');
  if (queryName !== undefined) throw bad('?name= is for octet-stream bodies; put name in the JSON');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'name' && k !== 'program') throw bad(`unknown field ${k}`);
  if (typeof o.name !== 'string' || !MODULE_NAME_RE.test(o.name)) throw bad(`name must match ${MODULE_NAME}`);
  if (typeof o.program !== 'string' || !BASE64_RE.test(o.program))
    throw bad('program must be base64 (RFC 4648, padded)');
  return { name: o.name, program: new Uint8Array(Buffer.from(o.program, 'base64')) };
}

export function adminRoutes(app: FastifyInstance, ops: AdminOps): void {
  app.register(
    async (admin) => {
      admin.addHook('onRequest', bearerAuth(ops.token));
      admin.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) =>
        done(null, body),
      );

      admin.post<{ Querystring: { name?: string } }>(
        '/modules',
        { schema: { querystring: publishQuery } },
        async (request, reply) => {
          const { name, program } = publishInput(request.body, request.query.name);
          return reply.code(201).send(ops.publish(name, program));
        },
      );

      admin.get('/modules', async () => ({ modules: ops.modules() }));

      admin.post<{ Body: { module: string; anc: string; secApp?: string } }>(
        '/deploy',
        { schema: { body: deploySchema } },
        async (request, reply) => {
          const b = request.body;
          const cmd: DeployCommand = {
            module: b.module,
            anc: parseName(b.anc),
            ...(b.secApp === undefined ? {} : { secApp: parseName(b.secApp) as Name }),
          };
          return reply.code(202).send(ops.deploy(cmd));
        },
      );

      admin.get('/deployments', async () => ({ deployments: ops.deployments() }));

      admin.get<{ Params: { id: string } }>(
        '/deployments/:id',
        { schema: { params: idParams } },
        async (request) => {
          const d = ops.deployment(Number(request.params.id));
          if (d === undefined) throw new ProtocolError('UNKNOWN_NAME', `no deployment ${request.params.id}`);
          return d;
        },
      );
    },
    { prefix: '/admin' },
  );
}
