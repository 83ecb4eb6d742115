/**
 * Every ALU instruction's result and arithmetic flags (CF, ZF, SF, OF), one instruction at a time,
 * against a reference written from the definitions (BigInt arithmetic, docs/isa.md), for operands
 * at every edge (0, ±1, the sign boundary, all ones, alternating bits, shift counts 0, 1, 31, 32,
 * 33) and with the flags all clear and all set before, so that flags an instruction must leave
 * alone (CF for INC and DEC, all of them for NOT, a shift by 0, DIVU, REMU) are seen to stay.
 */
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cpu/exec.js';
import { FL } from '../../src/cpu/flags.js';
import { R } from '../../src/cpu/isa.js';
import { enc, machine, program } from './harness.js';

const ARITH = FL.CF | FL.ZF | FL.SF | FL.OF;
const VALUES = [
  0, 1, 2, 31, 32, 33, 0x7f, 0x80, 0xffff, 0x1_0000, 0x5555_5555, 0x7fff_fffe, 0x7fff_ffff, 0x8000_0000,
  0x8000_0001, 0xaaaa_aaaa, 0xffff_fffe, 0xffff_ffff,
];
const BEFORE = [0x2, 0x2 | ARITH];

const M32 = (1n << 32n) - 1n;
const u = (x: number) => BigInt(x >>> 0);
const s32 = (x: bigint) => Number(BigInt.asIntN(32, x));
const neg = (x: number) => (x | 0) < 0;

/** The flags of a result with ZF and SF from it, the given CF and OF, and the rest of `f` kept. */
function flags(f: number, r: number, cf: boolean, of: boolean): number {
  return (f & ~ARITH) | (r === 0 ? FL.ZF : 0) | (neg(r) ? FL.SF : 0) | (cf ? FL.CF : 0) | (of ? FL.OF : 0);
}

/** The reference: [result, flags after] of `op a, b` with flags `f` before. */
type Model = (a: number, b: number, f: number) => [number, number];

const add: Model = (a, b, f) => {
  const r = s32(u(a) + u(b));
  return [r, flags(f, r, u(a) + u(b) > M32, neg(a) === neg(b) && neg(r) !== neg(a))];
};
const sub: Model = (a, b, f) => {
  const r = s32(u(a) - u(b));
  return [r, flags(f, r, u(a) < u(b), neg(a) !== neg(b) && neg(r) !== neg(a))];
};
const logic =
  (g: (x: bigint, y: bigint) => bigint): Model =>
  (a, b, f) => {
    const r = s32(g(u(a), u(b)));
    return [r, flags(f, r, false, false)];
  };
/** Shifts: by (b & 31); none at 0; CF the last bit shifted out, ZF SF from the result, OF 0. */
const shift =
  (kind: 'shl' | 'shr' | 'sar'): Model =>
  (a, b, f) => {
    const n = BigInt(b & 31);
    if (n === 0n) return [a | 0, f];
    const wide = kind === 'sar' ? BigInt(a | 0) : u(a);
    const r = s32(kind === 'shl' ? (wide << n) & M32 : wide >> n);
    const out = kind === 'shl' ? (u(a) >> (32n - n)) & 1n : (wide >> (n - 1n)) & 1n;
    return [r, flags(f, r, out === 1n, false)];
  };
const mul: Model = (a, b, f) => {
  const p = u(a) * u(b);
  const r = s32(p & M32);
  return [r, flags(f, r, p > M32, p > M32)];
};
const keepFlags =
  (g: (x: bigint, y: bigint) => bigint): Model =>
  (a, b, f) => [s32(g(u(a), u(b))), f];

const BINARY: [string, Model, boolean][] = [
  // [name, model, writes its result]
  ['add', add, true],
  ['sub', sub, true],
  ['and', logic((x, y) => x & y), true],
  ['or', logic((x, y) => x | y), true],
  ['xor', logic((x, y) => x ^ y), true],
  ['cmp', sub, false],
  ['test', logic((x, y) => x & y), false],
  ['shl', shift('shl'), true],
  ['shr', shift('shr'), true],
  ['sar', shift('sar'), true],
  ['mul', mul, true],
  ['divu', keepFlags((x, y) => x / y), true],
  ['remu', keepFlags((x, y) => x % y), true],
];

const UNARY: [string, (a: number, f: number) => [number, number]][] = [
  [
    'neg',
    (a, f) => {
      const r = s32(-u(a));
      return [r, flags(f, r, a !== 0, (a | 0) === -0x8000_0000)];
    },
  ],
  ['not', (a, f) => [~a, f]],
  [
    'inc',
    (a, f) => {
      const [r, g] = add(a, 1, f);
      return [r, (g & ~FL.CF) | (f & FL.CF)];
    },
  ],
  [
    'dec',
    (a, f) => {
      const [r, g] = sub(a, 1, f);
      return [r, (g & ~FL.CF) | (f & FL.CF)];
    },
  ],
];

/** Runs one instruction at ring 0 with EAX = a, EBX = b and EFLAGS = f; gives EAX and EFLAGS. */
function once(m: ReturnType<typeof machine>, a: number, b: number, f: number): [number, number] {
  m.cpu.reg[R.EAX] = a;
  m.cpu.reg[R.EBX] = b;
  m.cpu.eflags = f;
  m.cpu.eip = 0x10000;
  expect(run(m.cpu, 1)).toEqual({ reason: 'budget', executed: 1 });
  return [m.cpu.reg[R.EAX]!, m.cpu.eflags];
}

const hex = (x: number) => `0x${(x >>> 0).toString(16)}`;

describe('ALU results and flags against the definitions', () => {
  describe.each(['reg,reg', 'reg,imm'] as const)('%s forms', (form) => {
    it.each(BINARY)('%s', (name, model, writes) => {
      const m = machine(0);
      program(m, enc(`${name} ${form}`, form === 'reg,reg' ? { a: R.EAX, b: R.EBX } : { a: R.EAX }));
      const wrong: string[] = [];
      for (const a of VALUES) {
        for (const b of VALUES) {
          if ((name === 'divu' || name === 'remu') && b === 0) continue; // #DE: faults.test.ts
          if (form === 'reg,imm') m.phys.write32(0x10004, b); // the immediate
          for (const f of BEFORE) {
            const [r, g] = model(a, b, f);
            const want = [writes ? r : a | 0, g];
            const got = once(m, a, b, f);
            if (got[0] !== want[0] || got[1] !== want[1]) {
              wrong.push(`${hex(a)}, ${hex(b)}, flags ${hex(f)}: got ${got.map(hex)}, want ${want.map(hex)}`);
            }
          }
        }
      }
      expect(wrong).toEqual([]);
    });
  });

  it.each(UNARY)('%s reg', (name, model) => {
    const m = machine(0);
    program(m, enc(`${name} reg`, { a: R.EAX }));
    const wrong: string[] = [];
    for (const a of VALUES) {
      for (const f of BEFORE) {
        const want = model(a, f).map((x) => x | 0);
        const got = once(m, a, 0, f);
        if (got[0] !== want[0] || got[1] !== want[1]) {
          wrong.push(`${hex(a)}, flags ${hex(f)}: got ${got.map(hex)}, want ${want.map(hex)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});
