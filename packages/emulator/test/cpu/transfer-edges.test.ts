/**
 * Far transfers at the edges the fast paths (fast-transfers.ts) must leave to the general rules or
 * read exactly as they do: a return frame whose outer-ring half lies past the SS limit or in a page
 * that is not present (RETF and IRET check a whole frame at once when they can), RETF n to an outer
 * ring, an unusable data segment register kept by an outward return, far pointers with every bit
 * of the selector and offset in use, and must-be-zero fields of far transfers and INT n (decoded
 * with literal masks in exec.ts). Each fast-path case runs with and without the fast paths and
 * asserts both give the same result and state.
 */

import { describe, expect, it } from 'vitest';
import { gateDescriptor, segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { VEC } from '../../src/cpu/faults.js';
import { S } from '../../src/cpu/isa.js';
import {
  bothWays,
  enablePaging,
  enc,
  exitFault,
  type Machine,
  machine,
  PG,
  PT0,
  program,
  SEL,
  setGdt,
  stackTop,
  stepExit,
} from './harness.js';

const ENTRY = 0x20000;

/** Builds the machine and runs one instruction with the fast paths on and off; both must agree. */
const both = (build: () => Machine) => bothWays(build, (m) => stepExit(m));

/** Writes dwords at `at` upwards (a stack frame from its lowest address). */
function frame(m: Machine, at: number, dwords: number[]): void {
  for (const [i, v] of dwords.entries()) m.phys.write32(at + 4 * i, v);
}

describe('a return to an outer ring whose frame the fast path cannot read at once', () => {
  it('RETF: the ESP and SS dwords past the SS limit are #SS(0)', () => {
    const { r } = both(() => {
      const m = machine(0, { limit: 0x8ffff });
      const esp = 0x8fff4; // EIP at 0x8fff4, CS 0x8fff8, ESP 0x8fffc, SS 0x90000: past the limit
      m.cpu.reg[4] = esp;
      frame(m, esp, [ENTRY, SEL.code(3), stackTop(3) - 0x40, SEL.data(3)]);
      program(m, enc('retf'));
      return m;
    });
    expect(r).toEqual(exitFault(VEC.SS, 0));
  });

  it('IRET: the ESP and SS dwords past the SS limit are #SS(0)', () => {
    const { r } = both(() => {
      const m = machine(0, { limit: 0x8ffff });
      const esp = 0x8fff0; // EIP, CS, EFLAGS, ESP at 0x8fffc, SS at 0x90000: past the limit
      m.cpu.reg[4] = esp;
      frame(m, esp, [ENTRY, SEL.code(3), 0x202, stackTop(3) - 0x40, SEL.data(3)]);
      program(m, enc('iret'));
      return m;
    });
    expect(r).toEqual(exitFault(VEC.SS, 0));
  });

  it('RETF: a frame across a page boundary whose second page is not present is #PF', () => {
    const { r } = both(() => {
      const m = machine(0);
      const esp = 0x7fff4; // EIP, CS, ESP in page 0x7F; SS in page 0x80
      m.cpu.reg[4] = esp;
      frame(m, esp, [ENTRY, SEL.code(3), stackTop(3) - 0x40, SEL.data(3)]);
      program(m, enc('retf'));
      enablePaging(m);
      for (const a of [0x1000, 0x7f000]) m.cpu.mmu.translate(a, false, false); // GDT, first stack page
      m.phys.write32(PT0 + 4 * 0x80, (0x80 << 12) | PG.W | PG.U); // not present
      return m;
    });
    expect(r).toMatchObject({ reason: 'exit', vector: VEC.PF });
  });

  it('RETF 8 to an outer ring takes ESP and SS from above the released bytes, not from them', () => {
    const { m, r } = both(() => {
      const m = machine(0);
      const esp = m.cpu.esp;
      // EIP, CS, then 8 released bytes holding a plausible SS:ESP, then the real ESP and SS
      frame(m, esp, [ENTRY, SEL.code(3), stackTop(3) - 0x80, SEL.data(3), stackTop(3) - 0x40, SEL.data(3)]);
      program(m, enc('retf imm16', { imm: 8 }));
      return m;
    });
    expect(r).toEqual({ reason: 'budget', executed: 1 });
    expect(m.cpu.esp).toBe(stackTop(3) - 0x40 + 8);
  });
});

describe('an outward return and the data segment registers', () => {
  it('a null selector with RPL 3 in DS (not usable) stays as it is after RETF from ring 0 to 3', () => {
    const { m, r } = both(() => {
      const m = machine(0);
      m.cpu.segSel[S.DS] = 3;
      m.cpu.segBase[S.DS] = 0;
      m.cpu.segLimit[S.DS] = 0;
      m.cpu.segHi[S.DS] = 0;
      m.cpu.segFlags[S.DS] = 0;
      frame(m, m.cpu.esp, [ENTRY, SEL.code(3), stackTop(3) - 0x40, SEL.data(3)]);
      program(m, enc('retf'));
      return m;
    });
    expect(r).toEqual({ reason: 'budget', executed: 1 });
    expect(m.cpu.segSel[S.DS]).toBe(3);
  });
});

describe('far pointers use every bit of their selector and offset', () => {
  it.each(['jmpf far', 'callf far'])(
    '%s 0xFFFF:0xFFFFFFFF decodes (the selector is beyond the GDT: #GP)',
    (name) => {
      const m = machine(0);
      program(m, enc(name, { sel: 0xffff, imm: 0xffffffff }));
      expect(stepExit(m)).toMatchObject({ reason: 'exit', vector: VEC.GP });
    },
  );

  it.each(['jmpf far', 'callf far'])('%s to a 4 GiB code segment at offset 0x80000000', (name) => {
    const m = machine(0);
    setGdt(m.cpu, 20, segmentDescriptor({ base: 0, limit: 0xffffffff, type: 0xa, dpl: 0 }));
    program(m, enc(name, { sel: 20 << 3, imm: 0x80000000 }));
    expect(stepExit(m)).toEqual({ reason: 'budget', executed: 1 });
    expect(m.cpu.eip).toBe(0x80000000);
  });
});

describe('must-be-zero fields of far transfers and software interrupts', () => {
  it.each([
    ['int vec', 0x100],
    ['int3', 1],
  ])('%s with imm 0x%s is #UD, also when the host takes software interrupts as exits', (name, imm) => {
    const m = machine(3);
    m.cpu.exitSoftware = true;
    program(m, enc(name, { imm }));
    expect(stepExit(m)).toEqual(exitFault(VEC.UD));
  });

  it.each([1, 0x10])(
    'CALLF through a valid call gate with byte 1 = 0x%s is #UD, in ring 3 still',
    (byte1) => {
      const m = machine(3);
      setGdt(
        m.cpu,
        SEL.gate >>> 3,
        gateDescriptor({ type: TYPE.CALL_GATE, selector: SEL.code(0), offset: ENTRY, dpl: 3 }),
      );
      const i = enc('callf far', { sel: SEL.gate | 3, imm: 0 });
      i[1] = byte1;
      program(m, i);
      expect(stepExit(m)).toEqual(exitFault(VEC.UD));
      expect(m.cpu.cpl).toBe(3);
    },
  );
});
