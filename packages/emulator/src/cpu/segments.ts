/**
 * Descriptor fetch and segment-register loads (reference §3.1; SDM §5.5-§5.7). Every check runs
 * before the register changes.
 */
import { type Cpu, SEG_EXEC, SEG_READ, SEG_USABLE, SEG_WRITE } from './cpu.js';
import {
  type Descriptor,
  decodeDescriptor,
  isCode,
  isConforming,
  isData,
  isExpandDown,
  isReadableCode,
  isWritableData,
  segBase,
  segLimit,
} from './descriptor.js';
import { fault, selErr, VEC } from './faults.js';
import { S } from './isa.js';

/**
 * Linear address of the descriptor `selector` names, or a fault naming the selector if it lies
 * outside its table: #GP(selector) for most loads, #TS(selector) for the stack of an inward
 * transfer (`vec`, SDM CALL and INT n pseudocode: "NewSS index is not within its descriptor-table
 * limits").
 */
export function descriptorAddress(cpu: Cpu, selector: number, ext = 0, vec: number = VEC.GP): number {
  const index = selector & 0xfff8;
  if (selector & 4) {
    if (!cpu.ldtUsable || index + 7 > cpu.ldtLimit) throw fault(vec, selErr(selector, ext));
    return (cpu.ldtBase + index) >>> 0;
  }
  if (index + 7 > cpu.gdtLimit) throw fault(vec, selErr(selector, ext));
  return (cpu.gdtBase + index) >>> 0;
}

export function fetchDescriptor(cpu: Cpu, selector: number, ext = 0, vec: number = VEC.GP): Descriptor {
  const at = descriptorAddress(cpu, selector, ext, vec);
  return decodeDescriptor(cpu.readSystem32(at), cpu.readSystem32((at + 4) >>> 0));
}

/** Reads a descriptor for LAR/LSL/VERR/VERW: undefined where the instruction just clears ZF. */
export function peekDescriptor(cpu: Cpu, selector: number): Descriptor | undefined {
  if ((selector & 0xfffc) === 0) return undefined;
  const index = selector & 0xfff8;
  if (selector & 4 ? !cpu.ldtUsable || index + 7 > cpu.ldtLimit : index + 7 > cpu.gdtLimit) return undefined;
  return fetchDescriptor(cpu, selector);
}

/** Writes a segment register's visible selector and hidden cache. */
export function setSegment(cpu: Cpu, seg: number, selector: number, d: Descriptor): void {
  cpu.segSel[seg] = selector;
  cpu.segBase[seg] = segBase(d);
  cpu.segLimit[seg] = segLimit(d);
  cpu.segHi[seg] = d.hi;
  let f = SEG_USABLE;
  if (isCode(d)) f |= SEG_EXEC | (isReadableCode(d) ? SEG_READ : 0);
  else f |= SEG_READ | (isWritableData(d) ? SEG_WRITE : 0);
  cpu.segFlags[seg] = f;
}

/** A null selector in DS/ES/FS/GS: loadable, faults on use. */
export function setNull(cpu: Cpu, seg: number, selector: number): void {
  cpu.segSel[seg] = selector;
  cpu.segBase[seg] = 0;
  cpu.segLimit[seg] = 0;
  cpu.segHi[seg] = 0;
  cpu.segFlags[seg] = 0;
}

/** MOV sreg / POP sreg for DS, ES, FS, GS: DPL >= max(CPL, RPL) for data and non-conforming code. */
export function checkDataSegment(cpu: Cpu, selector: number): Descriptor | undefined {
  if ((selector & 0xfffc) === 0) return undefined;
  const d = fetchDescriptor(cpu, selector);
  if (!(isData(d) || isReadableCode(d)) || isExpandDown(d)) throw fault(VEC.GP, selErr(selector));
  if (!isConforming(d) && d.dpl < Math.max(cpu.cpl, selector & 3)) throw fault(VEC.GP, selErr(selector));
  if (!d.present) throw fault(VEC.NP, selErr(selector));
  return d;
}

/**
 * SS: RPL = CPL, DPL = CPL, writable data; null is #GP(0); not present is #SS(sel). The stack of an
 * inward transfer reports the same failures as #TS (`faultVec`), with the EXT bit of the event
 * being delivered (SDM INT n pseudocode: #TS(EXT), #TS(error_code(NewSS,0,EXT)),
 * #SS(error_code(NewSS,0,EXT))).
 */
export function checkStackSegment(
  cpu: Cpu,
  selector: number,
  cpl: number,
  faultVec: number = VEC.GP,
  ext = 0,
): Descriptor {
  if ((selector & 0xfffc) === 0) throw fault(faultVec, ext);
  const d = fetchDescriptor(cpu, selector, ext, faultVec);
  if ((selector & 3) !== cpl || !isWritableData(d) || isExpandDown(d) || d.dpl !== cpl) {
    throw fault(faultVec, selErr(selector, ext));
  }
  if (!d.present) throw fault(VEC.SS, selErr(selector, ext));
  return d;
}

/** MOV sreg, r and POP sreg. */
export function loadSegment(cpu: Cpu, seg: number, selector: number): void {
  selector &= 0xffff;
  if (seg === S.CS) throw fault(VEC.UD);
  if (seg === S.SS) {
    const d = checkStackSegment(cpu, selector, cpu.cpl);
    setSegment(cpu, seg, selector, d);
    cpu.interruptShadow = true; // SDM: MOV SS inhibits interrupts until after the next instruction
    return;
  }
  const d = checkDataSegment(cpu, selector);
  if (d === undefined) setNull(cpu, seg, selector);
  else setSegment(cpu, seg, selector, d);
}

/**
 * After a return to an outer ring (reference §3.4): DS, ES, FS, GS that point to data or
 * non-conforming code the new CPL may not use are loaded with the null selector.
 */
export function clearOuterSegments(cpu: Cpu): void {
  const cpl = cpu.cpl;
  for (const seg of [S.ES, S.DS, S.FS, S.GS]) {
    if (!(cpu.segFlags[seg]! & SEG_USABLE)) continue;
    const d = decodeDescriptor(cpu.segBase[seg]!, cpu.segHi[seg]!);
    if ((isData(d) || !isConforming(d)) && cpl > d.dpl) setNull(cpu, seg, 0);
  }
}
