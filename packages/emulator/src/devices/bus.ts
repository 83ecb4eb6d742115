/**
 * The I/O bus (issue 3, STYLE: the CPU reaches devices only through the bus). Devices claim port
 * ranges; port I/O moves 32-bit values. A device raises an interrupt line through the `irq`
 * callback it is given, which the interrupt controller owns. Devices reach the world outside the
 * machine only through typed events or injected back-ends (see each device).
 */
export interface PortDevice {
  /** Human-readable name, for traces and errors. */
  readonly name: string;
  /** Value read from `port` (an absolute port number inside the device's range). */
  read(port: number): number;
  write(port: number, value: number): void;
}

/** A device that does work as time passes (timer, disk completion, NIC receive). */
export interface Ticking {
  /**
   * Called by the machine with the instructions executed since the last call: at the end of each
   * run slice, and before the guest reaches the device's ports (machine.ts, exact device time).
   */
  tick(instructions: number): void;
}

export interface Snapshotting {
  /** The device's state as bytes (for machine save/restore). */
  save(): Uint8Array;
  restore(bytes: Uint8Array): void;
}

interface Mapping {
  readonly from: number;
  readonly to: number;
  readonly device: PortDevice;
}

export class IoBus {
  private readonly map: Mapping[] = [];
  /** Port -> device, built lazily for the 64 Ki port space. */
  private readonly byPort = new Array<PortDevice | undefined>(0x10000).fill(undefined);

  /** Claims ports [from, to] for a device; throws on overlap (a host configuration error). */
  attach(from: number, to: number, device: PortDevice): void {
    if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && to <= 0xffff && from <= to)) {
      throw new RangeError(`bad port range ${from}..${to} for ${device.name}`);
    }
    for (const m of this.map) {
      if (from <= m.to && to >= m.from) {
        throw new RangeError(`ports ${from}..${to} of ${device.name} overlap ${m.device.name}`);
      }
    }
    this.map.push({ from, to, device });
    for (let p = from; p <= to; p++) this.byPort[p] = device;
  }

  /** IN: an unclaimed port reads as all ones, as on a real bus. */
  read(port: number): number {
    const d = this.byPort[port & 0xffff];
    return d === undefined ? 0xffffffff : d.read(port & 0xffff) >>> 0;
  }

  /** OUT: a write to an unclaimed port is lost. */
  write(port: number, value: number): void {
    this.byPort[port & 0xffff]?.write(port & 0xffff, value >>> 0);
  }

  devices(): readonly PortDevice[] {
    return this.map.map((m) => m.device);
  }
}

/**
 * The interrupt controller's view used by the CPU: is an enabled line pending, and which vector.
 *
 * With IF = 1 the CPU asks `pending()` before every instruction. A source may also offer
 * `hasPending()`, which lets the CPU ask far less often with the same result: it promises that
 * (1) `hasPending()` is true exactly when `pending()` would return a vector, and (2) its answer
 * changes only through calls into the source itself (a device raising a line, the CPU's
 * `acknowledge`, a port access, reset or restore) - never by itself. The CPU then asks again only
 * at the start of a run, after an instruction that may reach a device (IN/OUT) or change IF, and
 * after a host hook, so interrupts are taken at exactly the same instruction boundaries.
 * A source whose answer can change otherwise (one that looks at the instruction count, say)
 * leaves `hasPending` out and is asked before every instruction.
 */
export interface InterruptSource {
  /** Vector of the highest-priority pending unmasked interrupt, or -1. Does not acknowledge. */
  pending(): number;
  /** The CPU took the interrupt: mark it in service. */
  acknowledge(vector: number): void;
  /** Optional: `pending() >= 0`, under the promise above. */
  hasPending?(): boolean;
}
