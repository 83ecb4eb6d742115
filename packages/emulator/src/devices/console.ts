/**
 * Serial-like console. Guest output leaves the machine only as the `output` event (one byte per
 * event) and is kept in a transcript the host (and tests) read as text; host input goes in through
 * {@link ConsoleDevice.input}.
 *
 * Port map (offsets from `base`, default 0x3F8; 32-bit values):
 *
 * | off | name    | R/W | meaning                                                                        |
 * |-----|---------|-----|--------------------------------------------------------------------------------|
 * | 0   | DATA    | R/W | R: next input byte (0..255), or 0xFFFFFFFF when none (no byte can read so).    |
 * |     |         |     | W: output byte `value & 0xFF`: `output` event + transcript.                    |
 * | 1   | STATUS  | R   | bit 0 input available, bit 1 output ready (always 1).                          |
 * | 2   | CONTROL | R/W | bit 0 input interrupt enable. Reset 0.                                         |
 * | 3   | PENDING | R   | number of input bytes waiting.                                                 |
 *
 * Interrupt: with CONTROL bit 0 set, `input()` of at least one byte raises the line, and so does
 * setting bit 0 while input is waiting (the line is an edge, so a driver drains DATA until STATUS
 * bit 0 clears). Input beyond `inputCapacity` waiting bytes is dropped and counted (overrun).
 * The transcript keeps at most `transcriptLimit` bytes: when full, its older half is discarded.
 */
import type { PortDevice, Snapshotting } from './bus.js';
import { IRQ_LINES, type IrqCallback, intOption, noIrq } from './errors.js';
import { Emitter } from './events.js';
import { SnapshotReader, SnapshotWriter } from './snapshot.js';

export const CONSOLE_PORT = { DATA: 0, STATUS: 1, CONTROL: 2, PENDING: 3 } as const;
export const CONSOLE_PORTS = 4;
export const CONSOLE_DEFAULT_BASE = 0x3f8;
export const CONSOLE_STATUS = { INPUT_AVAILABLE: 1, OUTPUT_READY: 2 } as const;
export const CONSOLE_CONTROL = { INPUT_IRQ: 1 } as const;
/** DATA reads this when no input is waiting. */
export const CONSOLE_NO_INPUT = 0xffffffff;

export interface ConsoleOptions {
  /** First port (default 0x3F8). */
  readonly base?: number;
  /** Raises `line` on input (default: no interrupts, polling only). */
  readonly irq?: IrqCallback;
  /** Interrupt line (default 1). */
  readonly line?: number;
  /** Waiting input bytes kept at most (default 4096). */
  readonly inputCapacity?: number;
  /** Transcript bytes kept at most (default 1 MiB). */
  readonly transcriptLimit?: number;
}

export interface ConsoleEvents {
  /** A byte the guest wrote to DATA. */
  output: number;
}

const decoder = new TextDecoder();

export class ConsoleDevice extends Emitter<ConsoleEvents> implements PortDevice, Snapshotting {
  readonly name = 'console';
  readonly base: number;
  readonly ports: readonly [from: number, to: number];
  private readonly irq: IrqCallback;
  private readonly line: number;
  private readonly transcriptLimit: number;

  /** Ring buffer of waiting input. */
  private readonly inBuf: Uint8Array;
  private inHead = 0;
  private inLen = 0;
  private control = 0;
  private overruns = 0;
  private out: Uint8Array;
  private outLen = 0;

  constructor(options: ConsoleOptions = {}) {
    super();
    this.base = intOption(
      this.name,
      'base',
      options.base ?? CONSOLE_DEFAULT_BASE,
      0,
      0x10000 - CONSOLE_PORTS,
    );
    this.ports = [this.base, this.base + CONSOLE_PORTS - 1];
    this.irq = options.irq ?? noIrq;
    this.line = intOption(this.name, 'line', options.line ?? 1, 0, IRQ_LINES - 1);
    this.inBuf = new Uint8Array(
      intOption(this.name, 'inputCapacity', options.inputCapacity ?? 4096, 1, 1 << 24),
    );
    this.transcriptLimit = intOption(
      this.name,
      'transcriptLimit',
      options.transcriptLimit ?? 1 << 20,
      2,
      1 << 30,
    );
    this.out = new Uint8Array(Math.min(this.transcriptLimit, 4096));
  }

  /** Host input; bytes that do not fit are dropped and counted in `overruns`. */
  input(bytes: Uint8Array | string): void {
    const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
    if (!(data instanceof Uint8Array)) throw new TypeError('console: input must be a Uint8Array or a string');
    const cap = this.inBuf.length;
    let added = 0;
    for (const b of data) {
      if (this.inLen === cap) {
        this.overruns += data.length - added;
        break;
      }
      this.inBuf[(this.inHead + this.inLen) % cap] = b;
      this.inLen++;
      added++;
    }
    if (added > 0 && (this.control & CONSOLE_CONTROL.INPUT_IRQ) !== 0) this.irq(this.line);
  }

  /** Everything the guest has written (subject to `transcriptLimit`), decoded as UTF-8. */
  transcript(): string {
    return decoder.decode(this.out.subarray(0, this.outLen));
  }

  /** The transcript's raw bytes (a copy). */
  transcriptBytes(): Uint8Array {
    return this.out.slice(0, this.outLen);
  }

  clearTranscript(): void {
    this.outLen = 0;
  }

  /** Input bytes dropped because the input buffer was full. */
  get overrunCount(): number {
    return this.overruns;
  }

  private append(byte: number): void {
    if (this.outLen === this.out.length) {
      if (this.out.length < this.transcriptLimit) {
        const grown = new Uint8Array(Math.min(this.out.length * 2, this.transcriptLimit));
        grown.set(this.out);
        this.out = grown;
      } else {
        const half = this.outLen >> 1;
        this.out.copyWithin(0, half, this.outLen);
        this.outLen -= half;
      }
    }
    this.out[this.outLen++] = byte;
  }

  read(port: number): number {
    switch (port - this.base) {
      case CONSOLE_PORT.DATA: {
        if (this.inLen === 0) return CONSOLE_NO_INPUT;
        const b = this.inBuf[this.inHead]!;
        this.inHead = (this.inHead + 1) % this.inBuf.length;
        this.inLen--;
        return b;
      }
      case CONSOLE_PORT.STATUS:
        return (this.inLen > 0 ? CONSOLE_STATUS.INPUT_AVAILABLE : 0) | CONSOLE_STATUS.OUTPUT_READY;
      case CONSOLE_PORT.CONTROL:
        return this.control;
      case CONSOLE_PORT.PENDING:
        return this.inLen;
      default:
        return 0xffffffff;
    }
  }

  write(port: number, value: number): void {
    switch (port - this.base) {
      case CONSOLE_PORT.DATA: {
        const byte = value & 0xff;
        this.append(byte);
        this.emit('output', byte);
        break;
      }
      case CONSOLE_PORT.CONTROL: {
        const was = this.control;
        this.control = value & CONSOLE_CONTROL.INPUT_IRQ;
        // Enabling the interrupt with input already waiting must not lose that input's wake-up.
        if ((was & CONSOLE_CONTROL.INPUT_IRQ) === 0 && this.control !== 0 && this.inLen > 0)
          this.irq(this.line);
        break;
      }
    }
  }

  /** Machine reset: input and control cleared; the transcript and overrun count (host records) are kept. */
  reset(): void {
    this.inHead = 0;
    this.inLen = 0;
    this.control = 0;
  }

  save(): Uint8Array {
    const waiting = new Uint8Array(this.inLen);
    for (let i = 0; i < this.inLen; i++) waiting[i] = this.inBuf[(this.inHead + i) % this.inBuf.length]!;
    return new SnapshotWriter('CON1')
      .u32(this.control)
      .u53(this.overruns)
      .bytes(waiting)
      .bytes(this.out.subarray(0, this.outLen))
      .finish();
  }

  restore(bytes: Uint8Array): void {
    const r = new SnapshotReader(bytes, 'CON1', this.name);
    const control = r.int('control', 0, CONSOLE_CONTROL.INPUT_IRQ);
    const overruns = r.u53();
    const waiting = r.bytes('input', this.inBuf.length);
    const transcript = r.bytes('transcript', this.transcriptLimit);
    r.end();
    this.control = control;
    this.overruns = overruns;
    this.inBuf.set(waiting);
    this.inHead = 0;
    this.inLen = waiting.length;
    this.out = new Uint8Array(Math.max(transcript.length, Math.min(this.transcriptLimit, 4096)));
    this.out.set(transcript);
    this.outLen = transcript.length;
  }
}
