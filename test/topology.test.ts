/**
 * Topology files and provisioning (testbed/topology.ts, testbed/provision.ts): defaults, every
 * field checked, node VE profile settings carried into the profiles the ANC loads, keys made once
 * and kept.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProfile } from '@clefnet/emulator';
import { parseName } from '@clefnet/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { down, running } from '../testbed/commands.js';
import { provision, registrations } from '../testbed/provision.js';
import { ours, writeState } from '../testbed/supervisor.js';
import { DEFAULT_TOPOLOGY, layout, loadTopology, parseTopology } from '../testbed/topology.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'clefnet-topology-'));
  dirs.push(d);
  return d;
};

describe('topology files', () => {
  it('an empty file is the default topology; fields override it', () => {
    expect(parseTopology(null)).toEqual(DEFAULT_TOPOLOGY);
    const t = parseTopology({
      profile: 'hardened',
      basePort: 9000,
      synchronous: 'full',
      logLevel: 'info',
      stepOrder: 'overlapped',
      ancs: [
        {
          name: 'edge',
          firewall: 'C',
          nodes: ['a', { name: 'b', profile: { sdt_policy: 'P3', qpt: false } }],
        },
      ],
    });
    expect(t).toEqual({
      profile: 'hardened',
      domain: 'clefnet.test',
      host: '127.0.0.1',
      basePort: 9000,
      synchronous: 'full',
      logLevel: 'info',
      stepOrder: 'overlapped',
      ancs: [
        {
          name: 'edge',
          firewall: 'C',
          confirmOutbound: false,
          nodes: [
            { name: 'a', profile: {} },
            { name: 'b', profile: { sdt_policy: 'P3', qpt: false } },
          ],
        },
      ],
    });
    const L = layout(t);
    expect([L.ks1, L.ks2, L.ar, L.asd, L.ports.asd]).toEqual([
      'ks1.clefnet.test',
      'ks2.clefnet.test',
      'ar.clefnet.test',
      'asd.clefnet.test',
      9003,
    ]);
    expect(L.ancs.map((a) => [a.machine, a.port, a.nodes.map((n) => n.name)])).toEqual([
      ['edge.clefnet.test', 9004, ['a.edge.clefnet.test', 'b.edge.clefnet.test']],
    ]);
  });

  it('names the field that is wrong', () => {
    const bad = (doc: unknown, field: string) =>
      expect(() => parseTopology(doc)).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID', meta: { field } }),
      );
    bad({ profile: 'loose' }, 'profile');
    bad({ basePort: 80 }, 'basePort');
    bad({ synchronous: 'off' }, 'synchronous');
    bad({ logLevel: 'loud' }, 'logLevel');
    bad({ stepOrder: 'sideways' }, 'stepOrder');
    bad({ domain: 'not a domain' }, 'domain');
    bad({ extra: 1 }, 'extra');
    bad({ ancs: [] }, 'ancs');
    bad({ ancs: [{ name: 'Bad_Name' }] }, 'ancs[0].name');
    bad({ ancs: [{ name: 'a' }, { name: 'a' }] }, 'ancs');
    bad({ ancs: [{ name: 'ks1' }] }, 'ancs[0].name');
    bad({ ancs: [{ name: 'logs' }] }, 'ancs[0].name');
    bad({ ancs: [{ name: 'a', nodes: ['fw'] }] }, 'ancs[0].nodes');
    bad(
      { ancs: [{ name: 'a', nodes: [{ name: 'b', profile: { boot_rom_image: 'x' } }] }] },
      'ancs[0].nodes[0].profile.boot_rom_image',
    );
    bad({ ancs: [{ name: 'a', confirmOutbound: 'yes' }] }, 'ancs[0].confirmOutbound');
    const file = join(tmp(), 't.yaml');
    writeFileSync(file, 'ancs: [unclosed');
    expect(() => loadTopology(file)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('a stale state file', () => {
  it('a pid reused by another process is not taken for a service, and down does not signal it', async () => {
    const dir = tmp();
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const config = join(dir, 'ks1', 'config.json');
      writeState(dir, {
        topology: DEFAULT_TOPOLOGY,
        startedAt: 0,
        adminToken: 'x'.repeat(20),
        processes: [
          {
            key: 'ks1',
            name: parseName('ks1.clefnet.test'),
            program: 'keyserver',
            config,
            http: '',
            ws: '',
            pid: other.pid!,
          },
        ],
      });
      expect(ours({ pid: other.pid!, config })).toBe(false);
      expect(() => running(dir)).toThrow(/no testbed is running/);
      const lines: string[] = [];
      expect(await down(dir, (l) => lines.push(l))).toBe(0);
      expect(lines).toEqual(['  ks1   gone']);
      expect(other.exitCode).toBe(null);
      expect(other.signalCode).toBe(null);
    } finally {
      other.kill('SIGKILL');
    }
  });
});

describe('provisioning', () => {
  it('writes profiles the ANC loads, with the node settings; keys are made once, private, and kept', () => {
    const dir = tmp();
    const t = parseTopology({
      ancs: [{ name: 'anc1', nodes: [{ name: 've1', profile: { sdt_policy: 'P3' } }] }],
    });
    const p = provision(t, dir);
    expect(p.processes.map((x) => [x.key, x.program])).toEqual([
      ['ks1', 'keyserver'],
      ['ks2', 'keyserver'],
      ['asd', 'asd'],
      ['ar', 'repository'],
      ['anc1', 'anc'],
    ]);
    const node = loadProfile(join(dir, 'anc1', 've1', 'profile.json'));
    expect(node).toMatchObject({
      name: 've1',
      memoryBytes: 1 << 20,
      sdtPolicy: 'P3',
      keyTrap: { name: 've1.anc1.clefnet.test' },
    });
    expect(node.rom.length).toBe(0x10000);
    expect(loadProfile(join(dir, 'anc1', 'fw', 'profile.json')).name).toBe('fw');
    const ancConfig = JSON.parse(readFileSync(join(dir, 'anc1', 'config.json'), 'utf8'));
    expect(ancConfig.ves.map((v: { role: string }) => v.role)).toEqual(['firewall', 'node']);
    // Keys, and the configs that hold a service's Key and the admin token, are the owner's only.
    for (const f of [
      join('keys', 'ar.clefnet.test.json'),
      join('ar', 'config.json'),
      join('anc1', 'config.json'),
      'admin-token',
    ])
      expect([f, statSync(join(dir, f)).mode & 0o777]).toEqual([f, 0o600]);
    const again = provision(t, dir);
    expect(again.triples.get(p.layout.ar)).toEqual(p.triples.get(p.layout.ar));
    expect(again.adminToken).toBe(p.adminToken);
    expect(registrations(p).ks1.map((x) => x.name)).toEqual([
      'ar.clefnet.test',
      'ks2.clefnet.test',
      'asd.clefnet.test',
      'anc1.clefnet.test',
    ]);
  });
});
