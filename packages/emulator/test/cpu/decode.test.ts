/**
 * Strict decoding (docs/isa.md, "Encoding"), generated from the instruction table: for every
 * opcode, every field no operand uses set to a non-zero value and every used field set past its
 * operand's range raises #UD before anything changes, at CPL 0 and at CPL 3 (decoding comes before
 * the privilege, IOPL and UMIP checks, SDM Table 6-2); the canonical form, with each field at
 * either end of its range, does not. The disassembler refuses exactly what the CPU refuses.
 *
 * The fields each operand kind uses and its range are written out here again from the placement
 * rule, so the CPU's masks (isa.ts) are not their own oracle.
 */
import { describe, expect, it } from 'vitest';
import { disassemble } from '../../src/asm/disasm.js';
import { VEC } from '../../src/cpu/faults.js';
import { CR4 } from '../../src/cpu/flags.js';
import { encodingError, INSTRUCTIONS, type InstrDef } from '../../src/cpu/isa.js';
import { CODE_AT, exitFault, expectUnchanged, machine, program, snapshot, stepExit } from './harness.js';

type Field = 'a' | 'b' | 'byte2' | 'byte3' | 'imm';

interface Encoding {
  a: number;
  b: number;
  byte2: number;
  byte3: number;
  imm: number;
}

interface Layout {
  readonly used: ReadonlySet<Field>;
  /** Per used field: values inside the range (low and high end) and values past it. */
  readonly ranges: readonly { field: Field; good: number[]; bad: number[] }[];
}

const bitsFrom = (lo: number, hi: number): number[] =>
  Array.from({ length: hi - lo + 1 }, (_, i) => (2 ** (lo + i)) >>> 0);
const span = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

/** Register-like operands: the nibble's valid values (low, high end) and the invalid ones. */
const NIBBLE: Record<string, { good: number[]; bad: number[] }> = {
  reg: { good: [0, 7], bad: span(8, 15) },
  sreg: { good: [3, 5], bad: span(6, 15) }, // DS and GS: ES..GS are valid encodings, CS faults at execution
  cr: { good: [0, 4], bad: span(5, 15) },
};

function layout(def: InstrDef): Layout {
  const used = new Set<Field>();
  const ranges: { field: Field; good: number[]; bad: number[] }[] = [];
  let nibble = 0;
  for (const kind of def.operands) {
    if (kind === 'reg' || kind === 'sreg' || kind === 'cr') {
      const field: Field = nibble++ === 0 ? 'a' : 'b';
      used.add(field);
      ranges.push({ field, ...NIBBLE[kind]! });
    } else if (kind === 'mem') {
      for (const f of ['b', 'byte2', 'imm'] as const) used.add(f);
      ranges.push({ field: 'b', good: [0, 8], bad: span(9, 15) });
      ranges.push({
        field: 'byte2',
        good: [0, 5, 0xf],
        bad: [...span(6, 14), 0x10, 0x13, 0x1f, 0x20, 0x40, 0x80, 0xff],
      });
      ranges.push({ field: 'imm', good: [0, 0xffff_fffc], bad: [] });
    } else if (kind === 'far') {
      for (const f of ['byte2', 'byte3', 'imm'] as const) used.add(f);
    } else {
      used.add('imm');
      const top = { imm: 32, imm16: 16, vec: 8, port: 16 }[kind];
      ranges.push({
        field: 'imm',
        good: [0, (2 ** top - 1) >>> 0],
        bad: top === 32 ? [] : bitsFrom(top, 31),
      });
    }
  }
  return { used, ranges };
}

/** Values that must raise #UD in a field no operand uses: every nibble value, or every single bit and all ones. */
const UNUSED: Record<Field, number[]> = {
  a: span(1, 15),
  b: span(1, 15),
  byte2: [...bitsFrom(0, 7), 0xff],
  byte3: [...bitsFrom(0, 7), 0xff],
  imm: [...bitsFrom(0, 31), 0xffff_ffff],
};

/** The canonical form with every used field at its low end (and far pointers at 0). */
function canonical(def: InstrDef): Encoding {
  const e: Encoding = { a: 0, b: 0, byte2: 0, byte3: 0, imm: 0 };
  for (const r of layout(def).ranges) e[r.field] = r.good[0]!;
  return e;
}

function bytes(op: number, e: Encoding): Uint8Array {
  const out = new Uint8Array(8);
  out[0] = op;
  out[1] = (e.a & 0xf) | ((e.b & 0xf) << 4);
  out[2] = e.byte2;
  out[3] = e.byte3;
  new DataView(out.buffer).setUint32(4, e.imm >>> 0, true);
  return out;
}

const dwordsOf = (b: Uint8Array): [number, number] => {
  const v = new DataView(b.buffer, b.byteOffset, 8);
  return [v.getUint32(0, true), v.getUint32(4, true)];
};

interface Case {
  readonly name: string;
  readonly instr: Uint8Array;
}

/** The encodings of `def` the CPU must refuse: each unused field non-zero, each used field out of range. */
function invalidCases(def: InstrDef): Case[] {
  const { used, ranges } = layout(def);
  const base = canonical(def);
  const out: Case[] = [];
  const add = (field: Field, v: number, why: string) =>
    out.push({
      name: `${why} ${field} = 0x${v.toString(16)}`,
      instr: bytes(def.op, { ...base, [field]: v }),
    });
  for (const field of ['a', 'b', 'byte2', 'byte3', 'imm'] as const) {
    if (!used.has(field)) for (const v of UNUSED[field]) add(field, v, 'unused');
  }
  for (const r of ranges) for (const v of r.bad) add(r.field, v, 'out of range');
  return out;
}

/** Valid encodings of `def`: the canonical form, and each used field at the high end of its range. */
function validCases(def: InstrDef): Case[] {
  const base = canonical(def);
  const out: Case[] = [{ name: 'canonical', instr: bytes(def.op, base) }];
  for (const r of layout(def).ranges) {
    for (const v of r.good.slice(1)) {
      out.push({ name: `${r.field} = 0x${v.toString(16)}`, instr: bytes(def.op, { ...base, [r.field]: v }) });
    }
  }
  return out;
}

const title = (def: InstrDef) =>
  `0x${def.op.toString(16).padStart(2, '0')} ${def.mnemonic}${def.operands.length ? ` ${def.operands.join(',')}` : ''}`;

describe('strict decoding: every field no operand uses, and every field past its range, is #UD', () => {
  it.each(INSTRUCTIONS.map((def) => ({ def, name: title(def) })))('$name', ({ def, name }) => {
    const cases = invalidCases(def);
    expect(cases.length, `${name}: cases`).toBeGreaterThan(0);
    for (const cpl of [0, 3]) {
      const m = machine(cpl);
      if (cpl === 3) m.cpu.cr4 = CR4.UMIP; // SGDT, SIDT ...: decoding comes before the UMIP check too
      for (const c of cases) {
        const label = `${name} at CPL ${cpl}, ${c.name}`;
        program(m, c.instr);
        const before = snapshot(m);
        expect(stepExit(m), label).toEqual(exitFault(VEC.UD));
        expectUnchanged(m, before, label);
        expect(m.cpu.eip, `${label}: EIP at the instruction`).toBe(CODE_AT);
        const [w0, imm] = dwordsOf(c.instr);
        expect(encodingError(w0, imm), `${label}: encodingError`).toBeDefined();
        expect(disassemble(c.instr, 0), `${label}: disassembly`).toMatch(/^\(bad 0x[0-9a-f]{2}: .+\)$/);
      }
    }
  });
});

describe('strict decoding: the canonical form decodes and executes', () => {
  it.each(INSTRUCTIONS.map((def) => ({ def, name: title(def) })))('$name', ({ def, name }) => {
    for (const c of validCases(def)) {
      const label = `${name}, ${c.name}`;
      const m = machine(0);
      program(m, c.instr);
      const r = stepExit(m);
      // It may fault for what its operands name (#GP for a null TR, #DE for a zero divisor ...), and
      // HLT halts, but it is not refused at decoding.
      expect(r.reason === 'exit' && r.vector === VEC.UD, `${label}: ${JSON.stringify(r)}`).toBe(false);
      const [w0, imm] = dwordsOf(c.instr);
      expect(encodingError(w0, imm), `${label}: encodingError`).toBeUndefined();
      expect(disassemble(c.instr, 0), `${label}: disassembly`).not.toMatch(/^\(bad/);
    }
  });
});
