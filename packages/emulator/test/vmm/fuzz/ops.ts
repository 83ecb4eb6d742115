/**
 * Straight-line operations for a fuzz guest at a given CPL: ALU, loads and stores through the
 * segment registers, MOV/POP sreg, the flags, port I/O, the inspection and privileged instructions,
 * descriptor rewrites, paging operations, invalid encodings. Each either falls through or faults
 * (the runtime's handler resumes after it); none leaves the current code.
 *
 * What ring compression lets native code see (known.ts) is masked before anything uses it: MOV
 * r,CS/SS and PUSH CS/SS (the real RPL), PUSHF (the real IOPL), LAR/LSL/VERR/VERW (the shadow
 * descriptor, at the real CPL); a stack slot that held such a value is overwritten.
 */
import type { BugId } from './bugs.js';
import { HIGH_LIMIT_MIN, hex, LOW_LIMIT, randomDesc, SCRATCH, type Target } from './descriptors.js';
import { PAGE_DIR, pagingOp } from './paging.js';
import type { Rng } from './prng.js';
import { LAYOUT } from './runtime.js';
import { DATA, type GuestTables } from './tables.js';

export const REGS = ['eax', 'ecx', 'edx', 'ebx', 'ebp', 'esi', 'edi'] as const;
export type Reg = (typeof REGS)[number];
export const DATA_SREGS = ['es', 'ds', 'fs', 'gs'] as const;
const MEM_SEGS = ['es', 'ds', 'fs', 'gs', 'ss', 'cs', 'ds', 'ds'] as const;
const ALU = ['add', 'sub', 'and', 'or', 'xor', 'cmp', 'test', 'shl', 'shr', 'sar', 'mul'] as const;

/** What the operations depend on besides the random source. */
export interface OpsContext {
  readonly tables: GuestTables;
  /** Labels a rewritten gate may point at. */
  readonly targets: readonly Target[];
  /** The guest runs with paging on (paging.ts). */
  readonly paging: boolean;
  /** `main` made a copy of the GDT that LGDT may load. */
  readonly gdtCopy: boolean;
  readonly avoid: ReadonlySet<BugId>;
}

export class Ops {
  constructor(
    private readonly r: Rng,
    private readonly c: OpsContext,
  ) {}

  imm(): string {
    const r = this.r;
    return hex(
      r.weighted([
        [4, r.int(17)],
        [3, r.next()],
        [1, r.pick([0, 0xffffffff, 0x80000000, 0x7fffffff, 1, 0xff])],
        [1, SCRATCH + r.int(0x8000)],
      ]),
    );
  }

  /**
   * A memory offset: the scratch area, low memory, near a segment limit, past RAM or the ROM. Data
   * segments have base 0 or one in the scratch area, so no access reaches the GDT, IDT, TSS, stacks
   * or page tables but on purpose, nor the VM manager's reserved range.
   */
  private disp(): number {
    const r = this.r;
    return r.weighted([
      [10, SCRATCH + r.int(0x8000)],
      [2, r.int(0x1000)],
      [2, r.pick([0xfff, 0xffff, LOW_LIMIT, HIGH_LIMIT_MIN]) - 4 + r.int(8)],
      [1, 0x10_0000 + r.int(0x100_0000)],
      [1, 0xffff_0000 + r.int(0x1_0000)],
    ] as const);
  }

  private mem(reserved: ReadonlySet<string>, forWrite: boolean): { pre: string[]; op: string } {
    const r = this.r;
    let seg: string = r.pick(MEM_SEGS);
    if (forWrite && seg === 'cs') seg = 'ds';
    const d = this.disp();
    if (r.chance(0.3)) {
      const base = this.reg(reserved);
      const k = r.int(16);
      return { pre: [`        mov ${base}, ${hex(d - k)}`], op: `[${seg}:${base}+${k}]` };
    }
    return { pre: [], op: `[${seg}:${hex(d)}]` };
  }

  /** A general register other than ESP and the `reserved` ones. */
  reg(reserved: ReadonlySet<string>): Reg {
    return this.r.pick(REGS.filter((x) => !reserved.has(x)));
  }

  /** EFLAGS for POPF and IRET frames: the status flags, IF, IOPL, sometimes TF, NT or junk. */
  flags(): number {
    const r = this.r;
    let f = 2 | (r.next() & 0x0cd5);
    if (r.chance(0.1)) f |= 0x100;
    if (r.chance(0.5)) f |= 0x200;
    f |= (this.c.avoid.has('popf-iopl') ? r.pick([0, 2, 3]) : r.int(4)) << 12;
    if (r.chance(0.03)) f |= 0x4000; // NT: the next IRET faults (no task switching)
    if (r.chance(0.1)) f |= r.next() & 0xffff_8000;
    return f >>> 0;
  }

  /** `n` operations at CPL `ring`. */
  body(ring: number, n: number, reserved: ReadonlySet<string> = new Set()): string[] {
    const out: string[] = [];
    for (let k = 0; k < n; k++) out.push(...this.op(ring, reserved));
    return out;
  }

  /** One operation at CPL `ring`; `reserved` registers are not written (a loop counter). */
  op(ring: number, reserved: ReadonlySet<string>): string[] {
    const r = this.r;
    const t = this.c.tables;
    const dst = () => this.reg(reserved);
    const any = () => r.pick(REGS);
    const kind = r.weighted([
      [10, 'alu'],
      [8, 'alui'],
      [3, 'unary'],
      [4, 'mov'],
      [2, 'div'],
      [6, 'load'],
      [5, 'store'],
      [2, 'byte'],
      [1, 'lea'],
      [2, 'pushpop'],
      [5, 'sreg'],
      [1, 'popsreg'],
      [2, 'readsreg'],
      [2, 'flags'],
      [ring === 0 ? 2 : 1, 'clisti'],
      [ring === 0 ? 3 : 1, 'io'],
      [2, 'inspect'],
      [2, 'store-table'],
      [ring === 0 ? 5 : 1, 'system'],
      [ring === 0 && this.c.paging ? 3 : 0, 'paging'],
      [2, 'rewrite'],
      [1, 'bad'],
      [1, 'nop'],
    ] as const);
    switch (kind) {
      case 'alu':
        return [`        ${r.pick(ALU)} ${dst()}, ${any()}`];
      case 'alui':
        return [`        ${r.pick(ALU)} ${dst()}, ${this.imm()}`];
      case 'unary':
        return [`        ${r.pick(['neg', 'not', 'inc', 'dec'])} ${dst()}`];
      case 'mov':
        return [r.chance(0.5) ? `        mov ${dst()}, ${this.imm()}` : `        mov ${dst()}, ${any()}`];
      case 'div':
        return [`        ${r.pick(['divu', 'remu'])} ${dst()}, ${r.chance(0.5) ? hex(r.int(4)) : any()}`];
      case 'load': {
        const m = this.mem(reserved, false);
        return [...m.pre, `        ld ${dst()}, ${m.op}`];
      }
      case 'store': {
        const m = this.mem(reserved, true);
        return [...m.pre, `        st ${m.op}, ${any()}`];
      }
      case 'byte': {
        const m = this.mem(reserved, r.chance(0.5));
        return r.chance(0.5) && !m.op.startsWith('[cs')
          ? [...m.pre, `        stb ${m.op}, ${any()}`]
          : [...m.pre, `        ldb ${dst()}, ${m.op}`];
      }
      case 'lea': {
        const m = this.mem(reserved, false);
        return [...m.pre, `        lea ${dst()}, ${m.op}`];
      }
      case 'pushpop':
        return [`        push ${r.chance(0.5) ? any() : this.imm()}`, `        pop ${dst()}`];
      case 'sreg': {
        const ss = r.chance(0.12);
        const a = dst();
        return [
          `        mov ${a}, ${hex(t.dataSel(ring, ss))}`,
          `        mov ${ss ? 'ss' : r.pick(DATA_SREGS)}, ${a}`,
        ];
      }
      case 'popsreg': {
        // ESP comes back from a register: a POP that faults leaves the pushed dword behind.
        const a = dst();
        return [
          `        mov ${a}, esp`,
          `        push ${hex(t.dataSel(ring))}`,
          `        pop ${r.pick(DATA_SREGS)}`,
          `        mov esp, ${a}`,
        ];
      }
      case 'readsreg': {
        const a = dst();
        if (r.chance(0.5)) return [`        mov ${a}, ${r.pick(DATA_SREGS)}`];
        const s = r.pick(['cs', 'ss']);
        return r.chance(0.5)
          ? [`        mov ${a}, ${s}`, `        and ${a}, 0xfffc`]
          : [
              `        push ${s}`,
              `        pop ${a}`,
              `        and ${a}, 0xfffc`,
              `        push ${a}`,
              `        pop ${a}`,
            ];
      }
      case 'flags': {
        const a = dst();
        if (r.chance(0.5)) {
          return [
            '        pushf',
            `        pop ${a}`,
            `        and ${a}, 0xffffcfff`,
            `        push ${a}`,
            `        pop ${a}`,
          ];
        }
        return [
          `        mov ${a}, esp`,
          `        push ${hex(this.flags())}`,
          '        popf',
          `        mov esp, ${a}`,
        ];
      }
      case 'clisti':
        return [r.chance(0.5) ? '        cli' : '        sti'];
      case 'io':
        return this.io(reserved);
      case 'inspect': {
        const s = dst();
        const a = this.reg(new Set([...reserved, s]));
        const sel = r.chance(0.8) ? t.dataSel(r.int(4)) : r.int(0x10000);
        const op = r.pick(['lar', 'lsl', 'verr', 'verw']);
        return [
          `        mov ${s}, ${hex(sel)}`,
          op === 'lar' || op === 'lsl' ? `        ${op} ${a}, ${s}` : `        ${op} ${s}`,
          `        mov ${a}, ${this.imm()}`,
          `        test ${a}, ${a}`,
        ];
      }
      case 'store-table': {
        if (r.chance(0.6)) {
          const m = this.mem(reserved, true);
          return [...m.pre, `        ${r.pick(['sgdt', 'sidt'])} ${m.op}`];
        }
        return [`        ${r.pick(['sldt', 'str', 'smsw'])} ${dst()}`];
      }
      case 'system':
        return this.system(reserved);
      case 'paging':
        return pagingOp(r, dst());
      case 'rewrite':
        return this.rewrite(ring, reserved);
      case 'bad':
        // #UD: an unknown opcode, opcode 0, a must-be-0 field set.
        return [
          r.pick(['        .dword 0x000000ff, 0', '        .dword 0, 0', '        .dword 0x00000101, 0']),
        ];
      default:
        return ['        nop'];
    }
  }

  private io(reserved: ReadonlySet<string>): string[] {
    const r = this.r;
    const a = this.reg(reserved);
    const p = this.reg(new Set([...reserved, a]));
    const port = r.weighted([
      [6, 0x3f8],
      [2, 0x3f9],
      [1, 0x3fa],
      [1, 0x3fb],
      [1, 0x80],
      [1, 0x20 + r.int(7)],
    ] as const);
    const viaReg = r.chance(0.3);
    if (r.chance(0.55) && port >= 0x3f8) {
      // Console: a lower-case letter, the input interrupt enable, or a byte to a read-only port.
      const v = port === 0x3f8 ? 0x61 + r.int(26) : port === 0x3fa ? r.int(2) : r.int(256);
      return viaReg
        ? [`        mov ${a}, ${hex(v)}`, `        mov ${p}, ${hex(port)}`, `        out ${p}, ${a}`]
        : [`        mov ${a}, ${hex(v)}`, `        out ${hex(port)}, ${a}`];
    }
    return viaReg
      ? [`        mov ${p}, ${hex(port)}`, `        in ${a}, ${p}`]
      : [`        in ${a}, ${hex(port)}`];
  }

  /** Privileged and system instructions (at CPL > 0 each raises #GP, as on the bare machine). */
  private system(reserved: ReadonlySet<string>): string[] {
    const r = this.r;
    const t = this.c.tables;
    const a = this.reg(reserved);
    switch (r.int(12)) {
      case 0:
        return [`        mov ${a}, ${r.pick(['cr0', 'cr2', 'cr3', 'cr4', 'cr0', 'cr1'])}`];
      case 1:
        // Any bit of CR0 but PG (paging.ts turns paging on and off).
        return [
          `        mov ${a}, cr0`,
          `        xor ${a}, ${hex(r.next() & 0x7fff_fffe)}`,
          `        mov cr0, ${a}`,
        ];
      case 2:
        // With paging on, CR3 is only reloaded: another page directory would be garbage.
        if (this.c.paging && r.chance(0.5))
          return [`        mov ${a}, ${hex(PAGE_DIR)}`, `        mov cr3, ${a}`];
        return [
          `        mov ${a}, ${this.imm()}`,
          `        mov ${this.c.paging ? 'cr2' : r.pick(['cr2', 'cr3'])}, ${a}`,
        ];
      case 3:
        return [
          `        mov ${a}, ${hex(r.pick([0, 2, 4, 0x800, 0x802, 0x806, r.next()]))}`,
          `        mov cr4, ${a}`,
        ];
      case 4:
        return ['        clts'];
      case 5: {
        const m = this.mem(reserved, false);
        return [...m.pre, `        invlpg ${m.op}`];
      }
      case 6: {
        const sel = r.weighted([
          [3, t.ldtSel],
          [1, 0],
          [1, t.dataSel(0)],
          [1, t.ldtSel | 4],
        ] as const);
        return [`        mov ${a}, ${hex(sel)}`, `        lldt ${a}`];
      }
      case 7: {
        const sel = r.chance(0.7) && t.tss2Sel !== 0 ? t.tss2Sel : r.pick([0x48, 0, t.dataSel(0)]);
        return [`        mov ${a}, ${hex(sel)}`, `        ltr ${a}`];
      }
      case 8: {
        const gdtr = r.weighted([
          [4, 'fz_gdtr'],
          [1, 'fz_gdtr_small'],
          [1, 'fz_gdtr_odd'],
          [this.c.gdtCopy ? 3 : 0, 'fz_gdtr_copy'],
        ] as const);
        return [`        lgdt [cs:${gdtr}]`];
      }
      case 9:
        return [`        lidt [cs:${r.chance(0.8) ? 'fz_idtr' : 'fz_idtr_small'}]`];
      case 10:
        return [r.chance(0.1) ? '        hlt' : '        nop'];
      default: {
        const m = this.mem(reserved, false);
        return [...m.pre, `        ${r.pick(['lgdt', 'lidt'])} ${m.op}`];
      }
    }
  }

  /** Rewrites a volatile GDT (or LDT) entry with a random descriptor, through the ring's flat data. */
  private rewrite(ring: number, reserved: ReadonlySet<string>): string[] {
    const r = this.r;
    const t = this.c.tables;
    if (t.volatile.length === 0) return ['        nop'];
    const a = this.reg(reserved);
    const at =
      r.chance(0.85) || t.volatileLdt < 0
        ? LAYOUT.gdt + 8 * r.pick(t.volatile)
        : LAYOUT.ldt + 8 * t.volatileLdt;
    const d = randomDesc(r, this.c.targets);
    return [
      `        mov ${a}, ${hex(DATA[ring]! | ring)}`,
      `        mov es, ${a}`,
      `        mov ${a}, ${d.lo}`,
      `        st [es:${hex(at)}], ${a}`,
      `        mov ${a}, ${hex(d.hi)}`,
      `        st [es:${hex(at + 4)}], ${a}`,
    ];
  }
}
