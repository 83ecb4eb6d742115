/**
 * The guests of the VM manager benchmark (bench/vmm.ts). Each is a kernel (its `main` and
 * handlers) assembled at KERNEL_AT in RAM and the boot ROM boot.s (after the VMM tests' four-ring
 * scaffold: GDT copied to RAM, IDT, TSS, gates to every ring), which copies the kernel into RAM
 * and jumps to it: the guest runs from RAM, as an OS does (the bare CPU fetches from RAM through
 * its code window, from the ROM only byte by byte). One 64 KiB ROM; the same ROM runs on the bare
 * machine and in a VE.
 *
 * Every guest's GDT has 32 entries, as Linux i386's does: the scaffold's 15, a per-task data
 * segment at 0x78 (entry 15, the one the VEDT-changing guests rewrite, like a TLS entry at a
 * context switch) and 16 more ring-0 data segments.
 */
import { readFileSync } from 'node:fs';
import { assemble } from '@clefnet/emulator';

const FRAME = readFileSync(new URL('./frame.s', import.meta.url), 'utf8');
const BOOT = readFileSync(new URL('./boot.s', import.meta.url), 'utf8');
/** KERNEL_AT of frame.s. */
const KERNEL_AT = 0x4_0000;

export interface Guest {
  readonly name: string;
  /** What it does, for the bench's output. */
  readonly what: string;
  readonly rom: Uint8Array;
}

/** Guest RAM: the bare machine's RAM and the VE's portion. */
export const GUEST_RAM = 1 << 20;

const GDT_ENTRIES = 32;
const EXTRA_GDT = [
  '        SEGMENT 0x10000, 0xFFF, 0x2, 0   ; 0x78: the per-task segment',
  ...Array.from({ length: GDT_ENTRIES - 16 }, () => '        FLAT 0x2, 0'),
].join('\n');

/** Ring-3 work data, kernel counters. */
const DATA = 0x20000;
const COUNTERS = 0x21000;
/** IDT vector of the timer (the PIC's line 0 after reset). */
const TIMER_VECTOR = 0x20;

/**
 * `n` ordinary instructions (loads, stores, ALU), a cycle of 8. They read ECX and EBX and write
 * EAX, EDX, ESI and EDI.
 */
function work(n: number): string {
  const cycle = [
    `ld edx, [ebx + ${DATA}]`,
    'add edx, ecx',
    'xor edx, 0x5a5a',
    `st [ebx + ${DATA + 4}], edx`,
    'shl eax, 1',
    'or eax, edx',
    'add esi, 3',
    'sub edi, esi',
  ];
  return Array.from({ length: n }, (_, i) => `        ${cycle[i % cycle.length]}`).join('\n');
}

/** The timer's handler (interrupt gate, ring 0): count, EOI, IRET. */
const TICK = `
tick:   push eax
        ld eax, [${COUNTERS}]
        inc eax
        st [${COUNTERS}], eax
        mov eax, 0
        out 0x24, eax               ; PIC EOI
        pop eax
        iret
`;

/** The boot ROM for the kernel `main` (assembly whose first instruction is `main`, in ring 0). */
function build(name: string, what: string, main: string): Guest {
  const kernel = assemble(`${FRAME}\n${main}`, { origin: KERNEL_AT, file: `${name}.s` });
  const entry = (label: string): number => {
    const at = kernel.labels.get(label);
    if (at === undefined) throw new Error(`guest ${name} has no ${label}`);
    return at;
  };
  if (entry('main') !== KERNEL_AT) throw new Error(`guest ${name}: main is not its first instruction`);
  const words = new DataView(kernel.bytes.buffer, kernel.bytes.byteOffset, kernel.bytes.byteLength);
  const dwords: string[] = [];
  for (let i = 0; i + 4 <= kernel.bytes.length; i += 4)
    dwords.push(`        .dword 0x${words.getUint32(i, true).toString(16)}`);
  if (kernel.bytes.length % 4 !== 0) throw new Error(`guest ${name}: kernel of ${kernel.bytes.length} bytes`);
  const stubs = Array.from({ length: 32 }, (_, v) => `        mov ebx, ${v}\n        jmp fault_common`).join(
    '\n',
  );
  const text = BOOT.replace(';@FRAME', FRAME)
    .replace(';@STUBS', stubs)
    .replace('; @EXTRA', EXTRA_GDT)
    .replace(';@KERNEL', dwords.join('\n'));
  const r = assemble(text, {
    origin: 0xffff0000,
    file: 'boot.s',
    defines: {
      r0_entry: entry('r0_entry'),
      r1_entry: entry('r1_entry'),
      r2_entry: entry('r2_entry'),
      KERNEL_DWORDS: dwords.length,
    },
  });
  if (r.bytes.length !== 0x10000) throw new Error(`guest ROM ${name} is ${r.bytes.length} bytes`);
  return { name, what, rom: r.bytes };
}

/**
 * (a) Compute-bound: ring 3, interrupts on, the CPU bench's 9-instruction loop; a timer tick every
 * `period` instructions (0: the timer stays off).
 */
export function computeGuest(period: number): Guest {
  const timer =
    period > 0
      ? `a timer interrupt every ${period} instructions (handler: 7 instructions with OUT EOI, IRET)`
      : 'timer off';
  return build(
    'compute',
    `ring 3, IF=1: a 9-instruction loop (5 ALU, a load and a store through DS, DEC, JNZ); ${timer}`,
    `
main:   SETGATE ${TIMER_VECTOR}, tick, 0xE, 0
        ${period > 0 ? `TIMER ${period}` : ''}
        TO_RING3 ring3, 0x202
ring3:  mov eax, 0x43                ; the IRET to ring 3 left DS null
        mov ds, eax
        mov ebx, 0
.top:   mov ecx, 1000000
.loop:  add eax, ebx
        xor ebx, 0x5a5a
        shl edx, 1
        or edx, eax
        ld esi, [${DATA}]
        add esi, 1
        st [${DATA}], esi
        dec ecx
        jnz .loop
        jmp .top
${TICK}
r0_entry:
r1_entry:
r2_entry:
        hlt
`,
  );
}

/** Instructions of one iteration of the system-call guest's loop. */
export const SYSCALL_ITERATION = 1 + 3 * 8 + 2 + 6 + 1 + 4 + 1;

/**
 * (b) System-call-heavy: ring 3, interrupts on. One iteration is SYSCALL_ITERATION = 39
 * instructions: 29 in ring 3 (MOV, 3 x (6 loads, stores and ALU, DEC, JNZ), MOV, INT 0x80, CALLF,
 * JMP), 6 in the INT 0x80 handler (trap gate, DPL 3; ends with IRET) and 4 in the routine behind
 * the DPL-3 call gate 0x60 (ends with RETF). A timer tick every `period`.
 */
export function syscallGuest(period: number): Guest {
  return build(
    'syscall',
    `ring 3, IF=1: every ${SYSCALL_ITERATION} instructions an INT 0x80 to a 6-instruction ring-0 handler (IRET) and a CALLF through a DPL-3 call gate to a 4-instruction ring-0 routine (RETF), 29 in ring 3; a timer interrupt every ${period} instructions`,
    `
main:   SETGATE ${TIMER_VECTOR}, tick, 0xE, 0
        SETGATE 0x80, syscall, 0xF, 3
        TIMER ${period}
        TO_RING3 ring3, 0x202
ring3:  mov eax, 0x43                ; the IRET to ring 3 left DS null
        mov ds, eax
        mov ebx, 0
.top:   mov ecx, 3
.work:
${work(6)}
        dec ecx
        jnz .work
        mov eax, 1                  ; the system call's number
        int 0x80
        callf 0x60:0
        jmp .top
syscall:
        push ebx
        ld ebx, [${COUNTERS + 4}]
        add ebx, eax
        st [${COUNTERS + 4}], ebx
        pop ebx
        iret
r0_entry:
        ld edx, [${COUNTERS + 8}]
        inc edx
        st [${COUNTERS + 8}], edx
        retf
${TICK}
r1_entry:
r2_entry:
        hlt
`,
  );
}

/** Trap round trips: virtual ring 0 doing CLI and STI (each traps: real IOPL <= 1 at real ring 2). */
export function cliStiGuest(): Guest {
  return build(
    'cli-sti',
    'virtual ring 0, no interrupts: CLI, ADD, STI, ADD, JMP (2 traps in 5 instructions)',
    `
main:
.loop:  cli
        add eax, 1
        sti
        add eax, 1
        jmp .loop
r0_entry:
r1_entry:
r2_entry:
        hlt
`,
  );
}

/** Trap round trips through the I/O bus: virtual ring 0 reading the PIC's POLL port. */
export function inGuest(): Guest {
  return build(
    'in',
    'virtual ring 0, no interrupts: IN from the PIC POLL port, ADD, JMP (1 trap in 3 instructions)',
    `
main:
.loop:  in eax, 0x26
        add ecx, eax
        jmp .loop
r0_entry:
r1_entry:
r2_entry:
        hlt
`,
  );
}

/**
 * Rare ring changes, frequent VEDT changes: a ring-0 kernel loop of 24 ordinary instructions that
 * rewrites the base of GDT entry 15 every iteration (29 instructions); every 256 iterations a round
 * trip 0 -> 3 -> 1 (gate) -> 3 -> 0 (gate).
 */
export function rareRingGuest(): Guest {
  return build(
    'rare-rings',
    'ring-0 loop: 24 ordinary instructions and a GDT entry rewrite every 29 instructions; every 256 iterations a round trip 0->3->1->3->0 through gates',
    `
main:
.top:   mov esp, STACK0
        mov eax, 0x10
        mov ds, eax
        mov ebx, 0
        mov ecx, 256
.loop:
${work(24)}
        mov eax, ecx
        shl eax, 12
        st [GDT_AT + 15 * 8], eax   ; entry 15's base: a VEDT change
        dec ecx
        jnz .loop
        TO_RING3 ring3, 0x2
ring3:  mov eax, 0x43
        mov ds, eax
        callf 0x50:0                ; ring 1 and back
        callf 0x60:0                ; into ring 0: the kernel loop again
r1_entry:
        add edi, 1
        retf
r0_entry:
        jmp main.top
r2_entry:
        hlt
`,
  );
}

/**
 * Frequent ring changes: a ring-3 task that calls a ring-1 service and a ring-2 service through
 * DPL-3 gates, 12 ordinary instructions before each (32 instructions, 4 ring changes per
 * iteration); every 32 iterations a gate call into ring 0 rewrites GDT entry 15 (a VEDT change).
 */
export function frequentRingGuest(): Guest {
  return build(
    'frequent-rings',
    'ring 3: every 16 instructions a gate call into ring 1 or ring 2 and RETF back (4 ring changes in 32 instructions); every 32 iterations a ring-0 GDT entry rewrite',
    `
main:   TO_RING3 ring3, 0x2
ring3:  mov eax, 0x43                ; the IRET to ring 3 left DS null
        mov ds, eax
        mov ebx, 0
.top:   mov ecx, 32
.loop:
${work(12)}
        callf 0x50:0                ; ring-1 service
${work(12)}
        callf 0x58:0                ; ring-2 service
        dec ecx
        jnz .loop
        callf 0x60:0                ; ring 0 rewrites entry 15: a VEDT change
        jmp .top
r1_entry:
        add edi, 1
        retf
r2_entry:
        add edi, 2
        retf
r0_entry:
        ld eax, [GDT_AT + 15 * 8]
        add eax, 0x1000
        and eax, 0xFFFFF
        st [GDT_AT + 15 * 8], eax
        retf
`,
  );
}
