import { createCipheriv, createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seededRandom, systemRandom } from '../../src/crypto/index.js';
import { codeOf, toHex } from './vectors.js';

/** The RFC 8439 ChaCha20 keystream under SHA-256(seed), nonce 0, from OpenSSL (an independent implementation). */
function opensslKeystream(seed: string, length: number): string {
  const key = createHash('sha256').update(seed, 'utf8').digest();
  // OpenSSL's 16-byte IV is the 4-byte little-endian block counter followed by the 12-byte nonce.
  return createCipheriv('chacha20', key, Buffer.alloc(16)).update(Buffer.alloc(length)).toString('hex');
}

describe('seededRandom', () => {
  it('is pinned: seed "clefnet" always starts with these 48 bytes (replays must survive upgrades)', () => {
    expect(toHex(seededRandom('clefnet')(48))).toBe(
      'd7778ee6c6d05fc7352ae1693f0a06edc4264590fedeb16e52399135845aae268c825e5aa4b0af4108185381bd170298',
    );
  });

  it('is the ChaCha20 keystream under SHA-256(seed), continued across calls of any size', () => {
    const sizes = [0, 1, 63, 64, 65, 1000, 1024, 1025, 3000, 7];
    const total = sizes.reduce((a, b) => a + b, 0);
    const r = seededRandom('continuity');
    const joined = sizes.map((n) => toHex(r(n))).join('');
    expect(joined).toBe(opensslKeystream('continuity', total));
  });

  it('many small draws (a source that refills block by block at first) still read the keystream in order', () => {
    const r = seededRandom('small draws');
    const parts: string[] = [];
    for (let i = 0; i < 300; i++) parts.push(toHex(r(1 + (i % 17))));
    const total = parts.reduce((n, p) => n + p.length / 2, 0);
    expect(parts.join('')).toBe(opensslKeystream('small draws', total));
  });

  it('a string seed is its UTF-8 bytes; different seeds give different streams', () => {
    expect(seededRandom('grüß')(40)).toEqual(seededRandom(new TextEncoder().encode('grüß'))(40));
    expect(seededRandom('a')(32)).not.toEqual(seededRandom('b')(32));
    expect(seededRandom(new Uint8Array(0))(16)).toEqual(seededRandom('')(16));
  });

  it('each call returns a fresh array the caller may keep or wipe', () => {
    const r = seededRandom('fresh');
    const a = r(16);
    a.fill(0);
    const b = r(16);
    expect(toHex(b)).toBe(opensslKeystream('fresh', 32).slice(32));
  });

  it('throws CRYPTO_INPUT for negative, fractional or absurd lengths', () => {
    const r = seededRandom('x');
    for (const n of [-1, 1.5, Number.NaN, 2 ** 31]) {
      expect(
        codeOf(() => r(n)),
        `length ${n}`,
      ).toBe('CRYPTO_INPUT');
      expect(
        codeOf(() => systemRandom(n)),
        `length ${n}`,
      ).toBe('CRYPTO_INPUT');
    }
  });
});

describe('systemRandom', () => {
  it('returns the requested lengths, beyond the 65536-byte getRandomValues quota too', () => {
    for (const n of [0, 1, 32, 65536, 65537, 200_000]) expect(systemRandom(n).length, `length ${n}`).toBe(n);
    const big = systemRandom(200_000);
    expect(big.subarray(150_000, 150_032)).not.toEqual(new Uint8Array(32)); // the tail is filled too
    expect(systemRandom(32)).not.toEqual(systemRandom(32));
  });
});
