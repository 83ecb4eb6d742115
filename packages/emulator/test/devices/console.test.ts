import { describe, expect, it } from 'vitest';
import {
  CONSOLE_CONTROL,
  CONSOLE_NO_INPUT,
  CONSOLE_PORT,
  CONSOLE_STATUS,
  ConsoleDevice,
  type ConsoleOptions,
} from '../../src/devices/console.js';
import { busWith, irqRecorder } from './helpers.js';

function setup(options: Omit<ConsoleOptions, 'irq'> = {}) {
  const { lines, irq } = irqRecorder();
  const con = new ConsoleDevice({ ...options, irq });
  const bus = busWith(con);
  const out: number[] = [];
  con.on('output', (b) => out.push(b));
  const reg = (off: number) => bus.read(con.base + off);
  const set = (off: number, v: number) => bus.write(con.base + off, v);
  const print = (s: string) => {
    for (const b of new TextEncoder().encode(s)) set(CONSOLE_PORT.DATA, b);
  };
  return { con, bus, lines, out, reg, set, print };
}

describe('console', () => {
  it('claims ports 0x3F8..0x3FB; STATUS says output ready and no input', () => {
    const { con, reg } = setup();
    expect(con.ports).toEqual([0x3f8, 0x3fb]);
    expect(reg(CONSOLE_PORT.STATUS)).toBe(CONSOLE_STATUS.OUTPUT_READY);
    expect(reg(CONSOLE_PORT.CONTROL)).toBe(0);
    expect(reg(CONSOLE_PORT.PENDING)).toBe(0);
    expect(reg(CONSOLE_PORT.DATA)).toBe(CONSOLE_NO_INPUT);
  });

  it('emits each byte written to DATA and keeps the transcript', () => {
    const { con, out, print, set } = setup();
    print('boot ok\n');
    set(CONSOLE_PORT.DATA, 0x1_21); // only the low byte: '!'
    expect(out).toEqual([0x62, 0x6f, 0x6f, 0x74, 0x20, 0x6f, 0x6b, 0x0a, 0x21]);
    expect(con.transcript()).toBe('boot ok\n!');
  });

  it('decodes the transcript as UTF-8 and can clear it', () => {
    const { con, print } = setup();
    print('clé ✓');
    expect(con.transcript()).toBe('clé ✓');
    expect(con.transcriptBytes()).toEqual(new TextEncoder().encode('clé ✓'));
    con.clearTranscript();
    expect(con.transcript()).toBe('');
  });

  it('hands host input to DATA reads in order, then reads 0xFFFFFFFF', () => {
    const { con, reg } = setup();
    con.input('ab');
    con.input(new Uint8Array([0x00, 0xff]));
    expect(reg(CONSOLE_PORT.STATUS)).toBe(CONSOLE_STATUS.INPUT_AVAILABLE | CONSOLE_STATUS.OUTPUT_READY);
    expect(reg(CONSOLE_PORT.PENDING)).toBe(4);
    expect([0, 0, 0, 0, 0].map(() => reg(CONSOLE_PORT.DATA))).toEqual([0x61, 0x62, 0x00, 0xff, 0xffffffff]);
    expect(reg(CONSOLE_PORT.STATUS)).toBe(CONSOLE_STATUS.OUTPUT_READY);
  });

  it('raises its line on input only when CONTROL bit 0 is set', () => {
    const { con, lines, set, reg } = setup();
    con.input('x');
    expect(lines).toEqual([]);
    set(CONSOLE_PORT.CONTROL, CONSOLE_CONTROL.INPUT_IRQ); // input already waiting: raise now
    expect(lines).toEqual([1]);
    set(CONSOLE_PORT.CONTROL, 0xff);
    expect(reg(CONSOLE_PORT.CONTROL)).toBe(1);
    expect(lines).toEqual([1]); // already enabled: no new edge
    con.input('yz');
    expect(lines).toEqual([1, 1]);
    con.input('');
    expect(lines).toEqual([1, 1]);
    set(CONSOLE_PORT.CONTROL, 0);
    con.input('w');
    expect(lines).toEqual([1, 1]);
  });

  it('uses the configured line', () => {
    const { con, lines, set } = setup({ line: 9 });
    set(CONSOLE_PORT.CONTROL, 1);
    con.input('k');
    expect(lines).toEqual([9]);
  });

  it('drops input beyond its capacity and counts the overrun', () => {
    const { con, reg } = setup({ inputCapacity: 4 });
    con.input('abcdef');
    expect(reg(CONSOLE_PORT.PENDING)).toBe(4);
    expect(con.overrunCount).toBe(2);
    expect(reg(CONSOLE_PORT.DATA)).toBe(0x61);
    con.input('gh'); // one fits (ring wraps)
    expect(con.overrunCount).toBe(3);
    expect([0, 0, 0, 0, 0].map(() => reg(CONSOLE_PORT.DATA))).toEqual([0x62, 0x63, 0x64, 0x67, 0xffffffff]);
  });

  it('discards the older half of the transcript at its limit', () => {
    const { con, print } = setup({ transcriptLimit: 8 });
    print('01234567');
    expect(con.transcript()).toBe('01234567');
    print('89');
    expect(con.transcript()).toBe('456789');
  });

  it('stops delivering to an unsubscribed listener', () => {
    const { con, set } = setup();
    const seen: number[] = [];
    const off = con.on('output', (b) => seen.push(b));
    set(CONSOLE_PORT.DATA, 0x41);
    off();
    set(CONSOLE_PORT.DATA, 0x42);
    expect(seen).toEqual([0x41]);
  });

  it('reset clears input and CONTROL, keeps the transcript', () => {
    const { con, reg, set, print } = setup();
    print('hi');
    con.input('zz');
    set(CONSOLE_PORT.CONTROL, 1);
    con.reset();
    expect(reg(CONSOLE_PORT.PENDING)).toBe(0);
    expect(reg(CONSOLE_PORT.CONTROL)).toBe(0);
    expect(con.transcript()).toBe('hi');
  });

  it('snapshot round trip restores queued input, CONTROL, overruns and the transcript', () => {
    const { con, reg, set, print, out } = setup({ inputCapacity: 4 });
    print('login: ');
    con.input('root!'); // 1 overrun; ring head moves below
    expect(reg(CONSOLE_PORT.DATA)).toBe(0x72);
    set(CONSOLE_PORT.CONTROL, 1);
    const saved = con.save();
    print('more');
    con.input('x');
    while (reg(CONSOLE_PORT.DATA) !== CONSOLE_NO_INPUT);
    set(CONSOLE_PORT.CONTROL, 0);
    con.restore(saved);
    expect(con.save()).toEqual(saved);
    expect(con.transcript()).toBe('login: ');
    expect(con.overrunCount).toBe(1);
    expect(reg(CONSOLE_PORT.CONTROL)).toBe(1);
    expect([0, 0, 0, 0].map(() => reg(CONSOLE_PORT.DATA))).toEqual([0x6f, 0x6f, 0x74, 0xffffffff]);
    // Restoring emits nothing: only guest writes are output.
    expect(out.length).toBe('login: more'.length);
  });
});
