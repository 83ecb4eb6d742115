/**
 * The example active-network modules (examples/modules, docs/nodeos.md) running on nodeos in a VE:
 * billing's forwarding and its report bytes, transformer's rewritten frames and its console line,
 * and their builder. The test plays the agent and the network around the node's NIC.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFrame, decodeImage, ETHERTYPE_DATAGRAM, ETHERTYPE_IPV4, Vmm, veMac } from '@clefnet/emulator';
import { describe, expect, it } from 'vitest';
import { buildModule, MODULES, main } from '../examples/modules/build.js';
import { buildNodeOs, moduleFrames, nodeOsCounters } from '../guests/nodeos/build.js';

const AGENT = Uint8Array.of(0x02, 0xa9, 0x00, 0x00, 0x00, 0x01);
const NODE = veMac(1);
/** Where the traffic comes from and goes to. */
const HOST = Uint8Array.of(0x02, 0x10, 0x00, 0x00, 0x00, 0x05);
const FAR = Uint8Array.of(0x02, 0x20, 0x00, 0x00, 0x00, 0x06);
const SLICE = 100_000;
const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** A node (no key trap) running `name`, its console read up to the module's first line. */
function running(name: 'billing' | 'transformer') {
  const vmm = new Vmm({ clock: () => 0 });
  const ve = vmm.createVe({
    name: 'node',
    memoryBytes: 1 << 20,
    rom: buildNodeOs({ agent: AGENT, keyTrap: false }),
  });
  const sent: Uint8Array[] = [];
  ve.vm.nic.on('transmit', (f) => sent.push(f));
  let mark = 0;
  /** Runs until the VE halts waiting for the NIC (at most 200 slices). */
  const settle = (): void => {
    for (let i = 0; i < 200; i++) if (vmm.run(ve.id, SLICE).reason === 'halt') return;
    throw new Error(`the node did not settle; console:\n${ve.vm.console.transcript()}`);
  };
  const since = (): string => {
    const t = ve.vm.console.transcript();
    const s = t.slice(mark);
    mark = t.length;
    return s;
  };
  /** Puts frames on the node's NIC, lets it work, and returns what it sent meanwhile. */
  const exchange = (frames: readonly Uint8Array[]): Uint8Array[] => {
    sent.length = 0;
    for (const f of frames) expect(ve.vm.nic.receive(f)).toBe(true);
    settle();
    return sent.splice(0);
  };
  settle();
  const image = buildModule(name);
  exchange(moduleFrames(image, { agent: AGENT, node: NODE, txid: 1 }));
  const d = decodeImage(image);
  expect(since()).toBe(
    'nodeos: up, mac 02:c1:ef:00:00:01\nnodeos: waiting for a module\n' +
      `nodeos: module loaded, ${d.bytes.length} bytes, entry 0x${d.entry.toString(16)}\nnodeos: entering ring 3\n` +
      `${name}: running in ring 3\n`,
  );
  return { ve, exchange, since, counters: () => nodeOsCounters(ve.vm.phys.ram) };
}

const hex = (s: string): Uint8Array =>
  Uint8Array.from(s.replace(/\s+/g, '').match(/../g)!, (b) => parseInt(b, 16));
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const ether = (dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array =>
  buildFrame('ethernet', type, payload, dst, src) as Uint8Array;

/** An IPv4 frame from HOST to FAR: a 20-byte header (no options) with these addresses, then `data`. */
function ipv4(
  src: readonly number[],
  dst: readonly number[],
  data: Uint8Array,
  header: Partial<{ id: number }> = {},
) {
  const p = new Uint8Array(20 + data.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  v.setUint16(4, header.id ?? 0x1234);
  p[8] = 64;
  p[9] = 17;
  p.set(src, 12);
  p.set(dst, 16);
  p.set(data, 20);
  return ether(FAR, HOST, ETHERTYPE_IPV4, p);
}

/** The frame as the node sends it on: the same bytes with the node's address as source. */
/** FORWARD: back to the hop it came from (its source), from the node. */
const forwarded = (f: Uint8Array): Uint8Array => {
  const out = new Uint8Array(f);
  out.set(f.subarray(6, 12), 0);
  out.set(NODE, 6);
  return out;
};
const reportFrame = (payload: Uint8Array): Uint8Array => ether(AGENT, NODE, ETHERTYPE_DATAGRAM, payload);

describe('billing', () => {
  const A = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
  ] as const;
  const B = [
    [192, 168, 1, 7],
    [10, 0, 0, 9],
  ] as const;

  it('forwards every frame back to its hop, unchanged but for the addresses, and reports cumulative totals per flow', () => {
    const node = running('billing');
    const batch = [
      ipv4(...A, text('alpha')), // 39 bytes
      ether(FAR, HOST, 0x86dd, new Uint8Array(40)), // 54, not IPv4: "other"
      ipv4(...B, text('bravo!!')), // 41
      ipv4(...A, text('second alpha packet')), // 53
      ether(FAR, HOST, 0x0806, new Uint8Array(28)), // 42, "other"
      ipv4(...B, text('b')), // 35
      ipv4(...A, new Uint8Array(0)), // 34: the shortest IPv4 frame counted by its addresses
    ];
    const out = node.exchange(batch);
    expect(out.slice(0, 7)).toEqual(batch.map(forwarded));
    // One report when the queue ran dry: 7 packets, 298 bytes; flows A (3, 126), other (2, 96),
    // B (2, 76), in the order they first appeared.
    expect(out.slice(7)).toEqual([
      reportFrame(
        hex(`42494c4c 01 03 00000007 0000012a
             0800 0a000001 0a000002 00000003 0000007e
             0000 00000000 00000000 00000002 00000060
             0800 c0a80107 0a000009 00000002 0000004c`),
      ),
    ]);
    expect(node.counters()).toMatchObject({ queued: 7, sends: 7, reports: 1, dropped: 0 });

    // The next batch: the report holds the totals since the start. An IPv4-typed frame shorter
    // than 34 bytes has no addresses to count by: "other".
    const more = [ipv4(...A, text('abc')), ether(FAR, HOST, ETHERTYPE_IPV4, new Uint8Array(16))];
    const out2 = node.exchange(more);
    expect(out2).toEqual([
      ...more.map(forwarded),
      reportFrame(
        hex(`42494c4c 01 03 00000009 0000016d
             0800 0a000001 0a000002 00000004 000000a3
             0000 00000000 00000000 00000003 0000007e
             0800 c0a80107 0a000009 00000002 0000004c`),
      ),
    ]);
    expect(node.since()).toBe('');
  });

  it('keeps 16 address-pair flows; later pairs count as "other"', () => {
    const node = running('billing');
    // 18 distinct pairs, then a non-IPv4 frame: pairs 17 and 18 and the last frame are "other".
    const batch = [
      ...Array.from({ length: 18 }, (_, i) => ipv4([10, 1, 0, i], [10, 2, 0, i], new Uint8Array(6))),
      ether(FAR, HOST, 0x9000, new Uint8Array(46)),
    ];
    const out = node.exchange(batch);
    expect(out.slice(0, batch.length)).toEqual(batch.map(forwarded));
    const be = (n: number, width: number) => n.toString(16).padStart(width * 2, '0');
    const flows = [
      ...Array.from({ length: 16 }, (_, i) => `0800 0a0100${be(i, 1)} 0a0200${be(i, 1)} 00000001 00000028`),
      `0000 00000000 00000000 00000003 ${be(40 + 40 + 60, 4)}`,
    ];
    expect(out.slice(batch.length)).toEqual([
      reportFrame(hex(`42494c4c 01 11 ${be(19, 4)} ${be(18 * 40 + 60, 4)} ${flows.join(' ')}`)),
    ]);
  });
});

describe('transformer', () => {
  it('uppercases a-z in IPv4 payloads only, forwards every frame back to its hop, and says how many it rewrote', () => {
    const node = running('transformer');
    // Header bytes in the a-z range (id 'ab', source address 'abcd') are not payload: kept.
    const mixed = ipv4([0x61, 0x62, 0x63, 0x64], [10, 0, 0, 2], text('Hello, World! abc-xyz {}~`@['), {
      id: 0x6162,
    });
    const datagram = ether(FAR, HOST, ETHERTYPE_DATAGRAM, text('not ip: stays lower'));
    const upper = ipv4([10, 0, 0, 1], [10, 0, 0, 2], text('NOTHING TO DO 123'));
    const z = ipv4([10, 0, 0, 1], [10, 0, 0, 2], text('z'));
    const out = node.exchange([mixed, datagram, upper, z]);
    expect(out).toEqual([
      hex(`021000000005 02c1ef000001 0800
           45000030 61620000 40110000 61626364 0a000002
           48454c4c4f2c20574f524c44212041424 32d58595a207b7d7e60405b`),
      forwarded(datagram),
      forwarded(upper),
      forwarded(ipv4([10, 0, 0, 1], [10, 0, 0, 2], text('Z'))),
    ]);
    expect(new TextDecoder().decode(out[0]!.subarray(34))).toBe('HELLO, WORLD! ABC-XYZ {}~`@[');
    expect(node.since()).toBe('transformer: 2 frames rewritten\n');

    // Nothing rewritten: no line. One more rewritten: the cumulative count, once.
    expect(node.exchange([upper])).toEqual([forwarded(upper)]);
    expect(node.since()).toBe('');
    node.exchange([ipv4([1, 2, 3, 4], [5, 6, 7, 8], text('again'))]);
    expect(node.since()).toBe('transformer: 3 frames rewritten\n');
    expect(node.counters()).toMatchObject({ sends: 6, reports: 0, faults: 0 });
  });
});

describe('the modules builder', () => {
  it('builds CLFX images with load 0, entry at `start`, and the labels as symbols', () => {
    expect(MODULES).toEqual(['billing', 'transformer']);
    for (const name of MODULES) {
      const d = decodeImage(buildModule(name));
      expect(d.load, name).toBe(0);
      expect(d.entry, name).toBe(d.symbols.get('start'));
      expect(d.symbols.has('image_end'), name).toBe(true);
      expect(d.bytes.length, name).toBe(d.symbols.get('image_end'));
    }
    expect(() => buildModule('nope' as 'billing')).toThrow(RangeError);
  });

  it('the command line writes the image; a wrong name is a usage error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clefnet-modules-'));
    try {
      const out = join(dir, 'billing.clfx');
      const log: string[] = [];
      expect(main(['billing', out], (l) => log.push(l))).toBe(0);
      expect(new Uint8Array(readFileSync(out))).toEqual(buildModule('billing'));
      expect(main(['nope', out], (l) => log.push(l))).toBe(2);
      expect(log.at(-1)).toBe('usage: build.ts <billing|transformer> <out.clfx>');
      // And as a process, the way docs/nodeos.md shows it.
      const cli = join(dir, 'transformer.clfx');
      execFileSync('npx', ['tsx', '--conditions=source', 'examples/modules/build.ts', 'transformer', cli], {
        cwd: ROOT,
        stdio: 'pipe',
      });
      expect(new Uint8Array(readFileSync(cli))).toEqual(buildModule('transformer'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
