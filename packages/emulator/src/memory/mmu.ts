/**
 * Linear -> physical translation with two-level paging (x86 non-PAE, SDM §4.3): CR3 holds the page
 * directory; PDE and PTE bit 0 = present, bit 1 = writable, bit 2 = user, bit 5 = accessed,
 * bit 6 = dirty (PTE). A user access (CPL 3) needs U at both levels; a write needs W at both levels
 * for user code, and for supervisor code when CR0.WP is set. A miss or violation is #PF with CR2 =
 * the linear address and error code bit 0 = protection violation (else not present), bit 1 = write,
 * bit 2 = user. Translations are cached in a TLB flushed by a CR3 write and per page by INVLPG.
 */
import { CpuFault, VEC } from '../cpu/faults.js';
import type { PhysicalMemory } from './physical.js';

/** TLB entries, direct-mapped on the low bits of the page number. */
export const TLB_SIZE = 1024;

/** Access kinds for the permission check. */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;

export class Mmu {
  paging = false;
  /** CR0.WP: supervisor writes honour read-only pages. */
  writeProtect = false;
  cr3 = 0;
  /** CR2: linear address of the last page fault. */
  cr2 = 0;
  // TLB: tag = page number + 1 (0 = empty); entry = frame base | U (bit 2) | W (bit 1) | dirty-set (bit 6).
  // Read-only outside this class: the CPU's data fast paths (cpu.ts) look a hit up inline and take
  // translate() for anything else.
  readonly tlbTag = new Int32Array(TLB_SIZE);
  readonly tlbEntry = new Int32Array(TLB_SIZE);
  tlbMisses = 0;
  /** Bumped whenever translations may change (flush, INVLPG): lets the CPU cache its code page. */
  generation = 0;

  constructor(readonly phys: PhysicalMemory) {}

  flush(): void {
    this.tlbTag.fill(0);
    this.generation++;
  }

  invalidate(linear: number): void {
    this.generation++;
    const page = linear >>> 12;
    const i = page & (TLB_SIZE - 1);
    if (this.tlbTag[i] === page + 1) this.tlbTag[i] = 0;
  }

  /**
   * Physical address of `linear` for an access by `user` (CPL 3) code. Throws #PF (and sets CR2)
   * on a miss or a violation; sets the accessed and dirty bits as the SDM says.
   */
  translate(linear: number, write: boolean, user: boolean): number {
    if (!this.paging) return linear >>> 0;
    const page = linear >>> 12;
    const i = page & (TLB_SIZE - 1);
    if (this.tlbTag[i] === page + 1) {
      const e = this.tlbEntry[i]!;
      if ((!user || e & 4) && (!write || ((e & 2 || (!user && !this.writeProtect)) && e & 0x40))) {
        return ((e & ~0xfff) | (linear & 0xfff)) >>> 0;
      }
    }
    return this.walk(linear, write, user);
  }

  private walk(linear: number, write: boolean, user: boolean): number {
    this.tlbMisses++;
    const phys = this.phys;
    const pdeAddr = ((this.cr3 & ~0xfff) | ((linear >>> 22) << 2)) >>> 0;
    const pde = phys.read32(pdeAddr);
    if (!(pde & 1)) throw this.pageFault(linear, false, write, user);
    const pteAddr = ((pde & ~0xfff) | (((linear >>> 12) & 0x3ff) << 2)) >>> 0;
    const pte = phys.read32(pteAddr);
    if (!(pte & 1)) throw this.pageFault(linear, false, write, user);
    const u = pde & pte & 4;
    const w = pde & pte & 2;
    if (user && !u) throw this.pageFault(linear, true, write, user);
    if (write && !w && (user || this.writeProtect)) throw this.pageFault(linear, true, write, user);
    if (!(pde & 0x20)) phys.write32(pdeAddr, pde | 0x20);
    const newPte = pte | 0x20 | (write ? 0x40 : 0);
    if (newPte !== pte) phys.write32(pteAddr, newPte);
    const page = linear >>> 12;
    const i = page & (TLB_SIZE - 1);
    this.tlbTag[i] = page + 1;
    // Only a write sets the dirty bit, so an entry cached by a read must walk again on the first write.
    this.tlbEntry[i] = (pte & ~0xfff) | u | w | (newPte & 0x40);
    return ((pte & ~0xfff) | (linear & 0xfff)) >>> 0;
  }

  private pageFault(linear: number, protection: boolean, write: boolean, user: boolean): CpuFault {
    this.cr2 = linear >>> 0;
    return new CpuFault(VEC.PF, (protection ? 1 : 0) | (write ? 2 : 0) | (user ? 4 : 0));
  }
}
