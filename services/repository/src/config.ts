/**
 * The AR's JSON config file, read into {@link RepositoryServiceOptions}: the common fields of every
 * service (`parseHostConfig` of @clefnet/service-host: identity, profile, adminToken, listen,
 * directory, backend, logLevel) and the AR's own. Every field is checked; an unknown field or a
 * wrong value is CONFIG_INVALID naming the field. The file holds the AR's Key: store it like one.
 *
 * ```json
 * { "identity": { "name": "ar.clefnet.test", "clef": "<128 hex>", "key": "<128 hex>" },
 *   "keyServers": [{ "name": "ks1.clefnet.test", "clef": "<128 hex>", "scopes": ["clef"] },
 *                  { "name": "ks2.clefnet.test", "clef": "<128 hex>", "scopes": ["mint"] }],
 *   "mintLocation": "ws://127.0.0.1:7002/ws",
 *   "directory": { "ks1.clefnet.test": "ws://127.0.0.1:7001/ws", "ks2.clefnet.test": "ws://127.0.0.1:7002/ws",
 *                  "ve1.anc1.clefnet.test": "ws://127.0.0.1:7005/ws" },
 *   "dataDir": "data/ar", "adminToken": "<at least 16 characters>",
 *   "listen": { "host": "127.0.0.1", "port": 7003 }, "profile": "patent",
 *   "backend": "node", "synchronous": "full", "requestTimeoutMs": 30000, "logLevel": "info",
 *   "stepOrder": "published" }
 * ```
 */
import { isAbsolute, join } from 'node:path';

import { STEP_ORDERS } from '@clefnet/protocol';
import {
  configField,
  configObject,
  HOST_CONFIG_FIELDS,
  type LogLevel,
  parseHostConfig,
} from '@clefnet/service-host';
import type { RepositoryServiceOptions } from './server.js';

/** What a config file gives: the service options (without a logger) and the log level. */
export type RepositoryConfig = Omit<RepositoryServiceOptions, 'logger' | 'connect'> & {
  readonly logLevel: LogLevel;
};

const FIELDS = [
  ...HOST_CONFIG_FIELDS,
  'keyServers',
  'mintLocation',
  'dataDir',
  'synchronous',
  'requestTimeoutMs',
  'stepOrder',
] as const;

/** Reads a parsed config file; relative `dataDir` is taken from `baseDir` (the file's folder). */
export function parseConfig(json: unknown, baseDir: string): RepositoryConfig {
  const c = configObject(json, FIELDS);
  const { array, string, oneOf, integer } = configField;
  const common = parseHostConfig(c);
  const dataDir = string(c.dataDir, 'dataDir');
  const keyServers = array(c.keyServers, 'keyServers').map((k, i) =>
    configField.knownKeyServer(k, `keyServers[${i}]`),
  );
  if (!keyServers.some((k) => k.scopes.includes('clef')))
    throw configField.invalid('keyServers', 'must list a key server with scope clef (KServ1)');
  return {
    ...common,
    keyServers,
    dataDir: isAbsolute(dataDir) ? dataDir : join(baseDir, dataDir),
    ...(c.mintLocation === undefined ? {} : { mintLocation: string(c.mintLocation, 'mintLocation') }),
    ...(c.synchronous === undefined
      ? {}
      : { synchronous: oneOf(c.synchronous, ['full', 'normal'] as const, 'synchronous') }),
    ...(c.requestTimeoutMs === undefined
      ? {}
      : { requestTimeoutMs: positive(integer(c.requestTimeoutMs, 'requestTimeoutMs'), 'requestTimeoutMs') }),
    ...(c.stepOrder === undefined ? {} : { stepOrder: oneOf(c.stepOrder, STEP_ORDERS, 'stepOrder') }),
  };
}

function positive(n: number, field: string): number {
  if (n === 0) throw configField.invalid(field, 'must be at least 1');
  return n;
}
