/**
 * The fuzzer's program generator (issue 4, differential fuzzing): from a seed, a small four-ring
 * guest in assembly on scaffold.s. It runs a chain of blocks, each in a ring (0..3), joined by the
 * transfers of the protection rules: near and far jumps, far calls to code and through call gates
 * (the scaffold's and random ones it puts in the GDT), INT n through random IDT gates, RETF and
 * IRET frames built on the stack. Each block mixes the operations of ops.ts with checkpoints that
 * print a digest of the registers, far calls to subroutines of other rings, INT n to handlers of
 * other rings, near calls, loops and branches; a quarter of the programs turn paging on
 * (paging.ts). The runtime (runtime.ts) prints every fault and resumes after it; the program ends
 * by printing its registers.
 *
 * The generator keeps clear of the known differences of ring compression (known.ts) wherever one
 * would spread (tables.ts for selectors, ops.ts for the sensitive instructions); a witness program
 * (witness.ts) carries one at `fz_witness`. It also keeps clear of the open VMM bugs it is told to
 * avoid (bugs.ts).
 */
import { hasErrorCode } from '../../../src/cpu/faults.js';
import { JCC } from '../../../src/cpu/isa.js';
import type { BugId } from './bugs.js';
import { callGate, hex, intGate, type Target } from './descriptors.js';
import { Ops, REGS } from './ops.js';
import { pagingSetup } from './paging.js';
import { Rng } from './prng.js';
import { CHECKPOINT_GATE, FINAL_GATE, IDT_SETUP, LAYOUT, RUNTIME } from './runtime.js';
import { DATA, GuestTables } from './tables.js';
import { type WitnessKind, witnessLines } from './witness.js';

/**
 * Exception vectors an INT n may name: those without an error code. The runtime's handlers of the
 * others read one, which INT n does not push, and would resume with a misread frame (its EFLAGS as
 * CS: 0x82, RPL 2 for ring-0 code), which the bare machine refuses and a VE, where RPL 2 is ring 0's
 * real ring, takes (docs/vmm.md, "RPL 2 in virtual ring 0"; a long run, seed 7 program 370).
 */
const SOFT_EXCEPTION_VECTORS = Array.from({ length: 32 }, (_, v) => v).filter((v) => !hasErrorCode(v));

export interface FuzzProgram {
  readonly seed: number;
  /** The assembly for scaffold.s's `main` (setup, blocks, subroutines, runtime). */
  readonly main: string;
  /** GDT entries from 0x78 on (entry 15: the final gate; 16..63: the fuzzer's). */
  readonly gdt: string;
  /** The ring of each block, in order. */
  readonly rings: readonly number[];
  /** The guest turns paging on. */
  readonly paging: boolean;
  /** The known difference this program carries at `fz_witness`, if any. */
  readonly witness: WitnessKind | undefined;
}

export interface GenerateOptions {
  /** Carry one instance of this known difference (a witness program). */
  readonly witness?: WitnessKind;
  /** Open bugs to keep clear of (bugs.ts). */
  readonly avoid?: ReadonlySet<BugId>;
}

/** After a transfer or a return: if it faulted, the handler resumes here, and the program ends. */
const GUARD = `        callf ${FINAL_GATE}:0`;

export function generate(seed: number, opts: GenerateOptions = {}): FuzzProgram {
  return new Generator(seed, opts.witness, opts.avoid ?? new Set()).program();
}

class Generator {
  private readonly r: Rng;
  private readonly t: GuestTables;
  private readonly ops: Ops;
  private readonly paging: boolean;
  private readonly gdtCopy: boolean;
  private labelNo = 0;
  private readonly nearSubs: string[][] = [[], [], [], []];
  /** Far subroutines of each ring: the selector of the call gate to each. */
  private readonly farSubs: number[][] = [[], [], [], []];
  private readonly isrs: { readonly vector: number; readonly ring: number }[] = [];
  /** Subroutines and handlers, emitted after the blocks. */
  private readonly tail: string[] = [];
  /** Labels a gate or vector may point at. */
  private readonly targets: Target[] = [
    { label: 'fz_final', ring: 0 },
    { label: 'r0_entry', ring: 0 },
    { label: 'r1_entry', ring: 1 },
    { label: 'r2_entry', ring: 2 },
  ];
  private witnessPlaced = false;

  constructor(
    private readonly seed: number,
    private readonly witness: WitnessKind | undefined,
    private readonly avoid: ReadonlySet<BugId>,
  ) {
    this.r = new Rng(seed);
    this.t = new GuestTables(this.r, avoid.has('vedt-overwrite-cache'));
    this.t.populate(this.targets);
    this.gdtCopy = this.r.chance(0.15);
    this.paging = this.r.chance(0.25);
    this.ops = new Ops(this.r, {
      tables: this.t,
      targets: this.targets,
      paging: this.paging,
      gdtCopy: this.gdtCopy,
      avoid,
    });
  }

  program(): FuzzProgram {
    const r = this.r;
    const nBlocks = r.range(2, 7);
    const rings = [0];
    for (let i = 1; i < nBlocks; i++) rings.push(r.chance(0.25) ? rings[i - 1]! : r.int(4));
    const witnessBlock = this.witness === undefined ? -1 : r.int(nBlocks);
    for (let j = 0; j < 4; j++) {
      for (let k = r.int(3); k > 0; k--) this.makeFarSub(j);
      for (let k = r.int(3); k > 0; k--) this.makeNearSub(j);
    }
    this.makeIsrs();
    const blocks: string[] = [];
    for (let i = 0; i < nBlocks; i++) {
      const ring = rings[i]!;
      blocks.push(
        `fz_b${i}:`,
        ...this.block(ring, i === witnessBlock),
        ...(i + 1 < nBlocks ? this.transfer(ring, rings[i + 1]!, `fz_b${i + 1}`) : []),
        GUARD,
      );
    }
    const main = [
      'main:',
      ...this.setup(),
      ...blocks,
      ...this.farSub('r1_entry', 1, 0),
      ...this.farSub('r2_entry', 2, 0),
      ...this.tail,
      RUNTIME,
    ].join('\n');
    return {
      seed: this.seed,
      main,
      gdt: this.t.gdtText(),
      rings,
      paging: this.paging,
      witness: this.witnessPlaced ? this.witness : undefined,
    };
  }

  private label(prefix: string): string {
    return `fz_${prefix}${this.labelNo++}`;
  }

  /** `main`'s setup (ring 0, DS = ES = SS = 0x10): IDT, tables, LDT, a GDT copy, paging, registers. */
  private setup(): string[] {
    const r = this.r;
    const out = [IDT_SETUP, ...this.t.setup(this.targets), '        lidt [cs:fz_idtr]'];
    if (this.t.ldtSel !== 0 && r.chance(0.5))
      out.push(`        mov eax, ${hex(this.t.ldtSel)}`, '        lldt eax');
    if (this.gdtCopy) {
      out.push(
        `        mov esi, ${LAYOUT.gdt}`,
        `        mov edi, ${LAYOUT.gdtCopy}`,
        `        mov ecx, ${LAYOUT.gdtEntries * 2}`,
        '.gcopy: ld eax, [esi]',
        '        st [edi], eax',
        '        add esi, 4',
        '        add edi, 4',
        '        dec ecx',
        '        jnz .gcopy',
      );
    }
    if (this.paging) out.push(...pagingSetup(r, this.avoid.has('descriptor-accessed')));
    for (const reg of REGS) out.push(`        mov ${reg}, ${this.ops.imm()}`);
    return out;
  }

  // ---- blocks ----

  private block(ring: number, witness: boolean): string[] {
    const r = this.r;
    const out: string[] = [];
    const n = r.range(4, 24);
    const at = witness ? r.int(n + 1) : -1;
    for (let i = 0; i <= n; i++) {
      if (i === at) out.push(...this.witnessAt(ring));
      if (i === n) break;
      const kind = r.weighted([
        [12, 'op'],
        [1, 'checkpoint'],
        [2, 'farsub'],
        [1, 'nearsub'],
        [2, 'int'],
        [2, 'loop'],
        [2, 'branch'],
      ] as const);
      switch (kind) {
        case 'op':
          out.push(...this.ops.op(ring, new Set()));
          break;
        case 'checkpoint':
          // From rings 0-2 a native call (native-frame-rpl); from ring 3 its frame is the bare one.
          if (ring < 3 && this.avoid.has('native-frame-rpl')) break;
          out.push(`        callf ${hex((r.chance(0.8) ? CHECKPOINT_GATE : 0x68) | r.int(ring + 1))}:0`);
          break;
        case 'farsub':
          out.push(...this.farCall(ring));
          break;
        case 'nearsub': {
          const subs = this.nearSubs[ring]!;
          if (subs.length > 0) out.push(`        call ${r.pick(subs)}`);
          break;
        }
        case 'int': {
          const ok = this.isrs.filter((x) => x.ring <= ring);
          const v = r.weighted([
            [12, ok.length > 0 ? r.pick(ok).vector : 32 + r.int(16)],
            [1, 32 + r.int(16)],
            [1, r.pick(SOFT_EXCEPTION_VECTORS)],
            [1, LAYOUT.idtEntries + r.int(256 - LAYOUT.idtEntries)],
          ] as const);
          // The handlers resume 8 bytes past the return EIP, which for a software interrupt is past
          // the INT already: the NOP after it is what they skip.
          out.push(r.chance(0.1) ? '        int3' : `        int ${hex(v)}`, '        nop');
          break;
        }
        case 'loop': {
          const counter = this.ops.reg(new Set());
          const l = this.label('l');
          out.push(
            `        mov ${counter}, ${r.range(1, 6)}`,
            `${l}:`,
            ...this.ops.body(ring, r.range(1, 5), new Set([counter])),
            `        dec ${counter}`,
            `        jnz ${l}`,
          );
          break;
        }
        default: {
          const l = this.label('s');
          out.push(
            `        ${r.pick(['cmp', 'test'])} ${r.pick(REGS)}, ${this.ops.imm()}`,
            `        ${r.pick(JCC)} ${l}`,
            ...this.ops.body(ring, r.range(1, 4)),
            `${l}:`,
          );
        }
      }
    }
    return out;
  }

  /** A far call to a subroutine of ring `j <= ring` mostly (of an outer ring, #GP, sometimes). */
  private farCall(ring: number): string[] {
    const r = this.r;
    let j = r.chance(0.9) ? r.int(ring + 1) : r.int(4);
    // Calls from rings 0-2 to their own ring or to ring 0 are native: their frame has the real RPL.
    if (ring < 3 && (j === ring || j === 0) && this.avoid.has('native-frame-rpl')) {
      if (ring !== 2) return [];
      j = 1;
    }
    const gates = this.farSubs[j]!;
    if (gates.length === 0) return j === 1 || j === 2 ? [`        callf ${j === 1 ? '0x50' : '0x58'}:0`] : [];
    return [`        callf ${hex(r.pick(gates) | r.int(ring + 1))}:${hex(r.int(0x100))}`];
  }

  private witnessAt(ring: number): string[] {
    if (this.witness === undefined || this.witnessPlaced) return [];
    const a = this.ops.reg(new Set());
    const s = this.ops.reg(new Set([a]));
    const lines = witnessLines(this.witness, ring, this.r, this.t, a, s, this.ops.flags());
    if (lines.length > 0) this.witnessPlaced = true;
    return lines;
  }

  /** The transfer from a block of ring `from` to the block `target` of ring `to` (6%: a broken one). */
  private transfer(from: number, to: number, target: string): string[] {
    const r = this.r;
    const t = this.t;
    const broken = r.chance(0.06);
    const noConforming = this.avoid.has('conforming-return');
    // A frame a native far call pushes in rings 0-2 is never popped by the blocks, but a RETF reached
    // through a random gate may pop it (bugs.ts, native-frame-rpl): those calls become jumps or INT.
    const nativeFrames = from < 3 && this.avoid.has('native-frame-rpl');
    const callf = nativeFrames ? 'jmpf' : 'callf';
    if (to === from) {
      switch (r.int(5)) {
        case 0:
          return [`        jmp ${target}`];
        case 1:
          return [`        jmpf ${hex(broken ? t.badCode(from) : t.codeSel(from, noConforming))}:${target}`];
        case 2:
          // Never returned from: the frame stays on the stack.
          return [`        ${callf} ${hex(t.codeSel(from, noConforming))}:${target}`];
        case 3: {
          const g = t.alloc(callGate(target, t.ringCode(from), r.int(3), r.range(from, 3)));
          if (g < 0) return [`        jmp ${target}`];
          return [`        ${r.pick(['jmpf', callf])} ${hex((g << 3) | r.int(from + 1))}:0`];
        }
        default: {
          const cs = t.ringCode(from) | from;
          return r.chance(0.5)
            ? [`        push ${hex(cs)}`, `        push ${target}`, '        retf']
            : [
                `        push ${hex(this.ops.flags())}`,
                `        push ${hex(cs)}`,
                `        push ${target}`,
                '        iret',
              ];
        }
      }
    }
    if (to < from) {
      // Inward: a call gate or an interrupt gate of DPL >= from (broken: a lower DPL, or no code target).
      const sel = broken ? t.badCode(0) : t.ringCode(to);
      const dpl = broken && r.chance(0.5) ? r.int(from + 1) : r.range(from, 3);
      const vector = r.chance(0.4) || (nativeFrames && to === 0) ? t.freeVector() : -1;
      if (vector >= 0) {
        t.idt[vector] = intGate(target, sel, r.chance(0.5), dpl);
        return [`        int ${hex(vector)}`];
      }
      if (nativeFrames && to === 0) return [];
      const g = t.alloc(callGate(target, sel, r.int(3), dpl));
      if (g < 0) return [];
      return [`        callf ${hex((g << 3) | r.int(from + 1))}:${hex(r.int(0x1000))}`];
    }
    // Outward: a RETF (releasing 0-2 parameters) or IRET frame with the new ring's stack.
    const cs = broken && r.chance(0.5) ? t.badCode(from) : t.ringCode(to) | to;
    const ss = broken && r.chance(0.5) ? t.dataSel(to, true) : DATA[to]! | to;
    const lines = [`        push ${hex(ss)}`, `        push ${hex(LAYOUT.stacks[to]! - 4 * r.int(64))}`];
    if (r.chance(0.5)) {
      const extra = r.int(3);
      for (let k = 0; k < extra; k++) lines.push(`        push ${this.ops.imm()}`);
      lines.push(
        `        push ${hex(cs)}`,
        `        push ${target}`,
        extra > 0 ? `        retf ${4 * extra}` : '        retf',
      );
    } else {
      lines.push(
        `        push ${hex(this.ops.flags())}`,
        `        push ${hex(cs)}`,
        `        push ${target}`,
        '        iret',
      );
    }
    return lines;
  }

  // ---- subroutines and handlers ----

  private makeNearSub(ring: number): void {
    const l = this.label(`n${ring}_`);
    this.nearSubs[ring]!.push(l);
    this.tail.push(`${l}:`, ...this.ops.body(ring, this.r.range(1, 6)), '        ret', GUARD);
  }

  /** A far subroutine of ring `ring` behind a new call gate with 0-2 parameters. */
  private makeFarSub(ring: number): void {
    const r = this.r;
    const l = this.label(`f${ring}_`);
    const params = r.int(3);
    const g = this.t.alloc(callGate(l, this.t.ringCode(ring), params, r.chance(0.8) ? 3 : r.range(ring, 3)));
    if (g < 0) return;
    this.targets.push({ label: l, ring });
    this.farSubs[ring]!.push(g << 3);
    this.tail.push(...this.farSub(l, ring, params));
  }

  /** A far subroutine's code: a body, RETF releasing its parameters (r1_entry, r2_entry: none). */
  private farSub(label: string, ring: number, params: number): string[] {
    const ret = params > 0 ? `        retf ${4 * params}` : '        retf';
    return [`${label}:`, ...this.ops.body(ring, this.r.range(1, 8)), ret, GUARD];
  }

  /** Interrupt handlers on vectors 32..47: a body, IRET. */
  private makeIsrs(): void {
    const r = this.r;
    for (let k = r.range(1, 4); k > 0; k--) {
      const v = this.t.freeVector();
      if (v < 0) continue;
      let ring = r.int(4);
      // Conforming code runs at the interrupted CPL, at least its DPL: the body is written for that
      // least ring (RPLs up to it are safe above). Not with paging: a ring-0 body could then run
      // above ring 0 and fault on INVLPG after its page-table write.
      const conforming = r.chance(0.1) && !this.paging && !this.avoid.has('conforming-return');
      const sel = conforming ? this.t.codeSel(ring, false) & ~3 : this.t.ringCode(ring);
      const d = this.t.gdt[sel >>> 3];
      if (d?.conforming) ring = d.dpl;
      const l = this.label(`i${ring}_`);
      this.t.idt[v] = intGate(l, sel, r.chance(0.5), r.chance(0.7) ? 3 : r.int(4), r.chance(0.95));
      this.isrs.push({ vector: v, ring });
      this.tail.push(`${l}:`, ...this.ops.body(ring, r.range(1, 6)), '        iret', GUARD);
    }
  }
}
