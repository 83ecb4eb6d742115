/**
 * The block compiler (src/cpu/jit.ts) changes how fast the machine runs, never what it does: every
 * test here runs the same program on a machine without it and on one that compiles a block at the
 * first visit of an offset (`hot: 1`), and expects the same run results, the same architectural
 * state and the same memory, at the same instruction counts. Random programs walk the instructions
 * blocks hold (with faults, budgets that end inside blocks, self-modifying stores, paging); the
 * rest are the cases by name.
 */
import { describe, expect, it } from 'vitest';
import { Cpu } from '../../src/cpu/cpu.js';
import { gateDescriptor, segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { run } from '../../src/cpu/exec.js';
import { VEC, VECTOR_NAMES } from '../../src/cpu/faults.js';
import { NO_BASE, R, S } from '../../src/cpu/isa.js';
import { NEVER } from '../../src/cpu/jit.js';
import { IoBus } from '../../src/devices/bus.js';
import { Mmu } from '../../src/memory/mmu.js';
import { PhysicalMemory } from '../../src/memory/physical.js';
import {
  ALU,
  CODE_AT,
  code,
  cpuState,
  EDGES,
  enablePaging,
  enc,
  faultHandlers,
  GDT,
  HANDLERS,
  type IrqStub,
  idtGate,
  JCC,
  loadCache,
  type Machine,
  machine,
  machineView,
  PD,
  PG,
  PT0,
  program,
  randomLockstep,
  rng,
  SEL,
  setGdt,
  stacksAndTables,
  stackTop,
  TSS_AT,
  withPolledIrq,
} from './harness.js';

/** The data area: four pages (read/write, read-only, absent, supervisor-only when paging is on). */
const DATA = 0x20000;
const DATA_BYTES = 0x4000;
/** A data segment over just the data area (base DATA, limit 0x3FFF), read/write or read-only. */
const SMALL_DS = SEL.free(1);
const READONLY_DS = SEL.free(2);
const SLOTS = 48;

interface Variant {
  readonly name: string;
  readonly ring: 0 | 3;
  /** DS: flat (stores reach the code), the data area, or the data area read-only. */
  readonly ds: 'flat' | 'small' | 'readonly';
  readonly paging: boolean;
  /** CR0.WP: ring-0 writes to read-only pages fault. */
  readonly wp?: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'ring 0, data-area DS', ring: 0, ds: 'small', paging: false },
  { name: 'ring 0, flat DS', ring: 0, ds: 'flat', paging: false },
  { name: 'ring 3, flat DS, paging', ring: 3, ds: 'flat', paging: true },
  { name: 'ring 3, data-area DS, paging', ring: 3, ds: 'small', paging: true },
  { name: 'ring 0, read-only DS, paging with CR0.WP', ring: 0, ds: 'readonly', paging: true, wp: true },
];

/**
 * A random program of SLOTS instructions, mostly ones blocks hold, some that end them or fault. A
 * fault is delivered to a handler that resumes after the faulting instruction, so a loop brings
 * it back inside a block.
 */
function generate(rand: () => number, v: Variant): Uint8Array[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const dst = () => pick([R.EAX, R.ECX, R.EDX, R.EBX, R.EBP, R.ESI]); // never ESP or EDI
  const any = () => Math.floor(rand() * 8);
  const value = () => (rand() < 0.6 ? pick(EDGES) : Math.floor(rand() * 2 ** 32));
  const slot = () => CODE_AT + 8 * Math.floor(rand() * SLOTS);
  // Offsets through DS: the data area's four pages and a little beyond; with a flat DS, the data
  // area and the code itself.
  const dsOffset = () => {
    const off = rand() < 0.93 ? Math.floor(rand() * DATA_BYTES) : DATA_BYTES - 4 + Math.floor(rand() * 16);
    const aligned = rand() < 0.85 ? off & ~3 : off;
    if (v.ds !== 'flat') return aligned;
    return rand() < 0.15 ? slot() + (rand() < 0.5 ? 4 : 0) : DATA + aligned;
  };
  const memOperand = () =>
    rand() < 0.3 ? { b: R.EDI, c: 0xf, imm: dsOffset() & 0xff } : { b: NO_BASE, c: 0xf, imm: dsOffset() };
  const out: Uint8Array[] = [];
  for (let k = 0; k < SLOTS; k++) {
    const x = rand();
    if (x < 0.18) out.push(enc(`${pick(ALU)} reg,reg`, { a: dst(), b: any() }));
    else if (x < 0.31)
      out.push(enc(`${pick([...ALU, 'shl', 'shr', 'sar', 'mul'])} reg,imm`, { a: dst(), imm: value() }));
    else if (x < 0.36)
      out.push(enc(`${pick(['shl', 'shr', 'sar', 'mul', 'divu', 'remu'])} reg,reg`, { a: dst(), b: any() }));
    else if (x < 0.38)
      out.push(enc(`${pick(['divu', 'remu'])} reg,imm`, { a: dst(), imm: pick([0, 1, 3, 0xffffffff]) }));
    else if (x < 0.42) out.push(enc(`${pick(['neg', 'not', 'inc', 'dec'])} reg`, { a: dst() }));
    else if (x < 0.45) out.push(enc('mov reg,reg', { a: dst(), b: any() }));
    else if (x < 0.5) {
      const r = rand();
      const f =
        r < 0.25
          ? { a: R.EDI, imm: Math.floor(rand() * 0x100) & ~3 }
          : r < 0.45
            ? { a: dst(), imm: slot() }
            : { a: dst(), imm: value() };
      out.push(enc('mov reg,imm', f));
    } else if (x < 0.58) out.push(enc('ld reg,mem', { a: dst(), ...memOperand() }));
    else if (x < 0.65) out.push(enc('st mem,reg', { a: any(), ...memOperand() }));
    else if (x < 0.68)
      // bytes through the default segment, DS or ES (flat: the general path's segment checks)
      out.push(
        enc(pick(['ldb reg,mem', 'stb mem,reg']), { a: dst(), ...memOperand(), c: pick([0xf, S.DS, S.ES]) }),
      );
    else if (x < 0.69) out.push(enc('lea reg,mem', { a: dst(), ...memOperand() }));
    else if (x < 0.7)
      // through ES (flat): the general path, onto the data area or the code
      out.push(
        enc(pick(['st mem,reg', 'ld reg,mem']), {
          a: dst(),
          b: NO_BASE,
          c: S.ES,
          imm: rand() < 0.5 ? slot() + 4 : DATA + (dsOffset() & 0x3ffc),
        }),
      );
    else if (x < 0.74) out.push(enc('push reg', { a: any() }));
    else if (x < 0.75) out.push(enc('push imm', { imm: value() }));
    else if (x < 0.78) out.push(enc('pop reg', { a: rand() < 0.05 ? R.ESP : dst() }));
    else if (x < 0.85) out.push(enc(`${pick(JCC)} imm`, { imm: rand() < 0.95 ? slot() : 0xfffffff0 }));
    else if (x < 0.87) out.push(enc('jmp imm', { imm: slot() }));
    else if (x < 0.88) out.push(enc('jmp reg', { a: any() }));
    else if (x < 0.9) out.push(enc('call imm', { imm: rand() < 0.9 ? slot() : 0x7ffffff0 }));
    else if (x < 0.91) out.push(enc('call reg', { a: any() }));
    else if (x < 0.93)
      out.push(rand() < 0.5 ? enc('ret') : enc('ret imm16', { imm: pick([0, 4, 8, 0xfffc]) }));
    else if (x < 0.94)
      out.push(enc('jmp imm', { imm: 0x7fffffff })); // beyond the CS limit: #GP
    else if (x < 0.95)
      out.push(enc('add reg,reg', { a: dst(), b: any(), imm: 1 })); // a bad encoding: #UD
    else if (x < 0.96)
      out.push(enc('ld reg,mem', { a: dst(), b: NO_BASE, c: 7, imm: 0 })); // segment 7: #UD
    else out.push(enc('nop'));
  }
  return out;
}

function setUp(v: Variant, jit: boolean, prog: Uint8Array[], rand: () => number): Machine {
  const m = machine(v.ring, { jit: jit ? { hot: 1 } : false });
  setGdt(m.cpu, 15, segmentDescriptor({ base: DATA, limit: DATA_BYTES - 1, type: 0x2, dpl: 3 }));
  setGdt(m.cpu, 16, segmentDescriptor({ base: DATA, limit: DATA_BYTES - 1, type: 0x0, dpl: 3 }));
  if (v.ds === 'small') loadCache(m.cpu, S.DS, SMALL_DS | v.ring);
  if (v.ds === 'readonly') loadCache(m.cpu, S.DS, READONLY_DS | v.ring);
  if (v.paging) {
    enablePaging(m, { wp: v.wp === true });
    // The data area's pages: read/write, read-only, absent, supervisor-only.
    m.phys.write32(PT0 + 4 * 0x21, 0x21000 | PG.P | PG.U);
    m.phys.write32(PT0 + 4 * 0x22, 0);
    m.phys.write32(PT0 + 4 * 0x23, 0x23000 | PG.P | PG.W);
    m.cpu.mmu.flush();
  }
  faultHandlers(m);
  program(m, ...prog);
  for (let r = 0; r < 8; r++) if (r !== R.ESP) m.cpu.reg[r] = Math.floor(rand() * 2 ** 32);
  m.cpu.reg[R.EDI] = 0x40;
  for (let i = 0; i < DATA_BYTES; i += 4) m.phys.write32(DATA + i, Math.floor(rand() * 2 ** 32));
  return m;
}

/**
 * What must be equal between the two machines: state, CR2, the count, and the memory they touch
 * (with the page tables, whose accessed and dirty bits the accesses set).
 */
function observe(m: Machine): Record<string, unknown> {
  return machineView(m, {
    code: [[CODE_AT, 8 * SLOTS + 64]],
    data: [[DATA, DATA_BYTES]],
    ...stacksAndTables(),
  });
}

describe('random programs: the same results with and without blocks', () => {
  for (const v of VARIANTS) {
    it(`${v.name}: 120 programs, faults inside blocks, budgets that end anywhere`, () => {
      let compiled = 0;
      let ran = 0;
      let faults = 0;
      for (let seed = 1; seed <= 120; seed++) {
        const prog = generate(rng(seed * 7919 + v.name.length), v);
        const a = setUp(v, false, prog, rng(seed));
        const b = setUp(v, true, prog, rng(seed));
        randomLockstep(a, b, {
          rand: rng(seed + 1),
          total: 4000,
          pSmall: 0.5,
          small: 8,
          max: 700,
          observe,
          what: `seed ${seed}`,
          after: (ra) => ra.reason === 'budget',
        });
        compiled += b.cpu.jit!.compiled;
        ran += b.cpu.jit!.ran;
        faults += b.cpu.jit!.faults;
      }
      // The programs did reach blocks, and faults inside them (the point of comparing them).
      expect(compiled).toBeGreaterThan(300);
      expect(ran).toBeGreaterThan(20_000);
      expect(faults).toBeGreaterThan(100);
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
  // (it runs), and the MOV must still load what was just written, in the same turn. Through DS
  // (the inline path), ES and a byte store (the general paths).
  const stores: [string, (src: number, at: number) => Uint8Array, number][] = [
    [
      'a dword store through DS',
      (src, at) => enc('st mem,reg', { a: src, b: NO_BASE, c: 0xf, imm: at }),
      0xffffffff,
    ],
    [
      'a dword store through ES',
      (src, at) => enc('st mem,reg', { a: src, b: NO_BASE, c: S.ES, imm: at }),
      0xffffffff,
    ],
    ['a byte store', (src, at) => enc('stb mem,reg', { a: src, b: NO_BASE, c: 0xf, imm: at }), 0xff],
  ];
  for (const [name, store, mask] of stores) {
    it(`see ${name} into their own later instructions at once (self-modifying code)`, () => {
      const imm = CODE_AT + 3 * 8 + 4; // the MOV EBX's immediate
      const prog = [
        enc('mov reg,imm', { a: R.ECX, imm: 50 }),
        enc('add reg,imm', { a: R.EAX, imm: 7 }), // CODE_AT + 8: the loop
        store(R.EAX, imm),
        enc('mov reg,imm', { a: R.EBX, imm: 0 }), // CODE_AT + 24
        enc('add reg,reg', { a: R.EDX, b: R.EBX }),
        store(R.ESI, imm), // ESI = 0
        enc('dec reg', { a: R.ECX }),
        enc('jnz imm', { imm: CODE_AT + 8 }),
        enc('hlt'),
      ];
      const [a, b] = pair(...prog);
      expect(run(b.cpu, 10_000)).toEqual(run(a.cpu, 10_000));
      expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
      // EDX = the sum of 7, 14, ..., 350 (as stored): each MOV saw the value stored just before it.
      let sum = 0;
      for (let k = 1; k <= 50; k++) sum += (7 * k) & mask;
      expect(b.cpu.reg[R.EDX]).toBe(sum);
      expect(b.cpu.jit!.ran).toBeGreaterThan(100);
    });
  }

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
      enc('mov reg,sreg', { a: R.ESI, b: S.DS }), // not in blocks
      enc('jmp reg', { a: R.EDI }), // EDI = CODE_AT
    );
    b.cpu.reg[R.EDI] = CODE_AT;
    run(b.cpu, 3000);
    // MOV ESI, DS ends every block before it has two instructions; a JMP through a register
    // alone is none either (a JMP to a fixed EIP alone is: see 'a JMP alone')
    expect(b.cpu.jit!.compiled).toBe(0);
    expect(b.cpu.jit!.ran).toBe(0);
  });

  it('reject options outside their ranges', () => {
    expect(() => machine(0, { jit: { hot: 0 } })).toThrow(/hot 0 not in 1\.\.255/);
    expect(() => machine(0, { jit: { maxLength: 1 } })).toThrow(/maxLength 1 not in 2\.\.64/);
    expect(() => machine(0, { jit: { traceHot: -1 } })).toThrow(/traceHot -1 not in 0\.\.1000000/);
  });
});

/**
 * Each check a block makes, failing inside a block: a loop whose second instruction faults, with
 * handlers that resume after the faulting instruction (so the loop comes back to it in a block),
 * on machines with and without blocks.
 */
describe('every check, failing inside a block', () => {
  interface Case {
    readonly name: string;
    readonly ring: 0 | 3;
    readonly faulting: Uint8Array;
    readonly setUp?: (m: Machine) => void;
    readonly vector: number;
    /** Run by the handler first (a ring-0 access, say, that leaves a TLB entry for ring 3 to hit). */
    readonly inHandler?: Uint8Array;
  }
  const dataDs = (type: number) => (m: Machine) => {
    setGdt(m.cpu, 15, segmentDescriptor({ base: DATA, limit: DATA_BYTES - 1, type, dpl: 3 }));
    loadCache(m.cpu, S.DS, SMALL_DS | (m.cpu.segSel[S.CS]! & 3));
  };
  const paged = (wp: boolean, pte: number) => (m: Machine) => {
    enablePaging(m, { wp });
    m.phys.write32(PT0 + 4 * 0x21, 0x21000 | pte);
    m.cpu.mmu.flush();
  };
  const cases: Case[] = [
    {
      name: 'a store to a read-only DS',
      ring: 0,
      setUp: dataDs(0x0),
      vector: VEC.GP,
      faulting: enc('st mem,reg', { a: R.EAX, b: NO_BASE, c: 0xf, imm: 0x100 }),
    },
    {
      name: 'a load beyond the DS limit',
      ring: 0,
      setUp: dataDs(0x2),
      vector: VEC.GP,
      faulting: enc('ld reg,mem', { a: R.EBX, b: NO_BASE, c: 0xf, imm: DATA_BYTES - 2 }),
    },
    {
      name: 'a store beyond the DS limit',
      ring: 3,
      setUp: dataDs(0x2),
      vector: VEC.GP,
      faulting: enc('st mem,reg', { a: R.EAX, b: NO_BASE, c: 0xf, imm: DATA_BYTES }),
    },
    {
      name: 'a PUSH below SS',
      ring: 3,
      setUp: (m) => {
        m.cpu.reg[R.ESP] = 2;
      },
      vector: VEC.SS,
      faulting: enc('push reg', { a: R.EAX }),
    },
    {
      name: 'a POP at the top of SS',
      ring: 3,
      setUp: (m) => {
        m.cpu.reg[R.ESP] = 0xffffe;
      },
      vector: VEC.SS,
      faulting: enc('pop reg', { a: R.EBX }),
    },
    {
      name: 'a JMP beyond the CS limit',
      ring: 0,
      vector: VEC.GP,
      faulting: enc('jmp imm', { imm: 0x100000 }),
    },
    {
      name: 'a JMP through a register beyond the CS limit',
      ring: 0,
      setUp: (m) => {
        m.cpu.reg[R.EBX] = 0x100000;
      },
      vector: VEC.GP,
      faulting: enc('jmp reg', { a: R.EBX }),
    },
    {
      name: 'a Jcc beyond the CS limit',
      ring: 0,
      vector: VEC.GP,
      faulting: enc('jnz imm', { imm: 0xfffffff8 }),
    },
    {
      name: 'a CALL beyond the CS limit (before its push)',
      ring: 3,
      vector: VEC.GP,
      faulting: enc('call imm', { imm: 0x100000 }),
    },
    {
      name: 'a RET beyond the CS limit',
      ring: 3,
      setUp: (m) => {
        m.phys.write32(stackTop(3) - 0x100, 0x100000);
      },
      vector: VEC.GP,
      faulting: enc('ret imm16', { imm: 4 }),
    },
    { name: 'DIVU by 0', ring: 0, vector: VEC.DE, faulting: enc('divu reg,reg', { a: R.EAX, b: R.EDI }) },
    {
      name: 'a ring-3 store to a read-only page',
      ring: 3,
      setUp: paged(false, PG.P | PG.U),
      vector: VEC.PF,
      faulting: enc('st mem,reg', { a: R.EAX, b: NO_BASE, c: 0xf, imm: 0x21010 }),
    },
    {
      name: 'a ring-0 store to a read-only page with CR0.WP',
      ring: 0,
      setUp: paged(true, PG.P | PG.U),
      vector: VEC.PF,
      faulting: enc('st mem,reg', { a: R.EAX, b: NO_BASE, c: 0xf, imm: 0x21010 }),
    },
    {
      name: 'a ring-3 load from an absent page',
      ring: 3,
      setUp: paged(false, 0),
      vector: VEC.PF,
      faulting: enc('ld reg,mem', { a: R.EBX, b: NO_BASE, c: 0xf, imm: 0x21010 }),
    },
    {
      name: 'a ring-3 load from a supervisor page that ring 0 left in the TLB',
      ring: 3,
      setUp: paged(false, PG.P | PG.W),
      vector: VEC.PF,
      faulting: enc('ld reg,mem', { a: R.EBX, b: NO_BASE, c: 0xf, imm: 0x21010 }),
      inHandler: enc('ld reg,mem', { a: R.EDX, b: NO_BASE, c: 0xf, imm: 0x21010 }),
    },
  ];
  for (const c of cases) {
    it(`${c.name}: #${VECTOR_NAMES[c.vector]?.slice(1) ?? c.vector} at the same instruction, state as without blocks`, () => {
      const ms = [false, true].map((jit) => {
        const m = machine(c.ring, { jit: jit ? { hot: 1 } : false });
        c.setUp?.(m);
        faultHandlers(m, { first: c.inHandler === undefined ? [] : [c.inHandler] });
        program(
          m,
          enc('add reg,imm', { a: R.EAX, imm: 1 }), // sets flags the fault must see
          c.faulting,
          enc('xor reg,imm', { a: R.ECX, imm: 1 }), // overwrites them
          enc('jmp imm', { imm: CODE_AT }),
        );
        return m;
      });
      const [a, b] = ms as [Machine, Machine];
      for (let turn = 0; turn < 20; turn++) {
        expect(run(b.cpu, 97)).toEqual(run(a.cpu, 97));
        expect(observe(b)).toEqual(observe(a));
      }
      expect(a.cpu.reg[R.EBP]).toBeGreaterThan(100); // it faulted, turn after turn
      expect(b.cpu.jit!.faults).toBeGreaterThan(50); // and inside blocks
    });
  }
});

describe('blocks and the run loop', () => {
  it('see the page tables a page walk wrote while they ran (a PDE that is a word of their code)', () => {
    // PDE 1 points at the code page as if it were a page table, so PTE 9 of it is the immediate
    // of instruction 4: the walk of the LD sets its accessed bit, and the MOV must load that.
    const ms = [false, true].map((jit) => {
      const m = machine(0, { limit: 0xffffffff, jit: jit ? { hot: 1 } : false });
      enablePaging(m);
      m.phys.write32(PD + 4, CODE_AT | PG.P | PG.W | PG.U | PG.A);
      m.cpu.mmu.flush();
      const immAt = CODE_AT + 4 * 8 + 4;
      const lin = 0x400000 + ((immAt - CODE_AT) / 4) * 0x1000;
      program(
        m,
        enc('st mem,reg', { a: R.ECX, b: NO_BASE, c: 0xf, imm: immAt }), // the accessed bit clear again
        enc('invlpg mem', { b: NO_BASE, c: 0xf, imm: lin }),
        enc('nop'),
        enc('ld reg,mem', { a: R.EAX, b: NO_BASE, c: 0xf, imm: lin }), // the walk sets it
        enc('mov reg,imm', { a: R.EBX, imm: 0x21007 }),
        enc('add reg,reg', { a: R.EDX, b: R.EBX }),
        enc('dec reg', { a: R.ESI }),
        enc('jnz imm', { imm: CODE_AT }),
        enc('hlt'),
      );
      m.cpu.reg[R.ECX] = 0x21007;
      m.cpu.reg[R.ESI] = 10;
      m.cpu.exitVectors = 0xffffffff;
      return m;
    });
    const [a, b] = ms as [Machine, Machine];
    expect(run(b.cpu, 10_000)).toEqual(run(a.cpu, 10_000));
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    expect(b.cpu.reg[R.EDX]! >>> 0).toBe(10 * 0x21027);
    expect(b.cpu.jit!.ran).toBeGreaterThan(10);
  });

  it('translate a fixed offset again in each run: a page remapped between two runs is seen', () => {
    const prog = [
      enc('ld reg,mem', { a: R.EAX, b: NO_BASE, c: 0xf, imm: 0x20000 }),
      enc('add reg,reg', { a: R.ECX, b: R.EAX }),
      enc('st mem,reg', { a: R.ECX, b: NO_BASE, c: 0xf, imm: 0x20004 }),
      enc('jmp imm', { imm: CODE_AT }),
    ];
    const [a, b] = pair(...prog);
    for (const m of [a, b]) {
      enablePaging(m);
      m.phys.write32(0x20000, 111);
      m.phys.write32(0x30000, 222);
    }
    expect(run(b.cpu, 400)).toEqual(run(a.cpu, 400));
    for (const m of [a, b]) {
      m.phys.write32(PT0 + 4 * 0x20, 0x30000 | PG.P | PG.W | PG.U); // page 0x20000 -> frame 0x30000
      m.cpu.mmu.invalidate(0x20000);
    }
    expect(run(b.cpu, 400)).toEqual(run(a.cpu, 400));
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    expect([b.phys.read32(0x20004), b.phys.read32(0x30004)]).toEqual([
      a.phys.read32(0x20004),
      a.phys.read32(0x30004),
    ]);
    expect(b.cpu.reg[R.ECX]).toBe(100 * 111 + 100 * 222);
    expect(b.cpu.jit!.ran).toBeGreaterThan(700);
  });

  it('share a function between machines, each checked against its own RAM', () => {
    // The same code at the same address on a 4 MiB and a 1 MiB machine: its fixed-offset load
    // and store lie in RAM on the first and beyond it (the empty bus) on the second.
    const prog = [
      enc('ld reg,mem', { a: R.EAX, b: NO_BASE, c: 0xf, imm: 0x1ff000 }),
      enc('add reg,imm', { a: R.ECX, imm: 1 }),
      enc('st mem,reg', { a: R.ECX, b: NO_BASE, c: 0xf, imm: 0x1ff004 }),
      enc('jmp imm', { imm: CODE_AT }),
    ];
    const results = [4 << 20, 1 << 20].map((ramBytes) =>
      [false, true].map((jit) => {
        const mmu = new Mmu(new PhysicalMemory({ ramBytes }));
        const cpu = new Cpu({ mmu, io: new IoBus(), jit: jit ? { hot: 1 } : false });
        for (const s of [S.ES, S.CS, S.SS, S.DS, S.FS, S.GS]) {
          cpu.segBase[s] = 0;
          cpu.segLimit[s] = 0xffffffff;
        }
        for (let k = 0; k < prog.length; k++) mmu.phys.writeBytes(CODE_AT + 8 * k, prog[k]!);
        cpu.eip = CODE_AT;
        mmu.phys.write32(0x1ff000, 5);
        const r = run(cpu, 1000);
        return { r, state: cpuState(cpu), ran: cpu.jit?.ran ?? 0 };
      }),
    );
    for (const [without, withBlocks] of results) {
      expect(withBlocks!.r).toEqual(without!.r);
      expect(withBlocks!.state).toEqual(without!.state);
    }
    // In RAM: the loop runs in its block; beyond it, every access takes the general path.
    expect(results[0]![1]!.ran).toBeGreaterThan(900);
    expect(results[0]![0]!.state.reg).toEqual(expect.arrayContaining([5, 250]));
  });

  it('check DS as the last MOV DS left it', () => {
    // Two data segments with different bases; the block between the MOVs reads "DS:[0]".
    const prog = [
      enc('mov sreg,reg', { a: S.DS, b: R.EBX }), // CODE_AT: DS = A
      enc('ld reg,mem', { a: R.EAX, b: NO_BASE, c: 0xf, imm: 0 }),
      enc('add reg,reg', { a: R.EDX, b: R.EAX }),
      enc('mov sreg,reg', { a: S.DS, b: R.ECX }), // DS = B (base 0x30000, limit 3)
      enc('ld reg,mem', { a: R.EAX, b: NO_BASE, c: 0xf, imm: 0 }),
      enc('add reg,reg', { a: R.EDX, b: R.EAX }),
      enc('ld reg,mem', { a: R.EAX, b: NO_BASE, c: 0xf, imm: 4 }), // beyond B's limit: #GP
      enc('jmp imm', { imm: CODE_AT }),
    ];
    const [a, b] = pair(...prog);
    for (const m of [a, b]) {
      setGdt(m.cpu, 15, segmentDescriptor({ base: 0x20000, limit: 0xfff, type: 0x2, dpl: 0 }));
      setGdt(m.cpu, 16, segmentDescriptor({ base: 0x30000, limit: 3, type: 0x2, dpl: 0 }));
      m.phys.write32(0x20000, 5);
      m.phys.write32(0x30000, 1000);
      m.phys.write32(0x30004, 77);
      m.cpu.reg[R.EBX] = SEL.free(1);
      m.cpu.reg[R.ECX] = SEL.free(2);
      m.cpu.exitVectors = 1 << VEC.GP;
    }
    const ra = run(a.cpu, 10_000);
    expect(run(b.cpu, 10_000)).toEqual(ra);
    expect(ra.reason).toBe('exit');
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    expect(b.cpu.reg[R.EDX]).toBe(1005);
  });

  it('never run past the CS limit when CS shrank since they were compiled', () => {
    const [a, b] = pair(...loop);
    run(a.cpu, 500);
    run(b.cpu, 500);
    expect(b.cpu.jit!.ran).toBeGreaterThan(0);
    // A code segment that ends inside the loop (after the XOR at CODE_AT + 16).
    for (const m of [a, b]) {
      setGdt(m.cpu, 15, segmentDescriptor({ base: 0, limit: CODE_AT + 16 + 7, type: 0xa, dpl: 0 }));
      loadCache(m.cpu, S.CS, SEL.free(1));
      m.cpu.eip = CODE_AT + 8;
      m.cpu.exitVectors = 1 << VEC.GP;
    }
    const ra = run(a.cpu, 1000);
    expect(ra).toEqual({ reason: 'exit', vector: VEC.GP, errorCode: 0, executed: 2 });
    expect(run(b.cpu, 1000)).toEqual(ra);
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
  });

  it('stop at a breakpoint inside them, as the run loop does', () => {
    const [a, b] = pair(...loop);
    run(a.cpu, 2000);
    run(b.cpu, 2000);
    for (const m of [a, b]) m.cpu.breakpoints.add(CODE_AT + 24); // the store
    const ra = run(a.cpu, 1000);
    expect(ra.reason).toBe('breakpoint');
    expect(run(b.cpu, 1000)).toEqual(ra);
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
  });

  it('let an interrupt in at the same instruction as the run loop', () => {
    // An interrupt source that becomes pending at instruction 1500 (asked at prologues, as a PIC
    // is), and a handler that counts.
    const [a, b] = pair(...loop);
    for (const m of [a, b]) {
      let taken = false;
      const pending = () => !taken && m.cpu.instructions >= 1500;
      m.cpu.irq = {
        pending: () => (pending() ? 0x30 : -1),
        acknowledge: () => {
          taken = true;
        },
        hasPending: pending,
      };
      m.cpu.eflags |= 0x200;
      idtGate(m.cpu, 0x30, { selector: SEL.code(0), offset: HANDLERS, dpl: 0 });
      code(m, HANDLERS, enc('inc reg', { a: R.EBP }), enc('iret'));
    }
    for (let k = 0; k < 8; k++) {
      expect(run(b.cpu, 700)).toEqual(run(a.cpu, 700));
      expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    }
    expect(a.cpu.reg[R.EBP]).toBe(1);
    expect(b.cpu.jit!.ran).toBeGreaterThan(1000);
  });

  it('do not run under a trace hook: it sees every instruction', () => {
    const [a, b] = pair(...loop);
    run(a.cpu, 2000);
    run(b.cpu, 2000);
    const seen: number[][] = [[], []];
    a.cpu.trace = (_c, eip) => seen[0]!.push(eip);
    b.cpu.trace = (_c, eip) => seen[1]!.push(eip);
    const ranBefore = b.cpu.jit!.ran;
    run(a.cpu, 300);
    run(b.cpu, 300);
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[1]!.length).toBe(300);
    expect(b.cpu.jit!.ran).toBe(ranBefore);
  });

  it('are compiled at the hot-th visit of an offset', () => {
    const m = machine(0, { jit: { hot: 3 } });
    program(m, ...loop);
    run(m.cpu, 1 + 5 * 2); // two turns: the loop's first instruction visited twice
    expect(m.cpu.jit!.compiled).toBe(0);
    run(m.cpu, 5); // the third visit compiles (and runs this turn in the run loop)
    expect(m.cpu.jit!.compiled).toBeGreaterThan(0);
    expect(m.cpu.jit!.ran).toBe(0);
    run(m.cpu, 5);
    expect(m.cpu.jit!.ran).toBe(5);
  });
});

/**
 * Far transfers and data segment loads inside blocks: a ring-3 loop whose blocks hold a MOV DS, a
 * CALLF through a call gate (its ring-0 target: ADD, RETF), INT 0x80 (trap gate: ADD, IRET), INT3
 * (interrupt gate, so its IRET sets IF again) and hardware interrupts; a #GP or #NP handler that
 * skips the faulting instruction. Between runs the host changes what the fast paths rely on, the
 * same on both machines, so blocks run the transfers through their fast paths, decline them to the
 * run loop, or stop for the host (a software interrupt seen first).
 */
describe('far transfers and segment loads inside blocks', () => {
  const GATE = SEL.gate | 3;
  const DS_A = SEL.data(3);
  const DS_B = SEL.free(1) | 3; // data, DPL 3, base 0x20000
  const ENTRY = 0x18000;
  const IRQ = 0x40;
  const TOP = CODE_AT;
  const prog = [
    enc('xor reg,imm', { a: R.EBX, imm: DS_A ^ DS_B }), // TOP: the other data segment each turn
    enc('mov sreg,reg', { a: S.DS, b: R.EBX }),
    enc('ld reg,mem', { a: R.EDX, b: NO_BASE, c: 0xf, imm: 0x100 }), // through the new DS
    enc('add reg,reg', { a: R.EDI, b: R.EDX }),
    enc('push reg', { a: R.EDX }),
    enc('callf far', { sel: GATE, imm: 0 }), // ring 0: ADD EDX, 3; RETF
    enc('pop reg', { a: R.EAX }),
    enc('add reg,reg', { a: R.ESI, b: R.EAX }),
    enc('int vec', { imm: 0x80 }), // ring 0: ADD EBP, 1; IRET
    enc('add reg,imm', { a: R.ESI, imm: 1 }),
    enc('int3'), // ring 0 with IF = 0: ADD EBP, 0x100; IRET (IF 0 to 1)
    enc('dec reg', { a: R.ECX }),
    enc('jnz imm', { imm: TOP }),
    enc('hlt'), // #GP at CPL 3: skipped by the handler
    enc('mov reg,imm', { a: R.ECX, imm: 5 }),
    enc('jmp imm', { imm: TOP }),
  ];

  function build(jit: boolean): Machine & { irq: IrqStub } {
    const m = machine(3, { jit: jit ? { hot: 1 } : false });
    const { cpu } = m;
    setGdt(
      cpu,
      SEL.gate >>> 3,
      gateDescriptor({ type: TYPE.CALL_GATE, selector: SEL.code(0), offset: ENTRY, dpl: 3 }),
    );
    setGdt(cpu, DS_B >>> 3, segmentDescriptor({ base: 0x20000, limit: 0xfff, type: 0x2, dpl: 3 }));
    code(m, ENTRY, enc('add reg,imm', { a: R.EDX, imm: 3 }), enc('retf'));
    idtGate(cpu, 0x80, { type: TYPE.TRAP_GATE, selector: SEL.code(0), offset: ENTRY + 0x40, dpl: 3 });
    code(m, ENTRY + 0x40, enc('add reg,imm', { a: R.EBP, imm: 1 }), enc('iret'));
    idtGate(cpu, VEC.BP, { type: TYPE.INT_GATE, selector: SEL.code(0), offset: ENTRY + 0x80, dpl: 3 });
    code(m, ENTRY + 0x80, enc('add reg,imm', { a: R.EBP, imm: 0x100 }), enc('iret'));
    idtGate(cpu, IRQ, { type: TYPE.INT_GATE, selector: SEL.code(0), offset: ENTRY + 0xc0, dpl: 0 });
    code(m, ENTRY + 0xc0, enc('add reg,imm', { a: R.EBP, imm: 0x10000 }), enc('iret'));
    // #GP and #NP (error code): past the faulting instruction
    for (const v of [VEC.GP, VEC.NP]) {
      idtGate(cpu, v, { type: TYPE.INT_GATE, selector: SEL.code(0), offset: ENTRY + 0x100, dpl: 0 });
    }
    code(
      m,
      ENTRY + 0x100,
      enc('pop reg', { a: R.EAX }),
      enc('pop reg', { a: R.EAX }),
      enc('add reg,imm', { a: R.EAX, imm: 8 }),
      enc('push reg', { a: R.EAX }),
      enc('add reg,imm', { a: R.EBP, imm: 0x1000000 }),
      enc('iret'),
    );
    program(m, ...prog);
    m.phys.write32(0x100, 0x11);
    m.phys.write32(0x20100, 0x2200);
    cpu.reg[R.EBX] = DS_A;
    cpu.reg[R.ECX] = 5;
    return withPolledIrq(m);
  }

  /** What the host changes between runs (both machines alike); each has its undoing next to it. */
  const CHANGES: ((m: Machine) => void)[] = [
    // the call gate's DPL 0: CALLF from ring 3 is #GP (the fast path declines, the run loop faults)
    (m) => m.phys.write32(GDT + SEL.gate + 4, m.phys.read32(GDT + SEL.gate + 4) & ~0x6000_0000),
    (m) => m.phys.write32(GDT + SEL.gate + 4, m.phys.read32(GDT + SEL.gate + 4) | 0x6000_0000),
    // DS B not present: MOV DS is #NP
    (m) => m.phys.write32(GDT + (DS_B & ~7) + 4, m.phys.read32(GDT + (DS_B & ~7) + 4) & 0x7fff_ffff),
    (m) => m.phys.write32(GDT + (DS_B & ~7) + 4, m.phys.read32(GDT + (DS_B & ~7) + 4) | 0x8000_0000),
    // DS B moved (a memo-free fast path, but the blocks' bounds must follow)
    (m) => setGdt(m.cpu, DS_B >>> 3, segmentDescriptor({ base: 0x20040, limit: 0x103, type: 0x2, dpl: 3 })),
    (m) => setGdt(m.cpu, DS_B >>> 3, segmentDescriptor({ base: 0x20000, limit: 0xfff, type: 0x2, dpl: 3 })),
    // ring 0's stack elsewhere (the memos of CALLF and INT must not keep the old one)
    (m) => m.phys.write32(TSS_AT + 4, stackTop(0) - 0x800),
    (m) => m.phys.write32(TSS_AT + 4, stackTop(0)),
    // INT 0x80 through an interrupt gate (IF cleared, set again by its IRET)
    (m) => idtGate(m.cpu, 0x80, { type: TYPE.INT_GATE, selector: SEL.code(0), offset: ENTRY + 0x40, dpl: 3 }),
    (m) =>
      idtGate(m.cpu, 0x80, { type: TYPE.TRAP_GATE, selector: SEL.code(0), offset: ENTRY + 0x40, dpl: 3 }),
    // a VM manager that sees software interrupts first
    (m) => {
      m.cpu.exitSoftware = true;
    },
    (m) => {
      m.cpu.exitSoftware = false;
    },
    // a hardware interrupt pending
    (m) => {
      (m as Machine & { irq: IrqStub }).irq.vector = IRQ;
    },
  ];

  function observe(m: Machine): Record<string, unknown> {
    const region = (at: number, n: number) => Buffer.from(m.phys.ram.subarray(at, at + n)).toString('base64');
    return {
      ...cpuState(m.cpu),
      instructions: m.cpu.instructions,
      stacks: region(stackTop(0) - 0x1000, 0x1000) + region(stackTop(3) - 0x1000, 0x1000),
    };
  }

  it('run them as the run loop does, through every change, at budgets that end anywhere', () => {
    let ran = 0;
    let exits = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const rand = rng(seed);
      const a = build(false);
      const b = build(true);
      randomLockstep(a, b, {
        rand,
        total: 6000,
        pSmall: 0.3,
        small: 6,
        max: 90,
        observe,
        what: `seed ${seed}`,
        after: (ra) => {
          if (ra.reason === 'exit') {
            // the host's part: past the software interrupt
            expect(ra.software).toBe(true);
            exits++;
            for (const m of [a, b]) m.cpu.eip += 8;
          } else expect(ra.reason).toBe('budget');
          if (rand() < 0.15) {
            const change = CHANGES[Math.floor(rand() * CHANGES.length)]!;
            change(a);
            change(b);
          }
          return true;
        },
      });
      ran += b.cpu.jit!.ran;
      // a fast path that declined left its block in place (nothing wrote code)
      expect(b.cpu.jit!.stale).toBe(0);
    }
    expect(ran).toBeGreaterThan(100_000);
    expect(exits).toBeGreaterThan(50);
  });

  it('run a whole turn in blocks: the transfers, the segment load and the handlers', () => {
    const a = build(false);
    const b = build(true);
    // Warm: every block compiled and every memo filled; then one turn of the loop: 13 instructions
    // in ring 3 and 2 in each of the three handlers.
    for (const m of [a, b]) {
      run(m.cpu, 200);
      m.cpu.reg[R.ECX] = 1000;
    }
    while (b.cpu.eip !== TOP) {
      run(a.cpu, 1);
      run(b.cpu, 1);
    }
    expect(observe(b)).toEqual(observe(a));
    const before = b.cpu.jit!.ran;
    const ra = run(a.cpu, 19);
    expect(run(b.cpu, 19)).toEqual(ra);
    expect(observe(b)).toEqual(observe(a));
    expect(b.cpu.eip).toBe(TOP);
    expect(b.cpu.jit!.ran - before).toBe(19);
  });

  it('leave a software interrupt to the host at the INT, the registers before it written back', () => {
    const b = build(true);
    run(b.cpu, 200);
    while (b.cpu.eip !== TOP) run(b.cpu, 1);
    b.cpu.exitSoftware = true;
    const esi = b.cpu.reg[R.ESI]!;
    // the INT 0x80 of this turn is its 10th instruction
    const r = run(b.cpu, 1000);
    expect(r).toEqual({ reason: 'exit', vector: 0x80, software: true, executed: 10 });
    expect(b.cpu.eip).toBe(TOP + 8 * 8);
    expect(b.cpu.cpl).toBe(3);
    // the POP and ADD before the INT ran (in the block that stopped at it)
    expect(b.cpu.reg[R.ESI]).not.toBe(esi);
  });

  it('forget a fixed offset translated through the DS a MOV DS in the block replaced', () => {
    // A block that loops in itself with a MOV DS of the other data segment each turn: its LD at a
    // fixed offset reads through DS A, then B, then A...
    const loopDs = [
      enc('xor reg,imm', { a: R.EBX, imm: DS_A ^ DS_B }), // TOP
      enc('mov sreg,reg', { a: S.DS, b: R.EBX }),
      enc('ld reg,mem', { a: R.EDX, b: NO_BASE, c: 0xf, imm: 0x100 }),
      enc('add reg,reg', { a: R.EDI, b: R.EDX }),
      enc('dec reg', { a: R.ECX }),
      enc('jnz imm', { imm: TOP }),
      enc('hlt'),
    ];
    const results = [false, true].map((jit) => {
      const m = build(jit);
      m.cpu.exitVectors = 1 << VEC.GP;
      program(m, ...loopDs);
      m.cpu.reg[R.ECX] = 100;
      m.cpu.reg[R.EDI] = 0;
      return { r: run(m.cpu, 1000), edi: m.cpu.reg[R.EDI], ran: m.cpu.jit?.ran ?? 0 };
    });
    expect(results[1]!.r).toEqual(results[0]!.r);
    expect(results[0]!.edi).toBe(50 * 0x11 + 50 * 0x2200);
    expect(results[1]!.edi).toBe(results[0]!.edi);
    expect(results[1]!.ran).toBeGreaterThan(500);
  });

  it('cut a block short before a far transfer whose fast path keeps declining (a far CALL to a code segment)', () => {
    const far = [
      enc('add reg,imm', { a: R.EAX, imm: 1 }), // TOP
      enc('add reg,imm', { a: R.EBX, imm: 1 }),
      enc('callf far', { sel: SEL.code(3), imm: ENTRY + 0x200 }), // same ring, straight: the general path
      enc('add reg,imm', { a: R.ECX, imm: 1 }),
      enc('jmp imm', { imm: TOP }),
    ];
    const [a, b] = [false, true].map((jit) => {
      const m = build(jit);
      code(m, ENTRY + 0x200, enc('inc reg', { a: R.ESI }), enc('retf'));
      program(m, ...far);
      return m;
    });
    for (let i = 0; i < 20; i++) {
      const ra = run(a!.cpu, 37);
      expect(run(b!.cpu, 37)).toEqual(ra);
      expect(observe(b!)).toEqual(observe(a!));
    }
    const jit = b!.cpu.jit!;
    // The block at TOP cut short to its two ADDs, the one at the CALLF replaced by NEVER, and the one
    // after it (the RETF comes back from another page: the first instruction there looks for a block
    // too) whole.
    expect(jit.retired).toBeGreaterThanOrEqual(2);
    const page = jit.page(TOP & ~0xfff);
    const at = (TOP & 0xfff) >>> 3;
    expect(page.blocks[at]!.len).toBe(2);
    expect(page.blocks[at + 2]).toBe(NEVER);
    expect(page.blocks[at + 3]!.len).toBe(2);
  });

  it('keep a block whose fast path declines only now and then (after each flush of the TLB)', () => {
    // Paging on: the fast path of INT n uses TLB hits only, so it declines once after each flush
    // (a scheduler's CR3 load, a VM manager's flush); the block must not be cut short for that.
    const H = 0x18000;
    const [a, b] = [false, true].map((jit) => {
      const m = machine(3, { jit: jit ? { hot: 1 } : false });
      enablePaging(m);
      idtGate(m.cpu, 0x80, { type: TYPE.TRAP_GATE, selector: SEL.code(0), offset: H, dpl: 3 });
      code(m, H, enc('add reg,imm', { a: R.EBP, imm: 1 }), enc('iret'));
      program(
        m,
        enc('add reg,imm', { a: R.EAX, imm: 1 }), // CODE_AT
        enc('add reg,imm', { a: R.EBX, imm: 1 }),
        enc('int vec', { imm: 0x80 }),
        enc('add reg,imm', { a: R.ECX, imm: 1 }),
        enc('jmp imm', { imm: CODE_AT }),
      );
      return m;
    }) as [Machine, Machine];
    for (let slice = 0; slice < 12; slice++) {
      for (const m of [a, b]) m.cpu.mmu.flush();
      const ra = run(a.cpu, 20_000);
      expect(run(b.cpu, 20_000)).toEqual(ra);
      expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    }
    // Nor the one-instruction block at the INT, reached only when the block before it declined,
    // nor the handler's IRET: each decline is followed by the general path's page walk, so no
    // block declines twice in a row without one (Jit.declined).
    const jit = b.cpu.jit!;
    expect(jit.page(CODE_AT).blocks[0]!.len).toBe(3);
    expect(jit.retired).toBe(0);
    expect(jit.ran / b.cpu.instructions).toBeGreaterThan(0.99);
  });

  it('cut a block that loops in itself at the instruction that declines on a later turn', () => {
    // MOV ES of a selector that is good and null in turn: the block runs one turn, declines in the
    // next (instruction 2, after 8 instructions ran), every time
    const GOOD = SEL.free(5);
    const [a, b] = [false, true].map((jit) => {
      const m = machine(0, { jit: jit ? { hot: 1 } : false });
      setGdt(m.cpu, GOOD >>> 3, segmentDescriptor({ base: 0, limit: 0xfffff, type: 0x2, dpl: 0 }));
      program(
        m,
        enc('xor reg,imm', { a: R.EDI, imm: GOOD }), // CODE_AT: good, null, good...
        enc('add reg,imm', { a: R.EAX, imm: 1 }),
        enc('mov sreg,reg', { a: S.ES, b: R.EDI }),
        enc('add reg,imm', { a: R.EBX, imm: 1 }),
        enc('dec reg', { a: R.ECX }),
        enc('jnz imm', { imm: CODE_AT }),
        enc('hlt'),
      );
      m.cpu.reg[R.ECX] = 200;
      m.cpu.reg[R.EDI] = 0;
      return m;
    }) as [Machine, Machine];
    const ra = run(a.cpu, 100_000);
    expect(run(b.cpu, 100_000)).toEqual(ra);
    expect(ra).toEqual({ reason: 'halt', executed: 6 * 200 + 1 });
    expect(cpuState(b.cpu)).toEqual(cpuState(a.cpu));
    // the block cut to the XOR and the ADD; the one at the MOV ES (it declines whenever it is
    // reached) replaced by NEVER
    expect(b.cpu.jit!.retired).toBe(2);
    expect(b.cpu.jit!.page(CODE_AT).blocks[0]!.len).toBe(2);
    expect(b.cpu.jit!.page(CODE_AT).blocks[2]).toBe(NEVER);
  });

  it('set the DS bounds the run loop checks after a block that loaded DS', () => {
    // A block that ends with MOV DS (MOV ESI, DS is not in blocks); the LD after it runs in the run
    // loop (LD, HLT: one instruction a block may hold), through the new DS.
    const prog2 = [
      enc('mov reg,imm', { a: R.EAX, imm: DS_B }),
      enc('mov sreg,reg', { a: S.DS, b: R.EAX }),
      enc('mov reg,sreg', { a: R.ESI, b: S.DS }),
      enc('ld reg,mem', { a: R.EDX, b: NO_BASE, c: 0xf, imm: 0x100 }),
      enc('hlt'),
    ];
    const results = [false, true].map((jit) => {
      const m = build(jit);
      m.cpu.exitVectors = 1 << VEC.GP;
      // three times: the block is compiled at the first visit of its offset and runs at the others
      const r = [];
      for (let turn = 0; turn < 3; turn++) {
        program(m, ...prog2);
        loadCache(m.cpu, S.DS, DS_A);
        m.cpu.reg[R.EDX] = 0;
        r.push(run(m.cpu, 100), m.cpu.reg[R.EDX]);
      }
      return { r, ran: m.cpu.jit?.ran ?? 0 };
    });
    expect(results[1]!.r).toEqual(results[0]!.r);
    expect(results[0]!.r).toEqual(
      [...Array(3)].flatMap(() => [{ reason: 'exit', vector: VEC.GP, errorCode: 0, executed: 4 }, 0x2200]),
    );
    expect(results[1]!.ran).toBe(4);
  });
});
