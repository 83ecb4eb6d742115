/** Memory operands: `[base + disp]` in a segment (docs/isa.md, operand placement). */
import { fault, VEC } from './faults.js';
import { NO_BASE, NO_SEG, S } from './isa.js';

/** Segment of a memory operand: byte 2, or by default SS for ESP/EBP bases and DS otherwise. */
export function memSeg(c: number, b: number): number {
  const s = c & 0xf;
  if (s === NO_SEG) return b === 4 || b === 5 ? S.SS : S.DS;
  if (s > 5) throw fault(VEC.UD);
  return s;
}

/** Offset of a memory operand: [base + disp], or [disp] when the base is NO_BASE. */
export function memEa(reg: Int32Array, b: number, imm: number): number {
  return b === NO_BASE ? imm : (reg[b & 7]! + imm) >>> 0;
}
