/**
 * Publishing modules over the admin API: content-addressed files named by their SHA-256 (the same
 * content twice is one file), exact metadata rows, typed refusals of bad bodies, the bearer token.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeBackend, toHex } from '@clefnet/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { MODULES_DIR } from '../src/index.js';
import { AUTH, httpJson, manualClock, startRepository, T0, TOKEN, tempDir } from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const sha = (b: Uint8Array) => toHex(nodeBackend.sha256(b));
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

async function setUp() {
  const clock = manualClock();
  const dir = tempDir();
  cleanup.push(dir.remove);
  const ar = await startRepository({ dataDir: dir.path, clock: clock.now });
  cleanup.push(() => ar.service.stop());
  return { clock, dir, ar };
}

describe('publishing modules', () => {
  it('stores each distinct content once, named by its digest, with exact rows', async () => {
    const { clock, dir, ar } = await setUp();
    const billing = new Uint8Array([0x90, 0x90, 0xc3, 1, 2, 3]);
    const other = new Uint8Array([0xcc, 0xc3]);
    const url = `${ar.address.http}/admin/modules`;

    const r1 = await httpJson('POST', url, { name: 'billing', program: b64(billing) }, AUTH);
    expect(r1).toMatchObject({
      status: 201,
      body: { name: 'billing', digest: sha(billing), size: 6, publishedAt: T0 },
    });
    clock.advance(5);
    // The same bytes under another name, as raw octets: one file, two rows.
    const res = await fetch(`${url}?name=billing-copy`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/octet-stream' },
      body: billing,
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({
      name: 'billing-copy',
      digest: sha(billing),
      size: 6,
      publishedAt: T0 + 5,
    });
    clock.advance(5);
    await httpJson('POST', url, { name: 'transformer', program: b64(other) }, AUTH);

    expect((await httpJson('GET', url, undefined, AUTH)).body).toEqual({
      modules: [
        { name: 'billing', digest: sha(billing), size: 6, publishedAt: T0 },
        { name: 'billing-copy', digest: sha(billing), size: 6, publishedAt: T0 + 5 },
        { name: 'transformer', digest: sha(other), size: 2, publishedAt: T0 + 10 },
      ],
    });
    const files = readdirSync(join(dir.path, MODULES_DIR));
    expect(files.sort()).toEqual([sha(billing), sha(other)].sort());
    expect(new Uint8Array(readFileSync(join(dir.path, MODULES_DIR, sha(billing))))).toEqual(billing);
  });

  it('refuses bad bodies with a typed 400 and stores nothing', async () => {
    const { dir, ar } = await setUp();
    const url = `${ar.address.http}/admin/modules`;
    const cases: unknown[] = [
      { name: 'x' },
      { program: b64(new Uint8Array([1])) },
      { name: 'bad name', program: 'AQ==' },
      { name: '', program: 'AQ==' },
      { name: 'm', program: 'not base64!' },
      { name: 'm', program: 'AQ' },
      { name: 'm', program: '' },
      { name: 'm', program: 'AQ==', extra: 1 },
      { name: 7, program: 'AQ==' },
      ['m', 'AQ=='],
    ];
    for (const body of cases) {
      const r = await httpJson('POST', url, body, AUTH);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body, JSON.stringify(body)).toMatchObject({ code: 'ENCODING_BAD_VALUE' });
    }
    // Octets without ?name=, and a bad ?name=.
    for (const q of ['', '?name=a%20b']) {
      const res = await fetch(`${url}${q}`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/octet-stream' },
        body: new Uint8Array([1]),
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'ENCODING_BAD_VALUE' });
    }
    // Malformed JSON.
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: '{"name":',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'ENCODING_BAD_VALUE' });
    expect((await httpJson('GET', url, undefined, AUTH)).body).toEqual({ modules: [] });
    expect(readdirSync(join(dir.path, MODULES_DIR))).toEqual([]);
  });

  it('needs the bearer token (401 NOT_AUTHORISED)', async () => {
    const { ar } = await setUp();
    const base = `${ar.address.http}/admin`;
    for (const headers of [
      {},
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: TOKEN },
    ]) {
      for (const [method, path, body] of [
        ['GET', '/modules', undefined],
        ['POST', '/modules', { name: 'm', program: 'AQ==' }],
        ['POST', '/deploy', { module: 'm', anc: 've1.anc1.clefnet.test' }],
        ['GET', '/deployments/1', undefined],
      ] as const) {
        const r = await httpJson(method, `${base}${path}`, body, headers);
        expect(r.status, `${method} ${path}`).toBe(401);
        expect(r.body).toMatchObject({ code: 'NOT_AUTHORISED' });
      }
    }
    expect(ar.service.store.modules()).toEqual([]);
  });

  it('deploying an unknown module is 404 UNKNOWN_NAME; an unknown deployment too', async () => {
    const { ar } = await setUp();
    const r = await httpJson(
      'POST',
      `${ar.address.http}/admin/deploy`,
      { module: 'nope', anc: 've1.anc1.clefnet.test' },
      AUTH,
    );
    expect(r).toMatchObject({ status: 404, body: { code: 'UNKNOWN_NAME' } });
    const g = await httpJson('GET', `${ar.address.http}/admin/deployments/9`, undefined, AUTH);
    expect(g).toMatchObject({ status: 404, body: { code: 'UNKNOWN_NAME' } });
    expect(ar.service.store.deployments()).toEqual([]);
    expect(existsSync(ar.service.store.path)).toBe(true);
  });
});
