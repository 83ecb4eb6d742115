/**
 * Privileged, IOPL-sensitive and sensitive-but-unprivileged instructions (reference §3.6; SDM §5.9,
 * §18.5 and the instruction pages): CPL-0-only instructions at every ring, CLI/STI for every CPL x
 * IOPL, POPF and PUSHF, SGDT/SIDT/SLDT/STR/SMSW with and without CR4.UMIP, MOV r, Sreg, the
 * visibility rules of LAR/LSL/VERR/VERW, IN/OUT with the TSS I/O permission bitmap, LTR and LLDT.
 */

import { describe, expect, it } from 'vitest';
import { gateDescriptor, segmentDescriptor, TYPE } from '../../src/cpu/descriptor.js';
import { VEC } from '../../src/cpu/faults.js';
import { CR0, CR4, FL } from '../../src/cpu/flags.js';
import { R, S } from '../../src/cpu/isa.js';
import { IoBus } from '../../src/devices/bus.js';
import {
  CODE_AT,
  enc,
  errSel,
  exitFault,
  expectUnchanged,
  GDT,
  IDT,
  KIND,
  type Kind,
  type Machine,
  machine,
  mem,
  PortLog,
  program,
  SEL,
  setFlags,
  setGdt,
  snapshot,
  stepExit,
  TSS_AT,
} from './harness.js';

const NEXT = CODE_AT + 8;
const SLOT = 24;
const PSEUDO = 0x8000; // a pseudo-descriptor for LGDT/LIDT, and the SGDT/SIDT destination

/** Each CPL-0-only instruction (SDM §5.9), with its set-up and its exact effect at CPL 0. */
const PRIVILEGED: {
  name: string;
  instr: Uint8Array;
  set?: (m: Machine) => void;
  effect: (m: Machine) => unknown;
  expected: unknown;
}[] = [
  { name: 'HLT', instr: enc('hlt'), effect: (m) => m.cpu.halted, expected: true },
  {
    name: 'LGDT',
    instr: enc('lgdt mem', mem(PSEUDO)),
    set: (m) => {
      m.phys.write32(PSEUDO, 0x1ff | (0x2000 << 16));
      m.phys.write32(PSEUDO + 4, 0);
    },
    effect: (m) => [m.cpu.gdtLimit, m.cpu.gdtBase],
    expected: [0x1ff, 0x2000],
  },
  {
    name: 'LIDT',
    instr: enc('lidt mem', mem(PSEUDO)),
    set: (m) => {
      m.phys.write32(PSEUDO, 0x7f | (0x5000 << 16));
      m.phys.write32(PSEUDO + 4, 0);
    },
    effect: (m) => [m.cpu.idtLimit, m.cpu.idtBase],
    expected: [0x7f, 0x5000],
  },
  {
    name: 'LLDT',
    instr: enc('lldt reg', { a: R.EAX }),
    set: (m) => {
      setGdt(m.cpu, SLOT, segmentDescriptor({ base: 0x7000, limit: 0x3f, type: TYPE.LDT, s: false, dpl: 3 }));
      m.cpu.reg[R.EAX] = SLOT << 3;
    },
    effect: (m) => [m.cpu.ldtSel, m.cpu.ldtBase, m.cpu.ldtLimit, m.cpu.ldtUsable],
    expected: [SLOT << 3, 0x7000, 0x3f, true],
  },
  {
    name: 'LTR',
    instr: enc('ltr reg', { a: R.EAX }),
    set: (m) => {
      setGdt(m.cpu, SLOT, segmentDescriptor({ base: 0x6800, limit: 0x67, type: TYPE.TSS, s: false, dpl: 3 }));
      m.cpu.reg[R.EAX] = SLOT << 3;
    },
    effect: (m) => [m.cpu.trSel, m.cpu.trBase, m.cpu.trLimit],
    expected: [SLOT << 3, 0x6800, 0x67],
  },
  {
    name: 'MOV CR0, r',
    instr: enc('mov cr,reg', { a: 0, b: R.EAX }),
    set: (m) => {
      m.cpu.reg[R.EAX] = CR0.PE | CR0.ET | CR0.TS;
    },
    effect: (m) => m.cpu.cr0,
    expected: CR0.PE | CR0.ET | CR0.TS,
  },
  {
    name: 'MOV CR3, r',
    instr: enc('mov cr,reg', { a: 3, b: R.EAX }),
    set: (m) => {
      m.cpu.reg[R.EAX] = 0xc0000;
    },
    effect: (m) => m.cpu.mmu.cr3,
    expected: 0xc0000,
  },
  {
    name: 'MOV CR4, r',
    instr: enc('mov cr,reg', { a: 4, b: R.EAX }),
    set: (m) => {
      m.cpu.reg[R.EAX] = CR4.UMIP;
    },
    effect: (m) => m.cpu.cr4,
    expected: CR4.UMIP,
  },
  {
    name: 'MOV r, CR0',
    instr: enc('mov reg,cr', { a: R.EBX, b: 0 }),
    effect: (m) => m.cpu.reg[R.EBX],
    expected: CR0.PE | CR0.ET,
  },
  {
    name: 'MOV r, CR2',
    instr: enc('mov reg,cr', { a: R.EBX, b: 2 }),
    set: (m) => {
      m.cpu.mmu.cr2 = 0x1234;
    },
    effect: (m) => m.cpu.reg[R.EBX],
    expected: 0x1234,
  },
  { name: 'INVLPG', instr: enc('invlpg mem', mem(0x1000)), effect: (m) => m.cpu.eip, expected: NEXT },
  {
    name: 'CLTS',
    instr: enc('clts'),
    set: (m) => {
      m.cpu.cr0 |= CR0.TS;
    },
    effect: (m) => m.cpu.cr0,
    expected: CR0.PE | CR0.ET,
  },
];

describe('privileged instructions: #GP(0) at CPL 1-3, effect at CPL 0', () => {
  const rows = PRIVILEGED.flatMap((p) =>
    [0, 1, 2, 3].map((cpl) => ({ ...p, cpl, title: `${p.name} at CPL ${cpl}` })),
  );
  it.each(rows)('$title', ({ title, instr, set, effect, expected, cpl }) => {
    const m = machine(cpl);
    set?.(m);
    program(m, instr);
    if (cpl > 0) {
      const before = snapshot(m);
      expect(stepExit(m), title).toEqual(exitFault(VEC.GP, 0));
      expectUnchanged(m, before, title);
      return;
    }
    expect(stepExit(m), title).toEqual({ reason: 'budget', executed: 1 });
    expect(effect(m), `${title}: effect`).toEqual(expected);
  });

  it.each([
    { name: 'MOV CR1, r', instr: enc('mov cr,reg', { a: 1, b: R.EAX }) },
    { name: 'MOV r, CR1', instr: enc('mov reg,cr', { a: R.EAX, b: 1 }) },
    { name: 'MOV CR5, r', instr: enc('mov cr,reg', { a: 5, b: R.EAX }) },
  ])('$name at CPL 0 is #UD', ({ name, instr }) => {
    const m = machine(0);
    program(m, instr);
    const before = snapshot(m);
    expect(stepExit(m), name).toEqual(exitFault(VEC.UD));
    expectUnchanged(m, before, name);
  });
});

describe('IOPL-sensitive CLI/STI: CPL x IOPL', () => {
  const rows = [];
  for (const op of ['cli', 'sti'] as const)
    for (let cpl = 0; cpl < 4; cpl++)
      for (let iopl = 0; iopl < 4; iopl++)
        rows.push({ name: `${op.toUpperCase()} at CPL ${cpl}, IOPL ${iopl}`, op, cpl, iopl });
  it.each(rows)('$name', ({ name, op, cpl, iopl }) => {
    const m = machine(cpl);
    setFlags(m.cpu, { iopl, if: op === 'cli' });
    program(m, enc(op));
    const before = snapshot(m);
    const r = stepExit(m);
    if (cpl > iopl) {
      expect(r, name).toEqual(exitFault(VEC.GP, 0));
      expectUnchanged(m, before, name);
    } else {
      expect(r, name).toEqual({ reason: 'budget', executed: 1 });
      expect(m.cpu.eflags, `${name}: EFLAGS`).toBe(FL.FIXED | (iopl << 12) | (op === 'sti' ? FL.IF : 0));
    }
  });
});

describe('POPF keeps IF and IOPL silently; PUSHF shows the real ones', () => {
  const rows = [];
  for (let cpl = 0; cpl < 4; cpl++)
    for (let iopl = 0; iopl < 4; iopl++)
      for (const ifWas of [false, true])
        rows.push({ name: `CPL ${cpl}, IOPL ${iopl}, IF ${ifWas ? 1 : 0}`, cpl, iopl, ifWas });

  it.each(rows)('POPF at $name', ({ name, cpl, iopl, ifWas }) => {
    const m = machine(cpl);
    setFlags(m.cpu, { iopl, if: ifWas });
    const newIopl = (iopl + 2) % 4;
    const popped = FL.FIXED | FL.CF | FL.SF | FL.DF | (ifWas ? 0 : FL.IF) | (newIopl << 12);
    const esp = m.cpu.esp;
    m.phys.write32(esp, popped);
    program(m, enc('popf'));
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    // SDM POPF: IOPL only at CPL 0; IF only at CPL <= IOPL; no exception either way.
    const IF = cpl <= iopl ? popped & FL.IF : ifWas ? FL.IF : 0;
    const IOPL = cpl === 0 ? newIopl : iopl;
    expect([m.cpu.eflags, m.cpu.esp], `POPF ${name}`).toEqual([
      FL.FIXED | FL.CF | FL.SF | FL.DF | IF | (IOPL << 12),
      esp + 4,
    ]);
  });

  it.each(rows)('PUSHF at $name', ({ name, cpl, iopl, ifWas }) => {
    const m = machine(cpl);
    setFlags(m.cpu, { iopl, if: ifWas });
    m.cpu.eflags |= FL.CF;
    const esp = m.cpu.esp;
    program(m, enc('pushf'));
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    expect([m.phys.read32(esp - 4), m.cpu.esp], `PUSHF ${name}`).toEqual([
      FL.FIXED | FL.CF | (ifWas ? FL.IF : 0) | (iopl << 12),
      esp - 4,
    ]);
  });
});

describe('CR4.SFT: POPF and IRET raise #GP(0) instead of silently keeping IF or IOPL', () => {
  // Every CPL x IOPL x which bits the popped value changes; the popped IOPL is the current one
  // unless the row changes it. IRET returns to the same ring (CS of the current CPL).
  const rows = [];
  for (const op of ['popf', 'iret'] as const)
    for (let cpl = 0; cpl < 4; cpl++)
      for (let iopl = 0; iopl < 4; iopl++)
        for (const change of ['none', 'IF', 'IOPL', 'both'] as const)
          rows.push({ name: `${op} at CPL ${cpl}, IOPL ${iopl}, changing ${change}`, op, cpl, iopl, change });

  it.each(rows)('$name', ({ name, op, cpl, iopl, change }) => {
    const m = machine(cpl);
    m.cpu.cr4 = CR4.SFT;
    setFlags(m.cpu, { iopl, if: true });
    const newIf = change === 'IF' || change === 'both' ? 0 : FL.IF;
    const newIopl = change === 'IOPL' || change === 'both' ? (iopl + 1) % 4 : iopl;
    const popped = FL.FIXED | FL.CF | newIf | (newIopl << 12);
    const esp = m.cpu.esp;
    if (op === 'popf') m.phys.write32(esp, popped);
    else {
      m.phys.write32(esp, CODE_AT + 0x40);
      m.phys.write32(esp + 4, SEL.code(cpl));
      m.phys.write32(esp + 8, popped);
    }
    program(m, enc(op));
    const dropsIf = newIf === 0 && cpl > iopl;
    const dropsIopl = newIopl !== iopl && cpl > 0;
    if (dropsIf || dropsIopl) {
      const before = snapshot(m);
      expect(stepExit(m), name).toEqual(exitFault(VEC.GP, 0));
      expectUnchanged(m, before, name);
      return;
    }
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    expect([m.cpu.eflags, m.cpu.esp], name).toEqual([popped, esp + (op === 'popf' ? 4 : 12)]);
  });

  it('MOV CR4 keeps SFT and UMIP and drops unknown bits', () => {
    const m = machine(0);
    m.cpu.reg[R.EAX] = 0xffff_ffff | 0;
    program(m, enc('mov cr,reg', { a: 4, b: R.EAX }));
    expect(stepExit(m)).toEqual({ reason: 'budget', executed: 1 });
    expect(m.cpu.cr4).toBe(CR4.SFT | CR4.TSD | CR4.UMIP);
  });
});

describe('sensitive but unprivileged: SGDT, SIDT, SLDT, STR, SMSW reveal real values; UMIP faults them at CPL > 0', () => {
  const STORE: { name: string; instr: Uint8Array; read: (m: Machine) => unknown; expected: unknown }[] = [
    {
      name: 'SGDT',
      instr: enc('sgdt mem', mem(PSEUDO)),
      read: (m) => [...m.phys.readBytes(PSEUDO, 6)],
      expected: [0xff, 0x00, GDT & 0xff, GDT >>> 8, 0, 0],
    },
    {
      name: 'SIDT',
      instr: enc('sidt mem', mem(PSEUDO)),
      read: (m) => [...m.phys.readBytes(PSEUDO, 6)],
      expected: [0xff, 0x07, IDT & 0xff, IDT >>> 8, 0, 0],
    },
    { name: 'SLDT', instr: enc('sldt reg', { a: R.EBX }), read: (m) => m.cpu.reg[R.EBX], expected: 0x98 },
    { name: 'STR', instr: enc('str reg', { a: R.EBX }), read: (m) => m.cpu.reg[R.EBX], expected: SEL.tss },
    {
      name: 'SMSW',
      instr: enc('smsw reg', { a: R.EBX }),
      read: (m) => m.cpu.reg[R.EBX],
      expected: CR0.PE | CR0.ET | CR0.TS,
    },
  ];
  const rows = STORE.flatMap((s) =>
    [0, 1, 2, 3].flatMap((cpl) =>
      [false, true].map((umip) => ({
        ...s,
        cpl,
        umip,
        title: `${s.name} at CPL ${cpl}, UMIP ${umip ? 1 : 0}`,
      })),
    ),
  );
  it.each(rows)('$title', ({ title, instr, read, expected, cpl, umip }) => {
    const m = machine(cpl);
    m.cpu.ldtSel = 0x98;
    m.cpu.cr0 = (m.cpu.cr0 | CR0.TS | CR0.WP) >>> 0; // SMSW shows the low 16 bits only
    if (umip) m.cpu.cr4 = CR4.UMIP;
    m.cpu.reg[R.EBX] = 0x5555;
    program(m, instr);
    if (umip && cpl > 0) {
      const before = snapshot(m);
      expect(stepExit(m), title).toEqual(exitFault(VEC.GP, 0));
      expectUnchanged(m, before, title);
      return;
    }
    expect(stepExit(m), title).toEqual({ reason: 'budget', executed: 1 });
    expect(read(m), `${title}: value`).toEqual(expected);
  });

  it.each([0, 1, 2, 3])('MOV r, CS / MOV r, SS / PUSH CS at CPL %i show RPL = CPL', (cpl) => {
    const m = machine(cpl);
    const esp = m.cpu.esp;
    program(
      m,
      enc('mov reg,sreg', { a: R.EAX, b: S.CS }),
      enc('mov reg,sreg', { a: R.EBX, b: S.SS }),
      enc('push sreg', { a: S.CS }),
    );
    expect(stepExit(m, 3)).toEqual({ reason: 'budget', executed: 3 });
    expect([m.cpu.reg[R.EAX], m.cpu.reg[R.EBX], m.phys.read32(esp - 4)], `CPL ${cpl}`).toEqual([
      SEL.code(cpl),
      SEL.data(cpl),
      SEL.code(cpl),
    ]);
  });
});

describe('LAR, LSL, VERR, VERW: CPL x RPL x DPL x descriptor type', () => {
  type T = Kind | 'LDT' | 'TSS' | 'busy TSS' | 'call gate' | 'interrupt gate' | 'trap gate';
  const TYPES: T[] = [
    ...(Object.keys(KIND) as Kind[]),
    'LDT',
    'TSS',
    'busy TSS',
    'call gate',
    'interrupt gate',
    'trap gate',
  ];
  const SYS: Record<string, number> = {
    LDT: TYPE.LDT,
    TSS: TYPE.TSS,
    'busy TSS': TYPE.TSS_BUSY,
    'call gate': TYPE.CALL_GATE,
    'interrupt gate': TYPE.INT_GATE,
    'trap gate': TYPE.TRAP_GATE,
  };
  function descriptor(t: T, dpl: number): [number, number] {
    if (t in KIND)
      return segmentDescriptor({
        base: 0x50000,
        limit: 0x12fff,
        g: true,
        avl: true,
        type: KIND[t as Kind],
        dpl,
      });
    if (t.endsWith('gate')) {
      // 17 parameters: bit 4 of the count sits just below the access-rights fields.
      return gateDescriptor({ type: SYS[t]!, selector: SEL.code(0), offset: 0x20000, dpl, params: 17 });
    }
    return segmentDescriptor({ base: 0x6800, limit: 0x67, type: SYS[t]!, s: false, dpl });
  }
  // One test per type, CPL and DPL; inside, every RPL.
  const rows = [];
  for (const t of TYPES)
    for (let cpl = 0; cpl < 4; cpl++)
      for (let dpl = 0; dpl < 4; dpl++) rows.push({ name: `${t} DPL ${dpl}, CPL ${cpl}`, t, cpl, dpl });

  it.each(rows)('$name, RPL 0-3', ({ name: row, t, cpl, dpl }) => {
    for (let rpl = 0; rpl < 4; rpl++) {
      const name = `${row}, RPL ${rpl}`;
      const m = machine(cpl);
      const d = descriptor(t, dpl);
      setGdt(m.cpu, SLOT, d);
      const segment = t in KIND;
      // SDM LAR/LSL/VERR/VERW: a conforming code segment is visible at any CPL and RPL, anything
      // else only when DPL >= CPL and DPL >= RPL; each instruction accepts its own set of types.
      const visible = t.startsWith('conforming') || (dpl >= cpl && dpl >= rpl);
      const larType = segment || ['LDT', 'TSS', 'busy TSS', 'call gate'].includes(t);
      const lslType = segment || ['LDT', 'TSS', 'busy TSS'].includes(t);
      const readable = segment && (t.startsWith('data') || t.endsWith(' r'));
      const writable = t === 'data rw';
      const expected = {
        lar: visible && larType ? { zf: 1, value: (d[1] & 0xffc0_0000) >>> 0 } : { zf: 0, value: 0x5555 },
        lsl: visible && lslType ? { zf: 1, value: segment ? 0x12fff : 0x67 } : { zf: 0, value: 0x5555 },
        verr: visible && readable ? 1 : 0,
        verw: visible && writable ? 1 : 0,
        runs: Array(4).fill({ reason: 'budget', executed: 1 }),
      };
      m.cpu.reg[R.EBX] = (SLOT << 3) | rpl;
      m.cpu.reg[R.EAX] = 0x5555;
      m.cpu.reg[R.ECX] = 0x5555;
      program(
        m,
        enc('lar reg,reg', { a: R.EAX, b: R.EBX }),
        enc('lsl reg,reg', { a: R.ECX, b: R.EBX }),
        enc('verr reg', { a: R.EBX }),
        enc('verw reg', { a: R.EBX }),
      );
      const zf = () => ((m.cpu.eflags & FL.ZF) !== 0 ? 1 : 0);
      // Before each instruction ZF is flipped: each must set or clear it itself.
      const runs = [];
      runs.push(stepExit(m));
      const lar = { zf: zf(), value: m.cpu.reg[R.EAX]! >>> 0 };
      m.cpu.eflags ^= FL.ZF;
      runs.push(stepExit(m));
      const lsl = { zf: zf(), value: m.cpu.reg[R.ECX]! >>> 0 };
      m.cpu.eflags ^= FL.ZF;
      runs.push(stepExit(m));
      const verr = zf();
      m.cpu.eflags ^= FL.ZF;
      runs.push(stepExit(m));
      expect({ lar, lsl, verr, verw: zf(), runs }, name).toEqual(expected);
    }
  });

  it.each([
    { name: 'null selector 0', sel: 0 },
    { name: 'null selector 3', sel: 3 },
    { name: 'beyond the GDT limit', sel: (40 << 3) | 3 },
    { name: 'TI = 1 with no LDT', sel: (1 << 3) | 4 },
  ])('$name: ZF = 0 for all four, no fault', ({ name, sel }) => {
    const m = machine(3);
    m.cpu.reg[R.EBX] = sel;
    m.cpu.reg[R.EAX] = 0x5555;
    program(
      m,
      enc('lar reg,reg', { a: R.EAX, b: R.EBX }),
      enc('lsl reg,reg', { a: R.EAX, b: R.EBX }),
      enc('verr reg', { a: R.EBX }),
      enc('verw reg', { a: R.EBX }),
    );
    const zfs: number[] = [];
    for (let i = 0; i < 4; i++) {
      m.cpu.eflags |= FL.ZF;
      expect(stepExit(m), `${name}: instruction ${i}`).toEqual({ reason: 'budget', executed: 1 });
      zfs.push(m.cpu.eflags & FL.ZF);
    }
    expect([zfs, m.cpu.reg[R.EAX]], name).toEqual([[0, 0, 0, 0], 0x5555]);
  });
});

describe('IN/OUT with the TSS I/O permission bitmap (SDM §18.5.2)', () => {
  const MAP = TSS_AT + 104;
  const deny = (m: Machine, port: number) => {
    m.phys.write8(MAP + (port >>> 3), m.phys.read8(MAP + (port >>> 3)) | (1 << (port & 7)));
  };
  interface Row {
    name: string;
    cpl?: number;
    iopl?: number;
    denied?: number[];
    instr: 'in imm' | 'in reg' | 'out imm' | 'out reg';
    port: number;
    set?: (m: Machine) => void;
    allowed: boolean;
  }
  const rows: Row[] = [
    { name: 'allowed port', instr: 'in imm', port: 0x60, allowed: true },
    { name: 'denied port', instr: 'in imm', port: 0x64, denied: [0x64], allowed: false },
    { name: 'dword 0x60-0x63, 0x64 denied', instr: 'in imm', port: 0x60, denied: [0x64], allowed: true },
    {
      name: 'dword 0x62-0x65 straddles allowed 0x62-0x63 and denied 0x64',
      instr: 'in reg',
      port: 0x62,
      denied: [0x64],
      allowed: false,
    },
    {
      name: 'dword 0x3FE-0x401 across two map bytes, 0x400 denied',
      instr: 'out imm',
      port: 0x3fe,
      denied: [0x400],
      allowed: false,
    },
    {
      name: 'dword 0x3FC-0x3FF, 0x400 denied',
      instr: 'out reg',
      port: 0x3fc,
      denied: [0x400],
      allowed: true,
    },
    {
      name: 'dword 0x3FD-0x400, only its last port 0x400 denied',
      instr: 'out imm',
      port: 0x3fd,
      denied: [0x400],
      allowed: false,
    },
    {
      name: 'CPL 3 <= IOPL 3 ignores the map',
      iopl: 3,
      instr: 'in imm',
      port: 0x64,
      denied: [0x64],
      allowed: true,
    },
    {
      name: 'CPL 0 <= IOPL 0 ignores the map',
      cpl: 0,
      instr: 'out imm',
      port: 0x64,
      denied: [0x64],
      allowed: true,
    },
    {
      name: 'CPL 1 > IOPL 0 consults the map',
      cpl: 1,
      instr: 'out imm',
      port: 0x64,
      denied: [0x64],
      allowed: false,
    },
    { name: 'CPL 2 <= IOPL 2', cpl: 2, iopl: 2, instr: 'in reg', port: 0x64, denied: [0x64], allowed: true },
    { name: 'CPL 3 > IOPL 2, allowed in the map', iopl: 2, instr: 'in reg', port: 0x60, allowed: true },
    {
      name: 'map base = TSS limit: no map, every port denied',
      instr: 'in imm',
      port: 0x60,
      set: (m) => m.phys.write32(TSS_AT + 100, m.cpu.trLimit << 16),
      allowed: false,
    },
    {
      name: 'map base = TSS limit - 1: ports 0-7 checked within the limit',
      instr: 'in imm',
      port: 0,
      set: (m) => {
        m.phys.write32(TSS_AT + 100, (m.cpu.trLimit - 1) << 16);
      },
      allowed: true,
    },
    {
      name: 'map base = TSS limit - 1: ports 8-15 need a byte beyond the limit',
      instr: 'in imm',
      port: 8,
      set: (m) => {
        m.phys.write32(TSS_AT + 100, (m.cpu.trLimit - 1) << 16);
      },
      allowed: false,
    },
    {
      name: 'TSS limit 0x67 with map base 0x68: no map',
      instr: 'out imm',
      port: 0x60,
      set: (m) => {
        m.cpu.trLimit = 0x67;
      },
      allowed: false,
    },
    {
      name: 'no TSS loaded',
      instr: 'out imm',
      port: 0x60,
      set: (m) => {
        m.cpu.trUsable = false;
      },
      allowed: false,
    },
  ];
  it.each(rows)('$name', ({ name, cpl, iopl, denied, instr, port, set, allowed }) => {
    const io = new IoBus();
    const dev = new PortLog();
    io.attach(0, 0x7ff, dev);
    const m = machine(cpl ?? 3, { io });
    setFlags(m.cpu, { iopl: iopl ?? 0 });
    for (const p of denied ?? []) deny(m, p);
    set?.(m);
    m.cpu.reg[R.EDX] = port;
    m.cpu.reg[R.EAX] = 0x12345678;
    const code = {
      'in imm': enc('in reg,port', { a: R.EAX, imm: port }),
      'in reg': enc('in reg,reg', { a: R.EAX, b: R.EDX }),
      'out imm': enc('out port,reg', { a: R.EAX, imm: port }),
      'out reg': enc('out reg,reg', { a: R.EDX, b: R.EAX }),
    }[instr];
    program(m, code);
    const before = snapshot(m);
    const r = stepExit(m);
    if (!allowed) {
      expect(r, name).toEqual(exitFault(VEC.GP, 0));
      expectUnchanged(m, before, name);
      expect(dev.log, `${name}: no device access`).toEqual([]);
      return;
    }
    expect(r, name).toEqual({ reason: 'budget', executed: 1 });
    if (instr.startsWith('in')) {
      expect([dev.log, m.cpu.reg[R.EAX]! >>> 0], name).toEqual([
        [`in ${port.toString(16)}`],
        (0xc0de_0000 | port) >>> 0,
      ]);
    } else {
      expect(dev.log, name).toEqual([`out ${port.toString(16)} 12345678`]);
    }
  });
});

describe('LTR and LLDT', () => {
  const tss = (f: { type?: number; present?: boolean } = {}) =>
    segmentDescriptor({
      base: 0x6800,
      limit: 0x67,
      type: f.type ?? TYPE.TSS,
      s: false,
      dpl: 0,
      present: f.present ?? true,
    });
  const ldt = (present = true) =>
    segmentDescriptor({ base: 0x7000, limit: 0x3f, type: TYPE.LDT, s: false, dpl: 0, present });
  const rows: {
    name: string;
    op: 'ltr' | 'lldt';
    sel: number;
    desc?: [number, number];
    out?: [number, number];
  }[] = [
    { name: 'LTR an available TSS', op: 'ltr', sel: SLOT << 3, desc: tss() },
    { name: 'LTR with RPL 3', op: 'ltr', sel: (SLOT << 3) | 3, desc: tss() },
    {
      name: 'LTR a busy TSS',
      op: 'ltr',
      sel: SLOT << 3,
      desc: tss({ type: TYPE.TSS_BUSY }),
      out: [VEC.GP, SLOT << 3],
    },
    { name: 'LTR null', op: 'ltr', sel: 0, out: [VEC.GP, 0] },
    { name: 'LTR TI = 1', op: 'ltr', sel: (SLOT << 3) | 4, desc: tss(), out: [VEC.GP, (SLOT << 3) | 4] },
    { name: 'LTR beyond the GDT', op: 'ltr', sel: 40 << 3, out: [VEC.GP, 40 << 3] },
    { name: 'LTR a data segment', op: 'ltr', sel: SEL.data(0), out: [VEC.GP, SEL.data(0)] },
    { name: 'LTR an LDT descriptor', op: 'ltr', sel: SLOT << 3, desc: ldt(), out: [VEC.GP, SLOT << 3] },
    {
      name: 'LTR a TSS not present',
      op: 'ltr',
      sel: SLOT << 3,
      desc: tss({ present: false }),
      out: [VEC.NP, SLOT << 3],
    },
    { name: 'LLDT an LDT descriptor', op: 'lldt', sel: SLOT << 3, desc: ldt() },
    { name: 'LLDT null', op: 'lldt', sel: 0 },
    { name: 'LLDT TI = 1', op: 'lldt', sel: (SLOT << 3) | 4, desc: ldt(), out: [VEC.GP, (SLOT << 3) | 4] },
    { name: 'LLDT beyond the GDT', op: 'lldt', sel: 40 << 3, out: [VEC.GP, 40 << 3] },
    { name: 'LLDT a TSS', op: 'lldt', sel: SLOT << 3, desc: tss(), out: [VEC.GP, SLOT << 3] },
    { name: 'LLDT a data segment', op: 'lldt', sel: SEL.data(0), out: [VEC.GP, SEL.data(0)] },
    { name: 'LLDT not present', op: 'lldt', sel: SLOT << 3, desc: ldt(false), out: [VEC.NP, SLOT << 3] },
  ];
  it.each(rows)('$name', ({ name, op, sel, desc, out }) => {
    const m = machine(0);
    if (desc) setGdt(m.cpu, SLOT, desc);
    if (op === 'lldt') {
      m.cpu.ldtSel = 0x98; // a previous LDT
      m.cpu.ldtUsable = true;
    }
    m.cpu.reg[R.EAX] = sel;
    program(m, enc(op === 'ltr' ? 'ltr reg' : 'lldt reg', { a: R.EAX }));
    const before = snapshot(m);
    const r = stepExit(m);
    if (out) {
      expect(r, name).toEqual(exitFault(out[0], out[1]));
      expectUnchanged(m, before, name);
      return;
    }
    expect(r, name).toEqual({ reason: 'budget', executed: 1 });
    const hi = m.phys.read32(GDT + SLOT * 8 + 4);
    if (op === 'ltr') {
      expect([m.cpu.trSel, m.cpu.trBase, m.cpu.trLimit], `${name}: TR`).toEqual([sel, 0x6800, 0x67]);
      expect((hi >>> 24) & 0xf, `${name}: the descriptor is marked busy`).toBe(TYPE.TSS_BUSY);
    } else if (sel === 0) {
      expect([m.cpu.ldtSel, m.cpu.ldtUsable], `${name}: LDTR`).toEqual([0, false]);
    } else {
      expect([m.cpu.ldtSel, m.cpu.ldtBase, m.cpu.ldtLimit, m.cpu.ldtUsable], `${name}: LDTR`).toEqual([
        sel,
        0x7000,
        0x3f,
        true,
      ]);
    }
  });

  it('LTR twice: the second load finds the TSS busy, #GP(selector)', () => {
    const m = machine(0);
    setGdt(m.cpu, SLOT, tss());
    m.cpu.reg[R.EAX] = SLOT << 3;
    program(m, enc('ltr reg', { a: R.EAX }), enc('ltr reg', { a: R.EAX }));
    expect(stepExit(m)).toEqual({ reason: 'budget', executed: 1 });
    const before = snapshot(m);
    expect(stepExit(m)).toEqual(exitFault(VEC.GP, errSel(SLOT << 3)));
    expectUnchanged(m, before, 'second LTR');
  });
});
