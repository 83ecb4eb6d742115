/**
 * Far transfers (reference §3.2-§3.5; SDM §5.8, §6.12): far JMP and CALL to code segments and
 * through call gates with the inward stack switch and parameter copy, far RET and IRET to the same
 * or an outer ring, and interrupt/exception delivery through interrupt and trap gates. Each reads
 * and checks everything (descriptors, the new stack, the frame) before the first register changes.
 * Hardware task switching (TSS or task-gate targets, IRET with NT = 1) is not provided: such a
 * transfer raises #GP, as the emulator documents.
 */
import { type Cpu, SEG_USABLE } from './cpu.js';
import {
  type Descriptor,
  gateOffset,
  gateParams,
  gateSelector,
  isCode,
  isConforming,
  segLimit,
  TSS,
  TYPE,
} from './descriptor.js';
import { fault, selErr, VEC } from './faults.js';
import { FL, RESTORABLE } from './flags.js';
import { S } from './isa.js';
import { checkStackSegment, clearOuterSegments, fetchDescriptor, setSegment } from './segments.js';

/**
 * The inner-ring stack SSn:ESPn from the TSS (SDM §7.2.1); #TS(TR) if the TSS is too small. The
 * limit test is the SDM's "(TSSstackAddress + 5) > current TSS limit": the 2 bytes of SSn must fit.
 */
function tssStack(cpu: Cpu, ring: number, ext: number): { ss: number; esp: number } {
  const off = TSS.ESP0 + 8 * ring;
  if (!cpu.trUsable || off + 5 > cpu.trLimit) throw fault(VEC.TS, selErr(cpu.trSel, ext));
  const esp = cpu.readSystem32((cpu.trBase + off) >>> 0);
  const ss = cpu.readSystem32((cpu.trBase + off + 4) >>> 0) & 0xffff;
  return { ss, esp };
}

/** Checks that `bytes` below `esp` fit an expand-up stack with this limit, else #SS(errorCode). */
function checkRoom(limit: number, esp: number, bytes: number, errorCode: number): void {
  const low = (esp - bytes) >>> 0;
  if (esp < bytes || esp - 1 > limit || low > limit) throw fault(VEC.SS, errorCode);
}

/** Writes a frame of dwords, highest address first, below `esp` of a stack with base `base`. */
function writeFrame(cpu: Cpu, base: number, esp: number, values: readonly number[], user: boolean): number {
  let sp = esp;
  for (const v of values) {
    sp = (sp - 4) >>> 0;
    cpu.writeLinear32((base + sp) >>> 0, v, user);
  }
  return sp;
}

function loadCode(cpu: Cpu, selector: number, d: Descriptor, cpl: number): void {
  setSegment(cpu, S.CS, (selector & 0xfffc) | cpl, d);
}

/** JMPF / CALLF sel:off (SDM §5.8.1, §5.8.4). `next` is the EIP after the instruction. */
export function farTransfer(cpu: Cpu, call: boolean, selector: number, offset: number, next: number): void {
  const cpl = cpu.cpl;
  if ((selector & 0xfffc) === 0) throw fault(VEC.GP, 0);
  const d = fetchDescriptor(cpu, selector);
  if (isCode(d)) {
    if (isConforming(d) ? d.dpl > cpl : (selector & 3) > cpl || d.dpl !== cpl)
      throw fault(VEC.GP, selErr(selector));
    if (!d.present) throw fault(VEC.NP, selErr(selector));
    if (offset >>> 0 > segLimit(d)) throw fault(VEC.GP, 0);
    if (call) sameRingCall(cpu, next);
    loadCode(cpu, selector, d, cpl);
    cpu.eip = offset >>> 0;
    return;
  }
  if (d.s || d.type !== TYPE.CALL_GATE) throw fault(VEC.GP, selErr(selector)); // TSS / task gate: no task switch
  if (d.dpl < cpl || d.dpl < (selector & 3)) throw fault(VEC.GP, selErr(selector));
  if (!d.present) throw fault(VEC.NP, selErr(selector));
  const target = gateSelector(d);
  if ((target & 0xfffc) === 0) throw fault(VEC.GP, 0);
  const t = fetchDescriptor(cpu, target);
  if (!isCode(t)) throw fault(VEC.GP, selErr(target));
  if (call || isConforming(t) ? t.dpl > cpl : t.dpl !== cpl) throw fault(VEC.GP, selErr(target));
  if (!t.present) throw fault(VEC.NP, selErr(target));
  const entry = gateOffset(d);
  if (entry > segLimit(t)) throw fault(VEC.GP, 0);
  if (call && !isConforming(t) && t.dpl < cpl) {
    inwardCall(cpu, t, target, entry, gateParams(d), next);
    return;
  }
  if (call) sameRingCall(cpu, next);
  loadCode(cpu, target, t, cpl);
  cpu.eip = entry;
}

/** Pushes CS and the return EIP on the current stack; both slots are checked before the first write. */
function sameRingCall(cpu: Cpu, next: number): void {
  const esp = cpu.esp;
  cpu.linear(S.SS, (esp - 8) >>> 0, 8, true);
  const user = cpu.cpl === 3;
  const sp = writeFrame(cpu, cpu.segBase[S.SS]!, esp, [cpu.segSel[S.CS]!, next], user);
  cpu.reg[4] = sp;
}

/** CALL through a gate to a more privileged ring: the SDM §5.8.5 steps, all checks first. */
function inwardCall(
  cpu: Cpu,
  t: Descriptor,
  target: number,
  entry: number,
  params: number,
  next: number,
): void {
  const newCpl = t.dpl;
  const { ss, esp } = tssStack(cpu, newCpl, 0);
  const ssd = checkStackSegment(cpu, ss, newCpl, VEC.TS);
  const frame = 16 + 4 * params;
  checkRoom(segLimit(ssd), esp, frame, selErr(ss));
  // Parameters from the caller's stack, read before anything changes.
  const oldEsp = cpu.esp;
  const args: number[] = [];
  for (let i = params - 1; i >= 0; i--) args.push(cpu.read32(S.SS, (oldEsp + 4 * i) >>> 0));
  const values = [cpu.segSel[S.SS]!, oldEsp, ...args, cpu.segSel[S.CS]!, next];
  const sp = writeFrame(cpu, ssd.lo, esp, values, newCpl === 3);
  setSegment(cpu, S.SS, ss, ssd);
  cpu.reg[4] = sp;
  loadCode(cpu, target, t, newCpl);
  cpu.eip = entry;
}

/** Checks of a return CS selector (far RET and IRET, reference §3.4). */
function checkReturnCode(cpu: Cpu, selector: number): Descriptor {
  if ((selector & 0xfffc) === 0) throw fault(VEC.GP, 0);
  const rpl = selector & 3;
  if (rpl < cpu.cpl) throw fault(VEC.GP, selErr(selector));
  const d = fetchDescriptor(cpu, selector);
  if (!isCode(d)) throw fault(VEC.GP, selErr(selector));
  if (isConforming(d) ? d.dpl > rpl : d.dpl !== rpl) throw fault(VEC.GP, selErr(selector));
  if (!d.present) throw fault(VEC.NP, selErr(selector));
  return d;
}

/** RETF [imm]: same ring, or outer ring with the SS:ESP popped from the inner stack. */
export function farReturn(cpu: Cpu, release: number): void {
  const esp = cpu.esp;
  const eip = cpu.read32(S.SS, esp);
  const cs = cpu.read32(S.SS, (esp + 4) >>> 0) & 0xffff;
  const d = checkReturnCode(cpu, cs);
  const rpl = cs & 3;
  if (rpl === cpu.cpl) {
    // Same level: only the 8 bytes of CS:EIP are checked against the stack limit (SDM RET), and the
    // released parameters are not.
    if (eip > segLimit(d)) throw fault(VEC.GP, 0);
    setSegment(cpu, S.CS, cs, d);
    cpu.eip = eip;
    cpu.reg[4] = (esp + 8 + release) | 0;
    return;
  }
  const newEsp = cpu.read32(S.SS, (esp + 8 + release) >>> 0);
  const ss = cpu.read32(S.SS, (esp + 12 + release) >>> 0) & 0xffff;
  const ssd = checkStackSegment(cpu, ss, rpl);
  if (eip > segLimit(d)) throw fault(VEC.GP, 0);
  setSegment(cpu, S.CS, cs, d);
  cpu.eip = eip;
  setSegment(cpu, S.SS, ss, ssd);
  cpu.reg[4] = (newEsp + release) | 0;
  clearOuterSegments(cpu);
}

/** IRET (protected mode, NT = 0): EFLAGS restored under the old CPL's rules (reference §3.4). */
export function interruptReturn(cpu: Cpu): void {
  if (cpu.eflags & FL.NT) throw fault(VEC.GP, 0); // task return: no hardware task switching
  const esp = cpu.esp;
  const eip = cpu.read32(S.SS, esp);
  const cs = cpu.read32(S.SS, (esp + 4) >>> 0) & 0xffff;
  const flags = cpu.read32(S.SS, (esp + 8) >>> 0);
  const d = checkReturnCode(cpu, cs);
  const rpl = cs & 3;
  const oldCpl = cpu.cpl;
  const newFlags = mergeFlags(cpu, flags, oldCpl);
  if (rpl === oldCpl) {
    if (eip > segLimit(d)) throw fault(VEC.GP, 0);
    setSegment(cpu, S.CS, cs, d);
    cpu.eip = eip;
    cpu.reg[4] = (esp + 12) | 0;
    cpu.eflags = newFlags;
    return;
  }
  const newEsp = cpu.read32(S.SS, (esp + 12) >>> 0);
  const ss = cpu.read32(S.SS, (esp + 16) >>> 0) & 0xffff;
  const ssd = checkStackSegment(cpu, ss, rpl);
  if (eip > segLimit(d)) throw fault(VEC.GP, 0);
  setSegment(cpu, S.CS, cs, d);
  cpu.eip = eip;
  setSegment(cpu, S.SS, ss, ssd);
  cpu.reg[4] = newEsp | 0;
  cpu.eflags = newFlags;
  clearOuterSegments(cpu);
}

/**
 * EFLAGS as POPF and IRET write them: the restorable bits always; IF only when CPL <= IOPL; IOPL
 * only at CPL 0; otherwise the old values stay, silently (reference §3.6).
 */
export function mergeFlags(cpu: Cpu, popped: number, cpl: number): number {
  let mask = RESTORABLE;
  if (cpl <= cpu.iopl) mask |= FL.IF;
  if (cpl === 0) mask |= FL.IOPL;
  return ((cpu.eflags & ~mask) | (popped & mask) | FL.FIXED) >>> 0;
}

export interface Delivery {
  readonly vector: number;
  readonly errorCode: number | undefined;
  /** INT n / INT3: the gate DPL is checked (reference §3.5). */
  readonly software: boolean;
  /** External event (hardware interrupt or an exception during delivery): sets EXT in error codes. */
  readonly ext: number;
  /** EIP pushed as the return address. */
  readonly returnEip: number;
}

/** Delivers an interrupt or exception through the IDT (SDM §6.12.1). */
export function deliver(cpu: Cpu, ev: Delivery): void {
  const { vector, ext } = ev;
  const gateErr = vector * 8 + 2 + ext;
  if (vector * 8 + 7 > cpu.idtLimit) throw fault(VEC.GP, gateErr);
  const at = (cpu.idtBase + vector * 8) >>> 0;
  const g = { lo: cpu.readSystem32(at), hi: cpu.readSystem32((at + 4) >>> 0) };
  const type = (g.hi >>> 24) & 0xf;
  const dpl = (g.hi >>> 29) & 3;
  if ((g.hi >>> 28) & 1 || (type !== TYPE.INT_GATE && type !== TYPE.TRAP_GATE)) throw fault(VEC.GP, gateErr);
  if (ev.software && cpu.cpl > dpl) throw fault(VEC.GP, vector * 8 + 2);
  if (!(g.hi >>> 31)) throw fault(VEC.NP, gateErr);
  const target = g.hi & 0xffff;
  if ((target & 0xfffc) === 0) throw fault(VEC.GP, ext);
  const t = fetchDescriptor(cpu, target, ext);
  const cpl = cpu.cpl;
  if (!isCode(t) || t.dpl > cpl) throw fault(VEC.GP, selErr(target, ext));
  if (!t.present) throw fault(VEC.NP, selErr(target, ext));
  const entry = g.lo >>> 0;
  if (entry > segLimit(t)) throw fault(VEC.GP, ext);
  const err = ev.errorCode === undefined ? [] : [ev.errorCode];
  const flags = cpu.eflags;
  if (!isConforming(t) && t.dpl < cpl) {
    const newCpl = t.dpl;
    const { ss, esp } = tssStack(cpu, newCpl, ext);
    const ssd = checkStackSegment(cpu, ss, newCpl, VEC.TS, ext);
    const values = [cpu.segSel[S.SS]!, cpu.esp, flags, cpu.segSel[S.CS]!, ev.returnEip, ...err];
    checkRoom(segLimit(ssd), esp, 4 * values.length, selErr(ss, ext));
    const sp = writeFrame(cpu, ssd.lo, esp, values, newCpl === 3);
    setSegment(cpu, S.SS, ss, ssd);
    cpu.reg[4] = sp;
    setSegment(cpu, S.CS, (target & 0xfffc) | newCpl, t);
  } else {
    const values = [flags, cpu.segSel[S.CS]!, ev.returnEip, ...err];
    const esp = cpu.esp;
    const bytes = 4 * values.length;
    // SDM INT n: "IF current stack does not have room for 16 bytes (error code pushed) or 12 bytes
    // (no error code) THEN #SS(EXT)".
    const low = (esp - bytes) >>> 0;
    if (!(cpu.segFlags[S.SS]! & SEG_USABLE) || low + bytes - 1 > cpu.segLimit[S.SS]!)
      throw fault(VEC.SS, ext);
    cpu.reg[4] = writeFrame(cpu, cpu.segBase[S.SS]!, esp, values, cpl === 3);
    setSegment(cpu, S.CS, (target & 0xfffc) | cpl, t);
  }
  cpu.eip = entry;
  cpu.eflags = (flags & ~(FL.TF | FL.NT | (type === TYPE.INT_GATE ? FL.IF : 0))) >>> 0;
  cpu.halted = false;
}
