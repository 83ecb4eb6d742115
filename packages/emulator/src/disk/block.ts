/**
 * What every block view in `disk/` shares: the access check of the {@link BlockBackend} contract,
 * block translation onto a range of a device (TB-9), and the one way a damaged on-disk structure is
 * reported.
 */
import { type BlockBackend, SECTOR_SIZE } from '../devices/disk.js';
import { VmmError } from '../vmm/errors.js';

/**
 * The BlockBackend contract (devices/backend-suite.ts): `bytes` is a positive whole number of
 * sectors and [lba, lba + n) lies inside `sectors`, else RangeError. Checked before any byte moves
 * or any crypto runs, so a refused access has no effect.
 */
export function checkAccess(what: string, sectors: number, lba: number, bytes: Uint8Array): number {
  const n = bytes.length / SECTOR_SIZE;
  if (!(Number.isInteger(lba) && lba >= 0 && Number.isInteger(n) && n >= 1 && lba + n <= sectors)) {
    throw new RangeError(
      `${what}: ${bytes.length} bytes at sector ${lba} is not whole sectors within ${sectors}`,
    );
  }
  return n;
}

/**
 * Block translation (TB-9): sector b of the view is sector `start + b` of `dev`, for 0 <= b < count;
 * anything else is a RangeError (the disk controller turns that into SECTOR_NOT_FOUND), checked
 * here in full so that no lba, negative or fractional, can reach a neighbour's sectors.
 */
export function blockRegion(dev: BlockBackend, start: number, count: number, what: string): BlockBackend {
  if (
    !(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 1) ||
    start + count > dev.sectors
  ) {
    throw new VmmError(
      'CONFIG_INVALID',
      `${what}: sectors ${start}+${count} are not inside the ${dev.sectors}-sector device`,
      {
        start,
        count,
      },
    );
  }
  return {
    sectors: count,
    read(lba, out) {
      checkAccess(what, count, lba, out);
      dev.read(start + lba, out);
    },
    write(lba, data) {
      checkAccess(what, count, lba, data);
      dev.write(start + lba, data);
    },
  };
}

/** Which on-disk structure failed its checks (the `corrupt` metadata of the error). */
export type DiskStructure = 'partition-table' | 'realfs-directory';

/**
 * A damaged (or absent) on-disk structure: a host error, never a guest fault. DISK_CORRUPT with
 * `meta.corrupt` naming the structure and `meta.reason` the first check that failed.
 */
export function corrupt(structure: DiskStructure, reason: string, message: string): VmmError {
  return new VmmError('DISK_CORRUPT', `${structure}: ${message}`, { corrupt: structure, reason });
}

export function isAllZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
