/**
 * The ANC service on real sockets with small guests: the key trap's request goes to KServ1 over a
 * real WebSocket and the VE's triple comes back (KEY-7, KEY-8); the management API; bad input on
 * the socket and the API leaves the service serving; the config file.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { accessPairToJson, encodeFrame, LIMITS, tripleToJson } from '@clefnet/protocol';
import { binaryFrameHead, rawWsClient, recordingPool, tempDir } from '@clefnet/service-host/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { parseConfig } from '../src/index.js';
import { AUTH, HALTER, httpJson, KEY_CALLER, N, type Running, startAnc, TRIPLES, until } from './helpers.js';

const running: Running[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
});

async function start(...args: Parameters<typeof startAnc>): Promise<Running> {
  const r = await startAnc(...args);
  running.push(r);
  return r;
}

const keyIssued = (r: Running) => () => (r.service.node.console('node') === '0' ? true : undefined);

describe.each(['patent', 'hardened'] as const)('the ANC service (%s)', (profile) => {
  it("a guest's key trap gets the VE triple from KServ1 over the socket; the agent holds it", async () => {
    const r = await start(profile);
    await until(keyIssued(r), 5000, 'the key');
    const entry = r.service.node.vmm.keys.get('node')!;
    expect(entry).toMatchObject({ ve: 'node', name: N.ve, version: 1 });
    // KServ1 stored the VE's Name and Clef (it answers step 3 with this Clef, TB-11).
    expect(r.ks1Store.get(N.ve)?.clef).toEqual(entry.clef);
    const machine = r.events.flatMap((e) => (e.type === 'machine' ? [e.event] : []));
    expect(machine).toContainEqual({ kind: 'agent', action: 'key', ve: 'node', name: N.ve, version: 1 });
    expect(machine.filter((e) => e.kind === 'key-trap').map((e) => e.phase)).toEqual(['call', 'answer']);
    const steps = r.events.flatMap((e) => (e.type === 'frame' ? [`${e.dir}:${e.step ?? '-'}`] : []));
    expect(steps).toEqual(['out:VEKEY-REQ', 'in:-']);
    expect(r.service.node.stats().keyRequests).toBe(1);
  });
});

describe('ephemeral keys', () => {
  it('the key service seals its request with a key of the pool the service was given; stop() closes the pool', async () => {
    const { pool, handed } = recordingPool('anc-service-tests/pool', 2);
    const r = await start('hardened', { ephemeral: pool });
    await until(keyIssued(r), 5000, 'the key');
    expect([pool.ready, handed.length]).toEqual([1, 2]);
    expect(handed[0]).toEqual(new Uint8Array(32));
    expect(r.service.node.vmm.keys.get('node')).toMatchObject({ name: N.ve, version: 1 });
    await r.stop();
    expect(pool.ready).toBe(0);
    expect(handed[1]).toEqual(new Uint8Array(32));
  });
});

describe('the management API', () => {
  it('needs the token; lists VEs, console, modules, stats, holds', async () => {
    const r = await start();
    await until(keyIssued(r), 5000, 'the key');
    const base = r.address.http;
    expect((await httpJson('GET', `${base}/admin/ves`)).status).toBe(401);
    const ves = await httpJson('GET', `${base}/admin/ves`, undefined, AUTH);
    expect(ves.status).toBe(200);
    expect(ves.body).toMatchObject([
      { id: 1, name: 'fw', role: 'firewall', mac: '02:c1:ef:00:00:01', state: 'waiting' },
      {
        id: 2,
        name: 'node',
        role: 'node',
        mac: '02:c1:ef:00:00:02',
        state: 'waiting',
        key: { name: N.ve, version: 1 },
      },
    ]);
    expect(await httpJson('GET', `${base}/admin/ves/node/console`, undefined, AUTH)).toMatchObject({
      status: 200,
      body: { ve: 'node', text: '0', total: 1 },
    });
    expect((await httpJson('GET', `${base}/admin/ves/nope/console`, undefined, AUTH)).body).toMatchObject({
      code: 'UNKNOWN_NAME',
    });
    expect(await httpJson('GET', `${base}/admin/modules`, undefined, AUTH)).toMatchObject({
      status: 200,
      body: [],
    });
    const stats = await httpJson('GET', `${base}/admin/stats`, undefined, AUTH);
    expect(stats.body).toMatchObject({ keyRequests: 1, agent: { modulesDelivered: 0 } });
    expect(await httpJson('GET', `${base}/admin/holds`, undefined, AUTH)).toMatchObject({
      status: 200,
      body: [],
    });
    const hold = await httpJson('POST', `${base}/admin/holds/inside/7/approve`, undefined, AUTH);
    expect(hold.body).toMatchObject({ code: 'DTM_BAD_HOLD' });
    const nodtm = await httpJson('POST', `${base}/admin/holds/nope/7/reject`, undefined, AUTH);
    expect(nodtm.body).toMatchObject({ code: 'UNKNOWN_NAME' });
  });

  it('injects traffic into the real NIC; refuses bad frames whole', async () => {
    const r = await start();
    const base = r.address.http;
    const frame = `${'02c1ef800001'}${'020000000001'}0800${'00'.repeat(30)}`;
    const ok = await httpJson('POST', `${base}/admin/traffic`, { frames: [frame] }, AUTH);
    expect(ok).toMatchObject({ status: 202, body: { injected: 1, outside: '02:c1:ef:80:00:01' } });
    await until(
      () => (r.service.node.stats().gateway.received === 1 ? true : undefined),
      5000,
      'the gateway',
    );
    for (const bad of [['zz'], ['00'], [`${frame}X`], [frame.toUpperCase()]]) {
      const res = await httpJson('POST', `${base}/admin/traffic`, { frames: bad }, AUTH);
      expect(res.status).toBe(400);
    }
    const mixed = await httpJson('POST', `${base}/admin/traffic`, { frames: [frame, 'zz'] }, AUTH);
    expect(mixed.status).toBe(400);
    expect(r.service.node.stats().wire.trafficIn).toBe(1);
    expect((await httpJson('GET', `${base}/admin/traffic?since=0`, undefined, AUTH)).body).toEqual({
      last: 0,
      frames: [],
    });
  });
});

describe('a failure of the real environment', () => {
  it("is a host-error event, also in the real environment's turn before the slices; the machine keeps running", async () => {
    const r = await start();
    await until(keyIssued(r), 5000, 'the key');
    // A real-environment task that throws once, in the turn the frame below reaches the gateway.
    let thrown = false;
    r.service.node.vmm.addService(() => {
      if (thrown || r.service.node.stats().gateway.received === 0) return;
      thrown = true;
      throw new Error('task broke');
    });
    const frame = `${'02c1ef800001'}${'020000000001'}0800${'00'.repeat(30)}`;
    expect(
      (await httpJson('POST', `${r.address.http}/admin/traffic`, { frames: [frame] }, AUTH)).status,
    ).toBe(202);
    const errors = () =>
      r.events.flatMap((e) => (e.type === 'machine' && e.event.kind === 'host-error' ? [e.event] : []));
    await until(() => (errors().length > 0 ? true : undefined), 5000, 'the host error');
    // The frame went into the real NIC at the start of a turn: the real environment's turn then
    // came before any slice.
    expect(errors()).toEqual([{ kind: 'host-error', where: 'pump', message: 'task broke' }]);
    // The machine goes on: the next frame goes through.
    expect(
      (await httpJson('POST', `${r.address.http}/admin/traffic`, { frames: [frame] }, AUTH)).status,
    ).toBe(202);
    await until(
      () => (r.service.node.stats().gateway.received === 2 ? true : undefined),
      5000,
      'the second frame',
    );
    expect(r.service.node.ves().map((v) => v.state)).not.toContain('stopped');
    expect((await httpJson('GET', `${r.address.http}/health`)).status).toBe(200);
  });
});

describe('bad input on the socket', () => {
  // The frames the wire takes enter the machine; what the agent does with them (a frame for a
  // Name with no party here, a forged program) is tested with the real firewall in test/anc.test.ts.
  it('garbage is dropped at the wire, an oversize frame closes the socket; the service keeps serving', async () => {
    const r = await start();
    await until(keyIssued(r), 5000, 'the key');
    const ws = new WebSocket(r.address.ws);
    await new Promise((ok, fail) => {
      ws.once('open', ok);
      ws.once('error', fail);
    });
    ws.send(Uint8Array.of(1, 2, 3));
    ws.send(encodeFrame({ kind: 'SEALED', to: N.ve, from: N.ar, corr: 'y', body: new Uint8Array(40) }));
    // The first frame in was KServ1's answer to the key request.
    await until(() => (r.service.node.stats().wire.framesIn === 2 ? true : undefined), 5000, 'the frame');
    const wire = r.events.flatMap((e) => (e.type === 'machine' && e.event.kind === 'wire' ? [e.event] : []));
    expect(wire).toEqual([{ kind: 'wire', action: 'dropped', reason: 'ENCODING_TRUNCATED' }]);
    const closed = new Promise<number>((ok) => ws.once('close', (code) => ok(code)));
    ws.send(new Uint8Array(LIMITS.FRAME_MAX_BYTES + 1));
    expect(await closed).toBe(1009);
    expect((await httpJson('GET', `${r.address.http}/health`)).status).toBe(200);
    expect((await httpJson('GET', `${r.address.http}/admin/ves`, undefined, AUTH)).status).toBe(200);
  });
});

describe('a peer that stops mid-frame', () => {
  it('is dropped by the heartbeat without reaching the machine, and does not hold up stop()', async () => {
    const r = await startAnc('patent', { heartbeatMs: 100 });
    running.push(r);
    await until(keyIssued(r), 5000, 'the key');
    const raw = await rawWsClient(r.address.ws);
    raw.write(binaryFrameHead(1000));
    raw.write(new Uint8Array(10));
    const dropped = await until(
      () =>
        r.events.find((e) => e.type === 'connection' && e.direction === 'inbound' && e.state === 'closed'),
      3000,
      'the heartbeat',
    );
    expect(dropped).toMatchObject({ code: 1006 });
    expect(r.service.node.stats().wire.framesIn).toBe(1); // only KServ1's key answer
    const stalled = await rawWsClient(r.address.ws);
    stalled.write(binaryFrameHead(1000));
    const t = Date.now();
    await r.service.stop();
    expect(Date.now() - t).toBeLessThan(2000);
    raw.destroy();
    stalled.destroy();
  });
});

describe('the config file', () => {
  it('reads profiles relative to the file and checks every field', () => {
    const dir = tempDir('clefnet-anc-config-');
    try {
      for (const [ve, bytes] of [
        ['fw', HALTER],
        ['node', KEY_CALLER],
      ] as const) {
        mkdirSync(join(dir.path, ve));
        writeFileSync(join(dir.path, ve, 'rom.bin'), bytes);
        writeFileSync(
          join(dir.path, ve, 'profile.json'),
          JSON.stringify({
            name: ve,
            memory_bytes: 1 << 20,
            boot_rom_image: 'rom.bin',
            ...(ve === 'node' ? { key_trap: { name: N.ve } } : {}),
          }),
        );
      }
      const base = {
        identity: tripleToJson(TRIPLES.machine),
        keyServers: [{ ...accessPairToJson(TRIPLES.ks1), scopes: ['clef', 'mint'] }],
        firewall: { config: 'B' },
        ves: [
          { profile: 'fw/profile.json', role: 'firewall' },
          { profile: 'node/profile.json', role: 'node', senders: [N.ar] },
        ],
        asd: N.asd,
        dataDir: 'data',
        adminToken: 'a'.repeat(16),
      };
      const c = parseConfig(base, dir.path);
      expect(c.firewall).toEqual({ config: 'B' });
      expect(c.ves.map((v) => [v.profile.name, v.role, v.senders, v.profile.rom.length])).toEqual([
        ['fw', 'firewall', undefined, 0x10000],
        ['node', 'node', [N.ar], 0x10000],
      ]);
      expect(c.ves[1]!.profile.keyTrap).toEqual({ name: N.ve });
      expect(c.dataDir).toBe(join(dir.path, 'data'));
      const invalid = (over: Record<string, unknown>, field: string) =>
        expect(() => parseConfig({ ...base, ...over }, dir.path)).toThrow(
          expect.objectContaining({ code: 'CONFIG_INVALID', meta: expect.objectContaining({ field }) }),
        );
      invalid({ firewall: { config: 'D' } }, 'firewall.config');
      invalid({ firewall: { config: 'A', extra: 1 } }, 'firewall.extra');
      invalid({ ves: [base.ves[1]] }, 'ves');
      invalid({ ves: [base.ves[0], base.ves[0], base.ves[1]] }, 'ves');
      invalid({ ves: [base.ves[0], { ...base.ves[1], role: 'router' }] }, 'ves[1].role');
      invalid({ ves: [base.ves[0], { ...base.ves[1], profile: 'missing.json' }] }, 'ves[1].profile');
      invalid({ ves: [base.ves[0], { ...base.ves[1], senders: ['not a name'] }] }, 'ves[1].senders[0]');
      invalid({ keyServers: [{ ...accessPairToJson(TRIPLES.ks1), scopes: ['clef'] }] }, 'keyServers');
      invalid({ slice: 0 }, 'slice');
      invalid({ bogus: 1 }, 'bogus');
    } finally {
      dir.remove();
    }
  });
});
