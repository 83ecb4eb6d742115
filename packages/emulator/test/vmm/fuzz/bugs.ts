/**
 * Open VM manager bugs the fuzzer found (issue 4), each with a minimal guest that shows it. The
 * generator keeps clear of them (`GenerateOptions.avoid`) so that the fixed-seed run checks
 * everything else while they are open; fuzz.test.ts runs each repro as a failing test, so the fix
 * of a bug turns its test red: then remove its entry here (and its avoidance in the generator).
 * CLEFNET_FUZZ_OPEN_BUGS=1 runs the fuzzer without the avoidance.
 */
import type { GuestSource } from '../guest.js';
import type { VeConfig } from './harness.js';

export type BugId =
  | 'native-frame-rpl'
  | 'conforming-return'
  | 'popf-iopl'
  | 'descriptor-accessed'
  | 'vedt-overwrite-cache';

export const BUG_IDS: readonly BugId[] = [
  'native-frame-rpl',
  'conforming-return',
  'popf-iopl',
  'descriptor-accessed',
  'vedt-overwrite-cache',
];

export interface OpenBug {
  readonly id: BugId;
  /** In one line. */
  readonly title: string;
  /** What goes wrong, and how the generator keeps clear of it. */
  readonly what: string;
  /** A minimal guest (scaffold.s) whose console differs. */
  readonly repro: GuestSource;
  /** Its console on the bare machine (the VE must print the same). */
  readonly bare: string;
  /** Its console in a VE today, under each of `configs`. */
  readonly ve: string;
  /** The VE configurations it shows under (harness.ts; default P1, P2, P3). */
  readonly configs?: readonly VeConfig[];
}

/** Page tables at 0xC000 identity-mapping 0..0xFFFF and the ROM, with A = 0; paging on. */
const PAGING_ON = `
        mov eax, 0xD007
        st [0xC000], eax
        mov eax, 0xE007
        st [0xCFFC], eax
        mov ecx, 0
.low:   mov eax, ecx
        shl eax, 12
        or eax, 7
        mov edx, ecx
        shl edx, 2
        st [edx+0xD000], eax
        inc ecx
        cmp ecx, 16
        jnz .low
        mov ecx, 0x3F0
.rom:   mov eax, ecx
        shl eax, 12
        or eax, 0xFFC00005
        mov edx, ecx
        shl edx, 2
        st [edx+0xE000], eax
        inc ecx
        cmp ecx, 0x400
        jnz .rom
        mov eax, 0xC000
        mov cr3, eax
        mov eax, cr0
        or eax, 0x80000000
        mov cr0, eax`;

/**
 * Bugs the fuzzer found that are fixed: their repros stay as regression tests (fuzz.test.ts checks
 * that the VE prints what the bare machine prints; `ve` is what it printed before the fix).
 */
export const FIXED_BUGS: readonly OpenBug[] = [
  {
    id: 'native-frame-rpl',
    title: 'a trapping RETF pops a CS a native same-ring CALLF pushed with the real RPL',
    what:
      'a far call executed natively in virtual ring 0, 1 or 2 pushes CS (and SS) with the real RPL; when ' +
      'the matching RETF traps (here a shadow page fill after the guest reloads CR3), the virtual CPU ' +
      'reads that RPL and raises #GP(0x08) instead of returning. Avoided: rings 0-2 make no far call ' +
      'whose frame could be popped (no checkpoint, no far subroutine of their own ring or ring 0, block ' +
      'transfers by JMPF or INT instead of CALLF)',
    repro: {
      main: `
main:   push eax                    ; the stack page is mapped: the CALLF runs natively
        pop eax
        callf 0x08:sub              ; pushes CS 0x0A (real ring 2), not 0x08
        PUTC 'A'
        cli
        hlt
sub:    mov eax, cr3
        mov cr3, eax                ; the shadow page tables are dropped
        retf                        ; traps (#PF): the virtual CPU pops CS 0x0A
`,
    },
    bare: 'A',
    ve: '!0D\n',
  },
  {
    id: 'native-frame-rpl',
    title: 'a trapping RETF pops the CS a native inward gate call from ring 2 pushed (RPL 3)',
    what:
      'the same through a call gate: virtual ring 2 calls ring 0 natively (real 3 -> 2), which pushes SS ' +
      '0x33 and CS 0x2B; ring 0 loads a ring-1 segment (the lazy switch to SDT0, SDT-15), so its RETF traps ' +
      'and the virtual CPU refuses CS RPL 3 for ring-2 code (#GP(0x28))',
    repro: {
      gdt: '        GATE r0_sub, 0x08, 0, 3',
      main: `
main:   TO_RING3 ring3
ring3:  callf 0x58:0                ; to ring 2 (r2_entry)
r2_entry:
        callf 0x78:0                ; the first two calls fill the shadow pages and trap
        callf 0x78:0
        callf 0x78:0                ; native: real ring 3 -> 2
        callf 0x60:0
r0_sub: mov eax, 0x70
        mov ds, eax                 ; SDT2 keeps ring 1 at real ring 0: switch to SDT0
        retf                        ; ring-2 code is not present in SDT0: traps
r0_entry:
        PUTC 'B'
        cli
        hlt
r1_entry:
        hlt
`,
    },
    bare: 'B',
    ve: '!0D\n',
  },
  {
    id: 'conforming-return',
    title: 'IRET from ring 0 to ring-2 code in a DPL-0 conforming segment stays in ring 0',
    what:
      'an IRET at virtual ring 0 to virtual ring 2 in a conforming code segment of DPL 0 is a same-level ' +
      'return to the real CPU (RPL 2 = real CPL 2, shadow DPL 2 <= 2): the guest stays in virtual ring 0 ' +
      'and the OUT that must fault succeeds. Avoided: no block or handler runs in conforming code outside ' +
      'ring 0 (and a broken transfer names no code at all)',
    repro: {
      gdt: '        FLAT 0xE, 0',
      main: `
main:   push 0x32
        push 0xA000
        push 0x2
        push 0x7A                   ; conforming DPL-0 code (0x78), RPL 2
        push ring2
        iret
ring2:  PUTC 'C'                    ; ring 2, IOPL 0: #GP
        cli
        hlt
`,
    },
    bare: '!0D\n',
    ve: 'C',
  },
  {
    id: 'conforming-return',
    title: 'IRET from ring 0 (under SDT1) to ring-3 conforming code lands in virtual ring 1',
    what:
      'the same to ring 3: virtual ring 0 entered natively from ring 1 (SDT1 in force) IRETs to ring 3 in ' +
      'conforming DPL-0 code; the native return lands in real ring 3, which the VM manager takes for ' +
      'virtual ring 1 (the ring of the SDT), so ring 3 can load a ring-1 data segment',
    repro: {
      gdt: '        FLAT 0xE, 0\n        GATE r0_sub, 0x08, 0, 3',
      main: `
main:   push 0x21
        push 0x9000
        push 0x19
        push ring1
        retf
ring1:  push eax
        pop eax
        callf 0x80:0                ; to ring 0, which keeps SDT1
r0_sub: push 0x43
        push 0xB000
        push 0x2
        push 0x7B                   ; conforming DPL-0 code (0x78), RPL 3
        push ring3
        iret
ring3:  mov eax, 0x21
        mov ds, eax                 ; ring 3: #GP(0x20)
        callf 0x60:0
r0_entry:
        PUTC 'E'
        cli
        hlt
r1_entry:
r2_entry:
        hlt
`,
    },
    bare: '!0D\n',
    ve: 'E',
  },
  {
    id: 'vedt-overwrite-cache',
    title: 'VEDT write method 2: a loaded segment takes the rewritten entry at the next trap',
    what:
      'VEDT substitution with write method 2: DS is loaded natively from GDT entry 15, then the guest ' +
      'rewrites that entry (a direct write into the open page, no trap); at the next trap the VM manager ' +
      'rebuilds the virtual DS cache from the new entry (capture() assumes a VEDT entry cannot change ' +
      'without a trap), so DS moves from base 0x40000 to 0x50000. Avoided: no segment is loaded from a ' +
      'volatile entry',
    repro: {
      gdt: '        SEGMENT 0x40000, 0xFFF, 0x2, 0',
      main: `
main:   mov eax, 0x10
        mov ds, eax
        mov eax, 0x78
        mov ds, eax                 ; DS: base 0x40000 (entry 15)
        mov eax, 0x50000
        st [es:0x1078], eax         ; entry 15's base: 0x50000; DS keeps its cache
        mov eax, cr2                ; a trap
        mov eax, 0x41
        st [0x10], eax              ; through DS, at 0x40010
        ld ebx, [es:0x40010]
        cmp ebx, 0x41
        jnz .no
        PUTC 'F'
.no:    cli
        hlt
`,
    },
    bare: 'F',
    ve: '',
    configs: ['vedt-overwrite'],
  },
];

/** Open bugs: each repro's test expects today's (wrong) VE output, so a fix turns it red. */
export const OPEN_BUGS: readonly OpenBug[] = [
  {
    id: 'descriptor-accessed',
    title: "a native descriptor load does not set the accessed bit of the GDT page's PTE",
    what:
      "with paging on, the bare processor's read of a GDT (or LDT, TSS) entry sets the accessed bit of that " +
      "page's PTE and PDE; natively the real CPU reads the shadow table, and the guest's entries keep A = 0. " +
      'Avoided: those pages (and their PDE) start with A set',
    repro: {
      main: `
main:${PAGING_ON}
        mov eax, 0x10
        mov ds, eax                 ; reads GDT entry 2, in page 0x1000
        ld eax, [0xD004]            ; that page's PTE
        and eax, 0x20
        jz .no
        PUTC 'A'
.no:    cli
        hlt
`,
    },
    bare: 'A',
    ve: '',
  },
  {
    id: 'popf-iopl',
    title: 'POPF at ring 0 lowering IOPL from 3 to 1 is lost',
    what:
      'POPF at virtual ring 0 that lowers IOPL from 3 to 1 is not caught: the real IOPL is already 1, so ' +
      'CR4.SFT sees no change, and the virtual IOPL stays 3 (ring 2 may then do I/O). Avoided: IOPL 1 is ' +
      'never popped',
    repro: {
      main: `
main:   push 0x3002
        popf                        ; IOPL 3 (traps: the real IOPL 0 would change)
        push 0x1002
        popf                        ; IOPL 1: native, the virtual IOPL stays 3
        push 0x32
        push 0xA000
        push 0x2A
        push ring2
        retf
ring2:  PUTC 'D'                    ; CPL 2 > IOPL 1: #GP
        hlt
`,
    },
    bare: '!0D\n',
    ve: 'D!0D\n',
  },
];
