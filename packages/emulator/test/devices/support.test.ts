import { ClefnetError } from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import type { PortDevice, Snapshotting } from '../../src/devices/bus.js';
import { CONSOLE_CONTROL, CONSOLE_PORT, ConsoleDevice } from '../../src/devices/console.js';
import { Disk, memoryBlockBackend } from '../../src/devices/disk.js';
import { arrayDma, noDma } from '../../src/devices/dma.js';
import { DeviceError } from '../../src/devices/errors.js';
import { Emitter } from '../../src/devices/events.js';
import { Nic } from '../../src/devices/nic.js';
import { Nvram } from '../../src/devices/nvram.js';
import { PIC_PORT, Pic } from '../../src/devices/pic.js';
import { Rtc } from '../../src/devices/rtc.js';
import { SnapshotReader, SnapshotWriter } from '../../src/devices/snapshot.js';
import { TIMER_CONTROL, TIMER_PORT, Timer } from '../../src/devices/timer.js';
import { busWith } from './helpers.js';

type Device = PortDevice & Snapshotting & { readonly ports: readonly [number, number]; reset(): void };

/** Every device with its default options, wired to a PIC as the machine will wire them. */
function machine() {
  const pic = new Pic();
  const irq = (line: number) => pic.raise(line);
  const mem = new Uint8Array(0x10000);
  const dma = arrayDma(mem);
  const devices: Device[] = [
    pic,
    new ConsoleDevice({ irq }),
    new Timer({ irq }),
    new Rtc({ clock: () => 1_000_000 }),
    new Nvram(),
    new Disk({ backend: memoryBlockBackend(8), dma, irq }),
    new Nic({ dma, irq }),
  ];
  return { pic, devices, bus: busWith(...devices) };
}

class Pinger extends Emitter<{ ping: number; pong: string }> {
  fire(n: number): void {
    this.emit('ping', n);
  }
}

describe('device support', () => {
  it('the default port ranges of all seven devices fit on one bus without overlap', () => {
    const { devices, bus } = machine();
    expect(devices.map((d) => [d.name, d.ports[0], d.ports[1]])).toEqual([
      ['pic', 0x20, 0x26],
      ['console', 0x3f8, 0x3fb],
      ['timer', 0x40, 0x43],
      ['rtc', 0x78, 0x7a],
      ['nvram', 0x70, 0x77],
      ['disk', 0x1f0, 0x1f6],
      ['nic', 0x300, 0x30b],
    ]);
    expect(bus.devices()).toEqual(devices);
  });

  it('a device interrupt reaches the CPU as a PIC vector, end to end through the bus', () => {
    const { pic, devices, bus } = machine();
    const [, con, timer] = devices as [Pic, ConsoleDevice, Timer];
    bus.write(0x20 + PIC_PORT.MASK, 0xfffc); // unmask timer (0) and console (1)
    bus.write(0x40 + TIMER_PORT.RELOAD, 5);
    bus.write(0x40 + TIMER_PORT.CONTROL, TIMER_CONTROL.ENABLE | TIMER_CONTROL.IRQ_ENABLE);
    bus.write(0x3f8 + CONSOLE_PORT.CONTROL, CONSOLE_CONTROL.INPUT_IRQ);
    con.input('k');
    expect(pic.pending()).toBe(0x21);
    timer.tick(5);
    expect(pic.pending()).toBe(0x20);
    pic.acknowledge(0x20);
    expect(pic.pending()).toBe(-1);
    bus.write(0x20 + PIC_PORT.EOI, 0);
    expect(pic.pending()).toBe(0x21);
  });

  it('every device refuses snapshot bytes that are not its own, short, or too long', () => {
    const { devices } = machine();
    for (const d of devices) {
      const own = d.save();
      const other = devices.find((x) => x !== d)!.save();
      const codeOf = (bytes: Uint8Array) => {
        try {
          d.restore(bytes);
          return 'restored';
        } catch (e) {
          return e instanceof DeviceError ? e.code : String(e);
        }
      };
      expect(codeOf(other), `${d.name}: other device`).toBe('ENCODING_BAD_VALUE');
      expect(codeOf(own.subarray(0, own.length - 1)), `${d.name}: truncated`).toBe('ENCODING_TRUNCATED');
      expect(codeOf(new Uint8Array([...own, 0])), `${d.name}: trailing`).toBe('ENCODING_TRAILING');
      expect(codeOf(own), `${d.name}: own`).toBe('restored');
    }
  });

  it('a refused snapshot leaves the device as it was', () => {
    const pic = new Pic();
    const bus = busWith(pic);
    bus.write(0x21, 0x1234);
    const before = pic.save();
    const bad = new SnapshotWriter('PIC1').u32(0x40).u32(0).u32(0).u32(0x10000).finish();
    expect(() => pic.restore(bad)).toThrow('pic: in service 65536 outside 0..65535');
    expect(pic.save()).toEqual(before);
  });

  it('every device answers 0xFFFFFFFF on a port outside its range and ignores writes there', () => {
    const { devices } = machine();
    for (const d of devices) {
      const before = d.save();
      d.write(d.ports[1] + 1, 0xffffffff);
      expect(d.read(d.ports[1] + 1), d.name).toBe(0xffffffff);
      expect(d.save(), d.name).toEqual(before);
    }
  });

  it('DeviceError is a ClefnetError with the device in its metadata', () => {
    const err = (() => {
      try {
        new Timer({ base: 0x10000 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ClefnetError);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).code).toBe('CONFIG_INVALID');
    expect((err as DeviceError).meta).toEqual({ device: 'timer' });
    expect((err as DeviceError).message).toBe('timer: base must be an integer in 0..65532, got 65536');
  });

  it('emitter: typed delivery, unsubscribe during delivery, independent events', () => {
    const p = new Pinger();
    const seen: string[] = [];
    const offA = p.on('ping', (n) => {
      seen.push(`a${n}`);
      offA();
    });
    p.on('ping', (n) => seen.push(`b${n}`));
    p.on('pong', (s) => seen.push(s));
    p.fire(1);
    p.fire(2);
    expect(seen).toEqual(['a1', 'b1', 'b2']);
  });

  it('snapshot codec: round trip of every field kind; u53 above 2^53 - 1 is refused', () => {
    const bytes = new SnapshotWriter('TST1')
      .u8(0xfe)
      .u32(0xdeadbeef)
      .u53(2 ** 40 + 3)
      .bytes(new Uint8Array([1, 2, 3]))
      .finish();
    expect(Array.from(bytes.subarray(0, 9))).toEqual([0x54, 0x53, 0x54, 0x31, 0xfe, 0xef, 0xbe, 0xad, 0xde]);
    const r = new SnapshotReader(bytes, 'TST1', 'test');
    expect([r.u8(), r.u32(), r.u53()]).toEqual([0xfe, 0xdeadbeef, 2 ** 40 + 3]);
    expect(r.bytes('b', 3)).toEqual(new Uint8Array([1, 2, 3]));
    r.end();
    const big = new SnapshotWriter('TST1').u32(0).u32(0x00200000).finish();
    expect(() => new SnapshotReader(big, 'TST1', 'test').u53()).toThrow(DeviceError);
    const long = new SnapshotWriter('TST1').bytes(new Uint8Array(4)).finish();
    expect(() => new SnapshotReader(long, 'TST1', 'test').bytes('b', 3)).toThrow(
      'test: b of 4 bytes exceeds 3',
    );
  });

  it('arrayDma checks bounds before touching memory; noDma refuses everything', () => {
    const mem = new Uint8Array(16);
    const dma = arrayDma(mem);
    dma.write(14, new Uint8Array([1, 2]));
    expect(Array.from(dma.read(13, 3))).toEqual([0, 1, 2]);
    expect(() => dma.write(15, new Uint8Array([9, 9]))).toThrow(RangeError);
    expect(mem[15]).toBe(2);
    expect(() => dma.read(-1, 1)).toThrow(RangeError);
    expect(() => noDma.read(0, 1)).toThrow(RangeError);
    expect(() => noDma.write(0, new Uint8Array(1))).toThrow(RangeError);
  });
});
