/**
 * Descriptor fetch and segment-register loads (reference §3.1; SDM §5.5-§5.7). Every check runs
 * before the register changes.
 *
 * The far-transfer paths (here and transfers.ts) run for every segment load, far call and
 * interrupt, so they work on the descriptor's two dwords as numbers and allocate nothing:
 * `readDescriptor` returns dword 1 (`hi`: type, S, DPL, P, limit or gate selector) and leaves
 * dword 0 (`lo`: base or gate offset) in `cpu.descLo`, which the caller copies before it reads
 * another descriptor. The bit tests below are the `Descriptor` predicates of descriptor.ts on `hi`.
 * Dwords are signed 32-bit values here (`| 0`; P makes `hi` negative): an unsigned one of 2^31 or
 * more would be boxed by V8 at every call and return.
 */
import type { Cpu } from './cpu.js';
import { type Descriptor, decodeDescriptor } from './descriptor.js';
import { loadDataSegmentFast } from './fast-transfers.js';
import { fault, selErr, VEC } from './faults.js';

// ---- descriptor dword 1 (see the layout table in descriptor.ts) ----

// hi >>> 25, low 4 bits: 8 = S (code or data), 4 = type bit 3 (code), 2 = type bit 2 (conforming
// code, expand-down data), 1 = type bit 1 (readable code, writable data). Literals, not named
// constants: these run in every far transfer, and V8 loads a module-level constant at each use.

/** Code segment: S = 1, type bit 3 = 1. */
export const hiCode = (hi: number): boolean => ((hi >>> 25) & 0xc) === 0xc;
/** Data segment: S = 1, type bit 3 = 0. */
export const hiData = (hi: number): boolean => ((hi >>> 25) & 0xc) === 0x8;
export const hiConforming = (hi: number): boolean => ((hi >>> 25) & 0xe) === 0xe;
export const hiReadableCode = (hi: number): boolean => ((hi >>> 25) & 0xd) === 0xd;
export const hiWritableData = (hi: number): boolean => ((hi >>> 25) & 0xd) === 0x9;
export const hiExpandDown = (hi: number): boolean => ((hi >>> 25) & 0xe) === 0xa;
export const hiDpl = (hi: number): number => (hi >>> 29) & 3;
export const hiPresent = (hi: number): boolean => hi >>> 31 === 1;
/** x86 type nibble of a system descriptor (check S first). */
export const hiType = (hi: number): number => (hi >>> 24) & 0xf;
export const hiSystem = (hi: number): boolean => ((hi >>> 25) & 0x8) === 0;
/**
 * Byte limit (inclusive), as `segLimit` in descriptor.ts but as a signed 32-bit value (0xFFFFFFFF
 * is -1): compare it as `hiLimit(hi) >>> 0`.
 */
export const hiLimit = (hi: number): number => {
  const raw = hi & 0xfffff;
  return hi & 0x80_0000 ? (raw << 12) | 0xfff : raw;
};

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

/**
 * Reads the descriptor `selector` names (dword 0, then dword 1, as supervisor reads): returns dword
 * 1 and leaves dword 0 in `cpu.descLo`, both signed.
 */
export function readDescriptor(cpu: Cpu, selector: number, ext: number, vec: number): number {
  const at = descriptorAddress(cpu, selector, ext, vec);
  const i = cpu.frameIndex(at, 8, false, false); // both dwords at once when neither read can fault
  if (i >= 0) {
    cpu.descLo = cpu.ram32[i]!;
    return cpu.ram32[i + 1]!;
  }
  const lo = cpu.readSystemI32(at);
  const hi = cpu.readSystemI32((at + 4) >>> 0);
  cpu.descLo = lo;
  return hi;
}

export function fetchDescriptor(cpu: Cpu, selector: number, ext = 0, vec: number = VEC.GP): Descriptor {
  const hi = readDescriptor(cpu, selector, ext, vec);
  return decodeDescriptor(cpu.descLo, hi);
}

/** Reads a descriptor for LAR/LSL/VERR/VERW: undefined where the instruction just clears ZF. */
export function peekDescriptor(cpu: Cpu, selector: number): Descriptor | undefined {
  if ((selector & 0xfffc) === 0) return undefined;
  const index = selector & 0xfff8;
  if (selector & 4 ? !cpu.ldtUsable || index + 7 > cpu.ldtLimit : index + 7 > cpu.gdtLimit) return undefined;
  return fetchDescriptor(cpu, selector);
}

/** Writes a segment register's visible selector and hidden cache from descriptor dwords `lo`, `hi`. */
export function setSegment(cpu: Cpu, seg: number, selector: number, lo: number, hi: number): void {
  cpu.segSel[seg] = selector;
  cpu.segBase[seg] = lo;
  cpu.segLimit[seg] = hiLimit(hi);
  cpu.segHi[seg] = hi;
  // SEG_USABLE 1, SEG_READ 2, SEG_WRITE 4, SEG_EXEC 8
  cpu.segFlags[seg] = hiCode(hi) ? 9 | ((hi >>> 24) & 2) : 3 | (hiWritableData(hi) ? 4 : 0); // R: bit 25
}

/** A null selector in DS/ES/FS/GS: loadable, faults on use. */
export function setNull(cpu: Cpu, seg: number, selector: number): void {
  cpu.segSel[seg] = selector;
  cpu.segBase[seg] = 0;
  cpu.segLimit[seg] = 0;
  cpu.segHi[seg] = 0;
  cpu.segFlags[seg] = 0;
}

/**
 * MOV sreg / POP sreg for DS, ES, FS, GS with a non-null selector: DPL >= max(CPL, RPL) for data
 * and non-conforming code. Returns dword 1; dword 0 is in `cpu.descLo`.
 */
function checkDataSegment(cpu: Cpu, selector: number): number {
  const hi = readDescriptor(cpu, selector, 0, VEC.GP);
  if (!(hiData(hi) || hiReadableCode(hi)) || hiExpandDown(hi)) throw fault(VEC.GP, selErr(selector));
  if (!hiConforming(hi) && hiDpl(hi) < Math.max(cpu.cpl, selector & 3)) throw fault(VEC.GP, selErr(selector));
  if (!hiPresent(hi)) throw fault(VEC.NP, selErr(selector));
  return hi;
}

/**
 * SS: RPL = CPL, DPL = CPL, writable data; null is #GP(0); not present is #SS(sel). The stack of an
 * inward transfer reports the same failures as #TS (`faultVec`), with the EXT bit of the event
 * being delivered (SDM INT n pseudocode: #TS(EXT), #TS(error_code(NewSS,0,EXT)),
 * #SS(error_code(NewSS,0,EXT))). Returns dword 1; dword 0 is in `cpu.descLo`.
 */
export function checkStackSegment(
  cpu: Cpu,
  selector: number,
  cpl: number,
  faultVec: number = VEC.GP,
  ext = 0,
): number {
  if ((selector & 0xfffc) === 0) throw fault(faultVec, ext);
  const hi = readDescriptor(cpu, selector, ext, faultVec);
  if ((selector & 3) !== cpl || !hiWritableData(hi) || hiExpandDown(hi) || hiDpl(hi) !== cpl) {
    throw fault(faultVec, selErr(selector, ext));
  }
  if (!hiPresent(hi)) throw fault(VEC.SS, selErr(selector, ext));
  return hi;
}

/** MOV sreg, r and POP sreg. */
export function loadSegment(cpu: Cpu, seg: number, selector: number): void {
  selector &= 0xffff;
  if (seg === 1 /* CS */) throw fault(VEC.UD);
  if (seg === 2 /* SS */) {
    const hi = checkStackSegment(cpu, selector, cpu.cpl);
    setSegment(cpu, seg, selector, cpu.descLo, hi);
    cpu.interruptShadow = true; // SDM: MOV SS inhibits interrupts until after the next instruction
    return;
  }
  if ((selector & 0xfffc) === 0) {
    setNull(cpu, seg, selector);
    return;
  }
  if (loadDataSegmentFast(cpu, seg, selector)) return; // the common case (fast-transfers.ts)
  const hi = checkDataSegment(cpu, selector);
  setSegment(cpu, seg, selector, cpu.descLo, hi);
}

/** One data segment register after a return to an outer ring (see clearOuterSegments). */
function clearOuter(cpu: Cpu, seg: number, cpl: number): void {
  if (!(cpu.segFlags[seg]! & 1)) return; // not SEG_USABLE
  const hi = cpu.segHi[seg]! | 0;
  if ((hiData(hi) || !hiConforming(hi)) && cpl > hiDpl(hi)) setNull(cpu, seg, 0);
}

/**
 * After a return to an outer ring (reference §3.4): DS, ES, FS, GS that point to data or
 * non-conforming code the new CPL may not use are loaded with the null selector.
 */
export function clearOuterSegments(cpu: Cpu): void {
  const cpl = cpu.cpl;
  clearOuter(cpu, 0, cpl); // ES
  clearOuter(cpu, 3, cpl); // DS
  clearOuter(cpu, 4, cpl); // FS
  clearOuter(cpu, 5, cpl); // GS
}
