/**
 * The DTM spool (the patent's "DTM spool area 104e" in the real partition): a small durable record
 * store the data transfer manager keeps its transfers in (held for confirmation, spooled for
 * scanning), so that nothing held is lost across a restart. Records are `id -> bytes`; `put` and
 * `delete` are durable when they return, and a crash in the middle of one (a torn multi-sector
 * write) leaves, on reopen, exactly the state before it or exactly the state after it.
 *
 * {@link openBlockSpool} keeps the store on a region of blocks (a {@link BlockBackend}, e.g. a
 * `diskRegion` of the real partition); {@link memorySpool} has the same semantics in memory (tests,
 * direct mode). Both keep the live records in memory, so `get` never touches the disk.
 *
 * Layout. The region is two halves (ping-pong) of H = floor(sectors / 2) sectors each (an odd last
 * sector is unused); half h starts at sector h * H. Sector 0 of a half is its header, the rest an
 * append-only log. All integers little-endian; CRC-32 is the IEEE one (as zlib), written here
 * rather than taken from asm/image.ts so the DTM does not depend on the assembler.
 *
 * | header off | size | field                                   |
 * |------------|------|-----------------------------------------|
 * | 0          | 4    | magic "CLSP"                            |
 * | 4          | 2    | version (1)                             |
 * | 6          | 2    | which half this is (0 or 1)             |
 * | 8          | 4    | generation (1 at format, +1 per compaction) |
 * | 12         | 4    | H, the half's size in sectors           |
 * | 16         | 12   | zero                                    |
 * | 28         | 4    | CRC-32 of bytes 0..27                   |
 *
 * | record off | size | field                                                   |
 * |------------|------|---------------------------------------------------------|
 * | 0          | 4    | magic "CLSR"                                            |
 * | 4          | 1    | op: 1 put, 2 delete; bytes 5..7 zero                    |
 * | 8          | 4    | generation of the half's header                         |
 * | 12         | 4    | sequence: 0 for the half's first record, then +1 each   |
 * | 16         | 8    | id (u32 low, u32 high; a safe integer)                  |
 * | 24         | 4    | payload length L (0 for a delete)                       |
 * | 28         | 4    | CRC-32 of bytes 0..27 and of the payload                |
 * | 32         | L    | payload, then zeros to the sector boundary              |
 *
 * Records start on sector boundaries (up to 511 bytes of padding each) so that an append never
 * rewrites a sector that holds committed bytes: a torn append can damage only itself. One record
 * is at most one half's log: (H - 1) * 512 - 32 payload bytes.
 *
 * Open: the active half is the one whose header is valid (magic, version, half, H, zeros, CRC) with
 * the highest generation (two valid ones of equal generation are SPOOL_CORRUPT). Its log is replayed
 * until the first record that fails (magic, op, generation, sequence, a length that fits the half,
 * CRC): that is the end, and a torn tail if anything follows it. Every length is checked against the
 * half before anything is read or allocated. Anything non-zero after the end is then zeroed, so the
 * invariant of the active half is: after the log's end, only zeros. That is what makes a torn tail
 * (or stale bytes, or a crafted payload inside one) unable to pass for a record once later appends
 * land just before it. A region with no valid header is formatted when blank (all zero) and
 * `format` is 'if-blank' (the default); otherwise it is SPOOL_CORRUPT, as it is for a blank one
 * under 'never'. 'always' discards whatever is there: an empty spool (atomically, by an empty
 * compaction, when there was a valid one). Opening may write: the format, the tail repair, and
 * the retirement of a lower generation's header that an interrupted compaction left valid.
 *
 * Append: a put or delete is one write of its record's sectors after the log's end. When the log is
 * full, compaction writes the new live set (the operation already applied) into the other half:
 * records, zeros over whatever that half may hold after them, then the header with generation + 1
 * LAST. That header write is the commit point; until it lands the old half stays the valid one with
 * the highest generation. The old header is zeroed afterwards, so damage to the new header can never
 * silently bring back the old state (the region is then SPOOL_CORRUPT). A put that cannot fit even
 * after compaction is SPOOL_FULL and writes nothing. After a backend write fails, the instance
 * refuses further puts and deletes (BAD_STATE): what landed is unknown, and reopening decides.
 *
 * Sectors are assumed to be written atomically, and a failed multi-sector write to have written a
 * prefix of its sectors (the tail repair also covers other orders). The CRC detects damage; it does
 * not authenticate: whoever can write the region can write any spool.
 */

import { CRC32_START, crc32Finish, crc32Update } from '../crc32.js';
import { type BlockBackend, SECTOR_SIZE } from '../devices/disk.js';
import { VmmError } from '../vmm/errors.js';

export interface Spool {
  /** Stores record `id` (a non-negative safe integer), replacing any record with that id; durable (written to the backend) when it returns. SPOOL_FULL when it cannot fit even after compaction (then nothing changed). */
  put(id: number, data: Uint8Array): void;
  /** Removes record `id`; durable when it returns. Returns whether it existed. */
  delete(id: number): boolean;
  /** A copy of record `id`'s bytes. */
  get(id: number): Uint8Array | undefined;
  has(id: number): boolean;
  /** Ids in ascending order. */
  ids(): number[];
  readonly count: number;
  /** Payload bytes the store can still accept in one put of a new id (after compaction), for admission decisions. */
  readonly freeBytes: number;
}

export interface BlockSpoolStats {
  /** Sectors per half (H). */
  readonly halfSectors: number;
  readonly activeHalf: 0 | 1;
  /** Sectors of the active half in use: the header and the log. */
  readonly logSectors: number;
  /** Sectors the live records would take after a compaction (header excluded). */
  readonly liveSectors: number;
  /** The largest payload one record may have: (H - 1) * 512 - 32. */
  readonly maxRecordBytes: number;
  /** Records replayed when the spool was opened. */
  readonly replayedRecords: number;
  /** Sectors zeroed after the log's end when the spool was opened (a torn tail: up to its last non-zero sector). */
  readonly repairedSectors: number;
  /** Since open. */
  readonly appends: number;
  readonly compactions: number;
}

export interface BlockSpool extends Spool {
  /** The active half's generation: 1 at format, + 1 per compaction. */
  readonly generation: number;
  readonly stats: BlockSpoolStats;
}

export interface BlockSpoolOptions {
  /** 'if-blank' (default): format an all-zero region; 'always': start empty whatever the region holds; 'never': a region without a spool is SPOOL_CORRUPT. */
  readonly format?: 'if-blank' | 'always' | 'never';
}

/** Default capacity of {@link memorySpool}, in payload bytes. */
export const DEFAULT_MEMORY_SPOOL_BYTES = 1 << 20;

const VERSION = 1;
const RECORD_HEADER = 32;
const OP_PUT = 1;
const OP_DELETE = 2;
const MAX_U32 = 0xffffffff;
/** Sectors per read or write when scanning or zeroing. */
const CHUNK = 64;
const HEADER_MAGIC = [0x43, 0x4c, 0x53, 0x50]; // "CLSP"
const RECORD_MAGIC = [0x43, 0x4c, 0x53, 0x52]; // "CLSR"
const EMPTY = new Uint8Array(0);

/** CRC-32 of a record: header bytes 0..27, then the payload. */
function recordCrc(buf: Uint8Array, length: number): number {
  const c = crc32Update(CRC32_START, buf, 0, 28);
  return crc32Finish(crc32Update(c, buf, RECORD_HEADER, RECORD_HEADER + length));
}

const headerCrc = (buf: Uint8Array): number => crc32Finish(crc32Update(CRC32_START, buf, 0, 28));
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const hasMagic = (b: Uint8Array, magic: readonly number[]) => magic.every((m, i) => b[i] === m);
const isZero = (b: Uint8Array, from: number, to: number) => {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
};

/** Sectors a record with an L-byte payload takes. */
const recordSectors = (length: number) => Math.ceil((RECORD_HEADER + length) / SECTOR_SIZE);

function checkId(id: unknown): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw new VmmError(
      'CONFIG_INVALID',
      `spool: a record id is a non-negative safe integer, got ${String(id)}`,
    );
  }
  return id;
}

function checkData(data: unknown): Uint8Array {
  if (!(data instanceof Uint8Array))
    throw new VmmError('CONFIG_INVALID', 'spool: record data must be a Uint8Array');
  return data;
}

function full(message: string, meta: Record<string, number>): VmmError {
  return new VmmError('SPOOL_FULL', `spool: ${message}`, meta);
}

/** An in-memory spool holding at most `capacityBytes` payload bytes (default 1 MiB). */
export function memorySpool(capacityBytes: number = DEFAULT_MEMORY_SPOOL_BYTES): Spool {
  if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0) {
    throw new VmmError(
      'CONFIG_INVALID',
      `spool: capacity must be a non-negative safe integer, got ${capacityBytes}`,
    );
  }
  const records = new Map<number, Uint8Array>();
  let used = 0;
  return {
    put(id, data) {
      checkId(id);
      checkData(data);
      const old = records.get(id)?.length ?? 0;
      if (used - old + data.length > capacityBytes) {
        throw full(`record ${id} of ${data.length} bytes does not fit`, {
          id,
          length: data.length,
          free: capacityBytes - used + old,
        });
      }
      records.set(id, data.slice());
      used += data.length - old;
    },
    delete(id) {
      const data = records.get(checkId(id));
      if (data === undefined) return false;
      records.delete(id);
      used -= data.length;
      return true;
    },
    get: (id) => records.get(checkId(id))?.slice(),
    has: (id) => records.has(checkId(id)),
    ids: () => [...records.keys()].sort((a, b) => a - b),
    get count() {
      return records.size;
    },
    get freeBytes() {
      return capacityBytes - used;
    },
  };
}

/** Opens (or formats, see `options.format`) the spool on `dev`, which must have at least 4 sectors. */
export function openBlockSpool(dev: BlockBackend, options: BlockSpoolOptions = {}): BlockSpool {
  const sectors = dev?.sectors;
  if (typeof sectors !== 'number' || !Number.isInteger(sectors) || sectors < 4 || sectors > MAX_U32) {
    throw new VmmError(
      'CONFIG_INVALID',
      `spool: the region needs 4..${MAX_U32} sectors, got ${String(sectors)}`,
    );
  }
  const format = options.format ?? 'if-blank';
  if (format !== 'if-blank' && format !== 'always' && format !== 'never') {
    throw new VmmError('CONFIG_INVALID', `spool: unknown format option ${String(format)}`);
  }
  const spool = new BlockSpoolImpl(dev);
  spool.open(format);
  return spool;
}

class BlockSpoolImpl implements BlockSpool {
  private readonly half: number;
  private readonly maxRecord: number;
  private records = new Map<number, Uint8Array>();
  private live = 0;
  private active: 0 | 1 = 1;
  private gen = 0;
  /** Next free sector of the active half's log. */
  private pos = 1;
  private seq = 0;
  /** Per half, the end of the sectors that may be non-zero (header excluded). */
  private readonly dirtyEnd: [number, number];
  /** Per half, whether its header sector may hold a valid header. */
  private readonly headerLive: [boolean, boolean] = [false, false];
  private broken = false;
  private replayed = 0;
  private repaired = 0;
  private appends = 0;
  private compactions = 0;

  constructor(private readonly dev: BlockBackend) {
    this.half = Math.floor(dev.sectors / 2);
    this.maxRecord = (this.half - 1) * SECTOR_SIZE - RECORD_HEADER;
    this.dirtyEnd = [this.half, this.half];
  }

  open(format: 'if-blank' | 'always' | 'never'): void {
    const gens = [this.readHeader(0), this.readHeader(1)];
    const [g0, g1] = gens;
    this.headerLive[0] = g0 !== undefined;
    this.headerLive[1] = g1 !== undefined;
    if (format === 'always') {
      const best = g0 === undefined && g1 === undefined ? undefined : (g0 ?? -1) > (g1 ?? -1) ? 0 : 1;
      this.active = best === 0 ? 0 : 1;
      this.gen = best === undefined ? 0 : gens[best]!;
      this.compact(this.active === 0 ? 1 : 0, []);
      this.compactions = 0;
      return;
    }
    if (g0 === undefined && g1 === undefined) {
      if (format === 'never') throw this.corrupt('the region holds no spool');
      if (!this.regionIsBlank()) throw this.corrupt('the region holds something that is not a spool');
      this.dirtyEnd[0] = 1;
      this.dirtyEnd[1] = 1;
      this.compact(0, []);
      this.compactions = 0;
      return;
    }
    if (g0 === g1) throw this.corrupt(`both halves claim generation ${g0}`);
    this.active = g1 === undefined || (g0 !== undefined && g0 > g1) ? 0 : 1;
    this.gen = gens[this.active]!;
    this.replay();
    this.repairTail();
    const other = this.active === 0 ? 1 : 0;
    // A lower generation left by a compaction that crashed before retiring it.
    if (this.headerLive[other]) this.retire(other);
  }

  private corrupt(message: string): VmmError {
    return new VmmError('SPOOL_CORRUPT', `spool: ${message}`, { sectors: this.dev.sectors });
  }

  /** The generation in half `h`'s header, or undefined when it is not a valid header. */
  private readHeader(h: 0 | 1): number | undefined {
    const b = new Uint8Array(SECTOR_SIZE);
    this.dev.read(h * this.half, b);
    const v = view(b);
    if (
      !hasMagic(b, HEADER_MAGIC) ||
      v.getUint16(4, true) !== VERSION ||
      v.getUint16(6, true) !== h ||
      v.getUint32(12, true) !== this.half ||
      !isZero(b, 16, 28) ||
      v.getUint32(28, true) !== headerCrc(b)
    ) {
      return undefined;
    }
    const gen = v.getUint32(8, true);
    return gen >= 1 ? gen : undefined;
  }

  private regionIsBlank(): boolean {
    return this.lastNonZero(0, this.dev.sectors) < 0;
  }

  /** The last non-zero sector in [from, to), or -1. */
  private lastNonZero(from: number, to: number): number {
    let last = -1;
    const buf = new Uint8Array(Math.min(CHUNK, Math.max(1, to - from)) * SECTOR_SIZE);
    for (let s = from; s < to; s += CHUNK) {
      const n = Math.min(CHUNK, to - s);
      const b = buf.subarray(0, n * SECTOR_SIZE);
      this.dev.read(s, b);
      for (let i = n - 1; i >= 0; i--) {
        if (!isZero(b, i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE)) {
          last = s + i;
          break;
        }
      }
    }
    return last;
  }

  /** Replays the active half's log up to its first bad record. */
  private replay(): void {
    const base = this.active * this.half;
    const head = new Uint8Array(SECTOR_SIZE);
    const v = view(head);
    let pos = 1;
    let seq = 0;
    while (pos < this.half) {
      this.dev.read(base + pos, head);
      if (!hasMagic(head, RECORD_MAGIC) || !isZero(head, 5, 8)) break;
      const op = head[4];
      const hi = v.getUint32(20, true);
      const length = v.getUint32(24, true);
      if (
        (op !== OP_PUT && op !== OP_DELETE) ||
        v.getUint32(8, true) !== this.gen ||
        v.getUint32(12, true) !== seq ||
        hi > 0x1fffff ||
        (op === OP_DELETE && length !== 0) ||
        length > this.maxRecord ||
        recordSectors(length) > this.half - pos
      ) {
        break;
      }
      const n = recordSectors(length);
      let buf = head;
      if (n > 1) {
        buf = new Uint8Array(n * SECTOR_SIZE);
        buf.set(head);
        this.dev.read(base + pos + 1, buf.subarray(SECTOR_SIZE));
      }
      if (v.getUint32(28, true) !== recordCrc(buf, length)) break;
      const id = hi * 2 ** 32 + v.getUint32(16, true);
      this.forget(id);
      if (op === OP_PUT) {
        this.records.set(id, buf.slice(RECORD_HEADER, RECORD_HEADER + length));
        this.live += n;
      }
      pos += n;
      seq++;
    }
    this.pos = pos;
    this.seq = seq;
    this.replayed = seq;
  }

  /** Zeroes whatever follows the log's end in the active half (a torn tail), restoring the invariant. */
  private repairTail(): void {
    const base = this.active * this.half;
    const last = this.lastNonZero(base + this.pos, base + this.half);
    if (last >= 0) {
      this.zero(base + this.pos, last + 1);
      this.repaired = last + 1 - (base + this.pos);
    }
    this.dirtyEnd[this.active] = this.pos;
  }

  private forget(id: number): void {
    const old = this.records.get(id);
    if (old === undefined) return;
    this.records.delete(id);
    this.live -= recordSectors(old.length);
  }

  private write(lba: number, data: Uint8Array): void {
    try {
      this.dev.write(lba, data);
    } catch (e) {
      this.broken = true;
      throw e;
    }
  }

  private zero(from: number, to: number): void {
    if (from >= to) return;
    const zeros = new Uint8Array(Math.min(CHUNK, to - from) * SECTOR_SIZE);
    for (let s = from; s < to; s += CHUNK)
      this.write(s, zeros.subarray(0, Math.min(CHUNK, to - s) * SECTOR_SIZE));
  }

  private usable(): void {
    if (this.broken) {
      throw new VmmError('BAD_STATE', 'spool: a backend write failed; reopen the spool to recover');
    }
  }

  private encodeRecord(op: number, gen: number, seq: number, id: number, data: Uint8Array): Uint8Array {
    const buf = new Uint8Array(recordSectors(data.length) * SECTOR_SIZE);
    const v = view(buf);
    buf.set(RECORD_MAGIC, 0);
    buf[4] = op;
    v.setUint32(8, gen, true);
    v.setUint32(12, seq, true);
    v.setUint32(16, id % 2 ** 32, true);
    v.setUint32(20, Math.floor(id / 2 ** 32), true);
    v.setUint32(24, data.length, true);
    buf.set(data, RECORD_HEADER);
    v.setUint32(28, recordCrc(buf, data.length), true);
    return buf;
  }

  /** Appends a record after the log's end; false (nothing written) when it does not fit. */
  private append(op: number, id: number, data: Uint8Array): boolean {
    const n = recordSectors(data.length);
    if (this.pos + n > this.half) return false;
    this.write(this.active * this.half + this.pos, this.encodeRecord(op, this.gen, this.seq, id, data));
    this.pos += n;
    this.seq++;
    this.dirtyEnd[this.active] = Math.max(this.dirtyEnd[this.active], this.pos);
    this.appends++;
    return true;
  }

  /**
   * Writes `entries` as the whole live set into half `target` with the next generation, header last
   * (the commit point), adopts it, and retires the old half's header.
   */
  private compact(target: 0 | 1, entries: readonly (readonly [number, Uint8Array])[]): void {
    if (this.gen >= MAX_U32)
      throw new VmmError('LIMIT_EXCEEDED', 'spool: the generation counter is exhausted');
    const gen = this.gen + 1;
    const base = target * this.half;
    let pos = 1;
    let seq = 0;
    for (const [id, data] of entries) {
      const rec = this.encodeRecord(OP_PUT, gen, seq++, id, data);
      this.write(base + pos, rec);
      pos += rec.length / SECTOR_SIZE;
    }
    this.zero(base + pos, base + this.dirtyEnd[target]);
    const head = new Uint8Array(SECTOR_SIZE);
    const v = view(head);
    head.set(HEADER_MAGIC, 0);
    v.setUint16(4, VERSION, true);
    v.setUint16(6, target, true);
    v.setUint32(8, gen, true);
    v.setUint32(12, this.half, true);
    v.setUint32(28, headerCrc(head), true);
    this.write(base, head);
    // Committed.
    const old = this.active;
    this.headerLive[target] = true;
    this.active = target;
    this.gen = gen;
    this.pos = pos;
    this.seq = seq;
    this.dirtyEnd[target] = pos;
    this.records = new Map(entries.map(([id, data]) => [id, data]));
    this.live = pos - 1;
    this.compactions++;
    if (old !== target && this.headerLive[old]) this.retire(old);
  }

  private retire(h: 0 | 1): void {
    this.write(h * this.half, new Uint8Array(SECTOR_SIZE));
    this.headerLive[h] = false;
  }

  /** The live set in ascending id order, with `id` set to `data` (or removed when undefined). */
  private entriesWith(id: number, data: Uint8Array | undefined): [number, Uint8Array][] {
    const out: [number, Uint8Array][] = [];
    for (const k of this.ids()) if (k !== id) out.push([k, this.records.get(k)!]);
    if (data !== undefined) {
      out.push([id, data]);
      out.sort((a, b) => a[0] - b[0]);
    }
    return out;
  }

  put(id: number, data: Uint8Array): void {
    checkId(id);
    checkData(data);
    this.usable();
    if (data.length > this.maxRecord) {
      throw full(`record ${id} of ${data.length} bytes exceeds the largest record, ${this.maxRecord}`, {
        id,
        length: data.length,
        maxRecord: this.maxRecord,
      });
    }
    const copy = data.slice();
    const n = recordSectors(copy.length);
    const old = this.records.get(id);
    const after = this.live - (old === undefined ? 0 : recordSectors(old.length)) + n;
    if (after > this.half - 1) {
      throw full(`record ${id} of ${copy.length} bytes does not fit`, {
        id,
        length: copy.length,
        free: this.freeBytes,
      });
    }
    if (this.append(OP_PUT, id, copy)) {
      this.forget(id);
      this.records.set(id, copy);
      this.live += n;
    } else {
      this.compact(this.active === 0 ? 1 : 0, this.entriesWith(id, copy));
    }
  }

  delete(id: number): boolean {
    checkId(id);
    this.usable();
    if (!this.records.has(id)) return false;
    if (this.append(OP_DELETE, id, EMPTY)) this.forget(id);
    else this.compact(this.active === 0 ? 1 : 0, this.entriesWith(id, undefined));
    return true;
  }

  get(id: number): Uint8Array | undefined {
    return this.records.get(checkId(id))?.slice();
  }

  has(id: number): boolean {
    return this.records.has(checkId(id));
  }

  ids(): number[] {
    return [...this.records.keys()].sort((a, b) => a - b);
  }

  get count(): number {
    return this.records.size;
  }

  get freeBytes(): number {
    const free = this.half - 1 - this.live;
    return free >= 1 ? free * SECTOR_SIZE - RECORD_HEADER : 0;
  }

  get generation(): number {
    return this.gen;
  }

  get stats(): BlockSpoolStats {
    return {
      halfSectors: this.half,
      activeHalf: this.active,
      logSectors: this.pos,
      liveSectors: this.live,
      maxRecordBytes: this.maxRecord,
      replayedRecords: this.replayed,
      repairedSectors: this.repaired,
      appends: this.appends,
      compactions: this.compactions,
    };
  }
}
