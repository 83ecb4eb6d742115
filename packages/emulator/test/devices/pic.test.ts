import { describe, expect, it } from 'vitest';
import { DeviceError } from '../../src/devices/errors.js';
import { PIC_PORT, Pic } from '../../src/devices/pic.js';
import { busWith } from './helpers.js';

function setup() {
  const pic = new Pic();
  const bus = busWith(pic);
  const reg = (off: number) => bus.read(pic.base + off);
  const set = (off: number, v: number) => bus.write(pic.base + off, v);
  return { pic, bus, reg, set };
}

describe('pic', () => {
  it('claims ports 0x20..0x26 and comes out of reset with every line masked', () => {
    const { pic, reg } = setup();
    expect(pic.ports).toEqual([0x20, 0x26]);
    expect(reg(PIC_PORT.VECTOR_BASE)).toBe(0x20);
    expect(reg(PIC_PORT.MASK)).toBe(0xffff);
    expect(reg(PIC_PORT.PENDING)).toBe(0);
    expect(reg(PIC_PORT.IN_SERVICE)).toBe(0);
    expect(reg(PIC_PORT.POLL)).toBe(0xffffffff);
    expect(pic.pending()).toBe(-1);
  });

  it('hasPending() is exactly pending() >= 0 in every state (the InterruptSource promise the CPU relies on)', () => {
    const { pic, reg, set } = setup();
    const snapshot = pic.save();
    const steps: [string, () => void, boolean][] = [
      ['reset', () => {}, false],
      ['raise masked line 3', () => pic.raise(3), false],
      ['unmask line 3', () => set(PIC_PORT.MASK, 0xfff7), true],
      ['acknowledge 0x23', () => pic.acknowledge(0x23), false],
      ['raise line 3 while it is in service', () => pic.raise(3), false],
      ['EOI', () => set(PIC_PORT.EOI, 0), true],
      ['cancel line 3 through PENDING', () => set(PIC_PORT.PENDING, 0b1000), false],
      [
        'raise line 5 and unmask every line',
        () => {
          pic.raise(5);
          set(PIC_PORT.MASK, 0);
        },
        true,
      ],
      [
        'acknowledge 0x25, raise 7 behind it',
        () => {
          pic.acknowledge(0x25);
          pic.raise(7);
        },
        false,
      ],
      ['specific EOI of line 5', () => set(PIC_PORT.EOI_SPECIFIC, 5), true],
      ['restore the reset snapshot', () => pic.restore(snapshot), false],
      [
        'raise line 0 after reset()',
        () => {
          pic.reset();
          pic.raise(0);
        },
        false,
      ],
    ];
    for (const [name, step, expected] of steps) {
      step();
      expect([name, pic.hasPending(), pic.pending() >= 0, reg(PIC_PORT.POLL) !== 0xffffffff]).toEqual([
        name,
        expected,
        expected,
        expected,
      ]);
    }
  });

  it('latches a masked line in IRR and delivers it once unmasked', () => {
    const { pic, reg, set } = setup();
    pic.raise(3);
    expect(reg(PIC_PORT.PENDING)).toBe(0b1000);
    expect(pic.pending()).toBe(-1);
    set(PIC_PORT.MASK, 0xfff7);
    expect(reg(PIC_PORT.MASK)).toBe(0xfff7);
    expect(pic.pending()).toBe(0x23);
    expect(reg(PIC_PORT.POLL)).toBe(0x23);
    // POLL does not acknowledge.
    expect(reg(PIC_PORT.PENDING)).toBe(0b1000);
  });

  it('delivers by fixed priority and nests only higher-priority lines', () => {
    const { pic, reg, set } = setup();
    set(PIC_PORT.MASK, 0);
    pic.raise(5);
    pic.raise(2);
    expect(pic.pending()).toBe(0x22);
    pic.acknowledge(0x22);
    expect(reg(PIC_PORT.IN_SERVICE)).toBe(0b100);
    expect(reg(PIC_PORT.PENDING)).toBe(0b100000);
    expect(pic.pending()).toBe(-1); // 5 waits behind in-service 2
    pic.raise(1);
    expect(pic.pending()).toBe(0x21); // 1 outranks 2: nests
    pic.acknowledge(0x21);
    expect(reg(PIC_PORT.IN_SERVICE)).toBe(0b110);
    set(PIC_PORT.EOI, 0); // ends line 1, the highest in service
    expect(reg(PIC_PORT.IN_SERVICE)).toBe(0b100);
    expect(pic.pending()).toBe(-1);
    set(PIC_PORT.EOI, 0);
    expect(reg(PIC_PORT.IN_SERVICE)).toBe(0);
    expect(pic.pending()).toBe(0x25);
  });

  it('blocks a line re-raised while it is in service until its EOI', () => {
    const { pic, set } = setup();
    set(PIC_PORT.MASK, 0);
    pic.raise(4);
    pic.acknowledge(0x24);
    pic.raise(4);
    expect(pic.pending()).toBe(-1);
    set(PIC_PORT.EOI_SPECIFIC, 4);
    expect(pic.pending()).toBe(0x24);
  });

  it('coalesces edges on a line that is already pending', () => {
    const { pic, set } = setup();
    set(PIC_PORT.MASK, 0);
    pic.raise(6);
    pic.raise(6);
    pic.acknowledge(0x26);
    set(PIC_PORT.EOI, 0);
    expect(pic.pending()).toBe(-1);
  });

  it('specific EOI ends the named line only', () => {
    const { pic, reg, set } = setup();
    set(PIC_PORT.MASK, 0);
    pic.raise(4);
    pic.acknowledge(0x24);
    pic.raise(1);
    pic.acknowledge(0x21);
    expect(reg(PIC_PORT.IN_SERVICE)).toBe(0b10010);
    set(PIC_PORT.EOI_SPECIFIC, 4);
    expect(reg(PIC_PORT.IN_SERVICE)).toBe(0b10);
    set(PIC_PORT.EOI_SPECIFIC, 0x11); // only the low 4 bits count: line 1
    expect(reg(PIC_PORT.IN_SERVICE)).toBe(0);
  });

  it('skips masked lines in priority order', () => {
    const { pic, set } = setup();
    pic.raise(0);
    pic.raise(7);
    pic.raise(15);
    set(PIC_PORT.MASK, 0b1);
    expect(pic.pending()).toBe(0x27);
    set(PIC_PORT.MASK, 0b10000001);
    expect(pic.pending()).toBe(0x2f);
    set(PIC_PORT.MASK, 0xffff);
    expect(pic.pending()).toBe(-1);
  });

  it('takes the vector base by port write, low nibble ignored', () => {
    const { pic, reg, set } = setup();
    set(PIC_PORT.VECTOR_BASE, 0x47);
    expect(reg(PIC_PORT.VECTOR_BASE)).toBe(0x40);
    set(PIC_PORT.VECTOR_BASE, 0x1f0);
    expect(reg(PIC_PORT.VECTOR_BASE)).toBe(0xf0);
    set(PIC_PORT.MASK, 0);
    pic.raise(15);
    expect(pic.pending()).toBe(0xff);
    pic.acknowledge(0xff);
    expect(reg(PIC_PORT.IN_SERVICE)).toBe(0x8000);
  });

  it('cancels pending lines written as 1s to PENDING', () => {
    const { pic, reg, set } = setup();
    pic.raise(2);
    pic.raise(9);
    set(PIC_PORT.PENDING, 0b100);
    expect(reg(PIC_PORT.PENDING)).toBe(0x200);
  });

  it('refuses host misuse with typed errors', () => {
    const { pic, set } = setup();
    expect(() => pic.raise(16)).toThrow(RangeError);
    expect(() => pic.raise(-1)).toThrow(RangeError);
    expect(() => pic.acknowledge(0x10)).toThrow(RangeError);
    set(PIC_PORT.MASK, 0);
    pic.raise(3);
    pic.raise(5);
    const err = (() => {
      try {
        pic.acknowledge(0x25); // 3 is the one pending()
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).code).toBe('BAD_STATE');
    expect(() => new Pic({ base: 0xfffa })).toThrow(DeviceError);
  });

  it('reset restores power-on values', () => {
    const { pic, reg, set } = setup();
    set(PIC_PORT.VECTOR_BASE, 0x80);
    set(PIC_PORT.MASK, 0);
    pic.raise(1);
    pic.acknowledge(0x81);
    pic.raise(2);
    pic.reset();
    expect([0, 1, 2, 3].map(reg)).toEqual([0x20, 0xffff, 0, 0]);
  });

  it('answers at a configured base', () => {
    const pic = new Pic({ base: 0xa0 });
    const bus = busWith(pic);
    expect(pic.ports).toEqual([0xa0, 0xa6]);
    expect(bus.read(0xa0 + PIC_PORT.MASK)).toBe(0xffff);
    expect(bus.read(0x21)).toBe(0xffffffff);
  });

  it('snapshot round trip restores IRR, ISR, IMR and the vector base exactly', () => {
    const { pic, reg, set } = setup();
    set(PIC_PORT.VECTOR_BASE, 0x30);
    set(PIC_PORT.MASK, 0xff00);
    pic.raise(2);
    pic.acknowledge(0x32);
    pic.raise(4);
    pic.raise(12);
    const saved = pic.save();
    const regs = [0, 1, 2, 3].map(reg);
    set(PIC_PORT.EOI, 0);
    set(PIC_PORT.MASK, 0);
    set(PIC_PORT.VECTOR_BASE, 0x50);
    pic.raise(0);
    pic.restore(saved);
    expect([0, 1, 2, 3].map(reg)).toEqual(regs);
    expect(regs).toEqual([0x30, 0xff00, 0x1010, 0b100]);
    expect(pic.save()).toEqual(saved);
    expect(pic.pending()).toBe(-1);
    set(PIC_PORT.EOI, 0);
    expect(pic.pending()).toBe(0x34);
  });
});
