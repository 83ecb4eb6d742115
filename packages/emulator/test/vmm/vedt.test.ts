/**
 * VEDT substitution, the third embodiment (VEDT-1..10): read masking, both write methods and the
 * automatic choice, static and current-ring substitution, and ATK-20: the method-2 window with the
 * VEDT-9 guard off lets a raw virtual ring 0 reach real ring 0.
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from '../../src/machine.js';
import type { VedtOptions, VmmEvent } from '../../src/vmm/ve.js';
import { type VeProfile, Vmm } from '../../src/vmm/vmm.js';
import { type GuestSource, guestRom } from './guest.js';

const RAM = 1 << 20;
const BUDGET = 500_000;

function bare(src: GuestSource) {
  const m = createMachine({ rom: guestRom(src), clock: () => 0, ramBytes: RAM });
  const r = m.run(BUDGET);
  return { r, transcript: m.console.transcript(), ram: m.phys.ram };
}

function virtual(src: GuestSource, vedt: VedtOptions, profile: Partial<VeProfile> = {}) {
  const events: VmmEvent[] = [];
  const vmm = new Vmm({ clock: () => 0, ramBytes: 8 << 20, onEvent: (e) => events.push(e) });
  const ve = vmm.createVe({ name: 'vedt', memoryBytes: RAM, rom: guestRom(src), vedt, ...profile });
  const r = vmm.run(ve.id, BUDGET);
  return { vmm, ve, r, events, transcript: ve.vm.console.transcript() };
}

const CURRENT = (method: VedtOptions['method']): VedtOptions => ({
  mode: 'current-ring',
  method,
  guard: true,
});

describe('read masking and the guest view (VEDT-3, VEDT-7)', () => {
  // Ring 0 writes a descriptor of virtual ring 1 into entry 15, reads both dwords back and prints
  // "=" if they are what it wrote, "X" otherwise; then reads entry 1 (ring-0 code) the same way.
  const src: GuestSource = {
    main: `
main:   mov eax, 0x12345000
        st [0x1078], eax
        mov eax, 0xFFF | (0x2 << 24) | (1 << 28) | (1 << 29) | (1 << 31)
        st [0x107C], eax
        ld ebx, [0x1078]
        cmp ebx, 0x12345000
        jnz .bad
        ld ebx, [0x107C]
        cmp ebx, eax
        jnz .bad
        ld ebx, [0x100C]
        cmp ebx, 0xFFFFF | (1 << 23) | (0xA << 24) | (1 << 28) | (1 << 31)
        jnz .bad
        PUTC '='
        cli
        hlt
.bad:   PUTC 'X'
        cli
        hlt
`,
    gdt: '        .dword 0, 0',
  };

  it.each(['trap', 'overwrite'] as const)(
    'method %s: the guest reads back what it wrote, never the substitute',
    (method) => {
      expect(bare(src).transcript).toBe('=');
      const { ve, transcript } = virtual(src, CURRENT(method));
      expect(transcript).toBe('=');
      const s = ve.stats().vedt!;
      expect(s.readTraps).toBeGreaterThanOrEqual(method === 'trap' ? 3 : 0);
      // In memory, the processor-visible entry 15 holds real ring 2 (SDT0's rule for ring 1 data)
      // and entry 1 (virtual ring 0 code) real ring 2; the guest's RAM view shows its own values.
      const mem = new DataView(ve.vm.phys.ram.buffer, ve.vm.phys.ram.byteOffset);
      expect([(mem.getUint32(0x107c, true) >>> 29) & 3, (mem.getUint32(0x100c, true) >>> 29) & 3]).toEqual([
        2, 2,
      ]);
      const guest = new DataView(ve.guestRam().buffer);
      expect([
        (guest.getUint32(0x107c, true) >>> 29) & 3,
        (guest.getUint32(0x100c, true) >>> 29) & 3,
      ]).toEqual([1, 0]);
    },
  );
});

describe('write methods (VEDT-4, VEDT-5, VEDT-6)', () => {
  // Ring 0 rewrites entries 15..22 (two dwords each) 16 times: bursts of writes, no read-back.
  const burst: GuestSource = {
    main: `
main:   mov ecx, 16
.round: mov edx, 0x1078
.entry: mov eax, ecx
        shl eax, 12
        st [edx], eax
        mov eax, 0xFFF | (0x2 << 24) | (1 << 28) | (3 << 29) | (1 << 31)
        st [edx + 4], eax
        add edx, 8
        cmp edx, 0x10B8
        jnz .entry
        in eax, 0x78                ; any trap ends a burst (and closes a method-2 window)
        dec ecx
        jnz .round
        PUTC 'W'
        cli
        hlt
`,
    gdt: Array.from({ length: 8 }, () => '        .dword 0, 0').join('\n'),
  };

  it('method 1 traps every write; method 2 traps once per burst and overwrites at the next trap', () => {
    const b = bare(burst);
    const one = virtual(burst, CURRENT('trap'));
    const two = virtual(burst, CURRENT('overwrite'));
    for (const v of [one, two]) {
      expect(v.transcript).toBe('W');
      expect(v.r).toEqual(b.r);
      expect(Buffer.from(v.ve.guestRam()).equals(Buffer.from(b.ram))).toBe(true);
    }
    expect(one.ve.stats().vedt!.writeTraps).toBe(16 * 8 * 2);
    expect(two.ve.stats().vedt!.opens).toBe(16);
    expect(two.ve.stats().vedt!.overwrites).toBe(16 * 8);
  });

  it('auto starts with method 1 and moves to method 2 for bursts', () => {
    const { ve, events, transcript } = virtual(burst, CURRENT('auto'));
    expect(transcript).toBe('W');
    expect(
      events.filter((e) => e.kind === 'vedt-method').map((e) => (e.kind === 'vedt-method' ? e.method : '')),
    ).toEqual(['overwrite']);
    expect(ve.stats().vedt!.method).toBe('overwrite');
  });
});

describe('substitution modes (VEDT-8)', () => {
  const twoRing: GuestSource = {
    twoRing: true,
    main: `
main:   TO_RING3 ring3
ring3:  callf 0x60:0
r0_entry:
        mov eax, 0x10
        mov ds, eax
        PUTC 'T'
        cli
        hlt
r1_entry:
r2_entry:
        hlt
`,
  };

  it('static substitution runs a two-ring guest as current-ring does, with no rewrite at ring changes', () => {
    expect(bare(twoRing).transcript).toBe('T');
    const st = virtual(twoRing, { mode: 'static', method: 'trap', guard: true });
    const cur = virtual(twoRing, CURRENT('trap'));
    expect([st.transcript, cur.transcript]).toEqual(['T', 'T']);
    expect(st.ve.stats().vedt!.rewrites).toBe(0);
    expect(cur.ve.stats().vedt!.rewrites).toBeGreaterThan(0);
    expect(st.events.some((e) => e.kind === 'warning')).toBe(false);
  });

  it('static substitution of a four-ring VEDT logs the loss of isolation between rings 1-3', () => {
    const four: GuestSource = {
      main: 'main:\n        cli\n        hlt',
    };
    const { events } = virtual(four, { mode: 'static', method: 'trap', guard: true });
    expect(events.filter((e) => e.kind === 'warning').length).toBe(1);
  });
});

describe('ATK-20: the method-2 window (VEDT-9)', () => {
  // Ring 3 calls the kernel (gate 0x60); the kernel writes, directly (method 2), a call gate of
  // DPL 3 in entry 15 to a code segment of virtual ring 0 in entry 16, and returns. Ring 3 calls
  // through the new gate at once, before any trap. The new code reads CR3 and prints "S".
  const src: GuestSource = {
    main: `
main:   TO_RING3 ring3
ring3:  callf 0x60:0
        callf 0x78:0
        hlt
r0_entry:
        mov eax, 0x10
        mov ds, eax
        mov eax, evil
        st [0x1078], eax
        mov eax, 0x80 | (0xC << 24) | (3 << 29) | (1 << 31)
        st [0x107C], eax
        mov eax, 0
        st [0x1080], eax
        mov eax, 0xFFFFF | (1 << 23) | (0xA << 24) | (1 << 28) | (1 << 31)
        st [0x1084], eax
        retf
evil:   mov eax, cr3
        out 0x3F8, eax              ; at real ring 0 this reaches the real machine's console
        mov eax, 0x10
        mov ds, eax
        PUTC 'S'
        cli
        hlt
r1_entry:
r2_entry:
        hlt
`,
    gdt: '        .dword 0, 0\n        .dword 0, 0',
  };

  it('with the guard, the call traps, the entry is overwritten and the code runs in real ring 2', () => {
    const b = bare(src);
    expect(b.transcript).toBe('\0S');
    const { ve, r, transcript, vmm } = virtual(src, CURRENT('overwrite'));
    expect(transcript).toBe('\0S');
    expect(r).toEqual(b.r);
    expect(ve.stats().alarm).toBeUndefined();
    expect(ve.stats().vedt!.opens).toBeGreaterThan(0);
    expect(vmm.machine.console.transcript()).toBe('');
  });

  it('without it, the raw "0" is real ring 0: guest code runs there, the alarm stops the VE', () => {
    const { ve, r, events, transcript, vmm } = virtual(src, {
      mode: 'current-ring',
      method: 'overwrite',
      guard: false,
    });
    expect(r.reason).toBe('shutdown');
    expect(ve.stats().alarm).toBe('CPL0 inside VE');
    expect(events.filter((e) => e.kind === 'alarm').length).toBe(1);
    expect(transcript).toBe('');
    // The escape: the guest's OUTs went to the real machine's console (the real CR3's low byte,
    // then "S"), and its CLI and HLT ran natively: the real CPU halted in the VE's code.
    const real = vmm.machine.console.transcript();
    expect([real.length, real[1]]).toEqual([2, 'S']);
  });
});
