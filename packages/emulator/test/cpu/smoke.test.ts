import { describe, expect, it } from 'vitest';
import { run } from '../../src/cpu/exec.js';
import { VEC } from '../../src/cpu/faults.js';
import { FL } from '../../src/cpu/flags.js';
import { R, S } from '../../src/cpu/isa.js';
import {
  CODE_AT,
  cpuState,
  enablePaging,
  enc,
  firstDiff,
  idtGate,
  machine,
  program,
  SEL,
  stackTop,
  stepExit,
} from './harness.js';

describe('cpu smoke', () => {
  it('runs straight-line code: mov, add with flags, loop with jnz', () => {
    const m = machine(0);
    program(
      m,
      enc('mov reg,imm', { a: R.EAX, imm: 0 }),
      enc('mov reg,imm', { a: R.ECX, imm: 5 }),
      enc('add reg,reg', { a: R.EAX, b: R.ECX }),
      enc('dec reg', { a: R.ECX }),
      enc('jnz imm', { imm: CODE_AT + 16 }),
      enc('hlt'),
    );
    const r = run(m.cpu, 100);
    expect(r).toEqual({ reason: 'halt', executed: 2 + 5 * 3 + 1 });
    expect(m.cpu.reg[R.EAX]).toBe(15);
    expect(m.cpu.eflags & FL.ZF).toBe(FL.ZF);
  });

  it('a data load with DPL < CPL faults #GP(selector) and changes nothing', () => {
    const m = machine(3);
    m.cpu.reg[R.EAX] = SEL.data(0) | 3;
    program(m, enc('mov sreg,reg', { a: S.DS, b: R.EAX }));
    const r = stepExit(m);
    expect(r).toEqual({ reason: 'exit', executed: 0, vector: VEC.GP, errorCode: SEL.data(0) });
    expect(m.cpu.segSel[S.DS]).toBe(SEL.data(3));
    expect(m.cpu.eip).toBe(CODE_AT);
  });

  it('INT n from ring 3 through a DPL-3 gate switches to the ring-0 stack and IRET comes back', () => {
    const m = machine(3);
    idtGate(m.cpu, 0x80, { selector: SEL.code(0), offset: 0x20000, dpl: 3 });
    program(m, enc('int vec', { imm: 0x80 }), enc('hlt'));
    m.phys.writeBytes(0x20000, enc('iret'));
    m.cpu.eflags |= FL.IF;
    const esp3 = m.cpu.reg[R.ESP]! >>> 0;
    expect(run(m.cpu, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect(m.cpu.cpl).toBe(0);
    expect(m.cpu.segSel[S.SS]).toBe(SEL.data(0));
    expect(m.cpu.reg[R.ESP]! >>> 0).toBe(stackTop(0) - 20);
    expect([0, 4, 8, 12, 16].map((o) => m.phys.read32(stackTop(0) - 20 + o))).toEqual([
      CODE_AT + 8,
      SEL.code(3),
      FL.FIXED | FL.IF,
      esp3,
      SEL.data(3),
    ]);
    expect(m.cpu.eflags & FL.IF).toBe(0);
    expect(run(m.cpu, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.eip).toBe(CODE_AT + 8);
    expect(m.cpu.reg[R.ESP]! >>> 0).toBe(esp3);
    expect(m.cpu.eflags & FL.IF).toBe(FL.IF);
  });

  it('a privileged instruction at CPL 3 is #GP(0)', () => {
    const m = machine(3);
    program(m, enc('hlt'));
    expect(stepExit(m)).toEqual({ reason: 'exit', executed: 0, vector: VEC.GP, errorCode: 0 });
  });

  // The inner loop of run() ends every 1024 instructions for V8's sake (exec.ts, CHUNK): a run
  // across those ends must leave what single steps leave, with paging off and on.
  for (const paged of [false, true]) {
    it(`one run of 5000 instructions leaves the state of 5000 single steps (paging ${paged ? 'on' : 'off'})`, () => {
      const load = (): ReturnType<typeof machine> => {
        const m = machine(3);
        if (paged) enablePaging(m);
        program(
          m,
          enc('mov reg,imm', { a: R.EBX, imm: 0x40000 }),
          enc('ld reg,mem', { a: R.EAX, b: R.EBX, imm: 0 }),
          enc('add reg,imm', { a: R.EAX, imm: 3 }),
          enc('st mem,reg', { a: R.EAX, b: R.EBX, imm: 0 }),
          enc('push reg', { a: R.EAX }),
          enc('pop reg', { a: R.EDX }),
          enc('inc reg', { a: R.ECX }),
          enc('jmp imm', { imm: CODE_AT + 8 }),
        );
        return m;
      };
      const once = load();
      const steps = load();
      expect(run(once.cpu, 5000)).toEqual({ reason: 'budget', executed: 5000 });
      for (let i = 0; i < 5000; i++) expect(run(steps.cpu, 1).executed).toBe(1);
      expect(cpuState(once.cpu)).toEqual(cpuState(steps.cpu));
      expect([once.cpu.instructions, steps.cpu.instructions]).toEqual([5000, 5000]);
      // a MOV, 714 turns of 7 and the LD of the next: the store wrote 3 x 714 at DS:0x40000
      expect(once.cpu.reg[R.ECX]).toBe(714);
      expect(once.phys.read32(0x40000)).toBe(3 * 714);
      expect(firstDiff(once.phys.ram, steps.phys.ram)).toBe(-1); // the stack slot and everything
    });
  }

  for (const movDs of [false, true]) {
    it(`${movDs ? 'a MOV DS' : 'a NOP'} as instruction 1024 and a faulting load as 1025: one run stops where single steps do`, () => {
      // 3 instructions, 340 turns of 3, then a NOP (1024th: the inner loop ends at `stop`) or a MOV DS
      // (1024th: a LIGHT prologue for two reasons at once), then a load beyond the DS limit (1025th:
      // #GP(0), stopped by stepExit's exitVectors, EIP at the load).
      const load = (): ReturnType<typeof machine> => {
        const m = machine(3);
        program(
          m,
          enc('mov reg,imm', { a: R.ECX, imm: 340 }),
          enc('mov reg,imm', { a: R.EAX, imm: SEL.data(3) }),
          enc('nop'),
          enc('nop'),
          enc('dec reg', { a: R.ECX }),
          enc('jnz imm', { imm: CODE_AT + 24 }),
          movDs ? enc('mov sreg,reg', { a: S.DS, b: R.EAX }) : enc('nop'),
          enc('ld reg,mem', { a: R.EAX, b: R.EBX, imm: 0x200000 }),
        );
        return m;
      };
      const fault = { reason: 'exit', vector: VEC.GP, errorCode: 0 };
      const once = load();
      const steps = load();
      expect(stepExit(once, 5000)).toEqual({ ...fault, executed: 1024 });
      for (let i = 0; i < 1024; i++) expect(stepExit(steps)).toEqual({ reason: 'budget', executed: 1 });
      expect(stepExit(steps)).toEqual({ ...fault, executed: 0 });
      expect(once.cpu.eip).toBe(CODE_AT + 7 * 8); // at the load
      expect(cpuState(once.cpu)).toEqual(cpuState(steps.cpu));
      expect([once.cpu.instructions, steps.cpu.instructions]).toEqual([1024, 1024]);
    });
  }
});
