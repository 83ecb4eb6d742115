/**
 * Real-time clock. The time comes only from the injected `clock` (ms since the Unix epoch), never
 * from the host's real time, so a replayed run sees the same times (STYLE determinism).
 *
 * Port map (offsets from `base`, default 0x78; read-only, writes are ignored):
 *
 * | off | name       | R | meaning                                                                     |
 * |-----|------------|---|-----------------------------------------------------------------------------|
 * | 0   | SECONDS_LO | R | reads the clock once and latches it; low 32 bits of whole seconds.          |
 * | 1   | SECONDS_HI | R | high bits of the latched whole seconds.                                     |
 * | 2   | MILLIS     | R | milliseconds within the latched second (0..999).                            |
 *
 * Read SECONDS_LO first: the latch makes the three reads one consistent instant, with no tearing
 * at a second or 2^32-second boundary. Before the first SECONDS_LO read the latch holds 0.
 */
import type { PortDevice, Snapshotting } from './bus.js';
import { DeviceError, intOption } from './errors.js';
import { SnapshotReader, SnapshotWriter } from './snapshot.js';

export const RTC_PORT = { SECONDS_LO: 0, SECONDS_HI: 1, MILLIS: 2 } as const;
export const RTC_PORTS = 3;
export const RTC_DEFAULT_BASE = 0x78;

export interface RtcOptions {
  /** Milliseconds since the Unix epoch: a finite number >= 0 (fractions are dropped). */
  readonly clock: () => number;
  /** First port (default 0x78). */
  readonly base?: number;
}

export class Rtc implements PortDevice, Snapshotting {
  readonly name = 'rtc';
  readonly base: number;
  readonly ports: readonly [from: number, to: number];
  private readonly clock: () => number;
  /** The latched instant, whole milliseconds. */
  private latched = 0;

  constructor(options: RtcOptions) {
    if (typeof options?.clock !== 'function') {
      throw new DeviceError('CONFIG_INVALID', 'rtc', 'a clock function is required');
    }
    this.clock = options.clock;
    this.base = intOption(this.name, 'base', options.base ?? RTC_DEFAULT_BASE, 0, 0x10000 - RTC_PORTS);
    this.ports = [this.base, this.base + RTC_PORTS - 1];
  }

  private now(): number {
    const ms = this.clock();
    if (!(Number.isFinite(ms) && ms >= 0 && ms <= Number.MAX_SAFE_INTEGER)) {
      throw new DeviceError('CONFIG_INVALID', this.name, `clock returned ${ms}, not ms since the epoch`);
    }
    return Math.floor(ms);
  }

  read(port: number): number {
    switch (port - this.base) {
      case RTC_PORT.SECONDS_LO:
        this.latched = this.now();
        return Math.floor(this.latched / 1000) >>> 0;
      case RTC_PORT.SECONDS_HI:
        return Math.floor(Math.floor(this.latched / 1000) / 0x100000000) >>> 0;
      case RTC_PORT.MILLIS:
        return this.latched % 1000;
      default:
        return 0xffffffff;
    }
  }

  write(_port: number, _value: number): void {}

  reset(): void {
    this.latched = 0;
  }

  save(): Uint8Array {
    return new SnapshotWriter('RTC1').u53(this.latched).finish();
  }

  restore(bytes: Uint8Array): void {
    const r = new SnapshotReader(bytes, 'RTC1', this.name);
    const latched = r.u53();
    r.end();
    this.latched = latched;
  }
}
