/**
 * Paging (SDM Vol. 3A §4.3 32-bit paging, §4.6 access rights, §4.7 page-fault error codes, §4.8
 * accessed and dirty flags, §4.10 TLBs): the #PF error code and CR2 for every combination of CPL,
 * access, PDE and PTE rights and CR0.WP; code fetches; implicit supervisor accesses from CPL 3; the
 * TLB keeping a stale translation until INVLPG or a CR3 write.
 */

import { describe, expect, it } from 'vitest';
import { VEC } from '../../src/cpu/faults.js';
import { R, S } from '../../src/cpu/isa.js';
import {
  CODE_AT,
  cpuState,
  enablePaging,
  enc,
  exitFault,
  firstDiff,
  idtGate,
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
