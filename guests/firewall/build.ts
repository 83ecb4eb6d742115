/**
 * Builds the firewall guest (guests/firewall/firewall.s) with its rules: the 64 KiB boot ROM of a
 * firewall VE. The rules are data the ROM carries, so a firewall's policy is fixed when its image
 * is built and verified (FW-5: a compact OS with strict security).
 */
import { readFileSync } from 'node:fs';
import { assemble } from '@clefnet/emulator';

/** Inbound frames of `type` go to the inside host `to` (e.g. the ANC's protocol agent, step 8). */
export interface InboundRoute {
  readonly type: number;
  readonly to: Uint8Array;
}

export interface FirewallRules {
  /** Ethernet types allowed from inside to outside. */
  readonly outbound: readonly number[];
  /** Ethernet types allowed from outside to inside, sent to {@link inboundTo}. */
  readonly inbound: readonly number[];
  /** The inside address inbound frames are sent to unless a route names another. */
  readonly inboundTo: Uint8Array;
  /** Inbound types with their own inside host; a type here wins over the same type in `inbound`. */
  readonly inboundRoutes?: readonly InboundRoute[];
}

const SOURCE = readFileSync(new URL('./firewall.s', import.meta.url), 'utf8');
const NO_HOST = new Uint8Array(6);

function checkType(t: number): void {
  if (!Number.isInteger(t) || t <= 0 || t > 0xffff) throw new RangeError(`bad ethernet type ${t}`);
}

function checkMac(mac: Uint8Array, what: string): void {
  if (mac.length !== 6) throw new RangeError(`${what} is a 6-byte address`);
}

/** 12-byte rules {type dword, host[6], 0, 0}, ended by a zero dword (firewall.s). */
function list(label: string, rules: readonly InboundRoute[]): string {
  const lines = rules.map((r) => {
    checkType(r.type);
    return `        .dword 0x${r.type.toString(16)}\n        .byte ${[...r.to, 0, 0].join(', ')}`;
  });
  return `        .align 4\n${label}:\n${[...lines, '        .dword 0'].join('\n')}`;
}

/** The firewall's boot ROM for these rules. */
export function buildFirewall(rules: FirewallRules): Uint8Array {
  checkMac(rules.inboundTo, 'inboundTo');
  const routes = rules.inboundRoutes ?? [];
  for (const r of routes) checkMac(r.to, `the route for type 0x${r.type.toString(16)}`);
  const routed = new Set(routes.map((r) => r.type));
  const inbound = [
    ...routes,
    ...rules.inbound.filter((t) => !routed.has(t)).map((type) => ({ type, to: rules.inboundTo })),
  ];
  const data = [
    list(
      'out_types',
      rules.outbound.map((type) => ({ type, to: NO_HOST })),
    ),
    list('in_types', inbound),
  ].join('\n');
  const r = assemble(SOURCE.replace(';@RULES', data), { origin: 0xffff0000, file: 'firewall.s' });
  if (r.bytes.length !== 0x10000) throw new Error(`firewall ROM is ${r.bytes.length} bytes`);
  return r.bytes;
}
