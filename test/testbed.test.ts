/**
 * The testbed end to end (issue 6): `up` starts KServ1, KServ2, the ASD, the AR and an ANC as
 * separate processes on loopback with real SQLite files; the billing module is deployed into the
 * ANC's node VE (steps 1-9 across the processes), N packets are sent through the ANC, and the test
 * checks that the module ran in the guest, the packets came out, and the ASD holds a record of
 * exactly N packets. Revoking the application at KServ2 stops its next report (PROTO-26). Once per
 * profile; then a restart keeps registrations, modules and records.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api, deploy, down, running, send, up } from '../testbed/commands.js';
import { freePortBlock } from '../testbed/ports.js';
import type { TestbedState } from '../testbed/supervisor.js';

const quiet = () => {};
const dirs: string[] = [];
afterAll(async () => {
  // Each testbed's processes stop (its data folder says which) before its folder goes.
  for (const d of dirs) {
    await down(join(d, 'data'), quiet);
    rmSync(d, { recursive: true, force: true });
  }
});

async function testbed(
  profile: 'patent' | 'hardened',
): Promise<{ dir: string; file: string; state: TestbedState }> {
  const dir = mkdtempSync(join(tmpdir(), 'clefnet-testbed-'));
  dirs.push(dir);
  const file = join(dir, 'topology.yaml');
  writeFileSync(
    file,
    `profile: ${profile}\nbasePort: ${await freePortBlock(5)}\nancs:\n  - name: anc1\n    firewall: A\n    nodes: [ve1]\n`,
  );
  const r = await up({ dataDir: join(dir, 'data'), topologyFile: file, detached: true, say: quiet });
  return { dir: join(dir, 'data'), file, state: r.state };
}

const url = (s: TestbedState, key: string) => s.processes.find((p) => p.key === key)!.http;
const SECAPP = 'billing-anc1-ve1.ar.clefnet.test';

interface Records {
  readonly records: { readonly id: number; readonly app: string; readonly data: string }[];
}
/** The packet count of the ASD's last billing record of the application. */
async function billed(s: TestbedState): Promise<{ count: number; packets: number | undefined }> {
  const r = await api<Records>(s, url(s, 'asd'), 'GET', `/admin/records?app=${SECAPP}`);
  const last = r.records.at(-1);
  if (last === undefined) return { count: 0, packets: undefined };
  const data = Buffer.from(last.data, 'hex');
  expect(data.subarray(0, 4).toString()).toBe('BILL');
  return { count: r.records.length, packets: data.readUInt32BE(6) };
}

async function until<T>(probe: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Stats {
  readonly agent: {
    readonly reports: number;
    readonly reportsAnswered: number;
    readonly reportsFailed: number;
  };
}

describe.each(['patent', 'hardened'] as const)(
  'the testbed in separate processes (%s)',
  { timeout: 90_000 },
  (profile) => {
    it('deploys billing into anc1/ve1, carries N packets, bills exactly N; a revoked application is refused', async () => {
      const { dir, state: s } = await testbed(profile);
      expect(s.processes.map((p) => p.key)).toEqual(['ks1', 'ks2', 'asd', 'ar', 'anc1']);
      const d = await deploy(dir, 'billing', 'anc1/ve1', quiet);
      expect(d.console).toContain('nodeos: entering ring 3\nbilling: running in ring 3\n');

      const N = 12;
      const sent = await send(dir, 'anc1', { count: N, flows: 3, text: 'e2e', waitMs: 10_000 }, quiet);
      expect(sent.received).toHaveLength(N);
      const payloads = sent.received.map((f) => Buffer.from(f.subarray(34)).toString()).sort();
      expect(payloads).toEqual(Array.from({ length: N }, (_, i) => `e2e #${i + 1}`).sort());
      const b = await until(
        async () => ((await billed(s)).packets === N ? billed(s) : undefined),
        10_000,
        'N billed',
      );
      expect(b.packets).toBe(N);
      const anc = url(s, 'anc1');
      const before = await until(
        async () => {
          const st = await api<Stats>(s, anc, 'GET', '/admin/stats');
          return st.agent.reportsAnswered === st.agent.reports ? st : undefined;
        },
        5000,
        'answers',
      );

      // PROTO-26: KServ2 revokes the application; its next report is refused, nothing more is stored.
      await api(s, url(s, 'ks2'), 'POST', '/admin/revoke', { name: SECAPP });
      const more = await send(dir, 'anc1', { count: 3, flows: 1, text: 'after', waitMs: 10_000 }, quiet);
      expect(more.received).toHaveLength(3);
      await until(
        async () =>
          (await api<Stats>(s, anc, 'GET', '/admin/stats')).agent.reportsFailed > 0 ? true : undefined,
        10_000,
        'the refusal',
      );
      const after = await api<Stats>(s, anc, 'GET', '/admin/stats');
      expect(after.agent.reportsAnswered).toBe(before.agent.reportsAnswered);
      expect(await billed(s)).toEqual(b);
    });
  },
);

describe('restarting the testbed', { timeout: 90_000 }, () => {
  it('keeps registrations, modules and billing records', async () => {
    const { dir, file, state: s } = await testbed('patent');
    await deploy(dir, 'billing', 'anc1/ve1', quiet);
    await send(dir, 'anc1', { count: 4, flows: 1, text: 'keep', waitMs: 10_000 }, quiet);
    const b = await until(
      async () => ((await billed(s)).packets === 4 ? billed(s) : undefined),
      10_000,
      'billed',
    );
    expect(await down(dir, quiet)).toBe(5);
    expect(() => running(dir)).toThrow(/no testbed is running/);

    const again = (await up({ dataDir: dir, topologyFile: file, detached: true, say: quiet })).state;
    expect(await billed(again)).toEqual(b);
    const mods = await api<{ modules: { name: string }[] }>(again, url(again, 'ar'), 'GET', '/admin/modules');
    expect(mods.modules.map((m) => m.name)).toEqual(['billing', 'transformer']);
    const deps = await api<{ deployments: { state: string }[] }>(
      again,
      url(again, 'ar'),
      'GET',
      '/admin/deployments',
    );
    expect(deps.deployments.map((x) => x.state)).toEqual(['sent']);
    const bindings = await api<{ bindings: { name: string }[] }>(
      again,
      url(again, 'ks1'),
      'GET',
      '/admin/bindings',
    );
    expect(bindings.bindings.map((x) => x.name)).toEqual(
      expect.arrayContaining(['anc1.clefnet.test', 'ar.clefnet.test', 've1.anc1.clefnet.test']),
    );
    // The same keys: the redeployed module is billed under the same application, on top.
    await deploy(dir, 'billing', 'anc1/ve1', quiet);
    await send(dir, 'anc1', { count: 2, flows: 1, text: 'again', waitMs: 10_000 }, quiet);
    await until(
      async () => ((await billed(again)).packets === 2 ? true : undefined),
      10_000,
      'the new count',
    );
    expect((await billed(again)).count).toBeGreaterThan(b.count);
  });
});
