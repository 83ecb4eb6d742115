import { describe, expect, it } from 'vitest';
import { x25519IsLowOrder } from '../../src/crypto/checks.js';
import { BACKENDS, codeOf, hex, tally, toHex, x25519Vectors } from './vectors.js';

const wycheproof = x25519Vectors();
const cases = wycheproof.testGroups.flatMap((g) => g.tests);
const counts = tally(cases.map((c) => c.result));
const ZERO = '00'.repeat(32);

/** RFC 7748 §5 X25519, transcribed literally (bigint ladder, output x_2 * z_2^(p-2)). */
const P = 2n ** 255n - 19n;
const A24 = 121665n;
const mod = (x: bigint) => ((x % P) + P) % P;
function pow(b: bigint, e: bigint): bigint {
  let r = 1n;
  for (let x = mod(b); e > 0n; e >>= 1n, x = mod(x * x)) if (e & 1n) r = mod(r * x);
  return r;
}
function le(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}
function rfc7748(k: Uint8Array, u: Uint8Array): string {
  const kc = Uint8Array.from(k);
  kc[0]! &= 248;
  kc[31]! &= 127;
  kc[31]! |= 64;
  const scalar = le(kc);
  const uc = Uint8Array.from(u);
  uc[31]! &= 127;
  const x1 = mod(le(uc));
  let [x2, z2, x3, z3, swap] = [1n, 0n, x1, 1n, 0n];
  for (let t = 254n; t >= 0n; t--) {
    const kt = (scalar >> t) & 1n;
    if ((swap ^ kt) === 1n) [x2, x3, z2, z3] = [x3, x2, z3, z2];
    swap = kt;
    const a = mod(x2 + z2);
    const aa = mod(a * a);
    const b = mod(x2 - z2);
    const bb = mod(b * b);
    const e = mod(aa - bb);
    const c = mod(x3 + z3);
    const d = mod(x3 - z3);
    const da = mod(d * a);
    const cb = mod(c * b);
    x3 = mod((da + cb) * (da + cb));
    z3 = mod(x1 * mod((da - cb) * (da - cb)));
    x2 = mod(aa * bb);
    z2 = mod(e * (aa + A24 * e));
  }
  if (swap === 1n) [x2, x3, z2, z3] = [x3, x2, z3, z2];
  const out = mod(x2 * pow(z2, P - 2n));
  return toHex(Uint8Array.from({ length: 32 }, (_, i) => Number((out >> BigInt(8 * i)) & 0xffn)));
}

describe('X25519 vectors and the low-order list', () => {
  it(`the Wycheproof file has ${wycheproof.numberOfTests} cases: 264 valid, 254 acceptable, 0 invalid`, () => {
    expect(cases.length).toBe(wycheproof.numberOfTests);
    expect(counts).toEqual({ valid: 264, acceptable: 254 });
  });

  it('the low-order list matches exactly the Wycheproof cases whose shared secret is zero', () => {
    const wrong = cases
      .filter((c) => x25519IsLowOrder(hex(c.public)) !== (c.shared === ZERO))
      .map((c) => `tcId ${c.tcId} [${c.flags.join(',')}] public ${c.public} shared ${c.shared}`);
    expect(wrong).toEqual([]);
    expect(cases.filter((c) => c.shared === ZERO).length).toBe(31);
  });

  it('for every low-order u (either top bit) the RFC 7748 ladder itself outputs 32 zero bytes', () => {
    const lowOrder = [...new Set(cases.filter((c) => c.shared === ZERO).map((c) => c.public))];
    const scalars = cases.slice(0, 8).map((c) => hex(c.private));
    const wrong: string[] = [];
    for (const u of lowOrder) {
      for (const top of [0, 0x80]) {
        const uu = hex(u);
        uu[31] = (uu[31]! & 0x7f) | top;
        for (const k of scalars) {
          const out = rfc7748(k, uu);
          if (out !== ZERO) wrong.push(`u ${toHex(uu)} k ${toHex(k)}: ${out}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(lowOrder.length).toBeGreaterThanOrEqual(7);
  });

  it('the transcribed ladder agrees with Wycheproof on its first cases (so it is a fair witness)', () => {
    for (const c of cases.slice(0, 20)) {
      expect(rfc7748(hex(c.private), hex(c.public)), `tcId ${c.tcId}`).toBe(c.shared);
    }
  });
});

describe.each(BACKENDS)('X25519 on the %s backend', (_name, backend) => {
  it(`Wycheproof: all ${counts.valid} valid and all ${counts.acceptable} acceptable cases give exactly the expected shared secret`, () => {
    // Acceptable cases (twist points, non-canonical u, low-order u giving zero) are all computed as
    // RFC 7748 says on both backends; rejecting a zero output is HPKE's job (§7.1.4).
    const wrong: string[] = [];
    const seen: Record<string, number> = {};
    for (const c of cases) {
      let got: string;
      try {
        got = toHex(backend.x25519(hex(c.private), hex(c.public)));
      } catch (e) {
        got = `threw ${String(e)}`;
      }
      if (c.result === 'invalid' ? got === c.shared : got !== c.shared) {
        wrong.push(`tcId ${c.tcId} ${c.result} [${c.flags.join(',')}]: got ${got}, expected ${c.shared}`);
      } else {
        seen[c.result] = (seen[c.result] ?? 0) + 1;
      }
    }
    expect(wrong).toEqual([]);
    expect(seen).toEqual({ valid: 264, acceptable: 254 });
  });

  it('public keys agree with the ladder on the base point u = 9', () => {
    const nine = new Uint8Array(32);
    nine[0] = 9;
    for (const c of cases.slice(0, 10)) {
      expect(toHex(backend.x25519PublicKey(hex(c.private))), `tcId ${c.tcId}`).toBe(
        rfc7748(hex(c.private), nine),
      );
    }
  });

  it('throws CRYPTO_INPUT for a secret or public key that is not 32 bytes', () => {
    const ok = new Uint8Array(32).fill(9);
    for (const n of [0, 31, 33]) {
      const bad = new Uint8Array(n).fill(9);
      expect(
        codeOf(() => backend.x25519PublicKey(bad)),
        `secret length ${n}`,
      ).toBe('CRYPTO_INPUT');
      expect(
        codeOf(() => backend.x25519(bad, ok)),
        `secret length ${n}`,
      ).toBe('CRYPTO_INPUT');
      expect(
        codeOf(() => backend.x25519(ok, bad)),
        `public length ${n}`,
      ).toBe('CRYPTO_INPUT');
    }
  });
});
