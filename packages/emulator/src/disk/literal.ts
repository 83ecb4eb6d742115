/**
 * The "literal" disk encryption of TB-10: claim 30 read word for word (CRYPT-9, AMB-11). Every
 * virtual sector is encrypted on its own with the machine's public key and decrypted with its
 * secret key, with no data key, no key wrapping and nothing binding a block to its place.
 * DELIBERATELY WEAK AND SLOW; it exists to reproduce the reading's properties, not to be used:
 *
 * - No integrity against anyone who holds the public key (which is public): such a writer makes
 *   blocks that decrypt "validly" to whatever they chose, without any secret.
 * - Blocks are position-independent: a ciphertext copied from one block to another (or from an old
 *   copy of the disk) decrypts validly there too.
 * - A sector that was never written (both physical sectors zero) reads as zeros.
 * - Every sector costs an X25519 key generation and two DH operations to write, one DH to read, and
 *   takes two physical sectors.
 *
 * Format: virtual sector b is physical sectors 2b and 2b + 1: `enc` (32 bytes) ‖ ciphertext (512 + 16,
 * ChaCha20-Poly1305) of HPKE single-shot base mode (RFC 9180) to the machine's X25519 key with info
 * "clefnet disk literal v1" and empty aad, then 464 zero bytes. A partition of N physical sectors
 * offers floor(N / 2) virtual ones. The HPKE tag only says that someone who knew the public key made
 * the block; a block that fails to open (damage, or another machine's key) is VmmError
 * DISK_KEY_REFUSED with `meta.lba`, which a mirror (mirror.ts) treats like any failed read.
 */
import {
  type Clef,
  type CryptoBackend,
  hpkeOpen,
  hpkeSeal,
  type Key,
  type RandomSource,
  utf8,
} from '@clefnet/protocol';
import { type BlockBackend, SECTOR_SIZE } from '../devices/disk.js';
import { VmmError } from '../vmm/errors.js';
import { checkAccess, isAllZero } from './block.js';

export const LITERAL_INFO = utf8('clefnet disk literal v1');
const ENC = 32;
const SEALED = SECTOR_SIZE + 16;
/** Physical bytes per virtual sector. */
const SLOT = 2 * SECTOR_SIZE;
const EMPTY = new Uint8Array(0);

export interface LiteralOptions {
  readonly backend: CryptoBackend;
  /** Ephemeral keys, one per sector written. */
  readonly random: RandomSource;
  /**
   * The machine Key (read and write), or only its Clef: then the view can write validly encrypted
   * blocks but every read is DISK_KEY_REFUSED (the weakness: writing needs no secret).
   */
  readonly machine: Key | Clef;
}

/** `dev` seen through the literal reading of claim 30 (see the file comment). */
export function literalPartition(dev: BlockBackend, options: LiteralOptions): BlockBackend {
  const { backend, random, machine } = options;
  const sectors = Math.floor(dev.sectors / 2);
  if (sectors < 1)
    throw new VmmError('CONFIG_INVALID', 'a literal partition needs at least 2 physical sectors');
  const secret = 'open' in machine ? machine.open : undefined;
  const pub = secret === undefined ? (machine as Clef).seal : backend.x25519PublicKey(secret);
  if (!(pub instanceof Uint8Array) || pub.length !== 32)
    throw new VmmError('CONFIG_INVALID', 'the literal scheme needs the machine Key or Clef');
  let slots = new Uint8Array(8 * SLOT);
  const grow = (bytes: number): Uint8Array => {
    if (slots.length < bytes) slots = new Uint8Array(bytes);
    return slots.subarray(0, bytes);
  };
  return {
    sectors,
    read(lba, out) {
      const n = checkAccess('literal partition', sectors, lba, out);
      const raw = grow(n * SLOT);
      dev.read(2 * lba, raw);
      for (let i = 0; i < n; i++) {
        const slot = raw.subarray(i * SLOT, (i + 1) * SLOT);
        const at = i * SECTOR_SIZE;
        if (isAllZero(slot)) {
          out.fill(0, at, at + SECTOR_SIZE);
          continue;
        }
        let plain: Uint8Array | undefined;
        if (secret !== undefined) {
          try {
            plain = hpkeOpen(
              backend,
              secret,
              slot.subarray(0, ENC),
              LITERAL_INFO,
              EMPTY,
              slot.subarray(ENC, ENC + SEALED),
            );
          } catch {
            plain = undefined;
          }
        }
        if (plain === undefined)
          throw new VmmError(
            'DISK_KEY_REFUSED',
            `literal partition: block ${lba + i} does not open with this machine key`,
            {
              lba: lba + i,
            },
          );
        out.set(plain, at);
      }
    },
    write(lba, data) {
      const n = checkAccess('literal partition', sectors, lba, data);
      const raw = grow(n * SLOT);
      raw.fill(0);
      for (let i = 0; i < n; i++) {
        const s = hpkeSeal(
          backend,
          pub,
          LITERAL_INFO,
          EMPTY,
          data.subarray(i * SECTOR_SIZE, (i + 1) * SECTOR_SIZE),
          random,
        );
        raw.set(s.enc, i * SLOT);
        raw.set(s.ciphertext, i * SLOT + ENC);
      }
      dev.write(2 * lba, raw);
    },
  };
}
