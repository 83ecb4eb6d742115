/**
 * Paging for some fuzz guests (the VM manager's shadow paging, ve.ts): `main` builds a page
 * directory with two page tables, identity-maps low memory (tables, stacks) and the scratch area with
 * random U/W/A/D bits, some pages not present and one aliasing the GDT's frame, maps the ROM at the
 * top, and turns paging on. Ring 0 then rewrites page-table entries (always followed by INVLPG:
 * without it the guest would see whichever stale translation its TLB kept, which the architecture
 * leaves undefined and the bare TLB and the shadow tables keep differently), reloads CR3 and
 * toggles CR0.WP. The VM manager's reserved directory entry (0x3FE) is never mapped.
 */
import { hex } from './descriptors.js';
import type { Rng } from './prng.js';

export const PAGE_DIR = 0xc000;
const PT_LOW = 0xd000;
const PT_TOP = 0xe000;
/** Pages mapped in low memory (0 .. 0xFFFF) and the scratch area (0x40000 .. 0x7FFFF). */
const LOW_PAGES = 16;
const SCRATCH_FIRST = 0x40;
const SCRATCH_END = 0x80;

/** A random PTE for scratch page `page`: present mostly, W, U, A, D at random, an alias sometimes. */
function scratchPte(r: Rng, page: number): number {
  let frame = page;
  if (r.chance(0.1)) frame = r.chance(0.3) ? 0x1 : SCRATCH_FIRST + r.int(SCRATCH_END - SCRATCH_FIRST);
  const flags =
    (r.chance(0.9) ? 1 : 0) |
    (r.chance(0.7) ? 2 : 0) |
    (r.chance(0.75) ? 4 : 0) |
    (r.chance(0.3) ? 0x20 : 0) |
    (r.chance(0.3) ? 0x40 : 0);
  return ((frame << 12) | flags) >>> 0;
}

/**
 * `main`'s lines (ring 0, DS flat, paging off) that build the tables and turn paging on.
 * `accessed`: low memory's pages and their directory entry start with A set (bugs.ts,
 * 'descriptor-accessed').
 */
export function pagingSetup(r: Rng, accessed: boolean): string[] {
  const a = accessed ? 0x20 : 0;
  const loop = (label: string, from: number, to: number, flags: number, pt: number, frameBase: number) => [
    `        mov ecx, ${hex(from)}`,
    `.${label}: mov eax, ecx`,
    '        shl eax, 12',
    `        or eax, ${hex((frameBase | flags) >>> 0)}`,
    '        mov edx, ecx',
    '        shl edx, 2',
    `        st [edx+${hex(pt)}], eax`,
    '        inc ecx',
    `        cmp ecx, ${hex(to)}`,
    `        jnz .${label}`,
  ];
  const out = [
    `        mov eax, ${hex(PT_LOW | 7 | a)}`,
    `        st [${hex(PAGE_DIR)}], eax`,
    `        mov eax, ${hex(PT_TOP | 7)}`,
    `        st [${hex(PAGE_DIR + 0x3ff * 4)}], eax`,
    ...loop('plow', 0, LOW_PAGES, 7 | a, PT_LOW, 0),
    ...loop('pscr', SCRATCH_FIRST, SCRATCH_END, 7, PT_LOW, 0),
    // The ROM (0xFFFF0000..): user, read-only.
    ...loop('prom', 0x3f0, 0x400, 5, PT_TOP, 0xffc0_0000),
  ];
  // System pages (GDT .. the fault counter, the stacks of rings 0-2, the page tables) keep P and W;
  // U varies. The ring-3 stack page stays user-writable.
  for (const page of [1, 2, 3, 4, 5, 6, 7, 8, 9, 0xc, 0xd, 0xe]) {
    if (r.chance(0.2)) out.push(...setPte(page, ((page << 12) | 3 | a) >>> 0));
  }
  for (let k = r.range(2, 10); k > 0; k--) {
    const page = SCRATCH_FIRST + r.int(SCRATCH_END - SCRATCH_FIRST);
    out.push(...setPte(page, scratchPte(r, page)));
  }
  out.push(
    `        mov eax, ${hex(PAGE_DIR)}`,
    '        mov cr3, eax',
    '        mov eax, cr0',
    `        or eax, ${hex(r.chance(0.5) ? 0x8001_0000 : 0x8000_0000)}`,
    '        mov cr0, eax',
  );
  return out;
}

function setPte(page: number, pte: number): string[] {
  return [`        mov eax, ${hex(pte)}`, `        st [${hex(PT_LOW + 4 * page)}], eax`];
}

/** A ring-0 paging operation (`a` is a scratch register; ES is loaded with the flat ring-0 data). */
export function pagingOp(r: Rng, a: string): string[] {
  switch (r.int(5)) {
    case 0:
    case 1: {
      const page = SCRATCH_FIRST + r.int(SCRATCH_END - SCRATCH_FIRST);
      return [
        `        mov ${a}, 0x10`,
        `        mov es, ${a}`,
        `        mov ${a}, ${hex(scratchPte(r, page))}`,
        `        st [es:${hex(PT_LOW + 4 * page)}], ${a}`,
        `        invlpg [es:${hex(page << 12)}]`,
      ];
    }
    case 2:
      return [`        mov ${a}, cr3`, `        mov cr3, ${a}`];
    case 3:
      return [`        mov ${a}, cr0`, `        xor ${a}, 0x10000`, `        mov cr0, ${a}`];
    default: {
      // Paging off for one instruction, then on again.
      return [
        `        mov ${a}, cr0`,
        `        and ${a}, 0x7fffffff`,
        `        mov cr0, ${a}`,
        `        ld ${a}, [ss:${hex(0x4_0000 + 4 * r.int(0x1000))}]`,
        `        mov ${a}, cr0`,
        `        or ${a}, 0x80000000`,
        `        mov cr0, ${a}`,
      ];
    }
  }
}
