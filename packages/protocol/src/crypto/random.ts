/**
 * Random sources (STYLE: determinism). Protocol code never calls a global RNG; it is handed a
 * {@link RandomSource}: {@link systemRandom} in production, {@link seededRandom} when a run must be
 * replayable from a seed. Neither depends on a crypto backend, so a seeded run gives the same
 * bytes whichever backend it uses.
 */

import { chacha20 } from '@noble/ciphers/chacha.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ProtocolError } from '../errors.js';
import type { RandomSource } from './backend.js';

/** The largest request either source serves in one call (1 GiB). */
const MAX_REQUEST = 1 << 30;

function checkLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_REQUEST) {
    throw new ProtocolError('CRYPTO_INPUT', `random length must be an integer 0..${MAX_REQUEST}`, { length });
  }
}

/** getRandomValues fills at most 65536 bytes per call (WebCrypto quota). */
const QUOTA = 65536;

/** The operating system's CSPRNG, via WebCrypto `getRandomValues` (node:crypto in Node). */
export const systemRandom: RandomSource = (length) => {
  checkLength(length);
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += QUOTA) {
    globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + QUOTA)));
  }
  return out;
};

/** Keystream bytes produced per refill at most: 16 ChaCha20 blocks. */
const CHUNK = 1024;
const MAX_BLOCKS = CHUNK / 64;
const COUNTER_SPAN = 2 ** 32; // RFC 8439 block counter width; noble refuses to wrap it
/** Plaintext for the keystream (chacha20 XORs into its output), shared read-only by every source. */
const ZEROS = new Uint8Array(CHUNK);

/**
 * A deterministic random source for replayable runs (never for production keys unless the seed
 * is itself secret and uniformly random).
 *
 * Output: the RFC 8439 ChaCha20 keystream under key SHA-256(seed) (a string seed is UTF-8
 * encoded first), nonce 0 and block counter 0, 1, 2, …, consumed in order across calls: calls
 * asking for a, then b bytes return keystream bytes [0, a) and [a, a + b). After 2^32 blocks
 * (256 GiB) the nonce's first 8 bytes count the next 2^32-block epoch, little-endian.
 */
export function seededRandom(seed: Uint8Array | string): RandomSource {
  const seedBytes = typeof seed === 'string' ? new TextEncoder().encode(seed) : seed;
  if (!(seedBytes instanceof Uint8Array)) {
    throw new ProtocolError('CRYPTO_INPUT', 'seed must be a string or a Uint8Array');
  }
  // Sources are cheap to make and pay on first use: the simulated world makes one per party,
  // including a SecApp per deployment that may draw a few bytes or none. The seed is copied so
  // that the key is SHA-256 of the seed as it was when the source was made.
  const seedCopy = seedBytes.slice();
  let key: Uint8Array | undefined;
  let buffer = new Uint8Array(0); // CHUNK bytes from the first refill on
  const nonce = new Uint8Array(12);
  let epoch = 0; // the nonce's current epoch
  let block = 0; // index of the next keystream block to generate
  let filled = 0; // keystream bytes in `buffer`
  let used = 0; // bytes of `buffer` already handed out

  const refill = (): void => {
    key ??= sha256(seedCopy);
    if (buffer.length === 0) buffer = new Uint8Array(CHUNK);
    const blockEpoch = Math.floor(block / COUNTER_SPAN);
    if (blockEpoch !== epoch) {
      new DataView(nonce.buffer).setBigUint64(0, BigInt(blockEpoch), true);
      epoch = blockEpoch;
    }
    // 1, 1, 2, 4, 8, then 16 blocks per refill: a source that draws little generates little, a busy
    // one amortises chacha20's per-call cost. Each refill starts at a multiple of its own size, a
    // power of two dividing 2^32, so none straddles an epoch.
    const blocks = Math.min(MAX_BLOCKS, Math.max(1, block % COUNTER_SPAN));
    filled = blocks * 64;
    chacha20(key, nonce, ZEROS.subarray(0, filled), buffer.subarray(0, filled), block % COUNTER_SPAN);
    block += blocks;
    used = 0;
  };

  return (length) => {
    checkLength(length);
    if (length <= filled - used) {
      used += length;
      return buffer.slice(used - length, used);
    }
    const out = new Uint8Array(length);
    let at = 0;
    while (at < length) {
      if (used === filled) refill();
      const n = Math.min(length - at, filled - used);
      out.set(buffer.subarray(used, used + n), at);
      used += n;
      at += n;
    }
    return out;
  };
}
