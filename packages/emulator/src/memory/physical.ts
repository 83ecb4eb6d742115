/**
 * Physical memory: RAM from address 0 and a boot ROM mapped at the top of the 4 GiB space, so the
 * reset vector 0xFFFFFFF0 lands in it (BOOT-6). Other physical addresses read as all ones and
 * ignore writes, like an empty bus. The ROM is read-only to the guest.
 */
export interface PhysicalMemoryOptions {
  /** RAM size in bytes (multiple of 4 KiB; default 16 MiB). */
  readonly ramBytes?: number;
  /** ROM image, mapped so that its last byte is at 0xFFFFFFFF (at most 1 MiB). */
  readonly rom?: Uint8Array;
  /**
   * Existing bytes to use as RAM, shared, not copied (the VM manager gives a virtual environment a
   * portion of the real RAM this way, MEM-1); `ramBytes` is then its length. Its offset in its
   * buffer must be a multiple of 4.
   */
  readonly ram?: Uint8Array;
}

export class PhysicalMemory {
  readonly ram: Uint8Array;
  readonly rom: Uint8Array;
  /** Physical address of the first ROM byte. */
  readonly romBase: number;
  /** Little-endian view of RAM, for unaligned dwords. */
  readonly ramView: DataView;
  /**
   * RAM as dwords, for aligned accesses (the CPU's fetch and data fast paths read through it).
   * Little-endian like every host this runs on; the constructor refuses a big-endian host.
   */
  readonly ram32: Int32Array;

  constructor(opts: PhysicalMemoryOptions = {}) {
    const size = opts.ram?.length ?? opts.ramBytes ?? 16 * 1024 * 1024;
    if (opts.ram !== undefined && opts.ramBytes !== undefined && opts.ramBytes !== opts.ram.length) {
      throw new RangeError('ramBytes differs from the length of the RAM given');
    }
    if (opts.ram !== undefined && opts.ram.byteOffset % 4 !== 0) {
      throw new RangeError('shared RAM must start at a multiple of 4 bytes in its buffer');
    }
    if (!Number.isInteger(size) || size <= 0 || size % 4096 !== 0 || size > 0xc000_0000) {
      throw new RangeError(`ramBytes must be a positive multiple of 4096 below 3 GiB, not ${size}`);
    }
    const rom = opts.rom ?? new Uint8Array(0);
    if (rom.length > 0x10_0000) throw new RangeError('a ROM image is at most 1 MiB');
    this.ram = opts.ram ?? new Uint8Array(size);
    this.ramView = new DataView(this.ram.buffer, this.ram.byteOffset, size);
    this.ram32 = new Int32Array(this.ram.buffer, this.ram.byteOffset, size >>> 2);
    if (new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1)
      throw new Error('a little-endian host is required');
    this.rom = rom.slice();
    this.romBase = 0x1_0000_0000 - this.rom.length;
  }

  read8(addr: number): number {
    if (addr < this.ram.length) return this.ram[addr]!;
    if (addr >= this.romBase) return this.rom[addr - this.romBase]!;
    return 0xff;
  }

  read32(addr: number): number {
    if ((addr & 3) === 0 && addr < this.ram.length) return this.ram32[addr >>> 2]! >>> 0;
    if (addr + 3 < this.ram.length) return this.ramView.getUint32(addr, true);
    return (
      (this.read8(addr) |
        (this.read8(addr + 1) << 8) |
        (this.read8(addr + 2) << 16) |
        (this.read8((addr + 3) >>> 0) << 24)) >>>
      0
    );
  }

  write8(addr: number, value: number): void {
    if (addr < this.ram.length) this.ram[addr] = value;
  }

  write32(addr: number, value: number): void {
    if ((addr & 3) === 0 && addr < this.ram.length) {
      this.ram32[addr >>> 2] = value;
      return;
    }
    if (addr + 3 < this.ram.length) {
      this.ramView.setUint32(addr, value >>> 0, true);
      return;
    }
    for (let i = 0; i < 4; i++) this.write8((addr + i) >>> 0, (value >>> (8 * i)) & 0xff);
  }

  /** Bulk copy for DMA (devices) and loaders; addresses outside RAM read as 0xFF, writes are lost. */
  readBytes(addr: number, length: number): Uint8Array {
    if (addr + length <= this.ram.length) return this.ram.slice(addr, addr + length);
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.read8((addr + i) >>> 0);
    return out;
  }

  writeBytes(addr: number, bytes: Uint8Array): void {
    if (addr + bytes.length <= this.ram.length) {
      this.ram.set(bytes, addr);
      return;
    }
    for (let i = 0; i < bytes.length; i++) this.write8((addr + i) >>> 0, bytes[i]!);
  }
}
