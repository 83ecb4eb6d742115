/**
 * The VM manager's own physical pages (CORE-4: allocation and release of physical memory): shadow
 * page tables, shadow descriptor tables, the shadow task-state segment and the virtual
 * environments' boot-ROM copies live in a region of real RAM no guest maps.
 */
import type { PhysicalMemory } from '../memory/physical.js';
import { VmmError } from './errors.js';

export class PagePool {
  private readonly free: number[] = [];
  /** Pages handed out and not returned. */
  inUse = 0;

  /** Manages the pages of [base, base + bytes) of `phys`'s RAM. */
  constructor(
    readonly phys: PhysicalMemory,
    readonly base: number,
    readonly bytes: number,
  ) {
    if (base % 4096 !== 0 || bytes % 4096 !== 0 || base + bytes > phys.ram.length) {
      throw new VmmError('CONFIG_INVALID', `page pool [${base}, +${bytes}) is not page-aligned RAM`);
    }
    for (let at = base + bytes - 4096; at >= base; at -= 4096) this.free.push(at);
  }

  /** A zeroed page's physical address. */
  alloc(): number {
    const at = this.free.pop();
    if (at === undefined) throw new VmmError('VMM_OUT_OF_MEMORY', 'the VM manager has no free page left');
    this.phys.ram.fill(0, at, at + 4096);
    this.inUse++;
    return at;
  }

  release(at: number): void {
    this.free.push(at);
    this.inUse--;
  }

  get available(): number {
    return this.free.length;
  }
}
