/**
 * Builds tinyos (guests/tinyos): the boot ROM and the disk image, with the emulator's assembler.
 *
 * Disk layout (512-byte sectors; the numbers come from tinyos/layout.inc through the assembled
 * kernel's constants, so the assembly and this file cannot disagree):
 *
 * | sector              | content                                                           |
 * |---------------------|-------------------------------------------------------------------|
 * | BOOT_HDR_LBA (0)    | boot header: magic, kernel LBA, sectors, load address, entry,     |
 * |                     | byte count, 32-bit sum of the image's dwords (read by the ROM)    |
 * | KERNEL_LBA (1) ...  | the kernel image (text pages, then data pages)                    |
 * | FTAB_LBA (64)       | the file table: "TFS1", count, entries {name[16], lba, bytes,     |
 * |                     | load}; load != 0 marks a user program and is its load address     |
 * | FILES_LBA (65) ...  | the files, each from a whole sector: A.BIN .. E.BIN, README.TXT   |
 */
import { readFileSync } from 'node:fs';
import { type AsmResult, assemble, SECTOR_SIZE } from '@clefnet/emulator';

export interface TinyOsImage {
  /** The 64 KiB boot ROM, mapped to end at 0xFFFFFFFF. */
  readonly rom: Uint8Array;
  /** The disk: whole sectors. */
  readonly disk: Uint8Array;
}

/** Where the sources are; `.include` names are relative to it. */
export const TINYOS_DIR = new URL('./tinyos/', import.meta.url);

const ROM_ORIGIN = 0xffff0000;
const ROM_BYTES = 0x10000;
/** User programs in file-table order: program i is assembled for user slot i. */
const PROGRAMS = ['a', 'b', 'c', 'd', 'e'] as const;
const README = 'readme.txt';

const source = (name: string): string => readFileSync(new URL(name, TINYOS_DIR), 'utf8');
const include = (path: string): string => source(path);
const build = (name: string, origin?: number): AsmResult =>
  assemble(source(name), { include, file: name, ...(origin === undefined ? {} : { origin }) });

interface DiskFile {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** Load address of a user program; 0 for a data file. */
  readonly load: number;
}

export function buildTinyOs(): TinyOsImage {
  const rom = build('rom.s', ROM_ORIGIN);
  if (rom.bytes.length !== ROM_BYTES) throw new Error(`rom.s: ${rom.bytes.length} bytes, not ${ROM_BYTES}`);

  const kernel = build('kernel.s');
  const k = (name: string): number => {
    const v = kernel.constants.get(name) ?? kernel.labels.get(name);
    if (v === undefined) throw new Error(`kernel.s defines no '${name}'`);
    return v;
  };
  const sectors = (n: number): number => Math.ceil(n / SECTOR_SIZE);

  const image = pad(kernel.bytes, 4);
  if (kernel.origin !== k('KERNEL_LOAD') || kernel.origin + image.length > k('KERNEL_END_MAX')) {
    throw new Error(`kernel.s: image ${hex(kernel.origin)}+${hex(image.length)} outside its region`);
  }
  if (sectors(image.length) > k('KERNEL_SECTORS_MAX')) throw new Error('kernel.s: image too large');

  const files: DiskFile[] = PROGRAMS.map((p) => {
    const r = build(`${p}.s`);
    const slot = k('USER_LO') + PROGRAMS.indexOf(p) * k('TASK_SIZE');
    if (r.origin !== slot || r.bytes.length > 0x1000) {
      throw new Error(`${p}.s: ${hex(r.origin)}+${hex(r.bytes.length)} does not fit user slot ${hex(slot)}`);
    }
    return { name: `${p.toUpperCase()}.BIN`, bytes: r.bytes, load: r.origin };
  });
  files.push({ name: 'README.TXT', bytes: new TextEncoder().encode(source(README)), load: 0 });
  if (files.length > k('FTAB_MAX')) throw new Error('too many files for the file table');

  // Files from FILES_LBA on, each from a whole sector.
  let lba = k('FILES_LBA');
  const placed = files.map((f) => {
    const at = lba;
    lba += Math.max(1, sectors(f.bytes.length));
    return { ...f, lba: at };
  });
  const disk = new Uint8Array(lba * SECTOR_SIZE);
  const dv = new DataView(disk.buffer);

  const hdr = k('BOOT_HDR_LBA') * SECTOR_SIZE;
  dv.setUint32(hdr + k('HDR_MAGIC'), k('BOOT_MAGIC'), true);
  dv.setUint32(hdr + k('HDR_LBA'), k('KERNEL_LBA'), true);
  dv.setUint32(hdr + k('HDR_SECTORS'), sectors(image.length), true);
  dv.setUint32(hdr + k('HDR_LOAD'), kernel.origin, true);
  dv.setUint32(hdr + k('HDR_ENTRY'), k('kentry'), true);
  dv.setUint32(hdr + k('HDR_BYTES'), image.length, true);
  dv.setUint32(hdr + k('HDR_SUM'), sum32(image), true);
  disk.set(image, k('KERNEL_LBA') * SECTOR_SIZE);

  const table = k('FTAB_LBA') * SECTOR_SIZE;
  dv.setUint32(table + k('FT_MAGIC'), k('FTAB_MAGIC'), true);
  dv.setUint32(table + k('FT_COUNT'), placed.length, true);
  placed.forEach((f, i) => {
    const e = table + k('FT_ENTRIES') + i * k('FTE_SIZE');
    const name = new TextEncoder().encode(f.name);
    if (name.length > 15) throw new Error(`file name ${f.name} longer than 15 bytes`);
    disk.set(name, e + k('FTE_NAME'));
    dv.setUint32(e + k('FTE_LBA'), f.lba, true);
    dv.setUint32(e + k('FTE_BYTES'), f.bytes.length, true);
    dv.setUint32(e + k('FTE_LOAD'), f.load, true);
    disk.set(f.bytes, f.lba * SECTOR_SIZE);
  });

  return { rom: rom.bytes, disk };
}

function pad(bytes: Uint8Array, multiple: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes.length / multiple) * multiple);
  out.set(bytes);
  return out;
}

/** The boot header's check value: the sum of the image's little-endian dwords, modulo 2^32. */
function sum32(image: Uint8Array): number {
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  let s = 0;
  for (let i = 0; i < image.length; i += 4) s = (s + v.getUint32(i, true)) >>> 0;
  return s;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
