import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crc32.js';
import {
  type BlockBackend,
  fileBlockBackend,
  memoryBlockBackend,
  SECTOR_SIZE,
} from '../../src/devices/disk.js';
import { memorySpool, openBlockSpool, type Spool } from '../../src/dtm/spool.js';
import { VmmError } from '../../src/vmm/errors.js';
import { useTempDir } from '../devices/helpers.js';

const tempDir = useTempDir();

function bytes(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7 + 1) & 0xff;
  return b;
}

type State = Map<number, Uint8Array>;

function contents(s: Spool): State {
  return new Map(s.ids().map((id) => [id, s.get(id)!]));
}

/** A state as short strings (`id:hex`): vitest compares these far faster than maps of byte arrays. */
function fmt(state: State): string[] {
  return [...state].sort((x, y) => x[0] - y[0]).map(([id, d]) => `${id}:${Buffer.from(d).toString('hex')}`);
}

function sameState(a: State, b: State): boolean {
  if (a.size !== b.size) return false;
  for (const [id, data] of a) {
    const other = b.get(id);
    if (other === undefined || other.length !== data.length || !other.every((v, i) => v === data[i]))
      return false;
  }
  return true;
}

/** The VmmError code `fn` throws (fails the test if it throws anything else, or nothing). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(VmmError);
    return (e as VmmError).code;
  }
  throw new Error('expected a VmmError, nothing was thrown');
}

const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** A spool header sector as the file's header comment lays it out. */
function headerSector(half: number, gen: number, halfSectors: number): Uint8Array {
  const s = new Uint8Array(SECTOR_SIZE);
  s.set([0x43, 0x4c, 0x53, 0x50, 1, 0, half, 0, ...u32(gen), ...u32(halfSectors)]);
  s.set(u32(crc32(s.subarray(0, 28))), 28);
  return s;
}

const sectorOf = (dev: { bytes: Uint8Array }, lba: number) =>
  dev.bytes.slice(lba * SECTOR_SIZE, (lba + 1) * SECTOR_SIZE);

// ---------------------------------------------------------------------------------------------
// One compliance suite for every Spool implementation.

const IMPLEMENTATIONS: { name: string; fresh: () => Spool; emptyFree: number }[] = [
  { name: 'memorySpool', fresh: () => memorySpool(4096), emptyFree: 4096 },
  // 20 sectors: halves of 10, 9 log sectors, 9 * 512 - 32 payload bytes.
  { name: 'openBlockSpool', fresh: () => openBlockSpool(memoryBlockBackend(20)), emptyFree: 4576 },
];

describe.each(IMPLEMENTATIONS)('Spool compliance: $name', ({ fresh, emptyFree }) => {
  it('starts empty', () => {
    const s = fresh();
    expect(s.count).toBe(0);
    expect(s.ids()).toEqual([]);
    expect(s.get(0)).toBeUndefined();
    expect(s.has(0)).toBe(false);
    expect(s.freeBytes).toBe(emptyFree);
  });

  it('get returns a copy; the store keeps no reference to the caller buffer', () => {
    const s = fresh();
    const data = bytes(100, 1);
    s.put(7, data);
    data.fill(0);
    const got = s.get(7)!;
    expect(got).toEqual(bytes(100, 1));
    got.fill(0xee);
    expect(s.get(7)).toEqual(bytes(100, 1));
    expect(s.has(7)).toBe(true);
    expect(s.count).toBe(1);
  });

  it('put replaces a record with the same id', () => {
    const s = fresh();
    s.put(1, bytes(10, 1));
    s.put(2, bytes(20, 2));
    s.put(1, bytes(30, 3));
    expect(s.count).toBe(2);
    expect(s.get(1)).toEqual(bytes(30, 3));
    expect(s.get(2)).toEqual(bytes(20, 2));
  });

  it('delete returns whether the record existed', () => {
    const s = fresh();
    s.put(1, bytes(10, 1));
    expect(s.delete(2)).toBe(false);
    expect(s.delete(1)).toBe(true);
    expect(s.delete(1)).toBe(false);
    expect(s.has(1)).toBe(false);
    expect(s.get(1)).toBeUndefined();
    expect(s.count).toBe(0);
    expect(s.freeBytes).toBe(emptyFree);
  });

  it('ids come in ascending order, the whole safe-integer range included', () => {
    const s = fresh();
    for (const id of [7, 0, Number.MAX_SAFE_INTEGER, 3, 2 ** 32]) s.put(id, bytes(1, id % 251));
    expect(s.ids()).toEqual([0, 3, 7, 2 ** 32, Number.MAX_SAFE_INTEGER]);
    expect(s.get(Number.MAX_SAFE_INTEGER)).toEqual(bytes(1, Number.MAX_SAFE_INTEGER % 251));
    expect(s.get(2 ** 32)).toEqual(bytes(1, 2 ** 32 % 251));
  });

  it('an empty record is a record', () => {
    const s = fresh();
    s.put(5, new Uint8Array(0));
    expect(s.has(5)).toBe(true);
    expect(s.get(5)).toEqual(new Uint8Array(0));
    expect(s.ids()).toEqual([5]);
  });

  it('bad ids and data are CONFIG_INVALID', () => {
    const s = fresh();
    for (const id of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', undefined]) {
      const bad = id as number;
      expect(
        codeOf(() => s.put(bad, bytes(1, 0))),
        `put ${String(id)}`,
      ).toBe('CONFIG_INVALID');
      expect(
        codeOf(() => s.get(bad)),
        `get ${String(id)}`,
      ).toBe('CONFIG_INVALID');
      expect(
        codeOf(() => s.has(bad)),
        `has ${String(id)}`,
      ).toBe('CONFIG_INVALID');
      expect(
        codeOf(() => s.delete(bad)),
        `delete ${String(id)}`,
      ).toBe('CONFIG_INVALID');
    }
    for (const data of [undefined, [1, 2], 'ab', new Uint16Array(2)]) {
      expect(
        codeOf(() => s.put(1, data as unknown as Uint8Array)),
        `data ${String(data)}`,
      ).toBe('CONFIG_INVALID');
    }
    expect(s.count).toBe(0);
  });

  it('a record larger than the store is SPOOL_FULL and changes nothing', () => {
    const s = fresh();
    s.put(1, bytes(10, 1));
    expect(codeOf(() => s.put(2, bytes(emptyFree + 1, 2)))).toBe('SPOOL_FULL');
    expect(codeOf(() => s.put(1, bytes(emptyFree + 1, 2)))).toBe('SPOOL_FULL');
    expect(s.ids()).toEqual([1]);
    expect(s.get(1)).toEqual(bytes(10, 1));
  });

  it('freeBytes is exactly what one put of a new id accepts; SPOOL_FULL changes nothing', () => {
    const s = fresh();
    s.put(1, bytes(emptyFree, 1));
    expect(s.freeBytes).toBe(0);
    expect(codeOf(() => s.put(2, bytes(1, 2)))).toBe('SPOOL_FULL');
    expect(contents(s)).toEqual(new Map([[1, bytes(emptyFree, 1)]]));
    // A replacement may reuse its own record's room.
    s.put(1, bytes(emptyFree, 3));
    expect(s.get(1)).toEqual(bytes(emptyFree, 3));
    s.put(1, bytes(1, 4));
    expect(s.freeBytes).toBeGreaterThan(0);
    const free = s.freeBytes;
    s.put(2, bytes(free, 5));
    expect(s.freeBytes).toBe(0);
    expect(codeOf(() => s.put(3, bytes(1, 6)))).toBe('SPOOL_FULL');
    expect(s.ids()).toEqual([1, 2]);
  });
});

describe('memorySpool', () => {
  it('counts payload bytes against its capacity (default 1 MiB)', () => {
    expect(memorySpool().freeBytes).toBe(1 << 20);
    const s = memorySpool(100);
    s.put(1, bytes(60, 1));
    expect(s.freeBytes).toBe(40);
    s.put(1, bytes(100, 1));
    expect(s.freeBytes).toBe(0);
  });

  it('a bad capacity is CONFIG_INVALID', () => {
    for (const c of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(
        codeOf(() => memorySpool(c)),
        String(c),
      ).toBe('CONFIG_INVALID');
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('openBlockSpool: layout and reopening', () => {
  it('formats a blank region: one header at sector 0, generation 1, everything else zero', () => {
    const dev = memoryBlockBackend(20);
    const s = openBlockSpool(dev);
    expect(s.generation).toBe(1);
    expect(sectorOf(dev, 0)).toEqual(headerSector(0, 1, 10));
    expect(dev.bytes.subarray(SECTOR_SIZE).every((b) => b === 0)).toBe(true);
    expect(s.stats).toEqual({
      halfSectors: 10,
      activeHalf: 0,
      logSectors: 1,
      liveSectors: 0,
      maxRecordBytes: 4576,
      replayedRecords: 0,
      repairedSectors: 0,
      appends: 0,
      compactions: 0,
    });
  });

  it('a put is one record on a sector boundary after the log; a delete one more', () => {
    const dev = memoryBlockBackend(20);
    const s = openBlockSpool(dev);
    const id = 2 ** 32 + 2;
    s.put(id, new Uint8Array([1, 2, 3]));
    const rec = new Uint8Array(SECTOR_SIZE);
    rec.set([0x43, 0x4c, 0x53, 0x52, 1, 0, 0, 0, ...u32(1), ...u32(0), ...u32(2), ...u32(1), ...u32(3)]);
    rec.set([1, 2, 3], 32);
    rec.set(u32(crc32(new Uint8Array([...rec.subarray(0, 28), 1, 2, 3]))), 28);
    expect(sectorOf(dev, 1)).toEqual(rec);
    s.delete(id);
    const del = new Uint8Array(SECTOR_SIZE);
    del.set([0x43, 0x4c, 0x53, 0x52, 2, 0, 0, 0, ...u32(1), ...u32(1), ...u32(2), ...u32(1), ...u32(0)]);
    del.set(u32(crc32(del.subarray(0, 28))), 28);
    expect(sectorOf(dev, 2)).toEqual(del);
    expect(dev.bytes.subarray(3 * SECTOR_SIZE).every((b) => b === 0)).toBe(true);
    expect(s.stats.logSectors).toBe(3);
    expect(s.stats.appends).toBe(2);
  });

  it('records take whole sectors: 480 payload bytes fill one, 481 need two', () => {
    const s = openBlockSpool(memoryBlockBackend(20));
    s.put(1, bytes(480, 1));
    expect([s.stats.liveSectors, s.freeBytes]).toEqual([1, 8 * 512 - 32]);
    s.put(2, bytes(481, 2));
    expect([s.stats.liveSectors, s.freeBytes]).toEqual([3, 6 * 512 - 32]);
    s.put(3, bytes(6 * 512 - 32, 3));
    expect([s.stats.liveSectors, s.freeBytes]).toEqual([9, 0]);
  });

  it('reopening gives back exactly the same records, replacements and deletions included', () => {
    const dev = memoryBlockBackend(64);
    const s = openBlockSpool(dev);
    s.put(1, bytes(100, 1));
    s.put(2, bytes(1000, 2));
    s.put(3, bytes(0, 3));
    s.put(1, bytes(700, 4));
    s.delete(2);
    s.put(Number.MAX_SAFE_INTEGER, bytes(5, 5));
    const r = openBlockSpool(dev);
    expect(contents(r)).toEqual(
      new Map([
        [1, bytes(700, 4)],
        [3, bytes(0, 3)],
        [Number.MAX_SAFE_INTEGER, bytes(5, 5)],
      ]),
    );
    expect(r.generation).toBe(1);
    expect(r.stats.replayedRecords).toBe(6);
    expect(r.stats.logSectors).toBe(s.stats.logSectors);
    expect(r.stats.liveSectors).toBe(s.stats.liveSectors);
    expect(r.freeBytes).toBe(s.freeBytes);
    // Appends continue after the replayed log, and survive the next reopen too.
    r.put(4, bytes(50, 6));
    expect(contents(openBlockSpool(dev))).toEqual(new Map([...contents(s), [4, bytes(50, 6)]]));
  });

  it('a region in a real file reopens with the same records', () => {
    const path = join(tempDir(), 'spool.img');
    const f1 = fileBlockBackend(path, 32);
    const s = openBlockSpool(f1);
    s.put(10, bytes(2000, 1));
    s.put(11, bytes(3, 2));
    s.delete(10);
    s.put(12, bytes(600, 3));
    f1.close();
    const f2 = fileBlockBackend(path);
    expect(f2.sectors).toBe(32);
    const r = openBlockSpool(f2);
    expect(contents(r)).toEqual(
      new Map([
        [11, bytes(3, 2)],
        [12, bytes(600, 3)],
      ]),
    );
    f2.close();
  });

  it('an odd last sector is unused: the same spool opens on 20 and 21 sectors; 22 is another geometry', () => {
    const a = memoryBlockBackend(20);
    openBlockSpool(a).put(1, bytes(9, 1));
    const b = memoryBlockBackend(21);
    b.bytes.set(a.bytes);
    expect(contents(openBlockSpool(b))).toEqual(new Map([[1, bytes(9, 1)]]));
    const c = memoryBlockBackend(22);
    c.bytes.set(a.bytes);
    expect(codeOf(() => openBlockSpool(c))).toBe('SPOOL_CORRUPT');
  });
});

describe('openBlockSpool: compaction', () => {
  it('cycles through many times the region; generation grows, records stay exact across reopens', () => {
    const dev = memoryBlockBackend(32); // halves of 16: logs of 15 sectors, 5 records of up to 2
    let s = openBlockSpool(dev);
    const model: State = new Map();
    let written = 0;
    for (let i = 0; i < 300; i++) {
      const id = i % 5;
      const data = bytes(200 + ((i * 97) % 700), i);
      s.put(id, data);
      model.set(id, data);
      written += data.length;
      if (i % 3 === 2) {
        const gone = (i + 2) % 5;
        expect(s.delete(gone), `op ${i}`).toBe(model.delete(gone));
      }
      expect(fmt(contents(s)), `op ${i}`).toEqual(fmt(model));
      if (i % 7 === 0) {
        const gen = s.generation;
        s = openBlockSpool(dev);
        expect(s.generation, `reopen after op ${i}`).toBe(gen);
        expect(fmt(contents(s)), `reopen after op ${i}`).toEqual(fmt(model));
      }
    }
    expect(written).toBe(164250); // ten times the region
    expect(s.generation).toBe(62);
    expect(contents(openBlockSpool(dev))).toEqual(model);
  });

  it('compaction commits the other half with generation + 1, then zeroes the old header', () => {
    const dev = memoryBlockBackend(16); // halves of 8: a log of 7 sectors
    const s = openBlockSpool(dev);
    s.put(1, bytes(1000, 1)); // 3 sectors
    s.put(2, bytes(1000, 2)); // 3 sectors
    s.delete(1); // 1 sector: the log is full
    expect(s.stats.logSectors).toBe(8);
    s.put(3, bytes(10, 3)); // no room: compaction writes {2, 3} into half 1
    expect(s.generation).toBe(2);
    expect(s.stats).toMatchObject({ activeHalf: 1, logSectors: 5, liveSectors: 4, compactions: 1 });
    expect(sectorOf(dev, 0)).toEqual(new Uint8Array(SECTOR_SIZE));
    expect(sectorOf(dev, 8)).toEqual(headerSector(1, 2, 8));
    expect(dev.bytes.subarray(13 * SECTOR_SIZE).every((b) => b === 0)).toBe(true);
    // A delete that finds the log full compacts too (and always fits).
    s.put(4, bytes(1000, 4)); // 3 sectors: the log is full again
    s.delete(2);
    expect(s.generation).toBe(3);
    expect(s.stats.activeHalf).toBe(0);
    expect(contents(openBlockSpool(dev))).toEqual(
      new Map([
        [3, bytes(10, 3)],
        [4, bytes(1000, 4)],
      ]),
    );
    // Half 0's stale records after the new log were zeroed: only zeros follow the log.
    expect(dev.bytes.subarray(5 * SECTOR_SIZE, 8 * SECTOR_SIZE).every((b) => b === 0)).toBe(true);
  });

  it('SPOOL_FULL writes nothing', () => {
    const dev = memoryBlockBackend(16);
    const s = openBlockSpool(dev);
    s.put(1, bytes(2000, 1)); // 4 sectors
    s.put(2, bytes(1000, 2)); // 3 sectors: the log is full
    const before = dev.bytes.slice();
    expect(codeOf(() => s.put(3, bytes(1, 3)))).toBe('SPOOL_FULL');
    expect(codeOf(() => s.put(2, bytes(1600, 3)))).toBe('SPOOL_FULL');
    expect(codeOf(() => s.put(4, bytes(s.stats.maxRecordBytes + 1, 4)))).toBe('SPOOL_FULL');
    expect(dev.bytes).toEqual(before);
    expect(s.generation).toBe(1);
    expect(contents(s)).toEqual(
      new Map([
        [1, bytes(2000, 1)],
        [2, bytes(1000, 2)],
      ]),
    );
  });

  it('the largest record is a whole half log; one byte more is SPOOL_FULL with its limit', () => {
    const s = openBlockSpool(memoryBlockBackend(16));
    expect(s.stats.maxRecordBytes).toBe(7 * 512 - 32);
    s.put(1, bytes(7 * 512 - 32, 1));
    s.put(1, bytes(7 * 512 - 32, 2));
    expect(s.get(1)).toEqual(bytes(7 * 512 - 32, 2));
    let err: VmmError | undefined;
    try {
      s.put(2, bytes(7 * 512 - 31, 3));
    } catch (e) {
      err = e as VmmError;
    }
    expect(err).toBeInstanceOf(VmmError);
    expect([err?.code, err?.meta]).toEqual(['SPOOL_FULL', { id: 2, length: 3553, maxRecord: 3552 }]);
  });
});

describe('openBlockSpool: regions that are not a spool', () => {
  it('garbage is SPOOL_CORRUPT (if-blank, never) and nothing is written; always formats it', () => {
    for (const format of ['if-blank', 'never', undefined] as const) {
      const dev = memoryBlockBackend(20);
      dev.bytes.set(bytes(dev.bytes.length, 9));
      const before = dev.bytes.slice();
      expect(
        codeOf(() => openBlockSpool(dev, format ? { format } : {})),
        String(format),
      ).toBe('SPOOL_CORRUPT');
      expect(dev.bytes, String(format)).toEqual(before);
    }
    const dev = memoryBlockBackend(20);
    dev.bytes.set(bytes(dev.bytes.length, 9));
    const s = openBlockSpool(dev, { format: 'always' });
    expect([s.count, s.generation]).toEqual([0, 1]);
    s.put(1, bytes(3000, 1));
    const r = openBlockSpool(dev);
    expect(contents(r)).toEqual(new Map([[1, bytes(3000, 1)]]));
  });

  it('one non-zero byte anywhere in a region without a spool is SPOOL_CORRUPT', () => {
    for (const at of [0, 511, 512, 19 * 512 + 511]) {
      const dev = memoryBlockBackend(20);
      dev.bytes[at] = 1;
      expect(
        codeOf(() => openBlockSpool(dev)),
        `byte ${at}`,
      ).toBe('SPOOL_CORRUPT');
    }
  });

  it("a blank region with format 'never' is SPOOL_CORRUPT and stays blank", () => {
    const dev = memoryBlockBackend(20);
    expect(codeOf(() => openBlockSpool(dev, { format: 'never' }))).toBe('SPOOL_CORRUPT');
    expect(dev.bytes.every((b) => b === 0)).toBe(true);
    openBlockSpool(dev).put(1, bytes(1, 1));
    expect(openBlockSpool(dev, { format: 'never' }).ids()).toEqual([1]);
  });

  it("format 'always' empties an existing spool atomically, as one more generation", () => {
    const dev = memoryBlockBackend(20);
    const s = openBlockSpool(dev);
    s.put(1, bytes(100, 1));
    const a = openBlockSpool(dev, { format: 'always' });
    expect([a.count, a.generation, a.stats.activeHalf]).toEqual([0, 2, 1]);
    expect(sectorOf(dev, 0)).toEqual(new Uint8Array(SECTOR_SIZE));
    const r = openBlockSpool(dev);
    expect([r.count, r.generation]).toEqual([0, 2]);
  });

  it('damage to the active header is SPOOL_CORRUPT, never a silent return to the old half', () => {
    const dev = memoryBlockBackend(16);
    const s = openBlockSpool(dev);
    s.put(1, bytes(3000, 1)); // 6 sectors
    s.put(1, bytes(10, 1)); // the log is full
    s.put(2, bytes(10, 2)); // compaction into half 1, generation 2
    expect(s.generation).toBe(2);
    dev.bytes[8 * SECTOR_SIZE + 9]! ^= 0x40;
    expect(codeOf(() => openBlockSpool(dev))).toBe('SPOOL_CORRUPT');
  });

  it('two valid headers of one generation are SPOOL_CORRUPT', () => {
    const dev = memoryBlockBackend(20);
    openBlockSpool(dev);
    dev.bytes.set(headerSector(1, 1, 10), 10 * SECTOR_SIZE);
    expect(codeOf(() => openBlockSpool(dev))).toBe('SPOOL_CORRUPT');
  });

  it('a stale lower generation left by an interrupted compaction loses, and is retired', () => {
    const dev = memoryBlockBackend(16);
    const s = openBlockSpool(dev);
    const old = sectorOf(dev, 0);
    s.put(1, bytes(3000, 1)); // 6 sectors
    s.put(1, bytes(10, 1)); // the log is full
    s.put(2, bytes(10, 2)); // compaction into half 1
    dev.bytes.set(old, 0); // as if the old header had not been zeroed yet
    const r = openBlockSpool(dev);
    expect([r.generation, r.stats.activeHalf]).toEqual([2, 1]);
    expect(contents(r)).toEqual(
      new Map([
        [1, bytes(10, 1)],
        [2, bytes(10, 2)],
      ]),
    );
    expect(sectorOf(dev, 0)).toEqual(new Uint8Array(SECTOR_SIZE));
  });

  it('bad regions and options are CONFIG_INVALID', () => {
    expect(codeOf(() => openBlockSpool(memoryBlockBackend(3)))).toBe('CONFIG_INVALID');
    expect(codeOf(() => openBlockSpool(undefined as unknown as BlockBackend))).toBe('CONFIG_INVALID');
    const bad = { format: 'sometimes' } as unknown as { format: 'never' };
    expect(codeOf(() => openBlockSpool(memoryBlockBackend(8), bad))).toBe('CONFIG_INVALID');
  });
});

describe('openBlockSpool: damaged records end the replay', () => {
  /** Three one-sector records 1, 2, 3 at sectors 1..3 of a 20-sector region. */
  function threeRecords() {
    const dev = memoryBlockBackend(20);
    const s = openBlockSpool(dev);
    for (const id of [1, 2, 3]) s.put(id, bytes(100, id));
    return dev;
  }

  it('a flipped payload byte ends the replay there; the tail is zeroed and appends go on', () => {
    const dev = threeRecords();
    dev.bytes[2 * SECTOR_SIZE + 40]! ^= 1;
    const r = openBlockSpool(dev);
    expect(contents(r)).toEqual(new Map([[1, bytes(100, 1)]]));
    expect([r.stats.replayedRecords, r.stats.repairedSectors, r.stats.logSectors]).toEqual([1, 2, 2]);
    expect(dev.bytes.subarray(2 * SECTOR_SIZE, 10 * SECTOR_SIZE).every((b) => b === 0)).toBe(true);
    r.put(4, bytes(5, 4));
    expect(contents(openBlockSpool(dev))).toEqual(
      new Map([
        [1, bytes(100, 1)],
        [4, bytes(5, 4)],
      ]),
    );
  });

  it('lengths from the disk are never trusted, even under a correct CRC', () => {
    for (const length of [0xffffffff, 0x7fffffff, 4577, 4576, 8 * 512 - 31]) {
      const dev = threeRecords();
      const at = 2 * SECTOR_SIZE;
      dev.bytes.set(u32(length), at + 24);
      dev.bytes.set(u32(crc32(dev.bytes.subarray(at, at + 28))), at + 28);
      const r = openBlockSpool(dev);
      expect(contents(r), `length ${length}`).toEqual(new Map([[1, bytes(100, 1)]]));
    }
  });

  it('a record of another generation or out of sequence ends the replay', () => {
    for (const [field, value] of [
      [8, 2],
      [12, 5],
      [20, 0x200000],
    ] as const) {
      const dev = threeRecords();
      const at = 2 * SECTOR_SIZE;
      dev.bytes.set(u32(value), at + field);
      const head = dev.bytes.slice(at, at + 28);
      const crc = crc32(new Uint8Array([...head, ...dev.bytes.subarray(at + 32, at + 132)]));
      dev.bytes.set(u32(crc), at + 28);
      expect(contents(openBlockSpool(dev)), `field ${field}`).toEqual(new Map([[1, bytes(100, 1)]]));
    }
  });

  it('random damage opens as a prefix of the log or is SPOOL_CORRUPT, and the spool stays usable', () => {
    const base = memoryBlockBackend(20);
    const s = openBlockSpool(base);
    const prefixes: State[] = [contents(s)];
    const ops: [number, number][] = [
      [1, 100],
      [2, 700],
      [1, 0],
      [3, 1200],
      [2, -1],
    ];
    for (const [id, len] of ops) {
      if (len < 0) s.delete(id);
      else s.put(id, bytes(len, id + len));
      prefixes.push(contents(s));
    }
    let x = 0x1234567;
    const rand = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const outcomes = { corrupt: 0, prefix: 0 };
    for (let trial = 0; trial < 400; trial++) {
      const dev = memoryBlockBackend(20);
      dev.bytes.set(base.bytes);
      const flips = 1 + rand(3);
      for (let f = 0; f < flips; f++) dev.bytes[rand(dev.bytes.length)]! ^= 1 + rand(255);
      let r: Spool;
      try {
        r = openBlockSpool(dev);
      } catch (e) {
        expect(e, `trial ${trial}`).toBeInstanceOf(VmmError);
        expect((e as VmmError).code, `trial ${trial}`).toBe('SPOOL_CORRUPT');
        outcomes.corrupt++;
        continue;
      }
      const got = contents(r);
      expect(
        prefixes.some((p) => sameState(p, got)),
        `trial ${trial}`,
      ).toBe(true);
      outcomes.prefix++;
      r.put(99, bytes(300, 99));
      expect(fmt(contents(openBlockSpool(dev))), `trial ${trial} after a put`).toEqual(
        fmt(new Map([...got, [99, bytes(300, 99)]])),
      );
    }
    expect(outcomes.corrupt + outcomes.prefix).toBe(400);
    expect(outcomes.corrupt).toBeGreaterThan(0);
    expect(outcomes.prefix).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Torn writes: a crash at every write of a scripted sequence.

class Crash extends Error {}

/** Passes writes through, except write number `at`: it writes its first `keep` sectors (or all), then throws. */
function crashing(inner: BlockBackend, at: number, keep: number | 'all'): BlockBackend {
  let writes = 0;
  return {
    sectors: inner.sectors,
    read: (lba, out) => inner.read(lba, out),
    write(lba, data) {
      const i = writes++;
      if (i !== at) return inner.write(lba, data);
      const k = keep === 'all' ? data.length / SECTOR_SIZE : keep;
      if (k > 0) inner.write(lba, data.subarray(0, k * SECTOR_SIZE));
      throw new Crash(`crash at write ${i}`);
    },
  };
}

/** Records each write: its first sector, its sectors, and whether it is all zero. */
function recording(inner: BlockBackend) {
  const log: { lba: number; sectors: number; zero: boolean }[] = [];
  const dev: BlockBackend = {
    sectors: inner.sectors,
    read: (lba, out) => inner.read(lba, out),
    write(lba, data) {
      log.push({ lba, sectors: data.length / SECTOR_SIZE, zero: data.every((b) => b === 0) });
      inner.write(lba, data);
    },
  };
  return { dev, log };
}

type Op = { readonly put: number; readonly len: number } | { readonly del: number };

// A 16-sector region: halves of 8, logs of 7 sectors. Record sizes: 100 B -> 1 sector, 600 -> 2,
// 1000 -> 3, 1500 -> 4 (header 32 B).
const SCRIPT: readonly Op[] = [
  { put: 1, len: 100 },
  { put: 2, len: 600 },
  { put: 3, len: 0 },
  { put: 1, len: 1000 }, // fills the log exactly
  { del: 2 }, // compaction into half 1 (generation 2)
  { del: 9 }, // no such record: writes nothing
  { put: 4, len: 1400 },
  { put: 5, len: 3000 }, // SPOOL_FULL
  { del: 1 }, // compaction into half 0 (3)
  { put: 2, len: 1200 },
  { del: 4 }, // compaction (4)
  { put: 6, len: 10 },
  { put: 3, len: 700 },
  { put: 6, len: 1800 }, // SPOOL_FULL (a replacement)
  { put: 6, len: 400 }, // compaction (5)
  { del: 3 },
  { put: 7, len: 200 }, // compaction (6)
  { put: 2, len: 2500 }, // compaction (7)
];

const dataOf = (op: { put: number; len: number }, i: number) => bytes(op.len, i * 16 + op.put);

function applyOp(s: Spool, op: Op, i: number): 'ok' | 'full' {
  if ('del' in op) {
    s.delete(op.del);
    return 'ok';
  }
  try {
    s.put(op.put, dataOf(op, i));
    return 'ok';
  } catch (e) {
    if (e instanceof VmmError && e.code === 'SPOOL_FULL') return 'full';
    throw e;
  }
}

/** The clean run: the state before op i is states[i]; writes[] says which op (-1: open) made each write. */
function cleanRun() {
  const inner = memoryBlockBackend(16);
  const { dev, log } = recording(inner);
  const s = openBlockSpool(dev);
  const owner: number[] = log.map(() => -1);
  const states: State[] = [contents(s)];
  const outcomes: string[] = [];
  const generations: number[] = [];
  SCRIPT.forEach((op, i) => {
    outcomes.push(applyOp(s, op, i));
    while (owner.length < log.length) owner.push(i);
    states.push(contents(s));
    generations.push(s.generation);
  });
  // An operation commits at its last write that is not the retirement (zeroing) of an old header.
  const commit = new Map<number, number>();
  log.forEach((w, k) => {
    const retire = w.zero && w.sectors === 1 && (w.lba === 0 || w.lba === 8);
    if (!retire) commit.set(owner[k]!, k);
  });
  return { log, owner, states, outcomes, generations, commit };
}

describe('openBlockSpool: torn writes', () => {
  const clean = cleanRun();

  it('the script behaves as its comments say', () => {
    // An independent model of the script.
    const model: State = new Map();
    SCRIPT.forEach((op, i) => {
      if ('del' in op) model.delete(op.del);
      else if (clean.outcomes[i] === 'ok') model.set(op.put, dataOf(op, i));
      expect(clean.states[i + 1], `op ${i}`).toEqual(model);
    });
    expect(clean.outcomes.map((o, i) => (o === 'full' ? i : -1)).filter((i) => i >= 0)).toEqual([7, 13]);
    expect(clean.generations).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4, 4, 4, 5, 5, 6, 7]);
    expect(clean.owner.filter((o) => o === 5 || o === 7 || o === 13)).toEqual([]);
    expect(clean.log.length).toBe(41);
  });

  it('a crash at any write, after any prefix of its sectors, reopens as exactly before or exactly after', () => {
    let cases = 0;
    const seen = { before: 0, after: 0 };
    clean.log.forEach((w, at) => {
      const keeps: (number | 'all')[] = [...Array(w.sectors).keys(), 'all'];
      for (const keep of keeps) {
        const inner = memoryBlockBackend(16);
        let i = -1;
        let crashed = false;
        try {
          const s = openBlockSpool(crashing(inner, at, keep));
          for (i = 0; i < SCRIPT.length; i++) applyOp(s, SCRIPT[i]!, i);
        } catch (e) {
          if (!(e instanceof Crash)) throw e;
          crashed = true;
        }
        const label = `write ${at} keep ${keep}, op ${i}`;
        expect(crashed, label).toBe(true);
        expect(i, label).toBe(clean.owner[at]);
        const before = i < 0 ? new Map() : clean.states[i]!;
        const after = i < 0 ? new Map() : clean.states[i + 1]!;
        const commit = clean.commit.get(i)!;
        const expectAfter = at > commit || (at === commit && keep === 'all');
        const r = openBlockSpool(inner);
        expect(fmt(contents(r)), label).toEqual(fmt(expectAfter ? after : before));
        seen[expectAfter ? 'after' : 'before']++;
        // The recovered spool goes on: the rest of the script ends in the clean run's final state.
        for (let j = expectAfter ? i + 1 : Math.max(i, 0); j < SCRIPT.length; j++) applyOp(r, SCRIPT[j]!, j);
        expect(fmt(contents(r)), `${label}, then the rest`).toEqual(fmt(clean.states[SCRIPT.length]!));
        expect(fmt(contents(openBlockSpool(inner))), `${label}, then the rest, reopened`).toEqual(
          fmt(clean.states[SCRIPT.length]!),
        );
        cases++;
      }
    });
    expect(cases).toBe(clean.log.reduce((n, w) => n + w.sectors + 1, 0));
    expect(seen.before).toBeGreaterThan(seen.after);
    expect(seen.after).toBeGreaterThan(0);
  });

  it('a torn append is repaired on open; a crash during that repair is repaired on the next', () => {
    const setup = (keep: number) => {
      const inner = memoryBlockBackend(16);
      const s = openBlockSpool(crashing(inner, 2, keep)); // writes: format, put 1, put 2
      s.put(1, bytes(100, 1));
      expect(() => s.put(2, bytes(1600, 2))).toThrow(Crash); // 4 sectors at 2..5
      return inner;
    };
    for (const keep of [1, 2, 3]) {
      const inner = setup(keep);
      const r = openBlockSpool(inner);
      expect(contents(r), `keep ${keep}`).toEqual(new Map([[1, bytes(100, 1)]]));
      expect(r.stats.repairedSectors, `keep ${keep}`).toBe(keep);
      for (const rk of [0, 'all'] as const) {
        const again = setup(keep);
        expect(() => openBlockSpool(crashing(again, 0, rk)), `keep ${keep} repair ${rk}`).toThrow(Crash);
        const fixed = openBlockSpool(again);
        expect(contents(fixed), `keep ${keep} repair ${rk}`).toEqual(new Map([[1, bytes(100, 1)]]));
        expect(fixed.stats.repairedSectors, `keep ${keep} repair ${rk}`).toBe(rk === 'all' ? 0 : keep);
        fixed.put(3, bytes(600, 3));
        expect(contents(openBlockSpool(again)), `keep ${keep} repair ${rk}`).toEqual(
          new Map([
            [1, bytes(100, 1)],
            [3, bytes(600, 3)],
          ]),
        );
      }
    }
  });

  it('a record forged inside a torn payload never becomes part of the log', () => {
    // The payload of a torn 3-sector put carries, at its second sector, a well-formed record
    // (generation 1, sequence 2, valid CRC): what a later one-sector append at sector 2 would be
    // followed by, were the torn tail left in place.
    const forged = new Uint8Array(SECTOR_SIZE);
    forged.set([0x43, 0x4c, 0x53, 0x52, 1, 0, 0, 0, ...u32(1), ...u32(2), ...u32(666), ...u32(0), ...u32(4)]);
    forged.set([6, 6, 6, 6], 32);
    forged.set(u32(crc32(new Uint8Array([...forged.subarray(0, 28), 6, 6, 6, 6]))), 28);
    const payload = bytes(1000, 5); // its third sector is not written, and differs from zeros
    payload.set(forged, SECTOR_SIZE - 32);
    const inner = memoryBlockBackend(20);
    const s = openBlockSpool(crashing(inner, 2, 2));
    s.put(1, bytes(100, 1));
    expect(() => s.put(2, payload)).toThrow(Crash);
    expect(sectorOf(inner, 3)).toEqual(forged);
    const r = openBlockSpool(inner);
    expect(r.stats.repairedSectors).toBe(2);
    r.put(3, bytes(10, 3));
    expect(contents(openBlockSpool(inner))).toEqual(
      new Map([
        [1, bytes(100, 1)],
        [3, bytes(10, 3)],
      ]),
    );
  });

  it('after a failed write the instance refuses changes (BAD_STATE) and still reads', () => {
    const inner = memoryBlockBackend(16);
    const s = openBlockSpool(crashing(inner, 2, 0));
    s.put(1, bytes(10, 1));
    expect(() => s.put(2, bytes(10, 2))).toThrow(Crash);
    expect(codeOf(() => s.put(3, bytes(10, 3)))).toBe('BAD_STATE');
    expect(codeOf(() => s.delete(1))).toBe('BAD_STATE');
    expect(contents(s)).toEqual(new Map([[1, bytes(10, 1)]]));
    expect(contents(openBlockSpool(inner))).toEqual(new Map([[1, bytes(10, 1)]]));
  });
});
