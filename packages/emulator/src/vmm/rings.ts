/**
 * Ring compression (RING-9, claims 12-13, SPEC §5.3): where each virtual ring runs, and the real
 * ring that the shadow descriptor table of virtual ring `k` records for information of virtual
 * ring `v`.
 *
 *   R_k(v) = 2  if k == 0 or v == 0       (SDT0 maps everything to ring 2; virtual ring 0 is not
 *                                           compressed)
 *   R_k(v) = 3  if v >= k                  (same or lower privilege)
 *   R_k(v) = 0  if 1 <= v < k              (a more privileged compressed ring: only the VMM's
 *                                           trap reaches it)
 *   CPL(k) = 2 if k == 0 else 3
 */

/** The real ring R_k(v) that SDT_k records for information of virtual ring `v` (claim 13, SDT-6). */
export function realRing(k: number, v: number): number {
  if (k === 0 || v === 0) return 2;
  return v >= k ? 3 : 0;
}

/** The real ring at which code of virtual ring `k` runs (RING-9, SDT-7). */
export function realCpl(k: number): number {
  return k === 0 ? 2 : 3;
}
