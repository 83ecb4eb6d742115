/**
 * @clefnet/keyserver: the key server service (KServ1, KServ2) of issue 6, a thin Fastify + ws shell
 * around the protocol's KeyServer party with its bindings in SQLite. See docs/keyserver.md.
 */
export { type AppOptions, buildApp, WS_PATH } from './app.js';
export { type KeyServerConfig, LOG_LEVELS, type LogLevel, parseConfig } from './config.js';
export type { EventHub, ServiceEvent, ServiceEventListener } from './events.js';
export type { AdminOps, BindingJson } from './routes/admin.js';
export { bindingToJson } from './routes/admin.js';
export type { ErrorBody } from './routes/errors.js';
export type { Readiness } from './routes/health.js';
export {
  createKeyServerService,
  DB_FILE,
  type KeyServerService,
  type KeyServerServiceOptions,
  type ListenAddress,
} from './server.js';
export {
  openSqliteKeyServerStore,
  type SqliteKeyServerStore,
  type SqliteStoreOptions,
  StoreError,
} from './store.js';
