/**
 * Witnesses: one unmasked instance of a known difference of ring compression (known.ts), placed at
 * the label `fz_witness` of an otherwise ordinary fuzz program. The harness runs the bare machine
 * and the VE to it, compares them, executes that one instruction on each and checks the VE against
 * the known difference's predicate.
 */
import { hex } from './descriptors.js';
import { DATA_SREGS, type Reg } from './ops.js';
import type { Rng } from './prng.js';
import { LAYOUT } from './runtime.js';
import { DATA, type GuestTables } from './tables.js';

export type WitnessKind =
  | 'lar'
  | 'lsl'
  | 'verr'
  | 'verw'
  | 'mov-cs'
  | 'mov-ss'
  | 'push-cs'
  | 'push-ss'
  | 'pushf'
  | 'rpl'
  | 'hole';

export const WITNESS_KINDS: readonly WitnessKind[] = [
  'lar',
  'lsl',
  'verr',
  'verw',
  'mov-cs',
  'mov-ss',
  'push-cs',
  'push-ss',
  'pushf',
  'rpl',
  'hole',
];

const AT = 'fz_witness:';

/**
 * The witness's lines at CPL `ring` (`a`, `s`: two different scratch registers; `flags`: an EFLAGS
 * value for POPF), or none if this program has no place for it (no RPL to exceed at ring 3, say).
 */
export function witnessLines(
  kind: WitnessKind,
  ring: number,
  r: Rng,
  t: GuestTables,
  a: Reg,
  s: Reg,
  flags: number,
): string[] {
  switch (kind) {
    case 'lar':
    case 'lsl':
    case 'verr':
    case 'verw': {
      // Mostly a scaffold flat segment (entries 1-8: code and data of rings 0-3) whose DPL and RPL
      // make the real rings answer otherwise: RPL > DPL >= CPL at rings 1-2; at ring 0 (real ring
      // 2) DPL 3 with RPL 3, or an RPL of 1-2 above the DPL.
      let sel = (r.int(LAYOUT.gdtEntries) << 3) | r.int(4);
      if (r.chance(0.7)) {
        let d = 3;
        let p = 3;
        if (ring === 1 || ring === 2) {
          d = r.range(ring, 2);
          p = r.range(d + 1, 3);
        } else if (ring === 0 && r.chance(0.6)) {
          p = r.range(1, 2);
          d = r.range(0, p - 1);
        }
        sel = ((1 + 2 * d + (r.chance(0.7) ? 1 : 0)) << 3) | p;
      }
      const op = kind === 'lar' || kind === 'lsl' ? `        ${kind} ${a}, ${s}` : `        ${kind} ${s}`;
      return [`        mov ${s}, ${hex(sel)}`, AT, op];
    }
    case 'mov-cs':
    case 'mov-ss':
      return [AT, `        mov ${a}, ${kind === 'mov-cs' ? 'cs' : 'ss'}`];
    case 'push-cs':
    case 'push-ss':
      return [AT, `        push ${kind === 'push-cs' ? 'cs' : 'ss'}`];
    case 'pushf':
      // At ring 0, IOPL 1-3 first: 2 and 3 are what the real IOPL (at most 1) hides.
      return [
        ...(ring === 0
          ? [`        push ${hex((flags & ~0x7000) | (r.range(1, 3) << 12))}`, '        popf']
          : []),
        AT,
        '        pushf',
      ];
    case 'rpl': {
      // A present, loadable, non-conforming segment of DPL d >= CPL, loaded with RPL > d.
      const cands: number[] = [];
      for (let i = 1; i < t.gdt.length; i++) {
        const d = t.known(i << 3);
        if (d === undefined || !d.present || d.dpl < ring || d.dpl === 3) continue;
        if (d.loadable && !d.conforming && (d.kind === 'data' || d.kind === 'code')) cands.push(i);
      }
      if (cands.length === 0) return [];
      const i = r.pick(cands);
      const d = t.gdt[i]!;
      const ss = d.kind === 'data' && d.rw && d.dpl === ring && ring > 0 && r.chance(0.3);
      const sel = (i << 3) | r.range(d.dpl + 1, 3);
      return [`        mov ${a}, ${hex(sel)}`, AT, `        mov ${ss ? 'ss' : r.pick(DATA_SREGS)}, ${a}`];
    }
    case 'hole': {
      // The SDT pages (SDT_k at +k * 64 KiB) and the shadow TSS (+0x80000) are mapped, mostly.
      const page = r.chance(0.8)
        ? r.pick([0, 0x1_0000, 0x2_0000, 0x3_0000, 0x8_0000]) + r.int(0x200)
        : r.int(0x10_0000);
      const off = (0xff80_0000 + page) >>> 0;
      // (A paging guest does not map the range: there the bare machine raises #PF, known.ts.)
      return [
        `        mov ${a}, ${hex(DATA[ring]! | ring)}`,
        `        mov fs, ${a}`,
        AT,
        r.chance(0.7) ? `        ld ${a}, [fs:${hex(off & ~3)}]` : `        ldb ${a}, [fs:${hex(off)}]`,
      ];
    }
  }
}
