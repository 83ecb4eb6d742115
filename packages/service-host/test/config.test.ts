import {
  ClefnetError,
  generateTriple,
  nobleBackend,
  nodeBackend,
  parseName,
  seededRandom,
  tripleToJson,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { checkHostOptions, configObject, HOST_CONFIG_FIELDS, parseHostConfig } from '../src/index.js';

const NAME = parseName('host.clefnet.test');
const TRIPLE = generateTriple(nodeBackend, seededRandom('service-host-tests/config'), NAME);
const TOKEN = 'service-host-token-0123456789';
const base = { identity: tripleToJson(TRIPLE), adminToken: TOKEN };

function refusal(f: () => unknown): { code: string; meta: unknown } {
  try {
    f();
  } catch (e) {
    if (e instanceof ClefnetError) return { code: e.code, meta: e.meta };
    throw e;
  }
  throw new Error('no error');
}

describe('parseHostConfig', () => {
  it('takes the defaults for every optional field', () => {
    const c = parseHostConfig(configObject(base, HOST_CONFIG_FIELDS));
    expect({ ...c, identity: c.identity.name }).toEqual({
      identity: NAME,
      profile: 'patent',
      adminToken: TOKEN,
      host: '127.0.0.1',
      port: 0,
      directory: {},
      backend: nodeBackend,
      logLevel: 'info',
    });
  });

  it('reads every field', () => {
    const c = parseHostConfig(
      configObject(
        {
          ...base,
          profile: 'hardened',
          listen: { host: '::1', port: 7001 },
          directory: { 'peer.clefnet.test': 'ws://127.0.0.1:7002/ws' },
          backend: 'noble',
          logLevel: 'warn',
        },
        HOST_CONFIG_FIELDS,
      ),
    );
    expect([c.profile, c.host, c.port, c.directory, c.backend, c.logLevel]).toEqual([
      'hardened',
      '::1',
      7001,
      { 'peer.clefnet.test': 'ws://127.0.0.1:7002/ws' },
      nobleBackend,
      'warn',
    ]);
  });

  const bad: [string, Record<string, unknown>, unknown][] = [
    ['an unknown field', { ...base, serves: ['clef'] }, { field: 'serves' }],
    ['a bad profile', { ...base, profile: 'lax' }, { field: 'profile' }],
    ['a negative port', { ...base, listen: { port: -1 } }, { field: 'listen.port' }],
    [
      'a bad directory Name',
      { ...base, directory: { 'Bad Name': 'ws://x' } },
      expect.objectContaining({ field: 'directory.Bad Name', cause: 'NAME_INVALID' }),
    ],
    [
      'a triple whose Clef is not its Key',
      { ...base, identity: { ...base.identity, clef: '00'.repeat(64) } },
      expect.objectContaining({ field: 'identity' }),
    ],
    ['a missing adminToken', { identity: base.identity }, { field: 'adminToken' }],
  ];
  for (const [what, json, meta] of bad) {
    it(`refuses ${what} with CONFIG_INVALID naming the field`, () => {
      expect(refusal(() => parseHostConfig(configObject(json, HOST_CONFIG_FIELDS)))).toEqual({
        code: 'CONFIG_INVALID',
        meta,
      });
    });
  }
});

describe('checkHostOptions', () => {
  const bad: [string, Parameters<typeof checkHostOptions>[0], string][] = [
    ['a short token', { adminToken: 'short' }, 'adminToken must be a string of at least 16 characters'],
    ['whitespace in the token', { adminToken: `${TOKEN} x` }, 'adminToken must not contain whitespace'],
    ['a port over 65535', { adminToken: TOKEN, port: 70_000 }, 'port 70000 is not 0..65535'],
    [
      'a directory entry that is not a URL',
      { adminToken: TOKEN, directory: { a: 'nope' } },
      'directory entry for a is not a URL: nope',
    ],
    [
      'an http directory entry',
      { adminToken: TOKEN, directory: { a: 'http://x' } },
      'directory entry for a is not ws:// or wss://',
    ],
  ];
  for (const [what, opts, message] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => checkHostOptions(opts)).toThrow(message);
      expect(refusal(() => checkHostOptions(opts)).code).toBe('CONFIG_INVALID');
    });
  }

  it('accepts a good token, port and ws:// / wss:// entries', () => {
    expect(
      checkHostOptions({ adminToken: TOKEN, port: 65_535, directory: { a: 'ws://x/ws', b: 'wss://y/ws' } }),
    ).toBeUndefined();
  });
});
