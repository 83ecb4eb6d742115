/**
 * The key server's JSON config file, read into {@link KeyServerServiceOptions}. Every field is
 * checked; an unknown field or a wrong value is CONFIG_INVALID naming the field (a bad triple or
 * Name keeps the protocol's code in `meta.cause`). The file holds the server's Key: store it like one.
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
import {
  type AccessPairJson,
  type AclEntry,
  accessPairFromJson,
  BACKEND_NAMES,
  type BackendName,
  backendByName,
  ClefnetError,
  type CreatePolicy,
  checkPattern,
  type KeyServerJob,
  type KnownKeyServer,
  parseName,
  type ServerScope,
  type TripleJson,
  tripleFromJson,
} from '@clefnet/protocol';
import type { KeyServerServiceOptions } from './server.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What a config file gives: the service options (without a logger) and the log level. */
export type KeyServerConfig = Omit<KeyServerServiceOptions, 'logger' | 'store' | 'connect'> & {
  readonly logLevel: LogLevel;
};

const FIELDS = [
  'identity',
  'serves',
  'profile',
  'nameOwnership',
  'acl',
  'keyServers',
  'dataDir',
  'adminToken',
  'listen',
  'directory',
  'backend',
  'synchronous',
  'logLevel',
  'requestTimeoutMs',
] as const;
const JOBS: readonly KeyServerJob[] = ['clef', 'mint', 'relay'];
const POLICIES: readonly CreatePolicy[] = ['overwrite', 'reject-if-exists', 'owner-only'];

/** Reads a parsed config file; relative `dataDir` is taken from `baseDir` (the file's folder). */
export function parseConfig(json: unknown, baseDir: string): KeyServerConfig {
  const c = object(json, 'config');
  for (const k of Object.keys(c))
    if (!(FIELDS as readonly string[]).includes(k)) throw invalid(k, 'is not a field');
  const backendName = c.backend === undefined ? 'node' : oneOf(c.backend, BACKEND_NAMES, 'backend');
  const backend = backendByName(backendName as BackendName);
  const listen = c.listen === undefined ? {} : object(c.listen, 'listen');
  const dataDir = string(c.dataDir, 'dataDir');
  const nameOwnership = c.nameOwnership === undefined ? undefined : object(c.nameOwnership, 'nameOwnership');
  const out: KeyServerConfig = {
    identity: protocol('identity', () =>
      tripleFromJson(backend, object(c.identity, 'identity') as unknown as TripleJson),
    ),
    serves: array(c.serves, 'serves').map((j, i) => oneOf(j, JOBS, `serves[${i}]`)),
    profile:
      c.profile === undefined ? 'patent' : oneOf(c.profile, ['patent', 'hardened'] as const, 'profile'),
    keyServers: (c.keyServers === undefined ? [] : array(c.keyServers, 'keyServers')).map((k, i) =>
      knownKeyServer(k, `keyServers[${i}]`),
    ),
    dataDir: isAbsolute(dataDir) ? dataDir : join(baseDir, dataDir),
    adminToken: string(c.adminToken, 'adminToken'),
    host: listen.host === undefined ? '127.0.0.1' : string(listen.host, 'listen.host'),
    port: listen.port === undefined ? 0 : integer(listen.port, 'listen.port'),
    directory: directory(c.directory),
    backend,
    logLevel: c.logLevel === undefined ? 'info' : oneOf(c.logLevel, LOG_LEVELS, 'logLevel'),
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
  if (out.serves.length === 0) throw invalid('serves', 'must name at least one job');
  return out;
}

function knownKeyServer(v: unknown, field: string): KnownKeyServer {
  const o = object(v, field);
  const pair = protocol(field, () => accessPairFromJson(o as unknown as AccessPairJson));
  const scopes = array(o.scopes, `${field}.scopes`).map((s, i) =>
    oneOf(s, ['clef', 'mint', 'relay'] as readonly ServerScope[], `${field}.scopes[${i}]`),
  );
  return { ...pair, scopes };
}

function aclEntry(v: unknown, field: string): AclEntry {
  const o = object(v, field);
  const requester = string(o.requester, `${field}.requester`);
  const subject = string(o.subject, `${field}.subject`);
  protocol(field, () => [checkPattern(requester), checkPattern(subject)]);
  return { requester, subject };
}

function directory(v: unknown): Record<string, string> {
  if (v === undefined) return {};
  const o = object(v, 'directory');
  const out: Record<string, string> = {};
  for (const [name, url] of Object.entries(o)) {
    protocol(`directory.${name}`, () => parseName(name));
    out[name] = string(url, `directory.${name}`);
  }
  return out;
}

function invalid(field: string, why: string, meta: Record<string, string> = {}): ClefnetError {
  return new ClefnetError('CONFIG_INVALID', `config field ${field} ${why}`, { field, ...meta });
}

/** Runs a protocol parser; its error becomes CONFIG_INVALID naming the field, with the code kept. */
function protocol<T>(field: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof ClefnetError && e.code !== 'CONFIG_INVALID')
      throw invalid(field, `is invalid: ${e.message}`, { cause: e.code });
    throw e;
  }
}

function object(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(field, 'must be an object');
  return v as Record<string, unknown>;
}

function array(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw invalid(field, 'must be an array');
  return v;
}

function string(v: unknown, field: string): string {
  if (typeof v !== 'string' || v === '') throw invalid(field, 'must be a non-empty string');
  return v;
}

function integer(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw invalid(field, 'must be an integer >= 0');
  return v;
}

function boolean(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw invalid(field, 'must be true or false');
  return v;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], field: string): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
    throw invalid(field, `must be one of ${allowed.join(', ')}`);
  return v as T;
}
