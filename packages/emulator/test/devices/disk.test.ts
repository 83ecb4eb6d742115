import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BLOCK_BACKEND_CASES } from '../../src/devices/backend-suite.js';
import {
  type BlockBackend,
  DISK_COMMAND as CMD,
  DISK_CONTROL,
  DISK_STATUS,
  Disk,
  type DiskEvents,
  type DiskOptions,
  DISK_ERROR as E,
  fileBlockBackend,
  memoryBlockBackend,
  DISK_PORT as P,
  SECTOR_SIZE,
} from '../../src/devices/disk.js';
import { DeviceError } from '../../src/devices/errors.js';
import { busWith, fakeMemory, irqRecorder, pattern, useTempDir } from './helpers.js';

const tempDir = useTempDir();

function setup(options: Partial<DiskOptions> = {}, backend: BlockBackend = memoryBlockBackend(16)) {
  const { mem, dma } = fakeMemory();
  const { lines, irq } = irqRecorder();
  const disk = new Disk({ backend, dma, irq, ...options });
  const bus = busWith(disk);
  const reg = (off: number) => bus.read(disk.base + off);
  const set = (off: number, v: number) => bus.write(disk.base + off, v);
  const refused: DiskEvents['writeProtected'][] = [];
  disk.on('writeProtected', (e) => refused.push(e));
  /** The guest's request: registers, then COMMAND. */
  const issue = (command: number, lba: number, count: number, addr: number) => {
    set(P.LBA, lba);
    set(P.COUNT, count);
    set(P.ADDR, addr);
    set(P.COMMAND, command);
  };
  /** Runs until the command completes; returns the final STATUS. */
  const finish = () => {
    disk.tick(disk.nextEvent());
    return reg(P.STATUS);
  };
  return { disk, mem, lines, reg, set, issue, finish, refused };
}

const sector = (bytes: Uint8Array, lba: number, n = 1) =>
  bytes.slice(lba * SECTOR_SIZE, (lba + n) * SECTOR_SIZE);

describe('disk', () => {
  it('claims ports 0x1F0..0x1F6, reports capacity, idle after reset', () => {
    const { disk, reg } = setup();
    expect(disk.ports).toEqual([0x1f0, 0x1f6]);
    expect(reg(P.SECTORS)).toBe(16);
    expect([P.LBA, P.COUNT, P.ADDR, P.COMMAND, P.STATUS, P.CONTROL].map(reg)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(disk.nextEvent()).toBe(Number.POSITIVE_INFINITY);
  });

  it('READ is asynchronous: BUSY for `latency` instructions, then data by DMA and an interrupt', () => {
    const backend = memoryBlockBackend(16);
    backend.bytes.set(pattern(SECTOR_SIZE, 3), 3 * SECTOR_SIZE);
    const { disk, mem, lines, reg, set, issue } = setup({}, backend);
    set(P.CONTROL, DISK_CONTROL.IRQ_ENABLE);
    issue(CMD.READ, 3, 1, 0x1000);
    expect(reg(P.STATUS)).toBe(DISK_STATUS.BUSY);
    expect(reg(P.COMMAND)).toBe(CMD.READ);
    expect(disk.nextEvent()).toBe(64);
    disk.tick(63);
    expect(reg(P.STATUS)).toBe(DISK_STATUS.BUSY);
    expect(mem.subarray(0x1000, 0x1200)).toEqual(new Uint8Array(SECTOR_SIZE));
    expect(lines).toEqual([]);
    disk.tick(1);
    expect(reg(P.STATUS)).toBe(0);
    expect(mem.slice(0x1000, 0x1200)).toEqual(pattern(SECTOR_SIZE, 3));
    expect(mem[0x0fff]).toBe(0);
    expect(mem[0x1200]).toBe(0);
    expect(lines).toEqual([2]);
  });

  it('WRITE moves several sectors from memory to the backend', () => {
    const backend = memoryBlockBackend(16);
    const { mem, issue, finish } = setup({ latency: 10 }, backend);
    mem.set(pattern(3 * SECTOR_SIZE, 9), 0x2000);
    issue(CMD.WRITE, 5, 3, 0x2000);
    expect(sector(backend.bytes, 5, 3)).toEqual(new Uint8Array(3 * SECTOR_SIZE)); // nothing before completion
    expect(finish()).toBe(0);
    expect(sector(backend.bytes, 5, 3)).toEqual(pattern(3 * SECTOR_SIZE, 9));
    expect(sector(backend.bytes, 4)).toEqual(new Uint8Array(SECTOR_SIZE));
    expect(sector(backend.bytes, 8)).toEqual(new Uint8Array(SECTOR_SIZE));
  });

  it('LBA past the end is SECTOR_NOT_FOUND (status 0x100) and moves nothing (TB-9)', () => {
    const { mem, lines, set, issue, finish } = setup();
    set(P.CONTROL, 1);
    mem.fill(0x5a, 0, 0x2000);
    for (const [lba, count] of [
      [16, 1],
      [15, 2],
      [0xffffffff, 1],
    ] as const) {
      issue(CMD.READ, lba, count, 0);
      expect(finish(), `READ ${lba}+${count}`).toBe(E.SECTOR_NOT_FOUND << 8);
      issue(CMD.WRITE, lba, count, 0);
      expect(finish(), `WRITE ${lba}+${count}`).toBe(0x100);
    }
    expect(mem.subarray(0, 0x2000).every((b) => b === 0x5a)).toBe(true);
    expect(lines).toEqual([2, 2, 2, 2, 2, 2]);
  });

  it('a write to a protected block fails with WRITE_PROTECTED (0x200), leaves it unchanged and is reported', () => {
    const backend = memoryBlockBackend(16);
    backend.bytes.set(pattern(SECTOR_SIZE, 1), 0);
    const { disk, mem, issue, finish, refused } = setup({ protectedBlocks: [0] }, backend);
    disk.protect(8);
    mem.fill(0xee, 0, 4 * SECTOR_SIZE);
    issue(CMD.WRITE, 0, 1, 0);
    expect(finish()).toBe(E.WRITE_PROTECTED << 8);
    expect(sector(backend.bytes, 0)).toEqual(pattern(SECTOR_SIZE, 1));
    issue(CMD.WRITE, 7, 3, 0); // 7 and 9 are writable, 8 is not: nothing is written
    expect(finish()).toBe(0x200);
    expect(sector(backend.bytes, 7, 3)).toEqual(new Uint8Array(3 * SECTOR_SIZE));
    expect(refused).toEqual([
      { lba: 0, count: 1, protectedLba: 0 },
      { lba: 7, count: 3, protectedLba: 8 },
    ]);
    // Reading a protected block is fine; unprotecting makes it writable.
    issue(CMD.READ, 0, 1, 0x8000);
    expect(finish()).toBe(0);
    expect(mem.slice(0x8000, 0x8200)).toEqual(pattern(SECTOR_SIZE, 1));
    expect(disk.isProtected(8)).toBe(true);
    disk.unprotect(8);
    issue(CMD.WRITE, 7, 3, 0);
    expect(finish()).toBe(0);
    expect(sector(backend.bytes, 8)).toEqual(new Uint8Array(SECTOR_SIZE).fill(0xee));
  });

  it('a buffer outside memory is DMA_ERROR (0x300) and moves nothing', () => {
    const backend = memoryBlockBackend(16);
    const { issue, finish } = setup({}, backend);
    issue(CMD.READ, 0, 2, 0x10000 - SECTOR_SIZE);
    expect(finish()).toBe(E.DMA_ERROR << 8);
    issue(CMD.WRITE, 0, 1, 0xffffff00);
    expect(finish()).toBe(0x300);
    expect(sector(backend.bytes, 0)).toEqual(new Uint8Array(SECTOR_SIZE));
  });

  it('an unknown command, COUNT 0 or COUNT above maxSectors is BAD_COMMAND (0x400)', () => {
    const { issue, finish } = setup({ maxSectors: 4 });
    for (const [cmd, count] of [
      [0, 1],
      [3, 1],
      [CMD.READ, 0],
      [CMD.READ, 5],
      [CMD.WRITE, 5],
    ] as const) {
      issue(cmd, 0, count, 0);
      expect(finish(), `command ${cmd} count ${count}`).toBe(E.BAD_COMMAND << 8);
    }
    issue(CMD.READ, 0, 4, 0);
    expect(finish()).toBe(0);
  });

  it('ignores COMMAND while busy and clears the error of a new command', () => {
    const { disk, reg, set, issue, finish } = setup();
    issue(CMD.READ, 99, 1, 0);
    expect(finish()).toBe(0x100);
    issue(CMD.READ, 0, 1, 0);
    expect(reg(P.STATUS)).toBe(DISK_STATUS.BUSY);
    disk.tick(10);
    set(P.COMMAND, CMD.WRITE);
    expect(reg(P.COMMAND)).toBe(CMD.READ);
    expect(disk.nextEvent()).toBe(54);
    expect(finish()).toBe(0);
  });

  it('with latency 0 completes inside the COMMAND write; without CONTROL bit 0 raises nothing', () => {
    const { lines, reg, issue } = setup({ latency: 0, line: 11 });
    issue(CMD.READ, 0, 1, 0);
    expect(reg(P.STATUS)).toBe(0);
    expect(lines).toEqual([]);
  });

  it('reset abandons a command in progress; contents and protection stay', () => {
    const backend = memoryBlockBackend(16);
    const { disk, mem, lines, reg, set, issue } = setup({}, backend);
    disk.protect(1);
    set(P.CONTROL, 1);
    mem.fill(1, 0, SECTOR_SIZE);
    issue(CMD.WRITE, 0, 1, 0);
    disk.reset();
    disk.tick(1000);
    expect([P.LBA, P.COUNT, P.ADDR, P.COMMAND, P.STATUS, P.CONTROL].map(reg)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(lines).toEqual([]);
    expect(sector(backend.bytes, 0)).toEqual(new Uint8Array(SECTOR_SIZE));
    expect(disk.isProtected(1)).toBe(true);
  });

  it('refuses host misuse with typed errors', () => {
    const { disk } = setup();
    expect(() => disk.protect(16)).toThrow(RangeError);
    expect(() => disk.protect(15, 2)).toThrow(RangeError);
    expect(() => disk.protect(-1)).toThrow(RangeError);
    expect(() => new Disk({} as DiskOptions)).toThrow(DeviceError);
    expect(() => new Disk({ backend: memoryBlockBackend(1), line: 16 })).toThrow(
      'disk: line must be an integer in 0..15, got 16',
    );
  });

  it('snapshot round trip mid-command: the restored command completes identically', () => {
    const backend = memoryBlockBackend(16);
    backend.bytes.set(pattern(2 * SECTOR_SIZE, 4), 6 * SECTOR_SIZE);
    const { disk, mem, lines, reg, set, issue } = setup({ latency: 50 }, backend);
    set(P.CONTROL, 1);
    issue(CMD.READ, 6, 2, 0x400);
    disk.tick(20);
    const saved = disk.save();
    disk.tick(30);
    expect(lines).toEqual([2]);
    const first = mem.slice(0x400, 0x800);
    mem.fill(0);
    set(P.CONTROL, 0);
    issue(CMD.WRITE, 1, 1, 0);
    disk.restore(saved);
    expect(disk.save()).toEqual(saved);
    expect([P.LBA, P.COUNT, P.ADDR, P.COMMAND, P.STATUS, P.CONTROL].map(reg)).toEqual([6, 2, 0x400, 1, 1, 1]);
    expect(disk.nextEvent()).toBe(30);
    disk.tick(29);
    expect(lines).toEqual([2]);
    disk.tick(1);
    expect(lines).toEqual([2, 2]);
    expect(mem.slice(0x400, 0x800)).toEqual(first);
    expect(first).toEqual(pattern(2 * SECTOR_SIZE, 4));
  });

  it('file backend: creates and sizes the file; data survives a new backend on the same file', () => {
    const path = join(tempDir(), 'disk.img');
    const a = fileBlockBackend(path, 8);
    expect(statSync(path).size).toBe(8 * SECTOR_SIZE);
    const one = setup({ latency: 0 }, a);
    one.mem.set(pattern(SECTOR_SIZE, 77), 0);
    one.issue(CMD.WRITE, 7, 1, 0);
    expect(one.reg(P.STATUS)).toBe(0);
    a.close();
    const b = fileBlockBackend(path);
    expect(b.sectors).toBe(8);
    const two = setup({ latency: 0 }, b);
    two.issue(CMD.READ, 7, 1, 0x3000);
    expect(two.mem.slice(0x3000, 0x3200)).toEqual(pattern(SECTOR_SIZE, 77));
    expect(two.reg(P.SECTORS)).toBe(8);
    b.close();
    expect(() => b.read(0, new Uint8Array(SECTOR_SIZE))).toThrow('fileBlockBackend: ' + path + ' is closed');
  });

  it('file backend: extends a short file, reads its tail as zeros, refuses a missing file without a size', () => {
    const dir = tempDir();
    const path = join(dir, 'short.img');
    writeFileSync(path, new Uint8Array(700).fill(3));
    const b = fileBlockBackend(path, 4);
    expect(statSync(path).size).toBe(4 * SECTOR_SIZE);
    const out = new Uint8Array(2 * SECTOR_SIZE);
    b.read(0, out);
    expect(out.subarray(0, 700).every((x) => x === 3)).toBe(true);
    expect(out.subarray(700).every((x) => x === 0)).toBe(true);
    b.close();
    expect(() => fileBlockBackend(join(dir, 'missing.img'))).toThrow(/ENOENT/);
    writeFileSync(join(dir, 'tiny.img'), new Uint8Array(100));
    expect(() => fileBlockBackend(join(dir, 'tiny.img'))).toThrow(DeviceError);
  });
});

describe('BlockBackend compliance: memory', () => {
  for (const c of BLOCK_BACKEND_CASES) it(c.name, () => c.run((n) => memoryBlockBackend(n)));
});

describe('BlockBackend compliance: file', () => {
  for (const c of BLOCK_BACKEND_CASES) {
    it(c.name, () => {
      const opened: { close(): void }[] = [];
      try {
        c.run((n) => {
          const b = fileBlockBackend(join(tempDir(), 'd.img'), n);
          opened.push(b);
          return b;
        });
      } finally {
        for (const b of opened) b.close();
      }
    });
  }
});
