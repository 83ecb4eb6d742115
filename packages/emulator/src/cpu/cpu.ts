/**
 * The CPU: registers, segment registers with their hidden descriptor caches, the system registers,
 * and the run loop. Memory is reached only through the MMU (src/memory) and devices only through
 * the I/O bus (src/devices). The protection rules (reference §3.1-§3.6) live in segments.ts
 * (loads, descriptor fetch), transfers.ts (far JMP/CALL/RET/IRET, interrupt delivery) and exec.ts
 * (the instruction switch); this file holds the state they share and the checked memory accesses.
 *
 * Speed (issue 3): the checked accesses have fast paths for the common case, an aligned dword in RAM
 * with paging off or a TLB hit that allows the access. They read the MMU's TLB (never fill it) and
 * RAM's dword view directly, applying Mmu.translate's rules to the hit; everything else (a miss, a
 * fault, a page-crossing or unaligned dword, ROM, the empty bus) goes through the MMU as before.
 */
import type { InterruptSource, IoBus } from '../devices/bus.js';
import { type Mmu, TLB_SIZE } from '../memory/mmu.js';
import { GateMemo, ReturnMemo } from './fast-transfers.js';
import { CpuFault, fault, VEC } from './faults.js';
import { CR0, CR4, FL } from './flags.js';
import { MEM_SEGMENT, S } from './isa.js';
import { CTX_SIZE, Jit, type JitOptions, type JitPage } from './jit.js';

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
  /** For 'exit': a software interrupt (INT n, INT3) stopped by `exitSoftware`, EIP at the INT. */
  readonly software?: true;
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
  /** The block compiler (jit.ts): on by default; false runs every instruction in the run loop. */
  readonly jit?: boolean | JitOptions;
}

/**
 * A code window of the run loop (exec.ts): the EIPs in [lo, lo + len) fetch their 8 bytes from RAM
 * at EIP + delta (modulo 2^32), for the key it was built for: CS base and limit, CPL 3 or not,
 * paging, MMU generation. A cache, not state: it is checked against the key before every use.
 */
export class CodeWindow {
  lo = 0;
  len = 0;
  delta = 0;
  base = 0;
  limit = 0;
  user = false;
  paging = false;
  gen = -1;
  /** The compiled blocks of the window's RAM page (jit.ts), or null. */
  jit: JitPage | null = null;

  fits(base: number, limit: number, user: boolean, paging: boolean, gen: number): boolean {
    return (
      this.base === base &&
      this.limit === limit &&
      this.user === user &&
      this.paging === paging &&
      this.gen === gen
    );
  }

  /**
   * Rebuilds the window (the run loop's fetch path). Whoever changes a window's contents also bumps
   * `Cpu.winEpoch`: traces keep which window the prologue picks while it stays (jit.ts WindowPick).
   */
  set(
    lo: number,
    len: number,
    delta: number,
    base: number,
    limit: number,
    user: boolean,
    paging: boolean,
    gen: number,
  ): void {
    this.lo = lo;
    this.len = len;
    this.delta = delta;
    this.base = base;
    this.limit = limit;
    this.user = user;
    this.paging = paging;
    this.gen = gen;
  }
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
  /** INT n and INT3 stop `run()` with reason 'exit' (and `software`) before delivery, EIP at the INT. */
  exitSoftware = false;
  /**
   * Set during an instruction by the host side of a device access (the machine, when the guest
   * reaches a timed device): `run()` returns with reason 'budget' after that instruction, so the
   * device's new next event can bound the next slice (exact device time, machine.ts). Cleared when
   * `run()` starts and when it stops for it.
   */
  endRun = false;
  /** Linear addresses at which `run()` stops before executing (host breakpoints). */
  readonly breakpoints = new Set<number>();
  /** Instructions retired since reset. */
  instructions = 0;
  /** Set by a triple fault; cleared by reset. */
  shutdown = false;
  readonly mmu: Mmu;
  readonly io: IoBus;
  irq: InterruptSource | undefined;
  /** Called before every instruction when set (the instruction trace); undefined keeps the loop lean. */
  beforeStep: ((cpu: Cpu) => void) | undefined = undefined;
  /** Called after every instruction when set (tracing); undefined keeps the loop lean. */
  trace: ((cpu: Cpu, eip: number) => void) | undefined = undefined;
  // Fast-path views of the memory this CPU reaches through its MMU (fixed for its lifetime): RAM as
  // dwords and the MMU's TLB. The fast paths below only *read* the TLB; anything but an aligned RAM
  // dword with a TLB hit (or paging off) takes the general path, so every check stays in one place.
  readonly ram32: Int32Array;
  readonly ramBytes: number;
  private readonly tlbTag: Int32Array;
  private readonly tlbEntry: Int32Array;
  /**
   * The memory-operand segment table of isa.ts (strict decoding), here so that the run loop loads
   * it from the CPU as it does `reg` and `ram32`: a module-level constant is loaded again, with a
   * check, at every use in optimised code.
   */
  readonly memSegment: Uint8Array = MEM_SEGMENT;
  /** Dword 0 of the descriptor last read by `readDescriptor` (segments.ts); scratch, not state. */
  descLo = 0;
  /** The run loop's two code windows (exec.ts) and which one is current (0: winA, 1: winB). */
  readonly winA = new CodeWindow();
  readonly winB = new CodeWindow();
  winCur = 0;
  /** Counts the changes of the windows' contents (a window built or emptied: exec.ts; jit.ts WindowPick). */
  winEpoch = 0;
  /** The block compiler (jit.ts), or null when it is off. */
  readonly jit: Jit | null;
  /** The current code window's page of blocks (CodeWindow.jit), or null. */
  jitPage: JitPage | null = null;
  /** What the run loop's prologue caches for blocks (jit.ts, CTX). */
  readonly jitCtx = new Uint32Array(CTX_SIZE);
  /** Set by a block that throws: the index of the instruction that faulted (-1: none). */
  jitAt = -1;
  /**
   * The last far transfer of each kind the fast paths memoised (fast-transfers.ts, Memo): an inward
   * CALLF through a call gate; an inward software interrupt (INT n, INT3: a system call) and an
   * inward delivery of anything else (an interrupt, an exception), apart so that a timer does not
   * evict the system call; a RETF and an IRET to an outer ring.
   */
  readonly callMemo = new GateMemo();
  readonly intMemo = new GateMemo();
  readonly deliverMemo = new GateMemo();
  readonly retfMemo = new ReturnMemo();
  readonly iretMemo = new ReturnMemo();

  constructor(opts: CpuOptions) {
    this.mmu = opts.mmu;
    this.io = opts.io;
    this.irq = opts.irq;
    this.ram32 = opts.mmu.phys.ram32;
    this.ramBytes = opts.mmu.phys.ram.length;
    this.tlbTag = opts.mmu.tlbTag;
    this.tlbEntry = opts.mmu.tlbEntry;
    this.jit = opts.jit === false ? null : new Jit(opts.jit === true ? {} : opts.jit);
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
    return this.segSel[1]! & 3; // CS
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

  /**
   * Checked dword read at seg:offset: the usability, rights and limit checks of `linear` (inline
   * when they pass; `linear` raises the fault), then `readLinear32`.
   */
  read32(seg: number, offset: number): number {
    const off = offset >>> 0;
    const lin =
      (this.segFlags[seg]! & 3) === 3 && // SEG_USABLE | SEG_READ
      off <= this.segLimit[seg]! - 3
        ? (this.segBase[seg]! + off) >>> 0
        : this.linear(seg, offset, 4, false);
    return this.readLinearI32(lin, (this.segSel[1]! & 3) === 3) >>> 0; // CPL 3
  }

  read8(seg: number, offset: number): number {
    const lin = this.linear(seg, offset, 1, false);
    return this.mmu.phys.read8(this.mmu.translate(lin, false, this.cpl === 3));
  }

  /** Checked dword write at seg:offset, as `read32`. */
  write32(seg: number, offset: number, value: number): void {
    const off = offset >>> 0;
    const lin =
      (this.segFlags[seg]! & 5) === 5 && // SEG_USABLE | SEG_WRITE
      off <= this.segLimit[seg]! - 3
        ? (this.segBase[seg]! + off) >>> 0
        : this.linear(seg, offset, 4, true);
    this.writeLinear32(lin, value, (this.segSel[1]! & 3) === 3); // CPL 3
  }

  write8(seg: number, offset: number, value: number): void {
    const lin = this.linear(seg, offset, 1, true);
    this.mmu.phys.write8(this.mmu.translate(lin, true, this.cpl === 3), value & 0xff);
  }

  /**
   * The dword at a linear address, read with the privilege of `user` (CPL 3) code. The fast path
   * (an aligned address, paging off or a TLB hit that allows the read, RAM) is `Mmu.translate` and
   * `PhysicalMemory.read32` specialised; anything else takes them, and they raise #PF.
   */
  readLinear32(lin: number, user: boolean): number {
    return this.readLinearI32(lin, user) >>> 0;
  }

  /**
   * `readLinear32` as a signed 32-bit value: the form the CPU's own paths use, since V8 must box an
   * unsigned value of 2^31 or more (a descriptor's dword 1 always is) whenever it crosses a call.
   */
  readLinearI32(lin: number, user: boolean): number {
    if ((lin & 3) === 0) {
      let p = lin;
      if (this.mmu.paging) {
        const page = lin >>> 12;
        const i = page & (TLB_SIZE - 1);
        const e = this.tlbEntry[i]!;
        if (this.tlbTag[i] !== page + 1 || (user && !(e & 4))) return this.readLinearSlow(lin, user) | 0;
        p = ((e & ~0xfff) | (lin & 0xfff)) >>> 0;
      }
      if (p < this.ramBytes) return this.ram32[p >>> 2]!;
    }
    return this.readLinearSlow(lin, user) | 0;
  }

  private readLinearSlow(lin: number, user: boolean): number {
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

  /**
   * The `ram32` index of `bytes` (a multiple of 4, at most 4096) at a linear address, if `user`
   * (CPL 3) code can read them, or with `write` write them, with no fault possible and they are in
   * RAM: aligned, in one page, paging off or a TLB hit that allows the access (Mmu.translate's
   * rules). Else -1, and the caller takes the general path, dword by dword. For the stack frames of
   * far transfers (transfers.ts).
   */
  frameIndex(lin: number, bytes: number, write: boolean, user: boolean): number {
    if ((lin & 3) !== 0 || (lin & 0xfff) + bytes > 0x1000) return -1;
    let p = lin;
    const mmu = this.mmu;
    if (mmu.paging) {
      const page = lin >>> 12;
      const i = page & (TLB_SIZE - 1);
      const e = this.tlbEntry[i]!;
      if (this.tlbTag[i] !== page + 1 || (user && !(e & 4))) return -1;
      if (write && !((e & 2 || (!user && !mmu.writeProtect)) && e & 0x40)) return -1;
      p = ((e & ~0xfff) | (lin & 0xfff)) >>> 0;
    }
    return p + bytes <= this.ramBytes ? p >>> 2 : -1;
  }

  /** `frameIndex` of a read of `bytes` at SS:off, if SS is usable, readable and `off` within its limit. */
  stackIndex(off: number, bytes: number): number {
    if ((this.segFlags[2]! & 3) !== 3 || off + bytes - 1 > this.segLimit[2]!) return -1; // SS usable, read
    return this.frameIndex((this.segBase[2]! + off) >>> 0, bytes, false, (this.segSel[1]! & 3) === 3);
  }

  /** Writes a dword at a linear address with the privilege of `user` code; fast path as `readLinear32`. */
  writeLinear32(lin: number, value: number, user: boolean): void {
    if ((lin & 3) === 0) {
      let p = lin;
      const mmu = this.mmu;
      if (mmu.paging) {
        const page = lin >>> 12;
        const i = page & (TLB_SIZE - 1);
        const e = this.tlbEntry[i]!;
        // As Mmu.translate: U for user code; W (or supervisor without CR0.WP); dirty already set.
        if (
          this.tlbTag[i] !== page + 1 ||
          (user && !(e & 4)) ||
          !((e & 2 || (!user && !mmu.writeProtect)) && e & 0x40)
        ) {
          this.writeLinearSlow(lin, value, user);
          return;
        }
        p = ((e & ~0xfff) | (lin & 0xfff)) >>> 0;
      }
      if (p < this.ramBytes) {
        this.ram32[p >>> 2] = value;
        return;
      }
    }
    this.writeLinearSlow(lin, value, user);
  }

  private writeLinearSlow(lin: number, value: number, user: boolean): void {
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
    return this.readLinearI32(lin, false) >>> 0;
  }

  /** `readSystem32` as a signed 32-bit value (see `readLinearI32`). */
  readSystemI32(lin: number): number {
    return this.readLinearI32(lin, false);
  }

  writeSystem32(lin: number, value: number): void {
    this.writeLinear32(lin, value, false);
  }

  // ---- stack ----

  get esp(): number {
    return this.reg[4]! >>> 0;
  }

  push32(value: number): void {
    const esp = (this.reg[4]! - 4) >>> 0;
    this.write32(2, esp, value); // SS
    this.reg[4] = esp;
  }

  pop32(): number {
    const esp = this.reg[4]!;
    const v = this.read32(2, esp); // SS
    this.reg[4] = (esp + 4) | 0;
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
