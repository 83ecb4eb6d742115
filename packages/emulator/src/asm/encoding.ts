/**
 * The operand placement rule of isa.ts, in one place for the assembler, the disassembler and the
 * docs: register-like operands (reg, sreg, cr) take nibble A, then nibble B, in order of
 * appearance; a memory operand takes B (base, 8 = none), byte 2 (segment, 0xF = none) and imm
 * (displacement); imm, vec and port take imm; far takes sel (bytes 2-3) and imm.
 */
import { BY_OPCODE, type InstrDef, type OperandKind } from '../cpu/isa.js';

/** Where one operand lives in the 8 bytes. */
export type Slot = 'a' | 'b' | 'mem' | 'imm' | 'far';

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

const REG_LIKE: ReadonlySet<OperandKind> = new Set(['reg', 'sreg', 'cr']);

function computeSlots(def: InstrDef): readonly Slot[] {
  let nibbles = 0;
  return def.operands.map((k): Slot => {
    if (REG_LIKE.has(k)) return nibbles++ === 0 ? 'a' : 'b';
    if (k === 'mem') return 'mem';
    return k === 'far' ? 'far' : 'imm';
  });
}

const SLOTS: readonly (readonly Slot[] | undefined)[] = BY_OPCODE.map((d) =>
  d === undefined ? undefined : computeSlots(d),
);

/** The slot of each operand of `def`, in operand order. */
export function slotsOf(def: InstrDef): readonly Slot[] {
  return SLOTS[def.op] ?? computeSlots(def);
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

/** Packs `def` with fields `f` at `out[at..at+8)`. Fields no operand uses must be 0 (canonical). */
export function pack(out: Uint8Array, at: number, def: InstrDef, f: Fields): void {
  out[at] = def.op;
  out[at + 1] = (f.a & 0xf) | ((f.b & 0xf) << 4);
  const two = slotsOf(def).includes('far') ? f.sel : f.seg;
  out[at + 2] = two & 0xff;
  out[at + 3] = (two >>> 8) & 0xff;
  out[at + 4] = f.imm & 0xff;
  out[at + 5] = (f.imm >>> 8) & 0xff;
  out[at + 6] = (f.imm >>> 16) & 0xff;
  out[at + 7] = (f.imm >>> 24) & 0xff;
}
