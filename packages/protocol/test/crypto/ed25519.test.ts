import { ED25519_TORSION_SUBGROUP, ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { ED25519_SMALL_ORDER } from '../../src/crypto/checks.js';
import { BACKENDS, codeOf, ed25519Vectors, hex, tally, toHex } from './vectors.js';

/** RFC 8032 §7.1 TEST 1-3, typed in from the RFC. */
const RFC8032 = [
  {
    name: 'TEST 1',
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

const wycheproof = ed25519Vectors();
const cases = wycheproof.testGroups.flatMap((g) => g.tests.map((t) => ({ ...t, pk: g.publicKey.pk })));
const counts = tally(cases.map((c) => c.result));

/** Hand-made signatures on which a cofactored verifier (noble's own) and OpenSSL disagree. */
const Point = ed25519.Point;
const Fn = Point.Fn;
const torsion = ED25519_TORSION_SUBGROUP.map((h) => Point.fromHex(h));
const a = 0x1234567890abcdefn; // a secret scalar; A = [a]B
const A = Point.BASE.multiply(a);
const challenge = (r: Uint8Array, pk: Uint8Array, m: Uint8Array) =>
  Fn.create(bytesToNumberLE(sha512(new Uint8Array([...r, ...pk, ...m]))));

function forge(rScalar: bigint, R: typeof A, pk: Uint8Array, m: Uint8Array) {
  const rBytes = R.toBytes();
  const s = Fn.create(rScalar + challenge(rBytes, pk, m) * a);
  return { pk, m, sig: new Uint8Array([...rBytes, ...numberToBytesLE(s, 32)]) };
}

interface Crafted {
  readonly name: string;
  readonly pk: Uint8Array;
  readonly m: Uint8Array;
  readonly sig: Uint8Array;
  readonly expected: boolean;
}

function craftedCases(): Crafted[] {
  const out: Crafted[] = [];
  const m = new Uint8Array([1, 2, 3]);
  for (let i = 1; i < 8; i++) {
    // R = [r]B + T: valid under the cofactored equation only.
    const f = forge(99n, Point.BASE.multiply(99n).add(torsion[i]!), A.toBytes(), m);
    out.push({ name: `R with torsion component T${i}`, ...f, expected: false });
    // A' = [a]B + T: [S]B = R + [k]A' holds exactly when [k]T = 0.
    const mixed = A.add(torsion[i]!).toBytes();
    for (let j = 0; j < 16; j++) {
      const mj = new Uint8Array([j]);
      const f2 = forge(77n + BigInt(j), Point.BASE.multiply(77n + BigInt(j)), mixed, mj);
      const k = challenge(f2.sig.subarray(0, 32), mixed, mj);
      const kills = Point.ZERO.equals(torsion[i]!.multiplyUnsafe(k));
      out.push({ name: `mixed-order A (T${i}), k mod 8 = ${k % 8n}`, ...f2, expected: kills });
    }
  }
  // Small-order A with R = identity, S = 0: OpenSSL alone accepts some of these for any message.
  const identity = hex(ED25519_TORSION_SUBGROUP[0]!);
  for (const [i, t] of ED25519_TORSION_SUBGROUP.entries()) {
    out.push({
      name: `small-order A #${i}`,
      pk: hex(t),
      m,
      sig: new Uint8Array([...identity, ...new Uint8Array(32)]),
      expected: false,
    });
  }
  // Non-canonical y >= p that decode to curve points, e.g. p + 1 (the identity).
  for (let y = 0n; y < 19n; y++) {
    for (const sign of [0, 0x80]) {
      const pk = numberToBytesLE(y + 2n ** 255n - 19n, 32);
      pk[31]! |= sign;
      out.push({
        name: `non-canonical A y=p+${y} sign=${sign}`,
        pk,
        m,
        sig: new Uint8Array([...identity, ...new Uint8Array(32)]),
        expected: false,
      });
    }
  }
  // x = 0 with the sign bit set (y = 1, y = p - 1), and S = L (non-canonical S).
  out.push({
    name: 'y=1 with sign bit',
    pk: hex(`01${'00'.repeat(30)}80`),
    m,
    sig: new Uint8Array([...identity, ...new Uint8Array(32)]),
    expected: false,
  });
  out.push({
    name: 'y=p-1 with sign bit',
    pk: hex(`ec${'ff'.repeat(31)}`),
    m,
    sig: new Uint8Array([...identity, ...new Uint8Array(32)]),
    expected: false,
  });
  const honest = forge(5n, Point.BASE.multiply(5n), A.toBytes(), m);
  out.push({ name: 'honest signature', ...honest, expected: true });
  const sPlusL = numberToBytesLE(bytesToNumberLE(honest.sig.subarray(32)) + Fn.ORDER, 32);
  out.push({
    name: 'S + L',
    pk: honest.pk,
    m,
    sig: new Uint8Array([...honest.sig.subarray(0, 32), ...sPlusL]),
    expected: false,
  });
  return out;
}

const crafted = craftedCases();

describe('Ed25519 shared checks', () => {
  it('the small-order list in checks.ts is the Ed25519 torsion subgroup', () => {
    expect(ED25519_SMALL_ORDER.map(toHex)).toEqual([...ED25519_TORSION_SUBGROUP]);
  });

  it('the hand-made cases include mixed-order signatures on both sides of [k]T = 0', () => {
    const mixed = crafted.filter((c) => c.name.startsWith('mixed-order'));
    expect(mixed.filter((c) => c.expected).length).toBeGreaterThan(5);
    expect(mixed.filter((c) => !c.expected).length).toBeGreaterThan(5);
  });

  it(`the Wycheproof file has ${wycheproof.numberOfTests} cases: 88 valid, 63 invalid`, () => {
    expect(cases.length).toBe(wycheproof.numberOfTests);
    expect(counts).toEqual({ valid: 88, invalid: 63 });
  });
});

describe.each(BACKENDS)('Ed25519 on the %s backend', (_name, backend) => {
  it.each(RFC8032)('RFC 8032 §7.1 $name: public key, signature, verification', (v) => {
    const seed = hex(v.secret);
    expect(toHex(backend.ed25519PublicKey(seed))).toBe(v.publicKey);
    expect(toHex(backend.ed25519Sign(seed, hex(v.message)))).toBe(v.signature);
    expect(backend.ed25519Verify(hex(v.publicKey), hex(v.message), hex(v.signature))).toBe(true);
  });

  it(`Wycheproof: accepts all ${counts.valid} valid and rejects all ${counts.invalid} invalid cases`, () => {
    const wrong: string[] = [];
    const seen: Record<string, number> = {};
    for (const c of cases) {
      let got: boolean | string;
      try {
        got = backend.ed25519Verify(hex(c.pk), hex(c.msg), hex(c.sig));
      } catch (e) {
        got = `threw ${String(e)}`;
      }
      const expected = c.result === 'valid';
      if (got !== expected) wrong.push(`tcId ${c.tcId} [${c.flags.join(',')}] ${c.comment}: got ${got}`);
      else seen[c.result] = (seen[c.result] ?? 0) + 1;
    }
    expect(wrong).toEqual([]);
    expect(seen).toEqual({ valid: 88, invalid: 63 });
  });

  it('decides hand-made torsion, small-order and non-canonical cases like the other backend', () => {
    const wrong: string[] = [];
    let accepted = 0;
    for (const c of crafted) {
      const got = backend.ed25519Verify(c.pk, c.m, c.sig);
      if (got !== c.expected) wrong.push(`${c.name}: expected ${c.expected}, got ${got}`);
      if (got) accepted++;
    }
    expect(wrong).toEqual([]);
    expect(accepted).toBe(crafted.filter((c) => c.expected).length);
  });

  it('throws CRYPTO_INPUT for a seed that is not 32 bytes', () => {
    for (const n of [0, 31, 33, 64]) {
      expect(
        codeOf(() => backend.ed25519PublicKey(new Uint8Array(n))),
        `seed length ${n}`,
      ).toBe('CRYPTO_INPUT');
      expect(
        codeOf(() => backend.ed25519Sign(new Uint8Array(n), new Uint8Array(1))),
        `seed length ${n}`,
      ).toBe('CRYPTO_INPUT');
    }
  });

  it('returns false (never throws) for a public key or signature of the wrong length', () => {
    const v = RFC8032[1]!;
    const pk = hex(v.publicKey);
    const sig = hex(v.signature);
    const m = hex(v.message);
    for (const n of [0, 31, 33]) {
      expect(
        backend.ed25519Verify(new Uint8Array([...pk, 0, 0]).subarray(0, n), m, sig),
        `pk length ${n}`,
      ).toBe(false);
    }
    for (const n of [0, 63, 65]) {
      const s = new Uint8Array(n);
      s.set(sig.subarray(0, Math.min(n, 64)));
      expect(backend.ed25519Verify(pk, m, s), `sig length ${n}`).toBe(false);
    }
    expect(backend.ed25519Verify(pk, m, sig)).toBe(true);
  });

  it('signs and verifies a 1 MiB message held in a subarray view', () => {
    const big = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
    const seed = hex(RFC8032[2]!.secret);
    const pk = backend.ed25519PublicKey(seed);
    const sig = backend.ed25519Sign(seed, big.subarray(7));
    expect(backend.ed25519Verify(pk, big.subarray(7), sig)).toBe(true);
    expect(backend.ed25519Verify(pk, big.subarray(8), sig)).toBe(false);
  });
});
