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
import { VEC } from '../../src/cpu/faults.js';
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
  PT1,
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

/**
 * The memos (fast-transfers.ts, Memo): a ring-3 loop of CALLF through a call gate, INT n through a
 * trap or interrupt gate, HLT (#GP(0) delivered with its error code to a handler that skips it) and
 * JMP back, whose ring-0 ends are RETF [n] and IRET, with a hardware interrupt now and then, so every
 * memoised transfer repeats; between two turns, or inside one, one thing a transfer reads changes.
 * With the fast paths the turns after it run from the memos where nothing changed, and must agree
 * with the general path exactly.
 */
const LOOP = [
  enc('callf far', { sel: SEL.gate | 3, imm: 0 }),
  enc('mov reg,sreg', { a: R.ESI, b: S.DS }), // what the return left in DS (ESI is the loop's alone)
  enc('int vec', { imm: V }),
  enc('hlt'),
  enc('jmp imm', { imm: CODE_AT }),
];
/**
 * Instructions in one turn of LOOP: CALLF, RETF, MOV, INT, IRET, HLT (its #GP and 5 in the
 * handler), JMP.
 */
const TURN = 12;
/** The vector of the loop's hardware interrupt. */
const IRQ = V + 1;

/**
 * An LDT for the loop (`loop` with `ldt`), with copies of what the loop otherwise finds in the GDT:
 * the call gate, ring 0's code and stack descriptors, ring 3's code and stack descriptors.
 */
const LDT_AT = 0x8000;
const LDT_GATE = (1 << 3) | 4;
const LDT_CODE0 = (2 << 3) | 4;
const LDT_DATA0 = (3 << 3) | 4;
const LDT_CODE3 = (4 << 3) | 4 | 3;
const LDT_DATA3 = (5 << 3) | 4 | 3;

/**
 * What the loop may name in the LDT (each is a memo's selector: `ldt` must cover every one): the call
 * gate, the gates' target code (the call gate's and INT n's), ring 0's SS, ring 3's CS and SS.
 */
type LdtPart = 'gate' | 'target' | 'ss0' | 'cs3' | 'ss3';
/** The mixes of LdtPart the tests use: none, each one alone, all. */
const LDT_MIXES: readonly (readonly LdtPart[])[] = [
  [],
  ['gate'],
  ['target'],
  ['ss0'],
  ['cs3'],
  ['ss3'],
  ['gate', 'target', 'ss0', 'cs3', 'ss3'],
];

interface LoopOptions {
  /** INT n and the hardware interrupt through interrupt gates (IF cleared), else trap gates. */
  interruptGate?: boolean;
  /** What the loop finds in an LDT rather than the GDT (none: no LDT). */
  ldt?: readonly LdtPart[];
  /** Parameters the call gate copies (RETF releases them). */
  params?: number;
  /** Without the HLT: CALLF, INT n, JMP (5 instructions a turn), for tests that count steps. */
  noHlt?: boolean;
}

/** Sets up the loop (see LOOP), its gates and handlers, into ring `ring`. */
function loop(m: Machine, ring = 0, opts: LoopOptions = {}): void {
  const { cpu, phys } = m;
  const params = opts.params ?? 0;
  const ldt = new Set(opts.ldt ?? []);
  const target = ldt.has('target') ? (LDT_CODE0 & ~3) | ring : SEL.code(ring);
  const gate = [
    ENTRY,
    ((target & 0xfffc) | (params << 16) | (TYPE.CALL_GATE << 24) | (3 << 29) | 0x8000_0000) >>> 0,
  ];
  setGdt(cpu, SEL.gate >>> 3, [gate[0]!, gate[1]!]);
  const type = opts.interruptGate === true ? TYPE.INT_GATE : TYPE.TRAP_GATE;
  idtGate(cpu, V, { type, selector: target, offset: ENTRY + 0x10, dpl: 3 });
  idtGate(cpu, IRQ, { type, selector: target, offset: ENTRY + 0x10, dpl: 0 });
  idtGate(cpu, 13, { type: TYPE.INT_GATE, selector: SEL.code(ring), offset: ENTRY + 0x20, dpl: 0 });
  code(m, ENTRY, params === 0 ? enc('retf') : enc('retf imm16', { imm: 4 * params }));
  code(m, ENTRY + 0x10, enc('iret'));
  // #GP: drop the error code, return past the faulting instruction
  code(
    m,
    ENTRY + 0x20,
    enc('pop reg', { a: R.EAX }),
    enc('pop reg', { a: R.EBX }),
    enc('add reg,imm', { a: R.EBX, imm: 8 }),
    enc('push reg', { a: R.EBX }),
    enc('iret'),
  );
  program(m, ...(opts.noHlt === true ? [LOOP[0]!, LOOP[2]!, LOOP[4]!] : LOOP));
  if (ldt.size === 0) return;
  const copy = (slot: number, sel: number) => {
    phys.write32(LDT_AT + 8 * slot, phys.read32(GDT + (sel & ~7)));
    phys.write32(LDT_AT + 8 * slot + 4, phys.read32(GDT + (sel & ~7) + 4));
  };
  phys.write32(LDT_AT + 8, gate[0]!);
  phys.write32(LDT_AT + 12, gate[1]!);
  copy(2, SEL.code(ring));
  copy(3, SEL.data(ring));
  copy(4, SEL.code(3));
  copy(5, SEL.data(3));
  cpu.ldtUsable = true;
  cpu.ldtBase = LDT_AT;
  cpu.ldtLimit = 0x2f;
  if (ldt.has('gate')) code(m, CODE_AT, enc('callf far', { sel: LDT_GATE | 3, imm: 0 }));
  if (ldt.has('ss0')) phys.write32(TSS_AT + 8 + 8 * ring, (LDT_DATA0 & ~3) | ring);
  // ring 3 runs on LDT copies of its code or stack descriptor, so RETF and IRET return to them
  if (ldt.has('cs3')) cpu.segSel[S.CS] = LDT_CODE3;
  if (ldt.has('ss3')) cpu.segSel[S.SS] = LDT_DATA3;
}

/** Descriptor dwords the loop's transfers read: GDT or LDT slots, IDT vectors; both dwords. */
const DWORDS = [
  ...[SEL.gate, SEL.code(0), SEL.data(0), SEL.code(3), SEL.data(3)].flatMap((sel) => [
    GDT + (sel & ~7),
    GDT + (sel & ~7) + 4,
  ]),
  ...[1, 2, 3, 4, 5].flatMap((slot) => [LDT_AT + 8 * slot, LDT_AT + 8 * slot + 4]),
  IDT + V * 8,
  IDT + V * 8 + 4,
  IDT + IRQ * 8 + 4,
  IDT + 13 * 8 + 4,
  TSS_AT + 4, // ESP0
  TSS_AT + 8, // SS0
];

/** Bits a dword change flips: present, DPL, type, conforming, granularity, base, limit or selector bits. */
const DWORD_XORS = [1 << 31, 1 << 29, 1 << 30, 1 << 24, 1 << 26, 1 << 27, 1 << 20, 4, 8, 0x1000, 0x10000];
/** The registers a change may alter (see `apply`). */
const REGISTERS = [
  'gdtBase',
  'gdtLimit',
  'idtBase',
  'idtLimit',
  'trBase',
  'trLimit',
  'trUsable',
  'ldtBase',
  'ldtLimit',
  'ldtUsable',
  'ldtAlias',
] as const;
const TLB_CHOICES = ['keep', 'invlpg', 'flush'] as const;
/** Bits a frame change flips: an EIP past the limit, IF, IOPL, NT, RPL bits, an index bit. */
const FRAME_XORS = [1 << 20, 0x200, 0x3000, 0x4000, 4, 3, 8];
/** ESP0 values whose inward frame overwrites what the transfer read: ESP0/SS0, a descriptor, a gate. */
const ESP0_OVERLAPS = [TSS_AT + 20, TSS_AT + 24, GDT + (SEL.code(0) & ~7) + 8, IDT + V * 8 + 16];

type Change =
  | { kind: 'dword'; at: number; xor: number }
  | { kind: 'register'; which: (typeof REGISTERS)[number] }
  | { kind: 'page'; page: number; frame: number; tlb: (typeof TLB_CHOICES)[number] }
  | { kind: 'wp' }
  | { kind: 'paging on' }
  | { kind: 'frame'; slot: number; xor: number }
  | { kind: 'esp0'; at: number }
  | { kind: 'ds0' }
  | { kind: 'halted' };

const change: fc.Arbitrary<Change> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('dword' as const),
      at: fc.constantFrom(...DWORDS),
      xor: fc.oneof(fc.constantFrom(...DWORD_XORS), fc.nat(0xffffffff)),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('register' as const), which: fc.constantFrom(...REGISTERS) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('page' as const),
      page: fc.constantFrom(...PAGES),
      frame: fc.constantFrom(0x50, 0x51),
      tlb: fc.constantFrom(...TLB_CHOICES),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'wp' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'paging on' as const }) },
  {
    // a dword of the current stack (in ring 0, a frame RETF or IRET will pop): EIP, CS, EFLAGS, ESP, SS
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('frame' as const),
      slot: fc.nat(4),
      xor: fc.oneof(fc.constantFrom(...FRAME_XORS), fc.nat(0xffffffff)),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('esp0' as const), at: fc.constantFrom(...ESP0_OVERLAPS) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'ds0' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'halted' as const }) },
);

/**
 * Points the TSS page's PTE at a copy of the page in frame `frame` whose ESP0 is 0x100 lower, the
 * TLB left as it is.
 */
function remapTss(m: Machine, frame: number): void {
  const { phys } = m;
  const page = TSS_AT >>> 12;
  const copy = frame << 12;
  phys.ram.copyWithin(copy, page << 12, (page << 12) + 0x1000);
  phys.write32(copy + ((TSS_AT + 4) & 0xfff), (phys.read32(TSS_AT + 4) - 0x100) >>> 0);
  phys.write32(PT0 + 4 * page, copy | PG.P | PG.W | PG.U);
}

/** Applies `c` (the same in both runs; a page change only with paging on). */
function apply(m: Machine, c: Change): void {
  const { cpu, phys } = m;
  switch (c.kind) {
    case 'dword':
      phys.write32(c.at, (phys.read32(c.at) ^ c.xor) >>> 0);
      return;
    case 'register':
      if (c.which === 'gdtBase') cpu.gdtBase += 8;
      else if (c.which === 'gdtLimit') cpu.gdtLimit = SEL.gate - 1;
      else if (c.which === 'idtBase') cpu.idtBase += 8;
      else if (c.which === 'idtLimit') cpu.idtLimit = V * 8 + 3;
      else if (c.which === 'trBase') cpu.trBase += 8;
      else if (c.which === 'trLimit') cpu.trLimit = 8;
      else if (c.which === 'trUsable') cpu.trUsable = false;
      // the LDT: the loop's one if it has one (else none) moved, cut short or unusable, or the GDT
      // seen as one
      else if (c.which === 'ldtBase') cpu.ldtBase += 8;
      else if (c.which === 'ldtLimit') cpu.ldtLimit = 0xf;
      else if (c.which === 'ldtUsable') cpu.ldtUsable = !cpu.ldtUsable;
      else {
        cpu.ldtBase = GDT;
        cpu.ldtLimit = 0x7f;
        cpu.ldtUsable = true;
      }
      return;
    case 'page': {
      if (!cpu.mmu.paging) return;
      // the page now maps another frame holding a copy of it with the call gate's DPL 0
      const copy = c.frame << 12;
      phys.ram.copyWithin(copy, c.page << 12, (c.page << 12) + 0x1000);
      const gate = copy + ((GDT + SEL.gate + 4) & 0xfff);
      if (c.page === GDT >>> 12) phys.write32(gate, phys.read32(gate) & ~(3 << 29));
      phys.write32(PT0 + 4 * c.page, copy | PG.P | PG.W | PG.U);
      if (c.tlb === 'invlpg') cpu.mmu.invalidate(c.page << 12);
      if (c.tlb === 'flush') cpu.mmu.flush();
      return;
    }
    case 'wp':
      cpu.cr0 = (cpu.cr0 ^ 0x1_0000) >>> 0;
      cpu.mmu.writeProtect = !cpu.mmu.writeProtect;
      return;
    case 'paging on': {
      if (cpu.mmu.paging) return;
      // the identity map, but for the TSS page
      enablePaging(m);
      remapTss(m, 0x52);
      return;
    }
    case 'frame': {
      const at = cpu.esp + 4 * c.slot;
      if (at + 4 <= phys.ram.length) phys.write32(at, (phys.read32(at) ^ c.xor) >>> 0);
      return;
    }
    case 'esp0':
      phys.write32(TSS_AT + 4, c.at);
      return;
    case 'ds0':
      // ring 0's data in DS: a return to ring 3 must load DS with the null selector
      loadCache(cpu, S.DS, SEL.data(0));
      return;
    case 'halted':
      // as a host may leave it: a delivery wakes the CPU
      cpu.halted = true;
      return;
  }
}

describe('the memos of the far transfers', () => {
  it('a repeated CALLF, RETF, INT n, IRET and delivery with one input changed in between agree with the general path', () => {
    const options = fc.record({
      interruptGate: fc.boolean(),
      ldt: fc.constantFrom(...LDT_MIXES),
      params: mostly(fc.constant(0), fc.integer({ min: 1, max: 2 }), 3),
    });
    fc.assert(
      fc.property(
        common,
        options,
        change,
        fc.nat(TURN - 1),
        fc.nat(TURN),
        fc.nat(TURN - 1),
        (c, o, ch, at, more, irq) => {
          let stub: IrqStub | undefined;
          same(
            { ...c, cpl: 3 },
            (m) => {
              loop(m, 0, o);
              // the frame of RETF and IRET back to ring 3 must be the loop's: ESP in ring 3's stack
              m.cpu.reg[R.ESP] = stackTop(3) - 0x100;
              stub = new IrqStub();
              m.cpu.irq = stub;
            },
            (m) => {
              // exceptions delivered through the IDT (#GP with its error code), none taken as exits
              m.cpu.exitVectors = 0;
              const results = [];
              // two turns (every memo filled), then into the third, where the change comes; then on
              for (let i = 0; i < 3 * TURN + more; i++) {
                if (i === 2 * TURN + at) apply(m, ch);
                // the hardware interrupt, once a turn (taken when IF allows)
                if (i % TURN === irq) stub!.vector = IRQ;
                results.push(run(m.cpu, 1));
              }
              return { results, acked: stub!.acked };
            },
          );
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('every change of the list, at every point of a turn, agrees with the general path (a sweep)', () => {
    // The usual case (`common` draws unusual ones too), with paging off and on.
    const usual = (paging: boolean): Common => ({
      cpl: 3,
      paging: paging ? { wp: false, changes: [] } : null,
      notPresent: [],
      trLimit: 104 + 8192,
      tss: [0, 1, 2, 3].map((r) => ({ esp: stackTop(r), ss: SEL.data(r) })),
      esp: stackTop(3) - 0x100,
      stack: [0, 0, 0, 0, 0, 0, 0, 0],
      data: [SEL.data(3), SEL.data(3), SEL.data(3), SEL.data(3)],
      iopl: 0,
      flags: 0,
      sft: false,
    });
    const changes: Change[] = [
      ...DWORDS.flatMap((at) => DWORD_XORS.map((xor) => ({ kind: 'dword' as const, at, xor }))),
      ...REGISTERS.map((which) => ({ kind: 'register' as const, which })),
      ...PAGES.flatMap((page) =>
        TLB_CHOICES.map((tlb) => ({ kind: 'page' as const, page, frame: 0x50, tlb })),
      ),
      { kind: 'wp' },
      { kind: 'paging on' },
      ...[0, 1, 2, 3, 4].flatMap((slot) => FRAME_XORS.map((xor) => ({ kind: 'frame' as const, slot, xor }))),
      ...ESP0_OVERLAPS.map((at) => ({ kind: 'esp0' as const, at })),
      { kind: 'ds0' },
      { kind: 'halted' },
    ];
    for (const [k, ch] of changes.entries()) {
      // every change at every point of the turn, with the options taking turns
      for (let at = 0; at < TURN; at++) {
        const n = k * TURN + at;
        const o = {
          interruptGate: (n & 1) !== 0,
          ldt: LDT_MIXES[n % LDT_MIXES.length]!,
          params: n % 5 === 4 ? 1 : 0,
        };
        // a hardware interrupt in the first turn and in the one of the change; sometimes on vector 13,
        // which the #GP of the HLT takes with an error code
        const irq = (n * 7) % TURN;
        const vector = n % 7 === 0 ? 13 : IRQ;
        let stub: IrqStub | undefined;
        same(
          usual((n & 4) !== 0),
          (m) => {
            loop(m, 0, o);
            if (vector === 13)
              idtGate(m.cpu, 13, {
                type: TYPE.INT_GATE,
                selector: SEL.code(0),
                offset: ENTRY + 0x10,
                dpl: 0,
              });
            stub = new IrqStub();
            m.cpu.irq = stub;
          },
          (m) => {
            m.cpu.exitVectors = 0;
            const results = [];
            // A change of the frame or of DS comes in ring 0 at the third turn's RETF (even `at`) or
            // IRET (odd); the others at the `at`-th step of the third turn.
            const frameAt = (at & 1) === 0 ? ENTRY : ENTRY + 0x10;
            const inRing0 = ch.kind === 'frame' || ch.kind === 'ds0';
            let applied = false;
            for (let i = 0; i < 4 * TURN; i++) {
              const now = inRing0
                ? i >= 2 * TURN && m.cpu.eip === frameAt && m.cpu.cpl === 0
                : i === 2 * TURN + at;
              if (now && !applied) {
                apply(m, ch);
                applied = true;
              }
              if (i === irq || i === 2 * TURN + irq) stub!.vector = vector;
              results.push(run(m.cpu, 1));
            }
            return { results, acked: stub!.acked };
          },
        );
      }
    }
  });

  it('hold what the transfer read when its frame overwrites it', () => {
    // ESP0 such that the inward frame covers the TSS's ESP0 and SS0 themselves: the second CALLF or
    // INT n reads what the first wrote there (and the general path refuses that SS0).
    for (const [transfer, esp0] of [
      [LOOP[0]!, TSS_AT + 20],
      [LOOP[2]!, TSS_AT + 24],
    ] as const) {
      bothWays(
        () => {
          const m = machine(3);
          loop(m, 0, { noHlt: true });
          program(m, transfer, enc('jmp imm', { imm: CODE_AT }));
          m.phys.write32(TSS_AT + 4, esp0);
          m.cpu.exitVectors = 0xffffffff;
          return m;
        },
        (m) => Array.from({ length: 8 }, () => run(m.cpu, 1)),
      );
    }
  });

  it('are used when nothing changed, and not after a change', () => {
    const m = machine(3);
    const { cpu } = m;
    loop(m, 0, { noHlt: true });
    const esp = cpu.esp;
    cpu.exitVectors = 0xffffffff;
    for (let i = 0; i < 5; i++) run(cpu, 1);
    expect([cpu.callMemo.key, cpu.intMemo.key, cpu.retfMemo.key, cpu.iretMemo.key], 'filled').toEqual([
      SEL.gate | 3,
      V | 0x100,
      SEL.code(3) + SEL.data(3) * 0x10000,
      SEL.code(3) + SEL.data(3) * 0x10000,
    ]);
    // A second turn with the general path out of the way: only the memos can take it.
    const misses = cpu.mmu.tlbMisses;
    expect(run(cpu, 5), 'second turn').toEqual({ reason: 'budget', executed: 5 });
    expect([cpu.cpl, cpu.eip, cpu.esp, cpu.mmu.tlbMisses], 'back at the loop').toEqual([
      3,
      CODE_AT,
      esp,
      misses,
    ]);
    // The call gate's DPL drops to 0 in RAM: the memo must not answer, the general path faults.
    const hi = GDT + SEL.gate + 4;
    m.phys.write32(hi, (m.phys.read32(hi) & ~(3 << 29)) >>> 0);
    expect(run(cpu, 1)).toEqual({ reason: 'exit', vector: VEC.GP, errorCode: SEL.gate, executed: 0 });
    expect([cpu.cpl, cpu.eip], 'still at the CALLF').toEqual([3, CODE_AT]);
  });

  /**
   * The loop with paging on, two turns run (the first walks: the fast paths take TLB hits only; the
   * second fills the memos), then the TSS page's PTE pointed at a copy whose ESP0 is 0x100 lower,
   * the TLB left as it is.
   */
  function tssRemapped(): Machine {
    const m = machine(3);
    const { cpu } = m;
    loop(m, 0, { noHlt: true });
    enablePaging(m);
    cpu.exitVectors = 0xffffffff;
    for (let i = 0; i < 10; i++) run(cpu, 1);
    expect([cpu.callMemo.key, cpu.callMemo.paging], 'memo').toEqual([SEL.gate | 3, true]);
    remapTss(m, 0x50);
    return m;
  }

  it('see a TSS page remapped by INVLPG, and keep the old frame while the TLB does', () => {
    for (const invlpg of [false, true]) {
      const m = tssRemapped();
      if (invlpg) m.cpu.mmu.invalidate(TSS_AT);
      run(m.cpu, 1); // CALLF
      expect([m.cpu.cpl, m.cpu.esp], invlpg ? 'the new ESP0' : 'the TLB still maps the old frame').toEqual([
        0,
        (invlpg ? stackTop(0) - 0x100 : stackTop(0)) - 16,
      ]);
    }
  });

  it('see a TLB entry replaced by a walk (a colliding page) without a flush', () => {
    const m = tssRemapped();
    const { cpu, phys } = m;
    // The page 4 MiB above shares the TSS page's TLB slot: reading it evicts the entry, and the next
    // look-up of the TSS walks the changed PTE (no INVLPG, no flush: the generation stays).
    const page = TSS_AT >>> 12;
    phys.write32(PT1 + 4 * page, (0x60 << 12) | PG.P | PG.W | PG.U);
    const generation = cpu.mmu.generation;
    cpu.mmu.translate((page + 1024) << 12, false, false);
    expect(cpu.mmu.generation).toBe(generation);
    run(cpu, 1); // CALLF
    expect([cpu.cpl, cpu.esp], 'the new ESP0').toEqual([0, stackTop(0) - 0x100 - 16]);
  });

  it('agree with the general path on an IRET that CR4.SFT refuses, and a frame on a read-only page once CR0.WP is set', () => {
    const build = (sft: boolean) => () => {
      const m = machine(3);
      // CR4.SFT: an IRET at CPL 1 (IOPL 0) that would change IF; at CPL 0 IRET may change it
      loop(m, sft ? 1 : 0, { noHlt: true });
      if (sft) m.cpu.cr4 = CR4.SFT;
      else {
        // ring 0's stack on a read-only page, writable by ring 0 while CR0.WP is clear
        enablePaging(m);
        const page = (stackTop(0) >>> 12) - 1;
        m.phys.write32(PT0 + 4 * page, (page << 12) | PG.P | PG.U);
      }
      m.cpu.exitVectors = 0xffffffff;
      return m;
    };
    const turns = (m: Machine, n: number) => Array.from({ length: n }, () => run(m.cpu, 1));
    bothWays(build(true), (m) => {
      const before = turns(m, 13); // two turns, then CALLF, RETF, INT: at the IRET
      m.phys.write32(m.cpu.esp + 8, (m.phys.read32(m.cpu.esp + 8) ^ FL.IF) >>> 0);
      const r = run(m.cpu, 1);
      expect(r, 'IRET').toEqual({ reason: 'exit', vector: VEC.GP, errorCode: 0, executed: 0 });
      return [...before, r];
    });
    bothWays(build(false), (m) => {
      const before = turns(m, 10);
      m.cpu.cr0 = (m.cpu.cr0 | 0x1_0000) >>> 0; // as the VM manager may, without a flush
      m.cpu.mmu.writeProtect = true;
      const r = run(m.cpu, 1);
      expect(r, 'CALLF').toMatchObject({ reason: 'exit', vector: VEC.PF });
      return [...before, r];
    });
  });

  it('key a return by the ring it leaves: an inner-ring return with the same frame faults', () => {
    const m = machine(0);
    const { cpu, phys } = m;
    const frame = (esp: number) => {
      phys.write32(esp, CODE_AT);
      phys.write32(esp + 4, SEL.code(1));
      phys.write32(esp + 8, stackTop(1) - 0x40);
      phys.write32(esp + 12, SEL.data(1));
    };
    frame(cpu.esp);
    expect(farReturnFast(cpu, 0), 'RETF from ring 0 to ring 1').toBe(true);
    expect(cpu.retfMemo.key, 'memo').toBe(SEL.code(1) + SEL.data(1) * 0x10000);
    // Now in ring 2 with the same frame: a return to an inner ring, which the general path refuses.
    loadCache(cpu, S.CS, SEL.code(2));
    loadCache(cpu, S.SS, SEL.data(2));
    cpu.reg[R.ESP] = stackTop(2) - 0x100;
    frame(cpu.esp);
    expect(farReturnFast(cpu, 0), 'RETF from ring 2 to ring 1').toBe(false);
    program(m, enc('retf'));
    cpu.exitVectors = 0xffffffff;
    expect(run(cpu, 1)).toEqual({ reason: 'exit', vector: VEC.GP, errorCode: SEL.code(1) & ~3, executed: 0 });
  });
});
