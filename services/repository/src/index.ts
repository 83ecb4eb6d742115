/**
 * @clefnet/repository: the Active Repository (AR) of issue 6, a thin shell around the protocol's
 * Repository party: modules as content-addressed files with their metadata in SQLite, deployments
 * (steps 1-7 and the triple hand-over) and the outcome of each step recorded, hosted by
 * @clefnet/service-host (which owns the sockets, routing, events, health and lifecycle). See
 * docs/repository.md.
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
export { type BlobStore, openBlobStore } from './blobs.js';
export { parseConfig, type RepositoryConfig } from './config.js';
export { deploymentId, recordOutcome } from './record.js';
export { type AdminOps, MODULE_NAME } from './routes/admin.js';
export {
  createRepositoryService,
  DB_FILE,
  type DeployCommand,
  MODULES_DIR,
  type RepositoryService,
  type RepositoryServiceOptions,
} from './server.js';
export {
  type DeploymentRecord,
  type ModuleRecord,
  type NewDeployment,
  openSqliteRepositoryStore,
  type SqliteRepositoryStore,
  type SqliteStoreOptions,
  type StepRecord,
  StoreError,
} from './store.js';
