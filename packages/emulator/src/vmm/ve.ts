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
 *   interrupt, and run its handler until it returns, up to `interruptLookahead` instructions) under
 *   the virtual rules — the bare machine's own rules on the guest's own tables — and copies the
 *   result back (`realize`), choosing the SDT of the new virtual ring. A fault the virtual CPU
 *   raises is the fault the bare machine would raise; it delivers it through the guest's IDT itself
 *   (reflection). A system call's trap writes back only what the INT changed (`systemCall`).
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
import { deliverFast } from '../cpu/fast-transfers.js';
import { VEC, VECTOR_NAMES } from '../cpu/faults.js';
import { CR0, CR4 } from '../cpu/flags.js';
import { BY_OPCODE } from '../cpu/isa.js';
import { setNull, setSegment } from '../cpu/segments.js';
import type { Machine } from '../machine.js';
import { TLB_SIZE } from '../memory/mmu.js';
import { VmmError } from './errors.js';
import type { PagePool } from './pages.js';
import { realCpl, realRing } from './rings.js';
import { ringsUsed, type SdtCounters, type SdtPolicy, ShadowSet } from './sdt.js';
import { substituteHi, type VedtCounters, type VedtMode, VedtTable, type VedtWriteMethod } from './vedt.js';

/** Linear base of the VM manager's reserved range (one page-directory entry). */
export const HOLE = 0xff80_0000;
// Offsets in the range (it moves if the guest maps its place: `relocateHole`).
const SDT_SLOT = (k: number): number => k * 0x1_0000;
const LDT_SLOT = (k: number): number => 0x4_0000 + k * 0x1_0000;
const TSS_LINEAR = 0x8_0000;
/** The VM manager's real ring-0 stack (TSS SS0:ESP0), and the real LDT holding its segment. */
const STACK0_LINEAR = 0x8_1000;
const VMM_LDT_LINEAR = 0x8_2000;
/** VEDT substitution: the real GDTR's alias of the guest's VEDT pages (up to 17 pages). */
const VEDT_ALIAS = 0xa_0000;
const ALL_VECTORS = 0xffff_ffff | 0;
const IF = 0x200;
const IOPL = 0x3000;

/** Trap cause keys: (exception vector << 9) | opcode (0x100: unknown), or CAUSE_INT | INT n's vector. */
const CAUSE_INT = 32 << 9;
/** INT n's opcode (isa.ts; `intDirect`). */
const OP_INT = 0x75;
/** Interrupt-handler instructions run on the virtual CPU after an interrupt by default (`step`). */
const DEFAULT_LOOKAHEAD = 16;
/** The most a VE's profile may ask for (VeProfile.interruptLookahead, profile `interrupt_lookahead`). */
export const MAX_INTERRUPT_LOOKAHEAD = 4096;

/** The name of a trap cause key (see `VirtualEnvironment.trap`): "#GP out", "INT 0x80". */
function causeName(key: number): string {
  if (key >= CAUSE_INT) return `INT 0x${(key & 0xff).toString(16).padStart(2, '0')}`;
  const vector = key >>> 9;
  const op = key & 0x1ff;
  const mnemonic = (op < 0x100 ? BY_OPCODE[op]?.mnemonic : undefined) ?? '?';
  return `${VECTOR_NAMES[vector] ?? `vector ${vector}`} ${mnemonic}`;
}

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
  | { readonly kind: 'qpt'; readonly ve: number; readonly on: boolean; readonly reason: string }
  | {
      readonly kind: 'vedt-method';
      readonly ve: number;
      readonly method: VedtWriteMethod;
      readonly reason: string;
    }
  | { readonly kind: 'warning'; readonly ve: number; readonly reason: string }
  | { readonly kind: 'hole-moved'; readonly ve: number; readonly from: number; readonly to: number }
  /** Something that must never happen did: the VE is stopped (reason 'shutdown'). */
  | { readonly kind: 'alarm'; readonly ve: number; readonly reason: string; readonly eip: number }
  | {
      readonly kind: 'key-trap';
      readonly ve: number;
      /** `call`: the guest called the key address; `answer`: the key (or a refusal) was handed over. */
      readonly phase: 'call' | 'answer';
      readonly ring: number;
      readonly status?: number;
      readonly version?: number;
    };

/** VEDT substitution options (the third embodiment; absent: shadow descriptor tables). */
export interface VedtOptions {
  readonly mode: VedtMode;
  /** Write method 1 ('trap'), 2 ('overwrite'), or chosen by trap counts ('auto', VEDT-6). */
  readonly method: VedtWriteMethod | 'auto';
  /** VEDT-9: an entry written but not yet overwritten is not used (default true; off: ATK-20). */
  readonly guard: boolean;
}

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
  /**
   * Instructions of interrupt handlers the virtual CPU ran right after delivering the interrupt
   * (`interruptLookahead`), in `instructions` too: instructions that would otherwise have run
   * natively or trapped one by one.
   */
  readonly lookahead: number;
  /** Entries into the VM manager for a virtual interrupt (not traps; none for one taken in the lookahead). */
  readonly interrupts: number;
  /** Calls of the key address (KEY-6). */
  readonly keyCalls: number;
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
  /** VEDT substitution in force for the GDT (the third embodiment), its write method and counters. */
  readonly vedt?: { readonly active: boolean; readonly method: VedtWriteMethod } & Readonly<VedtCounters>;
  /** The VE was stopped by an alarm (guest code at real ring 0). */
  readonly alarm?: string;
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
  /** VEDT substitution instead of SDTs for the GDT (VEDT-1). */
  readonly vedt?: VedtOptions;
  /** Interrupt-handler instructions the virtual CPU runs after an interrupt (default 16; 0: none). */
  readonly interruptLookahead?: number;
  readonly onEvent: ((e: VmmEvent) => void) | undefined;
  /** The key trap (KEY-6..8): the predetermined address and the real environment's answer. */
  readonly keyTrap?: KeyTrapHook;
}

/** What the key trap hands the guest (KEY-8); `status` 0 = a key, otherwise a KEY_STATUS code. */
export interface KeyAnswer {
  readonly status: number;
  /** Key-VE: the Ed25519 seed then the X25519 secret (absent when refused). */
  readonly key?: Uint8Array;
  /** Clef-VE: the two public keys. */
  readonly clef?: Uint8Array;
  readonly name?: string;
  readonly version?: number;
}

/** The guest-visible outcome codes of a key call (EAX on return). */
export const KEY_STATUS = { OK: 0, BAD_BUFFER: 1, REFUSED: 2 } as const;

export interface KeyTrapHook {
  /** Guest-physical address whose call traps (on the empty bus: nothing is mapped there). */
  readonly address: number;
  /** Starts or polls the VE's key request; undefined while the key server has not answered. */
  call(): KeyAnswer | undefined;
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
  private readonly keyHook: KeyTrapHook | undefined;
  /** A key call waits for the key server's answer: the VE does not run until it comes. */
  private keyPending = false;
  private keyCalls = 0;
  private readonly gdt: ShadowSet;
  private readonly ldt: ShadowSet;
  private readonly outwardGuard: boolean;
  // VEDT substitution (vedt.ts): options, the table in force, its pages as guest frames.
  private readonly vedtOpts: VedtOptions | undefined;
  private vt: VedtTable | undefined;
  private vedtMethod: VedtWriteMethod = 'trap';
  private readonly vedtFrames = new Set<number>();
  private readonly vedtCounters: VedtCounters = {
    readTraps: 0,
    writeTraps: 0,
    opens: 0,
    overwrites: 0,
    rewrites: 0,
    methodSwitches: 0,
  };
  /** Open method-2 windows: page index -> the shadow PTE addresses mapping it writable. */
  private readonly openPtes = new Map<number, number[]>();
  /** Auto method (VEDT-6): trapped writes in the current burst, and the bursts / windows measured. */
  private burst = 0;
  /** The trap being handled is a trapped VEDT write (method 1). */
  private writeTrap = false;
  private readonly bursts: number[] = [];
  private readonly windows: number[] = [];
  private alarm: string | undefined;
  /** trap(): the linear page of the last trapping instruction and its guest-physical page (-1: none). */
  private codePage = -1;
  private codeGpa = -1;
  /** trap(): the opcode at the trapping EIP (0x100: its page is not mapped), for repairReturnFrame. */
  private trapOp = 0x100;
  /** Guest-physical page of each page of the GDT (-1: not RAM), or undefined (see gdtUnchanged). */
  private gdtPages: Int32Array | undefined;
  /** Guest-physical address of the guest TSS's ESP0 (SS0 follows), or -1. */
  private tssEsp0 = -1;
  private lastEsp0 = Number.NaN;
  private lastSs0 = Number.NaN;
  /** The guest's tables may have changed since syncTables last ran. */
  private tablesDirty = true;
  /** Reused for the VEDT's dwords before native execution (syncTables). */
  private scratch = new Int32Array(0);
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
  /** Linear base of the VM manager's reserved range for this VE (4 MiB, one page-directory entry). */
  private hole = HOLE;
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
  // The registers the VEDT copies and tracked frames were made for (reloadTables): GDTR, LDTR
  // (-1: none), TR (-1: none), paging (CR3, or -1 with paging off).
  private readonly key = new Float64Array(8).fill(Number.NaN);
  /** First guest-physical page of the ROM (the ROM ends at 0xFFFFFFFF). */
  private readonly romFirst: number;
  // statistics
  private instructions = 0;
  private traps = 0;
  /** Traps by cause key (see `trap`). */
  private readonly trapCounts = new Uint32Array(CAUSE_INT + 256);
  private reflected = 0;
  private lookahead = 0;
  private interrupts = 0;
  private readonly interruptLookahead: number;
  /** Ring changes seen, [from * 4 + to]. */
  private readonly ringChanges = new Uint32Array(16);
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
    this.keyHook = init.keyTrap;
    // SDT-22: an unrecognised guest starts with P1 and adapts.
    this.adaptive = init.policy === 'adaptive';
    const first = init.policy === 'adaptive' ? 'P1' : init.policy;
    this.rule = init.adaptiveRule ?? DEFAULT_ADAPTIVE;
    this.qptAllowed = init.qpt ?? true;
    this.gdt = new ShadowSet(first, init.outwardGuard);
    this.ldt = new ShadowSet(first, init.outwardGuard);
    this.outwardGuard = init.outwardGuard;
    this.interruptLookahead = init.interruptLookahead ?? DEFAULT_LOOKAHEAD;
    this.vedtOpts = init.vedt;
    if (init.vedt !== undefined) this.vedtMethod = init.vedt.method === 'overwrite' ? 'overwrite' : 'trap';
    this.holePt = this.pool.alloc();
    this.user = this.newSpace();
    this.sup = this.newSpace();
    // The boot ROM image, as the real CPU sees it: page copies, bytes below the ROM read as the
    // empty bus does (0xFF).
    const phys = this.vm.phys;
    this.romFirst = (phys.romBase & ~0xfff) >>> 0;
    const romPages = phys.rom.length === 0 ? 0 : (0x1_0000_0000 - this.romFirst) / 0x1000;
    const ram = this.cpu.mmu.phys.ram;
    for (let p = 0; p < romPages; p++) {
      const at = this.pool.alloc();
      const page = this.romFirst + p * 0x1000;
      const from = Math.max(page, phys.romBase); // the first page may start below the ROM
      ram.fill(0xff, at, at + (from - page));
      ram.set(phys.rom.subarray(from - phys.romBase, page + 0x1000 - phys.romBase), at + (from - page));
      this.romPages.push(at);
    }
    // The shadow TSS: no I/O permission bitmap (its base is past the limit), so every IN/OUT traps.
    this.holeWrite32(TSS_LINEAR + 100, 104 << 16);
    // The VM manager's own ring-0 stack, as a real-ring-0 VMM has one: SS0 is the one entry of a
    // real LDT of its own (used while the guest has no LDT). Nothing enters real ring 0 from a VE
    // unless a guard is off (ATK-20), and then the alarm stops the VE.
    this.holeMap(STACK0_LINEAR, this.pool.alloc(), true);
    const [lo, hi] = [this.hole + STACK0_LINEAR, 0xfff | (0x2 << 24) | (1 << 28) | (1 << 31)];
    this.holeWrite32(VMM_LDT_LINEAR, lo);
    this.holeWrite32(VMM_LDT_LINEAR + 4, hi);
    this.holeWrite32(TSS_LINEAR + 4, 0x1000);
    this.holeWrite32(TSS_LINEAR + 8, 0x4);
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
      trapsByCause: this.causes(),
      reflected: this.reflected,
      lookahead: this.lookahead,
      interrupts: this.interrupts,
      keyCalls: this.keyCalls,
      policy: this.gdt.policy,
      adaptive: this.adaptive,
      policySwitches: this.policySwitches,
      qpt: this.gdt.qpt,
      sdtsHeld: this.gdt.built,
      gdt: { ...this.gdt.counters },
      ldt: { ...this.ldt.counters },
      ringChanges: Object.fromEntries(
        [...this.ringChanges].flatMap((n, i) => (n === 0 ? [] : [[`${i >>> 2}->${i & 3}`, n]])),
      ),
      shadowFills: this.shadowFills,
      shadowFlushes: this.shadowFlushes,
      ...(this.vedtOpts === undefined
        ? {}
        : { vedt: { active: this.vt !== undefined, method: this.vedtMethod, ...this.vedtCounters } }),
      ...(this.alarm === undefined ? {} : { alarm: this.alarm }),
      currentRing: this.vcpu.cpl,
      currentSdt: this.sdtK,
    };
  }

  private causes(): Record<string, number> {
    // A method-2 page opening is a trap the virtual CPU does not execute (VEDT substitution).
    const out: Record<string, number> =
      this.vedtCounters.opens > 0 ? { '#PF vedt-open': this.vedtCounters.opens } : {};
    for (let key = 0; key < this.trapCounts.length; key++) {
      const n = this.trapCounts[key]!;
      if (n === 0) continue;
      const name = causeName(key);
      out[name] = (out[name] ?? 0) + n;
    }
    return out;
  }

  /**
   * The guest's RAM as the guest sees it: a copy of the portion with the VEDT under substitution
   * showing the guest view (its memory holds the substituted entries the processor uses).
   */
  guestRam(): Uint8Array {
    const ram = this.vm.phys.ram.slice();
    const vt = this.vt;
    if (vt !== undefined) {
      // An entry whose memory differs from the image was written directly (an open method-2
      // window): that value is the guest's; the rest show the guest view.
      const view = new DataView(ram.buffer);
      for (let i = 0; i < vt.view.length; i++) {
        const at = vt.gpa(i);
        if (view.getInt32(at, true) === vt.image[i] || vt.k < 0) view.setInt32(at, vt.view[i]!, true);
      }
    }
    return ram;
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
    this.unsubstitute();
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
    cpu.idtBase = this.hole;
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
    // The devices were ticked since the last slice (a DMA may have written the guest's tables).
    this.tablesDirty = true;
    if (this.keyPending) {
      if (!this.keyAnswer()) return this.keyWait(budget);
      if (this.alarm !== undefined) return { reason: 'shutdown', executed: 0 };
    }
    while (executed < budget) {
      if (
        this.vcpu.halted ||
        ((cpu.eflags & IF) !== 0 && !cpu.interruptShadow && this.vm.pic.pending() >= 0)
      ) {
        // The virtual CPU takes the interrupt (or stays halted) exactly as the bare run loop does.
        const r = this.step(
          -1,
          undefined,
          false,
          false,
          Math.min(this.interruptLookahead, budget - executed - 1),
        );
        if (r.reason === 'budget' && r.executed > 0) this.interrupts++;
        executed += r.executed;
        if (r.reason !== 'budget') return { ...r, executed };
        if (this.endRun()) return { reason: 'budget', executed };
        continue;
      }
      this.syncTables();
      // The interrupt shadow of a trapped STI (or a lookahead that ended on one) with an interrupt
      // pending: one instruction natively, then the check above takes it, as the bare CPU does
      // after the instruction that follows STI (the real CPU has no interrupt source in a VE).
      const pendingBehindShadow =
        cpu.interruptShadow && (cpu.eflags & IF) !== 0 && this.vm.pic.pending() >= 0;
      const r = run(cpu, pendingBehindShadow ? 1 : budget - executed);
      executed += r.executed;
      this.instructions += r.executed;
      // The VE's machine counts time in its CPU's instructions (exact device time, machine.ts).
      this.vcpu.instructions += r.executed;
      if ((cpu.segSel[1]! & 3) < 2) {
        // Guest code reached real ring 0 or 1 (only possible with a guard off: ATK-20).
        this.alarm = `CPL${cpu.segSel[1]! & 3} inside VE`;
        this.emit({ kind: 'alarm', ve: this.id, reason: this.alarm, eip: cpu.eip });
        return { reason: 'shutdown', executed };
      }
      if (r.reason === 'budget') continue;
      if (r.reason !== 'exit') return { ...r, executed };
      const vector = r.vector!;
      const cr2 = cpu.mmu.cr2;
      // The state native code left, before anything changes the VEDT copies (a segment loaded
      // natively keeps the descriptor it was loaded with); then VEDT-10: a method-2 window closes at
      // the next trap, whatever it is.
      this.capture();
      this.closeWindows();
      this.writeTrap = false;
      if (vector === VEC.PF && r.software !== true && this.keyHook !== undefined && this.isKeyCall(cr2)) {
        this.keyCalls++;
        this.emit({ kind: 'key-trap', ve: this.id, phase: 'call', ring: this.vcpu.cpl });
        this.keyPending = true;
        if (!this.keyAnswer()) {
          this.realize();
          return this.keyWait(budget - executed, executed);
        }
        if (this.alarm !== undefined) return { reason: 'shutdown', executed };
        executed++;
        continue;
      }
      if (
        vector === VEC.PF &&
        r.software !== true &&
        this.vt !== undefined &&
        this.vedtPageFault(cr2, r.errorCode!)
      ) {
        continue; // a page opened for direct writes (method 2): the write runs natively
      }
      if (!this.writeTrap) this.burstEnd(); // any other trap ends a burst of trapped VEDT writes
      this.trap(vector, r.errorCode, r.software === true);
      if (r.software === true && this.systemCall(vector)) {
        executed++;
        continue;
      }
      const s = this.step(vector, r.errorCode, true, r.software === true);
      executed += s.executed;
      if (vector === VEC.PF && r.software !== true) this.fill(cr2);
      if (s.reason !== 'budget') return { ...s, executed };
      if (this.endRun()) return { reason: 'budget', executed };
    }
    return { reason: 'budget', executed };
  }

  /**
   * After the virtual CPU delivered a software interrupt through a gate without a task switch, the
   * only guest memory it can have written is the frame it pushed (at most 20 bytes at SS:ESP) and
   * the accessed bits of the CS and SS descriptors it loaded. When that frame lies in no page of
   * the guest's GDT, LDT or TSS, and both descriptors equal the copies the shadow tables were made
   * from, the tables are as they were: nothing needs comparing before native code runs again.
   */
  private intLeftTablesAlone(): boolean {
    // Under VEDT substitution the table in guest memory is not the guest's view: always compare.
    if (this.vt !== undefined) return false;
    const vcpu = this.vcpu;
    const sp = (vcpu.segBase[2]! + vcpu.reg[4]!) >>> 0;
    if (!this.untracked(sp) || !this.untracked((sp + 19) >>> 0)) return false;
    return this.descriptorAsCopied(vcpu.segSel[1]!) && this.descriptorAsCopied(vcpu.segSel[2]!);
  }

  /** Whether guest-linear `at` is mapped to a frame that holds none of the guest's tables. */
  private untracked(at: number): boolean {
    const gpa = this.used(at);
    return gpa >= 0 && !this.tracked.has(gpa >>> 12);
  }

  /**
   * The guest-physical address the virtual CPU reaches linear `at` by: its TLB's translation when it
   * holds one (what the access it just made used, even if the guest changed the entry since without
   * INVLPG, as the bare CPU would have), else the guest's page tables (`walk`).
   */
  private used(at: number): number {
    const m = this.vcpu.mmu;
    if (m.paging) {
      const page = at >>> 12;
      const i = page & (TLB_SIZE - 1);
      if (m.tlbTag[i] === page + 1) return ((m.tlbEntry[i]! & ~0xfff) | (at & 0xfff)) >>> 0;
    }
    return this.walk(at);
  }

  /** Whether the guest's descriptor for `sel` equals the copy of its table (VEDT-3 aside). */
  private descriptorAsCopied(sel: number): boolean {
    const vcpu = this.vcpu;
    const ldt = (sel & 4) !== 0;
    if (ldt && !vcpu.ldtUsable) return false;
    const copy = ldt ? this.ldt.copy : this.gdt.copy;
    const i = (sel >>> 3) * 2;
    if (i + 1 >= copy.length) return false;
    const at = ((ldt ? vcpu.ldtBase : vcpu.gdtBase) + (sel & ~7)) >>> 0;
    const lo = this.used(at);
    if (lo < 0 || lo + 4 > this.ramBytes) return false;
    // Dword 1 is in the same page as dword 0 unless the descriptor crosses a page.
    const hi = (at & 0xfff) <= 0xff8 ? lo + 4 : this.used((at + 4) >>> 0);
    if (hi < 0 || hi + 4 > this.ramBytes) return false;
    const phys = this.vm.phys;
    return (phys.read32(lo) | 0) === (copy[i]! | 0) && (phys.read32(hi) | 0) === (copy[i + 1]! | 0);
  }

  /**
   * KEY-6: the guest fetched its next instruction from the key address (a CALL got there; nothing
   * is mapped at it, so the fetch page-faulted natively).
   */
  private isKeyCall(cr2: number): boolean {
    const cpu = this.cpu;
    if ((cpu.segBase[1]! + cpu.eip) >>> 0 !== cr2 >>> 0) return false;
    return this.walk(cr2) === this.keyHook!.address;
  }

  /**
   * KEY-8: if the answer is there, hands it to the guest as if the code at the key address had
   * returned it: the key (64 bytes), the Clef (64) and the Name-VE (a length byte and its bytes)
   * into the caller's buffer at DS:EDI of ECX bytes (at least 128), EAX = status, EDX = the key's
   * version, then the return of the CALL (EIP popped from SS:ESP). Returns false while it waits.
   */
  private keyAnswer(): boolean {
    const a = this.keyHook!.call();
    if (a === undefined) return false;
    this.keyPending = false;
    const vcpu = this.vcpu;
    const reg = vcpu.reg;
    let status = a.status;
    if (status === KEY_STATUS.OK) {
      const name = new TextEncoder().encode(a.name ?? '');
      const out = new Uint8Array(129 + name.length);
      out.set(a.key!, 0);
      out.set(a.clef!, 64);
      out[128] = name.length;
      out.set(name, 129);
      const size = reg[1]! >>> 0;
      const at = (vcpu.segBase[3]! + reg[7]!) >>> 0;
      const n = Math.min(size, out.length);
      if (size < 128 || !this.writeGuest(at, out.subarray(0, n))) status = KEY_STATUS.BAD_BUFFER;
      out.fill(0);
    }
    const sp = (vcpu.segBase[2]! + reg[4]!) >>> 0;
    const spAt = this.walk(sp);
    if (spAt < 0 || spAt + 4 > this.ramBytes) {
      // No return address to pop (the caller's stack is not in its RAM): the VE stops, as after a
      // triple fault, rather than calling again and again.
      this.alarm = 'key call without a return address';
      this.emit({ kind: 'alarm', ve: this.id, reason: this.alarm, eip: vcpu.eip });
      return true;
    }
    vcpu.eip = this.vm.phys.read32(spAt);
    reg[4] = (reg[4]! + 4) >>> 0;
    reg[0] = status;
    reg[2] = a.version ?? 0;
    this.instructions++;
    vcpu.instructions++;
    this.emit({
      kind: 'key-trap',
      ve: this.id,
      phase: 'answer',
      ring: vcpu.cpl,
      status,
      ...(a.version === undefined ? {} : { version: a.version }),
    });
    this.realize();
    return true;
  }

  /** While a key call waits, the VE's time passes without it running (the caller is blocked). */
  private keyWait(left: number, executed = 0): RunResult {
    this.vcpu.instructions += left;
    return { reason: 'budget', executed: executed + left };
  }

  /**
   * Writes `bytes` at guest-linear `at` with the caller's rights (a ring-3 caller only into user
   * pages, nobody into read-only ones), all or nothing. False when any page refuses.
   */
  private writeGuest(at: number, bytes: Uint8Array): boolean {
    const paging = this.vcpu.mmu.paging;
    const user = this.vcpu.cpl === 3;
    const parts: [number, number, number][] = [];
    for (let off = 0; off < bytes.length; ) {
      const lin = (at + off) >>> 0;
      const gpa = this.walk(lin);
      const n = Math.min(bytes.length - off, 4096 - (lin & 0xfff));
      if (gpa < 0 || gpa + n > this.ramBytes) return false;
      if (
        paging &&
        ((user && this.walkU !== 1) || ((user || this.vcpu.mmu.writeProtect) && this.walkW !== 1))
      ) {
        return false;
      }
      parts.push([gpa, off, n]);
      off += n;
    }
    const ram = this.vm.phys.ram;
    for (const [gpa, off, n] of parts) ram.set(bytes.subarray(off, off + n), gpa);
    return true;
  }

  /**
   * A far return or IRET the virtual CPU is about to execute may pop a frame a native transfer
   * pushed, whose CS (and SS) carry the real RPL of the caller's ring: 2 for virtual ring 0, 3 for
   * rings 1 and 2. When the popped CS names non-conforming code of virtual ring d and its RPL is
   * realCpl(d) rather than d, it is such a selector: the frame gets the virtual RPL, as the bare
   * machine pushed it (so its memory matches too). Conforming code always traps (sdt.ts), so its
   * frames are the virtual CPU's own.
   */
  private repairReturnFrame(op: number, gpaOp: number): void {
    if (op !== 0x72 && op !== 0x73 && op !== 0x74) return;
    const vcpu = this.vcpu;
    const esp = vcpu.reg[4]! >>> 0;
    const stack = (vcpu.segBase[2]! + esp) >>> 0;
    const csAt = this.walk((stack + 4) >>> 0);
    if (csAt < 0 || csAt + 4 > this.ramBytes) return;
    const phys = this.vm.phys;
    const cs = phys.read32(csAt) & 0xffff;
    const table = cs & 4 ? this.ldt.copy : this.gdt.copy;
    const hi = table[(cs >>> 3) * 2 + 1];
    if (hi === undefined || ((hi >>> 25) & 0xe) !== 0xc) return; // not non-conforming code
    const d = (hi >>> 29) & 3;
    const rpl = cs & 3;
    if (rpl === d || rpl !== realCpl(d)) return;
    phys.write32(csAt, (phys.read32(csAt) & ~3) | d);
    if (d <= vcpu.cpl) return;
    // An outward return pops SS:ESP after CS:EIP (and EFLAGS, or the released parameters).
    const imm = op === 0x73 ? phys.read32(gpaOp + 4) & 0xffff : 0;
    const ssAt = this.walk((stack + (op === 0x74 ? 16 : 12 + imm)) >>> 0);
    if (ssAt < 0 || ssAt + 4 > this.ramBytes) return;
    const ss = phys.read32(ssAt);
    if ((ss & 3) === realCpl(d)) phys.write32(ssAt, (ss & ~3) | d);
  }

  /** Sets the accessed bits of the guest's PDEs and PTEs mapping [base, base + limit] (see mapTables). */
  private touch(base: number, limit: number): void {
    const phys = this.vm.phys;
    const cr3 = this.vcpu.mmu.cr3 & ~0xfff;
    const first = base >>> 12;
    const last = ((base + limit) >>> 0) >>> 12;
    if (last < first || last - first > 16) return;
    for (let p = first; p <= last; p++) {
      const pdeAt = (cr3 + ((p >>> 10) << 2)) >>> 0;
      const pde = phys.read32(pdeAt);
      if (!(pde & 1)) continue;
      const pteAt = ((pde & ~0xfff) + ((p & 0x3ff) << 2)) >>> 0;
      const pte = phys.read32(pteAt);
      if (!(pte & 1)) continue;
      if (!(pde & 0x20)) phys.write32(pdeAt, pde | 0x20);
      if (!(pte & 0x20)) phys.write32(pteAt, pte | 0x20);
    }
  }

  /** A timed device asked to end the slice after the virtual CPU's instruction (machine.ts). */
  private endRun(): boolean {
    if (!this.vcpu.endRun) return false;
    this.vcpu.endRun = false;
    return true;
  }

  /**
   * The virtual CPU executes one instruction (or takes a pending interrupt) on the guest's state;
   * `vector` and `errorCode` are the trap that led here (-1: none). A fault it raises is delivered
   * to the guest. After an interrupt it goes on with the handler for up to `more` instructions
   * (the lookahead, below).
   */
  private step(vector: number, errorCode?: number, captured = false, software = false, more = 0): RunResult {
    const vcpu = this.vcpu;
    if (!captured) this.capture();
    // The interrupted instruction: an interrupt handler that returns there has finished (lookahead);
    // with the stack, what shows that an interrupt's delivery faulted before it changed anything.
    const eip0 = vcpu.eip;
    const cs0 = vcpu.segSel[1]!;
    const esp0 = vcpu.reg[4]!;
    const ss0 = vcpu.segSel[2]!;
    const trBefore = vcpu.trSel;
    const ringBefore = vcpu.cpl;
    // The virtual CPU keeps its TLB between steps, as a bare CPU does between instructions; the
    // guest's INVLPG and CR3 writes flush it, and the shadow tables with it.
    const vmmu = vcpu.mmu;
    const gen = vmmu.generation;
    // The opcode `trap` read at the trapping EIP (0x100: not readable).
    if (vector >= 0) {
      const gpaOp = (this.codeGpa + ((this.cpu.segBase[1]! + this.cpu.eip) & 0xfff)) >>> 0;
      this.repairReturnFrame(this.trapOp, gpaOp);
    }
    // VEDT substitution: the virtual CPU sees the guest view in the VEDT's memory (VEDT-3, -7).
    const vt = this.vt;
    if (vt !== undefined) this.swapIn(vt);
    let r: RunResult;
    let reflected = false;
    let ring = ringBefore;
    try {
      r = run(vcpu, 1);
      if (r.reason === 'exit') {
        reflected = true;
        // A fault while delivering the interrupt (run's prologue) completes no instruction: the
        // bare loop then runs the fault handler's first one in the same step, which here runs
        // after this step and counts there. Any other fault is its instruction's step.
        const unmoved =
          vcpu.eip === eip0 && vcpu.segSel[1] === cs0 && vcpu.reg[4] === esp0 && vcpu.segSel[2] === ss0;
        r = this.reflect(r, !(vector < 0 && unmoved));
      }
      // Lookahead: after an interrupt the virtual CPU also runs its handler, up to `more`
      // instructions, until it returns to the interrupted instruction, halts, faults, stops or a
      // device asks to end the slice: the handler's OUT and IRET, which would trap one by one
      // natively, cost no entry of their own (`interruptLookahead`).
      if (vector < 0 && more > 0 && r.reason === 'budget' && !reflected) {
        let executed = r.executed;
        for (let n = 0; n < more; n++) {
          ring = this.countRing(ring);
          if (vcpu.endRun || vcpu.halted || (vcpu.eip === eip0 && vcpu.segSel[1] === cs0)) break;
          const lin = (vcpu.segBase[1]! + vcpu.eip) >>> 0;
          const gpaOp = this.used(lin);
          // Code on the empty bus is for native execution: the key address lies there (KEY-6),
          // and the fetch that page-faults natively is the key trap.
          if (gpaOp < 0 || (gpaOp >= this.ramBytes && gpaOp < this.romFirst)) break;
          this.repairReturnFrame(this.vm.phys.read8(gpaOp), gpaOp);
          let s = run(vcpu, 1);
          if (s.reason === 'exit') {
            reflected = true;
            s = this.reflect(s, true);
          }
          this.lookahead += s.executed;
          executed += s.executed;
          if (s.reason !== 'budget' || reflected) {
            r = { ...s, executed };
            break;
          }
          r = { reason: 'budget', executed };
        }
      }
    } finally {
      if (vt !== undefined) this.swapOut(vt);
    }
    this.instructions += r.executed;
    // The guest's tables are compared again before native code runs, unless this was a software
    // interrupt that provably left them alone (the system-call path: see intLeftTablesAlone).
    if (!(software && !reflected && vcpu.trSel === trBefore && this.intLeftTablesAlone())) {
      this.tablesDirty = true;
    }
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
    this.countRing(ring);
    this.realize();
    return r;
  }

  /** A ring change of the virtual CPU since it was at `ring`, counted and told; its ring now. */
  private countRing(ring: number): number {
    const now = this.vcpu.cpl;
    if (now !== ring) {
      this.ringChanges[ring * 4 + now]!++;
      if (this.onEvent !== undefined) this.emit({ kind: 'ring-change', ve: this.id, from: ring, to: now });
    }
    return now;
  }

  /**
   * The virtual CPU faults where the bare machine does: the run loop's own delivery, through the
   * guest's IDT.
   */
  private reflect(r: RunResult, completes: boolean): RunResult {
    const vcpu = this.vcpu;
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
      // As the bare run loop: a fault delivered completes the instruction's step, and the devices'
      // clock (cpu.instructions) counts it (`completes`: not a fault of an interrupt's delivery).
      if (d !== undefined) return { ...d, executed: 0 };
      if (!completes) return { reason: 'budget', executed: 0 };
      vcpu.instructions++;
      return { reason: 'budget', executed: 1 };
    } finally {
      vcpu.exitVectors = ALL_VECTORS;
    }
  }

  /**
   * A system call's trap in the common case, `step` cut to what an INT n through an interrupt or
   * trap gate can change: the virtual CPU delivers it (`intDirect`, else false: nothing changed,
   * `step` goes on), the tables are compared again unless it provably left them alone, and only
   * ESP, EIP, EFLAGS, the shadow, CS and SS go back to the real CPU (the rest of it is as `capture`
   * left it, and the delivery changes neither the descriptor-table registers nor paging), unless
   * the new ring needs another SDT (then all of it: `realize`). Not under VEDT substitution.
   */
  private systemCall(vector: number): boolean {
    if (this.vt !== undefined) return false;
    const vcpu = this.vcpu;
    const ringBefore = vcpu.cpl;
    if (!this.intDirect(vector)) return false;
    this.instructions++;
    // deliverFast switches no task: the frame and the descriptors are all there is to check.
    if (!this.intLeftTablesAlone()) this.tablesDirty = true;
    const ring = this.countRing(ringBefore);
    if (this.needsSdt(ring)) {
      this.realize();
      return true;
    }
    this.cpu.reg[4] = vcpu.reg[4]!;
    this.cpu.eip = vcpu.eip;
    this.realizeFlags();
    const rpl = realCpl(ring);
    this.realizeSegment(1, rpl, this.sdtK);
    this.realizeSegment(2, rpl, this.sdtK);
    return true;
  }

  /**
   * The system-call path: `run(vcpu, 1)` for the INT n the real CPU stopped at (TB-3 rule 6), when
   * its prologue would do nothing (no interrupt to take first, no hook, breakpoint or trace, not
   * halted or asked to end the run) and the delivery takes the common case (`deliverFast`: it
   * decides no fault and changes nothing when it declines). The same but for the fetch: the real
   * CPU read the same bytes through the shadow tables (filled after the virtual CPU's own access,
   * which set the guest's accessed bits) and checked their encoding and the CS limit before it
   * stopped; `trap` read the opcode. So the virtual CPU's fetch is left out.
   */
  private intDirect(vector: number): boolean {
    const vcpu = this.vcpu;
    if (this.trapOp !== OP_INT || vcpu.halted || vcpu.shutdown || vcpu.endRun) return false;
    if (vcpu.beforeStep !== undefined || vcpu.trace !== undefined || vcpu.breakpoints.size > 0) return false;
    const irq = vcpu.irq;
    if (
      (vcpu.eflags & IF) !== 0 &&
      irq !== undefined &&
      !vcpu.interruptShadow &&
      (irq.hasPending === undefined || irq.hasPending()) &&
      irq.pending() >= 0
    ) {
      return false;
    }
    const eip = vcpu.eip;
    if (!deliverFast(vcpu, vector, -1, true, (eip + 8) >>> 0)) return false;
    // What the prologue and the loop do around the instruction (exec.ts `run`).
    vcpu.interruptShadow = false;
    vcpu.instructions++;
    return true;
  }

  private trap(vector: number, errorCode: number | undefined, software: boolean): void {
    this.traps++;
    // The cause is counted under a number (vector, opcode, software) and named in stats(): a trap
    // allocates nothing unless someone listens.
    const cpu = this.cpu;
    const linear = (cpu.segBase[1]! + cpu.eip) >>> 0;
    // The code page's translation is kept until the shadows are flushed (a guest mapping change).
    if (linear >>> 12 !== this.codePage) {
      this.codePage = linear >>> 12;
      this.codeGpa = this.walk((linear & ~0xfff) >>> 0);
    }
    const op = this.codeGpa < 0 ? 0x100 : this.vm.phys.read8((this.codeGpa + (linear & 0xfff)) >>> 0);
    this.trapOp = op;
    const key = software ? CAUSE_INT | vector : ((vector & 31) << 9) | op;
    this.trapCounts[key]!++;
    if (this.onEvent !== undefined) {
      this.onEvent({
        kind: 'trap',
        ve: this.id,
        cause: causeName(key),
        vector,
        ...(errorCode === undefined ? {} : { errorCode }),
        eip: cpu.eip,
        ring: (cpu.segSel[1]! & 3) === 2 ? 0 : this.sdtK,
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
    const reg = cpu.reg;
    const vreg = vcpu.reg;
    // Eight dwords: a loop is cheaper than TypedArray.prototype.set at every trap.
    for (let i = 0; i < 8; i++) vreg[i] = reg[i]!;
    vcpu.eip = cpu.eip;
    vcpu.eflags = ((cpu.eflags & ~(IF | IOPL)) | (vcpu.eflags & (IF | IOPL))) >>> 0;
    vcpu.interruptShadow = cpu.interruptShadow;
    const segSel = cpu.segSel;
    const segBase = cpu.segBase;
    const segLimit = cpu.segLimit;
    const segHi = cpu.segHi;
    const lastSel = this.lastSel;
    const lastBase = this.lastBase;
    const lastLimit = this.lastLimit;
    const lastHi = this.lastHi;
    const ring = (segSel[1]! & 3) === 2 ? 0 : this.sdtK;
    for (let s = 0; s < 6; s++) {
      const sel = segSel[s]!;
      if (
        sel === lastSel[s] &&
        segBase[s] === lastBase[s] &&
        segLimit[s] === lastLimit[s] &&
        segHi[s] === lastHi[s]
      ) {
        continue;
      }
      // Loaded natively since `realize`: the guest's view is the VEDT entry (unchanged since, as
      // writes to it trap), with the virtual RPL in CS and SS. Once captured it is not a native
      // load any more: the next capture keeps it (the descriptor may change in the VEDT
      // afterwards; the cache must not, as on the bare machine).
      this.lastSel[s] = sel;
      this.lastBase[s] = cpu.segBase[s]!;
      this.lastLimit[s] = cpu.segLimit[s]!;
      this.lastHi[s] = cpu.segHi[s]!;
      const vsel = s === 1 || s === 2 ? (sel & ~3) | ring : sel;
      if ((sel & 0xfffc) === 0 || !(cpu.segFlags[s]! & SEG_USABLE)) {
        setNull(vcpu, s, vsel);
        continue;
      }
      const table = sel & 4 ? this.ldt.copy : this.gdt.copy;
      const i = (sel >>> 3) * 2;
      setSegment(vcpu, s, vsel, table[i] ?? 0, table[i + 1] ?? 0);
      // The bare CPU read that descriptor (and, for an inward transfer, the TSS) through the
      // guest's page tables, setting their accessed bits; the real CPU read the shadows.
      if (vcpu.mmu.paging) {
        this.touch(((sel & 4 ? vcpu.ldtBase : vcpu.gdtBase) + (sel & ~7)) >>> 0, 7);
        if (s === 2 && vcpu.trUsable) this.touch(vcpu.trBase, 11);
      }
    }
  }

  /** The virtual CPU's state into the real CPU, ring-compressed, with the SDT of its ring. */
  private realize(): void {
    const cpu = this.cpu;
    const vcpu = this.vcpu;
    const ring = vcpu.cpl;
    if (this.needsSdt(ring)) this.switchSdt(ring);
    if (this.vt === undefined) this.gdt.ensure(this.sdtK, false);
    else this.substitute();
    if (vcpu.ldtUsable) this.ldt.ensure(this.sdtK, false);
    const k = this.sdtK;
    const reg = cpu.reg;
    const vreg = vcpu.reg;
    for (let i = 0; i < 8; i++) reg[i] = vreg[i]!;
    cpu.eip = vcpu.eip;
    this.realizeFlags();
    const rpl = realCpl(ring);
    for (let s = 0; s < 6; s++) this.realizeSegment(s, rpl, k);
    cpu.gdtBase =
      (this.hole + (this.vt === undefined ? SDT_SLOT(k) : VEDT_ALIAS + (this.vt.base & 0xfff))) >>> 0;
    cpu.gdtLimit = vcpu.gdtLimit;
    cpu.ldtSel = vcpu.ldtSel;
    if (vcpu.ldtUsable) {
      cpu.ldtBase = (this.hole + LDT_SLOT(k)) >>> 0;
      cpu.ldtLimit = vcpu.ldtLimit;
    } else {
      // The guest has no LDT: the real one is the VM manager's, whose one entry (its ring-0 stack,
      // DPL 0) no guest load can use: at real ring 2 or 3 it faults as the bare machine's null LDT.
      cpu.ldtBase = (this.hole + VMM_LDT_LINEAR) >>> 0;
      cpu.ldtLimit = 7;
    }
    cpu.ldtUsable = true;
    cpu.trSel = vcpu.trSel;
    cpu.trBase = (this.hole + TSS_LINEAR) >>> 0;
    cpu.trLimit = 103;
    cpu.trUsable = true;
    const pd = this.space().pd;
    if (cpu.mmu.cr3 !== pd) {
      cpu.mmu.cr3 = pd;
      cpu.mmu.flush();
    }
  }

  /**
   * Virtual ring `ring` runs under another SDT than the one in force: every ring but 0, which keeps
   * the SDT it was entered under (SDT-15), has its own. `realize` switches then, and `systemCall`
   * leaves it to `realize`.
   */
  private needsSdt(ring: number): boolean {
    return ring !== 0 && ring !== this.sdtK;
  }

  /** EFLAGS and the interrupt shadow into the real CPU: the real IOPL is min(virtual IOPL, 1). */
  private realizeFlags(): void {
    const vcpu = this.vcpu;
    const iopl = (vcpu.eflags & IOPL) === 0 ? 0 : 1;
    this.cpu.eflags = ((vcpu.eflags & ~IOPL) | (iopl << 12)) >>> 0;
    this.cpu.interruptShadow = vcpu.interruptShadow;
  }

  /**
   * Segment register `s` of the virtual CPU into the real one under SDT_k: CS and SS with the real
   * RPL `rpl` of the ring, a usable descriptor with the real ring of its virtual DPL (R_k(v),
   * rings.ts) in bits 29-30 of dword 1; remembered for `capture`.
   */
  private realizeSegment(s: number, rpl: number, k: number): void {
    const cpu = this.cpu;
    const vcpu = this.vcpu;
    const vsel = vcpu.segSel[s]!;
    const sel = s === 1 || s === 2 ? (vsel & ~3) | rpl : vsel;
    const vhi = vcpu.segHi[s]! | 0;
    const flags = vcpu.segFlags[s]!;
    const hi = flags & SEG_USABLE ? (vhi & ~0x6000_0000) | (realRing(k, (vhi >>> 29) & 3) << 29) : vhi;
    const base = vcpu.segBase[s]!;
    const limit = vcpu.segLimit[s]!;
    cpu.segSel[s] = sel;
    cpu.segBase[s] = base;
    cpu.segLimit[s] = limit;
    cpu.segHi[s] = hi;
    cpu.segFlags[s] = flags;
    this.lastSel[s] = sel;
    this.lastBase[s] = base;
    this.lastLimit[s] = limit;
    this.lastHi[s] = hi;
  }

  private switchSdt(k: number): void {
    if (k === this.sdtK) return;
    this.emit({ kind: 'sdt-switch', ve: this.id, from: this.sdtK, to: k });
    this.gdt.counters.switches++;
    this.sdtK = k;
    if (this.vt === undefined) this.gdt.ensure(k);
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
    const key = this.key;
    const pg = m.paging ? m.cr3 : -1;
    const paging = key[7] !== pg;
    const gdt = paging || key[0] !== v.gdtBase || key[1] !== v.gdtLimit;
    const ldtBase = v.ldtUsable ? v.ldtBase : -1;
    const ldt = paging || key[2] !== ldtBase || key[3] !== v.ldtLimit;
    const trBase = v.trUsable ? v.trBase : -1;
    const tr = key[4] !== trBase || key[5] !== v.trLimit;
    if (!gdt && !ldt && !tr && !paging) return;
    key[0] = v.gdtBase;
    key[1] = v.gdtLimit;
    key[2] = ldtBase;
    key[3] = v.ldtLimit;
    key[4] = trBase;
    key[5] = v.trLimit;
    key[7] = pg;
    if (gdt) {
      this.unsubstitute();
      this.vt = this.vedtOpts === undefined ? undefined : this.vedtTable(v.gdtBase, v.gdtLimit);
      if (this.vt === undefined) {
        this.gdt.load(this.readVedt(v.gdtBase, v.gdtLimit), this.sdtK);
        this.scratch = new Int32Array(this.gdt.copy.length);
        this.checkQpt();
      } else {
        this.gdt.copy = this.vt.view;
        if (this.vedtOpts!.mode === 'static' && (ringsUsed(this.vt.view) & 0b0110) !== 0) {
          this.emit({
            kind: 'warning',
            ve: this.id,
            reason: 'static VEDT substitution: virtual rings 1-3 all run at real ring 3, unisolated (VEDT-8)',
          });
        }
        for (const gpa of this.vt.pages) this.vedtFrames.add(gpa >>> 12);
        // The alias maps guest frames: not the VM manager's pages (not in holePages).
        for (const [i, gpa] of this.vt.pages.entries())
          this.holePte(VEDT_ALIAS + i * 0x1000, (this.portionBase + gpa) | 0x61);
      }
    }
    if (ldt) {
      this.ldt.load(v.ldtUsable ? this.readVedt(v.ldtBase, v.ldtLimit) : new Int32Array(0), this.sdtK);
    }
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
      this.flushShadows(); // resolves the tables' pages too
    } else {
      this.mapTables();
    }
  }

  /** The dwords of a VEDT of limit `limit` at guest linear `base` (entries of a page the guest has not mapped read as 0). */
  private readVedt(base: number, limit: number, into?: Int32Array): Int32Array {
    const entries = Math.floor((limit + 1) / 8);
    const out = into !== undefined && into.length === entries * 2 ? into : new Int32Array(entries * 2);
    const phys = this.vm.phys;
    let page = -1;
    let gpaPage = -1;
    for (let i = 0; i < out.length; i++) {
      const linear = (base + 4 * i) >>> 0;
      if (linear >>> 12 !== page) {
        // One walk per page; a dword crossing a page (a table not 4-aligned) takes the slow path.
        page = linear >>> 12;
        gpaPage = this.walk((page << 12) >>> 0);
      }
      if (gpaPage < 0) out[i] = 0;
      else if ((linear & 0xfff) <= 0xffc) out[i] = phys.read32(gpaPage + (linear & 0xfff)) | 0;
      else {
        const gpa = this.walk(linear);
        out[i] = gpa < 0 ? 0 : phys.read32(gpa) | 0;
      }
    }
    return out;
  }

  /**
   * Before native execution: the SDTs follow the VEDTs, the real tables and shadow TSS are current.
   * Native code cannot change them (their pages are read-only to it): only the virtual CPU's
   * instructions and the devices can, so this runs after those.
   */
  private syncTables(): void {
    if (!this.tablesDirty) return;
    this.tablesDirty = false;
    const v = this.vcpu;
    if (this.vt === undefined && !v.ldtUsable && this.gdtUnchanged()) {
      this.flushTable(this.gdt, this.sdtK, SDT_SLOT(this.sdtK)); // an SDT just built or selected
      this.syncTss();
      return;
    }
    if (this.vt !== undefined) this.absorb();
    const changed =
      this.vt !== undefined ? [] : this.gdt.update(this.readVedt(v.gdtBase, v.gdtLimit, this.scratch));
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
    if (this.vt === undefined) this.flushTable(this.gdt, k, SDT_SLOT(k));
    if (v.ldtUsable) this.flushTable(this.ldt, k, LDT_SLOT(k));
    // The guest's ring-0 stack is the real ring-2 stack; a selector whose RPL is not 0 gets RPL 1,
    // so that the native inward call faults as the bare one would (#TS).
    this.syncTss();
  }

  /**
   * Whether the GDT's dwords equal the copy the SDTs were built from, read straight from the
   * portion through the guest-physical pages `mapTables` resolved (the common case: one compare per
   * dword, no page walk). A table not 4-aligned or not all in RAM takes the general path.
   */
  private gdtUnchanged(): boolean {
    const pages = this.gdtPages;
    const copy = this.gdt.copy;
    const base = this.vcpu.gdtBase;
    if (pages === undefined || base & 3) return false;
    const ram32 = this.vm.phys.ram32;
    const off = base & 0xfff;
    if (pages.length === 1) {
      // The whole table in one page (the usual case): one run of dwords.
      const gpa = pages[0]!;
      if (gpa < 0) return false;
      const at = (gpa + off) >>> 2;
      for (let i = 0; i < copy.length; i++) if (ram32[at + i] !== copy[i]) return false;
      return true;
    }
    for (let i = 0; i < copy.length; i++) {
      const linear = (base + 4 * i) >>> 0;
      const gpa = pages[(linear >>> 12) - (base >>> 12)]!;
      if (gpa < 0) return false;
      if (ram32[(gpa + (linear & 0xfff)) >>> 2] !== copy[i]) return false;
    }
    return true;
  }

  /** The guest's ring-0 stack (TSS SS0:ESP0) into the shadow TSS's ring-2 stack, when it changed. */
  private syncTss(): void {
    // A selector whose RPL is not 0 gets RPL 1, so that the native inward call faults as the bare
    // one would (#TS).
    let esp0 = 0;
    let ss0 = 0;
    const a = this.tssEsp0;
    if (a >= 0) {
      esp0 = this.vm.phys.read32(a) | 0;
      const sel = this.vm.phys.read32(a + 4) & 0xffff;
      ss0 = (sel & ~3) | ((sel & 3) === 0 ? 2 : 1);
    }
    if (esp0 === this.lastEsp0 && ss0 === this.lastSs0) return;
    this.lastEsp0 = esp0;
    this.lastSs0 = ss0;
    this.holeWrite32(TSS_LINEAR + 20, esp0);
    this.holeWrite32(TSS_LINEAR + 24, ss0);
  }

  /** Resolves where the guest's GDT and TSS fields are in guest-physical memory (after paging changes). */
  private mapTables(): void {
    const v = this.vcpu;
    const first = v.gdtBase >>> 12;
    const last = ((v.gdtBase + v.gdtLimit) >>> 0) >>> 12;
    if (last < first || last - first > 16) this.gdtPages = undefined;
    else {
      const pages = new Int32Array(last - first + 1);
      for (let p = first; p <= last; p++) {
        const gpa = this.walk((p << 12) >>> 0);
        pages[p - first] = gpa >= 0 && gpa < this.ramBytes ? gpa : -1;
      }
      this.gdtPages = pages;
    }
    this.tssEsp0 = -1;
    if (v.trUsable && v.trLimit >= 11 && ((v.trBase + 4) & 0xfff) <= 0xff8) {
      const gpa = this.walk((v.trBase + 4) >>> 0);
      if (gpa >= 0 && gpa + 8 <= this.ramBytes) this.tssEsp0 = gpa;
    }
    this.lastEsp0 = Number.NaN;
  }

  /** Copies SDT_k's changed entries into the real memory at `linear`. */
  private flushTable(set: ShadowSet, k: number, linear: number): void {
    const t = set.tables[k];
    const dirty = set.dirty[k]!;
    if (t === undefined || dirty.size === 0) return;
    if (dirty.has(-1)) {
      // Page by page: the slot's real page resolved once, the dwords copied into RAM directly.
      const ram32 = this.cpu.mmu.phys.ram32;
      for (let i = 0; i < t.length; ) {
        const lin = linear + 4 * i; // an offset in the reserved range
        this.holeWrite32(lin, t[i]!); // maps the page if it is new
        const frame = this.holePages.get(lin & ~0xfff)!;
        const end = Math.min(t.length, i + ((0x1000 - (lin & 0xfff)) >>> 2));
        ram32.set(t.subarray(i, end), (frame + (lin & 0xfff)) >>> 2);
        i = end;
      }
    } else {
      for (const e of dirty) {
        this.holeWrite32(linear + 8 * e, t[2 * e]!);
        this.holeWrite32(linear + 8 * e + 4, t[2 * e + 1]!);
      }
    }
    dirty.clear();
  }

  /** Writes a dword at offset `off` of the VM manager's reserved range (allocating and mapping its page). */
  private holeWrite32(off: number, value: number): void {
    const page = off & ~0xfff;
    let at = this.holePages.get(page);
    if (at === undefined) {
      at = this.pool.alloc();
      this.holeMap(page, at, false);
    }
    this.cpu.mmu.phys.write32(at + (off & 0xfff), value);
  }

  /**
   * Maps a page of the reserved range to real page `frame` (its own, freed with the VE), supervisor
   * only, writable or not; accessed and dirty preset.
   */
  private holeMap(off: number, frame: number, writable: boolean): void {
    const page = off & ~0xfff;
    this.holePages.set(page, frame);
    this.holePte(page, frame | 0x61 | (writable ? 2 : 0));
  }

  /** Sets the page-table entry of offset `off` of the reserved range (0: not present). */
  private holePte(off: number, pte: number): void {
    this.cpu.mmu.phys.write32(this.holePt + ((off >>> 12) & 0x3ff) * 4, pte);
    this.cpu.mmu.invalidate((this.hole + off) >>> 0);
  }

  // ---- VEDT substitution (vedt.ts) ----

  /** A substituted table for the VEDT at `base`, or undefined if a page of it is not RAM. */
  private vedtTable(base: number, limit: number): VedtTable | undefined {
    const pages: number[] = [];
    const first = base >>> 12;
    const last = ((base + limit) >>> 0) >>> 12;
    if (last < first || last - first > 16) return undefined;
    for (let p = first; p <= last; p++) {
      const gpa = this.walk(p << 12);
      // Not mapped, or ROM (as the boot ROM's own GDT): cannot be rewritten in place; shadowed.
      if (gpa < 0 || gpa >= this.ramBytes) return undefined;
      pages.push(gpa);
    }
    const vt = new VedtTable(base, limit, pages, new Int32Array(Math.floor((limit + 1) / 8) * 2));
    for (let i = 0; i < vt.view.length; i++) vt.view[i] = this.vm.phys.read32(vt.gpa(i)) | 0;
    vt.image.set(vt.view);
    return vt;
  }

  /** The ring the table is substituted for. */
  private vedtRing(): number {
    return this.vedtOpts!.mode === 'static' ? 1 : this.sdtK;
  }

  /** Writes the substituted entries for the current ring into the table (a rewrite if needed). */
  private substitute(): void {
    const vt = this.vt!;
    const k = this.vedtRing();
    if (vt.k === k) return;
    if (vt.lastK >= 0 && vt.lastK !== k) this.vedtCounters.rewrites++;
    vt.lastK = k;
    const mode = this.vedtOpts!.mode;
    for (let i = 0; i < vt.view.length; i += 2) {
      vt.image[i] = vt.view[i]!;
      vt.image[i + 1] = substituteHi(vt.view[i + 1]!, k, mode, this.outwardGuard);
    }
    for (let i = 0; i < vt.image.length; i++) this.vm.phys.write32(vt.gpa(i), vt.image[i]!);
    vt.k = k;
  }

  /** The table's memory back to the guest view (the guest stops using it, or the VE is deleted). */
  private unsubstitute(): void {
    const vt = this.vt;
    if (vt === undefined) return;
    this.closeWindows();
    this.absorb();
    for (let i = 0; i < vt.view.length; i++) this.vm.phys.write32(vt.gpa(i), vt.view[i]!);
    for (let p = 0; p < vt.pages.length; p++) this.holePte(VEDT_ALIAS + p * 0x1000, 0);
    this.vedtFrames.clear();
    this.vt = undefined;
  }

  /**
   * What changed in the table's memory since the VM manager wrote it (a method-2 direct write, a
   * DMA) is the guest's: into the guest view, then overwritten with its substitute (VEDT-5, -10).
   */
  private absorb(): void {
    const vt = this.vt!;
    if (vt.k < 0) return;
    const changed: number[] = [];
    const mode = this.vedtOpts!.mode;
    for (let i = 0; i < vt.image.length; i += 2) {
      const lo = this.vm.phys.read32(vt.gpa(i)) | 0;
      const hi = this.vm.phys.read32(vt.gpa(i + 1)) | 0;
      if (lo === vt.image[i] && hi === vt.image[i + 1]) continue;
      vt.view[i] = lo;
      vt.view[i + 1] = hi;
      vt.image[i] = lo;
      vt.image[i + 1] = substituteHi(hi, vt.k, mode, this.outwardGuard);
      this.vm.phys.write32(vt.gpa(i + 1), vt.image[i + 1]!);
      changed.push(i >>> 1);
    }
    if (changed.length > 0) {
      this.vedtCounters.overwrites += changed.length;
      this.gdt.counters.vedtChanges++;
      this.emit({ kind: 'vedt-change', ve: this.id, table: 'gdt', entries: changed });
    }
  }

  /** Before the virtual CPU's instruction: the guest view in memory. */
  private swapIn(vt: VedtTable): void {
    this.absorb();
    for (let i = 0; i < vt.view.length; i++) this.vm.phys.write32(vt.gpa(i), vt.view[i]!);
    vt.k = -1;
  }

  /** After it: what it wrote is the guest's (a trapped write, VEDT-4); `realize` substitutes again. */
  private swapOut(vt: VedtTable): void {
    const changed: number[] = [];
    for (let i = 0; i < vt.view.length; i += 2) {
      const lo = this.vm.phys.read32(vt.gpa(i)) | 0;
      const hi = this.vm.phys.read32(vt.gpa(i + 1)) | 0;
      if (lo === vt.view[i] && hi === vt.view[i + 1]) continue;
      vt.view[i] = lo;
      vt.view[i + 1] = hi;
      changed.push(i >>> 1);
    }
    if (changed.length > 0) {
      this.gdt.counters.vedtChanges++;
      this.emit({ kind: 'vedt-change', ve: this.id, table: 'gdt', entries: changed });
    }
  }

  /**
   * A page fault at `linear` while the GDT is substituted. A guest write to a VEDT page under
   * method 2 opens the page for direct writes (returns true: retry natively); anything else is a
   * trapped read or write (method 1) for the virtual CPU (returns false).
   */
  private vedtPageFault(linear: number, errorCode: number): boolean {
    const vt = this.vt!;
    const gpa = this.walk(linear);
    if (gpa < 0 || !this.vedtFrames.has(gpa >>> 12) || linear >>> 22 === this.hole >>> 22) return false;
    const write = (errorCode & 2) !== 0;
    if (!write) {
      this.vedtCounters.readTraps++;
      return false;
    }
    // The guest's own page tables must allow the write, with its accessed and dirty bits already
    // set (a direct write would not set them): else the virtual CPU does this one.
    const vm = this.vcpu.mmu;
    const user = (this.cpu.segSel[1]! & 3) === 3 && this.sdtK === 3;
    const allowed =
      !vm.paging || ((!user || this.walkU === 1) && (this.walkW === 1 || (!user && !vm.writeProtect)));
    if (this.vedtMethod === 'trap' || !allowed || (vm.paging && (!this.walkA || !this.walkD))) {
      this.vedtCounters.writeTraps++;
      this.burst++;
      this.writeTrap = true;
      return false;
    }
    // Method 2: open the page. The guest's mapping becomes writable; with the guard (VEDT-9) the
    // real GDTR's alias of the page is unmapped until the window closes.
    const page = vt.pages.indexOf(gpa & ~0xfff);
    const space = this.space();
    const phys = this.cpu.mmu.phys;
    const pte = this.pteAddress(space, linear);
    const u = vm.paging && space !== this.sup ? this.walkU : 1;
    phys.write32(pte, (this.portionBase + (gpa & ~0xfff)) | 0x63 | (u << 2));
    this.cpu.mmu.invalidate(linear);
    const ptes = this.openPtes.get(page) ?? [];
    ptes.push(pte);
    this.openPtes.set(page, ptes);
    if (!vt.open.has(page)) {
      // The page shows the guest view while open, so reads of it (no longer trapped) see what the
      // guest wrote, and writes land raw; `absorb` finds them against the image.
      for (let i = 0; i < vt.view.length; i++) {
        if (vt.page(i) !== page) continue;
        vt.image[i] = vt.view[i]!;
        this.vm.phys.write32(vt.gpa(i), vt.view[i]!);
      }
      vt.open.add(page);
    }
    if (this.vedtOpts!.guard) this.holePte(VEDT_ALIAS + page * 0x1000, 0);
    this.vedtCounters.opens++;
    this.traps++;
    return true;
  }

  /** Closes every method-2 window (VEDT-10): overwrite what was written, unmap, remap the alias. */
  private closeWindows(): void {
    const vt = this.vt;
    if (vt === undefined || vt.open.size === 0) return;
    const before = this.vedtCounters.overwrites;
    this.absorb();
    vt.k = -1; // the open pages hold the guest view: substitute the whole table again
    this.substitute();
    const phys = this.cpu.mmu.phys;
    for (const [page, ptes] of this.openPtes) {
      for (const pte of ptes) phys.write32(pte, 0);
      this.holePte(VEDT_ALIAS + page * 0x1000, (this.portionBase + vt.pages[page]!) | 0x61);
    }
    this.cpu.mmu.flush();
    vt.open.clear();
    this.openPtes.clear();
    this.windowEnd(this.vedtCounters.overwrites - before);
  }

  /** VEDT-6 (method 1): a burst of trapped writes ended; long bursts favour method 2. */
  private burstEnd(): void {
    if (this.burst === 0) return;
    this.bursts.push(this.burst);
    this.burst = 0;
    if (this.vedtOpts?.method !== 'auto' || this.bursts.length < 8) return;
    const mean = this.bursts.reduce((a, b) => a + b, 0) / this.bursts.length;
    this.bursts.length = 0;
    // Method 1 costs a trap per dword written; method 2 one trap per window (the close rides on
    // the next trap): it wins when writes come in bursts of more than one.
    if (mean > 1.5)
      this.setVedtMethod('overwrite', `writes come in bursts of ${mean.toFixed(1)} trapped dwords`);
  }

  /** VEDT-6 (method 2): a window closed having absorbed `entries`; lone writes favour method 1. */
  private windowEnd(entries: number): void {
    this.windows.push(entries);
    if (this.vedtOpts?.method !== 'auto' || this.windows.length < 8) return;
    const mean = this.windows.reduce((a, b) => a + b, 0) / this.windows.length;
    this.windows.length = 0;
    // A window costs its opening trap; a lone dword written per window is a trap per dword at best
    // (and the guard's trap when it is used at once): method 1 does no worse.
    if (mean < 1) this.setVedtMethod('trap', `windows absorb ${mean.toFixed(1)} entries`);
  }

  private setVedtMethod(method: VedtWriteMethod, reason: string): void {
    if (this.vedtMethod === method) return;
    this.vedtMethod = method;
    this.vedtCounters.methodSwitches++;
    this.emit({ kind: 'vedt-method', ve: this.id, method, reason });
  }

  // ---- shadow paging ----

  private newSpace(): Space {
    const pd = this.pool.alloc();
    this.cpu.mmu.phys.write32(pd + (this.hole >>> 22) * 4, this.holePt | 0x67);
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
    if (linear >>> 22 === this.hole >>> 22) {
      // With paging off the range is the empty bus (no conflict); with paging on, a guest that maps
      // it gets it: the VM manager's tables move to a page-directory entry the guest leaves empty.
      const gpa = this.walk(linear);
      if (gpa >= 0 && (gpa < this.ramBytes || gpa >= this.romFirst)) {
        if (this.relocateHole()) {
          this.fill(linear);
          return;
        }
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
      // VEDT substitution: the guest's own mapping of its VEDT stays not present (VEDT-3).
      if (this.vedtFrames.has(gpa >>> 12)) return;
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
    this.cpu.mmu.phys.write32(this.pteAddress(space, linear), frame | 0x61 | (writable ? 2 : 0) | (u << 2));
    this.cpu.mmu.invalidate(linear);
    this.shadowFills++;
  }

  /**
   * The guest maps the reserved range's page-directory entry: move the range to the highest entry
   * the guest's page directory leaves empty (as a VMM of the patent's era moved its hole), and let
   * the guest have its mapping. Returns false if every entry is taken: the VE then stops with
   * VMM_HOLE_CONFLICT.
   */
  private relocateHole(): boolean {
    const m = this.vcpu.mmu;
    const phys = this.vm.phys;
    const old = this.hole >>> 22;
    for (let pdi = 1022; pdi > 0; pdi--) {
      if (pdi === old) continue;
      if (phys.read32(((m.cr3 & ~0xfff) + pdi * 4) >>> 0) & 1) continue;
      const from = this.hole;
      const real = this.cpu.mmu.phys;
      for (const space of [this.user, this.sup]) {
        real.write32(space.pd + old * 4, 0);
        real.write32(space.pd + pdi * 4, this.holePt | 0x67);
      }
      this.hole = (pdi << 22) >>> 0;
      // The VMM's own ring-0 stack segment holds a linear base.
      this.holeWrite32(VMM_LDT_LINEAR, this.hole + STACK0_LINEAR);
      this.cpu.mmu.flush();
      this.emit({ kind: 'hole-moved', ve: this.id, from, to: this.hole });
      this.realize();
      return true;
    }
    return false;
  }

  /** Real address of the shadow PTE of `linear` in `space` (its page table allocated if new). */
  private pteAddress(space: Space, linear: number): number {
    const pdi = linear >>> 22;
    let pt = space.pts.get(pdi);
    if (pt === undefined) {
      pt = this.pool.alloc();
      space.pts.set(pdi, pt);
      this.cpu.mmu.phys.write32(space.pd + pdi * 4, pt | 0x67);
    }
    return pt + ((linear >>> 12) & 0x3ff) * 4;
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
    // The guest's mappings may have changed (INVLPG, CR3): where its tables and code are, too.
    this.mapTables();
    this.codePage = -1;
    this.shadowFlushes++;
  }
}
