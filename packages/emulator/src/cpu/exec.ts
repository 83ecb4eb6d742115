/**
 * The run loop and the instruction switch. One instruction: check for a host breakpoint, take a
 * pending external interrupt if IF allows, fetch 8 bytes at CS:EIP (limit-checked, through the
 * MMU), execute. Faults thrown by an instruction leave EIP at that instruction (restartable) and
 * are delivered through the IDT, or stop the run when the vector is in `exitVectors`.
 */
import type { Cpu, RunResult } from './cpu.js';
import { CpuFault, fault, isContributory, VEC } from './faults.js';
import { FL } from './flags.js';
import { S } from './isa.js';
import { memEa, memSeg } from './operands.js';
import { loadSegment } from './segments.js';
import { systemOp } from './system.js';
import { deliver, farReturn, farTransfer, interruptReturn, mergeFlags } from './transfers.js';

const SIGN = 0x8000_0000;

export function run(cpu: Cpu, budget: number): RunResult {
  let executed = 0;
  while (executed < budget) {
    if (cpu.shutdown) return { reason: 'shutdown', executed };
    if (!cpu.interruptShadow && cpu.eflags & FL.IF && cpu.irq !== undefined) {
      const vector = cpu.irq.pending();
      if (vector >= 0) {
        cpu.irq.acknowledge(vector);
        const r = raise(cpu, vector, undefined, { software: false, ext: 1, returnEip: cpu.eip });
        if (r !== undefined) return { ...r, executed };
      }
    }
    if (cpu.halted) return { reason: 'halt', executed };
    if (cpu.breakpoints.size > 0 && cpu.breakpoints.has((cpu.segBase[S.CS]! + cpu.eip) >>> 0)) {
      return { reason: 'breakpoint', executed };
    }
    cpu.interruptShadow = false;
    const eip = cpu.eip;
    if (cpu.beforeStep !== undefined) cpu.beforeStep(cpu);
    try {
      step(cpu);
    } catch (e) {
      if (!(e instanceof CpuFault)) throw e;
      cpu.eip = eip;
      // An exception is an event external to the program: a fault while delivering it sets EXT in
      // its error code (SDM §6.13; only INT n, INT3 and INTO deliver with EXT = 0).
      const r = raise(cpu, e.vector, e.errorCode, { software: false, ext: 1, returnEip: eip });
      if (r !== undefined) return { ...r, executed };
    }
    executed++;
    cpu.instructions++;
    if (cpu.trace !== undefined) cpu.trace(cpu, eip);
  }
  return { reason: 'budget', executed };
}

interface RaiseOpts {
  readonly software: boolean;
  readonly ext: number;
  readonly returnEip: number;
}

/** Delivers an event, with the double- and triple-fault rules (SDM Table 6-5). */
export function raise(
  cpu: Cpu,
  vector: number,
  errorCode: number | undefined,
  o: RaiseOpts,
): Omit<RunResult, 'executed'> | undefined {
  if (vector < 32 && (cpu.exitVectors >>> vector) & 1) {
    return { reason: 'exit', vector, ...(errorCode === undefined ? {} : { errorCode }) };
  }
  try {
    deliver(cpu, { vector, errorCode, software: o.software, ext: o.ext, returnEip: o.returnEip });
    return undefined;
  } catch (e) {
    if (!(e instanceof CpuFault)) throw e;
    if (vector === VEC.DF) {
      cpu.shutdown = true;
      return {
        reason: 'shutdown',
        vector: e.vector,
        ...(e.errorCode === undefined ? {} : { errorCode: e.errorCode }),
      };
    }
    const second = e.vector;
    const double =
      (isContributory(vector) && isContributory(second)) ||
      (vector === VEC.PF && (isContributory(second) || second === VEC.PF));
    if (double) return raise(cpu, VEC.DF, 0, { software: false, ext: 1, returnEip: o.returnEip });
    return raise(cpu, second, e.errorCode, { software: false, ext: 1, returnEip: o.returnEip });
  }
}

function setLogicFlags(cpu: Cpu, r: number): void {
  let f = cpu.eflags & ~(FL.CF | FL.ZF | FL.SF | FL.OF);
  if ((r | 0) === 0) f |= FL.ZF;
  if (r & SIGN) f |= FL.SF;
  cpu.eflags = f >>> 0;
}

function addFlags(cpu: Cpu, a: number, b: number, r: number, sub: boolean, keepCf = false): void {
  let f = cpu.eflags & ~(FL.ZF | FL.SF | FL.OF | (keepCf ? 0 : FL.CF));
  if ((r | 0) === 0) f |= FL.ZF;
  if (r & SIGN) f |= FL.SF;
  if (!keepCf && (sub ? a >>> 0 < b >>> 0 : r >>> 0 < a >>> 0)) f |= FL.CF;
  const overflow = sub ? (a ^ b) & (a ^ r) & SIGN : ~(a ^ b) & (a ^ r) & SIGN;
  if (overflow) f |= FL.OF;
  cpu.eflags = f >>> 0;
}

function condition(cpu: Cpu, n: number): boolean {
  const f = cpu.eflags;
  const zf = (f & FL.ZF) !== 0;
  const cf = (f & FL.CF) !== 0;
  const sf = (f & FL.SF) !== 0;
  const of = (f & FL.OF) !== 0;
  switch (n) {
    case 0:
      return zf;
    case 1:
      return !zf;
    case 2:
      return cf;
    case 3:
      return !cf;
    case 4:
      return sf;
    case 5:
      return !sf;
    case 6:
      return of;
    case 7:
      return !of;
    case 8:
      return sf !== of;
    case 9:
      return sf === of;
    case 10:
      return zf || sf !== of;
    case 11:
      return !zf && sf === of;
    case 12:
      return cf || zf;
    default:
      return !cf && !zf;
  }
}

/** ALU result for opcode group index 0..12 (table order in isa.ts). Returns undefined for cmp/test. */
function alu(cpu: Cpu, k: number, a: number, b: number): number | undefined {
  switch (k) {
    case 0: {
      const r = (a + b) | 0;
      addFlags(cpu, a, b, r, false);
      return r;
    }
    case 1: {
      const r = (a - b) | 0;
      addFlags(cpu, a, b, r, true);
      return r;
    }
    case 2:
      setLogicFlags(cpu, a & b);
      return a & b;
    case 3:
      setLogicFlags(cpu, a | b);
      return a | b;
    case 4:
      setLogicFlags(cpu, a ^ b);
      return a ^ b;
    case 5:
      addFlags(cpu, a, b, (a - b) | 0, true);
      return undefined;
    case 6:
      setLogicFlags(cpu, a & b);
      return undefined;
    case 7:
    case 8:
    case 9: {
      const n = b & 31;
      if (n === 0) return a;
      const r = k === 7 ? a << n : k === 8 ? a >>> n : a >> n;
      const out = k === 7 ? (a >>> (32 - n)) & 1 : (a >>> (n - 1)) & 1;
      setLogicFlags(cpu, r);
      if (out) cpu.eflags |= FL.CF;
      return r | 0;
    }
    case 10: {
      const hi = Number((BigInt(a >>> 0) * BigInt(b >>> 0)) >> 32n);
      const r = Math.imul(a, b);
      setLogicFlags(cpu, r);
      if (hi !== 0) cpu.eflags |= FL.CF | FL.OF;
      return r;
    }
    default: {
      if (b === 0) throw fault(VEC.DE);
      return k === 11 ? ((a >>> 0) / (b >>> 0)) | 0 : ((a >>> 0) % (b >>> 0)) | 0;
    }
  }
}

/**
 * A near JMP, CALL or taken Jcc target: beyond the CS limit the branch itself faults #GP(0), with
 * EIP still at the branch and, for CALL, before the push (SDM JMP/CALL/Jcc: "IF tempEIP is not
 * within code segment limit THEN #GP(0)").
 */
function nearTarget(cpu: Cpu, target: number): number {
  const t = target >>> 0;
  if (t > cpu.segLimit[S.CS]!) throw fault(VEC.GP, 0);
  return t;
}

/** Executes one instruction at CS:EIP. No closures here: this runs for every instruction. */
function step(cpu: Cpu): void {
  const eip = cpu.eip;
  const cs = S.CS;
  if (eip + 7 > cpu.segLimit[cs]!) throw fault(VEC.GP, 0);
  const lin = (cpu.segBase[cs]! + eip) >>> 0;
  const user = (cpu.segSel[cs]! & 3) === 3;
  const off = lin & 0xfff;
  const mmu = cpu.mmu;
  let w0: number;
  let imm: number;
  if (
    off <= 0xff8 &&
    lin >>> 12 === cpu.fetchPage &&
    cpu.fetchGen === mmu.generation &&
    cpu.fetchUser === user
  ) {
    const view = mmu.phys.ramView;
    w0 = view.getUint32(cpu.fetchPhys + off, true);
    imm = view.getUint32(cpu.fetchPhys + off + 4, true);
  } else {
    w0 = cpu.readLinear32(lin, user);
    imm = cpu.readLinear32((lin + 4) >>> 0, user);
    const page = (mmu.translate(lin, false, user) - off) >>> 0;
    if (page + 0x1000 <= mmu.phys.ram.length) {
      cpu.fetchPage = lin >>> 12;
      cpu.fetchGen = mmu.generation;
      cpu.fetchUser = user;
      cpu.fetchPhys = page;
    } else cpu.fetchPage = -1; // ROM or the empty bus: no cache
  }
  const op = w0 & 0xff;
  const a = (w0 >>> 8) & 0xf;
  const b = (w0 >>> 12) & 0xf;
  const c = (w0 >>> 16) & 0xff;
  const next = (eip + 8) >>> 0;
  const reg = cpu.reg;
  switch (op) {
    case 0x01:
      break;
    case 0x02:
      cpu.requireCpl0();
      cpu.halted = true;
      break;
    case 0x10:
      reg[a & 7] = reg[b & 7]!;
      break;
    case 0x11:
      reg[a & 7] = imm;
      break;
    case 0x12:
      reg[a & 7] = cpu.read32(memSeg(c, b), memEa(reg, b, imm));
      break;
    case 0x13:
      cpu.write32(memSeg(c, b), memEa(reg, b, imm), reg[a & 7]!);
      break;
    case 0x14:
      reg[a & 7] = cpu.read8(memSeg(c, b), memEa(reg, b, imm));
      break;
    case 0x15:
      cpu.write8(memSeg(c, b), memEa(reg, b, imm), reg[a & 7]!);
      break;
    case 0x16:
      reg[a & 7] = memEa(reg, b, imm);
      break;
    case 0x17:
      cpu.push32(reg[a & 7]!);
      break;
    case 0x18:
      cpu.push32(imm);
      break;
    case 0x19: {
      const v = cpu.pop32();
      reg[a & 7] = v; // POP ESP: the popped value wins, as on x86
      break;
    }
    case 0x40: {
      const v = reg[a & 7]!;
      const r = -v | 0;
      addFlags(cpu, 0, v, r, true);
      reg[a & 7] = r;
      break;
    }
    case 0x41:
      reg[a & 7] = ~reg[a & 7]!;
      break;
    case 0x42:
    case 0x43: {
      const v = reg[a & 7]!;
      const r = (op === 0x42 ? v + 1 : v - 1) | 0;
      addFlags(cpu, v, 1, r, op === 0x43, true);
      reg[a & 7] = r;
      break;
    }
    case 0x50:
    case 0x51:
      cpu.eip = nearTarget(cpu, op === 0x50 ? imm : reg[a & 7]!);
      return;
    case 0x52:
    case 0x53: {
      const target = nearTarget(cpu, op === 0x52 ? imm : reg[a & 7]!);
      cpu.push32(next);
      cpu.eip = target;
      return;
    }
    case 0x54:
    case 0x55: {
      const target = cpu.read32(S.SS, cpu.esp);
      if (target > cpu.segLimit[S.CS]!) throw fault(VEC.GP, 0);
      cpu.reg[4] = (cpu.esp + 4 + (op === 0x55 ? imm & 0xffff : 0)) | 0;
      cpu.eip = target;
      return;
    }
    case 0x70:
    case 0x71:
      farTransfer(cpu, op === 0x71, (w0 >>> 16) & 0xffff, imm, next);
      return;
    case 0x72:
    case 0x73:
      farReturn(cpu, op === 0x73 ? imm & 0xffff : 0);
      return;
    case 0x74:
      interruptReturn(cpu);
      return;
    case 0x75:
    case 0x76: {
      const vector = op === 0x76 ? VEC.BP : imm & 0xff;
      cpu.eip = next;
      // A software interrupt is a trap: it returns after the INT (reference §3.5 for the DPL check).
      try {
        deliver(cpu, { vector, errorCode: undefined, software: true, ext: 0, returnEip: next });
      } catch (e) {
        cpu.eip = eip;
        throw e;
      }
      return;
    }
    case 0x80:
      if (a > 5) throw fault(VEC.UD);
      loadSegment(cpu, a, reg[b & 7]! & 0xffff);
      break;
    case 0x81:
      if (b > 5) throw fault(VEC.UD);
      reg[a & 7] = cpu.segSel[b]!;
      break;
    case 0x82:
      if (a > 5) throw fault(VEC.UD);
      cpu.push32(cpu.segSel[a]!);
      break;
    case 0x83: {
      if (a > 5) throw fault(VEC.UD);
      const v = cpu.read32(S.SS, cpu.esp);
      loadSegment(cpu, a, v & 0xffff);
      cpu.reg[4] = (cpu.esp + 4) | 0;
      break;
    }
    case 0xa0:
    case 0xa1:
      if (cpu.cpl > cpu.iopl) throw fault(VEC.GP, 0);
      if (op === 0xa0) cpu.eflags &= ~FL.IF;
      else {
        if (!(cpu.eflags & FL.IF)) cpu.interruptShadow = true;
        cpu.eflags |= FL.IF;
      }
      break;
    case 0xa2:
      cpu.push32(cpu.eflags);
      break;
    case 0xa3: {
      const v = cpu.read32(S.SS, cpu.esp);
      cpu.eflags = mergeFlags(cpu, v, cpu.cpl);
      cpu.reg[4] = (cpu.esp + 4) | 0;
      break;
    }
    default:
      if (op >= 0x20 && op <= 0x2c) {
        const r = alu(cpu, op - 0x20, reg[a & 7]!, reg[b & 7]!);
        if (r !== undefined) reg[a & 7] = r;
      } else if (op >= 0x30 && op <= 0x3c) {
        const r = alu(cpu, op - 0x30, reg[a & 7]!, imm | 0);
        if (r !== undefined) reg[a & 7] = r;
      } else if (op >= 0x58 && op <= 0x65) {
        cpu.eip = condition(cpu, op - 0x58) ? nearTarget(cpu, imm) : next;
        return;
      } else if ((op >= 0x84 && op <= 0x87) || (op >= 0x90 && op <= 0x9c) || (op >= 0xa4 && op <= 0xa7)) {
        systemOp(cpu, op, a, b, c, imm);
      } else {
        throw fault(VEC.UD);
      }
  }
  cpu.eip = next;
}
