/** A restart on the same SQLite file keeps every registration, revocation and minted binding. */
import { accessPairToJson, encodeClef, toHex } from '@clefnet/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AUTH,
  httpJson,
  known,
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

describe('persistence across a restart', () => {
  it('a restarted service on the same data folder holds the same rows and answers from them', async () => {
    const dir = tempDir();
    cleanup.push(dir.remove);
    const clock = manualClock();
    const first = await startKeyServer({ dataDir: dir.path, clock: clock.now });
    cleanup.push(() => first.service.stop());
    for (const t of [TRIPLES.ar, TRIPLES.machine, TRIPLES.probe]) {
      await httpJson('POST', `${first.address.http}/admin/pairs`, accessPairToJson(t), AUTH);
    }
    // A VE key minted over the wire, then the probe revoked.
    const machine = probeAs(TRIPLES.machine, [known(TRIPLES.ks1, ['clef', 'mint'])], clock.now);
    const c1 = new PartyLink(machine);
    await c1.connect(N.ks1, first.address.ws);
    c1.post(machine.newQuery(known(TRIPLES.ks1, ['mint']), N.ve));
    const minted = await until(() => machine.answers[0]);
    if (minted.body.type !== 'triple') throw new Error(minted.tag);
    clock.advance(10);
    await httpJson('POST', `${first.address.http}/admin/revoke`, { name: N.probe }, AUTH);
    const before = await httpJson('GET', `${first.address.http}/admin/bindings`, undefined, AUTH);
    c1.close();
    await first.service.stop();
    expect(first.service.store.isOpen).toBe(false);

    const second = await startKeyServer({ dataDir: dir.path, clock: clock.now });
    cleanup.push(() => second.service.stop());
    const after = await httpJson('GET', `${second.address.http}/admin/bindings`, undefined, AUTH);
    expect(after.body).toEqual(before.body);
    expect((after.body as { bindings: unknown[] }).bindings).toEqual([
      {
        name: N.machine,
        clef: toHex(encodeClef(TRIPLES.machine.clef)),
        owner: null,
        createdAt: 1_767_225_600_000,
        revokedAt: null,
      },
      {
        name: N.ar,
        clef: toHex(encodeClef(TRIPLES.ar.clef)),
        owner: null,
        createdAt: 1_767_225_600_000,
        revokedAt: null,
      },
      {
        name: N.probe,
        clef: toHex(encodeClef(TRIPLES.probe.clef)),
        owner: null,
        createdAt: 1_767_225_600_000,
        revokedAt: 1_767_225_600_010,
      },
      {
        name: N.ve,
        clef: toHex(encodeClef(minted.body.triple.clef)),
        owner: N.machine,
        createdAt: 1_767_225_600_000,
        revokedAt: null,
      },
    ]);

    // The AR's query is answered with the Clef minted before the restart ...
    const ar = probeAs(TRIPLES.ar, [known(TRIPLES.ks1, ['clef'])], clock.now);
    const c2 = new PartyLink(ar);
    cleanup.push(() => c2.close());
    await c2.connect(N.ks1, second.address.ws);
    c2.post(ar.clefQuery(known(TRIPLES.ks1, ['clef']), N.ve));
    const answer = await until(() => ar.answers[0]);
    expect(answer.body).toEqual({ type: 'clef-answer', subject: N.ve, clef: minted.body.triple.clef });
    // ... and the probe's revocation still holds.
    const probe = probeAs(TRIPLES.probe, [known(TRIPLES.ks1, ['clef'])], clock.now);
    const c3 = new PartyLink(probe);
    cleanup.push(() => c3.close());
    await c3.connect(N.ks1, second.address.ws);
    c3.post(probe.clefQuery(known(TRIPLES.ks1, ['clef']), N.ar));
    expect(await until(() => c3.deliveries[0])).toMatchObject({ code: 'REMOTE_ERROR', remote: 'REVOKED' });
  });
});
