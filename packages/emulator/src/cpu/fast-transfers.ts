/**
 * The common cases of the far transfers and segment loads, specialised (issue 3, speed): a call
 * through a call gate, a far return, an interrupt or exception through an interrupt or trap gate,
 * an interrupt return, each to the same or another ring, and a load of DS, ES, FS or GS, with
 * descriptors in the GDT or LDT and stacks that lie in RAM. Each is the rule of transfers.ts or
 * segments.ts (reference §3.1, §3.3-§3.5, SDM §5.8, §6.12) as one straight-line function with few
 * calls: it reads every descriptor, the TSS and the stack frame only where none of those reads can
 * fault (in RAM, aligned; with paging on, inside one page with a TLB hit that allows the access:
 * `Cpu.frameIndex`), runs every check, and changes state only when all of them pass.
 *
 * A fast path never raises a fault and never decides one: when anything is not the common case,
 * or any check fails, it returns false having changed nothing, and the caller runs the general
 * path, which checks again in the architectural order and raises the fault with its error code.
 * So the fast paths cannot change what a transfer does, only how fast the common case is; the
 * protection tests run through both (a faulting case takes the fast path first, then the general).
 * The last transfer of each common kind is memoised ({@link Memo}): an identical one after it
 * compares what that one read instead of looking it up and checking it again.
 *
 * Descriptor dwords are signed 32-bit values as in segments.ts. In dword 1 (`hi`), `hi >>> 24`
 * holds the x86 type (bits 0-3), S (bit 4), DPL (bits 5-6) and P (bit 7).
 */
import { TLB_SIZE } from '../memory/mmu.js';
import type { Cpu } from './cpu.js';

/**
 * Whether the transfers try these fast paths first (always, but for the differential test that
 * runs every case with and without them and compares: test/cpu/fast-transfers.test.ts).
 */
export const fastPaths = { enabled: true };

/** The parameters a call gate copies (at most 31), read before the new frame is written. */
const params = new Int32Array(32);

/**
 * What the last far transfer of one kind read and decided, so that the next one through the same
 * descriptors from the same ring, with nothing it read changed, only compares and commits (issue 3:
 * a guest's system calls go through the same gate and return to the same selectors again and again,
 * and the descriptor look-ups and checks were most of a transfer's cost). The kinds: an inward CALLF
 * through a call gate with no parameters and an inward delivery through an interrupt or trap gate
 * ({@link GateMemo}), a RETF and an IRET to an outer ring ({@link ReturnMemo}).
 *
 * "Nothing changed" is checked in full at every use, so a memo cannot change what a transfer does:
 * - the registers the look-ups went through: GDTR; LDTR if a selector named the LDT; TR and the
 *   IDT's base for a gate (deliverFast checks the vector against the IDT's limit before it looks);
 * - every descriptor dword (and the TSS's SS:ESP) the transfer read, at the RAM index it read it
 *   from, as it read it: recorded before the transfer writes its frame, which may overwrite some
 *   of them (a stack in the TSS or beside the GDT);
 * - the translations those indices and the frame's came from (with paging on, TLB hits): paging and
 *   CR0.WP as they were, the MMU's generation (bumped by every flush and INVLPG) and its TLB miss
 *   count (bumped by every walk, the only other writer of a TLB entry), so every TLB entry is the
 *   one that was hit.
 * What a transfer reads from the current stack (a return's frame, what a call pushes) is read anew.
 */
class Memo {
  /** What the transfer was keyed by (a selector, a vector, a pair of selectors); -1: empty. */
  key = -1;
  cpl = 0;
  gdtBase = 0;
  gdtLimit = 0;
  /** Whether a descriptor it read was in the LDT (then LDTR must be as it was). */
  ldt = false;
  ldtBase = 0;
  ldtLimit = 0;
  paging = false;
  writeProtect = false;
  generation = 0;
  tlbMisses = 0;
}

/** Whether the descriptor tables and translations `memo` relied on are as they were. */
function tablesHold(cpu: Cpu, memo: Memo): boolean {
  if (cpu.gdtBase !== memo.gdtBase || cpu.gdtLimit !== memo.gdtLimit) return false;
  if (
    memo.ldt &&
    (cpu.ldtUsable !== true || cpu.ldtBase !== memo.ldtBase || cpu.ldtLimit !== memo.ldtLimit)
  ) {
    return false;
  }
  const mmu = cpu.mmu;
  if (!memo.paging) return mmu.paging !== true;
  return (
    mmu.paging === true &&
    mmu.writeProtect === memo.writeProtect &&
    mmu.generation === memo.generation &&
    mmu.tlbMisses === memo.tlbMisses
  );
}

/** Records the descriptor tables and translations of a transfer that has just committed. */
function rememberTables(cpu: Cpu, memo: Memo, key: number, cpl: number, ldt: boolean): void {
  const mmu = cpu.mmu;
  memo.key = key;
  memo.cpl = cpl;
  memo.gdtBase = cpu.gdtBase;
  memo.gdtLimit = cpu.gdtLimit;
  memo.ldt = ldt;
  memo.ldtBase = cpu.ldtBase;
  memo.ldtLimit = cpu.ldtLimit;
  memo.paging = mmu.paging;
  memo.writeProtect = mmu.writeProtect;
  memo.generation = mmu.generation;
  memo.tlbMisses = mmu.tlbMisses;
}

/**
 * An inward CALLF through a call gate with no parameters (`Cpu.callMemo`; keyed by the selector) or
 * delivery through an interrupt or trap gate (`Cpu.intMemo` for INT n and INT3, `Cpu.deliverMemo`
 * for the rest; keyed by the vector, | 0x100 for a software interrupt, | 0x200 with an error code):
 * the gate, the target code descriptor, the TSS's ESP and SS of the new ring and the SS descriptor,
 * and the frame's place.
 */
export class GateMemo extends Memo {
  idtBase = 0;
  trBase = 0;
  trLimit = 0;
  gi = 0;
  glo = 0;
  ghi = 0;
  ti = 0;
  tlo = 0;
  thi = 0;
  t = 0;
  tEsp = 0;
  tSs = 0;
  si = 0;
  slo = 0;
  shi = 0;
  /** The outcome: the frame's RAM index, the new ESP, SS and CS selectors, EIP. */
  w = 0;
  low = 0;
  ss = 0;
  cs = 0;
  entry = 0;
}

/** Whether `memo` holds `key` from ring `cpl` and nothing it read has changed (Memo). */
function gateMemoHolds(cpu: Cpu, memo: GateMemo, key: number, cpl: number): boolean {
  if (memo.key !== key || memo.cpl !== cpl) return false;
  if (
    cpu.trUsable !== true ||
    cpu.trBase !== memo.trBase ||
    cpu.trLimit !== memo.trLimit ||
    cpu.idtBase !== memo.idtBase ||
    !tablesHold(cpu, memo)
  ) {
    return false;
  }
  const ram32 = cpu.ram32;
  return (
    ram32[memo.gi] === memo.glo &&
    ram32[memo.gi + 1] === memo.ghi &&
    ram32[memo.ti] === memo.tlo &&
    ram32[memo.ti + 1] === memo.thi &&
    ram32[memo.t] === memo.tEsp &&
    ram32[memo.t + 1] === memo.tSs &&
    ram32[memo.si] === memo.slo &&
    ram32[memo.si + 1] === memo.shi
  );
}

/**
 * Records an inward transfer that has passed every check, before it writes anything: `gi`, `ti`,
 * `t`, `si` are the RAM indices of the gate, the target code descriptor, the TSS's ESP and SS, and
 * the SS descriptor; `ldt` whether a selector looked up named the LDT; `w`, `low`, `ss`, `cs` and
 * `entry` its outcome (the frame's RAM index, ESP, SS, CS, EIP).
 */
function rememberGate(
  cpu: Cpu,
  memo: GateMemo,
  key: number,
  cpl: number,
  ldt: boolean,
  gi: number,
  ti: number,
  t: number,
  si: number,
  w: number,
  low: number,
  ss: number,
  cs: number,
  entry: number,
): void {
  const ram32 = cpu.ram32;
  rememberTables(cpu, memo, key, cpl, ldt);
  memo.idtBase = cpu.idtBase;
  memo.trBase = cpu.trBase;
  memo.trLimit = cpu.trLimit;
  memo.gi = gi;
  memo.glo = ram32[gi]!;
  memo.ghi = ram32[gi + 1]!;
  memo.ti = ti;
  memo.tlo = ram32[ti]!;
  memo.thi = ram32[ti + 1]!;
  memo.t = t;
  memo.tEsp = ram32[t]!;
  memo.tSs = ram32[t + 1]!;
  memo.si = si;
  memo.slo = ram32[si]!;
  memo.shi = ram32[si + 1]!;
  memo.w = w;
  memo.low = low;
  memo.ss = ss;
  memo.cs = cs;
  memo.entry = entry;
}

/**
 * A RETF (`Cpu.retfMemo`) or IRET (`Cpu.iretMemo`) to an outer ring, keyed by the CS and SS
 * selectors it returned to (CS + SS * 0x10000): their descriptors, checked for that CS and SS.
 */
export class ReturnMemo extends Memo {
  ci = 0;
  clo = 0;
  chi = 0;
  si = 0;
  slo = 0;
  shi = 0;
  /** The CS limit, for the new EIP's check. */
  csLimit = 0;
}

/** Whether `memo` holds `key` from ring `cpl` and nothing it read has changed (Memo). */
function returnMemoHolds(cpu: Cpu, memo: ReturnMemo, key: number, cpl: number): boolean {
  if (memo.key !== key || memo.cpl !== cpl || !tablesHold(cpu, memo)) return false;
  const ram32 = cpu.ram32;
  return (
    ram32[memo.ci] === memo.clo &&
    ram32[memo.ci + 1] === memo.chi &&
    ram32[memo.si] === memo.slo &&
    ram32[memo.si + 1] === memo.shi
  );
}

/** Records a return to an outer ring that has just committed (`ci`, `si`: its descriptors' RAM indices). */
function rememberReturn(
  cpu: Cpu,
  memo: ReturnMemo,
  cs: number,
  ss: number,
  cpl: number,
  ci: number,
  si: number,
): void {
  const ram32 = cpu.ram32;
  rememberTables(cpu, memo, cs + ss * 0x10000, cpl, ((cs | ss) & 4) !== 0);
  memo.ci = ci;
  memo.clo = ram32[ci]!;
  memo.chi = ram32[ci + 1]!;
  memo.si = si;
  memo.slo = ram32[si]!;
  memo.shi = ram32[si + 1]!;
  memo.csLimit = limitOf(memo.chi) >>> 0;
}

/**
 * The `ram32` index of `bytes` (a multiple of 4) at linear address `lin` when they can be read, or
 * with `write` written, by `user` (CPL 3) code without a fault and lie in RAM; else -1. With paging
 * off that is an aligned address in RAM; with paging on it is `Cpu.frameIndex` (a TLB hit that
 * allows the access, in one page). Both written out here without a call: this runs several times
 * per transfer, and a VM manager's guests run with paging on.
 */
function ramIndex(cpu: Cpu, lin: number, bytes: number, write: boolean, user: boolean): number {
  const mmu = cpu.mmu;
  if ((lin & 3) !== 0) return -1;
  let p = lin;
  if (mmu.paging === true) {
    if ((lin & 0xfff) + bytes > 0x1000) return -1;
    const page = lin >>> 12;
    const i = page & (TLB_SIZE - 1);
    const e = mmu.tlbEntry[i]!;
    if (mmu.tlbTag[i] !== page + 1 || (user && (e & 4) === 0)) return -1; // a miss; U for CPL 3
    // a write: W (or supervisor without CR0.WP), and the dirty bit already set (Mmu.translate)
    if (write && !(((e & 2) !== 0 || (!user && mmu.writeProtect !== true)) && (e & 0x40) !== 0)) return -1;
    p = ((e & ~0xfff) | (lin & 0xfff)) >>> 0;
  }
  return p + bytes <= cpu.ramBytes ? p >>> 2 : -1;
}

/**
 * The `ram32` index of dword 0 of the descriptor `selector` names (its RPL and null-ness are the
 * caller's business), when it lies within its table and reads without a fault; else -1.
 */
function descIndex(cpu: Cpu, selector: number): number {
  const index = selector & 0xfff8;
  let at: number;
  if ((selector & 4) === 0) {
    if (index + 7 > cpu.gdtLimit) return -1;
    at = (cpu.gdtBase + index) >>> 0;
  } else {
    if (!cpu.ldtUsable || index + 7 > cpu.ldtLimit) return -1;
    at = (cpu.ldtBase + index) >>> 0;
  }
  return ramIndex(cpu, at, 8, false, false);
}

/**
 * The `ram32` index of the SS descriptor of a stack switch to ring `cpl`, if it passes the SS rules
 * (non-null, RPL = DPL = cpl, writable expand-up data, present: checkStackSegment); else -1.
 */
function stackDescIndex(cpu: Cpu, ss: number, cpl: number): number {
  if ((ss & 0xfffc) === 0 || (ss & 3) !== cpl) return -1;
  const i = descIndex(cpu, ss);
  if (i < 0) return -1;
  // P, S, DPL = cpl, type 001x (writable data, expand-up): the bits of `hi >>> 24` but accessed
  return ((cpu.ram32[i + 1]! >>> 24) & 0xfe) === (0x92 | (cpl << 5)) ? i : -1;
}

/**
 * The `ram32` index of `bytes` at SS:off for a read, when SS is usable and readable, they lie
 * within its limit and read without a fault (Cpu.stackIndex); else -1.
 */
function stackIndex(cpu: Cpu, off: number, bytes: number): number {
  if ((cpu.segFlags[2]! & 3) !== 3 || off + bytes - 1 > cpu.segLimit[2]!) return -1; // usable, readable
  return ramIndex(cpu, (cpu.segBase[2]! + off) >>> 0, bytes, false, (cpu.segSel[1]! & 3) === 3);
}

/** Byte limit of a segment descriptor's dword 1, signed (segments.ts hiLimit). */
function limitOf(hi: number): number {
  const raw = hi & 0xfffff;
  return (hi & 0x80_0000) !== 0 ? (raw << 12) | 0xfff : raw;
}

/** A segment register from descriptor dwords `lo`, `hi` (segments.ts setSegment, written out). */
function load(cpu: Cpu, seg: number, selector: number, lo: number, hi: number): void {
  cpu.segSel[seg] = selector;
  cpu.segBase[seg] = lo;
  cpu.segLimit[seg] = limitOf(hi);
  cpu.segHi[seg] = hi;
  // SEG_USABLE 1, SEG_READ 2, SEG_WRITE 4, SEG_EXEC 8: code is usable, executable, readable if
  // type bit 1 (hi bit 25); data is usable, readable, writable if type bit 1
  cpu.segFlags[seg] = (hi & 0x0800_0000) !== 0 ? 9 | ((hi >>> 24) & 2) : 3 | ((hi >>> 23) & 4);
}

/**
 * After a return to an outer ring: DS, ES, FS, GS holding data or non-conforming code of a DPL
 * below the new CPL are loaded with the null selector (segments.ts clearOuterSegments).
 */
function clearOuter(cpu: Cpu, cpl: number): void {
  // ES 0, DS 3, FS 4, GS 5 (CS and SS are the return's), written out rather than a loop: every
  // return to an outer ring runs this
  if (mustClear(cpu, 0, cpl)) setNull(cpu, 0);
  if (mustClear(cpu, 3, cpl)) setNull(cpu, 3);
  if (mustClear(cpu, 4, cpl)) setNull(cpu, 4);
  if (mustClear(cpu, 5, cpl)) setNull(cpu, 5);
}

/** A usable data segment register holding data or non-conforming code of a DPL below `cpl`. */
function mustClear(cpu: Cpu, seg: number, cpl: number): boolean {
  if ((cpu.segFlags[seg]! & 1) === 0) return false; // not usable
  const hi = cpu.segHi[seg]! | 0;
  // S, code, conforming: 0xe is conforming code, which stays
  return ((hi >>> 25) & 0xe) !== 0xe && cpl > ((hi >>> 29) & 3);
}

/** The null selector (0) in a data segment register (segments.ts setNull). */
function setNull(cpu: Cpu, seg: number): void {
  cpu.segSel[seg] = 0;
  cpu.segBase[seg] = 0;
  cpu.segLimit[seg] = 0;
  cpu.segHi[seg] = 0;
  cpu.segFlags[seg] = 0;
}

/** ESP fits a frame of `bytes` below it on an expand-up stack of this limit (transfers.ts checkRoom). */
function room(limit: number, esp: number, bytes: number): boolean {
  const top = limit >>> 0;
  return !(esp < bytes || esp - 1 > top || (esp - bytes) >>> 0 > top);
}

/**
 * The end of an inward transfer, its frame written: SS:ESP the inner stack (`low` below the TSS's
 * ESP), CS the target code. EIP (and for a delivery EFLAGS) are the caller's to set.
 */
function enterInner(
  cpu: Cpu,
  ss: number,
  slo: number,
  shi: number,
  low: number,
  cs: number,
  clo: number,
  chi: number,
): void {
  load(cpu, 2, ss, slo, shi);
  cpu.reg[4] = low;
  load(cpu, 1, cs, clo, chi);
}

/**
 * An inward call's frame of `bytes` at RAM index `w`, from its highest dword down: the caller's SS
 * and ESP (`oldEsp`), the parameters (the caller's business), CS, EIP (`next`).
 */
function pushCallFrame(cpu: Cpu, w: number, bytes: number, oldEsp: number, next: number): void {
  const ram32 = cpu.ram32;
  ram32[w + bytes / 4 - 1] = cpu.segSel[2]!;
  ram32[w + bytes / 4 - 2] = oldEsp;
  ram32[w + 1] = cpu.segSel[1]!;
  ram32[w] = next;
}

/**
 * An inward delivery's frame at RAM index `w`, from its highest dword down: the interrupted SS, ESP,
 * EFLAGS (`flags`), CS, EIP (`returnEip`), and the error code unless it is -1.
 */
function pushInterruptFrame(cpu: Cpu, w: number, errorCode: number, flags: number, returnEip: number): void {
  const ram32 = cpu.ram32;
  const e = errorCode >= 0 ? 1 : 0;
  ram32[w + e + 4] = cpu.segSel[2]!;
  ram32[w + e + 3] = cpu.reg[4]!;
  ram32[w + e + 2] = flags;
  ram32[w + e + 1] = cpu.segSel[1]!;
  ram32[w + e] = returnEip;
  if (e === 1) ram32[w] = errorCode;
}

/** EFLAGS after a delivery through the gate whose dword 1 is `ghi`: TF and NT cleared, IF too through an interrupt gate. */
function deliveredFlags(flags: number, ghi: number): number {
  return (flags & ~(0x4100 | ((ghi & 0x0100_0000) === 0 ? 0x200 : 0))) >>> 0;
}

/**
 * CALLF through a call gate (a far JMP goes the general way): the checks of farTransfer and
 * inwardCall or sameRingCall. `next` is the EIP after the CALLF.
 */
export function callGateFast(cpu: Cpu, selector: number, next: number): boolean {
  if ((selector & 0xfffc) === 0 || !fastPaths.enabled) return false;
  const ram32 = cpu.ram32;
  const cpl = cpu.segSel[1]! & 3;
  const memo = cpu.callMemo;
  if (gateMemoHolds(cpu, memo, selector, cpl)) {
    // As the inward commit below, from what the memo holds (no parameters: only those are memoised).
    pushCallFrame(cpu, memo.w, 16, cpu.reg[4]!, next);
    enterInner(cpu, memo.ss, memo.slo, memo.shi, memo.low, memo.cs, memo.tlo, memo.thi);
    cpu.eip = memo.entry;
    return true;
  }
  const gi = descIndex(cpu, selector);
  if (gi < 0) return false;
  const glo = ram32[gi]!;
  const ghi = ram32[gi + 1]!;
  // a present call gate (P, S = 0, type 0xC) of DPL >= CPL and >= RPL
  if (((ghi >>> 24) & 0x9f) !== 0x8c) return false;
  const gdpl = (ghi >>> 29) & 3;
  if (gdpl < cpl || gdpl < (selector & 3)) return false;
  const target = ghi & 0xffff;
  if ((target & 0xfffc) === 0) return false;
  const ti = descIndex(cpu, target);
  if (ti < 0) return false;
  const tlo = ram32[ti]!;
  const thi = ram32[ti + 1]!;
  // present code (P, S, type 1xxx) of DPL <= CPL
  if (((thi >>> 24) & 0x98) !== 0x98) return false;
  const tdpl = (thi >>> 29) & 3;
  if (tdpl > cpl) return false;
  const entry = glo >>> 0;
  if (entry > limitOf(thi) >>> 0) return false;
  const conforming = (thi & 0x0400_0000) !== 0;
  if (conforming || tdpl === cpl) {
    // same ring: CS and EIP on the current stack, both slots checked first (sameRingCall)
    const esp = cpu.reg[4]! >>> 0;
    const low = (esp - 8) >>> 0;
    if ((cpu.segFlags[2]! & 5) !== 5 || low + 7 > cpu.segLimit[2]!) return false; // SS usable, writable
    const w = ramIndex(cpu, (cpu.segBase[2]! + low) >>> 0, 8, true, cpl === 3);
    if (w < 0) return false;
    ram32[w + 1] = cpu.segSel[1]!;
    ram32[w] = next;
    cpu.reg[4] = low;
    load(cpu, 1, (target & 0xfffc) | cpl, tlo, thi);
    cpu.eip = entry;
    return true;
  }
  // inward: the stack of ring tdpl from the TSS, the parameters copied from the caller's stack
  const count = (ghi >>> 16) & 0x1f;
  const off = 4 + 8 * tdpl;
  if (!cpu.trUsable || off + 5 > cpu.trLimit) return false;
  const t = ramIndex(cpu, (cpu.trBase + off) >>> 0, 8, false, false);
  if (t < 0) return false;
  const esp = ram32[t]! >>> 0;
  const ss = ram32[t + 1]! & 0xffff;
  const si = stackDescIndex(cpu, ss, tdpl);
  if (si < 0) return false;
  const slo = ram32[si]!;
  const shi = ram32[si + 1]!;
  const bytes = 16 + 4 * count;
  if (!room(limitOf(shi), esp, bytes)) return false;
  const oldEsp = cpu.reg[4]! >>> 0;
  let p = -1;
  if (count > 0) {
    p = stackIndex(cpu, oldEsp, 4 * count);
    if (p < 0) return false;
  }
  const low = (esp - bytes) >>> 0;
  const w = ramIndex(cpu, (slo + low) >>> 0, bytes, true, tdpl === 3);
  if (w < 0) return false;
  // Nothing can fail from here on. The memo first: the frame may overwrite dwords it holds (a stack
  // beside the GDT or in the TSS), and it must hold what was read.
  if (count === 0) {
    const ldt = ((selector | target | ss) & 4) !== 0;
    rememberGate(cpu, memo, selector, cpl, ldt, gi, ti, t, si, w, low, ss, (target & 0xfffc) | tdpl, entry);
  }
  // Commit. The frame, from its highest dword down: SS, ESP, the parameters, CS, EIP. The
  // parameters are read before any write (the two stacks may overlap).
  for (let k = 0; k < count; k++) params[k] = ram32[p + k]!;
  for (let k = 0; k < count; k++) ram32[w + 2 + k] = params[k]!;
  pushCallFrame(cpu, w, bytes, oldEsp, next);
  enterInner(cpu, ss, slo, shi, low, (target & 0xfffc) | tdpl, tlo, thi);
  cpu.eip = entry;
  return true;
}

/**
 * The checks of a return CS selector (checkReturnCode): the `ram32` index of its descriptor, or -1
 * where the general path would fault.
 */
function returnCodeIndex(cpu: Cpu, cs: number, cpl: number): number {
  const rpl = cs & 3;
  if ((cs & 0xfffc) === 0 || rpl < cpl) return -1;
  const i = descIndex(cpu, cs);
  if (i < 0) return -1;
  const hi = cpu.ram32[i + 1]!;
  if (((hi >>> 24) & 0x98) !== 0x98) return -1; // present code
  const dpl = (hi >>> 29) & 3;
  return ((hi & 0x0400_0000) !== 0 ? dpl > rpl : dpl !== rpl) ? -1 : i;
}

/** RETF [release]: same ring, or an outer ring with SS:ESP from the inner stack (farReturn). */
export function farReturnFast(cpu: Cpu, release: number): boolean {
  if (!fastPaths.enabled) return false;
  const ram32 = cpu.ram32;
  const esp = cpu.reg[4]! >>> 0;
  // The whole frame of a return to an outer ring without a release (EIP, CS, ESP, SS) at once when
  // it can be read, else the EIP and CS a return to the same ring needs (and the outer-ring case
  // below checks its ESP and SS on their own).
  const whole = release === 0 ? stackIndex(cpu, esp, 16) : -1;
  const f = whole >= 0 ? whole : stackIndex(cpu, esp, 8);
  if (f < 0) return false;
  const eip = ram32[f]! >>> 0;
  const cs = ram32[f + 1]! & 0xffff;
  const cpl = cpu.segSel[1]! & 3;
  const rpl = cs & 3;
  if (whole >= 0 && rpl !== cpl) {
    const memo = cpu.retfMemo;
    const ss = ram32[whole + 3]! & 0xffff;
    if (returnMemoHolds(cpu, memo, cs + ss * 0x10000, cpl)) {
      // As the outer-ring commit below, with the descriptors the memo holds.
      if (eip > memo.csLimit) return false;
      load(cpu, 1, cs, memo.clo, memo.chi);
      cpu.eip = eip;
      load(cpu, 2, ss, memo.slo, memo.shi);
      cpu.reg[4] = ram32[whole + 2]! | 0;
      clearOuter(cpu, rpl);
      return true;
    }
  }
  const ci = returnCodeIndex(cpu, cs, cpl);
  if (ci < 0) return false;
  const lo = ram32[ci]!;
  const hi = ram32[ci + 1]!;
  if (eip > limitOf(hi) >>> 0) return false;
  if (rpl === cpl) {
    load(cpu, 1, cs, lo, hi);
    cpu.eip = eip;
    cpu.reg[4] = (esp + 8 + release) | 0;
    return true;
  }
  const g = whole >= 0 ? whole + 2 : stackIndex(cpu, (esp + 8 + release) >>> 0, 8);
  if (g < 0) return false;
  const newEsp = ram32[g]!;
  const ss = ram32[g + 1]! & 0xffff;
  const si = stackDescIndex(cpu, ss, rpl);
  if (si < 0) return false;
  load(cpu, 1, cs, lo, hi);
  cpu.eip = eip;
  load(cpu, 2, ss, ram32[si]!, ram32[si + 1]!);
  cpu.reg[4] = (newEsp + release) | 0;
  clearOuter(cpu, rpl);
  if (release === 0) rememberReturn(cpu, cpu.retfMemo, cs, ss, cpl, ci, si);
  return true;
}

/** IRET with NT = 0: same ring, or an outer ring (interruptReturn, EFLAGS as mergeFlags). */
export function interruptReturnFast(cpu: Cpu): boolean {
  const flags0 = cpu.eflags;
  if ((flags0 & 0x4000) !== 0 || !fastPaths.enabled) return false; // NT: no task return
  const ram32 = cpu.ram32;
  const esp = cpu.reg[4]! >>> 0;
  // The whole frame of a return to an outer ring (EIP, CS, EFLAGS, ESP, SS) at once when it can be
  // read, else the three dwords a return to the same ring needs (as in farReturnFast).
  const whole = stackIndex(cpu, esp, 20);
  const f = whole >= 0 ? whole : stackIndex(cpu, esp, 12);
  if (f < 0) return false;
  const eip = ram32[f]! >>> 0;
  const cs = ram32[f + 1]! & 0xffff;
  const popped = ram32[f + 2]!;
  const cpl = cpu.segSel[1]! & 3;
  const rpl = cs & 3;
  // mergeFlags: the restorable bits; IF at CPL <= IOPL; IOPL at CPL 0; CR4.SFT would fault
  let mask = 0x4dd5;
  if (cpl <= ((flags0 >>> 12) & 3)) mask |= 0x200;
  if (cpl === 0) mask |= 0x3000;
  if (whole >= 0 && rpl !== cpl) {
    const memo = cpu.iretMemo;
    const ss = ram32[whole + 4]! & 0xffff;
    if (returnMemoHolds(cpu, memo, cs + ss * 0x10000, cpl)) {
      // As the outer-ring commit below, with the descriptors the memo holds (the general path
      // checks CR4.SFT after CS: no fault of its own comes between).
      if ((cpu.cr4 & 2) !== 0 && ((popped ^ flags0) & ~mask & 0x3200) !== 0) return false;
      if (eip > memo.csLimit) return false;
      load(cpu, 1, cs, memo.clo, memo.chi);
      cpu.eip = eip;
      load(cpu, 2, ss, memo.slo, memo.shi);
      cpu.reg[4] = ram32[whole + 3]! | 0;
      cpu.eflags = ((flags0 & ~mask) | (popped & mask) | 2) >>> 0;
      clearOuter(cpu, rpl);
      return true;
    }
  }
  const ci = returnCodeIndex(cpu, cs, cpl);
  if (ci < 0) return false;
  if ((cpu.cr4 & 2) !== 0 && ((popped ^ flags0) & ~mask & 0x3200) !== 0) return false;
  const newFlags = ((flags0 & ~mask) | (popped & mask) | 2) >>> 0;
  const lo = ram32[ci]!;
  const hi = ram32[ci + 1]!;
  if (eip > limitOf(hi) >>> 0) return false;
  if (rpl === cpl) {
    load(cpu, 1, cs, lo, hi);
    cpu.eip = eip;
    cpu.reg[4] = (esp + 12) | 0;
    cpu.eflags = newFlags;
    return true;
  }
  const g = whole >= 0 ? whole + 3 : stackIndex(cpu, (esp + 12) >>> 0, 8);
  if (g < 0) return false;
  const newEsp = ram32[g]!;
  const ss = ram32[g + 1]! & 0xffff;
  const si = stackDescIndex(cpu, ss, rpl);
  if (si < 0) return false;
  load(cpu, 1, cs, lo, hi);
  cpu.eip = eip;
  load(cpu, 2, ss, ram32[si]!, ram32[si + 1]!);
  cpu.reg[4] = newEsp | 0;
  cpu.eflags = newFlags;
  clearOuter(cpu, rpl);
  if (whole >= 0) rememberReturn(cpu, cpu.iretMemo, cs, ss, cpl, ci, si);
  return true;
}

/**
 * Delivery through an interrupt or trap gate (deliver): `errorCode` pushed unless -1, `software`
 * (INT n, INT3) checks the gate's DPL, `returnEip` is pushed as the return address.
 */
export function deliverFast(
  cpu: Cpu,
  vector: number,
  errorCode: number,
  software: boolean,
  returnEip: number,
): boolean {
  if (vector * 8 + 7 > cpu.idtLimit || !fastPaths.enabled) return false;
  const ram32 = cpu.ram32;
  const withError = errorCode >= 0;
  const cpl = cpu.segSel[1]! & 3;
  const memo = software ? cpu.intMemo : cpu.deliverMemo;
  const key = vector | (software ? 0x100 : 0) | (withError ? 0x200 : 0);
  const flags = cpu.eflags;
  if (gateMemoHolds(cpu, memo, key, cpl)) {
    // As the inward commit below, from what the memo holds.
    pushInterruptFrame(cpu, memo.w, errorCode, flags, returnEip);
    enterInner(cpu, memo.ss, memo.slo, memo.shi, memo.low, memo.cs, memo.tlo, memo.thi);
    cpu.eip = memo.entry;
    cpu.eflags = deliveredFlags(flags, memo.ghi);
    cpu.halted = false;
    return true;
  }
  const gi = ramIndex(cpu, (cpu.idtBase + vector * 8) >>> 0, 8, false, false);
  if (gi < 0) return false;
  const glo = ram32[gi]!;
  const ghi = ram32[gi + 1]!;
  // a present interrupt (0xE) or trap (0xF) gate: P, S = 0, type 111x
  if (((ghi >>> 24) & 0x9e) !== 0x8e) return false;
  if (software && cpl > ((ghi >>> 29) & 3)) return false;
  const target = ghi & 0xffff;
  if ((target & 0xfffc) === 0) return false;
  const ti = descIndex(cpu, target);
  if (ti < 0) return false;
  const tlo = ram32[ti]!;
  const thi = ram32[ti + 1]!;
  if (((thi >>> 24) & 0x98) !== 0x98) return false; // present code
  const tdpl = (thi >>> 29) & 3;
  if (tdpl > cpl) return false;
  const entry = glo >>> 0;
  if (entry > limitOf(thi) >>> 0) return false;
  if ((thi & 0x0400_0000) === 0 && tdpl < cpl) {
    // inward: SS:ESP of ring tdpl from the TSS; the frame SS, ESP, EFLAGS, CS, EIP [, error code]
    const off = 4 + 8 * tdpl;
    if (!cpu.trUsable || off + 5 > cpu.trLimit) return false;
    const t = ramIndex(cpu, (cpu.trBase + off) >>> 0, 8, false, false);
    if (t < 0) return false;
    const esp = ram32[t]! >>> 0;
    const ss = ram32[t + 1]! & 0xffff;
    const si = stackDescIndex(cpu, ss, tdpl);
    if (si < 0) return false;
    const slo = ram32[si]!;
    const shi = ram32[si + 1]!;
    const bytes = withError ? 24 : 20;
    if (!room(limitOf(shi), esp, bytes)) return false;
    const low = (esp - bytes) >>> 0;
    const w = ramIndex(cpu, (slo + low) >>> 0, bytes, true, tdpl === 3);
    if (w < 0) return false;
    // The memo before the frame, which may overwrite dwords it holds (see callGateFast).
    const cs = (target & 0xfffc) | tdpl;
    rememberGate(cpu, memo, key, cpl, ((target | ss) & 4) !== 0, gi, ti, t, si, w, low, ss, cs, entry);
    pushInterruptFrame(cpu, w, errorCode, flags, returnEip);
    enterInner(cpu, ss, slo, shi, low, cs, tlo, thi);
  } else {
    // same ring: EFLAGS, CS, EIP [, error code] on the current stack
    const esp = cpu.reg[4]! >>> 0;
    const bytes = withError ? 16 : 12;
    const low = (esp - bytes) >>> 0;
    if ((cpu.segFlags[2]! & 1) === 0 || low + bytes - 1 > cpu.segLimit[2]!) return false;
    const w = ramIndex(cpu, (cpu.segBase[2]! + low) >>> 0, bytes, true, cpl === 3);
    if (w < 0) return false;
    const e = withError ? 1 : 0;
    ram32[w + e + 2] = flags;
    ram32[w + e + 1] = cpu.segSel[1]!;
    ram32[w + e] = returnEip;
    if (withError) ram32[w] = errorCode;
    cpu.reg[4] = low;
    load(cpu, 1, (target & 0xfffc) | cpl, tlo, thi);
  }
  cpu.eip = entry;
  cpu.eflags = deliveredFlags(flags, ghi);
  cpu.halted = false;
  return true;
}

/**
 * MOV and POP of DS, ES, FS or GS with a non-null selector (segments.ts loadSegment and
 * checkDataSegment): data, or readable code; not expand-down; DPL >= max(CPL, RPL) unless
 * conforming code; present.
 */
export function loadDataSegmentFast(cpu: Cpu, seg: number, selector: number): boolean {
  if ((selector & 0xfffc) === 0 || !fastPaths.enabled) return false;
  const i = descIndex(cpu, selector);
  if (i < 0) return false;
  const hi = cpu.ram32[i + 1]!;
  // (hi >>> 25) & 0xf: S, code, conforming / expand-down, readable / writable
  const kind = (hi >>> 25) & 0xf;
  // data expand-up (10x0: 1000, 1001), readable code (11x1: 1101, 1111); present
  if ((kind !== 8 && kind !== 9 && kind !== 0xd && kind !== 0xf) || hi >>> 31 === 0) return false;
  const dpl = (hi >>> 29) & 3;
  if (kind !== 0xf && (dpl < (cpu.segSel[1]! & 3) || dpl < (selector & 3))) return false;
  load(cpu, seg, selector, cpu.ram32[i]!, hi);
  return true;
}
