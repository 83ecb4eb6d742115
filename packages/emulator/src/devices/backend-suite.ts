/**
 * The compliance suites every {@link BlockBackend} and {@link NvramBackend} implementation runs
 * (STYLE: one interface, one reusable suite): the memory and file backends here, and later the
 * VMM's translating or mirroring disks (TB-9). Framework-free: each case throws (node:assert) on
 * failure, so any test runner can run them.
 */
import assert from 'node:assert/strict';
import { type BlockBackend, SECTOR_SIZE } from './disk.js';
import type { NvramBackend } from './nvram.js';

export interface BackendCase<B> {
  readonly name: string;
  /** `fresh(sectorsOrSize)` gives a new, empty backend of that many sectors (or NVRAM bytes). */
  readonly run: (fresh: (n: number) => B) => void;
}

const pattern = (len: number, seed: number): Uint8Array => {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
};

export const BLOCK_BACKEND_CASES: readonly BackendCase<BlockBackend>[] = [
  {
    name: 'reports its capacity; a fresh backend reads zeros',
    run: (fresh) => {
      const b = fresh(8);
      assert.equal(b.sectors, 8);
      const out = new Uint8Array(8 * SECTOR_SIZE).fill(0xaa);
      b.read(0, out);
      assert.deepEqual(out, new Uint8Array(8 * SECTOR_SIZE));
    },
  },
  {
    name: 'a multi-sector write reads back exactly and leaves its neighbours alone',
    run: (fresh) => {
      const b = fresh(8);
      const data = pattern(3 * SECTOR_SIZE, 5);
      b.write(2, data);
      const out = new Uint8Array(5 * SECTOR_SIZE);
      b.read(1, out);
      assert.deepEqual(out.subarray(0, SECTOR_SIZE), new Uint8Array(SECTOR_SIZE), 'sector 1');
      assert.deepEqual(out.subarray(SECTOR_SIZE, 4 * SECTOR_SIZE), data, 'sectors 2..4');
      assert.deepEqual(out.subarray(4 * SECTOR_SIZE), new Uint8Array(SECTOR_SIZE), 'sector 5');
    },
  },
  {
    name: 'the last sector is reachable; one past it is a RangeError',
    run: (fresh) => {
      const b = fresh(4);
      const data = pattern(SECTOR_SIZE, 1);
      b.write(3, data);
      const out = new Uint8Array(SECTOR_SIZE);
      b.read(3, out);
      assert.deepEqual(out, data);
      assert.throws(() => b.read(4, out), RangeError);
      assert.throws(() => b.write(3, new Uint8Array(2 * SECTOR_SIZE)), RangeError);
      assert.throws(() => b.read(-1, out), RangeError);
    },
  },
  {
    name: 'buffers that are not whole sectors are a RangeError',
    run: (fresh) => {
      const b = fresh(4);
      assert.throws(() => b.read(0, new Uint8Array(100)), RangeError);
      assert.throws(() => b.write(0, new Uint8Array(SECTOR_SIZE + 1)), RangeError);
      assert.throws(() => b.write(0, new Uint8Array(0)), RangeError);
    },
  },
  {
    name: 'the backend keeps no reference to the caller buffer',
    run: (fresh) => {
      const b = fresh(2);
      const data = pattern(SECTOR_SIZE, 9);
      b.write(0, data);
      data.fill(0);
      const out = new Uint8Array(SECTOR_SIZE);
      b.read(0, out);
      assert.deepEqual(out, pattern(SECTOR_SIZE, 9));
    },
  },
];

export const NVRAM_BACKEND_CASES: readonly BackendCase<NvramBackend>[] = [
  {
    name: 'a fresh backend has no image',
    run: (fresh) => assert.equal(fresh(16).load(), undefined),
  },
  {
    name: 'store then load returns the same bytes; a later store replaces them',
    run: (fresh) => {
      const b = fresh(16);
      b.store(pattern(16, 1));
      assert.deepEqual(b.load(), pattern(16, 1));
      b.store(pattern(16, 2));
      assert.deepEqual(b.load(), pattern(16, 2));
    },
  },
  {
    name: 'store copies its argument and load returns a copy',
    run: (fresh) => {
      const b = fresh(16);
      const live = pattern(16, 3);
      b.store(live);
      live.fill(0);
      const first = b.load();
      assert.deepEqual(first, pattern(16, 3));
      first?.fill(1);
      assert.deepEqual(b.load(), pattern(16, 3));
    },
  },
];
