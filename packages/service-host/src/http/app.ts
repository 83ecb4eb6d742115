/**
 * `buildHostApp(opts)`: the Fastify instance every service starts from: one error mapping,
 * health and readiness, the service's own routes, and the WebSocket endpoint /ws (ws on the same
 * HTTP server, one binary message = one frame, maximum payload = the protocol's frame limit, no
 * compression).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { LIMITS } from '@clefnet/protocol';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { installErrorHandler } from './errors.js';
import { healthRoutes, type Readiness } from './health.js';

export const WS_PATH = '/ws';
/** Default HTTP body limit: admin request bodies are small (a key server's: one access pair or one Name). */
export const DEFAULT_BODY_LIMIT = 16 * 1024;

export interface HostAppOptions {
  readonly logger: Logger;
  readonly readiness: () => Readiness;
  /** False while stopping: new WebSocket upgrades are refused (503). */
  readonly acceptingSockets: () => boolean;
  /** Takes each upgraded socket on /ws. */
  readonly onSocket: (ws: WebSocket, remote: string) => void;
  /** The service's own routes (its admin API), added after health and readiness. */
  readonly routes?: (app: FastifyInstance) => void;
  /** Default {@link DEFAULT_BODY_LIMIT}. */
  readonly bodyLimit?: number;
}

export function buildHostApp(opts: HostAppOptions): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Refuse what the schema does not allow instead of fixing it up (an extra `key` field is an
    // error, not silently dropped; a number is not a Name).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
  });
  installErrorHandler(app);
  healthRoutes(app, opts.readiness);
  opts.routes?.(app);

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
