/**
 * The block compiler (issue 3): straight-line runs of ordinary instructions (the run loop's own
 * switch, exec.ts) that the run loop reaches often are translated into JavaScript functions, one
 * per *block*, which V8 then compiles to machine code. A block does what the run loop would do for
 * its instructions, check for check, and nothing else:
 *
 * - Decoding and strict decoding (isa.ts, MBZ and MEM_SEGMENT) happen once, when the block is
 *   compiled: an instruction that would raise #UD, or that is not ordinary, ends the block before
 *   it, and the run loop executes it (and raises the fault) as before.
 * - But for the far transfers and data segment loads whose fast paths the run loop tries first
 *   (fast-transfers.ts): a block may hold a MOV of DS, ES, FS or GS and end with a CALLF, RETF,
 *   INT n, INT3 or IRET (a far transfer alone is a block too). It writes its registers and flags
 *   back and calls that fast path as the run loop's `other` would: done, the block goes on (a
 *   segment load) or ends after it and tells the run loop which prologue comes next (CTX.EXIT);
 *   declined (which changed nothing), it ends before it and the run loop executes it, through the
 *   general path that raises the fault. For a VM manager that sees every software interrupt first
 *   (`exitSoftware`), a block that reaches an INT n stops before it and the run stops there, as
 *   the run loop stops it (EXIT_SOFTWARE). (The mixed workload of bench/cpu.ts:
 *   its share of instructions in blocks went from 0.80 to 0.98, its speed up about 6%.)
 * - Every other check runs each time, against the values the run loop's prologue cached (the CS
 *   limit, DS's and SS's base and access bounds, paging: `ctx`, see CTX): near branch targets
 *   against the CS limit, data and stack dwords against DS's and SS's rights and limit, the TLB
 *   with paging on; anything else takes the same general paths (`Cpu.read32` and the rest), which
 *   raise the faults. (A LD or ST at a fixed offset is checked at its first access in each run of
 *   the block: nothing its checks depend on can change inside one, see `compileBlock`.)
 * - The code is checked too: a block starts by comparing the instruction words it was compiled from
 *   with RAM, and does nothing (`ctx[RAN]` 0) if they differ, so code written since (by the guest,
 *   a device, the host or a restore) runs as written. A store inside a block that may have written
 *   the block's own code ends the block after that instruction, as does any access through the
 *   general paths (a page walk writes accessed and dirty bits, which may be words of the block).
 * - A fault leaves the machine as the run loop would: the registers and flags the block keeps in
 *   locals are written back, `cpu.jitAt` says which instruction faulted, and the run loop delivers
 *   the fault at that instruction's EIP with the instructions before it counted.
 *
 * Flags that the next instruction overwrites entirely before anything can read them (no branch on
 * them, no fault in between) are not computed (`flagsLive`). Blocks are kept per 4 KiB physical
 * page (`JitPage`), keyed by the offset of their first instruction, and compiled when the run loop
 * has reached that offset `hot` times without one. A block never runs past the run loop's budget
 * (`stop`), nor outside the current code window (so never past the CS limit), nor while a hook,
 * breakpoint or pending interrupt makes the run loop go one instruction at a time.
 *
 * Traces (`Jit.trace`, `traceSource`): blocks that the run loop keeps running one right after the
 * other (`Link`) become one function in the first one's place, which runs them in turn, their
 * registers in locals throughout, across near branches and far transfers, checking between two
 * that the run loop would run the next one there and returning to it where it would not. (The
 * mixed workload of bench/cpu.ts, nine blocks through four ring changes per turn: its ratio to the
 * bare loop went from about 0.28 to 0.31.)
 */

import { TLB_SIZE } from '../memory/mmu.js';
import type { Cpu } from './cpu.js';
import {
  callGateFast,
  deliverFast,
  farReturnFast,
  interruptReturnFast,
  loadDataSegmentFast,
} from './fast-transfers.js';
import { fault, VEC } from './faults.js';
import { MBZ, MEM_SEGMENT, NO_BASE } from './isa.js';

/**
 * Where the run loop's prologue leaves what blocks need (a Uint32Array: `Cpu.jitCtx`), and where a
 * block says how many instructions it ran (RAN; 0: none, its code changed).
 */
export const CTX = {
  CS_LIMIT: 0,
  /** pgNeed of exec.ts as a uint32: 0xFFFFFFFF paging off. */
  PG_NEED: 1,
  DS_BASE: 2,
  DS_RD_END: 3,
  DS_WR_END: 4,
  SS_BASE: 5,
  SS_RD_END: 6,
  SS_WR_END: 7,
  RAN: 8,
  /**
   * What a block left for the run loop besides RAN (0 when it starts; the run loop reads it after
   * every block and sets it back to 0): EXIT_LIGHT or EXIT_FULL, the prologue the next instruction
   * needs after a far transfer the block made; EXIT_DS, a data segment register was loaded (DS_BASE
   * and the ends are DS's as it is now); EXIT_DECLINED, the block stopped before a far transfer or segment load whose
   * fast path declined it, for the run loop to execute (RAN may be 0 then: not a changed code);
   * EXIT_SOFTWARE and a vector, the run stops before a software interrupt (RAN may be 0 too).
   */
  EXIT: 9,
  /**
   * Where a block that throws a fault was entered (its EIP, set with `cpu.jitAt`): the faulting
   * instruction is at FAULT_EIP + 8 * jitAt. (A trace's parts are entered at EIPs of their own.)
   */
  FAULT_EIP: 10,
} as const;
export const CTX_SIZE = 11;

/** Bits of `ctx[CTX.EXIT]` (see CTX.EXIT); LIGHT and FULL are exec.ts's `slow` values. */
export const EXIT_LIGHT = 1;
export const EXIT_FULL = 3;
export const EXIT_DS = 4;
export const EXIT_DECLINED = 8;
/**
 * The block stopped before an INT n or INT3 that a VM manager sees first (`exitSoftware`), its
 * vector in bits 8-15: the run stops there, as the run loop's `other` stops it.
 */
export const EXIT_SOFTWARE = 16;

/**
 * The end (exclusive) of the offsets at which a dword may be read through a segment with these
 * flags (SEG_USABLE 1, SEG_READ 2) and limit; 0: none (the general path raises the fault).
 */
export function readEnd(flags: number, limit: number): number {
  return (flags & 3) === 3 && limit >= 3 ? (limit - 2) >>> 0 : 0;
}

/** As {@link readEnd}, for a write (SEG_USABLE 1, SEG_WRITE 4). */
export function writeEnd(flags: number, limit: number): number {
  return (flags & 5) === 5 && limit >= 3 ? (limit - 2) >>> 0 : 0;
}

/**
 * A compiled block: `fn(cpu, ctx, eip, room)` runs it with its first instruction at `eip` (int32),
 * at most `room` instructions (at least `len`: a branch back to its start runs it again while
 * another turn fits), and returns the EIP to go on at (int32); `ctx[RAN]` says how many
 * instructions ran (0: none, its code changed). It throws a CpuFault as an instruction does, with
 * `cpu.jitAt` the faulting instruction's index in the block and `ctx[RAN]` those of earlier turns.
 */
export interface Block {
  readonly fn: (cpu: unknown, ctx: Uint32Array, eip: number, room: number) => number;
  readonly len: number;
  /**
   * Times in a row a fast path it called declined (`Jit.declined`); a block is one machine's, its
   * `fn` may be shared.
   */
  declines: number;
  /** The MMU's TLB miss count at its last decline (`Jit.declined`). */
  declinedAt: number;
  /** The physical address of its first instruction (-1: NONE, NEVER). */
  readonly at: number;
  /** The block the run loop ran right after it, last time (see {@link Link}); null: none yet. */
  link: Link | null;
  /**
   * A trace (`Jit.trace`): the blocks it runs one after the other (the first one has this one's
   * place) and the links between them; null: a block.
   */
  readonly path: Path | null;
}

/** A trace's blocks and the links it follows between them (`links[j]` from `parts[j]`). */
export interface Path {
  readonly parts: readonly Block[];
  readonly links: readonly Link[];
}

/**
 * That the run loop ran block `to` right after block `from` (`from.link`), with nothing between:
 * what a trace follows (`Jit.trace`). `far`: `from` ended with a far transfer, and `to` ran at EIP
 * `eip` with CS selector `sel` (so at that CPL). Near: the same CS, both in one physical page, `to`'s
 * EIP `delta` past `from`'s (so that EIP is `to`'s code).
 */
export interface Link {
  to: Block;
  hits: number;
  far: boolean;
  delta: number;
  eip: number;
  sel: number;
}

/**
 * What `fetchesFrom` found for one far link of a trace, while the code windows (`winEpoch`), the
 * MMU generation, CS's base and limit and paging stay as they were: which window the run loop's
 * prologue picks then (`win`, 0: winA), the only one that fits. `epoch` -1: nothing kept.
 */
export interface WindowPick {
  epoch: number;
  gen: number;
  base: number;
  limit: number;
  paging: boolean;
  win: number;
}

/**
 * The bytes a far transfer's fast path may have pushed at SS:ESP: at most 35 dwords (a call gate's
 * frame with 31 parameters); in one page with paging on (fast-transfers.ts `ramIndex`), maybe in
 * two with it off.
 */
const FRAME_BYTES = 140;

/**
 * The physical address of SS:ESP right after a far transfer's fast path pushed its frame there
 * (through a TLB hit, with paging on, which nothing since can have replaced), or -1 if it cannot
 * tell. (`Cpu.frameIndex` would answer too, after access checks that cannot fail here: the mixed
 * workload ran 2% slower with it, in paired runs.)
 */
export function frameAt(cpu: Cpu): number {
  const lin = (cpu.segBase[2]! + cpu.reg[4]!) >>> 0;
  const mmu = cpu.mmu;
  if (mmu.paging !== true) return lin;
  const page = lin >>> 12;
  const i = page & (TLB_SIZE - 1);
  if (mmu.tlbTag[i] !== page + 1) return -1;
  return ((mmu.tlbEntry[i]! & ~0xfff) | (lin & 0xfff)) >>> 0;
}

/**
 * Whether the run loop, at EIP `eip` now, would fetch the instructions from there to `eip + span`
 * from physical `phys` on (with CPL 3 if `user`): through the code window its prologue would pick
 * for CS, paging and the MMU generation as they are now (exec.ts: the current one if it fits, else
 * the other one, which becomes the current one), holding those EIPs (as the run loop checks a
 * block's). If neither window fits, nothing changes: the run loop builds one when it fetches. When
 * it would, and only that window fits, `pick` keeps which one (a trace's far link checks that
 * first: `traceSource`).
 */
export function fetchesFrom(
  cpu: Cpu,
  eip: number,
  span: number,
  phys: number,
  user: boolean,
  pick: WindowPick,
): boolean {
  const base = cpu.segBase[1]!;
  const limit = cpu.segLimit[1]!;
  const paging = cpu.mmu.paging;
  const gen = cpu.mmu.generation;
  if (!(cpu.winCur === 0 ? cpu.winA : cpu.winB).fits(base, limit, user, paging, gen)) {
    if (!(cpu.winCur === 0 ? cpu.winB : cpu.winA).fits(base, limit, user, paging, gen)) return false;
    cpu.winCur ^= 1;
  }
  const w = cpu.winCur === 0 ? cpu.winA : cpu.winB;
  const other = cpu.winCur === 0 ? cpu.winB : cpu.winA;
  const d = (eip - w.lo) | 0;
  if (!(d >= 0 && d + span < w.len && ((eip + w.delta) | 0) === phys)) return false;
  if (other.fits(base, limit, user, paging, gen)) pick.epoch = -1;
  else {
    pick.epoch = cpu.winEpoch;
    pick.gen = gen;
    pick.base = base;
    pick.limit = limit;
    pick.paging = paging;
    pick.win = cpu.winCur;
  }
  return true;
}

function block(fn: Block['fn'], len: number, at: number, path: Path | null): Block {
  return { fn, len, declines: 0, declinedAt: -1, at, link: null, path };
}

/** No block at an offset yet (its `len` is more than any budget, so the run loop never runs it). */
export const NONE: Block = block(() => 0, 0x3fffffff, -1, null);
/** No block can start at an offset (fewer than two instructions a block may hold start there). */
export const NEVER: Block = block(() => 0, 0x3fffffff, -1, null);

/** The most blocks in a trace. */
export const TRACE_PARTS = 16;
/** How many times `traceHot` a link's hits may reach before a trace is made with the links as they are. */
export const TRACE_WAIT = 256;

/** Declines after which a block is cut short before the far transfer or segment load it stops at. */
export const DECLINES_KEPT = 4;

/** The blocks of one physical page, by the offset of their first instruction / 8. */
export class JitPage {
  /** A block, or NONE or NEVER (never a hole, so the run loop's load needs no check). */
  readonly blocks: Block[] = new Array<Block>(512).fill(NONE);
  readonly hits = new Uint8Array(512);
}

export interface JitOptions {
  /** Times the run loop reaches an offset before it compiles a block there (1..255; default 32). */
  readonly hot?: number;
  /** Most instructions in a block (2..64; default 32). */
  readonly maxLength?: number;
  /**
   * Times the run loop runs the same block right after another before it makes a trace there
   * (1..1e6; default 64); 0: no traces.
   */
  readonly traceHot?: number;
}

/** The process-wide defaults; `CLEFNET_JIT_HOT` sets `hot` (tests run every block path with 1). */
function defaultHot(): number {
  const v = Number(env('CLEFNET_JIT_HOT'));
  return Number.isInteger(v) && v >= 1 && v <= 255 ? v : 32;
}

/** `CLEFNET_JIT_TRACE_HOT` sets `traceHot` (tests run traces with 1, and without them with 0). */
function defaultTraceHot(): number {
  const v = Number(env('CLEFNET_JIT_TRACE_HOT') ?? Number.NaN);
  return Number.isInteger(v) && v >= 0 && v <= 1e6 ? v : 64;
}

function env(name: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
}

export class Jit {
  readonly hot: number;
  readonly maxLength: number;
  /** See JitOptions.traceHot (0: none). */
  readonly traceHot: number;
  /** Traces made; traces taken apart again (their blocks kept failing them: `trace`). */
  traces = 0;
  untraced = 0;
  /** Blocks made (their function maybe shared: FUNCTIONS); blocks dropped because their code had changed. */
  compiled = 0;
  stale = 0;
  /**
   * Instructions run in blocks, in a Float64Array: the count passes 2^30 within seconds, and a
   * field that held small integers and then does not changes representation, which deoptimises
   * every function that touches it (the run loop among them; seen as a bench/vmm.ts run whose
   * trap path stayed four times slower).
   */
  readonly ranCount = new Float64Array(1);
  /** Faults raised inside blocks. */
  faults = 0;
  /** Blocks cut short, or replaced by NEVER, after their fast paths declined (`declined`). */
  retired = 0;
  private readonly pages = new Map<number, JitPage>();

  constructor(opts: JitOptions = {}) {
    const hot = opts.hot ?? defaultHot();
    const max = opts.maxLength ?? 32;
    const traceHot = opts.traceHot ?? defaultTraceHot();
    if (!(Number.isInteger(hot) && hot >= 1 && hot <= 255))
      throw new RangeError(`jit: hot ${hot} not in 1..255`);
    if (!(Number.isInteger(max) && max >= 2 && max <= 64))
      throw new RangeError(`jit: maxLength ${max} not in 2..64`);
    if (!(Number.isInteger(traceHot) && traceHot >= 0 && traceHot <= 1e6))
      throw new RangeError(`jit: traceHot ${traceHot} not in 0..1000000`);
    this.hot = hot;
    this.maxLength = max;
    this.traceHot = traceHot;
  }

  /** Instructions run in blocks. */
  get ran(): number {
    return this.ranCount[0]!;
  }

  /** The blocks of the physical page at `frame` (a multiple of 4096). */
  page(frame: number): JitPage {
    let p = this.pages.get(frame);
    if (p === undefined) {
      p = new JitPage();
      this.pages.set(frame, p);
    }
    return p;
  }

  /**
   * Compiles the block at physical byte address `at` (8-aligned), of at most `room` instructions
   * (those left in the code window), into `page`; NEVER there if none qualifies.
   */
  compile(page: JitPage, ram32: Int32Array, at: number, room: number): void {
    const max = Math.min(room, this.maxLength, (0x1000 - (at & 0xfff)) >>> 3);
    const block = compileBlock(ram32, at, max);
    page.blocks[(at & 0xfff) >>> 3] = block ?? NEVER;
    if (block !== null) this.compiled++;
  }

  /**
   * The block at `at` stopped before its instruction `k` (counted from 0), a far transfer or
   * segment load whose fast path declined, which the run loop then runs (and tries the fast path
   * again). One that keeps declining (a far CALL straight to a code segment, which only the general
   * path takes) is tried twice each time: after DECLINES_KEPT declines with no run past them and no
   * page walk (`tlbMisses`, the MMU's count of them) in between, the block becomes its first `k`
   * instructions (NEVER if they are too few), so that the run loop meets the instruction itself.
   * (A fast path declines now and then: when a descriptor table, the TSS or a stack is not in the
   * TLB, after each TLB flush, which a VM manager makes at every VM switch; the general path then
   * walks the page tables, and the next time it does not decline. The run loop and traces set
   * `declines` back to 0 when the block gets past it.)
   */
  declined(page: JitPage, ram32: Int32Array, at: number, block: Block, k: number, tlbMisses: number): void {
    if (block.declinedAt !== tlbMisses) {
      // a page walk since the last decline (the general path's, say, after a TLB miss declined it)
      block.declinedAt = tlbMisses;
      block.declines = 0;
    }
    if (++block.declines < DECLINES_KEPT) return;
    const shorter = k > 0 ? compileBlock(ram32, at, k) : null;
    page.blocks[(at & 0xfff) >>> 3] = shorter ?? NEVER;
    this.retired++;
  }

  /**
   * The run loop ran `to` at EIP `eip` right after `from`, entered at `fromEip`, ended (`far`:
   * with a far transfer, CS as `cpu` has it now): `from.link` records it, if a trace may follow it
   * (see Link; a near one only within one page). The run loop calls it only with traces on.
   */
  relink(from: Block, to: Block, fromEip: number, eip: number, far: boolean, cpu: Cpu): void {
    const delta = (eip - fromEip) | 0;
    if (!far && ((from.at ^ to.at) >>> 12 !== 0 || delta !== to.at - from.at)) {
      from.link = null;
      return;
    }
    const sel = cpu.segSel[1]!;
    const link = from.link;
    if (link === null) from.link = { to, hits: 0, far, delta, eip, sel };
    else {
      // (reused: a block whose successor keeps changing allocates nothing; traces copy theirs)
      link.to = to;
      link.hits = 0;
      link.far = far;
      link.delta = delta;
      link.eip = eip;
      link.sel = sel;
    }
  }

  /**
   * Makes a trace at `head`, whose link the run loop has now followed `traceHot` times or a power
   * of two at or above that: `head` and the blocks its links lead to, one after the other
   * (TRACE_PARTS at most, each link followed at least half as often), back to `head` (then the
   * trace loops in itself) or to the last block with a link that leads nowhere new. It takes
   * `head`'s place in its page. Between two blocks it checks what the link recorded
   * (`traceSource`) and otherwise ends, as the run loop would go on from there; so it runs each
   * block exactly where and as the run loop would. A trace whose later blocks' code changed, or
   * whose blocks keep declining in it, gives the place back to `head`.
   */
  trace(head: Block, ram32: Int32Array): void {
    const page = this.pages.get(head.at - (head.at & 0xfff));
    const k = (head.at & 0xfff) >>> 3;
    if (page === undefined || page.blocks[k] !== head || head.path !== null || head.link === null) return;
    const hits = head.link.hits;
    const parts: Block[] = [head];
    const links: Link[] = [];
    let cyclic = false;
    for (let b = head; b.link !== null && parts.length < TRACE_PARTS; ) {
      // A link followed less than half as often as the head's: taken only some of the time, or
      // made since (the blocks after it not run often enough yet). A trace would stop there for
      // good (blocks inside a trace make no links), so it waits for the next call (at twice as
      // many hits), up to TRACE_WAIT times the first.
      if (2 * b.link.hits < hits) {
        if (hits < TRACE_WAIT * this.traceHot) return;
        break;
      }
      const next = b.link.to;
      if (next === head) {
        links.push({ ...b.link });
        cyclic = true;
        break;
      }
      if (next.path !== null) {
        // Into a trace: its blocks and links as it has them (its blocks' own links stopped
        // counting when it was made), up to one already here (a trace loops only to its head:
        // when its link leads back to `head`, this one loops too).
        links.push({ ...b.link, to: next.path.parts[0]! });
        for (let j = 0; j < next.path.parts.length && parts.length < TRACE_PARTS; j++) {
          const part = next.path.parts[j]!;
          if (j > 0 && part === head) {
            links.push(next.path.links[j - 1]!);
            cyclic = true;
            break;
          }
          if (parts.includes(part)) break;
          if (j > 0) links.push(next.path.links[j - 1]!);
          parts.push(part);
        }
        if (!cyclic && links.length === parts.length) links.pop();
        break;
      }
      if (next.at < 0 || parts.includes(next)) break;
      links.push({ ...b.link });
      parts.push(next);
      b = next;
    }
    if (parts.length < 2) return;
    const untrace = () => {
      if (page.blocks[k] !== made) return;
      page.blocks[k] = head;
      head.link = null;
      this.untraced++;
    };
    const src = traceSource(ram32, parts, links, cyclic);
    if (src === null) return;
    const fn = new Function(...Object.keys(BLOCK_SCOPE), 'fetchesFrom', 'frameAt', 'untrace', 'head', src)(
      ...Object.values(BLOCK_SCOPE),
      fetchesFrom,
      frameAt,
      untrace,
      head.fn,
    ) as Block['fn'];
    const made = block(fn, head.len, head.at, { parts, links });
    page.blocks[k] = made;
    this.traces++;
  }

  /** A block whose code changed: dropped, and counted again from 0. */
  drop(page: JitPage, at: number): void {
    const k = (at & 0xfff) >>> 3;
    page.blocks[k] = NONE;
    page.hits[k] = 0;
    this.stale++;
  }
}

// ---- the compiler ----

/** What an instruction does with the arithmetic flags (CF, ZF, SF, OF). */
enum F {
  /** neither reads nor writes them */
  NONE = 0,
  /** reads them (or writes only some: INC, DEC, a shift by a register that may be 0) */
  READ = 1,
  /** writes all four and reads none */
  WRITE = 2,
}

interface Decoded {
  readonly op: number;
  readonly a: number;
  readonly b: number;
  readonly imm: number;
  readonly flags: F;
  /** It may raise a fault (the flags before it must be exact). */
  readonly faults: boolean;
  /** A near branch, CALL or RET: the block ends with it. */
  readonly ends: boolean;
  /** The memory operand's segment (LD, ST, LDB, STB), from MEM_SEGMENT; CALLF's selector. */
  readonly seg: number;
  /**
   * A far transfer (CALLF, RETF, INT n, INT3, IRET) or a load of DS, ES, FS or GS: the block runs
   * its fast path (fast-transfers.ts) and, where that declines, stops before it for the run loop.
   */
  readonly far: boolean;
}

/** The instruction at `w0`/`imm` if a block may hold it, else undefined. */
function decode(w0: number, imm: number): Decoded | undefined {
  const op = w0 & 0xff;
  // Strict decoding (isa.ts): a must-be-zero bit set is #UD, which the run loop raises.
  if (((w0 & MBZ[op << 1]!) | (imm & MBZ[(op << 1) | 1]!)) !== 0) return undefined;
  const a = (w0 >>> 8) & 7;
  const b = (w0 >>> 12) & 0xf;
  const d = (flags: F, faults: boolean, ends: boolean, seg = -1, far = false): Decoded => ({
    op,
    a,
    b,
    imm,
    flags,
    faults,
    ends,
    seg,
    far,
  });
  switch (op) {
    case 0x01:
    case 0x10:
    case 0x11:
    case 0x41:
      return d(F.NONE, false, false);
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23:
    case 0x24:
    case 0x25:
    case 0x26:
    case 0x30:
    case 0x31:
    case 0x32:
    case 0x33:
    case 0x34:
    case 0x35:
    case 0x36:
    case 0x40:
    case 0x2a: // MUL reg, reg
    case 0x3a: // MUL reg, imm
      return d(F.WRITE, false, false);
    case 0x37:
    case 0x38:
    case 0x39:
      // SHL, SHR, SAR by an immediate: a count of 0 changes nothing
      return d((imm & 31) === 0 ? F.NONE : F.WRITE, false, false);
    case 0x27:
    case 0x28:
    case 0x29:
    case 0x42:
    case 0x43:
      return d(F.READ, false, false);
    case 0x2b:
    case 0x2c:
    case 0x3b:
    case 0x3c:
      return d(F.NONE, true, false); // DIVU, REMU: #DE
    case 0x12:
    case 0x13:
    case 0x14:
    case 0x15:
    case 0x16: {
      const seg = MEM_SEGMENT[(w0 >>> 12) & 0xff]!;
      if (seg > 5) return undefined; // #UD
      return d(F.NONE, op !== 0x16, false, seg);
    }
    case 0x17:
    case 0x18:
    case 0x19:
      return d(F.NONE, true, false);
    case 0x50:
    case 0x51:
    case 0x52:
    case 0x53:
    case 0x54:
    case 0x55:
      return d(F.NONE, true, true);
    case 0x71: // CALLF: the selector in bits 16-31 (a far JMP goes the general way)
      return d(F.NONE, true, true, w0 >>> 16, true);
    case 0x72:
    case 0x73:
    case 0x74:
    case 0x75:
    case 0x76:
      // RETF, RETF imm16, IRET, INT n, INT3 (EFLAGS read and pushed, or written: "faults" keeps
      // the flags before them exact)
      return d(F.NONE, true, true, -1, true);
    case 0x80:
      // MOV DS, ES, FS or GS, reg (CS and SS, or a register number above 5, the run loop's)
      return a === 0 || a === 3 || a === 4 || a === 5 ? d(F.NONE, true, false, -1, true) : undefined;
    default:
      if (op >= 0x58 && op <= 0x65) return d(F.READ, true, true);
      return undefined; // not ordinary (or not in blocks: MOV reg, sreg; PUSH sreg; PUSHF)
  }
}

/**
 * Whether far transfer `op` is a CALLF, INT n or INT3: it pushes a frame, and (inward or to the
 * same ring) leaves DS as it was.
 */
const inward = (op: number): boolean => op === 0x71 || op === 0x75 || op === 0x76;

/** The condition of Jcc `op` on the flags in `f` (exec.ts's cases). */
function condition(op: number): string {
  const snf = '((((f >>> 7) ^ (f >>> 11)) & 1) !== 0)'; // SF != OF
  switch (op) {
    case 0x58:
      return '(f & 0x40) !== 0';
    case 0x59:
      return '(f & 0x40) === 0';
    case 0x5a:
      return '(f & 0x1) !== 0';
    case 0x5b:
      return '(f & 0x1) === 0';
    case 0x5c:
      return '(f & 0x80) !== 0';
    case 0x5d:
      return '(f & 0x80) === 0';
    case 0x5e:
      return '(f & 0x800) !== 0';
    case 0x5f:
      return '(f & 0x800) === 0';
    case 0x60:
      return snf;
    case 0x61:
      return `!${snf}`;
    case 0x62:
      return `((f & 0x40) !== 0 || ${snf})`;
    case 0x63:
      return `!((f & 0x40) !== 0 || ${snf})`;
    case 0x64:
      return '(f & 0x41) !== 0';
    default:
      return '(f & 0x41) === 0';
  }
}

// The flag expressions of exec.ts (addFlags, subFlags, logicFlags), on the local `f`.
const logic = (r: string) => `f = (f & ~0x8c1) | (${r} === 0 ? 0x40 : 0) | ((${r} >>> 24) & 0x80);`;
const add = (x: string, y: string, r: string) =>
  `f = (f & ~0x8c1) | (${r} === 0 ? 0x40 : 0) | ((${r} >>> 24) & 0x80) | (${r} >>> 0 < ${x} >>> 0 ? 1 : 0) | (((~(${x} ^ ${y}) & (${x} ^ ${r})) >>> 20) & 0x800);`;
const sub = (x: string, y: string, r: string) =>
  `f = (f & ~0x8c1) | (${r} === 0 ? 0x40 : 0) | ((${r} >>> 24) & 0x80) | (${x} >>> 0 < ${y} >>> 0 ? 1 : 0) | ((((${x} ^ ${y}) & (${x} ^ ${r})) >>> 20) & 0x800);`;

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/**
 * The physical address of a dword at `off` in DS (seg 3) or SS (seg 2) if the inline path allows
 * the access (exec.ts's LD/ST cases), into `p`; else p stays 0xFFFFFFFF and the general path
 * follows. With paging on, the page of the last read and of the last write the block made inline
 * are kept (`rdPage`, `wrPage`, from TLB hits that allowed them), as the run loop keeps them: the
 * TLB cannot change inside a block (only the general paths can change it, and the block ends after
 * any of them).
 */
function inlineAddress(seg: number, off: string, write: boolean, p = 'p'): string {
  const base = `ctx[${seg === 3 ? CTX.DS_BASE : CTX.SS_BASE}]`;
  const end = `ctx[${seg === 3 ? (write ? CTX.DS_WR_END : CTX.DS_RD_END) : write ? CTX.SS_WR_END : CTX.SS_RD_END}]`;
  const need = write ? '(pg >>> 8)' : '(pg & 0xff)';
  const [page, frame] = write ? ['wrPage', 'wrFrame'] : ['rdPage', 'rdFrame'];
  return (
    `let ${p} = 0xffffffff; if (${off} < ${end}) { const lin = (${base} + ${off}) >>> 0; if ((lin & 3) === 0) {` +
    ` if (pg < 0) ${p} = lin; else if (lin >>> 12 === ${page}) ${p} = (${frame} | (lin & 0xfff)) >>> 0;` +
    ` else { const t = (lin >>> 12) & 1023; const e = tlbEntry[t];` +
    ` if (tlbTag[t] === (lin >>> 12) + 1 && (e & ${need}) === ${need}) { ${page} = lin >>> 12; ${frame} = e & ~0xfff;` +
    ` ${p} = (${frame} | (lin & 0xfff)) >>> 0; } } } }`
  );
}

/**
 * The instructions of a block at physical `at` (at most `max`): up to the first that a block may not
 * hold (the run loop runs it), or one that ends a block; null if too few (below two, unless the one
 * is a far transfer or a JMP to a fixed EIP, which traces link: `Jit.trace`).
 */
function decodeBlock(ram32: Int32Array, at: number, max: number): Decoded[] | null {
  const insns: Decoded[] = [];
  const w = at >>> 2;
  for (let k = 0; k < max; k++) {
    const d = decode(ram32[w + 2 * k]! | 0, ram32[w + 2 * k + 1]! >>> 0);
    if (d === undefined) break;
    insns.push(d);
    if (d.ends) break;
  }
  const n = insns.length;
  // One instruction is a block only if it is a far transfer: the run loop's own way to it (its
  // `other`) costs more than a block's call.
  if (n < 2 && !(n === 1 && insns[0]!.ends && (insns[0]!.far || insns[0]!.op === 0x50))) return null;
  return insns;
}

/**
 * How `emitPart` writes a block's instructions: as a block of its own (BLOCK_STYLE), or as part `j`
 * of a trace (`traceSource`).
 */
interface Style {
  /** The local that holds the EIP of the first instruction. */
  readonly eip: string;
  /** The loop a branch back to the first instruction continues ('' : the only one). */
  readonly label: string;
  /** Prefix of its hoisted locals (unique within a function). */
  readonly id: string;
  /** Part `j` of a trace, or null: a block. */
  readonly part: number | null;
}

const BLOCK_STYLE: Style = { eip: 'eip', label: '', id: '', part: null };

/** What `emitPart` wrote: the source of the instructions and what it uses. */
interface Emitted {
  readonly body: string[];
  readonly used: Set<number>;
  readonly written: Set<number>;
  readonly usesFlags: boolean;
  readonly usesMemory: boolean;
  /** Locals kept for the whole run of the block (see LD and ST with a fixed offset). */
  readonly hoisted: string[];
  /** Those of them through DS, which a MOV DS forgets. */
  readonly hoistedDs: string[];
}

/**
 * The source of a block's instructions `insns` at physical `at`, written in `style`. The placeholders
 * WB (write the registers and flags back), FORGETDS (forget the hoisted DS translations) and, in a
 * trace, RELOAD (read ESP and the flags again after a far transfer) are filled in by the caller,
 * which knows every part's registers.
 *
 * As a block: each exit writes back, sets CTX.RAN (`ran`, the instructions of earlier turns, plus
 * those of this one) and returns the EIP to go on at. As part j of a trace, the same but for its
 * normal end (its last instruction's branch, or the fall-through), which sets `to` and leaves the
 * part's loop for the link that follows (traceSource), and for its far transfer, which does so
 * after the fast path; a decline is reported as the block's only for the first part's first run
 * (`fresh`), else it counts as the trace's failure.
 */
function emitPart(insns: readonly Decoded[], at: number, style: Style): Emitted {
  const n = insns.length;
  const E = style.eip;
  const trace = style.part !== null;
  // Flag liveness, backwards: live at the end, before a reader, before anything that may fault.
  const flagsLive: boolean[] = new Array(n);
  let live = true;
  for (let k = n - 1; k >= 0; k--) {
    flagsLive[k] = live;
    const d = insns[k]!;
    if (d.flags === F.WRITE) live = false;
    if (d.flags === F.READ || d.faults) live = true;
  }
  const usesFlags = insns.some((d) => d.flags !== F.NONE);
  // LD and ST, and the stack: the accesses with an inline path (exec.ts's)
  const usesMemory = insns.some(
    (d) => d.op === 0x12 || d.op === 0x13 || (d.op >= 0x17 && d.op <= 0x19) || (d.op >= 0x52 && d.op <= 0x55),
  );

  // Registers: every one the block reads or writes lives in a local (rN) from entry to exit.
  const used = new Set<number>();
  const written = new Set<number>();
  const r = (x: number) => {
    used.add(x);
    return `r${x}`;
  };
  const wr = (x: number) => {
    used.add(x);
    written.add(x);
    return `r${x}`;
  };

  const body: string[] = [];
  const hoisted: string[] = [];
  const hoistedDs: string[] = [];
  // Whether a dword store at physical `p` wrote code that runs after it without a check: a block's
  // own words; a trace's code anywhere (CODE, filled in by traceSource: a trace checks its code
  // only at its entry).
  const inCode = (p: string) => (trace ? `CODE(${p})` : `((${p} - ${hex(at)}) >>> 0) < ${8 * n}`);
  // An exit after instruction k (ran k + 1) to EIP `to`: the write-back is filled in by the caller.
  const exit = (k: number, to: string) => `{ WB ctx[${CTX.RAN}] = ran + ${k + 1}; return ${to}; }`;
  // The normal end, after the last instruction (k = n - 1): a block exits; a trace's part goes on
  // to its link.
  const end = (k: number, to: string) => (trace ? `{ to = ${to}; break ${style.label}; }` : exit(k, to));
  // A branch back to the block's first instruction (its EIP is E) loops inside the block while
  // the budget (`room`) holds another turn: the registers and flags stay in locals.
  const again = (target: string) =>
    `if (${target} === ${E} && ran + ${2 * n} <= room) { ran += ${n}; continue ${style.label}; }`;
  // A fast path declined (nothing changed): the run loop executes the instruction k. For a block,
  // and for a trace's first part in its first run, that is the block's decline (Jit.declined).
  // (`written`: the registers and flags were written back already, before a far transfer's fast path)
  const declined = (k: number, written = false) =>
    `{ ${written ? '' : 'WB '}ctx[${CTX.RAN}] = ran + ${k}; ` +
    (style.part === null
      ? `ctx[${CTX.EXIT}] |= ${EXIT_DECLINED};`
      : style.part === 0
        ? `if (fresh) ctx[${CTX.EXIT}] |= ${EXIT_DECLINED}; else if (++fails >= ${DECLINES_KEPT}) untrace();`
        : `if (++fails >= ${DECLINES_KEPT}) untrace();`) +
    ` return (${E} + ${8 * k}) | 0; }`;
  for (let k = 0; k < n; k++) {
    const d = insns[k]!;
    const { op, a, b, imm } = d;
    const next = `(${E} + ${8 * (k + 1)}) | 0`;
    const fl = flagsLive[k]!;
    if (d.faults) body.push(`i = ${k};`);
    const offOf = () => (b === NO_BASE ? `${hex(imm)}` : `((${r(b & 7)} + ${imm | 0}) >>> 0)`);
    switch (op) {
      case 0x01:
        break;
      case 0x10:
        body.push(`${wr(a)} = ${r(b & 7)};`);
        break;
      case 0x11:
        body.push(`${wr(a)} = ${imm | 0};`);
        break;
      case 0x20:
      case 0x30: {
        const y = op === 0x20 ? r(b & 7) : `${imm | 0}`;
        body.push(
          `{ const x = ${r(a)}, y = ${y}, s = (x + y) | 0; ${wr(a)} = s; ${fl ? add('x', 'y', 's') : ''} }`,
        );
        break;
      }
      case 0x21:
      case 0x31:
      case 0x25:
      case 0x35: {
        const y = op === 0x21 || op === 0x25 ? r(b & 7) : `${imm | 0}`;
        const store = op === 0x21 || op === 0x31 ? `${wr(a)} = s;` : '';
        body.push(
          `{ const x = ${r(a)}, y = ${y}, s = (x - y) | 0; ${store} ${fl ? sub('x', 'y', 's') : ''} }`,
        );
        break;
      }
      case 0x22:
      case 0x23:
      case 0x24:
      case 0x26:
      case 0x32:
      case 0x33:
      case 0x34:
      case 0x36: {
        const y = op < 0x30 ? r(b & 7) : `${imm | 0}`;
        const o = (op & 0xf) === 2 || (op & 0xf) === 6 ? '&' : (op & 0xf) === 3 ? '|' : '^';
        const store = (op & 0xf) === 6 ? '' : `${wr(a)} = s;`;
        body.push(`{ const s = ${r(a)} ${o} ${y}; ${store} ${fl ? logic('s') : ''} }`);
        break;
      }
      case 0x27:
      case 0x28:
      case 0x29:
      case 0x37:
      case 0x38:
      case 0x39: {
        // SHL, SHR, SAR: CF = the last bit shifted out; a count of 0 changes nothing
        const kind = (op & 0xf) - 7; // 0 SHL, 1 SHR, 2 SAR
        const o = ['<<', '>>>', '>>'][kind]!;
        const out = kind === 0 ? '(x >>> (32 - c)) & 1' : '(x >>> (c - 1)) & 1';
        const count = op < 0x30 ? `(${r(b & 7)} & 31)` : `${imm & 31}`;
        if (op >= 0x30 && (imm & 31) === 0) break;
        body.push(
          `{ const x = ${r(a)}, c = ${count}; if (c !== 0) { const s = (x ${o} c) | 0; ${wr(a)} = s; ` +
            `${fl ? `${logic('s')} f |= ${out};` : ''} } }`,
        );
        break;
      }
      case 0x2a:
      case 0x3a: {
        const y = op === 0x2a ? r(b & 7) : `${imm | 0}`;
        body.push(
          `{ const x = ${r(a)}, y = ${y}, s = Math.imul(x, y); ${wr(a)} = s; ` +
            `${fl ? `${logic('s')} f |= (x >>> 0) * (y >>> 0) > 0xffffffff ? 0x801 : 0;` : ''} }`,
        );
        break;
      }
      case 0x2b:
      case 0x2c:
      case 0x3b:
      case 0x3c: {
        const y = op < 0x30 ? r(b & 7) : `${imm | 0}`;
        const o = (op & 0xf) === 0xb ? '/' : '%';
        body.push(
          `{ const x = ${r(a)}, y = ${y}; if (y === 0) throw fault(${VEC.DE}); ${wr(a)} = ((x >>> 0) ${o} (y >>> 0)) | 0; }`,
        );
        break;
      }
      case 0x40:
        body.push(`{ const v = ${r(a)}, s = -v | 0; ${wr(a)} = s; ${fl ? sub('0', 'v', 's') : ''} }`);
        break;
      case 0x41:
        body.push(`${wr(a)} = ~${r(a)};`);
        break;
      case 0x42:
      case 0x43: {
        const o = op === 0x42 ? '+' : '-';
        const flags = op === 0x42 ? add('v', '1', 's') : sub('v', '1', 's');
        body.push(
          `{ const v = ${r(a)}, s = (v ${o} 1) | 0; ${wr(a)} = s; ${fl ? `const c = f & 1; ${flags} f = (f & ~1) | c;` : ''} }`,
        );
        break;
      }
      case 0x12:
      case 0x13: {
        const write = op === 0x13;
        const seg = d.seg;
        let inline = seg === 3 || seg === 2 ? inlineAddress(seg, 'off', write) : 'const p = 0xffffffff;';
        if (b === NO_BASE && (seg === 3 || seg === 2)) {
          // A fixed offset: its checks and translation give the same answer every time in one run
          // of the block (nothing they depend on changes inside a block: CTX, the TLB, RAM's
          // size), so they run at its first access and their answer is kept in a local (cK: the
          // RAM address, -1 none yet); a store into the block's own code is checked every time.
          const c = `c${style.id}${k}`;
          hoisted.push(c);
          if (seg === 3) hoistedDs.push(c);
          inline =
            `let p = ${c}; if (p === -1) { ${inlineAddress(seg, 'off', write, 'q')} ` +
            `if (q >>> 2 < ram32.length) { p = q | 0; ${c} = p; } else p = 0xffffffff; }`;
        }
        if (!write) {
          // A read through the general path ends the block after it: a page walk writes the
          // accessed bit of a PDE or PTE, which may be a word of this block's own code.
          body.push(
            `{ const off = ${offOf()}; ${inline} if (p >>> 2 < ram32.length) ${wr(a)} = ram32[p >>> 2]; ` +
              `else { ${wr(a)} = cpu.read32(${seg}, off) | 0; ${exit(k, next)} } }`,
          );
        } else {
          // A store to this block's own code (a trace's: to any of its code) ends it after the
          // store; so does one through the general path (which does not say where it wrote).
          body.push(
            `{ const off = ${offOf()}; ${inline} if (p >>> 2 < ram32.length) { ram32[p >>> 2] = ${r(a)}; ` +
              `if (${inCode('p')}) ${exit(k, next)} } ` +
              `else { cpu.write32(${seg}, off, ${r(a)}); ${exit(k, next)} } }`,
          );
        }
        break;
      }
      case 0x14:
        body.push(`{ ${wr(a)} = cpu.read8(${d.seg}, ${offOf()}) | 0; ${exit(k, next)} }`); // as LD's general path
        break;
      case 0x15:
        body.push(`{ cpu.write8(${d.seg}, ${offOf()}, ${r(a)}); ${exit(k, next)} }`);
        break;
      case 0x16:
        body.push(`${wr(a)} = ${offOf()} | 0;`);
        break;
      case 0x17:
      case 0x18:
      case 0x52:
      case 0x53: {
        // PUSH reg, PUSH imm, CALL imm, CALL reg: CALL checks its target first, pushes the EIP
        // after it and goes on at the target
        const call = op === 0x52 || op === 0x53;
        if (call) {
          const target = op === 0x52 ? hex(imm) : `(${r(a)} >>> 0)`;
          body.push(`const t${k} = ${target}; if (t${k} > ctx[${CTX.CS_LIMIT}]) throw fault(${VEC.GP}, 0);`);
        }
        const value = call ? next : op === 0x17 ? r(a) : `${imm | 0}`;
        const after = call ? `t${k} | 0` : next;
        body.push(
          `{ const v = ${value}; const off = (${r(4)} - 4) >>> 0; ${inlineAddress(2, 'off', true)} ` +
            `if (p >>> 2 < ram32.length) { ram32[p >>> 2] = v; ${wr(4)} = off | 0; ` +
            `if (${inCode('p')}) ${exit(k, after)} } ` +
            `else { cpu.write32(2, off, v); ${wr(4)} = off | 0; ${exit(k, after)} } }`,
        );
        if (call) body.push(end(k, after));
        break;
      }
      case 0x19:
      case 0x54:
      case 0x55: {
        // POP reg (ESP updated before the register: POP ESP loads the popped value), RET, RET imm
        // (through the general path, POP ends the block after it, as LD does)
        body.push(
          `{ const off = ${r(4)} >>> 0; ${inlineAddress(2, 'off', false)} ` +
            'const inline = p >>> 2 < ram32.length; const v = inline ? ram32[p >>> 2] : cpu.read32(2, off) | 0;',
        );
        if (op === 0x19) body.push(`${wr(4)} = (off + 4) | 0; ${wr(a)} = v; if (!inline) ${exit(k, next)} }`);
        else {
          body.push(
            `const t = v >>> 0; if (t > ctx[${CTX.CS_LIMIT}]) throw fault(${VEC.GP}, 0); ` +
              `${wr(4)} = (off + ${4 + (op === 0x55 ? imm & 0xffff : 0)}) | 0; ` +
              // (a trace's part: a read through the general path may have walked, replacing the TLB
              // entries behind rdPage, wrPage and the hoisted translations: the trace ends there,
              // as a block ends after a POP through it; found by the review)
              `${trace ? `if (!inline) ${exit(k, 't | 0')} ` : ''}${end(k, 't | 0')} }`,
          );
        }
        break;
      }
      case 0x50:
        body.push(
          `if (${hex(imm)} > ctx[${CTX.CS_LIMIT}]) throw fault(${VEC.GP}, 0); ${again(`${imm | 0}`)} ${end(k, `${imm | 0}`)}`,
        );
        break;
      case 0x71:
      case 0x72:
      case 0x73:
      case 0x74:
      case 0x75:
      case 0x76: {
        // A far transfer, the block's last instruction: the registers and flags written back, its
        // fast path (as the run loop's `other` calls it), which changes nothing when it declines;
        // then the block ends after it (the run loop's prologue follows, as after `other`) or,
        // declined, before it (the run loop executes it).
        const after = `((${E} + ${8 * (k + 1)}) >>> 0)`;
        const fast =
          op === 0x71
            ? `callGateFast(cpu, ${d.seg}, ${after})`
            : op === 0x72 || op === 0x73
              ? `farReturnFast(cpu, ${op === 0x73 ? imm & 0xffff : 0})`
              : op === 0x74
                ? 'interruptReturnFast(cpu)'
                : `deliverFast(cpu, ${op === 0x76 ? VEC.BP : imm & 0xff}, -1, true, ${after})`;
        // INT n, INT3 for a VM manager that sees every software interrupt first (exitSoftware): the
        // block ends before it and the run stops there, as the run loop's `other` stops it
        // (EXIT_SOFTWARE, the vector in bits 8-15)
        const software =
          op === 0x75 || op === 0x76
            ? `if (cpu.exitSoftware === true) { ${trace ? 'WB ' : ''}ctx[${CTX.RAN}] = ran + ${k}; ` +
              `ctx[${CTX.EXIT}] |= ${EXIT_SOFTWARE | ((op === 0x76 ? VEC.BP : imm & 0xff) << 8)}; return (${E} + ${8 * k}) | 0; }`
            : '';
        // IRET: IF from 0 to 1 lets a pending interrupt in before the next instruction (FULL)
        const how =
          op === 0x74
            ? `((cpu.eflags & ~was & 0x200) !== 0 ? ${EXIT_FULL} : ${EXIT_LIGHT})`
            : `${EXIT_LIGHT}`;
        // (a trace's part: done, it reads ESP and the flags again and goes on to its link; after a
        // CALLF or INT, only if the frame it pushed is in none of the trace's code: FRAME, filled
        // in by traceSource)
        const frame =
          `{ const q = frameAt(cpu); ` +
          `if (FRAME(q)) { WB ctx[${CTX.RAN}] = ran + ${k + 1}; return to; } } `;
        const done = trace
          ? `ctx[${CTX.EXIT}] |= ${how}; to = cpu.eip | 0; RELOAD ${inward(op) ? frame : ''}break ${style.label};`
          : `ctx[${CTX.RAN}] = ran + ${k + 1}; ctx[${CTX.EXIT}] |= ${how}; return cpu.eip | 0;`;
        // (a block writes its registers and flags back first; a trace's part only what the fast
        // paths read, ESP and the flags, SYNC, and the rest where it returns: they change no other)
        body.push(
          `{ ${trace ? 'SYNC' : 'WB'} ${software} ${op === 0x74 ? 'const was = cpu.eflags;' : ''} if (${fast}) { ${done} } ` +
            `${declined(k, !trace)} }`,
        );
        break;
      }
      case 0x80: {
        // MOV DS, ES, FS or GS: the fast path, or (declined) the block ends before it; done, the
        // run loop told (EXIT_DS: so that it also knows the block got past it). A new DS: its
        // bounds in ctx, as the run loop's own MOV DS sets them.
        const ds =
          a === 3
            ? `ctx[${CTX.DS_BASE}] = cpu.segBase[3]; ctx[${CTX.DS_RD_END}] = readEnd(cpu.segFlags[3], cpu.segLimit[3]); ` +
              `ctx[${CTX.DS_WR_END}] = writeEnd(cpu.segFlags[3], cpu.segLimit[3]); FORGETDS`
            : '';
        body.push(
          `if (!loadDataSegmentFast(cpu, ${a}, ${r(b & 7)} & 0xffff)) ${declined(k)} ${ds} ctx[${CTX.EXIT}] |= ${EXIT_DS};`,
        );
        break;
      }
      case 0x51:
        body.push(
          `{ const t = ${r(a)} >>> 0; if (t > ctx[${CTX.CS_LIMIT}]) throw fault(${VEC.GP}, 0); ${again('(t | 0)')} ${end(k, 't | 0')} }`,
        );
        break;
      default: {
        // Jcc
        body.push(
          `if (${condition(op)}) { if (${hex(imm)} > ctx[${CTX.CS_LIMIT}]) throw fault(${VEC.GP}, 0); ${again(`${imm | 0}`)} ${end(k, `${imm | 0}`)} } ` +
            `${end(k, next)}`,
        );
      }
    }
  }
  if (!insns[n - 1]!.ends) body.push(end(n - 1, `(${E} + ${8 * n}) | 0`));
  return { body, used, written, usesFlags, usesMemory, hoisted, hoistedDs };
}

/**
 * The locals a block's or trace's function declares (`emitPart`'s): the registers and flags it uses,
 * the paging need and TLB arrays with the last pages read and written, the hoisted translations;
 * `pg` as `kind` (a trace's changes after a far transfer).
 */
function locals(
  e: Pick<Emitted, 'used' | 'usesFlags' | 'usesMemory' | 'hoisted'>,
  kind: 'const' | 'let',
): string {
  const regs = [...e.used].sort();
  return [
    regs.length > 0 ? `let ${regs.map((x) => `r${x} = reg[${x}]`).join(', ')};` : '',
    e.usesFlags ? 'let f = cpu.eflags;' : '',
    e.usesMemory
      ? `${kind} pg = ctx[${CTX.PG_NEED}] | 0; const tlbTag = cpu.mmu.tlbTag; const tlbEntry = cpu.mmu.tlbEntry; ` +
        'let rdPage = -1, rdFrame = 0, wrPage = -1, wrFrame = 0;'
      : '',
    e.hoisted.length > 0 ? `let ${e.hoisted.map((c) => `${c} = -1`).join(', ')};` : '',
  ].join('\n');
}

/** The source of a test that the `len` instructions at physical `at` are no longer what they are now. */
function codeChanged(ram32: Int32Array, at: number, len: number): string {
  const w = at >>> 2;
  const check: string[] = [];
  for (let k = 0; k < 2 * len; k++) check.push(`ram32[${w + k}] !== ${ram32[w + k]! | 0}`);
  return check.join(' || ');
}

/** Compiles at most `max` instructions at physical `at` (`decodeBlock`), or null. */
function compileBlock(ram32: Int32Array, at: number, max: number): Block | null {
  const insns = decodeBlock(ram32, at, max);
  if (insns === null) return null;
  const e = emitPart(insns, at, BLOCK_STYLE);
  const n = insns.length;
  const { body, written, usesFlags, hoistedDs } = e;
  const wb = [
    ...[...written].sort().map((x) => `reg[${x}] = r${x};`),
    usesFlags ? 'cpu.eflags = f;' : '',
  ].join(' ');
  const src = [
    `"use strict";`,
    `return function block(cpu, ctx, eip, room) {`,
    `const ram32 = cpu.ram32;`,
    `if (${codeChanged(ram32, at, n)}) { ctx[${CTX.RAN}] = 0; return eip; }`,
    `const reg = cpu.reg;`,
    locals(e, 'const'),
    'let i = 0;',
    'let ran = 0;',
    'try {',
    'for (;;) {',
    body
      .join('\n')
      .replaceAll('WB', wb)
      .replaceAll('FORGETDS', hoistedDs.map((c) => `${c} = -1;`).join(' ')),
    '}',
    '} catch (e) {',
    `${wb} ctx[${CTX.RAN}] = ran; ctx[${CTX.FAULT_EIP}] = eip; cpu.jitAt = i; throw e;`,
    '}',
    '};',
  ].join('\n');
  let fn = FUNCTIONS.get(src);
  if (fn === undefined) {
    fn = new Function(...Object.keys(BLOCK_SCOPE), src)(...Object.values(BLOCK_SCOPE)) as Block['fn'];
    functionChars += src.length;
    while (functionChars > FUNCTION_CHARS_KEPT) {
      const oldest = FUNCTIONS.keys().next().value!;
      functionChars -= oldest.length;
      FUNCTIONS.delete(oldest);
    }
  } else FUNCTIONS.delete(src); // re-inserted below: the Map's order is recency order
  FUNCTIONS.set(src, fn);
  return block(fn, n, at, null);
}

/**
 * The source of a trace's function (`Jit.trace`), or null if a part's code is not what it was
 * compiled from: the parts' instructions (`emitPart`) one after the other in one function, their
 * registers and flags in locals throughout (written back before a far transfer's fast path and at
 * every exit; ESP and the flags read again after a transfer), each part in a loop of its own (a
 * branch back to its first instruction), with the same protocol as a block's: CTX.RAN the
 * instructions of all of them, CTX.EXIT what they left (EXIT_DECLINED only for the first part's
 * first run, which the run loop treats as that block's), a fault as the part that threw it left it
 * (CTX.FAULT_EIP: its first EIP, `pe`; CTX.RAN counts the earlier parts too). It compares every
 * part's code words with RAM once, at its entry (the first part's changed: nothing ran, as a
 * block's; another's: it gives its place back to the first block and runs that), and ends right
 * after whatever may have written any of them: a store inline into one of its parts (CODE), a far
 * transfer whose frame lies in one (FRAME), a general path. After part j's normal end it ends (returns
 * what the run loop would go on from) unless `links[j]` holds:
 * - near: the EIP is `delta` past part j's and the next part lies within the CS limit there (both
 *   in one page: that EIP is its code);
 * - far: the transfer needs no FULL prologue, the EIP and CS selector are as recorded, and the run
 *   loop would fetch the next part there from where it was compiled, through the code window its
 *   prologue would pick (`fetchesFrom`, which picks it as the prologue does; `WindowPick` keeps
 *   which one while nothing it depends on changes); then it sets what the
 *   LIGHT prologue sets in `ctx` (the run loop's own prologue runs after the trace, which reports
 *   EXIT_LIGHT) and forgets the pages and fixed offsets it translated;
 * - and the budget holds the next part.
 * Its parts' declines count towards taking the trace apart (`untrace`): DECLINES_KEPT of them with
 * no run of the whole trace between (a fast path declines now and then: after each TLB flush).
 */
function traceSource(
  ram32: Int32Array,
  parts: readonly Block[],
  links: readonly Link[],
  cyclic: boolean,
): string | null {
  const emitted: Emitted[] = [];
  // each part's last instruction
  const lastOp: number[] = [];
  for (let j = 0; j < parts.length; j++) {
    const part = parts[j]!;
    const insns = decodeBlock(ram32, part.at, part.len);
    if (insns === null || insns.length !== part.len) return null;
    lastOp.push(insns[part.len - 1]!.op);
    // a far link after a far transfer, a near one after anything else
    const link = links[j];
    if (link !== undefined && link.far !== insns[part.len - 1]!.far) return null;
    emitted.push(emitPart(insns, part.at, { eip: 'pe', label: `P${j}`, id: `${j}_`, part: j }));
  }
  const used = new Set(emitted.flatMap((e) => [...e.used]));
  const written = new Set(emitted.flatMap((e) => [...e.written]));
  const usesFlags = emitted.some((e) => e.usesFlags);
  const usesMemory = emitted.some((e) => e.usesMemory);
  const hoisted = emitted.flatMap((e) => e.hoisted);
  const hoistedDs = emitted.flatMap((e) => e.hoistedDs);
  const wb = [
    ...[...written].sort().map((x) => `reg[${x}] = r${x};`),
    usesFlags ? 'cpu.eflags = f;' : '',
  ].join(' ');
  const reload = [used.has(4) ? 'r4 = reg[4];' : '', usesFlags ? 'f = cpu.eflags;' : ''].join(' ');
  const sync = [written.has(4) ? 'reg[4] = r4;' : '', usesFlags ? 'cpu.eflags = f;' : ''].join(' ');
  const out = (to: string) => `{ ${wb} ctx[${CTX.RAN}] = ran; return ${to}; }`;
  // Every part's code is compared with RAM once, at the trace's entry: the first part's changed,
  // the run loop's (nothing ran: it drops the trace); another's, the trace gives its place back to
  // the first block and runs that. Inside, whatever may write a word of its code ends it right
  // after: a store inline (CODE), the frame a far transfer pushed (FRAME), a general path.
  const rest = parts.slice(1).map((p) => codeChanged(ram32, p.at, p.len));
  // (each part lies in one page: a code window's)
  const pages = [...new Set(parts.map((p) => p.at >>> 12))];
  // whether `reach` bytes from physical `q` (a multiple of 4) meet a part's code (they may reach
  // into the next page: a frame pushed with paging off; found by the review)
  const meetsCode = (q: string, reach: number) =>
    pages
      .map((page) => {
        const there = parts.filter((p) => p.at >>> 12 === page);
        const meets = there.map((p) => `((${q} - ${p.at - reach + 1}) >>> 0) < ${8 * p.len + reach - 1}`);
        const near =
          reach > 4
            ? `((${q} - ${page * 4096 - reach + 1}) >>> 0) < ${4096 + reach - 1}`
            : `(${q} >>> 12) === ${page}`;
        return `(${near} && (${meets.join(' || ')}))`;
      })
      .join(' || ');
  const body: string[] = [];
  const picks: string[] = [];
  for (let j = 0; j < parts.length; j++) {
    const part = parts[j]!;
    body.push(
      `P${j}: for (;;) {`,
      emitted[j]!.body.join('\n'),
      '}',
      `ran += ${part.len};`,
      j === 0 ? 'fresh = false;' : '',
    );
    const link = links[j];
    if (link === undefined) break;
    const next = j + 1 < parts.length ? j + 1 : 0;
    const len = parts[next]!.len;
    if (!link.far) {
      body.push(
        `if (to !== ((pe + ${link.delta}) | 0) || (to >>> 0) + ${8 * len - 1} > ctx[${CTX.CS_LIMIT}] || room - ran < ${len}) ${out('to')}`,
        'pe = to;',
      );
    } else {
      // pgNeed of exec.ts's prologue, for the CPL of `link.sel`
      const user = (link.sel & 3) === 3;
      const pg = user
        ? `${4 | ((0x40 | 4 | 2) << 8)}`
        : '(0x40 | (cpu.mmu.writeProtect === true ? 2 : 0)) << 8';
      // The window: as last time if nothing it depends on changed (then the prologue would pick
      // the same one: make it the current one as the prologue would), else fetchesFrom, which
      // checks CS's base and limit and paging too (the windows are built for them)
      picks.push(`W${j} = { epoch: -1, gen: 0, base: 0, limit: 0, paging: false, win: 0 }`);
      // (only an IRET may need the FULL prologue: any earlier transfer that did ended the trace; a
      // CALLF or INT leaves DS as it was)
      const iret = lastOp[j] === 0x74;
      const keepsDs = inward(lastOp[j]!);
      body.push(
        `if (${iret ? `(ctx[${CTX.EXIT}] & ${EXIT_FULL}) === ${EXIT_FULL} || ` : ''}to !== ${link.eip | 0} || sel[1] !== ${link.sel} || ` +
          `room - ran < ${len} || !(W${j}.epoch === cpu.winEpoch && W${j}.gen === cpu.mmu.generation && ` +
          `W${j}.base === base[1] && W${j}.limit === lim[1] && W${j}.paging === cpu.mmu.paging ? ((cpu.winCur = W${j}.win), true) : ` +
          `fetchesFrom(cpu, to, ${8 * (len - 1)}, ${parts[next]!.at}, ${user}, W${j}))) ${out('to')}`,
        `ctx[${CTX.CS_LIMIT}] = lim[1]; ctx[${CTX.PG_NEED}] = cpu.mmu.paging === true ? ${pg} : -1;`,
        keepsDs
          ? ''
          : `ctx[${CTX.DS_BASE}] = base[3]; ctx[${CTX.DS_RD_END}] = readEnd(fl[3], lim[3]); ctx[${CTX.DS_WR_END}] = writeEnd(fl[3], lim[3]);`,
        `ctx[${CTX.SS_BASE}] = base[2]; ctx[${CTX.SS_RD_END}] = readEnd(fl[2], lim[2]); ctx[${CTX.SS_WR_END}] = writeEnd(fl[2], lim[2]);`,
        usesMemory ? `pg = ctx[${CTX.PG_NEED}] | 0; rdPage = -1; wrPage = -1;` : '',
        hoisted.map((c) => `${c} = -1;`).join(' '),
        `pe = ${link.eip | 0};`,
      );
    }
    if (next === 0) body.push('fails = 0;', 'continue;');
  }
  if (!cyclic) body.push(`fails = 0; ${out('to')}`);
  return [
    '"use strict";',
    // declines with no whole run between: DECLINES_KEPT take it apart
    'let fails = 0;',
    picks.length > 0 ? `const ${picks.join(', ')};` : '',
    'return function trace(cpu, ctx, eip, room) {',
    'const ram32 = cpu.ram32;',
    'const reg = cpu.reg;',
    'const sel = cpu.segSel, base = cpu.segBase, lim = cpu.segLimit, fl = cpu.segFlags;',
    // (pgNeed changes with the CPL after a far transfer)
    locals({ used, usesFlags, usesMemory, hoisted }, 'let'),
    'let i = 0, ran = 0, pe = eip, to = 0, fresh = true;',
    `if (${codeChanged(ram32, parts[0]!.at, parts[0]!.len)}) { ctx[${CTX.RAN}] = 0; return eip; }`,
    rest.length > 0 ? `if (${rest.join(' || ')}) { untrace(); return head(cpu, ctx, eip, room); }` : '',
    'try {',
    'for (;;) {',
    body
      .join('\n')
      .replaceAll('WB', wb)
      .replaceAll('RELOAD', reload)
      .replaceAll('SYNC', sync)
      .replaceAll('FORGETDS', hoistedDs.map((c) => `${c} = -1;`).join(' '))
      .replace(/CODE\((\w+)\)/g, (_, p: string) => `(${meetsCode(p, 4)})`)
      .replaceAll('FRAME(q)', `(q < 0 || ${meetsCode('q', FRAME_BYTES)})`),
    '}',
    '} catch (err) {',
    `${wb} ctx[${CTX.RAN}] = ran; ctx[${CTX.FAULT_EIP}] = pe; cpu.jitAt = i; throw err;`,
    '}',
    '};',
  ].join('\n');
}

/** What a block's source may call besides the CPU's methods, by the names it uses. */
const BLOCK_SCOPE = {
  fault,
  readEnd,
  writeEnd,
  callGateFast,
  farReturnFast,
  interruptReturnFast,
  deliverFast,
  loadDataSegmentFast,
};

/**
 * The functions compiled so far, by their source, for every machine in the process: a block's
 * function depends only on its source (the code words and their physical address are in it; all
 * else it reads from the CPU it is given), so machines that run the same code at the same address
 * (a VM manager's VEs from one profile, the repetitions of a benchmark, a test's machines) share
 * one, and V8's compiled code for it, instead of paying `new Function` (about 0.15 ms) and V8's
 * warm-up again. Kept while their sources total at most FUNCTION_CHARS_KEPT characters (a block's
 * is 2-30 K), the least recently compiled or found dropped first.
 */
const FUNCTIONS = new Map<string, Block['fn']>();
const FUNCTION_CHARS_KEPT = 16 << 20;
let functionChars = 0;
