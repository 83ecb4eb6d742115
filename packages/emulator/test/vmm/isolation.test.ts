/**
 * Isolation (issue 4): a guest kernel (virtual ring 0, the most privileged guest code) that tries to
 * reach outside its portion, map another VE's memory, build descriptors pointing outside it, run
 * privileged instructions, reach real rings 0/1 or write a protected disk block gets exactly what
 * the bare machine gives it, and never touches the other VE running beside it.
 */
import { describe, expect, it } from 'vitest';
import { memoryBlockBackend, SECTOR_SIZE } from '../../src/devices/disk.js';
import { createMachine } from '../../src/machine.js';
import { Vmm } from '../../src/vmm/vmm.js';
import { type GuestSource, guestRom, pagingOn } from './guest.js';

const RAM = 1 << 20;
const BUDGET = 2_000_000;
/** The victim fills its RAM from 0x10000 to 0xF0000 with this, then waits halted. */
const SECRET = 0x5ec2e7aa;

const victim: GuestSource = {
  main: `
main:   mov edi, 0x10000
        mov eax, ${SECRET}
.fill:  st [edi], eax
        add edi, 4
        cmp edi, 0xF0000
        jnz .fill
        PUTC 'v'
        cli
        hlt
`,
};

/** PRINT32 reg: the register in hex, then a space (ring 0). */
const PRINT = `
print32:                            ; ebx: the value; clobbers eax, ecx
        mov ecx, 8
.digit: mov eax, ebx
        shr eax, 28
        ldb eax, [eax + hex]
        out CON, eax
        shl ebx, 4
        dec ecx
        jnz .digit
        PUTC ' '
        ret
`;

/**
 * Ring-0 assembly: one disk command (1 READ, 2 WRITE) of one sector at `lba` to or from `addr`,
 * polled without an interrupt; then prints the status register (print32).
 */
function diskStatus(lba: number, addr: number, command: 1 | 2): string {
  return `        mov eax, ${lba}
        out 0x1F0, eax              ; LBA
        mov eax, 1
        out 0x1F1, eax              ; 1 sector
        mov eax, 0x${addr.toString(16)}
        out 0x1F2, eax              ; memory address
        mov eax, 0
        out 0x1F5, eax              ; no completion interrupt
        mov eax, ${command}
        out 0x1F3, eax
.busy:  in eax, 0x1F4
        test eax, 1
        jnz .busy
        mov ebx, eax
        call print32`;
}

interface Outcome {
  readonly transcript: string;
  readonly executed: number;
  readonly reason: string;
}

function bare(src: GuestSource, disk?: Uint8Array, protectedBlocks?: number[]): Outcome {
  const backend = memoryBlockBackend(16);
  if (disk !== undefined) backend.bytes.set(disk);
  const m = createMachine({
    rom: guestRom(src),
    clock: () => 0,
    ramBytes: RAM,
    disk: backend,
    ...(protectedBlocks === undefined ? {} : { protectedBlocks }),
  });
  const r = m.run(BUDGET);
  return { transcript: m.console.transcript(), executed: r.executed, reason: r.reason };
}

/** The attacker and the victim in two VEs of one VMM, round-robin; the victim's RAM is checked. */
function beside(src: GuestSource, protectedBlocks?: number[]) {
  const physical = memoryBlockBackend(64);
  const vmm = new Vmm({ clock: () => 0, ramBytes: 8 << 20, disk: physical });
  const v = vmm.createVe({ name: 'victim', memoryBytes: RAM, rom: guestRom(victim) });
  const a = vmm.createVe({
    name: 'attacker',
    memoryBytes: RAM,
    rom: guestRom(src),
    disk: { start: 16, count: 16, ...(protectedBlocks === undefined ? {} : { protectedBlocks }) },
  });
  const last = vmm.schedule(5_000, BUDGET / 5_000);
  const ram = new DataView(v.vm.phys.ram.buffer, v.vm.phys.ram.byteOffset);
  let intact = true;
  for (let at = 0x10000; at < 0xf0000; at += 4) if (ram.getUint32(at, true) !== SECRET) intact = false;
  const r = last.get(a.id)!;
  return {
    attacker: { transcript: a.vm.console.transcript(), executed: a.stats().instructions, reason: r.reason },
    victim: v.vm.console.transcript(),
    intact,
    alarm: a.stats().alarm,
    physical,
  };
}

function expectIsolated(src: GuestSource, expected: string): void {
  const b = bare(src);
  expect(b.transcript).toBe(expected);
  const r = beside(src);
  expect(r.attacker).toEqual(b);
  expect([r.victim, r.intact, r.alarm]).toEqual(['v', true, undefined]);
}

describe('a guest kernel cannot reach outside its VE', () => {
  it('physical addresses past its RAM read as the empty bus, paging off and on (MEM-2, RING-7)', () => {
    // Paging off: linear = guest physical; then a page table that maps linear 0x400000.. onto
    // physical 0x100000.. (just past its 1 MiB) and 0x7FF000 (where a neighbour might live).
    expectIsolated(
      {
        main: `
main:   ld ebx, [0x100000]
        call print32
        ld ebx, [0x7FF000]
        call print32
        ; paging: 4..8 MiB -> 1 MiB (just past its RAM), 0x7FF000 (where a neighbour might live)
${pagingOn(1, [0x100000, 0x7ff000])}
        ld ebx, [0x400000]
        call print32
        ld ebx, [0x401000]
        call print32
        mov eax, 0x12345678
        st [0x401000], eax
        ld ebx, [0x401000]
        call print32
        cli
        hlt
${PRINT}
`,
      },
      'FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF ',
    );
  });

  it('a segment based past its RAM reaches nothing; one over its own RAM works (MEM-5)', () => {
    expectIsolated(
      {
        gdt: '        SEGMENT 0x200000, 0xFFFFF, 0x2, 0\n        SEGMENT 0xF0000, 0xFFFF, 0x2, 0',
        main: `
main:   mov eax, 0x78
        mov ds, eax
        ld ebx, [0x10]
        mov eax, 0x10
        mov ds, eax
        call print32
        mov eax, 0x80
        mov es, eax
        mov eax, 0xABCD
        st [es:0x10], eax
        ld ebx, [0xF0010]
        call print32
        cli
        hlt
${PRINT}
`,
      },
      'FFFFFFFF 0000ABCD ',
    );
  });

  it('privileged instructions in rings 1-3 fault as on the bare machine; in ring 0 they act on the virtual CPU', () => {
    // Ring 3 tries LGDT: #GP. (Ring 0 ran LGDT, LIDT, LTR, MOV CR in the scaffold already.)
    expectIsolated({ main: `main:   TO_RING3 ring3\nring3:  lgdt [0]` }, '!0D\n');
  });

  it('a gate it builds to ring-0 code lands in virtual ring 0 (real ring 2), never in real ring 0 or 1', () => {
    // A DPL-3 call gate to a non-conforming DPL-0 code segment, and one to a DPL-1 segment, called
    // from ring 3; each target prints its CS RPL as the guest sees it (through a trapped MOV?
    // no: through the selector it pushed, which has the caller's RPL) and the ring it believes.
    expectIsolated(
      {
        gdt: '        GATE target, 0x08, 0, 3\n        GATE target1, 0x18, 0, 3',
        main: `
main:   TO_RING3 ring3
ring3:  callf 0x78:0
        callf 0x80:0
target: mov eax, 0x10
        mov ds, eax
        mov eax, cr0                ; privileged: works in (virtual) ring 0
        PUTC '0'
        retf
target1:
        mov eax, cr0                ; ring 1: #GP
        hlt
`,
      },
      '0!0D\n',
    );
  });

  it('DMA of its disk into memory past its RAM fails as on the bare machine', () => {
    expectIsolated(
      {
        main: `
main:   ; sector 0 read into 2 MiB: past its RAM
${diskStatus(0, 0x200000, 1)}
        cli
        hlt
${PRINT}
`,
      },
      '00000300 ',
    );
  });
});

describe('protected disk blocks (DEV-11, TB-9)', () => {
  it('a write to the protected boot block fails with the write-protect status and leaves it unchanged', () => {
    const src: GuestSource = {
      main: `
main:   mov edi, 0x10000
        mov eax, 0x11111111
        mov ecx, 128
.fill:  st [edi], eax
        add edi, 4
        dec ecx
        jnz .fill
        ; the buffer written to sector 0: the boot block
${diskStatus(0, 0x10000, 2)}
        cli
        hlt
${PRINT}
`,
    };
    const b = bare(src, undefined, [0]);
    const r = beside(src, [0]);
    expect(r.attacker).toEqual(b);
    expect(r.intact).toBe(true);
    // Block 16 of the physical disk (the attacker's block 0) is still zero.
    expect(r.physical.bytes.subarray(16 * SECTOR_SIZE, 17 * SECTOR_SIZE).every((x) => x === 0)).toBe(true);
  });
});
