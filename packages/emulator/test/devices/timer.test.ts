import { describe, expect, it } from 'vitest';
import { DeviceError } from '../../src/devices/errors.js';
import { SnapshotWriter } from '../../src/devices/snapshot.js';
import { TIMER_CONTROL as C, TIMER_PORT, TIMER_STATUS, Timer } from '../../src/devices/timer.js';
import { busWith, irqRecorder } from './helpers.js';

function setup(line?: number) {
  const { lines, irq } = irqRecorder();
  const timer = new Timer(line === undefined ? { irq } : { irq, line });
  const bus = busWith(timer);
  const reg = (off: number) => bus.read(timer.base + off);
  const set = (off: number, v: number) => bus.write(timer.base + off, v);
  return { timer, lines, reg, set };
}

describe('timer', () => {
  it('claims ports 0x40..0x43 and is stopped after reset', () => {
    const { timer, reg } = setup();
    expect(timer.ports).toEqual([0x40, 0x43]);
    expect([0, 1, 2, 3].map(reg)).toEqual([0, 0, 0, 0]);
    expect(timer.nextEvent()).toBe(Number.POSITIVE_INFINITY);
  });

  it('one-shot: counts instructions down, raises its line once at zero and stops', () => {
    const { timer, lines, reg, set } = setup();
    set(TIMER_PORT.RELOAD, 100);
    set(TIMER_PORT.CONTROL, C.ENABLE | C.IRQ_ENABLE);
    expect(reg(TIMER_PORT.COUNT)).toBe(100);
    timer.tick(40);
    expect(reg(TIMER_PORT.COUNT)).toBe(60);
    expect(timer.nextEvent()).toBe(60);
    timer.tick(59);
    expect(reg(TIMER_PORT.COUNT)).toBe(1);
    expect(lines).toEqual([]);
    timer.tick(1);
    expect(lines).toEqual([0]);
    expect(reg(TIMER_PORT.COUNT)).toBe(0);
    expect(reg(TIMER_PORT.CONTROL)).toBe(C.IRQ_ENABLE);
    expect(reg(TIMER_PORT.STATUS)).toBe(TIMER_STATUS.EXPIRED);
    timer.tick(1000);
    expect(lines).toEqual([0]);
  });

  it('periodic: re-arms keeping phase, one interrupt per tick however many periods passed', () => {
    const { timer, lines, reg, set } = setup(7);
    set(TIMER_PORT.RELOAD, 10);
    set(TIMER_PORT.CONTROL, C.ENABLE | C.PERIODIC | C.IRQ_ENABLE);
    timer.tick(25); // expiries due at 10 and 20; next at 30
    expect(lines).toEqual([7]);
    expect(reg(TIMER_PORT.COUNT)).toBe(5);
    timer.tick(5);
    expect(lines).toEqual([7, 7]);
    expect(reg(TIMER_PORT.COUNT)).toBe(10);
    for (let i = 0; i < 30; i++) timer.tick(1);
    expect(lines).toEqual([7, 7, 7, 7, 7]);
    expect(reg(TIMER_PORT.CONTROL)).toBe(C.ENABLE | C.PERIODIC | C.IRQ_ENABLE);
  });

  it('sets EXPIRED without IRQ_ENABLE; writing 1 clears it', () => {
    const { timer, lines, reg, set } = setup();
    set(TIMER_PORT.RELOAD, 3);
    set(TIMER_PORT.CONTROL, C.ENABLE);
    timer.tick(3);
    expect(lines).toEqual([]);
    expect(reg(TIMER_PORT.STATUS)).toBe(1);
    set(TIMER_PORT.STATUS, 0);
    expect(reg(TIMER_PORT.STATUS)).toBe(1);
    set(TIMER_PORT.STATUS, 1);
    expect(reg(TIMER_PORT.STATUS)).toBe(0);
  });

  it('RESTART reloads the count; a RELOAD write alone does not', () => {
    const { timer, reg, set } = setup();
    set(TIMER_PORT.RELOAD, 50);
    set(TIMER_PORT.CONTROL, C.ENABLE | C.PERIODIC);
    timer.tick(30);
    set(TIMER_PORT.RELOAD, 80);
    expect(reg(TIMER_PORT.COUNT)).toBe(20);
    set(TIMER_PORT.CONTROL, C.ENABLE | C.PERIODIC); // still enabled: no reload
    expect(reg(TIMER_PORT.COUNT)).toBe(20);
    set(TIMER_PORT.CONTROL, C.ENABLE | C.PERIODIC | C.RESTART);
    expect(reg(TIMER_PORT.COUNT)).toBe(80);
    expect(reg(TIMER_PORT.CONTROL)).toBe(C.ENABLE | C.PERIODIC);
  });

  it('disabling stops and zeroes the count', () => {
    const { timer, lines, reg, set } = setup();
    set(TIMER_PORT.RELOAD, 10);
    set(TIMER_PORT.CONTROL, C.ENABLE | C.IRQ_ENABLE);
    set(TIMER_PORT.CONTROL, C.IRQ_ENABLE);
    expect(reg(TIMER_PORT.COUNT)).toBe(0);
    timer.tick(100);
    expect(lines).toEqual([]);
    expect(timer.nextEvent()).toBe(Number.POSITIVE_INFINITY);
  });

  it('a RELOAD of 0 never expires', () => {
    const { timer, lines, reg, set } = setup();
    set(TIMER_PORT.CONTROL, C.ENABLE | C.PERIODIC | C.IRQ_ENABLE);
    expect(reg(TIMER_PORT.CONTROL)).toBe(C.PERIODIC | C.IRQ_ENABLE);
    expect(reg(TIMER_PORT.COUNT)).toBe(0);
    timer.tick(1);
    expect(lines).toEqual([]);
    // A running periodic timer whose RELOAD becomes 0 stops at its next expiry.
    set(TIMER_PORT.RELOAD, 4);
    set(TIMER_PORT.CONTROL, C.ENABLE | C.PERIODIC | C.IRQ_ENABLE);
    set(TIMER_PORT.RELOAD, 0);
    timer.tick(4);
    expect(lines).toEqual([0]);
    expect(reg(TIMER_PORT.CONTROL)).toBe(C.PERIODIC | C.IRQ_ENABLE);
    timer.tick(100);
    expect(lines).toEqual([0]);
  });

  it('holds full 32-bit reload values', () => {
    const { timer, reg, set } = setup();
    set(TIMER_PORT.RELOAD, 0xffffffff);
    set(TIMER_PORT.CONTROL, C.ENABLE);
    timer.tick(0xfffffff0);
    expect(reg(TIMER_PORT.COUNT)).toBe(15);
  });

  it('reset stops it and clears every register', () => {
    const { timer, reg, set } = setup();
    set(TIMER_PORT.RELOAD, 10);
    set(TIMER_PORT.CONTROL, C.ENABLE | C.PERIODIC | C.IRQ_ENABLE);
    timer.tick(10);
    timer.reset();
    expect([0, 1, 2, 3].map(reg)).toEqual([0, 0, 0, 0]);
  });

  it('snapshot round trip: the restored timer fires at the same instructions', () => {
    const { timer, lines, reg, set } = setup();
    set(TIMER_PORT.RELOAD, 7);
    set(TIMER_PORT.CONTROL, C.ENABLE | C.PERIODIC | C.IRQ_ENABLE);
    timer.tick(10);
    const saved = timer.save();
    const firesAt = (): number[] => {
      const at: number[] = [];
      for (let i = 1; i <= 20; i++) {
        const before = lines.length;
        timer.tick(1);
        if (lines.length > before) at.push(i);
      }
      return at;
    };
    const first = firesAt();
    expect(first).toEqual([4, 11, 18]);
    set(TIMER_PORT.CONTROL, 0);
    set(TIMER_PORT.RELOAD, 99);
    timer.restore(saved);
    expect(timer.save()).toEqual(saved);
    expect([0, 1, 2, 3].map(reg)).toEqual([7, C.ENABLE | C.PERIODIC | C.IRQ_ENABLE, 4, 1]);
    expect(firesAt()).toEqual(first);
  });

  it('refuses a snapshot whose count contradicts ENABLE', () => {
    const { timer } = setup();
    const bad = new SnapshotWriter('TMR1').u32(5).u32(C.ENABLE).u32(0).u32(0).finish();
    expect(() => timer.restore(bad)).toThrow(DeviceError);
    expect(() => timer.restore(bad)).toThrow(/inconsistent/);
  });
});
