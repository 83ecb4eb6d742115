import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crc32.js';
import { BLOCK_BACKEND_CASES } from '../../src/devices/backend-suite.js';
import { memoryBlockBackend, SECTOR_SIZE } from '../../src/devices/disk.js';
import {
  decodeLayout,
  encodeLayout,
  formatDisk,
  type Partition,
  partitionOf,
  readLayout,
} from '../../src/disk/layout.js';
import { pattern, readSectors, setByte, vmmErrorOf } from './helpers.js';

/** Fig. 5 on a 256-sector disk: 102 (sector 0), 104, 106, 108a..108d. */
const FIG5: readonly Partition[] = [
  { name: 'real', kind: 'real', start: 1, count: 95 },
  { name: 'firewall', kind: 'firewall', start: 96, count: 32 },
  { name: 've.a', kind: 've', start: 128, count: 32 },
  { name: 've.b', kind: 've', start: 160, count: 32 },
  { name: 've.c', kind: 've', start: 192, count: 32 },
  { name: 've.d', kind: 've', start: 224, count: 32 },
];

describe('partition table (BOOT-16)', () => {
  it('encodes as the file comment lays it out', () => {
    const s = encodeLayout(FIG5.slice(0, 2), 256);
    const v = new DataView(s.buffer);
    expect([...s.subarray(0, 8)]).toEqual([0x43, 0x4c, 0x50, 0x54, 1, 0, 2, 0]);
    expect(new TextDecoder().decode(s.subarray(32, 36))).toBe('real');
    expect([...s.subarray(36, 52)]).toEqual(new Array(16).fill(0));
    expect([s[52], s[53], s[54], s[55]]).toEqual([1, 0, 0, 0]);
    expect([v.getUint32(56, true), v.getUint32(60, true)]).toEqual([1, 95]);
    expect(new TextDecoder().decode(s.subarray(64, 72))).toBe('firewall');
    expect([s[84], v.getUint32(88, true), v.getUint32(92, true)]).toEqual([2, 96, 32]);
    expect(s.subarray(96, 508).every((b) => b === 0)).toBe(true);
    expect(v.getUint32(508, true)).toBe(crc32(s.subarray(0, 508)));
  });

  it('formatDisk then readLayout gives the same partitions, in the order given', () => {
    const dev = memoryBlockBackend(256);
    const shuffled = [FIG5[3]!, FIG5[0]!, FIG5[5]!, FIG5[1]!, FIG5[2]!, FIG5[4]!];
    expect(formatDisk(dev, shuffled)).toEqual({ version: 1, partitions: shuffled });
    expect(readLayout(dev)).toEqual({ version: 1, partitions: shuffled });
    expect(dev.bytes.subarray(SECTOR_SIZE).every((b) => b === 0)).toBe(true); // partitions untouched
  });

  it('accepts 14 partitions and a partition ending on the last sector', () => {
    const many: Partition[] = Array.from({ length: 14 }, (_, i) => ({
      name: `p${i}`,
      kind: i === 0 ? 'real' : 've',
      start: 1 + i * 10,
      count: 10,
    }));
    const dev = memoryBlockBackend(141);
    formatDisk(dev, many);
    expect(readLayout(dev).partitions).toEqual(many);
  });

  const base = FIG5.slice(0, 3);
  const with_ = (i: number, patch: Partial<Partition>) =>
    base.map((p, k) => (k === i ? { ...p, ...patch } : p));
  const rejections: [string, readonly Partition[], string][] = [
    ['no partitions', [], 'count'],
    [
      '15 partitions',
      Array.from({ length: 15 }, (_, i) => ({ name: `p${i}`, kind: 've' as const, start: 1 + i, count: 1 })),
      'count',
    ],
    ['an empty name', with_(2, { name: '' }), 'name'],
    ['a name of 21 characters', with_(2, { name: 'a'.repeat(21) }), 'name'],
    ['an upper-case name', with_(2, { name: 'VE' }), 'name'],
    ['a name starting with -', with_(2, { name: '-ve' }), 'name'],
    ['a non-ASCII name', with_(2, { name: 'vé' }), 'name'],
    ['a duplicate name', with_(2, { name: 'real' }), 'duplicate'],
    ['an unknown kind', with_(2, { kind: 'swap' as never }), 'kind'],
    ['two real partitions', with_(2, { kind: 'real' }), 'kind'],
    ['two firewall partitions', with_(2, { kind: 'firewall' }), 'kind'],
    ['start 0 (the table)', with_(0, { start: 0 }), 'range'],
    ['count 0', with_(2, { count: 0 }), 'range'],
    ['a fractional start', with_(2, { start: 128.5 }), 'range'],
    ['a partition past the end', with_(2, { count: 129 }), 'range'],
    ['overlapping partitions', with_(1, { count: 33 }), 'overlap'],
    ['a partition inside another', with_(2, { start: 10, count: 2 }), 'overlap'],
  ];
  for (const [what, partitions, reason] of rejections) {
    it(`formatDisk refuses ${what} with CONFIG_INVALID (${reason}) and writes nothing`, () => {
      const dev = memoryBlockBackend(256);
      expect(vmmErrorOf(() => formatDisk(dev, partitions))).toEqual({
        code: 'CONFIG_INVALID',
        meta: { reason },
      });
      expect(dev.bytes.every((b) => b === 0)).toBe(true);
    });
  }

  /** A valid table of `base` with `edit` applied and the CRC recomputed. */
  const crafted = (edit: (s: Uint8Array, v: DataView) => void, sectors = 256): Uint8Array => {
    const s = encodeLayout(base, sectors);
    const v = new DataView(s.buffer);
    edit(s, v);
    v.setUint32(508, crc32(s.subarray(0, 508)), true);
    return s;
  };
  const damaged: [string, Uint8Array, string][] = [
    ['a blank sector 0', new Uint8Array(512), 'blank'],
    ['another magic', crafted(setByte(3, 0x58)), 'magic'],
    [
      'a CRC mismatch',
      (() => {
        const s = encodeLayout(base, 256);
        s[60]! ^= 1;
        return s;
      })(),
      'crc',
    ],
    ['version 2', crafted((_, v) => v.setUint16(4, 2, true)), 'version'],
    ['0 entries', crafted((_, v) => v.setUint16(6, 0, true)), 'count'],
    ['15 entries', crafted((_, v) => v.setUint16(6, 15, true)), 'count'],
    ['a reserved header byte set', crafted(setByte(20, 1)), 'reserved'],
    ['bytes after the last entry', crafted(setByte(32 + 3 * 32, 1)), 'reserved'],
    ['a byte after the name NUL', crafted(setByte(32 + 10, 0x61)), 'name'],
    ['a name with a bad character', crafted(setByte(32, 0x41)), 'name'],
    ['kind 0', crafted(setByte(32 + 20, 0)), 'kind'],
    ['kind 4', crafted(setByte(32 + 20, 4)), 'kind'],
    ['an entry reserved byte set', crafted(setByte(32 + 22, 1)), 'reserved'],
    ['a duplicate name', crafted((s) => s.copyWithin(64, 32, 52)), 'duplicate'],
    ['two real partitions', crafted(setByte(64 + 20, 1)), 'kind'],
    ['overlapping partitions', crafted((_, v) => v.setUint32(64 + 24, 90, true)), 'overlap'],
    ['a partition starting at sector 0', crafted((_, v) => v.setUint32(32 + 24, 0, true)), 'range'],
    [
      'a partition past the end of the disk',
      crafted((_, v) => v.setUint32(96 + 28, 200, true), 400),
      'range',
    ],
  ];
  for (const [what, sector, reason] of damaged) {
    it(`readLayout refuses ${what}: DISK_CORRUPT, corrupt partition-table (${reason})`, () => {
      const dev = memoryBlockBackend(256);
      dev.write(0, sector);
      expect(vmmErrorOf(() => readLayout(dev))).toEqual({
        code: 'DISK_CORRUPT',
        meta: { corrupt: 'partition-table', reason },
      });
      expect(vmmErrorOf(() => decodeLayout(sector, 256)).meta.reason).toBe(reason);
    });
  }
});

describe('partitionOf (TB-9 block translation)', () => {
  it('sector b of a partition is sector start + b of the disk, and nothing outside it is reachable', () => {
    const dev = memoryBlockBackend(256);
    const layout = formatDisk(dev, FIG5);
    const fw = partitionOf(dev, layout, 'firewall');
    expect(fw.sectors).toBe(32);
    const data = pattern(2 * SECTOR_SIZE, 3);
    fw.write(30, data);
    expect(readSectors(dev, 126, 2)).toEqual(data);
    expect(readSectors(fw, 30, 2)).toEqual(data);
    const one = new Uint8Array(SECTOR_SIZE);
    for (const [lba, out] of [
      [32, one],
      [31, new Uint8Array(2 * SECTOR_SIZE)],
      [-1, one],
      [0.5, one],
      [0, new Uint8Array(100)],
    ] as const) {
      expect(() => fw.read(lba, out), `read ${lba}+${out.length}`).toThrow(RangeError);
      expect(() => fw.write(lba, out), `write ${lba}+${out.length}`).toThrow(RangeError);
    }
    expect(readSectors(dev, 95)).toEqual(new Uint8Array(SECTOR_SIZE)); // the real partition's last sector
    expect(readSectors(dev, 128)).toEqual(new Uint8Array(SECTOR_SIZE)); // 108a's first
  });

  it('CONFIG_INVALID for an unknown name, or a layout that does not fit the device', () => {
    const dev = memoryBlockBackend(256);
    const layout = formatDisk(dev, FIG5);
    expect(vmmErrorOf(() => partitionOf(dev, layout, 've.e'))).toEqual({
      code: 'CONFIG_INVALID',
      meta: { name: 've.e' },
    });
    expect(vmmErrorOf(() => partitionOf(memoryBlockBackend(200), layout, 've.d')).code).toBe(
      'CONFIG_INVALID',
    );
  });
});

describe('BlockBackend compliance: partitionOf', () => {
  for (const c of BLOCK_BACKEND_CASES) {
    it(c.name, () =>
      c.run((n) => {
        const dev = memoryBlockBackend(n + 10);
        const layout = formatDisk(dev, [
          { name: 'real', kind: 'real', start: 1, count: 4 },
          { name: 'x', kind: 've', start: 5, count: n },
        ]);
        return partitionOf(dev, layout, 'x');
      }),
    );
  }
});
