/**
 * The CPU: registers, segment registers with their hidden descriptor caches, the system registers,
 * and the run loop. Memory is reached only through the MMU (src/memory) and devices only through
 * the I/O bus (src/devices). The protection rules (reference §3.1-§3.6) live in segments.ts
 * (loads, descriptor fetch), transfers.ts (far JMP/CALL/RET/IRET, interrupt delivery) and exec.ts
 * (the instruction switch); this file holds the state they share and the checked memory accesses.
 */
import type { InterruptSource, IoBus } from '../devices/bus.js';
import type { Mmu } from '../memory/mmu.js';
import { CpuFault, fault, VEC } from './faults.js';
import { CR0, CR4, FL } from './flags.js';
import { S } from './isa.js';

/** Why `run()` returned. */
export type StopReason =
  /** the instruction budget is spent */
  | 'budget'
  /** HLT with no interrupt to take */
  | 'halt'
  /** a fault while delivering a double fault (triple fault): the machine needs a reset */
  | 'shutdown'
  /** EIP reached a host breakpoint (before executing it) */
  | 'breakpoint'
  /** an exception whose vector is in `exitVectors` (for the VM manager): not delivered */
  | 'exit';

export interface RunResult {
  readonly reason: StopReason;
  readonly executed: number;
  /** For 'exit' and 'shutdown': the exception. */
  readonly vector?: number;
  readonly errorCode?: number;
}

/** Segment cache flag bits. */
export const SEG_USABLE = 1;
export const SEG_READ = 2;
export const SEG_WRITE = 4;
export const SEG_EXEC = 8;

export interface CpuOptions {
  readonly mmu: Mmu;
  readonly io: IoBus;
  readonly irq?: InterruptSource;
}

export class Cpu {
  /** General registers; read unsigned with `>>> 0`. */
  readonly reg = new Int32Array(8);
  eip = 0;
  eflags = FL.FIXED;
  // Segment registers: visible selector and hidden cache (base, byte limit, descriptor dword 1, flags).
  readonly segSel = new Uint16Array(6);
  readonly segBase = new Uint32Array(6);
  readonly segLimit = new Uint32Array(6);
  readonly segHi = new Uint32Array(6);
  readonly segFlags = new Uint8Array(6);
  gdtBase = 0;
  gdtLimit = 0;
  idtBase = 0;
  idtLimit = 0;
  ldtSel = 0;
  ldtBase = 0;
  ldtLimit = 0;
  ldtUsable = false;
  trSel = 0;
  trBase = 0;
  trLimit = 0;
  trUsable = false;
  cr0 = CR0.PE | CR0.ET;
  cr4 = 0;
  halted = false;
  /** Interrupts are not taken before the next instruction (after STI, MOV SS, POP SS). */
  interruptShadow = false;
  /** Exceptions whose bit is set stop `run()` with reason 'exit' instead of being delivered. */
  exitVectors = 0;
  /** Linear addresses at which `run()` stops before executing (host breakpoints). */
  readonly breakpoints = new Set<number>();
  /** Instructions retired since reset. */
  instructions = 0;
  /** Set by a triple fault; cleared by reset. */
  shutdown = false;
  readonly mmu: Mmu;
  readonly io: IoBus;
  irq: InterruptSource | undefined;
  // Instruction-fetch cache: the physical page of the current code page, valid for one linear
  // page, one MMU generation and one privilege (user or supervisor); a TLB entry of our own.
  fetchPage = -1;
  fetchGen = -1;
  fetchUser = false;
  fetchPhys = 0;
  /** Called before every instruction when set (the instruction trace); undefined keeps the loop lean. */
  beforeStep: ((cpu: Cpu) => void) | undefined;
  /** Called after every instruction when set (tracing); undefined keeps the loop lean. */
  trace: ((cpu: Cpu, eip: number) => void) | undefined;

  constructor(opts: CpuOptions) {
    this.mmu = opts.mmu;
    this.io = opts.io;
    this.irq = opts.irq;
    this.reset();
  }

  /** Power-on state (BOOT-6): CS base 0xFFFF0000, EIP 0xFFF0, ring 0, flat 64 KiB data caches. */
  reset(): void {
    this.reg.fill(0);
    this.eip = 0xfff0;
    this.eflags = FL.FIXED;
    for (let s = 0; s < 6; s++) {
      this.segSel[s] = 0;
      this.segBase[s] = 0;
      this.segLimit[s] = 0xffff;
      this.segHi[s] = 0x9300_0000 >>> 0; // present, DPL 0, data read/write
      this.segFlags[s] = SEG_USABLE | SEG_READ | SEG_WRITE;
    }
    this.segSel[S.CS] = 0xf000;
    this.segBase[S.CS] = 0xffff_0000;
    this.segHi[S.CS] = 0x9b00_0000 >>> 0; // present, DPL 0, code execute/read
    this.segFlags[S.CS] = SEG_USABLE | SEG_READ | SEG_EXEC;
    this.gdtBase = 0;
    this.gdtLimit = 0xffff;
    this.idtBase = 0;
    this.idtLimit = 0x3ff;
    this.ldtSel = this.ldtBase = this.ldtLimit = 0;
    this.ldtUsable = false;
    this.trSel = this.trBase = this.trLimit = 0;
    this.trUsable = false;
    this.cr0 = CR0.PE | CR0.ET;
    this.cr4 = 0;
    this.mmu.paging = false;
    this.mmu.writeProtect = false;
    this.mmu.cr3 = 0;
    this.mmu.cr2 = 0;
    this.mmu.flush();
    this.halted = false;
    this.interruptShadow = false;
    this.shutdown = false;
    this.instructions = 0;
  }

  /** Current privilege level: the RPL of CS. */
  get cpl(): number {
    return this.segSel[S.CS]! & 3;
  }

  get iopl(): number {
    return (this.eflags >>> 12) & 3;
  }

  get umip(): boolean {
    return (this.cr4 & CR4.UMIP) !== 0;
  }

  // ---- checked segment-relative memory access (MACH-4: every access is checked) ----

  /** Linear address of `size` bytes at seg:offset, after the usability, limit and rights checks. */
  linear(seg: number, offset: number, size: number, write: boolean): number {
    const f = this.segFlags[seg]!;
    const off = offset >>> 0;
    if (
      !(f & SEG_USABLE) ||
      (write ? !(f & SEG_WRITE) : !(f & SEG_READ)) ||
      off + size - 1 > this.segLimit[seg]!
    ) {
      throw fault(seg === S.SS ? VEC.SS : VEC.GP, 0);
    }
    return (this.segBase[seg]! + off) >>> 0;
  }

  read32(seg: number, offset: number): number {
    return this.readLinear32(this.linear(seg, offset, 4, false), this.cpl === 3);
  }

  read8(seg: number, offset: number): number {
    const lin = this.linear(seg, offset, 1, false);
    return this.mmu.phys.read8(this.mmu.translate(lin, false, this.cpl === 3));
  }

  write32(seg: number, offset: number, value: number): void {
    this.writeLinear32(this.linear(seg, offset, 4, true), value, this.cpl === 3);
  }

  write8(seg: number, offset: number, value: number): void {
    const lin = this.linear(seg, offset, 1, true);
    this.mmu.phys.write8(this.mmu.translate(lin, true, this.cpl === 3), value & 0xff);
  }

  readLinear32(lin: number, user: boolean): number {
    const mmu = this.mmu;
    if ((lin & 0xfff) <= 0xffc) return mmu.phys.read32(mmu.translate(lin, false, user));
    // Crosses a page: translate both pages first, so a fault leaves nothing half done.
    const a = mmu.translate(lin, false, user);
    const b = mmu.translate((lin + 3) >>> 0, false, user);
    const n = 0x1000 - (lin & 0xfff);
    let v = 0;
    for (let i = 0; i < 4; i++) v |= mmu.phys.read8(i < n ? a + i : b - 3 + i) << (8 * i);
    return v >>> 0;
  }

  writeLinear32(lin: number, value: number, user: boolean): void {
    const mmu = this.mmu;
    if ((lin & 0xfff) <= 0xffc) {
      mmu.phys.write32(mmu.translate(lin, true, user), value);
      return;
    }
    const a = mmu.translate(lin, true, user);
    const b = mmu.translate((lin + 3) >>> 0, true, user);
    const n = 0x1000 - (lin & 0xfff);
    for (let i = 0; i < 4; i++) mmu.phys.write8(i < n ? a + i : b - 3 + i, (value >>> (8 * i)) & 0xff);
  }

  /** Supervisor (system) accesses: descriptor tables and the TSS are read as CPL 0 reads them. */
  readSystem32(lin: number): number {
    return this.readLinear32(lin, false);
  }

  writeSystem32(lin: number, value: number): void {
    this.writeLinear32(lin, value, false);
  }

  // ---- stack ----

  get esp(): number {
    return this.reg[4]! >>> 0;
  }

  push32(value: number): void {
    const esp = (this.esp - 4) >>> 0;
    this.write32(S.SS, esp, value);
    this.reg[4] = esp;
  }

  pop32(): number {
    const v = this.read32(S.SS, this.esp);
    this.reg[4] = (this.esp + 4) | 0;
    return v;
  }

  /** Throws #GP(0) unless CPL = 0. */
  requireCpl0(): void {
    if (this.cpl !== 0) throw fault(VEC.GP, 0);
  }

  isFault(e: unknown): e is CpuFault {
    return e instanceof CpuFault;
  }
}
