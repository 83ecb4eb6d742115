/**
 * The file system of the real-environment partition 104 (BOOT-16, Fig. 5): a directory of named
 * extents, one contiguous run of sectors per file, fixed at creation. Small on purpose: the real
 * environment keeps a handful of images and per-VE files here, and a region of it (the DTM spool)
 * is handed out as a block device. Standard names ({@link REAL_FILES}, {@link veFiles}):
 *
 * | name                      | Fig. 5 | holds                                               |
 * |---------------------------|--------|-----------------------------------------------------|
 * | `core.img`                | 104a   | the VM core image                                   |
 * | `vmm.img`                 | 104b   | the VMM ring-0 task image                           |
 * | `tasks/<name>.img`        | 104c   | other real-environment privileged tasks             |
 * | `ve/<name>/profile.json`  | 104d   | the VE's specification 140 (TB-8)                   |
 * | `ve/<name>/rom.bin`       | 104d   | its boot-ROM image 150                              |
 * | `ve/<name>/nvram.bin`     | 104d   | its NVRAM emulation image 160 ({@link realFsNvramBackend}) |
 * | `ve/<name>/diskkey`       | 104d   | its partition's wrapped data key (crypt.ts)         |
 * | `spool`                   | 104e   | the DTM spool area, used through `region('spool')`  |
 *
 * The firewall spool 106a is not a file: it is the firewall partition itself (layout.ts).
 *
 * Layout. Sectors [0, 8) and [8, 16) are two copies of the directory, data from sector 16. The copy
 * with a valid header and the higher generation is the directory; an update writes the other copy
 * with generation + 1 (the commit point), then zeroes the older copy's first sector, so a damaged
 * newer copy is reported instead of silently bringing back an older directory. All integers
 * little-endian; CRC-32 is the IEEE one (src/crc32.ts).
 *
 * | copy off | size | field                                                           |
 * |----------|------|-----------------------------------------------------------------|
 * | 0        | 4    | magic "CLFS"                                                    |
 * | 4        | 2    | version (1)                                                     |
 * | 6        | 1    | which copy this is (0 or 1)                                     |
 * | 7        | 1    | zero                                                            |
 * | 8        | 4    | generation (1 at format, +1 per update)                         |
 * | 12       | 4    | the partition's sectors                                         |
 * | 16       | 2    | n, the number of files (0..63)                                  |
 * | 18       | 10   | zero                                                            |
 * | 28       | 4    | CRC-32 of bytes 0..27 and 32..4095                              |
 * | 32 + 64i | 64   | file i: name (1..52 bytes, then NULs), start, count, length (u32 each) |
 * | ..       | ..   | zero to the end of the copy                                     |
 *
 * A directory is valid when every file is: names well formed and unique, 16 <= start, 1 <= count,
 * start + count <= the partition's sectors, no two extents overlap, length <= count * 512; files
 * are listed by start. Names are `/`-separated segments of [A-Za-z0-9._-], no `.` or `..` segment.
 *
 * Files: `create` zeroes the extent, then commits the directory, so a new file reads as zeros.
 * `write` replaces the file's bytes (up to its extent) in place, then commits the length if it
 * changed, zeroing sectors the old length covered and the new one does not. A one-sector write
 * is atomic; a longer write torn by a crash may leave a mix of old and new sectors.
 */
import { CRC32_START, crc32Finish, crc32Update } from '../crc32.js';
import { type BlockBackend, SECTOR_SIZE } from '../devices/disk.js';
import type { NvramBackend } from '../devices/nvram.js';
import { VmmError } from '../vmm/errors.js';
import { blockRegion, corrupt, isAllZero } from './block.js';

export const REALFS_MAGIC = 'CLFS';
export const REALFS_VERSION = 1;
/** Sectors per directory copy. */
export const REALFS_DIR_SECTORS = 8;
/** The first sector files may use: after both directory copies. */
export const REALFS_DATA_START = 2 * REALFS_DIR_SECTORS;
export const REALFS_ENTRY_BYTES = 64;
export const REALFS_NAME_BYTES = 52;
/** (8 * 512 - 32) / 64, rounded down. */
export const REALFS_MAX_FILES = 63;
const COPY_BYTES = REALFS_DIR_SECTORS * SECTOR_SIZE;
const HEADER_BYTES = 32;

/** Standard files of the real partition (Fig. 5: 104a, 104b, 104e). */
export const REAL_FILES = { core: 'core.img', vmm: 'vmm.img', spool: 'spool' } as const;

/** 104c: the image of a real-environment privileged task. */
export function taskImage(task: string): string {
  return `tasks/${task}.img`;
}

/** 104d: the VMM data area of VE `ve` (profile 140, boot ROM 150, NVRAM 160, wrapped disk key). */
export function veFiles(ve: string): {
  readonly profile: string;
  readonly rom: string;
  readonly nvram: string;
  readonly diskKey: string;
} {
  const d = `ve/${ve}/`;
  return { profile: `${d}profile.json`, rom: `${d}rom.bin`, nvram: `${d}nvram.bin`, diskKey: `${d}diskkey` };
}

export interface RealFsFile {
  readonly name: string;
  /** First sector within the partition. */
  readonly start: number;
  readonly count: number;
  /** Bytes the file holds (<= count * 512). */
  readonly length: number;
}

export interface RealFs {
  /** The files, by name. */
  list(): readonly RealFsFile[];
  stat(name: string): RealFsFile | undefined;
  /** A file of `sectors` zeroed sectors and length 0. CONFIG_INVALID for a bad or taken name; LIMIT_EXCEEDED when no room. */
  create(name: string, sectors: number): RealFsFile;
  /** The file's `length` bytes. CONFIG_INVALID when there is no such file. */
  read(name: string): Uint8Array;
  /** Replaces the file's bytes; LIMIT_EXCEEDED (writing nothing) when they do not fit its extent. */
  write(name: string, bytes: Uint8Array): void;
  /** Deletes the file (its sectors are not cleared). */
  remove(name: string): void;
  /**
   * The file's extent as a block device of `count` sectors (e.g. the DTM spool). It does not change
   * `length`. Once the file is removed, every access through it is BAD_STATE.
   */
  region(name: string): BlockBackend;
}

interface Entry {
  name: string;
  start: number;
  count: number;
  length: number;
}

const NAME_RE = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

function nameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length < 1 || name.length > REALFS_NAME_BYTES || !NAME_RE.test(name))
    return `file name ${JSON.stringify(name)} is not 1..${REALFS_NAME_BYTES} bytes of /-separated [A-Za-z0-9._-]`;
  if (name.split('/').some((s) => s === '.' || s === '..')) return `file name ${name} has a . or .. segment`;
  return undefined;
}

const copyCrc = (b: Uint8Array): number =>
  crc32Finish(crc32Update(crc32Update(CRC32_START, b, 0, 28), b, HEADER_BYTES, COPY_BYTES));

function encodeCopy(copy: number, generation: number, sectors: number, files: readonly Entry[]): Uint8Array {
  const out = new Uint8Array(COPY_BYTES);
  const v = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = REALFS_MAGIC.charCodeAt(i);
  v.setUint16(4, REALFS_VERSION, true);
  out[6] = copy;
  v.setUint32(8, generation, true);
  v.setUint32(12, sectors, true);
  v.setUint16(16, files.length, true);
  files.forEach((f, i) => {
    const at = HEADER_BYTES + i * REALFS_ENTRY_BYTES;
    for (let k = 0; k < f.name.length; k++) out[at + k] = f.name.charCodeAt(k);
    v.setUint32(at + 52, f.start, true);
    v.setUint32(at + 56, f.count, true);
    v.setUint32(at + 60, f.length, true);
  });
  v.setUint32(28, copyCrc(out), true);
  return out;
}

/** Problems of a file list against a partition of `sectors` sectors: [reason, message] or undefined. */
function filesProblem(files: readonly Entry[], sectors: number): [string, string] | undefined {
  const names = new Set<string>();
  for (const f of files) {
    const badName = nameProblem(f.name);
    if (badName !== undefined) return ['name', badName];
    if (names.has(f.name)) return ['duplicate', `file ${f.name} appears twice`];
    names.add(f.name);
    if (!(f.start >= REALFS_DATA_START && f.count >= 1 && f.start + f.count <= sectors))
      return ['range', `file ${f.name} has sectors ${f.start}+${f.count}`];
    if (f.length > f.count * SECTOR_SIZE) return ['length', `file ${f.name} is longer than its extent`];
  }
  for (let i = 1; i < files.length; i++) {
    const a = files[i - 1]!;
    const b = files[i]!;
    if (a.start + a.count > b.start)
      return ['overlap', `files ${a.name} and ${b.name} overlap or are out of order`];
  }
  return undefined;
}

interface Decoded {
  readonly generation: number;
  readonly files: Entry[];
}

/** Copy `copy` of a directory, or [reason, message] when it is not a valid one. */
function decodeCopy(b: Uint8Array, copy: number, sectors: number): Decoded | [string, string] {
  const v = new DataView(b.buffer, b.byteOffset, COPY_BYTES);
  for (let i = 0; i < 4; i++)
    if (b[i] !== REALFS_MAGIC.charCodeAt(i)) return ['magic', `copy ${copy}: no magic`];
  if (v.getUint32(28, true) !== copyCrc(b)) return ['crc', `copy ${copy}: CRC-32 mismatch`];
  if (v.getUint16(4, true) !== REALFS_VERSION)
    return ['version', `copy ${copy}: version ${v.getUint16(4, true)}`];
  if (b[6] !== copy) return ['copy', `copy ${copy} says it is copy ${b[6]}`];
  const generation = v.getUint32(8, true);
  if (generation < 1) return ['generation', `copy ${copy}: generation 0`];
  if (v.getUint32(12, true) !== sectors)
    return ['size', `copy ${copy}: made for ${v.getUint32(12, true)} sectors, the partition has ${sectors}`];
  const n = v.getUint16(16, true);
  if (n > REALFS_MAX_FILES) return ['count', `copy ${copy}: ${n} files`];
  if (
    b[7] !== 0 ||
    !isAllZero(b.subarray(18, 28)) ||
    !isAllZero(b.subarray(HEADER_BYTES + n * REALFS_ENTRY_BYTES))
  )
    return ['reserved', `copy ${copy}: reserved bytes are not zero`];
  const files: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const at = HEADER_BYTES + i * REALFS_ENTRY_BYTES;
    const raw = b.subarray(at, at + REALFS_NAME_BYTES);
    const len = raw.indexOf(0) < 0 ? REALFS_NAME_BYTES : raw.indexOf(0);
    if (!isAllZero(raw.subarray(len))) return ['name', `copy ${copy}, file ${i}: bytes after the name's NUL`];
    files.push({
      name: String.fromCharCode(...raw.subarray(0, len)),
      start: v.getUint32(at + 52, true),
      count: v.getUint32(at + 56, true),
      length: v.getUint32(at + 60, true),
    });
  }
  const wrong = filesProblem(files, sectors);
  if (wrong !== undefined) return [wrong[0], `copy ${copy}: ${wrong[1]}`];
  return { generation, files };
}

function checkSize(dev: BlockBackend): void {
  if (!(dev.sectors > REALFS_DATA_START))
    throw new VmmError(
      'CONFIG_INVALID',
      `a real file system needs more than ${REALFS_DATA_START} sectors, got ${dev.sectors}`,
    );
}

/** An empty file system on `dev` (the real partition); whatever was there is forgotten. */
export function formatRealFs(dev: BlockBackend): RealFs {
  checkSize(dev);
  dev.write(REALFS_DIR_SECTORS, new Uint8Array(SECTOR_SIZE)); // copy 1 no longer valid
  dev.write(0, encodeCopy(0, 1, dev.sectors, []));
  return new Fs(dev, 0, 1, []);
}

/** The file system on `dev`; a blank or damaged directory throws (block.ts `corrupt`). Reads only. */
export function openRealFs(dev: BlockBackend): RealFs {
  checkSize(dev);
  const copies = [0, 1].map((c) => {
    const b = new Uint8Array(COPY_BYTES);
    dev.read(c * REALFS_DIR_SECTORS, b);
    return b;
  });
  const decoded = copies.map((b, c) => decodeCopy(b, c, dev.sectors));
  const valid = decoded.flatMap((d, c) => (Array.isArray(d) ? [] : [{ ...d, copy: c }]));
  if (valid.length === 0) {
    if (copies.every((b) => isAllZero(b)))
      throw corrupt('realfs-directory', 'blank', 'the partition is not formatted');
    const [reason, message] = decoded[0] as [string, string];
    throw corrupt('realfs-directory', reason, `no valid directory copy (${message})`);
  }
  if (valid.length === 2 && valid[0]!.generation === valid[1]!.generation)
    throw corrupt('realfs-directory', 'generation', 'both directory copies claim the same generation');
  const best = valid.reduce((a, b) => (b.generation > a.generation ? b : a));
  return new Fs(dev, best.copy, best.generation, best.files);
}

class Fs implements RealFs {
  private readonly files = new Map<string, Entry>();

  constructor(
    private readonly dev: BlockBackend,
    private copy: number,
    private generation: number,
    files: readonly Entry[],
  ) {
    for (const f of files) this.files.set(f.name, f);
  }

  list(): readonly RealFsFile[] {
    return [...this.files.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((f) => ({ ...f }));
  }

  stat(name: string): RealFsFile | undefined {
    const f = this.files.get(name);
    return f === undefined ? undefined : { ...f };
  }

  private get(name: string): Entry {
    const f = this.files.get(name);
    if (f === undefined) throw new VmmError('CONFIG_INVALID', `no file ${JSON.stringify(name)}`, { name });
    return f;
  }

  /** Writes the directory with `files` to the other copy, then retires the current one. */
  private commit(files: readonly Entry[]): void {
    const sorted = [...files].sort((a, b) => a.start - b.start);
    const next = 1 - this.copy;
    this.dev.write(
      next * REALFS_DIR_SECTORS,
      encodeCopy(next, this.generation + 1, this.dev.sectors, sorted),
    );
    this.dev.write(this.copy * REALFS_DIR_SECTORS, new Uint8Array(SECTOR_SIZE));
    this.copy = next;
    this.generation++;
    this.files.clear();
    for (const f of sorted) this.files.set(f.name, f);
  }

  create(name: string, sectors: number): RealFsFile {
    const badName = nameProblem(name);
    if (badName !== undefined) throw new VmmError('CONFIG_INVALID', badName);
    if (this.files.has(name)) throw new VmmError('CONFIG_INVALID', `file ${name} exists`, { name });
    if (!(Number.isInteger(sectors) && sectors >= 1))
      throw new VmmError('CONFIG_INVALID', `a file needs a whole number of sectors >= 1, got ${sectors}`);
    if (this.files.size >= REALFS_MAX_FILES)
      throw new VmmError('LIMIT_EXCEEDED', `the directory holds ${REALFS_MAX_FILES} files already`);
    // First fit, in order of the extents.
    let start = REALFS_DATA_START;
    for (const f of [...this.files.values()].sort((a, b) => a.start - b.start)) {
      if (f.start - start >= sectors) break;
      start = Math.max(start, f.start + f.count);
    }
    if (start + sectors > this.dev.sectors)
      throw new VmmError('LIMIT_EXCEEDED', `no run of ${sectors} free sectors for ${name}`, {
        name,
        sectors,
      });
    zero(this.dev, start, sectors);
    const entry: Entry = { name, start, count: sectors, length: 0 };
    this.commit([...this.files.values(), entry]);
    return { ...entry };
  }

  read(name: string): Uint8Array {
    const f = this.get(name);
    const buf = new Uint8Array(Math.ceil(f.length / SECTOR_SIZE) * SECTOR_SIZE);
    if (buf.length > 0) this.dev.read(f.start, buf);
    return buf.slice(0, f.length);
  }

  write(name: string, bytes: Uint8Array): void {
    const f = this.get(name);
    if (bytes.length > f.count * SECTOR_SIZE)
      throw new VmmError(
        'LIMIT_EXCEEDED',
        `${bytes.length} bytes do not fit file ${name} (${f.count} sectors)`,
        {
          name,
        },
      );
    const used = Math.ceil(bytes.length / SECTOR_SIZE);
    if (used > 0) {
      const buf = new Uint8Array(used * SECTOR_SIZE);
      buf.set(bytes);
      this.dev.write(f.start, buf);
    }
    const before = Math.ceil(f.length / SECTOR_SIZE);
    if (before > used) zero(this.dev, f.start + used, before - used);
    if (bytes.length !== f.length) {
      this.commit([...this.files.values()].map((e) => (e === f ? { ...e, length: bytes.length } : e)));
    }
  }

  remove(name: string): void {
    const f = this.get(name);
    this.commit([...this.files.values()].filter((e) => e !== f));
  }

  region(name: string): BlockBackend {
    const f = this.get(name);
    const inner = blockRegion(this.dev, f.start, f.count, `file ${name}`);
    // The entry object is replaced on every commit; the extent is what must still belong to the file.
    const live = (): void => {
      const now = this.files.get(name);
      if (now === undefined || now.start !== f.start || now.count !== f.count)
        throw new VmmError('BAD_STATE', `file ${name} was removed`, { name });
    };
    return {
      sectors: f.count,
      read(lba, out) {
        live();
        inner.read(lba, out);
      },
      write(lba, data) {
        live();
        inner.write(lba, data);
      },
    };
  }
}

const ZERO_CHUNK = 64;
function zero(dev: BlockBackend, start: number, count: number): void {
  const z = new Uint8Array(Math.min(count, ZERO_CHUNK) * SECTOR_SIZE);
  for (let at = 0; at < count; at += ZERO_CHUNK) {
    const n = Math.min(ZERO_CHUNK, count - at);
    dev.write(start + at, n === ZERO_CHUNK ? z : z.subarray(0, n * SECTOR_SIZE));
  }
}

/**
 * A VE's NVRAM image (BOOT-11 b, 160 in Fig. 5) as file `name` of the real file system. No file, or
 * an empty one, loads as undefined; the first store creates the file with the sectors it needs.
 */
export function realFsNvramBackend(fs: RealFs, name: string): NvramBackend {
  return {
    load() {
      const f = fs.stat(name);
      return f === undefined || f.length === 0 ? undefined : fs.read(name);
    },
    store(bytes) {
      if (fs.stat(name) === undefined) fs.create(name, Math.max(1, Math.ceil(bytes.length / SECTOR_SIZE)));
      fs.write(name, bytes);
    },
  };
}
