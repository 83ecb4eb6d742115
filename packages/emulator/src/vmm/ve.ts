/**
 * A virtual environment (VE): a guest that believes it owns a four-ring machine, run natively on the
 * real CPU in real rings 2 and 3 (ring compression, RING-9), with the VM manager in real ring 0.
 *
 * Two CPUs take part:
 * - the **real CPU** runs the guest's instructions directly, against the shadow descriptor table of
 *   the current virtual ring (sdt.ts), shadow page tables that map the guest's linear space onto its
 *   memory portion (MEM-2), and a shadow task-state segment whose ring-2 stack is the guest's ring-0
 *   stack. Every exception and software interrupt stops it (TB-3 rule 6: delivered first to the VM
 *   manager), and so do IN/OUT, CLI/STI (real IOPL <= 1), privileged instructions (real CPL >= 2),
 *   SGDT and the like (UMIP), and POPF/IRET that would change IF or IOPL (CR4.SFT, isa.md);
 * - the **virtual CPU** is the CPU of an ordinary bare `Machine` (`vm`) over the VE's portion of RAM,
 *   its own boot ROM, its own devices (timer, console, NVRAM, disk region, NIC) and the guest's own
 *   GDT/LDT/IDT/TSS and page tables. At a trap the VM manager copies the real state into it
 *   (`capture`), lets it execute the one instruction the real CPU stopped at (or take a pending
 *   interrupt) under the virtual rules — the bare machine's own rules on the guest's own tables —
 *   and copies the result back (`realize`), choosing the SDT of the new virtual ring. A fault the
 *   virtual CPU raises is the fault the bare machine would raise; it delivers it through the guest's
 *   IDT itself (reflection).
 *
 * So the guest sees exactly the bare machine, apart from what native execution shows of the real
 * state (docs/vmm.md lists it: CS/SS RPL, LAR/LSL/VERR/VERW, PUSHF's IOPL above 1, RPL checks
 * between compressed rings, the reserved linear range), while everything that needs real ring 0 is
 * emulated (VMM-2, VMM-4).
 *
 * Shadow paging: the guest's linear space is the real linear space. Shadow page tables (two: one for
 * virtual rings 0 and 3, where a page's U bit is the guest's; one for virtual rings 1 and 2, which
 * are supervisor rings the real CPU runs at ring 3, where every guest page is U, RING-14) are filled
 * on demand from the guest's page tables after the virtual CPU has made the access (so the guest's
 * accessed and dirty bits are set exactly as the bare MMU sets them) and dropped when the guest
 * reloads CR3, changes paging or invalidates a page (TLB semantics). Pages holding the guest's
 * descriptor tables and TSS are mapped read-only, so every write to them traps and the SDTs follow
 * (VEDT change detection). The top 4 MiB below the ROM's page directory entry (0xFF800000) hold the
 * VM manager's tables for the real CPU, supervisor read-only.
 */
import { type Cpu, type RunResult, SEG_USABLE } from '../cpu/cpu.js';
import { raise, run } from '../cpu/exec.js';
import { VEC, VECTOR_NAMES } from '../cpu/faults.js';
import { CR0, CR4 } from '../cpu/flags.js';
import { BY_OPCODE } from '../cpu/isa.js';
import { setNull, setSegment } from '../cpu/segments.js';
import type { Machine } from '../machine.js';
import { VmmError } from './errors.js';
import type { PagePool } from './pages.js';
import { realCpl, realRing } from './rings.js';
import { ringsUsed, type SdtCounters, type SdtPolicy, ShadowSet } from './sdt.js';

/** Linear base of the VM manager's reserved range (one page-directory entry). */
export const HOLE = 0xff80_0000;
const HOLE_PDE = HOLE >>> 22;
const SDT_SLOT = (k: number): number => HOLE + k * 0x1_0000;
const LDT_SLOT = (k: number): number => HOLE + 0x4_0000 + k * 0x1_0000;
const TSS_LINEAR = HOLE + 0x8_0000;
const ALL_VECTORS = 0xffff_ffff | 0;
const IF = 0x200;
const IOPL = 0x3000;

/** Something the VM manager did or saw (TB-2). */
export type VmmEvent =
  | {
      readonly kind: 'trap';
      readonly ve: number;
      readonly cause: string;
      readonly vector: number;
      readonly errorCode?: number;
      readonly eip: number;
      readonly ring: number;
    }
  | { readonly kind: 'reflect'; readonly ve: number; readonly vector: number; readonly errorCode?: number }
  | { readonly kind: 'ring-change'; readonly ve: number; readonly from: number; readonly to: number }
  | { readonly kind: 'sdt-switch'; readonly ve: number; readonly from: number; readonly to: number }
  | {
      readonly kind: 'vedt-change';
      readonly ve: number;
      readonly table: 'gdt' | 'ldt';
      readonly entries: readonly number[];
    }
  | {
      readonly kind: 'policy-switch';
      readonly ve: number;
      readonly from: SdtPolicy;
      readonly to: SdtPolicy;
      readonly reason: string;
    }
  | { readonly kind: 'qpt'; readonly ve: number; readonly on: boolean; readonly reason: string };

/** How a VE's SDT policy is chosen: fixed, or adaptively (SDT-22, TB-6). */
export type PolicyChoice = SdtPolicy | 'adaptive';

/**
 * The adaptive rule's thresholds (TB-6; configuration, not from the source): every `window` SDT
 * switches and VEDT changes, P1 moves to P3 when SDTs built for ring changes exceed `ringFactor`
 * times the entry updates; P3 moves to P2 once it holds an SDT for every ring the VEDT uses; P2 or
 * P3 moves back to P1 when entry updates exceed `vedtFactor` times the SDT switches.
 */
export interface AdaptiveRule {
  readonly window: number;
  readonly ringFactor: number;
  readonly vedtFactor: number;
}

export const DEFAULT_ADAPTIVE: AdaptiveRule = { window: 16, ringFactor: 2, vedtFactor: 4 };

/** Per-VE statistics (issue 4: traps by cause, SDT builds and updates, policy, ring changes). */
export interface VeStats {
  readonly instructions: number;
  readonly traps: number;
  readonly trapsByCause: Readonly<Record<string, number>>;
  /** Faults the virtual CPU delivered to the guest's own handlers. */
  readonly reflected: number;
  readonly policy: SdtPolicy;
  /** The policy is chosen adaptively (SDT-22). */
  readonly adaptive: boolean;
  readonly policySwitches: number;
  /** Quick pass-through in force (a two-ring guest, QPT-2). */
  readonly qpt: boolean;
  readonly sdtsHeld: readonly number[];
  readonly gdt: Readonly<SdtCounters>;
  readonly ldt: Readonly<SdtCounters>;
  /** Virtual-ring changes the VM manager saw ("3->1": n); native gate calls into ring 0 and returns from it are not seen. */
  readonly ringChanges: Readonly<Record<string, number>>;
  readonly shadowFills: number;
  readonly shadowFlushes: number;
  readonly currentRing: number;
  readonly currentSdt: number;
}

export interface VeInit {
  readonly id: number;
  readonly name: string;
  /** The real CPU (its MMU's physical memory holds the portion). */
  readonly cpu: Cpu;
  readonly pool: PagePool;
  /** The VE's hardware: a bare machine over the portion; its CPU is the virtual CPU. */
  readonly vm: Machine;
  /** Real physical address of the portion (the VE's guest-physical address 0). */
  readonly portionBase: number;
  readonly policy: PolicyChoice;
  readonly adaptiveRule?: AdaptiveRule;
  /** Recognise two-ring guests and use quick pass-through (QPT-2; default true). */
  readonly qpt?: boolean;
  /** SDT-16's outward guard (default on; off shows ATK-19). */
  readonly outwardGuard: boolean;
  readonly onEvent: ((e: VmmEvent) => void) | undefined;
}

interface Space {
  /** Real physical address of the shadow page directory. */
  readonly pd: number;
  /** Page-directory index -> real physical address of its shadow page table. */
  readonly pts: Map<number, number>;
}

export class VirtualEnvironment {
  readonly id: number;
  readonly name: string;
  readonly vm: Machine;
  readonly vcpu: Cpu;
  private readonly cpu: Cpu;
  private readonly pool: PagePool;
  private readonly portionBase: number;
  private readonly ramBytes: number;
  private readonly onEvent: ((e: VmmEvent) => void) | undefined;
  private readonly gdt: ShadowSet;
  private readonly ldt: ShadowSet;
  private readonly adaptive: boolean;
  private readonly rule: AdaptiveRule;
  private readonly qptAllowed: boolean;
  private policySwitches = 0;
  /** The adaptive rule's window: events seen, and the counters at its start. */
  private windowEvents = 0;
  private windowStart = { ringBuilds: 0, entryUpdates: 0, switches: 0 };
  /** The SDT in force (k of SDT_k); virtual ring 0 keeps the one it was entered under (SDT-15). */
  private sdtK = 0;
  private readonly holePt: number;
  private readonly holePages = new Map<number, number>(); // linear page -> real page
  private readonly romPages: number[] = [];
  private readonly user: Space;
  private readonly sup: Space;
  private readonly tracked = new Set<number>();
  // What `realize` last wrote into the real segment registers (to see the guest's native loads).
  private readonly lastSel = new Uint16Array(6);
  private readonly lastBase = new Uint32Array(6);
  private readonly lastLimit = new Uint32Array(6);
  private readonly lastHi = new Uint32Array(6);
  // The guest's paging and descriptor-table registers as the shadows and VEDT copies were made for.
  private pgPaging = false;
  private pgWp = false;
  private gdtKey = '';
  private ldtKey = '';
  private trackKey = '';
  /** First guest-physical page of the ROM (the ROM ends at 0xFFFFFFFF). */
  private readonly romFirst: number;
  // statistics
  private instructions = 0;
  private traps = 0;
  private readonly trapsByCause = new Map<string, number>();
  private reflected = 0;
  private readonly ringChanges = new Map<string, number>();
  private shadowFills = 0;
  private shadowFlushes = 0;
  private walkU = 0;
  private walkW = 0;
  private walkA = 0;
  private walkD = 0;

  constructor(init: VeInit) {
    this.id = init.id;
    this.name = init.name;
    this.vm = init.vm;
    this.vcpu = init.vm.cpu;
    this.cpu = init.cpu;
    this.pool = init.pool;
    this.portionBase = init.portionBase;
    this.ramBytes = init.vm.phys.ram.length;
    this.onEvent = init.onEvent;
    // SDT-22: an unrecognised guest starts with P1 and adapts.
    this.adaptive = init.policy === 'adaptive';
    const first = init.policy === 'adaptive' ? 'P1' : init.policy;
    this.rule = init.adaptiveRule ?? DEFAULT_ADAPTIVE;
    this.qptAllowed = init.qpt ?? true;
    this.gdt = new ShadowSet(first, init.outwardGuard);
    this.ldt = new ShadowSet(first, init.outwardGuard);
    this.holePt = this.pool.alloc();
    this.user = this.newSpace();
    this.sup = this.newSpace();
    // The boot ROM image, as the real CPU sees it: page copies, bytes below the ROM read as the
    // empty bus does (0xFF).
    const phys = this.vm.phys;
    this.romFirst = (phys.romBase & ~0xfff) >>> 0;
    const romPages = phys.rom.length === 0 ? 0 : (0x1_0000_0000 - this.romFirst) / 0x1000;
    for (let p = 0; p < romPages; p++) {
      const at = this.pool.alloc();
      const page = this.romFirst + p * 0x1000;
      for (let i = 0; i < 0x1000; i++) this.cpu.mmu.phys.ram[at + i] = phys.read8(page + i);
      this.romPages.push(at);
    }
    // The shadow TSS: no I/O permission bitmap (its base is past the limit), so every IN/OUT traps.
    this.holeWrite32(TSS_LINEAR + 100, 104 << 16);
    this.vm.executor = (budget) => this.runSlice(budget);
    this.vcpu.exitVectors = ALL_VECTORS;
    this.reloadTables();
  }

  get policy(): SdtPolicy {
    return this.gdt.policy;
  }

  /** The virtual ring the guest is in (its CPL as the guest sees it). */
  get ring(): number {
    return this.vcpu.cpl;
  }

  stats(): VeStats {
    return {
      instructions: this.instructions,
      traps: this.traps,
      trapsByCause: Object.fromEntries(this.trapsByCause),
      reflected: this.reflected,
      policy: this.gdt.policy,
      adaptive: this.adaptive,
      policySwitches: this.policySwitches,
      qpt: this.gdt.qpt,
      sdtsHeld: this.gdt.built,
      gdt: { ...this.gdt.counters },
      ldt: { ...this.ldt.counters },
      ringChanges: Object.fromEntries(this.ringChanges),
      shadowFills: this.shadowFills,
      shadowFlushes: this.shadowFlushes,
      currentRing: this.vcpu.cpl,
      currentSdt: this.sdtK,
    };
  }

  /** The real ring SDT_k records for each GDT entry (Figure 7's rows; a test reads them). */
  sdtRings(k: number): number[] | undefined {
    const t = this.gdt.tables[k];
    if (t === undefined) return undefined;
    const out: number[] = [];
    for (let i = 1; i < t.length; i += 2) out.push((t[i]! >>> 29) & 3);
    return out;
  }

  /** The shadow dwords SDT_k holds for GDT entry `index` (for tests and the dashboard). */
  sdtEntry(k: number, index: number): [number, number] | undefined {
    const t = this.gdt.tables[k];
    if (t === undefined || 2 * index + 1 >= t.length) return undefined;
    return [t[2 * index]! >>> 0, t[2 * index + 1]! >>> 0];
  }

  /** Returns every page the VE's tables used (VE deletion, CORE-6). */
  release(): void {
    this.flushShadows();
    for (const at of [this.user.pd, this.sup.pd, this.holePt, ...this.holePages.values(), ...this.romPages]) {
      this.pool.release(at);
    }
    this.holePages.clear();
    this.romPages.length = 0;
    this.vm.executor = undefined;
  }

  // ---- switching the real CPU to and from this VE ----

  /** Loads this VE's state into the real CPU (a VM switch in). */
  enter(): void {
    const cpu = this.cpu;
    cpu.exitVectors = ALL_VECTORS;
    cpu.exitSoftware = true;
    cpu.irq = undefined;
    cpu.cr0 = (CR0.PE | CR0.ET | CR0.WP | CR0.PG) >>> 0;
    cpu.cr4 = CR4.SFT | CR4.UMIP;
    cpu.mmu.paging = true;
    cpu.mmu.writeProtect = true;
    cpu.idtBase = HOLE;
    cpu.idtLimit = 0;
    cpu.halted = false;
    cpu.shutdown = false;
    this.realize();
    cpu.mmu.flush();
  }

  /** Saves the real CPU's state into the virtual CPU (a VM switch out, or before inspecting it). */
  leave(): void {
    this.capture();
  }

  // ---- the executor: runs the VE for a slice of its instructions ----

  private runSlice(budget: number): RunResult {
    const cpu = this.cpu;
    let executed = 0;
    while (executed < budget) {
      if (
        this.vcpu.halted ||
        ((cpu.eflags & IF) !== 0 && !cpu.interruptShadow && this.vm.pic.pending() >= 0)
      ) {
        // The virtual CPU takes the interrupt (or stays halted) exactly as the bare run loop does.
        const r = this.step(-1);
        executed += r.executed;
        if (r.reason !== 'budget') return { ...r, executed };
        continue;
      }
      this.syncTables();
      const r = run(cpu, budget - executed);
      executed += r.executed;
      this.instructions += r.executed;
      if (r.reason === 'budget') continue;
      if (r.reason !== 'exit') return { ...r, executed };
      const vector = r.vector!;
      const cr2 = cpu.mmu.cr2;
      this.trap(vector, r.errorCode, r.software === true);
      const s = this.step(vector, r.errorCode);
      executed += s.executed;
      if (vector === VEC.PF && r.software !== true) this.fill(cr2);
      if (s.reason !== 'budget') return { ...s, executed };
    }
    return { reason: 'budget', executed };
  }

  /**
   * The virtual CPU executes one instruction (or takes a pending interrupt) on the guest's state;
   * `vector` and `errorCode` are the trap that led here (-1: none). A fault it raises is delivered
   * to the guest.
   */
  private step(vector: number, errorCode?: number): RunResult {
    const vcpu = this.vcpu;
    this.capture();
    const ringBefore = vcpu.cpl;
    const vmmu = vcpu.mmu;
    vmmu.flush();
    const gen = vmmu.generation;
    let r = run(vcpu, 1);
    let reflected = false;
    if (r.reason === 'exit') {
      // The bare machine faults here: deliver it through the guest's IDT (the run loop's own path).
      reflected = true;
      this.reflected++;
      this.emit({
        kind: 'reflect',
        ve: this.id,
        vector: r.vector!,
        ...(r.errorCode === undefined ? {} : { errorCode: r.errorCode }),
      });
      vcpu.exitVectors = 0;
      try {
        const d = raise(vcpu, r.vector!, r.errorCode, { software: false, ext: 1, returnEip: vcpu.eip });
        r = d === undefined ? { reason: 'budget', executed: 1 } : { ...d, executed: 0 };
      } finally {
        vcpu.exitVectors = ALL_VECTORS;
      }
    }
    this.instructions += r.executed;
    if (vmmu.generation !== gen || vmmu.paging !== this.pgPaging || vmmu.writeProtect !== this.pgWp) {
      this.flushShadows();
    }
    this.reloadTables();
    // SDT-15: virtual ring 0 entered natively under SDT_k faulted on a descriptor (a selector
    // error code) that SDT_k keeps at real ring 0 or not present; the virtual CPU found it legal:
    // switch to SDT0. (A privileged instruction's #GP(0) is no reason to switch.)
    if (
      !reflected &&
      ringBefore === 0 &&
      vcpu.cpl === 0 &&
      this.sdtK !== 0 &&
      (errorCode ?? 0) & 0xfffc &&
      (vector === VEC.GP || vector === VEC.NP || vector === VEC.SS || vector === VEC.TS)
    ) {
      this.switchSdt(0);
    }
    if (vcpu.cpl !== ringBefore) {
      const key = `${ringBefore}->${vcpu.cpl}`;
      this.ringChanges.set(key, (this.ringChanges.get(key) ?? 0) + 1);
      this.emit({ kind: 'ring-change', ve: this.id, from: ringBefore, to: vcpu.cpl });
    }
    this.realize();
    return r;
  }

  private trap(vector: number, errorCode: number | undefined, software: boolean): void {
    this.traps++;
    this.capture();
    const vcpu = this.vcpu;
    const at = (vcpu.segBase[1]! + vcpu.eip) >>> 0;
    const gpa = this.walk(at);
    const op = gpa < 0 ? -1 : this.vm.phys.read8(gpa);
    const mnemonic = (op >= 0 ? BY_OPCODE[op]?.mnemonic : undefined) ?? '?';
    const cause = software
      ? `INT 0x${vector.toString(16).padStart(2, '0')}`
      : `${VECTOR_NAMES[vector] ?? `vector ${vector}`} ${mnemonic}`;
    this.trapsByCause.set(cause, (this.trapsByCause.get(cause) ?? 0) + 1);
    if (this.onEvent !== undefined) {
      this.onEvent({
        kind: 'trap',
        ve: this.id,
        cause,
        vector,
        ...(errorCode === undefined ? {} : { errorCode }),
        eip: vcpu.eip,
        ring: vcpu.cpl,
      });
    }
  }

  private emit(e: VmmEvent): void {
    this.onEvent?.(e);
  }

  // ---- state: real CPU <-> virtual CPU ----

  /** The real CPU's state into the virtual CPU (what native execution changed). */
  private capture(): void {
    const cpu = this.cpu;
    const vcpu = this.vcpu;
    vcpu.reg.set(cpu.reg);
    vcpu.eip = cpu.eip;
    vcpu.eflags = ((cpu.eflags & ~(IF | IOPL)) | (vcpu.eflags & (IF | IOPL))) >>> 0;
    vcpu.interruptShadow = cpu.interruptShadow;
    const ring = (cpu.segSel[1]! & 3) === 2 ? 0 : this.sdtK;
    for (let s = 0; s < 6; s++) {
      const sel = cpu.segSel[s]!;
      if (
        sel === this.lastSel[s] &&
        cpu.segBase[s] === this.lastBase[s] &&
        cpu.segLimit[s] === this.lastLimit[s] &&
        cpu.segHi[s] === this.lastHi[s]
      ) {
        continue;
      }
      // Loaded natively since `realize`: the guest's view is the VEDT entry (unchanged since, as
      // writes to it trap), with the virtual RPL in CS and SS.
      const vsel = s === 1 || s === 2 ? (sel & ~3) | ring : sel;
      if ((sel & 0xfffc) === 0 || !(cpu.segFlags[s]! & SEG_USABLE)) {
        setNull(vcpu, s, vsel);
        continue;
      }
      const table = sel & 4 ? this.ldt.copy : this.gdt.copy;
      const i = (sel >>> 3) * 2;
      setSegment(vcpu, s, vsel, table[i] ?? 0, table[i + 1] ?? 0);
    }
  }

  /** The virtual CPU's state into the real CPU, ring-compressed, with the SDT of its ring. */
  private realize(): void {
    const cpu = this.cpu;
    const vcpu = this.vcpu;
    const ring = vcpu.cpl;
    if (ring !== 0 && ring !== this.sdtK) this.switchSdt(ring);
    this.gdt.ensure(this.sdtK, false);
    if (vcpu.ldtUsable) this.ldt.ensure(this.sdtK, false);
    const k = this.sdtK;
    cpu.reg.set(vcpu.reg);
    cpu.eip = vcpu.eip;
    const iopl = Math.min((vcpu.eflags >>> 12) & 3, 1);
    cpu.eflags = ((vcpu.eflags & ~IOPL) | (iopl << 12)) >>> 0;
    cpu.interruptShadow = vcpu.interruptShadow;
    const rpl = realCpl(ring);
    for (let s = 0; s < 6; s++) {
      const vsel = vcpu.segSel[s]!;
      const sel = s === 1 || s === 2 ? (vsel & ~3) | rpl : vsel;
      const vhi = vcpu.segHi[s]!;
      const hi =
        vcpu.segFlags[s]! & SEG_USABLE
          ? ((vhi & ~0x6000_0000) | (realRing(k, (vhi >>> 29) & 3) << 29)) >>> 0
          : vhi;
      cpu.segSel[s] = sel;
      cpu.segBase[s] = vcpu.segBase[s]!;
      cpu.segLimit[s] = vcpu.segLimit[s]!;
      cpu.segHi[s] = hi;
      cpu.segFlags[s] = vcpu.segFlags[s]!;
      this.lastSel[s] = sel;
      this.lastBase[s] = vcpu.segBase[s]!;
      this.lastLimit[s] = vcpu.segLimit[s]!;
      this.lastHi[s] = hi;
    }
    cpu.gdtBase = SDT_SLOT(k);
    cpu.gdtLimit = vcpu.gdtLimit;
    cpu.ldtSel = vcpu.ldtSel;
    cpu.ldtBase = LDT_SLOT(k);
    cpu.ldtLimit = vcpu.ldtLimit;
    cpu.ldtUsable = vcpu.ldtUsable;
    cpu.trSel = vcpu.trSel;
    cpu.trBase = TSS_LINEAR;
    cpu.trLimit = 103;
    cpu.trUsable = true;
    const pd = this.space().pd;
    if (cpu.mmu.cr3 !== pd) {
      cpu.mmu.cr3 = pd;
      cpu.mmu.flush();
    }
  }

  private switchSdt(k: number): void {
    if (k === this.sdtK) return;
    this.emit({ kind: 'sdt-switch', ve: this.id, from: this.sdtK, to: k });
    this.gdt.counters.switches++;
    this.sdtK = k;
    this.gdt.ensure(k);
    if (this.vcpu.ldtUsable) this.ldt.ensure(k);
    this.adapt();
  }

  private setPolicy(to: SdtPolicy, reason: string): void {
    const from = this.gdt.policy;
    if (from === to) return;
    this.gdt.setPolicy(to, this.sdtK);
    this.ldt.setPolicy(to, this.sdtK);
    this.policySwitches++;
    this.emit({ kind: 'policy-switch', ve: this.id, from, to, reason });
  }

  /**
   * TB-6's switching rule: P3 becomes P2 as soon as it holds an SDT for every ring the VEDT uses;
   * the other moves are decided every `window` SDT switches and VEDT changes.
   */
  private adapt(): void {
    if (!this.adaptive || this.gdt.qpt) return;
    if (this.gdt.policy === 'P3') {
      // Virtual ring 0 runs under whichever SDT it was entered with (SDT-15): it counts as seen.
      const seen = this.gdt.built.reduce((s, k) => s | (1 << k), 1);
      if ((ringsUsed(this.gdt.copy) & ~seen) === 0) {
        this.setPolicy('P2', 'every ring in use has its SDT');
        return;
      }
    }
    if (++this.windowEvents < this.rule.window) return;
    const c = this.gdt.counters;
    const ringBuilds = c.ringBuilds - this.windowStart.ringBuilds;
    const updates = c.entryUpdates - this.windowStart.entryUpdates;
    const switches = c.switches - this.windowStart.switches;
    this.windowEvents = 0;
    this.windowStart = { ringBuilds: c.ringBuilds, entryUpdates: c.entryUpdates, switches: c.switches };
    const policy = this.gdt.policy;
    if (policy === 'P1' && ringBuilds > this.rule.ringFactor * updates) {
      this.setPolicy('P3', `${ringBuilds} SDT builds for ring changes, ${updates} entry updates`);
    } else if (policy !== 'P1' && updates > this.rule.vedtFactor * switches) {
      this.setPolicy('P1', `${updates} entry updates, ${switches} SDT switches`);
    }
  }

  /**
   * QPT-2, QPT-6: a VEDT with segments of rings 0 and 3 only starts quick pass-through (P2 with
   * two SDTs); a ring-1 or ring-2 descriptor in it later is a QPT violation: the general scheme
   * under P1.
   */
  private checkQpt(): void {
    if (!this.qptAllowed) return;
    const used = ringsUsed(this.gdt.copy);
    if (!this.gdt.qpt && used === 0b1001) {
      this.gdt.qpt = true;
      this.gdt.setPolicy('P2', this.sdtK);
      this.ldt.setPolicy('P2', this.sdtK);
      this.emit({ kind: 'qpt', ve: this.id, on: true, reason: 'the VEDT uses virtual rings 0 and 3 only' });
    } else if (this.gdt.qpt && (used & 0b0110) !== 0) {
      this.gdt.qpt = false;
      this.emit({
        kind: 'qpt',
        ve: this.id,
        on: false,
        reason: 'QPT violation: a ring-1 or ring-2 descriptor',
      });
      this.gdt.setPolicy('P1', this.sdtK);
      this.ldt.setPolicy('P1', this.sdtK);
      this.gdt.rebuild(this.sdtK);
    }
  }

  /** The shadow page tables of the SDT in force: supervisor rings 1 and 2 run at real ring 3. */
  private space(): Space {
    return this.sdtK === 1 || this.sdtK === 2 ? this.sup : this.user;
  }

  // ---- the guest's tables, kept in step before native execution ----

  /** The guest's descriptor-table registers or paging changed: reload the VEDTs, re-track pages. */
  private reloadTables(): void {
    const v = this.vcpu;
    const m = v.mmu;
    // A new GDT or LDT (LGDT, LLDT) is a relocation: regenerate (SDT-19, SDT-20); so is new paging,
    // which may map the same linear table onto other memory.
    const pg = `${m.paging}:${m.cr3}`;
    const gdtKey = `${v.gdtBase}:${v.gdtLimit}:${pg}`;
    if (gdtKey !== this.gdtKey) {
      this.gdtKey = gdtKey;
      this.gdt.load(this.readVedt(v.gdtBase, v.gdtLimit), this.sdtK);
      this.checkQpt();
    }
    const ldtKey = v.ldtUsable ? `${v.ldtBase}:${v.ldtLimit}:${pg}` : '-';
    if (ldtKey !== this.ldtKey) {
      this.ldtKey = ldtKey;
      this.ldt.load(v.ldtUsable ? this.readVedt(v.ldtBase, v.ldtLimit) : new Int32Array(0), this.sdtK);
    }
    const trackKey = `${gdtKey}|${ldtKey}|${v.trUsable ? `${v.trBase}:${v.trLimit}` : '-'}`;
    if (trackKey === this.trackKey) return;
    this.trackKey = trackKey;
    // Track the frames holding the guest's GDT, LDT and TSS: writes to them trap.
    const frames = new Set<number>();
    const add = (base: number, limit: number) => {
      const first = base >>> 12;
      const last = ((base + limit) >>> 0) >>> 12;
      for (let p = first; p !== ((last + 1) & 0xfffff); p = (p + 1) & 0xfffff) {
        const gpa = this.walk(p << 12);
        if (gpa >= 0) frames.add(gpa >>> 12);
      }
    };
    add(v.gdtBase, v.gdtLimit);
    if (v.ldtUsable) add(v.ldtBase, v.ldtLimit);
    if (v.trUsable) add(v.trBase, v.trLimit);
    const same = frames.size === this.tracked.size && [...frames].every((f) => this.tracked.has(f));
    if (!same) {
      this.tracked.clear();
      for (const f of frames) this.tracked.add(f);
      this.flushShadows();
    }
  }

  /** The dwords of a VEDT of limit `limit` at guest linear `base` (entries of a page the guest has not mapped read as 0). */
  private readVedt(base: number, limit: number): Int32Array {
    const entries = Math.floor((limit + 1) / 8);
    const out = new Int32Array(entries * 2);
    for (let i = 0; i < out.length; i++) {
      const gpa = this.walk((base + 4 * i) >>> 0);
      out[i] = gpa < 0 ? 0 : this.vm.phys.read32(gpa) | 0;
    }
    return out;
  }

  /** Before native execution: the SDTs follow the VEDTs, the real tables and shadow TSS are current. */
  private syncTables(): void {
    const v = this.vcpu;
    const changed = this.gdt.update(this.readVedt(v.gdtBase, v.gdtLimit));
    if (changed.length > 0) {
      this.emit({ kind: 'vedt-change', ve: this.id, table: 'gdt', entries: changed });
      this.checkQpt();
      this.adapt();
    }
    if (v.ldtUsable) {
      const c = this.ldt.update(this.readVedt(v.ldtBase, v.ldtLimit));
      if (c.length > 0) this.emit({ kind: 'vedt-change', ve: this.id, table: 'ldt', entries: c });
    }
    const k = this.sdtK;
    this.flushTable(this.gdt, k, SDT_SLOT(k));
    if (v.ldtUsable) this.flushTable(this.ldt, k, LDT_SLOT(k));
    // The guest's ring-0 stack is the real ring-2 stack; a selector whose RPL is not 0 gets RPL 1,
    // so that the native inward call faults as the bare one would (#TS).
    let esp0 = 0;
    let ss0 = 0;
    if (v.trUsable && v.trLimit >= 11) {
      const a = this.walk((v.trBase + 4) >>> 0);
      const b = this.walk((v.trBase + 8) >>> 0);
      if (a >= 0 && b >= 0) {
        esp0 = this.vm.phys.read32(a);
        const sel = this.vm.phys.read32(b) & 0xffff;
        ss0 = (sel & ~3) | ((sel & 3) === 0 ? 2 : 1);
      }
    }
    this.holeWrite32(TSS_LINEAR + 20, esp0);
    this.holeWrite32(TSS_LINEAR + 24, ss0);
  }

  /** Copies SDT_k's changed entries into the real memory at `linear`. */
  private flushTable(set: ShadowSet, k: number, linear: number): void {
    const t = set.tables[k];
    const dirty = set.dirty[k]!;
    if (t === undefined || dirty.size === 0) return;
    if (dirty.has(-1)) {
      for (let i = 0; i < t.length; i++) this.holeWrite32(linear + 4 * i, t[i]!);
    } else {
      for (const e of dirty) {
        this.holeWrite32(linear + 8 * e, t[2 * e]!);
        this.holeWrite32(linear + 8 * e + 4, t[2 * e + 1]!);
      }
    }
    dirty.clear();
  }

  /** Writes a dword of the VM manager's reserved range (allocating and mapping its page). */
  private holeWrite32(linear: number, value: number): void {
    const page = linear & ~0xfff;
    let at = this.holePages.get(page);
    if (at === undefined) {
      at = this.pool.alloc();
      this.holePages.set(page, at);
      // Supervisor, read-only, present; accessed and dirty preset.
      this.cpu.mmu.phys.write32(this.holePt + ((page >>> 12) & 0x3ff) * 4, at | 0x61);
      this.cpu.mmu.invalidate(page);
    }
    this.cpu.mmu.phys.write32(at + (linear & 0xfff), value);
  }

  // ---- shadow paging ----

  private newSpace(): Space {
    const pd = this.pool.alloc();
    this.cpu.mmu.phys.write32(pd + HOLE_PDE * 4, this.holePt | 0x67);
    return { pd, pts: new Map() };
  }

  /**
   * The guest's translation of `linear` (its page tables, or the identity with paging off), read
   * without setting any bit: the guest-physical address, or -1 if not present. Leaves the combined
   * U, W and accessed bits and the PTE's dirty bit in walkU/W/A/D.
   */
  private walk(linear: number): number {
    const m = this.vcpu.mmu;
    if (!m.paging) {
      this.walkU = this.walkW = this.walkA = this.walkD = 1;
      return linear >>> 0;
    }
    const phys = this.vm.phys;
    const pde = phys.read32(((m.cr3 & ~0xfff) | ((linear >>> 22) << 2)) >>> 0);
    if (!(pde & 1)) return -1;
    const pte = phys.read32(((pde & ~0xfff) | (((linear >>> 12) & 0x3ff) << 2)) >>> 0);
    if (!(pte & 1)) return -1;
    this.walkU = (pde & pte & 4) >>> 2;
    this.walkW = (pde & pte & 2) >>> 1;
    this.walkA = (pde & pte & 0x20) >>> 5;
    this.walkD = (pte & 0x40) >>> 6;
    return ((pte & ~0xfff) | (linear & 0xfff)) >>> 0;
  }

  /** After the virtual CPU made an access that page-faulted natively: map its page if the guest does. */
  private fill(linear: number): void {
    if (linear >>> 22 === HOLE_PDE) {
      if (this.walk(linear) >= 0) {
        throw new VmmError('VMM_HOLE_CONFLICT', `the guest maps 0x${(linear >>> 0).toString(16)}`, {
          ve: this.id,
        });
      }
      return;
    }
    const gpa = this.walk(linear);
    if (gpa < 0 || !this.walkA) return;
    let frame: number;
    let writable: boolean;
    if (gpa < this.ramBytes) {
      frame = this.portionBase + (gpa & ~0xfff);
      writable = !this.tracked.has(gpa >>> 12);
    } else if (gpa >= this.romFirst && this.romPages.length > 0) {
      frame = this.romPages[(gpa - this.romFirst) >>> 12]!;
      writable = false;
    } else {
      return; // the empty bus: every access traps and the virtual CPU reads 0xFF
    }
    const space = this.space();
    const paging = this.vcpu.mmu.paging;
    let u = 1;
    if (paging) {
      if (space === this.sup) writable &&= this.walkW === 1 || !this.vcpu.mmu.writeProtect;
      else {
        u = this.walkU;
        writable &&= this.walkW === 1;
      }
      writable &&= this.walkD === 1;
    }
    const pdi = linear >>> 22;
    let pt = space.pts.get(pdi);
    const phys = this.cpu.mmu.phys;
    if (pt === undefined) {
      pt = this.pool.alloc();
      space.pts.set(pdi, pt);
      phys.write32(space.pd + pdi * 4, pt | 0x67);
    }
    phys.write32(pt + ((linear >>> 12) & 0x3ff) * 4, frame | 0x61 | (writable ? 2 : 0) | (u << 2));
    this.cpu.mmu.invalidate(linear);
    this.shadowFills++;
  }

  /** Drops every shadow page table (the guest's TLB would be flushed here too). */
  private flushShadows(): void {
    const phys = this.cpu.mmu.phys;
    for (const space of [this.user, this.sup]) {
      for (const [pdi, pt] of space.pts) {
        phys.write32(space.pd + pdi * 4, 0);
        this.pool.release(pt);
      }
      space.pts.clear();
    }
    const m = this.vcpu.mmu;
    this.pgPaging = m.paging;
    this.pgWp = m.writeProtect;
    this.cpu.mmu.flush();
    this.shadowFlushes++;
  }
}
