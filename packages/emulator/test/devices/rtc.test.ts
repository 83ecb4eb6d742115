import { describe, expect, it } from 'vitest';
import { DeviceError } from '../../src/devices/errors.js';
import { RTC_PORT, Rtc, type RtcOptions } from '../../src/devices/rtc.js';
import { busWith } from './helpers.js';

function setup(start: number) {
  let now = start;
  let calls = 0;
  const rtc = new Rtc({
    clock: () => {
      calls++;
      return now;
    },
  });
  const bus = busWith(rtc);
  const reg = (off: number) => bus.read(rtc.base + off);
  return {
    rtc,
    bus,
    reg,
    setNow: (ms: number) => {
      now = ms;
    },
    calls: () => calls,
  };
}

describe('rtc', () => {
  it('claims ports 0x78..0x7A and reads the injected clock as seconds and milliseconds', () => {
    const { rtc, reg } = setup(1_700_000_123_456);
    expect(rtc.ports).toEqual([0x78, 0x7a]);
    expect(reg(RTC_PORT.SECONDS_LO)).toBe(1_700_000_123);
    expect(reg(RTC_PORT.SECONDS_HI)).toBe(0);
    expect(reg(RTC_PORT.MILLIS)).toBe(456);
  });

  it('latches on SECONDS_LO so the three reads are one instant', () => {
    const { reg, setNow, calls } = setup(4_294_967_295_999); // 2^32 - 1 s + 999 ms
    expect(reg(RTC_PORT.SECONDS_LO)).toBe(0xffffffff);
    setNow(4_294_967_296_000); // the clock crosses 2^32 s between the reads
    expect(reg(RTC_PORT.SECONDS_HI)).toBe(0);
    expect(reg(RTC_PORT.MILLIS)).toBe(999);
    expect(calls()).toBe(1);
    expect(reg(RTC_PORT.SECONDS_LO)).toBe(0);
    expect(reg(RTC_PORT.SECONDS_HI)).toBe(1);
    expect(reg(RTC_PORT.MILLIS)).toBe(0);
    expect(calls()).toBe(2);
  });

  it('holds 0 before the first latch and drops fractional milliseconds', () => {
    const { reg, setNow } = setup(5_000.9);
    expect(reg(RTC_PORT.SECONDS_HI)).toBe(0);
    expect(reg(RTC_PORT.MILLIS)).toBe(0);
    setNow(12_345.75);
    expect(reg(RTC_PORT.SECONDS_LO)).toBe(12);
    expect(reg(RTC_PORT.MILLIS)).toBe(345);
  });

  it('is read-only: writes change nothing', () => {
    const { bus, rtc, reg } = setup(86_400_000);
    expect(reg(RTC_PORT.SECONDS_LO)).toBe(86_400);
    for (const off of [0, 1, 2]) bus.write(rtc.base + off, 0x1234);
    expect(reg(RTC_PORT.MILLIS)).toBe(0);
    expect(reg(RTC_PORT.SECONDS_LO)).toBe(86_400);
  });

  it('refuses a missing clock and a clock that is not ms since the epoch', () => {
    expect(() => new Rtc({} as RtcOptions)).toThrow(DeviceError);
    for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      const { reg } = setup(bad);
      expect(() => reg(RTC_PORT.SECONDS_LO), `clock ${bad}`).toThrow(/not ms since the epoch/);
    }
  });

  it('reset clears the latch; snapshot round trip restores it', () => {
    const { rtc, reg, setNow } = setup(3_000_777);
    reg(RTC_PORT.SECONDS_LO);
    const saved = rtc.save();
    setNow(9_000_001);
    reg(RTC_PORT.SECONDS_LO);
    rtc.restore(saved);
    expect(rtc.save()).toEqual(saved);
    expect(reg(RTC_PORT.MILLIS)).toBe(777);
    rtc.reset();
    expect(reg(RTC_PORT.MILLIS)).toBe(0);
  });
});
