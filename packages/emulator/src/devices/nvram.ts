/**
 * CMOS-like NVRAM (BOOT-1 (2), KEY-1): `size` bytes (default 256) behind an index/data port pair,
 * persisted through an injected {@link NvramBackend}. Contents survive `reset()`; every data write
 * that changes a byte is written through to the backend at once (as battery-backed CMOS is durable
 * at once), and so is `restore()`, so the backend always holds the device's contents.
 *
 * Port map (offsets from `base`, default 0x70; 32-bit values):
 *
 * | off | name       | R/W | meaning                                                                   |
 * |-----|------------|-----|---------------------------------------------------------------------------|
 * | 0   | INDEX      | R/W | byte index for DATA / DATA_NEXT.                                          |
 * | 1   | DATA       | R/W | the byte at INDEX (write stores `value & 0xFF`).                           |
 * | 2   | DATA_NEXT  | R/W | as DATA, then INDEX += 1 (block copies in a loop).                        |
 * | 3   | LOCK_START | R/W | first byte of the range LOCK acts on.                                     |
 * | 4   | LOCK_END   | R/W | end (exclusive) of that range; clipped to SIZE.                           |
 * | 5   | LOCK       | R/W | W: bit 0 WRITE_LOCK makes [LOCK_START, LOCK_END) read-only, bit 1 HIDE    |
 * |     |            |     | makes it read as 0; both hold until machine reset and cannot be undone   |
 * |     |            |     | by the guest. R: the lock bits of the byte at INDEX.                      |
 * | 6   | STATUS     | R   | outcome of the last DATA/DATA_NEXT access: bit 0 write refused (locked),  |
 * |     |            |     | bit 1 INDEX out of range, bit 2 read of a hidden byte. 0 = ok.            |
 * | 7   | SIZE       | R   | number of bytes.                                                          |
 *
 * Out of range, DATA reads 0xFFFFFFFF and writes are lost. The locks serve KEY-1 and KEY-4: the
 * boot ROM reads the machine key, then hides and write-locks it before running anything else, so
 * no later code (a VE, or the real environment past boot) can read or overwrite it; only a machine
 * reset, which restarts the boot ROM, lifts them. Per-ring restriction is the VMM's job (DEV-2).
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type { PortDevice, Snapshotting } from './bus.js';
import { DeviceError, intOption } from './errors.js';
import { SnapshotReader, SnapshotWriter } from './snapshot.js';

export const NVRAM_PORT = {
  INDEX: 0,
  DATA: 1,
  DATA_NEXT: 2,
  LOCK_START: 3,
  LOCK_END: 4,
  LOCK: 5,
  STATUS: 6,
  SIZE: 7,
} as const;
export const NVRAM_PORTS = 8;
export const NVRAM_DEFAULT_BASE = 0x70;
export const NVRAM_LOCK = { WRITE_LOCK: 1, HIDE: 2 } as const;
export const NVRAM_STATUS = { WRITE_REFUSED: 1, OUT_OF_RANGE: 2, HIDDEN: 4 } as const;

/** Where NVRAM contents live between runs. */
export interface NvramBackend {
  /** The stored image, or undefined when none exists yet (the device then starts all zero). */
  load(): Uint8Array | undefined;
  /** Replace the stored image. `bytes` is the device's live array: copy it to keep it. */
  store(bytes: Uint8Array): void;
}

export interface NvramOptions {
  /** Default: a fresh {@link memoryNvramBackend}. */
  readonly backend?: NvramBackend;
  /** Bytes (default 256, at most 65536). A stored image of another size is a configuration error. */
  readonly size?: number;
  /** First port (default 0x70). */
  readonly base?: number;
}

const LOCK_BITS = NVRAM_LOCK.WRITE_LOCK | NVRAM_LOCK.HIDE;

export class Nvram implements PortDevice, Snapshotting {
  readonly name = 'nvram';
  readonly base: number;
  readonly ports: readonly [from: number, to: number];
  readonly size: number;
  private readonly backend: NvramBackend;
  private readonly bytes: Uint8Array;
  /** Per byte: NVRAM_LOCK bits. */
  private readonly locks: Uint8Array;
  private index = 0;
  private lockStart = 0;
  private lockEnd = 0;
  private status = 0;

  constructor(options: NvramOptions = {}) {
    this.base = intOption(this.name, 'base', options.base ?? NVRAM_DEFAULT_BASE, 0, 0x10000 - NVRAM_PORTS);
    this.ports = [this.base, this.base + NVRAM_PORTS - 1];
    this.size = intOption(this.name, 'size', options.size ?? 256, 1, 0x10000);
    this.backend = options.backend ?? memoryNvramBackend();
    this.bytes = new Uint8Array(this.size);
    this.locks = new Uint8Array(this.size);
    const image = this.backend.load();
    if (image !== undefined) {
      if (image.length !== this.size) {
        throw new DeviceError(
          'CONFIG_INVALID',
          this.name,
          `stored image has ${image.length} bytes, not ${this.size}`,
        );
      }
      this.bytes.set(image);
    }
  }

  /** A copy of the contents (host view: ignores HIDE). */
  contents(): Uint8Array {
    return this.bytes.slice();
  }

  private readData(): number {
    const i = this.index;
    if (i >= this.size) {
      this.status = NVRAM_STATUS.OUT_OF_RANGE;
      return 0xffffffff;
    }
    if ((this.locks[i]! & NVRAM_LOCK.HIDE) !== 0) {
      this.status = NVRAM_STATUS.HIDDEN;
      return 0;
    }
    this.status = 0;
    return this.bytes[i]!;
  }

  private writeData(value: number): void {
    const i = this.index;
    if (i >= this.size) {
      this.status = NVRAM_STATUS.OUT_OF_RANGE;
      return;
    }
    if ((this.locks[i]! & NVRAM_LOCK.WRITE_LOCK) !== 0) {
      this.status = NVRAM_STATUS.WRITE_REFUSED;
      return;
    }
    this.status = 0;
    const byte = value & 0xff;
    if (this.bytes[i] === byte) return;
    this.bytes[i] = byte;
    this.backend.store(this.bytes);
  }

  read(port: number): number {
    switch (port - this.base) {
      case NVRAM_PORT.INDEX:
        return this.index;
      case NVRAM_PORT.DATA:
        return this.readData();
      case NVRAM_PORT.DATA_NEXT: {
        const v = this.readData();
        this.index = (this.index + 1) >>> 0;
        return v;
      }
      case NVRAM_PORT.LOCK_START:
        return this.lockStart;
      case NVRAM_PORT.LOCK_END:
        return this.lockEnd;
      case NVRAM_PORT.LOCK:
        return this.index < this.size ? this.locks[this.index]! : 0;
      case NVRAM_PORT.STATUS:
        return this.status;
      case NVRAM_PORT.SIZE:
        return this.size;
      default:
        return 0xffffffff;
    }
  }

  write(port: number, value: number): void {
    switch (port - this.base) {
      case NVRAM_PORT.INDEX:
        this.index = value >>> 0;
        break;
      case NVRAM_PORT.DATA:
        this.writeData(value);
        break;
      case NVRAM_PORT.DATA_NEXT:
        this.writeData(value);
        this.index = (this.index + 1) >>> 0;
        break;
      case NVRAM_PORT.LOCK_START:
        this.lockStart = value >>> 0;
        break;
      case NVRAM_PORT.LOCK_END:
        this.lockEnd = value >>> 0;
        break;
      case NVRAM_PORT.LOCK: {
        const bits = value & LOCK_BITS;
        const end = Math.min(this.lockEnd, this.size);
        for (let i = this.lockStart; i < end; i++) this.locks[i]! |= bits;
        break;
      }
    }
  }

  /** Machine reset: registers cleared and locks lifted; the contents stay. */
  reset(): void {
    this.index = 0;
    this.lockStart = 0;
    this.lockEnd = 0;
    this.status = 0;
    this.locks.fill(0);
  }

  save(): Uint8Array {
    return new SnapshotWriter('NVR1')
      .u32(this.index)
      .u32(this.lockStart)
      .u32(this.lockEnd)
      .u32(this.status)
      .bytes(this.bytes)
      .bytes(this.locks)
      .finish();
  }

  restore(bytes: Uint8Array): void {
    const r = new SnapshotReader(bytes, 'NVR1', this.name);
    const index = r.u32();
    const lockStart = r.u32();
    const lockEnd = r.u32();
    const status = r.int('status', 0, 7);
    const contents = r.bytes('contents', this.size);
    const locks = r.bytes('locks', this.size);
    r.end();
    if (contents.length !== this.size || locks.length !== this.size)
      r.bad(`snapshot is not of ${this.size} bytes`);
    if (locks.some((l) => (l & ~LOCK_BITS) !== 0)) r.bad('unknown lock bits');
    this.index = index;
    this.lockStart = lockStart;
    this.lockEnd = lockEnd;
    this.status = status;
    this.locks.set(locks);
    const changed = contents.some((b, i) => b !== this.bytes[i]);
    this.bytes.set(contents);
    if (changed) this.backend.store(this.bytes);
  }
}

/** An in-memory backend; `image()` shows what was last stored, `stores` how many times. */
export function memoryNvramBackend(
  initial?: Uint8Array,
): NvramBackend & { image(): Uint8Array | undefined; readonly stores: number } {
  // Copies by constructor, not slice: Buffer#slice would share memory.
  let image = initial === undefined ? undefined : new Uint8Array(initial);
  let stores = 0;
  return {
    load: () => image?.slice(),
    store(bytes) {
      image = new Uint8Array(bytes);
      stores++;
    },
    image: () => image?.slice(),
    get stores() {
      return stores;
    },
  };
}

export interface FileNvramOptions {
  /** fsync the temporary file before the rename (default false: atomic against a crashed process, not power loss). */
  readonly fsync?: boolean;
}

/**
 * NVRAM image in a file (BOOT-11 b: the per-VE `nvram_image`). A store writes `<path>.tmp` and
 * renames it over `path`, so the file always holds a whole image, old or new.
 */
export function fileNvramBackend(path: string, options: FileNvramOptions = {}): NvramBackend {
  return {
    load() {
      try {
        return new Uint8Array(readFileSync(path));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
    store(bytes) {
      const tmp = `${path}.tmp`;
      const fd = openSync(tmp, 'w');
      try {
        let done = 0;
        while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
        if (options.fsync === true) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    },
  };
}
