import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crc32.js';
import { BLOCK_BACKEND_CASES, NVRAM_BACKEND_CASES } from '../../src/devices/backend-suite.js';
import { type BlockBackend, memoryBlockBackend, SECTOR_SIZE } from '../../src/devices/disk.js';
import { NVRAM_PORT, Nvram } from '../../src/devices/nvram.js';
import { formatDisk, partitionOf } from '../../src/disk/layout.js';
import {
  formatRealFs,
  openRealFs,
  REAL_FILES,
  REALFS_DATA_START,
  REALFS_MAX_FILES,
  realFsNvramBackend,
  taskImage,
  veFiles,
} from '../../src/disk/realfs.js';
import { openBlockSpool } from '../../src/dtm/spool.js';
import { pattern, readSectors, setByte, vmmErrorOf } from './helpers.js';

const COPY = 8 * SECTOR_SIZE;

/** The real partition 104 of a Fig. 5 disk, as the real environment sees it. */
function realPartition(sectors = 200): { disk: ReturnType<typeof memoryBlockBackend>; real: BlockBackend } {
  const disk = memoryBlockBackend(sectors + 1);
  const layout = formatDisk(disk, [{ name: 'real', kind: 'real', start: 1, count: sectors }]);
  return { disk, real: partitionOf(disk, layout, 'real') };
}

describe('real file system (104)', () => {
  it('standard names of Fig. 5', () => {
    expect(REAL_FILES).toEqual({ core: 'core.img', vmm: 'vmm.img', spool: 'spool' });
    expect(taskImage('firewall')).toBe('tasks/firewall.img');
    expect(veFiles('desk')).toEqual({
      profile: 've/desk/profile.json',
      rom: 've/desk/rom.bin',
      nvram: 've/desk/nvram.bin',
      diskKey: 've/desk/diskkey',
    });
  });

  it('create, write, read, list, remove; everything persists across reopen', () => {
    const { real } = realPartition();
    const fs = formatRealFs(real);
    expect(fs.list()).toEqual([]);
    expect(fs.create(REAL_FILES.core, 4)).toEqual({ name: 'core.img', start: 16, count: 4, length: 0 });
    expect(fs.create(veFiles('desk').profile, 1)).toEqual({
      name: 've/desk/profile.json',
      start: 20,
      count: 1,
      length: 0,
    });
    expect(fs.create(REAL_FILES.spool, 8)).toEqual({ name: 'spool', start: 21, count: 8, length: 0 });
    expect(fs.read('core.img')).toEqual(new Uint8Array(0));
    const core = pattern(3 * SECTOR_SIZE + 17, 1);
    fs.write('core.img', core);
    fs.write('ve/desk/profile.json', new TextEncoder().encode('{"name":"desk"}'));
    expect(fs.read('core.img')).toEqual(core);
    expect(readSectors(real, 16, 4).subarray(0, core.length)).toEqual(core);
    expect(
      readSectors(real, 16, 4)
        .subarray(core.length)
        .every((b) => b === 0),
    ).toBe(true);
    const expected = [
      { name: 'core.img', start: 16, count: 4, length: core.length },
      { name: 'spool', start: 21, count: 8, length: 0 },
      { name: 've/desk/profile.json', start: 20, count: 1, length: 15 },
    ];
    expect(fs.list()).toEqual(expected);

    const again = openRealFs(real);
    expect(again.list()).toEqual(expected);
    expect(again.read('core.img')).toEqual(core);
    expect(new TextDecoder().decode(again.read('ve/desk/profile.json'))).toBe('{"name":"desk"}');

    again.remove('ve/desk/profile.json');
    expect(again.stat('ve/desk/profile.json')).toBe(undefined);
    expect(
      openRealFs(real)
        .list()
        .map((f) => f.name),
    ).toEqual(['core.img', 'spool']);
  });

  it('a write fills the extent exactly; one byte more is LIMIT_EXCEEDED and changes nothing', () => {
    const { real } = realPartition();
    const fs = formatRealFs(real);
    fs.create('vmm.img', 2);
    const full = pattern(2 * SECTOR_SIZE, 2);
    fs.write('vmm.img', full);
    expect(fs.read('vmm.img')).toEqual(full);
    expect(vmmErrorOf(() => fs.write('vmm.img', new Uint8Array(2 * SECTOR_SIZE + 1)))).toEqual({
      code: 'LIMIT_EXCEEDED',
      meta: { name: 'vmm.img' },
    });
    expect(openRealFs(real).read('vmm.img')).toEqual(full);
  });

  it('a shorter write zeroes the sectors only the old length covered; an empty write empties the file', () => {
    const { real } = realPartition();
    const fs = formatRealFs(real);
    const f = fs.create('rom.bin', 4);
    fs.write('rom.bin', pattern(4 * SECTOR_SIZE, 3));
    fs.write('rom.bin', pattern(SECTOR_SIZE + 1, 4));
    expect(fs.stat('rom.bin')?.length).toBe(SECTOR_SIZE + 1);
    expect(readSectors(real, f.start + 2, 2)).toEqual(new Uint8Array(2 * SECTOR_SIZE));
    fs.write('rom.bin', new Uint8Array(0));
    expect(fs.read('rom.bin')).toEqual(new Uint8Array(0));
    expect(readSectors(real, f.start, 4)).toEqual(new Uint8Array(4 * SECTOR_SIZE));
  });

  it('first fit reuses a removed extent, and a new file reads as zeros there', () => {
    const { real } = realPartition();
    const fs = formatRealFs(real);
    fs.create('a', 2);
    fs.create('b', 2);
    fs.write('a', pattern(2 * SECTOR_SIZE, 5));
    fs.remove('a');
    expect(fs.create('c', 3)).toEqual({ name: 'c', start: 20, count: 3, length: 0 });
    expect(fs.create('d', 2)).toEqual({ name: 'd', start: 16, count: 2, length: 0 });
    expect(readSectors(fs.region('d'), 0, 2)).toEqual(new Uint8Array(2 * SECTOR_SIZE));
  });

  it('create refuses bad names and sizes (CONFIG_INVALID) and a full disk or directory (LIMIT_EXCEEDED)', () => {
    const { real } = realPartition(40);
    const fs = formatRealFs(real);
    fs.create('x', 1);
    const refusals: [string, number, string][] = [
      ['', 1, 'CONFIG_INVALID'],
      ['/abs', 1, 'CONFIG_INVALID'],
      ['trailing/', 1, 'CONFIG_INVALID'],
      ['a//b', 1, 'CONFIG_INVALID'],
      ['ve/../core.img', 1, 'CONFIG_INVALID'],
      ['./x', 1, 'CONFIG_INVALID'],
      ['sp ace', 1, 'CONFIG_INVALID'],
      ['é', 1, 'CONFIG_INVALID'],
      ['n'.repeat(53), 1, 'CONFIG_INVALID'],
      ['x', 1, 'CONFIG_INVALID'],
      ['y', 0, 'CONFIG_INVALID'],
      ['y', 1.5, 'CONFIG_INVALID'],
      ['y', 24, 'LIMIT_EXCEEDED'],
    ];
    for (const [name, sectors, code] of refusals) {
      expect(vmmErrorOf(() => fs.create(name, sectors)).code, `${name} ${sectors}`).toBe(code);
    }
    expect(fs.create('n'.repeat(52), 1)).toEqual({ name: 'n'.repeat(52), start: 17, count: 1, length: 0 });
    expect(fs.create('y', 22)).toEqual({ name: 'y', start: 18, count: 22, length: 0 });
    expect(vmmErrorOf(() => fs.create('z', 1))).toEqual({
      code: 'LIMIT_EXCEEDED',
      meta: { name: 'z', sectors: 1 },
    });
  });

  it('the directory holds 63 files; the 64th is LIMIT_EXCEEDED', () => {
    const { real } = realPartition(100);
    const fs = formatRealFs(real);
    for (let i = 0; i < REALFS_MAX_FILES; i++) fs.create(`tasks/t${i}.img`, 1);
    expect(vmmErrorOf(() => fs.create('one-more', 1)).code).toBe('LIMIT_EXCEEDED');
    expect(openRealFs(real).list()).toHaveLength(63);
  });

  it('read, write, remove and region of a missing file are CONFIG_INVALID', () => {
    const fs = formatRealFs(realPartition().real);
    for (const op of [
      () => fs.read('nope'),
      () => fs.write('nope', new Uint8Array(1)),
      () => fs.remove('nope'),
      () => fs.region('nope'),
    ]) {
      expect(vmmErrorOf(op)).toEqual({ code: 'CONFIG_INVALID', meta: { name: 'nope' } });
    }
  });

  it("region('spool') is the DTM spool area 104e: a block spool lives there and survives reopen", () => {
    const { real } = realPartition();
    const fs = formatRealFs(real);
    fs.create('spool', 16);
    const spool = openBlockSpool(fs.region('spool'));
    spool.put(7, pattern(700, 7));
    const reopened = openBlockSpool(openRealFs(real).region('spool'), { format: 'never' });
    expect(reopened.ids()).toEqual([7]);
    expect(reopened.get(7)).toEqual(pattern(700, 7));
    expect(openRealFs(real).stat('spool')?.length).toBe(0); // a region does not change the length
  });

  it('a region is its extent only, and is BAD_STATE once its file is removed', () => {
    const { real } = realPartition();
    const fs = formatRealFs(real);
    fs.create('a', 2);
    const r = fs.region('a');
    expect(r.sectors).toBe(2);
    r.write(1, pattern(SECTOR_SIZE, 9));
    expect(readSectors(real, 17)).toEqual(pattern(SECTOR_SIZE, 9));
    expect(() => r.write(2, new Uint8Array(SECTOR_SIZE))).toThrow(RangeError);
    fs.remove('a');
    expect(vmmErrorOf(() => r.read(0, new Uint8Array(SECTOR_SIZE)))).toEqual({
      code: 'BAD_STATE',
      meta: { name: 'a' },
    });
  });

  it('an update writes the other copy with generation + 1, then zeroes the old copy', () => {
    const { real } = realPartition();
    const fs = formatRealFs(real);
    const gen = (c: number) => new DataView(readSectors(real, c * 8).buffer).getUint32(8, true);
    const magic = (c: number) => new TextDecoder().decode(readSectors(real, c * 8).subarray(0, 4));
    expect([magic(0), gen(0), magic(1)]).toEqual(['CLFS', 1, '\0\0\0\0']);
    fs.create('a', 1);
    expect([magic(0), magic(1), gen(1)]).toEqual(['\0\0\0\0', 'CLFS', 2]);
    fs.write('a', new Uint8Array(3));
    expect([magic(0), gen(0), magic(1)]).toEqual(['CLFS', 3, '\0\0\0\0']);
    fs.write('a', new Uint8Array(3).fill(1)); // same length: no directory update
    expect([magic(0), gen(0)]).toEqual(['CLFS', 3]);
  });

  it('a commit torn after its first sector leaves the previous directory', () => {
    const { real } = realPartition();
    const fs = formatRealFs(real);
    // Nine files: entry 7 onwards lies in the copy's second sector.
    for (let i = 0; i < 9; i++) fs.create(`f${i}`, 1);
    const before = readSectors(real, 0, REALFS_DATA_START);
    fs.create('f9', 1);
    const after = readSectors(real, 0, REALFS_DATA_START);
    const newer = new DataView(after.buffer).getUint32(8, true) === 11 ? 0 : 1;
    real.write(0, before);
    real.write(newer * 8, after.subarray(newer * COPY, newer * COPY + SECTOR_SIZE)); // only its first sector landed
    expect(openRealFs(real).list()).toHaveLength(9);
    expect(openRealFs(real).stat('f9')).toBe(undefined);
    real.write(0, after);
    expect(openRealFs(real).list()).toHaveLength(10);
  });

  /** The directory copy `c` of `real`, edited, its CRC recomputed. */
  const edit = (real: BlockBackend, c: number, change: (b: Uint8Array, v: DataView) => void) => {
    const b = readSectors(real, c * 8, 8);
    const v = new DataView(b.buffer);
    change(b, v);
    const crc = crc32(new Uint8Array([...b.subarray(0, 28), ...b.subarray(32, COPY)]));
    v.setUint32(28, crc, true);
    real.write(c * 8, b);
  };
  const damaged: [string, (real: BlockBackend) => void, string][] = [
    ['blank', (real) => real.write(0, new Uint8Array(SECTOR_SIZE)), 'blank'],
    ['garbage over the header', (real) => real.write(0, new Uint8Array(SECTOR_SIZE).fill(0x43)), 'magic'],
    [
      'a flipped bit',
      (real) => {
        const b = readSectors(real, 0);
        b[40]! ^= 1;
        real.write(0, b);
      },
      'crc',
    ],
    ['version 2', (real) => edit(real, 0, (_, v) => v.setUint16(4, 2, true)), 'version'],
    ['the wrong copy number', (real) => edit(real, 0, setByte(6, 1)), 'copy'],
    ['generation 0', (real) => edit(real, 0, (_, v) => v.setUint32(8, 0, true)), 'generation'],
    ['another partition size', (real) => edit(real, 0, (_, v) => v.setUint32(12, 300, true)), 'size'],
    ['64 files', (real) => edit(real, 0, (_, v) => v.setUint16(16, 64, true)), 'count'],
    ['a reserved byte', (real) => edit(real, 0, setByte(20, 1)), 'reserved'],
    ['bytes after the entries', (real) => edit(real, 0, setByte(COPY - 1, 1)), 'reserved'],
    ['a byte after the name NUL', (real) => edit(real, 0, setByte(32 + 40, 1)), 'name'],
    [
      'an extent over the directory',
      (real) => edit(real, 0, (_, v) => v.setUint32(32 + 52, 15, true)),
      'range',
    ],
    ['an extent past the end', (real) => edit(real, 0, (_, v) => v.setUint32(32 + 56, 200, true)), 'range'],
    [
      'a length past the extent',
      (real) => edit(real, 0, (_, v) => v.setUint32(32 + 60, 1025, true)),
      'length',
    ],
    ['overlapping extents', (real) => edit(real, 0, (_, v) => v.setUint32(96 + 52, 17, true)), 'overlap'],
    ['a duplicate name', (real) => edit(real, 0, setByte(96, 0x61)), 'duplicate'],
    [
      'two copies of the same generation',
      (real) => {
        edit(real, 0, () => {});
        const copy0 = readSectors(real, 0, 8);
        copy0[6] = 1;
        real.write(8, copy0);
        edit(real, 1, () => {});
      },
      'generation',
    ],
  ];
  for (const [what, damage, reason] of damaged) {
    it(`openRealFs refuses ${what}: DISK_CORRUPT, corrupt realfs-directory (${reason})`, () => {
      const { real } = realPartition();
      const fs = formatRealFs(real);
      fs.create('a', 2);
      fs.create('b', 1);
      fs.write('a', new Uint8Array(10));
      fs.write('b', new Uint8Array(5)); // gen 5: the directory is in copy 0, copy 1's header zeroed
      expect(openRealFs(real).list()).toHaveLength(2);
      damage(real);
      expect(vmmErrorOf(() => openRealFs(real)).code).toBe('DISK_CORRUPT');
      expect(vmmErrorOf(() => openRealFs(real)).meta).toEqual({ corrupt: 'realfs-directory', reason });
    });
  }

  it('a partition of 16 sectors or fewer is CONFIG_INVALID', () => {
    expect(vmmErrorOf(() => formatRealFs(memoryBlockBackend(16))).code).toBe('CONFIG_INVALID');
    expect(vmmErrorOf(() => openRealFs(memoryBlockBackend(16))).code).toBe('CONFIG_INVALID');
  });
});

describe('NVRAM image in the VMM data area (104d, 160)', () => {
  it('an Nvram device stores through the adapter; a new device on the reopened file system loads it', () => {
    const { real } = realPartition();
    const fs = formatRealFs(real);
    const name = veFiles('desk').nvram;
    const nv = new Nvram({ backend: realFsNvramBackend(fs, name), size: 256 });
    expect(fs.stat(name)).toBe(undefined);
    nv.write(nv.base + NVRAM_PORT.INDEX, 10);
    for (const b of [0xde, 0xad, 0xbe, 0xef]) nv.write(nv.base + NVRAM_PORT.DATA_NEXT, b);
    expect(fs.stat(name)).toEqual({ name, start: 16, count: 1, length: 256 });
    const again = new Nvram({ backend: realFsNvramBackend(openRealFs(real), name), size: 256 });
    expect([...again.contents().subarray(8, 16)]).toEqual([0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0]);
  });
});

describe('BlockBackend compliance: RealFs region', () => {
  for (const c of BLOCK_BACKEND_CASES) {
    it(c.name, () =>
      c.run((n) => {
        const fs = formatRealFs(memoryBlockBackend(n + 40));
        fs.create('before', 3);
        fs.create('r', n);
        return fs.region('r');
      }),
    );
  }
});

describe('NvramBackend compliance: RealFs file', () => {
  for (const c of NVRAM_BACKEND_CASES) {
    it(c.name, () => c.run(() => realFsNvramBackend(formatRealFs(memoryBlockBackend(64)), 've/x/nvram.bin')));
  }
});
