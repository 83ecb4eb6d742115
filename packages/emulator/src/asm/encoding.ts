/**
 * Packing for the assembler and the field list for its checks, on the operand placement rule of
 * isa.ts (`SLOTS`): register-like operands (reg, sreg, cr) take nibble A, then nibble B, in order of
 * appearance; a memory operand takes B (base, 8 = none), byte 2 (segment, 0xF = none) and imm
 * (displacement); imm, imm16, vec and port take imm; far takes sel (bytes 2-3) and imm.
 */
import { encodingError, type InstrDef, operandSlots, SLOTS, type Slot } from '../cpu/isa.js';

export type { Slot } from '../cpu/isa.js';

/** The fields of one instruction, before packing or after unpacking. */
export interface Fields {
  a: number;
  b: number;
  /** byte 2: the segment of a memory operand */
  seg: number;
  /** bytes 2-3: the selector of a far pointer */
  sel: number;
  /** bytes 4-7, unsigned */
  imm: number;
}

/** The slot of each operand of `def`, in operand order. */
export function slotsOf(def: InstrDef): readonly Slot[] {
  return SLOTS[def.op] ?? operandSlots(def);
}

/**
 * Which fields the operands of `def` claim, for a check that no two operands share one. B is
 * claimed by the second register-like operand and by a memory operand's base.
 */
export function claimedFields(def: InstrDef): string[] {
  const out: string[] = [];
  for (const s of slotsOf(def)) {
    if (s === 'a' || s === 'b') out.push(s);
    else if (s === 'mem') out.push('b', 'byte2', 'imm');
    else if (s === 'far') out.push('byte2', 'byte3', 'imm');
    else out.push('imm');
  }
  return out;
}

/**
 * Packs `def` with fields `f` at `out[at..at+8)`. Fields no operand uses must be 0 and the others in
 * range: the result is checked against the CPU's decoding rule (isa.ts, `encodingError`), so the
 * assembler can never emit an encoding the CPU would refuse with #UD.
 */
export function pack(out: Uint8Array, at: number, def: InstrDef, f: Fields): void {
  const two = slotsOf(def).includes('far') ? f.sel : f.seg;
  const w0 = (def.op | ((f.a & 0xf) << 8) | ((f.b & 0xf) << 12) | ((two & 0xffff) << 16)) >>> 0;
  const why = encodingError(w0, f.imm >>> 0);
  if (why !== undefined) throw new Error(`internal: non-canonical encoding of ${def.mnemonic}: ${why}`);
  out[at] = def.op;
  out[at + 1] = (f.a & 0xf) | ((f.b & 0xf) << 4);
  out[at + 2] = two & 0xff;
  out[at + 3] = (two >>> 8) & 0xff;
  out[at + 4] = f.imm & 0xff;
  out[at + 5] = (f.imm >>> 8) & 0xff;
  out[at + 6] = (f.imm >>> 16) & 0xff;
  out[at + 7] = (f.imm >>> 24) & 0xff;
}
