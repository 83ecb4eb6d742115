import { join } from 'node:path';
import { accessPairToJson, ClefnetError, nobleBackend, nodeBackend, tripleToJson } from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/index.js';
import { N, TRIPLES } from './helpers.js';

const BASE = {
  identity: tripleToJson(TRIPLES.ks2),
  serves: ['mint', 'relay'],
  dataDir: 'data/ks2',
  adminToken: 'a-token-of-16-chars',
};

function refusal(json: unknown): { code: string; meta: unknown } {
  try {
    parseConfig(json, '/etc/clefnet');
  } catch (e) {
    if (e instanceof ClefnetError) return { code: e.code, meta: e.meta };
    throw e;
  }
  throw new Error('accepted');
}

describe('config file', () => {
  it('reads a minimal file with the defaults filled in', () => {
    const c = parseConfig(BASE, '/etc/clefnet');
    expect(c).toEqual({
      identity: TRIPLES.ks2,
      serves: ['mint', 'relay'],
      profile: 'patent',
      keyServers: [],
      dataDir: join('/etc/clefnet', 'data/ks2'),
      adminToken: 'a-token-of-16-chars',
      host: '127.0.0.1',
      port: 0,
      directory: {},
      backend: nodeBackend,
      logLevel: 'info',
    });
  });

  it('reads every field', () => {
    const c = parseConfig(
      {
        ...BASE,
        dataDir: '/var/lib/ks2',
        profile: 'hardened',
        nameOwnership: { policy: 'owner-only', subtreeOnly: false },
        acl: [{ requester: '*.clefnet.test', subject: '*' }],
        keyServers: [{ ...accessPairToJson(TRIPLES.ks1), scopes: ['clef'] }],
        listen: { host: '0.0.0.0', port: 7002 },
        directory: { [N.ks1]: 'ws://127.0.0.1:7001/ws' },
        backend: 'noble',
        synchronous: 'normal',
        logLevel: 'warn',
        requestTimeoutMs: 5000,
      },
      '/etc/clefnet',
    );
    expect(c).toEqual({
      identity: TRIPLES.ks2,
      serves: ['mint', 'relay'],
      profile: 'hardened',
      nameOwnership: { policy: 'owner-only', subtreeOnly: false },
      acl: [{ requester: '*.clefnet.test', subject: '*' }],
      keyServers: [{ name: N.ks1, clef: TRIPLES.ks1.clef, scopes: ['clef'] }],
      dataDir: '/var/lib/ks2',
      adminToken: 'a-token-of-16-chars',
      host: '0.0.0.0',
      port: 7002,
      directory: { [N.ks1]: 'ws://127.0.0.1:7001/ws' },
      backend: nobleBackend,
      synchronous: 'normal',
      logLevel: 'warn',
      requestTimeoutMs: 5000,
    });
  });

  const bad: [string, unknown, Record<string, string>][] = [
    ['not an object', [], { field: 'config' }],
    ['an unknown field', { ...BASE, port: 1 }, { field: 'port' }],
    ['no identity', { ...BASE, identity: undefined }, { field: 'identity' }],
    [
      'an identity whose Clef is not its Key',
      { ...BASE, identity: { ...tripleToJson(TRIPLES.ks2), clef: accessPairToJson(TRIPLES.ks1).clef } },
      { field: 'identity', cause: 'KEY_INVALID' },
    ],
    [
      'an identity with a bad Name',
      { ...BASE, identity: { ...tripleToJson(TRIPLES.ks2), name: 'KS2' } },
      { field: 'identity', cause: 'NAME_INVALID' },
    ],
    ['no jobs', { ...BASE, serves: [] }, { field: 'serves' }],
    ['an unknown job', { ...BASE, serves: ['mint', 'print'] }, { field: 'serves[1]' }],
    ['an unknown profile', { ...BASE, profile: 'strict' }, { field: 'profile' }],
    [
      'a known key server with a bad scope',
      { ...BASE, keyServers: [{ ...accessPairToJson(TRIPLES.ks1), scopes: ['all'] }] },
      { field: 'keyServers[0].scopes[0]' },
    ],
    [
      'a known key server with a short Clef',
      { ...BASE, keyServers: [{ name: N.ks1, clef: '00', scopes: ['clef'] }] },
      { field: 'keyServers[0]', cause: 'KEY_INVALID' },
    ],
    [
      'an ACL pattern that is not one',
      { ...BASE, acl: [{ requester: '**', subject: '*' }] },
      { field: 'acl[0]', cause: 'NAME_INVALID' },
    ],
    [
      'an unknown policy',
      { ...BASE, nameOwnership: { policy: 'first-come' } },
      { field: 'nameOwnership.policy' },
    ],
    ['a port that is text', { ...BASE, listen: { port: '7001' } }, { field: 'listen.port' }],
    [
      'a directory key that is not a Name',
      { ...BASE, directory: { 'KS1!': 'ws://x' } },
      { field: 'directory.KS1!', cause: 'NAME_INVALID' },
    ],
    ['an unknown backend', { ...BASE, backend: 'openssl' }, { field: 'backend' }],
    ['an unknown log level', { ...BASE, logLevel: 'loud' }, { field: 'logLevel' }],
    ['an empty admin token', { ...BASE, adminToken: '' }, { field: 'adminToken' }],
  ];
  for (const [what, json, meta] of bad) {
    it(`refuses ${what}: CONFIG_INVALID`, () => {
      expect(refusal(json), what).toEqual({ code: 'CONFIG_INVALID', meta });
    });
  }
});
