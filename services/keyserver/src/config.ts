/**
 * The key server's JSON config file, read into {@link KeyServerServiceOptions}: the common fields
 * of every service (`parseHostConfig` of @clefnet/service-host: identity, profile, adminToken,
 * listen, directory, backend, logLevel) and the key server's own. Every field is checked; an
 * unknown field or a wrong value is CONFIG_INVALID naming the field (a bad triple or Name keeps the
 * protocol's code in `meta.cause`). The file holds the server's Key: store it like one.
 *
 * ```json
 * { "identity": { "name": "ks1.clefnet.test", "clef": "<128 hex>", "key": "<128 hex>" },
 *   "serves": ["clef", "mint"], "profile": "patent",
 *   "nameOwnership": { "policy": "owner-only" },
 *   "keyServers": [{ "name": "ks1.clefnet.test", "clef": "<128 hex>", "scopes": ["clef"] }],
 *   "dataDir": "data/ks1", "adminToken": "<at least 16 characters>",
 *   "listen": { "host": "127.0.0.1", "port": 7001 },
 *   "directory": { "ks1.clefnet.test": "ws://127.0.0.1:7001/ws" },
 *   "backend": "node", "synchronous": "full", "logLevel": "info" }
 * ```
 */
import { isAbsolute, join } from 'node:path';
import { type AclEntry, type CreatePolicy, checkPattern, type KeyServerJob } from '@clefnet/protocol';
import {
  configField,
  configObject,
  HOST_CONFIG_FIELDS,
  type LogLevel,
  parseHostConfig,
} from '@clefnet/service-host';
import type { KeyServerServiceOptions } from './server.js';

/** What a config file gives: the service options (without a logger) and the log level. */
export type KeyServerConfig = Omit<KeyServerServiceOptions, 'logger' | 'store' | 'connect'> & {
  readonly logLevel: LogLevel;
};

/** Every field of the file: the common ones of @clefnet/service-host, then the key server's own. */
const FIELDS = [
  ...HOST_CONFIG_FIELDS,
  'serves',
  'nameOwnership',
  'acl',
  'keyServers',
  'dataDir',
  'synchronous',
  'requestTimeoutMs',
] as const;
const JOBS: readonly KeyServerJob[] = ['clef', 'mint', 'relay'];
const POLICIES: readonly CreatePolicy[] = ['overwrite', 'reject-if-exists', 'owner-only'];

/** Reads a parsed config file; relative `dataDir` is taken from `baseDir` (the file's folder). */
export function parseConfig(json: unknown, baseDir: string): KeyServerConfig {
  const c = configObject(json, FIELDS);
  const { object, array, string, integer, boolean, oneOf } = configField;
  const common = parseHostConfig(c);
  const dataDir = string(c.dataDir, 'dataDir');
  const nameOwnership = c.nameOwnership === undefined ? undefined : object(c.nameOwnership, 'nameOwnership');
  const out: KeyServerConfig = {
    ...common,
    serves: array(c.serves, 'serves').map((j, i) => oneOf(j, JOBS, `serves[${i}]`)),
    keyServers: (c.keyServers === undefined ? [] : array(c.keyServers, 'keyServers')).map((k, i) =>
      configField.knownKeyServer(k, `keyServers[${i}]`),
    ),
    dataDir: isAbsolute(dataDir) ? dataDir : join(baseDir, dataDir),
    ...(c.synchronous === undefined
      ? {}
      : { synchronous: oneOf(c.synchronous, ['full', 'normal'] as const, 'synchronous') }),
    ...(c.requestTimeoutMs === undefined
      ? {}
      : { requestTimeoutMs: integer(c.requestTimeoutMs, 'requestTimeoutMs') }),
    ...(c.acl === undefined ? {} : { acl: array(c.acl, 'acl').map((e, i) => aclEntry(e, `acl[${i}]`)) }),
    ...(nameOwnership === undefined
      ? {}
      : {
          nameOwnership: {
            ...(nameOwnership.policy === undefined
              ? {}
              : { policy: oneOf(nameOwnership.policy, POLICIES, 'nameOwnership.policy') }),
            ...(nameOwnership.subtreeOnly === undefined
              ? {}
              : { subtreeOnly: boolean(nameOwnership.subtreeOnly, 'nameOwnership.subtreeOnly') }),
          },
        }),
  };
  if (out.serves.length === 0) throw configField.invalid('serves', 'must name at least one job');
  return out;
}

function aclEntry(v: unknown, field: string): AclEntry {
  const { object, string, fromProtocol } = configField;
  const o = object(v, field);
  const requester = string(o.requester, `${field}.requester`);
  const subject = string(o.subject, `${field}.subject`);
  fromProtocol(field, () => [checkPattern(requester), checkPattern(subject)]);
  return { requester, subject };
}
