/**
 * The service host around a stand-in party over real WebSockets on loopback: one message -> one
 * transaction -> sends after commit, answers on the incoming socket, late answers by (Name, corr),
 * the directory through the `connect` hook, host errors, bad input, health, readiness, admin auth,
 * periodic operations and the graceful stop. The stand-in party is not the protocol: it reads the
 * frame's `from` hint as the sender, which a real party never does (TB-15).
 */

import { Worker } from 'node:worker_threads';
import {
  decodeFrame,
  encodeFrame,
  type Name,
  type Outbound,
  type Outcome,
  parseName,
  utf8,
} from '@clefnet/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import {
  bearerAuth,
  createServiceHost,
  type ListenAddress,
  type ServiceEvent,
  type ServiceHost,
  type ServiceHostOptions,
} from '../src/index.js';
import { httpJson, manualClock, silent, until } from '../src/testing/index.js';

const HOST = parseName('host.clefnet.test');
const PEER = parseName('peer.clefnet.test');
const OTHER = parseName('other.clefnet.test');
const TOKEN = 'service-host-token-0123456789';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const frame = (from: Name | '', corr: string, body: string, to: Name | '' = HOST) =>
  encodeFrame({ kind: 'SEALED', to, from, corr, body: utf8(body) });
const text = (bytes: Uint8Array) => new TextDecoder().decode(decodeFrame(bytes).body);

/**
 * Body `echo`: answered at once to its sender. `park`: accepted, answered later by `release()`.
 * `forward`: sent on to OTHER (the directory). `refuse`: an error, no answer.
 */
function standInParty(log: string[]) {
  const parked: { from: Name; corr: string }[] = [];
  const outcome = (send: Outbound[], peer?: Name): Outcome => ({
    send,
    deliver: [],
    events: peer === undefined ? [] : [{ at: 0, party: HOST, type: 'received', peer }],
  });
  return {
    receive(bytes: Uint8Array): Outcome {
      log.push('receive');
      const f = decodeFrame(bytes);
      const from = f.from as Name;
      const body = new TextDecoder().decode(f.body);
      if (body === 'park') {
        parked.push({ from, corr: f.corr });
        return outcome([], from);
      }
      if (body === 'forward')
        return outcome([{ to: OTHER, bytes: frame(HOST, f.corr, 'fwd', OTHER), step: 'M1' }], from);
      if (body === 'throw') throw new Error('store failed');
      const answer = { to: from, bytes: frame(HOST, f.corr, `re:${body}`, from), step: 'M3' } as const;
      return outcome([answer], from);
    },
    release(): Outcome {
      return outcome(
        parked.splice(0).map((p) => ({ to: p.from, bytes: frame(HOST, p.corr, 'late', p.from), step: 'M6' })),
      );
    },
  };
}

interface Started {
  readonly host: ServiceHost;
  readonly address: ListenAddress;
  readonly events: ServiceEvent[];
  readonly log: string[];
  readonly party: ReturnType<typeof standInParty>;
}

async function start(extra: Partial<ServiceHostOptions> = {}): Promise<Started> {
  const log: string[] = [];
  const party = standInParty(log);
  const host = createServiceHost({
    name: HOST,
    party,
    transaction: (fn) => {
      log.push('begin');
      const r = fn();
      log.push('commit');
      return r;
    },
    logger: silent,
    clock: manualClock().now,
    heartbeatMs: 0,
    closeGraceMs: 200,
    storeOpen: () => true,
    ...extra,
  });
  const events: ServiceEvent[] = [];
  host.subscribe((e) => events.push(e));
  const address = await host.start();
  cleanup.push(() => host.stop());
  return { host, address, events, log, party };
}

/** A raw client socket that keeps what it receives. */
async function client(url: string): Promise<{ ws: WebSocket; got: Uint8Array[] }> {
  const ws = new WebSocket(url);
  const got: Uint8Array[] = [];
  ws.on('message', (d: Buffer) => got.push(new Uint8Array(d)));
  await new Promise<void>((r, j) => {
    ws.once('open', () => r());
    ws.once('error', j);
  });
  cleanup.push(() => ws.terminate());
  return { ws, got };
}

describe('gateway', () => {
  it('runs one message through the party inside one transaction and answers on its socket after commit', async () => {
    const s = await start();
    const c = await client(s.address.ws);
    s.log.push('sent');
    c.ws.send(frame(PEER, 'c1', 'hello'));
    const answer = await until(() => c.got[0], 5000, 'answer');
    expect(text(answer)).toBe('re:hello');
    expect(s.log).toEqual(['sent', 'begin', 'receive', 'commit']);
    const frames = s.events.filter((e) => e.type === 'frame');
    expect(frames.map((e) => [e.dir, e.conn, e.corr, e.step])).toEqual([
      ['in', 'in-1', 'c1', undefined],
      ['out', 'in-1', 'c1', 'M3'],
    ]);
  });

  it('a late answer takes the socket its request came in on, each copy its own, by (Name, corr)', async () => {
    const s = await start();
    const a = await client(s.address.ws);
    const b = await client(s.address.ws);
    a.ws.send(frame(PEER, 'c1', 'park'));
    await until(() => (s.log.includes('commit') ? true : undefined));
    b.ws.send(frame(PEER, 'c1', 'park'));
    await until(() => (s.log.filter((l) => l === 'commit').length === 2 ? true : undefined));
    s.host.operate('release', () => s.party.release());
    await until(() => (a.got.length === 1 && b.got.length === 1 ? true : undefined), 5000, 'late answers');
    expect([text(a.got[0]!), text(b.got[0]!)]).toEqual(['late', 'late']);
    expect(s.events.flatMap((e) => (e.type === 'frame' && e.dir === 'out' ? [e.conn] : []))).toEqual([
      'in-1',
      'in-2',
    ]);
  });

  it('sends a frame for another Name through the directory, dialled once by the connect hook', async () => {
    const received: string[] = [];
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    cleanup.push(() => new Promise<void>((r) => wss.close(() => r())));
    wss.on('connection', (ws) => ws.on('message', (d: Buffer) => received.push(text(new Uint8Array(d)))));
    const port = (wss.address() as { port: number }).port;
    const dials: string[] = [];
    const s = await start({
      directory: { [OTHER]: `ws://127.0.0.1:${port}/ws` },
      connect: (url, peer) => {
        dials.push(`${peer} ${url}`);
        return new WebSocket(url);
      },
    });
    const c = await client(s.address.ws);
    c.ws.send(frame(PEER, 'c1', 'forward'));
    c.ws.send(frame(PEER, 'c2', 'forward'));
    await until(() => (received.length === 2 ? true : undefined), 5000, 'forwarded frames');
    expect(received).toEqual(['fwd', 'fwd']);
    expect(dials).toEqual([`${OTHER} ws://127.0.0.1:${port}/ws`]);
  });

  it('a Name with no route and no directory entry is undeliverable', async () => {
    const s = await start();
    const c = await client(s.address.ws);
    c.ws.send(frame(PEER, 'c1', 'forward'));
    const e = await until(() => s.events.find((x) => x.type === 'undeliverable'));
    expect(e).toEqual({ type: 'undeliverable', at: expect.any(Number), to: OTHER, step: 'M1' });
  });

  it('a failing transaction is a host-error event, sends nothing, and the socket keeps serving', async () => {
    const s = await start();
    const c = await client(s.address.ws);
    c.ws.send(frame(PEER, 'c1', 'throw'));
    c.ws.send(frame(PEER, 'c2', 'after'));
    const answer = await until(() => c.got[0]);
    expect(text(answer)).toBe('re:after');
    expect(c.got).toHaveLength(1);
    expect(s.events.filter((e) => e.type === 'host-error')).toEqual([
      { type: 'host-error', at: expect.any(Number), where: 'receive', message: 'store failed', conn: 'in-1' },
    ]);
  });

  it('closes a text message with 1003 and refuses an upgrade on another path with 404', async () => {
    const s = await start();
    const c = await client(s.address.ws);
    const closed = new Promise<[number, string]>((r) =>
      c.ws.once('close', (code, reason) => r([code, reason.toString()])),
    );
    c.ws.send('hello');
    expect(await closed).toEqual([1003, 'binary frames only']);
    const other = new WebSocket(`${s.address.http.replace('http', 'ws')}/other`);
    other.on('error', () => {}); // terminate() below, before the (refused) connection opened
    const status = await new Promise<number>((r) =>
      other.once('unexpected-response', (_req, res) => r(res.statusCode ?? 0)),
    );
    other.terminate();
    expect(status).toBe(404);
  });

  it('reports the URLs it listens on', async () => {
    const s = await start();
    expect(s.address).toEqual({
      host: '127.0.0.1',
      port: s.address.port,
      http: `http://127.0.0.1:${s.address.port}`,
      ws: `ws://127.0.0.1:${s.address.port}/ws`,
    });
    expect(s.address.port).toBeGreaterThan(0);
  });
});

describe('http', () => {
  it('health is 200; ready is 200 with its checks while listening, 503 when the store is closed', async () => {
    let open = true;
    const s = await start({ storeOpen: () => open });
    expect(await httpJson('GET', `${s.address.http}/health`)).toMatchObject({
      status: 200,
      body: { status: 'ok' },
    });
    expect(await httpJson('GET', `${s.address.http}/ready`)).toMatchObject({
      status: 200,
      body: { status: 'ready', checks: { storeOpen: true, listening: true, stopping: false } },
    });
    open = false;
    expect(await httpJson('GET', `${s.address.http}/ready`)).toMatchObject({
      status: 503,
      body: { status: 'not-ready', checks: { storeOpen: false, listening: true, stopping: false } },
    });
  });

  it("the service's routes get operate(); bearerAuth answers 401 NOT_AUTHORISED without the token", async () => {
    const s = await start({
      routes: (app, { operate }) =>
        app.register(
          async (admin) => {
            admin.addHook('onRequest', bearerAuth(TOKEN));
            admin.post('/release', async () => ({
              sent: operate('release', () => ({ send: [], events: [], deliver: [] })).send.length,
            }));
          },
          { prefix: '/admin' },
        ),
    });
    const none = await httpJson('POST', `${s.address.http}/admin/release`);
    expect([none.status, none.body, none.headers.get('www-authenticate')]).toEqual([
      401,
      { code: 'NOT_AUTHORISED', message: 'the admin API needs Authorization: Bearer <token>' },
      'Bearer',
    ]);
    const wrong = await httpJson('POST', `${s.address.http}/admin/release`, undefined, {
      authorization: `Bearer ${TOKEN}x`,
    });
    expect(wrong.status).toBe(401);
    const ok = await httpJson('POST', `${s.address.http}/admin/release`, undefined, {
      authorization: `Bearer ${TOKEN}`,
    });
    expect([ok.status, ok.body]).toEqual([200, { sent: 0 }]);
    expect((await httpJson('GET', `${s.address.http}/nowhere`)).body).toEqual({
      code: 'UNKNOWN_NAME',
      message: 'no route GET /nowhere',
    });
  });
});

/** Reads server-sent events from `url` until `n` data lines arrived; returns them parsed. */
async function sse(url: string, n: number, headers: Record<string, string>): Promise<unknown[]> {
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  const reader = res.body!.getReader();
  const out: unknown[] = [];
  let text = '';
  while (out.length < n) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
    let i = text.indexOf('\n\n');
    while (i >= 0) {
      const chunk = text.slice(0, i);
      text = text.slice(i + 2);
      if (chunk.startsWith('data: ')) out.push(JSON.parse(chunk.slice(6)));
      i = text.indexOf('\n\n');
    }
  }
  await reader.cancel();
  return out;
}

describe('event stream', () => {
  it('GET /admin/events streams every event as JSON to a holder of the token, filtered by type and kind', async () => {
    const s = await start({ eventsToken: TOKEN });
    const url = `${s.address.http}/admin/events`;
    expect((await httpJson('GET', url)).status).toBe(401);
    expect(
      (await httpJson('GET', `${url}?type=Bad!`, undefined, { authorization: `Bearer ${TOKEN}` })).status,
    ).toBe(400);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const all = sse(url, 2, auth);
    const machine = sse(`${url}?type=machine&kind=console`, 1, auth);
    await until(() => (s.host.app.server.listening ? true : undefined));
    await new Promise((r) => setTimeout(r, 100));
    s.host.emit({ type: 'machine', at: 1, event: { kind: 'trap', ve: 1 } });
    s.host.emit({ type: 'machine', at: 2, event: { kind: 'console', ve: 'node', text: 'hi' } });
    expect(await all).toEqual([
      { type: 'machine', at: 1, event: { kind: 'trap', ve: 1 } },
      { type: 'machine', at: 2, event: { kind: 'console', ve: 'node', text: 'hi' } },
    ]);
    expect(await machine).toEqual([
      { type: 'machine', at: 2, event: { kind: 'console', ve: 'node', text: 'hi' } },
    ]);
  });

  it('an event leaves at once, even when the service does not yield after emitting it', async () => {
    const s = await start({ eventsToken: TOKEN });
    // A client on another thread follows the stream and raises a flag when the event arrives;
    // this thread emits, then blocks (as an ANC turn does) until the flag is up or 5 s pass.
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const net = require('node:net');
       const flag = new Int32Array(workerData.flag);
       const sock = net.connect(workerData.port, '127.0.0.1', () => sock.write(
         'GET /admin/events HTTP/1.1\\r\\nhost: x\\r\\nauthorization: Bearer ' + workerData.token + '\\r\\n\\r\\n'));
       let text = '';
       sock.on('data', (d) => {
         text += d.toString();
         if (text.includes(': clefnet events')) parentPort.postMessage('open');
         if (text.includes('"marker"')) { Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); sock.destroy(); }
       });`,
      { eval: true, workerData: { flag: flag.buffer, port: s.address.port, token: TOKEN } },
    );
    cleanup.push(() => worker.terminate().then(() => {}));
    await new Promise((resolve) => worker.once('message', resolve));
    await new Promise((r) => setTimeout(r, 50)); // the stream's subscription is in place
    s.host.emit({ type: 'machine', at: 1, event: { kind: 'marker' } });
    // 'not-equal': the flag was up before this thread got to wait (the worker was that quick);
    // either way this thread has not yielded since the emit. Only a timeout is a failure.
    expect(Atomics.wait(flag, 0, 0, 5000)).not.toBe('timed-out');
    expect(Atomics.load(flag, 0)).toBe(1);
  });

  it('stop() ends open streams', async () => {
    const s = await start({ eventsToken: TOKEN });
    const res = await fetch(`${s.address.http}/admin/events`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const reader = res.body!.getReader();
    await reader.read();
    await s.host.stop();
    let done = false;
    while (!done) done = (await reader.read()).done;
    expect(done).toBe(true);
  });
});

describe('lifecycle', () => {
  it('runs periodic operations while listening; a failure is a host-error event with its where', async () => {
    let runs = 0;
    const s = await start({
      periodic: [
        {
          where: 'expire',
          everyMs: 10,
          run: () => {
            runs += 1;
            throw new Error('expiry failed');
          },
        },
      ],
    });
    const e = await until(() => s.events.find((x) => x.type === 'host-error'));
    expect(e).toEqual({
      type: 'host-error',
      at: expect.any(Number),
      where: 'expire',
      message: 'expiry failed',
    });
    expect(runs).toBeGreaterThanOrEqual(1);
  });

  it('stop() lets a link that is still connecting open and send what it queued, then closes it', async () => {
    const received: string[] = [];
    // The peer takes 150 ms to accept the upgrade: stop() comes while the link is connecting.
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      verifyClient: (_info, done) => void setTimeout(() => done(true), 150),
    });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    cleanup.push(() => new Promise<void>((r) => wss.close(() => r())));
    const closes: number[] = [];
    wss.on('connection', (ws) => {
      ws.on('message', (d: Buffer) => received.push(text(new Uint8Array(d))));
      ws.on('close', (code) => closes.push(code));
    });
    const port = (wss.address() as { port: number }).port;
    const s = await start({ directory: { [OTHER]: `ws://127.0.0.1:${port}/ws` }, closeGraceMs: 2000 });
    s.host.operate('test', () => ({
      send: [{ to: OTHER, bytes: frame(HOST, 'q1', 'queued', OTHER), step: 'M7' }],
      deliver: [],
      events: [],
    }));
    await s.host.stop();
    await until(() => (closes.length === 1 ? true : undefined), 2000, 'the close');
    expect(received).toEqual(['queued']);
    expect(closes).toEqual([1001]);
    expect(s.events.filter((e) => e.type === 'undeliverable')).toEqual([]);
  });

  it('a frame queued on a link that never opens is undeliverable, with its step', async () => {
    // Nothing listens there: the dial fails and the queued frame is reported.
    const s = await start({ directory: { [OTHER]: 'ws://127.0.0.1:1/ws' } });
    s.host.operate('test', () => ({
      send: [{ to: OTHER, bytes: frame(HOST, 'q1', 'lost', OTHER), step: 'M7' }],
      deliver: [],
      events: [],
    }));
    const e = await until(() => s.events.find((x) => x.type === 'undeliverable'));
    expect(e).toEqual({
      type: 'undeliverable',
      at: expect.any(Number),
      to: OTHER,
      conn: 'out-1',
      step: 'M7',
    });
  });

  it('stop() closes sockets with 1001, then the server, then calls onStopped once; it is idempotent', async () => {
    const order: string[] = [];
    const s = await start({ onStopped: () => void order.push('onStopped') });
    const c = await client(s.address.ws);
    const closed = new Promise<number>((r) => c.ws.once('close', (code) => r(code)));
    await Promise.all([s.host.stop(), s.host.stop()]);
    expect(await closed).toBe(1001);
    expect(order).toEqual(['onStopped']);
    await expect(s.host.start()).rejects.toMatchObject({ code: 'BAD_STATE' });
  });

  it('stop() still calls onStopped when closing the HTTP server fails, and rejects with that failure', async () => {
    const order: string[] = [];
    const s = await start({
      onStopped: () => void order.push('onStopped'),
      routes: (app) => {
        app.addHook('onClose', async () => {
          order.push('onClose');
          throw new Error('the server would not close');
        });
      },
    });
    cleanup.pop(); // start()'s stop: this test stops the host itself, and expects it to fail
    await expect(s.host.stop()).rejects.toThrow('the server would not close');
    expect(order).toEqual(['onClose', 'onStopped']);
    await expect(s.host.stop()).rejects.toThrow('the server would not close'); // the same stop
    expect(order).toEqual(['onClose', 'onStopped']);
  });
});
