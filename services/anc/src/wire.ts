/**
 * How protocol frames and modules travel inside the ANC: as clefnet transactions (docs/dtm.md),
 * ethernet frames of type 0x88B5 whose payload begins `txid[4] seq[2] flags[2]` (big-endian, flags
 * bit 0 = last), seq 0..n. The bytes of one transaction are one protocol frame (TB-15) between the
 * network and the agent, or one CLFX module image from the agent to a node VE.
 *
 * Addresses of the real environment's ends (locally administered, unicast, outside the VM manager's
 * `02:c1:ef` VE range):
 * - {@link AGENT_MAC}: the ANC's protocol agent on the inside DTM (step 8's "authorised VE" side);
 * - {@link NET_MAC}: the network beyond gateway 22, as the source of what comes in and the
 *   destination of what goes out.
 */
import {
  ETHERNET_HEADER,
  ETHERTYPE_TRANSACTION,
  TRANSACTION_HEADER,
  TRANSACTION_LAST,
} from '@clefnet/emulator';

export const AGENT_MAC: Readonly<Uint8Array> = Uint8Array.of(0x02, 0xc1, 0xee, 0x00, 0x00, 0x01);
export const NET_MAC: Readonly<Uint8Array> = Uint8Array.of(0x02, 0xc1, 0xed, 0x00, 0x00, 0x01);
/** The largest frame a NIC carries (the machine's default MTU). */
export const FRAME_BYTES = 1514;
/** Bytes of a transaction's content per frame. */
export const CHUNK_BYTES = FRAME_BYTES - ETHERNET_HEADER - TRANSACTION_HEADER;
/** seq is 16 bits. */
const MAX_FRAGMENTS = 0x10000;

/** The frames of one transaction carrying `content` from `src` to `dst`. */
export function fragment(content: Uint8Array, dst: Uint8Array, src: Uint8Array, txid: number): Uint8Array[] {
  const count = Math.max(1, Math.ceil(content.length / CHUNK_BYTES));
  if (count > MAX_FRAGMENTS) throw new RangeError(`a transaction of ${content.length} bytes is too large`);
  const frames: Uint8Array[] = [];
  for (let seq = 0; seq < count; seq++) {
    const chunk = content.subarray(seq * CHUNK_BYTES, (seq + 1) * CHUNK_BYTES);
    const f = new Uint8Array(ETHERNET_HEADER + TRANSACTION_HEADER + chunk.length);
    f.set(dst.subarray(0, 6), 0);
    f.set(src.subarray(0, 6), 6);
    f[12] = ETHERTYPE_TRANSACTION >>> 8;
    f[13] = ETHERTYPE_TRANSACTION & 0xff;
    const v = new DataView(f.buffer);
    v.setUint32(14, txid >>> 0);
    v.setUint16(18, seq);
    v.setUint16(20, seq === count - 1 ? TRANSACTION_LAST : 0);
    f.set(chunk, ETHERNET_HEADER + TRANSACTION_HEADER);
    frames.push(f);
  }
  return frames;
}

interface Partial {
  readonly txid: number;
  next: number;
  readonly chunks: Uint8Array[];
  bytes: number;
  readonly started: number;
}

/** `content` when a transaction is complete; `dropped` says what was given up (both may be set). */
export interface Reassembled {
  readonly content?: Uint8Array;
  readonly dropped?: string;
}

/**
 * Puts transactions back together, one at a time per sender (a sender's fragments arrive in order:
 * the DTM and the firewall keep order). A fragment that does not continue its sender's transaction
 * drops that transaction; an assembly over `maxBytes` is dropped; {@link expire} drops the ones
 * older than a deadline.
 */
export class Reassembler {
  private readonly partial = new Map<string, Partial>();

  constructor(
    private readonly maxBytes: number,
    private readonly clock: () => number,
  ) {}

  /** Open assemblies. */
  get open(): number {
    return this.partial.size;
  }

  /** One transaction frame's payload from `sender` (its source address, as text). */
  push(sender: string, payload: Uint8Array): Reassembled {
    if (payload.length < TRANSACTION_HEADER) return { dropped: 'runt fragment' };
    const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const txid = v.getUint32(0);
    const seq = v.getUint16(4);
    const last = (v.getUint16(6) & TRANSACTION_LAST) !== 0;
    const chunk = payload.subarray(TRANSACTION_HEADER);
    let p = this.partial.get(sender);
    let dropped: string | undefined;
    if (seq === 0) {
      if (p !== undefined) dropped = `transaction ${p.txid} left unfinished`;
      p = { txid, next: 0, chunks: [], bytes: 0, started: this.clock() };
      this.partial.set(sender, p);
    } else if (p === undefined || p.txid !== txid || p.next !== seq) {
      if (p !== undefined) this.partial.delete(sender);
      return { dropped: `fragment ${seq} of transaction ${txid} out of order` };
    }
    p.bytes += chunk.length;
    if (p.bytes > this.maxBytes) {
      this.partial.delete(sender);
      return { dropped: `transaction ${txid} over ${this.maxBytes} bytes` };
    }
    p.chunks.push(chunk.slice());
    p.next++;
    if (!last) return dropped === undefined ? {} : { dropped };
    this.partial.delete(sender);
    const content = new Uint8Array(p.bytes);
    let at = 0;
    for (const c of p.chunks) {
      content.set(c, at);
      at += c.length;
    }
    return dropped === undefined ? { content } : { content, dropped };
  }

  /** Drops assemblies started before `before`; returns how many. */
  expire(before: number): number {
    let n = 0;
    for (const [k, p] of this.partial) {
      if (p.started < before) {
        this.partial.delete(k);
        n++;
      }
    }
    return n;
  }
}
