/**
 * The known differences of ring compression (ve.ts's header; issue 4 asks to list what remains
 * observable), each as an exact predicate: what the VE's outcome must be, given the bare one, where
 * the difference shows. The table with a reason per entry is in fuzz.test.ts.
 *
 * Two shapes:
 * - `stack-selector-rpl` cannot be avoided (every native far call pushes CS) and does not spread:
 *   the guest never reads those slots but through RETF/IRET, which the real CPU executes with the
 *   real RPL (when such a RETF traps, the virtual CPU reads it too: bugs.ts, `native-frame-rpl`).
 *   It is a predicate on a RAM dword, applied to every comparison;
 * - the others would spread, so the generator avoids them, and a witness program carries one at
 *   `fz_witness`: the harness runs both machines to it, compares, executes that one instruction on
 *   each, and checks the VE's state against the bare one with exactly that instruction's
 *   difference applied (`expectVe`), computed from the shadow descriptor the real CPU reads
 *   (`shadowHi`), the real CPL (`realCpl`) and the real IOPL.
 */
import type { Cpu } from '../../../src/cpu/cpu.js';
import { segLimit as descLimit } from '../../../src/cpu/descriptor.js';
import { setSegment } from '../../../src/cpu/segments.js';
import { realCpl } from '../../../src/vmm/rings.js';
import { shadowHi } from '../../../src/vmm/sdt.js';
import { type CpuState, dword, type Outcome } from './harness.js';
import { LAYOUT } from './runtime.js';
import type { WitnessKind } from './witness.js';

export type KnownId =
  | 'stack-selector-rpl'
  | 'cs-ss-rpl'
  | 'inspect-shadow'
  | 'pushf-iopl'
  | 'rpl-compressed'
  | 'reserved-range';

/** The known difference a witness kind exhibits. */
export const WITNESS_OF: Readonly<Record<WitnessKind, KnownId>> = {
  lar: 'inspect-shadow',
  lsl: 'inspect-shadow',
  verr: 'inspect-shadow',
  verw: 'inspect-shadow',
  'mov-cs': 'cs-ss-rpl',
  'mov-ss': 'cs-ss-rpl',
  'push-cs': 'stack-selector-rpl',
  'push-ss': 'stack-selector-rpl',
  pushf: 'pushf-iopl',
  rpl: 'rpl-compressed',
  hole: 'reserved-range',
};

/**
 * `stack-selector-rpl`: a dword of a stack page where the bare machine holds a selector and the VE
 * the same selector with the real RPL of its ring (2 for virtual ring 0, 3 for rings 1-3).
 */
export function stackSelector(at: number, bare: number, ve: number): boolean {
  return (
    at >= LAYOUT.stackLow &&
    at < LAYOUT.stackHigh &&
    bare <= 0xffff &&
    (bare & ~3) === (ve & ~3) &&
    (ve & 3) === realCpl(bare & 3) &&
    bare !== ve
  );
}

/** What the witness step needs to know besides the two outcomes. */
export interface WitnessContext {
  readonly kind: WitnessKind;
  /** The witness instruction's 8 bytes. */
  readonly code: Uint8Array;
  /** The VE's state just before it (equal to the bare one, but for known differences). */
  readonly preVe: Outcome;
  readonly postBare: Outcome;
  /** The SDT in force when the VE executed it (k of SDT_k, `VirtualEnvironment.stats().currentSdt`). */
  readonly sdt: number;
  readonly outwardGuard: boolean;
  /**
   * Reads a dword (size 4) or byte (size 1) at a linear address as the real CPU does, at real ring
   * 0; undefined where the real CPU would fault (then the VM manager emulates the access).
   */
  readonly realRead: (linear: number, size: 1 | 4, user: boolean) => number | undefined;
  /** Linear address of the runtime's fault stub for a vector (fz_fs_N). */
  readonly stub: (vector: number) => number;
}

/**
 * What the VE must show after the witness instruction if the real CPU executed it (the VE may also
 * show exactly the bare outcome: when the instruction trapped, for a page the shadow tables did
 * not map yet, say, the virtual CPU executed it), or why the bare outcome is not the expected one.
 */
export type Expectation =
  | { readonly ok: true; readonly ve: Outcome }
  | { readonly ok: false; readonly why: string };

const cloneCpu = (c: CpuState): CpuState => structuredClone(c);
const ZF = 0x40;

function withCpu(o: Outcome, cpu: CpuState, ram = o.ram): Outcome {
  return { ...o, cpu, ram };
}

function patchDword(ram: Uint8Array, at: number, v: number): Uint8Array {
  const out = ram.slice();
  for (let i = 0; i < 4; i++) out[at + i] = (v >>> (8 * i)) & 0xff;
  return out;
}

/** The VE's outcome after the witness instruction, from the bare one and the rule of its known difference. */
export function expectVe(c: WitnessContext): Expectation {
  const bare = c.postBare;
  const pre = c.preVe.cpu;
  const ring = pre.segSel[1]! & 3;
  const op = c.code[0]!;
  const a = c.code[1]! & 0xf;
  const b = c.code[1]! >>> 4;
  switch (c.kind) {
    case 'lar':
    case 'lsl':
    case 'verr':
    case 'verw': {
      const sel = (op === 0x84 || op === 0x85 ? pre.reg[b]! : pre.reg[a]!) & 0xffff;
      const m = inspect(op, sel, pre, c.preVe.ram, c.sdt, c.outwardGuard);
      const cpu = cloneCpu(bare.cpu);
      // LAR/LSL write their register only when the descriptor is visible.
      if (op === 0x84 || op === 0x85) cpu.reg[a] = m.ok ? m.value >>> 0 : pre.reg[a]!;
      cpu.eflags = m.ok ? (cpu.eflags | ZF) >>> 0 : (cpu.eflags & ~ZF) >>> 0;
      return { ok: true, ve: withCpu(bare, cpu) };
    }
    case 'mov-cs':
    case 'mov-ss': {
      const cpu = cloneCpu(bare.cpu);
      cpu.reg[a] = ((cpu.reg[a]! & ~3) | realCpl(ring)) >>> 0;
      return { ok: true, ve: withCpu(bare, cpu) };
    }
    case 'push-cs':
    case 'push-ss':
    case 'pushf': {
      const at = (bare.cpu.segBase[2]! + bare.cpu.reg[4]!) >>> 0;
      if (at + 4 > bare.ram.length) return { ok: false, why: `the push went to 0x${at.toString(16)}` };
      const v = dword(bare.ram, at);
      const want =
        c.kind === 'pushf'
          ? ((v & ~0x3000) | (Math.min((v >>> 12) & 3, 1) << 12)) >>> 0
          : ((v & ~3) | realCpl(ring)) >>> 0;
      return { ok: true, ve: withCpu(bare, bare.cpu, patchDword(bare.ram, at, want)) };
    }
    case 'rpl': {
      // The bare machine refuses the selector (#GP(selector), delivered); the VE either refuses it
      // alike (the real rings happen to refuse it too: then no difference) or loads it.
      const s = a;
      const sel = pre.reg[b]! & 0xffff;
      if (bare.cpu.eip !== c.stub(13))
        return {
          ok: false,
          why: `bare did not raise #GP at the witness (EIP 0x${bare.cpu.eip.toString(16)})`,
        };
      const err = dword(bare.ram, (bare.cpu.segBase[2]! + bare.cpu.reg[4]!) >>> 0);
      if (err !== (sel & 0xfffc))
        return { ok: false, why: `bare raised #GP(0x${err.toString(16)}), not #GP(0x${sel.toString(16)})` };
      const table = sel & 4 ? pre.ldtBase : pre.gdtBase;
      const at = (table + (sel & 0xfff8)) >>> 0;
      const cpu = cloneCpu(pre);
      // As VirtualEnvironment.capture records a native load: SS shows the virtual CPL as its RPL.
      const vsel = s === 2 ? (sel & ~3) | ring : sel;
      const seg = {
        segSel: new Uint16Array(6),
        segBase: new Uint32Array(6),
        segLimit: new Uint32Array(6),
        segHi: new Uint32Array(6),
        segFlags: new Uint8Array(6),
      };
      setSegment(seg as unknown as Cpu, s, vsel, dword(c.preVe.ram, at), dword(c.preVe.ram, at + 4));
      cpu.segSel[s] = seg.segSel[s]!;
      cpu.segBase[s] = seg.segBase[s]!;
      cpu.segLimit[s] = seg.segLimit[s]!;
      cpu.segHi[s] = seg.segHi[s]!;
      cpu.segFlags[s] = seg.segFlags[s]!;
      cpu.eip = (pre.eip + 8) >>> 0;
      cpu.instructions = pre.instructions + 1;
      cpu.interruptShadow = s === 2;
      return { ok: true, ve: { ...c.preVe, cpu, result: { reason: 'budget', executed: 1, idle: 0 } } };
    }
    case 'hole': {
      // The bare machine reads the empty bus (0xFF bytes), or raises #PF where a paging guest maps
      // nothing; the real CPU at real ring 2 reads the VM manager's tables where they are mapped.
      const size = op === 0x12 ? 4 : 1;
      const lin =
        (pre.segBase[4]! + (c.code[4]! | (c.code[5]! << 8) | (c.code[6]! << 16) | (c.code[7]! << 24))) >>> 0;
      const v = c.realRead(lin, size, realCpl(ring) === 3);
      if (v === undefined) return { ok: true, ve: bare };
      if (bare.cpu.eip === c.stub(14)) {
        const cpu = cloneCpu(pre);
        cpu.reg[a] = v >>> 0;
        cpu.eip = (pre.eip + 8) >>> 0;
        cpu.instructions = pre.instructions + 1;
        cpu.interruptShadow = false;
        return { ok: true, ve: { ...c.preVe, cpu, result: { reason: 'budget', executed: 1, idle: 0 } } };
      }
      const cpu = cloneCpu(bare.cpu);
      cpu.reg[a] = v >>> 0;
      return { ok: true, ve: withCpu(bare, cpu) };
    }
  }
}

/**
 * LAR (0x84), LSL (0x85), VERR (0x86), VERW (0x87) as the real CPU executes them for the VE: on the
 * shadow of the guest's descriptor in SDT_k (same type, limit and base; the DPL of the real ring;
 * not present if it is foreign code), at the real CPL (system.ts's rules, unchanged).
 */
function inspect(
  op: number,
  sel: number,
  pre: CpuState,
  ram: Uint8Array,
  k: number,
  guard: boolean,
): { ok: boolean; value: number } {
  const no = { ok: false, value: 0 };
  if ((sel & 0xfffc) === 0) return no;
  const index = sel & 0xfff8;
  const ldt = (sel & 4) !== 0;
  if (ldt ? !pre.ldtUsable || index + 7 > pre.ldtLimit : index + 7 > pre.gdtLimit) return no;
  const at = ((ldt ? pre.ldtBase : pre.gdtBase) + index) >>> 0;
  if (at + 8 > ram.length) return no;
  const lo = dword(ram, at);
  const hi = shadowHi(dword(ram, at + 4), k, guard) >>> 0;
  const cpl = realCpl(pre.segSel[1]! & 3);
  const s = ((hi >>> 28) & 1) === 1;
  const type = (hi >>> 24) & 0xf;
  const dpl = (hi >>> 29) & 3;
  const code = s && (type & 8) !== 0;
  const conforming = code && (type & 4) !== 0;
  const visible = (conf: boolean) => conf || (dpl >= cpl && dpl >= (sel & 3));
  if (op === 0x84 || op === 0x85) {
    const sys = !s && (type === 2 || type === 9 || type === 0xb || (op === 0x84 && type === 0xc));
    const ok = (s || sys) && visible(conforming);
    const limit = descLimit({ lo, hi, type, s, dpl, present: hi >>> 31 === 1 });
    return { ok, value: op === 0x84 ? (hi & 0xffc0_0000) >>> 0 : limit };
  }
  const readable = s && (!code || (type & 2) !== 0);
  const writable = s && !code && (type & 2) !== 0;
  return { ok: op === 0x86 ? readable && visible(conforming) : writable && visible(false), value: 0 };
}
