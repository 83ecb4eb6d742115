/**
 * Blocks that hold segment loads and end with far transfers (src/cpu/jit.ts) against the run loop
 * alone: random programs, as in jit.test.ts, of ordinary instructions mixed with MOV DS/ES/FS/GS of
 * good, null, not-present, DPL-0, expand-down and code selectors; CALLF through an inward call
 * gate, a same-ring conforming one, a DPL-0 one and straight to a code segment (which the fast path
 * always declines); INT n through trap and interrupt gates and a DPL-0 one, INT3, RETF, RETF imm16,
 * IRET, PUSHF; stores into the code and the data; with hardware interrupts, `exitSoftware` and #GP
 * as an exit toggled between runs, at random budgets, in ring 0 and 3, paging off and on, and with
 * the fast paths off (every transfer declined). Each run must end with the same result, state,
 * count and memory with blocks (compiled at the first visit) as without.
 */
import { describe, expect, it } from 'vitest';
import { gateDescriptor, segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { fastPaths } from '../../src/cpu/fast-transfers.js';
import { NO_BASE, R, S } from '../../src/cpu/isa.js';
import {
  ALU,
  CODE_AT,
  code,
  EDGES,
  enablePaging,
  enc,
  faultHandlers,
  idtGate,
  JCC,
  loadCache,
  type Machine,
  machine,
  machineView,
  PG,
  type PolledIrq,
  PT0,
  program,
  randomLockstep,
  rng,
  SEL,
  setGdt,
  stacksAndTables,
  withPolledIrq,
} from './harness.js';

const DATA = 0x20000;
const DATA_BYTES = 0x4000;
const SMALL_DS = SEL.free(1);
const READONLY_DS = SEL.free(2);
const CONF_GATE = SEL.free(3);
const NP_DS = SEL.free(4);
const DOWN_DS = SEL.free(5);
const GATE0 = SEL.free(6);
const SLOTS = 48;
const ENTRY = 0x1c000;

interface Variant {
  readonly name: string;
  readonly ring: 0 | 3;
  readonly paging: boolean;
  /** The fast paths of fast-transfers.ts on (default) or off. */
  readonly fast?: boolean;
  /** Traces made at the first link followed (jit.ts Jit.trace), else none. */
  readonly traces?: boolean;
}
const VARIANTS: Variant[] = [
  { name: 'ring 3', ring: 3, paging: false },
  { name: 'ring 3 paging', ring: 3, paging: true },
  { name: 'ring 0', ring: 0, paging: false },
  { name: 'ring 0 paging', ring: 0, paging: true },
  { name: 'ring 3, the fast paths off', ring: 3, paging: false, fast: false },
  { name: 'ring 3, traces', ring: 3, paging: false, traces: true },
  { name: 'ring 3 paging, traces', ring: 3, paging: true, traces: true },
  { name: 'ring 0 paging, traces', ring: 0, paging: true, traces: true },
  { name: 'ring 3, the fast paths off, traces', ring: 3, paging: false, fast: false, traces: true },
];

function generate(rand: () => number, v: Variant): Uint8Array[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const dst = () => pick([R.EAX, R.ECX, R.EDX, R.EBX, R.EBP, R.ESI]);
  const any = () => Math.floor(rand() * 8);
  const value = () => (rand() < 0.6 ? pick(EDGES) : Math.floor(rand() * 2 ** 32));
  const slot = () => CODE_AT + 8 * Math.floor(rand() * SLOTS);
  const sels = [
    SMALL_DS | v.ring,
    READONLY_DS | v.ring,
    SEL.data(v.ring),
    SEL.data(0),
    SEL.data(3),
    0,
    NP_DS | 3,
    DOWN_DS | 3,
    SEL.code(v.ring),
    SEL.conf(0),
    SEL.gate,
  ];
  const dsOffset = () => {
    const off = rand() < 0.93 ? Math.floor(rand() * DATA_BYTES) : DATA_BYTES - 4 + Math.floor(rand() * 16);
    return rand() < 0.85 ? off & ~3 : off;
  };
  const memOperand = () =>
    rand() < 0.3
      ? { b: R.EDI, c: 0xf, imm: dsOffset() & 0xff }
      : { b: NO_BASE, c: 0xf, imm: rand() < 0.1 ? slot() + (rand() < 0.5 ? 4 : 0) : dsOffset() };
  const out: Uint8Array[] = [];
  while (out.length < SLOTS) {
    const x = rand();
    if (x < 0.12) out.push(enc(`${pick(ALU)} reg,reg`, { a: dst(), b: any() }));
    else if (x < 0.2) out.push(enc(`${pick([...ALU, 'shl', 'shr'])} reg,imm`, { a: dst(), imm: value() }));
    else if (x < 0.24) out.push(enc(`${pick(['neg', 'not', 'inc', 'dec'])} reg`, { a: dst() }));
    else if (x < 0.3) {
      // a segment load
      const r = dst();
      out.push(enc('mov reg,imm', { a: r, imm: pick(sels) }));
      out.push(enc('mov sreg,reg', { a: pick([S.DS, S.DS, S.DS, S.ES, S.FS, S.GS]), b: r }));
    } else if (x < 0.33) out.push(enc('mov sreg,reg', { a: pick([S.DS, S.ES]), b: any() }));
    else if (x < 0.43) out.push(enc('ld reg,mem', { a: dst(), ...memOperand() }));
    else if (x < 0.5) out.push(enc('st mem,reg', { a: any(), ...memOperand() }));
    else if (x < 0.52)
      out.push(
        enc(pick(['ldb reg,mem', 'stb mem,reg']), {
          a: dst(),
          ...memOperand(),
          c: pick([0xf, S.DS, S.ES, S.FS]),
        }),
      );
    else if (x < 0.54)
      out.push(enc(pick(['st mem,reg', 'ld reg,mem']), { a: dst(), ...memOperand(), c: pick([S.ES, S.GS]) }));
    else if (x < 0.58) out.push(enc('push reg', { a: any() }));
    else if (x < 0.61) out.push(enc('pop reg', { a: dst() }));
    else if (x < 0.68) out.push(enc(`${pick(JCC)} imm`, { imm: slot() }));
    else if (x < 0.7) out.push(enc('jmp imm', { imm: slot() }));
    else if (x < 0.72) out.push(enc('call imm', { imm: slot() }));
    else if (x < 0.73) out.push(enc('ret'));
    else if (x < 0.77)
      out.push(
        enc('callf far', {
          sel: pick([SEL.gate | 3, CONF_GATE | 3, GATE0 | 3, SEL.code(v.ring)]),
          imm: ENTRY + 0x200,
        }),
      );
    else if (x < 0.82) out.push(enc('int vec', { imm: pick([0x80, 0x81, 0x82, 0x80]) }));
    else if (x < 0.84) out.push(enc('int3'));
    else if (x < 0.86) out.push(pick([enc('retf'), enc('iret'), enc('retf imm16', { imm: 8 })]));
    else if (x < 0.88) out.push(enc('mov reg,imm', { a: R.EDI, imm: Math.floor(rand() * 0x100) & ~3 }));
    else if (x < 0.9) out.push(enc('pushf'));
    else out.push(enc('mov reg,imm', { a: dst(), imm: value() }));
  }
  out.length = SLOTS;
  out[SLOTS - 1] = enc('jmp imm', { imm: CODE_AT });
  return out;
}

function setUp(
  v: Variant,
  jit: boolean,
  prog: Uint8Array[],
  rand: () => number,
): Machine & { irq: PolledIrq } {
  const m = machine(v.ring, { jit: jit ? { hot: 1, traceHot: v.traces === true ? 1 : 0 } : false });
  const { cpu } = m;
  setGdt(cpu, 15, segmentDescriptor({ base: DATA, limit: DATA_BYTES - 1, type: 0x2, dpl: 3 }));
  setGdt(cpu, 16, segmentDescriptor({ base: DATA, limit: DATA_BYTES - 1, type: 0x0, dpl: 3 }));
  setGdt(
    cpu,
    SEL.gate >>> 3,
    gateDescriptor({ type: TYPE.CALL_GATE, selector: SEL.code(0), offset: ENTRY, dpl: 3 }),
  );
  setGdt(
    cpu,
    CONF_GATE >>> 3,
    gateDescriptor({ type: TYPE.CALL_GATE, selector: SEL.conf(0), offset: ENTRY + 0x200, dpl: 3 }),
  );
  setGdt(
    cpu,
    NP_DS >>> 3,
    segmentDescriptor({ base: DATA, limit: DATA_BYTES - 1, type: 0x2, dpl: 3, present: false }),
  );
  setGdt(cpu, DOWN_DS >>> 3, segmentDescriptor({ base: 0, limit: DATA - 1, type: 0x6, dpl: 3 }));
  setGdt(
    cpu,
    GATE0 >>> 3,
    gateDescriptor({ type: TYPE.CALL_GATE, selector: SEL.code(0), offset: ENTRY, dpl: 0 }),
  );
  // ring 0 call gate target: loads kernel DS, touches it, returns
  code(
    m,
    ENTRY,
    enc('add reg,imm', { a: R.EDX, imm: 3 }),
    enc('mov reg,imm', { a: R.EAX, imm: SEL.data(0) }),
    enc('mov sreg,reg', { a: S.DS, b: R.EAX }),
    enc('ld reg,mem', { a: R.EAX, b: NO_BASE, c: 0xf, imm: DATA + 0x40 }),
    enc('add reg,reg', { a: R.EBP, b: R.EAX }),
    enc('retf'),
  );
  // conforming target / direct far call target: same ring
  code(m, ENTRY + 0x200, enc('inc reg', { a: R.ESI }), enc('retf'));
  idtGate(cpu, 0x80, { type: TYPE.TRAP_GATE, selector: SEL.code(0), offset: ENTRY + 0x40, dpl: 3 });
  code(
    m,
    ENTRY + 0x40,
    enc('add reg,imm', { a: R.EBP, imm: 1 }),
    enc('mov reg,imm', { a: R.EAX, imm: SEL.data(0) }),
    enc('mov sreg,reg', { a: S.ES, b: R.EAX }),
    enc('iret'),
  );
  idtGate(cpu, 0x81, { type: TYPE.INT_GATE, selector: SEL.code(0), offset: ENTRY + 0x80, dpl: 3 });
  code(m, ENTRY + 0x80, enc('add reg,imm', { a: R.EBP, imm: 0x100 }), enc('iret'));
  idtGate(cpu, 0x82, { type: TYPE.INT_GATE, selector: SEL.code(0), offset: ENTRY + 0x80, dpl: 0 });
  idtGate(cpu, 0x40, { type: TYPE.INT_GATE, selector: SEL.code(0), offset: ENTRY + 0xc0, dpl: 0 });
  code(m, ENTRY + 0xc0, enc('add reg,imm', { a: R.EBP, imm: 0x10000 }), enc('iret'));
  faultHandlers(m, { int3: true });
  if (v.paging) {
    enablePaging(m);
    m.phys.write32(PT0 + 4 * 0x21, 0x21000 | PG.P | PG.U);
    m.phys.write32(PT0 + 4 * 0x22, 0);
    m.cpu.mmu.flush();
  }
  program(m, ...prog);
  for (let r = 0; r < 8; r++) if (r !== R.ESP) m.cpu.reg[r] = Math.floor(rand() * 2 ** 32);
  m.cpu.reg[R.EDI] = 0x40;
  loadCache(cpu, S.DS, SMALL_DS | v.ring);
  for (let i = 0; i < DATA_BYTES; i += 4) m.phys.write32(DATA + i, Math.floor(rand() * 2 ** 32));
  return withPolledIrq(m);
}

function observe(m: Machine): Record<string, unknown> {
  return machineView(m, {
    code: [[CODE_AT, 8 * SLOTS + 64]],
    data: [[DATA, DATA_BYTES]],
    gdt: [[0x1000, 0x100]],
    ...stacksAndTables(),
  });
}

const SEEDS = 60;

describe('random programs with far transfers and segment loads: the same results with and without blocks', () => {
  for (const v of VARIANTS) {
    it(`${v.name}: ${SEEDS} programs, budgets that end anywhere`, () => {
      let ran = 0;
      let traces = 0;
      fastPaths.enabled = v.fast !== false;
      try {
        for (let seed = 1; seed <= SEEDS; seed++) {
          const prog = generate(rng(seed * 7919 + v.name.length), v);
          const a = setUp(v, false, prog, rng(seed));
          const b = setUp(v, true, prog, rng(seed));
          const ctl = rng(seed + 1);
          randomLockstep(a, b, {
            rand: ctl,
            total: 4000,
            pSmall: 0.4,
            small: 8,
            max: 500,
            observe,
            what: `seed ${seed}`,
            after: (ra) => {
              if (ra.reason === 'exit') for (const m of [a, b]) m.cpu.eip += 8;
              else if (ra.reason !== 'budget') return false;
              const c = ctl();
              if (c < 0.05) for (const m of [a, b]) m.cpu.exitSoftware = !m.cpu.exitSoftware;
              else if (c < 0.07) for (const m of [a, b]) m.cpu.exitVectors ^= 1 << 13;
              else if (c < 0.1) for (const m of [a, b]) m.irq.vector = 0x40;
              return true;
            },
          });
          ran += b.cpu.jit!.ran;
          traces += b.cpu.jit!.traces;
        }
      } finally {
        fastPaths.enabled = true;
      }
      expect(ran).toBeGreaterThan(20_000);
      if (v.traces === true) expect(traces).toBeGreaterThan(SEEDS);
      else expect(traces).toBe(0);
    });
  }
});
