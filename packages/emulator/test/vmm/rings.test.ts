/**
 * Ring compression (issue 4): the SDT rows of Figure 7 built through the real code path, gates
 * (SDT-13), transitions between compressed rings that trap (SDT-11), the lazy switch (SDT-15), the
 * outward guard (SDT-16) and ATK-19 with it turned off.
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from '../../src/machine.js';
import type { VmmEvent } from '../../src/vmm/ve.js';
import { type VeProfile, Vmm } from '../../src/vmm/vmm.js';
import { type GuestSource, guestRom } from './guest.js';

const RAM = 1 << 20;
const BUDGET = 200_000;

function bare(src: GuestSource): { transcript: string; executed: number } {
  const m = createMachine({ rom: guestRom(src), clock: () => 0, ramBytes: RAM });
  const r = m.run(BUDGET);
  return { transcript: m.console.transcript(), executed: r.executed };
}

function virtual(src: GuestSource, profile: Partial<VeProfile> = {}) {
  const events: VmmEvent[] = [];
  const vmm = new Vmm({ clock: () => 0, ramBytes: 8 << 20, onEvent: (e) => events.push(e) });
  const ve = vmm.createVe({ name: 'test', memoryBytes: RAM, rom: guestRom(src), ...profile });
  const r = vmm.run(ve.id, BUDGET);
  return { ve, r, events, transcript: ve.vm.console.transcript() };
}

const switches = (events: VmmEvent[]): string[] =>
  events.flatMap((e) => (e.kind === 'sdt-switch' ? [`${e.from}->${e.to}`] : []));

describe('Figure 7 (TB-5) and gates (SDT-13), through the real code path', () => {
  // Selectors 0x78.. (GDT entries 15..19): the five segments of Figure 7, virtual rings [0,3,1,2,3];
  // entries 20, 21: call gates of virtual DPL 1 and 2.
  const src: GuestSource = {
    gdt: [
      '        SEGMENT 0x10000, 0xFFF, 0x2, 0',
      '        SEGMENT 0x11000, 0xFFF, 0x2, 3',
      '        SEGMENT 0x12000, 0xFFF, 0x2, 1',
      '        SEGMENT 0x13000, 0xFFF, 0x2, 2',
      '        SEGMENT 0x14000, 0xFFF, 0x2, 3',
      '        GATE r0_entry, 0x08, 0, 1',
      '        GATE r0_entry, 0x08, 0, 2',
    ].join('\n'),
    main: 'main:\n        cli\n        hlt',
  };

  it('the guest loads the VEDT [0,3,1,2,3] with LGDT; P2 builds SDT0..SDT3 with the rows of Figure 7', () => {
    const { ve, r } = virtual(src, { sdtPolicy: 'P2' });
    expect(r.reason).toBe('halt');
    const rows = [0, 1, 2, 3].map((k) => ve.sdtRings(k)!.slice(15, 20));
    expect(rows).toEqual([
      [2, 2, 2, 2, 2],
      [2, 3, 3, 3, 3],
      [2, 3, 0, 3, 3],
      [2, 3, 0, 0, 3],
    ]);
    // The rest of each entry is the VEDT's: base, limit, type, present (data segments).
    expect(ve.sdtEntry(3, 17)).toEqual([
      0x12000,
      (0xfff | (0x2 << 24) | (1 << 28) | (0 << 29) | (1 << 31)) >>> 0,
    ]);
  });

  it('a gate of virtual DPL 1 gets DPL 0 in SDT2 and DPL 3 in SDT1; one of DPL 2 gets 0 in SDT3 (SDT-13)', () => {
    const { ve } = virtual(src, { sdtPolicy: 'P2' });
    expect([1, 2, 3].map((k) => ve.sdtRings(k)!.slice(20, 22))).toEqual([
      [3, 3],
      [0, 3],
      [0, 0],
    ]);
  });

  it('P1 holds one SDT (the running ring), P3 only those of rings visited, P2 all four', () => {
    expect(virtual(src, { sdtPolicy: 'P1' }).ve.stats().sdtsHeld).toEqual([0]);
    expect(virtual(src, { sdtPolicy: 'P3' }).ve.stats().sdtsHeld).toEqual([0]);
    expect(virtual(src, { sdtPolicy: 'P2' }).ve.stats().sdtsHeld).toEqual([0, 1, 2, 3]);
  });
});

describe('transitions between compressed rings (SDT-11, SDT-16, ATK-19)', () => {
  // Ring 3 calls ring 1 through a DPL-3 gate; ring 1 returns with RETF; ring 3 then loads the
  // ring-1 data segment 0x70 with RPL 3: the bare machine raises #GP(0x70) ("!0D"). If ring 3 got
  // the segment, it calls ring 0 through the gate at 0x60, which prints "L" (a leak).
  const src: GuestSource = {
    main: `
main:   TO_RING3 ring3
ring3:     callf 0x50:0
        mov eax, 0x73
        mov ds, eax
        ld eax, [0]
        callf 0x60:0
r1_entry:
        push eax                    ; the ring-1 stack page is mapped before the RETF reads it
        pop eax
        retf
r0_entry:
        PUTC 'L'
        cli
        hlt
r2_entry:
        hlt
`,
  };

  it('on the bare machine ring 3 cannot load the ring-1 segment', () => {
    expect(bare(src).transcript).toBe('!0D\n');
  });

  it('in a VE: the gate call into ring 1 and the RETF out of it trap; ring 3 gets the same #GP', () => {
    const b = bare(src);
    const { ve, r, events, transcript } = virtual(src);
    expect(transcript).toBe('!0D\n');
    expect(r.executed).toBe(b.executed);
    const s = ve.stats();
    // IRET 0 -> 3 meets ring-3 code of DPL 2 in SDT0 (#GP), CALLF 3 -> 1 code not present in SDT3
    // and RETF 1 -> 3 code not present in SDT1 (the SDT-16 guard): each traps, the virtual CPU does
    // it, the VMM switches SDT.
    expect(s.trapsByCause['#GP iret']).toBe(1);
    expect(s.trapsByCause['#NP callf']).toBe(1);
    expect(s.trapsByCause['#NP retf']).toBe(1);
    expect(s.ringChanges).toEqual({ '0->3': 1, '3->1': 1, '1->3': 1, '3->0': 1 });
    expect(switches(events)).toEqual(['0->3', '3->1', '1->3']);
    expect(events.filter((e) => e.kind === 'reflect')).toEqual([
      { kind: 'reflect', ve: ve.id, vector: 13, errorCode: 0x70 },
    ]);
  });

  it('ATK-19: with the outward guard off, RETF from ring 1 to ring 3 stays native and ring 3 keeps SDT1', () => {
    const { ve, transcript, events } = virtual(src, { outwardGuard: false });
    expect(transcript).toBe('L');
    expect(ve.stats().trapsByCause['#NP retf']).toBeUndefined();
    expect(switches(events)).toEqual(['0->3', '3->1']);
  });
});

describe('a system call into a compressed ring', () => {
  // Ring 3 raises INT 20 through a DPL-3 trap gate to ring-1 code; the handler loads the ring-1
  // data segment and halts (#GP at ring 1, "!0D"). Every INT traps (TB-3 rule 6); the VMM must
  // switch to SDT1 before the handler runs natively, else its MOV DS meets ring-1 data at real
  // ring 0 (SDT3) and traps too.
  const src: GuestSource = {
    main: `
main:   mov eax, r1_int
        st [0x2000 + 20 * 8], eax
        mov eax, 0x18 | (0xF << 24) | (3 << 29) | (1 << 31)
        st [0x2000 + 20 * 8 + 4], eax
        TO_RING3 ring3
ring3:  int 20
        hlt
r1_int: mov eax, 0x21
        mov ds, eax
        hlt
`,
  };

  it('runs the handler under SDT1 from the INT on, with the bare transcript', () => {
    const b = bare(src);
    expect(b.transcript).toBe('!0D\n');
    const { ve, r, events, transcript } = virtual(src, { sdtPolicy: 'P2' });
    expect([transcript, r.executed]).toEqual([b.transcript, b.executed]);
    expect(switches(events)).toEqual(['0->3', '3->1']);
    // After the INT: the fill of the handler's page (its first fetch), then its HLT: the MOV DS
    // ran natively.
    const traps = events.flatMap((e) => (e.kind === 'trap' ? [e.cause] : []));
    const at = traps.indexOf('INT 0x14');
    expect(traps.slice(at, at + 3)).toEqual(['INT 0x14', '#PF mov', '#GP hlt']);
    expect(ve.stats().trapsByCause['INT 0x14']).toBe(1);
  });
});

describe('the lazy switch to SDT0 (SDT-15)', () => {
  // Ring 3 -> ring 2 (gate 0x58, traps: ring 2 is compressed) -> ring 0 (gate 0x68, native: a real
  // 3 -> 2 call). Ring 0, still under SDT2, loads the ring-1 data segment (real ring 0 in SDT2):
  // a fault the VM manager resolves by switching to SDT0. Its RETF back into ring-2 code (not
  // present in SDT0) traps and switches back to SDT2; the second native call prints "B".
  const src: GuestSource = {
    main: `
main:   TO_RING3 ring3
ring3:     callf 0x58:0
        hlt
r2_entry:
        callf 0x68:0
        callf 0x68:0
        hlt
r0_entry:
        mov eax, 0x10
        mov ds, eax
        ld eax, [0x5000]
        inc eax
        st [0x5000], eax
        cmp eax, 1
        jnz .second
        mov eax, 0x20
        mov ds, eax
        ld ebx, [0x4000]
        mov eax, 0x10
        mov ds, eax
        PUTC 'A'
        retf
.second:
        PUTC 'B'
        cli
        hlt
r1_entry:
        hlt
`,
  };

  it('gives the bare transcript with the switches 0->3, 3->2, 2->0 (lazy), 0->2', () => {
    expect(bare(src).transcript).toBe('AB');
    const { transcript, events, ve } = virtual(src);
    expect(transcript).toBe('AB');
    expect(switches(events)).toEqual(['0->3', '3->2', '2->0', '0->2']);
    // The traps after ring 3 was entered, but for the console's OUTs: ring 3 -> 2 through the gate
    // (ring-2 code is not present in SDT3); each 2 -> 0 gate call is native, but first touches a
    // stack page the shadow tables of SDT2 do not map yet (#PF); the lazy switch; the return into
    // ring 2 (not present in SDT0).
    const from = events.findIndex((e) => e.kind === 'sdt-switch');
    const traps = events
      .slice(from)
      .flatMap((e) => (e.kind === 'trap' && !e.cause.endsWith('out') ? [`${e.ring}:${e.cause}`] : []));
    expect(traps).toEqual([
      '3:#NP callf',
      '2:#PF callf',
      '0:#PF ld',
      '0:#GP mov',
      '0:#NP retf',
      '2:#PF callf',
      '0:#GP cli',
      '0:#GP hlt',
    ]);
    expect(ve.stats().ringChanges).toEqual({ '0->3': 1, '3->2': 1, '2->0': 2, '0->2': 1 });
  });
});
