/**
 * The ASD's JSON config file, read into {@link AsdServiceOptions}: the common fields of every
 * service (`parseHostConfig` of @clefnet/service-host: identity, profile, adminToken, listen,
 * directory, backend, logLevel) and the ASD's own. Every field is checked; an unknown field or a
 * wrong value is CONFIG_INVALID naming the field (a bad triple or Name keeps the protocol's code in
 * `meta.cause`). The file holds the ASD's Key: store it like one.
 *
 * ```json
 * { "identity": { "name": "asd.clefnet.test", "clef": "<128 hex>", "key": "<128 hex>" },
 *   "keyServers": [{ "name": "ks2.clefnet.test", "clef": "<128 hex>", "scopes": ["relay"] }],
 *   "dataDir": "data/asd", "adminToken": "<at least 16 characters>",
 *   "listen": { "host": "127.0.0.1", "port": 7004 }, "profile": "patent",
 *   "backend": "node", "synchronous": "full", "logLevel": "info" }
 * ```
 */
import { isAbsolute, join } from 'node:path';

import {
  configField,
  configObject,
  HOST_CONFIG_FIELDS,
  type LogLevel,
  parseHostConfig,
} from '@clefnet/service-host';
import type { AsdServiceOptions } from './server.js';

/** What a config file gives: the service options (without a logger) and the log level. */
export type AsdConfig = Omit<AsdServiceOptions, 'logger' | 'store' | 'connect'> & {
  readonly logLevel: LogLevel;
};

/** Every field of the file: the common ones of @clefnet/service-host, then the ASD's own. */
const FIELDS = [...HOST_CONFIG_FIELDS, 'keyServers', 'dataDir', 'synchronous'] as const;

/** Reads a parsed config file; relative `dataDir` is taken from `baseDir` (the file's folder). */
export function parseConfig(json: unknown, baseDir: string): AsdConfig {
  const c = configObject(json, FIELDS);
  const { array, string, oneOf } = configField;
  const common = parseHostConfig(c);
  const dataDir = string(c.dataDir, 'dataDir');
  const keyServers = array(c.keyServers, 'keyServers').map((k, i) =>
    configField.knownKeyServer(k, `keyServers[${i}]`),
  );
  if (!keyServers.some((k) => k.scopes.includes('relay')))
    throw configField.invalid('keyServers', 'must list at least one key server with scope relay');
  return {
    ...common,
    keyServers,
    dataDir: isAbsolute(dataDir) ? dataDir : join(baseDir, dataDir),
    ...(c.synchronous === undefined
      ? {}
      : { synchronous: oneOf(c.synchronous, ['full', 'normal'] as const, 'synchronous') }),
  };
}
