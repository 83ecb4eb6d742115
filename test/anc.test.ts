/**
 * The ANC service with real guests (issue 6): its machine boots the firewall guest and nodeos in
 * two VEs; nodeos calls the key trap, and the VM manager gets the VE's limited-use triple from
 * KServ1 over a real WebSocket (KEY-7). The AR (a Repository party on its own socket) deploys the
 * billing module: steps 1-4 against KServ1, the hand-over via KServ2, M7 to the ANC, whose firewall
 * guest hands the transaction to the agent (step 8), which asks KServ1 for Clef-AR (step 9) and
 * delivers the verified module through the inside DTM to nodeos, which runs it in ring 3. Traffic
 * injected at the real NIC passes firewall -> module -> firewall -> out, and the module's report
 * reaches the ASD through KServ2's channel. Once per profile.
 */

import { AGENT_MAC, type AncService, createAncService, type ServiceEvent } from '@clefnet/anc';
import { ETHERTYPE_IPV4, ETHERTYPE_TRANSACTION, formatMac, type VeProfile, veMac } from '@clefnet/emulator';
import {
  Asd,
  type AuthorityTriple,
  craftFrame,
  createMemoryKeyServerStore,
  createProfile,
  DEFAULT_NAMES,
  generateTriple,
  honestHeader,
  KeyServer,
  type KnownKeyServer,
  type Name,
  nodeBackend,
  type ProfileName,
  Repository,
  seededRandom,
} from '@clefnet/protocol';
import { type HostedParty, hostParty, httpJson, silent, until } from '@clefnet/service-host/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { buildModule, moduleImage } from '../examples/modules/build.js';
import { buildFirewall } from '../guests/firewall/build.js';
import { buildNodeOs } from '../guests/nodeos/build.js';

const N = DEFAULT_NAMES;
const TOKEN = 'anc-test-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

function triples(): Record<'ks1' | 'ks2' | 'ar' | 'machine' | 'asd', AuthorityTriple> {
  const r = seededRandom('anc-tests/provision');
  const t = (name: Name) => generateTriple(nodeBackend, r, name);
  return { ks1: t(N.ks1), ks2: t(N.ks2), ar: t(N.ar), machine: t(N.machine), asd: t(N.asd) };
}
const T = triples();
const known = (t: AuthorityTriple, scopes: KnownKeyServer['scopes']): KnownKeyServer => ({
  name: t.name,
  clef: t.clef,
  scopes,
});

/** VE 1 is the firewall, VE 2 the node (ids follow creation order). */
const FW_ID = 1;
const NODE_ID = 2;

function profiles(): VeProfile[] {
  return [
    {
      name: 'fw',
      memoryBytes: 1 << 20,
      rom: buildFirewall({
        outbound: [ETHERTYPE_IPV4],
        inbound: [ETHERTYPE_IPV4],
        inboundTo: veMac(NODE_ID),
        inboundRoutes: [{ type: ETHERTYPE_TRANSACTION, to: new Uint8Array(AGENT_MAC) }],
      }),
    },
    {
      name: 'node',
      memoryBytes: 1 << 20,
      rom: buildNodeOs({ agent: new Uint8Array(AGENT_MAC) }),
      keyTrap: { name: N.ve },
    },
  ];
}

interface World {
  readonly anc: AncService;
  readonly events: ServiceEvent[];
  readonly ar: HostedParty<Repository>;
  readonly records: { app: Name; data: Uint8Array }[];
  readonly hosts: HostedParty<KeyServer | Asd | Repository>[];
  readonly http: string;
}

const running: World[] = [];
afterEach(async () => {
  for (const w of running.splice(0)) {
    await w.anc.stop();
    for (const h of w.hosts.reverse()) await h.host.stop();
  }
});

async function world(profile: ProfileName): Promise<World> {
  const clock = Date.now;
  const common = (who: string) => ({
    backend: nodeBackend,
    random: seededRandom(`anc-tests/${who}`),
    clock,
    profile,
  });
  const ks1 = new KeyServer({
    ...common('ks1'),
    triple: T.ks1,
    store: createMemoryKeyServerStore(),
    serves: ['clef', 'mint'],
    nameOwnership: { policy: 'owner-only' },
  });
  for (const t of [T.ar, T.ks2, T.machine, T.asd]) ks1.register(t);
  const ks2 = new KeyServer({
    ...common('ks2'),
    triple: T.ks2,
    store: createMemoryKeyServerStore(),
    serves: ['mint', 'relay'],
    keyServers: [known(T.ks1, ['clef'])],
  });
  ks2.register(T.asd);
  const records: { app: Name; data: Uint8Array }[] = [];
  const asd = new Asd({
    ...common('asd'),
    triple: T.asd,
    keyServers: [known(T.ks2, ['relay'])],
    serve: (app, data) => {
      records.push({ app, data });
      return new TextEncoder().encode(`ok ${records.length}`);
    },
  });
  const h1 = await hostParty(ks1, clock);
  const ha = await hostParty(asd, clock, { [N.ks2]: 'ws://127.0.0.1:1/ws' });
  const h2 = await hostParty(ks2, clock, { [N.ks1]: h1.address.ws, [N.asd]: ha.address.ws });
  const anc = createAncService({
    identity: T.machine,
    keyServers: [known(T.ks1, ['clef', 'mint'])],
    ves: profiles().map((p) => ({
      profile: p,
      role: p.name === 'fw' ? 'firewall' : 'node',
      senders: [N.ar],
    })),
    firewall: { config: 'A' },
    asd: N.asd,
    directory: { [N.ks1]: h1.address.ws, [N.ks2]: h2.address.ws },
    adminToken: TOKEN,
    logger: silent,
    profile,
    random: seededRandom('anc-tests/anc'),
    heartbeatMs: 0,
    closeGraceMs: 200,
  });
  const events: ServiceEvent[] = [];
  anc.subscribe((e) => events.push(e));
  const address = await anc.start();
  const repo = new Repository({
    ...common('ar'),
    triple: T.ar,
    keyServers: [known(T.ks1, ['clef']), known(T.ks2, ['mint'])],
  });
  const ar = await hostParty(repo, clock, {
    [N.ks1]: h1.address.ws,
    [N.ks2]: h2.address.ws,
    [N.ve]: address.ws,
  });
  const w: World = { anc, events, ar, records, hosts: [h1, ha, h2, ar], http: address.http };
  running.push(w);
  return w;
}

/** Waits until nodeos in the node VE waits for a module; returns a reader of its console. */
async function booted(w: World): Promise<() => string> {
  const console = () => w.anc.node.console('node');
  await until(
    () => (console().includes('nodeos: waiting for a module') ? true : undefined),
    10_000,
    'nodeos boot',
  );
  return console;
}

/** An IPv4 frame from the outside to the ANC: header (20 bytes, UDP) and `text`. */
function ipv4(
  to: Uint8Array,
  src: [number, number, number, number],
  dst: [number, number, number, number],
  text: string,
): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const ip = new Uint8Array(20 + payload.length);
  ip.set([0x45, 0, (ip.length >> 8) & 0xff, ip.length & 0xff, 0, 1, 0, 0, 64, 17, 0, 0, ...src, ...dst]);
  ip.set(payload, 20);
  const f = new Uint8Array(14 + ip.length);
  f.set(to, 0);
  f.set([0x02, 0, 0, 0, 0xaa, 0x01], 6);
  f.set([0x08, 0x00], 12);
  f.set(ip, 14);
  return f;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe.each(['patent', 'hardened'] as const)('the ANC with real guests (%s)', (profile) => {
  it('issues the VE key at boot, installs the billing module through firewall and agent, carries traffic, reports to the ASD', async () => {
    const w = await world(profile);
    const console = await booted(w);
    expect(console()).toContain(`nodeos: key for ${N.ve} version 1\n`);
    expect(w.anc.node.vmm.keys.get('node')).toMatchObject({ name: N.ve, version: 1 });

    const program = buildModule('billing');
    w.ar.host.operate('deploy', () => w.ar.party.deploy({ anc: N.ve, program, id: 'd1', secApp: N.secApp }));
    await until(
      () => (console().includes('billing: running in ring 3') ? true : undefined),
      10_000,
      'module start',
    );
    const digest = Buffer.from(nodeBackend.sha256(program)).toString('hex');
    expect(w.anc.node.installed()).toMatchObject([
      { ve: 'node', sender: N.ar, digest, bytes: program.length },
    ]);
    // Step 8 happened behind the firewall guest: the transaction went fw-out -> firewall -> agent.
    const transfers = w.events.flatMap((e) =>
      e.type === 'machine' && e.event.kind === 'dtm' && e.event.action === 'delivered'
        ? [`${e.event.from}->${e.event.to}`]
        : [],
    );
    expect(transfers).toContain('outside->fw-out');
    expect(transfers).toContain('fw-in->agent');
    expect(transfers).toContain('agent->node');
    // Step 9 went to KServ1 and the hand-over gave the application its channel.
    await until(
      () => (w.anc.node.ves().find((v) => v.name === 'node')?.app === N.secApp ? true : undefined),
      5000,
      'channel',
    );

    const outside = w.anc.node.outsideMac;
    const frames = [
      ipv4(outside, [10, 0, 0, 1], [10, 0, 0, 2], 'hello one'),
      ipv4(outside, [10, 0, 0, 1], [10, 0, 0, 2], 'hello two'),
      ipv4(outside, [10, 0, 0, 3], [10, 0, 0, 2], 'hello three'),
    ];
    const r = await httpJson('POST', `${w.http}/admin/traffic`, { frames: frames.map(hex) }, AUTH);
    expect(r).toMatchObject({ status: 202, body: { injected: 3, outside: formatMac(outside) } });
    await until(() => (w.anc.traffic.last >= 3 ? true : undefined), 5000, 'traffic out');
    const out = w.anc.traffic.since(0, 10).frames.map((f) => Buffer.from(f.frame, 'hex'));
    // Each left with the firewall's outside address as source and its IPv4 packet unchanged.
    expect(out.map((f) => formatMac(f.subarray(6, 12)))).toEqual(Array(3).fill(formatMac(veMac(FW_ID, 1))));
    expect(out.map((f) => hex(f.subarray(14)))).toEqual(frames.map((f) => hex(f.subarray(14))));

    // Reports are cumulative: wait for the one that counts all three.
    const packets = (d: Uint8Array) => new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(6);
    await until(
      () => (w.records.some((r) => packets(r.data) === 3) ? true : undefined),
      5000,
      'the report of 3',
    );
    const last = w.records.at(-1)!;
    expect(last.app).toBe(N.secApp);
    const v = new DataView(last.data.buffer, last.data.byteOffset, last.data.byteLength);
    expect(new TextDecoder().decode(last.data.subarray(0, 4))).toBe('BILL');
    expect(v.getUint32(6)).toBe(3);
    expect(v.getUint32(10)).toBe(frames.reduce((n, f) => n + f.length, 0));
  });

  it('refuses a program signed with another key and a frame for a Name it does not hold; installs nothing; keeps serving', async () => {
    const w = await world(profile);
    const console = await booted(w);
    const ve = w.anc.node.vmm.keys.get('node')!;
    const rules = createProfile(profile);
    const random = seededRandom('anc-tests/forger');
    // The AR's Name and Clef, someone else's Key: step 9 finds the signature does not verify.
    const forged = { name: N.ar, clef: T.ar.clef, key: generateTriple(nodeBackend, random, N.ar).key };
    const to = { name: N.ve, clef: ve.clef };
    const program = buildModule('billing');
    const header = honestHeader(rules, random, Date.now(), forged, to);
    const bad = craftFrame(nodeBackend, random, rules, forged, to, { type: 'program', program }, header);
    const elsewhere = { name: 'nobody.clefnet.test' as Name, clef: ve.clef };
    const nobody = craftFrame(
      nodeBackend,
      random,
      rules,
      T.ar,
      elsewhere,
      { type: 'program', program },
      honestHeader(rules, random, Date.now(), T.ar, elsewhere),
    );
    const ws = new WebSocket(`${w.http.replace('http:', 'ws:')}/ws`);
    await new Promise((ok, fail) => {
      ws.once('open', ok);
      ws.once('error', fail);
    });
    ws.send(nobody);
    ws.send(bad);
    const rejected = await until(
      () =>
        w.events.find((e) => e.type === 'protocol' && e.event.party === N.ve && e.event.type === 'rejected'),
      10_000,
      'the refusal',
    );
    expect(rejected.type === 'protocol' && rejected.event.code).toBe('CRYPTO_SIGNATURE');
    expect(
      w.events.some(
        (e) =>
          e.type === 'machine' &&
          e.event.kind === 'agent' &&
          e.event.action === 'dropped' &&
          e.event.reason === 'no party here for "nobody.clefnet.test"',
      ),
    ).toBe(true);
    expect(w.anc.node.installed()).toEqual([]);
    expect(console()).not.toContain('module loaded');
    ws.close();

    // The genuine AR still gets its program in.
    w.ar.host.operate('deploy', () => w.ar.party.deploy({ anc: N.ve, program, id: 'd2' }));
    await until(
      () => (console().includes('billing: running in ring 3') ? true : undefined),
      10_000,
      'module start',
    );
    expect(w.anc.node.installed()).toHaveLength(1);
  });

  it('a module cannot send the agent a protocol transaction: only the firewall may', async () => {
    const w = await world(profile);
    const console = await booted(w);
    // A module that sends one transaction frame to the agent, as if it came from the network.
    const agent = Array.from(AGENT_MAC, (b) => `0x${b.toString(16)}`).join(', ');
    const forger = moduleImage(`
        .include "abi.inc"
start:  SEND frame, frame_end - frame
        EXIT 0
frame:  .byte ${agent}, 0, 0, 0, 0, 0, 0, 0x88, 0xb5, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4
frame_end:
`);
    w.ar.host.operate('deploy', () => w.ar.party.deploy({ anc: N.ve, program: forger, id: 'f1' }));
    await until(
      () => (console().includes('nodeos: module exited (code 0)') ? true : undefined),
      10_000,
      'the module',
    );
    const drop = await until(
      () =>
        w.events.find(
          (e) => e.type === 'machine' && e.event.kind === 'agent' && e.event.action === 'dropped',
        ),
      5000,
      'the drop',
    );
    expect(drop.type === 'machine' && drop.event).toMatchObject({
      from: formatMac(veMac(NODE_ID)),
      reason: 'a protocol transaction not from the firewall',
    });
  });
});
