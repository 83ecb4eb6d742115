import { describe, expect, it } from 'vitest';
import { BACKENDS, chachaVectors, codeOf, hex, hkdfVectors, tally, toHex } from './vectors.js';

const aead = chachaVectors();
const aeadCases = aead.testGroups.flatMap((g) => g.tests.map((t) => ({ ...t, ivSize: g.ivSize })));
const aeadCounts = tally(aeadCases.map((c) => c.result));

const hkdf = hkdfVectors();
const hkdfCases = hkdf.testGroups.flatMap((g) => g.tests);
const hkdfCounts = tally(hkdfCases.map((c) => c.result));

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('vector files', () => {
  it(`ChaCha20-Poly1305: ${aead.numberOfTests} cases, 256 valid and 69 invalid`, () => {
    expect(aeadCases.length).toBe(aead.numberOfTests);
    expect(aeadCounts).toEqual({ valid: 256, invalid: 69 });
  });

  it('every case with a nonce other than 96 bits is invalid (we support only 12-byte nonces)', () => {
    const wrong = aeadCases
      .filter((c) => c.ivSize !== 96 && (c.result !== 'invalid' || !c.flags.includes('InvalidNonceSize')))
      .map((c) => `tcId ${c.tcId} ivSize ${c.ivSize} ${c.result}`);
    expect(wrong).toEqual([]);
    expect(aeadCases.filter((c) => c.ivSize !== 96).length).toBe(9);
  });

  it(`HKDF-SHA256: ${hkdf.numberOfTests} cases, 83 valid and 3 invalid (all SizeTooLarge)`, () => {
    expect(hkdfCases.length).toBe(hkdf.numberOfTests);
    expect(hkdfCounts).toEqual({ valid: 83, invalid: 3 });
    expect(
      hkdfCases.filter((c) => c.result === 'invalid').every((c) => c.flags.includes('SizeTooLarge')),
    ).toBe(true);
  });
});

describe.each(BACKENDS)('ChaCha20-Poly1305 on the %s backend', (_name, backend) => {
  it(`Wycheproof: ${aeadCounts.valid} valid cases seal to ct ‖ tag and open; ${aeadCounts.invalid} invalid cases are refused`, () => {
    const wrong: string[] = [];
    const seen: Record<string, number> = {};
    for (const c of aeadCases) {
      const [key, iv, aad, msg] = [hex(c.key), hex(c.iv), hex(c.aad), hex(c.msg)];
      const sealed = hex(c.ct + c.tag);
      const id = `tcId ${c.tcId} ${c.result} [${c.flags.join(',')}]`;
      const before = wrong.length;
      if (c.result === 'valid') {
        const ct = toHex(backend.aeadSeal(key, iv, aad, msg));
        if (ct !== c.ct + c.tag) wrong.push(`${id}: seal gave ${ct}`);
        const pt = backend.aeadOpen(key, iv, aad, sealed);
        if (pt === null || toHex(pt) !== c.msg)
          wrong.push(`${id}: open gave ${pt === null ? null : toHex(pt)}`);
      } else if (c.ivSize !== 96) {
        const sealCode = codeOf(() => backend.aeadSeal(key, iv, aad, msg));
        const openCode = codeOf(() => backend.aeadOpen(key, iv, aad, sealed));
        if (sealCode !== 'CRYPTO_INPUT' || openCode !== 'CRYPTO_INPUT')
          wrong.push(`${id}: ${sealCode}/${openCode}`);
      } else {
        const pt = backend.aeadOpen(key, iv, aad, sealed);
        if (pt !== null) wrong.push(`${id}: open gave ${toHex(pt)}`);
      }
      if (wrong.length === before) seen[c.result] = (seen[c.result] ?? 0) + 1;
    }
    expect(wrong).toEqual([]);
    expect(seen).toEqual({ valid: 256, invalid: 69 });
  });

  it('returns null for a sealed input shorter than a tag, and for any flipped bit', () => {
    const key = new Uint8Array(32).fill(1);
    const nonce = new Uint8Array(12).fill(2);
    const aad = utf8('aad');
    for (let n = 0; n < 16; n++)
      expect(backend.aeadOpen(key, nonce, aad, new Uint8Array(n)), `length ${n}`).toBeNull();
    const sealed = backend.aeadSeal(key, nonce, aad, utf8('hello'));
    expect(sealed.length).toBe(5 + 16);
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const t = Uint8Array.from(sealed);
      t[bit >> 3]! ^= 1 << (bit & 7);
      expect(backend.aeadOpen(key, nonce, aad, t), `bit ${bit}`).toBeNull();
    }
    expect(backend.aeadOpen(key, nonce, utf8('aae'), sealed)).toBeNull();
    expect(backend.aeadOpen(key, nonce, aad, sealed)).toEqual(utf8('hello'));
  });

  it('throws CRYPTO_INPUT for a key other than 32 bytes or a nonce other than 12', () => {
    const ok = { key: new Uint8Array(32), nonce: new Uint8Array(12) };
    for (const n of [0, 16, 31, 33]) {
      expect(
        codeOf(() => backend.aeadSeal(new Uint8Array(n), ok.nonce, ok.key, ok.key)),
        `key ${n}`,
      ).toBe('CRYPTO_INPUT');
      expect(
        codeOf(() => backend.aeadOpen(new Uint8Array(n), ok.nonce, ok.key, ok.key)),
        `key ${n}`,
      ).toBe('CRYPTO_INPUT');
    }
    for (const n of [0, 8, 11, 13, 24]) {
      expect(
        codeOf(() => backend.aeadSeal(ok.key, new Uint8Array(n), ok.key, ok.key)),
        `nonce ${n}`,
      ).toBe('CRYPTO_INPUT');
      expect(
        codeOf(() => backend.aeadOpen(ok.key, new Uint8Array(n), ok.key, ok.key)),
        `nonce ${n}`,
      ).toBe('CRYPTO_INPUT');
    }
  });
});

describe.each(BACKENDS)('SHA-256, HMAC and HKDF on the %s backend', (_name, backend) => {
  it('SHA-256 (FIPS 180-2 "abc") and HMAC-SHA256 (RFC 4231 test case 2)', () => {
    expect(toHex(backend.sha256(utf8('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(toHex(backend.hmacSha256(utf8('Jefe'), utf8('what do ya want for nothing?')))).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('HMAC-SHA256 keys longer than the block are hashed first (RFC 4231 test cases 6 and 7)', () => {
    const key = new Uint8Array(131).fill(0xaa);
    expect(
      toHex(backend.hmacSha256(key, utf8('Test Using Larger Than Block-Size Key - Hash Key First'))),
    ).toBe('60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
    const data = utf8(
      'This is a test using a larger than block-size key and a larger than block-size data. ' +
        'The key needs to be hashed before being used by the HMAC algorithm.',
    );
    expect(toHex(backend.hmacSha256(key, data))).toBe(
      '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
    );
  });

  it('HMAC-SHA256 with a key of exactly one block and with an empty key', () => {
    // Values from OpenSSL (node:crypto createHmac), an independent implementation.
    expect(toHex(backend.hmacSha256(new Uint8Array(64).fill(0x0b), new Uint8Array(0)))).toBe(
      '75c2e15a41527bb3a793d864734d4e49cb8dc405cdf2b2ff6a44169afa1c5dee',
    );
    expect(toHex(backend.hmacSha256(new Uint8Array(0), utf8('abc')))).toBe(
      toHex(backend.hmacSha256(new Uint8Array(32), utf8('abc'))),
    );
  });

  it(`Wycheproof: ${hkdfCounts.valid} valid cases give the exact OKM; ${hkdfCounts.invalid} too-large sizes throw CRYPTO_INPUT`, () => {
    const wrong: string[] = [];
    for (const c of hkdfCases) {
      const id = `tcId ${c.tcId} ${c.result} [${c.flags.join(',')}] size ${c.size}`;
      const prk = backend.hkdfExtract(hex(c.salt), hex(c.ikm));
      if (c.result === 'valid') {
        const okm = toHex(backend.hkdfExpand(prk, hex(c.info), c.size));
        if (okm !== c.okm) wrong.push(`${id}: got ${okm}`);
      } else {
        const code = codeOf(() => backend.hkdfExpand(prk, hex(c.info), c.size));
        if (code !== 'CRYPTO_INPUT') wrong.push(`${id}: ${code}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('HKDF-Expand gives 0 and 8160 bytes, and refuses 8161, negative, fractional sizes and a short PRK', () => {
    const prk = backend.hkdfExtract(new Uint8Array(0), utf8('ikm'));
    expect(backend.hkdfExpand(prk, new Uint8Array(0), 0)).toEqual(new Uint8Array(0));
    const max = backend.hkdfExpand(prk, utf8('info'), 8160);
    expect(max.length).toBe(8160);
    expect(max.subarray(0, 40)).toEqual(backend.hkdfExpand(prk, utf8('info'), 40));
    for (const n of [8161, -1, 1.5, Number.NaN]) {
      expect(
        codeOf(() => backend.hkdfExpand(prk, new Uint8Array(0), n)),
        `length ${n}`,
      ).toBe('CRYPTO_INPUT');
    }
    expect(codeOf(() => backend.hkdfExpand(prk.subarray(0, 31), new Uint8Array(0), 32))).toBe('CRYPTO_INPUT');
  });
});
