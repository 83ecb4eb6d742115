/**
 * A bare CPU in a known protected-mode state for table-driven tests: a GDT with code, conforming
 * code and data segments for every ring, a TSS with a stack per ring, an IDT, and instructions
 * encoded straight from the table (no assembler needed).
 */
import {
  Cpu,
  gateDescriptor,
  IoBus,
  Mmu,
  OP,
  PhysicalMemory,
  type RunResult,
  run,
  S,
  segmentDescriptor,
  TYPE,
} from '@clefnet/emulator';

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

/** A CPU at CPL `ring`, flat 1 MiB segments, a TSS with SSn:ESPn for every ring, an empty IDT. */
export function machine(ring = 0): Machine {
  const phys = new PhysicalMemory({ ramBytes: 1 << 20 });
  const mmu = new Mmu(phys);
  const io = new IoBus();
  const cpu = new Cpu({ mmu, io });
  const limit = (1 << 20) - 1;
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

/** Puts the CPU at CPL `ring` with CS, SS, DS, ES of that ring (as a far transfer would). */
export function enter(cpu: Cpu, ring: number): void {
  const load = (seg: number, sel: number, index: number) => {
    const lo = cpu.mmu.phys.read32(GDT + index * 8);
    const hi = cpu.mmu.phys.read32(GDT + index * 8 + 4);
    cpu.segSel[seg] = sel;
    cpu.segBase[seg] = lo;
    cpu.segLimit[seg] = hi & 0x800000 ? ((hi & 0xfffff) << 12) | 0xfff : hi & 0xfffff;
    cpu.segHi[seg] = hi;
    cpu.segFlags[seg] = seg === S.CS ? 1 | 2 | 8 : 1 | 2 | 4;
  };
  load(S.CS, SEL.code(ring), 1 + ring);
  for (const s of [S.SS, S.DS, S.ES, S.FS, S.GS]) load(s, SEL.data(ring), 9 + ring);
  cpu.reg[4] = stackTop(ring) - 0x100;
}

/** Encodes one instruction from its table name, e.g. enc('mov sreg,reg', { a: S.DS, b: 0 }). */
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
  } else out[2] = f.c ?? 0xf;
  new DataView(out.buffer).setUint32(4, (f.imm ?? 0) >>> 0, true);
  return out;
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
