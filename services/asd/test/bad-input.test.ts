/**
 * Bad input on the ASD's /ws and admin API: garbage frames, an oversize and a text message, a frame
 * sealed for someone else, a failing transaction, bad admin requests. Each case checks the exact
 * typed refusal or clean close, that nothing is stored, and that the service goes on serving the
 * channel.
 */
import { join } from 'node:path';
import { LIMITS, seededRandom, utf8 } from '@clefnet/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { DB_FILE, openSqliteAsdStore, type ServiceEvent } from '../src/index.js';
import {
  AUTH,
  Channel,
  httpJson,
  manualClock,
  N,
  type Running,
  startAsd,
  TRIPLES,
  tempDir,
  until,
} from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setUp(extra: Parameters<typeof startAsd>[0] = {}) {
  const clock = manualClock();
  const dir = tempDir();
  cleanup.push(dir.remove);
  const asd = await startAsd({ dataDir: dir.path, clock: clock.now, profile: 'hardened', ...extra });
  cleanup.push(() => asd.service.stop());
  const channel = new Channel('hardened', clock.now);
  cleanup.push(() => channel.close());
  await channel.connect(asd.address.ws);
  return { clock, dir, asd, channel };
}

async function raw(r: Running): Promise<WebSocket> {
  const ws = new WebSocket(r.address.ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  cleanup.push(() => ws.terminate());
  return ws;
}

const closeOf = (ws: WebSocket) =>
  new Promise<{ code: number; reason: string }>((r) =>
    ws.once('close', (code, reason) => r({ code, reason: reason.toString() })),
  );
const rejections = (events: ServiceEvent[]) =>
  events.flatMap((e) => (e.type === 'protocol' && e.event.type === 'rejected' ? [e.event.code] : []));

/** The channel still works, and the record count of billing is `n` after it. */
async function stillServes(channel: Channel, n: number): Promise<void> {
  expect(await channel.request(N.billing, utf8('after'))).toMatchObject({
    kind: 'channel-data',
    data: utf8(`ok ${n}`),
  });
}

describe('bad frames on /ws', () => {
  it('garbage and truncated frames are refused with their codes; the socket stays open; nothing is stored', async () => {
    const { asd, channel } = await setUp();
    const ws = await raw(asd);
    const random = seededRandom('asd-tests/garbage')(300);
    ws.send(new Uint8Array(0));
    ws.send(random);
    await until(() => (rejections(asd.events).length >= 2 ? true : undefined), 5000, 'two rejections');
    expect(rejections(asd.events)).toEqual([
      'ENCODING_TRUNCATED',
      expect.stringMatching(/^ENCODING_|^FRAME_/),
    ]);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(asd.service.store.records()).toEqual([]);
    await stillServes(channel, 1);
  });

  it('an OPEN sealed for KServ2 sent straight to the ASD does not open (CRYPTO_OPEN); nothing is stored', async () => {
    const { asd, channel, clock } = await setUp();
    const direct = new Channel('hardened', clock.now);
    const ws = await raw(asd);
    // The SecApp's frame for KServ2, replayed at the ASD.
    const open = direct.appParty(N.billing).request(N.asd, utf8('sneaky'));
    ws.send(open.send[0]!.bytes);
    await until(() => (rejections(asd.events).length >= 1 ? true : undefined), 5000, 'a rejection');
    expect(rejections(asd.events)).toEqual(['CRYPTO_OPEN']);
    expect(asd.service.store.records()).toEqual([]);
    await stillServes(channel, 1);
  });

  it('a message over the frame limit closes its socket with 1009; a text message with 1003', async () => {
    const { asd, channel } = await setUp();
    const big = await raw(asd);
    const bigClosed = closeOf(big);
    big.send(new Uint8Array(LIMITS.FRAME_MAX_BYTES + 1));
    expect((await bigClosed).code).toBe(1009);
    const text = await raw(asd);
    const textClosed = closeOf(text);
    text.send('ok 1');
    expect(await textClosed).toEqual({ code: 1003, reason: 'binary frames only' });
    expect(asd.service.store.records()).toEqual([]);
    await stillServes(channel, 1);
  });

  it('a transaction that fails after the record was written leaves no record and no answer', async () => {
    const dir = tempDir();
    cleanup.push(dir.remove);
    const store = openSqliteAsdStore(join(dir.path, DB_FILE));
    let failNext = true;
    const append = store.append.bind(store);
    const failing = {
      ...store,
      get isOpen() {
        return store.isOpen;
      },
      append: (app: typeof N.billing, data: Uint8Array, at: number) => {
        const n = append(app, data, at);
        if (failNext) {
          failNext = false;
          throw new Error('disk on fire');
        }
        return n;
      },
    };
    const clock = manualClock();
    const asd = await startAsd({ store: failing, clock: clock.now, profile: 'hardened' });
    cleanup.push(() => asd.service.stop());
    const channel = new Channel('hardened', clock.now);
    cleanup.push(() => channel.close());
    await channel.connect(asd.address.ws);
    const lost = channel.request(N.billing, utf8('lost'), 300).catch((e: Error) => e.message);
    await until(() => asd.events.find((e) => e.type === 'host-error'), 5000, 'a host error');
    expect(await lost).toMatch(/timed out/);
    expect(store.records()).toEqual([]);
    await stillServes(channel, 1);
    expect(store.records().map((r) => Buffer.from(r.data).toString())).toEqual(['after']);
  });
});

describe('admin API', () => {
  it('needs the bearer token, checks its input, and maps errors to codes', async () => {
    const { asd } = await setUp();
    const base = asd.address.http;
    const noAuth = await httpJson('GET', `${base}/admin/records`);
    expect(noAuth.status).toBe(401);
    expect(noAuth.body).toMatchObject({ code: 'NOT_AUTHORISED' });
    expect(
      (
        await httpJson('GET', `${base}/admin/records`, undefined, {
          authorization: 'Bearer wrong-token-0123456789',
        })
      ).status,
    ).toBe(401);
    const badName = await httpJson('POST', `${base}/admin/revoke`, { app: 'Not A Name!' }, AUTH);
    expect(badName).toMatchObject({ status: 400, body: { code: 'NAME_INVALID' } });
    const extra = await httpJson('POST', `${base}/admin/revoke`, { app: N.billing, why: 'x' }, AUTH);
    expect(extra).toMatchObject({ status: 400, body: { code: 'ENCODING_BAD_VALUE' } });
    const badQuery = await httpJson('GET', `${base}/admin/records?app=..`, undefined, AUTH);
    expect(badQuery).toMatchObject({ status: 400, body: { code: 'NAME_INVALID' } });
    expect(asd.service.store.revocations()).toEqual([]);
    expect(await httpJson('GET', `${base}/health`)).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await httpJson('GET', `${base}/ready`)).toMatchObject({
      status: 200,
      body: { status: 'ready', checks: { storeOpen: true, listening: true, stopping: false } },
    });
    expect(TRIPLES.asd.name).toBe(N.asd);
  });
});
