/**
 * @clefnet/keyserver: the key server service (KServ1, KServ2) of issue 6, a thin shell around the
 * protocol's KeyServer party with its bindings in SQLite, hosted by @clefnet/service-host (which
 * owns the sockets, routing, events, health and lifecycle). See docs/keyserver.md.
 */
export {
  type ErrorBody,
  type EventHub,
  type ListenAddress,
  LOG_LEVELS,
  type LogLevel,
  type Readiness,
  type ServiceEvent,
  type ServiceEventListener,
  WS_PATH,
} from '@clefnet/service-host';
export { type KeyServerConfig, parseConfig } from './config.js';
export type { AdminOps, BindingJson } from './routes/admin.js';
export { bindingToJson } from './routes/admin.js';
export {
  createKeyServerService,
  DB_FILE,
  type KeyServerService,
  type KeyServerServiceOptions,
} from './server.js';
export {
  openSqliteKeyServerStore,
  type SqliteKeyServerStore,
  type SqliteStoreOptions,
  StoreError,
} from './store.js';
