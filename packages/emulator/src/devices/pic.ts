/**
 * Interrupt controller: 16 edge-triggered lines with fixed priority (line 0 highest), after the
 * 8259A in fully nested mode. Devices raise lines through the `IrqCallback` the machine wires to
 * {@link Pic.raise}; the CPU asks {@link Pic.pending} before an instruction whenever
 * {@link Pic.hasPending} may have changed (InterruptSource in bus.ts) and calls
 * {@link Pic.acknowledge} when it takes the interrupt. Hardware interrupts reach the core first
 * (DEV-3); which guest gets them is the VMM's business, not this one.
 *
 * Port map (offsets from `base`, default 0x20; 32-bit values):
 *
 * | off | name         | R/W | meaning                                                                 |
 * |-----|--------------|-----|-------------------------------------------------------------------------|
 * | 0   | VECTOR_BASE  | R/W | vector of line 0; line n is VECTOR_BASE + n. Write keeps `value & 0xF0` |
 * |     |              |     | so the 16 vectors never wrap past 255. Reset 0x20.                      |
 * | 1   | MASK         | R/W | IMR: bit n = 1 masks line n (it still latches in IRR). Reset 0xFFFF.    |
 * | 2   | PENDING      | R/W | IRR: bit n = line n raised, not yet acknowledged. Write 1s to cancel.   |
 * | 3   | IN_SERVICE   | R   | ISR: bit n = line n acknowledged, not yet ended by EOI.                 |
 * | 4   | EOI          | W   | any value: end the highest-priority in-service line. Reads 0.           |
 * | 5   | EOI_SPECIFIC | W   | end line `value & 15`. Reads 0.                                         |
 * | 6   | POLL         | R   | `pending()` without acknowledging: a vector, or 0xFFFFFFFF for none.   |
 *
 * A line is delivered when it is pending, unmasked, and no line of equal or higher priority is in
 * service; raising a line that is already pending is one edge (coalesced), as on the 8259A. All
 * lines start masked, so nothing is delivered before the guest has installed its handlers.
 */
import type { InterruptSource, PortDevice, Snapshotting } from './bus.js';
import { DeviceError, IRQ_LINES, intOption } from './errors.js';
import { SnapshotReader, SnapshotWriter } from './snapshot.js';

export const PIC_PORT = {
  VECTOR_BASE: 0,
  MASK: 1,
  PENDING: 2,
  IN_SERVICE: 3,
  EOI: 4,
  EOI_SPECIFIC: 5,
  POLL: 6,
} as const;
export const PIC_PORTS = 7;
export const PIC_DEFAULT_BASE = 0x20;
export const PIC_RESET_VECTOR_BASE = 0x20;
export const PIC_RESET_MASK = 0xffff;

export interface PicOptions {
  /** First port (default 0x20); the device answers on base .. base + 6. */
  readonly base?: number;
}

const LINE_BITS = 0xffff;

export class Pic implements PortDevice, InterruptSource, Snapshotting {
  readonly name = 'pic';
  readonly base: number;
  /** The port range to give IoBus.attach. */
  readonly ports: readonly [from: number, to: number];

  private vectorBase = PIC_RESET_VECTOR_BASE;
  private imr = PIC_RESET_MASK;
  private irr = 0;
  private isr = 0;

  constructor(options: PicOptions = {}) {
    this.base = intOption(this.name, 'base', options.base ?? PIC_DEFAULT_BASE, 0, 0x10000 - PIC_PORTS);
    this.ports = [this.base, this.base + PIC_PORTS - 1];
  }

  /** An edge on `line` (0..15): latch it in IRR. */
  raise(line: number): void {
    if (!(Number.isInteger(line) && line >= 0 && line < IRQ_LINES)) {
      throw new RangeError(`pic: no interrupt line ${line}`);
    }
    this.irr |= 1 << line;
  }

  /** The line `pending()` would deliver, or -1. */
  private deliverable(): number {
    const ready = this.irr & ~this.imr & LINE_BITS;
    if (ready === 0) return -1;
    const line = 31 - Math.clz32(ready & -ready);
    // Blocked by any in-service line of equal or higher priority (lower number).
    if ((this.isr & ((2 << line) - 1)) !== 0) return -1;
    return line;
  }

  pending(): number {
    const line = this.deliverable();
    return line < 0 ? -1 : this.vectorBase + line;
  }

  /**
   * `pending() >= 0`. Depends only on IRR, IMR and ISR, which change only through this object's
   * methods, so the CPU may ask it rarely (the InterruptSource contract in bus.ts).
   */
  hasPending(): boolean {
    return this.deliverable() >= 0;
  }

  acknowledge(vector: number): void {
    const line = vector - this.vectorBase;
    if (!(Number.isInteger(line) && line >= 0 && line < IRQ_LINES)) {
      throw new RangeError(`pic: vector ${vector} is not one of ${this.vectorBase}..${this.vectorBase + 15}`);
    }
    if (line !== this.deliverable()) {
      throw new DeviceError('BAD_STATE', this.name, `vector ${vector} is not the one pending()`);
    }
    this.irr &= ~(1 << line);
    this.isr |= 1 << line;
  }

  read(port: number): number {
    switch (port - this.base) {
      case PIC_PORT.VECTOR_BASE:
        return this.vectorBase;
      case PIC_PORT.MASK:
        return this.imr;
      case PIC_PORT.PENDING:
        return this.irr;
      case PIC_PORT.IN_SERVICE:
        return this.isr;
      case PIC_PORT.EOI:
      case PIC_PORT.EOI_SPECIFIC:
        return 0;
      case PIC_PORT.POLL:
        return this.pending() >>> 0;
      default:
        return 0xffffffff;
    }
  }

  write(port: number, value: number): void {
    switch (port - this.base) {
      case PIC_PORT.VECTOR_BASE:
        this.vectorBase = value & 0xf0;
        break;
      case PIC_PORT.MASK:
        this.imr = value & LINE_BITS;
        break;
      case PIC_PORT.PENDING:
        this.irr &= ~value;
        break;
      case PIC_PORT.EOI:
        // Non-specific EOI: the highest-priority in-service line is the one being handled.
        this.isr &= this.isr - 1;
        break;
      case PIC_PORT.EOI_SPECIFIC:
        this.isr &= ~(1 << (value & 15));
        break;
    }
  }

  reset(): void {
    this.vectorBase = PIC_RESET_VECTOR_BASE;
    this.imr = PIC_RESET_MASK;
    this.irr = 0;
    this.isr = 0;
  }

  save(): Uint8Array {
    return new SnapshotWriter('PIC1').u32(this.vectorBase).u32(this.imr).u32(this.irr).u32(this.isr).finish();
  }

  restore(bytes: Uint8Array): void {
    const r = new SnapshotReader(bytes, 'PIC1', this.name);
    const vectorBase = r.int('vector base', 0, 0xf0);
    if ((vectorBase & 0x0f) !== 0) r.bad(`vector base ${vectorBase} not a multiple of 16`);
    const imr = r.int('mask', 0, LINE_BITS);
    const irr = r.int('pending', 0, LINE_BITS);
    const isr = r.int('in service', 0, LINE_BITS);
    r.end();
    this.vectorBase = vectorBase;
    this.imr = imr;
    this.irr = irr;
    this.isr = isr;
  }
}
