import { describe, expect, it } from 'vitest';
import {
  NIC_COMMAND as CMD,
  NIC_ERROR as E,
  NIC_CONTROL,
  NIC_STAT,
  Nic,
  type NicOptions,
  NIC_PORT as P,
  NIC_STATUS as S,
} from '../../src/devices/nic.js';
import { busWith, fakeMemory, irqRecorder, pattern } from './helpers.js';

function setup(options: Omit<NicOptions, 'dma' | 'irq'> = {}) {
  const { mem, dma } = fakeMemory();
  const { lines, irq } = irqRecorder();
  const nic = new Nic({ ...options, dma, irq });
  const bus = busWith(nic);
  const reg = (off: number) => bus.read(nic.base + off);
  const set = (off: number, v: number) => bus.write(nic.base + off, v);
  const sent: Uint8Array[] = [];
  nic.on('transmit', (f) => sent.push(f));
  /** The guest driver's receive: length, then copy by DMA to `addr`. */
  const take = (addr: number) => {
    const len = reg(P.RX_LEN);
    set(P.ADDR, addr);
    set(P.COMMAND, CMD.RECEIVE);
    return mem.slice(addr, addr + len);
  };
  const send = (addr: number, frame: Uint8Array) => {
    mem.set(frame, addr);
    set(P.ADDR, addr);
    set(P.TX_LEN, frame.length);
    set(P.COMMAND, CMD.TRANSMIT);
  };
  return { nic, mem, lines, reg, set, sent, take, send };
}

describe('nic', () => {
  it('claims ports 0x300..0x30B; idle: TX ready, nothing queued, MTU 2048', () => {
    const { nic, reg } = setup();
    expect(nic.ports).toEqual([0x300, 0x30b]);
    expect(reg(P.STATUS)).toBe(S.TX_READY);
    expect([P.CONTROL, P.RX_LEN, P.RX_COUNT, P.ADDR, P.TX_LEN].map(reg)).toEqual([0, 0, 0, 0, 0]);
    expect(reg(P.MTU)).toBe(2048);
  });

  it('shows its address at MAC_HI/MAC_LO: the default, or the one configured (copied)', () => {
    const { reg } = setup();
    expect([reg(P.MAC_HI), reg(P.MAC_LO)]).toEqual([0x0200, 0x00000001]);
    const mac = Uint8Array.of(0x02, 0xc1, 0xef, 0x80, 0x01, 0xfe);
    const nic = new Nic({ mac });
    mac.fill(0);
    expect([nic.read(0x300 + P.MAC_HI), nic.read(0x300 + P.MAC_LO)]).toEqual([0x02c1, 0xef8001fe]);
    expect(nic.mac).toEqual(Uint8Array.of(0x02, 0xc1, 0xef, 0x80, 0x01, 0xfe));
    expect(() => new Nic({ mac: new Uint8Array(5) })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: 'nic: mac must be 6 bytes' }),
    );
  });

  it('queues a received frame, raises the receive line, and the guest copies it by DMA', () => {
    const { nic, mem, lines, reg, set, take } = setup();
    set(P.CONTROL, NIC_CONTROL.RX_IRQ);
    const frame = pattern(60, 1);
    expect(nic.receive(frame)).toBe(true);
    expect(lines).toEqual([3]);
    expect(reg(P.STATUS)).toBe(S.RX_AVAILABLE | S.TX_READY);
    expect(reg(P.RX_LEN)).toBe(60);
    expect(reg(P.RX_COUNT)).toBe(1);
    expect(take(0x100)).toEqual(frame);
    expect(mem[0xff]).toBe(0);
    expect(mem[0x100 + 60]).toBe(0);
    expect(reg(P.STATUS)).toBe(S.TX_READY);
    expect(reg(P.RX_COUNT)).toBe(0);
  });

  it('keeps its own copy of a received frame', () => {
    const { nic, take } = setup();
    const frame = pattern(20, 2);
    nic.receive(frame);
    frame.fill(0);
    expect(take(0)).toEqual(pattern(20, 2));
  });

  it('copies a Node Buffer frame rather than sharing its memory', () => {
    const { nic, take } = setup();
    const buf = Buffer.from(pattern(16, 4));
    nic.receive(buf);
    buf.fill(0);
    expect(take(0)).toEqual(pattern(16, 4));
  });

  it('frames restored from a Buffer snapshot do not share its memory', () => {
    const { nic, take } = setup();
    nic.receive(pattern(16, 6));
    const file = Buffer.from(nic.save());
    nic.restore(file);
    file.fill(0xff);
    expect(take(0)).toEqual(pattern(16, 6));
  });

  it('delivers frames in arrival order; DISCARD drops the head', () => {
    const { nic, reg, set, take } = setup();
    nic.receive(pattern(10, 1));
    nic.receive(pattern(11, 2));
    nic.receive(pattern(12, 3));
    set(P.COMMAND, CMD.DISCARD);
    expect(reg(P.STATUS)).toBe(S.RX_AVAILABLE | S.TX_READY);
    expect(reg(P.RX_LEN)).toBe(11);
    expect(take(0x200)).toEqual(pattern(11, 2));
    expect(take(0x200)).toEqual(pattern(12, 3));
  });

  it('RECEIVE or DISCARD on an empty queue is NO_FRAME', () => {
    const { reg, set } = setup();
    set(P.COMMAND, CMD.RECEIVE);
    expect(reg(P.STATUS)).toBe((E.NO_FRAME << 8) | S.TX_READY);
    set(P.COMMAND, CMD.DISCARD);
    expect(reg(P.STATUS)).toBe(0x202);
  });

  it('a RECEIVE to a buffer outside memory is DMA_ERROR and leaves the frame queued', () => {
    const { nic, reg, set, take } = setup();
    nic.receive(pattern(100, 5));
    set(P.ADDR, 0xffc0);
    set(P.COMMAND, CMD.RECEIVE);
    expect(reg(P.STATUS)).toBe((E.DMA_ERROR << 8) | S.RX_AVAILABLE | S.TX_READY);
    expect(reg(P.RX_COUNT)).toBe(1);
    expect(take(0)).toEqual(pattern(100, 5));
    expect(reg(P.STATUS)).toBe(S.TX_READY);
  });

  it('TRANSMIT emits a copy of TX_LEN bytes at ADDR', () => {
    const { nic, mem, reg, sent, send } = setup();
    send(0x400, pattern(64, 9));
    expect(reg(P.STATUS)).toBe(S.TX_READY);
    expect(sent).toEqual([pattern(64, 9)]);
    mem.fill(0, 0x400, 0x440);
    expect(sent[0]).toEqual(pattern(64, 9));
    expect(nic.stats()).toMatchObject({ txFrames: 1, txBytes: 64, txErrors: 0 });
  });

  it('TRANSMIT above the MTU or of 0 bytes is BAD_LENGTH and sends nothing; at the MTU it is sent', () => {
    const { nic, reg, set, sent, send } = setup({ mtu: 1500 });
    send(0, pattern(1501, 1));
    expect(reg(P.STATUS)).toBe((E.BAD_LENGTH << 8) | S.TX_READY);
    set(P.TX_LEN, 0);
    set(P.COMMAND, CMD.TRANSMIT);
    expect(reg(P.STATUS)).toBe(0x102);
    expect(sent).toEqual([]);
    send(0, pattern(1500, 1));
    expect(reg(P.STATUS)).toBe(S.TX_READY);
    expect(sent.map((f) => f.length)).toEqual([1500]);
    expect(nic.stats()).toMatchObject({ txFrames: 1, txBytes: 1500, txErrors: 2 });
  });

  it('TRANSMIT from outside memory is DMA_ERROR; an unknown command is BAD_COMMAND', () => {
    const { nic, reg, set, sent } = setup();
    set(P.ADDR, 0xfff0);
    set(P.TX_LEN, 32);
    set(P.COMMAND, CMD.TRANSMIT);
    expect(reg(P.STATUS)).toBe(0x302);
    set(P.COMMAND, 9);
    expect(reg(P.STATUS)).toBe(0x402);
    expect(sent).toEqual([]);
    expect(nic.stats().txErrors).toBe(1);
  });

  it('bounds its receive queue and counts the frames it drops', () => {
    const { nic, reg, take } = setup({ queueCapacity: 4 });
    const accepted = [1, 2, 3, 4, 5, 6].map((i) => nic.receive(pattern(10 + i, i)));
    expect(accepted).toEqual([true, true, true, true, false, false]);
    expect(reg(P.RX_COUNT)).toBe(4);
    expect(nic.stats()).toMatchObject({ rxFrames: 4, rxBytes: 11 + 12 + 13 + 14, rxDropped: 2 });
    expect(take(0)).toEqual(pattern(11, 1));
    expect(nic.receive(pattern(17, 7))).toBe(true);
    const rest = [0, 1, 2, 3].map(() => take(0));
    expect(rest).toEqual([pattern(12, 2), pattern(13, 3), pattern(14, 4), pattern(17, 7)]);
  });

  it('drops empty and oversize received frames as invalid', () => {
    const { nic, reg } = setup({ mtu: 100 });
    expect(nic.receive(new Uint8Array(0))).toBe(false);
    expect(nic.receive(new Uint8Array(101))).toBe(false);
    expect(nic.receive(new Uint8Array(100))).toBe(true);
    expect(reg(P.RX_COUNT)).toBe(1);
    expect(nic.stats()).toMatchObject({ rxFrames: 1, rxInvalid: 2, rxDropped: 0 });
    expect(() => nic.receive([1, 2] as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('enabling the receive interrupt with frames waiting raises the line once', () => {
    const { nic, lines, set } = setup({ line: 10 });
    nic.receive(pattern(5, 1));
    expect(lines).toEqual([]);
    set(P.CONTROL, 1);
    set(P.CONTROL, 1);
    expect(lines).toEqual([10]);
    nic.receive(pattern(5, 2));
    expect(lines).toEqual([10, 10]);
  });

  it('shows every counter through STAT_SELECT / STAT_VALUE', () => {
    const { nic, reg, set, send } = setup({ queueCapacity: 1, mtu: 64 });
    nic.receive(pattern(30, 1));
    nic.receive(pattern(31, 1));
    nic.receive(pattern(65, 1));
    send(0, pattern(40, 1));
    send(0, pattern(65, 1));
    const guest = Object.values(NIC_STAT).map((i) => {
      set(P.STAT_SELECT, i);
      return reg(P.STAT_VALUE);
    });
    expect(guest).toEqual([1, 30, 1, 1, 1, 40, 1]);
    expect(nic.stats()).toEqual({
      rxFrames: 1,
      rxBytes: 30,
      rxDropped: 1,
      rxInvalid: 1,
      txFrames: 1,
      txBytes: 40,
      txErrors: 1,
    });
    set(P.STAT_SELECT, 99);
    expect(reg(P.STAT_SELECT)).toBe(99);
    expect(reg(P.STAT_VALUE)).toBe(0);
  });

  it('reset empties the queue and clears registers and counters', () => {
    const { nic, reg, set } = setup();
    nic.receive(pattern(8, 1));
    set(P.CONTROL, 1);
    set(P.ADDR, 0x10);
    set(P.TX_LEN, 4);
    set(P.COMMAND, 9);
    nic.reset();
    expect([P.STATUS, P.CONTROL, P.RX_LEN, P.RX_COUNT, P.ADDR, P.TX_LEN].map(reg)).toEqual([
      S.TX_READY,
      0,
      0,
      0,
      0,
      0,
    ]);
    expect(Object.values(nic.stats())).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  it('snapshot round trip restores queued frames, registers and counters exactly', () => {
    const { nic, reg, set, take, send } = setup({ queueCapacity: 3 });
    set(P.CONTROL, 1);
    nic.receive(pattern(70, 1));
    nic.receive(pattern(1, 2));
    nic.receive(pattern(300, 3));
    nic.receive(pattern(5, 4)); // dropped
    send(0x800, pattern(33, 5));
    set(P.COMMAND, 7); // leaves BAD_COMMAND in STATUS
    set(P.STAT_SELECT, NIC_STAT.RX_DROPPED);
    set(P.ADDR, 0x1234);
    const saved = nic.save();
    const regs = Object.values(P).map(reg);
    const stats = nic.stats();
    take(0);
    nic.reset();
    nic.receive(pattern(9, 9));
    nic.restore(saved);
    expect(nic.save()).toEqual(saved);
    expect(Object.values(P).map(reg)).toEqual(regs);
    expect(regs).toEqual([0x403, 1, 70, 3, 0x1234, 33, 0, NIC_STAT.RX_DROPPED, 1, 2048, 0x0200, 1]);
    expect(nic.stats()).toEqual(stats);
    expect([take(0), take(0), take(0)]).toEqual([pattern(70, 1), pattern(1, 2), pattern(300, 3)]);
  });
});
