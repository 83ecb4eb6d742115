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
 *   conforming code of a virtual ring above k (the bare rule refuses it; the shadow would allow it);
 * - with the outward guard on (SDT-16, the default): non-conforming code of a compressed virtual
 *   ring other than k, so that an outward transfer between compressed rings (a same-real-ring move,
 *   3 to 3) traps and the VM manager switches SDT. Turning it off shows ATK-19.
 */
import { realRing } from './rings.js';

/** Dword 1 of the shadow, in SDT_k, of a VEDT entry whose dword 1 is `hi`. */
export function shadowHi(hi: number, k: number, outwardGuard: boolean): number {
  const v = (hi >>> 29) & 3;
  let out = (hi & ~0x6000_0000) | (realRing(k, v) << 29);
  const s = (hi >>> 25) & 0xe; // S, code, conforming (segments.ts)
  if ((s & 0xc) === 0xc) {
    const conforming = s === 0xe;
    const foreign = conforming
      ? v > k
      : v !== 0 && v !== k && (k === 0 || realRing(k, v) === 0 || outwardGuard);
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
  /** Single entries rewritten after a VEDT change. */
  entryUpdates: number;
  /** SDT switches (the real GDTR moved to another SDT). */
  switches: number;
  /** VEDT changes seen (an entry's dwords differ from the last copy). */
  vedtChanges: number;
  /** Relocations: the guest loaded another VEDT (LGDT/LLDT), every SDT was regenerated. */
  relocations: number;
}

/**
 * One VEDT (a guest GDT or LDT) and its SDTs, held as dword arrays; the owner copies a table into
 * the real memory its descriptor-table register points at. `copy` is the VEDT as last seen (the
 * guest view the SDTs were built from).
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
    entryUpdates: 0,
    switches: 0,
    vedtChanges: 0,
    relocations: 0,
  };

  constructor(
    public policy: SdtPolicy,
    public outwardGuard = true,
  ) {}

  get built(): number[] {
    return [0, 1, 2, 3].filter((k) => this.tables[k] !== undefined);
  }

  /** A new VEDT (VE creation, LGDT/LLDT, RELOCATE): regenerate (P2: build all; P1/P3: those held). */
  load(vedt: Int32Array, current: number): void {
    this.copy = vedt.slice();
    if (this.policy === 'P2') {
      for (let k = 0; k < 4; k++) this.build(k);
      return;
    }
    const held = this.built;
    if (held.length > 0) this.counters.relocations++;
    for (const k of held) this.build(k);
    this.ensure(current);
  }

  /** The SDT for virtual ring `k` is about to be used: build it or select it (a RINGCHANGE). */
  ensure(k: number): void {
    if (this.tables[k] !== undefined) return;
    if (this.policy === 'P1') {
      for (let j = 0; j < 4; j++) {
        if (j !== k && this.tables[j] !== undefined) this.tables[j] = undefined;
      }
    }
    this.build(k);
  }

  private build(k: number): void {
    const t = new Int32Array(this.copy.length);
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

  /** Rebuilds every held table (after the guard or the policy changed). */
  rebuild(): void {
    for (const k of this.built) this.build(k);
  }
}
