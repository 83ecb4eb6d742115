/**
 * Input checks and byte-level curve facts shared by both backends, so that `noble` and `node`
 * reject exactly the same inputs (TB-13: identical bytes wherever the output is deterministic),
 * and the XTS data-unit framing both run over their own AES-256-ECB.
 * Internal to `crypto/`: not re-exported from the package.
 */

import { ProtocolError } from '../errors.js';

/** Throws CRYPTO_INPUT unless `value` is a Uint8Array of exactly `length` bytes. */
export function expectLength(what: string, value: Uint8Array, length: number): void {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new ProtocolError('CRYPTO_INPUT', `${what} must be ${length} bytes`, {
      what,
      expected: length,
      actual: value instanceof Uint8Array ? value.length : -1,
    });
  }
}

/** Throws CRYPTO_INPUT unless `value` is a Uint8Array (of any length). */
export function expectBytes(what: string, value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) {
    throw new ProtocolError('CRYPTO_INPUT', `${what} must be a Uint8Array`, { what });
  }
}

/** HKDF-Expand output limit for SHA-256 (RFC 5869 §2.3: L <= 255 * HashLen). */
export const HKDF_SHA256_MAX = 255 * 32;

/** Throws CRYPTO_INPUT unless 0 <= length <= 255 * 32 and `prk` is at least HashLen bytes. */
export function expectHkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): void {
  expectBytes('HKDF info', info);
  expectBytes('HKDF PRK', prk);
  if (prk.length < 32) {
    // RFC 5869 §2.3: PRK is "a pseudorandom key of at least HashLen octets".
    throw new ProtocolError('CRYPTO_INPUT', 'HKDF PRK must be at least 32 bytes', { actual: prk.length });
  }
  if (!Number.isSafeInteger(length) || length < 0 || length > HKDF_SHA256_MAX) {
    throw new ProtocolError('CRYPTO_INPUT', `HKDF-SHA256 output length must be 0..${HKDF_SHA256_MAX}`, {
      length,
    });
  }
}

/** XTS-AES-256 key: K1 ‖ K2, two AES-256 keys (IEEE 1619-2007). */
export const XTS_KEY_BYTES = 64;
/** The AES block, and XTS's tweak, in bytes. */
export const XTS_BLOCK_BYTES = 16;
/**
 * Largest XTS data unit: 2^20 AES blocks (IEEE 1619-2007, SP 800-38E). OpenSSL 3 refuses longer
 * inputs, so noble must too.
 */
export const XTS_MAX_BYTES = (1 << 20) * XTS_BLOCK_BYTES;

/**
 * Throws CRYPTO_INPUT unless `key` is 64 bytes with K1 != K2, `tweak` 16 bytes and `data` a whole
 * number of blocks, 1..2^20 of them (no ciphertext stealing: TB-10 sectors are whole blocks).
 * XTS masks block 0 with α^0, which Rogaway's single-key XEX proof excludes, so its security rests
 * on K1 and K2 being independent; FIPS 140-3 IG C.I requires K1 != K2. OpenSSL refuses equal halves
 * for encryption but accepts them for decryption, and noble would accept both, so both backends
 * decide here.
 */
export function expectXts(key: Uint8Array, tweak: Uint8Array, data: Uint8Array): void {
  expectLength('XTS key', key, XTS_KEY_BYTES);
  expectLength('XTS tweak', tweak, XTS_BLOCK_BYTES);
  expectBytes('XTS data', data);
  const n = data.length;
  if (n < XTS_BLOCK_BYTES || n % XTS_BLOCK_BYTES !== 0 || n > XTS_MAX_BYTES) {
    throw new ProtocolError(
      'CRYPTO_INPUT',
      `XTS data must be a multiple of ${XTS_BLOCK_BYTES} bytes, ${XTS_BLOCK_BYTES}..${XTS_MAX_BYTES}`,
      { what: 'XTS data', actual: n },
    );
  }
  expectXtsHalves(key);
}

/** Throws CRYPTO_INPUT when the 64-byte XTS key has K1 == K2 (see {@link expectXts}). */
function expectXtsHalves(key: Uint8Array): void {
  let diff = 0; // constant time: the halves are secret
  for (let i = 0; i < 32; i++) diff |= key[i]! ^ key[32 + i]!;
  if (diff === 0) {
    throw new ProtocolError('CRYPTO_INPUT', 'XTS key halves K1 and K2 must differ', { what: 'XTS key' });
  }
}

/**
 * The checks of {@link expectXts} for a run of consecutive data units: `unitBytes` a whole number
 * of blocks, 1..2^20 of them; `data` a Uint8Array of a positive whole number of units;
 * `firstUnit` a safe non-negative integer such that the last unit's number, firstUnit + units - 1,
 * is one too; `key` as for one unit (64 bytes, K1 != K2). Returns the number of units.
 */
export function expectXtsUnits(
  key: Uint8Array,
  firstUnit: number,
  unitBytes: number,
  data: Uint8Array,
): number {
  expectLength('XTS key', key, XTS_KEY_BYTES);
  if (
    !Number.isSafeInteger(unitBytes) ||
    unitBytes < XTS_BLOCK_BYTES ||
    unitBytes % XTS_BLOCK_BYTES !== 0 ||
    unitBytes > XTS_MAX_BYTES
  ) {
    throw new ProtocolError(
      'CRYPTO_INPUT',
      `an XTS data unit must be a multiple of ${XTS_BLOCK_BYTES} bytes, ${XTS_BLOCK_BYTES}..${XTS_MAX_BYTES}`,
      { what: 'XTS data unit', unitBytes },
    );
  }
  expectBytes('XTS data', data);
  const n = data.length;
  if (n === 0 || n % unitBytes !== 0) {
    throw new ProtocolError('CRYPTO_INPUT', 'XTS data must be a positive whole number of data units', {
      what: 'XTS data',
      actual: n,
      unitBytes,
    });
  }
  const units = n / unitBytes;
  // Compared as MAX - firstUnit, exact for every safe firstUnit (firstUnit + units can round).
  if (!Number.isSafeInteger(firstUnit) || firstUnit < 0 || units - 1 > Number.MAX_SAFE_INTEGER - firstUnit) {
    throw new ProtocolError(
      'CRYPTO_INPUT',
      'the first XTS data unit must be a safe non-negative integer, and so must the last',
      { what: 'XTS first unit', firstUnit, units },
    );
  }
  expectXtsHalves(key);
  return units;
}

/** The two AES-256 operations of XTS, over one backend's AES-256-ECB (no padding). */
export interface XtsAes {
  /**
   * E_K2 of each 16-byte block of `tweaks`; may work in place and return `tweaks` itself. What it
   * returns must stay as it is through the `blocks` call that follows (xtsRun reads it again after).
   */
  tweaks(tweaks: Uint8Array): Uint8Array;
  /**
   * E_K1 (or D_K1 when `decrypt`) of each 16-byte block of `blocks` into a fresh array (`blocks`
   * is scratch, and is left as it is).
   */
  blocks(blocks: Uint8Array, decrypt: boolean): Uint8Array;
}

/**
 * Units per {@link xtsUnits} step are bounded so that the kept scratch stays small and no single
 * ECB call gets near a native length limit (node:crypto takes at most 2^31 - 1 bytes per update).
 */
const XTS_STEP_BYTES = 64 * 1024;

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * Scratch kept across calls, made on first use (every call is synchronous, so one set serves both
 * backends): the tweaks of one step (at most XTS_STEP_BYTES / 16 units of 16 bytes) and its masked
 * input, both wiped before a call returns. A step longer than XTS_STEP_BYTES (one data unit of
 * more than 64 KiB) gets a fresh input array instead.
 */
let keptTweaks: Uint8Array | undefined;
let keptInput: Uint8Array | undefined;

/** A 4-byte word view of `bytes`, whose byteOffset and length must be multiples of 4. */
function words(bytes: Uint8Array): Int32Array {
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
}

/** A little-endian 32-bit value as the word that holds its bytes in memory on this host. */
function memoryWord(v: number): number {
  return LITTLE_ENDIAN ? v : (v >>> 24) | ((v >>> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
}

/**
 * XTS (IEEE 1619-2007 §5.3, §5.4) of `src`, consecutive data units of `unitBytes`, where unit u
 * takes the 16-byte tweak at 16u of `tweaks` (overwritten: E_K2 may run in place).
 * Block j of a unit is C_j = E_K1(P_j ⊕ T_j) ⊕ T_j (or P_j = D_K1(C_j ⊕ T_j) ⊕ T_j), with
 * T_0 = E_K2(tweak) and T_j = T_{j-1} ⊗ α in GF(2^128) (§5.2). AES under each key is one ECB call
 * over the whole of `src`: the T_j are computed as the data is masked before it, and computed again
 * as its output is unmasked (two shifts per block cost less than writing, reading and wiping a mask
 * the size of the data). Returns a fresh array: the one the K1 call made, unmasked in place.
 */
export function xtsRun(
  aes: XtsAes,
  tweaks: Uint8Array,
  unitBytes: number,
  src: Uint8Array,
  decrypt: boolean,
): Uint8Array {
  const n = src.length;
  keptInput ??= new Uint8Array(XTS_STEP_BYTES);
  const input = n <= XTS_STEP_BYTES ? keptInput.subarray(0, n) : new Uint8Array(n);
  let t: Uint8Array = tweaks;
  try {
    t = aes.tweaks(tweaks);
    const input32 = words(input);
    if ((src.byteOffset & 3) === 0) xtsMask(t, unitBytes, words(src), input32);
    else {
      input.set(src);
      xtsMask(t, unitBytes, input32, input32);
    }
    let out = aes.blocks(input, decrypt);
    if ((out.byteOffset & 3) !== 0) {
      const aligned = out.slice();
      out.fill(0); // E_K1(P ⊕ T) beside C would give T away
      out = aligned;
    }
    const out32 = words(out);
    xtsMask(t, unitBytes, out32, out32);
    return out;
  } finally {
    t.fill(0);
    tweaks.fill(0);
    input.fill(0);
  }
}

/**
 * `to` = `from` ⊕ the T_j of every data unit of `unitBytes` (unit u from the E_K2 output at 16u of
 * `t`); `to` may be `from`.
 */
function xtsMask(t: Uint8Array, unitBytes: number, from: Int32Array, to: Int32Array): void {
  const unitWords = unitBytes >>> 2;
  for (let u = 0, at = 0; at < to.length; u += 16, at += unitWords) {
    // T_0 as four little-endian 32-bit values a (bits 0-31) .. d (bits 96-127), held as int32 (only
    // their bits matter, and V8 keeps int32 in registers).
    let a = t[u]! | (t[u + 1]! << 8) | (t[u + 2]! << 16) | (t[u + 3]! << 24);
    let b = t[u + 4]! | (t[u + 5]! << 8) | (t[u + 6]! << 16) | (t[u + 7]! << 24);
    let c = t[u + 8]! | (t[u + 9]! << 8) | (t[u + 10]! << 16) | (t[u + 11]! << 24);
    let d = t[u + 12]! | (t[u + 13]! << 8) | (t[u + 14]! << 16) | (t[u + 15]! << 24);
    for (let w = at, end = at + unitWords; w < end; w += 4) {
      to[w] = from[w]! ^ memoryWord(a);
      to[w + 1] = from[w + 1]! ^ memoryWord(b);
      to[w + 2] = from[w + 2]! ^ memoryWord(c);
      to[w + 3] = from[w + 3]! ^ memoryWord(d);
      // ⊗ α on the 128-bit little-endian value: shift left one bit and fold a carry out of bit 127
      // back in as x^7 + x^2 + x + 1 (0x87), by a mask (d >> 31 is all ones or zero), not a
      // branch: T_j is secret.
      const fold = (d >> 31) & 0x87;
      d = (d << 1) | (c >>> 31);
      c = (c << 1) | (b >>> 31);
      b = (b << 1) | (a >>> 31);
      a = (a << 1) ^ fold;
    }
  }
}

/**
 * XTS over `data`, consecutive data units of `unitBytes` numbered from `firstUnit`, each with the
 * tweak = its number as a 128-bit little-endian integer. The inputs must have passed
 * {@link expectXtsUnits}. Returns a fresh array.
 */
export function xtsUnits(
  aes: XtsAes,
  firstUnit: number,
  unitBytes: number,
  data: Uint8Array,
  decrypt: boolean,
): Uint8Array {
  const perStep = Math.max(1, Math.floor(XTS_STEP_BYTES / unitBytes));
  const stepBytes = perStep * unitBytes;
  // One step (every access of up to 64 KiB) returns the array its K1 call made; more are gathered.
  if (data.length <= stepBytes) return xtsStep(aes, firstUnit, unitBytes, data, decrypt);
  const out = new Uint8Array(data.length);
  for (let at = 0, unit = firstUnit; at < data.length; at += stepBytes, unit += perStep) {
    const step = xtsStep(
      aes,
      unit,
      unitBytes,
      data.subarray(at, Math.min(data.length, at + stepBytes)),
      decrypt,
    );
    out.set(step, at);
    step.fill(0);
  }
  return out;
}

/** {@link xtsRun} over units numbered from `firstUnit`, at most XTS_STEP_BYTES / 16 of them. */
function xtsStep(
  aes: XtsAes,
  firstUnit: number,
  unitBytes: number,
  data: Uint8Array,
  decrypt: boolean,
): Uint8Array {
  const units = data.length / unitBytes;
  keptTweaks ??= new Uint8Array(XTS_STEP_BYTES);
  const tweaks = keptTweaks.subarray(0, units * XTS_BLOCK_BYTES);
  tweaks.fill(0);
  for (let i = 0, o = 0; i < units; i++, o += XTS_BLOCK_BYTES) {
    const v = firstUnit + i; // < 2^53: bits 0-31, then 32-52; bytes 7..15 stay zero
    const lo = v >>> 0;
    const hi = (v - lo) / 0x1_0000_0000;
    tweaks[o] = lo;
    tweaks[o + 1] = lo >>> 8;
    tweaks[o + 2] = lo >>> 16;
    tweaks[o + 3] = lo >>> 24;
    tweaks[o + 4] = hi;
    tweaks[o + 5] = hi >>> 8;
    tweaks[o + 6] = hi >>> 16;
  }
  return xtsRun(aes, tweaks, unitBytes, data, decrypt);
}

/** PBKDF2 bounds (TB-10 passphrase keys): far above any sane setting, low enough not to hang. */
export const PBKDF2_MAX_ITERATIONS = 10_000_000;
export const PBKDF2_MAX_LENGTH = 1024;

/** Throws CRYPTO_INPUT unless the PBKDF2 inputs are byte arrays and both counts in range. */
export function expectPbkdf2(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): void {
  expectBytes('PBKDF2 password', password);
  expectBytes('PBKDF2 salt', salt);
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > PBKDF2_MAX_ITERATIONS) {
    throw new ProtocolError('CRYPTO_INPUT', `PBKDF2 iterations must be 1..${PBKDF2_MAX_ITERATIONS}`, {
      iterations,
    });
  }
  if (!Number.isSafeInteger(length) || length < 1 || length > PBKDF2_MAX_LENGTH) {
    throw new ProtocolError('CRYPTO_INPUT', `PBKDF2 output length must be 1..${PBKDF2_MAX_LENGTH}`, {
      length,
    });
  }
}

/** Constant-time test for the all-zero string (RFC 9180 §7.1.4 check on DH outputs). */
export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i]!;
  return acc === 0;
}

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** True when the first 32 bytes of `a` at `offset` equal `b` (variable time: public data only). */
function equal32(a: Uint8Array, offset: number, b: Uint8Array, topMask = 0xff): boolean {
  for (let i = 0; i < 31; i++) if (a[offset + i] !== b[i]) return false;
  return (a[offset + 31]! & topMask) === b[31];
}

/**
 * Every u-coordinate encoding (bit 255 ignored, RFC 7748 §5) whose point has order dividing 8,
 * on the curve or its twist: 0, 1, p-1, the two order-8 points, and the non-canonical p and p+1.
 * A clamped scalar is a multiple of 8, so for exactly these inputs the RFC 7748 ladder ends at the
 * point at infinity and its output x_2 * z_2^(p-2) is the all-zero string (z_2 = 0). No other
 * input gives zero: a clamped scalar lies in [2^254, 2^255) and is divisible by no large prime
 * factor of either group order. This list is the one libsodium and @noble/curves block.
 */
const X25519_LOW_ORDER: readonly Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map(hex);

/** True when X25519 with this 32-byte public key yields the all-zero output for every secret. */
export function x25519IsLowOrder(publicKey: Uint8Array): boolean {
  for (const bad of X25519_LOW_ORDER) if (equal32(publicKey, 0, bad, 0x7f)) return true;
  return false;
}

/** The eight canonical encodings of the Ed25519 torsion subgroup (points of order 1, 2, 4, 8). */
export const ED25519_SMALL_ORDER: readonly Uint8Array[] = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  '0000000000000000000000000000000000000000000000000000000000000000',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
].map(hex);

/**
 * Byte-level part of the Ed25519 public-key policy both backends share: rejects a non-canonical
 * y (>= p, RFC 8032 §5.1.3 step 1), the sign bit set on a point with x = 0 (y = 1 or y = p-1,
 * §5.1.3 step 4), and the eight small-order points. Whether y lies on the curve at all is left to
 * the decoder of each backend. OpenSSL on its own accepts the non-canonical and small-order keys
 * (with the identity as key, S = 0 and R = identity verify any message), hence this check.
 */
export function ed25519PublicKeyRejected(publicKey: Uint8Array): boolean {
  const top = publicKey[31]! & 0x7f;
  let allFf = top === 0x7f;
  for (let i = 1; allFf && i < 31; i++) allFf = publicKey[i] === 0xff;
  if (allFf && publicKey[0]! >= 0xed) return true; // y >= p = 2^255 - 19
  const sign = publicKey[31]! & 0x80;
  if (sign !== 0 && (equal32(publicKey, 0, X25519_LOW_ORDER[1]!, 0x7f) || (allFf && publicKey[0] === 0xec))) {
    return true; // y = 1 or y = p - 1 with the sign bit set: x = 0 has no negative
  }
  for (const bad of ED25519_SMALL_ORDER) if (equal32(publicKey, 0, bad)) return true;
  return false;
}

/** Group order L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const ED25519_L = hex('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');

/** True when the 32-byte little-endian scalar at `offset` is < L (RFC 8032 §5.1.7 step 1). */
export function ed25519ScalarCanonical(bytes: Uint8Array, offset: number): boolean {
  for (let i = 31; i >= 0; i--) {
    const a = bytes[offset + i]!;
    const l = ED25519_L[i]!;
    if (a !== l) return a < l;
  }
  return false; // equal to L
}
