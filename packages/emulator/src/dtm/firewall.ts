/**
 * The virtual firewall (FW-1..8, claims 24-28, Fig. 10): a firewall VE with two NICs and the DTMs
 * around it, wired so that its inside and its outside never meet except through it (FW-3).
 *
 * | config | inside                                   | outside                                          |
 * |--------|------------------------------------------|--------------------------------------------------|
 * | A      | DTM `inside` (spool 104e): a hub, `fw-in` | DTM `outside` (firewall spool 106a): a hub of    |
 * |        |                                          | `fw-out` and the gateway                          |
 * | B      | one DTM (firewall spool) with `fw-in` on its hub and `fw-out` a channel to the gateway;       |
 * |        | the gateway's port reaches and accepts only `fw-out`, so no inside port can reach outside    |
 * | C      | DTM `inside` (spool 104e): a hub, `fw-in` | a dedicated DTM (spool 106a) with `fw-out` as a   |
 * |        |                                          | channel to the gateway                           |
 *
 * In A and C the separation is structural: the two DTMs are not linked (they do not even share a
 * spool), so no route joins them. In B it is the DTM's policy. Inside, frames to addresses no
 * inside port has go to `fw-in` (the hub's uplink), so the firewall is the inside's only way out. The inside VEs are attached to
 * `inside` by the caller; with `confirmOutbound` (FW-8) every transfer the firewall sends outward
 * waits in the firewall spool for a person's confirmation.
 */
import type { Nic } from '../devices/nic.js';
import type { Core } from '../vmm/core.js';
import { Dtm, type DtmEvent, OUTSIDE, type Scanner } from './dtm.js';
import type { Gateway } from './gateway.js';
import type { Spool } from './spool.js';

export type FirewallConfig = 'A' | 'B' | 'C';

export interface VirtualFirewallOptions {
  readonly config: FirewallConfig;
  readonly core: Core;
  readonly clock: () => number;
  /** The firewall VE's inside and outside NICs. */
  readonly firewall: { readonly inside: Nic; readonly outside: Nic };
  readonly gateway: Gateway;
  /** The DTM spool area (104e) and the firewall spool (106a). */
  readonly spools: { readonly dtm: Spool; readonly firewall: Spool };
  /** FW-8: transfers from the firewall to the outside wait for confirmation. */
  readonly confirmOutbound?: boolean;
  readonly scanner?: Scanner;
  readonly onEvent?: (e: DtmEvent) => void;
}

export interface VirtualFirewall {
  /** Where the inside VEs are attached. */
  readonly inside: Dtm;
  /** The DTM between the firewall and the gateway (the same as `inside` in configuration B). */
  readonly outside: Dtm;
  /** The DTMs, for the scheduler's turns. */
  readonly dtms: readonly Dtm[];
}

export const FW_IN = 'fw-in';
export const FW_OUT = 'fw-out';

export function virtualFirewall(o: VirtualFirewallOptions): VirtualFirewall {
  const common = {
    core: o.core,
    clock: o.clock,
    ...(o.scanner === undefined ? {} : { scanner: o.scanner }),
    ...(o.onEvent === undefined ? {} : { onEvent: o.onEvent }),
  };
  const confirm = o.confirmOutbound === true ? ('outside' as const) : ('none' as const);
  if (o.config === 'B') {
    const dtm = new Dtm({ name: 'firewall', id: 1, spool: o.spools.firewall, uplink: FW_IN, ...common });
    dtm.attach({ name: FW_IN, nic: o.firewall.inside });
    dtm.attach({
      name: FW_OUT,
      nic: o.firewall.outside,
      channel: OUTSIDE,
      accept: [OUTSIDE],
      reach: [OUTSIDE],
      confirm,
    });
    o.gateway.connect(dtm, { reach: [FW_OUT], accept: [FW_OUT] });
    return { inside: dtm, outside: dtm, dtms: [dtm] };
  }
  const inside = new Dtm({ name: 'inside', id: 1, spool: o.spools.dtm, uplink: FW_IN, ...common });
  inside.attach({ name: FW_IN, nic: o.firewall.inside });
  const outside = new Dtm({ name: 'outside', id: 2, spool: o.spools.firewall, ...common });
  outside.attach({
    name: FW_OUT,
    nic: o.firewall.outside,
    ...(o.config === 'C' ? { channel: OUTSIDE } : {}),
    confirm,
  });
  o.gateway.connect(outside);
  return { inside, outside, dtms: [inside, outside] };
}
