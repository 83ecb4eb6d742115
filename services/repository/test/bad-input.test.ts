/**
 * Bad input on the AR's /ws and admin API: malformed frames, frames sealed for someone else or sent
 * by a stranger, oversize and text messages, half a message, a silent peer, answers to an
 * outstanding deployment with a wrong signature or forged as errors, bad admin requests. Each case
 * checks the exact typed refusal or clean close, that the deployment rows are exactly what they
 * were (nothing partial stored), and that the service goes on serving: a deploy to the VE still
 * completes.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AccessPair,
  type AuthorityTriple,
  type Body,
  clefId,
  craftFrame,
  createProfile,
  decodeFrame,
  encodeEnvelope,
  encodeFields,
  encodeFrame,
  encodePayload,
  generateTriple,
  honestHeader,
  LIMITS,
  nodeBackend,
  openFrame,
  type ProfileName,
  parseName,
  payload,
  readPayload,
  resealFrame,
  seededRandom,
  sign,
  toHex,
  utf8,
} from '@clefnet/protocol';
import { directConnect } from '@clefnet/service-host';
import { binaryFrameHead, rawWsClient } from '@clefnet/service-host/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { MODULES_DIR, type RepositoryServiceOptions, type ServiceEvent } from '../src/index.js';
import {
  AUTH,
  finished,
  httpJson,
  manualClock,
  N,
  type Peers,
  type Running,
  startPeers,
  startRecordingProxy,
  startRepository,
  T0,
  TOKEN,
  TRIPLES,
  tempDir,
  until,
} from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const PROGRAM = new Uint8Array(Array.from({ length: 200 }, (_, i) => (i * 5 + 1) & 0xff));
const DIGEST = toHex(nodeBackend.sha256(PROGRAM));
const AR: AccessPair = { name: N.ar, clef: TRIPLES.ar.clef };
const KS1: AccessPair = { name: N.ks1, clef: TRIPLES.ks1.clef };
/** A principal nobody provisioned, and one that claims KServ1's Name with another key. */
const STRANGER = generateTriple(
  nodeBackend,
  seededRandom('repository-tests/stranger'),
  parseName('stranger.clefnet.test'),
);
const IMPOSTOR = generateTriple(nodeBackend, seededRandom('repository-tests/impostor'), N.ks1);
/** Short, so that an outstanding request expires when the manual clock is moved on. */
const TIMEOUT_MS = 5000;

interface SetUp {
  readonly clock: ReturnType<typeof manualClock>;
  readonly peers: Peers;
  readonly ar: Running;
}

/** KServ1, KServ2 and the VE on their sockets; the AR with `billing` published, on `profile`. */
async function setUp(profile: ProfileName, extra: Partial<RepositoryServiceOptions> = {}): Promise<SetUp> {
  const clock = manualClock();
  const dir = tempDir();
  cleanup.push(dir.remove);
  const peers = await startPeers(profile, clock.now);
  cleanup.push(() => peers.stop());
  const ar = await startRepository({
    dataDir: dir.path,
    clock: clock.now,
    profile,
    directory: peers.directory,
    ...extra,
  });
  cleanup.push(() => ar.service.stop());
  ar.service.publish('billing', PROGRAM);
  return { clock, peers, ar };
}

/** A WebSocket client of the AR's /ws that sends what the test tells it. */
async function raw(r: Running): Promise<WebSocket> {
  const ws = new WebSocket(r.address.ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  cleanup.push(() => ws.terminate());
  return ws;
}

const rejections = (events: ServiceEvent[]) =>
  events.flatMap((e) => (e.type === 'protocol' && e.event.type === 'rejected' ? [e.event.code] : []));
const framesOut = (events: ServiceEvent[]) => events.filter((e) => e.type === 'frame' && e.dir === 'out');
const closeOf = (ws: WebSocket) =>
  new Promise<{ code: number; reason: string }>((r) =>
    ws.once('close', (code, reason) => r({ code, reason: reason.toString() })),
  );

/** A step row as the store keeps it. */
function step(
  at: number,
  s: string,
  kind: string,
  peer: string,
  result = 'ok',
  detail: string | null = null,
) {
  return { at, step: s, kind, peer, result, detail };
}
/** A deployment's row as GET /admin/deployments/:id has it. */
const row = (id: number, at: number, state: string, code: string | null, steps: unknown[]) => ({
  id,
  module: 'billing',
  digest: DIGEST,
  anc: N.ve,
  secApp: null,
  state,
  code,
  createdAt: T0,
  updatedAt: at,
  steps,
});
/** Steps 1-4 and 7 of a deployment without a SecApp, all at `at`. */
const delivered = (at: number, veClef: string) => [
  step(at, 'M1', 'sent', N.ks1),
  step(at, 'M3', 'received', N.ks1),
  step(at, 'M3', 'accepted', N.ks1, 'ok', veClef),
  step(at, 'M7', 'sent', N.ve),
];
const stored = async (s: SetUp, id: number) =>
  (await httpJson('GET', `${s.ar.address.http}/admin/deployments/${id}`, undefined, AUTH)).body;

/** A deploy through the admin API still completes, exactly, and the VE installs the program. */
async function stillServes(s: SetUp): Promise<void> {
  const n = s.peers.ve.party.installed.length;
  const r = await httpJson(
    'POST',
    `${s.ar.address.http}/admin/deploy`,
    { module: 'billing', anc: N.ve },
    AUTH,
  );
  expect(r.status).toBe(202);
  const id = (r.body as { id: number }).id;
  const at = s.clock.now();
  expect(await finished(s.ar, id)).toEqual({
    ...row(id, at, 'sent', null, delivered(at, clefId(s.peers.ve.party.clef))),
    createdAt: at,
  });
  const installed = await until(() => s.peers.ve.party.installed[n], 5000, 'the VE to install the program');
  expect(installed).toEqual({ sender: N.ar, digest: DIGEST, bytes: PROGRAM.length, at });
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

const FORGED_ERROR: Body = { type: 'error', code: 'UNKNOWN_NAME', detail: 'forged', subject: '' };

/** A negative answer signed by `from` and sent in clear (a SIGNED frame, as `hardened` servers do). */
function signedError(
  profile: ProfileName,
  from: AuthorityTriple,
  now: number,
  inReplyTo?: Uint8Array,
  corr = '',
): Uint8Array {
  const p = createProfile(profile);
  const header = honestHeader(
    p,
    seededRandom(`repository-tests/signed-error/${profile}`),
    now,
    from,
    AR,
    inReplyTo,
  );
  const signed = sign(nodeBackend, from.key, encodePayload(p.rules, payload(FORGED_ERROR, header)));
  return encodeFrame({
    kind: 'SIGNED',
    to: N.ar,
    from: from.name,
    corr,
    body: encodeEnvelope({ sender: from.name, signed }),
  });
}

/** An unsigned, unsealed ERROR frame (TB-15): anyone can write one and claim it is KServ1's. */
function unsignedError(corr = ''): Uint8Array {
  const body = encodePayload(createProfile('patent').rules, payload(FORGED_ERROR));
  return encodeFrame({ kind: 'ERROR', to: N.ar, from: N.ks1, corr, body });
}

function malformed(profile: ProfileName): [string, Uint8Array, string][] {
  const p = createProfile(profile);
  const random = seededRandom(`repository-tests/bad-input/${profile}`);
  const header = (from: AccessPair) => honestHeader(p, random, T0, from, AR);
  const query: Body = { type: 'clef-query', subject: N.ve };
  // A request sealed to the AR by a stranger: it decodes and opens.
  const request = craftFrame(nodeBackend, random, p, STRANGER, AR, query, header(STRANGER));
  const garbage = random(300);
  return [
    ['an empty message', new Uint8Array(0), 'ENCODING_TRUNCATED'],
    ['300 random bytes', garbage, expectedCode(garbage)],
    [
      'another wire version',
      frameFields('CLEFNET/2', 'SEALED', N.ar, '', new Uint8Array(0)),
      'FRAME_VERSION',
    ],
    ['an unknown frame kind', frameFields('CLEFNET/1', 'BOGUS', N.ar, '', new Uint8Array(0)), 'FRAME_KIND'],
    ['the first half of a frame', request.subarray(0, request.length >> 1), 'ENCODING_TRUNCATED'],
    ['a frame with one byte more', Uint8Array.from([...request, 0]), 'ENCODING_TRAILING'],
    ['a frame of exactly the limit, all zeros', new Uint8Array(LIMITS.FRAME_MAX_BYTES), 'FRAME_VERSION'],
    [
      'a frame to an unknown Name, sealed to its Clef',
      craftFrame(nodeBackend, random, p, STRANGER, STRANGER, query, header(STRANGER)),
      'CRYPTO_OPEN',
    ],
    [
      'a frame to the AR sealed to KServ1',
      craftFrame(
        nodeBackend,
        random,
        p,
        STRANGER,
        { name: N.ar, clef: TRIPLES.ks1.clef },
        query,
        header(STRANGER),
      ),
      'CRYPTO_OPEN',
    ],
    ['a request from an unknown sender', request, 'BAD_STATE'],
    [
      'a genuine answer of KServ1 to no request',
      craftFrame(
        nodeBackend,
        random,
        p,
        TRIPLES.ks1,
        AR,
        { type: 'clef-answer', subject: N.ve, clef: STRANGER.clef },
        header(KS1),
      ),
      'UNSOLICITED_ANSWER',
    ],
    [
      'a signed error in clear from an unknown sender',
      signedError(profile, STRANGER, T0),
      'UNSOLICITED_ANSWER',
    ],
    // `patent` acts on unsigned errors but finds no request; `hardened` refuses them (signedErrors).
    ['an unsigned error frame', unsignedError(), profile === 'patent' ? 'UNSOLICITED_ANSWER' : 'FRAME_KIND'],
  ];
}

describe.each(['patent', 'hardened'] as const)(
  'malformed and misaddressed frames on /ws, %s: the party typed refusal, no answer, nothing stored',
  (profile) => {
    for (const [what, bytes, code] of malformed(profile)) {
      it(`${what}: ${code}`, async () => {
        const s = await setUp(profile);
        const ws = await raw(s.ar);
        ws.send(bytes);
        await until(() => rejections(s.ar.events)[0], 5000, 'the rejection');
        expect(rejections(s.ar.events), what).toEqual([code]);
        // The Repository party answers nothing it refuses (it takes no requests).
        expect(framesOut(s.ar.events), what).toEqual([]);
        expect(s.ar.service.store.deployments(), what).toEqual([]);
        await stillServes(s);
        expect(ws.readyState, what).toBe(WebSocket.OPEN);
        expect(rejections(s.ar.events), what).toEqual([code]);
      });
    }
  },
);

describe.each(['patent', 'hardened'] as const)(
  'forged answers to an outstanding deployment, %s: refused, rows unchanged',
  (profile) => {
    /** The AR reaching KServ1 through a recording proxy that holds KServ1's answers back. */
    async function holding() {
      const proxy = await startRecordingProxy();
      cleanup.push(() => proxy.close());
      const s = await setUp(profile, {
        requestTimeoutMs: TIMEOUT_MS,
        connect: (url, peer) => directConnect(peer === N.ks1 ? proxy.urlFor(url) : url, peer),
      });
      proxy.holdDown = true;
      const d = s.ar.service.deploy({ module: 'billing', anc: N.ve });
      // KServ1's genuine M3, kept back by the proxy; the test opens it with the AR's Key.
      const m3 = await until(() => proxy.messages.find((m) => m.dir === 'down'), 5000, "KServ1's M3");
      const opened = openFrame(nodeBackend, TRIPLES.ar.key, m3.bytes);
      const answer = readPayload(createProfile(profile), opened.envelope, ['clef-answer']);
      const waiting = row(d.id, T0, 'resolving', null, [step(T0, 'M1', 'sent', N.ks1)]);
      expect(await stored(s, d.id)).toEqual(waiting);
      const release = () => {
        proxy.holdDown = false;
        proxy.release();
      };
      return { s, id: d.id, opened, answer, waiting, release };
    }

    it('an M3 signed with another key: CRYPTO_SIGNATURE; the genuine M3 then completes the deployment', async () => {
      const { s, id, opened, answer, waiting, release } = await holding();
      // KServ1's Name, the real header (bound to M1 under hardened) and corr, the impostor's Clef.
      const forged = craftFrame(
        nodeBackend,
        seededRandom('repository-tests/forged-m3'),
        createProfile(profile),
        IMPOSTOR,
        AR,
        { ...answer.body, clef: IMPOSTOR.clef },
        answer.header,
        opened.frame.corr,
      );
      const ws = await raw(s.ar);
      ws.send(forged);
      await until(() => rejections(s.ar.events)[0], 5000, 'the rejection');
      expect(rejections(s.ar.events)).toEqual(['CRYPTO_SIGNATURE']);
      expect(await stored(s, id)).toEqual(waiting);
      expect(s.ar.service.party.pendingCount).toBe(1);
      expect(ws.readyState).toBe(WebSocket.OPEN);

      release();
      const veClef = clefId(s.peers.ve.party.clef);
      expect(await finished(s.ar, id)).toEqual(row(id, T0, 'sent', null, delivered(T0, veClef)));
      await until(() => s.peers.ve.party.installed[0], 5000, 'the VE to install the program');
      expect(s.peers.ve.party.installed).toEqual([
        { sender: N.ar, digest: DIGEST, bytes: PROGRAM.length, at: T0 },
      ]);
    });

    it('an M3 whose signed bytes were flipped: CRYPTO_SIGNATURE; the deployment fails with TIMEOUT, the late M3 is UNSOLICITED_ANSWER', async () => {
      const { s, id, opened, waiting, release } = await holding();
      const signed = opened.envelope.signed;
      const flipped = signed.payload.slice();
      flipped[flipped.length - 1]! ^= 0x01;
      const tampered = resealFrame(
        nodeBackend,
        seededRandom('repository-tests/flipped-m3'),
        { frame: opened.frame, envelope: { sender: N.ks1, signed: { ...signed, payload: flipped } } },
        AR,
      );
      const ws = await raw(s.ar);
      ws.send(tampered);
      await until(() => rejections(s.ar.events)[0], 5000, 'the rejection');
      expect(rejections(s.ar.events)).toEqual(['CRYPTO_SIGNATURE']);
      expect(await stored(s, id)).toEqual(waiting);

      // The party's expiry fails the request (the service runs it every second).
      s.clock.advance(TIMEOUT_MS);
      const at = T0 + TIMEOUT_MS;
      const failed = row(id, at, 'failed', 'TIMEOUT', [
        step(T0, 'M1', 'sent', N.ks1),
        step(at, 'M1', 'failed', N.ks1, 'TIMEOUT'),
      ]);
      expect(await finished(s.ar, id)).toEqual(failed);
      expect(s.ar.service.party.pendingCount).toBe(0);

      release();
      await until(() => rejections(s.ar.events)[1], 5000, 'the late answer refused');
      expect(rejections(s.ar.events)).toEqual(['CRYPTO_SIGNATURE', 'UNSOLICITED_ANSWER']);
      expect(await stored(s, id)).toEqual(failed);
      expect(s.peers.ve.deliveries).toEqual([]);
      expect(framesOut(s.ar.events).map((e) => e.type === 'frame' && e.step)).toEqual(['M1']);
      await stillServes(s);
    });

    it(`forged errors: a signed one with another key is CRYPTO_SIGNATURE; an unsigned one ${
      profile === 'patent' ? 'fails the deployment (REMOTE_ERROR, ATK-15c)' : 'is refused (FRAME_KIND)'
    }`, async () => {
      const { s, id, opened, answer, waiting, release } = await holding();
      const ws = await raw(s.ar);
      ws.send(signedError(profile, IMPOSTOR, T0, answer.header.inReplyTo, opened.frame.corr));
      await until(() => rejections(s.ar.events)[0], 5000, 'the rejection');
      expect(rejections(s.ar.events)).toEqual(['CRYPTO_SIGNATURE']);
      expect(await stored(s, id)).toEqual(waiting);

      ws.send(unsignedError(opened.frame.corr));
      const veClef = clefId(s.peers.ve.party.clef);
      if (profile === 'patent') {
        // The patent's negative answers are unauthenticated: anyone on the path can fail a deployment.
        const failed = row(id, T0, 'failed', 'REMOTE_ERROR', [
          step(T0, 'M1', 'sent', N.ks1),
          step(T0, 'ERR', 'received', N.ks1, 'REMOTE_ERROR', 'UNKNOWN_NAME'),
          step(T0, 'M1', 'failed', N.ks1, 'REMOTE_ERROR', 'UNKNOWN_NAME'),
        ]);
        expect(await finished(s.ar, id)).toEqual(failed);
        release();
        await until(() => rejections(s.ar.events)[1], 5000, 'the late answer refused');
        expect(rejections(s.ar.events)).toEqual(['CRYPTO_SIGNATURE', 'UNSOLICITED_ANSWER']);
        expect(await stored(s, id)).toEqual(failed);
        expect(s.peers.ve.deliveries).toEqual([]);
        await stillServes(s);
      } else {
        await until(() => rejections(s.ar.events)[1], 5000, 'the second rejection');
        expect(rejections(s.ar.events)).toEqual(['CRYPTO_SIGNATURE', 'FRAME_KIND']);
        expect(await stored(s, id)).toEqual(waiting);
        release();
        expect(await finished(s.ar, id)).toEqual(row(id, T0, 'sent', null, delivered(T0, veClef)));
        await until(() => s.peers.ve.party.installed[0], 5000, 'the VE to install the program');
      }
      expect(ws.readyState).toBe(WebSocket.OPEN);
    });
  },
);

describe('WebSocket-level abuse closes only the offending socket', () => {
  it('a message one byte over the frame limit closes that socket with 1009; deploys go on', async () => {
    const s = await setUp('patent');
    const big = await raw(s.ar);
    const closed = closeOf(big);
    big.send(new Uint8Array(LIMITS.FRAME_MAX_BYTES + 1));
    expect((await closed).code).toBe(1009);
    expect(s.ar.events.filter((e) => e.type === 'frame' && e.conn === 'in-1')).toEqual([]);
    expect(s.ar.service.store.deployments()).toEqual([]);
    await stillServes(s);
    expect(rejections(s.ar.events)).toEqual([]);
  });

  it('a text message closes that socket with 1003', async () => {
    const s = await setUp('patent');
    const text = await raw(s.ar);
    const closed = closeOf(text);
    text.send('DEPLOY billing');
    expect(await closed).toEqual({ code: 1003, reason: 'binary frames only' });
    expect(s.ar.events.filter((e) => e.type === 'frame')).toEqual([]);
    expect(s.ar.service.store.deployments()).toEqual([]);
    await stillServes(s);
  });

  it('half a WebSocket message, then a disconnect: nothing reaches the party, deploys go on', async () => {
    const s = await setUp('patent');
    const half = await rawWsClient(s.ar.address.ws);
    half.write(binaryFrameHead(1000));
    half.write(unsignedError().subarray(0, 20));
    await stillServes(s);
    half.destroy();
    const closed = await until(
      () => s.ar.events.find((e) => e.type === 'connection' && e.conn === 'in-1' && e.state === 'closed'),
      5000,
      'the half-message socket to close',
    );
    expect(closed).toMatchObject({ direction: 'inbound', code: 1006 });
    expect(s.ar.events.filter((e) => e.type === 'frame' && e.conn === 'in-1')).toEqual([]);
    expect(rejections(s.ar.events)).toEqual([]);
    await stillServes(s);
    expect(s.ar.service.store.deployments().map((d) => d.state)).toEqual(['sent', 'sent']);
  });

  it('a peer that stops mid-message is dropped by the heartbeat, and does not hold up stop()', async () => {
    const s = await setUp('patent', { heartbeatMs: 100 });
    const stopped = await rawWsClient(s.ar.address.ws);
    cleanup.push(() => void stopped.destroy());
    stopped.write(binaryFrameHead(1000));
    stopped.write(new Uint8Array(10));
    const dropped = await until(
      () => s.ar.events.find((e) => e.type === 'connection' && e.conn === 'in-1' && e.state === 'closed'),
      3000,
      'the heartbeat to drop the silent peer',
    );
    expect(dropped).toMatchObject({ direction: 'inbound', code: 1006 });
    expect(s.ar.events.filter((e) => e.type === 'frame' && e.conn === 'in-1')).toEqual([]);
    await stillServes(s);

    const stalled = await rawWsClient(s.ar.address.ws);
    cleanup.push(() => void stalled.destroy());
    stalled.write(binaryFrameHead(1000));
    const t = Date.now();
    await s.ar.service.stop();
    expect(Date.now() - t).toBeLessThan(2000);
  });
});

describe('admin API: bad requests are typed refusals and store nothing', () => {
  async function adminOnly() {
    const clock = manualClock();
    const dir = tempDir();
    cleanup.push(dir.remove);
    const ar = await startRepository({ dataDir: dir.path, clock: clock.now });
    cleanup.push(() => ar.service.stop());
    ar.service.publish('billing', PROGRAM);
    return { ar, dataDir: dir.path };
  }

  it('a deploy with a bad Name, a missing or unknown field or a wrong type is 400 with its code', async () => {
    const { ar } = await adminOnly();
    const url = `${ar.address.http}/admin/deploy`;
    const cases: [unknown, string][] = [
      [{ module: 'billing', anc: 'Not A Name!' }, 'NAME_INVALID'],
      [{ module: 'billing', anc: 've1..anc1.clefnet.test' }, 'NAME_INVALID'],
      [{ module: 'billing', anc: N.ve, secApp: 'UPPER.clefnet.test' }, 'NAME_INVALID'],
      [{ module: 'billing', anc: '' }, 'ENCODING_BAD_VALUE'],
      [{ module: 'billing', anc: `${'a'.repeat(250)}.test` }, 'ENCODING_BAD_VALUE'],
      [{ module: 'billing' }, 'ENCODING_BAD_VALUE'],
      [{ anc: N.ve }, 'ENCODING_BAD_VALUE'],
      [{}, 'ENCODING_BAD_VALUE'],
      [{ module: 'billing', anc: N.ve, extra: 1 }, 'ENCODING_BAD_VALUE'],
      [{ module: 'billing', anc: 7 }, 'ENCODING_BAD_VALUE'],
      [{ module: ['billing'], anc: N.ve }, 'ENCODING_BAD_VALUE'],
      [{ module: 'billing', anc: N.ve, secApp: null }, 'ENCODING_BAD_VALUE'],
      [{ module: 'bad name', anc: N.ve }, 'ENCODING_BAD_VALUE'],
      [['billing', N.ve], 'ENCODING_BAD_VALUE'],
      ['billing', 'ENCODING_BAD_VALUE'],
    ];
    for (const [body, code] of cases) {
      const r = await httpJson('POST', url, body, AUTH);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body, JSON.stringify(body)).toMatchObject({ code });
    }
    for (const text of ['{"module":', '']) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: text,
      });
      expect(res.status, text).toBe(400);
      expect(await res.json(), text).toMatchObject({ code: 'ENCODING_BAD_VALUE' });
    }
    expect(ar.service.store.deployments()).toEqual([]);
    expect(framesOut(ar.events)).toEqual([]);
    expect(ar.events.filter((e) => e.type === 'protocol')).toEqual([]);
  });

  it('a deployment id that is not a positive decimal is 400 ENCODING_BAD_VALUE', async () => {
    const { ar } = await adminOnly();
    for (const id of ['0', '-1', '01', '1.5', '1e3', 'abc', '12345678901234567', '%20']) {
      const r = await httpJson('GET', `${ar.address.http}/admin/deployments/${id}`, undefined, AUTH);
      expect(r.status, id).toBe(400);
      expect(r.body, id).toMatchObject({ code: 'ENCODING_BAD_VALUE' });
    }
  });

  it('a module over the program limit, an empty one, a body over the body limit, another content type', async () => {
    const { ar, dataDir } = await adminOnly();
    const url = `${ar.address.http}/admin/modules`;
    const post = async (query: string, type: string, body: Uint8Array | string) => {
      const res = await fetch(`${url}${query}`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': type },
        body,
      });
      return { status: res.status, body: await res.json() };
    };
    const octets = 'application/octet-stream';
    expect(await post('?name=big', octets, new Uint8Array(LIMITS.PROGRAM_MAX_BYTES + 1))).toMatchObject({
      status: 413,
      body: { code: 'ENCODING_TOO_LARGE' },
    });
    expect(await post('?name=empty', octets, new Uint8Array(0))).toMatchObject({
      status: 400,
      body: { code: 'ENCODING_BAD_VALUE' },
    });
    const huge = JSON.stringify({ name: 'huge', program: 'A'.repeat(2 * LIMITS.PROGRAM_MAX_BYTES) });
    expect(await post('', 'application/json', huge)).toMatchObject({
      status: 413,
      body: { code: 'ENCODING_TOO_LARGE' },
    });
    // Text is parsed (Fastify's own parser) and refused by the route; an unknown type by Fastify.
    expect(await post('?name=text', 'text/plain', 'kQ==')).toEqual({
      status: 400,
      body: {
        code: 'ENCODING_BAD_VALUE',
        message: 'the body must be {name, program} or application/octet-stream',
      },
    });
    expect(await post('?name=xml', 'application/xml', '<m/>')).toMatchObject({
      status: 415,
      body: { code: 'ENCODING_BAD_VALUE' },
    });
    expect(ar.service.store.modules().map((m) => m.name)).toEqual(['billing']);
    expect(readdirSync(join(dataDir, MODULES_DIR))).toEqual([DIGEST]);
  });

  it('the deployment list needs the bearer token too (401 NOT_AUTHORISED)', async () => {
    const { ar } = await adminOnly();
    for (const headers of [
      {},
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: TOKEN },
    ]) {
      const r = await httpJson('GET', `${ar.address.http}/admin/deployments`, undefined, headers);
      expect(r, JSON.stringify(headers)).toMatchObject({ status: 401, body: { code: 'NOT_AUTHORISED' } });
    }
  });
});
