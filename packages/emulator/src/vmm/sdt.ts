/**
 * Shadow descriptor tables (SDT-1..SDT-22): the descriptor `SDT_k` holds for a VEDT entry, and the
 * set of SDTs a virtual environment keeps under each creation policy.
 *
 * Dword 0 (base or gate offset) is copied: the VM manager maps the guest's linear space with the
 * MMU (MEM-2), so a VEDT base is already the right linear address (SDT-4, MEM-5). Dword 1 gets the
 * real ring of claim 13 in its DPL field (`realRing`, SDT-6, SDT-13 for gates). Code segments that
 * no native transfer may reach are marked not present, so that a transfer into them traps to the
 * VM manager, which applies the virtual rules (the CPU running the VEDT):
 * - always: non-conforming code of a virtual ring other than 0 and k when it holds real ring 0
 *   (SDT-12: guest code never runs at real ring 0) or when k = 0 (in SDT0 every segment holds real
 *   ring 2, so a direct jump from virtual ring 0 into ring 1-3 code would otherwise succeed), and
 *   all conforming code (it runs at the caller's ring, which a native transfer would take from a
 *   real RPL: a return to ring-2 conforming code from virtual ring 0 would stay in ring 0);
 * - with the outward guard on (SDT-16, the default): non-conforming code of a compressed virtual
 *   ring other than k, so that an outward transfer between compressed rings (a same-real-ring move,
 *   3 to 3) traps and the VM manager switches SDT. Turning it off shows ATK-19.
 */
import { realRing } from './rings.js';

/** Dword 1 of the shadow, in SDT_k, of a VEDT entry whose dword 1 is `hi`. */
export function shadowHi(hi: number, k: number, outwardGuard: boolean): number {
  if (hi === 0) return 0; // an empty entry (the null descriptor) stays empty
  const v = (hi >>> 29) & 3;
  let out = (hi & ~0x6000_0000) | (realRing(k, v) << 29);
  const s = (hi >>> 25) & 0xe; // S, code, conforming (segments.ts)
  if ((s & 0xc) === 0xc) {
    const conforming = s === 0xe;
    // Conforming code runs at its caller's ring, which the real CPU would take from a selector's
    // real RPL: every transfer into it is done by the virtual CPU.
    const foreign = conforming || (v !== 0 && v !== k && (k === 0 || realRing(k, v) === 0 || outwardGuard));
    if (foreign) out &= 0x7fff_ffff;
  }
  return out | 0;
}

/** When SDTs are built and kept (SDT-18..SDT-20). */
export type SdtPolicy = 'P1' | 'P2' | 'P3';

/** Counters of one table set (per VE; TB-6 efficiency indicators). */
export interface SdtCounters {
  /** Whole SDTs built (from the VEDT). */
  builds: number;
  /** Of those, built because a ring change needed an SDT that was not held. */
  ringBuilds: number;
  /** Single entries rewritten after a VEDT change. */
  entryUpdates: number;
  /** SDT switches (the real GDTR moved to another SDT). */
  switches: number;
  /** VEDT changes seen (an entry's dwords differ from the last copy). */
  vedtChanges: number;
  /** Relocations: the guest loaded another VEDT (LGDT/LLDT), every held SDT was regenerated. */
  relocations: number;
}

/** The virtual rings a VEDT's present segments and gates belong to, as a bit set (bit v). */
export function ringsUsed(vedt: Int32Array): number {
  let set = 0;
  for (let i = 1; i < vedt.length; i += 2) {
    const hi = vedt[i]!;
    if (hi >>> 31 === 0) continue; // not present
    const system = ((hi >>> 28) & 1) === 0;
    const type = (hi >>> 24) & 0xf;
    // Code, data and gates carry a ring the guest uses; LDT and TSS descriptors do not.
    if (system && type !== 0xc && type !== 0xe && type !== 0xf) continue;
    set |= 1 << ((hi >>> 29) & 3);
  }
  return set;
}

/**
 * One VEDT (a guest GDT or LDT) and its SDTs, held as dword arrays; the owner copies a table into
 * the real memory its descriptor-table register points at. `copy` is the VEDT as last seen (the
 * guest view the SDTs were built from).
 *
 * Quick pass-through (QPT-3..5): for a guest whose VEDT uses only virtual rings 0 and 3 the set
 * holds two SDTs, SDT0 ("SDT_hi") and SDT3 ("SDT_lo"); P2 builds just those two (QPT-4).
 */
export class ShadowSet {
  /** The VEDT's dwords as last read (2 per entry). */
  copy = new Int32Array(0);
  /** SDT_k's dwords, or undefined if not built. */
  readonly tables: (Int32Array | undefined)[] = [undefined, undefined, undefined, undefined];
  /** Entries of each table changed since its owner last copied it to memory (-1: whole table). */
  readonly dirty: Set<number>[] = [new Set(), new Set(), new Set(), new Set()];
  readonly counters: SdtCounters = {
    builds: 0,
    ringBuilds: 0,
    entryUpdates: 0,
    switches: 0,
    vedtChanges: 0,
    relocations: 0,
  };
  /** Quick pass-through: only rings 0 and 3 exist. */
  qpt = false;
  /** The last array each SDT_k was built in (reused by the next build of the same size). */
  private readonly spare: (Int32Array | undefined)[] = [undefined, undefined, undefined, undefined];

  constructor(
    public policy: SdtPolicy,
    public outwardGuard = true,
  ) {}

  get built(): number[] {
    return [0, 1, 2, 3].filter((k) => this.tables[k] !== undefined);
  }

  /** The rings P2 builds: all four, or SDT_hi and SDT_lo under QPT. */
  private get all(): number[] {
    return this.qpt ? [0, 3] : [0, 1, 2, 3];
  }

  /** A new VEDT (VE creation, LGDT/LLDT, RELOCATE): regenerate (P2: build all; P1/P3: those held). */
  load(vedt: Int32Array, current: number): void {
    this.copy = vedt.slice();
    const held = this.built;
    if (held.length > 0) this.counters.relocations++;
    if (this.policy === 'P2') {
      for (let k = 0; k < 4; k++) this.tables[k] = undefined;
      for (const k of this.all) this.build(k);
    } else {
      for (const k of held) this.build(k);
    }
    this.ensure(current, false);
  }

  /**
   * The SDT for virtual ring `k` is about to be used: select it, or build it (P1 first discards
   * the one it holds). `ringChange`: the build is caused by a ring change (a TB-6 indicator).
   */
  ensure(k: number, ringChange = true): void {
    if (this.tables[k] !== undefined) return;
    if (this.policy === 'P1') {
      for (let j = 0; j < 4; j++) if (j !== k) this.tables[j] = undefined;
    }
    this.build(k);
    if (ringChange) this.counters.ringBuilds++;
  }

  /** Changes the policy (adaptive selection, SDT-22): P2 builds the rest, P1 keeps only `current`. */
  setPolicy(policy: SdtPolicy, current: number): void {
    this.policy = policy;
    if (policy === 'P2') {
      for (const k of this.all) if (this.tables[k] === undefined) this.build(k);
    } else if (policy === 'P1') {
      for (let j = 0; j < 4; j++) if (j !== current) this.tables[j] = undefined;
    }
    this.ensure(current, false);
  }

  private build(k: number): void {
    // A table discarded by P1 is reused when the size matches (no allocation per ring change).
    const spare = this.spare[k];
    const t =
      spare !== undefined && spare.length === this.copy.length ? spare : new Int32Array(this.copy.length);
    this.spare[k] = t;
    for (let i = 0; i < t.length; i += 2) {
      t[i] = this.copy[i]!;
      t[i + 1] = shadowHi(this.copy[i + 1]!, k, this.outwardGuard);
    }
    this.tables[k] = t;
    this.dirty[k]!.clear();
    this.dirty[k]!.add(-1);
    this.counters.builds++;
  }

  /**
   * Compares the VEDT's current dwords with the copy and updates every SDT built so far
   * (SDT-21: cl. 4, 7, 10). Returns the entries that changed.
   */
  update(vedt: Int32Array): number[] {
    if (vedt.length !== this.copy.length) throw new RangeError('a VEDT changes size only through load()');
    const changed: number[] = [];
    for (let i = 0; i < vedt.length; i += 2) {
      if (vedt[i] === this.copy[i] && vedt[i + 1] === this.copy[i + 1]) continue;
      this.copy[i] = vedt[i]!;
      this.copy[i + 1] = vedt[i + 1]!;
      changed.push(i >>> 1);
      for (let k = 0; k < 4; k++) {
        const t = this.tables[k];
        if (t === undefined) continue;
        t[i] = vedt[i]!;
        t[i + 1] = shadowHi(vedt[i + 1]!, k, this.outwardGuard);
        this.dirty[k]!.add(i >>> 1);
        this.counters.entryUpdates++;
      }
    }
    if (changed.length > 0) this.counters.vedtChanges++;
    return changed;
  }

  /** Rebuilds every held table (after the guard changed, or QPT ended). */
  rebuild(current: number): void {
    for (const k of this.built) this.build(k);
    this.ensure(current, false);
  }
}
