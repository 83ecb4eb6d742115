/**
 * Generated from the instruction table: every InstrDef is assembled with representative operands,
 * its 8 bytes are checked against the placement rule of isa.ts (written out again here, so the
 * encoder is not its own oracle), and disassembly and re-assembly round-trip. Every other opcode
 * disassembles as bad.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assemble } from '../../src/asm/assembler.js';
import { disassemble } from '../../src/asm/disasm.js';
import { claimedFields } from '../../src/asm/encoding.js';
import { BY_OPCODE, INSTRUCTIONS, type InstrDef, NO_SEG, type OperandKind } from '../../src/cpu/isa.js';

/** Operand text per kind, for the first and second operand of that kind, and what it encodes to. */
const SAMPLE = {
  reg: [
    ['edx', 2],
    ['esi', 6],
  ],
  sreg: [
    ['fs', 4],
    ['gs', 5],
  ],
  cr: [
    ['cr3', 3],
    ['cr4', 4],
  ],
} as const;
const MEM = { text: '[gs:ebp-0x10]', base: 5, seg: 5, disp: 0xfffffff0 };
const FAR = { text: '0x001b:0x00402000', sel: 0x1b, off: 0x00402000 };
const IMM: Partial<Record<OperandKind, [string, number]>> = {
  imm: ['0x12345678', 0x12345678],
  imm16: ['0x1234', 0x1234],
  vec: ['0x80', 0x80],
  port: ['0x3f8', 0x3f8],
};

const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

/** The canonical line and its expected bytes, by the rule in isa.ts's header. */
function sample(def: InstrDef): { line: string; bytes: number[] } {
  const bytes = [def.op, 0, 0, 0, 0, 0, 0, 0];
  let nibble = 0;
  const seen: Partial<Record<OperandKind, number>> = {};
  let imm = 0;
  const texts = def.operands.map((k) => {
    if (k === 'reg' || k === 'sreg' || k === 'cr') {
      const [text, n] = SAMPLE[k][seen[k] ?? 0]!;
      seen[k] = (seen[k] ?? 0) + 1;
      bytes[1]! |= nibble++ === 0 ? n : n << 4;
      return text;
    }
    if (k === 'mem') {
      bytes[1]! |= MEM.base << 4;
      bytes[2] = MEM.seg;
      imm = MEM.disp;
      return MEM.text;
    }
    if (k === 'far') {
      bytes[2] = FAR.sel & 0xff;
      bytes[3] = FAR.sel >>> 8;
      imm = FAR.off;
      return FAR.text;
    }
    const [text, v] = IMM[k]!;
    imm = v;
    return text;
  });
  bytes.splice(4, 4, ...le32(imm));
  return { line: texts.length ? `${def.mnemonic} ${texts.join(', ')}` : def.mnemonic, bytes };
}

describe('every instruction of the table', () => {
  for (const def of INSTRUCTIONS) {
    const { line, bytes } = sample(def);
    it(`0x${def.op.toString(16).padStart(2, '0')} ${line}`, () => {
      const first = assemble(line).bytes;
      expect([...first], `assemble '${line}'`).toEqual(bytes);
      expect(disassemble(first, 0), `disassemble 0x${def.op.toString(16)}`).toBe(line);
      expect([...assemble(disassemble(first, 0)).bytes], `re-assemble '${line}'`).toEqual(bytes);
    });
  }

  it('no two operands of one instruction share a field', () => {
    for (const def of INSTRUCTIONS) {
      const fields = claimedFields(def);
      expect(new Set(fields).size, `${def.mnemonic} ${def.operands.join(',')}: ${fields.join(' ')}`).toBe(
        fields.length,
      );
    }
  });

  it('every mnemonic form is told apart by its operand kinds alone', () => {
    const kinds = (d: InstrDef) =>
      d.operands.map((k) => (k === 'vec' || k === 'port' || k === 'imm16' ? 'imm' : k)).join(',');
    const seen = new Map<string, number>();
    for (const def of INSTRUCTIONS) {
      const key = `${def.mnemonic} ${kinds(def)}`;
      expect(seen.get(key), `${key} (0x${def.op.toString(16)})`).toBeUndefined();
      seen.set(key, def.op);
    }
  });

  it('every opcode outside the table disassembles as bad', () => {
    let bad = 0;
    for (let op = 0; op < 256; op++) {
      if (BY_OPCODE[op] !== undefined) continue;
      bad++;
      const bytes = new Uint8Array([op, 0x21, 3, 0, 1, 2, 3, 4]);
      expect(disassemble(bytes, 0), `opcode 0x${op.toString(16)}`).toBe(
        `(bad 0x${op.toString(16).padStart(2, '0')})`,
      );
    }
    expect(bad).toBe(256 - INSTRUCTIONS.length);
  });
});

/** A random canonical instruction: a defined opcode with every used field in range, the rest 0. */
const canonical = fc
  .record({
    def: fc.constantFrom(...INSTRUCTIONS),
    n: fc.tuple(fc.nat(7), fc.nat(7)),
    base: fc.nat(8),
    seg: fc.oneof(fc.nat(5), fc.constant(NO_SEG)),
    sel: fc.nat(0xffff),
    imm: fc.nat(0xffffffff),
  })
  .map(({ def, n, base, seg, sel, imm }) => {
    const limit: Partial<Record<OperandKind, number>> = { reg: 8, sreg: 6, cr: 5 };
    const bytes = new Uint8Array(8);
    bytes[0] = def.op;
    let nibble = 0;
    let value = 0;
    for (const k of def.operands) {
      const lim = limit[k];
      if (lim !== undefined) {
        const r = n[nibble]! % lim;
        bytes[1]! |= nibble++ === 0 ? r : r << 4;
      } else if (k === 'mem') {
        bytes[1]! |= base << 4;
        bytes[2] = seg;
        value = imm;
      } else if (k === 'far') {
        bytes[2] = sel & 0xff;
        bytes[3] = sel >>> 8;
        value = imm;
      } else value = k === 'vec' ? imm & 0xff : k === 'port' || k === 'imm16' ? imm & 0xffff : imm;
    }
    bytes.set(le32(value), 4);
    return bytes;
  });

describe('round trip', () => {
  it('assemble(disassemble(x)) = x for random canonical instructions', () => {
    fc.assert(
      fc.property(canonical, (bytes) => {
        const text = disassemble(bytes, 0);
        expect([...assemble(text).bytes], `${text} from ${Buffer.from(bytes).toString('hex')}`).toEqual([
          ...bytes,
        ]);
      }),
      { numRuns: 2000 },
    );
  });
});
