/**
 * Crypto device: claim 39's mode of stream encryption (CRYPT-13), in which the VE's keys are usable
 * inside the VE and its own processes seal what they send and open what they receive. The guest
 * hands the device a buffer, a length, a direction and a key slot; the device seals or opens the
 * buffer in place by DMA with the key in that slot. The slots are loaded by the real environment
 * only (host API {@link CryptoDevice.load}), only with sessions on this VE's own key (KEY-5,
 * CRYPT-14: a VE's device never holds another VE's key, KEY-10: nor the real environment's), and no
 * port reads a key back: the guest can use its keys, never see them. The sealed format is the
 * stream format (dtm/stream.ts), so a guest sealing `type[2] ‖ payload` produces exactly what the
 * DTM or the VM manager's filter would, and either can open it.
 *
 * Port map (offsets from `base`, default 0x320; 32-bit values):
 *
 * | off | name       | R/W | meaning                                                                          |
 * |-----|------------|-----|----------------------------------------------------------------------------------|
 * | 0   | STATUS     | R   | bits 0..7 error of the last COMMAND: 0 OK, 1 NO_KEY (slot empty or out of range), |
 * |     |            |     | 2 BAD_LENGTH, 3 DMA_ERROR (buffer outside memory), 4 REFUSED (open: see bits      |
 * |     |            |     | 16..23), 5 BAD_COMMAND; bits 8..15 the number of slots; bits 16..23 with REFUSED  |
 * |     |            |     | which check failed (CRYPTO_REFUSAL). Nothing at ADDR changes unless OK.          |
 * | 1   | ADDR       | R/W | physical address of the buffer.                                                  |
 * | 2   | LEN        | R/W | bytes at ADDR: SEAL the plaintext (1..MAX_LEN; the buffer needs LEN + 42 bytes),  |
 * |     |            |     | OPEN the sealed bytes (42..MAX_LEN + 42).                                        |
 * | 3   | SLOT       | R/W | key slot for the next command.                                                   |
 * | 4   | COMMAND    | W   | 1 SEAL, 2 OPEN: in place, the result from ADDR.                                  |
 * | 5   | RESULT_LEN | R   | bytes of the last OK command's result (SEAL: LEN + 42; OPEN: LEN - 42), else 0.  |
 * | 6   | SLOT_STATE | R   | SLOT's state: 0 empty or out of range, 1 loaded.                                 |
 *
 * No interrupt: a command completes before the OUT that issues it returns.
 */
import type { PortDevice, Snapshotting } from './bus.js';
import { type Dma, noDma } from './dma.js';
import { DeviceError, intOption } from './errors.js';
import { SnapshotReader, SnapshotWriter } from './snapshot.js';

export const CRYPTO_PORT = {
  STATUS: 0,
  ADDR: 1,
  LEN: 2,
  SLOT: 3,
  COMMAND: 4,
  RESULT_LEN: 5,
  SLOT_STATE: 6,
} as const;
export const CRYPTO_PORTS = 7;
export const CRYPTO_DEFAULT_BASE = 0x320;
export const CRYPTO_COMMAND = { SEAL: 1, OPEN: 2 } as const;
export const CRYPTO_ERROR = {
  OK: 0,
  NO_KEY: 1,
  BAD_LENGTH: 2,
  DMA_ERROR: 3,
  REFUSED: 4,
  BAD_COMMAND: 5,
} as const;
/** STATUS bits 16..23 after REFUSED: the stream check that failed (dtm/stream.ts's reasons). */
export const CRYPTO_REFUSAL: Readonly<Record<string, number>> = {
  malformed: 1,
  'wrong scheme': 2,
  'rotated-out key version': 3,
  'unknown key version': 4,
  'stale session': 5,
  replayed: 6,
  'behind window': 7,
  'authentication failed': 8,
  'sequence exhausted': 9,
  'no key': 10,
  'no peer key': 11,
  'bad peer key': 12,
};
/** Sealing adds the stream header (26 bytes) and the tag (16). */
export const CRYPTO_OVERHEAD = 42;
/** Largest plaintext (one page's worth of frames and more). */
export const CRYPTO_MAX_LEN = 65536;

/**
 * A key slot's content: a stream session on the VE's own key with one peer (dtm/stream.ts's
 * `StreamSession`). Failures are reason strings, never exceptions.
 */
export interface CryptoSlot {
  readonly scheme: 'real' | 've';
  /** The VE whose key the session uses. */
  readonly ve: string | undefined;
  seal(plain: Uint8Array): Uint8Array | string;
  open(sealed: Uint8Array): Uint8Array | string;
}

export interface CryptoDeviceOptions {
  /** The VE this device belongs to: only sessions on its key are loaded. */
  readonly owner: string;
  readonly dma?: Dma;
  /** First port (default 0x320). */
  readonly base?: number;
  /** Key slots (default 8, at most 255). */
  readonly slots?: number;
}

export class CryptoDevice implements PortDevice, Snapshotting {
  readonly name = 'crypto';
  readonly base: number;
  readonly ports: readonly [from: number, to: number];
  readonly owner: string;
  private readonly dma: Dma;
  private readonly slots: (CryptoSlot | undefined)[];
  private addr = 0;
  private len = 0;
  private slot = 0;
  private resultLen = 0;
  private status = 0;

  constructor(options: CryptoDeviceOptions) {
    this.base = intOption(this.name, 'base', options.base ?? CRYPTO_DEFAULT_BASE, 0, 0x10000 - CRYPTO_PORTS);
    this.ports = [this.base, this.base + CRYPTO_PORTS - 1];
    if (typeof options.owner !== 'string' || options.owner.length === 0) {
      throw new DeviceError('CONFIG_INVALID', this.name, 'owner must name the VE');
    }
    this.owner = options.owner;
    this.dma = options.dma ?? noDma;
    this.slots = new Array(intOption(this.name, 'slots', options.slots ?? 8, 1, 255)).fill(undefined);
  }

  /**
   * Real environment: puts a session in slot `slot`. Only a session on this VE's own key: the
   * real environment's key (KEY-10) and other VEs' keys (KEY-5) are refused, CONFIG_INVALID.
   */
  load(slot: number, session: CryptoSlot): void {
    intOption(this.name, 'slot', slot, 0, this.slots.length - 1);
    if (session.scheme !== 've') {
      throw new DeviceError(
        'CONFIG_INVALID',
        this.name,
        "only a VE key goes inside a VE, not the real environment's",
      );
    }
    if (session.ve !== this.owner) {
      throw new DeviceError(
        'CONFIG_INVALID',
        this.name,
        `a session on ${session.ve}'s key in ${this.owner}'s device`,
      );
    }
    this.slots[slot] = session;
  }

  /** Real environment: empties slot `slot` (e.g. after a rotation, KEY-9). */
  clear(slot: number): void {
    intOption(this.name, 'slot', slot, 0, this.slots.length - 1);
    this.slots[slot] = undefined;
  }

  loaded(slot: number): boolean {
    return this.slots[slot] !== undefined;
  }

  read(port: number): number {
    switch (port - this.base) {
      case CRYPTO_PORT.STATUS:
        return this.status | (this.slots.length << 8);
      case CRYPTO_PORT.ADDR:
        return this.addr;
      case CRYPTO_PORT.LEN:
        return this.len;
      case CRYPTO_PORT.SLOT:
        return this.slot;
      case CRYPTO_PORT.RESULT_LEN:
        return this.resultLen;
      case CRYPTO_PORT.SLOT_STATE:
        return this.slots[this.slot] === undefined ? 0 : 1;
      default:
        return this.base <= port && port < this.base + CRYPTO_PORTS ? 0 : 0xffffffff;
    }
  }

  write(port: number, value: number): void {
    switch (port - this.base) {
      case CRYPTO_PORT.ADDR:
        this.addr = value >>> 0;
        break;
      case CRYPTO_PORT.LEN:
        this.len = value >>> 0;
        break;
      case CRYPTO_PORT.SLOT:
        this.slot = value >>> 0;
        break;
      case CRYPTO_PORT.COMMAND:
        this.resultLen = 0;
        this.status = this.command(value >>> 0);
        break;
    }
  }

  private command(cmd: number): number {
    if (cmd !== CRYPTO_COMMAND.SEAL && cmd !== CRYPTO_COMMAND.OPEN) return CRYPTO_ERROR.BAD_COMMAND;
    const session = this.slots[this.slot];
    if (session === undefined) return CRYPTO_ERROR.NO_KEY;
    const seal = cmd === CRYPTO_COMMAND.SEAL;
    const len = this.len;
    if (
      seal ? len < 1 || len > CRYPTO_MAX_LEN : len < CRYPTO_OVERHEAD || len > CRYPTO_MAX_LEN + CRYPTO_OVERHEAD
    ) {
      return CRYPTO_ERROR.BAD_LENGTH;
    }
    let input: Uint8Array;
    try {
      // The whole buffer must be memory before anything is used up (a sealing sequence number).
      this.dma.read(this.addr, seal ? len + CRYPTO_OVERHEAD : len);
      input = this.dma.read(this.addr, len);
    } catch (e) {
      if (e instanceof RangeError) return CRYPTO_ERROR.DMA_ERROR;
      throw e;
    }
    const out = seal ? session.seal(input) : session.open(input);
    if (typeof out === 'string') return CRYPTO_ERROR.REFUSED | ((CRYPTO_REFUSAL[out] ?? 0xff) << 16);
    this.dma.write(this.addr, out);
    this.resultLen = out.length;
    return CRYPTO_ERROR.OK;
  }

  /** Machine reset: registers cleared; the slots stay (the real environment loaded them). */
  reset(): void {
    this.addr = 0;
    this.len = 0;
    this.slot = 0;
    this.resultLen = 0;
    this.status = 0;
  }

  /** The registers only: keys never go into a snapshot. */
  save(): Uint8Array {
    return new SnapshotWriter('CRY1')
      .u32(this.addr)
      .u32(this.len)
      .u32(this.slot)
      .u32(this.resultLen)
      .u32(this.status)
      .finish();
  }

  restore(bytes: Uint8Array): void {
    const r = new SnapshotReader(bytes, 'CRY1', this.name);
    const addr = r.u32();
    const len = r.u32();
    const slot = r.u32();
    const resultLen = r.u32();
    const status = r.u32();
    r.end();
    this.addr = addr;
    this.len = len;
    this.slot = slot;
    this.resultLen = resultLen;
    this.status = status;
  }
}
