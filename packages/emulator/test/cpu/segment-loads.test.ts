/**
 * Segment-register loads (reference §3.1; SDM §5.5-§5.7 and the MOV/POP pseudocode): every
 * combination of CPL, RPL and DPL for each kind of code/data descriptor, into DS/ES/FS/GS and into
 * SS; null, not-present, out-of-table and system selectors; selectors in an LDT (TI = 1).
 * Expected outcomes come from the rule functions below, written from the reference, never from the
 * emulator's code.
 */

import { describe, expect, it } from 'vitest';
import { gateDescriptor, segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { VEC } from '../../src/cpu/faults.js';
import { R, S } from '../../src/cpu/isa.js';
import {
  CODE_AT,
  enc,
  enter,
  errSel,
  exitFault,
  expectUnchanged,
  isConformingKind,
  isReadableKind,
  isWritableKind,
  KIND,
  KINDS,
  type Kind,
  type Machine,
  machine,
  mem,
  program,
  SEL,
  setGdt,
  snapshot,
  stepExit,
} from './harness.js';

const SLOT = 20;
const BASE = 0x50000;
const LIMIT = 0x1fff;
const sel = (rpl: number, slot = SLOT): number => (slot << 3) | rpl;
const NAMES = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS'] as const;

type Outcome = { readonly vector: number; readonly code: number } | 'loaded';

/**
 * DS/ES/FS/GS (reference §3.1, SDM MOV): data or readable code only; for data and non-conforming
 * code DPL >= max(CPL, RPL); then presence (#NP).
 */
function dataSegRule(
  cpl: number,
  rpl: number,
  dpl: number,
  kind: Kind,
  present: boolean,
  s: number,
): Outcome {
  if (!isReadableKind(kind)) return { vector: VEC.GP, code: errSel(s) };
  if (!isConformingKind(kind) && dpl < Math.max(cpl, rpl)) return { vector: VEC.GP, code: errSel(s) };
  if (!present) return { vector: VEC.NP, code: errSel(s) };
  return 'loaded';
}

/** SS (reference §3.1, SDM MOV): RPL = CPL, writable data, DPL = CPL, else #GP(sel); not present #SS(sel). */
function stackSegRule(
  cpl: number,
  rpl: number,
  dpl: number,
  kind: Kind,
  present: boolean,
  s: number,
): Outcome {
  if (rpl !== cpl || !isWritableKind(kind) || dpl !== cpl) return { vector: VEC.GP, code: errSel(s) };
  if (!present) return { vector: VEC.SS, code: errSel(s) };
  return 'loaded';
}

/** Loads `selector` into `seg` by MOV (from EAX) or POP (from the stack), one instruction. */
function load(m: Machine, seg: number, selector: number, via: 'mov' | 'pop'): void {
  if (via === 'mov') {
    m.cpu.reg[R.EAX] = selector;
    program(m, enc('mov sreg,reg', { a: seg, b: R.EAX }));
  } else {
    m.phys.write32(m.cpu.esp, selector);
    program(m, enc('pop sreg', { a: seg }));
  }
}

function checkLoad(
  m: Machine,
  name: string,
  seg: number,
  selector: number,
  via: 'mov' | 'pop',
  expected: Outcome,
  base = BASE,
  limit = LIMIT,
): void {
  const esp = m.cpu.esp;
  load(m, seg, selector, via);
  if (expected !== 'loaded') {
    const before = snapshot(m);
    expect(stepExit(m), name).toEqual(exitFault(expected.vector, expected.code));
    expectUnchanged(m, before, name);
    return;
  }
  expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
  expect(m.cpu.segSel[seg], `${name}: selector`).toBe(selector);
  expect([m.cpu.segBase[seg], m.cpu.segLimit[seg]], `${name}: base, limit`).toEqual([base, limit]);
  expect(m.cpu.eip, `${name}: EIP`).toBe(CODE_AT + 8);
  expect(m.cpu.esp, `${name}: ESP`).toBe(via === 'pop' ? esp + 4 : esp);
}

interface Row {
  readonly name: string;
  readonly cpl: number;
  readonly rpl: number;
  readonly dpl: number;
  readonly kind: Kind;
}

const rows: Row[] = [];
for (const kind of KINDS)
  for (let cpl = 0; cpl < 4; cpl++)
    for (let rpl = 0; rpl < 4; rpl++)
      for (let dpl = 0; dpl < 4; dpl++)
        rows.push({ name: `${kind} DPL ${dpl}, RPL ${rpl}, CPL ${cpl}`, cpl, rpl, dpl, kind });

describe('segment loads: CPL x RPL x DPL x descriptor kind', () => {
  it.each(rows)('$name', ({ name, cpl, rpl, dpl, kind }) => {
    const s = sel(rpl);
    const data = dataSegRule(cpl, rpl, dpl, kind, true, s);
    const stack = stackSegRule(cpl, rpl, dpl, kind, true, s);
    // MOV DS, POP into one of ES/FS/GS/DS in rotation (every register sees every rule), MOV SS, POP SS.
    const popSeg = [S.ES, S.FS, S.GS, S.DS][(cpl + rpl + dpl) % 4]!;
    for (const [seg, via, expected] of [
      [S.DS, 'mov', data],
      [popSeg, 'pop', data],
      [S.SS, 'mov', stack],
      [S.SS, 'pop', stack],
    ] as const) {
      const m = machine(cpl);
      setGdt(m.cpu, SLOT, segmentDescriptor({ base: BASE, limit: LIMIT, type: KIND[kind], dpl }));
      checkLoad(m, `${via} ${NAMES[seg]}, ${name}`, seg, s, via, expected);
    }
  });

  it.each(rows.filter((r) => r.kind === 'data rw' || r.kind === 'code r'))('not present: $name', (row) => {
    const s = sel(row.rpl);
    const expected = dataSegRule(row.cpl, row.rpl, row.dpl, row.kind, false, s);
    const m = machine(row.cpl);
    setGdt(
      m.cpu,
      SLOT,
      segmentDescriptor({ base: BASE, limit: LIMIT, type: KIND[row.kind], dpl: row.dpl, present: false }),
    );
    checkLoad(m, `not present ${row.name}`, S.GS, s, 'mov', expected);
  });
});

describe('SS loads', () => {
  it.each([0, 1, 2, 3])('not present, DPL = RPL = CPL = %i: #SS(selector)', (cpl) => {
    const m = machine(cpl);
    setGdt(m.cpu, SLOT, segmentDescriptor({ base: BASE, limit: LIMIT, type: 0x2, dpl: cpl, present: false }));
    checkLoad(m, `SS not present at CPL ${cpl}`, S.SS, sel(cpl), 'mov', {
      vector: VEC.SS,
      code: errSel(sel(cpl)),
    });
  });

  it.each([1, 2, 3])(
    'not present and DPL 0 at CPL %i: the privilege check comes first, #GP(selector)',
    (cpl) => {
      const m = machine(cpl);
      setGdt(m.cpu, SLOT, segmentDescriptor({ base: BASE, limit: LIMIT, type: 0x2, dpl: 0, present: false }));
      checkLoad(m, `SS DPL 0 not present at CPL ${cpl}`, S.SS, sel(cpl), 'mov', {
        vector: VEC.GP,
        code: errSel(sel(cpl)),
      });
    },
  );
});

describe('accesses right after a segment load, in the same run', () => {
  // The run loop loads DS, ES, FS and GS without leaving its inner loop and sets the bounds it
  // checks DS accesses against there (exec.ts): each access below must see the segment just loaded.
  const RW = 21;
  const RO = 22;
  const setup = (): Machine => {
    const m = machine(0);
    setGdt(m.cpu, RW, segmentDescriptor({ base: 0x50000, limit: 0x1fff, type: 0x2, dpl: 0 }));
    setGdt(m.cpu, RO, segmentDescriptor({ base: 0x60000, limit: 0xfff, type: 0x0, dpl: 0 }));
    m.phys.write32(0x50000 + 0x1ffc, 0x11223344);
    m.phys.write32(0x60000 + 0x10, 0x55667788);
    m.cpu.reg[R.EAX] = RW << 3;
    m.cpu.reg[R.EBX] = RO << 3;
    m.cpu.reg[R.EDX] = 0xcafe;
    return m;
  };

  it("DS's base and limit: a store and loads through the new DS, up to its last dword", () => {
    const m = setup();
    program(
      m,
      enc('mov sreg,reg', { a: S.DS, b: R.EAX }),
      enc('st mem,reg', { a: R.EDX, ...mem(0x20) }),
      enc('ld reg,mem', { a: R.ECX, ...mem(0x1ffc) }),
      enc('mov sreg,reg', { a: S.DS, b: R.EBX }),
      enc('ld reg,mem', { a: R.ESI, ...mem(0x10) }),
      enc('ld reg,mem', { a: R.EDI, ...mem(0x1000) }),
    );
    // the last load (aligned, so the run loop's own path would take it) lies past the new limit
    // (0xFFF), though within the old one: #GP(0) at it, with everything before done
    expect(stepExit(m, 6)).toEqual(exitFault(VEC.GP, 0, 5));
    expect(m.phys.read32(0x50020)).toBe(0xcafe);
    expect(m.cpu.reg[R.ECX]).toBe(0x11223344);
    expect(m.cpu.reg[R.ESI]).toBe(0x55667788);
    expect(m.cpu.reg[R.EDI]).toBe(0);
    expect([m.cpu.segSel[S.DS], m.cpu.eip]).toEqual([RO << 3, CODE_AT + 40]);
  });

  it.each([
    { name: 'imm', f: { imm: 1 } },
    { name: 'byte 2', f: { c: 1 } },
    { name: 'the source register field past 7', f: { b: 8 } },
  ])('MOV DS with a valid selector and a must-be-zero field set ($name) is #UD', ({ f }) => {
    const m = setup();
    m.cpu.reg[R.EAX] = RW << 3;
    program(m, enc('mov sreg,reg', { a: S.DS, b: 0, ...f }));
    const before = snapshot(m);
    expect(stepExit(m)).toEqual(exitFault(VEC.UD));
    expectUnchanged(m, before, 'a MOV DS that is #UD');
  });

  it('a store through a DS just loaded read-only is #GP(0); ES loads the same way', () => {
    const m = setup();
    program(
      m,
      enc('mov sreg,reg', { a: S.DS, b: R.EAX }),
      enc('st mem,reg', { a: R.EDX, ...mem(0x30) }),
      enc('mov sreg,reg', { a: S.ES, b: R.EBX }),
      enc('ld reg,mem', { a: R.ECX, ...mem(0x10, S.ES) }),
      enc('mov sreg,reg', { a: S.DS, b: R.EBX }),
      enc('st mem,reg', { a: R.EDX, ...mem(0x30) }),
    );
    expect(stepExit(m, 6)).toEqual(exitFault(VEC.GP, 0, 5));
    expect(m.phys.read32(0x50030)).toBe(0xcafe);
    expect(m.phys.read32(0x60030)).toBe(0);
    expect(m.cpu.reg[R.ECX]).toBe(0x55667788);
    expect([m.cpu.segSel[S.ES], m.cpu.segSel[S.DS], m.cpu.eip]).toEqual([RO << 3, RO << 3, CODE_AT + 40]);
  });
});

describe('null, out-of-table and system selectors', () => {
  const dataRegs = [S.ES, S.DS, S.FS, S.GS];
  const nullRows = [0, 1, 2, 3].flatMap((rpl) =>
    dataRegs.map((seg) => ({ name: `null selector ${rpl} into ${NAMES[seg]} at CPL 3`, rpl, seg })),
  );
  it.each(nullRows)('$name loads, and a later access through it is #GP(0)', ({ name, rpl, seg }) => {
    const m = machine(3);
    m.cpu.reg[R.EAX] = rpl;
    program(
      m,
      enc('mov sreg,reg', { a: seg, b: R.EAX }),
      enc('ld reg,mem', { a: R.ECX, ...mem(0x100, seg) }),
    );
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    expect(m.cpu.segSel[seg], `${name}: selector kept as loaded`).toBe(rpl);
    const before = snapshot(m);
    expect(stepExit(m), `${name}: access`).toEqual(exitFault(VEC.GP, 0));
    expectUnchanged(m, before, `${name}: access`);
  });

  it.each([0, 1, 2, 3])('null selector %i into SS is #GP(0)', (rpl) => {
    const m = machine(rpl);
    checkLoad(m, `null ${rpl} into SS`, S.SS, rpl, 'mov', { vector: VEC.GP, code: 0 });
  });

  const odd = [
    { name: 'index beyond the GDT limit', selector: (32 << 3) | 3 },
    { name: 'TI = 1 with no LDT loaded', selector: (1 << 3) | 4 | 3 },
    { name: 'the TSS descriptor', selector: SEL.tss | 3 },
    { name: 'an LDT descriptor', selector: sel(3, 21) },
    { name: 'a call gate', selector: sel(3, 22) },
    { name: 'an interrupt gate', selector: sel(3, 23) },
  ];
  const oddRows = odd.flatMap((o) =>
    [S.DS, S.SS].map((seg) => ({ ...o, seg, name: `${o.name} into ${NAMES[seg]}` })),
  );
  it.each(oddRows)('$name: #GP(selector)', ({ name, selector, seg }) => {
    const m = machine(3);
    setGdt(m.cpu, 21, segmentDescriptor({ base: 0x7000, limit: 0xff, type: TYPE.LDT, s: false, dpl: 3 }));
    setGdt(
      m.cpu,
      22,
      gateDescriptor({ type: TYPE.CALL_GATE, selector: SEL.code(3), offset: 0x20000, dpl: 3 }),
    );
    setGdt(
      m.cpu,
      23,
      gateDescriptor({ type: TYPE.INT_GATE, selector: SEL.code(0), offset: 0x20000, dpl: 3 }),
    );
    checkLoad(m, name, seg, selector, 'mov', { vector: VEC.GP, code: errSel(selector) });
  });
});

describe('LDT selectors (TI = 1)', () => {
  const LDT_AT = 0x7000;
  /** An LDT with: 1 data DPL 3 (base 0x51000), 2 data DPL 0, 3 readable code DPL 3; 4 entries. */
  function withLdt(): Machine {
    const m = machine(0);
    const put = (i: number, d: [number, number]) => {
      m.phys.write32(LDT_AT + 8 * i, d[0]);
      m.phys.write32(LDT_AT + 8 * i + 4, d[1]);
    };
    put(1, segmentDescriptor({ base: 0x51000, limit: 0xfff, type: 0x2, dpl: 3 }));
    put(2, segmentDescriptor({ base: 0x52000, limit: 0xfff, type: 0x2, dpl: 0 }));
    put(3, segmentDescriptor({ base: 0, limit: 0xfffff, type: 0xa, dpl: 3 }));
    setGdt(
      m.cpu,
      19,
      segmentDescriptor({ base: LDT_AT, limit: 4 * 8 - 1, type: TYPE.LDT, s: false, dpl: 0 }),
    );
    m.cpu.reg[R.EAX] = 19 << 3;
    program(m, enc('lldt reg', { a: R.EAX }));
    expect(stepExit(m), 'lldt').toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.ldtSel, m.cpu.ldtBase, m.cpu.ldtLimit], 'LDTR').toEqual([19 << 3, LDT_AT, 31]);
    enter(m.cpu, 3);
    return m;
  }
  const ldtSel = (i: number, rpl: number) => (i << 3) | 4 | rpl;

  it.each([
    { name: 'DS := LDT 1 (DPL 3)', seg: S.DS, s: ldtSel(1, 3), out: 'loaded' as Outcome },
    { name: 'SS := LDT 1 (DPL 3)', seg: S.SS, s: ldtSel(1, 3), out: 'loaded' as Outcome },
    { name: 'FS := LDT 2 (DPL 0)', seg: S.FS, s: ldtSel(2, 3), out: { vector: VEC.GP, code: ldtSel(2, 0) } },
    {
      name: 'ES := LDT 4 (beyond the LDT limit)',
      seg: S.ES,
      s: ldtSel(4, 3),
      out: { vector: VEC.GP, code: ldtSel(4, 0) },
    },
    { name: 'SS := LDT 3 (code)', seg: S.SS, s: ldtSel(3, 3), out: { vector: VEC.GP, code: ldtSel(3, 0) } },
  ])('$name', ({ name, seg, s, out }) => {
    const m = withLdt();
    checkLoad(m, name, seg, s, 'mov', out, 0x51000, 0xfff);
  });

  it('data read through an LDT segment comes from its base; a far jump to LDT code gets CS from the LDT', () => {
    const m = withLdt();
    m.phys.write32(0x51000 + 0x10, 0xfeedf00d);
    m.cpu.reg[R.EAX] = ldtSel(1, 3);
    program(
      m,
      enc('mov sreg,reg', { a: S.DS, b: R.EAX }),
      enc('ld reg,mem', { a: R.ECX, ...mem(0x10) }),
      enc('jmpf far', { sel: ldtSel(3, 3), imm: CODE_AT + 24 }),
      enc('nop'),
    );
    expect(stepExit(m, 3)).toEqual({ reason: 'budget', executed: 3 });
    expect(m.cpu.reg[R.ECX]! >>> 0).toBe(0xfeedf00d);
    expect([m.cpu.segSel[S.CS], m.cpu.cpl, m.cpu.eip]).toEqual([ldtSel(3, 3), 3, CODE_AT + 24]);
  });

  it('with LDTR null again, a TI = 1 selector is #GP(selector)', () => {
    const m = withLdt();
    enter(m.cpu, 0);
    m.cpu.reg[R.EAX] = 0;
    program(m, enc('lldt reg', { a: R.EAX }));
    expect(stepExit(m)).toEqual({ reason: 'budget', executed: 1 });
    checkLoad(m, 'DS := LDT 1 with no LDT', S.DS, ldtSel(1, 0), 'mov', {
      vector: VEC.GP,
      code: ldtSel(1, 0),
    });
  });
});
