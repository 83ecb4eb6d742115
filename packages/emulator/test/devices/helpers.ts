import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { IoBus, type PortDevice } from '../../src/devices/bus.js';
import { arrayDma, type Dma } from '../../src/devices/dma.js';

/** A bus with `device` attached at its own port range, as the machine will do it. */
export function busWith(...devices: (PortDevice & { readonly ports: readonly [number, number] })[]): IoBus {
  const bus = new IoBus();
  for (const d of devices) bus.attach(d.ports[0], d.ports[1], d);
  return bus;
}

/** An interrupt callback that records the lines raised. */
export function irqRecorder(): { readonly lines: number[]; readonly irq: (line: number) => void } {
  const lines: number[] = [];
  return { lines, irq: (line) => void lines.push(line) };
}

/** Fake physical memory of `size` bytes and its DMA. */
export function fakeMemory(size = 0x10000): { readonly mem: Uint8Array; readonly dma: Dma } {
  const mem = new Uint8Array(size);
  return { mem, dma: arrayDma(mem) };
}

export function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

/** A fresh temporary directory per test, removed after it. */
export function useTempDir(): () => string {
  let dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    dirs = [];
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), 'clefnet-dev-'));
    dirs.push(d);
    return d;
  };
}
