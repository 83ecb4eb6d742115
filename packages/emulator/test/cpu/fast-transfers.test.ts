/**
 * The fast paths of the far transfers (src/cpu/fast-transfers.ts) against the general path
 * (transfers.ts), which the protection-rule suites check against the SDM: random machines, each
 * run once with the fast paths and once without, must end in the same state with the same result.
 * The cases mix the common ones (the fast path completes) with every way of leaving them: gates and
 * targets of every type, DPL and presence, selectors of every RPL, null and past the table, stacks
 * at page boundaries, unaligned, too small or in the wrong segment, a TSS too short, paging on with
 * pages not present, read-only or supervisor, and TLB entries cached or not (the fast paths only
 * use TLB hits), CR4.SFT, NT, IOPL.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { run } from '../../src/cpu/exec.js';
import {
  callGateFast,
  deliverFast,
  farReturnFast,
  interruptReturnFast,
  loadDataSegmentFast,
} from '../../src/cpu/fast-transfers.js';
import { CR4, FL } from '../../src/cpu/flags.js';
import { R, S } from '../../src/cpu/isa.js';
import {
  bothWays,
  CODE_AT,
  code,
  enablePaging,
  enc,
  GDT,
  IDT,
  IrqStub,
  idtGate,
  loadCache,
  type Machine,
  machine,
  PG,
  PT0,
  program,
  SEL,
  setGdt,
  stackTop,
  TSS_AT,
} from './harness.js';

const ENTRY = 0x20000;
const V = 0x40;

/** `usual` most of the time (the fast path's common case), else anything from `other`. */
const mostly = <T>(usual: fc.Arbitrary<T>, other: fc.Arbitrary<T>, weight = 5): fc.Arbitrary<T> =>
  fc.oneof({ weight, arbitrary: usual }, { weight: 1, arbitrary: other });

/** Selectors a random field may hold: every kind and ring, null, past the GDT, in an absent LDT. */
const anySelector = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.nat(3), fc.nat(3)).map(([r, rpl]) => (SEL.code(r) & ~3) | rpl) },
  { weight: 3, arbitrary: fc.tuple(fc.nat(3), fc.nat(3)).map(([r, rpl]) => (SEL.conf(r) & ~3) | rpl) },
  { weight: 6, arbitrary: fc.tuple(fc.nat(3), fc.nat(3)).map(([r, rpl]) => (SEL.data(r) & ~3) | rpl) },
  { weight: 1, arbitrary: fc.constantFrom(0, 3, SEL.tss, SEL.gate, 32 << 3, (2 << 3) | 4) },
);

/** A stack pointer: the usual one, or at a page boundary, unaligned, tiny, at the 1 MiB limit. */
const espNear = (top: number): fc.Arbitrary<number> =>
  mostly(
    fc.constant(top),
    fc.constantFrom(top - 0xf00 + 4, top - 0xf00 + 12, top - 0xf00 + 20, top - 2, 8, 0, 0xffffc, 0x100000),
  );

/** Pages the transfers read and write: the GDT, the IDT, the TSS and the top two pages of each stack. */
const PAGES = [
  GDT >>> 12,
  IDT >>> 12,
  TSS_AT >>> 12,
  ...[0, 1, 2, 3].flatMap((r) => [(stackTop(r) >>> 12) - 1, (stackTop(r) >>> 12) - 2]),
];

type TlbChange = 'keep' | 'drop' | 'read' | 'user read';

/**
 * Paging: off, or on over the identity map with every page above in the TLB (as after use), then a
 * few pages changed: other rights in the PTE (the TLB keeps the old ones until dropped), dropped
 * from the TLB, or cached again by a read (no dirty bit: a write must walk).
 */
const paging = fc.option(
  fc.record({
    wp: fc.boolean(),
    changes: fc.array(
      fc.record({
        page: fc.constantFrom(...PAGES),
        rights: fc.constantFrom(PG.P | PG.W | PG.U, PG.P | PG.U, PG.P | PG.W, PG.P, 0),
        tlb: fc.constantFrom<TlbChange>('keep', 'drop', 'read', 'user read'),
      }),
      { maxLength: 3 },
    ),
  }),
  { freq: 2 },
);

interface Common {
  cpl: number;
  paging: {
    wp: boolean;
    changes: { page: number; rights: number; tlb: TlbChange }[];
  } | null;
  notPresent: number[];
  trLimit: number;
  tss: { esp: number; ss: number }[];
  esp: number;
  stack: number[];
  data: number[];
  iopl: number;
  flags: number;
  sft: boolean;
}

const common: fc.Arbitrary<Common> = fc.nat(3).chain((cpl) =>
  fc.record({
    cpl: fc.constant(cpl),
    paging,
    // GDT indices whose present bit is cleared
    notPresent: mostly(
      fc.constant([]),
      fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 2 }),
    ),
    trLimit: mostly(fc.constant(104 + 8192), fc.nat(40), 10),
    tss: fc.tuple(
      ...[0, 1, 2, 3].map((r) =>
        fc.record({ esp: espNear(stackTop(r)), ss: mostly(fc.constant(SEL.data(r)), anySelector, 8) }),
      ),
    ),
    esp: espNear(stackTop(cpl) - 0x100),
    stack: fc.array(fc.nat(0xffffffff), { minLength: 8, maxLength: 8 }),
    data: fc.array(
      mostly(
        fc.nat(3).map((r) => SEL.data(r)),
        anySelector,
      ),
      { minLength: 4, maxLength: 4 },
    ),
    iopl: fc.nat(3),
    flags: mostly(
      fc.nat(0xffff).map((f) => f & ~FL.NT),
      fc.nat(0xffff),
    ),
    sft: mostly(fc.constant(false), fc.constant(true)),
  }),
);

/** Builds the machine a case describes (the same for both runs). */
function build(c: Common, extra: (m: Machine) => void): Machine {
  const m = machine(c.cpl);
  const { cpu, phys } = m;
  for (const i of c.notPresent) {
    const at = GDT + i * 8 + 4;
    phys.write32(at, phys.read32(at) & 0x7fffffff);
  }
  for (const [r, t] of c.tss.entries()) {
    phys.write32(TSS_AT + 4 + 8 * r, t.esp);
    phys.write32(TSS_AT + 8 + 8 * r, t.ss);
  }
  cpu.trLimit = c.trLimit;
  // DS, ES, FS, GS: caches as a load would leave them (RETF and IRET to an outer ring re-check them)
  for (const [k, s] of [S.DS, S.ES, S.FS, S.GS].entries()) {
    const sel = c.data[k]!;
    if ((sel & 0xfffc) !== 0 && (sel & 4) === 0 && sel >>> 3 < 13) loadCache(cpu, s, sel);
  }
  cpu.reg[R.ESP] = c.esp;
  for (const [k, v] of c.stack.entries()) {
    const at = c.esp + 4 * k;
    if (at + 4 <= phys.ram.length) phys.write32(at, v);
  }
  cpu.eflags = ((c.flags & 0x4dd5) | FL.FIXED | (c.iopl << 12) | FL.IF) >>> 0;
  if (c.sft) cpu.cr4 = CR4.SFT;
  extra(m);
  if (c.paging !== null) {
    enablePaging(m, { wp: c.paging.wp });
    const mmu = cpu.mmu;
    for (const page of PAGES) mmu.translate(page << 12, true, true);
    for (const p of c.paging.changes) {
      phys.write32(PT0 + 4 * p.page, (p.page << 12) | p.rights);
      if (p.tlb === 'keep') continue;
      mmu.invalidate(p.page << 12);
      if (p.tlb === 'drop') continue;
      try {
        mmu.translate(p.page << 12, false, p.tlb === 'user read');
      } catch {
        // a page fault while filling: not cached
      }
    }
    mmu.cr2 = 0;
  }
  return m;
}

/** Runs the case with and without the fast paths; both runs must agree exactly. */
function same(c: Common, extra: (m: Machine) => void, step: (m: Machine) => unknown): void {
  bothWays(() => build(c, extra), step);
}

const RUNS = 400;

describe('fast paths agree with the general path', () => {
  it('CALLF through a call gate (and JMPF, which always takes the general path)', () => {
    const gate = fc.record({
      type: mostly(fc.constant(TYPE.CALL_GATE), fc.constantFrom(TYPE.INT_GATE, TYPE.TSS, 0x1a)),
      dpl: mostly(fc.constant(3), fc.nat(3)),
      present: mostly(fc.constant(true), fc.constant(false)),
      params: mostly(fc.constant(0), fc.integer({ min: 1, max: 4 }), 2),
      // a code segment of any ring, conforming or not; the RPL does not matter
      target: mostly(
        fc.tuple(fc.nat(3), fc.boolean()).map(([r, conf]) => (conf ? SEL.conf(r) : SEL.code(r))),
        anySelector,
      ),
      offset: mostly(fc.constant(ENTRY), fc.constantFrom(ENTRY + 2, 0xffff8, 0x100000)),
      rpl: fc.nat(3),
      jump: mostly(fc.constant(false), fc.constant(true), 9),
    });
    fc.assert(
      fc.property(common, gate, (c, g) => {
        same(
          c,
          (m) => {
            const hi =
              (g.target & 0xffff) |
              (g.params << 16) |
              ((g.type & 0x1f) << 24) |
              (g.dpl << 29) |
              (g.present ? 0x8000_0000 : 0);
            setGdt(m.cpu, SEL.gate >>> 3, [g.offset, hi >>> 0]);
            program(m, enc(g.jump ? 'jmpf far' : 'callf far', { sel: SEL.gate | g.rpl, imm: 0 }));
          },
          (m) => {
            m.cpu.exitVectors = 0xffffffff;
            return run(m.cpu, 1);
          },
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('RETF and RETF n, to the same ring and to outer rings', () => {
    // a return to the same or an outer ring (a code selector of RPL = its DPL), or anything
    const cs = mostly(
      fc.tuple(fc.nat(3), fc.boolean()).map(([r, conf]) => (conf ? SEL.conf(r) : SEL.code(r))),
      anySelector,
    );
    const ret = fc.record({
      release: fc.constantFrom(0, 0, 4, 8, 0x100),
      cs,
      ss: fc.option(anySelector, { freq: 5 }),
      eip: mostly(fc.constant(ENTRY), fc.constantFrom(0xffff8, 0x100000)),
    });
    fc.assert(
      fc.property(common, ret, (c, r) => {
        const cc = { ...c, stack: [r.eip, r.cs, ...c.stack.slice(2)] };
        const outer = 2 + r.release / 4;
        if (outer + 1 < cc.stack.length) {
          const ss = r.ss ?? SEL.data(r.cs & 3); // the usual outer stack, or any selector
          cc.stack[outer] = stackTop(ss & 3) - 0x80;
          cc.stack[outer + 1] = ss;
        }
        same(
          cc,
          (m) => program(m, r.release === 0 ? enc('retf') : enc('retf imm16', { imm: r.release })),
          (m) => {
            m.cpu.exitVectors = 0xffffffff;
            return run(m.cpu, 1);
          },
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('IRET, to the same ring and to outer rings, with IF, IOPL, NT and CR4.SFT', () => {
    const ret = fc.record({
      cs: mostly(
        fc.tuple(fc.nat(3), fc.boolean()).map(([r, conf]) => (conf ? SEL.conf(r) : SEL.code(r))),
        anySelector,
      ),
      ss: fc.option(anySelector, { freq: 5 }),
      eip: mostly(fc.constant(ENTRY), fc.constantFrom(0xffff8, 0x100000)),
      popped: fc.nat(0xffff),
    });
    fc.assert(
      fc.property(common, ret, (c, r) => {
        const ss = r.ss ?? SEL.data(r.cs & 3); // the usual outer stack, or any selector
        const cc = { ...c, stack: [r.eip, r.cs, r.popped, stackTop(ss & 3) - 0x80, ss, ...c.stack.slice(5)] };
        same(
          cc,
          (m) => program(m, enc('iret')),
          (m) => {
            m.cpu.exitVectors = 0xffffffff;
            return run(m.cpu, 1);
          },
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('INT n, hardware interrupts and exceptions with and without an error code, delivered', () => {
    const int = fc.record({
      source: fc.constantFrom('int', 'int', 'int3', 'irq', 'irq', '#UD', '#GP(sel)', '#GP(0)'),
      type: mostly(fc.constantFrom(TYPE.INT_GATE, TYPE.TRAP_GATE), fc.constantFrom(TYPE.CALL_GATE, TYPE.TSS)),
      dpl: mostly(fc.constant(3), fc.nat(3)),
      present: mostly(fc.constant(true), fc.constant(false)),
      target: mostly(
        fc.tuple(fc.nat(3), fc.boolean()).map(([r, conf]) => (conf ? SEL.conf(r) : SEL.code(r))),
        anySelector,
      ),
      offset: mostly(fc.constant(ENTRY), fc.constantFrom(0xffff8, 0x100000)),
      idtShort: mostly(fc.constant(false), fc.constant(true), 9),
    });
    fc.assert(
      fc.property(common, int, (c, g) => {
        const vector = { int: V, int3: 3, irq: V, '#UD': 6, '#GP(sel)': 13, '#GP(0)': 13 }[g.source];
        same(
          c,
          (m) => {
            const { cpu } = m;
            const hi =
              (g.target & 0xffff) | ((g.type & 0x1f) << 24) | (g.dpl << 29) | (g.present ? 0x8000_0000 : 0);
            m.phys.write32(IDT + vector * 8, g.offset);
            m.phys.write32(IDT + vector * 8 + 4, hi >>> 0);
            // #DF and #GP handlers too, so that a failed delivery is delivered in turn
            idtGate(cpu, 8, { selector: SEL.code(0), offset: ENTRY + 0x100, dpl: 0 });
            if (vector !== 13) idtGate(cpu, 13, { selector: SEL.code(0), offset: ENTRY + 0x200, dpl: 0 });
            if (g.idtShort) cpu.idtLimit = vector * 8 + 3;
            code(m, ENTRY, enc('nop'));
            if (g.source === 'irq') cpu.irq = new IrqStub(V);
            const instr = {
              int: enc('int vec', { imm: V }),
              int3: enc('int3'),
              irq: enc('nop'),
              '#UD': new Uint8Array(8),
              '#GP(sel)': enc('mov sreg,reg', { a: S.DS, b: R.EAX }),
              '#GP(0)': enc('mov cr,reg', { a: 0, b: R.EAX }),
            }[g.source];
            cpu.reg[R.EAX] = SEL.code(0) & ~3; // an execute-only code segment for DS below
            setGdt(cpu, 20, segmentDescriptor({ base: 0, limit: 0xfffff, type: 0x8, dpl: 3 }));
            if (g.source === '#GP(sel)') cpu.reg[R.EAX] = (20 << 3) | 3;
            program(m, instr);
          },
          (m) => {
            m.cpu.exitVectors = 0;
            return run(m.cpu, 1);
          },
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('MOV and POP of DS, ES, FS, GS (SS and CS always take the general path)', () => {
    const load = fc.record({
      pop: fc.boolean(),
      seg: fc.constantFrom(S.DS, S.ES, S.FS, S.GS, S.DS, S.SS),
      selector: mostly(
        fc.tuple(fc.nat(3), fc.nat(3)).map(([r, rpl]) => (SEL.data(r) & ~3) | rpl),
        anySelector,
        2,
      ),
    });
    fc.assert(
      fc.property(common, load, (c, l) => {
        const cc = { ...c, stack: [l.selector, ...c.stack.slice(1)] };
        same(
          cc,
          (m) => {
            m.cpu.reg[R.EAX] = l.selector;
            program(m, l.pop ? enc('pop sreg', { a: l.seg }) : enc('mov sreg,reg', { a: l.seg, b: R.EAX }));
          },
          (m) => {
            m.cpu.exitVectors = 0xffffffff;
            return run(m.cpu, 1);
          },
        );
      }),
      { numRuns: RUNS },
    );
  });
});

describe('the fast paths take the common cases', () => {
  it('a call gate inward, RETF outward, INT n inward through a trap gate and IRET outward', () => {
    const m = machine(3);
    const { cpu } = m;
    const gateHi = (SEL.code(0) & 0xfffc) | (TYPE.CALL_GATE << 24) | (3 << 29) | 0x8000_0000;
    setGdt(cpu, SEL.gate >>> 3, [ENTRY, gateHi >>> 0]);
    idtGate(cpu, V, { type: TYPE.TRAP_GATE, selector: SEL.code(0), offset: ENTRY + 0x10, dpl: 3 });
    const esp = cpu.esp;
    expect(callGateFast(cpu, SEL.gate | 3, CODE_AT + 8), 'CALLF').toBe(true);
    expect([cpu.cpl, cpu.eip, cpu.esp], 'in ring 0').toEqual([0, ENTRY, stackTop(0) - 16]);
    expect(farReturnFast(cpu, 0), 'RETF').toBe(true);
    expect([cpu.cpl, cpu.eip, cpu.esp], 'back in ring 3').toEqual([3, CODE_AT + 8, esp]);
    expect(deliverFast(cpu, V, -1, true, CODE_AT + 16), 'INT').toBe(true);
    expect([cpu.cpl, cpu.eip, cpu.esp], 'in ring 0').toEqual([0, ENTRY + 0x10, stackTop(0) - 20]);
    expect(interruptReturnFast(cpu), 'IRET').toBe(true);
    expect([cpu.cpl, cpu.eip, cpu.esp], 'back in ring 3').toEqual([3, CODE_AT + 16, esp]);
    expect(loadDataSegmentFast(cpu, S.DS, SEL.data(3)), 'MOV DS').toBe(true);
    expect(cpu.segSel[S.DS], 'DS').toBe(SEL.data(3));
  });
});
