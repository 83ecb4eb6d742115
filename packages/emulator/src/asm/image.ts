/**
 * CLFX: the image format of boot ROMs and loadable modules. A 32-byte header, the body (loaded at
 * `load`), then an optional symbol table. Integers are little-endian.
 *
 * | offset | size | field                                                          |
 * |--------|------|----------------------------------------------------------------|
 * | 0      | 4    | magic "CLFX"                                                   |
 * | 4      | 2    | version (1)                                                    |
 * | 6      | 2    | flags (0; others reserved)                                     |
 * | 8      | 4    | load address of the body                                       |
 * | 12     | 4    | entry point (load <= entry < load + body length)               |
 * | 16     | 4    | body length                                                    |
 * | 20     | 4    | symbol table length in bytes (0: none)                         |
 * | 24     | 4    | CRC-32 of everything after the header (body and symbols)       |
 * | 28     | 4    | CRC-32 of header bytes 0..27                                   |
 *
 * Symbol table: u32 count, then per symbol u32 value, u8 name length, UTF-8 name. The checksum is
 * CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320; src/crc32.ts): it detects damage, it does
 * not authenticate (signing modules is the protocol package's envelope's job).
 */
import { ClefnetError, type ErrorCode } from '@clefnet/protocol';
import { crc32 } from '../crc32.js';

export const IMAGE_MAGIC = 'CLFX';
export const IMAGE_VERSION = 1;
export const IMAGE_HEADER_BYTES = 32;

export interface Image {
  readonly load: number;
  readonly entry: number;
  readonly bytes: Uint8Array;
  /** Names and addresses, e.g. the assembler's labels (for traces and debuggers). */
  readonly symbols?: ReadonlyMap<string, number>;
}

/** A damaged or malformed image (decode) or bad fields (encode); `reason` names the check. */
export class ImageError extends ClefnetError {
  constructor(
    code: ErrorCode,
    readonly reason: string,
    message: string,
  ) {
    super(code, `bad image: ${message}`, { reason });
    this.name = 'ImageError';
  }
}

const hexOf = (v: number) => (Number.isInteger(v) && v >= 0 ? `0x${v.toString(16)}` : String(v));
const isU32 = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const utf8 = new TextEncoder();

function checkFields(load: number, entry: number, length: number, code: ErrorCode): void {
  if (!isU32(load)) throw new ImageError(code, 'load', `load address ${hexOf(load)} is not a 32-bit address`);
  if (load + length > 2 ** 32)
    throw new ImageError(code, 'load', 'the body runs past the end of the address space');
  if (!isU32(entry) || entry < load || entry >= load + length) {
    const last = length === 0 ? 'empty' : `0x${load.toString(16)}..0x${(load + length - 1).toString(16)}`;
    throw new ImageError(code, 'entry', `entry ${hexOf(entry)} is outside the body (${last})`);
  }
}

export function encodeImage(image: Image): Uint8Array {
  const { load, entry, bytes } = image;
  checkFields(load, entry, bytes.length, 'CONFIG_INVALID');
  const syms = [...(image.symbols ?? [])].map(([name, value]) => {
    const n = utf8.encode(name);
    if (n.length === 0 || n.length > 255)
      throw new ImageError('CONFIG_INVALID', 'symbols', `symbol name '${name}' is not 1..255 bytes`);
    if (!isU32(value))
      throw new ImageError('CONFIG_INVALID', 'symbols', `symbol '${name}' = ${value} is not a 32-bit value`);
    return { n, value };
  });
  const symLength = syms.length === 0 ? 0 : 4 + syms.reduce((s, x) => s + 5 + x.n.length, 0);
  const out = new Uint8Array(IMAGE_HEADER_BYTES + bytes.length + symLength);
  const v = new DataView(out.buffer);
  out.set(utf8.encode(IMAGE_MAGIC), 0);
  v.setUint16(4, IMAGE_VERSION, true);
  v.setUint32(8, load, true);
  v.setUint32(12, entry, true);
  v.setUint32(16, bytes.length, true);
  v.setUint32(20, symLength, true);
  out.set(bytes, IMAGE_HEADER_BYTES);
  if (syms.length > 0) {
    let at = IMAGE_HEADER_BYTES + bytes.length;
    v.setUint32(at, syms.length, true);
    at += 4;
    for (const s of syms) {
      v.setUint32(at, s.value, true);
      out[at + 4] = s.n.length;
      out.set(s.n, at + 5);
      at += 5 + s.n.length;
    }
  }
  v.setUint32(24, crc32(out.subarray(IMAGE_HEADER_BYTES)), true);
  v.setUint32(28, crc32(out.subarray(0, 28)), true);
  return out;
}

export interface DecodedImage {
  readonly load: number;
  readonly entry: number;
  /** A copy of the body. */
  readonly bytes: Uint8Array;
  readonly symbols: Map<string, number>;
}

export function decodeImage(data: Uint8Array): DecodedImage {
  if (data.length < IMAGE_HEADER_BYTES) {
    throw new ImageError(
      'ENCODING_TRUNCATED',
      'truncated',
      `${data.length} bytes is shorter than the header`,
    );
  }
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (new TextDecoder().decode(data.subarray(0, 4)) !== IMAGE_MAGIC) {
    throw new ImageError('ENCODING_BAD_VALUE', 'magic', 'the magic is not "CLFX"');
  }
  if (v.getUint32(28, true) !== crc32(data.subarray(0, 28))) {
    throw new ImageError('ENCODING_BAD_VALUE', 'header-checksum', 'the header checksum does not match');
  }
  const version = v.getUint16(4, true);
  if (version !== IMAGE_VERSION)
    throw new ImageError('ENCODING_BAD_VALUE', 'version', `version ${version} is not 1`);
  const flags = v.getUint16(6, true);
  if (flags !== 0)
    throw new ImageError('ENCODING_BAD_VALUE', 'flags', `reserved flags 0x${flags.toString(16)} are set`);
  const load = v.getUint32(8, true);
  const entry = v.getUint32(12, true);
  const length = v.getUint32(16, true);
  const symLength = v.getUint32(20, true);
  const total = IMAGE_HEADER_BYTES + length + symLength;
  if (data.length < total) {
    throw new ImageError(
      'ENCODING_TRUNCATED',
      'truncated',
      `the header declares ${total} bytes, the image has ${data.length}`,
    );
  }
  if (data.length > total) {
    throw new ImageError(
      'ENCODING_TRAILING',
      'trailing',
      `${data.length - total} bytes follow the declared end`,
    );
  }
  if (v.getUint32(24, true) !== crc32(data.subarray(IMAGE_HEADER_BYTES))) {
    throw new ImageError('ENCODING_BAD_VALUE', 'checksum', 'the body checksum does not match');
  }
  checkFields(load, entry, length, 'ENCODING_BAD_VALUE');
  return {
    load,
    entry,
    bytes: data.slice(IMAGE_HEADER_BYTES, IMAGE_HEADER_BYTES + length),
    symbols: readSymbols(data.subarray(IMAGE_HEADER_BYTES + length)),
  };
}

function readSymbols(t: Uint8Array): Map<string, number> {
  const out = new Map<string, number>();
  if (t.length === 0) return out;
  const bad = (why: string) => new ImageError('ENCODING_BAD_VALUE', 'symbols', `symbol table: ${why}`);
  const v = new DataView(t.buffer, t.byteOffset, t.byteLength);
  if (t.length < 4) throw bad('shorter than its count');
  const count = v.getUint32(0, true);
  const names = new TextDecoder('utf-8', { fatal: true });
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 5 > t.length) throw bad(`symbol ${i} runs past the end`);
    const value = v.getUint32(at, true);
    const len = t[at + 4]!;
    if (len === 0 || at + 5 + len > t.length) throw bad(`symbol ${i} has a bad name length`);
    let name: string;
    try {
      name = names.decode(t.subarray(at + 5, at + 5 + len));
    } catch {
      throw bad(`symbol ${i} is not UTF-8`);
    }
    if (out.has(name)) throw bad(`symbol '${name}' appears twice`);
    out.set(name, value);
    at += 5 + len;
  }
  if (at !== t.length) throw bad(`${t.length - at} bytes follow the last symbol`);
  return out;
}
