/**
 * The SDTs follow the guest's tables (SDT-21): a VEDT entry the guest changes is rewritten in every
 * SDT held; a new GDT (LGDT) is a relocation that regenerates them; an LDT is shadowed like the GDT
 * (SDT-5).
 */
import { describe, expect, it } from 'vitest';
import { createMachine } from '../../src/machine.js';
import type { VmmEvent } from '../../src/vmm/ve.js';
import { type VeProfile, Vmm } from '../../src/vmm/vmm.js';
import { type GuestSource, guestRom, pagingOn } from './guest.js';

const RAM = 1 << 20;

function both(src: GuestSource, profile: Partial<VeProfile> = {}) {
  const m = createMachine({ rom: guestRom(src), clock: () => 0, ramBytes: RAM });
  const rb = m.run(500_000);
  const events: VmmEvent[] = [];
  const vmm = new Vmm({ clock: () => 0, ramBytes: 8 << 20, onEvent: (e) => events.push(e) });
  const ve = vmm.createVe({ name: 't', memoryBytes: RAM, rom: guestRom(src), ...profile });
  const rv = vmm.run(ve.id, 500_000);
  expect(rv).toEqual(rb);
  expect(ve.vm.console.transcript()).toBe(m.console.transcript());
  return { ve, events, transcript: m.console.transcript() };
}

describe('VEDT changes and relocation', () => {
  it('a descriptor the guest rewrites is updated in every SDT held (P2), and the change is seen', () => {
    // Entry 15 starts as ring-3 data; ring 0 makes it ring-1 data, then ring 3 tries to load it.
    const { ve, events, transcript } = both(
      {
        gdt: '        SEGMENT 0x10000, 0xFFF, 0x2, 3',
        main: `
main:   mov eax, 0xFFF | (0x2 << 24) | (1 << 28) | (1 << 29) | (1 << 31)
        st [0x107C], eax
        TO_RING3 ring3
ring3:  mov eax, 0x7B
        mov ds, eax
`,
      },
      { sdtPolicy: 'P2' },
    );
    expect(transcript).toBe('!0D\n');
    expect([0, 1, 2, 3].map((k) => ve.sdtRings(k)![15])).toEqual([2, 3, 0, 0]);
    expect(events.some((e) => e.kind === 'vedt-change' && e.entries.includes(15))).toBe(true);
    expect(ve.stats().gdt.entryUpdates).toBeGreaterThanOrEqual(4);
  });

  it('a new GDT (LGDT of a copy elsewhere) regenerates the SDTs held (a relocation)', () => {
    // Copy the GDT from 0x1000 to 0x6000 with entry 15 changed, and load it.
    const { ve, transcript } = both(
      {
        gdt: '        SEGMENT 0x10000, 0xFFF, 0x2, 3',
        main: `
main:   mov esi, 0x1000
        mov edi, 0x6000
        mov ecx, 32
.copy:  ld eax, [esi]
        st [edi], eax
        add esi, 4
        add edi, 4
        dec ecx
        jnz .copy
        mov eax, 0xFFF | (0x2 << 24) | (1 << 28) | (2 << 29) | (1 << 31)
        st [0x607C], eax
        lgdt [newgdtr]
        PUTC 'R'
        cli
        hlt
newgdtr: .word 16 * 8 - 1
        .dword 0x6000
`,
      },
      { sdtPolicy: 'P2' },
    );
    expect(transcript).toBe('R');
    expect(ve.stats().gdt.relocations).toBeGreaterThanOrEqual(1);
    // Entry 15 of the new table is ring-2 data: R_k(2) for k = 0..3.
    expect([0, 1, 2, 3].map((k) => ve.sdtRings(k)![15])).toEqual([2, 3, 3, 0]);
    expect(ve.sdtEntry(3, 15)![0]).toBe(0x10000);
  });
});

describe('a system call whose frame lands on the guest’s tables', () => {
  it('an INT frame pushed over GDT entries reaches the SDT before native code loads them', () => {
    // Vector 20: a DPL-3 trap gate to \`sys\`; the ring-0 stack ends at 0x1090, inside the GDT, so
    // the frame (EIP, CS, EFLAGS, ESP, SS) covers 0x107C..0x108F: dword 1 of entry 0x78 becomes
    // the return EIP (0xFFFF....: a present, DPL-3, conforming readable code segment). The VMM
    // must compare the tables after the INT (its frame lies in a tracked page; nothing else traps
    // before the load) for the second MOV DS to load that code segment, whose store faults, as on
    // the bare machine.
    const { transcript } = both(
      {
        gdt: ['FLAT 0x2, 3', 'FLAT 0x2, 3', 'FLAT 0x2, 3'].map((l) => `        ${l}`).join('\n'),
        main: `
main:   mov eax, sys
        st [0x2000 + 20 * 8], eax
        mov eax, 0x08 | (0xF << 24) | (3 << 29) | (1 << 31)
        st [0x2000 + 20 * 8 + 4], eax
        mov eax, 0x1090
        st [0x3004], eax
        ld ebx, [0x1080]            ; the GDT page mapped for reads: the IRET from it stays native
        TO_RING3 ring3
ring3:  mov eax, 0x7B
        mov ds, eax
        int 20
        mov eax, 0x7B
        mov ds, eax
        st [0x5000], eax
        int 20
        mov eax, 0
        divu eax, eax
sys:    iret
`,
      },
      { sdtPolicy: 'P2' },
    );
    // A VMM that ran native code on the SDT as it was would store, and fault on the DIV (!00).
    expect(transcript).toBe('!0D\n');
  });
});

describe('the LDT is shadowed like the GDT (SDT-5)', () => {
  it('ring 3 loads a ring-3 segment of its LDT, and faults on a ring-1 one, as on the bare machine', () => {
    // GDT entry 15: an LDT at 0x7000 with two entries: 0 ring-3 data over 0x20000, 1 ring-1 data.
    const { ve, transcript } = both({
      gdt: '        .dword 0x7000, 15 | (0x2 << 24) | (1 << 31)',
      main: `
main:   mov eax, 0x20000
        st [0x7000], eax
        mov eax, 0xFFF | (0x2 << 24) | (1 << 28) | (3 << 29) | (1 << 31)
        st [0x7004], eax
        mov eax, 0x21000
        st [0x7008], eax
        mov eax, 0xFFF | (0x2 << 24) | (1 << 28) | (1 << 29) | (1 << 31)
        st [0x700C], eax
        mov eax, 0xABCDEF
        st [0x20010], eax
        mov eax, 0x78
        lldt eax
        TO_RING3 ring3
ring3:  mov eax, 0x7                ; LDT entry 0, RPL 3
        mov ds, eax
        ld edx, [0x10]
        mov eax, 0xF                ; LDT entry 1 (ring 1): #GP
        mov ds, eax
`,
    });
    expect(transcript).toBe('!0D\n');
    expect(ve.vcpu.reg[2]).toBe(0xabcdef); // EDX: the fault handler uses EAX and EBX
    expect(ve.stats().ldt.builds).toBeGreaterThan(0);
  });
});

describe('the reserved range moves out of the guest’s way', () => {
  it('a guest that maps 0xFF800000 gets its own page there; the VMM moves its tables', () => {
    // Paging: directory 0x20000; 0..4 MiB identity (table 0x21000); 0xFF800000 -> 0x30000 (table
    // 0x22000, directory entry 1022); the ROM's last 64 KiB (table 0x23000, entry 1023).
    const { ve, events, transcript } = both({
      main: `
main:${pagingOn(1022, [0x30000])}
        mov eax, 0x600D
        st [0xFF800010], eax
        ld ebx, [0xFF800010]
        ld ecx, [0x30010]
        cmp ebx, ecx
        jnz .bad
        PUTC 'M'
        cli
        hlt
.bad:   PUTC 'X'
        cli
        hlt
`,
    });
    expect(transcript).toBe('M');
    expect(events.filter((e) => e.kind === 'hole-moved')).toEqual([
      { kind: 'hole-moved', ve: ve.id, from: 0xff80_0000, to: 0xff40_0000 },
    ]);
  });
});
