/** Builds the VM manager tests' guest: scaffold.s with the test's code, as a 64 KiB boot ROM. */
import { readFileSync } from 'node:fs';
import { type AsmResult, assemble } from '../../src/asm/assembler.js';

const SCAFFOLD = readFileSync(new URL('./scaffold.s', import.meta.url), 'utf8');

export interface GuestSource {
  /**
   * Assembly for `main` (ring 0, flat segments, tables loaded) and the gates' entries it uses
   * (`r0_entry`, `r1_entry`, `r2_entry`; one it leaves out is a HLT).
   */
  readonly main: string;
  /** Extra GDT entries from selector 0x78 on (assembly lines, e.g. `FLAT 0x2, 3`). */
  readonly gdt?: string;
  /** Null the ring-1 and ring-2 entries (and the gates to them): a two-ring guest (QPT-1). */
  readonly twoRing?: boolean;
}

const FOUR_RINGS = `.macro RING12 type, dpl
        FLAT \\type, \\dpl
.endm
.macro GATE12 offset, sel, params, dpl
        GATE \\offset, \\sel, \\params, \\dpl
.endm
.macro SEG12 base, limit, type, dpl
        SEGMENT \\base, \\limit, \\type, \\dpl
.endm`;
const TWO_RINGS = `.macro RING12 type, dpl
        .dword 0, 0
.endm
.macro GATE12 offset, sel, params, dpl
        .dword 0, 0
.endm
.macro SEG12 base, limit, type, dpl
        .dword 0, 0
.endm`;

const STUBS = Array.from({ length: 32 }, (_, v) => `        mov ebx, ${v}\n        jmp fault_common`).join(
  '\n',
);

/** The gates' entries a test need not write: each one it leaves out is a HLT. */
const ENTRIES = ['r0_entry', 'r1_entry', 'r2_entry'];

/** The guest assembled (its labels too), as a 64 KiB boot ROM. */
export function guestAssembly(src: GuestSource, file = 'scaffold.s'): AsmResult {
  const missing = ENTRIES.filter((e) => !new RegExp(`^\\s*${e}:`, 'm').test(src.main));
  const main =
    missing.length === 0 ? src.main : `${src.main}\n${missing.map((e) => `${e}:`).join('\n')}\n        hlt\n`;
  const text = SCAFFOLD.replace(';@RINGS12', src.twoRing ? TWO_RINGS : FOUR_RINGS)
    .replace(';@STUBS', STUBS)
    .replace('; @EXTRA', src.gdt ?? '')
    .replace(';@MAIN', main);
  const r = assemble(text, { origin: 0xffff0000, file });
  if (r.bytes.length !== 0x10000) throw new Error(`guest ROM is ${r.bytes.length} bytes`);
  return r;
}

export function guestRom(src: GuestSource): Uint8Array {
  return guestAssembly(src).bytes;
}

/**
 * Ring-0 assembly that turns paging on (directory 0x20000, no CR0.WP): linear 0..4 MiB mapped to
 * itself (table 0x21000), the ROM's last 64 KiB mapped to itself (table 0x23000, directory entry
 * 1023: the code runs there), and table 0x22000 at directory entry `pde`, whose entries from 0 are
 * `ptes` (a physical page address; present and writable are added). Uses EAX, ECX, EDI and the
 * local labels .clr, .id and .rom.
 */
export function pagingOn(pde: number, ptes: readonly number[]): string {
  return `
        mov edi, 0x20000
        mov ecx, 4096
        mov eax, 0
.clr:   st [edi], eax
        add edi, 4
        dec ecx
        jnz .clr
        mov eax, 0x21000 | 3
        st [0x20000], eax
        mov eax, 0x22000 | 3
        st [0x${(0x20000 + pde * 4).toString(16)}], eax
        mov eax, 0x23000 | 3
        st [0x20FFC], eax
        mov edi, 0x21000
        mov eax, 3
.id:    st [edi], eax
        add eax, 0x1000
        add edi, 4
        cmp edi, 0x22000
        jnz .id
        mov edi, 0x23FC0
        mov eax, 0xFFFF0000 | 3
.rom:   st [edi], eax
        add eax, 0x1000
        add edi, 4
        cmp edi, 0x24000
        jnz .rom
${ptes.map((p, i) => `        mov eax, 0x${p.toString(16)} | 3\n        st [0x${(0x22000 + i * 4).toString(16)}], eax`).join('\n')}
        mov eax, 0x20000
        mov cr3, eax
        mov eax, cr0
        or eax, 0x80000000
        mov cr0, eax`;
}

/**
 * Assembly for the start of `main` (ring 0) that gives the guest an IDT of 0x21 gates at 0x2000
 * (the scaffold's has 32; IDTR image at 0x6000), points vector 0x20 (the timer's IRQ 0) at the
 * label `tick` through an interrupt gate (not present with `present: false`), unmasks line 0 only
 * and starts the timer: every `period` instructions (`periodic`), or once.
 */
export function timerSetup(period: number, opts: { periodic?: boolean; present?: boolean } = {}): string {
  const present = opts.present ?? true;
  return `        mov eax, (0x2000 << 16) | (0x21 * 8 - 1)
        st [0x6000], eax
        mov eax, 0
        st [0x6004], eax
        lidt [0x6000]
        mov eax, tick
        st [0x2000 + 0x20 * 8], eax
        mov eax, 0x08 | (0xE << 24)${present ? ' | (1 << 31)' : '  ; not present'}
        st [0x2000 + 0x20 * 8 + 4], eax
        mov eax, 0xFFFE
        out 0x21, eax               ; PIC mask: line 0 only
        mov eax, ${period}
        out 0x40, eax               ; timer reload
        mov eax, 1 | ${opts.periodic ? '2 | ' : ''}4          ; enable, ${opts.periodic ? 'periodic' : 'one shot'}, IRQ
        out 0x41, eax`;
}
