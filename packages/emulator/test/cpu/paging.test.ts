/**
 * Paging (SDM Vol. 3A §4.3 32-bit paging, §4.6 access rights, §4.7 page-fault error codes, §4.8
 * accessed and dirty flags, §4.10 TLBs): the #PF error code and CR2 for every combination of CPL,
 * access, PDE and PTE rights and CR0.WP; code fetches; implicit supervisor accesses from CPL 3; the
 * TLB keeping a stale translation until INVLPG or a CR3 write.
 */

import { describe, expect, it } from 'vitest';
import { TYPE } from '../../src/cpu/descriptor.js';
import { VEC } from '../../src/cpu/faults.js';
import { R, S } from '../../src/cpu/isa.js';
import {
  CODE_AT,
  cpuState,
  enablePaging,
  enc,
  exitFault,
  expectUnchanged,
  firstDiff,
  idtGate,
  loadCache,
  type Machine,
  machine,
  mem,
  PD,
  PG,
  PT0,
  PT1,
  program,
  SEL,
  snapshot,
  stateDiff,
  stepExit,
  TSS_AT,
} from './harness.js';

const FLAT = { limit: 0xffffffff };
const LIN = 0x400123; // PDE 1, PTE 0, offset 0x123
const FRAME = 0x60000;

const PTE = { absent: 0, R: PG.P, W: PG.P | PG.W, UR: PG.P | PG.U, UW: PG.P | PG.U | PG.W } as const;
const PDE = { absent: 0, UW: PG.P | PG.U | PG.W, UR: PG.P | PG.U, W: PG.P | PG.W } as const;

/** SDM §4.6, §4.7 (CPL 0-2 make supervisor accesses, CPL 3 user ones): the fault, or undefined. */
function pageRule(cpl: number, write: boolean, pde: number, pte: number, wp: boolean): number | undefined {
  const codeBits = (write ? 2 : 0) | (cpl === 3 ? 4 : 0);
  if (!(pde & PG.P) || !(pte & PG.P)) return codeBits;
  const user = (pde & pte & PG.U) !== 0;
  const writable = (pde & pte & PG.W) !== 0;
  if (cpl === 3 && !user) return 1 | codeBits;
  if (write && !writable && (cpl === 3 || wp)) return 1 | codeBits;
  return undefined;
}

describe('#PF error code and CR2: CPL x access x PDE x PTE x CR0.WP', () => {
  const rows = [];
  for (const cpl of [0, 1, 2, 3])
    for (const write of [false, true])
      for (const [pdeName, pde] of Object.entries(PDE))
        for (const [pteName, pte] of Object.entries(PTE))
          for (const wp of [false, true])
            rows.push({
              name: `CPL ${cpl} ${write ? 'write' : 'read'}, PDE ${pdeName}, PTE ${pteName}, WP ${wp ? 1 : 0}`,
              cpl,
              write,
              pde,
              pte,
              wp,
            });
  it.each(rows)('$name', ({ name, cpl, write, pde, pte, wp }) => {
    const m = machine(cpl, FLAT);
    enablePaging(m, { wp });
    m.phys.write32(PD + 4, PT1 | pde);
    m.phys.write32(PT1, FRAME | pte);
    m.phys.write32(FRAME + 0x123, 0x11223344);
    m.cpu.reg[R.EBX] = 0xcafebabe;
    program(
      m,
      write ? enc('st mem,reg', { a: R.EBX, ...mem(LIN) }) : enc('ld reg,mem', { a: R.EAX, ...mem(LIN) }),
    );
    const fault = pageRule(cpl, write, pde, pte, wp);
    const before = snapshot(m);
    const r = stepExit(m);
    if (fault !== undefined) {
      expect(r, name).toEqual(exitFault(VEC.PF, fault));
      expect(m.cpu.mmu.cr2, `${name}: CR2`).toBe(LIN);
      expect(stateDiff(before.state, cpuState(m.cpu)), `${name}: registers unchanged`).toEqual([]);
      const frame = (ram: Uint8Array) => ram.subarray(FRAME, FRAME + 0x1000);
      expect(firstDiff(frame(m.phys.ram), frame(before.ram)), `${name}: page untouched`).toBe(-1);
      return;
    }
    expect(r, name).toEqual({ reason: 'budget', executed: 1 });
    if (write) expect(m.phys.read32(FRAME + 0x123), `${name}: stored`).toBe(0xcafebabe);
    else expect(m.cpu.reg[R.EAX], `${name}: loaded`).toBe(0x11223344);
    // SDM §4.8: accessed set in both entries, dirty in the PTE on a write.
    expect([m.phys.read32(PD + 4), m.phys.read32(PT1)], `${name}: A/D flags`).toEqual([
      PT1 | pde | PG.A,
      FRAME | pte | PG.A | (write ? PG.D : 0),
    ]);
  });
});

describe('code fetch, implicit supervisor accesses, page-crossing accesses', () => {
  it.each([
    { name: 'CPL 3 fetch from a supervisor page', cpl: 3, pte: PTE.W, err: 1 | 4 },
    { name: 'CPL 3 fetch from a page not present', cpl: 3, pte: PTE.absent, err: 4 },
    { name: 'CPL 0 fetch from a page not present', cpl: 0, pte: PTE.absent, err: 0 },
    { name: 'CPL 0 fetch from a supervisor page', cpl: 0, pte: PTE.W, err: undefined },
    { name: 'CPL 3 fetch from a user read-only page', cpl: 3, pte: PTE.UR, err: undefined },
  ])('$name', ({ name, cpl, pte, err }) => {
    const m = machine(cpl, FLAT);
    enablePaging(m);
    m.phys.write32(PT0 + 4 * (CODE_AT >>> 12), CODE_AT | pte);
    program(m, enc('nop'));
    const before = snapshot(m);
    const r = stepExit(m);
    if (err === undefined) {
      expect([r, m.cpu.eip], name).toEqual([{ reason: 'budget', executed: 1 }, CODE_AT + 8]);
      return;
    }
    expect([r, m.cpu.mmu.cr2], name).toEqual([exitFault(VEC.PF, err), CODE_AT]);
    expect(stateDiff(before.state, cpuState(m.cpu)), `${name}: unchanged`).toEqual([]);
  });

  it('an instruction whose immediate lies on a page not present faults with CR2 on that page', () => {
    const m = machine(3, FLAT);
    enablePaging(m);
    m.phys.write32(PT0 + 4 * 0x11, 0);
    m.cpu.eip = 0x10ffc;
    m.phys.writeBytes(0x10ffc, enc('nop').subarray(0, 4));
    expect([stepExit(m), m.cpu.mmu.cr2, m.cpu.eip]).toEqual([exitFault(VEC.PF, 4), 0x11000, 0x10ffc]);
  });

  it('CPL 3 loads DS and takes INT n with the GDT, IDT, TSS and ring-0 stack on supervisor pages', () => {
    const m = machine(3, FLAT);
    enablePaging(m);
    for (const page of [0x1, 0x3, 0x4, 0x5, 0x6, 0x7f, 0x80])
      m.phys.write32(PT0 + 4 * page, (page << 12) | PTE.W);
    idtGate(m.cpu, 0x40, { selector: SEL.code(0), offset: 0x20000, dpl: 3 });
    m.cpu.reg[R.EAX] = SEL.data(3);
    program(m, enc('mov sreg,reg', { a: S.DS, b: R.EAX }), enc('int vec', { imm: 0x40 }));
    expect(stepExit(m, 2)).toEqual({ reason: 'budget', executed: 2 });
    expect([m.cpu.segSel[S.DS], m.cpu.cpl, m.cpu.eip]).toEqual([SEL.data(3), 0, 0x20000]);
  });

  it('an explicit CPL 3 read of the supervisor GDT page is #PF(5)', () => {
    const m = machine(3, FLAT);
    enablePaging(m);
    m.phys.write32(PT0 + 4, 0x1000 | PTE.W);
    program(m, enc('ld reg,mem', { a: R.EAX, ...mem(0x1008) }));
    expect([stepExit(m), m.cpu.mmu.cr2]).toEqual([exitFault(VEC.PF, 5), 0x1008]);
  });

  it('a dword store across into a read-only page faults before writing the first page', () => {
    const m = machine(3, FLAT);
    enablePaging(m);
    m.phys.write32(PT1, FRAME | PTE.UW);
    m.phys.write32(PT1 + 4, (FRAME + 0x1000) | PTE.UR);
    m.cpu.reg[R.EBX] = 0xcafebabe;
    program(m, enc('st mem,reg', { a: R.EBX, ...mem(0x400ffe) }));
    const before = snapshot(m);
    const r = stepExit(m);
    expect(r).toEqual(exitFault(VEC.PF, 1 | 2 | 4));
    // The faulting page is the second one (the SDM leaves the exact byte within it open).
    expect(m.cpu.mmu.cr2 & ~0xfff).toBe(0x401000);
    expect(
      firstDiff(m.phys.ram.subarray(FRAME, FRAME + 0x2000), before.ram.subarray(FRAME, FRAME + 0x2000)),
    ).toBe(-1);
  });
});

describe('a TLB hit is checked like a walk: U, W with CR0.WP, and the first write walks to set D', () => {
  // The run loop checks TLB hits inline for LD, ST, PUSH, POP through DS and SS, Cpu.read32 and
  // write32 for other segments (ES here); each row caches the page with a read (at `warmCpl`), then
  // makes the access at `cpl` through the cached entry. Error codes: SDM §4.7. With D already set
  // in the PTE the cached entry allows a write as far as D goes, so U and W alone decide.
  const c = (name: string, pte: number, wp: boolean, warmCpl: number, cpl: number) => ({
    name,
    pte,
    wp,
    warmCpl,
    cpl,
  });
  const { P, U, W, D } = PG;
  const CASES = [
    c('supervisor page cached at CPL 0, used at CPL 3', P | W, false, 0, 3),
    c('dirty supervisor page cached at CPL 0, used at CPL 3', P | W | D, false, 0, 3),
    c('read-only user page cached at CPL 3, used at CPL 3', P | U, false, 3, 3),
    c('read-only dirty user page cached at CPL 3, used at CPL 3', P | U | D, false, 3, 3),
    c('read-only page with CR0.WP cached at CPL 0, used at CPL 0', P | U, true, 0, 0),
    c('read-only dirty page with CR0.WP cached at CPL 0, used at CPL 0', P | U | D, true, 0, 0),
    c('read-only page without CR0.WP cached at CPL 0, used at CPL 0', P | U, false, 0, 0),
    c('read-only dirty page without CR0.WP cached at CPL 0, used at CPL 0', P | U | D, false, 0, 0),
    c('writable user page cached by a read at CPL 3, used at CPL 3', P | U | W, false, 3, 3),
  ];
  const OPS = [
    { op: 'ld', write: false },
    { op: 'ld ES', write: false },
    { op: 'pop', write: false },
    { op: 'st', write: true },
    { op: 'st ES', write: true },
    { op: 'push', write: true },
  ] as const;
  const rows = CASES.flatMap((c) => OPS.map((o) => ({ ...c, ...o, name: `${o.op}: ${c.name}` })));
  const AT = 0x400100;
  const enterRing = (m: Machine, ring: number) => {
    loadCache(m.cpu, S.CS, SEL.code(ring));
    for (const seg of [S.SS, S.DS, S.ES]) loadCache(m.cpu, seg, SEL.data(ring));
  };
  it.each(rows)('$name', ({ name, pte, wp, warmCpl, cpl, op, write }) => {
    const m = machine(warmCpl, FLAT);
    enablePaging(m, { wp });
    m.phys.write32(PD + 4, PT1 | PG.P | PG.U | PG.W);
    m.phys.write32(PT1, FRAME | pte);
    m.phys.write32(FRAME + 0x100, 0x5eed);
    program(m, enc('ld reg,mem', { a: R.EDI, ...mem(AT) }));
    expect(stepExit(m), `${name}: the read that caches the page`).toEqual({ reason: 'budget', executed: 1 });
    enterRing(m, cpl);
    m.cpu.reg[R.EBX] = 0x11223344;
    m.cpu.reg[R.ESP] = op === 'push' ? AT + 4 : AT;
    const instr = {
      ld: enc('ld reg,mem', { a: R.EAX, ...mem(AT) }),
      'ld ES': enc('ld reg,mem', { a: R.EAX, ...mem(AT, S.ES) }),
      pop: enc('pop reg', { a: R.EAX }),
      st: enc('st mem,reg', { a: R.EBX, ...mem(AT) }),
      'st ES': enc('st mem,reg', { a: R.EBX, ...mem(AT, S.ES) }),
      push: enc('push reg', { a: R.EBX }),
    }[op];
    program(m, instr);
    const fault = pageRule(cpl, write, PG.P | PG.U | PG.W, pte, wp);
    if (fault !== undefined) {
      const before = snapshot(m);
      expect([stepExit(m), m.cpu.mmu.cr2], name).toEqual([exitFault(VEC.PF, fault), AT]);
      expectUnchanged(m, before, name);
      return;
    }
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    expect(
      write
        ? [m.phys.read32(FRAME + 0x100), m.phys.read32(PT1) & PG.D]
        : [m.cpu.reg[R.EAX], m.phys.read32(PT1) & PG.D],
      name,
    ).toEqual(write ? [0x11223344, PG.D] : [0x5eed, pte & PG.D]);
  });
});

describe('the cached code window of the run loop: a fetch that needs the MMU again gets it', () => {
  it('an instruction at page offset 0xFFC, after one from the same page, faults on the next page', () => {
    const m = machine(3, FLAT);
    enablePaging(m);
    m.phys.write32(PT0 + 4 * 0x11, 0); // the page after the code page is not present
    m.cpu.eip = 0x10ff0;
    m.phys.writeBytes(0x10ff0, enc('jmp imm', { imm: 0x10ffc }));
    m.phys.writeBytes(0x10ffc, enc('nop').subarray(0, 4));
    expect(stepExit(m), 'the JMP').toEqual({ reason: 'budget', executed: 1 });
    expect([stepExit(m), m.cpu.mmu.cr2, m.cpu.eip]).toEqual([exitFault(VEC.PF, 4), 0x11000, 0x10ffc]);
  });

  it('CPL 3 code on a supervisor page faults although CPL 0 just ran the same bytes there', () => {
    const m = machine(0, FLAT);
    enablePaging(m);
    m.phys.write32(PT0 + 4 * (CODE_AT >>> 12), CODE_AT | PTE.W);
    program(m, enc('nop'), enc('nop'));
    expect(stepExit(m), 'CPL 0').toEqual({ reason: 'budget', executed: 1 });
    loadCache(m.cpu, S.CS, SEL.code(3)); // same base and limit, CPL 3
    expect([stepExit(m), m.cpu.mmu.cr2]).toEqual([exitFault(VEC.PF, 1 | 4), CODE_AT + 8]);
  });

  it('a code page remapped and invalidated between runs is fetched from its new frame', () => {
    const m = machine(0, FLAT);
    enablePaging(m);
    const NEW = 0x60000;
    program(m, enc('nop'), enc('mov reg,imm', { a: R.EAX, imm: 1 }));
    m.phys.writeBytes(NEW + 8, enc('mov reg,imm', { a: R.EAX, imm: 2 }));
    expect(stepExit(m), 'the NOP').toEqual({ reason: 'budget', executed: 1 });
    m.phys.write32(PT0 + 4 * (CODE_AT >>> 12), NEW | PG.P | PG.W | PG.U);
    m.cpu.mmu.invalidate(CODE_AT);
    expect([stepExit(m), m.cpu.reg[R.EAX]]).toEqual([{ reason: 'budget', executed: 1 }, 2]);
  });

  it('so is the other window: CPL 0 code remapped while CPL 3 ran, then CPL 0 again', () => {
    const m = machine(0, FLAT);
    enablePaging(m);
    const NEW = 0x60000;
    program(m, enc('nop'), enc('nop'), enc('mov reg,imm', { a: R.EAX, imm: 1 }));
    m.phys.writeBytes(NEW + 16, enc('mov reg,imm', { a: R.EAX, imm: 2 }));
    expect(stepExit(m), 'CPL 0: the first NOP').toEqual({ reason: 'budget', executed: 1 });
    loadCache(m.cpu, S.CS, SEL.code(3)); // same base and limit: the CPL 3 window
    expect(stepExit(m), 'CPL 3: the second NOP').toEqual({ reason: 'budget', executed: 1 });
    m.phys.write32(PT0 + 4 * (CODE_AT >>> 12), NEW | PG.P | PG.W | PG.U);
    m.cpu.mmu.invalidate(CODE_AT);
    loadCache(m.cpu, S.CS, SEL.code(0));
    expect([stepExit(m), m.cpu.reg[R.EAX]]).toEqual([{ reason: 'budget', executed: 1 }, 2]);
  });
});

describe('far-transfer stack frames through a TLB hit are checked like walks', () => {
  // Far transfers read and write their frames at once when no access can fault (transfers.ts);
  // here the page is cached by an access that was allowed and the frame access is not.
  const STACK = 0x400100;
  function cached(cpl: number, pte: number, wp = false): Machine {
    const m = machine(0, FLAT);
    enablePaging(m, { wp });
    m.phys.write32(PD + 4, PT1 | PG.P | PG.U | PG.W | PG.A);
    m.phys.write32(PT1, FRAME | pte | PG.A);
    // Accessed bits already set, so the walks for the descriptor tables and the TSS change nothing.
    m.phys.write32(PD, m.phys.read32(PD) | PG.A);
    for (let p = 0; p < 256; p++) m.phys.write32(PT0 + 4 * p, m.phys.read32(PT0 + 4 * p) | PG.A);
    program(m, enc('ld reg,mem', { a: R.EDI, ...mem(STACK) })); // cache the page at CPL 0
    expect(stepExit(m), 'the read that caches the page').toEqual({ reason: 'budget', executed: 1 });
    loadCache(m.cpu, S.CS, SEL.code(cpl));
    for (const seg of [S.SS, S.DS, S.ES]) loadCache(m.cpu, seg, SEL.data(cpl));
    return m;
  }
  function expectPageFault(m: Machine, name: string, code: number, cr2: number): void {
    const before = snapshot(m);
    expect([stepExit(m), m.cpu.mmu.cr2], name).toEqual([exitFault(VEC.PF, code), cr2]);
    expectUnchanged(m, before, name);
  }

  it('CALLF at CPL 3 pushes onto a read-only dirty user page: #PF(P | W | U) at the first slot', () => {
    const m = cached(3, PG.P | PG.U | PG.D);
    m.cpu.reg[R.ESP] = STACK + 8;
    program(m, enc('callf far', { sel: SEL.code(3), imm: CODE_AT + 64 }));
    expectPageFault(m, 'CALLF', 7, STACK + 4);
  });

  it('RETF at CPL 3 pops its frame from a supervisor page: #PF(P | U)', () => {
    const m = cached(3, PG.P | PG.W | PG.D);
    m.phys.write32(FRAME + 0x100, CODE_AT + 64);
    m.phys.write32(FRAME + 0x104, SEL.code(3));
    m.cpu.reg[R.ESP] = STACK;
    program(m, enc('retf'));
    expectPageFault(m, 'RETF', 5, STACK);
  });

  it('INT from CPL 3 pushes onto a read-only dirty ring-0 stack with CR0.WP: #PF(P | W)', () => {
    const m = cached(3, PG.P | PG.D, true);
    m.phys.write32(TSS_AT + 4, STACK + 0x100); // ESP0
    idtGate(m.cpu, 0x40, { selector: SEL.code(0), offset: CODE_AT + 64, dpl: 3 });
    program(m, enc('int vec', { imm: 0x40 }));
    expectPageFault(m, 'INT', 3, STACK + 0xfc);
  });
});

describe('the TLB: a stale translation is used until INVLPG or a CR3 write (SDM §4.10.4)', () => {
  const OLD = 0x60000;
  const NEW = 0x61000;
  function tlbMachine(): Machine {
    const m = machine(0, FLAT);
    enablePaging(m);
    m.phys.write32(PT1, OLD | PTE.UW);
    m.phys.write32(OLD, 0xaaaa);
    m.phys.write32(NEW, 0xbbbb);
    return m;
  }
  const read = (reg: number) => enc('ld reg,mem', { a: reg, ...mem(0x400000) });

  it.each([
    { name: 'INVLPG of the page', flush: enc('invlpg mem', mem(0x400000)), after: 0xbbbb },
    {
      name: 'INVLPG of another address in the same page',
      flush: enc('invlpg mem', mem(0x400fff)),
      after: 0xbbbb,
    },
    { name: 'INVLPG of another page', flush: enc('invlpg mem', mem(0x401000)), after: 0xaaaa },
    { name: 'MOV CR3 (same value)', flush: enc('mov cr,reg', { a: 3, b: R.EDX }), after: 0xbbbb },
    { name: 'NOP', flush: enc('nop'), after: 0xaaaa },
  ])('remapped page: $name', ({ name, flush, after }) => {
    const m = tlbMachine();
    m.cpu.reg[R.EDX] = PD;
    program(m, read(R.EAX), read(R.EBX), flush, read(R.ECX));
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    m.phys.write32(PT1, NEW | PTE.UW); // the PTE changes in memory; the TLB still holds the old frame
    expect(stepExit(m, 3), name).toEqual({ reason: 'budget', executed: 3 });
    expect([m.cpu.reg[R.EAX], m.cpu.reg[R.EBX], m.cpu.reg[R.ECX]], name).toEqual([0xaaaa, 0xaaaa, after]);
  });

  // The guest itself rewrites the PTE (PT1 lies in the identity-mapped first MiB) between accesses of
  // one run: the run loop's last-page translations, kept between ordinary instructions, end at the
  // INVLPG (not ordinary) as the TLB entry does.
  it('in one run: reads through a stale translation until INVLPG, then the new frame', () => {
    const m = tlbMachine();
    m.cpu.reg[R.EDX] = NEW | PTE.UW;
    program(
      m,
      read(R.EAX),
      enc('st mem,reg', { a: R.EDX, ...mem(PT1) }),
      read(R.EBX),
      enc('invlpg mem', mem(0x400000)),
      read(R.ECX),
    );
    expect(stepExit(m, 5)).toEqual({ reason: 'budget', executed: 5 });
    expect([m.cpu.reg[R.EAX], m.cpu.reg[R.EBX], m.cpu.reg[R.ECX]]).toEqual([0xaaaa, 0xaaaa, 0xbbbb]);
  });

  it('in one run: writes through a stale translation until INVLPG, then #PF (page made read-only, CR0.WP)', () => {
    const m = machine(0, FLAT);
    enablePaging(m, { wp: true });
    m.phys.write32(PT1, OLD | PTE.UW | PG.D);
    const write = (v: number) => enc('st mem,reg', { a: v, ...mem(0x400010) });
    m.cpu.reg[R.EAX] = 1;
    m.cpu.reg[R.EBX] = 2;
    m.cpu.reg[R.ECX] = 3;
    m.cpu.reg[R.EDX] = OLD | PTE.UR | PG.D;
    program(
      m,
      write(R.EAX),
      enc('st mem,reg', { a: R.EDX, ...mem(PT1) }),
      write(R.EBX),
      enc('invlpg mem', mem(0x400000)),
      write(R.ECX),
    );
    expect([stepExit(m, 5), m.cpu.mmu.cr2, m.phys.read32(OLD + 0x10)]).toEqual([
      exitFault(VEC.PF, 3, 4),
      0x400010,
      2,
    ]);
  });

  // Loads and stores of one run use the same translation of a page as the TLB holds, even when the
  // guest rewrote the PTE without INVLPG and a walk then replaced the entry: a load sees the frame
  // the last store to its address went to (the run loop's last-page translations are dropped
  // before every access that may walk).
  it('a page read through the old frame, its PTE rewritten, then written (the write walks to set D): reads see the write', () => {
    const m = tlbMachine();
    m.phys.write32(PT1, OLD | PTE.UW); // D clear: the first write walks
    m.phys.write32(OLD + 4, 0xaaaa);
    m.phys.write32(NEW + 4, 0xbbbb);
    m.cpu.reg[R.EDX] = NEW | PTE.UW;
    m.cpu.reg[R.EBX] = 0x1234;
    const at = mem(0x400004);
    program(
      m,
      enc('ld reg,mem', { a: R.EAX, ...at }),
      enc('ld reg,mem', { a: R.EAX, ...at }),
      enc('st mem,reg', { a: R.EDX, ...mem(PT1) }),
      enc('st mem,reg', { a: R.EBX, ...at }),
      enc('ld reg,mem', { a: R.ECX, ...at }),
      enc('ldb reg,mem', { a: R.ESI, ...at }),
    );
    expect(stepExit(m, 6)).toEqual({ reason: 'budget', executed: 6 });
    expect([m.cpu.reg[R.EAX], m.cpu.reg[R.ECX], m.cpu.reg[R.ESI], m.phys.read32(NEW + 4)]).toEqual([
      0xaaaa, 0x1234, 0x34, 0x1234,
    ]);
  });

  it('a page written through the old frame, its PTE rewritten, its TLB entry evicted: reads see the write', () => {
    const m = tlbMachine();
    const PT2 = 0xc3000; // PDE 2: 0x800000, the same TLB slot as 0x400000
    m.phys.write32(PD + 8, PT2 | PG.P | PG.W | PG.U);
    m.phys.write32(PT2, 0x62000 | PTE.UW | PG.D);
    m.phys.write32(PT1, OLD | PTE.UW | PG.D);
    m.cpu.reg[R.EDX] = NEW | PTE.UW | PG.D;
    m.cpu.reg[R.EAX] = 0x9999;
    m.cpu.reg[R.EBX] = 0x1234;
    const at = mem(0x400004);
    program(
      m,
      enc('st mem,reg', { a: R.EAX, ...at }),
      enc('st mem,reg', { a: R.EAX, ...at }),
      enc('st mem,reg', { a: R.EDX, ...mem(PT1) }), // no INVLPG
      enc('ld reg,mem', { a: R.ESI, ...mem(0x800000) }), // walks, and replaces 0x400000's entry
      enc('st mem,reg', { a: R.EBX, ...at }),
      enc('ld reg,mem', { a: R.ECX, ...at }),
    );
    expect(stepExit(m, 6)).toEqual({ reason: 'budget', executed: 6 });
    expect([m.cpu.reg[R.ECX], m.phys.read32(OLD + 4), m.phys.read32(NEW + 4)]).toEqual([
      0x1234, 0x9999, 0x1234,
    ]);
  });

  it('PUSH and POP: a stack page popped through the old frame, its PTE rewritten, pushed (D clear): POP sees the push', () => {
    const m = tlbMachine();
    m.phys.write32(PT1, OLD | PTE.UW); // D clear
    m.phys.write32(OLD + 0x100, 0xaaaa);
    m.phys.write32(OLD + 0x104, 0xaaab);
    loadCache(m.cpu, S.SS, SEL.data(0));
    m.cpu.reg[R.ESP] = 0x400100;
    m.cpu.reg[R.EDX] = NEW | PTE.UW;
    m.cpu.reg[R.EBX] = 0x1234;
    program(
      m,
      enc('pop reg', { a: R.EAX }),
      enc('pop reg', { a: R.EAX }),
      enc('st mem,reg', { a: R.EDX, ...mem(PT1) }),
      enc('push reg', { a: R.EBX }),
      enc('pop reg', { a: R.ECX }),
    );
    expect(stepExit(m, 5)).toEqual({ reason: 'budget', executed: 5 });
    expect([m.cpu.reg[R.EAX], m.cpu.reg[R.ECX], m.phys.read32(NEW + 0x104), m.cpu.reg[R.ESP]]).toEqual([
      0xaaab, 0x1234, 0x1234, 0x400108,
    ]);
  });

  // A ring change ends the run loop's inner loop; the prologue after it (the light one) drops the
  // last-page translations, which were checked for the old CPL. The guest starts at CPL 3 so that
  // the fetch after the IRET finds its code window (a fetch that walks drops them anyway).
  const HANDLER = CODE_AT + 0x100;
  const viaInt = (m: Machine, handler: Uint8Array[], after: Uint8Array) => {
    idtGate(m.cpu, 0x80, { type: TYPE.TRAP_GATE, selector: SEL.code(0), offset: HANDLER, dpl: 3 });
    program(m, enc('nop'), enc('int vec', { imm: 0x80 }), after);
    let at = HANDLER;
    for (const c of [...handler, enc('iret')]) {
      m.phys.writeBytes(at, c);
      at += c.length;
    }
  };
  // through SS: at CPL 0 the ring-0 stack segment, back at CPL 3 the ring-3 one (both flat)
  const at = mem(0x400000, S.SS);

  it('a supervisor page read twice at CPL 0 is not readable at CPL 3 after the IRET: #PF(5)', () => {
    const m = machine(3, FLAT);
    enablePaging(m);
    m.phys.write32(PT1, OLD | PG.P | PG.W | PG.D); // supervisor only
    m.phys.write32(OLD, 0x5ec7e7);
    const read = (r: number) => enc('ld reg,mem', { a: r, ...at });
    viaInt(m, [read(R.EAX), read(R.EAX)], read(R.EBX));
    expect([stepExit(m, 6), m.cpu.cpl, m.cpu.mmu.cr2, m.cpu.reg[R.EAX], m.cpu.reg[R.EBX]]).toEqual([
      exitFault(VEC.PF, 5, 5),
      3,
      0x400000,
      0x5ec7e7,
      0,
    ]);
  });

  it('a supervisor page written twice at CPL 0 is not writable at CPL 3 after the IRET: #PF(7)', () => {
    const m = machine(3, FLAT);
    enablePaging(m);
    m.phys.write32(PT1, OLD | PG.P | PG.W | PG.D); // supervisor only
    m.cpu.reg[R.EAX] = 1;
    m.cpu.reg[R.EBX] = 2;
    const write = (r: number) => enc('st mem,reg', { a: r, ...at });
    viaInt(m, [write(R.EAX), write(R.EAX)], write(R.EBX));
    expect([stepExit(m, 6), m.cpu.cpl, m.cpu.mmu.cr2, m.phys.read32(OLD)]).toEqual([
      exitFault(VEC.PF, 7, 5),
      3,
      0x400000,
      1,
    ]);
  });

  it('a page made not present is still reachable through the TLB until INVLPG, then #PF', () => {
    const m = tlbMachine();
    program(m, read(R.EAX), read(R.EBX), enc('invlpg mem', mem(0x400000)), read(R.ECX));
    expect(stepExit(m)).toEqual({ reason: 'budget', executed: 1 });
    m.phys.write32(PT1, 0);
    expect(stepExit(m, 2)).toEqual({ reason: 'budget', executed: 2 });
    expect(m.cpu.reg[R.EBX]).toBe(0xaaaa);
    expect([stepExit(m), m.cpu.mmu.cr2, m.cpu.eip]).toEqual([exitFault(VEC.PF, 0), 0x400000, CODE_AT + 24]);
  });
});
