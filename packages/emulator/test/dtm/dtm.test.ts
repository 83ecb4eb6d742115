import { describe, expect, it } from 'vitest';
import { memoryBlockBackend } from '../../src/devices/disk.js';
import { Dtm, type DtmEvent, type DtmOptions, OUTSIDE, type PortOptions } from '../../src/dtm/dtm.js';
import {
  BROADCAST,
  ETHERTYPE_DATAGRAM,
  ETHERTYPE_IPV4,
  ETHERTYPE_TRANSACTION,
  veMac,
} from '../../src/dtm/frame.js';
import { Gateway } from '../../src/dtm/gateway.js';
import { signatureScanner } from '../../src/dtm/scanner.js';
import { memorySpool, openBlockSpool, type Spool } from '../../src/dtm/spool.js';
import { Vmm } from '../../src/vmm/vmm.js';
import {
  consoleText,
  ether,
  fragment,
  modem,
  netVe,
  received,
  receiverRom,
  resume,
  senderRom,
} from './net.js';

const T0 = Date.UTC(2026, 10, 27);

function world(opts: Partial<DtmOptions> = {}, spool: Spool = memorySpool()) {
  let now = T0;
  const events: DtmEvent[] = [];
  const vmm = new Vmm({ clock: () => now, ramBytes: 32 << 20 });
  const dtm = new Dtm({
    name: 'hub',
    id: 1,
    core: vmm.core,
    spool,
    clock: () => now,
    onEvent: (e) => events.push(e),
    ...opts,
  });
  vmm.addService(() => dtm.service());
  return {
    vmm,
    dtm,
    events,
    spool,
    advance(ms: number) {
      now += ms;
    },
  };
}

type World = ReturnType<typeof world>;

/** Sender `a` (VE 1) and receivers b, c (VEs 2, 3) on the hub; `frames` built from their MACs. */
function trio(
  w: World,
  frames: (m: { a: Uint8Array; b: Uint8Array; c: Uint8Array }) => Uint8Array[],
  port: Partial<Record<'a' | 'b' | 'c', Partial<PortOptions>>> = {},
  pauseAfter = -1,
) {
  const macs = { a: veMac(1), b: veMac(2), c: veMac(3) };
  const a = netVe(w.vmm, 'a', senderRom(frames(macs), pauseAfter));
  const b = netVe(w.vmm, 'b', receiverRom());
  const c = netVe(w.vmm, 'c', receiverRom());
  for (const [name, ve] of [
    ['a', a],
    ['b', b],
    ['c', c],
  ] as const) {
    w.dtm.attach({ name, nic: ve.vm.nic, ...port[name] });
  }
  return { a, b, c, macs };
}

function runAll(w: World, ...ids: number[]) {
  for (const id of ids) w.vmm.run(id, 200_000);
}

describe('DTM configuration A: the local hub', () => {
  it('delivers a unicast frame to its addressee only and a broadcast to every other hub port, byte for byte', () => {
    const w = world();
    const { a, b, c, macs } = trio(w, (m) => [
      ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'to b only'),
      ether(BROADCAST, m.a, ETHERTYPE_DATAGRAM, 'to all'),
    ]);
    runAll(w, a.id, b.id, c.id);
    expect(consoleText(a)).toBe('TT.');
    expect(received(b)).toEqual([
      ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, 'to b only'),
      ether(BROADCAST, macs.a, ETHERTYPE_DATAGRAM, 'to all'),
    ]);
    expect(received(c)).toEqual([ether(BROADCAST, macs.a, ETHERTYPE_DATAGRAM, 'to all')]);
    expect(consoleText(b)).toBe('RR');
    expect(w.dtm.stats()).toMatchObject({ delivered: 3, dropped: 0, spooled: 2 });
    expect(w.spool.count).toBe(0);
  });
});

describe('DTM policy', () => {
  it('drops a frame whose source address is not the sender NIC', () => {
    const w = world();
    const { a, b, macs } = trio(w, (m) => [
      ether(m.b, m.c, ETHERTYPE_DATAGRAM, 'forged'),
      ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'honest'),
    ]);
    runAll(w, a.id, b.id);
    expect(received(b)).toEqual([ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, 'honest')]);
    expect(w.events.filter((e) => e.action === 'dropped')).toEqual([
      {
        kind: 'dtm',
        dtm: 'hub',
        action: 'dropped',
        from: 'a',
        frames: 1,
        bytes: 20,
        reason: 'forged source 02:c1:ef:00:00:03',
      },
    ]);
  });

  it('keeps to reach and accept lists, a runt and an unknown address are dropped with their reasons', () => {
    const w = world();
    const { a, b, c, macs } = trio(
      w,
      (m) => [
        ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'b refuses a'),
        ether(m.c, m.a, ETHERTYPE_DATAGRAM, 'a reaches c'),
        ether(veMac(9), m.a, ETHERTYPE_DATAGRAM, 'nobody'),
        m.a.subarray(0, 5),
      ],
      { b: { accept: ['c'] } },
    );
    runAll(w, a.id, b.id, c.id);
    expect(received(b)).toEqual([]);
    expect(received(c)).toEqual([ether(macs.c, macs.a, ETHERTYPE_DATAGRAM, 'a reaches c')]);
    expect(w.events.filter((e) => e.action === 'dropped').map((e) => [e.to, e.reason])).toEqual([
      ['b', 'b does not accept a'],
      ['02:c1:ef:00:00:09', 'no such address'],
      [undefined, 'runt'],
    ]);

    const w2 = world();
    const t2 = trio(
      w2,
      (m) => [ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'x'), ether(BROADCAST, m.a, ETHERTYPE_DATAGRAM, 'y')],
      {
        a: { reach: ['c'] },
      },
    );
    runAll(w2, t2.a.id, t2.b.id, t2.c.id);
    expect(received(t2.b)).toEqual([]);
    expect(received(t2.c)).toEqual([ether(BROADCAST, t2.macs.a, ETHERTYPE_DATAGRAM, 'y')]);
    expect(w2.events.filter((e) => e.action === 'dropped').map((e) => e.reason)).toEqual([
      'a may not reach b',
      'a may not reach b',
    ]);
  });
});

describe('DTM configuration B: a channel per VE, protocol translation', () => {
  it('a modem-link VE and an ethernet VE talk through the DTM, each in its own framing', () => {
    const w = world();
    const macs = { m: veMac(1), e: veMac(2), x: veMac(3) };
    const m = netVe(
      w.vmm,
      'm',
      senderRom([
        modem(0x4a37, 'dial-up hello'),
        modem(0x0021, 'an IPv4 packet'),
        modem(0x8001, 'no such protocol'),
      ]),
    );
    const e = netVe(
      w.vmm,
      'e',
      senderRom([
        ether(macs.m, macs.e, ETHERTYPE_DATAGRAM, 'reply'),
        ether(macs.m, macs.e, 0x1234, 'untranslatable'),
      ]),
    );
    const x = netVe(w.vmm, 'x', receiverRom());
    // m's channel leads to e; e sits on the hub, as does x (which must not see m's frames).
    w.dtm.attach({ name: 'm', nic: m.vm.nic, medium: 'modem', channel: 'e' });
    w.dtm.attach({ name: 'e', nic: e.vm.nic });
    w.dtm.attach({ name: 'x', nic: x.vm.nic });
    runAll(w, m.id);
    // e is a sender: its queue holds what arrived.
    const got: Uint8Array[] = [];
    e.vm.nic.on('transmit', () => {});
    while (e.vm.nic.queued > 0) {
      const len = e.vm.nic.read(0x302);
      e.vm.nic.write(0x304, 0x80000);
      e.vm.nic.write(0x306, 1);
      got.push(e.vm.phys.ram.slice(0x80000, 0x80000 + len));
    }
    expect(got).toEqual([
      ether(macs.e, macs.m, ETHERTYPE_DATAGRAM, 'dial-up hello'),
      ether(macs.e, macs.m, ETHERTYPE_IPV4, 'an IPv4 packet'),
    ]);
    runAll(w, e.id);
    const back: Uint8Array[] = [];
    while (m.vm.nic.queued > 0) {
      const len = m.vm.nic.read(0x302);
      m.vm.nic.write(0x304, 0x80000);
      m.vm.nic.write(0x306, 1);
      back.push(m.vm.phys.ram.slice(0x80000, 0x80000 + len));
    }
    expect(back).toEqual([modem(0x4a37, 'reply')]);
    runAll(w, x.id);
    expect(received(x)).toEqual([]);
    expect(w.events.filter((ev) => ev.action === 'dropped').map((ev) => [ev.from, ev.to, ev.reason])).toEqual(
      [
        ['m', undefined, 'untranslatable'],
        ['e', 'm', 'untranslatable'],
      ],
    );
  });

  it('a channel port accepts only its peer', () => {
    const w = world();
    const { a, b } = trio(w, (mm) => [ether(mm.b, mm.a, ETHERTYPE_DATAGRAM, 'not your peer')], {
      b: { channel: 'c' },
    });
    runAll(w, a.id, b.id);
    expect(received(b)).toEqual([]);
    expect(w.events.map((e) => e.reason)).toEqual(['b is a channel to c']);
  });
});

describe('DTM spooling: whole transactions, the scanner', () => {
  const tx = (m: { a: Uint8Array; b: Uint8Array }, parts: [number, boolean, string][]) =>
    parts.map(([seq, last, d]) => ether(m.b, m.a, ETHERTYPE_TRANSACTION, fragment(7, seq, last, d)));

  it('spool mode passes a transaction only whole; pass mode forwards fragments as they come', () => {
    for (const mode of ['spool', 'pass'] as const) {
      const w = world();
      // The sender stops after two of the three fragments.
      const { a, b, macs } = trio(
        w,
        (m) =>
          tx(m, [
            [0, false, 'part one;'],
            [1, false, 'part two;'],
            [2, true, 'end'],
          ]),
        { a: { mode }, b: { mode } },
        2,
      );
      w.vmm.run(a.id, 200_000);
      w.vmm.run(b.id, 200_000);
      expect(consoleText(a)).toBe('TT|');
      const all = tx(macs, [
        [0, false, 'part one;'],
        [1, false, 'part two;'],
        [2, true, 'end'],
      ]);
      expect(received(b)).toEqual(mode === 'spool' ? [] : all.slice(0, 2));
      expect(w.spool.count).toBe(mode === 'spool' ? 1 : 0);
      // It goes on: the last fragment completes the transaction.
      resume(a);
      w.vmm.run(a.id, 200_000);
      w.vmm.run(b.id, 200_000);
      expect(consoleText(a)).toBe('TT|T.');
      expect(received(b)).toEqual(all);
      expect(w.spool.count).toBe(0);
    }
  });

  it('an incomplete transaction expires from the spool, never delivered', () => {
    const w = world({ assemblyTimeoutMs: 1000 });
    const { a, b } = trio(
      w,
      (m) =>
        tx(m, [
          [0, false, 'orphan'],
          [1, true, 'never sent'],
        ]),
      {},
      1,
    );
    w.vmm.run(a.id, 200_000);
    expect(w.dtm.transfers().map((t) => [t.state, t.frames])).toEqual([['assembling', 1]]);
    w.advance(999);
    w.dtm.service();
    expect(w.spool.count).toBe(1);
    w.advance(1);
    w.dtm.service();
    expect(w.spool.count).toBe(0);
    w.vmm.run(b.id, 200_000);
    expect(received(b)).toEqual([]);
    expect(w.events.at(-1)).toMatchObject({
      action: 'expired',
      from: 'a',
      reason: 'incomplete transaction',
      frames: 1,
    });
  });

  it('the scanner sees the transaction whole: a signature split across fragments is caught and quarantined', () => {
    const w = world({ scanner: signatureScanner('X5O!P%@AP', 'EICAR-like test signature') });
    const { a, b, macs } = trio(w, (m) => [
      ...tx(m, [
        [0, false, 'innocent X5O!'],
        [1, true, 'P%@AP tail'],
      ]),
      ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'clean'),
    ]);
    runAll(w, a.id, b.id);
    expect(received(b)).toEqual([ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, 'clean')]);
    const q = w.dtm.transfers('quarantined');
    expect(q).toMatchObject([
      {
        state: 'quarantined',
        from: 'a',
        to: ['b'],
        frames: 2,
        reason: 'EICAR-like test signature at byte 9',
      },
    ]);
    expect(w.dtm.frames(q[0]!.id)).toEqual(
      tx(macs, [
        [0, false, 'innocent X5O!'],
        [1, true, 'P%@AP tail'],
      ]),
    );
    expect(w.dtm.stats()).toMatchObject({ flagged: 1, delivered: 1 });
  });

  it('pass mode does not scan', () => {
    const w = world({ scanner: signatureScanner('X5O!P%@AP') });
    const { a, b, macs } = trio(w, (m) => [ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'X5O!P%@AP')], {
      a: { mode: 'pass' },
      b: { mode: 'pass' },
    });
    runAll(w, a.id, b.id);
    expect(received(b)).toEqual([ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, 'X5O!P%@AP')]);
  });
});

describe('DTM outbound confirmation: the hold queue', () => {
  it('holds what a VE sends until a person approves or rejects it; nothing held is lost across a restart', () => {
    const disk = memoryBlockBackend(256);
    const w = world({}, openBlockSpool(disk));
    const { a, b, macs } = trio(
      w,
      (m) => [
        ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'first: will be approved'),
        ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'second: will be rejected'),
        ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'third: approved after a restart'),
      ],
      { a: { confirm: 'all' } },
    );
    runAll(w, a.id, b.id);
    expect(received(b)).toEqual([]);
    const held = w.dtm.transfers('held');
    expect(held.map((h) => [h.from, h.to, h.frames, h.bytes, h.reason])).toEqual([
      ['a', ['b'], 1, 37, 'confirm all'],
      ['a', ['b'], 1, 38, 'confirm all'],
      ['a', ['b'], 1, 45, 'confirm all'],
    ]);
    w.dtm.approve(held[0]!.id);
    w.dtm.reject(held[1]!.id);
    expect(() => w.dtm.reject(held[1]!.id)).toThrow(expect.objectContaining({ code: 'DTM_BAD_HOLD' }));
    expect(() => w.dtm.approve(12345)).toThrow(expect.objectContaining({ code: 'DTM_BAD_HOLD' }));
    runAll(w, b.id);
    expect(received(b)).toEqual([ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, 'first: will be approved')]);

    // The machine goes down; a new VMM and DTM over the same spool area find the third one held.
    const w2 = world({}, openBlockSpool(disk));
    const t2 = trio(w2, () => [], { a: { confirm: 'all' } });
    const again = w2.dtm.transfers('held');
    expect(again.map((h) => [h.id, h.from, h.to, h.bytes])).toEqual([[held[2]!.id, 'a', ['b'], 45]]);
    expect(w2.dtm.frames(again[0]!.id)).toEqual([
      ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, 'third: approved after a restart'),
    ]);
    w2.dtm.approve(again[0]!.id);
    runAll(w2, t2.b.id);
    expect(received(t2.b)).toEqual([
      ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, 'third: approved after a restart'),
    ]);
    expect(w2.spool.count).toBe(0);
    expect(w2.events.map((e) => e.action)).toEqual(['approved', 'delivered']);
  });

  it("holds only transfers to the outside with confirm 'outside'; the timeout policy decides what nobody does", () => {
    for (const action of ['reject', 'approve'] as const) {
      const w = world({ holdTimeout: { afterMs: 60_000, action } });
      const { a, b, macs } = trio(w, (m) => [ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'x')], {
        a: { confirm: 'all' },
      });
      runAll(w, a.id);
      w.advance(59_999);
      w.dtm.service();
      expect(w.dtm.transfers('held')).toHaveLength(1);
      w.advance(1);
      runAll(w, b.id); // the VMM gives the DTM its turn after the slice
      runAll(w, b.id);
      expect(w.dtm.transfers('held')).toHaveLength(0);
      expect(received(b)).toEqual(
        action === 'approve' ? [ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, 'x')] : [],
      );
      expect(w.events.find((e) => e.action === 'approved' || e.action === 'expired')).toMatchObject(
        action === 'approve'
          ? { action: 'approved', reason: 'timeout' }
          : { action: 'expired', reason: 'hold timed out' },
      );
    }
  });
});

describe('DTM receive queues', () => {
  it('spool mode keeps a transaction a full queue cannot take and delivers it later; pass mode drops it', () => {
    for (const mode of ['spool', 'pass'] as const) {
      const w = world();
      const frames = (m: { a: Uint8Array; b: Uint8Array }) =>
        Array.from({ length: 70 }, (_, i) => ether(m.b, m.a, ETHERTYPE_DATAGRAM, `frame ${i}`));
      const { a, b, macs } = trio(w, frames, { a: { mode }, b: { mode } });
      runAll(w, a.id);
      expect(b.vm.nic.queued).toBe(64);
      runAll(w, b.id); // takes 64; the DTM's turn after the slice delivers what waited
      runAll(w, b.id);
      expect(received(b)).toEqual(mode === 'spool' ? frames(macs) : frames(macs).slice(0, 64));
      expect(w.spool.count).toBe(0);
      expect(w.dtm.stats().dropped).toBe(mode === 'spool' ? 0 : 6);
    }
  });
});

describe('DTM delivery order', () => {
  it('per receiver, a transaction waiting for room holds back later ones: none overtakes it', () => {
    const w = world();
    // 63 datagrams leave room for one frame; then a two-fragment transaction that must wait, then
    // one datagram that would fit.
    const frames = (m: { a: Uint8Array; b: Uint8Array }) => [
      ...Array.from({ length: 63 }, (_, i) => ether(m.b, m.a, ETHERTYPE_DATAGRAM, `frame ${i}`)),
      ether(m.b, m.a, ETHERTYPE_TRANSACTION, fragment(9, 0, false, 'first half;')),
      ether(m.b, m.a, ETHERTYPE_TRANSACTION, fragment(9, 1, true, 'second half')),
      ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'after the transaction'),
    ];
    const { a, b, macs } = trio(w, frames);
    runAll(w, a.id);
    // The transaction waits for room; the datagram behind it would fit (63 of 64) but stays back.
    expect(w.events.some((e) => e.action === 'waiting' && e.reason === 'receive queue full')).toBe(true);
    expect(b.vm.nic.queued).toBe(63);
    runAll(w, b.id);
    runAll(w, b.id);
    expect(received(b)).toEqual(frames(macs));
    expect(w.spool.count).toBe(0);
  });
});

describe('DTM transfers larger than a receive queue', () => {
  it('one that could never fit is dropped with its reason; later transfers to that receiver still go', () => {
    // The DTM takes transactions of up to 70 frames; a receiver's queue holds 64.
    const w = world({ maxTransactionFrames: 70 });
    // 65 fragments: more than the receiver's whole queue.
    const frames = (m: { a: Uint8Array; b: Uint8Array }) => [
      ...Array.from({ length: 65 }, (_, i) =>
        ether(m.b, m.a, ETHERTYPE_TRANSACTION, fragment(11, i, i === 64, `part ${i};`)),
      ),
      ether(m.b, m.a, ETHERTYPE_DATAGRAM, 'after the big one'),
    ];
    const { a, b, macs } = trio(w, frames);
    runAll(w, a.id);
    runAll(w, b.id);
    expect(received(b)).toEqual([ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, 'after the big one')]);
    expect(w.events.filter((e) => e.action === 'dropped')).toMatchObject([
      {
        action: 'dropped',
        from: 'a',
        to: 'b',
        frames: 65,
        reason: "65 frames never fit b's receive queue of 64",
      },
    ]);
    expect(w.spool.count).toBe(0);
  });
});

describe('DTM full spool', () => {
  it('a frame the spool cannot take is dropped with its reason; the sender and the DTM go on', () => {
    // Every transfer from a is held for confirmation, so each stays in a spool of 600 bytes.
    const w = world({}, memorySpool(600));
    const frames = (m: { a: Uint8Array; b: Uint8Array }) =>
      Array.from({ length: 8 }, (_, i) => ether(m.b, m.a, ETHERTYPE_DATAGRAM, `held frame ${i}`));
    const { a } = trio(w, frames, { a: { confirm: 'all' } });
    runAll(w, a.id);
    expect(consoleText(a)).toBe('TTTTTTTT.');
    const held = w.dtm.transfers('held').length;
    const full = w.events.filter((e) => e.action === 'dropped' && e.reason === 'spool full');
    expect(held).toBeGreaterThan(0);
    expect(held + full.length).toBe(8);
    expect(full.length).toBeGreaterThan(0);
  });
});

describe('DTM configuration C: several DTMs sharing a spool', () => {
  it('a transfer to another DTM port is handed over through the shared spool and a core message', () => {
    const disk = memoryBlockBackend(256);
    const w = world({}, openBlockSpool(disk));
    const second = new Dtm({
      name: 'second',
      id: 2,
      core: w.vmm.core,
      spool: w.spool,
      clock: () => T0,
      onEvent: (e) => w.events.push(e),
    });
    w.dtm.link(second);
    const macs = { a: veMac(1), b: veMac(2) };
    const a = netVe(w.vmm, 'a', senderRom([ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, 'across DTMs')]));
    const b = netVe(w.vmm, 'b', receiverRom());
    w.dtm.attach({ name: 'a', nic: a.vm.nic });
    second.attach({ name: 'b', nic: b.vm.nic });
    expect(() => second.attach({ name: 'a', nic: b.vm.nic })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    w.vmm.run(a.id, 200_000);
    // Handed over: in the spool, owned by the second DTM, announced to its task; not yet delivered.
    expect(b.vm.nic.queued).toBe(0);
    expect(w.spool.count).toBe(1);
    expect(w.events.map((e) => [e.dtm, e.action, e.to])).toEqual([
      ['hub', 'spooled', 'b'],
      ['hub', 'handed-over', 'b'],
    ]);
    // The second DTM crashes before its turn: a new one over the same spool still delivers it.
    const again = new Dtm({
      name: 'second',
      id: 2,
      core: w.vmm.core,
      spool: openBlockSpool(disk),
      clock: () => T0,
      onEvent: (e) => w.events.push(e),
    });
    again.attach({ name: 'b2', nic: b.vm.nic });
    expect(again.transfers()).toMatchObject([{ state: 'ready', from: 'a', to: ['b'] }]);
    again.detach('b2');
    again.attach({ name: 'b', nic: b.vm.nic });
    again.service();
    w.vmm.run(b.id, 200_000);
    expect(received(b)).toEqual([ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, 'across DTMs')]);
    expect(openBlockSpool(disk).count).toBe(0);
  });

  it('the core stamps the sending DTM: only ring-0/1 tasks, and linking needs one spool', () => {
    const w = world();
    const other = new Dtm({ name: 'other', id: 2, core: w.vmm.core, spool: memorySpool(), clock: () => T0 });
    expect(() => w.dtm.link(other)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: 'DTMs hub and other do not share a spool' }),
    );
    expect(w.dtm.task.ring).toBe(1);
    expect(() => new Dtm({ name: 'x', id: 0, core: w.vmm.core, spool: w.spool, clock: () => T0 })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});

describe('gateway 22', () => {
  it('frames from outside arrive through the real NIC, its interrupt and the DTM; frames out leave through it', () => {
    const w = world();
    const gw = new Gateway(w.vmm);
    gw.connect(w.dtm);
    const out: Uint8Array[] = [];
    w.vmm.machine.nic.on('transmit', (f) => out.push(f));
    const far = Uint8Array.of(0x02, 0x99, 0, 0, 0, 1);
    const { a, b, macs } = trio(w, (m) => [ether(far, m.a, ETHERTYPE_DATAGRAM, 'to the world')], {
      b: { accept: [OUTSIDE] },
    });
    runAll(w, a.id);
    expect(out).toEqual([ether(far, macs.a, ETHERTYPE_DATAGRAM, 'to the world')]);
    // From outside: the host puts a frame on the real wire; the core dispatches the NIC interrupt.
    expect(w.vmm.machine.nic.receive(ether(macs.b, far, ETHERTYPE_DATAGRAM, 'hello b'))).toBe(true);
    expect(w.vmm.machine.nic.receive(ether(macs.a, far, ETHERTYPE_DATAGRAM, 'hello a'))).toBe(true);
    runAll(w, b.id);
    runAll(w, b.id);
    expect(received(b)).toEqual([ether(macs.b, far, ETHERTYPE_DATAGRAM, 'hello b')]);
    expect(a.vm.nic.queued).toBe(1);
    expect(gw.stats()).toEqual({ received: 2, transmitted: 1, unrouted: 0 });
  });

  it('direct mode (DTM-11): a VE and the gateway exchange frames without the DTM, unchecked', () => {
    const w = world();
    const gw = new Gateway(w.vmm);
    gw.connect(w.dtm);
    const out: Uint8Array[] = [];
    w.vmm.machine.nic.on('transmit', (f) => out.push(f));
    const far = Uint8Array.of(0x02, 0x99, 0, 0, 0, 1);
    const macs = { a: veMac(1), b: veMac(2) };
    // Even a forged source leaves as it is: nothing checks a direct VE.
    const a = netVe(w.vmm, 'a', senderRom([ether(far, far, ETHERTYPE_DATAGRAM, 'forged, unchecked')]));
    const b = netVe(w.vmm, 'b', receiverRom());
    gw.attachDirect(a.vm.nic);
    w.dtm.attach({ name: 'b', nic: b.vm.nic });
    runAll(w, a.id);
    expect(out).toEqual([ether(far, far, ETHERTYPE_DATAGRAM, 'forged, unchecked')]);
    w.vmm.machine.nic.receive(ether(macs.a, far, ETHERTYPE_DATAGRAM, 'straight in'));
    w.vmm.core.dispatch();
    expect(a.vm.nic.queued).toBe(1);
    expect(w.events).toEqual([]);
    expect(w.dtm.stats().delivered).toBe(0);
  });
});
