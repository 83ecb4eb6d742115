/** Liveness and readiness of a service (orchestration probes; `clefnet status` later). */
import type { FastifyInstance } from 'fastify';

export interface Readiness {
  readonly storeOpen: boolean;
  readonly listening: boolean;
  readonly stopping: boolean;
}

export function healthRoutes(app: FastifyInstance, readiness: () => Readiness): void {
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_request, reply) => {
    const checks = readiness();
    const ready = checks.storeOpen && checks.listening && !checks.stopping;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not-ready', checks });
  });
}
