/**
 * Builds nodeos (guests/nodeos/nodeos.s and its .inc files): the 64 KiB boot ROM of an active-network
 * node's "node" VE (docs/nodeos.md). The options are data the ROM carries, written into the source
 * at its `;@OPTIONS@` line, so what a node accepts modules from is fixed when its image is built.
 */
import { readFileSync } from 'node:fs';
import {
  type AsmResult,
  assemble,
  buildFrame,
  ETHERTYPE_TRANSACTION,
  KEY_ADDRESS,
  TRANSACTION_HEADER,
  TRANSACTION_LAST,
} from '@clefnet/emulator';

export interface NodeOsOptions {
  /** The 6-byte address of the host-side agent: the only sender of modules, the receiver of reports. */
  readonly agent: Uint8Array;
  /** Call the key trap at boot (default true). */
  readonly keyTrap?: boolean;
  /** The key trap's address (default KEY_ADDRESS, 0xFFFE0000); it must lie below the ROM. */
  readonly keyAddress?: number;
}

/** Where the sources are; `.include` names are relative to it. */
export const NODEOS_DIR = new URL('./', import.meta.url);

/** The fixed addresses of nodeos (nodeos.s; docs/nodeos.md has the memory map). */
export const NODEOS = {
  /** The counters: {@link NODEOS_COUNTERS} dwords, in that order. */
  counters: 0x2000,
  /** The buffer the key trap fills: Key-VE[64] (wiped after boot), Clef-VE[64], name length, name. */
  keyBuffer: 0x2400,
  /** The module's segment: base and size (its DPL-3 code and data segments). */
  userBase: 0x40000,
  userSize: 0x10000,
  /** The largest module image a transfer may carry (header, body and symbols). */
  imageMax: 0x20000,
  /** Data frames the kernel queues for the module, and the longest one. */
  ringSlots: 32,
  dataMax: 1536,
  /** The selectors of the module's code and data segments (RPL 3). */
  userCode: 0x1b,
  userData: 0x23,
} as const;

/** The counters at {@link NODEOS}.counters, one dword each, in this order. */
export const NODEOS_COUNTERS = [
  'received',
  'queued',
  'dropped',
  'loaded',
  'badImages',
  'foreign',
  'reports',
  'sends',
  'aborted',
  'stray',
  'faults',
  'exits',
] as const;

export type NodeOsCounter = (typeof NODEOS_COUNTERS)[number];

const ROM_ORIGIN = 0xffff0000;
const ROM_BYTES = 0x10000;

const source = (name: string): string => readFileSync(new URL(name, NODEOS_DIR), 'utf8');

/** The assembled ROM with its labels and constants (for tests and traces). */
export function assembleNodeOs(opts: NodeOsOptions): AsmResult {
  const agent = opts.agent;
  if (!(agent instanceof Uint8Array) || agent.length !== 6) throw new RangeError('agent is a 6-byte address');
  const keyAddress = opts.keyAddress ?? KEY_ADDRESS;
  if (!Number.isInteger(keyAddress) || keyAddress < 0 || keyAddress >= ROM_ORIGIN) {
    throw new RangeError(`keyAddress ${keyAddress} is not an address below the ROM`);
  }
  const options = [
    `KEY_TRAP        equ ${opts.keyTrap === false ? 0 : 1}`,
    `KEY_ADDRESS     equ 0x${keyAddress.toString(16)}`,
    '        .align 4',
    `agent_mac:      .byte ${Array.from(agent, (b) => `0x${b.toString(16)}`).join(', ')}`,
  ].join('\n');
  const r = assemble(source('nodeos.s').replace(';@OPTIONS@', options), {
    origin: ROM_ORIGIN,
    include: (path) => source(path),
    file: 'nodeos.s',
  });
  if (r.bytes.length !== ROM_BYTES) throw new Error(`nodeos ROM is ${r.bytes.length} bytes`);
  // The exported layout is the assembly's: a change on one side only fails here.
  const layout: [keyof typeof NODEOS, string, number][] = [
    ['counters', 'COUNTERS', 0],
    ['keyBuffer', 'KEYBUF', 0],
    ['userBase', 'USER_LO', 0],
    ['userSize', 'USER_SIZE', 0],
    ['imageMax', 'ASM_MAX', 0],
    ['ringSlots', 'RING_SLOTS', 0],
    ['dataMax', 'DATA_MAX', 0],
    ['userCode', 'SEL_UCODE', 3],
    ['userData', 'SEL_UDATA', 3],
  ];
  for (const [key, name, rpl] of layout) {
    const v = r.constants.get(name);
    if (v === undefined || (v | rpl) !== NODEOS[key])
      throw new Error(`nodeos.s: ${name} is not NODEOS.${key}`);
  }
  if (r.constants.get('COUNTER_COUNT') !== NODEOS_COUNTERS.length)
    throw new Error('nodeos.s: counters differ');
  return r;
}

/** The nodeos boot ROM (64 KiB, ending at 0xFFFFFFFF) for these options. */
export function buildNodeOs(opts: NodeOsOptions): Uint8Array {
  return assembleNodeOs(opts).bytes;
}

/** Reads the counters from a VE's (or machine's) RAM. */
export function nodeOsCounters(ram: Uint8Array): Record<NodeOsCounter, number> {
  const v = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  const out = {} as Record<NodeOsCounter, number>;
  NODEOS_COUNTERS.forEach((name, i) => {
    out[name] = v.getUint32(NODEOS.counters + 4 * i, true);
  });
  return out;
}

export interface ModuleFramesOptions {
  /** The agent's address: the frames' source. */
  readonly agent: Uint8Array;
  /** The node's NIC address: the frames' destination. */
  readonly node: Uint8Array;
  readonly txid: number;
  /** Image bytes per fragment (default 1024). */
  readonly chunk?: number;
}

/**
 * The frames an agent sends to deliver `image` to a node: one clefnet transaction (type 0x88B5),
 * fragments `txid[4] seq[2] flags[2]` (big-endian, flags bit 0 on the last) then a chunk, seq 0..n.
 */
export function moduleFrames(image: Uint8Array, o: ModuleFramesOptions): Uint8Array[] {
  const chunk = o.chunk ?? 1024;
  if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError('chunk is a positive integer');
  if (!Number.isInteger(o.txid) || o.txid < 0 || o.txid > 0xffffffff) throw new RangeError('txid is a u32');
  const count = Math.max(1, Math.ceil(image.length / chunk));
  if (count > 0x10000) throw new RangeError('too many fragments');
  const frames: Uint8Array[] = [];
  for (let seq = 0; seq < count; seq++) {
    const part = image.subarray(seq * chunk, (seq + 1) * chunk);
    const payload = new Uint8Array(TRANSACTION_HEADER + part.length);
    const v = new DataView(payload.buffer);
    v.setUint32(0, o.txid);
    v.setUint16(4, seq);
    v.setUint16(6, seq === count - 1 ? TRANSACTION_LAST : 0);
    payload.set(part, TRANSACTION_HEADER);
    frames.push(buildFrame('ethernet', ETHERTYPE_TRANSACTION, payload, o.node, o.agent) as Uint8Array);
  }
  return frames;
}
