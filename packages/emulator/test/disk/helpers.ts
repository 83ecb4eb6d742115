import { type Clef, type CryptoBackend, clefOf, type Key, type RandomSource } from '@clefnet/protocol';
import { expect } from 'vitest';
import { type BlockBackend, SECTOR_SIZE } from '../../src/devices/disk.js';
import { VmmError } from '../../src/vmm/errors.js';

/** The VmmError `fn` throws, with its code and metadata (fails the test on anything else, or nothing). */
export function vmmErrorOf(fn: () => unknown): { code: string; meta: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(VmmError);
    const v = e as VmmError;
    return { code: v.code, meta: { ...v.meta } };
  }
  throw new Error('expected a VmmError, nothing was thrown');
}

/** A 512-byte plaintext no cipher output would contain by chance: readable text, block-aligned markers. */
export function recognisable(tag: string): Uint8Array {
  const out = new Uint8Array(SECTOR_SIZE);
  const text = new TextEncoder().encode(`${tag}:the quick brown fox jumps over the lazy dog|`);
  for (let i = 0; i < SECTOR_SIZE; i++) out[i] = text[i % text.length]!;
  return out;
}

/** Whether `needle` occurs anywhere in `hay`. */
export function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(Buffer.from(needle)) >= 0;
}

export function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7 + 1) & 0xff;
  return b;
}

/** A machine's Key and Clef (KEY-1) from a seeded source. */
export function machine(backend: CryptoBackend, random: RandomSource): { key: Key; clef: Clef } {
  const key: Key = { sign: random(32), open: random(32) };
  return { key, clef: clefOf(backend, key) };
}

/** Reads sectors [lba, lba + n) of `dev`. */
export function readSectors(dev: BlockBackend, lba: number, n = 1): Uint8Array {
  const out = new Uint8Array(n * SECTOR_SIZE);
  dev.read(lba, out);
  return out;
}

/** A device of any capacity holding only the sectors written (reads of the rest give zeros). */
export function sparseBackend(sectors: number): BlockBackend & { readonly written: Map<number, Uint8Array> } {
  const written = new Map<number, Uint8Array>();
  const check = (lba: number, b: Uint8Array) => {
    const n = b.length / SECTOR_SIZE;
    if (!(Number.isInteger(lba) && lba >= 0 && Number.isInteger(n) && n >= 1 && lba + n <= sectors))
      throw new RangeError(`sparse: ${b.length} bytes at ${lba}`);
    return n;
  };
  return {
    sectors,
    written,
    read(lba, out) {
      const n = check(lba, out);
      for (let i = 0; i < n; i++)
        out.set(written.get(lba + i) ?? new Uint8Array(SECTOR_SIZE), i * SECTOR_SIZE);
    },
    write(lba, data) {
      const n = check(lba, data);
      for (let i = 0; i < n; i++) written.set(lba + i, data.slice(i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE));
    },
  };
}

/** An edit that sets byte `at` of a buffer to `value`. */
export function setByte(at: number, value: number): (b: Uint8Array) => void {
  return (b) => {
    b[at] = value;
  };
}
