/**
 * A transfer as the DTM keeps it in its spool (DTM-6, 104e): one record per transaction being
 * assembled, held for confirmation, quarantined by the scanner, or waiting for delivery. The
 * encoding is length-prefixed and checked field by field on the way back in: a record that fails
 * is reported and skipped, never trusted.
 *
 * ```
 * "DTR1" ‖ state u8 ‖ medium u8 ‖ owner u16 ‖ txid u32 ‖ created f64 ‖ decided f64
 *        ‖ from str ‖ reason str ‖ targets u16 × str ‖ frames u16 × (u32 length ‖ bytes)
 * str = u16 length ‖ UTF-8
 * ```
 */
import type { Medium } from './frame.js';

export type TransferState = 'assembling' | 'held' | 'ready' | 'quarantined';
const STATES: readonly TransferState[] = ['assembling', 'held', 'ready', 'quarantined'];
const MEDIA: readonly Medium[] = ['ethernet', 'modem'];

export interface TransferRecord {
  readonly state: TransferState;
  /** The sender's medium: how `frames` are framed. */
  readonly medium: Medium;
  /** The DTM (its `id`) that owns the record: the one that will act on it. */
  readonly owner: number;
  /** The transaction id of a multi-frame transaction, 0 for a single frame. */
  readonly txid: number;
  /** When the first frame arrived (injected clock, ms). */
  readonly created: number;
  /** When it was held or quarantined (0 before). */
  readonly decided: number;
  /** The sending port's name (or `outside`). */
  readonly from: string;
  /** Why it is held or quarantined ('' otherwise). */
  readonly reason: string;
  /** Ports still to deliver to. */
  readonly targets: readonly string[];
  /** The frames as the sender sent them. */
  readonly frames: readonly Uint8Array[];
}

const MAGIC = [0x44, 0x54, 0x52, 0x31]; // "DTR1"
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function encodeRecord(r: TransferRecord): Uint8Array {
  const strs = [r.from, r.reason, ...r.targets].map((s) => enc.encode(s));
  let size = 4 + 1 + 1 + 2 + 4 + 8 + 8 + 2 + 2;
  for (const s of strs) size += 2 + s.length;
  for (const f of r.frames) size += 4 + f.length;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = STATES.indexOf(r.state);
  out[5] = MEDIA.indexOf(r.medium);
  v.setUint16(6, r.owner);
  v.setUint32(8, r.txid);
  v.setFloat64(12, r.created);
  v.setFloat64(20, r.decided);
  let at = 28;
  const str = (s: Uint8Array) => {
    v.setUint16(at, s.length);
    out.set(s, at + 2);
    at += 2 + s.length;
  };
  str(strs[0]!);
  str(strs[1]!);
  v.setUint16(at, r.targets.length);
  at += 2;
  for (let i = 0; i < r.targets.length; i++) str(strs[2 + i]!);
  v.setUint16(at, r.frames.length);
  at += 2;
  for (const f of r.frames) {
    v.setUint32(at, f.length);
    out.set(f, at + 4);
    at += 4 + f.length;
  }
  return out;
}

/** The record, or a description of what is wrong with the bytes. */
export function decodeRecord(bytes: Uint8Array): TransferRecord | string {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new RangeError(`truncated at byte ${at}`);
  };
  try {
    need(28);
    for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) return 'not a transfer record';
    const state = STATES[bytes[4]!];
    const medium = MEDIA[bytes[5]!];
    if (state === undefined) return `bad state ${bytes[4]}`;
    if (medium === undefined) return `bad medium ${bytes[5]}`;
    const owner = v.getUint16(6);
    const txid = v.getUint32(8);
    const created = v.getFloat64(12);
    const decided = v.getFloat64(20);
    if (!Number.isFinite(created) || !Number.isFinite(decided)) return 'bad time';
    at = 28;
    const str = () => {
      need(2);
      const n = v.getUint16(at);
      need(2 + n);
      const s = dec.decode(bytes.subarray(at + 2, at + 2 + n));
      at += 2 + n;
      return s;
    };
    const from = str();
    const reason = str();
    need(2);
    const nt = v.getUint16(at);
    at += 2;
    const targets: string[] = [];
    for (let i = 0; i < nt; i++) targets.push(str());
    need(2);
    const nf = v.getUint16(at);
    at += 2;
    const frames: Uint8Array[] = [];
    for (let i = 0; i < nf; i++) {
      need(4);
      const n = v.getUint32(at);
      need(4 + n);
      frames.push(bytes.slice(at + 4, at + 4 + n));
      at += 4 + n;
    }
    if (at !== bytes.length) return `${bytes.length - at} trailing bytes`;
    return { state, medium, owner, txid, created, decided, from, reason, targets, frames };
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) return e.message;
    throw e;
  }
}
