/**
 * Decoder and disassembler, driven by the instruction table (isa.ts). The text is the canonical
 * form the assembler accepts: assembling `disassemble(bytes, i)` gives back the same 8 bytes for
 * every valid instruction. Decoding is as strict as the CPU's: an encoding the CPU refuses with #UD
 * (a field no operand uses not 0, a field out of range) disassembles as `(bad ...)`, so every
 * instruction it prints is canonical.
 */
import { ClefnetError } from '@clefnet/protocol';
import {
  BY_OPCODE,
  CR_NAMES,
  encodingError,
  INSTR_BYTES,
  type InstrDef,
  NO_BASE,
  NO_SEG,
  REG_NAMES,
  SREG_NAMES,
} from '../cpu/isa.js';
import { slotsOf } from './encoding.js';

export interface Decoded {
  readonly op: number;
  /** undefined: an invalid opcode (#UD) */
  readonly def: InstrDef | undefined;
  /** byte 1, low nibble */
  readonly a: number;
  /** byte 1, high nibble */
  readonly b: number;
  /** byte 2 (segment of a memory operand) */
  readonly seg: number;
  /** bytes 2-3 (selector of a far pointer) */
  readonly sel: number;
  /** bytes 4-7, unsigned */
  readonly imm: number;
}

export function decode(bytes: Uint8Array, offset: number): Decoded {
  if (!Number.isInteger(offset) || offset < 0 || offset + INSTR_BYTES > bytes.length) {
    throw new ClefnetError(
      'ENCODING_TRUNCATED',
      `an instruction at offset ${offset} runs past the end of ${bytes.length} bytes`,
      { offset, length: bytes.length },
    );
  }
  const op = bytes[offset]!;
  const ab = bytes[offset + 1]!;
  return {
    op,
    def: BY_OPCODE[op],
    a: ab & 0xf,
    b: ab >>> 4,
    seg: bytes[offset + 2]!,
    sel: bytes[offset + 2]! | (bytes[offset + 3]! << 8),
    imm:
      (bytes[offset + 4]! |
        (bytes[offset + 5]! << 8) |
        (bytes[offset + 6]! << 16) |
        (bytes[offset + 7]! << 24)) >>>
      0,
  };
}

const NAMES = { reg: REG_NAMES, sreg: SREG_NAMES, cr: CR_NAMES } as const;

/**
 * Why the CPU refuses this instruction with #UD at decoding (isa.ts, `encodingError`): an invalid
 * opcode, a field past its operand's range (a register nibble past the last register, a base above
 * 8, a segment byte 6-14, a vector above 0xff, a port or imm16 above 0xffff), or a field no operand
 * uses that is not 0. Undefined for a valid (canonical) encoding. The disassembler prints a refused
 * instruction as `(bad 0xNN: reason)`.
 */
export function invalidReason(d: Decoded): string | undefined {
  return encodingError((d.op | (((d.b << 4) | d.a) << 8) | (d.sel << 16)) >>> 0, d.imm);
}

const h = (v: number, digits = 0) => `0x${v.toString(16).padStart(digits, '0')}`;

/** A memory operand in canonical form: `[fs:ebx+0x4]`, `[ebp-0x10]`, `[0x1000]`. */
export function formatMem(base: number, seg: number, disp: number): string {
  const prefix = seg === NO_SEG ? '' : `${SREG_NAMES[seg]}:`;
  if (base === NO_BASE) return `[${prefix}${h(disp)}]`;
  const off = disp === 0 ? '' : disp >= 0x80000000 ? `-${h(0x100000000 - disp)}` : `+${h(disp)}`;
  return `[${prefix}${REG_NAMES[base]}${off}]`;
}

/** The canonical text of the instruction at `bytes[offset..offset+8)`. */
export function disassemble(bytes: Uint8Array, offset: number): string {
  const d = decode(bytes, offset);
  const why = invalidReason(d);
  if (d.def === undefined || why !== undefined) {
    return d.def === undefined ? `(bad ${h(d.op, 2)})` : `(bad ${h(d.op, 2)}: ${why})`;
  }
  const slots = slotsOf(d.def);
  const ops = d.def.operands.map((kind, i) => {
    switch (kind) {
      case 'reg':
      case 'sreg':
      case 'cr':
        return NAMES[kind][slots[i] === 'a' ? d.a : d.b]!;
      case 'mem':
        return formatMem(d.b, d.seg, d.imm);
      case 'far':
        return `${h(d.sel, 4)}:${h(d.imm, 8)}`;
      default:
        return h(d.imm);
    }
  });
  return ops.length === 0 ? d.def.mnemonic : `${d.def.mnemonic} ${ops.join(', ')}`;
}

export interface DisassembledLine {
  readonly address: number;
  readonly bytes: Uint8Array;
  readonly text: string;
}

/** Every whole instruction of `bytes`, the first at guest address `origin` (branch targets are absolute). */
export function disassembleAll(bytes: Uint8Array, origin = 0): DisassembledLine[] {
  const out: DisassembledLine[] = [];
  for (let i = 0; i + INSTR_BYTES <= bytes.length; i += INSTR_BYTES) {
    out.push({
      address: (origin + i) >>> 0,
      bytes: bytes.subarray(i, i + INSTR_BYTES),
      text: disassemble(bytes, i),
    });
  }
  return out;
}
