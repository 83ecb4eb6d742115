/**
 * Far transfers (reference §3.2-§3.5; SDM §5.8, §6.12): far JMP and CALL to code segments and
 * through call gates with the inward stack switch and parameter copy, far RET and IRET to the same
 * or an outer ring, and interrupt/exception delivery through interrupt and trap gates. Each reads
 * and checks everything (descriptors, the new stack, the frame) before the first register changes.
 * Hardware task switching (TSS or task-gate targets, IRET with NT = 1) is not provided: such a
 * transfer raises #GP, as the emulator documents.
 */
import type { Cpu } from './cpu.js';
import { deliverFast, farReturnFast, interruptReturnFast } from './fast-transfers.js';
import { fault, selErr, VEC } from './faults.js';
import {
  checkStackSegment,
  clearOuterSegments,
  hiCode,
  hiConforming,
  hiDpl,
  hiLimit,
  hiPresent,
  hiSystem,
  hiType,
  readDescriptor,
  setSegment,
} from './segments.js';

// Descriptors are handled as their two dwords (lo, hi) without objects: see segments.ts. Segment
// numbers, flag bits and types are literals here (named in comments): a module-level constant or
// imported object is loaded again at every use in optimised code.
const CS = 1;
const SS = 2;

/**
 * Offset in the TSS of ESPn for the inner-ring stack SSn:ESPn (SDM §7.2.1); #TS(TR) if the TSS is
 * too small. The limit test is the SDM's "(TSSstackAddress + 5) > current TSS limit": the 2 bytes
 * of SSn must fit. The caller reads ESPn at the offset, then SSn 4 bytes above it.
 */
function tssStackOffset(cpu: Cpu, ring: number, ext: number): number {
  const off = 4 + 8 * ring; // TSS.ESP0
  if (!cpu.trUsable || off + 5 > cpu.trLimit) throw fault(VEC.TS, selErr(cpu.trSel, ext));
  return off;
}

/** ESPn at `off` in the TSS (returned, unsigned) and SSn after it (left in frame[0]), as supervisor reads. */
function readTss(cpu: Cpu, off: number): number {
  const at = (cpu.trBase + off) >>> 0;
  const i = cpu.frameIndex(at, 8, false, false);
  if (i >= 0) {
    frame[0] = cpu.ram32[i + 1]!;
    return cpu.ram32[i]! >>> 0;
  }
  const esp = cpu.readSystem32(at);
  frame[0] = cpu.readSystemI32((cpu.trBase + off + 4) >>> 0);
  return esp;
}

/** Checks that `bytes` below `esp` fit an expand-up stack with this limit, else #SS(errorCode). */
function checkRoom(limit: number, esp: number, bytes: number, errorCode: number): void {
  const top = limit >>> 0; // hiLimit is signed
  const low = (esp - bytes) >>> 0;
  if (esp < bytes || esp - 1 > top || low > top) throw fault(VEC.SS, errorCode);
}

/** Pushes one dword of a frame below `sp` on a stack with base `base`; returns the new stack pointer. */
function put(cpu: Cpu, base: number, sp: number, value: number, user: boolean): number {
  const at = (sp - 4) >>> 0;
  cpu.writeLinear32((base + at) >>> 0, value, user);
  return at;
}

/**
 * The dwords of a stack frame being read or written: the values of RETF/IRET, or those of a call or
 * interrupt frame, highest address first (at most SS, ESP, 31 parameters, CS, EIP).
 */
const frame = new Int32Array(36);

/**
 * Reads `n` dwords at SS:off, off + 4, ... into `frame`, each as Cpu.read32 reads it (and in that
 * order, so the first fault is the same); at once when none of them can fault.
 */
function readFrame(cpu: Cpu, off: number, n: number): void {
  const i = cpu.stackIndex(off, 4 * n);
  if (i >= 0) {
    for (let k = 0; k < n; k++) frame[k] = cpu.ram32[i + k]!;
    return;
  }
  for (let k = 0; k < n; k++) frame[k] = cpu.read32(SS, (off + 4 * k) >>> 0);
}

/**
 * Pushes frame[0..n) below `sp` on a stack with base `base` (frame[0] at the highest address), as
 * `put` one by one; at once when no write can fault. Returns the new stack pointer.
 */
function writeFrame(cpu: Cpu, base: number, sp: number, n: number, user: boolean): number {
  const low = (sp - 4 * n) >>> 0;
  const i = cpu.frameIndex((base + low) >>> 0, 4 * n, true, user);
  if (i >= 0) {
    const ram32 = cpu.ram32;
    for (let k = 0; k < n; k++) ram32[i + n - 1 - k] = frame[k]!;
    return low;
  }
  let at = sp;
  for (let k = 0; k < n; k++) at = put(cpu, base, at, frame[k]!, user);
  return at;
}

/**
 * JMPF / CALLF sel:off (SDM §5.8.1, §5.8.4), the general path: the run loop tries a CALLF's common
 * case first (callGateFast), as it does farReturnFast before farReturn. `next` is the EIP after
 * the instruction.
 */
export function farTransfer(cpu: Cpu, call: boolean, selector: number, offset: number, next: number): void {
  const cpl = cpu.cpl;
  if ((selector & 0xfffc) === 0) throw fault(VEC.GP, 0);
  const hi = readDescriptor(cpu, selector, 0, VEC.GP);
  const lo = cpu.descLo;
  if (hiCode(hi)) {
    if (hiConforming(hi) ? hiDpl(hi) > cpl : (selector & 3) > cpl || hiDpl(hi) !== cpl)
      throw fault(VEC.GP, selErr(selector));
    if (!hiPresent(hi)) throw fault(VEC.NP, selErr(selector));
    if (offset >>> 0 > hiLimit(hi) >>> 0) throw fault(VEC.GP, 0);
    if (call) sameRingCall(cpu, next);
    setSegment(cpu, CS, (selector & 0xfffc) | cpl, lo, hi);
    cpu.eip = offset >>> 0;
    return;
  }
  // TSS / task gate: no task switch
  if (!hiSystem(hi) || hiType(hi) !== 0xc /* TYPE.CALL_GATE */) throw fault(VEC.GP, selErr(selector));
  if (hiDpl(hi) < cpl || hiDpl(hi) < (selector & 3)) throw fault(VEC.GP, selErr(selector));
  if (!hiPresent(hi)) throw fault(VEC.NP, selErr(selector));
  const target = hi & 0xffff; // gate: target selector, parameter count, offset in dword 0
  if ((target & 0xfffc) === 0) throw fault(VEC.GP, 0);
  const thi = readDescriptor(cpu, target, 0, VEC.GP);
  const tlo = cpu.descLo;
  if (!hiCode(thi)) throw fault(VEC.GP, selErr(target));
  if (call || hiConforming(thi) ? hiDpl(thi) > cpl : hiDpl(thi) !== cpl) throw fault(VEC.GP, selErr(target));
  if (!hiPresent(thi)) throw fault(VEC.NP, selErr(target));
  const entry = lo >>> 0;
  if (entry > hiLimit(thi) >>> 0) throw fault(VEC.GP, 0);
  if (call && !hiConforming(thi) && hiDpl(thi) < cpl) {
    inwardCall(cpu, tlo, thi, target, entry, (hi >>> 16) & 0x1f, next);
    return;
  }
  if (call) sameRingCall(cpu, next);
  setSegment(cpu, CS, (target & 0xfffc) | cpl, tlo, thi);
  cpu.eip = entry;
}

/** Pushes CS and the return EIP on the current stack; both slots are checked before the first write. */
function sameRingCall(cpu: Cpu, next: number): void {
  const esp = cpu.esp;
  cpu.linear(SS, (esp - 8) >>> 0, 8, true);
  frame[0] = cpu.segSel[CS]!;
  frame[1] = next;
  cpu.reg[4] = writeFrame(cpu, cpu.segBase[SS]!, esp, 2, cpu.cpl === 3);
}

/** CALL through a gate to a more privileged ring: the SDM §5.8.5 steps, all checks first. */
function inwardCall(
  cpu: Cpu,
  tlo: number,
  thi: number,
  target: number,
  entry: number,
  count: number,
  next: number,
): void {
  const newCpl = hiDpl(thi);
  const off = tssStackOffset(cpu, newCpl, 0);
  const esp = readTss(cpu, off);
  const ss = frame[0]! & 0xffff;
  const shi = checkStackSegment(cpu, ss, newCpl, VEC.TS);
  const slo = cpu.descLo;
  checkRoom(hiLimit(shi), esp, 16 + 4 * count, selErr(ss));
  // Parameters from the caller's stack, read before anything changes.
  const oldEsp = cpu.esp;
  for (let i = count - 1; i >= 0; i--) frame[2 + count - 1 - i] = cpu.read32(SS, (oldEsp + 4 * i) >>> 0);
  frame[0] = cpu.segSel[SS]!;
  frame[1] = oldEsp;
  frame[2 + count] = cpu.segSel[CS]!;
  frame[3 + count] = next;
  const sp = writeFrame(cpu, slo, esp, 4 + count, newCpl === 3);
  setSegment(cpu, SS, ss, slo, shi);
  cpu.reg[4] = sp;
  setSegment(cpu, CS, (target & 0xfffc) | newCpl, tlo, thi);
  cpu.eip = entry;
}

/**
 * Checks of a return CS selector (far RET and IRET, reference §3.4). Returns dword 1 of its
 * descriptor; dword 0 is in `cpu.descLo`.
 */
function checkReturnCode(cpu: Cpu, selector: number): number {
  if ((selector & 0xfffc) === 0) throw fault(VEC.GP, 0);
  const rpl = selector & 3;
  if (rpl < cpu.cpl) throw fault(VEC.GP, selErr(selector));
  const hi = readDescriptor(cpu, selector, 0, VEC.GP);
  if (!hiCode(hi)) throw fault(VEC.GP, selErr(selector));
  if (hiConforming(hi) ? hiDpl(hi) > rpl : hiDpl(hi) !== rpl) throw fault(VEC.GP, selErr(selector));
  if (!hiPresent(hi)) throw fault(VEC.NP, selErr(selector));
  return hi;
}

/** RETF [imm]: same ring, or outer ring with the SS:ESP popped from the inner stack. */
export function farReturn(cpu: Cpu, release: number): void {
  if (farReturnFast(cpu, release)) return; // the common case (fast-transfers.ts)
  const esp = cpu.esp;
  readFrame(cpu, esp, 2);
  const eip = frame[0]! >>> 0;
  const cs = frame[1]! & 0xffff;
  const hi = checkReturnCode(cpu, cs);
  const lo = cpu.descLo;
  const rpl = cs & 3;
  if (rpl === cpu.cpl) {
    // Same level: only the 8 bytes of CS:EIP are checked against the stack limit (SDM RET), and the
    // released parameters are not.
    if (eip > hiLimit(hi) >>> 0) throw fault(VEC.GP, 0);
    setSegment(cpu, CS, cs, lo, hi);
    cpu.eip = eip;
    cpu.reg[4] = (esp + 8 + release) | 0;
    return;
  }
  readFrame(cpu, (esp + 8 + release) >>> 0, 2);
  const newEsp = frame[0]!;
  const ss = frame[1]! & 0xffff;
  const shi = checkStackSegment(cpu, ss, rpl);
  const slo = cpu.descLo;
  if (eip > hiLimit(hi) >>> 0) throw fault(VEC.GP, 0);
  setSegment(cpu, CS, cs, lo, hi);
  cpu.eip = eip;
  setSegment(cpu, SS, ss, slo, shi);
  cpu.reg[4] = (newEsp + release) | 0;
  clearOuterSegments(cpu);
}

/** IRET (protected mode, NT = 0): EFLAGS restored under the old CPL's rules (reference §3.4). */
export function interruptReturn(cpu: Cpu): void {
  if (interruptReturnFast(cpu)) return; // the common case (fast-transfers.ts)
  if (cpu.eflags & 0x4000 /* FL.NT */) throw fault(VEC.GP, 0); // task return: no hardware task switching
  const esp = cpu.esp;
  readFrame(cpu, esp, 3);
  const eip = frame[0]! >>> 0;
  const cs = frame[1]! & 0xffff;
  const flags = frame[2]!;
  const hi = checkReturnCode(cpu, cs);
  const lo = cpu.descLo;
  const rpl = cs & 3;
  const oldCpl = cpu.cpl;
  const newFlags = mergeFlags(cpu, flags, oldCpl);
  if (rpl === oldCpl) {
    if (eip > hiLimit(hi) >>> 0) throw fault(VEC.GP, 0);
    setSegment(cpu, CS, cs, lo, hi);
    cpu.eip = eip;
    cpu.reg[4] = (esp + 12) | 0;
    cpu.eflags = newFlags;
    return;
  }
  readFrame(cpu, (esp + 12) >>> 0, 2);
  const newEsp = frame[0]!;
  const ss = frame[1]! & 0xffff;
  const shi = checkStackSegment(cpu, ss, rpl);
  const slo = cpu.descLo;
  if (eip > hiLimit(hi) >>> 0) throw fault(VEC.GP, 0);
  setSegment(cpu, CS, cs, lo, hi);
  cpu.eip = eip;
  setSegment(cpu, SS, ss, slo, shi);
  cpu.reg[4] = newEsp | 0;
  cpu.eflags = newFlags;
  clearOuterSegments(cpu);
}

/**
 * EFLAGS as POPF and IRET write them: the restorable bits always; IF only when CPL <= IOPL; IOPL
 * only at CPL 0; otherwise the old values stay, silently (reference §3.6). With CR4.SFT (flags.ts)
 * a value the rules would silently keep but the popped one changes raises #GP(0) instead.
 */
export function mergeFlags(cpu: Cpu, popped: number, cpl: number): number {
  let mask = 0x4dd5; // RESTORABLE: CF PF AF ZF SF TF DF OF NT
  if (cpl <= cpu.iopl) mask |= 0x200; // IF
  if (cpl === 0) mask |= 0x3000; // IOPL
  if (cpu.cr4 & 2 /* CR4.SFT */ && ((popped ^ cpu.eflags) & ~mask & 0x3200) !== 0) throw fault(VEC.GP, 0);
  return ((cpu.eflags & ~mask) | (popped & mask) | 2) >>> 0; // bit 1 always set (FL.FIXED)
}

/**
 * Delivers an interrupt or exception through the IDT (SDM §6.12.1). `errorCode` is pushed unless
 * undefined; `software` (INT n / INT3) checks the gate DPL (reference §3.5); `ext` (an external
 * event: hardware interrupt, or an exception during delivery) sets EXT in error codes; `returnEip`
 * is the EIP pushed as the return address.
 */
export function deliver(
  cpu: Cpu,
  vector: number,
  errorCode: number | undefined,
  software: boolean,
  ext: number,
  returnEip: number,
): void {
  // the common case (fast-transfers.ts)
  if (deliverFast(cpu, vector, errorCode === undefined ? -1 : errorCode, software, returnEip)) return;
  const gateErr = vector * 8 + 2 + ext;
  if (vector * 8 + 7 > cpu.idtLimit) throw fault(VEC.GP, gateErr);
  const at = (cpu.idtBase + vector * 8) >>> 0;
  const i = cpu.frameIndex(at, 8, false, false); // both dwords at once when neither read can fault
  const glo = i >= 0 ? cpu.ram32[i]! : cpu.readSystemI32(at);
  const ghi = i >= 0 ? cpu.ram32[i + 1]! : cpu.readSystemI32((at + 4) >>> 0);
  const type = (ghi >>> 24) & 0xf;
  const dpl = (ghi >>> 29) & 3;
  if ((ghi >>> 28) & 1 || (type !== 0xe && type !== 0xf) /* interrupt or trap gate */)
    throw fault(VEC.GP, gateErr);
  if (software && cpu.cpl > dpl) throw fault(VEC.GP, vector * 8 + 2);
  if (!(ghi >>> 31)) throw fault(VEC.NP, gateErr);
  const target = ghi & 0xffff;
  if ((target & 0xfffc) === 0) throw fault(VEC.GP, ext);
  const thi = readDescriptor(cpu, target, ext, VEC.GP);
  const tlo = cpu.descLo;
  const cpl = cpu.cpl;
  if (!hiCode(thi) || hiDpl(thi) > cpl) throw fault(VEC.GP, selErr(target, ext));
  if (!hiPresent(thi)) throw fault(VEC.NP, selErr(target, ext));
  const entry = glo >>> 0;
  if (entry > hiLimit(thi) >>> 0) throw fault(VEC.GP, ext);
  const withError = errorCode !== undefined;
  const flags = cpu.eflags;
  if (!hiConforming(thi) && hiDpl(thi) < cpl) {
    const newCpl = hiDpl(thi);
    const off = tssStackOffset(cpu, newCpl, ext);
    const esp = readTss(cpu, off);
    const ss = frame[0]! & 0xffff;
    const shi = checkStackSegment(cpu, ss, newCpl, VEC.TS, ext);
    const slo = cpu.descLo;
    checkRoom(hiLimit(shi), esp, withError ? 24 : 20, selErr(ss, ext));
    frame[0] = cpu.segSel[SS]!;
    frame[1] = cpu.reg[4]!; // ESP
    frame[2] = flags;
    frame[3] = cpu.segSel[CS]!;
    frame[4] = returnEip;
    if (withError) frame[5] = errorCode;
    const sp = writeFrame(cpu, slo, esp, withError ? 6 : 5, newCpl === 3);
    setSegment(cpu, SS, ss, slo, shi);
    cpu.reg[4] = sp;
    setSegment(cpu, CS, (target & 0xfffc) | newCpl, tlo, thi);
  } else {
    const esp = cpu.esp;
    const bytes = withError ? 16 : 12;
    // SDM INT n: "IF current stack does not have room for 16 bytes (error code pushed) or 12 bytes
    // (no error code) THEN #SS(EXT)".
    const low = (esp - bytes) >>> 0;
    if (!(cpu.segFlags[SS]! & 1) /* SEG_USABLE */ || low + bytes - 1 > cpu.segLimit[SS]!)
      throw fault(VEC.SS, ext);
    frame[0] = flags;
    frame[1] = cpu.segSel[CS]!;
    frame[2] = returnEip;
    if (withError) frame[3] = errorCode;
    cpu.reg[4] = writeFrame(cpu, cpu.segBase[SS]!, esp, withError ? 4 : 3, cpl === 3);
    setSegment(cpu, CS, (target & 0xfffc) | cpl, tlo, thi);
  }
  cpu.eip = entry;
  cpu.eflags = (flags & ~(0x4100 | (type === 0xe ? 0x200 : 0))) >>> 0; // TF NT, and IF for an interrupt gate
  cpu.halted = false;
}
