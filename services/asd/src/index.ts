/**
 * @clefnet/asd: the application-specific data server (ASD) of issue 6, a thin shell around the
 * protocol's Asd party with its records and revocations in SQLite, hosted by @clefnet/service-host
 * (which owns the sockets, routing, events, health and lifecycle). See docs/asd.md.
 */
export {
  type ErrorBody,
  type ListenAddress,
  LOG_LEVELS,
  type LogLevel,
  type Readiness,
  type ServiceEvent,
  type ServiceEventListener,
  WS_PATH,
} from '@clefnet/service-host';
export { type AsdConfig, parseConfig } from './config.js';
export { type AdminOps, type RecordJson, recordToJson } from './routes/admin.js';
export { type AsdService, type AsdServiceOptions, createAsdService, DB_FILE } from './server.js';
export {
  type AsdRecord,
  type AsdRevocation,
  openSqliteAsdStore,
  type SqliteAsdStore,
  type SqliteStoreOptions,
  StoreError,
} from './store.js';
