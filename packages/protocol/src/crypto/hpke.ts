/**
 * HPKE (RFC 9180), written once over any {@link CryptoBackend} (TB-13: `<y>Clef-P` is HPKE base
 * mode sealed to P's X25519 key). One suite only: DHKEM(X25519, HKDF-SHA256) 0x0020,
 * HKDF-SHA256 0x0001, ChaCha20-Poly1305 0x0003. All four modes (base, psk, auth, auth_psk) are
 * implemented; the mode follows from which options are given.
 *
 * Errors: CRYPTO_INPUT for wrong lengths or inconsistent PSK inputs, CRYPTO_DH when a DH output
 * is all zero (§7.1.4), CRYPTO_OPEN when a ciphertext does not authenticate.
 */

import { ProtocolError } from '../errors.js';
import type { CryptoBackend, RandomSource } from './backend.js';
import { expectBytes, expectLength, isAllZero } from './checks.js';

export const HPKE_KEM_ID = 0x0020;
export const HPKE_KDF_ID = 0x0001;
export const HPKE_AEAD_ID = 0x0003;

/** RFC 9180 §5 Table 1. */
export const HPKE_MODE = { base: 0x00, psk: 0x01, auth: 0x02, authPsk: 0x03 } as const;
export type HpkeMode = (typeof HPKE_MODE)[keyof typeof HPKE_MODE];

const N_SECRET = 32; // Nsecret = Nsk = Npk = Nenc = Nh = Nk for this suite
const N_NONCE = 12;

export interface HpkeKeyPair {
  readonly secret: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * Where the sender's ephemeral X25519 secret comes from: a {@link RandomSource} (production,
 * or a seeded source for replayable runs), or a fixed secret (golden vectors and tests only:
 * reusing one for two messages breaks confidentiality).
 */
export type EphemeralSource = RandomSource | Ephemeral;

/** A fixed ephemeral X25519 secret (32 bytes). */
export interface Ephemeral {
  readonly secret: Uint8Array;
}

/** A pre-shared key and its identifier (§5.1.2); both non-empty, the key at least 32 bytes. */
export interface HpkePsk {
  readonly psk: Uint8Array;
  readonly pskId: Uint8Array;
}

export interface HpkeSenderOptions {
  /** Selects mode psk (or auth_psk with `senderSecret`). */
  readonly psk?: HpkePsk;
  /** The sender's static X25519 secret: selects mode auth (or auth_psk with `psk`). */
  readonly senderSecret?: Uint8Array;
}

export interface HpkeRecipientOptions {
  readonly psk?: HpkePsk;
  /** The sender's static X25519 public key, for modes auth and auth_psk. */
  readonly senderPublicKey?: Uint8Array;
}

/** The values of KeySchedule (§5.1), exposed so the RFC vectors can check each one. */
export interface HpkeKeySchedule {
  readonly keyScheduleContext: Uint8Array;
  readonly secret: Uint8Array;
  readonly key: Uint8Array;
  readonly baseNonce: Uint8Array;
  readonly exporterSecret: Uint8Array;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const i2osp2 = (n: number): Uint8Array => new Uint8Array([n >>> 8, n & 0xff]);
const KEM_SUITE = concat(utf8('KEM'), i2osp2(HPKE_KEM_ID));
const HPKE_SUITE = concat(utf8('HPKE'), i2osp2(HPKE_KEM_ID), i2osp2(HPKE_KDF_ID), i2osp2(HPKE_AEAD_ID));
const VERSION = utf8('HPKE-v1');
const EMPTY = new Uint8Array(0);

/** A label with its "HPKE-v1" ‖ suite_id prefix, encoded once per label. */
type Prefixed = Uint8Array;
const kemLabel = (label: string): Prefixed => concat(VERSION, KEM_SUITE, utf8(label));
const hpkeLabel = (label: string): Prefixed => concat(VERSION, HPKE_SUITE, utf8(label));

const L = {
  eaePrk: kemLabel('eae_prk'),
  sharedSecret: kemLabel('shared_secret'),
  dkpPrk: kemLabel('dkp_prk'),
  sk: kemLabel('sk'),
  pskIdHash: hpkeLabel('psk_id_hash'),
  infoHash: hpkeLabel('info_hash'),
  secret: hpkeLabel('secret'),
  key: hpkeLabel('key'),
  baseNonce: hpkeLabel('base_nonce'),
  exp: hpkeLabel('exp'),
  sec: hpkeLabel('sec'),
};

function extractWith(backend: CryptoBackend, salt: Uint8Array, label: Prefixed, ikm: Uint8Array): Uint8Array {
  return backend.hkdfExtract(salt, concat(label, ikm));
}

function expandWith(
  backend: CryptoBackend,
  prk: Uint8Array,
  label: Prefixed,
  info: Uint8Array,
  length: number,
): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0 || length > 0xffff) {
    throw new ProtocolError('CRYPTO_INPUT', 'HPKE LabeledExpand length must fit in 2 bytes', { length });
  }
  return backend.hkdfExpand(prk, concat(i2osp2(length), label, info), length);
}

/** Which suite_id a label is bound to: the KEM's ("KEM" ‖ kem_id) or the whole suite's. */
export type HpkeLabelScope = 'kem' | 'hpke';

const prefixed = (scope: HpkeLabelScope, label: string): Prefixed =>
  scope === 'kem' ? kemLabel(label) : hpkeLabel(label);

/** LabeledExtract (§4): Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm). */
export function labeledExtract(
  backend: CryptoBackend,
  scope: HpkeLabelScope,
  salt: Uint8Array,
  label: string,
  ikm: Uint8Array,
): Uint8Array {
  expectBytes('HPKE ikm', ikm);
  return extractWith(backend, salt, prefixed(scope, label), ikm);
}

/** LabeledExpand (§4): Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite_id ‖ label ‖ info, L). */
export function labeledExpand(
  backend: CryptoBackend,
  scope: HpkeLabelScope,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
): Uint8Array {
  expectBytes('HPKE info', info);
  return expandWith(backend, prk, prefixed(scope, label), info, length);
}

/** DeriveKeyPair (§7.1.3) for X25519: sk = LabeledExpand(LabeledExtract("", "dkp_prk", ikm), "sk", "", 32). */
export function deriveKeyPair(backend: CryptoBackend, ikm: Uint8Array): HpkeKeyPair {
  expectBytes('HPKE ikm', ikm);
  if (ikm.length < N_SECRET) {
    // §7.1.3: ikm "SHOULD have length at least Nsk"; we fail closed instead.
    throw new ProtocolError('CRYPTO_INPUT', 'HPKE DeriveKeyPair ikm must be at least 32 bytes');
  }
  const prk = extractWith(backend, EMPTY, L.dkpPrk, ikm);
  const secret = expandWith(backend, prk, L.sk, EMPTY, N_SECRET);
  return { secret, publicKey: backend.x25519PublicKey(secret) };
}

/** A fresh X25519 key pair from `random` (GenerateKeyPair, §7.1). */
export function generateKeyPair(backend: CryptoBackend, random: RandomSource): HpkeKeyPair {
  const secret = random(N_SECRET);
  expectLength('HPKE random secret', secret, N_SECRET);
  return { secret, publicKey: backend.x25519PublicKey(secret) };
}

/** DH with the §7.1.4 check: an all-zero output (low-order public key) aborts with CRYPTO_DH. */
function dh(backend: CryptoBackend, secret: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const out = backend.x25519(secret, publicKey);
  if (isAllZero(out)) throw new ProtocolError('CRYPTO_DH');
  return out;
}

function extractAndExpand(backend: CryptoBackend, dhValue: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const prk = extractWith(backend, EMPTY, L.eaePrk, dhValue);
  return expandWith(backend, prk, L.sharedSecret, kemContext, N_SECRET);
}

/** Encap / AuthEncap (§4.1): the shared secret and `enc` (the ephemeral public key). */
export function encap(
  backend: CryptoBackend,
  recipientPublicKey: Uint8Array,
  ephemeral: EphemeralSource,
  senderSecret?: Uint8Array,
): { readonly sharedSecret: Uint8Array; readonly enc: Uint8Array } {
  expectLength('HPKE recipient public key', recipientPublicKey, N_SECRET);
  const fresh = typeof ephemeral === 'function';
  const skE = fresh ? ephemeral(N_SECRET) : ephemeral.secret;
  expectLength('HPKE ephemeral secret', skE, N_SECRET);
  try {
    const enc = backend.x25519PublicKey(skE);
    let dhValue = dh(backend, skE, recipientPublicKey);
    let kemContext = concat(enc, recipientPublicKey);
    if (senderSecret !== undefined) {
      expectLength('HPKE sender secret', senderSecret, N_SECRET);
      dhValue = concat(dhValue, dh(backend, senderSecret, recipientPublicKey));
      kemContext = concat(kemContext, backend.x25519PublicKey(senderSecret));
    }
    return { sharedSecret: extractAndExpand(backend, dhValue, kemContext), enc };
  } finally {
    if (fresh) skE.fill(0);
  }
}

/**
 * pk(skR) of long-term recipient secrets, by array identity: Decap needs it for kem_context on
 * every open, and it never changes for one secret array (arrays are treated as immutable).
 */
const recipientPublic = new WeakMap<Uint8Array, Uint8Array>();

function publicOfRecipient(backend: CryptoBackend, secret: Uint8Array): Uint8Array {
  let pk = recipientPublic.get(secret);
  if (pk === undefined) {
    pk = backend.x25519PublicKey(secret);
    recipientPublic.set(secret, pk);
  }
  return pk;
}

/** Decap / AuthDecap (§4.1). */
export function decap(
  backend: CryptoBackend,
  enc: Uint8Array,
  recipientSecret: Uint8Array,
  senderPublicKey?: Uint8Array,
): Uint8Array {
  expectLength('HPKE enc', enc, N_SECRET);
  expectLength('HPKE recipient secret', recipientSecret, N_SECRET);
  let dhValue = dh(backend, recipientSecret, enc);
  let kemContext = concat(enc, publicOfRecipient(backend, recipientSecret));
  if (senderPublicKey !== undefined) {
    expectLength('HPKE sender public key', senderPublicKey, N_SECRET);
    dhValue = concat(dhValue, dh(backend, recipientSecret, senderPublicKey));
    kemContext = concat(kemContext, senderPublicKey);
  }
  return extractAndExpand(backend, dhValue, kemContext);
}

/** VerifyPSKInputs (§5.1): psk and psk_id both non-empty; §5.1.2: the psk at least 32 bytes. */
function checkPsk(psk: HpkePsk): void {
  expectBytes('HPKE psk', psk.psk);
  expectBytes('HPKE psk_id', psk.pskId);
  if (psk.psk.length < 32 || psk.pskId.length === 0) {
    throw new ProtocolError('CRYPTO_INPUT', 'HPKE psk must be at least 32 bytes and psk_id non-empty');
  }
}

function modeOf(psk: HpkePsk | undefined, auth: boolean): HpkeMode {
  if (psk !== undefined) checkPsk(psk);
  if (auth) return psk === undefined ? HPKE_MODE.auth : HPKE_MODE.authPsk;
  return psk === undefined ? HPKE_MODE.base : HPKE_MODE.psk;
}

/** KeySchedule (§5.1); `psk` must be given exactly for modes psk and auth_psk. */
export function keySchedule(
  backend: CryptoBackend,
  mode: HpkeMode,
  sharedSecret: Uint8Array,
  info: Uint8Array,
  psk?: HpkePsk,
): HpkeKeySchedule {
  expectBytes('HPKE info', info);
  const wantsPsk = mode === HPKE_MODE.psk || mode === HPKE_MODE.authPsk;
  if (wantsPsk !== (psk !== undefined)) {
    throw new ProtocolError('CRYPTO_INPUT', 'HPKE psk given for a non-psk mode or missing for a psk mode');
  }
  if (psk !== undefined) checkPsk(psk);
  const pskIdHash = extractWith(backend, EMPTY, L.pskIdHash, psk?.pskId ?? EMPTY);
  const infoHash = extractWith(backend, EMPTY, L.infoHash, info);
  const keyScheduleContext = concat(new Uint8Array([mode]), pskIdHash, infoHash);
  const secret = extractWith(backend, sharedSecret, L.secret, psk?.psk ?? EMPTY);
  return {
    keyScheduleContext,
    secret,
    key: expandWith(backend, secret, L.key, keyScheduleContext, N_SECRET),
    baseNonce: expandWith(backend, secret, L.baseNonce, keyScheduleContext, N_NONCE),
    exporterSecret: expandWith(backend, secret, L.exp, keyScheduleContext, N_SECRET),
  };
}

/** The encryption context of §5.2; the role is fixed by the interface it is returned as. */
class Context implements HpkeRecipientContext {
  readonly #backend: CryptoBackend;
  readonly #key: Uint8Array;
  readonly #baseNonce: Uint8Array;
  readonly #exporterSecret: Uint8Array;
  readonly #nonce = new Uint8Array(N_NONCE); // scratch: backends do not keep the nonce
  #seq = 0;

  constructor(backend: CryptoBackend, schedule: HpkeKeySchedule) {
    expectLength('HPKE key', schedule.key, N_SECRET);
    expectLength('HPKE base nonce', schedule.baseNonce, N_NONCE);
    this.#backend = backend;
    this.#key = schedule.key;
    this.#baseNonce = schedule.baseNonce;
    this.#exporterSecret = schedule.exporterSecret;
  }

  /** The sequence number the next seal/open uses. */
  get seq(): number {
    return this.#seq;
  }

  /** ComputeNonce (§5.2): base_nonce XOR I2OSP(seq, 12), written into the scratch nonce. */
  #computeNonce(seq: number): Uint8Array {
    if (!Number.isSafeInteger(seq) || seq < 0) {
      // 2^53 - 1 messages, far below the RFC's 2^96 - 1 limit (MessageLimitReachedError)
      throw new ProtocolError('CRYPTO_INPUT', 'HPKE sequence number out of range', { seq });
    }
    const nonce = this.#nonce;
    nonce.set(this.#baseNonce.subarray(0, 4));
    const base = this.#baseNonce;
    const high = Math.floor(seq / 2 ** 32);
    for (let i = 0; i < 4; i++) {
      nonce[11 - i] = base[11 - i]! ^ ((seq >>> (8 * i)) & 0xff);
      nonce[7 - i] = base[7 - i]! ^ ((high >>> (8 * i)) & 0xff);
    }
    return nonce;
  }

  seal(aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = this.#backend.aeadSeal(this.#key, this.#computeNonce(this.#seq), aad, plaintext);
    this.#seq++;
    return out;
  }

  open(aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const out = this.openAt(this.#seq, aad, ciphertext);
    this.#seq++; // only after success (§5.2)
    return out;
  }

  openAt(seq: number, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const out = this.#backend.aeadOpen(this.#key, this.#computeNonce(seq), aad, ciphertext);
    if (out === null) throw new ProtocolError('CRYPTO_OPEN');
    return out;
  }

  /** Export (§5.3): LabeledExpand(exporter_secret, "sec", exporter_context, L). */
  export(exporterContext: Uint8Array, length: number): Uint8Array {
    expectBytes('HPKE exporter context', exporterContext);
    return expandWith(this.#backend, this.#exporterSecret, L.sec, exporterContext, length);
  }
}

class SenderContext extends Context implements HpkeSenderContext {
  readonly enc: Uint8Array;

  constructor(backend: CryptoBackend, schedule: HpkeKeySchedule, enc: Uint8Array) {
    super(backend, schedule);
    this.enc = enc;
  }
}

export interface HpkeSenderContext {
  /** The encapsulated key to send with the ciphertexts. */
  readonly enc: Uint8Array;
  readonly seq: number;
  /** Seals with the current sequence number, then increments it. */
  seal(aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  export(exporterContext: Uint8Array, length: number): Uint8Array;
}

export interface HpkeRecipientContext {
  readonly seq: number;
  /** Opens with the current sequence number and increments it on success; else CRYPTO_OPEN. */
  open(aad: Uint8Array, ciphertext: Uint8Array): Uint8Array;
  /** Opens with an explicit sequence number (out-of-order delivery); leaves `seq` unchanged. */
  openAt(seq: number, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array;
  export(exporterContext: Uint8Array, length: number): Uint8Array;
}

/** SetupBaseS / SetupPSKS / SetupAuthS / SetupAuthPSKS (§5.1), by `options`. */
export function setupSender(
  backend: CryptoBackend,
  recipientPublicKey: Uint8Array,
  info: Uint8Array,
  ephemeral: EphemeralSource,
  options: HpkeSenderOptions = {},
): HpkeSenderContext {
  const mode = modeOf(options.psk, options.senderSecret !== undefined);
  expectBytes('HPKE info', info);
  const { sharedSecret, enc } = encap(backend, recipientPublicKey, ephemeral, options.senderSecret);
  return new SenderContext(backend, keySchedule(backend, mode, sharedSecret, info, options.psk), enc);
}

/** SetupBaseR / SetupPSKR / SetupAuthR / SetupAuthPSKR (§5.1), by `options`. */
export function setupRecipient(
  backend: CryptoBackend,
  enc: Uint8Array,
  recipientSecret: Uint8Array,
  info: Uint8Array,
  options: HpkeRecipientOptions = {},
): HpkeRecipientContext {
  const mode = modeOf(options.psk, options.senderPublicKey !== undefined);
  expectBytes('HPKE info', info);
  const sharedSecret = decap(backend, enc, recipientSecret, options.senderPublicKey);
  return new Context(backend, keySchedule(backend, mode, sharedSecret, info, options.psk));
}

/** Single-shot Seal (§6.1): one message to `recipientPublicKey`. */
export function hpkeSeal(
  backend: CryptoBackend,
  recipientPublicKey: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  ephemeral: EphemeralSource,
  options: HpkeSenderOptions = {},
): { readonly enc: Uint8Array; readonly ciphertext: Uint8Array } {
  const context = setupSender(backend, recipientPublicKey, info, ephemeral, options);
  return { enc: context.enc, ciphertext: context.seal(aad, plaintext) };
}

/** Single-shot Open (§6.1); CRYPTO_OPEN when the ciphertext does not authenticate. */
export function hpkeOpen(
  backend: CryptoBackend,
  recipientSecret: Uint8Array,
  enc: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
  options: HpkeRecipientOptions = {},
): Uint8Array {
  return setupRecipient(backend, enc, recipientSecret, info, options).open(aad, ciphertext);
}
