/**
 * Programmable interval timer counting executed instructions, not wall time, so a run is
 * reproducible (STYLE determinism). The machine calls `tick(n)` with the instructions executed
 * since the last call, and `nextEvent()` tells it how far it may run (or skip while halted) before
 * the timer needs a tick. The machine keeps this exact (machine.ts): it ticks the timer up to an
 * instruction that reaches its ports before the access, and that instruction's retirement is the
 * first tick after it, so a timer started at instruction count n expires when the count reaches
 * n + RELOAD, and its interrupt is taken before that instruction.
 *
 * Port map (offsets from `base`, default 0x40; 32-bit values):
 *
 * | off | name    | R/W | meaning                                                                       |
 * |-----|---------|-----|-------------------------------------------------------------------------------|
 * | 0   | RELOAD  | R/W | period in instructions; used when the timer starts, restarts or re-arms.      |
 * | 1   | CONTROL | R/W | bit 0 ENABLE, bit 1 PERIODIC (0 = one-shot), bit 2 IRQ_ENABLE; bit 3 RESTART  |
 * |     |         |     | (write-only, reads 0). Setting ENABLE from 0, or writing RESTART, loads COUNT |
 * |     |         |     | from RELOAD. Reset 0.                                                         |
 * | 2   | COUNT   | R   | instructions left until expiry; 0 when stopped.                               |
 * | 3   | STATUS  | R/W | bit 0 EXPIRED, set at each expiry, cleared by writing 1 to bit 0.             |
 *
 * At expiry the timer sets EXPIRED and, with IRQ_ENABLE, raises its line once (the line is an edge:
 * periods that elapse within one tick are one interrupt). Periodic mode re-arms keeping phase, so
 * an expiry is due every RELOAD instructions; one-shot mode clears ENABLE. A RELOAD of 0 never
 * expires: starting with it leaves COUNT 0 and ENABLE clear, and a periodic timer whose RELOAD was
 * set to 0 stops at its next expiry.
 */
import type { PortDevice, Snapshotting, Ticking } from './bus.js';
import { IRQ_LINES, type IrqCallback, intOption, noIrq } from './errors.js';
import { SnapshotReader, SnapshotWriter } from './snapshot.js';

export const TIMER_PORT = { RELOAD: 0, CONTROL: 1, COUNT: 2, STATUS: 3 } as const;
export const TIMER_PORTS = 4;
export const TIMER_DEFAULT_BASE = 0x40;
export const TIMER_CONTROL = { ENABLE: 1, PERIODIC: 2, IRQ_ENABLE: 4, RESTART: 8 } as const;
export const TIMER_STATUS = { EXPIRED: 1 } as const;

const CONTROL_BITS = TIMER_CONTROL.ENABLE | TIMER_CONTROL.PERIODIC | TIMER_CONTROL.IRQ_ENABLE;

export interface TimerOptions {
  /** First port (default 0x40). */
  readonly base?: number;
  readonly irq?: IrqCallback;
  /** Interrupt line (default 0, the highest priority). */
  readonly line?: number;
}

export class Timer implements PortDevice, Ticking, Snapshotting {
  readonly name = 'timer';
  readonly base: number;
  readonly ports: readonly [from: number, to: number];
  private readonly irq: IrqCallback;
  private readonly line: number;

  private reload = 0;
  private control = 0;
  private count = 0;
  private status = 0;

  constructor(options: TimerOptions = {}) {
    this.base = intOption(this.name, 'base', options.base ?? TIMER_DEFAULT_BASE, 0, 0x10000 - TIMER_PORTS);
    this.ports = [this.base, this.base + TIMER_PORTS - 1];
    this.irq = options.irq ?? noIrq;
    this.line = intOption(this.name, 'line', options.line ?? 0, 0, IRQ_LINES - 1);
  }

  private start(): void {
    this.count = this.reload;
    if (this.count === 0) this.control &= ~TIMER_CONTROL.ENABLE;
  }

  tick(instructions: number): void {
    if ((this.control & TIMER_CONTROL.ENABLE) === 0 || !(instructions > 0)) return;
    if (instructions < this.count) {
      this.count -= instructions;
      return;
    }
    const over = instructions - this.count;
    this.status |= TIMER_STATUS.EXPIRED;
    if ((this.control & TIMER_CONTROL.PERIODIC) !== 0 && this.reload > 0) {
      this.count = this.reload - (over % this.reload);
    } else {
      this.count = 0;
      this.control &= ~TIMER_CONTROL.ENABLE;
    }
    if ((this.control & TIMER_CONTROL.IRQ_ENABLE) !== 0) this.irq(this.line);
  }

  /** Instructions until the next expiry, or Infinity when stopped. */
  nextEvent(): number {
    return (this.control & TIMER_CONTROL.ENABLE) === 0 ? Number.POSITIVE_INFINITY : this.count;
  }

  read(port: number): number {
    switch (port - this.base) {
      case TIMER_PORT.RELOAD:
        return this.reload;
      case TIMER_PORT.CONTROL:
        return this.control;
      case TIMER_PORT.COUNT:
        return this.count;
      case TIMER_PORT.STATUS:
        return this.status;
      default:
        return 0xffffffff;
    }
  }

  write(port: number, value: number): void {
    switch (port - this.base) {
      case TIMER_PORT.RELOAD:
        this.reload = value >>> 0;
        break;
      case TIMER_PORT.CONTROL: {
        const wasEnabled = (this.control & TIMER_CONTROL.ENABLE) !== 0;
        this.control = value & CONTROL_BITS;
        const enabled = (this.control & TIMER_CONTROL.ENABLE) !== 0;
        if (!enabled) this.count = 0;
        else if (!wasEnabled || (value & TIMER_CONTROL.RESTART) !== 0) this.start();
        break;
      }
      case TIMER_PORT.STATUS:
        this.status &= ~(value & TIMER_STATUS.EXPIRED);
        break;
    }
  }

  reset(): void {
    this.reload = 0;
    this.control = 0;
    this.count = 0;
    this.status = 0;
  }

  save(): Uint8Array {
    return new SnapshotWriter('TMR1')
      .u32(this.reload)
      .u32(this.control)
      .u32(this.count)
      .u32(this.status)
      .finish();
  }

  restore(bytes: Uint8Array): void {
    const r = new SnapshotReader(bytes, 'TMR1', this.name);
    const reload = r.u32();
    const control = r.int('control', 0, CONTROL_BITS);
    const count = r.u32();
    const status = r.int('status', 0, TIMER_STATUS.EXPIRED);
    r.end();
    const enabled = (control & TIMER_CONTROL.ENABLE) !== 0;
    if (enabled !== count > 0) r.bad(`count ${count} inconsistent with control ${control}`);
    this.reload = reload;
    this.control = control;
    this.count = count;
    this.status = status;
  }
}
