/**
 * Descriptors: 8 bytes, our own simpler layout of the x86 fields (reference: x86 types and rules).
 *
 * | dword | bits  | segment (code/data, TSS, LDT)  | gate (call, interrupt, trap)      |
 * |-------|-------|--------------------------------|-----------------------------------|
 * | 0     | 0-31  | base                           | target offset                     |
 * | 1     | 0-19  | limit (bytes, or 4 KiB units)  | 0-15 target selector; 16-20 params|
 * | 1     | 22    | AVL (free for software)        | -                                 |
 * | 1     | 23    | G: limit in 4 KiB units        | -                                 |
 * | 1     | 24-27 | x86 type nibble                | x86 type nibble                   |
 * | 1     | 28    | S: 1 code/data, 0 system       | 0                                 |
 * | 1     | 29-30 | DPL                            | DPL                               |
 * | 1     | 31    | P: present                     | P                                 |
 *
 * Type nibble (as x86): data 0b0EWA (E expand-down is not supported: such a descriptor is invalid
 * for every load), code 0b1CRA (C conforming, R readable); system: 0x2 LDT, 0x9 available TSS,
 * 0xB busy TSS, 0xC call gate, 0xE interrupt gate, 0xF trap gate.
 */

export const TYPE = {
  LDT: 0x2,
  TSS: 0x9,
  TSS_BUSY: 0xb,
  CALL_GATE: 0xc,
  INT_GATE: 0xe,
  TRAP_GATE: 0xf,
} as const;

export interface Descriptor {
  readonly lo: number;
  readonly hi: number;
  /** 4-bit x86 type. */
  readonly type: number;
  /** S bit: code or data segment. */
  readonly s: boolean;
  readonly dpl: number;
  readonly present: boolean;
}

export const decodeDescriptor = (lo: number, hi: number): Descriptor => ({
  lo: lo >>> 0,
  hi: hi >>> 0,
  type: (hi >>> 24) & 0xf,
  s: ((hi >>> 28) & 1) === 1,
  dpl: (hi >>> 29) & 3,
  present: hi >>> 31 === 1,
});

export const isCode = (d: Descriptor): boolean => d.s && (d.type & 8) !== 0;
export const isData = (d: Descriptor): boolean => d.s && (d.type & 8) === 0;
export const isConforming = (d: Descriptor): boolean => isCode(d) && (d.type & 4) !== 0;
export const isReadableCode = (d: Descriptor): boolean => isCode(d) && (d.type & 2) !== 0;
export const isWritableData = (d: Descriptor): boolean => isData(d) && (d.type & 2) !== 0;
export const isExpandDown = (d: Descriptor): boolean => isData(d) && (d.type & 4) !== 0;

export const segBase = (d: Descriptor): number => d.lo;
/** Byte limit (inclusive). */
export const segLimit = (d: Descriptor): number => {
  const raw = d.hi & 0xfffff;
  return d.hi & 0x80_0000 ? ((raw << 12) | 0xfff) >>> 0 : raw;
};
export const gateSelector = (d: Descriptor): number => d.hi & 0xffff;
export const gateParams = (d: Descriptor): number => (d.hi >>> 16) & 0x1f;
export const gateOffset = (d: Descriptor): number => d.lo;

/** Builds descriptor dwords (for the ROM builder, the VMM and tests). */
export function segmentDescriptor(f: {
  base: number;
  limit: number;
  type: number;
  s?: boolean;
  dpl: number;
  present?: boolean;
  g?: boolean;
  avl?: boolean;
}): [number, number] {
  const g = f.g ?? f.limit > 0xfffff;
  const raw = g ? f.limit >>> 12 : f.limit;
  if (raw > 0xfffff) throw new RangeError(`limit ${f.limit} does not fit`);
  const hi =
    (raw & 0xfffff) |
    ((f.avl ? 1 : 0) << 22) |
    ((g ? 1 : 0) << 23) |
    ((f.type & 0xf) << 24) |
    (((f.s ?? true) ? 1 : 0) << 28) |
    ((f.dpl & 3) << 29) |
    (((f.present ?? true) ? 1 : 0) << 31);
  return [f.base >>> 0, hi >>> 0];
}

export function gateDescriptor(f: {
  type: number;
  selector: number;
  offset: number;
  dpl: number;
  params?: number;
  present?: boolean;
}): [number, number] {
  const hi =
    (f.selector & 0xffff) |
    (((f.params ?? 0) & 0x1f) << 16) |
    ((f.type & 0xf) << 24) |
    ((f.dpl & 3) << 29) |
    (((f.present ?? true) ? 1 : 0) << 31);
  return [f.offset >>> 0, hi >>> 0];
}

/** TSS layout (offsets as x86's 32-bit TSS): ESPn at 4 + 8n, SSn at 8 + 8n, I/O map base (16 bits) at 102. */
export const TSS = { ESP0: 4, SS0: 8, IOMAP: 102, MIN_LIMIT: 103 } as const;
