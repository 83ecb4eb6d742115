/**
 * `buildApp(opts)`: the Fastify instance of the key server: health and readiness, the admin API,
 * and the WebSocket endpoint /ws (ws on the same HTTP server, one binary message = one frame,
 * maximum payload = the protocol's frame limit, no compression).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { LIMITS } from '@clefnet/protocol';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { type AdminOps, adminRoutes } from './routes/admin.js';
import { installErrorHandler } from './routes/errors.js';
import { healthRoutes, type Readiness } from './routes/health.js';

export const WS_PATH = '/ws';
/** Admin request bodies are one access pair or one Name. */
const BODY_LIMIT = 16 * 1024;

export interface AppOptions {
  readonly logger: Logger;
  readonly admin: AdminOps;
  readonly readiness: () => Readiness;
  /** False while stopping: new WebSocket upgrades are refused (503). */
  readonly acceptingSockets: () => boolean;
  /** Takes each upgraded socket on /ws. */
  readonly onSocket: (ws: WebSocket, remote: string) => void;
}

export function buildApp(opts: AppOptions): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    // Refuse what the schema does not allow instead of fixing it up (an extra `key` field is an
    // error, not silently dropped; a number is not a Name).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
  });
  installErrorHandler(app);
  healthRoutes(app, opts.readiness);
  adminRoutes(app, opts.admin);

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: LIMITS.FRAME_MAX_BYTES,
    perMessageDeflate: false,
  });
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== WS_PATH) return refuse(socket, '404 Not Found');
    if (!opts.acceptingSockets()) return refuse(socket, '503 Service Unavailable');
    wss.handleUpgrade(req, socket, head, (ws) =>
      opts.onSocket(ws, `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`),
    );
  });
  app.addHook('onClose', async () => {
    wss.close();
  });
  return app;
}

function refuse(socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
