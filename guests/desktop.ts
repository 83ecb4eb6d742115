/**
 * The four-machine desktop of [0061] (CFG-1..5), shipped as a configuration: on one VMM, four VEs
 * and the data paths between them.
 *
 * | VE       | what it may do (CFG-2..5)                                                                |
 * |----------|-------------------------------------------------------------------------------------------|
 * | open     | reach the outside through the firewall; receives what comes in; cannot reach `high`      |
 * | low      | send mail out, each transfer held until a person confirms it (DTM-9)                      |
 * | high     | confidential: no path to the firewall or the outside, not reachable from outside or `open` |
 * | firewall | the firewall OS (guests/firewall) with two NICs, between the inside DTM and the gateway  |
 *
 * The firewall configuration (Fig. 10 A, B or C) is a parameter; the guests of open, low and high
 * are the caller's (any ROM; their NICs are what matters here).
 */
import {
  type DtmEvent,
  ETHERTYPE_DATAGRAM,
  ETHERTYPE_IPV4,
  type FirewallConfig,
  FW_IN,
  Gateway,
  memoryNvramBackend,
  memorySpool,
  type Spool,
  type VirtualEnvironment,
  type VirtualFirewall,
  Vmm,
  veMac,
  virtualFirewall,
} from '@clefnet/emulator';
import { buildFirewall } from './firewall/build.js';

export interface DesktopOptions {
  readonly config: FirewallConfig;
  readonly roms: { readonly open: Uint8Array; readonly low: Uint8Array; readonly high: Uint8Array };
  readonly clock: () => number;
  /** The DTM spool area (104e) and the firewall spool (106a); in memory by default. */
  readonly spools?: { readonly dtm: Spool; readonly firewall: Spool };
  readonly onEvent?: (e: DtmEvent) => void;
  /** FW-8: everything the firewall sends out waits in the firewall spool for confirmation. */
  readonly confirmOutbound?: boolean;
}

export interface Desktop {
  readonly vmm: Vmm;
  readonly gateway: Gateway;
  readonly ves: {
    readonly open: VirtualEnvironment;
    readonly low: VirtualEnvironment;
    readonly high: VirtualEnvironment;
    readonly firewall: VirtualEnvironment;
  };
  readonly firewall: VirtualFirewall;
}

/** The mail and web traffic the firewall lets through: clefnet datagrams and IPv4. */
export const DESKTOP_OUTBOUND = [ETHERTYPE_DATAGRAM, ETHERTYPE_IPV4] as const;
export const DESKTOP_INBOUND = [ETHERTYPE_DATAGRAM] as const;

export function desktop(o: DesktopOptions): Desktop {
  const vmm = new Vmm({ clock: o.clock, ramBytes: 40 << 20 });
  const gateway = new Gateway(vmm);
  const ve = (name: string, rom: Uint8Array, nics: 1 | 2 = 1) =>
    vmm.createVe({ name, memoryBytes: 1 << 20, rom, nvram: memoryNvramBackend(), nics });
  const open = ve('open', o.roms.open);
  const low = ve('low', o.roms.low);
  const high = ve('high', o.roms.high);
  // Inbound traffic is for `open` (VE 1): the firewall's rules carry its address.
  const firewallVe = ve(
    'firewall',
    buildFirewall({ outbound: DESKTOP_OUTBOUND, inbound: DESKTOP_INBOUND, inboundTo: veMac(open.id) }),
    2,
  );
  const fw = virtualFirewall({
    config: o.config,
    core: vmm.core,
    clock: o.clock,
    firewall: { inside: firewallVe.vm.nics[0]!, outside: firewallVe.vm.nics[1]! },
    gateway,
    spools: o.spools ?? { dtm: memorySpool(), firewall: memorySpool() },
    ...(o.confirmOutbound === undefined ? {} : { confirmOutbound: o.confirmOutbound }),
    ...(o.onEvent === undefined ? {} : { onEvent: o.onEvent }),
  });
  fw.inside.attach({ name: 'open', nic: open.vm.nic, reach: [FW_IN], accept: [FW_IN] });
  fw.inside.attach({
    name: 'low',
    nic: low.vm.nic,
    reach: [FW_IN, 'high'],
    accept: ['high'],
    confirm: 'all',
  });
  fw.inside.attach({ name: 'high', nic: high.vm.nic, reach: ['low'], accept: ['low'] });
  for (const d of fw.dtms) vmm.addService(() => d.service());
  return { vmm, gateway, ves: { open, low, high, firewall: firewallVe }, firewall: fw };
}
