/**
 * Random descriptors for the fuzzer's guests (descriptor layout: src/cpu/descriptor.ts), and what
 * the generator knows of each: its kind, DPL and presence, so that it can choose selectors whose use
 * does not meet a known difference of ring compression (see known.ts) unless it means to.
 */
import type { Rng } from './prng.js';

export type DescKind = 'data' | 'code' | 'callgate' | 'intgate' | 'ldt' | 'tss' | 'empty' | 'unknown';

export interface Desc {
  /** Dword 0 as an assembler expression (a base, or a gate's target label). */
  readonly lo: string;
  /** Dword 1. */
  readonly hi: number;
  readonly kind: DescKind;
  readonly dpl: number;
  readonly present: boolean;
  /** Code: conforming. */
  readonly conforming: boolean;
  /** Data: writable (and not expand-down); code: readable. */
  readonly rw: boolean;
  /** MOV DS may load it (data not expand-down, readable code), if the privilege checks pass. */
  readonly loadable: boolean;
  /** Code or data with base 0 and a 4 GiB limit. */
  readonly flat: boolean;
}

/** Linear address of the scratch area random loads and stores aim at. */
export const SCRATCH = 0x4_0000;
/** Small segment limits stay below the GDT or above the stacks (see `dataDesc`). */
export const LOW_LIMIT = 0xffc;
export const HIGH_LIMIT_MIN = 0xb000;

export const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

export function segHi(f: {
  limit: number;
  g: boolean;
  type: number;
  s: boolean;
  dpl: number;
  present: boolean;
}): number {
  return (
    ((f.limit & 0xfffff) |
      ((f.g ? 1 : 0) << 23) |
      ((f.type & 15) << 24) |
      ((f.s ? 1 : 0) << 28) |
      ((f.dpl & 3) << 29) |
      ((f.present ? 1 : 0) << 31)) >>>
    0
  );
}

export function gateHi(sel: number, params: number, type: number, dpl: number, present: boolean): number {
  return (
    ((sel & 0xffff) |
      ((params & 31) << 16) |
      ((type & 15) << 24) |
      ((dpl & 3) << 29) |
      ((present ? 1 : 0) << 31)) >>>
    0
  );
}

/** A flat code segment (base 0, 4 GiB) of ring `dpl`: the kind the generated code runs in. */
export function flatCode(dpl: number, conforming: boolean, readable = true): Desc {
  const type = 8 | (conforming ? 4 : 0) | (readable ? 2 : 0);
  return {
    lo: '0',
    hi: segHi({ limit: 0xfffff, g: true, type, s: true, dpl, present: true }),
    kind: 'code',
    dpl,
    present: true,
    conforming,
    rw: readable,
    loadable: readable,
    flat: true,
  };
}

/** A random data segment. Small limits only with a base in the scratch area. */
export function dataDesc(r: Rng, dpl = r.int(4), present = r.chance(0.9)): Desc {
  // type 0bEWA: expand-down (E) is invalid for every load on this machine; keep it rare.
  const type = (r.chance(0.08) ? 4 : 0) | (r.chance(0.8) ? 2 : 0) | r.int(2);
  const shape = r.int(4);
  let base = 0;
  let limit = 0xfffff;
  let g = true;
  if (shape >= 1) {
    base = r.chance(0.5) ? SCRATCH + 0x1000 * r.int(48) : SCRATCH + r.int(0x3_0000);
    g = false;
    limit = shape === 1 ? 0xfff : shape === 2 ? r.int(LOW_LIMIT + 1) : 0xffff;
  }
  return {
    lo: hex(base),
    hi: segHi({ limit, g, type, s: true, dpl, present }),
    kind: 'data',
    dpl,
    present,
    conforming: false,
    rw: (type & 2) !== 0 && (type & 4) === 0,
    loadable: (type & 4) === 0,
    flat: base === 0,
  };
}

/** A random code segment: flat mostly, sometimes with a limit that leaves the ROM outside. */
export function codeDesc(r: Rng, dpl = r.int(4), present = r.chance(0.9)): Desc {
  const conforming = r.chance(0.3);
  const readable = r.chance(0.8);
  const type = 8 | (conforming ? 4 : 0) | (readable ? 2 : 0) | r.int(2);
  const small = r.chance(0.15);
  return {
    lo: '0',
    hi: segHi({ limit: small ? 0xffff : 0xfffff, g: !small, type, s: true, dpl, present }),
    kind: 'code',
    dpl,
    present,
    conforming,
    rw: readable,
    loadable: readable,
    flat: !small,
  };
}

/** A call gate (type 0xC) to `sel:target`. */
export function callGate(target: string, sel: number, params: number, dpl: number, present = true): Desc {
  return {
    lo: target,
    hi: gateHi(sel, params, 0xc, dpl, present),
    kind: 'callgate',
    dpl,
    present,
    conforming: false,
    rw: false,
    loadable: false,
    flat: false,
  };
}

/** An interrupt (0xE) or trap (0xF) gate: valid in the IDT, a wrong type anywhere else. */
export function intGate(target: string, sel: number, trap: boolean, dpl: number, present = true): Desc {
  return {
    lo: target,
    hi: gateHi(sel, 0, trap ? 0xf : 0xe, dpl, present),
    kind: 'intgate',
    dpl,
    present,
    conforming: false,
    rw: false,
    loadable: false,
    flat: false,
  };
}

export function systemDesc(
  kind: 'ldt' | 'tss',
  base: number,
  limit: number,
  dpl: number,
  type: number,
): Desc {
  return {
    lo: hex(base),
    hi: segHi({ limit, g: false, type, s: false, dpl, present: true }),
    kind,
    dpl,
    present: true,
    conforming: false,
    rw: false,
    loadable: false,
    flat: false,
  };
}

export const EMPTY: Desc = {
  lo: '0',
  hi: 0,
  kind: 'empty',
  dpl: 0,
  present: false,
  conforming: false,
  rw: false,
  loadable: false,
  flat: false,
};

/** Code a gate may lead to: a label and the ring its code was generated for. */
export interface Target {
  readonly label: string;
  readonly ring: number;
}

/**
 * A gate's target selector for code of ring `ring`: the scaffold's flat code of that ring or an
 * outer one (code generated for ring k chooses RPLs safe at CPL >= k only), or not code at all.
 */
function targetSel(r: Rng, ring: number): number {
  return (r.chance(0.85) ? 0x08 + 0x10 * r.range(ring, 3) : r.pick([0x10, 0])) | r.int(4);
}

/** Any descriptor at all: what a volatile entry is rewritten with, or a decoy. */
export function randomDesc(r: Rng, targets: readonly Target[]): Desc {
  switch (r.int(8)) {
    case 0:
    case 1:
    case 2:
      return dataDesc(r);
    case 3:
    case 4:
      return codeDesc(r);
    case 5: {
      const t = r.pick(targets);
      return callGate(t.label, targetSel(r, t.ring), r.int(3), r.int(4), r.chance(0.9));
    }
    case 6: {
      const t = r.pick(targets);
      return r.chance(0.5) ? intGate(t.label, targetSel(r, t.ring), r.chance(0.5), r.int(4)) : EMPTY;
    }
    default:
      return { ...EMPTY, kind: 'unknown', lo: hex(r.next()), hi: r.next() };
  }
}
