/**
 * The ASD channel of TB-17 end to end over a real socket: a SecApp party's OPEN goes to KServ2 (the
 * protocol's KeyServer party in-process), KServ2 forwards FROM to the ASD service on 127.0.0.1, the
 * ASD stores one record per request in SQLite inside the message's transaction and answers
 * `ok <count>`, which KServ2 relays to the application. Revocation at the ASD (PROTO-26) refuses the
 * next request with REVOKED and stores nothing; a restart keeps records and revocations.
 */
import { utf8 } from '@clefnet/protocol';
import { recordingPool } from '@clefnet/service-host/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AUTH,
  Channel,
  httpJson,
  manualClock,
  N,
  type Running,
  startAsd,
  T0,
  TRIPLES,
  tempDir,
} from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const hex = (s: string) => Buffer.from(s, 'utf8').toString('hex');

async function setUp(profile: 'patent' | 'hardened', extra: Parameters<typeof startAsd>[0] = {}) {
  const clock = manualClock();
  const dir = tempDir();
  cleanup.push(dir.remove);
  const asd = await startAsd({ dataDir: dir.path, clock: clock.now, profile, ...extra });
  cleanup.push(() => asd.service.stop());
  const channel = new Channel(profile, clock.now);
  cleanup.push(() => channel.close());
  await channel.connect(asd.address.ws);
  return { clock, dir, asd, channel };
}

const records = async (r: Running, app?: string) =>
  (
    await httpJson(
      'GET',
      `${r.address.http}/admin/records${app === undefined ? '' : `?app=${app}`}`,
      undefined,
      AUTH,
    )
  ).body;

describe.each(['patent', 'hardened'] as const)('the ASD behind KServ2, %s', (profile) => {
  it('stores exactly one record for a channel request and answers ok 1', async () => {
    const { asd, channel } = await setUp(profile);
    const reply = await channel.request(N.billing, utf8('packets=3 bytes=120'));
    expect(reply).toEqual({ kind: 'channel-data', peer: N.asd, data: utf8('ok 1') });
    expect(asd.service.store.records()).toEqual([
      { id: 1, app: N.billing, data: utf8('packets=3 bytes=120'), receivedAt: T0 },
    ]);
    expect(await records(asd, N.billing)).toEqual({
      records: [{ id: 1, app: N.billing, data: hex('packets=3 bytes=120'), bytes: 19, receivedAt: T0 }],
    });
    const served = asd.events.flatMap((e) =>
      e.type === 'protocol' && e.event.type === 'channel-served' ? [e.event] : [],
    );
    expect(served).toHaveLength(1);
  });

  it('seals its answer with the ephemeral keys it is given and closes the pool when it stops', async () => {
    const { pool, handed } = recordingPool('asd-tests/pool', 2);
    const { asd, channel } = await setUp(profile, { ephemeral: pool });
    const reply = await channel.request(N.billing, utf8('packets=1 bytes=60'));
    expect(reply).toEqual({ kind: 'channel-data', peer: N.asd, data: utf8('ok 1') });
    expect([pool.ready, handed.length]).toEqual([1, 2]);
    expect(handed[0]).toEqual(new Uint8Array(32));
    await asd.service.stop();
    expect(pool.ready).toBe(0);
    expect(handed[1]).toEqual(new Uint8Array(32));
  });

  it('N requests give count N, counted per application', async () => {
    const { asd, channel, clock } = await setUp(profile);
    const n = 5;
    for (let i = 1; i <= n; i++) {
      clock.advance(10);
      expect(await channel.request(N.billing, utf8(`packets=${i}`))).toMatchObject({ data: utf8(`ok ${i}`) });
    }
    expect(await channel.request(TRIPLES.other.name, utf8('packets=9'))).toMatchObject({
      data: utf8('ok 1'),
    });
    expect(asd.service.store.count(N.billing)).toBe(n);
    const listed = (await records(asd, N.billing)) as { records: { data: string; receivedAt: number }[] };
    expect(listed.records.map((r) => [Buffer.from(r.data, 'hex').toString(), r.receivedAt - T0])).toEqual(
      Array.from({ length: n }, (_, i) => [`packets=${i + 1}`, 10 * (i + 1)]),
    );
    expect(((await records(asd)) as { records: unknown[] }).records).toHaveLength(n + 1);
  });

  it('revocation at the ASD refuses the next request with REVOKED and stores nothing; others go on', async () => {
    const { asd, channel, clock } = await setUp(profile);
    await channel.request(N.billing, utf8('packets=1'));
    clock.advance(1000);
    const revoked = await httpJson('POST', `${asd.address.http}/admin/revoke`, { app: N.billing }, AUTH);
    expect(revoked).toMatchObject({ status: 200, body: { app: N.billing, revokedAt: T0 + 1000 } });

    const refused = await channel.request(N.billing, utf8('packets=2'));
    expect(refused).toMatchObject({
      kind: 'request-failed',
      step: 'OPEN',
      code: 'REMOTE_ERROR',
      remote: 'REVOKED',
    });
    expect(asd.service.store.records().map((r) => r.app)).toEqual([N.billing]);
    // Independent of KServ2: its binding of the application is untouched.
    expect(channel.ks2Binding(N.billing)?.revokedAt).toBeNull();
    // Another application is still served.
    expect(await channel.request(TRIPLES.other.name, utf8('x'))).toMatchObject({ data: utf8('ok 1') });
    // Revoking again keeps the first time.
    clock.advance(1000);
    expect(
      (await httpJson('POST', `${asd.address.http}/admin/revoke`, { app: N.billing }, AUTH)).body,
    ).toEqual({ app: N.billing, revokedAt: T0 + 1000 });
    expect((await httpJson('GET', `${asd.address.http}/admin/revocations`, undefined, AUTH)).body).toEqual({
      revocations: [{ app: N.billing, revokedAt: T0 + 1000 }],
    });
  });

  it('a restart keeps the records, the count and the revocations', async () => {
    const { asd, channel, clock, dir } = await setUp(profile);
    for (let i = 0; i < 3; i++) await channel.request(N.billing, utf8(`r${i}`));
    await channel.request(TRIPLES.other.name, utf8('o'));
    await httpJson('POST', `${asd.address.http}/admin/revoke`, { app: TRIPLES.other.name }, AUTH);
    await asd.service.stop();
    channel.close();

    const again = await startAsd({ dataDir: dir.path, clock: clock.now, profile });
    cleanup.push(() => again.service.stop());
    const channel2 = new Channel(profile, clock.now);
    cleanup.push(() => channel2.close());
    await channel2.connect(again.address.ws);
    expect(again.service.store.records().map((r) => Buffer.from(r.data).toString())).toEqual([
      'r0',
      'r1',
      'r2',
      'o',
    ]);
    expect(await channel2.request(N.billing, utf8('r3'))).toMatchObject({ data: utf8('ok 4') });
    expect(await channel2.request(TRIPLES.other.name, utf8('o2'))).toMatchObject({
      kind: 'request-failed',
      remote: 'REVOKED',
    });
    expect(again.service.store.count(TRIPLES.other.name)).toBe(1);
  });
});
