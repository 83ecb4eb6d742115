/** Memory operands: `[base + disp]` in a segment (docs/isa.md, operand placement). */
import { fault, VEC } from './faults.js';
import { MEM_SEGMENT, NO_BASE } from './isa.js';

/**
 * Segment of a memory operand with byte 2 `c` and base nibble `b`: as written (0-5), or for 0xF
 * (none) SS for an ESP or EBP base and DS otherwise; #UD for a base above 8 or a segment byte 6..14
 * or above 15 (strict decoding, isa.ts).
 */
export function memSeg(c: number, b: number): number {
  const seg = c > 0xf || b > 0xf ? 0xff : MEM_SEGMENT[b | (c << 4)]!;
  if (seg > 5) throw fault(VEC.UD);
  return seg;
}

/** Offset of a memory operand: [base + disp], or [disp] when the base is NO_BASE. */
export function memEa(reg: Int32Array, b: number, imm: number): number {
  return b === NO_BASE ? imm : (reg[b & 7]! + imm) >>> 0;
}
