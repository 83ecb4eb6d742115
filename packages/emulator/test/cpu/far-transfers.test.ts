/**
 * Far JMP/CALL and far RET (reference §3.2-§3.4; SDM §5.8 and the JMP/CALL/RET pseudocode): direct
 * transfers to conforming and non-conforming code for every CPL x RPL x DPL, transfers through call
 * gates for every CPL x RPL x gate DPL x target DPL, the inward stack switch with parameter copy,
 * the checks of the new stack (all made before anything changes), and far returns to the same and
 * to outer rings with the clearing of DS/ES/FS/GS.
 */

import { describe, expect, it } from 'vitest';
import { gateDescriptor, segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { VEC } from '../../src/cpu/faults.js';
import { R, S } from '../../src/cpu/isa.js';
import {
  CODE_AT,
  code,
  dwords,
  enc,
  errSel,
  exitFault,
  expectUnchanged,
  KIND,
  loadCache,
  type Machine,
  machine,
  program,
  SEL,
  setGdt,
  snapshot,
  stackTop,
  stepExit,
  TSS_AT,
} from './harness.js';

const TARGET = 20;
const GATE = 21;
const SPARE = 22;
const ENTRY = 0x20000;
const NEXT = CODE_AT + 8;
const LIMIT = 0xfffff;

type Outcome =
  | { readonly vector: number; readonly code: number }
  | { readonly cpl: number; readonly inward: boolean };
const gp = (code: number): Outcome => ({ vector: VEC.GP, code });

function codeDesc(dpl: number, conforming: boolean, present = true): [number, number] {
  return segmentDescriptor({ base: 0, limit: LIMIT, type: conforming ? 0xe : 0xa, dpl, present });
}

/** Direct far JMP/CALL to a code segment (reference §3.2, SDM §5.8.1). */
function directRule(cpl: number, rpl: number, dpl: number, conforming: boolean, s: number): Outcome {
  if (conforming ? dpl > cpl : rpl > cpl || dpl !== cpl) return gp(errSel(s));
  return { cpl, inward: false };
}

/** Far JMP/CALL through a call gate (reference §3.3, SDM §5.8.4 Table 5-1). */
function gateRule(
  call: boolean,
  cpl: number,
  rpl: number,
  gdpl: number,
  tdpl: number,
  conforming: boolean,
  gateSel: number,
  targetSel: number,
): Outcome {
  if (cpl > gdpl || rpl > gdpl) return gp(errSel(gateSel));
  const targetOk = call || conforming ? tdpl <= cpl : tdpl === cpl;
  if (!targetOk) return gp(errSel(targetSel));
  const inward = call && !conforming && tdpl < cpl;
  return { cpl: inward ? tdpl : cpl, inward };
}

/** Runs one far transfer from CODE_AT and checks the outcome exactly. */
function checkFar(
  m: Machine,
  name: string,
  call: boolean,
  selector: number,
  codeSel: number,
  out: Outcome,
): void {
  const cpl0 = m.cpu.cpl;
  const esp0 = m.cpu.esp;
  const ss0 = m.cpu.segSel[S.SS]!;
  program(m, enc(call ? 'callf far' : 'jmpf far', { sel: selector, imm: ENTRY }));
  code(m, ENTRY, enc('nop'));
  if ('vector' in out) {
    const before = snapshot(m);
    expect(stepExit(m), name).toEqual(exitFault(out.vector, out.code));
    expectUnchanged(m, before, name);
    return;
  }
  const r = stepExit(m);
  const got = {
    r,
    cs: m.cpu.segSel[S.CS],
    cpl: m.cpu.cpl,
    eip: m.cpu.eip,
    ss: m.cpu.segSel[S.SS],
    esp: m.cpu.esp,
    newStack: out.inward ? dwords(m, stackTop(out.cpl) - 16, 4) : [],
    oldStack: dwords(m, esp0 - 8, 2),
  };
  const top = stackTop(out.cpl);
  expect(got, name).toEqual({
    r: { reason: 'budget', executed: 1 },
    // CS.RPL is always the (new) CPL, whatever RPL the selector had (PCem #330).
    cs: (codeSel & 0xfffc) | out.cpl,
    cpl: out.cpl,
    eip: ENTRY,
    // Inward: SS:ESP from the TSS, and old SS, old ESP, CS, EIP on the new stack (SDM §5.8.5);
    // a same-ring CALL pushes CS and EIP on the current stack; JMP pushes nothing.
    ss: out.inward ? SEL.data(out.cpl) : ss0,
    esp: out.inward ? top - 16 : call ? esp0 - 8 : esp0,
    newStack: out.inward ? [NEXT, SEL.code(cpl0), esp0, ss0] : [],
    oldStack: call && !out.inward ? [NEXT, SEL.code(cpl0)] : [0, 0],
  });
}

describe('direct far JMP/CALL: CPL x RPL x DPL x conforming', () => {
  const rows = [];
  for (const call of [false, true])
    for (const conforming of [false, true])
      for (let cpl = 0; cpl < 4; cpl++)
        for (let rpl = 0; rpl < 4; rpl++)
          for (let dpl = 0; dpl < 4; dpl++) {
            const kind = conforming ? 'conforming' : 'non-conforming';
            const name = `${call ? 'CALLF' : 'JMPF'} ${kind} DPL ${dpl}, RPL ${rpl}, CPL ${cpl}`;
            rows.push({ name, call, conforming, cpl, rpl, dpl });
          }
  it.each(rows)('$name', ({ name, call, conforming, cpl, rpl, dpl }) => {
    const m = machine(cpl);
    setGdt(m.cpu, TARGET, codeDesc(dpl, conforming));
    const s = (TARGET << 3) | rpl;
    checkFar(m, name, call, s, s, directRule(cpl, rpl, dpl, conforming, s));
  });
});

describe('far JMP/CALL through a call gate: CPL x RPL x gate DPL x target DPL x conforming', () => {
  // One test per CPL, gate DPL, target and transfer; inside, every RPL of the gate selector.
  const rows = [];
  for (const call of [false, true])
    for (const conforming of [false, true])
      for (let cpl = 0; cpl < 4; cpl++)
        for (let gdpl = 0; gdpl < 4; gdpl++)
          for (let tdpl = 0; tdpl < 4; tdpl++) {
            const kind = conforming ? 'conforming' : 'non-conforming';
            const name = `${call ? 'CALLF' : 'JMPF'} gate DPL ${gdpl} -> ${kind} DPL ${tdpl}, CPL ${cpl}`;
            rows.push({ name, call, conforming, cpl, gdpl, tdpl });
          }
  it.each(rows)('$name, RPL 0-3', ({ name, call, conforming, cpl, gdpl, tdpl }) => {
    for (let rpl = 0; rpl < 4; rpl++) {
      const m = machine(cpl);
      // The gate names its target with RPL 3: that RPL is ignored, CS.RPL becomes the new CPL.
      const target = (TARGET << 3) | 3;
      setGdt(m.cpu, TARGET, codeDesc(tdpl, conforming));
      setGdt(
        m.cpu,
        GATE,
        gateDescriptor({ type: TYPE.CALL_GATE, selector: target, offset: ENTRY, dpl: gdpl }),
      );
      const g = (GATE << 3) | rpl;
      const out = gateRule(call, cpl, rpl, gdpl, tdpl, conforming, g, target);
      checkFar(m, `${name}, gate RPL ${rpl}`, call, g, target, out);
    }
  });
});

describe('far transfers: presence, types and limits', () => {
  const gate = (f: Partial<{ selector: number; dpl: number; present: boolean; offset: number }> = {}) =>
    gateDescriptor({
      type: TYPE.CALL_GATE,
      selector: f.selector ?? TARGET << 3,
      offset: f.offset ?? ENTRY,
      dpl: f.dpl ?? 3,
      present: f.present ?? true,
    });
  const rows: { name: string; set: (m: Machine) => void; sel: number; out: Outcome }[] = [
    { name: 'null selector', set: () => {}, sel: 0, out: gp(0) },
    { name: 'null selector with RPL 3', set: () => {}, sel: 3, out: gp(0) },
    { name: 'selector beyond the GDT limit', set: () => {}, sel: (40 << 3) | 3, out: gp(40 << 3) },
    { name: 'a data segment', set: () => {}, sel: SEL.data(3), out: gp(SEL.data(3) & ~3) },
    {
      name: 'code not present',
      set: (m) => setGdt(m.cpu, TARGET, codeDesc(3, false, false)),
      sel: (TARGET << 3) | 3,
      out: { vector: VEC.NP, code: TARGET << 3 },
    },
    {
      name: 'code not present and DPL 0: privilege first',
      set: (m) => setGdt(m.cpu, TARGET, codeDesc(0, false, false)),
      sel: (TARGET << 3) | 3,
      out: gp(TARGET << 3),
    },
    {
      name: 'offset beyond the code limit',
      set: (m) => setGdt(m.cpu, TARGET, segmentDescriptor({ base: 0, limit: ENTRY - 1, type: 0xa, dpl: 3 })),
      sel: (TARGET << 3) | 3,
      out: gp(0),
    },
    {
      name: 'gate not present',
      set: (m) => {
        setGdt(m.cpu, TARGET, codeDesc(0, false));
        setGdt(m.cpu, GATE, gate({ present: false }));
      },
      sel: (GATE << 3) | 3,
      out: { vector: VEC.NP, code: GATE << 3 },
    },
    {
      name: 'gate not present and DPL 0: privilege first',
      set: (m) => setGdt(m.cpu, GATE, gate({ present: false, dpl: 0 })),
      sel: (GATE << 3) | 3,
      out: gp(GATE << 3),
    },
    {
      name: 'gate to a null selector',
      set: (m) => setGdt(m.cpu, GATE, gate({ selector: 0 })),
      sel: (GATE << 3) | 3,
      out: gp(0),
    },
    {
      name: 'gate to a selector beyond the GDT',
      set: (m) => setGdt(m.cpu, GATE, gate({ selector: 40 << 3 })),
      sel: (GATE << 3) | 3,
      out: gp(40 << 3),
    },
    {
      name: 'gate to a data segment',
      set: (m) => setGdt(m.cpu, GATE, gate({ selector: SEL.data(0) })),
      sel: (GATE << 3) | 3,
      out: gp(SEL.data(0)),
    },
    {
      name: 'gate to a code segment not present',
      set: (m) => {
        setGdt(m.cpu, TARGET, codeDesc(3, false, false));
        setGdt(m.cpu, GATE, gate());
      },
      sel: (GATE << 3) | 3,
      out: { vector: VEC.NP, code: TARGET << 3 },
    },
    {
      name: 'gate offset beyond the target limit',
      set: (m) => {
        setGdt(m.cpu, TARGET, segmentDescriptor({ base: 0, limit: ENTRY - 1, type: 0xa, dpl: 3 }));
        setGdt(m.cpu, GATE, gate());
      },
      sel: (GATE << 3) | 3,
      out: gp(0),
    },
    {
      name: 'an interrupt gate in the GDT',
      set: (m) =>
        setGdt(
          m.cpu,
          GATE,
          gateDescriptor({ type: TYPE.INT_GATE, selector: SEL.code(0), offset: ENTRY, dpl: 3 }),
        ),
      sel: (GATE << 3) | 3,
      out: gp(GATE << 3),
    },
  ];
  it.each(
    rows.flatMap((r) =>
      [true, false].map((call) => ({ ...r, call, name: `${call ? 'CALLF' : 'JMPF'} ${r.name}` })),
    ),
  )('$name', ({ name, set, sel, out, call }) => {
    const m = machine(3);
    set(m);
    checkFar(m, name, call, sel, sel, out);
  });

  it('same-ring CALLF with no room for CS:EIP is #SS(0) and changes nothing', () => {
    const m = machine(3);
    m.cpu.reg[R.ESP] = 4;
    checkFar(m, 'callf with ESP = 4', true, SEL.code(3), SEL.code(3), { vector: VEC.SS, code: 0 });
  });
});

describe('CALL through a gate to an inner ring: stack switch and parameter copy', () => {
  const rows = [];
  for (const [from, to] of [
    [3, 0],
    [3, 2],
    [2, 1],
    [1, 0],
  ] as const)
    for (const params of [0, 1, 2, 5, 31])
      rows.push({ name: `CPL ${from} -> ${to}, ${params} parameters`, from, to, params });

  it.each(rows)(
    '$name: exact new stack, then RETF n returns and releases both stacks',
    ({ name, from, to, params }) => {
      const m = machine(from);
      setGdt(
        m.cpu,
        GATE,
        gateDescriptor({ type: TYPE.CALL_GATE, selector: SEL.code(to), offset: ENTRY, dpl: 3, params }),
      );
      // The caller pushes its parameters: p[i] at ESP + 4i.
      for (let i = 0; i < 31; i++) m.cpu.push32(0xa000 + 30 - i);
      const esp = m.cpu.esp;
      const args = dwords(m, esp, params);
      program(m, enc('callf far', { sel: (GATE << 3) | from, imm: 0 }), enc('nop'));
      code(m, ENTRY, enc('retf imm16', { imm: 4 * params }));
      expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
      const top = stackTop(to);
      const newEsp = top - 16 - 4 * params;
      expect(
        [m.cpu.segSel[S.CS], m.cpu.segSel[S.SS], m.cpu.esp, m.cpu.eip],
        `${name}: CS, SS, ESP, EIP`,
      ).toEqual([SEL.code(to), SEL.data(to), newEsp, ENTRY]);
      // SDM §5.8.5: old SS, old ESP, the parameters (same order), old CS, EIP, from the top down.
      expect(dwords(m, newEsp, 4 + params), `${name}: new stack`).toEqual([
        NEXT,
        SEL.code(from),
        ...args,
        esp,
        SEL.data(from),
      ]);
      expect(stepExit(m), `${name}: retf`).toEqual({ reason: 'budget', executed: 1 });
      expect(
        [m.cpu.segSel[S.CS], m.cpu.segSel[S.SS], m.cpu.esp, m.cpu.eip],
        `${name}: back in the caller with its parameters released`,
      ).toEqual([SEL.code(from), SEL.data(from), esp + 4 * params, NEXT]);
    },
  );
});

describe('CALL through a gate: checks of the new stack come before any change', () => {
  const SMALL = (SPARE << 3) as number;
  const small = (limit: number) => segmentDescriptor({ base: 0x60000, limit, type: 0x2, dpl: 0 });
  const rows: { name: string; ss: number; esp?: number; set?: (m: Machine) => void; out: Outcome }[] = [
    { name: 'SS0 null', ss: 0, out: { vector: VEC.TS, code: 0 } },
    { name: 'SS0 RPL 1 != new CPL 0', ss: SEL.data(0) | 1, out: { vector: VEC.TS, code: SEL.data(0) } },
    { name: 'SS0 DPL 1 != new CPL 0', ss: SEL.data(1) & ~3, out: { vector: VEC.TS, code: SEL.data(1) & ~3 } },
    {
      name: 'SS0 read-only data',
      ss: SMALL,
      set: (m) => setGdt(m.cpu, SPARE, segmentDescriptor({ base: 0, limit: LIMIT, type: 0x0, dpl: 0 })),
      out: { vector: VEC.TS, code: SMALL },
    },
    { name: 'SS0 a code segment', ss: SEL.code(0), out: { vector: VEC.TS, code: SEL.code(0) } },
    { name: 'SS0 the TSS', ss: SEL.tss, out: { vector: VEC.TS, code: SEL.tss } },
    { name: 'SS0 beyond the GDT limit', ss: 40 << 3, out: { vector: VEC.TS, code: 40 << 3 } },
    {
      name: 'SS0 not present',
      ss: SMALL,
      set: (m) =>
        setGdt(m.cpu, SPARE, segmentDescriptor({ base: 0, limit: LIMIT, type: 0x2, dpl: 0, present: false })),
      out: { vector: VEC.SS, code: SMALL },
    },
    {
      name: 'ESP0 = 23: no room for 16 + 2 x 4 bytes',
      ss: SMALL,
      esp: 23,
      set: (m) => setGdt(m.cpu, SPARE, small(0xfff)),
      out: { vector: VEC.SS, code: SMALL },
    },
    {
      name: 'ESP0 = 0x1001 above a limit of 0xFFF',
      ss: SMALL,
      esp: 0x1001,
      set: (m) => setGdt(m.cpu, SPARE, small(0xfff)),
      out: { vector: VEC.SS, code: SMALL },
    },
    {
      name: 'TSS limit 8 does not hold SS0 (needs ESP0 offset 4 + 5)',
      ss: SEL.data(0),
      set: (m) => {
        m.cpu.trLimit = 8;
      },
      out: { vector: VEC.TS, code: SEL.tss },
    },
    {
      name: 'no TSS loaded',
      ss: SEL.data(0),
      set: (m) => {
        m.cpu.trUsable = false;
      },
      out: { vector: VEC.TS, code: SEL.tss },
    },
  ];
  it.each(rows)('$name', ({ name, ss, esp, set, out }) => {
    const m = machine(3);
    setGdt(
      m.cpu,
      GATE,
      gateDescriptor({ type: TYPE.CALL_GATE, selector: SEL.code(0), offset: ENTRY, dpl: 3, params: 2 }),
    );
    m.phys.write32(TSS_AT + 8, ss);
    if (esp !== undefined) m.phys.write32(TSS_AT + 4, esp);
    set?.(m);
    checkFar(m, name, true, (GATE << 3) | 3, SEL.code(0), out);
  });

  it.each([
    { name: 'ESP0 = 24 is exactly room for 16 + 2 x 4 bytes', esp: 24, limit: 0xfff, tr: undefined },
    { name: 'ESP0 = 0x1000 with a limit of 0xFFF', esp: 0x1000, limit: 0xfff, tr: undefined },
    { name: 'TSS limit 9 holds SS0 (offset 4 + 5)', esp: 0x1000, limit: 0xfff, tr: 9 },
  ])('$name: the call succeeds', ({ name, esp, limit, tr }) => {
    const m = machine(3);
    setGdt(
      m.cpu,
      GATE,
      gateDescriptor({ type: TYPE.CALL_GATE, selector: SEL.code(0), offset: ENTRY, dpl: 3, params: 2 }),
    );
    setGdt(m.cpu, SPARE, small(limit));
    m.phys.write32(TSS_AT + 8, SMALL);
    m.phys.write32(TSS_AT + 4, esp);
    if (tr !== undefined) m.cpu.trLimit = tr;
    const esp3 = m.cpu.esp;
    program(m, enc('callf far', { sel: (GATE << 3) | 3, imm: 0 }));
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.segSel[S.SS], m.cpu.esp, m.cpu.cpl], name).toEqual([SMALL, esp - 24, 0]);
    expect(dwords(m, 0x60000 + esp - 24, 6), `${name}: new stack`).toEqual([
      NEXT,
      SEL.code(3),
      m.phys.read32(esp3),
      m.phys.read32(esp3 + 4),
      esp3,
      SEL.data(3),
    ]);
  });
});

/** Far RET (SDM RET pseudocode; reference §3.4). */
function retRule(cpl: number, rpl: number, dpl: number, conforming: boolean, cs: number): Outcome {
  if (rpl < cpl) return gp(errSel(cs));
  if (conforming ? dpl > rpl : dpl !== rpl) return gp(errSel(cs));
  return { cpl: rpl, inward: false };
}

describe('far RET: CPL x return RPL x DPL x conforming', () => {
  const rows = [];
  for (const conforming of [false, true])
    for (let cpl = 0; cpl < 4; cpl++)
      for (let rpl = 0; rpl < 4; rpl++)
        for (let dpl = 0; dpl < 4; dpl++)
          rows.push({
            name: `RETF at CPL ${cpl} to RPL ${rpl}, ${conforming ? 'conforming' : 'non-conforming'} DPL ${dpl}`,
            conforming,
            cpl,
            rpl,
            dpl,
          });
  it.each(rows)('$name', ({ name, conforming, cpl, rpl, dpl }) => {
    const m = machine(cpl);
    setGdt(m.cpu, TARGET, codeDesc(dpl, conforming));
    const cs = (TARGET << 3) | rpl;
    const outerEsp = stackTop(rpl) - 0x40;
    const esp = m.cpu.esp;
    m.phys.write32(esp, ENTRY);
    m.phys.write32(esp + 4, cs);
    m.phys.write32(esp + 8, outerEsp);
    m.phys.write32(esp + 12, SEL.data(rpl));
    program(m, enc('retf'));
    const out = retRule(cpl, rpl, dpl, conforming, cs);
    const before = snapshot(m);
    const r = stepExit(m);
    if ('vector' in out) {
      expect(r, name).toEqual(exitFault(out.vector, out.code));
      expectUnchanged(m, before, name);
      return;
    }
    expect(r, name).toEqual({ reason: 'budget', executed: 1 });
    const outer = rpl > cpl;
    expect([m.cpu.segSel[S.CS], m.cpu.cpl, m.cpu.eip], `${name}: CS, CPL, EIP`).toEqual([cs, rpl, ENTRY]);
    expect([m.cpu.segSel[S.SS], m.cpu.esp], `${name}: SS:ESP`).toEqual(
      outer ? [SEL.data(rpl), outerEsp] : [SEL.data(cpl), esp + 8],
    );
  });
});

describe('far RET to an outer ring: checks of the return SS and EIP', () => {
  const R3 = SEL.code(3);
  type Fault = { readonly vector: number; readonly code: number };
  const fault = (code: number): Fault => ({ vector: VEC.GP, code });
  const rows: {
    name: string;
    cs?: number;
    eip?: number;
    ss: number;
    set?: (m: Machine) => void;
    out: Fault;
  }[] = [
    { name: 'SS null', ss: 0, out: fault(0) },
    { name: 'SS null with RPL 3', ss: 3, out: fault(0) },
    { name: 'SS RPL 2 != CS RPL 3', ss: (SEL.data(3) & ~3) | 2, out: fault(SEL.data(3) & ~3) },
    { name: 'SS DPL 2 != CS RPL 3', ss: (SEL.data(2) & ~3) | 3, out: fault(SEL.data(2) & ~3) },
    {
      name: 'SS read-only',
      ss: (SPARE << 3) | 3,
      set: (m) => setGdt(m.cpu, SPARE, segmentDescriptor({ base: 0, limit: LIMIT, type: 0x0, dpl: 3 })),
      out: fault(SPARE << 3),
    },
    { name: 'SS a code segment', ss: R3, out: fault(R3 & ~3) },
    { name: 'SS beyond the GDT', ss: (40 << 3) | 3, out: fault(40 << 3) },
    {
      name: 'SS not present',
      ss: (SPARE << 3) | 3,
      set: (m) =>
        setGdt(m.cpu, SPARE, segmentDescriptor({ base: 0, limit: LIMIT, type: 0x2, dpl: 3, present: false })),
      out: { vector: VEC.SS, code: SPARE << 3 },
    },
    {
      name: 'EIP beyond the CS limit',
      cs: (TARGET << 3) | 3,
      eip: 0x10000,
      ss: SEL.data(3),
      set: (m) => setGdt(m.cpu, TARGET, segmentDescriptor({ base: 0, limit: 0xffff, type: 0xa, dpl: 3 })),
      out: fault(0),
    },
    {
      name: 'CS not present',
      cs: (TARGET << 3) | 3,
      ss: SEL.data(3),
      set: (m) => setGdt(m.cpu, TARGET, codeDesc(3, false, false)),
      out: { vector: VEC.NP, code: TARGET << 3 },
    },
    { name: 'CS null', cs: 0, ss: SEL.data(3), out: fault(0) },
    { name: 'CS a data segment', cs: SEL.data(3), ss: SEL.data(3), out: fault(SEL.data(3) & ~3) },
  ];
  it.each(rows)('$name', ({ name, cs, eip, ss, set, out }) => {
    const m = machine(0);
    set?.(m);
    const esp = m.cpu.esp;
    m.phys.write32(esp, eip ?? ENTRY);
    m.phys.write32(esp + 4, cs ?? R3);
    m.phys.write32(esp + 8, stackTop(3) - 0x40);
    m.phys.write32(esp + 12, ss);
    program(m, enc('retf'));
    const before = snapshot(m);
    expect(stepExit(m), name).toEqual(exitFault(out.vector, out.code));
    expectUnchanged(m, before, name);
  });

  it.each([
    {
      name: 'outer RETF: SS:ESP would lie beyond the stack limit',
      esp: 0xffff4,
      release: 0,
      out: exitFault(VEC.SS, 0),
    },
    {
      name: 'outer RETF 8: SS:ESP beyond the limit after the release',
      esp: 0xfffec,
      release: 8,
      out: exitFault(VEC.SS, 0),
    },
  ])('$name: #SS(0)', ({ name, esp, release, out }) => {
    const m = machine(0);
    m.cpu.reg[R.ESP] = esp;
    m.phys.write32(esp, ENTRY);
    m.phys.write32(esp + 4, SEL.code(3));
    program(m, enc('retf imm16', { imm: release }));
    const before = snapshot(m);
    expect(stepExit(m), name).toEqual(out);
    expectUnchanged(m, before, name);
  });

  it('outer RETF 8 releases 8 bytes on both stacks', () => {
    const m = machine(0);
    const esp = m.cpu.esp;
    const esp3 = stackTop(3) - 0x40;
    [ENTRY, SEL.code(3), 0x11, 0x22, esp3, SEL.data(3)].forEach((v, i) => {
      m.phys.write32(esp + 4 * i, v);
    });
    program(m, enc('retf imm16', { imm: 8 }));
    expect(stepExit(m)).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.segSel[S.CS], m.cpu.segSel[S.SS], m.cpu.esp, m.cpu.eip]).toEqual([
      SEL.code(3),
      SEL.data(3),
      esp3 + 8,
      ENTRY,
    ]);
  });

  it('same-ring RETF n checks only the 8 bytes of CS:EIP against the stack limit (SDM RET)', () => {
    const m = machine(3);
    const esp = 0xffff8;
    m.cpu.reg[R.ESP] = esp;
    m.phys.write32(esp, ENTRY);
    m.phys.write32(esp + 4, SEL.code(3));
    program(m, enc('retf imm16', { imm: 0x100 }));
    expect(stepExit(m)).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.segSel[S.CS], m.cpu.eip, m.cpu.esp]).toEqual([SEL.code(3), ENTRY, esp + 8 + 0x100]);
  });
});

describe('far RET to an outer ring clears DS, ES, FS, GS the new ring may not use', () => {
  const rows = [];
  for (const from of [0, 1])
    for (let to = from + 1; to < 4; to++)
      for (const kind of ['data rw', 'code r', 'conforming r'] as const)
        for (let dpl = 0; dpl < 4; dpl++)
          rows.push({ name: `CPL ${from} -> ${to}, ${kind} DPL ${dpl}`, from, to, kind, dpl });
  it.each(rows)('$name', ({ name, from, to, kind, dpl }) => {
    const m = machine(from);
    setGdt(m.cpu, SPARE, segmentDescriptor({ base: 0x60000, limit: 0xfff, type: KIND[kind], dpl }));
    const sel = (SPARE << 3) | from;
    for (const seg of [S.ES, S.DS, S.FS, S.GS]) loadCache(m.cpu, seg, sel);
    const esp = m.cpu.esp;
    [ENTRY, SEL.code(to), stackTop(to) - 0x40, SEL.data(to)].forEach((v, i) => {
      m.phys.write32(esp + 4 * i, v);
    });
    program(m, enc('retf'));
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    // SDM RET: cleared if data or non-conforming code and the new CPL > DPL.
    const cleared = kind !== 'conforming r' && to > dpl;
    expect([m.cpu.segSel[S.ES], m.cpu.segSel[S.DS], m.cpu.segSel[S.FS], m.cpu.segSel[S.GS]], name).toEqual(
      Array(4).fill(cleared ? 0 : sel),
    );
  });

  it('a cleared register faults on use with #GP(0)', () => {
    const m = machine(0);
    const esp = m.cpu.esp;
    [ENTRY, SEL.code(3), stackTop(3) - 0x40, SEL.data(3)].forEach((v, i) => {
      m.phys.write32(esp + 4 * i, v);
    });
    program(m, enc('retf'));
    code(m, ENTRY, enc('ld reg,mem', { a: R.EAX, b: 8, c: S.FS, imm: 0x100 }));
    expect(stepExit(m)).toEqual({ reason: 'budget', executed: 1 });
    expect(stepExit(m)).toEqual(exitFault(VEC.GP, 0));
  });
});
