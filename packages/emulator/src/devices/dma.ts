/**
 * The devices' only path to guest memory (STYLE: devices never touch the CPU or the MMU). Addresses
 * are physical: DMA bypasses segmentation and paging, as on real hardware, so the VMM must map
 * apparent buffer addresses per machine before they reach a device (DEV-10, DEV-14).
 *
 * Contract for implementations:
 * - `read(phys, len)` returns `len` bytes. The result may be a view of memory that is only valid
 *   until the next write; a device that keeps the bytes copies them.
 * - `write(phys, bytes)` copies `bytes` into memory before returning.
 * - An access not wholly inside physical memory throws a `RangeError` and changes nothing; the
 *   device turns it into its "DMA error" status (a guest mistake, not a host failure).
 */
export interface Dma {
  read(phys: number, len: number): Uint8Array;
  write(phys: number, bytes: Uint8Array): void;
}

/** A Dma over a flat byte array (tests, and machines whose physical memory is one Uint8Array). */
export function arrayDma(memory: Uint8Array): Dma {
  const check = (phys: number, len: number): void => {
    if (!(Number.isInteger(phys) && phys >= 0 && len >= 0 && phys + len <= memory.length)) {
      throw new RangeError(`DMA ${phys}+${len} outside physical memory of ${memory.length} bytes`);
    }
  };
  return {
    read(phys, len) {
      check(phys, len);
      return memory.subarray(phys, phys + len);
    },
    write(phys, bytes) {
      check(phys, bytes.length);
      memory.set(bytes, phys);
    },
  };
}

/** A DMA that every access fails on: for devices built without memory (their transfers report a DMA error). */
export const noDma: Dma = {
  read(phys, len) {
    throw new RangeError(`DMA ${phys}+${len}: no memory attached`);
  },
  write(phys, bytes) {
    throw new RangeError(`DMA ${phys}+${bytes.length}: no memory attached`);
  },
};
