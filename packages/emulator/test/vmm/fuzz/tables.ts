/**
 * What a fuzz guest's descriptor tables hold and how the generator picks selectors from them: the
 * scaffold's GDT entries, the fuzzer's own (flat code for the blocks, gates, random decoys, an LDT
 * descriptor, a second TSS, volatile entries rewritten at run time), the LDT, and the IDT's vectors
 * 32..47.
 *
 * Selector RPLs follow the rule that keeps ring compression invisible (known.ts, `rpl-compressed`):
 * an RPL above the CPL only where the RPL check passes or fails alike on the bare machine and on
 * the real rings (the descriptor's DPL is known for the whole run and is >= the RPL or < the CPL).
 */
import {
  callGate,
  codeDesc,
  type Desc,
  dataDesc,
  EMPTY,
  flatCode,
  hex,
  randomDesc,
  systemDesc,
  type Target,
} from './descriptors.js';
import type { Rng } from './prng.js';
import { LAYOUT } from './runtime.js';

/** The scaffold's flat code and data selectors of each ring (RPL 0). */
export const CODE = [0x08, 0x18, 0x28, 0x38] as const;
export const DATA = [0x10, 0x20, 0x30, 0x40] as const;

/** The scaffold's GDT entries 0..15 as the generator knows them (15: the final gate). */
function scaffoldEntries(): Desc[] {
  const flatData = (dpl: number): Desc => ({
    ...flatCode(dpl, false),
    kind: 'data',
    rw: true,
    loadable: true,
  });
  return [
    EMPTY,
    flatCode(0, false),
    flatData(0),
    flatCode(1, false),
    flatData(1),
    flatCode(2, false),
    flatData(2),
    flatCode(3, false),
    flatData(3),
    systemDesc('tss', LAYOUT.tss, 103, 0, 0xb),
    callGate('r1_entry', 0x18, 0, 3),
    callGate('r2_entry', 0x28, 0, 3),
    callGate('r0_entry', 0x08, 0, 3),
    callGate('r0_entry', 0x08, 0, 2),
    { ...flatData(1), lo: '0x4000', flat: false },
    callGate('fz_final', 0x08, 0, 3),
  ];
}

/** Lines that store descriptor `d` at linear `at` (ring 0, DS flat). */
export function storeDesc(at: number, d: Desc): string[] {
  return [
    `        mov eax, ${d.lo}`,
    `        st [${hex(at)}], eax`,
    `        mov eax, ${hex(d.hi)}`,
    `        st [${hex(at + 4)}], eax`,
  ];
}

export class GuestTables {
  /** GDT entries: the scaffold's, then the fuzzer's (undefined: free). */
  readonly gdt: (Desc | undefined)[] = scaffoldEntries();
  /** Fuzzer entries `main` writes (the others are copied from the ROM at boot with the scaffold's). */
  private readonly byCode = new Set<number>();
  /** Entries rewritten while the program runs: nothing is assumed of them. */
  readonly volatile: number[] = [];
  /** IDT vectors 32..47 (0..31 are the runtime's fault handlers). */
  readonly idt: (Desc | undefined)[] = [];
  readonly ldt: Desc[] = [];
  ldtSel = 0;
  tss2Sel = 0;

  /**
   * `noVolatileLoads`: no selector of a volatile GDT entry is handed out (bugs.ts,
   * `vedt-overwrite-cache`: a segment loaded from an entry the guest then rewrites).
   */
  constructor(
    private readonly r: Rng,
    private readonly noVolatileLoads = false,
  ) {
    for (let i = LAYOUT.firstFree; i < LAYOUT.gdtEntries; i++) this.gdt.push(undefined);
  }

  /** Puts `d` in a free GDT entry; its index, or -1 if the GDT is full. */
  alloc(d: Desc, byCode = this.r.chance(0.3)): number {
    const i = this.gdt.indexOf(undefined, LAYOUT.firstFree);
    if (i < 0) return -1;
    this.gdt[i] = d;
    if (byCode) this.byCode.add(i);
    return i;
  }

  /** Flat code for the blocks, decoys, an LDT, a second TSS and the volatile entries. */
  populate(targets: readonly Target[]): void {
    const r = this.r;
    for (let j = 0; j < 4; j++) this.alloc(flatCode(j, false, r.chance(0.8)));
    for (let k = r.range(1, 2); k > 0; k--) this.alloc(flatCode(r.int(4), true));
    for (let k = r.range(6, 12); k > 0; k--) this.alloc(r.pick([dataDesc, dataDesc, codeDesc] as const)(r));
    for (let k = r.int(3); k > 0; k--) this.alloc(randomDesc(r, targets));
    if (r.chance(0.6)) {
      const n = r.range(1, 8);
      for (let k = 0; k < n; k++) this.ldt.push(r.chance(0.8) ? dataDesc(r) : codeDesc(r));
      this.ldtSel = this.alloc(systemDesc('ldt', LAYOUT.ldt, 8 * n - 1, r.int(4), 2)) << 3;
    }
    if (r.chance(0.3)) this.tss2Sel = this.alloc(systemDesc('tss', LAYOUT.tss, 103, r.int(4), 9)) << 3;
    for (let k = r.range(1, 3); k > 0; k--) {
      const i = this.alloc(randomDesc(r, targets), true);
      if (i >= 0) this.volatile.push(i);
    }
  }

  /** The GDT lines from entry 15 on (scaffold.s's `; @EXTRA`). */
  gdtText(): string {
    const out = ['        GATE fz_final, 0x08, 0, 3'];
    for (let i = LAYOUT.firstFree; i < LAYOUT.gdtEntries; i++) {
      const d = this.gdt[i];
      if (d === undefined || this.byCode.has(i)) out.push('        .dword 0, 0');
      else out.push(`        .dword ${d.lo}, ${hex(d.hi)}`);
    }
    return out.join('\n');
  }

  /** `main`'s lines that write the entries not copied at boot, IDT vectors 32..47 and the LDT. */
  setup(targets: readonly Target[]): string[] {
    const r = this.r;
    const out: string[] = [];
    for (const i of this.byCode) out.push(...storeDesc(LAYOUT.gdt + 8 * i, this.gdt[i]!));
    for (let v = 32; v < LAYOUT.idtEntries; v++) {
      out.push(
        ...storeDesc(LAYOUT.idt + 8 * v, this.idt[v] ?? (r.chance(0.3) ? randomDesc(r, targets) : EMPTY)),
      );
    }
    this.ldt.forEach((d, k) => {
      out.push(...storeDesc(LAYOUT.ldt + 8 * k, d));
    });
    return out;
  }

  /** The LDT entry rewritten at run time (its last, when it has more than one), or -1. */
  get volatileLdt(): number {
    return this.ldt.length > 1 ? this.ldt.length - 1 : -1;
  }

  /** The descriptor a selector names, if it is the same for the whole run. */
  known(sel: number): Desc | undefined {
    const i = sel >>> 3;
    if (sel & 4) return i === this.volatileLdt ? undefined : this.ldt[i];
    return this.volatile.includes(i) ? undefined : this.gdt[i];
  }

  /** An RPL for `sel` loaded at CPL `ring` (into SS with `forSs`): see the header. */
  rpl(ring: number, sel: number, forSs = false): number {
    const p = this.r.int(4);
    if (p <= ring) return p;
    const d = this.known(sel);
    if (d === undefined) return ring;
    if (!d.present) return p;
    if (forSs) return d.kind === 'data' && d.rw ? ring : p;
    if (!d.loadable || d.conforming || p <= d.dpl || d.dpl < ring) return p;
    return ring;
  }

  /** A selector for MOV/POP sreg at CPL `ring`: flat data mostly, else any entry, null, past the limit, the LDT. */
  dataSel(ring: number, forSs = false): number {
    const r = this.r;
    const kind = r.weighted([
      [10, 'flat'],
      [4, 'gdt'],
      [this.noVolatileLoads ? 0 : 1, 'volatile'],
      [1, 'null'],
      [1, 'limit'],
      [this.ldt.length > 0 ? 2 : 0, 'ldt'],
    ] as const);
    let sel: number;
    switch (kind) {
      case 'flat':
        sel = forSs ? DATA[ring]! : r.chance(0.1) ? 0x70 : DATA[r.int(4)]!;
        break;
      case 'gdt':
        sel = r.range(1, LAYOUT.gdtEntries - 1) << 3;
        if (this.noVolatileLoads && this.volatile.includes(sel >>> 3)) sel = DATA[ring]!;
        break;
      case 'volatile':
        sel = this.volatile.length > 0 ? r.pick(this.volatile) << 3 : 0;
        break;
      case 'null':
        return r.int(4);
      case 'limit':
        sel = r.range(LAYOUT.gdtEntries, 0x1fff) << 3;
        break;
      default:
        sel = (r.int(this.ldt.length + 1) << 3) | 4;
    }
    // A stack stays in the stack pages, where native pushes are checked (known.ts): SS is loaded
    // with the ring's flat stack or with what it refuses (a writable data segment of the ring's
    // DPL, or an unknown one, could be accepted).
    if (forSs && sel !== DATA[ring]) {
      const i = sel >>> 3;
      const d = this.known(sel);
      const changes = sel & 4 ? i === this.volatileLdt : this.volatile.includes(i);
      if (changes || (d?.kind === 'data' && d.rw && d.present && d.dpl === ring)) sel = DATA[ring]!;
    }
    return sel | this.rpl(ring, sel, forSs);
  }

  /** Flat, present code selectors of the fuzzer's entries that `ok` accepts, and the scaffold's of `ring`. */
  private code(ring: number, ok: (d: Desc) => boolean): number[] {
    const out: number[] = [CODE[ring]!];
    for (let i = LAYOUT.firstFree; i < LAYOUT.gdtEntries; i++) {
      const d = this.gdt[i];
      if (
        d !== undefined &&
        !this.volatile.includes(i) &&
        d.kind === 'code' &&
        d.flat &&
        d.present &&
        ok(d)
      ) {
        out.push(i << 3);
      }
    }
    return out;
  }

  /**
   * Code that ring `ring` may jump to directly (RPL <= CPL): non-conforming of its ring, or
   * conforming of DPL <= ring (not outside ring 0 with `noConforming`).
   */
  codeSel(ring: number, noConforming: boolean): number {
    const sels = this.code(ring, (d) =>
      d.conforming ? d.dpl <= ring && !(noConforming && ring > 0) : d.dpl === ring,
    );
    return this.r.pick(sels) | this.r.int(ring + 1);
  }

  /**
   * What a broken transfer at CPL `ring` names instead of code: data, null, the TSS, a gate, past
   * the limit. (Any code, even where a transfer to it succeeds, would run a block in a ring it was
   * not written for.)
   */
  badCode(ring: number): number {
    const r = this.r;
    const sel = r.pick([DATA[ring]!, 0, 0x48, 0x50, r.range(LAYOUT.gdtEntries, 0x1fff) << 3]);
    return sel | r.int(ring + 1);
  }

  /** A flat non-conforming code selector of ring `ring` (gates, return frames), RPL 0. */
  ringCode(ring: number): number {
    return this.r.pick(this.code(ring, (d) => !d.conforming && d.dpl === ring));
  }

  /** A free IDT vector in 32..47, or -1. */
  freeVector(): number {
    for (let k = 0; k < 4; k++) {
      const v = 32 + this.r.int(LAYOUT.idtEntries - 32);
      if (this.idt[v] === undefined) return v;
    }
    return -1;
  }
}
