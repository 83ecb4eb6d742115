/**
 * @clefnet/service-host: what every clefnet service (keyserver, repository, asd, anc) shares around
 * its party of @clefnet/protocol: the WebSocket gateway and router, outgoing links behind a
 * `connect` hook, the event stream and its pino lines, health and readiness, bearer-token admin
 * auth, the error -> HTTP mapping, graceful start and stop, the common config. Party-agnostic: it
 * takes any `receive(bytes) -> Outcome`. Test helpers: `@clefnet/service-host/testing`.
 */
export {
  checkHostOptions,
  configField,
  configObject,
  HOST_CONFIG_FIELDS,
  type HostConfig,
  LOG_LEVELS,
  type LogLevel,
  parseHostConfig,
} from './config.js';
export { idleEphemeralKeys } from './ephemeral.js';
export {
  createEventHub,
  type EventHub,
  hostErrorEvent,
  type MachineEventData,
  type ServiceEvent,
  type ServiceEventListener,
} from './events.js';
export {
  createServiceHost,
  type HostOperations,
  hostOptionsOf,
  type ListenAddress,
  type PeriodicOperation,
  type ServiceHost,
  type ServiceHostOptions,
  type ServiceOptions,
} from './host.js';
export { buildHostApp, DEFAULT_BODY_LIMIT, type HostAppOptions, WS_PATH } from './http/app.js';
export { bearerAuth, MIN_TOKEN_LENGTH } from './http/auth.js';
export { type ErrorBody, errorAnswer, installErrorHandler } from './http/errors.js';
export { EVENTS_PATH, SSE_BACKLOG_BYTES } from './http/events.js';
export { healthRoutes, type Readiness } from './http/health.js';
export { runServiceMain, type ServiceMain } from './main.js';
export { isTime, openSqlite, type SqliteOptions, StoreError } from './sqlite.js';
export {
  type ConnectHook,
  createGateway,
  directConnect,
  type FrameEndpoint,
  type Gateway,
  type GatewayOptions,
} from './ws/gateway.js';
export { createLink, type Link } from './ws/link.js';
export { createRouter, type Router, type RouterOptions } from './ws/router.js';
