import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BACKEND_NAMES,
  backendByName,
  type CryptoBackend,
  createNodeBackend,
  hpkeOpen,
  hpkeSeal,
  nobleBackend,
  nodeBackend,
  seededRandom,
} from '../../src/crypto/index.js';
import { codeOf, toHex } from './vectors.js';

/** Fixed fast-check seed: the inputs are random but every run sees the same ones. */
const RUNS = { seed: 0x636c6566, numRuns: 100 };
const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const message = fc.uint8Array({ maxLength: 300 });

/** Runs `f` on both backends and asserts the hex of the results is identical. */
function same(f: (b: CryptoBackend) => Uint8Array | boolean | null): void {
  const show = (x: Uint8Array | boolean | null) => (x instanceof Uint8Array ? toHex(x) : x);
  expect(show(f(nodeBackend))).toEqual(show(f(nobleBackend)));
}

describe('noble and node give identical bytes (seeded property tests)', () => {
  it('Ed25519 public keys and signatures; each verifies the other', () => {
    fc.assert(
      fc.property(key32, message, (seed, msg) => {
        same((b) => b.ed25519PublicKey(seed));
        same((b) => b.ed25519Sign(seed, msg));
        const pk = nobleBackend.ed25519PublicKey(seed);
        expect(nodeBackend.ed25519Verify(pk, msg, nobleBackend.ed25519Sign(seed, msg))).toBe(true);
        expect(nobleBackend.ed25519Verify(pk, msg, nodeBackend.ed25519Sign(seed, msg))).toBe(true);
      }),
      RUNS,
    );
  });

  it('Ed25519 verification of random garbage and of bit-flipped signatures', () => {
    fc.assert(
      fc.property(key32, message, fc.nat(511), key32, (seed, msg, bit, junk) => {
        const sig = nobleBackend.ed25519Sign(seed, msg);
        sig[bit >> 3]! ^= 1 << (bit & 7);
        const pk = nobleBackend.ed25519PublicKey(seed);
        same((b) => b.ed25519Verify(pk, msg, sig));
        same((b) => b.ed25519Verify(junk, msg, sig));
      }),
      RUNS,
    );
  });

  it('X25519 public keys and shared secrets, for random (often off-curve) public keys too', () => {
    fc.assert(
      fc.property(key32, key32, key32, (a, b, junk) => {
        same((be) => be.x25519PublicKey(a));
        same((be) => be.x25519(a, nobleBackend.x25519PublicKey(b)));
        same((be) => be.x25519(a, junk));
      }),
      RUNS,
    );
  });

  it('SHA-256, HMAC, HKDF extract and expand', () => {
    fc.assert(
      fc.property(message, message, message, fc.integer({ min: 0, max: 600 }), (salt, ikm, info, n) => {
        same((b) => b.sha256(ikm));
        same((b) => b.hmacSha256(salt, ikm));
        same((b) => b.hkdfExtract(salt, ikm));
        same((b) => b.hkdfExpand(b.hkdfExtract(salt, ikm), info, n));
      }),
      RUNS,
    );
  });

  it('ChaCha20-Poly1305 seal, open, and refusal of a flipped bit', () => {
    fc.assert(
      fc.property(
        key32,
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        message,
        message,
        fc.nat(),
        (k, n, aad, pt, bit) => {
          same((b) => b.aeadSeal(k, n, aad, pt));
          const sealed = nodeBackend.aeadSeal(k, n, aad, pt);
          same((b) => b.aeadOpen(k, n, aad, sealed));
          sealed[(bit >> 3) % sealed.length]! ^= 1 << (bit & 7);
          same((b) => b.aeadOpen(k, n, aad, sealed));
        },
      ),
      RUNS,
    );
  });

  it('XTS-AES-256 encrypt and decrypt of whole-block data units; each decrypts the other', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 1, max: 64 }),
        fc.nat(),
        (key, tweak, blocks, seed) => {
          const data = seededRandom(`xts ${seed}`)(16 * blocks);
          same((b) => b.aes256XtsEncrypt(key, tweak, data));
          same((b) => b.aes256XtsDecrypt(key, tweak, data));
          expect(
            nobleBackend.aes256XtsDecrypt(key, tweak, nodeBackend.aes256XtsEncrypt(key, tweak, data)),
          ).toEqual(data);
          expect(
            nodeBackend.aes256XtsDecrypt(key, tweak, nobleBackend.aes256XtsEncrypt(key, tweak, data)),
          ).toEqual(data);
        },
      ),
      RUNS,
    );
  });

  it('XTS-AES-256 refuses the same inputs on both backends (lengths, K1 == K2)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 0, max: 80 }),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 70 }),
        (half, keyLength, tweakLength, dataLength) => {
          const equalHalves = new Uint8Array(64);
          equalHalves.set(half, 0);
          equalHalves.set(half, 32);
          const key = new Uint8Array(keyLength).fill(7);
          key[0] = 1;
          for (const k of [key, equalHalves]) {
            const args = [k, new Uint8Array(tweakLength), new Uint8Array(dataLength)] as const;
            for (const op of ['aes256XtsEncrypt', 'aes256XtsDecrypt'] as const) {
              const id = `${op} key ${k.length} tweak ${tweakLength} data ${dataLength}`;
              expect(
                codeOf(() => nodeBackend[op](...args)),
                id,
              ).toBe(codeOf(() => nobleBackend[op](...args)));
            }
          }
        },
      ),
      RUNS,
    );
  });

  it('XTS-AES-256 over consecutive data units: identical bytes, each backend decrypts the other', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.oneof(
          fc.nat(1000),
          fc.integer({ min: 2 ** 32 - 20, max: 2 ** 32 + 20 }),
          fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 40 }),
        ),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.nat(),
        (key, firstUnit, blocksPerUnit, units, seed) => {
          if (key.subarray(0, 32).every((x, i) => x === key[32 + i])) key[0]! ^= 1; // K1 != K2
          const unitBytes = 16 * blocksPerUnit;
          const data = seededRandom(`xts units ${seed}`)(unitBytes * units);
          same((b) => b.aes256XtsEncryptUnits(key, firstUnit, unitBytes, data));
          same((b) => b.aes256XtsDecryptUnits(key, firstUnit, unitBytes, data));
          const [toNode, toNoble] = [nodeBackend, nobleBackend].map((b) =>
            b.aes256XtsEncryptUnits(key, firstUnit, unitBytes, data),
          ) as [Uint8Array, Uint8Array];
          const want = toHex(data);
          expect(toHex(nobleBackend.aes256XtsDecryptUnits(key, firstUnit, unitBytes, toNode))).toBe(want);
          expect(toHex(nodeBackend.aes256XtsDecryptUnits(key, firstUnit, unitBytes, toNoble))).toBe(want);
        },
      ),
      RUNS,
    );
  });

  it('XTS-AES-256 over data units refuses the same inputs on both backends', () => {
    const unitNumber = fc.oneof(
      fc.integer({ min: -3, max: 3 }),
      fc.integer({ min: Number.MAX_SAFE_INTEGER - 5, max: Number.MAX_SAFE_INTEGER }),
      fc.constantFrom(0.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY),
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 0, max: 80 }),
        unitNumber,
        fc.oneof(fc.integer({ min: -16, max: 100 }), fc.constantFrom(1.5, Number.NaN, (1 << 24) + 16)),
        fc.integer({ min: 0, max: 130 }),
        (half, keyLength, firstUnit, unitBytes, dataLength) => {
          const equalHalves = new Uint8Array(64);
          equalHalves.set(half, 0);
          equalHalves.set(half, 32);
          const key = new Uint8Array(keyLength).fill(7);
          key[0] = 1;
          for (const k of [key, equalHalves]) {
            const args = [k, firstUnit, unitBytes, new Uint8Array(dataLength)] as const;
            for (const op of ['aes256XtsEncryptUnits', 'aes256XtsDecryptUnits'] as const) {
              const id = `${op} key ${k.length} first ${firstUnit} unit ${unitBytes} data ${dataLength}`;
              const code = codeOf(() => nodeBackend[op](...args));
              expect(code, id).toBe(codeOf(() => nobleBackend[op](...args)));
              expect(['none', 'CRYPTO_INPUT'], id).toContain(code);
            }
          }
        },
      ),
      RUNS,
    );
  });

  it('PBKDF2-HMAC-SHA256 for random passwords, salts, iteration counts and lengths', () => {
    fc.assert(
      fc.property(
        message,
        message,
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 200 }),
        (password, salt, c, n) => {
          same((b) => b.pbkdf2Sha256(password, salt, c, n));
        },
      ),
      RUNS,
    );
  });

  it('HPKE single-shot seal with a fixed ephemeral key, opened by the other backend', () => {
    fc.assert(
      fc.property(key32, key32, message, message, message, (skR, skE, info, aad, pt) => {
        const pkR = nobleBackend.x25519PublicKey(skR);
        const seal = (b: CryptoBackend) => hpkeSeal(b, pkR, info, aad, pt, { secret: skE });
        const a = seal(nobleBackend);
        const c = seal(nodeBackend);
        expect(toHex(c.enc)).toBe(toHex(a.enc));
        expect(toHex(c.ciphertext)).toBe(toHex(a.ciphertext));
        expect(hpkeOpen(nodeBackend, skR, a.enc, info, aad, a.ciphertext)).toEqual(pt);
        expect(hpkeOpen(nobleBackend, skR, c.enc, info, aad, c.ciphertext)).toEqual(pt);
      }),
      { ...RUNS, numRuns: 50 },
    );
  });

  it('HPKE under one seeded RandomSource gives one transcript on both backends', () => {
    const run = (b: CryptoBackend) => {
      const r = seededRandom('transcript');
      const pkR = b.x25519PublicKey(r(32));
      return Array.from({ length: 5 }, (_, i) => {
        const out = hpkeSeal(b, pkR, r(8), r(i), r(40 * i), r);
        return toHex(out.enc) + toHex(out.ciphertext);
      });
    };
    expect(run(nodeBackend)).toEqual(run(nobleBackend));
  });
});

describe('node backend key cache', () => {
  it('gives the same bytes with a tiny cache (constant eviction) and with no cache', () => {
    const tiny = createNodeBackend({ keyCacheSize: 2 });
    const none = createNodeBackend({ keyCacheSize: 0 });
    const r = seededRandom('cache');
    const seeds = Array.from({ length: 5 }, () => r(32));
    const msg = r(50);
    for (let round = 0; round < 3; round++) {
      for (const [i, seed] of seeds.entries()) {
        const want = toHex(nobleBackend.ed25519Sign(seed, msg));
        expect(toHex(tiny.ed25519Sign(seed, msg)), `round ${round} seed ${i}`).toBe(want);
        expect(toHex(none.ed25519Sign(seed, msg)), `round ${round} seed ${i}`).toBe(want);
        const pk = nobleBackend.ed25519PublicKey(seed);
        expect(tiny.ed25519Verify(pk, msg, hexBytes(want)), `round ${round} seed ${i}`).toBe(true);
        expect(toHex(tiny.x25519PublicKey(seed)), `round ${round} seed ${i}`).toBe(
          toHex(nobleBackend.x25519PublicKey(seed)),
        );
      }
    }
  });
});

describe('node backend XTS context cache', () => {
  it('gives the bytes of noble with the default, a tiny and no cache, keys and directions interleaved', () => {
    const backends = [
      nodeBackend,
      createNodeBackend({ keyCacheSize: 2 }),
      createNodeBackend({ keyCacheSize: 0 }),
    ];
    const r = seededRandom('xts cache');
    const keys = Array.from({ length: 5 }, () => r(64));
    const data = r(8 * 512);
    const want = keys.map((k) => toHex(nobleBackend.aes256XtsEncryptUnits(k, 1000 + 8, 512, data)));
    for (let round = 0; round < 3; round++) {
      for (const [i, k] of keys.entries()) {
        for (const [j, b] of backends.entries()) {
          const id = `round ${round} key ${i} backend ${j}`;
          const ct = b.aes256XtsEncryptUnits(k, 1000 + 8, 512, data);
          expect(toHex(ct), id).toBe(want[i]);
          expect(toHex(b.aes256XtsDecryptUnits(k, 1000 + 8, 512, ct)), id).toBe(toHex(data));
          // A refused call in between leaves the cached contexts usable.
          expect(
            codeOf(() => b.aes256XtsEncryptUnits(k, 0, 512, new Uint8Array(100))),
            id,
          ).toBe('CRYPTO_INPUT');
        }
      }
    }
  });
});

describe('createNodeBackend options', () => {
  it('refuses a negative or fractional keyCacheSize with CONFIG_INVALID', () => {
    for (const keyCacheSize of [-1, 1.5, Number.NaN]) {
      expect(
        codeOf(() => createNodeBackend({ keyCacheSize })),
        `keyCacheSize ${keyCacheSize}`,
      ).toBe('CONFIG_INVALID');
    }
  });
});

describe('backendByName', () => {
  it('returns the shared backend of each name, and CONFIG_INVALID for anything else', () => {
    expect(BACKEND_NAMES.map((n) => backendByName(n).name)).toEqual(['noble', 'node']);
    expect(backendByName('noble')).toBe(nobleBackend);
    expect(backendByName('node')).toBe(nodeBackend);
    expect(codeOf(() => backendByName('openssl' as never))).toBe('CONFIG_INVALID');
  });
});

function hexBytes(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'hex'));
}
