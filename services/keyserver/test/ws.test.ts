/**
 * The protocol over real WebSockets: the protocol package's parties (a probe requester, the ANC
 * machine, the AR) talk to one or two listening key server services with SQLite files.
 */
import {
  AncMachine,
  accessPairToJson,
  createProfile,
  decodeFrame,
  EphemeralPool,
  encodeClef,
  type Name,
  nodeBackend,
  openFrame,
  type ProfileName,
  parseName,
  Repository,
  readPayload,
  seededRandom,
  toHex,
  utf8,
} from '@clefnet/protocol';
import { recordingPool, startRecordingProxy } from '@clefnet/service-host/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { ServiceEvent } from '../src/index.js';
import {
  AUTH,
  httpJson,
  known,
  ks2Options,
  manualClock,
  N,
  PartyLink,
  probeAs,
  type Running,
  startKeyServer,
  T0,
  TRIPLES,
  tempDir,
  until,
} from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const clefHex = (c: Parameters<typeof encodeClef>[0]) => toHex(encodeClef(c));
const BILLING = parseName('billing.ar.clefnet.test');

async function start(
  profile: ProfileName,
  clock: ReturnType<typeof manualClock>,
  extra: Parameters<typeof startKeyServer>[0] = {},
): Promise<Running> {
  const dir = tempDir();
  const running = await startKeyServer({ dataDir: dir.path, clock: clock.now, profile, ...extra });
  cleanup.push(dir.remove, () => running.service.stop());
  return running;
}

async function register(r: Running, ...pairs: { name: Name; clef: Parameters<typeof encodeClef>[0] }[]) {
  for (const p of pairs) {
    const res = await httpJson('POST', `${r.address.http}/admin/pairs`, accessPairToJson(p), AUTH);
    expect(res.status, p.name).toBe(201);
  }
}

function link(party: ConstructorParameters<typeof PartyLink>[0]): PartyLink {
  const l = new PartyLink(party);
  cleanup.push(() => l.close());
  return l;
}

/** The frame events of a service, as `dir conn kind to step`. */
const frames = (events: ServiceEvent[]) =>
  events.flatMap((e) =>
    e.type === 'frame' ? [`${e.dir} ${e.conn} ${e.kind ?? e.code} ${e.to ?? ''} ${e.step ?? ''}`.trim()] : [],
  );
const protocolTypes = (events: ServiceEvent[]) =>
  events.flatMap((e) =>
    e.type === 'protocol' ? [`${e.event.type}${e.event.step ? ` ${e.event.step}` : ''}`] : [],
  );

describe.each(['patent', 'hardened'] as const)('KServ1 over WebSocket, %s', (profile) => {
  it('answers a Clef query (steps 1-3) with the registered Clef, on the socket it came from', async () => {
    const clock = manualClock();
    const ks1 = await start(profile, clock);
    await register(ks1, TRIPLES.ar, TRIPLES.ve);
    const probe = probeAs(TRIPLES.ar, [known(TRIPLES.ks1, ['clef', 'mint'])], clock.now, profile);
    const client = link(probe);
    await client.connect(N.ks1, ks1.address.ws);
    const sent = client.post(probe.clefQuery(known(TRIPLES.ks1, ['clef']), N.ve));
    const answer = await until(() => probe.answers[0], 5000, 'the Clef answer');

    expect(answer.tag).toBe('CLEF');
    expect(answer.body).toEqual({ type: 'clef-answer', subject: N.ve, clef: TRIPLES.ve.clef });
    if (profile === 'hardened') {
      expect(answer.header.sender).toBe(N.ks1);
      expect(answer.header.receiver).toBe(N.ar);
      expect(answer.header.expiresAt! - answer.header.issuedAt!).toBe(300_000);
    } else {
      expect(answer.header).toEqual({});
    }
    const request = decodeFrame(sent.send[0]!.bytes);
    const reply = decodeFrame(client.received[0]!);
    expect([reply.kind, reply.to, reply.from, reply.corr]).toEqual(['SEALED', N.ar, '', request.corr]);
    expect(frames(ks1.events)).toEqual([`in in-1 SEALED ${N.ks1}`, `out in-1 SEALED ${N.ar} CLEF-ANS`]);
    expect(protocolTypes(ks1.events)).toEqual([
      'binding-created',
      'binding-created',
      'received',
      'sent CLEF-ANS',
    ]);
    expect(client.errors).toEqual([]);
  });

  it('seals with the ephemeral keys it is given (each once, then zeroed) and closes the pool when it stops', async () => {
    const clock = manualClock();
    const { pool, handed } = recordingPool('keyserver-tests/pool', 2);
    const serverEnc = nodeBackend.x25519PublicKey(handed[0]!.slice());
    const ks1 = await start(profile, clock, { ephemeral: pool });
    await register(ks1, TRIPLES.ar, TRIPLES.ve);
    // The requester's party takes its ephemeral key from a pool too (PartyOptions.ephemeral).
    const clientPool = new EphemeralPool(nodeBackend, seededRandom('keyserver-tests/client-pool'), {
      size: 1,
    });
    clientPool.fill();
    const clientEnc = nodeBackend.x25519PublicKey(seededRandom('keyserver-tests/client-pool')(32));
    const probe = probeAs(TRIPLES.ar, [known(TRIPLES.ks1, ['clef', 'mint'])], clock.now, profile, {
      ephemeral: clientPool,
    });
    const client = link(probe);
    await client.connect(N.ks1, ks1.address.ws);
    const sent = client.post(probe.clefQuery(known(TRIPLES.ks1, ['clef']), N.ve));
    const answer = await until(() => probe.answers[0], 5000, 'the Clef answer');
    expect(answer.body).toEqual({ type: 'clef-answer', subject: N.ve, clef: TRIPLES.ve.clef });
    expect(decodeFrame(sent.send[0]!.bytes).body.subarray(0, 32)).toEqual(clientEnc);
    expect(clientPool.ready).toBe(0);
    expect(decodeFrame(client.received[0]!).body.subarray(0, 32)).toEqual(serverEnc);
    expect(handed[0]).toEqual(new Uint8Array(32));
    expect([pool.ready, handed.length]).toEqual([1, 2]);
    expect(handed[1]).not.toEqual(new Uint8Array(32));
    await ks1.service.stop();
    expect([pool.ready, handed.length]).toEqual([0, 2]);
    expect(handed[1]).toEqual(new Uint8Array(32));
  });

  it('refuses a query about an unknown Name with UNKNOWN_NAME (patent: ERROR frame; hardened: sealed)', async () => {
    const clock = manualClock();
    const ks1 = await start(profile, clock);
    await register(ks1, TRIPLES.ar);
    const probe = probeAs(TRIPLES.ar, [known(TRIPLES.ks1, ['clef'])], clock.now, profile);
    const client = link(probe);
    await client.connect(N.ks1, ks1.address.ws);
    client.post(probe.clefQuery(known(TRIPLES.ks1, ['clef']), N.ve));
    const failed = await until(() => client.deliveries.find((d) => d.kind === 'request-failed'));
    expect(failed).toEqual({
      kind: 'request-failed',
      step: 'M1',
      peer: N.ks1,
      subject: N.ve,
      code: 'REMOTE_ERROR',
      remote: 'UNKNOWN_NAME',
    });
    const kind = profile === 'patent' ? 'ERROR' : 'SEALED';
    expect(frames(ks1.events)).toEqual([`in in-1 SEALED ${N.ks1}`, `out in-1 ${kind} ${N.ar} ERR`]);
  });

  it('refuses a requester it does not know with UNKNOWN_SENDER (hardened: a SIGNED frame in clear)', async () => {
    const clock = manualClock();
    const ks1 = await start(profile, clock);
    await register(ks1, TRIPLES.ve);
    const probe = probeAs(TRIPLES.probe, [known(TRIPLES.ks1, ['clef'])], clock.now, profile);
    const client = link(probe);
    await client.connect(N.ks1, ks1.address.ws);
    client.post(probe.clefQuery(known(TRIPLES.ks1, ['clef']), N.ve));
    const failed = await until(() => client.deliveries.find((d) => d.kind === 'request-failed'));
    expect(failed).toMatchObject({ code: 'REMOTE_ERROR', remote: 'UNKNOWN_SENDER' });
    const kind = profile === 'patent' ? 'ERROR' : 'SIGNED';
    expect(frames(ks1.events)).toEqual([`in in-1 SEALED ${N.ks1}`, `out in-1 ${kind} ${N.probe} ERR`]);
    expect(ks1.events.find((e) => e.type === 'protocol' && e.event.type === 'rejected')).toMatchObject({
      event: { code: 'UNKNOWN_SENDER', detail: `${N.probe} is not registered here` },
    });
  });

  it('issues a VE key to the machine (TB-12), stores it owned by the machine, and refuses it to the AR', async () => {
    const clock = manualClock();
    const ks1 = await start(profile, clock);
    await register(ks1, TRIPLES.machine, TRIPLES.ar);
    const machine = new AncMachine({
      triple: TRIPLES.machine,
      backend: nodeBackend,
      random: seededRandom('keyserver-tests/machine'),
      clock: clock.now,
      profile,
      keyServers: [known(TRIPLES.ks1, ['clef', 'mint'])],
    });
    const client = link(machine);
    await client.connect(N.ks1, ks1.address.ws);
    clock.advance(5);
    client.post(machine.requestVeKey(N.ve));
    const issued = await until(() => client.deliveries.find((d) => d.kind === 've-key'));
    if (issued.kind !== 've-key') throw new Error('unreachable');
    expect(issued.ve).toBe(N.ve);
    expect(issued.triple.name).toBe(N.ve);
    const rows = await httpJson('GET', `${ks1.address.http}/admin/bindings`, undefined, AUTH);
    expect((rows.body as { bindings: unknown[] }).bindings).toContainEqual({
      name: N.ve,
      clef: clefHex(issued.triple.clef),
      owner: N.machine,
      createdAt: T0 + 5,
      revokedAt: null,
    });

    // KServ1 is owner-only (KEY-9: only the machine may have its VE re-keyed).
    const ar = probeAs(TRIPLES.ar, [known(TRIPLES.ks1, ['clef', 'mint'])], clock.now, profile);
    const arClient = link(ar);
    await arClient.connect(N.ks1, ks1.address.ws);
    arClient.post(ar.newQuery(known(TRIPLES.ks1, ['mint']), N.ve));
    const refused = await until(() => arClient.deliveries.find((d) => d.kind === 'request-failed'));
    expect(refused).toMatchObject({
      code: 'REMOTE_ERROR',
      remote: profile === 'patent' ? 'NAME_TAKEN' : 'NOT_AUTHORISED',
    });
    expect(ks1.service.store.get(N.ve)?.owner).toBe(N.machine);
    expect(clefHex(ks1.service.store.get(N.ve)!.clef)).toBe(clefHex(issued.triple.clef));
  });
});

/** KServ1 and KServ2 as two services; KServ2 reaches KServ1 through its directory, via a recording proxy. */
async function twoServers(profile: ProfileName) {
  const clock = manualClock();
  const ks1 = await start(profile, clock);
  await register(ks1, TRIPLES.ar, TRIPLES.ks2, TRIPLES.ve);
  const proxy = await startRecordingProxy();
  cleanup.push(() => proxy.close());
  const dialled: string[] = [];
  const ks2 = await start(profile, clock, {
    ...ks2Options(profile),
    directory: { [N.ks1]: ks1.address.ws },
    connect: (url, peer) => {
      dialled.push(`${peer} ${url}`);
      return new WebSocket(proxy.urlFor(url));
    },
  });
  await register(ks2, TRIPLES.asd);
  return { clock, ks1, ks2, proxy, dialled };
}

describe.each(['patent', 'hardened'] as const)('KServ2 minting over WebSocket, %s', (profile) => {
  it('mints a triple (steps 5-6), fetching Clef-AR from KServ1 through the directory and the proxy', async () => {
    const { clock, ks1, ks2, proxy, dialled } = await twoServers(profile);
    const ar = probeAs(
      TRIPLES.ar,
      [known(TRIPLES.ks1, ['clef']), known(TRIPLES.ks2, ['mint'])],
      clock.now,
      profile,
    );
    const client = link(ar);
    await client.connect(N.ks2, ks2.address.ws);
    clock.advance(7);
    client.post(ar.newQuery(known(TRIPLES.ks2, ['mint']), BILLING));
    const answer = await until(() => ar.answers[0], 5000, 'M6');
    if (answer.body.type !== 'triple') throw new Error(`answer ${answer.tag}`);
    const triple = answer.body.triple;
    expect(triple.name).toBe(BILLING);
    expect(toHex(nodeBackend.ed25519PublicKey(triple.key.sign))).toBe(toHex(triple.clef.sign));

    const rows = await httpJson('GET', `${ks2.address.http}/admin/bindings`, undefined, AUTH);
    expect(rows.body).toEqual({
      bindings: [
        { name: N.asd, clef: clefHex(TRIPLES.asd.clef), owner: null, createdAt: T0, revokedAt: null },
        { name: BILLING, clef: clefHex(triple.clef), owner: N.ar, createdAt: T0 + 7, revokedAt: null },
      ],
    });
    expect(dialled).toEqual([`${N.ks1} ${ks1.address.ws}`]);
    expect(frames(ks2.events)).toEqual([
      `in in-1 SEALED ${N.ks2}`,
      `out out-1 SEALED ${N.ks1} RESOLVE-REQ`,
      `in out-1 SEALED ${N.ks2}`,
      `out in-1 SEALED ${N.ar} TRIPLE-ANS`,
    ]);
    expect(frames(ks1.events).slice(-2)).toEqual([
      `in in-1 SEALED ${N.ks1}`,
      `out in-1 SEALED ${N.ks2} CLEF-ANS`,
    ]);
    expect(proxy.messages.map((m) => `${m.dir} ${decodeFrame(m.bytes).to}`)).toEqual([
      `up ${N.ks1}`,
      `down ${N.ks2}`,
    ]);
    expect(
      ks2.events
        .filter((e) => e.type === 'connection')
        .map((e) => e.type === 'connection' && `${e.conn} ${e.state} ${e.direction}`),
    ).toEqual(['in-1 open inbound', 'out-1 open outbound']);
  });

  it('applies its name-ownership policy to a second creation of the same Name (TB-16)', async () => {
    const { clock, ks2, dialled } = await twoServers(profile);
    const ar = probeAs(
      TRIPLES.ar,
      [known(TRIPLES.ks1, ['clef']), known(TRIPLES.ks2, ['mint'])],
      clock.now,
      profile,
    );
    const client = link(ar);
    await client.connect(N.ks2, ks2.address.ws);
    client.post(ar.newQuery(known(TRIPLES.ks2, ['mint']), BILLING));
    const first = await until(() => ar.answers[0]);
    if (first.body.type !== 'triple') throw new Error(`answer ${first.tag}`);
    clock.advance(1000);
    client.post(ar.newQuery(known(TRIPLES.ks2, ['mint']), BILLING));
    const row = () => {
      const b = ks2.service.store.get(BILLING)!;
      return { clef: clefHex(b.clef), owner: b.owner, createdAt: b.createdAt };
    };
    if (profile === 'patent') {
      // overwrite: a second triple replaces the first (ATK-13, ATK-6 under patent).
      const second = await until(() => ar.answers[1]);
      if (second.body.type !== 'triple') throw new Error(`answer ${second.tag}`);
      expect(clefHex(second.body.triple.clef)).not.toBe(clefHex(first.body.triple.clef));
      expect(row()).toEqual({ clef: clefHex(second.body.triple.clef), owner: N.ar, createdAt: T0 + 1000 });
    } else {
      const failed = await until(() => client.deliveries.find((d) => d.kind === 'request-failed'));
      expect(failed).toMatchObject({
        step: 'M5',
        code: 'REMOTE_ERROR',
        remote: 'NAME_TAKEN',
        subject: BILLING,
      });
      expect(row()).toEqual({ clef: clefHex(first.body.triple.clef), owner: N.ar, createdAt: T0 });
      // subtree only: the AR may not create a Name outside its own.
      client.post(ar.newQuery(known(TRIPLES.ks2, ['mint']), parseName('billing.other.test')));
      const outside = await until(() => client.deliveries.filter((d) => d.kind === 'request-failed')[1]);
      expect(outside).toMatchObject({ code: 'REMOTE_ERROR', remote: 'NOT_AUTHORISED' });
      expect(ks2.service.store.get(parseName('billing.other.test'))).toBeUndefined();
    }
    // One outbound connection to KServ1, reused for every upstream lookup.
    expect(dialled.length).toBe(1);
    expect(ks2.events.filter((e) => e.type === 'frame' && e.step === 'RESOLVE-REQ').length).toBe(
      profile === 'patent' ? 2 : 3,
    );
  });

  it('serves a whole deployment of the real AR: M1/M3 at KServ1, M5/M6 at KServ2, then M7 and the hand-over', async () => {
    const { clock, ks1, ks2 } = await twoServers(profile);
    const ar = new Repository({
      triple: TRIPLES.ar,
      backend: nodeBackend,
      random: seededRandom('keyserver-tests/ar'),
      clock: clock.now,
      profile,
      keyServers: [known(TRIPLES.ks1, ['clef']), known(TRIPLES.ks2, ['mint'])],
      mintLocation: ks2.address.ws,
    });
    const client = link(ar);
    await client.connect(N.ks1, ks1.address.ws);
    await client.connect(N.ks2, ks2.address.ws);
    const program = utf8('billing counter v1: count packets and bytes');
    client.post(ar.deploy({ anc: N.ve, program, secApp: BILLING, id: 'd1' }));
    const done = await until(
      () => client.deliveries.find((d) => d.kind === 'deployment'),
      5000,
      'the deployment',
    );
    expect(done).toEqual({ kind: 'deployment', id: 'd1', state: 'sent' });
    expect(client.errors).toEqual([]);
    // The VE is not on these sockets: what the AR sends it is kept, and opened with the VE's Key.
    expect(client.unrouted.map((o) => `${o.to} ${o.step}`)).toEqual([`${N.ve} M7`, `${N.ve} HANDOVER`]);
    const rules = createProfile(profile);
    const m7 = readPayload(
      rules,
      openFrame(nodeBackend, TRIPLES.ve.key, client.unrouted[0]!.bytes).envelope,
      ['program'],
    );
    expect(m7.body.program).toEqual(program);
    const handover = readPayload(
      rules,
      openFrame(nodeBackend, TRIPLES.ve.key, client.unrouted[1]!.bytes).envelope,
      ['handover'],
    );
    expect(handover.body.triple.name).toBe(BILLING);
    expect(handover.body.keyServer).toBe(N.ks2);
    expect(handover.body.location).toBe(ks2.address.ws);
    expect(clefHex(handover.body.triple.clef)).toBe(clefHex(ks2.service.store.get(BILLING)!.clef));
    expect(ks2.service.store.get(BILLING)?.owner).toBe(N.ar);
  });
});

describe.each(['patent', 'hardened'] as const)(
  'routing of a deferred answer under a replay, %s',
  (profile) => {
    it('a copy of a parked M5 cannot take the original answer: each copy is answered on its own socket', async () => {
      const { clock, ks2, proxy } = await twoServers(profile);
      const ar = probeAs(
        TRIPLES.ar,
        [known(TRIPLES.ks1, ['clef']), known(TRIPLES.ks2, ['mint'])],
        clock.now,
        profile,
      );
      const client = link(ar);
      await client.connect(N.ks2, ks2.address.ws);
      // The attacker delays KServ1's answer, so the M5 waits at KServ2 while it replays a copy.
      proxy.holdDown = true;
      const m5 = client.post(ar.newQuery(known(TRIPLES.ks2, ['mint']), BILLING)).send[0]!.bytes;
      await until(() => (proxy.messages.some((m) => m.dir === 'down') ? true : undefined));
      const attacker = new WebSocket(ks2.address.ws);
      cleanup.push(() => attacker.terminate());
      const stolen: Uint8Array[] = [];
      attacker.on('message', (d: Buffer) => stolen.push(new Uint8Array(d)));
      await new Promise((r) => attacker.once('open', r));
      attacker.send(m5);
      await until(() =>
        ks2.events.filter((e) => e.type === 'frame' && e.dir === 'in').length === 2 ? true : undefined,
      );
      proxy.release();
      // Each copy's answer goes back on the socket it came in on: the AR gets its triple either way.
      const answer = await until(() => ar.answers[0], 5000, 'M6 at the AR');
      expect(answer.tag).toBe('TRIPLE');
      const outs = () =>
        ks2.events.flatMap((e) => (e.type === 'frame' && e.dir === 'out' ? [`${e.conn} ${e.step}`] : []));
      if (profile === 'hardened') {
        // Parked too (its nonce is unknown until the original is verified), then dropped unanswered.
        expect(ks2.events.find((e) => e.type === 'protocol' && e.event.type === 'rejected')).toMatchObject({
          event: { code: 'REPLAY' },
        });
        expect(outs()).toEqual(['out-1 RESOLVE-REQ', 'in-1 TRIPLE-ANS']);
        expect(stolen).toEqual([]);
      } else {
        // No freshness: the copy is served as well (a second triple, ATK-6), on the attacker's socket,
        // sealed to the AR: the attacker can drop it but not read it.
        await until(() => stolen[0]);
        expect(outs()).toEqual(['out-1 RESOLVE-REQ', 'in-1 TRIPLE-ANS', 'in-2 TRIPLE-ANS']);
        expect(decodeFrame(stolen[0]!).to).toBe(N.ar);
      }
    });
  },
);

describe('KServ1 unreachable', () => {
  it('a failed dial is a host error; the parked M5 times out and the AR gets UNKNOWN_SENDER on its socket', async () => {
    const clock = manualClock();
    const closed = await start('patent', clock);
    const deadUrl = closed.address.ws;
    await closed.service.stop();
    const ks2 = await start('patent', clock, {
      ...ks2Options('patent'),
      directory: { [N.ks1]: deadUrl },
      requestTimeoutMs: 1000,
      expireEveryMs: 10,
    });
    const ar = probeAs(TRIPLES.ar, [known(TRIPLES.ks2, ['mint'])], clock.now);
    const client = link(ar);
    await client.connect(N.ks2, ks2.address.ws);
    client.post(ar.newQuery(known(TRIPLES.ks2, ['mint']), BILLING));
    await until(() => ks2.events.find((e) => e.type === 'undeliverable'));
    expect(ks2.events.filter((e) => e.type === 'host-error' || e.type === 'undeliverable')).toMatchObject([
      { type: 'host-error', where: 'outbound', conn: 'out-1' },
      { type: 'undeliverable', to: N.ks1, conn: 'out-1' },
    ]);
    clock.advance(1000);
    const failed = await until(() => client.deliveries.find((d) => d.kind === 'request-failed'));
    expect(failed).toEqual({
      kind: 'request-failed',
      step: 'M5',
      peer: N.ks2,
      subject: BILLING,
      code: 'REMOTE_ERROR',
      remote: 'UNKNOWN_SENDER',
    });
    expect(ks2.service.store.get(BILLING)).toBeUndefined();
  });
});
