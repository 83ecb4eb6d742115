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

/** Keystream bytes produced per refill: 16 ChaCha20 blocks. */
const CHUNK = 1024;
const BLOCKS_PER_CHUNK = CHUNK / 64;
const COUNTER_SPAN = 2 ** 32; // RFC 8439 block counter width; noble refuses to wrap it

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
  const key = sha256(seedBytes);
  const nonce = new Uint8Array(12);
  const zeros = new Uint8Array(CHUNK);
  const buffer = new Uint8Array(CHUNK);
  let block = 0; // index of the next keystream block to generate
  let used = CHUNK; // bytes of `buffer` already handed out

  const refill = (): void => {
    const epoch = Math.floor(block / COUNTER_SPAN);
    new DataView(nonce.buffer).setBigUint64(0, BigInt(epoch), true);
    chacha20(key, nonce, zeros, buffer, block % COUNTER_SPAN);
    block += BLOCKS_PER_CHUNK; // 2^32 is a multiple of 16: a chunk never straddles epochs
    used = 0;
  };

  return (length) => {
    checkLength(length);
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      if (used === CHUNK) refill();
      const n = Math.min(length - filled, CHUNK - used);
      out.set(buffer.subarray(used, used + n), filled);
      used += n;
      filled += n;
    }
    return out;
  };
}
