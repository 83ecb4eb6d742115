/**
 * The disk layout of Fig. 5 (BOOT-16): the partition table 102 in sector 0 of the auxiliary disk 60,
 * then the real-environment partition 104 (with its file system, realfs.ts), the firewall partition
 * 106 (itself the firewall spool 106a) and one partition per VE (108a..108d). {@link partitionOf}
 * gives a partition as a block device of its own (block translation, TB-9).
 *
 * Sector 0. All integers little-endian; CRC-32 is the IEEE one (src/crc32.ts).
 *
 * | off      | size | field                                        |
 * |----------|------|----------------------------------------------|
 * | 0        | 4    | magic "CLPT"                                 |
 * | 4        | 2    | version (1)                                  |
 * | 6        | 2    | n, the number of entries (1..14)             |
 * | 8        | 24   | zero                                         |
 * | 32 + 32i | 32   | entry i, for i < n                           |
 * | 32 + 32n | ..   | zero up to byte 508                          |
 * | 508      | 4    | CRC-32 of bytes 0..507                       |
 *
 * | entry off | size | field                                                         |
 * |-----------|------|---------------------------------------------------------------|
 * | 0         | 20   | name: 1..20 of [a-z0-9._-], starting with a letter or digit; then NULs |
 * | 20        | 1    | kind: 1 real (104), 2 firewall (106), 3 ve (108)              |
 * | 21        | 3    | zero                                                          |
 * | 24        | 4    | first sector                                                  |
 * | 28        | 4    | sector count                                                  |
 *
 * A table is valid when every entry is: names unique, kind known, 1 <= start, 1 <= count,
 * start + count <= the device's sectors (sector 0 is the table's own), no two partitions overlap,
 * at most one `real` and at most one `firewall` partition, and every byte the layout says is zero
 * is zero. `formatDisk` refuses anything else with CONFIG_INVALID and writes nothing; `readLayout`
 * refuses a damaged or absent table (see block.ts `corrupt`). Entries keep the order given. The
 * partitions' contents are not touched by `formatDisk`.
 */
import { crc32 } from '../crc32.js';
import { type BlockBackend, SECTOR_SIZE } from '../devices/disk.js';
import { VmmError } from '../vmm/errors.js';
import { blockRegion, corrupt, isAllZero } from './block.js';

export const LAYOUT_MAGIC = 'CLPT';
export const LAYOUT_VERSION = 1;
export const LAYOUT_HEADER_BYTES = 32;
export const LAYOUT_ENTRY_BYTES = 32;
export const LAYOUT_NAME_BYTES = 20;
/** Entries that fit before the CRC: (508 - 32) / 32. */
export const LAYOUT_MAX_PARTITIONS = 14;
const CRC_AT = SECTOR_SIZE - 4;

export type PartitionKind = 'real' | 'firewall' | 've';
const KIND_CODE: Readonly<Record<PartitionKind, number>> = { real: 1, firewall: 2, ve: 3 };
const KIND_OF: readonly (PartitionKind | undefined)[] = [undefined, 'real', 'firewall', 've'];

export interface Partition {
  readonly name: string;
  readonly kind: PartitionKind;
  /** First sector on the disk. */
  readonly start: number;
  readonly count: number;
}

export interface DiskLayout {
  readonly version: number;
  readonly partitions: readonly Partition[];
}

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,19}$/;

/** Why a partition list is not a valid table: [reason, message], or undefined when it is. */
function problem(partitions: readonly Partition[], sectors: number): [string, string] | undefined {
  if (partitions.length < 1 || partitions.length > LAYOUT_MAX_PARTITIONS)
    return ['count', `${partitions.length} partitions, not 1..${LAYOUT_MAX_PARTITIONS}`];
  const names = new Set<string>();
  const single = new Set<PartitionKind>();
  for (const p of partitions) {
    if (typeof p.name !== 'string' || !NAME_RE.test(p.name))
      return ['name', `partition name ${JSON.stringify(p.name)} is not 1..20 of [a-z0-9._-]`];
    if (names.has(p.name)) return ['duplicate', `partition ${p.name} appears twice`];
    names.add(p.name);
    if (!Object.hasOwn(KIND_CODE, p.kind)) return ['kind', `partition ${p.name} has kind ${String(p.kind)}`];
    if (p.kind !== 've') {
      if (single.has(p.kind)) return ['kind', `a second ${p.kind} partition (${p.name})`];
      single.add(p.kind);
    }
    if (!(Number.isInteger(p.start) && Number.isInteger(p.count) && p.start >= 1 && p.count >= 1))
      return ['range', `partition ${p.name} has sectors ${p.start}+${p.count}`];
    if (p.start + p.count > sectors)
      return ['range', `partition ${p.name} (${p.start}+${p.count}) runs past the ${sectors}-sector disk`];
  }
  const sorted = [...partitions].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (a.start + a.count > b.start) return ['overlap', `partitions ${a.name} and ${b.name} overlap`];
  }
  return undefined;
}

/** Sector 0 for `partitions` on a disk of `sectors` sectors; CONFIG_INVALID unless they form a valid table. */
export function encodeLayout(partitions: readonly Partition[], sectors: number): Uint8Array {
  const bad = problem(partitions, sectors);
  if (bad !== undefined)
    throw new VmmError('CONFIG_INVALID', `partition table: ${bad[1]}`, { reason: bad[0] });
  const out = new Uint8Array(SECTOR_SIZE);
  const v = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = LAYOUT_MAGIC.charCodeAt(i);
  v.setUint16(4, LAYOUT_VERSION, true);
  v.setUint16(6, partitions.length, true);
  partitions.forEach((p, i) => {
    const at = LAYOUT_HEADER_BYTES + i * LAYOUT_ENTRY_BYTES;
    for (let k = 0; k < p.name.length; k++) out[at + k] = p.name.charCodeAt(k);
    out[at + 20] = KIND_CODE[p.kind];
    v.setUint32(at + 24, p.start, true);
    v.setUint32(at + 28, p.count, true);
  });
  v.setUint32(CRC_AT, crc32(out.subarray(0, CRC_AT)), true);
  return out;
}

/** The table in `sector` (512 bytes) of a disk of `sectors` sectors; a damaged one throws (block.ts `corrupt`). */
export function decodeLayout(sector: Uint8Array, sectors: number): DiskLayout {
  const bad = (reason: string, message: string) => corrupt('partition-table', reason, message);
  if (sector.length !== SECTOR_SIZE) throw bad('size', `${sector.length} bytes, not one sector`);
  const v = new DataView(sector.buffer, sector.byteOffset, SECTOR_SIZE);
  for (let i = 0; i < 4; i++) {
    if (sector[i] !== LAYOUT_MAGIC.charCodeAt(i)) {
      throw isAllZero(sector)
        ? bad('blank', 'sector 0 is blank: the disk is not formatted')
        : bad('magic', `no ${LAYOUT_MAGIC} magic in sector 0`);
    }
  }
  if (v.getUint32(CRC_AT, true) !== crc32(sector.subarray(0, CRC_AT))) throw bad('crc', 'CRC-32 mismatch');
  const version = v.getUint16(4, true);
  if (version !== LAYOUT_VERSION) throw bad('version', `version ${version}, not ${LAYOUT_VERSION}`);
  const n = v.getUint16(6, true);
  if (n < 1 || n > LAYOUT_MAX_PARTITIONS) throw bad('count', `${n} entries, not 1..${LAYOUT_MAX_PARTITIONS}`);
  if (!isAllZero(sector.subarray(8, LAYOUT_HEADER_BYTES)))
    throw bad('reserved', 'reserved header bytes are not zero');
  const end = LAYOUT_HEADER_BYTES + n * LAYOUT_ENTRY_BYTES;
  if (!isAllZero(sector.subarray(end, CRC_AT)))
    throw bad('reserved', 'bytes after the last entry are not zero');
  const partitions: Partition[] = [];
  for (let i = 0; i < n; i++) {
    const at = LAYOUT_HEADER_BYTES + i * LAYOUT_ENTRY_BYTES;
    const raw = sector.subarray(at, at + LAYOUT_NAME_BYTES);
    const len = raw.indexOf(0) < 0 ? LAYOUT_NAME_BYTES : raw.indexOf(0);
    if (!isAllZero(raw.subarray(len))) throw bad('name', `entry ${i}: bytes after the name's NUL`);
    const name = String.fromCharCode(...raw.subarray(0, len));
    const kind = KIND_OF[sector[at + 20]!];
    if (kind === undefined) throw bad('kind', `entry ${i}: kind ${sector[at + 20]}`);
    if (!isAllZero(sector.subarray(at + 21, at + 24)))
      throw bad('reserved', `entry ${i}: reserved bytes are not zero`);
    partitions.push({ name, kind, start: v.getUint32(at + 24, true), count: v.getUint32(at + 28, true) });
  }
  const wrong = problem(partitions, sectors);
  if (wrong !== undefined) throw bad(wrong[0], wrong[1]);
  return { version, partitions };
}

/** Writes the partition table 102 to sector 0 of `dev` (BOOT-15 (1)); CONFIG_INVALID writes nothing. */
export function formatDisk(dev: BlockBackend, partitions: readonly Partition[]): DiskLayout {
  const sector = encodeLayout(partitions, dev.sectors);
  dev.write(0, sector);
  return { version: LAYOUT_VERSION, partitions: partitions.map((p) => ({ ...p })) };
}

/** The partition table of `dev`; a blank, damaged or inconsistent one throws (block.ts `corrupt`). */
export function readLayout(dev: BlockBackend): DiskLayout {
  const sector = new Uint8Array(SECTOR_SIZE);
  dev.read(0, sector);
  return decodeLayout(sector, dev.sectors);
}

/** The partition called `name`; CONFIG_INVALID when the layout has none. */
export function findPartition(layout: DiskLayout, name: string): Partition {
  const p = layout.partitions.find((q) => q.name === name);
  if (p === undefined)
    throw new VmmError('CONFIG_INVALID', `no partition named ${JSON.stringify(name)}`, { name });
  return p;
}

/**
 * Partition `name` of `layout` as a device of its own: its sector b is sector start + b of `dev`
 * (TB-9); outside it, a RangeError. CONFIG_INVALID when there is no such partition or it does not
 * lie inside `dev` (a layout read from another disk).
 */
export function partitionOf(dev: BlockBackend, layout: DiskLayout, name: string): BlockBackend {
  const p = findPartition(layout, name);
  return blockRegion(dev, p.start, p.count, `partition ${name}`);
}
