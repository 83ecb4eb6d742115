import { join } from 'node:path';
import { accessPairToJson, encodeClef, toHex } from '@clefnet/protocol';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createKeyServerService, DB_FILE } from '../src/index.js';
import {
  AUTH,
  httpJson,
  manualClock,
  N,
  type Running,
  silent,
  startKeyServer,
  T0,
  TOKEN,
  TRIPLES,
  tempDir,
} from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function start(): Promise<Running & { clock: ReturnType<typeof manualClock>; dataDir: string }> {
  const dir = tempDir();
  const clock = manualClock();
  const running = await startKeyServer({ dataDir: dir.path, clock: clock.now });
  cleanup.push(dir.remove, () => running.service.stop());
  return { ...running, clock, dataDir: dir.path };
}

const hex = (t: { clef: Parameters<typeof encodeClef>[0] }) => toHex(encodeClef(t.clef));

describe('health and readiness', () => {
  it('GET /health is 200 and GET /ready is 200 with its checks while listening', async () => {
    const { address } = await start();
    expect(await httpJson('GET', `${address.http}/health`)).toMatchObject({
      status: 200,
      body: { status: 'ok' },
    });
    expect(await httpJson('GET', `${address.http}/ready`)).toMatchObject({
      status: 200,
      body: { status: 'ready', checks: { storeOpen: true, listening: true, stopping: false } },
    });
  });

  it('GET /ready is 503 before the service listens', async () => {
    const dir = tempDir();
    cleanup.push(dir.remove);
    const service = createKeyServerService({
      identity: TRIPLES.ks1,
      serves: ['clef'],
      dataDir: dir.path,
      adminToken: TOKEN,
      logger: silent,
    });
    cleanup.push(() => service.stop());
    const res = await service.app.inject({ method: 'GET', url: '/ready' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      status: 'not-ready',
      checks: { storeOpen: true, listening: false, stopping: false },
    });
  });

  it('an unknown route is 404 with a typed body', async () => {
    const { address } = await start();
    expect(await httpJson('GET', `${address.http}/nothing`)).toMatchObject({
      status: 404,
      body: { code: 'UNKNOWN_NAME', message: 'no route GET /nothing' },
    });
  });
});

describe('admin API: authentication', () => {
  const calls: [string, string, unknown][] = [
    ['POST', '/admin/pairs', accessPairToJson(TRIPLES.ar)],
    ['POST', '/admin/revoke', { name: N.ar }],
    ['GET', '/admin/bindings', undefined],
  ];
  const headers: [string, Record<string, string>][] = [
    ['no Authorization header', {}],
    ['a wrong token', { authorization: `Bearer ${TOKEN.slice(0, -1)}x` }],
    ['the token without "Bearer "', { authorization: TOKEN }],
    ['Basic auth', { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }],
  ];
  for (const [method, path, body] of calls) {
    for (const [what, h] of headers) {
      it(`${method} ${path} with ${what} is 401 and changes nothing`, async () => {
        const { address, service } = await start();
        const res = await httpJson(method, `${address.http}${path}`, body, h);
        expect(res.status, what).toBe(401);
        expect(res.headers.get('www-authenticate'), what).toBe('Bearer');
        expect(res.body, what).toEqual({
          code: 'NOT_AUTHORISED',
          message: 'the admin API needs Authorization: Bearer <token>',
        });
        expect(service.store.list(), what).toEqual([]);
      });
    }
  }
});

describe('admin API: register, revoke, list', () => {
  it('registers an access pair: 201 with the row, stored exactly, with a binding-created event', async () => {
    const { address, service, events, clock } = await start();
    clock.advance(1234);
    const res = await httpJson('POST', `${address.http}/admin/pairs`, accessPairToJson(TRIPLES.ar), AUTH);
    expect(res).toMatchObject({
      status: 201,
      body: { name: N.ar, clef: hex(TRIPLES.ar), owner: null, createdAt: T0 + 1234, revokedAt: null },
    });
    const db = new Database(service.store.path, { readonly: true });
    expect(
      db.prepare('SELECT name, lower(hex(clef)) AS clef, owner, created_at, revoked_at FROM bindings').all(),
    ).toEqual([{ name: N.ar, clef: hex(TRIPLES.ar), owner: null, created_at: T0 + 1234, revoked_at: null }]);
    db.close();
    expect(events.filter((e) => e.type === 'protocol').map((e) => e.type === 'protocol' && e.event)).toEqual([
      {
        at: T0 + 1234,
        party: N.ks1,
        type: 'binding-created',
        subject: N.ar,
        clef: toHex(TRIPLES.ar.clef.sign.subarray(0, 8)),
      },
    ]);
  });

  it('lists every binding ordered by Name, and revokes with the time', async () => {
    const { address, clock, dataDir } = await start();
    for (const t of [TRIPLES.machine, TRIPLES.ar, TRIPLES.ks2]) {
      expect((await httpJson('POST', `${address.http}/admin/pairs`, accessPairToJson(t), AUTH)).status).toBe(
        201,
      );
    }
    clock.advance(60_000);
    expect(await httpJson('POST', `${address.http}/admin/revoke`, { name: N.ar }, AUTH)).toMatchObject({
      status: 200,
      body: { name: N.ar, clef: hex(TRIPLES.ar), owner: null, createdAt: T0, revokedAt: T0 + 60_000 },
    });
    const list = await httpJson('GET', `${address.http}/admin/bindings`, undefined, AUTH);
    expect(list).toMatchObject({
      status: 200,
      body: {
        bindings: [
          { name: N.machine, clef: hex(TRIPLES.machine), owner: null, createdAt: T0, revokedAt: null },
          { name: N.ar, clef: hex(TRIPLES.ar), owner: null, createdAt: T0, revokedAt: T0 + 60_000 },
          { name: N.ks2, clef: hex(TRIPLES.ks2), owner: null, createdAt: T0, revokedAt: null },
        ],
      },
    });
    const db = new Database(join(dataDir, DB_FILE), { readonly: true });
    expect(db.prepare('SELECT name, revoked_at FROM bindings ORDER BY name').all()).toEqual([
      { name: N.machine, revoked_at: null },
      { name: N.ar, revoked_at: T0 + 60_000 },
      { name: N.ks2, revoked_at: null },
    ]);
    db.close();
  });

  it('revoking an unknown Name is 404 UNKNOWN_NAME and stores nothing', async () => {
    const { address, service } = await start();
    expect(
      await httpJson('POST', `${address.http}/admin/revoke`, { name: 'nobody.test' }, AUTH),
    ).toMatchObject({
      status: 404,
      body: { code: 'UNKNOWN_NAME', message: 'nobody.test is not registered' },
    });
    expect(service.store.list()).toEqual([]);
  });

  const bad: [string, string, unknown, number, string][] = [
    [
      'a Name with an upper-case letter',
      '/admin/pairs',
      { name: 'Ar.test', clef: hex(TRIPLES.ar) },
      400,
      'NAME_INVALID',
    ],
    [
      'a Clef that is not hex',
      '/admin/pairs',
      { name: 'ar.test', clef: 'zz'.repeat(64) },
      400,
      'ENCODING_BAD_VALUE',
    ],
    [
      'a Clef of 63 bytes',
      '/admin/pairs',
      { name: 'ar.test', clef: '00'.repeat(63) },
      400,
      'ENCODING_BAD_VALUE',
    ],
    ['no Clef', '/admin/pairs', { name: 'ar.test' }, 400, 'ENCODING_BAD_VALUE'],
    [
      'an extra field',
      '/admin/pairs',
      { ...accessPairToJson(TRIPLES.ar), key: '00' },
      400,
      'ENCODING_BAD_VALUE',
    ],
    ['a Key instead of an object', '/admin/pairs', ['ar.test'], 400, 'ENCODING_BAD_VALUE'],
    ['a revoke with an invalid Name', '/admin/revoke', { name: 'a..b' }, 400, 'NAME_INVALID'],
    ['a body over 16 KiB', '/admin/pairs', { name: 'a'.repeat(20_000), clef: '' }, 413, 'ENCODING_TOO_LARGE'],
  ];
  for (const [what, path, body, status, code] of bad) {
    it(`refuses ${what}: ${status} ${code}, nothing stored`, async () => {
      const { address, service } = await start();
      const res = await httpJson('POST', `${address.http}${path}`, body, AUTH);
      expect(res.status, what).toBe(status);
      expect((res.body as { code: string }).code, what).toBe(code);
      expect(service.store.list(), what).toEqual([]);
    });
  }
});
