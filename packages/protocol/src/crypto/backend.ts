/**
 * The one interface behind which every cryptographic primitive sits (TB-13, STYLE: crypto is
 * wrapped once). Two implementations: `noble` (reference, pure JS, runs in a browser) and `node`
 * (node:crypto, fast). Both must give identical bytes for every deterministic operation.
 *
 * Every function checks its input lengths and throws `ProtocolError('CRYPTO_INPUT')` on a wrong
 * one. Key arrays are treated as immutable while a caller holds them: a backend may cache work
 * keyed by the array itself (the node backend does), so mutating a key in place and reusing the
 * array is a caller error (protocol code never does it; decoded keys are fresh arrays). Other
 * inputs (messages, data, info, aad, plaintexts) are read during the call and never kept, so a
 * caller may reuse their arrays as soon as a call returns (the envelope and HPKE code do). Every
 * call is synchronous. Verification and AEAD opening never throw for a bad signature or tag: they
 * return false / null, so callers decide the error code.
 */

export type BackendName = 'noble' | 'node';

export interface CryptoBackend {
  readonly name: BackendName;

  /** Ed25519 (RFC 8032) public key (32 bytes) from a 32-byte seed. */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  /** Ed25519 signature (64 bytes) by the 32-byte seed over `message`. Deterministic. */
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /**
   * Strict RFC 8032 verification: canonical S (< L), canonical A and R encodings, no ZIP-215
   * leniency. Returns false for any malformed key or signature, never throws for them.
   */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;

  /** X25519 (RFC 7748) public key (32 bytes) from a 32-byte secret. */
  x25519PublicKey(secret: Uint8Array): Uint8Array;
  /**
   * X25519 shared secret. Returns the raw 32-byte output, which may be all zero for a
   * low-order public key; rejecting that is the caller's job (HPKE does, RFC 9180 §7.1.4).
   */
  x25519(secret: Uint8Array, publicKey: Uint8Array): Uint8Array;

  sha256(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF-Extract (RFC 5869) with SHA-256. */
  hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array;
  /** HKDF-Expand (RFC 5869) with SHA-256; `length` at most 255 * 32, else CRYPTO_INPUT. */
  hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array;

  /** ChaCha20-Poly1305 (RFC 8439): 32-byte key, 12-byte nonce; returns ciphertext ‖ 16-byte tag. */
  aeadSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** Inverse of aeadSeal; null when the tag does not verify. */
  aeadOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null;

  /**
   * XTS-AES-256 encryption of one data unit (IEEE 1619-2007 §5.3, NIST SP 800-38E), the
   * transparent disk encryption of TB-10. `key` is 64 bytes, K1 (data) ‖ K2 (tweak); K1 == K2 is
   * refused (FIPS 140-3 IG C.I; OpenSSL alone refuses it only for encryption).
   * `tweak` is the 16-byte encoding of the 128-bit tweak value exactly as IEEE 1619 feeds it to
   * E_K2 (its vectors write the data-unit sequence number little-endian, e.g. 0xff as ff 00 … 00);
   * the testbed passes the virtual block number little-endian. `data` is a whole number of
   * 16-byte blocks, 16 bytes to 2^20 blocks (IEEE 1619's data-unit limit): no ciphertext
   * stealing. Anything else is CRYPTO_INPUT. Returns a fresh array of `data.length` bytes.
   */
  aes256XtsEncrypt(key: Uint8Array, tweak: Uint8Array, data: Uint8Array): Uint8Array;
  /** Inverse of aes256XtsEncrypt, with the same input rules. XTS has no tag: it never fails on content. */
  aes256XtsDecrypt(key: Uint8Array, tweak: Uint8Array, data: Uint8Array): Uint8Array;

  /**
   * XTS-AES-256 encryption of consecutive data units in one call (a multi-sector disk access):
   * `data` is a positive whole number of units of `unitBytes` each, and unit i is encrypted with
   * the tweak firstUnit + i as a 128-bit little-endian integer. The result is byte-identical to
   * aes256XtsEncrypt of each unit with that tweak, at a fraction of the per-unit cost. `unitBytes`
   * is a whole number of 16-byte blocks, 16 bytes to 2^20 blocks; `firstUnit` is a safe
   * non-negative integer, and so is the last unit's number firstUnit + units - 1; `key` follows the
   * rules of aes256XtsEncrypt (K1 == K2 refused). Anything else is CRYPTO_INPUT. Returns a fresh
   * array of `data.length` bytes.
   */
  aes256XtsEncryptUnits(key: Uint8Array, firstUnit: number, unitBytes: number, data: Uint8Array): Uint8Array;
  /** Inverse of aes256XtsEncryptUnits, unit by unit, with the same input rules. */
  aes256XtsDecryptUnits(key: Uint8Array, firstUnit: number, unitBytes: number, data: Uint8Array): Uint8Array;

  /**
   * PBKDF2 (RFC 8018 §5.2) with HMAC-SHA256, for keys derived from a passphrase. `iterations`
   * is an integer 1..10_000_000 and `length` 1..1024 bytes, else CRYPTO_INPUT (bounds far inside
   * RFC 8018's own, so that a bad config cannot hang a process). Deterministic.
   */
  pbkdf2Sha256(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Uint8Array;
}

/** A source of random bytes, injected everywhere randomness is needed (STYLE: determinism). */
export type RandomSource = (length: number) => Uint8Array;

/** Milliseconds since the Unix epoch, injected wherever time matters. */
export type Clock = () => number;
