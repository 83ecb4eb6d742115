/**
 * Block disk controller: 512-byte sectors of an injected {@link BlockBackend}, moved to and from
 * guest memory by DMA. A command completes `latency` instructions after it is issued (Ticking), so
 * the guest sees an asynchronous device: BUSY, then status and an optional interrupt. The whole
 * transfer happens at completion. The issuing instruction's retirement is the first of the
 * `latency` (the machine ticks devices exactly, machine.ts): a command issued at instruction count
 * n completes when the count reaches n + latency, its interrupt taken before that instruction. Blocks the host marks with `protect()` (DEV-11, the profile's
 * `protected_blocks`) refuse writes with WRITE_PROTECTED and stay unchanged, and the refusal is
 * reported as the `writeProtected` event for the log (TB-9). The disk this device sees is already
 * the VE's virtual disk (TB-9 translation and mirroring are the VMM's, DEV-8), so an LBA past its
 * end is SECTOR_NOT_FOUND.
 *
 * Port map (offsets from `base`, default 0x1F0; 32-bit values):
 *
 * | off | name    | R/W | meaning                                                                          |
 * |-----|---------|-----|----------------------------------------------------------------------------------|
 * | 0   | LBA     | R/W | first sector.                                                                    |
 * | 1   | COUNT   | R/W | sectors to move, 1..maxSectors.                                                  |
 * | 2   | ADDR    | R/W | physical address of the memory buffer (COUNT * 512 bytes).                       |
 * | 3   | COMMAND | R/W | W: 1 READ (disk -> memory), 2 WRITE (memory -> disk); ignored while BUSY.        |
 * |     |         |     | R: the last command accepted.                                                    |
 * | 4   | STATUS  | R   | bit 0 BUSY; bits 8..15 error of the last command: 0 OK, 1 SECTOR_NOT_FOUND,      |
 * |     |         |     | 2 WRITE_PROTECTED, 3 DMA_ERROR (buffer outside memory), 4 BAD_COMMAND            |
 * |     |         |     | (unknown command, COUNT 0 or above maxSectors).                                  |
 * | 5   | CONTROL | R/W | bit 0 interrupt on completion. Reset 0.                                          |
 * | 6   | SECTORS | R   | capacity in sectors.                                                             |
 *
 * A failed command transfers nothing: the range and the protection of every sector are checked
 * before any byte moves. Backend I/O failures are host errors and are thrown.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import type { PortDevice, Snapshotting, Ticking } from './bus.js';
import { type Dma, noDma } from './dma.js';
import { DeviceError, IRQ_LINES, type IrqCallback, intOption, noIrq } from './errors.js';
import { Emitter } from './events.js';
import { SnapshotReader, SnapshotWriter } from './snapshot.js';

export const SECTOR_SIZE = 512;
export const DISK_PORT = {
  LBA: 0,
  COUNT: 1,
  ADDR: 2,
  COMMAND: 3,
  STATUS: 4,
  CONTROL: 5,
  SECTORS: 6,
} as const;
export const DISK_PORTS = 7;
export const DISK_DEFAULT_BASE = 0x1f0;
export const DISK_COMMAND = { READ: 1, WRITE: 2 } as const;
export const DISK_STATUS = { BUSY: 1 } as const;
export const DISK_CONTROL = { IRQ_ENABLE: 1 } as const;
export const DISK_ERROR = {
  OK: 0,
  SECTOR_NOT_FOUND: 1,
  WRITE_PROTECTED: 2,
  DMA_ERROR: 3,
  BAD_COMMAND: 4,
} as const;

/** Sector storage. `out` and `data` are whole sectors (a positive multiple of 512 bytes). */
export interface BlockBackend {
  readonly sectors: number;
  read(lba: number, out: Uint8Array): void;
  write(lba: number, data: Uint8Array): void;
}

export interface DiskOptions {
  readonly backend: BlockBackend;
  readonly dma?: Dma;
  readonly irq?: IrqCallback;
  /** Interrupt line (default 2). */
  readonly line?: number;
  /** First port (default 0x1F0). */
  readonly base?: number;
  /** Instructions from COMMAND to completion (default 64; 0 completes inside the COMMAND write). */
  readonly latency?: number;
  /** Largest COUNT (default 128 sectors, 64 KiB). */
  readonly maxSectors?: number;
  /** Write-protected sectors, as by `protect()`. */
  readonly protectedBlocks?: Iterable<number>;
}

export interface DiskEvents {
  /** A WRITE was refused because `lba` (the first protected sector in the request) is protected (TB-9). */
  writeProtected: { readonly lba: number; readonly count: number; readonly protectedLba: number };
}

export class Disk extends Emitter<DiskEvents> implements PortDevice, Ticking, Snapshotting {
  readonly name = 'disk';
  readonly base: number;
  readonly ports: readonly [from: number, to: number];
  private readonly backend: BlockBackend;
  private readonly dma: Dma;
  private readonly irq: IrqCallback;
  private readonly line: number;
  private readonly latency: number;
  private readonly maxSectors: number;
  private readonly buffer: Uint8Array;
  private readonly protectedSet = new Set<number>();

  private lba = 0;
  private count = 0;
  private addr = 0;
  private command = 0;
  private busy = false;
  private error = 0;
  private control = 0;
  /** Instructions until the busy command completes. */
  private remaining = 0;

  constructor(options: DiskOptions) {
    super();
    const backend = options?.backend;
    if (backend === undefined) throw new DeviceError('CONFIG_INVALID', 'disk', 'a block backend is required');
    intOption(this.name, 'backend.sectors', backend.sectors, 1, 0xffffffff);
    this.backend = backend;
    this.base = intOption(this.name, 'base', options.base ?? DISK_DEFAULT_BASE, 0, 0x10000 - DISK_PORTS);
    this.ports = [this.base, this.base + DISK_PORTS - 1];
    this.dma = options.dma ?? noDma;
    this.irq = options.irq ?? noIrq;
    this.line = intOption(this.name, 'line', options.line ?? 2, 0, IRQ_LINES - 1);
    this.latency = intOption(this.name, 'latency', options.latency ?? 64, 0, 0xffffffff);
    this.maxSectors = intOption(this.name, 'maxSectors', options.maxSectors ?? 128, 1, 8192);
    this.buffer = new Uint8Array(this.maxSectors * SECTOR_SIZE);
    for (const lba of options.protectedBlocks ?? []) this.protect(lba);
  }

  /** Host: make sectors [lba, lba + count) refuse guest writes (profile configuration; kept across reset). */
  protect(lba: number, count = 1): void {
    this.checkRange(lba, count);
    for (let i = 0; i < count; i++) this.protectedSet.add(lba + i);
  }

  unprotect(lba: number, count = 1): void {
    this.checkRange(lba, count);
    for (let i = 0; i < count; i++) this.protectedSet.delete(lba + i);
  }

  isProtected(lba: number): boolean {
    return this.protectedSet.has(lba);
  }

  private checkRange(lba: number, count: number): void {
    if (!(Number.isInteger(lba) && Number.isInteger(count) && lba >= 0 && count >= 1)) {
      throw new RangeError(`disk: bad sector range ${lba}+${count}`);
    }
    if (lba + count > this.backend.sectors) {
      throw new RangeError(`disk: sectors ${lba}+${count} past the end (${this.backend.sectors})`);
    }
  }

  /** Instructions until the command in progress completes, or Infinity when idle. */
  nextEvent(): number {
    return this.busy ? this.remaining : Number.POSITIVE_INFINITY;
  }

  tick(instructions: number): void {
    if (!this.busy || !(instructions > 0)) return;
    this.remaining -= instructions;
    if (this.remaining <= 0) this.complete();
  }

  private complete(): void {
    this.error = this.transfer();
    this.busy = false;
    this.remaining = 0;
    if ((this.control & DISK_CONTROL.IRQ_ENABLE) !== 0) this.irq(this.line);
  }

  /** Performs the accepted command; returns its error code. */
  private transfer(): number {
    const { lba, count, command } = this;
    if (
      (command !== DISK_COMMAND.READ && command !== DISK_COMMAND.WRITE) ||
      count < 1 ||
      count > this.maxSectors
    ) {
      return DISK_ERROR.BAD_COMMAND;
    }
    if (lba + count > this.backend.sectors) return DISK_ERROR.SECTOR_NOT_FOUND;
    const len = count * SECTOR_SIZE;
    if (command === DISK_COMMAND.READ) {
      const buf = this.buffer.subarray(0, len);
      this.backend.read(lba, buf);
      return this.dmaGuard(() => this.dma.write(this.addr, buf));
    }
    for (let i = 0; i < count; i++) {
      if (this.protectedSet.has(lba + i)) {
        this.emit('writeProtected', { lba, count, protectedLba: lba + i });
        return DISK_ERROR.WRITE_PROTECTED;
      }
    }
    let data: Uint8Array | undefined;
    const error = this.dmaGuard(() => {
      data = this.dma.read(this.addr, len);
    });
    if (data !== undefined) this.backend.write(lba, data);
    return error;
  }

  /** Runs a DMA access; the Dma contract's RangeError is a guest mistake (DMA_ERROR), not a host failure. */
  private dmaGuard(access: () => void): number {
    try {
      access();
      return DISK_ERROR.OK;
    } catch (e) {
      if (e instanceof RangeError) return DISK_ERROR.DMA_ERROR;
      throw e;
    }
  }

  read(port: number): number {
    switch (port - this.base) {
      case DISK_PORT.LBA:
        return this.lba;
      case DISK_PORT.COUNT:
        return this.count;
      case DISK_PORT.ADDR:
        return this.addr;
      case DISK_PORT.COMMAND:
        return this.command;
      case DISK_PORT.STATUS:
        return (this.busy ? DISK_STATUS.BUSY : 0) | (this.error << 8);
      case DISK_PORT.CONTROL:
        return this.control;
      case DISK_PORT.SECTORS:
        return this.backend.sectors;
      default:
        return 0xffffffff;
    }
  }

  write(port: number, value: number): void {
    switch (port - this.base) {
      case DISK_PORT.LBA:
        this.lba = value >>> 0;
        break;
      case DISK_PORT.COUNT:
        this.count = value >>> 0;
        break;
      case DISK_PORT.ADDR:
        this.addr = value >>> 0;
        break;
      case DISK_PORT.COMMAND:
        if (this.busy) break;
        this.command = value >>> 0;
        this.busy = true;
        this.error = DISK_ERROR.OK;
        this.remaining = this.latency;
        if (this.latency === 0) this.complete();
        break;
      case DISK_PORT.CONTROL:
        this.control = value & DISK_CONTROL.IRQ_ENABLE;
        break;
    }
  }

  /** Machine reset: registers cleared, a command in progress abandoned; disk contents and protection stay. */
  reset(): void {
    this.lba = 0;
    this.count = 0;
    this.addr = 0;
    this.command = 0;
    this.busy = false;
    this.error = 0;
    this.control = 0;
    this.remaining = 0;
  }

  /** Registers and the command in progress. Disk contents live in the backend and protection is host configuration: neither is in the snapshot. */
  save(): Uint8Array {
    return new SnapshotWriter('DSK1')
      .u32(this.lba)
      .u32(this.count)
      .u32(this.addr)
      .u32(this.command)
      .u8(this.busy ? 1 : 0)
      .u8(this.error)
      .u32(this.control)
      .u32(this.remaining)
      .finish();
  }

  restore(bytes: Uint8Array): void {
    const r = new SnapshotReader(bytes, 'DSK1', this.name);
    const lba = r.u32();
    const count = r.u32();
    const addr = r.u32();
    const command = r.u32();
    const busy = r.u8();
    const error = r.u8();
    const control = r.int('control', 0, DISK_CONTROL.IRQ_ENABLE);
    const remaining = r.u32();
    r.end();
    if (busy > 1) r.bad(`busy flag ${busy}`);
    if (error > DISK_ERROR.BAD_COMMAND) r.bad(`error code ${error}`);
    if ((busy === 1) !== remaining > 0) r.bad(`remaining ${remaining} inconsistent with busy ${busy}`);
    this.lba = lba;
    this.count = count;
    this.addr = addr;
    this.command = command;
    this.busy = busy === 1;
    this.error = error;
    this.control = control;
    this.remaining = remaining;
  }
}

function checkAccess(sectors: number, lba: number, bytes: Uint8Array): void {
  const n = bytes.length / SECTOR_SIZE;
  if (!(Number.isInteger(lba) && lba >= 0 && Number.isInteger(n) && n >= 1 && lba + n <= sectors)) {
    throw new RangeError(
      `block backend: ${bytes.length} bytes at sector ${lba} is not whole sectors within ${sectors}`,
    );
  }
}

/** Sectors in memory; `bytes` is the whole disk (sector i at i * 512). */
export function memoryBlockBackend(sectors: number): BlockBackend & { readonly bytes: Uint8Array } {
  intOption('memoryBlockBackend', 'sectors', sectors, 1, 0x400000);
  const bytes = new Uint8Array(sectors * SECTOR_SIZE);
  return {
    sectors,
    bytes,
    read(lba, out) {
      checkAccess(sectors, lba, out);
      out.set(bytes.subarray(lba * SECTOR_SIZE, lba * SECTOR_SIZE + out.length));
    },
    write(lba, data) {
      checkAccess(sectors, lba, data);
      bytes.set(data, lba * SECTOR_SIZE);
    },
  };
}

/**
 * Sectors in a file (an image, or the VE's region exported as one), by positioned reads and writes
 * on an open descriptor. A missing file is created; with `sectors` given, a shorter file is
 * extended (sparse, reading as zeros); without it, the capacity is the file's whole sectors.
 * Call `close()` when done.
 */
export function fileBlockBackend(path: string, sectors?: number): BlockBackend & { close(): void } {
  if (sectors !== undefined) intOption('fileBlockBackend', 'sectors', sectors, 1, 0xffffffff);
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || sectors === undefined) throw e;
    fd = openSync(path, 'w+');
  }
  const size = fstatSync(fd).size;
  const capacity = sectors ?? Math.floor(size / SECTOR_SIZE);
  if (capacity < 1) {
    closeSync(fd);
    throw new DeviceError('CONFIG_INVALID', 'fileBlockBackend', `${path} holds no whole sector`);
  }
  if (size < capacity * SECTOR_SIZE) ftruncateSync(fd, capacity * SECTOR_SIZE);
  let open = true;
  const live = (): number => {
    if (!open) throw new DeviceError('BAD_STATE', 'fileBlockBackend', `${path} is closed`);
    return fd;
  };
  return {
    sectors: capacity,
    read(lba, out) {
      checkAccess(capacity, lba, out);
      const f = live();
      let done = 0;
      while (done < out.length) {
        const n = readSync(f, out, done, out.length - done, lba * SECTOR_SIZE + done);
        if (n === 0) break;
        done += n;
      }
      out.fill(0, done);
    },
    write(lba, data) {
      checkAccess(capacity, lba, data);
      const f = live();
      let done = 0;
      while (done < data.length)
        done += writeSync(f, data, done, data.length - done, lba * SECTOR_SIZE + done);
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}
