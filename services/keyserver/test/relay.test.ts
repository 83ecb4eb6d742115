/**
 * The ASD channel through KServ2 (TB-17, PROTO-25, PROTO-26) over real WebSockets: a SecApp party
 * opens it, KServ2 relays to an Asd party hosted on its own WebSocket server (reached through the
 * directory), and the reply goes back to the application on the socket its OPEN came in on.
 */
import {
  Asd,
  accessPairToJson,
  type Name,
  nodeBackend,
  parseName,
  SecApp,
  seededRandom,
  utf8,
} from '@clefnet/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import {
  AUTH,
  httpJson,
  known,
  ks2Options,
  manualClock,
  N,
  PartyLink,
  probeAs,
  startKeyServer,
  TRIPLES,
  tempDir,
  until,
} from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const BILLING = parseName('billing.ar.clefnet.test');

/** An Asd party on a WebSocket server: every frame it sends goes back on the socket it answers. */
async function hostAsd(profile: 'patent' | 'hardened', clock: () => number) {
  const served: { app: Name; data: string }[] = [];
  const asd = new Asd({
    triple: TRIPLES.asd,
    backend: nodeBackend,
    random: seededRandom('keyserver-tests/asd'),
    clock,
    profile,
    keyServers: [known(TRIPLES.ks2, ['relay'])],
    serve: (app, data) => {
      served.push({ app, data: Buffer.from(data).toString('utf8') });
      return utf8(`ok ${served.length}`);
    },
  });
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws) =>
    ws.on('message', (data: Buffer) => {
      for (const o of asd.receive(new Uint8Array(data)).send) ws.send(o.bytes);
    }),
  );
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  );
  const address = wss.address();
  return {
    url: `ws://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/`,
    served,
  };
}

describe.each(['patent', 'hardened'] as const)('ASD channel through KServ2, %s', (profile) => {
  it('relays OPEN to the ASD and its reply to the application; after revocation the channel is refused', async () => {
    const clock = manualClock();
    const dirs = [tempDir(), tempDir()];
    cleanup.push(...dirs.map((d) => d.remove));
    const ks1 = await startKeyServer({ dataDir: dirs[0]!.path, clock: clock.now, profile });
    cleanup.push(() => ks1.service.stop());
    for (const t of [TRIPLES.ar, TRIPLES.ks2]) {
      await httpJson('POST', `${ks1.address.http}/admin/pairs`, accessPairToJson(t), AUTH);
    }
    const asd = await hostAsd(profile, clock.now);
    const ks2 = await startKeyServer({
      ...ks2Options(profile),
      dataDir: dirs[1]!.path,
      clock: clock.now,
      directory: { [N.ks1]: ks1.address.ws, [N.asd]: asd.url },
    });
    cleanup.push(() => ks2.service.stop());
    await httpJson('POST', `${ks2.address.http}/admin/pairs`, accessPairToJson(TRIPLES.asd), AUTH);

    // Steps 5-6: the AR has KServ2 mint the application's triple.
    const ar = probeAs(
      TRIPLES.ar,
      [known(TRIPLES.ks1, ['clef']), known(TRIPLES.ks2, ['mint'])],
      clock.now,
      profile,
    );
    const arLink = new PartyLink(ar);
    cleanup.push(() => arLink.close());
    await arLink.connect(N.ks2, ks2.address.ws);
    arLink.post(ar.newQuery(known(TRIPLES.ks2, ['mint']), BILLING));
    const minted = await until(() => ar.answers[0]);
    if (minted.body.type !== 'triple') throw new Error(minted.tag);

    // TB-17: the application talks to the ASD through KServ2.
    const app = new SecApp({
      triple: minted.body.triple,
      backend: nodeBackend,
      random: seededRandom('keyserver-tests/secapp'),
      clock: clock.now,
      profile,
      keyServers: [known(TRIPLES.ks2, ['relay'])],
    });
    const appLink = new PartyLink(app);
    cleanup.push(() => appLink.close());
    await appLink.connect(N.ks2, ks2.address.ws);
    appLink.post(app.request(N.asd, utf8('packets=3 bytes=120')));
    const reply = await until(() => appLink.deliveries.find((d) => d.kind === 'channel-data'));
    expect(reply).toEqual({ kind: 'channel-data', peer: N.asd, data: utf8('ok 1') });
    expect(asd.served).toEqual([{ app: BILLING, data: 'packets=3 bytes=120' }]);
    const frames = ks2.events.flatMap((e) =>
      e.type === 'frame' ? [`${e.dir} ${e.conn} ${e.to} ${e.step ?? ''}`.trim()] : [],
    );
    expect(frames.slice(-4)).toEqual([
      `in in-2 ${N.ks2}`,
      `out out-2 ${N.asd} FROM-ASD`,
      `in out-2 ${N.ks2}`,
      `out in-2 ${BILLING} FROM-SECAPP`,
    ]);

    // PROTO-26: revoked at KServ2, the application's next request is refused there.
    clock.advance(1000);
    expect((await httpJson('POST', `${ks2.address.http}/admin/revoke`, { name: BILLING }, AUTH)).status).toBe(
      200,
    );
    appLink.post(app.request(N.asd, utf8('packets=1 bytes=40')));
    const refused = await until(() => appLink.deliveries.find((d) => d.kind === 'request-failed'));
    expect(refused).toMatchObject({ step: 'OPEN', code: 'REMOTE_ERROR', remote: 'REVOKED' });
    expect(asd.served).toHaveLength(1);
  });
});
