/**
 * Gateway 22 (DTM-5): the ring-0 communication driver of the real machine's NIC and its data
 * connection to the world outside the physical computer. It drives the real NIC through its ports
 * and a buffer page of the VMM's own RAM (DMA), is woken by the NIC's interrupt through the core's
 * first-level dispatch (CORE-10), and hands what arrives to its DTM as the port `outside`.
 *
 * `attachDirect` is DTM-11's fastest and least safe path (TRADE-2): a VE whose frames go to and
 * come from the gateway without the DTM, no policy, no spool, no scanner, no translation. It is an
 * explicit per-VE choice and the only way round the DTM.
 */
import { NIC_COMMAND, NIC_CONTROL, NIC_PORT, type Nic } from '../devices/nic.js';
import { PIC_PORT } from '../devices/pic.js';
import { VmmError } from '../vmm/errors.js';
import type { Vmm } from '../vmm/vmm.js';
import type { Dtm, GatewayLink, GatewayPortOptions, NicLink } from './dtm.js';
import { BROADCAST, ETHERNET_HEADER, formatMac } from './frame.js';

export interface GatewayOptions {
  /** Where frames from a modem channel to `outside` are addressed (default broadcast). */
  readonly upstream?: Uint8Array;
  /** The real NIC's interrupt line (default 3, the machine's wiring). */
  readonly line?: number;
}

export interface GatewayStats {
  readonly received: number;
  readonly transmitted: number;
  /** Frames from outside no DTM or direct VE took. */
  readonly unrouted: number;
}

export class Gateway implements GatewayLink {
  readonly mac: Uint8Array;
  readonly upstream: Uint8Array;
  private readonly nic: Nic;
  private readonly vmm: Vmm;
  /** Physical address of the DMA buffer page in the VMM's RAM. */
  private readonly buffer: number;
  private dtm: Dtm | undefined;
  private readonly direct = new Map<string, { nic: NicLink; off: () => void }>();
  private readonly counts = { received: 0, transmitted: 0, unrouted: 0 };

  constructor(vmm: Vmm, opts: GatewayOptions = {}) {
    this.vmm = vmm;
    this.nic = vmm.machine.nic;
    if (this.nic.mtu > 4096) throw new VmmError('CONFIG_INVALID', 'the gateway buffer is one page');
    this.mac = this.nic.mac;
    this.upstream = new Uint8Array(opts.upstream ?? BROADCAST);
    this.buffer = vmm.allocPage();
    const line = opts.line ?? 3;
    vmm.core.installHandler(line, () => this.drain());
    const pic = vmm.machine.pic;
    const maskPort = pic.ports[0] + PIC_PORT.MASK;
    pic.write(maskPort, pic.read(maskPort) & ~(1 << line));
    this.out(NIC_PORT.CONTROL, NIC_CONTROL.RX_IRQ);
  }

  /** Makes `dtm` the gateway's: frames from outside go to it as the port `outside`. */
  connect(dtm: Dtm, port: GatewayPortOptions = {}): void {
    if (this.dtm !== undefined) throw new VmmError('CONFIG_INVALID', 'the gateway already has its DTM');
    dtm.attachGateway(this, port);
    this.dtm = dtm;
  }

  /**
   * DTM-11: `nic`'s VE exchanges frames with the outside directly. Its transmissions leave the
   * machine as they are; frames from outside addressed to its NIC go straight to it. `nic` may be
   * the VMM's filter 94 around the VE's NIC (stream.ts): the direct path then carries only
   * ciphertext, still without the DTM.
   */
  attachDirect(nic: NicLink): () => void {
    const key = formatMac(nic.mac);
    if (this.direct.has(key)) throw new VmmError('CONFIG_INVALID', `${key} is already direct`);
    const off = nic.on('transmit', (frame) => this.transmit(frame));
    this.direct.set(key, { nic, off });
    return () => {
      off();
      this.direct.delete(key);
    };
  }

  /** Sends an ethernet frame out through the real NIC (ports and DMA, as a driver does). */
  transmit(frame: Uint8Array): void {
    if (frame.length > this.nic.mtu) return;
    this.vmm.machine.phys.ram.set(frame, this.buffer);
    this.out(NIC_PORT.ADDR, this.buffer);
    this.out(NIC_PORT.TX_LEN, frame.length);
    this.out(NIC_PORT.COMMAND, NIC_COMMAND.TRANSMIT);
    this.counts.transmitted++;
  }

  stats(): GatewayStats {
    return { ...this.counts };
  }

  /** The interrupt handler: empties the real NIC's receive queue. */
  private drain(): void {
    const ram = this.vmm.machine.phys.ram;
    for (let n = this.in(NIC_PORT.RX_COUNT); n > 0; n--) {
      const len = this.in(NIC_PORT.RX_LEN);
      this.out(NIC_PORT.ADDR, this.buffer);
      this.out(NIC_PORT.COMMAND, NIC_COMMAND.RECEIVE);
      const frame = ram.slice(this.buffer, this.buffer + len);
      this.counts.received++;
      this.route(frame);
    }
  }

  private route(frame: Uint8Array): void {
    if (frame.length >= ETHERNET_HEADER) {
      const d = this.direct.get(formatMac(frame.subarray(0, 6)));
      if (d !== undefined) {
        d.nic.receive(frame);
        return;
      }
    }
    if (this.dtm === undefined) {
      this.counts.unrouted++;
      return;
    }
    this.dtm.fromOutside(frame);
  }

  private out(reg: number, value: number): void {
    this.vmm.machine.io.write(this.nic.base + reg, value);
  }

  private in(reg: number): number {
    return this.vmm.machine.io.read(this.nic.base + reg);
  }
}
