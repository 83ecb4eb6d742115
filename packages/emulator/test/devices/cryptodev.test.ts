import {
  type AuthorityTriple,
  generateTriple,
  nodeBackend,
  parseName,
  seededRandom,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import {
  CRYPTO_COMMAND as CMD,
  CRYPTO_REFUSAL,
  CryptoDevice,
  CRYPTO_ERROR as E,
  CRYPTO_PORT as P,
} from '../../src/devices/cryptodev.js';
import { Dtm, type DtmEvent } from '../../src/dtm/dtm.js';
import { ETHERTYPE_DATAGRAM, ETHERTYPE_SEALED, veMac } from '../../src/dtm/frame.js';
import { memorySpool } from '../../src/dtm/spool.js';
import {
  createStream,
  realKey,
  SEALED_OVERHEAD,
  StreamSession,
  streamFilter,
  veKey,
  vePeer,
} from '../../src/dtm/stream.js';
import { createMachine } from '../../src/machine.js';
import type { VirtualEnvironment } from '../../src/vmm/ve.js';
import { VeKeys } from '../../src/vmm/vekeys.js';
import { Vmm } from '../../src/vmm/vmm.js';
import { consoleText, ether, LOG, NIC, NIC_IRQ_SETUP, netVe, received, receiverRom } from '../dtm/net.js';
import { guestRom } from '../vmm/guest.js';
import { busWith, fakeMemory } from './helpers.js';

const T0 = Date.UTC(2026, 10, 27);
const backend = nodeBackend;
const CRY = 0x320;
/** The guests' table of command results: a dword count, then per command STATUS and RESULT_LEN. */
const RESULTS = 0x60000;
const enc = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function triple(name: string): AuthorityTriple {
  return generateTriple(backend, seededRandom(`triple ${name}`), parseName(name));
}

function keysFor(...ves: string[]): VeKeys {
  const keys = new VeKeys();
  for (const ve of ves) {
    const t = triple(`${ve}.ve.example`);
    keys.install(ve, t.name, t.clef, t.key, T0);
  }
  return keys;
}

/** VE `ve`'s session with VE `peer` (both keys live in `keys`). */
function session(keys: VeKeys, ve: string, peer: string, seed = `ids ${ve}->${peer}`): StreamSession {
  return new StreamSession({
    backend,
    random: seededRandom(seed),
    local: veKey(keys, ve),
    peer: vePeer(keys, peer),
  });
}

const status = (code: number, refusal?: string, slots = 8) =>
  code | (slots << 8) | (refusal === undefined ? 0 : CRYPTO_REFUSAL[refusal]! << 16);

describe('crypto device (claim 39): host-driven', () => {
  function setup() {
    const { mem, dma } = fakeMemory();
    const dev = new CryptoDevice({ owner: 'a', dma });
    const bus = busWith(dev);
    const cmd = (c: number, slot: number, addr: number, len: number) => {
      bus.write(CRY + P.SLOT, slot);
      bus.write(CRY + P.ADDR, addr);
      bus.write(CRY + P.LEN, len);
      bus.write(CRY + P.COMMAND, c);
      return [bus.read(CRY + P.STATUS), bus.read(CRY + P.RESULT_LEN)];
    };
    return { mem, dev, bus, cmd };
  }

  it('claims 0x320..0x326; seals in place with the slot key, the peer opens exactly; errors leave memory as it was', () => {
    const keys = keysFor('a', 'b');
    const { mem, dev, bus, cmd } = setup();
    expect(dev.ports).toEqual([0x320, 0x326]);
    expect(bus.read(CRY + P.STATUS)).toBe(status(E.OK));
    dev.load(0, session(keys, 'a', 'b'));
    bus.write(CRY + P.SLOT, 0);
    expect(bus.read(CRY + P.SLOT_STATE)).toBe(1);
    bus.write(CRY + P.SLOT, 1);
    expect(bus.read(CRY + P.SLOT_STATE)).toBe(0);
    const plain = enc('sealed inside the VE');
    mem.set(plain, 0x100);
    expect(cmd(CMD.SEAL, 0, 0x100, plain.length)).toEqual([status(E.OK), plain.length + SEALED_OVERHEAD]);
    const sealed = mem.slice(0x100, 0x100 + plain.length + SEALED_OVERHEAD);
    expect(hex(sealed.subarray(0, 2))).toBe('0102');
    expect(session(keys, 'b', 'a').open(sealed)).toEqual(plain);

    const before = mem.slice();
    expect(cmd(CMD.SEAL, 1, 0x100, 4)).toEqual([status(E.NO_KEY), 0]);
    expect(cmd(CMD.SEAL, 9, 0x100, 4)).toEqual([status(E.NO_KEY), 0]);
    expect(cmd(CMD.SEAL, 0, 0x100, 0)).toEqual([status(E.BAD_LENGTH), 0]);
    expect(cmd(CMD.OPEN, 0, 0x100, SEALED_OVERHEAD - 1)).toEqual([status(E.BAD_LENGTH), 0]);
    expect(cmd(CMD.SEAL, 0, 0x10000 - 40, 4)).toEqual([status(E.DMA_ERROR), 0]);
    expect(cmd(7, 0, 0x100, 4)).toEqual([status(E.BAD_COMMAND), 0]);
    // a's own packet does not open with a's key: that direction belongs to b.
    expect(cmd(CMD.OPEN, 0, 0x100, sealed.length)).toEqual([status(E.REFUSED, 'authentication failed'), 0]);
    expect(hex(mem)).toBe(hex(before));
  });

  it("opens what the peer sealed, once: a replay is refused; slots take only the owner's VE key", () => {
    const keys = keysFor('a', 'b', 'c');
    const { mem, dev, cmd } = setup();
    dev.load(0, session(keys, 'a', 'b'));
    const fromB = session(keys, 'b', 'a').seal(enc('to a')) as Uint8Array;
    mem.set(fromB, 0x200);
    expect(cmd(CMD.OPEN, 0, 0x200, fromB.length)).toEqual([status(E.OK), 4]);
    expect(mem.slice(0x200, 0x204)).toEqual(enc('to a'));
    mem.set(fromB, 0x200);
    expect(cmd(CMD.OPEN, 0, 0x200, fromB.length)).toEqual([status(E.REFUSED, 'replayed'), 0]);
    expect(() => dev.load(1, session(keys, 'b', 'c'))).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: "crypto: a session on b's key in a's device",
      }),
    );
    const m = triple('m.example');
    const real = new StreamSession({
      backend,
      random: seededRandom('r'),
      local: realKey({ name: m.name, clef: m.clef, key: m.key }),
      peer: vePeer(keys, 'b'),
    });
    expect(() => dev.load(1, real)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => dev.load(8, session(keys, 'a', 'c'))).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    dev.clear(0);
    expect(dev.loaded(0)).toBe(false);
  });

  it('is off by default; a machine fitted with it keeps every other port, and snapshots hold no key', () => {
    const keys = keysFor('a', 'b');
    const plain = createMachine({ clock: () => T0 });
    expect(plain.crypto).toBeUndefined();
    expect(plain.io.read(CRY)).toBe(0xffffffff);
    const m = createMachine({ clock: () => T0, crypto: { owner: 'a' } });
    expect(m.io.devices().map((d) => d.name)).toEqual([...plain.io.devices().map((d) => d.name), 'crypto']);
    const s = session(keys, 'a', 'b');
    m.crypto!.load(0, s);
    m.io.write(CRY + P.ADDR, 0x1234);
    const snap = m.save();
    const secret = keys.get('a')!.key.open;
    const contains = (hay: Uint8Array, n: Uint8Array) => hex(hay).includes(hex(n));
    expect(contains(snap, secret)).toBe(false);
    m.io.write(CRY + P.ADDR, 0);
    m.restore(snap);
    expect(m.io.read(CRY + P.ADDR)).toBe(0x1234);
    expect(m.crypto!.loaded(0)).toBe(true);
    expect(() => m.attachCrypto({ owner: 'a' })).toThrow(RangeError);
  });
});

// --- guests using the device -----------------------------------------------------------------------

function dataLines(frames: readonly Uint8Array[]): string {
  const lines: string[] = [];
  for (const f of frames) {
    lines.push(`        .dword ${f.length}`);
    const padded = new Uint8Array(Math.ceil(f.length / 4) * 4);
    padded.set(f);
    for (let i = 0; i < padded.length; i += 16)
      lines.push(`        .byte ${Array.from(padded.subarray(i, i + 16)).join(', ')}`);
  }
  lines.push('        .dword 0');
  return lines.join('\n');
}

/**
 * Claim 39's sender: for each frame (`dst src 0x88B7 type[2] payload`, in its ROM), copies it to
 * its transmit buffer, seals bytes 14.. in place with key slot `slot`, records STATUS and
 * RESULT_LEN, and transmits the sealed frame (`T`) or, on an error, nothing (`E`).
 */
function sealingSenderRom(frames: readonly Uint8Array[], slot: number): Uint8Array {
  return guestRom({
    main: `
main:   mov esi, frames
        mov ebp, ${RESULTS + 4}
        mov ebx, 0
.next:  ld ecx, [esi]
        cmp ecx, 0
        jz .done
        add esi, 4
        mov edi, 0x10000
        mov edx, ecx
        add ecx, 3
        shr ecx, 2
.copy:  ld eax, [esi]
        st [edi], eax
        add esi, 4
        add edi, 4
        dec ecx
        jnz .copy
        mov eax, 0x10000 + 14
        out ${CRY + P.ADDR}, eax
        mov eax, edx
        sub eax, 14
        out ${CRY + P.LEN}, eax
        mov eax, ${slot}
        out ${CRY + P.SLOT}, eax
        mov eax, ${CMD.SEAL}
        out ${CRY + P.COMMAND}, eax
        in eax, ${CRY + P.STATUS}
        st [ebp], eax
        in ecx, ${CRY + P.RESULT_LEN}
        st [ebp + 4], ecx
        add ebp, 8
        add ebx, 1
        st [${RESULTS}], ebx
        and eax, 0xff
        cmp eax, 0
        jnz .fail
        add ecx, 14
        mov eax, 0x10000
        out ${NIC + 4}, eax
        out ${NIC + 5}, ecx
        mov eax, 3
        out ${NIC + 6}, eax
        PUTC 'T'
        jmp .next
.fail:  PUTC 'E'
        jmp .next
.done:  PUTC '.'
        hlt
        jmp .done
        .align 4
frames:
${dataLines(frames)}
`,
  });
}

/**
 * Claim 39's receiver: receiverRom's log, and frame i opened in place after its 14-byte header
 * with key slot `slots[i]`; STATUS and RESULT_LEN recorded, the logged length shortened to the
 * plaintext's on success (a refused frame stays logged as it came).
 */
function openingReceiverRom(slots: readonly number[]): Uint8Array {
  return guestRom({
    main: `
main:   ${NIC_IRQ_SETUP}
        mov edi, ${LOG + 4}
        mov ebp, ${RESULTS + 4}
        mov ebx, 0
        st [${LOG}], ebx
.poll:  cli
        in eax, ${NIC + 3}
        cmp eax, 0
        jz .wait
        in edx, ${NIC + 2}
        st [edi], edx
        add edi, 4
        out ${NIC + 4}, edi
        mov eax, 1
        out ${NIC + 6}, eax
        mov eax, edi
        add eax, 14
        out ${CRY + P.ADDR}, eax
        mov eax, edx
        sub eax, 14
        out ${CRY + P.LEN}, eax
        mov eax, ebx
        shl eax, 2
        add eax, slots
        ld eax, [eax]
        out ${CRY + P.SLOT}, eax
        mov eax, ${CMD.OPEN}
        out ${CRY + P.COMMAND}, eax
        in eax, ${CRY + P.STATUS}
        st [ebp], eax
        in ecx, ${CRY + P.RESULT_LEN}
        st [ebp + 4], ecx
        add ebp, 8
        and eax, 0xff
        cmp eax, 0
        jnz .keep
        mov edx, ecx
        add edx, 14
        st [edi - 4], edx
.keep:  add edx, 3
        shr edx, 2
        shl edx, 2
        add edi, edx
        add ebx, 1
        st [${LOG}], ebx
        st [${RESULTS}], ebx
        PUTC 'R'
        jmp .poll
.wait:  sti
        hlt
        jmp .poll
nic_irq:
        out 0x24, eax
        iret
        .align 4
slots:  .dword ${slots.join(', ')}
`,
  });
}

/** The guest's recorded [STATUS, RESULT_LEN] pairs. */
function results(ve: VirtualEnvironment): [number, number][] {
  const ram = ve.vm.phys.ram;
  const v = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const n = v.getUint32(RESULTS, true);
  return Array.from({ length: n }, (_, i) => [
    v.getUint32(RESULTS + 4 + 8 * i, true),
    v.getUint32(RESULTS + 8 + 8 * i, true),
  ]);
}

/** A frame as claim 39's sender writes it before sealing: `dst src 0x88B7 type[2] payload`. */
function inner(dst: Uint8Array, src: Uint8Array, type: number, payload: string): Uint8Array {
  const p = enc(payload);
  return ether(dst, src, ETHERTYPE_SEALED, Uint8Array.of(type >>> 8, type & 0xff, ...p));
}

function world() {
  const events: DtmEvent[] = [];
  const vmm = new Vmm({ clock: () => T0, ramBytes: 32 << 20 });
  const spool = memorySpool();
  const puts: Uint8Array[] = [];
  const tapped = {
    ...spool,
    put: (id: number, data: Uint8Array) => {
      puts.push(data.slice());
      spool.put(id, data);
    },
    delete: (id: number) => spool.delete(id),
    get: (id: number) => spool.get(id),
    has: (id: number) => spool.has(id),
    ids: () => spool.ids(),
    get count() {
      return spool.count;
    },
    get freeBytes() {
      return spool.freeBytes;
    },
  };
  const dtm = new Dtm({
    name: 'hub',
    id: 1,
    core: vmm.core,
    spool: tapped,
    clock: () => T0,
    onEvent: (e) => events.push(e),
  });
  vmm.addService(() => dtm.service());
  return { vmm, dtm, events, puts };
}

const SECRET = 'PLAINTEXT-MARKER sealed by the guest itself';
const MARK = enc('PLAINTEXT-MARKER');
const has = (hay: Uint8Array, n: Uint8Array) => hex(hay).includes(hex(n));

describe('crypto device (claim 39): guests seal and open their own streams', () => {
  it('a round trip between two VEs with exact bytes; the DTM and its spool carry only ciphertext', () => {
    const w = world();
    const keys = keysFor('a', 'b');
    const macs = { a: veMac(1), b: veMac(2) };
    const frames = [
      inner(macs.b, macs.a, ETHERTYPE_DATAGRAM, SECRET),
      inner(macs.b, macs.a, 0x0800, 'PLAINTEXT-MARKER second'),
    ];
    const a = netVe(w.vmm, 'a', sealingSenderRom(frames, 0));
    const b = netVe(w.vmm, 'b', openingReceiverRom([2, 2]));
    a.vm.attachCrypto({ owner: 'a' }).load(0, session(keys, 'a', 'b'));
    b.vm.attachCrypto({ owner: 'b' }).load(2, session(keys, 'b', 'a'));
    const dtmSaw: Uint8Array[] = [];
    a.vm.nic.on('transmit', (f) => dtmSaw.push(f));
    // Held for confirmation, so the spool keeps them (as ciphertext) until they are approved.
    w.dtm.attach({ name: 'a', nic: a.vm.nic, confirm: 'all' });
    w.dtm.attach({ name: 'b', nic: b.vm.nic });
    w.vmm.run(a.id, 200_000);
    for (const t of w.dtm.transfers('held')) w.dtm.approve(t.id);
    w.vmm.run(b.id, 200_000);
    expect(consoleText(a)).toBe('TT.');
    expect(results(a)).toEqual([
      [status(E.OK), frames[0]!.length - 14 + SEALED_OVERHEAD],
      [status(E.OK), frames[1]!.length - 14 + SEALED_OVERHEAD],
    ]);
    expect(results(b)).toEqual([
      [status(E.OK), frames[0]!.length - 14],
      [status(E.OK), frames[1]!.length - 14],
    ]);
    expect(received(b)).toEqual(frames);
    expect(dtmSaw.map((f) => f.length)).toEqual(frames.map((f) => f.length + SEALED_OVERHEAD));
    expect(dtmSaw.some((f) => has(f, MARK)) || w.puts.some((p) => has(p, MARK))).toBe(false);
    expect(w.puts.length).toBeGreaterThan(0);
  });

  it("interoperates: what the guest sealed, filter 94 opens for a VE that never sees a key (claim 37's receiver)", () => {
    const w = world();
    const keys = keysFor('a', 'b');
    const macs = { a: veMac(1), b: veMac(2) };
    const a = netVe(w.vmm, 'a', sealingSenderRom([inner(macs.b, macs.a, ETHERTYPE_DATAGRAM, SECRET)], 0));
    const b = netVe(w.vmm, 'b', receiverRom());
    a.vm.attachCrypto({ owner: 'a' }).load(0, session(keys, 'a', 'b'));
    const stream = createStream({
      backend,
      random: seededRandom('b'),
      local: veKey(keys, 'b'),
      peers: [{ remote: vePeer(keys, 'a') }],
    });
    w.dtm.attach({ name: 'a', nic: a.vm.nic });
    w.dtm.attach({ name: 'b', nic: streamFilter(b.vm.nic, { stream, ve: 'b' }) });
    w.vmm.run(a.id, 200_000);
    w.vmm.run(b.id, 200_000);
    expect(received(b)).toEqual([ether(macs.b, macs.a, ETHERTYPE_DATAGRAM, SECRET)]);
  });

  it("a guest using a slot it does not have gets NO_KEY, and another pair's frame is REFUSED: never another VE's data", () => {
    const w = world();
    const keys = keysFor('a', 'b', 'c');
    const macs = { a: veMac(1), b: veMac(2), c: veMac(3) };
    // b seals for c with its slot 1; c opens with its slot 0.
    const toC = inner(macs.c, macs.b, ETHERTYPE_DATAGRAM, SECRET);
    // a tries slot 1 (b's number for its session with c: a's device has nothing there), slot 200,
    // then its own slot 0 (its session with b).
    const a = netVe(w.vmm, 'a', openingReceiverRom([1, 200, 0]));
    const b = netVe(w.vmm, 'b', sealingSenderRom([toC], 1));
    const c = netVe(w.vmm, 'c', openingReceiverRom([0]));
    const bDev = b.vm.attachCrypto({ owner: 'b' });
    bDev.load(0, session(keys, 'b', 'a'));
    bDev.load(1, session(keys, 'b', 'c'));
    c.vm.attachCrypto({ owner: 'c' }).load(0, session(keys, 'c', 'b'));
    a.vm.attachCrypto({ owner: 'a' }).load(0, session(keys, 'a', 'b'));
    const sent: Uint8Array[] = [];
    b.vm.nic.on('transmit', (f) => sent.push(f));
    w.dtm.attach({ name: 'b', nic: b.vm.nic });
    w.dtm.attach({ name: 'c', nic: c.vm.nic });
    w.dtm.attach({ name: 'a', nic: a.vm.nic });
    w.vmm.run(b.id, 200_000);
    w.vmm.run(c.id, 200_000);
    expect(received(c)).toEqual([toC]);
    // A compromised path mirrors the sealed frame to a, three times.
    for (let i = 0; i < 3; i++) a.vm.nic.receive(sent[0]!);
    w.vmm.run(a.id, 200_000);
    expect(results(a)).toEqual([
      [status(E.NO_KEY), 0],
      [status(E.NO_KEY), 0],
      [status(E.REFUSED, 'authentication failed'), 0],
    ]);
    expect(received(a)).toEqual([sent[0], sent[0], sent[0]]);
    expect(has(a.vm.phys.ram, MARK)).toBe(false);
  });
});
