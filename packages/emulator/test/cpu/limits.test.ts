/**
 * Segment limit and rights checks on every access (MACH-4; SDM §5.3 limit checking, §5.4 type
 * checking, and the JMP/CALL/RET/Jcc pseudocode): data, stack, code fetch at the limit, near
 * branches and returns beyond the CS limit. Every fault leaves all state and memory unchanged.
 */

import { describe, expect, it } from 'vitest';
import { segmentDescriptor } from '../../src/cpu/descriptor.js';
import { VEC } from '../../src/cpu/faults.js';
import { R, S } from '../../src/cpu/isa.js';
import {
  CODE_AT,
  enablePaging,
  enc,
  exitFault,
  expectUnchanged,
  loadCache,
  type Machine,
  machine,
  mem,
  program,
  setGdt,
  snapshot,
  stepExit,
} from './harness.js';

const L = 0x1fff;
const NAMES = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS'] as const;

/** A CPL-3 machine whose DS, ES, FS, GS and SS have base 0x50000 and limit L. */
function limited(): Machine {
  const m = machine(3);
  setGdt(m.cpu, 20, segmentDescriptor({ base: 0x50000, limit: L, type: 0x2, dpl: 3 }));
  for (const s of [S.ES, S.SS, S.DS, S.FS, S.GS]) loadCache(m.cpu, s, (20 << 3) | 3);
  m.cpu.reg[R.ESP] = 0x1000;
  return m;
}

function expectFault(m: Machine, name: string, vector: number, code?: number): void {
  const before = snapshot(m);
  expect(stepExit(m), name).toEqual(exitFault(vector, code));
  expectUnchanged(m, before, name);
}

describe('data and stack accesses at the segment limit', () => {
  const ACCESS = [
    { op: 'ld reg,mem', size: 4, write: false },
    { op: 'ldb reg,mem', size: 1, write: false },
    { op: 'st mem,reg', size: 4, write: true },
    { op: 'stb mem,reg', size: 1, write: true },
  ] as const;
  const OFFSETS = [0, L - 3, L - 2, L, L + 1, 0xfffffffd, 0xffffffff];
  const rows = [];
  for (const a of ACCESS)
    for (const off of OFFSETS)
      for (const seg of [S.DS, S.ES, S.FS, S.GS, S.SS])
        rows.push({ name: `${a.op} ${NAMES[seg]}:0x${off.toString(16)}`, ...a, off, seg });
  it.each(rows)('$name', ({ name, op, size, write, off, seg }) => {
    const m = limited();
    m.cpu.reg[R.EBX] = 0x11223344;
    m.phys.write32(0x50000 + (off & 0xfffff), 0xa1b2c3d4);
    program(m, enc(op, { a: write ? R.EBX : R.EAX, ...mem(off, seg) }));
    // SDM §5.3: offset + size - 1 must not exceed the limit (no wrap-around); SS faults are #SS(0).
    if (off + size - 1 > L) {
      expectFault(m, name, seg === S.SS ? VEC.SS : VEC.GP, 0);
      return;
    }
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    const at = 0x50000 + off;
    if (write)
      expect(size === 4 ? m.phys.read32(at) : m.phys.read8(at), name).toBe(size === 4 ? 0x11223344 : 0x44);
    else expect(m.cpu.reg[R.EAX], name).toBe(size === 4 ? 0xa1b2c3d4 | 0 : 0xd4);
  });

  it.each([
    { name: 'base ESP, default SS, in limit', disp: L - 3 - 0x1000, fault: false },
    { name: 'base ESP, default SS, beyond limit', disp: L - 2 - 0x1000, fault: true },
  ])('$name', ({ name, disp, fault }) => {
    const m = limited();
    program(m, enc('ld reg,mem', { a: R.EAX, b: R.ESP, c: 0xf, imm: disp }));
    if (fault) expectFault(m, name, VEC.SS, 0);
    else expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
  });

  it.each([
    { name: 'PUSH with ESP = 4', esp: 4, op: 'push', ok: true },
    { name: 'PUSH with ESP = 3', esp: 3, op: 'push', ok: false },
    { name: 'PUSH with ESP = 0 (would wrap)', esp: 0, op: 'push', ok: false },
    { name: 'PUSH with ESP = L + 1', esp: L + 1, op: 'push', ok: true },
    { name: 'PUSH with ESP = L + 2', esp: L + 2, op: 'push', ok: false },
    { name: 'POP with ESP = L - 3', esp: L - 3, op: 'pop', ok: true },
    { name: 'POP with ESP = L - 2', esp: L - 2, op: 'pop', ok: false },
    { name: 'POPF with ESP = L - 2', esp: L - 2, op: 'popf', ok: false },
    { name: 'PUSHF with ESP = 2', esp: 2, op: 'pushf', ok: false },
    { name: 'CALL near with ESP = 3', esp: 3, op: 'call', ok: false },
  ])('$name', ({ name, esp, op, ok }) => {
    const m = limited();
    m.cpu.reg[R.ESP] = esp;
    m.cpu.reg[R.EAX] = 0x77;
    const instr = {
      push: enc('push reg', { a: R.EAX }),
      pop: enc('pop reg', { a: R.EBX }),
      popf: enc('popf'),
      pushf: enc('pushf'),
      call: enc('call imm', { imm: CODE_AT + 64 }),
    }[op]!;
    program(m, instr);
    if (!ok) {
      expectFault(m, name, VEC.SS, 0);
      return;
    }
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    expect(m.cpu.esp, `${name}: ESP`).toBe(op === 'push' ? esp - 4 : esp + 4);
  });

  it('a G = 1 limit counts 4 KiB units: limit 1 covers 0..0x1FFF', () => {
    const m = machine(3);
    setGdt(m.cpu, 20, segmentDescriptor({ base: 0x50000, limit: 0x1fff, g: true, type: 0x2, dpl: 3 }));
    loadCache(m.cpu, S.DS, (20 << 3) | 3);
    expect(m.cpu.segLimit[S.DS]).toBe(0x1fff);
    program(
      m,
      enc('ld reg,mem', { a: R.EAX, ...mem(0x1ffc) }),
      enc('ld reg,mem', { a: R.EAX, ...mem(0x1ffd) }),
    );
    expect(stepExit(m)).toEqual({ reason: 'budget', executed: 1 });
    expectFault(m, 'dword at 0x1FFD', VEC.GP, 0);
  });

  it('SGDT checks all 6 bytes of its operand before storing any', () => {
    const m = limited();
    program(m, enc('sgdt mem', mem(L - 5)), enc('sgdt mem', mem(L - 4)));
    expect(stepExit(m)).toEqual({ reason: 'budget', executed: 1 });
    expectFault(m, 'SGDT at L - 4', VEC.GP, 0);
  });
});

describe('aligned dwords across a limit that is not 3 mod 4 (the run loop reads and writes these inline)', () => {
  // With a limit of 4k + 3 every aligned dword fits or starts beyond the limit; these limits put the
  // aligned dword at 0x1FFC across it (offset + 3 > limit although offset <= limit), and the one at
  // 0x1FF8 inside. Each access is made with paging off, and with paging on after an access of the
  // same kind to the same page has put it in the TLB (the inline path reads TLB hits).
  const OPS = ['ld DS', 'ld SS', 'st DS', 'st SS', 'push', 'pop', 'call', 'ret'] as const;
  const rows = [];
  for (const limit of [0x1ffc, 0x1ffd, 0x1ffe])
    for (const off of [0x1ff8, 0x1ffc])
      for (const op of OPS)
        for (const paging of [false, true])
          rows.push({
            name: `${op} at 0x${off.toString(16)}, limit 0x${limit.toString(16)}, paging ${paging ? 'on' : 'off'}`,
            limit,
            off,
            op,
            paging,
          });
  it.each(rows)('$name', ({ name, limit, off, op, paging }) => {
    const m = machine(3);
    setGdt(m.cpu, 20, segmentDescriptor({ base: 0x50000, limit, type: 0x2, dpl: 3 }));
    for (const s of [S.ES, S.SS, S.DS, S.FS, S.GS]) loadCache(m.cpu, s, (20 << 3) | 3);
    if (paging) enablePaging(m);
    const stack = op === 'push' || op === 'pop' || op === 'call' || op === 'ret' || op.endsWith('SS');
    const write = op === 'push' || op === 'call' || op.startsWith('st');
    const seg = stack ? S.SS : S.DS;
    const RETURN_TO = CODE_AT + 64;
    m.phys.write32(0x50000 + off, op === 'ret' ? RETURN_TO : 0xa1b2c3d4);
    m.cpu.reg[R.EBX] = 0x11223344;
    m.cpu.reg[R.ESP] = op === 'push' || op === 'call' ? off + 4 : off;
    const warm = write
      ? enc('st mem,reg', { a: R.EBX, ...mem(0x1000, seg) })
      : enc('ld reg,mem', { a: R.EDI, ...mem(0x1000, seg) });
    const instr = {
      'ld DS': enc('ld reg,mem', { a: R.EAX, ...mem(off, S.DS) }),
      'ld SS': enc('ld reg,mem', { a: R.EAX, ...mem(off, S.SS) }),
      'st DS': enc('st mem,reg', { a: R.EBX, ...mem(off, S.DS) }),
      'st SS': enc('st mem,reg', { a: R.EBX, ...mem(off, S.SS) }),
      push: enc('push reg', { a: R.EBX }),
      pop: enc('pop reg', { a: R.EAX }),
      call: enc('call imm', { imm: RETURN_TO }),
      ret: enc('ret'),
    }[op];
    program(m, warm, instr);
    expect(stepExit(m), `${name}: the access that fills the TLB`).toEqual({ reason: 'budget', executed: 1 });
    if (off + 3 > limit) {
      expectFault(m, name, stack ? VEC.SS : VEC.GP, 0);
      return;
    }
    expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    const value = op === 'call' ? CODE_AT + 16 : 0x11223344;
    if (write) expect(m.phys.read32(0x50000 + off), name).toBe(value);
    else if (op === 'ret') expect([m.cpu.eip, m.cpu.esp], name).toEqual([RETURN_TO, off + 4]);
    else expect(m.cpu.reg[R.EAX], name).toBe(0xa1b2c3d4 | 0);
  });
});

describe('far-return frames across the SS limit (read at once when they fit)', () => {
  // RETF pops 8 bytes, IRET 12 (same ring): with ESP = 0x1FF0 the frame ends at 0x1FF7 or 0x1FFB.
  const rows = [];
  for (const op of ['retf', 'iret'] as const)
    for (const limit of [0x1ff5, 0x1ff6, 0x1ff7, 0x1ff8, 0x1ff9, 0x1ffa, 0x1ffb, 0x1ffc])
      rows.push({ name: `${op} with ESP = 0x1FF0, SS limit 0x${limit.toString(16)}`, op, limit });
  it.each(rows)('$name', ({ name, op, limit }) => {
    const m = machine(3);
    setGdt(m.cpu, 20, segmentDescriptor({ base: 0x50000, limit, type: 0x2, dpl: 3 }));
    loadCache(m.cpu, S.SS, (20 << 3) | 3);
    m.cpu.reg[R.ESP] = 0x1ff0;
    const frame = [CODE_AT + 64, m.cpu.segSel[S.CS]!, m.cpu.eflags];
    for (const [i, v] of frame.entries()) m.phys.write32(0x50000 + 0x1ff0 + 4 * i, v);
    program(m, enc(op));
    const bytes = op === 'retf' ? 8 : 12;
    if (0x1ff0 + bytes - 1 > limit) {
      expectFault(m, name, VEC.SS, 0);
      return;
    }
    expect([stepExit(m), m.cpu.eip, m.cpu.esp], name).toEqual([
      { reason: 'budget', executed: 1 },
      CODE_AT + 64,
      0x1ff0 + bytes,
    ]);
  });
});

describe('segment type checks on access', () => {
  it.each([
    { name: 'store to read-only data', type: 0x0, seg: S.DS, op: 'st mem,reg', ok: false },
    { name: 'load from read-only data', type: 0x0, seg: S.DS, op: 'ld reg,mem', ok: true },
    { name: 'store through CS (readable code)', type: -1, seg: S.CS, op: 'st mem,reg', ok: false },
    { name: 'load through CS (readable code)', type: -1, seg: S.CS, op: 'ld reg,mem', ok: true },
    { name: 'load through CS (execute-only code)', type: -2, seg: S.CS, op: 'ld reg,mem', ok: false },
  ])('$name', ({ name, type, seg, op, ok }) => {
    const m = machine(3);
    if (type >= 0) {
      setGdt(m.cpu, 20, segmentDescriptor({ base: 0, limit: 0xfffff, type, dpl: 3 }));
      loadCache(m.cpu, S.DS, (20 << 3) | 3);
    } else if (type === -2) {
      setGdt(m.cpu, 20, segmentDescriptor({ base: 0, limit: 0xfffff, type: 0x8, dpl: 3 }));
      loadCache(m.cpu, S.CS, (20 << 3) | 3);
    }
    program(m, enc(op, { a: R.EAX, ...mem(0x60000, seg) }));
    if (ok) expect(stepExit(m), name).toEqual({ reason: 'budget', executed: 1 });
    else expectFault(m, name, VEC.GP, 0);
  });
});

describe('code fetch and near transfers against the CS limit', () => {
  const CS_LIMIT = 0x1ffff;
  function withCs(): Machine {
    const m = machine(3);
    setGdt(m.cpu, 22, segmentDescriptor({ base: 0, limit: CS_LIMIT, type: 0xa, dpl: 3 }));
    loadCache(m.cpu, S.CS, (22 << 3) | 3);
    return m;
  }

  it.each([
    { name: 'EIP = limit - 7: the 8 bytes fit', eip: CS_LIMIT - 7, ok: true },
    { name: 'EIP = limit - 6: the last byte is beyond', eip: CS_LIMIT - 6, ok: false },
    { name: 'EIP = limit + 1', eip: CS_LIMIT + 1, ok: false },
    { name: 'EIP = 0xFFFFFFF8 (would wrap)', eip: 0xfffffff8, ok: false },
  ])('fetch: $name', ({ name, eip, ok }) => {
    const m = withCs();
    if (eip < 0x100000) m.phys.writeBytes(eip, enc('nop'));
    m.cpu.eip = eip;
    if (ok) expect([stepExit(m), m.cpu.eip], name).toEqual([{ reason: 'budget', executed: 1 }, eip + 8]);
    else expectFault(m, name, VEC.GP, 0);
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7])(
    'fetch after instructions from the same page (the cached code window): limit = 0x%i past a slot',
    (past) => {
      // Two NOPs fit; the third slot starts at CODE_AT + 16 and fits only if limit >= CODE_AT + 23.
      const name = `limit CODE_AT + 16 + ${past}`;
      const m = machine(3);
      const limit = CODE_AT + 16 + past;
      setGdt(m.cpu, 22, segmentDescriptor({ base: 0, limit, type: 0xa, dpl: 3 }));
      loadCache(m.cpu, S.CS, (22 << 3) | 3);
      program(m, enc('nop'), enc('nop'), enc('nop'));
      expect(stepExit(m, 2), name).toEqual({ reason: 'budget', executed: 2 });
      if (past >= 7)
        expect([stepExit(m), m.cpu.eip], name).toEqual([{ reason: 'budget', executed: 1 }, CODE_AT + 24]);
      else expectFault(m, name, VEC.GP, 0);
    },
  );

  const BEYOND = CS_LIMIT + 1;
  const LAST = CS_LIMIT - 7;
  it.each([
    { name: 'JMP imm beyond the limit', set: () => {}, instr: enc('jmp imm', { imm: BEYOND }), ok: false },
    {
      name: 'JMP imm to the last instruction slot',
      set: () => {},
      instr: enc('jmp imm', { imm: LAST }),
      ok: true,
      eip: LAST,
    },
    {
      name: 'JMP imm to the limit itself',
      set: () => {},
      instr: enc('jmp imm', { imm: CS_LIMIT }),
      ok: true,
      eip: CS_LIMIT,
    },
    {
      name: 'JMP reg beyond the limit',
      set: (m: Machine) => {
        m.cpu.reg[R.EAX] = BEYOND;
      },
      instr: enc('jmp reg', { a: R.EAX }),
      ok: false,
    },
    { name: 'CALL imm beyond the limit', set: () => {}, instr: enc('call imm', { imm: BEYOND }), ok: false },
    {
      name: 'CALL reg beyond the limit',
      set: (m: Machine) => {
        m.cpu.reg[R.EAX] = 0xffffffff;
      },
      instr: enc('call reg', { a: R.EAX }),
      ok: false,
    },
    {
      name: 'JZ taken beyond the limit',
      set: (m: Machine) => {
        m.cpu.eflags |= 1 << 6;
      },
      instr: enc('jz imm', { imm: BEYOND }),
      ok: false,
    },
    {
      name: 'JZ not taken, target beyond the limit',
      set: () => {},
      instr: enc('jz imm', { imm: BEYOND }),
      ok: true,
      eip: CODE_AT + 8,
    },
    {
      name: 'RET to beyond the limit',
      set: (m: Machine) => m.phys.write32(m.cpu.esp, BEYOND),
      instr: enc('ret'),
      ok: false,
    },
    {
      name: 'RET 8 to beyond the limit',
      set: (m: Machine) => m.phys.write32(m.cpu.esp, BEYOND),
      instr: enc('ret imm16', { imm: 8 }),
      ok: false,
    },
    {
      name: 'RET to within the limit',
      set: (m: Machine) => m.phys.write32(m.cpu.esp, LAST),
      instr: enc('ret'),
      ok: true,
      eip: LAST,
    },
  ])('$name', ({ name, set, instr, ok, eip }) => {
    const m = withCs();
    set(m);
    program(m, instr);
    // SDM JMP/CALL/Jcc/RET: "IF tempEIP is not within code segment limit THEN #GP(0)", raised by
    // the branch itself (EIP at the branch) before CALL pushes anything.
    if (!ok) {
      expectFault(m, name, VEC.GP, 0);
      return;
    }
    expect([stepExit(m), m.cpu.eip], name).toEqual([{ reason: 'budget', executed: 1 }, eip]);
  });
});
