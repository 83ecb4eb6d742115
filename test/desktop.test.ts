/**
 * The four-machine desktop of [0061] (guests/desktop.ts) under each firewall configuration of
 * Fig. 10: real frames from guest code, through the DTMs, the firewall guest and gateway 22.
 */

import {
  BROADCAST,
  type DtmEvent,
  ETHERTYPE_DATAGRAM,
  type VirtualEnvironment,
  veMac,
} from '@clefnet/emulator';
import { describe, expect, it } from 'vitest';
import { desktop } from '../guests/desktop.js';
import { ether, senderRom } from '../packages/emulator/test/dtm/net.js';

const FAR = Uint8Array.of(0x02, 0x99, 0, 0, 0, 1);
const T0 = Date.UTC(2026, 10, 27);
// VE ids in creation order: open 1, low 2, high 3, firewall 4.
const OPEN = veMac(1);
const LOW = veMac(2);
const HIGH = veMac(3);
const FW_IN_MAC = veMac(4, 0);
const FW_OUT_MAC = veMac(4, 1);

/** Takes every frame queued on a VE's NIC, as its driver would. */
function drain(ve: VirtualEnvironment): Uint8Array[] {
  const nic = ve.vm.nic;
  const out: Uint8Array[] = [];
  while (nic.queued > 0) {
    const len = nic.read(0x302);
    nic.write(0x304, 0x80000);
    nic.write(0x306, 1);
    out.push(ve.vm.phys.ram.slice(0x80000, 0x80000 + len));
  }
  return out;
}

function setup(config: 'A' | 'B' | 'C', confirmOutbound = false) {
  const events: DtmEvent[] = [];
  const d = desktop({
    config,
    confirmOutbound,
    clock: () => T0,
    onEvent: (e) => events.push(e),
    roms: {
      open: senderRom([
        ether(FAR, OPEN, ETHERTYPE_DATAGRAM, 'open: hello world'),
        ether(HIGH, OPEN, ETHERTYPE_DATAGRAM, 'open: to high'),
        ether(FAR, OPEN, 0x1234, 'open: a type the firewall refuses'),
      ]),
      low: senderRom([ether(FAR, LOW, ETHERTYPE_DATAGRAM, 'low: mail to a friend')]),
      high: senderRom([
        ether(FAR, HIGH, ETHERTYPE_DATAGRAM, 'high: secret out'),
        ether(FW_IN_MAC, HIGH, ETHERTYPE_DATAGRAM, 'high: to the firewall'),
        ether(OPEN, HIGH, ETHERTYPE_DATAGRAM, 'high: to open'),
        ether(BROADCAST, HIGH, ETHERTYPE_DATAGRAM, 'high: to all'),
      ]),
    },
  });
  const wire: Uint8Array[] = [];
  d.vmm.machine.nic.on('transmit', (f) => wire.push(f));
  const runAll = () => {
    for (let i = 0; i < 3; i++) for (const ve of d.vmm.list()) d.vmm.run(ve.id, 100_000);
  };
  return { ...d, events, wire, runAll };
}

describe.each(['A', 'B', 'C'] as const)('the four-machine desktop, firewall configuration %s', (config) => {
  it('high cannot reach outside at all; open cannot reach high; low mails only after confirmation', () => {
    const d = setup(config);
    d.runAll();
    const fwStats = () => {
      const v = new DataView(d.ves.firewall.vm.phys.ram.buffer, d.ves.firewall.vm.phys.ram.byteOffset);
      return [0, 4, 8].map((o) => v.getUint32(0x3000 + o, true));
    };
    expect(d.ves.firewall.vm.console.transcript()).toBe('firewall: up\n');
    // Only open's hello left the machine, from the firewall's outside address.
    expect(d.wire).toEqual([ether(FAR, FW_OUT_MAC, ETHERTYPE_DATAGRAM, 'open: hello world')]);
    // The firewall forwarded one frame out and dropped open's refused type.
    expect(fwStats()).toEqual([1, 0, 1]);
    // Nothing reached high; high reached nobody.
    expect(drain(d.ves.high)).toEqual([]);
    expect(drain(d.ves.open)).toEqual([]);
    const refusals = d.events
      .filter((e) => e.action === 'dropped')
      .map((e) => `${e.from} -> ${e.to}: ${e.reason}`);
    expect(refusals).toEqual([
      'open -> high: open may not reach high',
      'high -> fw-in: high may not reach fw-in',
      'high -> fw-in: high may not reach fw-in',
      'high -> open: high may not reach open',
      'high -> fw-in: high may not reach fw-in',
      'high -> open: high may not reach open',
    ]);
    // high's broadcast reaches the one VE it may talk to.
    expect(drain(d.ves.low)).toEqual([ether(BROADCAST, HIGH, ETHERTYPE_DATAGRAM, 'high: to all')]);
    // low's mail waits in the DTM spool until a person confirms it.
    const held = d.firewall.inside.transfers('held');
    expect(held.map((h) => [h.from, h.to])).toEqual([['low', ['fw-in']]]);
    d.firewall.inside.approve(held[0]!.id);
    d.runAll();
    expect(d.wire).toEqual([
      ether(FAR, FW_OUT_MAC, ETHERTYPE_DATAGRAM, 'open: hello world'),
      ether(FAR, FW_OUT_MAC, ETHERTYPE_DATAGRAM, 'low: mail to a friend'),
    ]);
    expect(fwStats()).toEqual([2, 0, 1]);
  });

  it('inbound traffic reaches only open, through the firewall; outsiders cannot address inside VEs', () => {
    const d = setup(config);
    d.runAll();
    const nic = d.vmm.machine.nic;
    nic.receive(ether(FW_OUT_MAC, FAR, ETHERTYPE_DATAGRAM, 'reply for open'));
    nic.receive(ether(FW_OUT_MAC, FAR, 0x4444, 'a refused type'));
    nic.receive(ether(HIGH, FAR, ETHERTYPE_DATAGRAM, 'straight to high'));
    nic.receive(ether(LOW, FAR, ETHERTYPE_DATAGRAM, 'straight to low'));
    d.runAll();
    expect(drain(d.ves.open)).toEqual([ether(OPEN, FW_IN_MAC, ETHERTYPE_DATAGRAM, 'reply for open')]);
    expect(drain(d.ves.high)).toEqual([]);
    // low has only high's broadcast of the first run: nothing from outside.
    expect(drain(d.ves.low)).toEqual([ether(BROADCAST, HIGH, ETHERTYPE_DATAGRAM, 'high: to all')]);
  });

  it('FW-8: with confirmOutbound, what the firewall sends out waits in the firewall spool until approved', () => {
    const d = setup(config, true);
    d.runAll();
    expect(d.wire).toEqual([]);
    // (In configuration B the one DTM also holds low's mail: only the firewall's own is looked at.)
    const held = d.firewall.outside.transfers('held').filter((h) => h.from === 'fw-out');
    expect(held.map((h) => [h.from, h.to])).toEqual([['fw-out', ['outside']]]);
    d.firewall.outside.approve(held[0]!.id);
    expect(d.wire).toEqual([ether(FAR, FW_OUT_MAC, ETHERTYPE_DATAGRAM, 'open: hello world')]);
  });
});
