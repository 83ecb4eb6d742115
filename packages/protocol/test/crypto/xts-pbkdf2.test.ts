import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/crypto/index.js';
import { BACKENDS, codeOf, hex, toHex } from './vectors.js';
import { PBKDF2_SHA256_RFC7914, XTS_AES_256_IEEE1619 } from './xts-pbkdf2-vectors.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

/** The testbed's tweak (TB-10): the virtual block number, little-endian in 16 bytes. */
function blockTweak(block: number): Uint8Array {
  const t = new Uint8Array(16);
  new DataView(t.buffer).setBigUint64(0, BigInt(block), true);
  return t;
}

/** Indices of the 16-byte blocks in which `a` and `b` differ. */
function changedBlocks(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let j = 0; j < a.length / 16; j++) {
    if (toHex(a.subarray(16 * j, 16 * j + 16)) !== toHex(b.subarray(16 * j, 16 * j + 16))) out.push(j);
  }
  return out;
}

/** A valid 64-byte key: K1 = 1, 2, …, 32 and K2 = 33, …, 64. */
const KEY = Uint8Array.from({ length: 64 }, (_, i) => i + 1);

describe('vector data', () => {
  it('XTS: IEEE 1619 vectors 10-14, one key, tweaks 0xff… little-endian, plaintext 00..ff twice', () => {
    expect(XTS_AES_256_IEEE1619.map((v) => v.vector)).toEqual([10, 11, 12, 13, 14]);
    const pattern = toHex(Uint8Array.from({ length: 512 }, (_, i) => i & 0xff));
    for (const [i, v] of XTS_AES_256_IEEE1619.entries()) {
      const id = `vector ${v.vector}`;
      expect(hex(v.key).length, id).toBe(64);
      expect(v.tweak, id).toBe('ff'.repeat(i + 1).padEnd(32, '0'));
      expect(v.plaintext, id).toBe(pattern);
      expect(hex(v.ciphertext).length, id).toBe(512);
    }
  });

  it('PBKDF2: the two RFC 7914 §11 vectors, 64 bytes each', () => {
    expect(PBKDF2_SHA256_RFC7914.map((v) => [v.password, v.salt, v.iterations, v.dk.length])).toEqual([
      ['passwd', 'salt', 1, 128],
      ['Password', 'NaCl', 80000, 128],
    ]);
  });
});

describe.each(BACKENDS)('XTS-AES-256 on the %s backend', (_name, backend) => {
  it('IEEE 1619-2007 vectors 10-14: encrypt gives the ciphertext, decrypt gives the plaintext back', () => {
    const wrong: string[] = [];
    for (const v of XTS_AES_256_IEEE1619) {
      const [key, tweak] = [hex(v.key), hex(v.tweak)];
      const ct = toHex(backend.aes256XtsEncrypt(key, tweak, hex(v.plaintext)));
      if (ct !== v.ciphertext) wrong.push(`vector ${v.vector}: encrypt gave ${ct}`);
      const pt = toHex(backend.aes256XtsDecrypt(key, tweak, hex(v.ciphertext)));
      if (pt !== v.plaintext) wrong.push(`vector ${v.vector}: decrypt gave ${pt}`);
    }
    expect(wrong).toEqual([]);
  });

  it('returns a fresh array and leaves its inputs alone', () => {
    const data = seededRandom('xts fresh')(64);
    const before = toHex(data);
    const tweak = blockTweak(7);
    const ct = backend.aes256XtsEncrypt(KEY, tweak, data);
    expect(ct).toBeInstanceOf(Uint8Array);
    expect(ct.buffer).not.toBe(data.buffer);
    expect(toHex(data)).toBe(before);
    expect(toHex(tweak)).toBe(toHex(blockTweak(7)));
    const pt = backend.aes256XtsDecrypt(KEY, tweak, ct);
    expect(pt.buffer).not.toBe(ct.buffer);
    expect(toHex(pt)).toBe(before);
  });

  it('round-trips random 512-byte sectors keyed by block number, and other whole-block sizes', () => {
    const r = seededRandom(`xts round trip`);
    const key = r(64);
    for (let block = 0; block < 64; block++) {
      const sector = r(512);
      const tweak = blockTweak(block * 7919);
      const ct = backend.aes256XtsEncrypt(key, tweak, sector);
      expect(ct.length, `block ${block}`).toBe(512);
      expect(toHex(ct), `block ${block}`).not.toBe(toHex(sector));
      expect(toHex(backend.aes256XtsDecrypt(key, tweak, ct)), `block ${block}`).toBe(toHex(sector));
    }
    for (const n of [16, 32, 48, 4096]) {
      const data = r(n);
      const ct = backend.aes256XtsEncrypt(key, blockTweak(1), data);
      expect(toHex(backend.aes256XtsDecrypt(key, blockTweak(1), ct)), `${n} bytes`).toBe(toHex(data));
    }
  });

  it('a flipped tweak bit changes every block; a flipped data bit changes only its own block', () => {
    const r = seededRandom('xts diffusion');
    const key = r(64);
    const sector = r(512);
    const tweak = blockTweak(1234);
    const ct = backend.aes256XtsEncrypt(key, tweak, sector);
    const all = Array.from({ length: 32 }, (_, j) => j);
    for (let bit = 0; bit < 128; bit++) {
      const t = Uint8Array.from(tweak);
      t[bit >> 3]! ^= 1 << (bit & 7);
      expect(changedBlocks(ct, backend.aes256XtsEncrypt(key, t, sector)), `tweak bit ${bit}`).toEqual(all);
      expect(changedBlocks(sector, backend.aes256XtsDecrypt(key, t, ct)), `tweak bit ${bit}`).toEqual(all);
    }
    // XTS is a narrow-block mode: a change stays inside its 16-byte block (a known limit of XTS).
    for (const bit of [0, 127, 128, 2000, 4095]) {
      const d = Uint8Array.from(sector);
      d[bit >> 3]! ^= 1 << (bit & 7);
      expect(changedBlocks(ct, backend.aes256XtsEncrypt(key, tweak, d)), `data bit ${bit}`).toEqual([
        bit >> 7,
      ]);
    }
  });

  it('accepts 2^20 blocks, the IEEE 1619 data-unit limit, and refuses one block more', () => {
    const big = new Uint8Array(1 << 24);
    expect(backend.aes256XtsEncrypt(KEY, blockTweak(0), big).length).toBe(1 << 24);
    const tooBig = new Uint8Array((1 << 24) + 16);
    expect(codeOf(() => backend.aes256XtsEncrypt(KEY, blockTweak(0), tooBig))).toBe('CRYPTO_INPUT');
    expect(codeOf(() => backend.aes256XtsDecrypt(KEY, blockTweak(0), tooBig))).toBe('CRYPTO_INPUT');
  });

  it('throws CRYPTO_INPUT for a wrong key, tweak or data length, or a non-array input', () => {
    const ok = { key: KEY, tweak: new Uint8Array(16), data: new Uint8Array(32) };
    const cases: [string, Uint8Array, Uint8Array, Uint8Array][] = [];
    for (const n of [0, 32, 63, 65, 128]) cases.push([`key ${n}`, new Uint8Array(n), ok.tweak, ok.data]);
    for (const n of [0, 8, 12, 15, 17, 32]) cases.push([`tweak ${n}`, ok.key, new Uint8Array(n), ok.data]);
    for (const n of [0, 1, 8, 15, 17, 31, 33, 511, 513]) {
      cases.push([`data ${n}`, ok.key, ok.tweak, new Uint8Array(n)]);
    }
    const notBytes = 'x'.repeat(64) as unknown as Uint8Array;
    cases.push(['key string', notBytes, ok.tweak, ok.data]);
    cases.push(['tweak string', ok.key, notBytes, ok.data]);
    cases.push(['data string', ok.key, ok.tweak, notBytes]);
    for (const [id, key, tweak, data] of cases) {
      expect(
        codeOf(() => backend.aes256XtsEncrypt(key, tweak, data)),
        `encrypt, ${id}`,
      ).toBe('CRYPTO_INPUT');
      expect(
        codeOf(() => backend.aes256XtsDecrypt(key, tweak, data)),
        `decrypt, ${id}`,
      ).toBe('CRYPTO_INPUT');
    }
  });

  it('throws CRYPTO_INPUT for equal key halves (K1 == K2) in both directions; one differing byte is enough', () => {
    const r = seededRandom('xts equal halves');
    for (const half of [new Uint8Array(32), new Uint8Array(32).fill(0xff), r(32)]) {
      const key = new Uint8Array(64);
      key.set(half, 0);
      key.set(half, 32);
      const id = `K1 = K2 = ${toHex(half)}`;
      expect(
        codeOf(() => backend.aes256XtsEncrypt(key, blockTweak(1), new Uint8Array(16))),
        id,
      ).toBe('CRYPTO_INPUT');
      expect(
        codeOf(() => backend.aes256XtsDecrypt(key, blockTweak(1), new Uint8Array(16))),
        id,
      ).toBe('CRYPTO_INPUT');
      for (const i of [0, 31, 32, 63]) {
        const k = Uint8Array.from(key);
        k[i]! ^= 0x01;
        const ct = backend.aes256XtsEncrypt(k, blockTweak(1), new Uint8Array(16));
        expect(toHex(backend.aes256XtsDecrypt(k, blockTweak(1), ct)), `${id}, byte ${i} flipped`).toBe(
          '00'.repeat(16),
        );
      }
    }
  });
});

/** The data-unit sequence number of a vector's tweak (16 bytes little-endian), when it is a safe integer. */
function unitNumber(tweakHex: string): number {
  const n = Buffer.from(tweakHex, 'hex').readBigUInt64LE(0);
  expect(tweakHex.slice(16)).toBe('0'.repeat(16));
  expect(n <= BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
  return Number(n);
}

/** Unit i of `data` through the single-unit call with the tweak firstUnit + i. */
function unitByUnit(
  f: (key: Uint8Array, tweak: Uint8Array, data: Uint8Array) => Uint8Array,
  key: Uint8Array,
  firstUnit: number,
  unitBytes: number,
  data: Uint8Array,
): string {
  let out = '';
  for (let at = 0, i = 0; at < data.length; at += unitBytes, i++) {
    out += toHex(f(key, blockTweak(firstUnit + i), data.subarray(at, at + unitBytes)));
  }
  return out;
}

describe.each(BACKENDS)('XTS-AES-256 over consecutive data units on the %s backend', (_name, backend) => {
  it('IEEE 1619-2007 vectors 10-14 with firstUnit = the data-unit sequence number, alone and inside a run', () => {
    const wrong: string[] = [];
    for (const v of XTS_AES_256_IEEE1619) {
      const [key, seq, pt, ct] = [hex(v.key), unitNumber(v.tweak), hex(v.plaintext), hex(v.ciphertext)];
      if (toHex(backend.aes256XtsEncryptUnits(key, seq, 512, pt)) !== v.ciphertext)
        wrong.push(`${v.vector} enc`);
      if (toHex(backend.aes256XtsDecryptUnits(key, seq, 512, ct)) !== v.plaintext)
        wrong.push(`${v.vector} dec`);
      // The vector's unit as the second of three: units seq - 1, seq, seq + 1.
      const run = new Uint8Array(3 * 512);
      run.set(pt, 512);
      const enc = backend.aes256XtsEncryptUnits(key, seq - 1, 512, run);
      if (toHex(enc.subarray(512, 1024)) !== v.ciphertext) wrong.push(`${v.vector} enc in a run`);
      const dec = backend.aes256XtsDecryptUnits(key, seq - 1, 512, enc);
      if (toHex(dec) !== toHex(run)) wrong.push(`${v.vector} dec of a run`);
    }
    expect(wrong).toEqual([]);
    expect(XTS_AES_256_IEEE1619.map((v) => unitNumber(v.tweak))).toEqual([
      0xff, 0xffff, 0xffffff, 0xffffffff, 0xffffffffff,
    ]);
  });

  it('equals the single-unit call unit by unit: unit sizes 16 B to 80 KiB, unit numbers up to 2^53 - 1', () => {
    const r = seededRandom('xts units');
    const key = r(64);
    const cases: [number, number, number][] = [
      // firstUnit, unitBytes, units
      [0, 512, 1],
      [0, 512, 8],
      [3, 16, 7],
      [1000, 32, 3],
      [2 ** 32 - 3, 512, 8], // the tweak's low word wraps into the next
      [2 ** 32 + 5, 512, 2],
      [2 ** 40 - 1, 4096, 3],
      [Number.MAX_SAFE_INTEGER - 4, 512, 5], // the last unit is 2^53 - 1
      [77, 512, 300], // 150 KiB: more than one internal step
      [9, 16, 5000], // thousands of one-block units
      [2 ** 33, 80 * 1024, 2], // units longer than one internal step
    ];
    for (const [firstUnit, unitBytes, units] of cases) {
      const id = `first ${firstUnit}, ${units} x ${unitBytes}`;
      const data = r(unitBytes * units);
      const ct = backend.aes256XtsEncryptUnits(key, firstUnit, unitBytes, data);
      expect(toHex(ct), id).toBe(unitByUnit(backend.aes256XtsEncrypt, key, firstUnit, unitBytes, data));
      const pt = backend.aes256XtsDecryptUnits(key, firstUnit, unitBytes, ct);
      expect(toHex(pt), id).toBe(toHex(data));
      expect(toHex(backend.aes256XtsDecryptUnits(key, firstUnit, unitBytes, data)), id).toBe(
        unitByUnit(backend.aes256XtsDecrypt, key, firstUnit, unitBytes, data),
      );
    }
  });

  it('returns a fresh array, leaves its inputs alone, and takes data at any byte offset', () => {
    const r = seededRandom('xts units fresh');
    const key = r(64);
    const keyBefore = toHex(key);
    const backing = r(4 * 512 + 3);
    const before = toHex(backing);
    for (const offset of [0, 1, 2, 3]) {
      const data = backing.subarray(offset, offset + 4 * 512);
      const ct = backend.aes256XtsEncryptUnits(key, 12, 512, data);
      expect(ct.buffer).not.toBe(backing.buffer);
      expect(ct.length).toBe(data.length);
      expect(toHex(ct), `offset ${offset}`).toBe(unitByUnit(backend.aes256XtsEncrypt, key, 12, 512, data));
      const pt = backend.aes256XtsDecryptUnits(key, 12, 512, ct);
      expect(pt.buffer).not.toBe(ct.buffer);
      expect(toHex(pt), `offset ${offset}`).toBe(toHex(data));
    }
    expect(toHex(backing)).toBe(before);
    expect(toHex(key)).toBe(keyBefore);
  });

  it('interleaved keys and directions give the right bytes (cached cipher contexts stay reusable)', () => {
    const r = seededRandom('xts units interleaved');
    const keys = Array.from({ length: 20 }, () => r(64)); // more keys than the node backend keeps
    const data = r(8 * 512);
    const want = keys.map((k) => unitByUnit(backend.aes256XtsEncrypt, k, 40, 512, data));
    for (let round = 0; round < 3; round++) {
      for (const [i, k] of keys.entries()) {
        const ct = backend.aes256XtsEncryptUnits(k, 40, 512, data);
        expect(toHex(ct), `round ${round} key ${i}`).toBe(want[i]);
        expect(toHex(backend.aes256XtsDecryptUnits(k, 40, 512, ct)), `round ${round} key ${i}`).toBe(
          toHex(data),
        );
        // A fresh array with the same bytes is a different cache entry with the same result.
        expect(toHex(backend.aes256XtsEncryptUnits(k.slice(), 40, 512, data)), `copy of key ${i}`).toBe(
          want[i],
        );
      }
    }
  });

  it('accepts 2^20-block units and refuses one block more', () => {
    const big = new Uint8Array(1 << 24);
    expect(backend.aes256XtsEncryptUnits(KEY, 0, 1 << 24, big).length).toBe(1 << 24);
    const tooBig = new Uint8Array((1 << 24) + 16);
    expect(codeOf(() => backend.aes256XtsEncryptUnits(KEY, 0, (1 << 24) + 16, tooBig))).toBe('CRYPTO_INPUT');
    expect(codeOf(() => backend.aes256XtsDecryptUnits(KEY, 0, (1 << 24) + 16, tooBig))).toBe('CRYPTO_INPUT');
  });

  it('throws CRYPTO_INPUT for a bad key, unit size, data length or unit number, in both directions', () => {
    const equal = new Uint8Array(64).fill(9);
    const notBytes = 'x'.repeat(64) as unknown as Uint8Array;
    const max = Number.MAX_SAFE_INTEGER;
    const cases: [string, Uint8Array, number, number, Uint8Array][] = [];
    for (const n of [0, 32, 63, 65]) cases.push([`key ${n}`, new Uint8Array(n), 0, 512, new Uint8Array(512)]);
    cases.push(['K1 == K2', equal, 0, 512, new Uint8Array(512)]);
    cases.push(['key string', notBytes, 0, 512, new Uint8Array(512)]);
    for (const u of [
      0,
      -16,
      8,
      15,
      17,
      24,
      520,
      16.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      (1 << 24) + 16,
    ]) {
      cases.push([`unit ${u}`, KEY, 0, u, new Uint8Array(1040)]);
    }
    cases.push(['unit as a string', KEY, 0, '512' as unknown as number, new Uint8Array(512)]);
    for (const n of [0, 16, 511, 513, 1000]) cases.push([`data ${n}`, KEY, 0, 512, new Uint8Array(n)]);
    cases.push(['data string', KEY, 0, 512, notBytes]);
    for (const f of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, -0.5]) {
      cases.push([`first ${f}`, KEY, f, 512, new Uint8Array(512)]);
    }
    cases.push(['first as a string', KEY, '0' as unknown as number, 512, new Uint8Array(512)]);
    cases.push(['last unit 2^53', KEY, max, 16, new Uint8Array(32)]);
    // (2^53 - 2) + 3 rounds to 2^53 in floating point; the check must not be fooled by it.
    cases.push(['last unit 2^53 (rounding)', KEY, max - 1, 16, new Uint8Array(48)]);
    for (const [id, key, first, unit, data] of cases) {
      expect(
        codeOf(() => backend.aes256XtsEncryptUnits(key, first, unit, data)),
        `encrypt, ${id}`,
      ).toBe('CRYPTO_INPUT');
      expect(
        codeOf(() => backend.aes256XtsDecryptUnits(key, first, unit, data)),
        `decrypt, ${id}`,
      ).toBe('CRYPTO_INPUT');
    }
    // The edges that are allowed.
    expect(backend.aes256XtsEncryptUnits(KEY, max, 16, new Uint8Array(16)).length).toBe(16);
    expect(backend.aes256XtsEncryptUnits(KEY, max - 1, 16, new Uint8Array(32)).length).toBe(32);
    expect(backend.aes256XtsDecryptUnits(KEY, -0, 16, new Uint8Array(16)).length).toBe(16);
  });
});

describe.each(BACKENDS)('PBKDF2-HMAC-SHA256 on the %s backend', (_name, backend) => {
  it('RFC 7914 §11: P="passwd" S="salt" c=1 and P="Password" S="NaCl" c=80000, 64 bytes each', () => {
    for (const v of PBKDF2_SHA256_RFC7914) {
      expect(toHex(backend.pbkdf2Sha256(utf8(v.password), utf8(v.salt), v.iterations, 64)), v.password).toBe(
        v.dk,
      );
    }
  });

  it('gives 1 and 1024 bytes, each a prefix of the longer output; empty password and salt are allowed', () => {
    const [p, s] = [utf8('passwd'), utf8('salt')];
    const long = backend.pbkdf2Sha256(p, s, 2, 1024);
    expect(long.length).toBe(1024);
    expect(toHex(backend.pbkdf2Sha256(p, s, 2, 1))).toBe(toHex(long.subarray(0, 1)));
    expect(toHex(backend.pbkdf2Sha256(p, s, 2, 33))).toBe(toHex(long.subarray(0, 33)));
    expect(backend.pbkdf2Sha256(new Uint8Array(0), new Uint8Array(0), 1, 32).length).toBe(32);
  });

  it('throws CRYPTO_INPUT for iterations outside 1..10_000_000, lengths outside 1..1024, non-array inputs', () => {
    const [p, s] = [utf8('passwd'), utf8('salt')];
    for (const c of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 10_000_001, 2 ** 53]) {
      expect(
        codeOf(() => backend.pbkdf2Sha256(p, s, c, 32)),
        `iterations ${c}`,
      ).toBe('CRYPTO_INPUT');
    }
    for (const n of [0, -1, 1.5, Number.NaN, 1025, 4096]) {
      expect(
        codeOf(() => backend.pbkdf2Sha256(p, s, 1, n)),
        `length ${n}`,
      ).toBe('CRYPTO_INPUT');
    }
    const notBytes = 'passwd' as unknown as Uint8Array;
    expect(codeOf(() => backend.pbkdf2Sha256(notBytes, s, 1, 32))).toBe('CRYPTO_INPUT');
    expect(codeOf(() => backend.pbkdf2Sha256(p, notBytes, 1, 32))).toBe('CRYPTO_INPUT');
  });
});
