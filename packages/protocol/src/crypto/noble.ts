/**
 * The reference backend: pure JavaScript on @noble/curves, @noble/hashes and @noble/ciphers
 * (TB-13). Runs in a browser. Every other backend must give the same bytes and the same
 * accept/reject decisions.
 */

import { ecb } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { pbkdf2 } from '@noble/hashes/pbkdf2.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import type { CryptoBackend } from './backend.js';
import {
  ed25519PublicKeyRejected,
  ed25519ScalarCanonical,
  expectBytes,
  expectHkdfExpand,
  expectLength,
  expectPbkdf2,
  expectXts,
  expectXtsUnits,
  type XtsAes,
  x25519IsLowOrder,
  xtsRun,
  xtsUnits,
} from './checks.js';

const Point = ed25519.Point;
const Fn = Point.Fn;

/**
 * Strict RFC 8032 §5.1.7 verification with the cofactorless equation [S]B = R + [k]A', checked
 * as encode([S]B - [k]A') == R bytes (the form RFC 8032's reference code and OpenSSL use).
 * `ed25519.verify(…, { zip215: false })` is strict about encodings too but checks the cofactored
 * equation, so it accepts signatures whose R or A carries a torsion component that OpenSSL
 * rejects; writing the equation here keeps both backends' decisions identical. Comparing R as
 * bytes also rejects a non-canonical R. Small-order A is rejected as in noble's strict mode.
 */
function verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  expectBytes('message', message);
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  if (ed25519PublicKeyRejected(publicKey) || !ed25519ScalarCanonical(signature, 32)) return false;
  let A: InstanceType<typeof Point>;
  try {
    A = Point.fromBytes(publicKey, false);
  } catch {
    return false; // y is not the y of a curve point
  }
  const r = signature.subarray(0, 32);
  const h = sha512.create().update(r).update(publicKey).update(message).digest();
  const k = Fn.create(bytesToNumberLE(h));
  const s = bytesToNumberLE(signature.subarray(32, 64));
  const check = Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k)).toBytes();
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= check[i]! ^ r[i]!;
  return diff === 0;
}

function x25519Shared(secret: Uint8Array, publicKey: Uint8Array): Uint8Array {
  expectLength('X25519 secret', secret, 32);
  expectLength('X25519 public key', publicKey, 32);
  // noble refuses low-order points; RFC 7748's output for them is all zero (see checks.ts).
  if (x25519IsLowOrder(publicKey)) return new Uint8Array(32);
  return x25519.getSharedSecret(secret, publicKey);
}

function aeadOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | null {
  expectLength('AEAD key', key, 32);
  expectLength('AEAD nonce', nonce, 12);
  expectBytes('AEAD aad', aad);
  expectBytes('AEAD ciphertext', sealed);
  if (sealed.length < 16) return null; // too short to hold a tag: a forgery like any other
  try {
    return chacha20poly1305(key, nonce, aad).decrypt(sealed);
  } catch {
    return null;
  }
}

/** Raw AES: the XTS code does its own whole-block framing. */
const NO_PADDING = { disablePadding: true } as const;

/**
 * XTS-AES-256's two AES operations for the shared framing in checks.ts (IEEE 1619-2007 §5.3, §5.4;
 * @noble/ciphers has no XTS mode): one ECB call per key and step, so one key expansion per key and
 * step and no per-block cipher objects. An ecb() object encrypts only once, hence one per call.
 */
function xtsAes(key: Uint8Array): XtsAes {
  const k1 = key.subarray(0, 32);
  const k2 = key.subarray(32, 64);
  return {
    tweaks: (tweaks) => ecb(k2, NO_PADDING).encrypt(tweaks, tweaks),
    blocks: (blocks, decrypt) =>
      decrypt ? ecb(k1, NO_PADDING).decrypt(blocks) : ecb(k1, NO_PADDING).encrypt(blocks),
  };
}

/** One data unit under the caller's 16-byte tweak. */
function xts(key: Uint8Array, tweak: Uint8Array, data: Uint8Array, decrypt: boolean): Uint8Array {
  expectXts(key, tweak, data);
  return xtsRun(xtsAes(key), tweak.slice(), data.length, data, decrypt);
}

/** Consecutive data units whose tweaks are their numbers, from `firstUnit`. */
function xtsMany(
  key: Uint8Array,
  firstUnit: number,
  unitBytes: number,
  data: Uint8Array,
  decrypt: boolean,
): Uint8Array {
  expectXtsUnits(key, firstUnit, unitBytes, data);
  return xtsUnits(xtsAes(key), firstUnit, unitBytes, data, decrypt);
}

export const nobleBackend: CryptoBackend = {
  name: 'noble',

  ed25519PublicKey(seed) {
    expectLength('Ed25519 seed', seed, 32);
    return ed25519.getPublicKey(seed);
  },
  ed25519Sign(seed, message) {
    expectLength('Ed25519 seed', seed, 32);
    expectBytes('message', message);
    return ed25519.sign(message, seed);
  },
  ed25519Verify: verify,

  x25519PublicKey(secret) {
    expectLength('X25519 secret', secret, 32);
    return x25519.getPublicKey(secret);
  },
  x25519: x25519Shared,

  sha256(data) {
    expectBytes('data', data);
    return sha256(data);
  },
  hmacSha256(key, data) {
    expectBytes('HMAC key', key);
    expectBytes('data', data);
    return hmac(sha256, key, data);
  },
  hkdfExtract(salt, ikm) {
    expectBytes('HKDF salt', salt);
    expectBytes('HKDF IKM', ikm);
    return extract(sha256, ikm, salt);
  },
  hkdfExpand(prk, info, length) {
    expectHkdfExpand(prk, info, length);
    if (length === 0) return new Uint8Array(0);
    return expand(sha256, prk, info, length);
  },

  aeadSeal(key, nonce, aad, plaintext) {
    expectLength('AEAD key', key, 32);
    expectLength('AEAD nonce', nonce, 12);
    expectBytes('AEAD aad', aad);
    expectBytes('AEAD plaintext', plaintext);
    return chacha20poly1305(key, nonce, aad).encrypt(plaintext);
  },
  aeadOpen,

  aes256XtsEncrypt(key, tweak, data) {
    return xts(key, tweak, data, false);
  },
  aes256XtsDecrypt(key, tweak, data) {
    return xts(key, tweak, data, true);
  },
  aes256XtsEncryptUnits(key, firstUnit, unitBytes, data) {
    return xtsMany(key, firstUnit, unitBytes, data, false);
  },
  aes256XtsDecryptUnits(key, firstUnit, unitBytes, data) {
    return xtsMany(key, firstUnit, unitBytes, data, true);
  },

  pbkdf2Sha256(password, salt, iterations, length) {
    expectPbkdf2(password, salt, iterations, length);
    return pbkdf2(sha256, password, salt, { c: iterations, dkLen: length });
  },
};
