/**
 * Traces and the run loop's code windows (from the review of the traces): a far link must run the
 * next block only where the run loop alone would fetch it, through the window its prologue would
 * pick, and leave the windows as that prologue would. Here the host remaps a ring-0 code page
 * without INVLPG (no new MMU generation) and a page walk then loads the new mapping into the TLB:
 * the run loop alone keeps fetching through a window while one fits and builds a new one through
 * the TLB when none does, so which frame it runs depends on exactly which windows exist. A third
 * code segment (an interrupt handler in another CS) replaces a window. And a trace must not keep a
 * page translation past a page walk of its own (a RET through the general path).
 */
import { describe, expect, it } from 'vitest';
import { gateDescriptor, segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { R } from '../../src/cpu/isa.js';
import {
  CODE_AT,
  code,
  enablePaging,
  enc,
  idtGate,
  lockstep,
  type Machine,
  machine,
  PG,
  PT0,
  PT1,
  program,
  SEL,
  setGdt,
} from './harness.js';

const K = 0x1c000; // ring 0 code (KCODE's base), its own page
const ALT = 0x5c000; // a copy of K's page with a different immediate
const KCODE = SEL.free(1);
const HANDLER = 0x18000; // INT 0x81's handler, in SEL.code(0) (base 0): a third code window key

function setUp(traceHot: number): Machine {
  const m = machine(3, { jit: traceHot >= 0 ? { hot: 1, traceHot } : false });
  const { cpu } = m;
  setGdt(cpu, KCODE >>> 3, segmentDescriptor({ base: K, limit: 0xfff, type: 0xa, dpl: 0 }));
  setGdt(cpu, SEL.gate >>> 3, gateDescriptor({ type: TYPE.CALL_GATE, selector: KCODE, offset: 0, dpl: 3 }));
  idtGate(cpu, 0x81, { type: TYPE.INT_GATE, selector: SEL.code(0), offset: HANDLER, dpl: 3 });
  code(m, K, enc('add reg,imm', { a: R.ESI, imm: 1 }), enc('retf'));
  code(m, HANDLER, enc('add reg,imm', { a: R.EDI, imm: 1 }), enc('iret'));
  program(
    m,
    enc('add reg,imm', { a: R.EAX, imm: 1 }), // A
    enc('callf far', { sel: SEL.gate | 3 }),
    enc('jmp imm', { imm: CODE_AT }), // J
  );
  // the host's detour: INT 0x81 (another ring-0 CS: K's code window is replaced), a store into K's
  // page (a walk: the TLB entry now comes from the PTE as it is), back into the loop
  code(
    m,
    CODE_AT + 0x100,
    enc('int vec', { imm: 0x81 }),
    enc('st mem,reg', { a: R.EAX, b: 8, c: 0xf, imm: K + 0x800 }),
    enc('jmp imm', { imm: CODE_AT + 16 }),
  );
  m.phys.writeBytes(ALT, m.phys.ram.slice(K, K + 0x1000));
  m.phys.write32(ALT + 4, 7); // ALT's ADD ESI adds 7
  enablePaging(m);
  return m;
}

describe('traces and code windows', () => {
  it('a far link runs a block only where the run loop would fetch it (a window replaced, the TLB changed)', () => {
    const [a, b] = [setUp(-1), setUp(1)] as [Machine, Machine];
    const step = lockstep(a, b);
    step(200, 'warm up');
    expect(b.cpu.jit!.traces).toBeGreaterThan(0);
    // stop in ring 3 at the JMP
    while (a.cpu.eip !== CODE_AT + 16) step(1, 'to J');
    for (const m of [a, b]) {
      // the host remaps K's page without INVLPG (no new MMU generation), and sends the guest
      // through the detour
      m.phys.write32(PT0 + 4 * (K >>> 12), ALT | PG.P | PG.W | PG.U);
      m.cpu.eip = CODE_AT + 0x100;
    }
    step(3, 'detour'); // INT, the handler's ADD, IRET
    step(40, 'after');
    expect(b.cpu.reg[R.ESI]).toBe(a.cpu.reg[R.ESI]);
  });

  function setUp2(traceHot: number): Machine {
    const m = machine(3, { jit: traceHot >= 0 ? { hot: 1, traceHot } : false });
    const { cpu } = m;
    setGdt(cpu, KCODE >>> 3, segmentDescriptor({ base: K, limit: 0xfff, type: 0xa, dpl: 0 }));
    setGdt(cpu, SEL.gate >>> 3, gateDescriptor({ type: TYPE.CALL_GATE, selector: KCODE, offset: 0, dpl: 3 }));
    idtGate(cpu, 0x81, { type: TYPE.INT_GATE, selector: SEL.code(0), offset: HANDLER, dpl: 0 });
    // ring 0 through the gate: INT 0x81 into a third code segment (no code window for it), then back
    code(m, K, enc('int vec', { imm: 0x81 }), enc('add reg,imm', { a: R.ESI, imm: 1 }), enc('retf'));
    // the handler stores through EBX (the host points it into K's page: a walk, the TLB entry anew)
    code(
      m,
      HANDLER,
      enc('st mem,reg', { a: R.EAX, b: R.EBX, c: 0xf, imm: 0 }),
      enc('add reg,imm', { a: R.EDI, imm: 1 }),
      enc('iret'),
    );
    program(
      m,
      enc('add reg,imm', { a: R.EAX, imm: 1 }),
      enc('callf far', { sel: SEL.gate | 3 }),
      enc('jmp imm', { imm: CODE_AT }),
    );
    m.phys.writeBytes(ALT, m.phys.ram.slice(K, K + 0x1000));
    m.phys.write32(ALT + 8 + 4, 7); // ALT's ADD ESI adds 7
    cpu.reg[R.EBX] = 0x40000;
    enablePaging(m);
    return m;
  }

  it('a far link leaves the code windows as the prologue of the run loop would', () => {
    const [a, b] = [setUp2(-1), setUp2(1)] as [Machine, Machine];
    const step = lockstep(a, b);
    for (let k = 0; k < 10; k++) step(97, `warm up ${k}`);
    for (const m of [a, b]) {
      // the host remaps K's page without INVLPG; the handler's next store walks (new TLB entry)
      m.phys.write32(PT0 + 4 * (K >>> 12), ALT | PG.P | PG.W | PG.U);
      m.cpu.reg[R.EBX] = K + 0x800;
    }
    for (let k = 0; k < 10; k++) step(97, `after ${k}`);
    expect(b.cpu.jit!.traces).toBeGreaterThan(0);
  });

  it('a RET through the general path (a page walk) ends the trace: the TLB entries it kept may be gone', () => {
    // X (linear 0x40000) and S (linear 0x440000, the stack RET pops from) share a TLB slot: the
    // RET's walk evicts X, which part F read inline just before. Part B then rewrites X's PTE (no
    // INVLPG) and reads X again: the run loop misses the TLB and walks (the new frame); a trace
    // that kept the page it last read would read the old frame. (From the second review.)
    const X = 0x40000;
    const S = 0x440100;
    const F = CODE_AT + 0x100;
    const B = CODE_AT + 0x200;
    const [a, b] = [0, 1].map((traceHot) => {
      const m = machine(0, { limit: 0xffffffff, jit: traceHot > 0 ? { hot: 1, traceHot } : false });
      program(m, enc('mov reg,imm', { a: R.ESP, imm: S }), enc('jmp imm', { imm: F }));
      code(m, F, enc('ld reg,mem', { a: R.EAX, b: R.EDI, c: 0xf, imm: 0 }), enc('ret'));
      code(
        m,
        B,
        enc('xor reg,imm', { a: R.ECX, imm: 0x20000 }),
        enc('st mem,reg', { a: R.ECX, b: 8, c: 0xf, imm: PT0 + 4 * (X >>> 12) }),
        enc('ld reg,mem', { a: R.EBX, b: R.EDI, c: 0xf, imm: 0 }),
        enc('add reg,reg', { a: R.ESI, b: R.EBX }),
        enc('jmp imm', { imm: CODE_AT }),
      );
      enablePaging(m);
      m.phys.write32(PT1 + 4 * ((S >>> 12) & 1023), 0x50000 | PG.P | PG.W);
      m.phys.write32(0x50100, B); // the return address RET pops every turn
      m.phys.write32(0x40000, 1);
      m.phys.write32(0x60000, 0x10000);
      m.cpu.reg[R.EDI] = X;
      m.cpu.reg[R.ECX] = X | PG.P | PG.W | PG.U;
      return m;
    }) as [Machine, Machine];
    const step = lockstep(a, b);
    for (let k = 0; k < 20; k++) step(37, `run ${k}`);
    expect(b.cpu.jit!.traces).toBeGreaterThan(0);
  });
});
