/**
 * A deploy across real sockets: the AR service reaches KServ1, KServ2 and the ANC's VE (protocol
 * parties each on its own WebSocket server) through its directory, carries out steps 1-7 and the
 * hand-over, and records each step's outcome in SQLite; the VE installs exactly the published
 * bytes and receives the SecApp triple. A restart keeps modules and deployments.
 */
import { nodeBackend, parseName, seededRandom, toHex } from '@clefnet/protocol';
import { recordingPool } from '@clefnet/service-host/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AUTH,
  finished,
  httpJson,
  manualClock,
  N,
  startPeers,
  startRepository,
  T0,
  TRIPLES,
  tempDir,
  until,
} from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const PROGRAM = new Uint8Array(Array.from({ length: 300 }, (_, i) => (i * 7 + 3) & 0xff));
const DIGEST = toHex(nodeBackend.sha256(PROGRAM));

describe.each([
  ['patent', 'published'],
  ['hardened', 'published'],
  ['hardened', 'overlapped'],
] as const)('deploying a module, %s, %s step order', (profile, stepOrder) => {
  it('carries out steps 1-7 and the hand-over, records them, and the VE installs the program', async () => {
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
      ...(stepOrder === 'published' ? {} : { stepOrder }),
    });
    cleanup.push(() => ar.service.stop());

    const pub = await httpJson(
      'POST',
      `${ar.address.http}/admin/modules`,
      { name: 'billing', program: Buffer.from(PROGRAM).toString('base64') },
      AUTH,
    );
    expect(pub.status).toBe(201);
    const started = await httpJson(
      'POST',
      `${ar.address.http}/admin/deploy`,
      { module: 'billing', anc: N.ve, secApp: N.secApp },
      AUTH,
    );
    expect(started).toMatchObject({
      status: 202,
      body: { id: 1, module: 'billing', digest: DIGEST, anc: N.ve, secApp: N.secApp, state: 'resolving' },
    });

    const done = await finished(ar, 1);
    const ok = (step: string, kind: string, peer: string) => ({ step, kind, peer, result: 'ok' });
    expect(done).toMatchObject({ id: 1, state: 'sent', code: null, createdAt: T0, updatedAt: T0 });
    const steps = (
      done as unknown as { steps: { step: string; kind: string; peer: string; result: string }[] }
    ).steps;
    const recorded = steps.map(({ step, kind, peer, result }) => ({ step, kind, peer, result }));
    const answers = [
      ok('M3', 'received', N.ks1),
      ok('M3', 'accepted', N.ks1),
      ok('M6', 'received', N.ks2),
      ok('M6', 'accepted', N.ks2),
    ];
    if (stepOrder === 'published') {
      // The published order (the default): M5 only after step 4.
      expect(recorded).toEqual([
        ok('M1', 'sent', N.ks1),
        ...answers.slice(0, 2),
        ok('M5', 'sent', N.ks2),
        ...answers.slice(2),
        ok('M7', 'sent', N.ve),
        ok('HANDOVER', 'sent', N.ve),
      ]);
    } else {
      // Overlapped: M1 and M5 together, the two answers in whichever order they arrive (each
      // received before it is accepted).
      expect(recorded.slice(0, 2)).toEqual([ok('M1', 'sent', N.ks1), ok('M5', 'sent', N.ks2)]);
      const middle = recorded.slice(2, 6);
      expect(middle.filter((r) => r.step === 'M3')).toEqual(answers.slice(0, 2));
      expect(middle.filter((r) => r.step === 'M6')).toEqual(answers.slice(2));
      expect(recorded.slice(6)).toEqual([ok('M7', 'sent', N.ve), ok('HANDOVER', 'sent', N.ve)]);
    }

    // Steps 8 and 9 at the VE: exactly the published bytes, from the AR; then the SecApp triple.
    const program = await until(
      () => peers.ve.deliveries.find((d) => d.kind === 'program'),
      5000,
      'the VE to install the program',
    );
    expect(program).toEqual({ kind: 'program', sender: N.ar, program: PROGRAM, digest: DIGEST });
    expect(peers.ve.party.installed).toEqual([
      { sender: N.ar, digest: DIGEST, bytes: PROGRAM.length, at: T0 },
    ]);
    const secapp = await until(
      () => peers.ve.deliveries.find((d) => d.kind === 'secapp'),
      5000,
      'the hand-over',
    );
    expect(secapp).toMatchObject({ kind: 'secapp', sender: N.ar, keyServer: { name: N.ks2 } });
    expect(secapp.kind === 'secapp' && secapp.triple.name).toBe(N.secApp);
    // [0132]: the AR keeps no copy of the triple; KServ2 stored its Name and Clef.
    expect(ar.service.party.deployment('1')).toMatchObject({ state: 'sent' });
  });

  it('a deployment to a VE the key server does not know fails at M1 with the remote code', async () => {
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
    });
    cleanup.push(() => ar.service.stop());
    ar.service.publish('billing', PROGRAM);
    const d = ar.service.deploy({
      module: 'billing',
      anc: TRIPLES.machine.name.replace('anc1', 'anc9') as typeof N.ve,
    });
    const done = (await finished(ar, d.id)) as unknown as { state: string; code: string; steps: unknown[] };
    expect(done.state).toBe('failed');
    expect(done.code).toBe('REMOTE_ERROR');
    expect(done.steps).toContainEqual(expect.objectContaining({ step: 'M1', kind: 'failed', peer: N.ks1 }));
    expect(peers.ve.deliveries).toEqual([]);
  });

  it('a restart keeps the modules and the deployments; new deployments get new ids', async () => {
    const clock = manualClock();
    const dir = tempDir();
    cleanup.push(dir.remove);
    const peers = await startPeers(profile, clock.now);
    cleanup.push(() => peers.stop());
    const opts = { dataDir: dir.path, clock: clock.now, profile, directory: peers.directory };
    const ar = await startRepository(opts);
    ar.service.publish('billing', PROGRAM);
    ar.service.deploy({ module: 'billing', anc: N.ve, secApp: N.secApp });
    const first = await finished(ar, 1);
    expect(first).toMatchObject({ state: 'sent' });
    // `sent` means the party produced M7 and the hand-over, not that they left: the link to the VE
    // may still be connecting. stop() lets it open and send them before it closes (service-host's
    // gateway close), so the VE gets the first program too.
    await ar.service.stop();

    // A new process draws new randomness (the same seed again would replay the first run's frames).
    const again = await startRepository({ ...opts, random: seededRandom('repository-tests/ar-restarted') });
    cleanup.push(() => again.service.stop());
    expect(again.service.store.modules()).toEqual([
      { name: 'billing', digest: DIGEST, size: PROGRAM.length, publishedAt: T0 },
    ]);
    expect(
      (await httpJson('GET', `${again.address.http}/admin/deployments/1`, undefined, AUTH)).body,
    ).toEqual(first);
    clock.advance(1000);
    const second = again.service.deploy({ module: 'billing', anc: N.ve });
    expect(second.id).toBe(2);
    expect(await finished(again, 2)).toMatchObject({ state: 'sent' });
    // Step 9 of the second deployment: the restarted AR's program is installed at the VE too.
    await until(
      () => (peers.ve.party.installed.length === 2 ? true : undefined),
      5000,
      'the VE to install the second program',
    );
    expect(peers.ve.party.installed).toEqual([
      { sender: N.ar, digest: DIGEST, bytes: PROGRAM.length, at: T0 },
      { sender: N.ar, digest: DIGEST, bytes: PROGRAM.length, at: T0 + 1000 },
    ]);
  });
});

describe('ephemeral keys', () => {
  it('a deployment seals M1, M5, M7 and the hand-over with keys of the pool it is given; stop() closes it', async () => {
    const clock = manualClock();
    const dir = tempDir();
    cleanup.push(dir.remove);
    const peers = await startPeers('hardened', clock.now);
    cleanup.push(() => peers.stop());
    const { pool, handed } = recordingPool('repository-tests/pool', 6);
    const ar = await startRepository({
      dataDir: dir.path,
      clock: clock.now,
      profile: 'hardened',
      directory: peers.directory,
      ephemeral: pool,
    });
    cleanup.push(() => ar.service.stop());
    const body = { name: 'billing', program: Buffer.from(PROGRAM).toString('base64') };
    expect((await httpJson('POST', `${ar.address.http}/admin/modules`, body, AUTH)).status).toBe(201);
    const deploy = { module: 'billing', anc: N.ve, secApp: N.secApp };
    expect((await httpJson('POST', `${ar.address.http}/admin/deploy`, deploy, AUTH)).status).toBe(202);
    expect(await finished(ar, 1)).toMatchObject({ state: 'sent' });
    const zero = new Uint8Array(32);
    expect([pool.ready, handed.length]).toEqual([2, 6]);
    expect(handed.slice(0, 4)).toEqual([zero, zero, zero, zero]);
    expect(handed.slice(4).every((b) => b.some((x) => x !== 0))).toBe(true);
    await ar.service.stop();
    expect(pool.ready).toBe(0);
    expect(handed.slice(4)).toEqual([zero, zero]);
  });
});

describe('overlapped deployments that time out together', () => {
  it('each records its own M1 and M5 failures', async () => {
    const clock = manualClock();
    const dir = tempDir();
    cleanup.push(dir.remove);
    // Neither key server answers: their directory entries lead to a closed port.
    const ar = await startRepository({
      dataDir: dir.path,
      clock: clock.now,
      profile: 'hardened',
      stepOrder: 'overlapped',
      requestTimeoutMs: 5000,
      directory: { [N.ks1]: 'ws://127.0.0.1:9/ws', [N.ks2]: 'ws://127.0.0.1:9/ws' },
    });
    cleanup.push(() => ar.service.stop());
    ar.service.publish('billing', PROGRAM);
    ar.service.deploy({ module: 'billing', anc: N.ve, secApp: N.secApp });
    ar.service.deploy({ module: 'billing', anc: N.ve, secApp: parseName('other.ar.clefnet.test') });
    clock.advance(5000); // the next expiry sweep (every second) fails all four requests at once
    for (const id of [1, 2]) {
      const done = (await finished(ar, id)) as unknown as {
        state: string;
        code: string;
        steps: { step: string; kind: string; result: string }[];
      };
      expect([id, done.state, done.code]).toEqual([id, 'failed', 'TIMEOUT']);
      expect(done.steps.map((s) => `${s.step} ${s.kind} ${s.result}`)).toEqual([
        'M1 sent ok',
        'M5 sent ok',
        'M1 failed TIMEOUT',
        'M5 failed TIMEOUT',
      ]);
    }
  });
});
