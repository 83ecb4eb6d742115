/**
 * The ASD channel through KServ2 (PROTO-25, TB-17) and its revocation (PROTO-26): KServ2 and the
 * ASD each revoke the application on their own, whatever the ANC does.
 */
import { createWorld, nodeBackend, type ProfileName, parseName, utf8, type World } from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';

function ready(profile: ProfileName) {
  const w = createWorld({ profile, backend: nodeBackend, seed: 'channel' });
  w.issueVeKey();
  w.deploy(utf8('billing module'));
  w.channel(utf8('packets=1'));
  return w;
}

function failures(w: World, from: number): string[] {
  return w.net.deliveries
    .slice(from)
    .flatMap(({ party, delivery: d }) =>
      d.kind === 'request-failed' ? [`${party} ${d.step} ${d.code} ${d.remote ?? ''}`.trim()] : [],
    );
}

describe.each(['patent', 'hardened'] as const)('ASD channel, %s', (profile) => {
  it('carries each request to the ASD and each answer back, in order', () => {
    const w = ready(profile);
    w.channel(utf8('packets=2'));
    w.channel(utf8('packets=3'));
    expect(w.asdRecords.map((r) => Buffer.from(r.data).toString())).toEqual([
      'packets=1',
      'packets=2',
      'packets=3',
    ]);
    expect(w.channelAnswers.map((a) => Buffer.from(a.data).toString())).toEqual(['ok 1', 'ok 2', 'ok 3']);
  });

  it('revocation at KServ2 stops the next request before it reaches the ASD', () => {
    const w = ready(profile);
    w.net.post(w.ks2.name, w.ks2.revoke(w.names.secApp));
    expect(w.ks2.store.get(w.names.secApp)?.revokedAt).toBe(w.clock());
    const before = w.net.errors.length;
    const delivered = w.net.deliveries.length;
    w.channel(utf8('packets=2'));
    expect(w.net.errors.slice(before).map((e) => `${e.party} ${e.error.code}`)).toEqual([
      `${w.names.ks2} REVOKED`,
    ]);
    expect(failures(w, delivered)).toEqual([`${w.names.secApp} OPEN REMOTE_ERROR REVOKED`]);
    expect(w.asdRecords).toHaveLength(1);
  });

  it('revocation at the ASD refuses the application though KServ2 still relays it', () => {
    const w = ready(profile);
    w.net.post(w.asd.name, w.asd.revoke(w.names.secApp));
    const before = w.net.errors.length;
    const delivered = w.net.deliveries.length;
    w.channel(utf8('packets=2'));
    expect(w.net.errors.slice(before).map((e) => `${e.party} ${e.error.code}`)).toEqual([
      `${w.names.asd} REVOKED`,
    ]);
    // KServ2 passes the ASD's refusal on to the application, with the ASD's code.
    expect(failures(w, delivered)).toEqual([
      `${w.names.ks2} FROM-ASD REMOTE_ERROR REVOKED`,
      `${w.names.secApp} OPEN REMOTE_ERROR REVOKED`,
    ]);
    expect(w.asdRecords).toHaveLength(1);
    expect(w.net.wire.filter((f) => f.step === 'FROM-ASD')).toHaveLength(2);
  });

  it('a data server KServ2 does not know gives NO_CHANNEL_PEER', () => {
    const w = ready(profile);
    const before = w.net.errors.length;
    const delivered = w.net.deliveries.length;
    w.net.post(w.secApp!.name, w.secApp!.request(w.names.ar, utf8('x')));
    w.net.run();
    expect(w.net.errors.slice(before).map((e) => `${e.party} ${e.error.code}`)).toEqual([
      `${w.names.ks2} NO_CHANNEL_PEER`,
    ]);
    expect(failures(w, delivered)).toEqual([`${w.names.secApp} OPEN REMOTE_ERROR NO_CHANNEL_PEER`]);
  });
});

describe('revocation at KServ2 covers Names it knows only through KServ1', () => {
  it.each(['patent', 'hardened'] as const)(
    '%s: with clefnet.test revoked at KServ2, the AR may no longer mint',
    (profile) => {
      const w = ready(profile);
      w.ks2.register({ name: parseName('clefnet.test'), clef: w.triples.asd.clef });
      w.net.post(w.ks2.name, w.ks2.revoke(parseName('clefnet.test')));
      const before = w.net.errors.length;
      w.net.post(
        w.ar.name,
        w.ar.deploy({
          anc: w.names.ve,
          program: utf8('x'),
          secApp: parseName('second.ar.clefnet.test'),
          id: 'r',
        }),
      );
      w.net.run();
      expect(w.net.errors.slice(before).map((e) => `${e.party} ${e.error.code}`)).toEqual([
        `${w.names.ks2} REVOKED`,
      ]);
      expect(w.ar.deployment('r')).toMatchObject({ state: 'failed', code: 'REMOTE_ERROR' });
      expect(w.ks2.store.get(parseName('second.ar.clefnet.test'))).toBeUndefined();
    },
  );
});
