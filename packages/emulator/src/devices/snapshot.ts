/**
 * The byte format of device snapshots (Snapshotting in bus.ts): a 4-character ASCII tag naming the
 * device kind and format version (e.g. `PIC1`), then fields in a fixed order, little-endian. A
 * reader refuses another device's tag, a short input and trailing bytes, so restoring the wrong
 * bytes is a host error (DeviceError), never a half-restored device.
 */
import { DeviceError } from './errors.js';

export class SnapshotWriter {
  private buf = new Uint8Array(64);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  constructor(tag: string) {
    for (let i = 0; i < 4; i++) this.u8(tag.charCodeAt(i) & 0xff);
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.room(1);
    this.view.setUint8(this.len, v);
    this.len += 1;
    return this;
  }

  u32(v: number): this {
    this.room(4);
    this.view.setUint32(this.len, v >>> 0, true);
    this.len += 4;
    return this;
  }

  /** A non-negative integer up to 2^53 - 1 (counters, times). */
  u53(v: number): this {
    this.room(8);
    this.view.setBigUint64(this.len, BigInt(v), true);
    this.len += 8;
    return this;
  }

  /** Length-prefixed bytes. */
  bytes(b: Uint8Array): this {
    this.u32(b.length);
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export class SnapshotReader {
  private readonly data: Uint8Array;
  private readonly view: DataView;
  private readonly device: string;
  private pos = 0;

  constructor(data: Uint8Array, tag: string, device: string) {
    this.data = data;
    this.device = device;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let got = '';
    for (let i = 0; i < 4; i++) got += String.fromCharCode(this.u8());
    if (got !== tag) this.bad(`snapshot tag ${JSON.stringify(got)} is not ${tag}`);
  }

  private need(n: number): void {
    if (this.pos + n > this.data.length) {
      throw new DeviceError('ENCODING_TRUNCATED', this.device, `snapshot ends at byte ${this.data.length}`);
    }
  }

  bad(message: string): never {
    throw new DeviceError('ENCODING_BAD_VALUE', this.device, message);
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u53(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.bad(`integer ${v} above 2^53 - 1`);
    return Number(v);
  }

  /** A u32 that must lie in [min, max]. */
  int(name: string, min: number, max: number): number {
    const v = this.u32();
    if (v < min || v > max) this.bad(`${name} ${v} outside ${min}..${max}`);
    return v;
  }

  /** Length-prefixed bytes (a copy), at most `max` long. */
  bytes(name: string, max: number): Uint8Array {
    const n = this.u32();
    if (n > max) this.bad(`${name} of ${n} bytes exceeds ${max}`);
    this.need(n);
    const out = new Uint8Array(this.data.subarray(this.pos, this.pos + n)); // a copy even for a Buffer
    this.pos += n;
    return out;
  }

  end(): void {
    if (this.pos !== this.data.length) {
      throw new DeviceError(
        'ENCODING_TRAILING',
        this.device,
        `${this.data.length - this.pos} bytes after the snapshot`,
      );
    }
  }
}
