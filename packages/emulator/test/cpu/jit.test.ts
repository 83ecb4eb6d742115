/**
 * The block compiler (src/cpu/jit.ts) changes how fast the machine runs, never what it does: every
 * test here runs the same program on a machine without it and on one that compiles a block at the
 * first visit of an offset (`hot: 1`), and expects the same run results, the same architectural
 * state and the same memory, at the same instruction counts. Random programs walk the instructions
 * blocks hold (with faults, budgets that end inside blocks, self-modifying stores, paging); the
 * rest are the cases by name.
 */
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../src/cpu/cpu.js';
import { segmentDescriptor } from '../../src/cpu/descriptor.js';
import { run } from '../../src/cpu/exec.js';
import { VEC } from '../../src/cpu/faults.js';
import { NO_BASE, R, S } from '../../src/cpu/isa.js';
import {
  CODE_AT,
  code,
  cpuState,
  enablePaging,
  enc,
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
} from './harness.js';

/** A small data segment (base DATA, limit 0xFFF): accesses beyond it fault. */
const DATA = 0x20000;
const SMALL_DS = SEL.free(1);
const SLOTS = 48;

/** mulberry32: a seeded generator, so every program here is the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EDGES = [0, 1, 2, 31, 32, 0x7f, 0x80, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

interface Variant {
  readonly name: string;
  readonly ring: 0 | 3;
  /** DS: the small segment (limit faults) or flat (stores can reach the code). */
  readonly smallDs: boolean;
  readonly paging: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'ring 0, small DS', ring: 0, smallDs: true, paging: false },
  { name: 'ring 0, flat DS', ring: 0, smallDs: false, paging: false },
  { name: 'ring 3, flat DS, paging', ring: 3, smallDs: false, paging: true },
  { name: 'ring 3, small DS, paging', ring: 3, smallDs: true, paging: true },
];

/** A random program of SLOTS instructions, mostly ones blocks hold, some that end them or fault. */
function generate(rand: () => number, v: Variant): Uint8Array[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const dst = () => pick([R.EAX, R.ECX, R.EDX, R.EBX, R.EBP, R.ESI]); // never ESP or EDI
  const any = () => Math.floor(rand() * 8);
  const value = () => (rand() < 0.6 ? pick(EDGES) : Math.floor(rand() * 2 ** 32));
  const slot = () => CODE_AT + 8 * Math.floor(rand() * SLOTS);
  // Data through DS: offsets inside the small segment and a few beyond it; with a flat DS, the
  // data area and the code itself.
  const dsOffset = () => {
    const off = rand() < 0.9 ? Math.floor(rand() * 0x1000) : 0xffc + Math.floor(rand() * 16);
    const aligned = rand() < 0.85 ? off & ~3 : off;
    if (v.smallDs) return aligned;
    return rand() < 0.15 ? slot() + (rand() < 0.5 ? 4 : 0) : DATA + aligned;
  };
  const memOperand = () =>
    rand() < 0.3 ? { b: R.EDI, c: 0xf, imm: dsOffset() & 0xff } : { b: NO_BASE, c: 0xf, imm: dsOffset() };
  const out: Uint8Array[] = [];
  for (let k = 0; k < SLOTS; k++) {
    const x = rand();
    if (x < 0.2)
      out.push(
        enc(pick(['add', 'sub', 'and', 'or', 'xor', 'cmp', 'test']) + ' reg,reg', { a: dst(), b: any() }),
      );
    else if (x < 0.35)
      out.push(
        enc(
          pick(['add', 'sub', 'and', 'or', 'xor', 'cmp', 'test', 'shl', 'shr', 'sar', 'mul']) + ' reg,imm',
          { a: dst(), imm: value() },
        ),
      );
    else if (x < 0.4)
      out.push(enc(pick(['shl', 'shr', 'sar', 'mul', 'divu', 'remu']) + ' reg,reg', { a: dst(), b: any() }));
    else if (x < 0.43)
      out.push(enc(pick(['divu', 'remu']) + ' reg,imm', { a: dst(), imm: pick([0, 1, 3, 0xffffffff]) }));
    else if (x < 0.48) out.push(enc(pick(['neg', 'not', 'inc', 'dec']) + ' reg', { a: dst() }));
    else if (x < 0.52) out.push(enc('mov reg,reg', { a: dst(), b: any() }));
    else if (x < 0.56)
      out.push(
        enc(
          'mov reg,imm',
          rand() < 0.3 ? { a: R.EDI, imm: Math.floor(rand() * 0x100) & ~3 } : { a: dst(), imm: value() },
        ),
      );
    else if (x < 0.64) out.push(enc('ld reg,mem', { a: dst(), ...memOperand() }));
    else if (x < 0.72) out.push(enc('st mem,reg', { a: any(), ...memOperand() }));
    else if (x < 0.74) out.push(enc(pick(['ldb reg,mem', 'stb mem,reg']), { a: dst(), ...memOperand() }));
    else if (x < 0.75) out.push(enc('lea reg,mem', { a: dst(), ...memOperand() }));
    else if (x < 0.76)
      // through ES (flat): the general path, here onto the code
      out.push(enc('st mem,reg', { a: any(), b: NO_BASE, c: S.ES, imm: slot() + (rand() < 0.5 ? 4 : 0) }));
    else if (x < 0.8) out.push(enc('push reg', { a: any() }));
    else if (x < 0.82) out.push(enc('push imm', { imm: value() }));
    else if (x < 0.85) out.push(enc('pop reg', { a: dst() }));
    else if (x < 0.92)
      out.push(
        enc(
          pick(['jz', 'jnz', 'jc', 'jnc', 'js', 'jns', 'jo', 'jno', 'jl', 'jge', 'jle', 'jg', 'jbe', 'ja']) +
            ' imm',
          { imm: slot() },
        ),
      );
    else if (x < 0.94) out.push(enc('jmp imm', { imm: slot() }));
    else if (x < 0.95) out.push(enc('call imm', { imm: slot() }));
    else if (x < 0.96) out.push(enc('ret'));
    else if (x < 0.97)
      out.push(enc('jmp imm', { imm: 0x7fffffff })); // beyond the CS limit: #GP
    else if (x < 0.98)
      out.push(enc('add reg,reg', { a: dst(), b: any(), imm: 1 })); // bad encoding: #UD
    else out.push(enc('nop'));
  }
  return out;
}

function setUp(v: Variant, jit: boolean, prog: Uint8Array[], rand: () => number): Machine {
  const m = machine(v.ring, { jit: jit ? { hot: 1 } : false });
  setGdt(m.cpu, 15, segmentDescriptor({ base: DATA, limit: 0xfff, type: 0x2, dpl: 3 }));
  if (v.smallDs) loadCache(m.cpu, S.DS, SMALL_DS | v.ring);
  if (v.paging) {
    enablePaging(m);
    // The data area's second page read-only, its third absent: stores and loads there #PF at CPL 3.
    m.phys.write32(PT0 + 4 * 0x21, 0x21000 | PG.P | PG.U);
    m.phys.write32(PT0 + 4 * 0x22, 0);
    m.cpu.mmu.flush();
  }
  program(m, ...prog);
  for (let r = 0; r < 8; r++) if (r !== R.ESP) m.cpu.reg[r] = Math.floor(rand() * 2 ** 32);
  m.cpu.reg[R.EDI] = 0x40;
  for (let i = 0; i < 0x800; i += 4) m.phys.write32(DATA + i, Math.floor(rand() * 2 ** 32));
  m.cpu.exitVectors = 0xffffffff;
  return m;
}

/** What must be equal between the two machines: state, CR2, the count, and the memory they touch. */
function observe(m: Machine): Record<string, unknown> {
  const region = (at: number, n: number) => Buffer.from(m.phys.ram.subarray(at, at + n)).toString('base64');
  return {
    ...cpuState(m.cpu),
    cr2: m.cpu.mmu.cr2,
    instructions: m.cpu.instructions,
    code: region(CODE_AT, 8 * SLOTS + 64),
    data: region(DATA, 0x3000),
    stack: region(stackTop(v3(m)) - 0x1000, 0x1000),
  };
}
const v3 = (m: Machine) => m.cpu.segSel[S.CS]! & 3;

describe('random programs: the same results with and without blocks', () => {
  for (const v of VARIANTS) {
    it(`${v.name}: 150 programs, budgets that end anywhere`, () => {
      let compiled = 0;
      let ran = 0;
      let faults = 0;
      for (let seed = 1; seed <= 150; seed++) {
        const gen = rng(seed * 7919 + v.name.length);
        const prog = generate(gen, v);
        const init = rng(seed);
        const a = setUp(v, false, prog, init);
        const b = setUp(v, true, prog, rng(seed));
        const budgets = rng(seed + 1);
        let total = 0;
        while (total < 4000) {
          const n = 1 + Math.floor(budgets() * (budgets() < 0.5 ? 8 : 700));
          const ra: RunResult = run(a.cpu, n);
          const rb: RunResult = run(b.cpu, n);
          expect(rb, `seed ${seed} after ${total}`).toEqual(ra);
          expect(observe(b), `seed ${seed} after ${total}`).toEqual(observe(a));
          total += n;
          if (ra.reason !== 'budget') {
            faults++;
            break;
          }
        }
        compiled += b.cpu.jit!.compiled;
        ran += b.cpu.jit!.ran;
      }
      // The programs did reach blocks, and faults (the point of comparing them).
      expect(compiled).toBeGreaterThan(300);
      expect(ran).toBeGreaterThan(20_000);
      expect(faults).toBeGreaterThan(60);
    });
  }
});

/** The same program on a machine without blocks and one with (hot 1), ring 0, flat. */
function pair(...prog: Uint8Array[]): [Machine, Machine] {
  const a = machine(0, { jit: false });
  const b = machine(0, { jit: { hot: 1 } });
  program(a, ...prog);
  program(b, ...prog);
  return [a, b];
}

const loop = [
  enc('mov reg,imm', { a: R.ECX, imm: 1000 }),
  enc('add reg,imm', { a: R.EAX, imm: 3 }), // CODE_AT + 8: the loop
  enc('xor reg,reg', { a: R.EBX, b: R.EAX }),
  enc('st mem,reg', { a: R.EBX, b: NO_BASE, c: 0xf, imm: 0x30000 }),
  enc('dec reg', { a: R.ECX }),
  enc('jnz imm', { imm: CODE_AT + 8 }),
  enc('hlt'),
];

describe('blocks', () => {
  it('run a loop as the run loop does, to the same state, and count what they ran', () => {
    const [a, b] = pair(...loop);
    const ra = run(a.cpu, 100_000);
    const rb = run(b.cpu, 100_000);
    expect(rb).toEqual(ra);
    expect(ra).toEqual({ reason: 'halt', executed: 1 + 5 * 1000 + 1 });
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    expect(b.phys.read32(0x30000)).toBe(a.phys.read32(0x30000));
    expect(b.cpu.jit!.compiled).toBeGreaterThan(0);
    // All but the first visit of each instruction and the final turn's exit ran in blocks.
    expect(b.cpu.jit!.ran).toBeGreaterThan(3900);
    expect(a.cpu.jit).toBeNull();
  });

  it('never run past the budget: every budget from 1 to 60 ends at the same instruction', () => {
    for (let n = 1; n <= 60; n++) {
      const [a, b] = pair(...loop);
      run(a.cpu, 40); // both warm: b has blocks
      run(b.cpu, 40);
      const ra = run(a.cpu, n);
      const rb = run(b.cpu, n);
      expect(rb).toEqual({ reason: 'budget', executed: n });
      expect(ra).toEqual(rb);
      expect(cpuState(b.cpu), `budget ${n}`).toEqual(cpuState(a.cpu));
      expect(b.cpu.instructions).toBe(a.cpu.instructions);
    }
  });

  it('see code the host rewrote since they were compiled, and drop themselves', () => {
    const [a, b] = pair(...loop);
    run(a.cpu, 500);
    run(b.cpu, 500);
    expect(b.cpu.jit!.ran).toBeGreaterThan(0);
    // The loop now adds 5, not 3.
    for (const m of [a, b]) code(m, CODE_AT + 8, enc('add reg,imm', { a: R.EAX, imm: 5 }));
    run(a.cpu, 100_000);
    run(b.cpu, 100_000);
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    expect(b.cpu.jit!.stale).toBeGreaterThan(0);
  });

  // Turn by turn, the loop writes EAX into the immediate of a later MOV EBX of the same block, and
  // writes the 0 back after the MOV ran: so the block's code is as compiled each time it is entered
  // (it runs), and the MOV must still load what was just written, in the same turn.
  it('see a store into their own later instructions at once (self-modifying code)', () => {
    const imm = CODE_AT + 3 * 8 + 4; // the MOV EBX's immediate
    const prog = [
      enc('mov reg,imm', { a: R.ECX, imm: 50 }),
      enc('add reg,imm', { a: R.EAX, imm: 7 }), // CODE_AT + 8: the loop
      enc('st mem,reg', { a: R.EAX, b: NO_BASE, c: 0xf, imm }),
      enc('mov reg,imm', { a: R.EBX, imm: 0 }), // CODE_AT + 24
      enc('add reg,reg', { a: R.EDX, b: R.EBX }),
      enc('st mem,reg', { a: R.ESI, b: NO_BASE, c: 0xf, imm }), // ESI = 0
      enc('dec reg', { a: R.ECX }),
      enc('jnz imm', { imm: CODE_AT + 8 }),
      enc('hlt'),
    ];
    const [a, b] = pair(...prog);
    expect(run(b.cpu, 10_000)).toEqual(run(a.cpu, 10_000));
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    // EDX = 7 + 14 + ... + 350: each MOV saw the value stored just before it.
    expect(b.cpu.reg[R.EDX]).toBe((7 * 50 * 51) / 2);
    expect(b.cpu.jit!.ran).toBeGreaterThan(100);
  });

  it('see a PUSH onto their own later instructions at once', () => {
    const prog = [
      enc('mov reg,imm', { a: R.ECX, imm: 50 }),
      enc('add reg,imm', { a: R.EAX, imm: 7 }), // CODE_AT + 8: the loop
      enc('push reg', { a: R.EAX }), // ESP = CODE_AT + 40: onto the MOV EBX's immediate
      enc('nop'),
      enc('mov reg,imm', { a: R.EBX, imm: 0 }), // CODE_AT + 32
      enc('add reg,reg', { a: R.EDX, b: R.EBX }),
      enc('pop reg', { a: R.EDI }),
      enc('st mem,reg', { a: R.ESI, b: NO_BASE, c: 0xf, imm: CODE_AT + 36 }), // the 0 back
      enc('dec reg', { a: R.ECX }),
      enc('jnz imm', { imm: CODE_AT + 8 }),
      enc('hlt'),
    ];
    const [a, b] = pair(...prog);
    a.cpu.reg[R.ESP] = b.cpu.reg[R.ESP] = CODE_AT + 40;
    expect(run(b.cpu, 10_000)).toEqual(run(a.cpu, 10_000));
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    expect(b.cpu.reg[R.EDX]).toBe((7 * 50 * 51) / 2);
    expect(b.cpu.jit!.ran).toBeGreaterThan(100);
  });

  it('fault at the instruction that faults: EIP, count, registers and flags as without blocks', () => {
    // The loop's store walks up by 4 from 0xFFFF0 and faults past the 1 MiB limit, mid-block.
    const prog = [
      enc('mov reg,imm', { a: R.ESI, imm: 0xfff00 }),
      enc('add reg,imm', { a: R.EAX, imm: 1 }), // CODE_AT + 8
      enc('add reg,imm', { a: R.ESI, imm: 4 }),
      enc('st mem,reg', { a: R.EAX, b: R.ESI, c: 0xf, imm: 0 }),
      enc('sub reg,imm', { a: R.EBX, imm: 1 }),
      enc('jmp imm', { imm: CODE_AT + 8 }),
    ];
    const [a, b] = pair(...prog);
    a.cpu.exitVectors = b.cpu.exitVectors = 1 << VEC.GP;
    const ra = run(a.cpu, 1_000_000);
    const rb = run(b.cpu, 1_000_000);
    expect(ra).toEqual({ reason: 'exit', vector: VEC.GP, errorCode: 0, executed: 1 + 5 * 63 + 2 });
    expect(rb).toEqual(ra);
    expect(b.cpu.eip).toBe(CODE_AT + 24);
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    expect(b.cpu.jit!.ran).toBeGreaterThan(200);
  });

  it('deliver a fault through the IDT with the faulting instruction as the return address', () => {
    const prog = [
      enc('mov reg,imm', { a: R.ESI, imm: 0xfff00 }),
      enc('add reg,imm', { a: R.ESI, imm: 4 }), // CODE_AT + 8
      enc('ld reg,mem', { a: R.EAX, b: R.ESI, c: 0xf, imm: 0 }),
      enc('jmp imm', { imm: CODE_AT + 8 }),
    ];
    const [a, b] = pair(...prog);
    for (const m of [a, b]) {
      idtGate(m.cpu, VEC.GP, { selector: SEL.code(0), offset: 0x18000, dpl: 0 });
      code(m, 0x18000, enc('hlt'));
    }
    expect(run(b.cpu, 1_000_000)).toEqual(run(a.cpu, 1_000_000));
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    // The #GP frame: error code 0, then the EIP of the LD.
    const esp = b.cpu.reg[R.ESP]! >>> 0;
    expect([b.phys.read32(esp), b.phys.read32(esp + 4)]).toEqual([0, CODE_AT + 16]);
  });

  it('do not run under a beforeStep hook: it sees every instruction', () => {
    const [a, b] = pair(...loop);
    run(b.cpu, 2000); // b has blocks
    run(a.cpu, 2000);
    const seen: number[][] = [[], []];
    a.cpu.beforeStep = (c) => seen[0]!.push(c.eip);
    b.cpu.beforeStep = (c) => seen[1]!.push(c.eip);
    const ranBefore = b.cpu.jit!.ran;
    run(a.cpu, 300);
    run(b.cpu, 300);
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[1]!.length).toBe(300);
    expect(b.cpu.jit!.ran).toBe(ranBefore);
  });

  it('are not compiled with the compiler off, nor for an instruction that is not ordinary', () => {
    const b = machine(0, { jit: { hot: 1 } });
    program(
      b,
      enc('mov reg,imm', { a: R.EAX, imm: SEL.data(0) }),
      enc('mov sreg,reg', { a: S.DS, b: R.EAX }),
      enc('jmp imm', { imm: CODE_AT }),
    );
    run(b.cpu, 3000);
    expect(b.cpu.jit!.compiled).toBe(0); // MOV DS ends every block before it has two instructions
    expect(b.cpu.jit!.ran).toBe(0);
  });

  it('reject options outside their ranges', () => {
    expect(() => machine(0, { jit: { hot: 0 } })).toThrow(/hot 0 not in 1\.\.255/);
    expect(() => machine(0, { jit: { maxLength: 1 } })).toThrow(/maxLength 1 not in 2\.\.64/);
  });
});
