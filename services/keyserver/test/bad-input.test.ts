/**
 * Bad input on /ws: malformed frames, oversize and text messages, half a message, a silent peer,
 * and host failures (a transaction that throws midway, a corrupt row). Each case checks that the
 * refusal is the exact typed one or a clean close, that the service goes on serving, and that
 * nothing partial is stored.
 */
import { join } from 'node:path';
import {
  accessPairToJson,
  type Binding,
  decodeFrame,
  encodeFields,
  encodeFrame,
  LIMITS,
  type Name,
  seededRandom,
  utf8,
} from '@clefnet/protocol';
import { binaryFrameHead, rawWsClient } from '@clefnet/service-host/testing';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  DB_FILE,
  openSqliteKeyServerStore,
  type ServiceEvent,
  type SqliteKeyServerStore,
} from '../src/index.js';
import {
  AUTH,
  httpJson,
  known,
  manualClock,
  N,
  PartyLink,
  type Probe,
  probeAs,
  type Running,
  startKeyServer,
  TRIPLES,
  tempDir,
  until,
} from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const KS1 = known(TRIPLES.ks1, ['clef', 'mint']);

async function start(
  extra: Parameters<typeof startKeyServer>[0] = {},
): Promise<Running & { dataDir: string }> {
  const dir = tempDir();
  const clock = manualClock();
  const running = await startKeyServer({ dataDir: dir.path, clock: clock.now, ...extra });
  cleanup.push(dir.remove, () => running.service.stop());
  for (const t of [TRIPLES.ar, TRIPLES.ve, TRIPLES.machine]) {
    expect(
      (await httpJson('POST', `${running.address.http}/admin/pairs`, accessPairToJson(t), AUTH)).status,
    ).toBe(201);
  }
  return { ...running, dataDir: dir.path };
}

async function client(
  r: Running,
  triple = TRIPLES.ar,
): Promise<{ probe: Probe; link: PartyLink; ws: WebSocket }> {
  const probe = probeAs(triple, [KS1], () => Date.UTC(2026, 0, 1));
  const link = new PartyLink(probe);
  const ws = await link.connect(N.ks1, r.address.ws);
  cleanup.push(() => link.close());
  return { probe, link, ws };
}

/** Asks for Clef-VE and waits for the answer: the service still serves. */
async function stillServes(c: { probe: Probe; link: PartyLink }): Promise<void> {
  const n = c.probe.answers.length;
  c.link.post(c.probe.clefQuery(KS1, N.ve));
  const answer = await until(() => c.probe.answers[n], 5000, 'an answer after the bad input');
  expect(answer.body).toEqual({ type: 'clef-answer', subject: N.ve, clef: TRIPLES.ve.clef });
}

const rows = (r: Running) => r.service.store.list().map((b: Binding) => `${b.name} ${b.owner ?? '-'}`);
const REGISTERED = [`${N.machine} -`, `${N.ar} -`, `${N.ve} -`];
const rejections = (events: ServiceEvent[]) =>
  events.flatMap((e) => (e.type === 'protocol' && e.event.type === 'rejected' ? [e.event.code] : []));
const closeOf = (ws: WebSocket) =>
  new Promise<{ code: number; reason: string }>((r) =>
    ws.once('close', (code, reason) => r({ code, reason: reason.toString() })),
  );

/** A valid M1 frame from a throw-away probe (so the test's own client has no request for it). */
function validQuery(): Uint8Array {
  const p = probeAs(TRIPLES.ar, [KS1], () => Date.UTC(2026, 0, 1));
  return p.clefQuery(KS1, N.ve).send[0]!.bytes;
}

function frameFields(version: string, kind: string, to: string, corr: string, body: Uint8Array): Uint8Array {
  return encodeFields([utf8(version), utf8(kind), utf8(to), utf8(''), utf8(corr), body]);
}

function expectedCode(bytes: Uint8Array): string {
  try {
    decodeFrame(bytes);
  } catch (e) {
    return (e as { code: string }).code;
  }
  return 'CRYPTO_OPEN';
}

describe('malformed frames get the party typed refusal; the socket and the service go on', () => {
  const random = seededRandom('keyserver-tests/garbage')(300);
  const q = validQuery();
  const cases: [string, Uint8Array, string][] = [
    ['an empty message', new Uint8Array(0), 'ENCODING_TRUNCATED'],
    [
      'another wire version',
      frameFields('CLEFNET/2', 'SEALED', N.ks1, '', new Uint8Array(0)),
      'FRAME_VERSION',
    ],
    ['an unknown frame kind', frameFields('CLEFNET/1', 'BOGUS', N.ks1, '', new Uint8Array(0)), 'FRAME_KIND'],
    [
      'an invalid Name in to',
      frameFields('CLEFNET/1', 'SEALED', 'KS1', '', new Uint8Array(0)),
      'NAME_INVALID',
    ],
    [
      'a corr of 65 bytes',
      frameFields('CLEFNET/1', 'SEALED', N.ks1, 'c'.repeat(65), new Uint8Array(0)),
      'ENCODING_TOO_LARGE',
    ],
    [
      'a sealed body of 10 bytes',
      frameFields('CLEFNET/1', 'SEALED', N.ks1, '', new Uint8Array(10)),
      'CRYPTO_OPEN',
    ],
    ['a valid query with one byte more', Uint8Array.from([...q, 0]), 'ENCODING_TRAILING'],
    ['the first half of a valid query', q.subarray(0, q.length >> 1), 'ENCODING_TRUNCATED'],
    [
      'a query sealed to someone else',
      encodeFrame({
        ...decodeFrame(
          probeAs(TRIPLES.ar, [known(TRIPLES.ve, ['clef'])], Date.now).clefQuery(
            known(TRIPLES.ve, ['clef']),
            N.ve,
          ).send[0]!.bytes,
        ),
        to: N.ks1,
      }),
      'CRYPTO_OPEN',
    ],
    ['300 random bytes', random, expectedCode(random)],
    ['a frame of exactly the limit, all zeros', new Uint8Array(LIMITS.FRAME_MAX_BYTES), 'FRAME_VERSION'],
  ];
  for (const [what, bytes, code] of cases) {
    it(`${what}: ${code}`, async () => {
      const r = await start();
      const c = await client(r);
      c.ws.send(bytes);
      await until(() => rejections(r.events)[0], 5000, 'the rejection');
      expect(rejections(r.events), what).toEqual([code]);
      expect(
        r.events.filter((e) => e.type === 'frame' && e.dir === 'out'),
        what,
      ).toEqual([]);
      await stillServes(c);
      expect(c.ws.readyState, what).toBe(WebSocket.OPEN);
      expect(rows(r), what).toEqual(REGISTERED);
    });
  }
});

describe('WebSocket-level abuse closes only the offending socket', () => {
  it('a message one byte over the frame limit closes that socket with 1009; others are served', async () => {
    const r = await start();
    const good = await client(r);
    const bad = await client(r, TRIPLES.machine);
    const closed = closeOf(bad.ws);
    bad.ws.send(new Uint8Array(LIMITS.FRAME_MAX_BYTES + 1));
    expect((await closed).code).toBe(1009);
    await stillServes(good);
    await stillServes(await client(r));
    expect(rejections(r.events)).toEqual([]);
    expect(rows(r)).toEqual(REGISTERED);
  });

  it('a text message closes that socket with 1003', async () => {
    const r = await start();
    const good = await client(r);
    const bad = await client(r, TRIPLES.machine);
    const closed = closeOf(bad.ws);
    bad.ws.send('CLEF? ve1.anc1.clefnet.test');
    expect(await closed).toEqual({ code: 1003, reason: 'binary frames only' });
    await stillServes(good);
    expect(r.events.filter((e) => e.type === 'frame')).toHaveLength(2);
  });

  it('half a WebSocket message, then a disconnect: nothing reaches the party, others are served', async () => {
    const r = await start();
    const good = await client(r);
    const raw = await rawWsClient(r.address.ws);
    raw.write(binaryFrameHead(1000));
    raw.write(validQuery().subarray(0, 100));
    await stillServes(good);
    raw.destroy();
    await until(() =>
      r.events.find((e) => e.type === 'connection' && e.conn === 'in-2' && e.state === 'closed'),
    );
    expect(r.events.filter((e) => e.type === 'frame' && e.conn === 'in-2')).toEqual([]);
    await stillServes(good);
    expect(rows(r)).toEqual(REGISTERED);
  });

  it('a peer that stops mid-message is dropped by the heartbeat, and does not hold up stop()', async () => {
    const r = await start({ heartbeatMs: 100 });
    const good = await client(r);
    const raw = await rawWsClient(r.address.ws);
    cleanup.push(() => void raw.destroy());
    raw.write(binaryFrameHead(1000));
    raw.write(new Uint8Array(10));
    const dropped = await until(
      () => r.events.find((e) => e.type === 'connection' && e.conn === 'in-2' && e.state === 'closed'),
      3000,
      'the heartbeat to drop the silent peer',
    );
    expect(dropped).toMatchObject({ code: 1006 });
    await stillServes(good);

    const stalled = await rawWsClient(r.address.ws);
    cleanup.push(() => void stalled.destroy());
    stalled.write(binaryFrameHead(1000));
    const t = Date.now();
    await r.service.stop();
    expect(Date.now() - t).toBeLessThan(2000);
  });

  it('an upgrade on another path is refused with 404', async () => {
    const r = await start();
    const ws = new WebSocket(r.address.ws.replace('/ws', '/other'));
    ws.on('error', () => {});
    const status = await new Promise<number>((resolve) =>
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
    );
    expect(status).toBe(404);
    ws.terminate();
  });
});

describe('host failures store nothing partial and answer nothing', () => {
  it('a mint whose transaction throws after the row was written leaves no row and sends no triple', async () => {
    const dir = tempDir();
    cleanup.push(dir.remove);
    const real = openSqliteKeyServerStore(join(dir.path, DB_FILE));
    let fail = false;
    const store: SqliteKeyServerStore = Object.create(real);
    Object.assign(store, {
      put(b: Binding) {
        real.put(b);
        if (fail) throw new Error('injected: the host fails after writing the row');
      },
    });
    const r = await start({ store });
    const machine = probeAs(TRIPLES.machine, [KS1], () => Date.UTC(2026, 0, 1));
    const link = new PartyLink(machine);
    cleanup.push(() => link.close());
    await link.connect(N.ks1, r.address.ws);
    fail = true;
    link.post(machine.newQuery(known(TRIPLES.ks1, ['mint']), N.ve.replace('ve1', 've2') as Name));
    const err = await until(() => r.events.find((e) => e.type === 'host-error'));
    expect(err).toMatchObject({
      where: 'receive',
      conn: 'in-1',
      message: 'injected: the host fails after writing the row',
    });
    expect(r.events.filter((e) => e.type === 'frame' && e.dir === 'out')).toEqual([]);
    expect(
      r.events.filter((e) => e.type === 'protocol').map((e) => e.type === 'protocol' && e.event.type),
    ).toEqual(['binding-created', 'binding-created', 'binding-created']);
    const db = new Database(real.path, { readonly: true });
    expect(db.prepare('SELECT name FROM bindings ORDER BY name').pluck().all()).toEqual([
      N.machine,
      N.ar,
      N.ve,
    ]);
    db.close();
    expect(link.deliveries).toEqual([]);

    fail = false;
    link.post(machine.newQuery(known(TRIPLES.ks1, ['mint']), N.ve.replace('ve1', 've2') as Name));
    const answer = await until(() => machine.answers[0]);
    expect(answer.tag).toBe('TRIPLE');
    expect(rows(r)).toEqual([...REGISTERED, `ve2.anc1.clefnet.test ${N.machine}`]);
  });

  it('a corrupt stored row is a host error: no answer, 500 on the admin list, other queries served', async () => {
    const r = await start();
    const db = new Database(r.service.store.path);
    db.pragma('ignore_check_constraints = ON');
    db.prepare('INSERT INTO bindings VALUES (?, ?, NULL, 1, NULL)').run('bad.clefnet.test', Buffer.alloc(3));
    db.close();
    const c = await client(r);
    c.link.post(c.probe.clefQuery(KS1, 'bad.clefnet.test' as Name));
    const err = await until(() => r.events.find((e) => e.type === 'host-error'));
    expect(err).toMatchObject({ where: 'receive', code: 'STORE_CORRUPT' });
    expect(await httpJson('GET', `${r.address.http}/admin/bindings`, undefined, AUTH)).toMatchObject({
      status: 500,
      body: {
        code: 'STORE_CORRUPT',
        message: `corrupt binding in ${r.service.store.path}: clef is not 64 bytes`,
      },
    });
    await stillServes(c);
  });
});
