/** Builds the VM manager tests' guest: scaffold.s with the test's code, as a 64 KiB boot ROM. */
import { readFileSync } from 'node:fs';
import { assemble } from '../../src/asm/assembler.js';

const SCAFFOLD = readFileSync(new URL('./scaffold.s', import.meta.url), 'utf8');

export interface GuestSource {
  /** Assembly for `main` (ring 0, flat segments, tables loaded) and any entries it needs. */
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

export function guestRom(src: GuestSource): Uint8Array {
  const stubs = Array.from({ length: 32 }, (_, v) => `        mov ebx, ${v}\n        jmp fault_common`).join(
    '\n',
  );
  const text = SCAFFOLD.replace(';@RINGS12', src.twoRing ? TWO_RINGS : FOUR_RINGS)
    .replace(';@STUBS', stubs)
    .replace('; @EXTRA', src.gdt ?? '')
    .replace(';@MAIN', src.main);
  const r = assemble(text, { origin: 0xffff0000, file: 'scaffold.s' });
  if (r.bytes.length !== 0x10000) throw new Error(`guest ROM is ${r.bytes.length} bytes`);
  return r.bytes;
}
