import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NVRAM_BACKEND_CASES } from '../../src/devices/backend-suite.js';
import { DeviceError } from '../../src/devices/errors.js';
import {
  fileNvramBackend,
  memoryNvramBackend,
  NVRAM_LOCK,
  NVRAM_STATUS,
  Nvram,
  type NvramBackend,
  NVRAM_PORT as P,
} from '../../src/devices/nvram.js';
import { busWith, useTempDir } from './helpers.js';

const tempDir = useTempDir();

function setup(backend: NvramBackend = memoryNvramBackend(), size?: number) {
  const nv = new Nvram(size === undefined ? { backend } : { backend, size });
  const bus = busWith(nv);
  const reg = (off: number) => bus.read(nv.base + off);
  const set = (off: number, v: number) => bus.write(nv.base + off, v);
  /** The guest's block write: INDEX then DATA_NEXT per byte. */
  const store = (at: number, bytes: number[]) => {
    set(P.INDEX, at);
    for (const b of bytes) set(P.DATA_NEXT, b);
  };
  const load = (at: number, n: number) => {
    set(P.INDEX, at);
    return Array.from({ length: n }, () => reg(P.DATA_NEXT));
  };
  return { nv, reg, set, store, load };
}

describe('nvram', () => {
  it('claims ports 0x70..0x77, reports its size and starts all zero', () => {
    const { nv, reg, load } = setup();
    expect(nv.ports).toEqual([0x70, 0x77]);
    expect(reg(P.SIZE)).toBe(256);
    expect(load(0, 4)).toEqual([0, 0, 0, 0]);
    expect(reg(P.INDEX)).toBe(4);
  });

  it('stores and loads bytes through INDEX, DATA and DATA_NEXT', () => {
    const { reg, set, store, load } = setup();
    store(0x10, [0x4b, 0x45, 0x59, 0x21]);
    expect(reg(P.INDEX)).toBe(0x14);
    expect(load(0x10, 4)).toEqual([0x4b, 0x45, 0x59, 0x21]);
    set(P.INDEX, 0x20);
    set(P.DATA, 0x1ab); // low byte only
    expect(reg(P.DATA)).toBe(0xab);
    expect(reg(P.INDEX)).toBe(0x20);
    expect(reg(P.STATUS)).toBe(0);
  });

  it('writes every change through to the backend at once, and only changes', () => {
    const backend = memoryNvramBackend();
    const { store, nv } = setup(backend);
    expect(backend.stores).toBe(0);
    store(3, [7, 8]);
    expect(backend.stores).toBe(2);
    expect(Array.from(backend.image()?.subarray(0, 6) ?? [])).toEqual([0, 0, 0, 7, 8, 0]);
    store(3, [7]); // same value: nothing to write
    expect(backend.stores).toBe(2);
    expect(backend.image()).toEqual(nv.contents());
  });

  it('reads 0xFFFFFFFF and loses writes past its size, flagging OUT_OF_RANGE', () => {
    const backend = memoryNvramBackend();
    const { reg, set } = setup(backend, 16);
    set(P.INDEX, 16);
    expect(reg(P.DATA)).toBe(0xffffffff);
    expect(reg(P.STATUS)).toBe(NVRAM_STATUS.OUT_OF_RANGE);
    set(P.DATA, 5);
    expect(reg(P.STATUS)).toBe(NVRAM_STATUS.OUT_OF_RANGE);
    expect(backend.stores).toBe(0);
    set(P.INDEX, 15);
    reg(P.DATA);
    expect(reg(P.STATUS)).toBe(0);
  });

  it('a write lock makes a range read-only until reset, and the guest cannot undo it', () => {
    const backend = memoryNvramBackend();
    const { nv, reg, set, store, load } = setup(backend);
    store(0x10, [1, 2, 3, 4, 5]);
    set(P.LOCK_START, 0x10);
    set(P.LOCK_END, 0x14);
    set(P.LOCK, NVRAM_LOCK.WRITE_LOCK);
    const stores = backend.stores;
    store(0x0f, [9, 9, 9, 9, 9, 9, 9]);
    expect(load(0x0f, 7)).toEqual([9, 1, 2, 3, 4, 9, 9]);
    set(P.INDEX, 0x13);
    set(P.DATA, 0x77);
    expect(reg(P.STATUS)).toBe(NVRAM_STATUS.WRITE_REFUSED);
    expect(reg(P.LOCK)).toBe(NVRAM_LOCK.WRITE_LOCK);
    set(P.INDEX, 0x14);
    expect(reg(P.LOCK)).toBe(0);
    // No way back: rewriting the range registers and LOCK adds locks, never removes them.
    set(P.LOCK, 0);
    set(P.LOCK_START, 0);
    set(P.LOCK_END, 0);
    set(P.LOCK, 0);
    store(0x10, [0xee]);
    expect(load(0x10, 1)).toEqual([1]);
    expect(backend.stores).toBe(stores + 3); // 0x0f, 0x14, 0x15
    nv.reset();
    store(0x10, [0xee]);
    expect(load(0x10, 1)).toEqual([0xee]);
  });

  it('HIDE makes a range read as 0 (KEY-4) until reset; the host still sees the contents', () => {
    const { nv, reg, set, store, load } = setup();
    store(0x40, [0xde, 0xad]);
    set(P.LOCK_START, 0x40);
    set(P.LOCK_END, 0x41);
    set(P.LOCK, NVRAM_LOCK.HIDE | NVRAM_LOCK.WRITE_LOCK);
    set(P.INDEX, 0x40);
    expect(reg(P.DATA)).toBe(0);
    expect(reg(P.STATUS)).toBe(NVRAM_STATUS.HIDDEN);
    expect(reg(P.LOCK)).toBe(NVRAM_LOCK.HIDE | NVRAM_LOCK.WRITE_LOCK);
    expect(load(0x40, 2)).toEqual([0, 0xad]);
    expect(Array.from(nv.contents().subarray(0x40, 0x42))).toEqual([0xde, 0xad]);
    nv.reset();
    expect(load(0x40, 2)).toEqual([0xde, 0xad]);
  });

  it('clips a lock range to its size', () => {
    const { reg, set, store, load } = setup(memoryNvramBackend(), 8);
    set(P.LOCK_START, 6);
    set(P.LOCK_END, 0xffffffff);
    set(P.LOCK, NVRAM_LOCK.WRITE_LOCK);
    store(5, [1, 2, 3]);
    expect(load(5, 3)).toEqual([1, 0, 0]);
    expect(reg(P.STATUS)).toBe(0);
  });

  it('keeps its contents across reset and clears registers', () => {
    const { nv, reg, set, store, load } = setup();
    store(0, [0x11, 0x22]);
    set(P.LOCK_START, 1);
    set(P.LOCK_END, 2);
    nv.reset();
    expect([P.INDEX, P.LOCK_START, P.LOCK_END, P.STATUS].map(reg)).toEqual([0, 0, 0, 0]);
    expect(load(0, 2)).toEqual([0x11, 0x22]);
  });

  it('file backend: contents survive a new device on the same file; writes are atomic renames', () => {
    const path = join(tempDir(), 'nvram.bin');
    const a = setup(fileNvramBackend(path));
    expect(existsSync(path)).toBe(false); // nothing written until the guest writes
    a.store(0x80, [0xc1, 0xef, 0x00, 0x01]);
    const onDisk = readFileSync(path);
    expect(onDisk.length).toBe(256);
    expect(Array.from(onDisk.subarray(0x80, 0x84))).toEqual([0xc1, 0xef, 0x00, 0x01]);
    expect(readdirSync(join(path, '..'))).toEqual(['nvram.bin']);
    const b = setup(fileNvramBackend(path));
    expect(b.load(0x80, 4)).toEqual([0xc1, 0xef, 0x00, 0x01]);
    expect(b.nv.contents()).toEqual(a.nv.contents());
  });

  it('file backend with fsync writes the same bytes', () => {
    const path = join(tempDir(), 'nv');
    const { store } = setup(fileNvramBackend(path, { fsync: true }), 4);
    store(0, [1, 2, 3, 4]);
    expect(Array.from(readFileSync(path))).toEqual([1, 2, 3, 4]);
  });

  it('refuses a stored image of the wrong size', () => {
    const path = join(tempDir(), 'short.bin');
    writeFileSync(path, new Uint8Array(100));
    const err = (() => {
      try {
        new Nvram({ backend: fileNvramBackend(path) });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).code).toBe('CONFIG_INVALID');
    expect((err as DeviceError).message).toBe('nvram: stored image has 100 bytes, not 256');
  });

  it('snapshot round trip restores contents, locks and registers, and writes the contents through', () => {
    const backend = memoryNvramBackend();
    const { nv, reg, set, store, load } = setup(backend);
    store(0, [5, 6, 7, 8]);
    set(P.LOCK_START, 2);
    set(P.LOCK_END, 3);
    set(P.LOCK, NVRAM_LOCK.WRITE_LOCK);
    set(P.INDEX, 2);
    set(P.DATA, 0); // refused
    const saved = nv.save();
    nv.reset();
    store(0, [0xff, 0xff, 0xff]);
    nv.restore(saved);
    expect(nv.save()).toEqual(saved);
    expect([P.INDEX, P.LOCK_START, P.LOCK_END, P.STATUS].map(reg)).toEqual([2, 2, 3, 1]);
    expect(backend.image()).toEqual(nv.contents());
    expect(load(0, 4)).toEqual([5, 6, 7, 8]);
    store(2, [0]);
    expect(load(2, 1)).toEqual([7]);
  });
});

describe('NvramBackend compliance: memory', () => {
  for (const c of NVRAM_BACKEND_CASES) it(c.name, () => c.run(() => memoryNvramBackend()));
});

describe('NvramBackend compliance: file', () => {
  for (const c of NVRAM_BACKEND_CASES)
    it(c.name, () => c.run(() => fileNvramBackend(join(tempDir(), 'nv.bin'))));
});
