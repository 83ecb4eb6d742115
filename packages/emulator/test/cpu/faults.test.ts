/**
 * Exceptions (SDM Vol. 3A §6.3, §6.13, §6.15 Table 6-5): #DE, #UD for every undefined opcode and the
 * invalid register operands, the double-fault classes (benign, contributory, page fault), triple
 * fault to shutdown, and restartable faults: a handler repairs the cause, IRETs, and the faulting
 * instruction runs again with its registers as they were.
 */

import { describe, expect, it } from 'vitest';
import { segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { run } from '../../src/cpu/exec.js';
import { VEC } from '../../src/cpu/faults.js';
import { FL } from '../../src/cpu/flags.js';
import { INSTRUCTIONS, R, S } from '../../src/cpu/isa.js';
import {
  CODE_AT,
  code,
  dwords,
  enablePaging,
  enc,
  errIdt,
  exitFault,
  expectUnchanged,
  GDT,
  idtGate,
  type Machine,
  machine,
  mem,
  PG,
  PT1,
  program,
  SEL,
  setGdt,
  snapshot,
  stackTop,
  stepExit,
  TSS_AT,
} from './harness.js';

const HANDLER = 0x20000;

describe('#DE', () => {
  it.each([0, 3].flatMap((cpl) => ['divu reg,reg', 'remu reg,reg'].map((op) => ({ op, cpl }))))(
    '$op by zero at CPL $cpl: #DE, no error code, nothing changed',
    ({ op, cpl }) => {
      const name = `${op} at CPL ${cpl}`;
      const m = machine(cpl);
      m.cpu.reg[R.EAX] = 100;
      m.cpu.reg[R.ECX] = 0;
      program(m, enc(op, { a: R.EAX, b: R.ECX }));
      const before = snapshot(m);
      expect(stepExit(m), name).toEqual(exitFault(VEC.DE));
      expectUnchanged(m, before, name);
    },
  );

  it('divu by a non-zero value divides', () => {
    const m = machine(3);
    m.cpu.reg[R.EAX] = 100;
    m.cpu.reg[R.ECX] = 7;
    program(m, enc('divu reg,reg', { a: R.EAX, b: R.ECX }), enc('remu reg,reg', { a: R.ECX, b: R.ECX }));
    expect(stepExit(m, 2)).toEqual({ reason: 'budget', executed: 2 });
    expect([m.cpu.reg[R.EAX], m.cpu.reg[R.ECX]]).toEqual([14, 0]);
  });
});

describe('#UD', () => {
  const defined = new Set(INSTRUCTIONS.map((i) => i.op));
  const undefinedOps = Array.from({ length: 256 }, (_, op) => op).filter((op) => !defined.has(op));
  it.each(undefinedOps.map((op) => ({ op, name: `opcode 0x${op.toString(16).padStart(2, '0')}` })))(
    '$name is #UD at CPL 3',
    ({ op, name }) => {
      const m = machine(3);
      const instr = new Uint8Array(8);
      instr[0] = op;
      instr[1] = 0x21;
      program(m, instr);
      const before = snapshot(m);
      expect(stepExit(m), name).toEqual(exitFault(VEC.UD));
      expectUnchanged(m, before, name);
    },
  );

  it.each([
    { name: 'MOV CS, r', instr: enc('mov sreg,reg', { a: S.CS, b: R.EAX }) },
    { name: 'POP CS', instr: enc('pop sreg', { a: S.CS }) },
    { name: 'MOV sreg 6, r', instr: enc('mov sreg,reg', { a: 6, b: R.EAX }) },
    { name: 'MOV r, sreg 7', instr: enc('mov reg,sreg', { a: R.EAX, b: 7 }) },
    { name: 'PUSH sreg 6', instr: enc('push sreg', { a: 6 }) },
    { name: 'POP sreg 15', instr: enc('pop sreg', { a: 15 }) },
    { name: 'LD with segment override 6', instr: enc('ld reg,mem', { a: R.EAX, ...mem(0x100, 6) }) },
    { name: 'ST with segment override 0xE', instr: enc('st mem,reg', { a: R.EAX, ...mem(0x100, 0xe) }) },
  ])('$name is #UD', ({ name, instr }) => {
    const m = machine(0);
    m.cpu.reg[R.EAX] = SEL.code(0);
    m.phys.write32(m.cpu.esp, SEL.code(0));
    program(m, instr);
    const before = snapshot(m);
    expect(stepExit(m), name).toEqual(exitFault(VEC.UD));
    expectUnchanged(m, before, name);
  });
});

/** A handler that does nothing but stop the run: HLT at CPL 0 (the tests check the frame it got). */
function handlerAt(m: Machine, vector: number, opts: { selector?: number; present?: boolean } = {}): void {
  idtGate(m.cpu, vector, {
    selector: opts.selector ?? SEL.code(0),
    offset: HANDLER + vector * 8,
    dpl: 0,
    ...(opts.present === undefined ? {} : { present: opts.present }),
  });
  code(m, HANDLER + vector * 8, enc('hlt'));
}

describe('double fault (SDM Table 6-5) and triple fault', () => {
  it('#GP with no gate for vector 13: the #GP while delivering it makes #DF(0), delivered through vector 8', () => {
    const m = machine(3);
    handlerAt(m, VEC.DF);
    const esp = m.cpu.esp;
    m.cpu.eflags = FL.FIXED | FL.CF;
    program(m, enc('hlt')); // #GP(0) at CPL 3
    expect(run(m.cpu, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.cpl, m.cpu.eip, m.cpu.esp]).toEqual([0, HANDLER + VEC.DF * 8, stackTop(0) - 24]);
    expect(dwords(m, stackTop(0) - 24, 6)).toEqual([
      0,
      CODE_AT,
      SEL.code(3),
      FL.FIXED | FL.CF,
      esp,
      SEL.data(3),
    ]);
  });

  it.each([
    {
      name: '#GP then #NP (gate 13 not present)',
      first: VEC.GP,
      set: (m: Machine) => handlerAt(m, VEC.GP, { present: false }),
    },
    {
      name: '#GP then #TS (SS0 null)',
      first: VEC.GP,
      set: (m: Machine) => {
        handlerAt(m, VEC.GP);
        m.phys.write32(TSS_AT + 8, 0);
      },
    },
    {
      name: '#NP then #GP (gate 11 missing)',
      first: VEC.NP,
      set: () => {},
    },
    {
      name: '#DE then #GP (gate 0 missing)',
      first: VEC.DE,
      set: () => {},
    },
  ])('contributory then contributory is #DF: $name', ({ name, first, set }) => {
    const m = machine(3);
    handlerAt(m, VEC.DF, { selector: SEL.conf(0) }); // conforming: #DF runs on the ring-3 stack
    set(m);
    const esp = m.cpu.esp;
    const instr = {
      [VEC.GP]: enc('hlt'),
      [VEC.NP]: enc('mov sreg,reg', { a: S.DS, b: R.EAX }),
      [VEC.DE]: enc('divu reg,reg', { a: R.EAX, b: R.ECX }),
    }[first]!;
    m.cpu.reg[R.EAX] = (20 << 3) | 3;
    setGdt(m.cpu, 20, segmentDescriptor({ base: 0, limit: 0xfff, type: 0x2, dpl: 3, present: false }));
    program(m, instr);
    expect(run(m.cpu, 1), name).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.cpl, m.cpu.eip, m.cpu.esp], `${name}: in the #DF handler`).toEqual([
      3,
      HANDLER + VEC.DF * 8,
      esp - 16,
    ]);
    expect(dwords(m, esp - 16, 4), `${name}: #DF frame`).toEqual([0, CODE_AT, SEL.code(3), FL.FIXED]);
  });

  it('benign then contributory is handled serially: #UD with gate 6 not present delivers #NP(6 | IDT | EXT)', () => {
    const m = machine(3);
    handlerAt(m, VEC.UD, { present: false });
    handlerAt(m, VEC.NP, { selector: SEL.conf(0) });
    handlerAt(m, VEC.DF, { selector: SEL.conf(0) });
    const esp = m.cpu.esp;
    program(m, new Uint8Array(8));
    expect(run(m.cpu, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.eip, m.cpu.esp]).toEqual([HANDLER + VEC.NP * 8, esp - 16]);
    expect(dwords(m, esp - 16, 4)).toEqual([errIdt(VEC.UD, 1), CODE_AT, SEL.code(3), FL.FIXED]);
  });

  function pagedUser(): Machine {
    const m = machine(3, { limit: 0xffffffff });
    enablePaging(m);
    return m; // PT1 is empty: linear 0x400000.. is not present
  }

  it('contributory then #PF is handled serially: #GP whose ring-0 stack is not present delivers #PF', () => {
    const m = pagedUser();
    handlerAt(m, VEC.GP);
    handlerAt(m, VEC.PF, { selector: SEL.conf(0) });
    handlerAt(m, VEC.DF, { selector: SEL.conf(0) });
    m.phys.write32(TSS_AT + 4, 0x401000); // ESP0 on a page not present
    const esp = m.cpu.esp;
    program(m, enc('hlt'));
    expect(run(m.cpu, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.eip, m.cpu.mmu.cr2, m.cpu.esp]).toEqual([HANDLER + VEC.PF * 8, 0x400ffc, esp - 16]);
    expect(dwords(m, esp - 16, 4)).toEqual([2, CODE_AT, SEL.code(3), FL.FIXED]);
  });

  it.each([
    { name: '#PF then #PF (ring-0 stack not present)', gp: false },
    { name: '#PF then #GP (gate 14 missing)', gp: true },
  ])('#PF then a #PF or contributory fault is #DF: $name', ({ name, gp }) => {
    const m = pagedUser();
    if (!gp) handlerAt(m, VEC.PF);
    handlerAt(m, VEC.DF, { selector: SEL.conf(0) });
    m.phys.write32(TSS_AT + 4, 0x401000);
    const esp = m.cpu.esp;
    program(m, enc('ld reg,mem', { a: R.EAX, ...mem(0x400000) }));
    expect(run(m.cpu, 1), name).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.eip, m.cpu.esp], name).toEqual([HANDLER + VEC.DF * 8, esp - 16]);
    expect(dwords(m, esp - 16, 4), name).toEqual([0, CODE_AT, SEL.code(3), FL.FIXED]);
  });

  it.each([
    { name: 'no gates at all', set: () => {}, out: { vector: VEC.GP, errorCode: errIdt(VEC.DF, 1) } },
    {
      name: '#DF gate not present',
      set: (m: Machine) => handlerAt(m, VEC.DF, { present: false }),
      out: { vector: VEC.NP, errorCode: errIdt(VEC.DF, 1) },
    },
    {
      name: '#DF handler needs a ring-0 stack whose SS0 is null',
      set: (m: Machine) => {
        handlerAt(m, VEC.DF);
        m.phys.write32(TSS_AT + 8, 0);
      },
      out: { vector: VEC.TS, errorCode: 1 },
    },
  ])('triple fault: $name -> run() returns shutdown', ({ name, set, out }) => {
    const m = machine(3);
    set(m);
    program(m, enc('hlt'), enc('nop'));
    expect(run(m.cpu, 10), name).toEqual({ reason: 'shutdown', executed: 0, ...out });
    expect(m.cpu.shutdown, name).toBe(true);
    expect(run(m.cpu, 10), `${name}: stays shut down`).toEqual({ reason: 'shutdown', executed: 0 });
    m.cpu.reset();
    expect(m.cpu.shutdown, `${name}: reset`).toBe(false);
  });
});

describe('restartable faults: the handler repairs the cause, IRET re-executes the instruction', () => {
  it('#PF: a ring-0 handler maps the page; the load runs again and gets the data', () => {
    const m = machine(3, { limit: 0xffffffff });
    enablePaging(m);
    m.phys.write32(0x60010, 0x5eed);
    idtGate(m.cpu, VEC.PF, { selector: SEL.code(0), offset: HANDLER, dpl: 0 });
    code(
      m,
      HANDLER,
      enc('push reg', { a: R.ECX }),
      enc('mov reg,imm', { a: R.ECX, imm: 0x60000 | PG.P | PG.W | PG.U }),
      enc('st mem,reg', { a: R.ECX, ...mem(PT1) }),
      enc('pop reg', { a: R.ECX }),
      enc('add reg,imm', { a: R.ESP, imm: 4 }), // drop the error code
      enc('iret'),
    );
    for (const r of [R.EAX, R.ECX, R.EDX, R.EBX, R.EBP, R.ESI, R.EDI]) m.cpu.reg[r] = 0x100 + r;
    m.cpu.eflags = FL.FIXED | FL.IF | FL.CF;
    program(m, enc('ld reg,mem', { a: R.EAX, ...mem(0x400010) }), enc('nop'));
    const regs = Array.from(m.cpu.reg);
    expect(run(m.cpu, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.eip, m.cpu.mmu.cr2, m.phys.read32(m.cpu.esp)]).toEqual([HANDLER, 0x400010, 4]);
    expect(run(m.cpu, 6)).toEqual({ reason: 'budget', executed: 6 });
    expect([m.cpu.cpl, m.cpu.eip, m.cpu.eflags], 'back at the faulting load').toEqual([
      3,
      CODE_AT,
      FL.FIXED | FL.IF | FL.CF,
    ]);
    expect(Array.from(m.cpu.reg), 'registers as they were').toEqual(regs);
    expect(run(m.cpu, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.reg[R.EAX], m.cpu.eip]).toEqual([0x5eed, CODE_AT + 8]);
  });

  it('#NP: a handler marks the segment present; MOV DS runs again and loads it', () => {
    const m = machine(3);
    const slot = 20;
    const [lo, hi] = segmentDescriptor({ base: 0x50000, limit: 0xfff, type: 0x2, dpl: 3, present: false });
    setGdt(m.cpu, slot, [lo, hi]);
    idtGate(m.cpu, VEC.NP, { type: TYPE.TRAP_GATE, selector: SEL.code(0), offset: HANDLER, dpl: 0 });
    code(
      m,
      HANDLER,
      enc('push reg', { a: R.ECX }),
      enc('mov reg,imm', { a: R.ECX, imm: (hi | 0x8000_0000) >>> 0 }),
      enc('st mem,reg', { a: R.ECX, ...mem(GDT + slot * 8 + 4) }),
      enc('pop reg', { a: R.ECX }),
      enc('add reg,imm', { a: R.ESP, imm: 4 }),
      enc('iret'),
    );
    m.cpu.reg[R.EAX] = (slot << 3) | 3;
    program(m, enc('mov sreg,reg', { a: S.DS, b: R.EAX }));
    expect(run(m.cpu, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.eip, m.phys.read32(m.cpu.esp)], 'in the handler, error code = selector').toEqual([
      HANDLER,
      slot << 3,
    ]);
    expect(run(m.cpu, 7)).toEqual({ reason: 'budget', executed: 7 });
    expect([m.cpu.segSel[S.DS], m.cpu.segBase[S.DS], m.cpu.eip, m.cpu.cpl]).toEqual([
      (slot << 3) | 3,
      0x50000,
      CODE_AT + 8,
      3,
    ]);
  });

  it('#GP from a PUSH into a full stack leaves ESP and the stack as they were', () => {
    const m = machine(3);
    m.cpu.reg[R.ESP] = 2;
    program(m, enc('push imm', { imm: 7 }));
    const before = snapshot(m);
    expect(stepExit(m)).toEqual(exitFault(VEC.SS, 0));
    expectUnchanged(m, before, 'push');
  });
});
