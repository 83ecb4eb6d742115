import {
  type AuthorityTriple,
  type CryptoBackend,
  generateTriple,
  nobleBackend,
  nodeBackend,
  parseName,
  seededRandom,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { memoryBlockBackend } from '../../src/devices/disk.js';
import { Dtm, type DtmEvent, OUTSIDE } from '../../src/dtm/dtm.js';
import {
  BROADCAST,
  ETHERTYPE_DATAGRAM,
  ETHERTYPE_IPV4,
  ETHERTYPE_SEALED,
  formatMac,
  parseFrame,
  veMac,
} from '../../src/dtm/frame.js';
import { Gateway } from '../../src/dtm/gateway.js';
import { openBlockSpool } from '../../src/dtm/spool.js';
import {
  createStream,
  knownPeer,
  realKey,
  SEALED_HEADER,
  SEALED_OVERHEAD,
  type StreamLocal,
  type StreamRemote,
  StreamSession,
  type StreamSessionOptions,
  streamFilter,
  veKey,
  vePeer,
} from '../../src/dtm/stream.js';
import type { VirtualEnvironment } from '../../src/vmm/ve.js';
import { VeKeys } from '../../src/vmm/vekeys.js';
import { Vmm } from '../../src/vmm/vmm.js';
import { consoleText, ether, modem, netVe, received, receiverRom, resume, senderRom } from './net.js';

const T0 = Date.UTC(2026, 10, 27);
const backend = nodeBackend;
const enc = (s: string) => new TextEncoder().encode(s);
/** What must never be seen outside the two VEs. */
const SECRET = 'PLAINTEXT-MARKER the launch code is 0000';
const SECRET2 = 'PLAINTEXT-MARKER meet at the usual place';
const MARK = enc('PLAINTEXT-MARKER');

function triple(name: string): AuthorityTriple {
  return generateTriple(backend, seededRandom(`triple ${name}`), parseName(name));
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (
    let i = hay.indexOf(needle[0]!);
    i >= 0 && i + needle.length <= hay.length;
    i = hay.indexOf(needle[0]!, i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('sealed packets: the session', () => {
  const a = triple('a.ve.example');
  const b = triple('b.ve.example');
  const view = (t: AuthorityTriple, version = 1) => ({ name: t.name, clef: t.clef, version });
  const own = (t: AuthorityTriple, version = 1): StreamLocal => {
    const k = { ...view(t, version), key: t.key };
    return { scheme: 've', ve: t.name, current: () => k };
  };
  const peer = (t: AuthorityTriple, version = 1): StreamRemote => {
    const v = view(t, version);
    return { current: () => v };
  };
  const pair = (over: Partial<StreamSessionOptions> = {}, seed = 'ids a', be: CryptoBackend = backend) => ({
    ab: new StreamSession({ backend: be, random: seededRandom(seed), local: own(a), peer: peer(b), ...over }),
    ba: new StreamSession({ backend: be, random: seededRandom('ids b'), local: own(b), peer: peer(a) }),
  });

  it('seals behind the documented header, the same bytes on both backends, and opens only at the peer', () => {
    const out: Uint8Array[] = [];
    for (const be of [nodeBackend, nobleBackend]) {
      const { ab, ba } = pair({}, 'ids a', be);
      const s1 = ab.seal(enc('hello'));
      const s2 = ab.seal(enc('hello'));
      if (typeof s1 === 'string' || typeof s2 === 'string') throw new Error(`${be.name}: ${s1} ${s2}`);
      expect(s1.length, be.name).toBe(SEALED_OVERHEAD + 5);
      const id = hex(seededRandom('ids a')(8));
      expect(hex(s1.subarray(0, SEALED_HEADER)), be.name).toBe(`01020000000100000001${id}0000000000000001`);
      expect(hex(s2.subarray(0, SEALED_HEADER)), be.name).toBe(`01020000000100000001${id}0000000000000002`);
      expect(hex(s1.subarray(SEALED_HEADER)), be.name).not.toBe(hex(s2.subarray(SEALED_HEADER)));
      expect(ba.open(s2), be.name).toEqual(enc('hello'));
      expect(ba.open(s1), be.name).toEqual(enc('hello'));
      // The sender cannot open its own packets: the other direction has its own key.
      expect(ab.open(s1), be.name).toBe('authentication failed');
      out.push(s1);
    }
    expect(hex(out[0]!)).toBe(hex(out[1]!));
  });

  it('accepts reordering within the window; refuses replays, frames behind it, and tampering anywhere', () => {
    const { ab, ba } = pair({}, 'ids a');
    const sealed = Array.from({ length: 70 }, (_, i) => ab.seal(enc(`packet ${i}`)) as Uint8Array);
    const small = new StreamSession({
      backend,
      random: seededRandom('ids b'),
      local: own(b),
      peer: peer(a),
      window: 64,
    });
    // Index i carries sequence number i + 1.
    const order = [3, 1, 2, 60, 5, 3, 4, 5, 60, 69, 0, 5, 6];
    const results = order.map((i) => {
      const r = small.open(sealed[i]!);
      return typeof r === 'string' ? `${i}: ${r}` : `${i}: ${new TextDecoder().decode(r)}`;
    });
    expect(results).toEqual([
      '3: packet 3',
      '1: packet 1',
      '2: packet 2',
      '60: packet 60',
      '5: packet 5',
      '3: replayed',
      '4: packet 4',
      '5: replayed',
      '60: replayed',
      '69: packet 69',
      '0: behind window',
      '5: behind window',
      '6: packet 6',
    ]);
    for (const at of [0, 1, 5, 9, 17, 25, SEALED_HEADER, SEALED_HEADER + 3, sealed[6]!.length - 1]) {
      const bad = sealed[6]!.slice();
      bad[at]! ^= 0x40;
      const why = ba.open(bad);
      expect(why, `byte ${at}`).toBe(
        at === 0
          ? 'malformed'
          : at === 1
            ? 'wrong scheme'
            : at < 10
              ? 'unknown key version'
              : 'authentication failed',
      );
    }
    expect(ba.open(sealed[6]!)).toEqual(enc('packet 6'));
    expect(ba.open(sealed[6]!.subarray(0, SEALED_OVERHEAD - 1))).toBe('malformed');
  });

  it('a restarted sender draws a new key id (no nonce is ever reused); the old id is then stale', () => {
    const { ab, ba } = pair({}, 'first run');
    const again = pair({}, 'second run').ab;
    const old = ab.seal(enc('same')) as Uint8Array;
    const next = again.seal(enc('same')) as Uint8Array;
    expect(hex(old.subarray(18, SEALED_HEADER))).toBe(hex(next.subarray(18, SEALED_HEADER)));
    expect(hex(old.subarray(SEALED_HEADER))).not.toBe(hex(next.subarray(SEALED_HEADER)));
    expect(ba.open(old)).toEqual(enc('same'));
    expect(ba.open(next)).toEqual(enc('same'));
    expect(ba.open(ab.seal(enc('late')) as Uint8Array)).toBe('stale session');
    expect(ba.open(again.seal(enc('on')) as Uint8Array)).toEqual(enc('on'));
  });

  it('versions: an old one is rotated out, a newer one is unknown; no key, a low-order Clef', () => {
    const v1 = new StreamSession({ backend, random: seededRandom('x'), local: own(a, 1), peer: peer(b) });
    const v3 = new StreamSession({ backend, random: seededRandom('x'), local: own(a, 3), peer: peer(b) });
    const at2 = new StreamSession({ backend, random: seededRandom('y'), local: own(b), peer: peer(a, 2) });
    expect(at2.open(v1.seal(enc('x')) as Uint8Array)).toBe('rotated-out key version');
    expect(at2.open(v3.seal(enc('x')) as Uint8Array)).toBe('unknown key version');
    const none = new StreamSession({
      backend,
      random: seededRandom('x'),
      local: { scheme: 've', ve: 'a', current: () => undefined },
      peer: peer(b),
    });
    expect(none.seal(enc('x'))).toBe('no key');
    const lowOrder = { name: 'evil', clef: { sign: b.clef.sign, seal: new Uint8Array(32) }, version: 1 };
    const bad = new StreamSession({
      backend,
      random: seededRandom('x'),
      local: own(a),
      peer: { current: () => lowOrder },
    });
    expect(bad.seal(enc('x'))).toBe('bad peer key');
    expect(
      () =>
        new StreamSession({ backend, random: seededRandom('x'), local: own(a), peer: peer(b), window: 8 }),
    ).toThrow(RangeError);
  });
});

// --- VEs exchanging frames through the DTM -------------------------------------------------------

type Applier = 'dtm' | 'vmm';
type Scheme = 'real' | 've';

/**
 * One machine: a VMM, its DTM over a block spool (the disk image is tapped), the VE keys. With
 * `confirm`, port a's transfers wait in the hold queue.
 */
function machine(name: string, opts: { confirm?: boolean } = {}) {
  const now = T0;
  const events: DtmEvent[] = [];
  const vmm = new Vmm({ clock: () => now, ramBytes: 32 << 20 });
  const disk = memoryBlockBackend(512);
  const spool = openBlockSpool(disk);
  const dtm = new Dtm({
    name: 'hub',
    id: 1,
    core: vmm.core,
    spool,
    clock: () => now,
    onEvent: (e) => events.push(e),
  });
  vmm.addService(() => dtm.service());
  const keys = new VeKeys();
  const m = triple(`${name}.example`);
  /** The frames the DTM was handed by VE ports (filter 94's output, or the NIC's). */
  const dtmSaw: Uint8Array[] = [];
  const local = (scheme: Scheme, ve: string) =>
    scheme === 've' ? veKey(keys, ve) : realKey({ name: `${m.name}/${ve}`, clef: m.clef, key: m.key });
  const remote = (scheme: Scheme, ve: string) =>
    scheme === 've' ? vePeer(keys, ve) : knownPeer({ name: `${m.name}/${ve}`, clef: m.clef });
  return {
    vmm,
    dtm,
    disk,
    events,
    keys,
    triple: m,
    dtmSaw,
    local,
    remote,
    /** Attaches VE `ve` as port `port`, with stream encryption by `applier` when `stream` is given. */
    attach(
      ve: VirtualEnvironment,
      port: string,
      applier: Applier,
      stream?: { local: StreamLocal; peers: { remote: StreamRemote; port?: string; mac?: Uint8Array }[] },
    ) {
      const s =
        stream === undefined
          ? undefined
          : createStream({ backend, random: seededRandom(`key ids ${name} ${port}`), ...stream });
      const nic =
        s !== undefined && applier === 'vmm'
          ? streamFilter(ve.vm.nic, { stream: s, ve: port, onEvent: (e) => events.push(e) })
          : ve.vm.nic;
      nic.on('transmit', (f) => dtmSaw.push(f));
      dtm.attach({
        name: port,
        nic,
        ...(s !== undefined && applier === 'dtm' ? { stream: s } : {}),
        ...(opts.confirm && port === 'a' ? { confirm: 'all' as const } : {}),
      });
    },
  };
}

function installVeKeys(keys: VeKeys, ...ves: string[]) {
  for (const ve of ves) {
    const t = triple(`${ve}.ve.example`);
    keys.install(ve, t.name, t.clef, t.key, T0);
  }
}

const dropped = (events: readonly DtmEvent[]) =>
  events.filter((e) => e.action === 'dropped').map((e) => [e.dtm, e.from, e.to, e.reason]);

const CASES: [Applier, Scheme][] = [
  ['dtm', 'real'],
  ['dtm', 've'],
  ['vmm', 'real'],
  ['vmm', 've'],
];

describe('stream encryption between two VEs of one machine (claims 31-38, Fig. 12)', () => {
  for (const [applier, scheme] of CASES) {
    it(`${applier === 'dtm' ? 'by the DTM (Fig. 12A)' : 'by filter 94 (Fig. 12B)'}, ${scheme} key: b gets exactly the plaintext, every tap and the third VE only ciphertext`, () => {
      const w = machine('m1');
      installVeKeys(w.keys, 'a', 'b', 'c');
      const macs = { a: veMac(1), b: veMac(2), c: veMac(3) };
      const sent = [
        ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, SECRET),
        ether(BROADCAST, macs.a, ETHERTYPE_IPV4, SECRET2),
      ];
      const a = netVe(w.vmm, 'a', senderRom(sent));
      const b = netVe(w.vmm, 'b', receiverRom());
      const c = netVe(w.vmm, 'c', receiverRom());
      w.attach(a, 'a', applier, { local: w.local(scheme, 'a'), peers: [{ remote: w.remote(scheme, 'b') }] });
      w.attach(b, 'b', applier, { local: w.local(scheme, 'b'), peers: [{ remote: w.remote(scheme, 'a') }] });
      w.attach(c, 'c', applier); // no stream: it takes frames as they come
      for (const ve of [a, b, c]) w.vmm.run(ve.id, 200_000);

      expect(consoleText(a)).toBe('TT.');
      expect(received(b)).toEqual(sent);
      // The broadcast reached c as ciphertext: clear addresses, the sealed type, nothing readable.
      const atC = received(c);
      expect(atC.map((f) => [hex(f.subarray(0, 14)), f.length])).toEqual([
        [`${hex(BROADCAST)}${hex(macs.a)}88b7`, 14 + SEALED_OVERHEAD + 2 + SECRET2.length],
      ]);
      expect(contains(atC[0]!, MARK)).toBe(false);
      // Taps: everything the spool area ever held, the events, c's memory.
      expect(contains(w.disk.bytes, MARK)).toBe(false);
      expect(w.disk.bytes.some((x) => x !== 0)).toBe(true);
      expect(contains(enc(JSON.stringify(w.events)), MARK)).toBe(false);
      expect(contains(c.vm.phys.ram, MARK)).toBe(false);
      if (applier === 'vmm') {
        // Filter 94: the DTM itself never handled a plaintext byte.
        expect(w.dtmSaw.map((f) => [f.length, f[12], f[13]])).toEqual([
          [14 + SEALED_OVERHEAD + 2 + SECRET.length, 0x88, 0xb7],
          [14 + SEALED_OVERHEAD + 2 + SECRET2.length, 0x88, 0xb7],
        ]);
        expect(w.dtmSaw.some((f) => contains(f, MARK))).toBe(false);
      }
      expect(dropped(w.events)).toEqual([]);
    });
  }

  it('a third VE with its own session with the sender cannot open what was sealed for another', () => {
    for (const applier of ['dtm', 'vmm'] as const) {
      const w = machine('m1');
      installVeKeys(w.keys, 'a', 'b', 'c');
      const macs = { a: veMac(1), b: veMac(2), c: veMac(3) };
      const a = netVe(w.vmm, 'a', senderRom([ether(BROADCAST, macs.a, ETHERTYPE_DATAGRAM, SECRET)]));
      const b = netVe(w.vmm, 'b', receiverRom());
      const c = netVe(w.vmm, 'c', receiverRom());
      // a talks to b by default; c holds a genuine session with a (its own key, a's Clef).
      w.attach(a, 'a', applier, { local: w.local('ve', 'a'), peers: [{ remote: w.remote('ve', 'b') }] });
      w.attach(b, 'b', applier, { local: w.local('ve', 'b'), peers: [{ remote: w.remote('ve', 'a') }] });
      w.attach(c, 'c', applier, { local: w.local('ve', 'c'), peers: [{ remote: w.remote('ve', 'a') }] });
      for (const ve of [a, b, c]) w.vmm.run(ve.id, 200_000);
      expect(received(b), applier).toEqual([ether(BROADCAST, macs.a, ETHERTYPE_DATAGRAM, SECRET)]);
      expect(received(c), applier).toEqual([]);
      expect(contains(c.vm.phys.ram, MARK), applier).toBe(false);
      expect(dropped(w.events), applier).toEqual([
        applier === 'dtm'
          ? ['hub', 'a', 'c', 'stream: authentication failed']
          : ['filter', formatMac(macs.a), 'c', 'stream: authentication failed'],
      ]);
    }
  });

  it('fails closed: no key, no peer, or an unsealed frame for a stream port: dropped, never in clear', () => {
    for (const applier of ['dtm', 'vmm'] as const) {
      const w = machine('m1');
      installVeKeys(w.keys, 'b', 'x'); // a has no key yet
      const macs = { a: veMac(1), b: veMac(2), x: veMac(3) };
      const a = netVe(w.vmm, 'a', senderRom([ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, SECRET)]));
      const b = netVe(w.vmm, 'b', receiverRom());
      const x = netVe(w.vmm, 'x', senderRom([ether(macs.b, macs.x, ETHERTYPE_DATAGRAM, 'sent in clear')]));
      w.attach(a, 'a', applier, { local: w.local('ve', 'a'), peers: [{ remote: w.remote('ve', 'b') }] });
      w.attach(b, 'b', applier, {
        local: w.local('ve', 'b'),
        peers: [{ remote: w.remote('ve', 'a'), mac: macs.a, port: 'a' }],
      });
      w.attach(x, 'x', applier); // sends in clear
      for (const ve of [a, x, b]) w.vmm.run(ve.id, 200_000);
      expect(received(b), applier).toEqual([]);
      expect(contains(w.disk.bytes, MARK), applier).toBe(false);
      expect(dropped(w.events), applier).toEqual(
        applier === 'dtm'
          ? [
              ['hub', 'a', 'b', 'stream: no key'],
              ['hub', 'x', 'b', 'stream: not sealed'],
            ]
          : [
              ['filter', 'a', formatMac(macs.b), 'stream: no key'],
              ['filter', formatMac(macs.x), 'b', 'stream: not sealed'],
            ],
      );
    }
  });
});

describe('dropped with their reasons: tampered, replayed, rotated-out (KEY-9)', () => {
  for (const applier of ['dtm', 'vmm'] as const) {
    it(`${applier}: tampered copies and a replay injected from the wire are dropped; b gets the original once`, () => {
      const w = machine('m1', { confirm: true });
      installVeKeys(w.keys, 'a', 'b');
      const gw = new Gateway(w.vmm);
      gw.connect(w.dtm);
      const macs = { a: veMac(1), b: veMac(2) };
      const frame = ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, SECRET);
      const a = netVe(w.vmm, 'a', senderRom([frame]));
      const b = netVe(w.vmm, 'b', receiverRom());
      w.attach(a, 'a', applier, { local: w.local('ve', 'a'), peers: [{ remote: w.remote('ve', 'b') }] });
      w.attach(b, 'b', applier, { local: w.local('ve', 'b'), peers: [{ remote: w.remote('ve', 'a') }] });
      w.vmm.run(a.id, 200_000);
      // While the frame waits in the hold queue, the adversary copies it from the spool area.
      const head = Uint8Array.of(...macs.b, ...macs.a, 0x88, 0xb7);
      const sealed = fromSpoolArea(w.disk.bytes, head, 14 + SEALED_OVERHEAD + 2 + SECRET.length);
      expect(parseFrame('ethernet', sealed)).toMatchObject({ type: ETHERTYPE_SEALED });
      expect(contains(sealed, MARK)).toBe(false);
      const body = sealed.slice();
      body[14 + SEALED_HEADER + 4]! ^= 1; // one ciphertext bit
      const seq = sealed.slice();
      seq[14 + 25]! ^= 2; // sequence number 1 -> 3: the header is authenticated too
      const fromWire = (f: Uint8Array) => {
        w.vmm.machine.nic.receive(f);
        w.vmm.run(b.id, 200_000);
      };
      fromWire(body);
      fromWire(seq);
      w.dtm.approve(w.dtm.transfers('held')[0]!.id);
      w.vmm.run(b.id, 200_000);
      expect(received(b)).toEqual([frame]);
      fromWire(sealed);
      w.vmm.run(b.id, 200_000);
      expect(received(b)).toEqual([frame]);
      const by = applier === 'dtm' ? ['hub', OUTSIDE, 'b'] : ['filter', formatMac(macs.a), 'b'];
      expect(dropped(w.events)).toEqual([
        [...by, 'stream: authentication failed'],
        [...by, 'stream: authentication failed'],
        [...by, 'stream: replayed'],
      ]);
    });

    it(`${applier}: a frame sealed before a rotation and delivered after it is dropped; the next one goes through`, () => {
      for (const rotated of ['a', 'b']) {
        const w = machine('m1', { confirm: true });
        installVeKeys(w.keys, 'a', 'b');
        const macs = { a: veMac(1), b: veMac(2) };
        const frames = [
          ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, SECRET),
          ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, SECRET2),
        ];
        const a = netVe(w.vmm, 'a', senderRom(frames, 1));
        const b = netVe(w.vmm, 'b', receiverRom());
        w.attach(a, 'a', applier, { local: w.local('ve', 'a'), peers: [{ remote: w.remote('ve', 'b') }] });
        w.attach(b, 'b', applier, { local: w.local('ve', 'b'), peers: [{ remote: w.remote('ve', 'a') }] });
        w.vmm.run(a.id, 50_000);
        expect(consoleText(a)).toBe('T|');
        // KEY-9: the key of one end changes while the first frame waits in the hold queue.
        const next = triple(`${rotated}2.ve.example`);
        expect(w.keys.install(rotated, next.name, next.clef, next.key, T0 + 1).version).toBe(2);
        w.dtm.approve(w.dtm.transfers('held')[0]!.id);
        resume(a);
        w.vmm.run(a.id, 50_000);
        expect(consoleText(a)).toBe('T|T.');
        w.dtm.approve(w.dtm.transfers('held')[0]!.id);
        w.vmm.run(b.id, 200_000);
        expect(received(b), rotated).toEqual([frames[1]]);
        expect(dropped(w.events), rotated).toEqual([
          applier === 'dtm'
            ? ['hub', 'a', 'b', 'stream: rotated-out key version']
            : ['filter', formatMac(macs.a), 'b', 'stream: rotated-out key version'],
        ]);
      }
    });
  }
});

/**
 * What an adversary reading the spool area finds of a frame with this header (the block spool's
 * log keeps a record's bytes as they were put): `length` bytes from the header on.
 */
function fromSpoolArea(disk: Uint8Array, header: Uint8Array, length: number): Uint8Array {
  for (let at = disk.indexOf(header[0]!); at >= 0; at = disk.indexOf(header[0]!, at + 1)) {
    if (header.every((x, i) => disk[at + i] === x)) return disk.slice(at, at + length);
  }
  throw new Error('not in the spool area');
}

describe('between machines over gateway 22 (a party on another machine)', () => {
  for (const scheme of ['real', 've'] as const) {
    it(`${scheme} key: DTM-sealed on machine 1, opened by filter 94 on machine 2; the wire carries ciphertext`, () => {
      const m1 = machine('m1');
      const m2 = machine('m2');
      installVeKeys(m1.keys, 'a');
      installVeKeys(m2.keys, 'x', 'b');
      const gw1 = new Gateway(m1.vmm);
      gw1.connect(m1.dtm);
      const gw2 = new Gateway(m2.vmm);
      gw2.connect(m2.dtm);
      const wire: Uint8Array[] = [];
      m1.vmm.machine.nic.on('transmit', (f) => {
        wire.push(f);
        m2.vmm.machine.nic.receive(f);
      });
      const macA = veMac(1);
      const macB = veMac(2); // b is machine 2's second VE
      const frames = [
        ether(macB, macA, ETHERTYPE_DATAGRAM, SECRET),
        ether(macB, macA, ETHERTYPE_IPV4, SECRET2),
      ];
      const a = netVe(m1.vmm, 'a', senderRom(frames));
      netVe(m2.vmm, 'x', receiverRom());
      const b = netVe(m2.vmm, 'b', receiverRom());
      // Each end knows the other's Clef by configuration (the machine's, or the VE's).
      const peerOfA =
        scheme === 'real'
          ? knownPeer({ name: `${m2.triple.name}/b`, clef: m2.triple.clef })
          : knownPeer({ name: m2.keys.get('b')!.name, clef: m2.keys.get('b')!.clef });
      const peerOfB =
        scheme === 'real'
          ? knownPeer({ name: `${m1.triple.name}/a`, clef: m1.triple.clef })
          : knownPeer({ name: m1.keys.get('a')!.name, clef: m1.keys.get('a')!.clef });
      m1.attach(a, 'a', 'dtm', { local: m1.local(scheme, 'a'), peers: [{ port: OUTSIDE, remote: peerOfA }] });
      m2.attach(b, 'b', 'vmm', { local: m2.local(scheme, 'b'), peers: [{ mac: macA, remote: peerOfB }] });
      m1.vmm.run(a.id, 200_000);
      m2.vmm.run(b.id, 200_000);
      m2.vmm.run(b.id, 200_000);
      expect(received(b)).toEqual(frames);
      expect(wire.map((f) => [hex(f.subarray(0, 14)), f.length])).toEqual([
        [`${hex(macB)}${hex(macA)}88b7`, 14 + SEALED_OVERHEAD + 2 + SECRET.length],
        [`${hex(macB)}${hex(macA)}88b7`, 14 + SEALED_OVERHEAD + 2 + SECRET2.length],
      ]);
      expect(wire.some((f) => contains(f, MARK))).toBe(false);
      expect(contains(m1.disk.bytes, MARK) || contains(m2.disk.bytes, MARK)).toBe(false);
      expect([...dropped(m1.events), ...dropped(m2.events)]).toEqual([]);
    });
  }

  it('DTM-11 with filter 94: a direct VE sends only ciphertext to the wire, and the other machine opens it', () => {
    const m1 = machine('m1');
    const m2 = machine('m2');
    installVeKeys(m1.keys, 'a');
    installVeKeys(m2.keys, 'x', 'b');
    const gw1 = new Gateway(m1.vmm);
    const gw2 = new Gateway(m2.vmm);
    gw2.connect(m2.dtm);
    const wire: Uint8Array[] = [];
    m1.vmm.machine.nic.on('transmit', (f) => {
      wire.push(f);
      m2.vmm.machine.nic.receive(f);
    });
    const macA = veMac(1);
    const macB = veMac(2);
    const frames = [ether(macB, macA, ETHERTYPE_DATAGRAM, SECRET)];
    const a = netVe(m1.vmm, 'a', senderRom(frames));
    netVe(m2.vmm, 'x', receiverRom());
    const b = netVe(m2.vmm, 'b', receiverRom());
    const peerOfA = knownPeer({ name: m2.keys.get('b')!.name, clef: m2.keys.get('b')!.clef });
    const peerOfB = knownPeer({ name: m1.keys.get('a')!.name, clef: m1.keys.get('a')!.clef });
    // Machine 1: no DTM on a's path at all, only filter 94 between its NIC and gateway 22.
    const s = createStream({
      backend,
      random: seededRandom('key ids direct a'),
      local: m1.local('ve', 'a'),
      peers: [{ mac: macB, remote: peerOfA }],
    });
    gw1.attachDirect(streamFilter(a.vm.nic, { stream: s, ve: 'a' }));
    m2.attach(b, 'b', 'vmm', { local: m2.local('ve', 'b'), peers: [{ mac: macA, remote: peerOfB }] });
    m1.vmm.run(a.id, 200_000);
    m2.vmm.run(b.id, 200_000);
    m2.vmm.run(b.id, 200_000);
    expect(received(b)).toEqual(frames);
    expect(wire.map((f) => hex(f.subarray(0, 14)))).toEqual([`${hex(macB)}${hex(macA)}88b7`]);
    expect(wire.some((f) => contains(f, MARK))).toBe(false);
    expect(m1.dtm.stats().delivered).toBe(0);
  });

  it('a modem-link VE: filter 94 seals its PPP-like frames as protocol 0x4A39 and the DTM translates them', () => {
    const w = machine('m1');
    installVeKeys(w.keys, 'm', 'e');
    const macs = { m: veMac(1), e: veMac(2) };
    const m = netVe(w.vmm, 'm', senderRom([modem(0x4a37, SECRET)]));
    const e = netVe(w.vmm, 'e', receiverRom());
    const s = createStream({
      backend,
      random: seededRandom('m'),
      local: w.local('ve', 'm'),
      peers: [{ remote: w.remote('ve', 'e') }],
    });
    const f = streamFilter(m.vm.nic, { stream: s, ve: 'm', medium: 'modem' });
    const seen: Uint8Array[] = [];
    f.on('transmit', (x) => seen.push(x));
    w.dtm.attach({ name: 'm', nic: f, medium: 'modem', channel: 'e' });
    w.attach(e, 'e', 'vmm', { local: w.local('ve', 'e'), peers: [{ remote: w.remote('ve', 'm') }] });
    w.vmm.run(m.id, 200_000);
    w.vmm.run(e.id, 200_000);
    expect(seen.map((x) => hex(x.subarray(0, 4)))).toEqual(['ff034a39']);
    expect(received(e)).toEqual([ether(macs.e, macs.m, ETHERTYPE_DATAGRAM, SECRET)]);
    expect(contains(w.disk.bytes, MARK)).toBe(false);
  });
});
