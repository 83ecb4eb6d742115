/**
 * What every service's JSON config file has in common, and the checks its own fields use. Every
 * field is checked; an unknown field or a wrong value is CONFIG_INVALID naming the field (a bad
 * triple or Name keeps the protocol's code in `meta.cause`). The file holds the service's Key:
 * store it like one.
 *
 * ```json
 * { "identity": { "name": "ks1.clefnet.test", "clef": "<128 hex>", "key": "<128 hex>" },
 *   "profile": "patent", "adminToken": "<at least 16 characters>",
 *   "listen": { "host": "127.0.0.1", "port": 7001 },
 *   "directory": { "ks1.clefnet.test": "ws://127.0.0.1:7001/ws" },
 *   "backend": "node", "logLevel": "info" }
 * ```
 */
import {
  type AccessPairJson,
  type AuthorityTriple,
  accessPairFromJson,
  BACKEND_NAMES,
  type BackendName,
  backendByName,
  ClefnetError,
  type CryptoBackend,
  type KnownKeyServer,
  type ProfileName,
  parseName,
  type ServerScope,
  type TripleJson,
  tripleFromJson,
} from '@clefnet/protocol';
import { MIN_TOKEN_LENGTH } from './http/auth.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The fields {@link parseHostConfig} reads; a service lists them with its own. */
export const HOST_CONFIG_FIELDS = [
  'identity',
  'profile',
  'adminToken',
  'listen',
  'directory',
  'backend',
  'logLevel',
] as const;

/** The common part of a service's config. */
export interface HostConfig {
  /** The service's triple `{name, clef, key}` (tripleToJson; the Clef must belong to the Key). */
  readonly identity: AuthorityTriple;
  /** Default `patent`. */
  readonly profile: ProfileName;
  readonly adminToken: string;
  /** `listen.host`, default 127.0.0.1. */
  readonly host: string;
  /** `listen.port`, default 0 (any free port). */
  readonly port: number;
  /** Name -> ws:// URL (TB-15); default none. */
  readonly directory: Record<string, string>;
  /** `node` (default) or `noble`. */
  readonly backend: CryptoBackend;
  /** Default `info`. */
  readonly logLevel: LogLevel;
}

/**
 * Reads a parsed config file as an object whose keys are all in `fields` (the service's own and
 * {@link HOST_CONFIG_FIELDS}); the first unknown key is CONFIG_INVALID.
 */
export function configObject(json: unknown, fields: readonly string[]): Record<string, unknown> {
  const c = configField.object(json, 'config');
  for (const k of Object.keys(c)) if (!fields.includes(k)) throw configField.invalid(k, 'is not a field');
  return c;
}

/** The common fields of a config object (see {@link configObject}). */
export function parseHostConfig(c: Record<string, unknown>): HostConfig {
  const f = configField;
  const backendName = c.backend === undefined ? 'node' : f.oneOf(c.backend, BACKEND_NAMES, 'backend');
  const backend = backendByName(backendName as BackendName);
  const listen = c.listen === undefined ? {} : f.object(c.listen, 'listen');
  return {
    identity: f.fromProtocol('identity', () =>
      tripleFromJson(backend, f.object(c.identity, 'identity') as unknown as TripleJson),
    ),
    profile:
      c.profile === undefined ? 'patent' : f.oneOf(c.profile, ['patent', 'hardened'] as const, 'profile'),
    adminToken: f.string(c.adminToken, 'adminToken'),
    host: listen.host === undefined ? '127.0.0.1' : f.string(listen.host, 'listen.host'),
    port: listen.port === undefined ? 0 : f.integer(listen.port, 'listen.port'),
    directory: directory(c.directory),
    backend,
    logLevel: c.logLevel === undefined ? 'info' : f.oneOf(c.logLevel, LOG_LEVELS, 'logLevel'),
  };
}

/**
 * Checks the options a service passes on to its host (also when they come from code, not a file):
 * the admin token (≥ 16 characters, no whitespace), the port, ws:// or wss:// directory URLs.
 */
export function checkHostOptions(opts: {
  readonly adminToken: string;
  readonly port?: number;
  readonly directory?: Readonly<Record<string, string>>;
}): void {
  const bad = (message: string) => new ClefnetError('CONFIG_INVALID', message);
  if (typeof opts.adminToken !== 'string' || opts.adminToken.length < MIN_TOKEN_LENGTH)
    throw bad(`adminToken must be a string of at least ${MIN_TOKEN_LENGTH} characters`);
  if (/[\s]/.test(opts.adminToken)) throw bad('adminToken must not contain whitespace');
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw bad(`port ${port} is not 0..65535`);
  for (const [name, url] of Object.entries(opts.directory ?? {})) {
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      throw bad(`directory entry for ${name} is not a URL: ${url}`);
    }
    if (protocol !== 'ws:' && protocol !== 'wss:')
      throw bad(`directory entry for ${name} is not ws:// or wss://`);
  }
}

function directory(v: unknown): Record<string, string> {
  if (v === undefined) return {};
  const o = configField.object(v, 'directory');
  const out: Record<string, string> = {};
  for (const [name, url] of Object.entries(o)) {
    configField.fromProtocol(`directory.${name}`, () => parseName(name));
    out[name] = configField.string(url, `directory.${name}`);
  }
  return out;
}

/** Field checks for a service's own config fields; each throws CONFIG_INVALID naming the field. */
export const configField = {
  invalid(field: string, why: string, meta: Record<string, string> = {}): ClefnetError {
    return new ClefnetError('CONFIG_INVALID', `config field ${field} ${why}`, { field, ...meta });
  },

  /** Runs a protocol parser; its error becomes CONFIG_INVALID naming the field, with the code kept. */
  fromProtocol<T>(field: string, parse: () => T): T {
    try {
      return parse();
    } catch (e) {
      if (e instanceof ClefnetError && e.code !== 'CONFIG_INVALID')
        throw configField.invalid(field, `is invalid: ${e.message}`, { cause: e.code });
      throw e;
    }
  },

  object(v: unknown, field: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw configField.invalid(field, 'must be an object');
    return v as Record<string, unknown>;
  },

  array(v: unknown, field: string): unknown[] {
    if (!Array.isArray(v)) throw configField.invalid(field, 'must be an array');
    return v;
  },

  string(v: unknown, field: string): string {
    if (typeof v !== 'string' || v === '') throw configField.invalid(field, 'must be a non-empty string');
    return v;
  },

  integer(v: unknown, field: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw configField.invalid(field, 'must be an integer >= 0');
    return v;
  },

  boolean(v: unknown, field: string): boolean {
    if (typeof v !== 'boolean') throw configField.invalid(field, 'must be true or false');
    return v;
  },

  oneOf<T extends string>(v: unknown, allowed: readonly T[], field: string): T {
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
      throw configField.invalid(field, `must be one of ${allowed.join(', ')}`);
    return v as T;
  },

  /** A key server's access pair with its scopes: `{name, clef, scopes: ["clef" | "mint" | "relay"]}`. */
  knownKeyServer(v: unknown, field: string): KnownKeyServer {
    const o = configField.object(v, field);
    const pair = configField.fromProtocol(field, () => accessPairFromJson(o as unknown as AccessPairJson));
    const scopes = configField
      .array(o.scopes, `${field}.scopes`)
      .map((s, i) => configField.oneOf(s, SERVER_SCOPES, `${field}.scopes[${i}]`));
    return { ...pair, scopes };
  },
} as const;

const SERVER_SCOPES: readonly ServerScope[] = ['clef', 'mint', 'relay'];
