/**
 * Interrupt and exception delivery and IRET (reference §3.4, §3.5; SDM §6.12, §6.13 and the INT n /
 * IRET pseudocode): the gate DPL check of INT n / INT3 for every CPL x gate DPL x handler DPL,
 * hardware interrupts and exceptions ignoring the gate DPL, the EXT bit, gate and stack faults, the
 * interrupt shadow of STI and MOV SS, HLT, and IRET's EFLAGS rules under the old CPL.
 */

import { describe, expect, it } from 'vitest';
import { segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { run } from '../../src/cpu/exec.js';
import { VEC } from '../../src/cpu/faults.js';
import { FL } from '../../src/cpu/flags.js';
import { R, S } from '../../src/cpu/isa.js';
import { IoBus } from '../../src/devices/bus.js';
import { PIC_PORT, Pic } from '../../src/devices/pic.js';
import {
  CODE_AT,
  code,
  dwords,
  enc,
  errIdt,
  errSel,
  exitFault,
  expectUnchanged,
  IDT,
  IrqStub,
  idtGate,
  KIND,
  loadCache,
  type Machine,
  machine,
  mem,
  program,
  SEL,
  setFlags,
  setGdt,
  snapshot,
  stackTop,
  stepExit,
  TSS_AT,
} from './harness.js';

const TARGET = 20;
const SPARE = 22;
const ENTRY = 0x20000;
const NEXT = CODE_AT + 8;
const V = 0x40;

const codeDesc = (dpl: number, conforming: boolean, present = true, limit = 0xfffff): [number, number] =>
  segmentDescriptor({ base: 0, limit, type: conforming ? 0xe : 0xa, dpl, present });

type Outcome =
  | { readonly vector: number; readonly code: number }
  | { readonly cpl: number; readonly inward: boolean };

/** INT n (SDM INT n pseudocode, reference §3.5): gate DPL >= CPL, handler DPL <= CPL. */
function intRule(cpl: number, gdpl: number, tdpl: number, conforming: boolean, target: number): Outcome {
  if (cpl > gdpl) return { vector: VEC.GP, code: errIdt(V) };
  if (tdpl > cpl) return { vector: VEC.GP, code: errSel(target) };
  const inward = !conforming && tdpl < cpl;
  return { cpl: inward ? tdpl : cpl, inward };
}

/** EFLAGS before an event, and after it through an interrupt or trap gate (TF, NT cleared; IF for interrupt gates). */
const FLAGS_IN = FL.FIXED | FL.IF | FL.TF | FL.NT | FL.CF;
const flagsOut = (type: number): number => FLAGS_IN & ~(FL.TF | FL.NT | (type === TYPE.INT_GATE ? FL.IF : 0));

/** Checks the state after an event was delivered to ENTRY with return address `ret`. */
function checkDelivered(
  m: Machine,
  name: string,
  from: { cpl: number; esp: number; flags: number },
  to: { cpl: number; inward: boolean },
  target: number,
  ret: number,
  type: number,
  errorCode?: number,
): void {
  const err = errorCode === undefined ? [] : [errorCode];
  expect([m.cpu.segSel[S.CS], m.cpu.cpl], `${name}: CS, CPL`).toEqual([(target & 0xfffc) | to.cpl, to.cpl]);
  expect(m.cpu.eflags, `${name}: EFLAGS`).toBe(flagsOut(type));
  if (to.inward) {
    const sp = stackTop(to.cpl) - 20 - 4 * err.length;
    expect([m.cpu.segSel[S.SS], m.cpu.esp], `${name}: SS:ESP from the TSS`).toEqual([SEL.data(to.cpl), sp]);
    expect(dwords(m, sp, 5 + err.length), `${name}: frame`).toEqual([
      ...err,
      ret,
      SEL.code(from.cpl),
      from.flags,
      from.esp,
      SEL.data(from.cpl),
    ]);
  } else {
    const sp = from.esp - 12 - 4 * err.length;
    expect([m.cpu.segSel[S.SS], m.cpu.esp], `${name}: same stack`).toEqual([SEL.data(from.cpl), sp]);
    expect(dwords(m, sp, 3 + err.length), `${name}: frame`).toEqual([
      ...err,
      ret,
      SEL.code(from.cpl),
      from.flags,
    ]);
  }
}

describe('INT n: CPL x gate DPL x handler DPL x conforming x gate type', () => {
  const rows = [];
  for (const type of [TYPE.INT_GATE, TYPE.TRAP_GATE])
    for (const conforming of [false, true])
      for (let cpl = 0; cpl < 4; cpl++)
        for (let gdpl = 0; gdpl < 4; gdpl++)
          for (let tdpl = 0; tdpl < 4; tdpl++) {
            const g = type === TYPE.INT_GATE ? 'interrupt' : 'trap';
            const k = conforming ? 'conforming' : 'non-conforming';
            rows.push({
              name: `INT 0x40 at CPL ${cpl}: ${g} gate DPL ${gdpl} -> ${k} DPL ${tdpl}`,
              type,
              conforming,
              cpl,
              gdpl,
              tdpl,
            });
          }
  it.each(rows)('$name', ({ name, type, conforming, cpl, gdpl, tdpl }) => {
    const m = machine(cpl);
    const target = (TARGET << 3) | 3; // the RPL in the gate is ignored: CS.RPL = new CPL
    setGdt(m.cpu, TARGET, codeDesc(tdpl, conforming));
    idtGate(m.cpu, V, { type, selector: target, offset: ENTRY, dpl: gdpl });
    m.cpu.eflags = FLAGS_IN;
    program(m, enc('int vec', { imm: V }));
    const esp = m.cpu.esp;
    const out = intRule(cpl, gdpl, tdpl, conforming, target);
    const before = snapshot(m);
    const r = stepExit(m);
    if ('vector' in out) {
      expect(r, name).toEqual(exitFault(out.vector, out.code));
      expectUnchanged(m, before, name);
      return;
    }
    expect(r, name).toEqual({ reason: 'budget', executed: 1 });
    expect(m.cpu.eip, `${name}: EIP`).toBe(ENTRY);
    checkDelivered(m, name, { cpl, esp, flags: FLAGS_IN }, out, target, NEXT, type);
  });

  it.each([0, 1, 2, 3].flatMap((cpl) => [0, 3].map((gdpl) => ({ cpl, gdpl }))))(
    'INT3 at CPL $cpl, gate DPL $gdpl',
    ({ cpl, gdpl }) => {
      const name = `INT3 at CPL ${cpl}, gate DPL ${gdpl}`;
      const m = machine(cpl);
      idtGate(m.cpu, VEC.BP, { selector: SEL.code(0), offset: ENTRY, dpl: gdpl });
      program(m, enc('int3'));
      const r = stepExit(m);
      if (cpl > gdpl) expect(r, name).toEqual(exitFault(VEC.GP, errIdt(VEC.BP)));
      else {
        expect(r, name).toEqual({ reason: 'budget', executed: 1 });
        expect(
          [m.cpu.cpl, m.cpu.eip, m.phys.read32(m.cpu.esp)],
          `${name}: a trap returns after INT3`,
        ).toEqual([0, ENTRY, NEXT]);
      }
    },
  );
});

describe('hardware interrupts and exceptions ignore the gate DPL', () => {
  const rows = [0, 1, 2, 3].flatMap((cpl) => [0, 1, 2, 3].map((gdpl) => ({ cpl, gdpl })));

  it.each(rows)('hardware interrupt at CPL $cpl through a gate of DPL $gdpl', ({ cpl, gdpl }) => {
    const name = `IRQ at CPL ${cpl}, gate DPL ${gdpl}`;
    const m = machine(cpl);
    const irq = new IrqStub(V);
    m.cpu.irq = irq;
    idtGate(m.cpu, V, { selector: SEL.code(0), offset: ENTRY, dpl: gdpl });
    m.cpu.eflags = FLAGS_IN;
    program(m, enc('nop'));
    code(m, ENTRY, enc('nop'));
    const esp = m.cpu.esp;
    // The interrupt is taken before the instruction at CS:EIP; then the handler's first instruction runs.
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    expect([irq.acked, m.cpu.eip], `${name}: acknowledged, handler ran`).toEqual([[V], ENTRY + 8]);
    checkDelivered(
      m,
      name,
      { cpl, esp, flags: FLAGS_IN },
      { cpl: 0, inward: cpl > 0 },
      SEL.code(0),
      CODE_AT,
      TYPE.INT_GATE,
    );
  });

  it.each(rows)(
    '#UD at CPL $cpl through a gate of DPL $gdpl (a fault: EIP of the instruction)',
    ({ cpl, gdpl }) => {
      const name = `#UD at CPL ${cpl}, gate DPL ${gdpl}`;
      const m = machine(cpl);
      idtGate(m.cpu, VEC.UD, { type: TYPE.TRAP_GATE, selector: SEL.code(0), offset: ENTRY, dpl: gdpl });
      m.cpu.eflags = FLAGS_IN;
      m.phys.write32(CODE_AT, 0); // opcode 0x00
      m.cpu.eip = CODE_AT;
      const esp = m.cpu.esp;
      // The budget counts the faulting instruction once its exception is delivered.
      expect(run(m.cpu, 1), name).toEqual({ reason: 'budget', executed: 1 });
      expect(m.cpu.eip, `${name}: EIP`).toBe(ENTRY);
      checkDelivered(
        m,
        name,
        { cpl, esp, flags: FLAGS_IN },
        { cpl: 0, inward: cpl > 0 },
        SEL.code(0),
        CODE_AT,
        TYPE.TRAP_GATE,
      );
    },
  );

  it.each([0, 1, 2, 3])('#GP(0) from a load beyond the DS limit at CPL %i pushes its error code', (cpl) => {
    const name = `#GP from LD at CPL ${cpl}`;
    const m = machine(cpl);
    idtGate(m.cpu, VEC.GP, { selector: SEL.code(0), offset: ENTRY, dpl: 0 });
    m.cpu.eflags = FLAGS_IN;
    program(m, enc('ld reg,mem', { a: R.EAX, ...mem(0xfffff0) }));
    const esp = m.cpu.esp;
    expect(run(m.cpu, 1), name).toEqual({ reason: 'budget', executed: 1 });
    const to = { cpl: 0, inward: cpl > 0 };
    checkDelivered(m, name, { cpl, esp, flags: FLAGS_IN }, to, SEL.code(0), CODE_AT, TYPE.INT_GATE, 0);
  });

  it.each([VEC.DF, VEC.GP, VEC.PF])('INT %i pushes no error code, although the exception would', (vector) => {
    const name = `INT ${vector}`;
    const m = machine(0);
    idtGate(m.cpu, vector, { selector: SEL.code(0), offset: ENTRY, dpl: 0 });
    m.cpu.eflags = FLAGS_IN;
    program(m, enc('int vec', { imm: vector }));
    const esp = m.cpu.esp;
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    checkDelivered(
      m,
      name,
      { cpl: 0, esp, flags: FLAGS_IN },
      { cpl: 0, inward: false },
      SEL.code(0),
      NEXT,
      TYPE.INT_GATE,
    );
  });

  it('a hardware interrupt is not taken while IF = 0', () => {
    const m = machine(0);
    const irq = new IrqStub(V);
    m.cpu.irq = irq;
    idtGate(m.cpu, V, { selector: SEL.code(0), offset: ENTRY, dpl: 0 });
    program(m, enc('nop'), enc('nop'));
    expect(stepExit(m, 2)).toEqual({ reason: 'budget', executed: 2 });
    expect([irq.acked, m.cpu.eip]).toEqual([[], CODE_AT + 16]);
  });
});

describe('gate and handler faults, with the EXT bit of the event being delivered', () => {
  type Source = 'INT n' | 'hardware' | 'exception';
  const sources: { source: Source; vector: number; ext: number }[] = [
    { source: 'INT n', vector: V, ext: 0 },
    { source: 'hardware', vector: V, ext: 1 },
    { source: 'exception', vector: VEC.UD, ext: 1 }, // SDM §6.13: an earlier exception is an external event
  ];
  const gate = (
    m: Machine,
    vector: number,
    f: Partial<{ type: number; selector: number; present: boolean }>,
  ) =>
    idtGate(m.cpu, vector, {
      type: f.type ?? TYPE.INT_GATE,
      selector: f.selector ?? SEL.code(0),
      offset: ENTRY,
      dpl: 3,
      ...(f.present === undefined ? {} : { present: f.present }),
    });
  const cases: {
    name: string;
    set: (m: Machine, v: number) => void;
    out: (v: number, ext: number) => [number, number];
  }[] = [
    {
      name: 'vector beyond the IDT limit',
      set: (m, v) => {
        gate(m, v, {});
        m.cpu.idtLimit = v * 8 + 6;
      },
      out: (v, ext) => [VEC.GP, errIdt(v, ext)],
    },
    {
      name: 'gate not present',
      set: (m, v) => gate(m, v, { present: false }),
      out: (v, ext) => [VEC.NP, errIdt(v, ext)],
    },
    {
      name: 'a call gate in the IDT',
      set: (m, v) => gate(m, v, { type: TYPE.CALL_GATE }),
      out: (v, ext) => [VEC.GP, errIdt(v, ext)],
    },
    {
      name: 'a code descriptor in the IDT',
      set: (m, v) => {
        const [lo, hi] = codeDesc(3, false);
        m.phys.write32(IDT + v * 8, lo);
        m.phys.write32(IDT + v * 8 + 4, hi);
      },
      out: (v, ext) => [VEC.GP, errIdt(v, ext)],
    },
    {
      name: 'handler selector null',
      set: (m, v) => gate(m, v, { selector: 0 }),
      out: (_, ext) => [VEC.GP, ext],
    },
    {
      name: 'handler beyond the GDT',
      set: (m, v) => gate(m, v, { selector: 40 << 3 }),
      out: (_, ext) => [VEC.GP, (40 << 3) | ext],
    },
    {
      name: 'handler a data segment',
      set: (m, v) => gate(m, v, { selector: SEL.data(0) }),
      out: (_, ext) => [VEC.GP, SEL.data(0) | ext],
    },
    {
      name: 'handler not present',
      set: (m, v) => {
        setGdt(m.cpu, TARGET, codeDesc(0, false, false));
        gate(m, v, { selector: TARGET << 3 });
      },
      out: (_, ext) => [VEC.NP, (TARGET << 3) | ext],
    },
    {
      name: 'entry beyond the handler limit',
      set: (m, v) => {
        setGdt(m.cpu, TARGET, codeDesc(0, false, true, ENTRY - 1));
        gate(m, v, { selector: TARGET << 3 });
      },
      out: (_, ext) => [VEC.GP, ext],
    },
    {
      name: 'handler less privileged than CPL (non-conforming DPL 3 from CPL 1)',
      set: (m, v) => {
        enterRing(m, 1);
        gate(m, v, { selector: SEL.code(3) });
      },
      out: (_, ext) => [VEC.GP, (SEL.code(3) & ~3) | ext],
    },
    { name: 'SS0 null in the TSS', set: (m, v) => tssSs(m, v, 0), out: (_, ext) => [VEC.TS, ext] },
    {
      name: 'SS0 RPL 3',
      set: (m, v) => tssSs(m, v, SEL.data(0) | 3),
      out: (_, ext) => [VEC.TS, SEL.data(0) | ext],
    },
    {
      name: 'SS0 DPL 3',
      set: (m, v) => tssSs(m, v, SEL.data(3) & ~3),
      out: (_, ext) => [VEC.TS, (SEL.data(3) & ~3) | ext],
    },
    {
      name: 'SS0 beyond the GDT',
      set: (m, v) => tssSs(m, v, 40 << 3),
      out: (_, ext) => [VEC.TS, (40 << 3) | ext],
    },
    {
      name: 'SS0 not present',
      set: (m, v) => {
        setGdt(
          m.cpu,
          SPARE,
          segmentDescriptor({ base: 0, limit: 0xfffff, type: 0x2, dpl: 0, present: false }),
        );
        tssSs(m, v, SPARE << 3);
      },
      out: (_, ext) => [VEC.SS, (SPARE << 3) | ext],
    },
    {
      name: 'ESP0 = 16: no room for the 20-byte frame',
      set: (m, v) => {
        tssSs(m, v, SEL.data(0));
        m.phys.write32(TSS_AT + 4, 16);
      },
      out: (_, ext) => [VEC.SS, SEL.data(0) | ext],
    },
    {
      name: 'TSS too short for SS0',
      set: (m, v) => {
        gate(m, v, {});
        m.cpu.trLimit = 8;
      },
      out: (_, ext) => [VEC.TS, SEL.tss | ext],
    },
    {
      name: 'same ring, ESP = 8: no room for the 12-byte frame',
      set: (m, v) => {
        enterRing(m, 0);
        gate(m, v, {});
        m.cpu.reg[R.ESP] = 8;
      },
      out: (_, ext) => [VEC.SS, ext],
    },
  ];
  function enterRing(m: Machine, ring: number): void {
    for (const s of [S.SS, S.DS, S.ES, S.FS, S.GS]) loadCache(m.cpu, s, SEL.data(ring));
    loadCache(m.cpu, S.CS, SEL.code(ring));
    m.cpu.reg[R.ESP] = stackTop(ring) - 0x100;
  }
  function tssSs(m: Machine, v: number, ss: number): void {
    gate(m, v, {});
    m.phys.write32(TSS_AT + 8, ss);
  }

  const rows = cases.flatMap((c) => sources.map((s) => ({ ...c, ...s, name: `${s.source}: ${c.name}` })));
  it.each(rows)('$name', ({ name, set, out, source, vector, ext }) => {
    const m = machine(3);
    const irq = new IrqStub(source === 'hardware' ? V : -1);
    m.cpu.irq = irq;
    m.cpu.eflags |= FL.IF;
    set(m, vector);
    if (source === 'INT n') program(m, enc('int vec', { imm: V }));
    else if (source === 'exception')
      program(m, new Uint8Array(8)); // opcode 0x00: #UD
    else program(m, enc('nop'));
    // Deliver the first event; stop at the fault raised while delivering it.
    m.cpu.exitVectors = ~(1 << VEC.UD);
    const before = snapshot(m);
    const r = run(m.cpu, 1);
    const [vec, code] = out(vector, ext);
    expect(r, name).toEqual(exitFault(vec, code));
    expectUnchanged(m, before, name);
    expect(irq.acked, `${name}: acknowledged`).toEqual(source === 'hardware' ? [V] : []);
  });
});

describe('interrupt shadow and HLT', () => {
  function withIrq(when: (m: Machine) => boolean): { m: Machine; irq: IrqStub } {
    const m = machine(0);
    const irq = new IrqStub(V, () => when(m));
    m.cpu.irq = irq;
    idtGate(m.cpu, V, { selector: SEL.code(0), offset: ENTRY, dpl: 0 });
    code(m, ENTRY, enc('nop'));
    return { m, irq };
  }

  it('STI with IF = 0: the interrupt is taken after the instruction that follows STI', () => {
    const { m, irq } = withIrq(() => true);
    program(m, enc('sti'), enc('nop'), enc('nop'));
    expect(stepExit(m, 2)).toEqual({ reason: 'budget', executed: 2 });
    expect([irq.acked, m.cpu.eip], 'after STI and one more instruction').toEqual([[], CODE_AT + 16]);
    expect(stepExit(m, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect([irq.acked, m.cpu.eip, m.phys.read32(m.cpu.esp)], 'taken before the third').toEqual([
      [V],
      ENTRY + 8,
      CODE_AT + 16,
    ]);
  });

  it('STI with IF = 1 already: no shadow', () => {
    const { m, irq } = withIrq((mm) => mm.cpu.instructions >= 1);
    m.cpu.eflags |= FL.IF;
    program(m, enc('sti'), enc('nop'));
    expect(stepExit(m, 2)).toEqual({ reason: 'budget', executed: 2 });
    expect([irq.acked, m.phys.read32(m.cpu.esp)], 'taken right after STI').toEqual([[V], CODE_AT + 8]);
  });

  it.each(['mov', 'pop'] as const)('%s SS: the interrupt waits one more instruction', (via) => {
    const { m, irq } = withIrq((mm) => mm.cpu.instructions >= 1);
    m.cpu.eflags |= FL.IF;
    m.cpu.reg[R.EAX] = SEL.data(0);
    m.phys.write32(m.cpu.esp, SEL.data(0));
    program(
      m,
      via === 'mov' ? enc('mov sreg,reg', { a: S.SS, b: R.EAX }) : enc('pop sreg', { a: S.SS }),
      enc('nop'),
      enc('nop'),
    );
    expect(stepExit(m, 2)).toEqual({ reason: 'budget', executed: 2 });
    expect(irq.acked, 'held off for one instruction').toEqual([]);
    expect(stepExit(m, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect([irq.acked, m.phys.read32(m.cpu.esp)]).toEqual([[V], CODE_AT + 16]);
  });

  it('HLT stops the run; an interrupt wakes it and returns after the HLT', () => {
    const { m, irq } = withIrq((mm) => mm.cpu.halted);
    m.cpu.eflags |= FL.IF;
    program(m, enc('hlt'), enc('nop'));
    expect(stepExit(m, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect(m.cpu.halted).toBe(true);
    expect(stepExit(m, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect([irq.acked, m.cpu.halted, m.cpu.eip, m.phys.read32(m.cpu.esp)]).toEqual([
      [V],
      false,
      ENTRY + 8,
      NEXT,
    ]);
  });

  it('HLT with IF = 0 returns reason halt', () => {
    const { m } = withIrq(() => false);
    program(m, enc('hlt'));
    expect(stepExit(m, 5)).toEqual({ reason: 'halt', executed: 1 });
  });
});

describe('IRET: EFLAGS under the old CPL (IF if CPL <= IOPL, IOPL if CPL = 0)', () => {
  const rows = [];
  for (let cpl = 0; cpl < 4; cpl++)
    for (let iopl = 0; iopl < 4; iopl++)
      for (const ifWas of [false, true])
        for (const to of cpl < 3 ? [cpl, 3] : [3])
          rows.push({
            name: `IRET at CPL ${cpl} to ring ${to}, IOPL ${iopl}, IF ${ifWas ? 1 : 0} -> ${ifWas ? 0 : 1}`,
            cpl,
            iopl,
            ifWas,
            to,
          });
  it.each(rows)('$name', ({ name, cpl, iopl, ifWas, to }) => {
    const m = machine(cpl);
    setFlags(m.cpu, { iopl, if: ifWas });
    const newIopl = (iopl + 1) % 4;
    const popped = FL.FIXED | FL.CF | FL.ZF | (ifWas ? 0 : FL.IF) | (newIopl << 12);
    const esp = m.cpu.esp;
    const outerEsp = stackTop(to) - 0x40;
    [ENTRY, SEL.code(to), popped, outerEsp, SEL.data(to)].forEach((v, i) => {
      m.phys.write32(esp + 4 * i, v);
    });
    program(m, enc('iret'));
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    const IF = cpl <= iopl ? popped & FL.IF : ifWas ? FL.IF : 0;
    const IOPL = cpl === 0 ? newIopl : iopl;
    expect(m.cpu.eflags, `${name}: EFLAGS`).toBe(FL.FIXED | FL.CF | FL.ZF | IF | (IOPL << 12));
    expect(
      [m.cpu.segSel[S.CS], m.cpu.eip, m.cpu.segSel[S.SS], m.cpu.esp],
      `${name}: CS, EIP, SS, ESP`,
    ).toEqual(
      to === cpl
        ? [SEL.code(to), ENTRY, SEL.data(cpl), esp + 12]
        : [SEL.code(to), ENTRY, SEL.data(to), outerEsp],
    );
  });
});

describe('IRET: return checks and segment clearing', () => {
  function frame(m: Machine, values: number[]): void {
    values.forEach((v, i) => {
      m.phys.write32(m.cpu.esp + 4 * i, v);
    });
    program(m, enc('iret'));
  }
  it.each([
    {
      name: 'to a more privileged RPL',
      cpl: 3,
      values: [ENTRY, SEL.code(0), FL.FIXED],
      out: exitFault(VEC.GP, SEL.code(0)),
    },
    { name: 'CS null', cpl: 0, values: [ENTRY, 0, FL.FIXED], out: exitFault(VEC.GP, 0) },
    {
      name: 'CS DPL 0 with RPL 3',
      cpl: 0,
      values: [ENTRY, SEL.code(0) | 3, FL.FIXED],
      out: exitFault(VEC.GP, SEL.code(0)),
    },
    {
      name: 'EIP beyond the CS limit',
      cpl: 0,
      values: [0x100000, SEL.code(0), FL.FIXED],
      out: exitFault(VEC.GP, 0),
    },
    {
      name: 'outer SS null',
      cpl: 0,
      values: [ENTRY, SEL.code(3), FL.FIXED, 0x1000, 0],
      out: exitFault(VEC.GP, 0),
    },
    {
      name: 'outer SS DPL 0',
      cpl: 0,
      values: [ENTRY, SEL.code(3), FL.FIXED, 0x1000, SEL.data(0) | 3],
      out: exitFault(VEC.GP, SEL.data(0)),
    },
  ])('$name', ({ name, cpl, values, out }) => {
    const m = machine(cpl);
    frame(m, values);
    const before = snapshot(m);
    expect(stepExit(m), name).toEqual(out);
    expectUnchanged(m, before, name);
  });

  it('IRET to ring 3 clears data and non-conforming code of DPL < 3, keeps conforming code and DPL-3 data', () => {
    const m = machine(0);
    setGdt(m.cpu, SPARE, segmentDescriptor({ base: 0, limit: 0xfff, type: KIND['code r'], dpl: 0 }));
    loadCache(m.cpu, S.DS, SEL.data(0));
    loadCache(m.cpu, S.ES, SEL.data(3));
    loadCache(m.cpu, S.FS, SEL.conf(0));
    loadCache(m.cpu, S.GS, SPARE << 3);
    frame(m, [ENTRY, SEL.code(3), FL.FIXED, stackTop(3) - 0x40, SEL.data(3)]);
    expect(stepExit(m)).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.segSel[S.DS], m.cpu.segSel[S.ES], m.cpu.segSel[S.FS], m.cpu.segSel[S.GS]]).toEqual([
      0,
      SEL.data(3),
      SEL.conf(0),
      0,
    ]);
  });

  it('INT n from ring 3 and IRET back restore CS, SS, ESP, EFLAGS exactly', () => {
    const m = machine(3);
    idtGate(m.cpu, V, { type: TYPE.TRAP_GATE, selector: SEL.code(0), offset: ENTRY, dpl: 3 });
    code(m, ENTRY, enc('iret'));
    m.cpu.eflags = FL.FIXED | FL.IF | FL.CF;
    program(m, enc('int vec', { imm: V }), enc('nop'));
    const state = [SEL.code(3), SEL.data(3), m.cpu.esp, FL.FIXED | FL.IF | FL.CF];
    expect(stepExit(m, 2)).toEqual({ reason: 'budget', executed: 2 });
    expect([m.cpu.segSel[S.CS], m.cpu.segSel[S.SS], m.cpu.esp, m.cpu.eflags, m.cpu.eip]).toEqual([
      ...state,
      NEXT,
    ]);
  });
});

describe('a source with hasPending (the PIC) is asked only when its answer may have changed', () => {
  /** Ring 0, IF = 1, the PIC on the bus and as the CPU's source, line 0 -> vector 0x20 -> ENTRY. */
  function withPic(): { m: Machine; pic: Pic; calls: { hasPending: number; pending: number } } {
    const pic = new Pic();
    const io = new IoBus();
    io.attach(pic.ports[0], pic.ports[1], pic);
    const m = machine(0, { io });
    const calls = { hasPending: 0, pending: 0 };
    m.cpu.irq = {
      pending: () => {
        calls.pending++;
        return pic.pending();
      },
      acknowledge: (v) => pic.acknowledge(v),
      hasPending: () => {
        calls.hasPending++;
        return pic.hasPending();
      },
    };
    idtGate(m.cpu, 0x20, { selector: SEL.code(0), offset: ENTRY, dpl: 0 });
    code(m, ENTRY, enc('nop'));
    m.cpu.eflags |= FL.IF;
    return { m, pic, calls };
  }

  it('a line unmasked by OUT is taken before the instruction after the OUT', () => {
    const { m, pic } = withPic();
    pic.raise(0); // masked: latched only
    m.cpu.reg[R.EAX] = 0xfffe;
    program(m, enc('out port,reg', { a: R.EAX, imm: pic.base + PIC_PORT.MASK }), enc('nop'), enc('nop'));
    expect(run(m.cpu, 2)).toEqual({ reason: 'budget', executed: 2 });
    // the OUT, then the handler's first instruction; the return address is the NOP after the OUT
    expect([m.cpu.eip, m.phys.read32(m.cpu.esp), pic.read(pic.base + PIC_PORT.IN_SERVICE)]).toEqual([
      ENTRY + 8,
      CODE_AT + 8,
      1,
    ]);
  });

  it('a line raised between runs is taken before the first instruction of the next run', () => {
    const { m, pic } = withPic();
    pic.write(pic.base + PIC_PORT.MASK, 0xfffe);
    program(m, enc('nop'), enc('nop'), enc('nop'));
    expect(run(m.cpu, 1)).toEqual({ reason: 'budget', executed: 1 });
    pic.raise(0);
    expect(run(m.cpu, 1)).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.eip, m.phys.read32(m.cpu.esp)]).toEqual([ENTRY + 8, CODE_AT + 8]);
  });

  it('with nothing pending it is asked once at the start of a run of ordinary instructions', () => {
    const { m, calls } = withPic();
    program(m, ...Array.from({ length: 50 }, () => enc('add reg,imm', { a: R.EAX, imm: 1 })));
    expect(run(m.cpu, 50)).toEqual({ reason: 'budget', executed: 50 });
    expect([calls, m.cpu.reg[R.EAX]]).toEqual([{ hasPending: 1, pending: 0 }, 50]);
  });
});

describe('exitSoftware: the VM manager sees INT n and INT3 before delivery', () => {
  it.each([
    { name: 'INT 0x80', instr: () => enc('int vec', { imm: 0x80 }), vector: 0x80 },
    { name: 'INT 0x0D', instr: () => enc('int vec', { imm: 0x0d }), vector: 0x0d },
    { name: 'INT3', instr: () => enc('int3'), vector: VEC.BP },
  ])('$name at ring 3 stops at the INT with nothing changed', ({ name, instr, vector }) => {
    const m = machine(3);
    m.cpu.exitSoftware = true;
    // No gate at all: delivery would fault, so a stop here proves nothing was delivered.
    program(m, enc('nop'), instr());
    expect(stepExit(m, 1)).toEqual({ reason: 'budget', executed: 1 });
    const before = snapshot(m);
    const instructions = m.cpu.instructions;
    expect(run(m.cpu, 5), name).toEqual({ reason: 'exit', vector, software: true, executed: 0 });
    expectUnchanged(m, before, name);
    expect(m.cpu.instructions, `${name}: not retired`).toBe(instructions);
  });
});
