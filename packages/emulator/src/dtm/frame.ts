/**
 * The media the data transfer manager simulates towards virtual environments (DTM-3, DTM-8,
 * CFG-9, CFG-10), and the translation between them. A VE's NIC carries opaque frames; what they
 * mean depends on the medium of the port the DTM gives that VE:
 *
 * - **ethernet** (a LAN, the hub of Fig. 9A): `dst[6] ‖ src[6] ‖ type[2] ‖ payload`, type
 *   big-endian; `ff:ff:ff:ff:ff:ff` is broadcast.
 * - **modem** (a point-to-point link, a channel of Fig. 9B): PPP-like HDLC framing
 *   `0xFF ‖ 0x03 ‖ protocol[2] ‖ payload`, protocol big-endian; no addresses, since the link has
 *   one peer.
 *
 * The two carry the same payloads; the protocol numbers map one to one ({@link PROTOCOLS}), and a
 * type with no modem number cannot cross onto a modem link (the DTM drops it, `untranslatable`).
 *
 * A **transaction** (DTM-7) is one frame, or several frames of type {@link ETHERTYPE_TRANSACTION}
 * whose payload starts with `txid[4] ‖ seq[2] ‖ flags[2]` (big-endian; flags bit 0 LAST): frames
 * 0..n of one (sender, txid), the last with LAST set. A spooling DTM passes it only whole.
 */

export const MAC_BYTES = 6;
export const ETHERNET_HEADER = 14;
export const MODEM_HEADER = 4;
export const TRANSACTION_HEADER = 8;
export const BROADCAST: Readonly<Uint8Array> = new Uint8Array(6).fill(0xff);

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
/** IEEE 802 local experimental ethertype 1: clefnet's DTM transaction fragments. */
export const ETHERTYPE_TRANSACTION = 0x88b5;
/** IEEE 802 local experimental ethertype 2: single-frame datagrams of tests and examples. */
export const ETHERTYPE_DATAGRAM = 0x88b6;
/**
 * IEEE 802 local experimental ethertype 3: a sealed stream packet (stream.ts, CRYPT-11..15): the
 * original type and payload, encrypted and authenticated, behind a clear header.
 */
export const ETHERTYPE_SEALED = 0x88b7;
export const TRANSACTION_LAST = 1;

/** Ethernet type <-> modem (PPP-like) protocol number. */
export const PROTOCOLS: readonly {
  readonly ethertype: number;
  readonly modem: number;
  readonly name: string;
}[] = [
  { ethertype: ETHERTYPE_IPV4, modem: 0x0021, name: 'IPv4' },
  { ethertype: ETHERTYPE_IPV6, modem: 0x0057, name: 'IPv6' },
  { ethertype: ETHERTYPE_TRANSACTION, modem: 0x4a35, name: 'clefnet transaction' },
  { ethertype: ETHERTYPE_DATAGRAM, modem: 0x4a37, name: 'clefnet datagram' },
  { ethertype: ETHERTYPE_SEALED, modem: 0x4a39, name: 'clefnet sealed stream' },
];

const TO_MODEM = new Map(PROTOCOLS.map((p) => [p.ethertype, p.modem]));
const TO_ETHER = new Map(PROTOCOLS.map((p) => [p.modem, p.ethertype]));

export type Medium = 'ethernet' | 'modem';

/** A frame with its medium's framing taken off: what the DTM routes. */
export interface Packet {
  /** Destination address (ethernet only; undefined on a modem link). */
  readonly dst: Uint8Array | undefined;
  /** Source address as the sender wrote it (ethernet only). */
  readonly src: Uint8Array | undefined;
  /** The ethernet type (a modem protocol is mapped to its type). */
  readonly type: number;
  readonly payload: Uint8Array;
}

/** Why a frame cannot be parsed or re-framed. */
export type FrameProblem = 'runt' | 'bad-framing' | 'untranslatable';

/** Takes a frame of `medium` apart; a problem when it is malformed. Views, not copies. */
export function parseFrame(medium: Medium, frame: Uint8Array): Packet | FrameProblem {
  if (medium === 'ethernet') {
    if (frame.length < ETHERNET_HEADER) return 'runt';
    return {
      dst: frame.subarray(0, 6),
      src: frame.subarray(6, 12),
      type: (frame[12]! << 8) | frame[13]!,
      payload: frame.subarray(ETHERNET_HEADER),
    };
  }
  if (frame.length < MODEM_HEADER) return 'runt';
  if (frame[0] !== 0xff || frame[1] !== 0x03) return 'bad-framing';
  const type = TO_ETHER.get((frame[2]! << 8) | frame[3]!);
  if (type === undefined) return 'untranslatable';
  return { dst: undefined, src: undefined, type, payload: frame.subarray(MODEM_HEADER) };
}

/** Frames a packet for `medium` (ethernet needs both addresses); a fresh array. */
export function buildFrame(
  medium: Medium,
  type: number,
  payload: Uint8Array,
  dst?: Uint8Array,
  src?: Uint8Array,
): Uint8Array | FrameProblem {
  if (medium === 'ethernet') {
    if (dst === undefined || src === undefined) throw new TypeError('an ethernet frame needs both addresses');
    const f = new Uint8Array(ETHERNET_HEADER + payload.length);
    f.set(dst, 0);
    f.set(src, 6);
    f[12] = type >>> 8;
    f[13] = type & 0xff;
    f.set(payload, ETHERNET_HEADER);
    return f;
  }
  const proto = TO_MODEM.get(type);
  if (proto === undefined) return 'untranslatable';
  const f = new Uint8Array(MODEM_HEADER + payload.length);
  f[0] = 0xff;
  f[1] = 0x03;
  f[2] = proto >>> 8;
  f[3] = proto & 0xff;
  f.set(payload, MODEM_HEADER);
  return f;
}

export function isBroadcast(mac: Uint8Array): boolean {
  return (mac[0]! & 1) === 1;
}

export function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < MAC_BYTES; i++) if (a[i] !== b[i]) return false;
  return true;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** `02:c1:ef:00:00:07` (the first 6 bytes). */
export function formatMac(mac: Uint8Array): string {
  const h = HEX;
  if (mac.length < MAC_BYTES) return Array.from(mac, (b) => h[b]).join(':');
  return `${h[mac[0]!]}:${h[mac[1]!]}:${h[mac[2]!]}:${h[mac[3]!]}:${h[mac[4]!]}:${h[mac[5]!]}`;
}

/**
 * The address the VM manager gives NIC `nic` (0 or 1) of VE `id`: locally administered, unicast,
 * `02:c1:ef:` then the NIC in bit 7 and the id in the low 23 bits.
 */
export function veMac(id: number, nic = 0): Uint8Array {
  return Uint8Array.of(0x02, 0xc1, 0xef, (nic << 7) | ((id >>> 16) & 0x7f), (id >>> 8) & 0xff, id & 0xff);
}

/** The fragment header of a transaction frame's payload, or undefined when it is too short. */
export function transactionHeader(
  payload: Uint8Array,
): { readonly txid: number; readonly seq: number; readonly last: boolean } | undefined {
  if (payload.length < TRANSACTION_HEADER) return undefined;
  return {
    txid: ((payload[0]! << 24) | (payload[1]! << 16) | (payload[2]! << 8) | payload[3]!) >>> 0,
    seq: (payload[4]! << 8) | payload[5]!,
    last: (payload[7]! & TRANSACTION_LAST) !== 0,
  };
}
