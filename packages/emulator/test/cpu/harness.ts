/**
 * A bare CPU in a known protected-mode state for table-driven tests: a GDT with code, conforming
 * code and data segments for every ring, a TSS with a stack per ring, an IDT, and instructions
 * encoded straight from the table (no assembler needed).
 */

import { expect } from 'vitest';
import { Cpu, type RunResult, SEG_EXEC, SEG_READ, SEG_USABLE, SEG_WRITE } from '../../src/cpu/cpu.js';
import {
  decodeDescriptor,
  gateDescriptor,
  isCode,
  isReadableCode,
  isWritableData,
  segLimit,
  segmentDescriptor,
  TYPE,
} from '../../src/cpu/descriptor.js';
import { run } from '../../src/cpu/exec.js';
import { fastPaths } from '../../src/cpu/fast-transfers.js';
import { CR0, FL, IOPL_SHIFT } from '../../src/cpu/flags.js';
import { BY_OPCODE, NO_BASE, NO_SEG, OP, R, S } from '../../src/cpu/isa.js';
import type { JitOptions } from '../../src/cpu/jit.js';
import { type InterruptSource, IoBus, type PortDevice } from '../../src/devices/bus.js';
import { Mmu } from '../../src/memory/mmu.js';
import { PhysicalMemory } from '../../src/memory/physical.js';

export const GDT = 0x1000;
export const IDT = 0x3000;
export const TSS_AT = 0x4000;
export const CODE_AT = 0x10000;
/** Top of the stack of ring n. */
export const stackTop = (ring: number): number => 0x80000 + ring * 0x10000;

/** GDT slots. */
export const SEL = {
  code: (ring: number) => ((1 + ring) << 3) | ring, // 0x08 0x11 0x1a 0x23: non-conforming code, DPL = ring
  conf: (ring: number) => ((5 + ring) << 3) | ring, // conforming code, DPL = ring
  data: (ring: number) => ((9 + ring) << 3) | ring, // data read/write, DPL = ring
  tss: 13 << 3,
  gate: 14 << 3, // free slots 14..20 for test gates and descriptors
  free: (i: number) => (14 + i) << 3,
} as const;

export function writeDesc(cpu: Cpu, at: number, [lo, hi]: [number, number]): void {
  cpu.mmu.phys.write32(at, lo);
  cpu.mmu.phys.write32(at + 4, hi);
}

export function setGdt(cpu: Cpu, index: number, desc: [number, number]): void {
  writeDesc(cpu, GDT + index * 8, desc);
}

export interface Machine {
  readonly cpu: Cpu;
  readonly io: IoBus;
  readonly phys: PhysicalMemory;
}

/**
 * Machines recycle the RAM of a ring of memories (a fresh 1 MiB per machine makes the tables
 * several times slower through allocation and page faults): a test may hold at most 8 machines.
 */
const RAM_POOL = Array.from({ length: 8 }, () => new PhysicalMemory({ ramBytes: 1 << 20 }));
let ramNext = 0;

/** The bus of machines that have no devices: building a bus costs more than the rest of a machine. */
const NO_DEVICES = new IoBus();

/**
 * A CPU at CPL `ring`, flat 1 MiB segments (or `limit`), a TSS with SSn:ESPn for every ring, an
 * empty IDT.
 */
export function machine(
  ring = 0,
  opts: { limit?: number; io?: IoBus; jit?: boolean | JitOptions } = {},
): Machine {
  const phys = RAM_POOL[ramNext]!;
  ramNext = (ramNext + 1) % RAM_POOL.length;
  phys.ram.fill(0);
  const mmu = new Mmu(phys);
  const io = opts.io ?? NO_DEVICES;
  const cpu = new Cpu({ mmu, io, ...(opts.jit === undefined ? {} : { jit: opts.jit }) });
  const limit = opts.limit ?? (1 << 20) - 1;
  for (let r = 0; r < 4; r++) {
    setGdt(cpu, 1 + r, segmentDescriptor({ base: 0, limit, type: 0xa, dpl: r })); // code exec/read
    setGdt(cpu, 5 + r, segmentDescriptor({ base: 0, limit, type: 0xe, dpl: r })); // conforming exec/read
    setGdt(cpu, 9 + r, segmentDescriptor({ base: 0, limit, type: 0x2, dpl: r })); // data read/write
    phys.write32(TSS_AT + 4 + 8 * r, stackTop(r));
    phys.write32(TSS_AT + 8 + 8 * r, SEL.data(r));
  }
  phys.write32(TSS_AT + 100, 104 << 16); // I/O map base = 104: the map starts right after the TSS
  setGdt(cpu, 13, segmentDescriptor({ base: TSS_AT, limit: 104 + 8192, type: TYPE.TSS, s: false, dpl: 0 }));
  cpu.gdtBase = GDT;
  cpu.gdtLimit = 32 * 8 - 1;
  cpu.idtBase = IDT;
  cpu.idtLimit = 256 * 8 - 1;
  enter(cpu, ring);
  cpu.trSel = SEL.tss;
  cpu.trBase = TSS_AT;
  cpu.trLimit = 104 + 8192;
  cpu.trUsable = true;
  return { cpu, io, phys };
}

/** Puts the CPU at CPL `ring` with CS, SS, DS, ES, FS, GS of that ring (as a far transfer would). */
export function enter(cpu: Cpu, ring: number): void {
  loadCache(cpu, S.CS, SEL.code(ring));
  for (const s of [S.SS, S.DS, S.ES, S.FS, S.GS]) loadCache(cpu, s, SEL.data(ring));
  cpu.reg[4] = stackTop(ring) - 0x100;
}

/**
 * Sets a segment register straight from its GDT descriptor, without any check (test set-up, as if
 * an earlier load had succeeded). The CPL is the RPL of what CS gets.
 */
export function loadCache(cpu: Cpu, seg: number, sel: number): void {
  const at = GDT + (sel & 0xfff8);
  const d = decodeDescriptor(cpu.mmu.phys.read32(at), cpu.mmu.phys.read32(at + 4));
  cpu.segSel[seg] = sel;
  cpu.segBase[seg] = d.lo;
  cpu.segLimit[seg] = segLimit(d);
  cpu.segHi[seg] = d.hi;
  cpu.segFlags[seg] = isCode(d)
    ? SEG_USABLE | SEG_EXEC | (isReadableCode(d) ? SEG_READ : 0)
    : SEG_USABLE | SEG_READ | (isWritableData(d) ? SEG_WRITE : 0);
}

/** Sets EFLAGS.IOPL and EFLAGS.IF. */
export function setFlags(cpu: Cpu, f: { iopl?: number; if?: boolean }): void {
  if (f.iopl !== undefined) cpu.eflags = ((cpu.eflags & ~FL.IOPL) | (f.iopl << IOPL_SHIFT)) >>> 0;
  if (f.if !== undefined) cpu.eflags = f.if ? (cpu.eflags | FL.IF) >>> 0 : (cpu.eflags & ~FL.IF) >>> 0;
}

/**
 * Encodes one instruction from its table name, e.g. enc('mov sreg,reg', { a: S.DS, b: 0 }). Fields
 * not given are 0, except byte 2 of a memory operand, which defaults to 0xF (no segment written).
 */
export function enc(
  name: string,
  f: { a?: number; b?: number; c?: number; sel?: number; imm?: number } = {},
): Uint8Array {
  const op = OP[name];
  if (op === undefined) throw new Error(`no instruction ${name}`);
  const out = new Uint8Array(8);
  out[0] = op;
  out[1] = ((f.b ?? 0) << 4) | (f.a ?? 0);
  if (f.sel !== undefined) {
    out[2] = f.sel & 0xff;
    out[3] = (f.sel >>> 8) & 0xff;
  } else out[2] = f.c ?? (BY_OPCODE[op]!.operands.includes('mem') ? NO_SEG : 0);
  new DataView(out.buffer).setUint32(4, (f.imm ?? 0) >>> 0, true);
  return out;
}

/** Memory-operand fields: [base + disp] in segment `seg` (default: none, i.e. DS or SS by base). */
export function mem(
  disp: number,
  seg: number = NO_SEG,
  base: number = NO_BASE,
): { b: number; c: number; imm: number } {
  return { b: base, c: seg, imm: disp };
}

/** Writes instructions at CS:EIP (= CODE_AT) and points EIP at them. */
export function program(m: Machine, ...code: Uint8Array[]): void {
  let at = CODE_AT;
  for (const c of code) {
    m.phys.writeBytes(at, c);
    at += c.length;
  }
  m.cpu.eip = CODE_AT;
}

/** Runs with every exception stopping the run (`exit`), so a test sees the raw vector and code. */
export function stepExit(m: Machine, n = 1): RunResult {
  m.cpu.exitVectors = 0xffffffff;
  return run(m.cpu, n);
}

export function idtGate(
  cpu: Cpu,
  vector: number,
  f: { type?: number; selector: number; offset: number; dpl: number; present?: boolean },
): void {
  writeDesc(cpu, IDT + vector * 8, gateDescriptor({ type: f.type ?? TYPE.INT_GATE, ...f }));
}

/** Writes instructions at a physical (= linear: the harness's code segments have base 0) address. */
export function code(m: Machine, at: number, ...instrs: Uint8Array[]): void {
  for (const c of instrs) {
    m.phys.writeBytes(at, c);
    at += c.length;
  }
}

/** `n` dwords of physical memory from `at` upwards. */
export function dwords(m: Machine, at: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => m.phys.read32(at + 4 * i));
}

/** The run result of an exception that stopped `stepExit` before the first instruction retired. */
export function exitFault(vector: number, errorCode?: number, executed = 0): RunResult {
  return { reason: 'exit', executed, vector, ...(errorCode === undefined ? {} : { errorCode }) };
}

/** Every piece of architectural state a fault must leave alone (CR2 is left out: #PF sets it). */
/**
 * Runs `a` (the reference: no blocks) and `b` the same budget `n` and expects the same result and
 * CPU state (`what` names the step in a failure).
 */
export function lockstep(a: Machine, b: Machine): (n: number, what?: string) => RunResult {
  return (n, what) => {
    const ra = run(a.cpu, n);
    expect(run(b.cpu, n), what).toEqual(ra);
    expect(cpuState(b.cpu), what).toEqual(cpuState(a.cpu));
    return ra;
  };
}

/**
 * What the random differential tests share: runs `a` (the reference: no blocks) and `b` in lockstep
 * until `total` instructions, each run's budget random (1 to `small` with probability `pSmall`, else
 * 1 to `max`, drawn from `rand`), expecting the same result and `observe` view after each; `before`
 * runs before each run, `after` after it (false: stop). `what` names the case in a failure.
 */
export function randomLockstep<M extends Machine>(
  a: M,
  b: M,
  o: {
    readonly rand: () => number;
    readonly total: number;
    readonly pSmall: number;
    readonly small: number;
    readonly max: number;
    readonly observe: (m: M) => unknown;
    readonly what: string;
    readonly before?: () => void;
    readonly after?: (r: RunResult) => boolean | undefined;
  },
): void {
  let total = 0;
  while (total < o.total) {
    const n = 1 + Math.floor(o.rand() * (o.rand() < o.pSmall ? o.small : o.max));
    o.before?.();
    const ra = run(a.cpu, n);
    const rb = run(b.cpu, n);
    expect(rb, `${o.what} after ${total}`).toEqual(ra);
    expect(o.observe(b), `${o.what} after ${total}`).toEqual(o.observe(a));
    total += n;
    if (o.after?.(ra) === false) break;
  }
}

export function cpuState(cpu: Cpu): Record<string, unknown> {
  return {
    reg: Array.from(cpu.reg, (v) => v >>> 0),
    eip: cpu.eip,
    eflags: cpu.eflags,
    segSel: Array.from(cpu.segSel),
    segBase: Array.from(cpu.segBase),
    segLimit: Array.from(cpu.segLimit),
    segHi: Array.from(cpu.segHi),
    segFlags: Array.from(cpu.segFlags),
    gdtr: [cpu.gdtBase, cpu.gdtLimit],
    idtr: [cpu.idtBase, cpu.idtLimit],
    ldtr: [cpu.ldtSel, cpu.ldtBase, cpu.ldtLimit, cpu.ldtUsable],
    tr: [cpu.trSel, cpu.trBase, cpu.trLimit, cpu.trUsable],
    cr: [cpu.cr0, cpu.mmu.cr3, cpu.cr4],
    halted: cpu.halted,
  };
}

export interface Snapshot {
  readonly state: Record<string, unknown>;
  readonly ram: Uint8Array;
}

/**
 * Snapshots reuse a few RAM-sized buffers: copying into an existing buffer is an order of magnitude
 * cheaper than allocating one, and a test compares against at most a couple of snapshots at once.
 */
const SNAP_RAM = Array.from({ length: 4 }, () => new Uint8Array(1 << 20));
let snapNext = 0;

export function snapshot(m: Machine): Snapshot {
  const ram = SNAP_RAM[snapNext]!;
  snapNext = (snapNext + 1) % SNAP_RAM.length;
  ram.set(m.phys.ram);
  return { state: cpuState(m.cpu), ram };
}

/** Address of the first byte that differs, or -1. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))) {
    return -1;
  }
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/** The fields of two `cpuState` results that differ, as `field: before -> after` lines. */
export function stateDiff(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const k of Object.keys(before)) {
    const a = JSON.stringify(before[k]);
    const b = JSON.stringify(after[k]);
    if (a !== b) out.push(`${k}: ${a} -> ${b}`);
  }
  return out;
}

/** Asserts that registers, segment caches, system registers and all of RAM are as in `before`. */
export function expectUnchanged(m: Machine, before: Snapshot, name: string): void {
  const changed = {
    state: stateDiff(before.state, cpuState(m.cpu)),
    firstRamByte: firstDiff(m.phys.ram, before.ram),
  };
  expect(changed, `${name}: nothing changed`).toEqual({ state: [], firstRamByte: -1 });
}

/** An interrupt controller stub: one pending vector, raised when `when()` holds; records acknowledges. */
export class IrqStub implements InterruptSource {
  readonly acked: number[] = [];
  constructor(
    public vector = -1,
    private readonly when: () => boolean = () => true,
  ) {}

  pending(): number {
    return this.vector >= 0 && this.when() ? this.vector : -1;
  }

  acknowledge(vector: number): void {
    this.acked.push(vector);
    this.vector = -1;
  }
}

/**
 * An IrqStub that says when it has nothing pending (`hasPending`): the run loop then need not go
 * one instruction at a time while IF = 1, and blocks run (jit.ts).
 */
export class PolledIrq extends IrqStub {
  hasPending(): boolean {
    return this.vector >= 0;
  }
}

/** `m` with IF set and a PolledIrq attached (interrupts a differential test raises between runs). */
export function withPolledIrq(m: Machine): Machine & { irq: PolledIrq } {
  m.cpu.eflags |= FL.IF;
  const irq = new PolledIrq();
  m.cpu.irq = irq;
  return Object.assign(m, { irq });
}

/** Fault handlers, one per vector, at HANDLERS + 0x40 * vector (ring 0): see {@link faultHandlers}. */
export const HANDLERS = 0x18000;

/**
 * Handlers for vectors 0-31 that resume after the faulting instruction (for a vector with an error
 * code, it goes), counting the faults in EBP, after `first` (an access of the handler's own, say).
 * With `int3`, INT3's gate has DPL 3 and its handler returns where the trap left it.
 */
export function faultHandlers(m: Machine, opts: { first?: Uint8Array[]; int3?: boolean } = {}): void {
  for (let v = 0; v < 32; v++) {
    const at = HANDLERS + 0x40 * v;
    const trap = opts.int3 === true && v === 3;
    idtGate(m.cpu, v, { selector: SEL.code(0), offset: at, dpl: trap ? 3 : 0 });
    const withCode = v === 8 || (v >= 10 && v <= 14);
    code(
      m,
      at,
      ...(opts.first ?? []),
      ...(withCode ? [enc('add reg,imm', { a: R.ESP, imm: 4 })] : []),
      enc('inc reg', { a: R.EBP }),
      ...(trap
        ? []
        : [
            enc('ld reg,mem', { a: R.ESI, b: R.ESP, c: 0xf, imm: 0 }), // the return EIP
            enc('add reg,imm', { a: R.ESI, imm: 8 }),
            enc('st mem,reg', { a: R.ESI, b: R.ESP, c: 0xf, imm: 0 }),
          ]),
      enc('iret'),
    );
  }
}

/**
 * What a differential test compares between two machines: the CPU state, CR2, the instruction
 * count, and `regions` of physical memory (name: [address, bytes] pairs, concatenated).
 */
export function machineView(
  m: Machine,
  regions: Record<string, readonly (readonly [number, number])[]>,
): Record<string, unknown> {
  const view: Record<string, unknown> = {
    ...cpuState(m.cpu),
    cr2: m.cpu.mmu.cr2,
    instructions: m.cpu.instructions,
  };
  for (const [name, parts] of Object.entries(regions)) {
    view[name] = parts
      .map(([at, n]) => Buffer.from(m.phys.ram.subarray(at, at + n)).toString('base64'))
      .join('');
  }
  return view;
}

/** The page below the top of ring 0's and ring 3's stacks, and the page tables: every differential test compares them. */
export function stacksAndTables(): Record<string, readonly (readonly [number, number])[]> {
  return {
    stacks: [
      [stackTop(0) - 0x1000, 0x1000],
      [stackTop(3) - 0x1000, 0x1000],
    ],
    tables: [
      [PD, 0x1000],
      [PT0, 0x1000],
    ],
  };
}

// ---- random programs (jit.test.ts, jit-far.test.ts) ----

/** mulberry32: a seeded generator, so every random program is the same on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Operand values at the edges of the flags' rules. */
export const EDGES = [0, 1, 2, 31, 32, 0x7f, 0x80, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
export const ALU = ['add', 'sub', 'and', 'or', 'xor', 'cmp', 'test'];
/** The conditional jumps, in opcode order (isa.ts). */
export { JCC } from '../../src/cpu/isa.js';

/** A port device recording every access; reads return `0xC0DE0000 | port`. */
export class PortLog implements PortDevice {
  readonly name = 'port-log';
  readonly log: string[] = [];
  read(port: number): number {
    this.log.push(`in ${port.toString(16)}`);
    return (0xc0de_0000 | port) >>> 0;
  }
  write(port: number, value: number): void {
    this.log.push(`out ${port.toString(16)} ${value.toString(16)}`);
  }
}

/** Page directory and the first page table (identity map of the 1 MiB of RAM, P|W|U). */
export const PD = 0xc0000;
export const PT0 = 0xc1000;
/** A second page table, mapped by PDE 1 (linear 0x400000-0x7FFFFF); empty until a test fills it. */
export const PT1 = 0xc2000;
export const PG = { P: 1, W: 2, U: 4, A: 0x20, D: 0x40 } as const;

/** Turns paging on (CR3 = PD, CR0.PG, CR0.WP as given) over the identity map, as MOV CR0 would. */
export function enablePaging(m: Machine, opts: { wp?: boolean } = {}): void {
  const { phys, cpu } = m;
  phys.write32(PD, PT0 | PG.P | PG.W | PG.U);
  phys.write32(PD + 4, PT1 | PG.P | PG.W | PG.U);
  for (let p = 0; p < 256; p++) phys.write32(PT0 + 4 * p, (p << 12) | PG.P | PG.W | PG.U);
  cpu.cr0 = (cpu.cr0 | CR0.PG | (opts.wp ? CR0.WP : 0)) >>> 0;
  cpu.mmu.cr3 = PD;
  cpu.mmu.paging = true;
  cpu.mmu.writeProtect = opts.wp ?? false;
  cpu.mmu.flush();
}

/** Code and data segment types (x86 type nibble) by name, for tables that walk every kind. */
export const KIND = {
  'data rw': 0x2,
  'data ro': 0x0,
  'code r': 0xa,
  'code x': 0x8,
  'conforming r': 0xe,
  'conforming x': 0xc,
} as const;
export type Kind = keyof typeof KIND;
export const KINDS = Object.keys(KIND) as Kind[];
export const isDataKind = (k: Kind): boolean => k.startsWith('data');
export const isConformingKind = (k: Kind): boolean => k.startsWith('conforming');
export const isReadableKind = (k: Kind): boolean => isDataKind(k) || k.endsWith(' r');
export const isWritableKind = (k: Kind): boolean => k === 'data rw';

/** The error code of a selector fault (SDM §6.13): the selector's index and TI, RPL bits replaced by EXT/IDT. */
export const errSel = (selector: number, ext = 0): number => (selector & 0xfffc) | ext;
/** The error code of a fault that names an IDT vector (IDT bit set). */
export const errIdt = (vector: number, ext = 0): number => (vector << 3) | 2 | ext;

/**
 * Builds a machine and runs `step` on it twice, with the fast paths of fast-transfers.ts and
 * without; both runs must agree exactly (run result, CPU state with CR2 and shutdown, RAM). Returns
 * the run without them, the general path's.
 */
export function bothWays<R>(build: () => Machine, step: (m: Machine) => R): { m: Machine; r: R } {
  const results = [true, false].map((fast) => {
    fastPaths.enabled = fast;
    try {
      const m = build();
      const r = step(m);
      return { m, r, state: { ...cpuState(m.cpu), cr2: m.cpu.mmu.cr2, shutdown: m.cpu.shutdown } };
    } finally {
      fastPaths.enabled = true;
    }
  });
  const [f, g] = results as [(typeof results)[0], (typeof results)[0]];
  expect(f.r, 'run result').toEqual(g.r);
  expect(stateDiff(g.state, f.state), 'CPU state').toEqual([]);
  expect(firstDiff(f.m.phys.ram, g.m.phys.ram), 'first RAM byte that differs').toBe(-1);
  return { m: g.m, r: g.r };
}
