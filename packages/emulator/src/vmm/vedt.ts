/**
 * VEDT substitution, the third embodiment (VEDT-1..10): no SDTs. The processor uses the guest's
 * own GDT (the VEDT) with each entry's virtual ring replaced by a real one, in the guest's memory.
 *
 * - The real GDTR points at a supervisor, read-only alias of the VEDT's pages in the VM manager's
 *   reserved range; the guest's own mapping of those pages is not present, so every guest read of
 *   its VEDT traps (read masking, VEDT-3) and is answered from the guest view (VEDT-7): the VM
 *   manager writes the guest view into the pages for the one instruction the virtual CPU executes,
 *   reads back what it wrote, and substitutes again.
 * - Write method 1 (`trap`, VEDT-4): every guest write traps the same way and the VM manager stores
 *   the substituted entry. Write method 2 (`overwrite`, VEDT-5): the first write to a page opens it
 *   (mapped writable, so the guest's writes land raw) until the next trap of any kind, when the VM
 *   manager compares the page with the image it last wrote, takes the differences as the guest's
 *   writes and overwrites them (VEDT-10). While a page is open its reads are not masked (a paged
 *   MMU has no write-only pages): the window is as short as the next trap. `auto` (VEDT-6) picks
 *   the method with fewer traps per VEDT change.
 * - The guard (VEDT-9): while a page is open its alias is unmapped, so a descriptor the processor
 *   would read from it traps first and is overwritten before use. Without it a raw virtual ring is
 *   live (ATK-20).
 * - Substitution (VEDT-8): `current-ring` (default) writes R_k(v) of the current virtual ring k and
 *   rewrites at each ring change, like SDT_k in place; `static` writes virtual 0 -> 2, 1..3 -> 3,
 *   losing the isolation between rings 1-3 (a warning is logged).
 */
import { shadowHi } from './sdt.js';

export type VedtMode = 'current-ring' | 'static';
export type VedtWriteMethod = 'trap' | 'overwrite';

export interface VedtCounters {
  /** Guest reads of the VEDT that trapped and were answered from the guest view. */
  readTraps: number;
  /** Guest writes that trapped (method 1) and were stored substituted. */
  writeTraps: number;
  /** Pages opened for direct writes (method 2). */
  opens: number;
  /** Entries overwritten after a direct write (method 2). */
  overwrites: number;
  /** Whole rewrites for a new current ring. */
  rewrites: number;
  /** Automatic changes of write method (VEDT-6). */
  methodSwitches: number;
}

/** The processor-visible dword 1 of a VEDT entry `hi` for virtual ring `k`. */
export function substituteHi(hi: number, k: number, mode: VedtMode, outwardGuard: boolean): number {
  return mode === 'static' ? shadowHi(hi, 1, false) : shadowHi(hi, k, outwardGuard);
}

/** One substituted VEDT: its place in the guest, the guest view, and what is in memory. */
export class VedtTable {
  /** The guest's view (what it wrote), 2 dwords per entry. */
  readonly view: Int32Array<ArrayBuffer>;
  /** What the VM manager last wrote into the table's memory. */
  readonly image: Int32Array<ArrayBuffer>;
  /** The virtual ring the image is substituted for (-1: the memory holds the guest view). */
  k = -1;
  /** The ring of the last substitution (to count rewrites at ring changes). */
  lastK = -1;
  /** Pages (index from the table's first page) open for direct writes (method 2). */
  readonly open = new Set<number>();

  constructor(
    /** Guest linear address of the table. */
    readonly base: number,
    readonly limit: number,
    /** Guest-physical address of each page the table spans. */
    readonly pages: readonly number[],
    view: Int32Array<ArrayBuffer>,
  ) {
    this.view = view;
    this.image = view.slice();
  }

  get entries(): number {
    return this.view.length >>> 1;
  }

  /** Guest-physical address of dword `i` of the table. */
  gpa(i: number): number {
    const linear = (this.base + 4 * i) >>> 0;
    return this.pages[(linear >>> 12) - (this.base >>> 12)]! + (linear & 0xfff);
  }

  /** Page index (into `pages`) of dword `i`. */
  page(i: number): number {
    return (((this.base + 4 * i) >>> 0) >>> 12) - (this.base >>> 12);
  }
}
