/**
 * The ANC's JSON config file, read into {@link AncServiceOptions}: the common fields of every
 * service (`parseHostConfig` of @clefnet/service-host) with the machine triple as `identity`, and
 * the ANC's own. Every field is checked; an unknown field or a wrong value is CONFIG_INVALID naming
 * the field. VE profiles are TB-8 profile files (their ROM, NVRAM and disk files relative to them).
 *
 * ```json
 * { "identity": { "name": "m.anc1.clefnet.test", "clef": "<128 hex>", "key": "<128 hex>" },
 *   "keyServers": [{ "name": "ks1.clefnet.test", "clef": "<128 hex>", "scopes": ["clef", "mint"] }],
 *   "directory": { "ks1.clefnet.test": "ws://127.0.0.1:7001/ws", "ks2.clefnet.test": "ws://127.0.0.1:7002/ws" },
 *   "firewall": { "config": "A", "confirmOutbound": false },
 *   "ves": [{ "profile": "fw/profile.json", "role": "firewall" },
 *           { "profile": "node/profile.json", "role": "node", "senders": ["ar.clefnet.test"] }],
 *   "asd": "asd.clefnet.test", "dataDir": "data/anc1", "adminToken": "<at least 16 characters>",
 *   "listen": { "host": "127.0.0.1", "port": 7005 }, "profile": "patent", "backend": "node",
 *   "ramBytes": 33554432, "slice": 50000, "requestTimeoutMs": 30000, "logLevel": "info" }
 * ```
 */
import { isAbsolute, join } from 'node:path';
import { loadProfile, type VeProfile } from '@clefnet/emulator';
import { ClefnetError, parseName } from '@clefnet/protocol';
import {
  configField,
  configObject,
  HOST_CONFIG_FIELDS,
  type LogLevel,
  parseHostConfig,
} from '@clefnet/service-host';
import type { NodeVe } from './node.js';
import type { AncServiceOptions } from './server.js';

export type AncConfig = Omit<AncServiceOptions, 'logger' | 'connect'> & { readonly logLevel: LogLevel };

const FIELDS = [
  ...HOST_CONFIG_FIELDS,
  'keyServers',
  'firewall',
  'ves',
  'asd',
  'dataDir',
  'ramBytes',
  'slice',
  'requestTimeoutMs',
] as const;

/** Reads a parsed config file; relative paths are taken from `baseDir` (the file's folder). */
export function parseConfig(json: unknown, baseDir: string): AncConfig {
  const c = configObject(json, FIELDS);
  const { array, string, oneOf, integer, object, fromProtocol } = configField;
  const common = parseHostConfig(c);
  const path = (p: string) => (isAbsolute(p) ? p : join(baseDir, p));
  const keyServers = array(c.keyServers, 'keyServers').map((k, i) =>
    configField.knownKeyServer(k, `keyServers[${i}]`),
  );
  const ks1 = keyServers.find((k) => k.scopes.includes('mint'));
  if (ks1 === undefined || !ks1.scopes.includes('clef'))
    throw configField.invalid('keyServers', 'must list KServ1 with scopes clef and mint');
  const fw = object(c.firewall, 'firewall');
  for (const k of Object.keys(fw))
    if (k !== 'config' && k !== 'confirmOutbound')
      throw configField.invalid(`firewall.${k}`, 'is not a field');
  const firewall = {
    config: oneOf(fw.config, ['A', 'B', 'C'] as const, 'firewall.config'),
    ...(fw.confirmOutbound === undefined
      ? {}
      : { confirmOutbound: boolean(fw.confirmOutbound, 'firewall.confirmOutbound') }),
  };
  const ves: NodeVe[] = array(c.ves, 'ves').map((v, i) => {
    const f = `ves[${i}]`;
    const o = object(v, f);
    for (const k of Object.keys(o))
      if (k !== 'profile' && k !== 'role' && k !== 'senders')
        throw configField.invalid(`${f}.${k}`, 'is not a field');
    const role = oneOf(o.role, ['firewall', 'node'] as const, `${f}.role`);
    const profile = veProfile(path(string(o.profile, `${f}.profile`)), `${f}.profile`);
    const senders =
      o.senders === undefined
        ? undefined
        : array(o.senders, `${f}.senders`).map((s, j) =>
            fromProtocol(`${f}.senders[${j}]`, () => parseName(string(s, `${f}.senders[${j}]`))),
          );
    return { profile, role, ...(senders === undefined ? {} : { senders }) };
  });
  if (ves.filter((v) => v.role === 'firewall').length !== 1)
    throw configField.invalid('ves', 'must have exactly one VE with role firewall');
  if (!ves.some((v) => v.role === 'node')) throw configField.invalid('ves', 'must have a VE with role node');
  const positive = (v: unknown, field: string) => {
    const n = integer(v, field);
    if (n === 0) throw configField.invalid(field, 'must be at least 1');
    return n;
  };
  return {
    ...common,
    keyServers,
    firewall,
    ves,
    ...(c.asd === undefined ? {} : { asd: fromProtocol('asd', () => parseName(string(c.asd, 'asd'))) }),
    ...(c.dataDir === undefined ? {} : { dataDir: path(string(c.dataDir, 'dataDir')) }),
    ...(c.ramBytes === undefined ? {} : { ramBytes: positive(c.ramBytes, 'ramBytes') }),
    ...(c.slice === undefined ? {} : { slice: positive(c.slice, 'slice') }),
    ...(c.requestTimeoutMs === undefined
      ? {}
      : { requestTimeoutMs: positive(c.requestTimeoutMs, 'requestTimeoutMs') }),
  };
}

/** A TB-8 profile file; any error reading or checking it names the config field. */
function veProfile(file: string, field: string): VeProfile {
  try {
    return loadProfile(file);
  } catch (e) {
    if (e instanceof ClefnetError)
      throw configField.invalid(field, `is invalid: ${e.message}`, { cause: e.code });
    throw e;
  }
}

function boolean(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw configField.invalid(field, 'must be true or false');
  return v;
}
