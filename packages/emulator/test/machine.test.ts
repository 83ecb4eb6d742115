/** The whole machine: reset into the boot ROM, devices at their ports, save and restore. */
import { createMachine, formatTrace, type Machine, OP, R, startTrace } from '@clefnet/emulator';
import { describe, expect, it } from 'vitest';

/** No memory operands here: byte 2 is 0, as strict decoding requires. */
function ins(name: string, a = 0, b = 0, imm = 0, c = 0): number[] {
  const out = new Uint8Array(8);
  out[0] = OP[name]!;
  out[1] = (b << 4) | a;
  out[2] = c;
  new DataView(out.buffer).setUint32(4, imm >>> 0, true);
  return [...out];
}

/** A 64 KiB ROM: the reset vector jumps to 0x1000 in the ROM, which prints through the console and counts. */
function rom(): Uint8Array {
  const image = new Uint8Array(0x10000);
  image.set(ins('jmp imm', 0, 0, 0x1000), 0xfff0);
  const code = [
    ...ins('mov reg,imm', R.EAX, 0, 'h'.charCodeAt(0)),
    ...ins('out port,reg', R.EAX, 0, 0x3f8),
    ...ins('mov reg,imm', R.EAX, 0, 'i'.charCodeAt(0)),
    ...ins('out port,reg', R.EAX, 0, 0x3f8),
    ...ins('mov reg,imm', R.ECX, 0, 0),
    ...ins('inc reg', R.ECX), // 0x1028: a counting loop, so a run can stop anywhere
    ...ins('cmp reg,imm', R.ECX, 0, 1000),
    ...ins('jnz imm', 0, 0, 0x1028),
    ...ins('hlt'),
  ];
  image.set(code, 0x1000);
  return image;
}

const make = (): Machine =>
  createMachine({ rom: rom(), ramBytes: 1 << 20, clock: () => Date.UTC(2026, 0, 1) });

describe('machine', () => {
  it('starts at the reset vector in the boot ROM, in ring 0, and prints through the console', () => {
    const m = make();
    expect([m.cpu.segBase[1], m.cpu.eip, m.cpu.cpl]).toEqual([0xffff0000, 0xfff0, 0]);
    const r = m.run(10_000);
    expect(r).toEqual({ reason: 'halt', executed: 1 + 5 + 3 * 1000 + 1, idle: 0 });
    expect(m.console.transcript()).toBe('hi');
    expect(m.cpu.reg[R.ECX]).toBe(1000);
  });

  it('a machine restored mid-run finishes in the same state as one that never stopped', () => {
    const a = make();
    a.run(1234);
    const snap = a.save();
    const b = make();
    b.restore(snap);
    a.run(10_000);
    b.run(10_000);
    expect(Buffer.from(b.save()).equals(Buffer.from(a.save()))).toBe(true);
    expect(b.console.transcript()).toBe('hi');
  });

  it('refuses a snapshot that is not one', () => {
    const m = make();
    expect(() => m.restore(new Uint8Array(12))).toThrow('not a machine snapshot');
    const snap = m.save();
    expect(() => m.restore(snap.subarray(0, snap.length - 1))).toThrow('truncated machine snapshot');
  });
});

describe('instruction trace', () => {
  it('records address, ring, selectors and disassembly before each instruction, and stops when asked', () => {
    const m = make();
    const lines: string[] = [];
    const stop = startTrace(m.cpu, (e) => lines.push(formatTrace(e)), 4);
    m.run(6);
    expect(lines).toEqual([
      'fffffff0 r0 cs=f000 ss=0000 ds=0000  jmp 0x1000',
      'ffff1000 r0 cs=f000 ss=0000 ds=0000  mov eax, 0x68',
      'ffff1008 r0 cs=f000 ss=0000 ds=0000  out 0x3f8, eax',
      'ffff1010 r0 cs=f000 ss=0000 ds=0000  mov eax, 0x69',
    ]);
    stop();
    expect(m.cpu.beforeStep).toBeUndefined();
  });
});
