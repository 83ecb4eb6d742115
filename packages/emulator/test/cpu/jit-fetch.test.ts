/**
 * The run loop's code windows (exec.ts, CodeWindow in cpu.ts) with and without blocks: random
 * programs spread over three pages of one code segment (near jumps, calls and returns between them,
 * one run of instructions straddling a page at EIP = 4 mod 8), with CS bases that are not page
 * aligned, CS limits that end inside a page, the pages mapped to other frames, stores into the code,
 * segment loads of good and null selectors, far CALLs straight to the code segment (which the fast
 * path always declines: the block is cut short, `Jit.declined`), INT n; with breakpoints, a trace
 * hook, interrupts and `exitSoftware` changed between runs. Each run must end with the same result,
 * state, count and memory with blocks (compiled at the first visit) as without.
 */
import { describe, expect, it } from 'vitest';
import { segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { run } from '../../src/cpu/exec.js';
import { NO_BASE, R, S } from '../../src/cpu/isa.js';
import {
  ALU,
  code,
  EDGES,
  enablePaging,
  enc,
  faultHandlers,
  HANDLERS,
  IrqStub,
  idtGate,
  JCC,
  loadCache,
  type Machine,
  machine,
  machineView,
  PG,
  PT0,
  randomLockstep,
  rng,
  SEL,
  setGdt,
  stacksAndTables,
} from './harness.js';

const DATA = 0x20000;
/** GDT slots of the test's code segment (base and limit per variant) and of a good data segment. */
const CS_SLOT = 18;
const DS_OK = 19;
const MYCS = (ring: number) => (CS_SLOT << 3) | ring;
const MYDS = (ring: number) => (DS_OK << 3) | ring;

interface V {
  name: string;
  ring: 0 | 3;
  paging: boolean;
  /** The code segment's base and byte limit. */
  base: number;
  limit: number;
  /** exitSoftware changed between runs. */
  soft?: boolean;
  /** A breakpoint, a trace hook, an interrupt source set or not between runs. */
  hooks?: boolean;
}
const VARIANTS: V[] = [
  { name: 'r0 flat', ring: 0, paging: false, base: 0, limit: 0xfffff },
  { name: 'r3 paging remap', ring: 3, paging: true, base: 0, limit: 0xfffff },
  { name: 'r0 base 4', ring: 0, paging: false, base: 4, limit: 0xfffff },
  { name: 'r3 base 0x804 paging', ring: 3, paging: true, base: 0x804, limit: 0xfffff },
  { name: 'r0 limit in page', ring: 0, paging: false, base: 0, limit: 0x1289f },
  { name: 'r3 limit in page paging', ring: 3, paging: true, base: 0, limit: 0x1282b },
  { name: 'r3 hooks', ring: 3, paging: true, base: 0, limit: 0xfffff, hooks: true },
  { name: 'r0 base 4 hooks', ring: 0, paging: false, base: 4, limit: 0x1289f, hooks: true },
  { name: 'r3 exitSoftware toggled', ring: 3, paging: true, base: 0, limit: 0xfffff, soft: true },
];
// EIPs of the slots: three regions, one at EIP = 4 mod 8 that straddles a page
const REGIONS = [
  [0x10000, 24],
  [0x11fc4, 16],
  [0x12800, 24],
] as const;
const SLOTS: number[] = REGIONS.flatMap(([at, n]) => Array.from({ length: n }, (_, j) => at + 8 * j));
// linear page -> frame
const REMAP: Record<number, number> = { 16: 0x52, 17: 0x50, 18: 0x51 };
function phys(v: V, lin: number): number {
  if (!v.paging) return lin;
  const f = REMAP[lin >>> 12];
  return f === undefined ? lin : (f << 12) | (lin & 0xfff);
}

function generate(rand: () => number, v: V): Uint8Array[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const dst = () => pick([R.EAX, R.ECX, R.EDX, R.EBX, R.ESI]);
  const any = () => Math.floor(rand() * 8);
  const value = () => (rand() < 0.6 ? pick(EDGES) : Math.floor(rand() * 2 ** 32));
  const slot = () => pick(SLOTS);
  const out: Uint8Array[] = [];
  for (let k = 0; k < SLOTS.length; k++) {
    const x = rand();
    if (x < 0.2) out.push(enc(`${pick(ALU)} reg,reg`, { a: dst(), b: any() }));
    else if (x < 0.32) out.push(enc(`${pick(ALU)} reg,imm`, { a: dst(), imm: value() }));
    else if (x < 0.36) out.push(enc(`${pick(['inc', 'dec', 'neg'])} reg`, { a: dst() }));
    else if (x < 0.4) out.push(enc('mov reg,imm', { a: dst(), imm: rand() < 0.5 ? slot() : value() }));
    else if (x < 0.47)
      out.push(
        enc('ld reg,mem', {
          a: dst(),
          b: NO_BASE,
          c: 0xf,
          imm: rand() < 0.8 ? DATA + 4 * Math.floor(rand() * 256) : v.base + slot() + 4,
        }),
      );
    else if (x < 0.53)
      out.push(
        enc('st mem,reg', {
          a: any(),
          b: NO_BASE,
          c: 0xf,
          imm: rand() < 0.85 ? DATA + 4 * Math.floor(rand() * 256) : v.base + slot() + 4,
        }),
      );
    else if (x < 0.57) out.push(enc('push reg', { a: any() }));
    else if (x < 0.6) out.push(enc('pop reg', { a: dst() }));
    else if (x < 0.7) out.push(enc(`${pick(JCC)} imm`, { imm: slot() }));
    else if (x < 0.74) out.push(enc('jmp imm', { imm: slot() }));
    else if (x < 0.79) out.push(enc('call imm', { imm: slot() }));
    else if (x < 0.83) out.push(enc('ret'));
    else if (x < 0.86) out.push(enc('mov sreg,reg', { a: pick([S.DS, S.ES, S.FS]), b: R.EDI }));
    else if (x < 0.88)
      out.push(enc('xor reg,imm', { a: R.EDI, imm: MYDS(v.ring) })); // toggles EDI good / null
    else if (x < 0.9)
      out.push(enc('callf far', { sel: MYCS(v.ring), imm: slot() })); // straight: always declines
    else if (x < 0.91) out.push(enc('retf'));
    else if (x < 0.93) out.push(enc('int vec', { imm: 0x80 }));
    else out.push(enc('nop'));
  }
  return out;
}

function setUp(v: V, jit: boolean, prog: Uint8Array[], rand: () => number): Machine {
  const m = machine(v.ring, { jit: jit ? { hot: 1 } : false });
  const { cpu } = m;
  setGdt(cpu, CS_SLOT, segmentDescriptor({ base: v.base, limit: v.limit, type: 0xa, dpl: v.ring }));
  setGdt(cpu, DS_OK, segmentDescriptor({ base: 0, limit: 0xfffff, type: 0x2, dpl: v.ring }));
  loadCache(cpu, S.CS, MYCS(v.ring));
  if (v.paging) {
    enablePaging(m);
    for (const [p, f] of Object.entries(REMAP)) {
      m.phys.write32(PT0 + 4 * Number(p), (f << 12) | PG.P | PG.W | PG.U);
      m.phys.write32(PT0 + 4 * f, (Number(p) << 12) | PG.P | PG.W | PG.U); // swap back
    }
    cpu.mmu.flush();
  }
  // handlers: resume after the faulting instruction
  faultHandlers(m);
  idtGate(cpu, 0x80, { type: TYPE.TRAP_GATE, selector: SEL.code(0), offset: HANDLERS + 0x900, dpl: 3 });
  code(m, HANDLERS + 0x900, enc('add reg,imm', { a: R.EBP, imm: 0x100 }), enc('iret'));
  for (const [k, c] of prog.entries()) m.phys.writeBytes(phys(v, v.base + SLOTS[k]!), c);
  cpu.eip = SLOTS[0]!;
  for (let r = 0; r < 8; r++) if (r !== R.ESP) cpu.reg[r] = Math.floor(rand() * 2 ** 32);
  cpu.reg[R.EDI] = rand() < 0.5 ? MYDS(v.ring) : 0;
  cpu.exitVectors = 0;
  return m;
}

function observe(m: Machine, v: V): Record<string, unknown> {
  const frames = v.paging ? [0x50000, 0x51000, 0x52000] : [0x10000, 0x11000, 0x12000];
  return machineView(m, {
    code: frames.map((f) => [f, 0x1000] as const),
    data: [[DATA, 0x400]],
    ...stacksAndTables(),
  });
}

const SEEDS = 50;

describe('code windows over pages, with and without blocks', () => {
  for (const v of VARIANTS) {
    it(`${v.name}: ${SEEDS} programs, budgets that end anywhere`, () => {
      let ran = 0;
      for (let seed = 1; seed <= SEEDS; seed++) {
        const prog = generate(rng(seed * 7919 + v.name.length), v);
        const a = setUp(v, false, prog, rng(seed));
        const b = setUp(v, true, prog, rng(seed));
        const budgets = rng(seed + 1);
        randomLockstep(a, b, {
          rand: budgets,
          total: 5000,
          pSmall: 0.5,
          small: 8,
          max: 700,
          observe: (m) => observe(m, v),
          what: `seed ${seed}`,
          before: () => {
            if (v.hooks) {
              const bp = budgets() < 0.3 ? v.base + SLOTS[Math.floor(budgets() * SLOTS.length)]! : -1;
              const tr = budgets() < 0.1;
              const irq = budgets() < 0.1;
              for (const m of [a, b]) {
                m.cpu.breakpoints.clear();
                if (bp >= 0) m.cpu.breakpoints.add(bp);
                m.cpu.trace = tr ? () => {} : undefined;
                if (irq) {
                  m.cpu.eflags |= 0x200;
                  m.cpu.irq = new IrqStub(0x80);
                } else m.cpu.irq = undefined;
              }
            }
            if (v.soft) {
              const s = budgets() < 0.5;
              a.cpu.exitSoftware = s;
              b.cpu.exitSoftware = s;
            }
          },
          after: (ra) => {
            if (ra.reason !== 'budget' && ra.reason !== 'exit' && ra.reason !== 'breakpoint') return false;
            if (ra.reason === 'breakpoint') {
              a.cpu.breakpoints.clear();
              b.cpu.breakpoints.clear();
              expect(run(b.cpu, 1)).toEqual(run(a.cpu, 1));
            }
            return true;
          },
        });
        ran += b.cpu.jit!.ran;
      }
      expect(ran).toBeGreaterThan(1000);
    });
  }
});
