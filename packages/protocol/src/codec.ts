/**
 * TB-14 wire encoding: a record is a sequence of fields, each a 4-byte big-endian length followed by
 * that many bytes. The encoding has exactly one form for each value, so encode(decode(b)) == b for
 * every accepted b and the same value always gives the same bytes.
 *
 * The reader is strict: every field has a maximum length checked before it is sliced, a record
 * must be consumed exactly, and text must be well-formed UTF-8. Every failure is a ProtocolError.
 */
import { ProtocolError } from './errors.js';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

export function fromUtf8(bytes: Uint8Array, what = 'text'): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new ProtocolError('ENCODING_BAD_UTF8', `${what} is not well-formed UTF-8`, { field: what });
  }
}

/** Encodes a record of fields (TB-14). */
export function encodeFields(fields: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const f of fields) total += 4 + f.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const f of fields) {
    const n = f.length;
    out[at] = n >>> 24;
    out[at + 1] = (n >>> 16) & 0xff;
    out[at + 2] = (n >>> 8) & 0xff;
    out[at + 3] = n & 0xff;
    out.set(f, at + 4);
    at += 4 + n;
  }
  return out;
}

/**
 * UTF-8 of short strings that recur on the wire (Names, tags), shared read-only: callers only
 * copy it into a record. Bounded: cleared when full.
 */
const textCache = new Map<string, Uint8Array>();

export function utf8Shared(text: string): Uint8Array {
  let b = textCache.get(text);
  if (b === undefined) {
    b = utf8Encoder.encode(text);
    if (text.length <= 253) {
      if (textCache.size >= 4096) textCache.clear();
      textCache.set(text, b);
    }
  }
  return b;
}

/** A 64-bit unsigned big-endian integer field (timestamps in ms). Values above 2^53 - 1 are refused. */
export function u64(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolError('ENCODING_BAD_INTEGER', `not an unsigned safe integer: ${value}`);
  }
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(value / 0x1_0000_0000), false);
  view.setUint32(4, value >>> 0, false);
  return out;
}

/** Reads one record field by field. */
export class FieldReader {
  private at = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what = 'record',
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.at === this.bytes.length;
  }

  /** The next field, at most `max` bytes long. The result is a view, not a copy. */
  bytesField(max: number, field: string): Uint8Array {
    if (this.at + 4 > this.bytes.length) {
      throw new ProtocolError('ENCODING_TRUNCATED', `${this.what}: missing field ${field}`, { field });
    }
    const len = this.view.getUint32(this.at, false);
    if (len > max) {
      throw new ProtocolError(
        'ENCODING_TOO_LARGE',
        `${this.what}: field ${field} is ${len} bytes, limit ${max}`,
        {
          field,
          length: len,
          limit: max,
        },
      );
    }
    const start = this.at + 4;
    if (start + len > this.bytes.length) this.truncated(field);
    this.at = start + len;
    return this.bytes.subarray(start, start + len);
  }

  /** A field of exactly `length` bytes; any other length, shorter or longer, is ENCODING_BAD_VALUE. */
  fixed(length: number, field: string): Uint8Array {
    if (this.at + 4 <= this.bytes.length) {
      const len = this.view.getUint32(this.at, false);
      if (len !== length) {
        throw new ProtocolError(
          'ENCODING_BAD_VALUE',
          `${this.what}: field ${field} must be ${length} bytes`,
          {
            field,
            length: len,
          },
        );
      }
    }
    return this.bytesField(length, field);
  }

  text(max: number, field: string): string {
    return fromUtf8(this.bytesField(max, field), field);
  }

  u64(field: string): number {
    const b = this.fixed(8, field);
    const v = new DataView(b.buffer, b.byteOffset, 8);
    const hi = v.getUint32(0, false);
    if (hi > 0x1f_ffff) {
      throw new ProtocolError('ENCODING_BAD_INTEGER', `${this.what}: field ${field} exceeds 2^53 - 1`, {
        field,
      });
    }
    return hi * 0x1_0000_0000 + v.getUint32(4, false);
  }

  /** Asserts the record was consumed exactly. */
  end(): void {
    if (this.at !== this.bytes.length) {
      throw new ProtocolError(
        'ENCODING_TRAILING',
        `${this.what}: ${this.bytes.length - this.at} bytes after the last field`,
      );
    }
  }

  private truncated(field?: string): never {
    throw new ProtocolError(
      'ENCODING_TRUNCATED',
      `${this.what}: a field runs past the end`,
      field ? { field } : {},
    );
  }
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string, what = 'hex'): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) {
    throw new ProtocolError('ENCODING_BAD_VALUE', `${what} is not an even-length hex string`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
