/**
 * Builds the firewall guest (guests/firewall/firewall.s) with its rules: the 64 KiB boot ROM of a
 * firewall VE. The rules are data the ROM carries, so a firewall's policy is fixed when its image
 * is built and verified (FW-5: a compact OS with strict security).
 */
import { readFileSync } from 'node:fs';
import { assemble } from '@clefnet/emulator';

export interface FirewallRules {
  /** Ethernet types allowed from inside to outside. */
  readonly outbound: readonly number[];
  /** Ethernet types allowed from outside to inside. */
  readonly inbound: readonly number[];
  /** The inside address inbound frames are sent to. */
  readonly inboundTo: Uint8Array;
}

const SOURCE = readFileSync(new URL('./firewall.s', import.meta.url), 'utf8');

function list(label: string, types: readonly number[]): string {
  for (const t of types) {
    if (!Number.isInteger(t) || t <= 0 || t > 0xffff) throw new RangeError(`bad ethernet type ${t}`);
  }
  return `        .align 4\n${label}:\n${[...types, 0].map((t) => `        .dword 0x${t.toString(16)}`).join('\n')}`;
}

/** The firewall's boot ROM for these rules. */
export function buildFirewall(rules: FirewallRules): Uint8Array {
  if (rules.inboundTo.length !== 6) throw new RangeError('inboundTo is a 6-byte address');
  const data = [
    list('out_types', rules.outbound),
    list('in_types', rules.inbound),
    `inbound_to:\n        .byte ${Array.from(rules.inboundTo).join(', ')}`,
  ].join('\n');
  const r = assemble(SOURCE.replace(';@RULES', data), { origin: 0xffff0000, file: 'firewall.s' });
  if (r.bytes.length !== 0x10000) throw new Error(`firewall ROM is ${r.bytes.length} bytes`);
  return r.bytes;
}
