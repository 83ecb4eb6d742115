/**
 * Network interface. Frames are opaque bytes (the active-network layer above decides their
 * format); they leave the machine only as the `transmit` event and arrive only through the host's
 * `receive()`, into a bounded queue (excess frames are dropped and counted). The guest moves them
 * by DMA. DEV-4/DEV-7 (who owns the NIC, who gets its interrupt) are the VMM's business.
 *
 * Port map (offsets from `base`, default 0x300; 32-bit values):
 *
 * | off | name        | R/W | meaning                                                                        |
 * |-----|-------------|-----|--------------------------------------------------------------------------------|
 * | 0   | STATUS      | R   | bit 0 RX_AVAILABLE, bit 1 TX_READY (always 1: transmit is synchronous);        |
 * |     |             |     | bits 8..15 error of the last COMMAND: 0 OK, 1 BAD_LENGTH (TX_LEN 0 or > MTU),   |
 * |     |             |     | 2 NO_FRAME (queue empty), 3 DMA_ERROR (buffer outside memory), 4 BAD_COMMAND.  |
 * | 1   | CONTROL     | R/W | bit 0 receive interrupt enable. Reset 0.                                       |
 * | 2   | RX_LEN      | R   | length of the frame at the head of the queue, 0 when empty.                   |
 * | 3   | RX_COUNT    | R   | frames queued.                                                                 |
 * | 4   | ADDR        | R/W | physical address for RECEIVE and TRANSMIT.                                     |
 * | 5   | TX_LEN      | R/W | bytes to transmit.                                                             |
 * | 6   | COMMAND     | W   | 1 RECEIVE: copy the head frame to ADDR and dequeue it (on DMA_ERROR it stays); |
 * |     |             |     | 2 DISCARD: dequeue the head frame; 3 TRANSMIT: send TX_LEN bytes at ADDR.      |
 * | 7   | STAT_SELECT | R/W | which counter STAT_VALUE shows (NIC_STAT).                                     |
 * | 8   | STAT_VALUE  | R   | low 32 bits of that counter; 0 for an unknown index.                           |
 * | 9   | MTU         | R   | largest frame, in bytes.                                                       |
 * | 10  | MAC_HI      | R   | the interface's Ethernet-like address, bytes 0-1 (byte 0 in bits 8..15).       |
 * | 11  | MAC_LO      | R   | bytes 2-5 of that address (byte 2 in bits 24..31).                             |
 *
 * Interrupt: with CONTROL bit 0 set, each queued frame raises the line, and so does setting bit 0
 * while frames wait. The line is an edge: a driver empties the queue (RX_COUNT) in its handler.
 */
import type { PortDevice, Snapshotting } from './bus.js';
import { type Dma, noDma } from './dma.js';
import { DeviceError, IRQ_LINES, type IrqCallback, intOption, noIrq } from './errors.js';
import { Emitter } from './events.js';
import { SnapshotReader, SnapshotWriter } from './snapshot.js';

export const NIC_PORT = {
  STATUS: 0,
  CONTROL: 1,
  RX_LEN: 2,
  RX_COUNT: 3,
  ADDR: 4,
  TX_LEN: 5,
  COMMAND: 6,
  STAT_SELECT: 7,
  STAT_VALUE: 8,
  MTU: 9,
  MAC_HI: 10,
  MAC_LO: 11,
} as const;
export const NIC_PORTS = 12;
/** The address a NIC has unless given one: locally administered, unicast. */
export const NIC_DEFAULT_MAC: Readonly<Uint8Array> = Uint8Array.of(0x02, 0, 0, 0, 0, 0x01);
export const NIC_DEFAULT_BASE = 0x300;
export const NIC_STATUS = { RX_AVAILABLE: 1, TX_READY: 2 } as const;
export const NIC_CONTROL = { RX_IRQ: 1 } as const;
export const NIC_COMMAND = { RECEIVE: 1, DISCARD: 2, TRANSMIT: 3 } as const;
export const NIC_ERROR = { OK: 0, BAD_LENGTH: 1, NO_FRAME: 2, DMA_ERROR: 3, BAD_COMMAND: 4 } as const;

/** Counter indices for STAT_SELECT, in the order of {@link NicStats}. */
export const NIC_STAT = {
  RX_FRAMES: 0,
  RX_BYTES: 1,
  RX_DROPPED: 2,
  RX_INVALID: 3,
  TX_FRAMES: 4,
  TX_BYTES: 5,
  TX_ERRORS: 6,
} as const;

export interface NicStats {
  /** Frames accepted into the queue. */
  readonly rxFrames: number;
  readonly rxBytes: number;
  /** Frames dropped because the queue was full. */
  readonly rxDropped: number;
  /** Frames dropped for length 0 or above the MTU. */
  readonly rxInvalid: number;
  readonly txFrames: number;
  readonly txBytes: number;
  /** TRANSMIT commands that failed (BAD_LENGTH, DMA_ERROR). */
  readonly txErrors: number;
}

const STAT_COUNT = 7;

export interface NicOptions {
  readonly dma?: Dma;
  readonly irq?: IrqCallback;
  /** Interrupt line (default 3). */
  readonly line?: number;
  /** First port (default 0x300). */
  readonly base?: number;
  /** Largest frame in bytes (default 2048). */
  readonly mtu?: number;
  /** Frames the receive queue holds (default 64). */
  readonly queueCapacity?: number;
  /**
   * The interface's 6-byte address, readable at MAC_HI/MAC_LO (default 02:00:00:00:00:01). The
   * device itself neither stamps nor filters it: whoever carries the frames (the VMM's data
   * transfer manager) does.
   */
  readonly mac?: Uint8Array;
}

export interface NicEvents {
  /** A frame the guest sent (a copy the listener may keep). */
  transmit: Uint8Array;
}

export class Nic extends Emitter<NicEvents> implements PortDevice, Snapshotting {
  readonly name = 'nic';
  readonly base: number;
  readonly ports: readonly [from: number, to: number];
  readonly mtu: number;
  readonly queueCapacity: number;
  /** The interface's address (a copy of the option). */
  readonly mac: Uint8Array;
  private readonly dma: Dma;
  private readonly irq: IrqCallback;
  private readonly line: number;

  private queue: Uint8Array[] = [];
  private control = 0;
  private addr = 0;
  private txLen = 0;
  private error = 0;
  private statSelect = 0;
  private readonly counters = new Float64Array(STAT_COUNT);

  constructor(options: NicOptions = {}) {
    super();
    this.base = intOption(this.name, 'base', options.base ?? NIC_DEFAULT_BASE, 0, 0x10000 - NIC_PORTS);
    this.ports = [this.base, this.base + NIC_PORTS - 1];
    this.dma = options.dma ?? noDma;
    this.irq = options.irq ?? noIrq;
    this.line = intOption(this.name, 'line', options.line ?? 3, 0, IRQ_LINES - 1);
    this.mtu = intOption(this.name, 'mtu', options.mtu ?? 2048, 1, 1 << 20);
    this.queueCapacity = intOption(this.name, 'queueCapacity', options.queueCapacity ?? 64, 1, 1 << 16);
    const mac = options.mac ?? NIC_DEFAULT_MAC;
    if (!(mac instanceof Uint8Array) || mac.length !== 6) {
      throw new DeviceError('CONFIG_INVALID', this.name, 'mac must be 6 bytes');
    }
    this.mac = new Uint8Array(mac);
  }

  /** Host: a frame arrives from the network. Returns false when it was dropped (queue full or bad length). */
  receive(frame: Uint8Array): boolean {
    if (!(frame instanceof Uint8Array)) throw new TypeError('nic: a frame is a Uint8Array');
    if (frame.length === 0 || frame.length > this.mtu) {
      this.counters[NIC_STAT.RX_INVALID]!++;
      return false;
    }
    if (this.queue.length >= this.queueCapacity) {
      this.counters[NIC_STAT.RX_DROPPED]!++;
      return false;
    }
    // A copy (new Uint8Array, not slice: Buffer#slice would share the host's memory).
    this.queue.push(new Uint8Array(frame));
    this.counters[NIC_STAT.RX_FRAMES]!++;
    this.counters[NIC_STAT.RX_BYTES]! += frame.length;
    if ((this.control & NIC_CONTROL.RX_IRQ) !== 0) this.irq(this.line);
    return true;
  }

  /** Frames waiting in the receive queue (room left: `queueCapacity - queued`). */
  get queued(): number {
    return this.queue.length;
  }

  stats(): NicStats {
    const c = this.counters;
    return {
      rxFrames: c[NIC_STAT.RX_FRAMES]!,
      rxBytes: c[NIC_STAT.RX_BYTES]!,
      rxDropped: c[NIC_STAT.RX_DROPPED]!,
      rxInvalid: c[NIC_STAT.RX_INVALID]!,
      txFrames: c[NIC_STAT.TX_FRAMES]!,
      txBytes: c[NIC_STAT.TX_BYTES]!,
      txErrors: c[NIC_STAT.TX_ERRORS]!,
    };
  }

  private command(cmd: number): number {
    switch (cmd) {
      case NIC_COMMAND.RECEIVE: {
        const head = this.queue[0];
        if (head === undefined) return NIC_ERROR.NO_FRAME;
        try {
          this.dma.write(this.addr, head);
        } catch (e) {
          if (e instanceof RangeError) return NIC_ERROR.DMA_ERROR;
          throw e;
        }
        this.queue.shift();
        return NIC_ERROR.OK;
      }
      case NIC_COMMAND.DISCARD:
        return this.queue.shift() === undefined ? NIC_ERROR.NO_FRAME : NIC_ERROR.OK;
      case NIC_COMMAND.TRANSMIT: {
        if (this.txLen === 0 || this.txLen > this.mtu) {
          this.counters[NIC_STAT.TX_ERRORS]!++;
          return NIC_ERROR.BAD_LENGTH;
        }
        let frame: Uint8Array;
        try {
          frame = new Uint8Array(this.dma.read(this.addr, this.txLen));
        } catch (e) {
          if (!(e instanceof RangeError)) throw e;
          this.counters[NIC_STAT.TX_ERRORS]!++;
          return NIC_ERROR.DMA_ERROR;
        }
        this.counters[NIC_STAT.TX_FRAMES]!++;
        this.counters[NIC_STAT.TX_BYTES]! += frame.length;
        this.emit('transmit', frame);
        return NIC_ERROR.OK;
      }
      default:
        return NIC_ERROR.BAD_COMMAND;
    }
  }

  read(port: number): number {
    switch (port - this.base) {
      case NIC_PORT.STATUS:
        return (
          (this.queue.length > 0 ? NIC_STATUS.RX_AVAILABLE : 0) | NIC_STATUS.TX_READY | (this.error << 8)
        );
      case NIC_PORT.CONTROL:
        return this.control;
      case NIC_PORT.RX_LEN:
        return this.queue[0]?.length ?? 0;
      case NIC_PORT.RX_COUNT:
        return this.queue.length;
      case NIC_PORT.ADDR:
        return this.addr;
      case NIC_PORT.TX_LEN:
        return this.txLen;
      case NIC_PORT.COMMAND:
        return 0;
      case NIC_PORT.STAT_SELECT:
        return this.statSelect;
      case NIC_PORT.STAT_VALUE:
        return (this.counters[this.statSelect] ?? 0) % 0x100000000;
      case NIC_PORT.MTU:
        return this.mtu;
      case NIC_PORT.MAC_HI:
        return (this.mac[0]! << 8) | this.mac[1]!;
      case NIC_PORT.MAC_LO:
        return ((this.mac[2]! << 24) | (this.mac[3]! << 16) | (this.mac[4]! << 8) | this.mac[5]!) >>> 0;
      default:
        return 0xffffffff;
    }
  }

  write(port: number, value: number): void {
    switch (port - this.base) {
      case NIC_PORT.CONTROL: {
        const was = this.control;
        this.control = value & NIC_CONTROL.RX_IRQ;
        if (was === 0 && this.control !== 0 && this.queue.length > 0) this.irq(this.line);
        break;
      }
      case NIC_PORT.ADDR:
        this.addr = value >>> 0;
        break;
      case NIC_PORT.TX_LEN:
        this.txLen = value >>> 0;
        break;
      case NIC_PORT.COMMAND:
        this.error = this.command(value >>> 0);
        break;
      case NIC_PORT.STAT_SELECT:
        this.statSelect = value >>> 0;
        break;
    }
  }

  /** Machine reset: queue emptied, registers and counters cleared. */
  reset(): void {
    this.queue = [];
    this.control = 0;
    this.addr = 0;
    this.txLen = 0;
    this.error = 0;
    this.statSelect = 0;
    this.counters.fill(0);
  }

  save(): Uint8Array {
    const w = new SnapshotWriter('NIC1')
      .u32(this.control)
      .u32(this.addr)
      .u32(this.txLen)
      .u8(this.error)
      .u32(this.statSelect);
    for (const c of this.counters) w.u53(c);
    w.u32(this.queue.length);
    for (const f of this.queue) w.bytes(f);
    return w.finish();
  }

  restore(bytes: Uint8Array): void {
    const r = new SnapshotReader(bytes, 'NIC1', this.name);
    const control = r.int('control', 0, NIC_CONTROL.RX_IRQ);
    const addr = r.u32();
    const txLen = r.u32();
    const error = r.u8();
    if (error > NIC_ERROR.BAD_COMMAND) r.bad(`error code ${error}`);
    const statSelect = r.u32();
    const counters: number[] = [];
    for (let i = 0; i < STAT_COUNT; i++) counters.push(r.u53());
    const n = r.int('queued frames', 0, this.queueCapacity);
    const queue: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const f = r.bytes('frame', this.mtu);
      if (f.length === 0) r.bad('empty frame');
      queue.push(f);
    }
    r.end();
    this.control = control;
    this.addr = addr;
    this.txLen = txLen;
    this.error = error;
    this.statSelect = statSelect;
    this.counters.set(counters);
    this.queue = queue;
  }
}
