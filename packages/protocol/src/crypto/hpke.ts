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
 * or a seeded source for replayable runs), an {@link EphemeralPool} (key pairs made ahead, in idle
 * time), or a fixed secret (golden vectors and tests only: reusing one for two messages breaks
 * confidentiality).
 */
export type EphemeralSource = RandomSource | EphemeralPool | Ephemeral;

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
const EMPTY = new Uint8Array(0);

/**
 * a ‖ b ‖ c ‖ d in one new array. Fixed arity on purpose: every HPKE input here has at most four
 * parts, and a rest-parameter concat costs several times the copy itself on these small inputs.
 */
function join(a: Uint8Array, b: Uint8Array, c: Uint8Array = EMPTY, d: Uint8Array = EMPTY): Uint8Array {
  const out = new Uint8Array(a.length + b.length + c.length + d.length);
  out.set(a, 0);
  out.set(b, a.length);
  if (c.length > 0) out.set(c, a.length + b.length);
  if (d.length > 0) out.set(d, a.length + b.length + c.length);
  return out;
}

const i2osp2 = (n: number): Uint8Array => Uint8Array.of(n >>> 8, n & 0xff);
const KEM_SUITE = join(utf8('KEM'), i2osp2(HPKE_KEM_ID));
const HPKE_SUITE = join(utf8('HPKE'), i2osp2(HPKE_KEM_ID), i2osp2(HPKE_KDF_ID), i2osp2(HPKE_AEAD_ID));
const VERSION = utf8('HPKE-v1');

/** A label with its "HPKE-v1" ‖ suite_id prefix, encoded once per label. */
type Prefixed = Uint8Array;
const kemLabel = (label: string): Prefixed => join(VERSION, KEM_SUITE, utf8(label));
const hpkeLabel = (label: string): Prefixed => join(VERSION, HPKE_SUITE, utf8(label));

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

/** I2OSP(32, 2) ‖ "HPKE-v1" ‖ "KEM" ‖ kem_id ‖ "shared_secret": the fixed head of ExtractAndExpand's info. */
const SHARED_SECRET_INFO = join(i2osp2(N_SECRET), L.sharedSecret);

function extractWith(backend: CryptoBackend, salt: Uint8Array, label: Prefixed, ikm: Uint8Array): Uint8Array {
  return backend.hkdfExtract(salt, join(label, ikm));
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
  return backend.hkdfExpand(prk, join(i2osp2(length), label, info), length);
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

export interface EphemeralPoolOptions {
  /** Key pairs kept ready (default 4; at least 1). */
  readonly size?: number;
  /**
   * Runs a task once the current one is done, leaving I/O in between (a service passes
   * `setImmediate`). Each task makes one key pair, so a message that arrives meanwhile waits for
   * one pair at most. Without it the pool fills only when {@link EphemeralPool.fill} is called.
   */
  readonly schedule?: (task: () => void) => void;
}

/**
 * Ephemeral key pairs for Encap made before they are needed. Deriving the public key of a fresh
 * secret is a scalar multiplication (about 80 µs with node:crypto here, with the import of the key
 * that the DH then uses), on the path of every sealed message; made in idle time, it leaves that
 * path. Each pair is used once: Encap takes it and zeroes its secret afterwards.
 *
 * Draws from `random` happen when the pool fills, not when a message is sealed: use a pool only
 * with a CSPRNG (`systemRandom`). With a seeded source the bytes would depend on when the host
 * was idle; replayable runs pass the source itself. Up to `size` unused secrets wait in memory.
 */
export class EphemeralPool {
  readonly #backend: CryptoBackend;
  readonly #random: RandomSource;
  readonly #size: number;
  readonly #schedule: ((task: () => void) => void) | undefined;
  readonly #ready: HpkeKeyPair[] = [];
  #scheduled = false;
  #closed = false;

  constructor(backend: CryptoBackend, random: RandomSource, options: EphemeralPoolOptions = {}) {
    const size = options.size ?? 4;
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new ProtocolError('CONFIG_INVALID', 'an ephemeral pool holds at least 1 key pair', { size });
    }
    this.#backend = backend;
    this.#random = random;
    this.#size = size;
    this.#schedule = options.schedule;
  }

  /** Key pairs ready now. */
  get ready(): number {
    return this.#ready.length;
  }

  /** Makes key pairs until the pool is full (none once closed). */
  fill(): void {
    while (!this.#closed && this.#ready.length < this.#size) {
      this.#ready.push(generateKeyPair(this.#backend, this.#random));
    }
  }

  /**
   * Zeroes the secrets of the pairs not taken and stops refilling (a refill already scheduled makes
   * nothing). take() still works, making each pair as it is asked for. Idempotent.
   */
  close(): void {
    this.#closed = true;
    for (const pair of this.#ready.splice(0)) pair.secret.fill(0);
  }

  /** The next key pair, made now when none is ready; a refill is scheduled. Used once. */
  take(): HpkeKeyPair {
    const pair = this.#ready.shift() ?? generateKeyPair(this.#backend, this.#random);
    this.#refill();
    return pair;
  }

  #refill(): void {
    if (this.#closed || this.#scheduled || this.#schedule === undefined || this.#ready.length >= this.#size) {
      return;
    }
    this.#scheduled = true;
    this.#schedule(() => {
      this.#scheduled = false;
      if (this.#closed) return;
      try {
        this.#ready.push(generateKeyPair(this.#backend, this.#random));
      } catch {
        // The backend or the source failed: take() makes the next pair itself and throws there,
        // in its caller's context.
        return;
      }
      this.#refill();
    });
  }
}

/** DH with the §7.1.4 check: an all-zero output (low-order public key) aborts with CRYPTO_DH. */
function dh(backend: CryptoBackend, secret: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const out = backend.x25519(secret, publicKey);
  if (isAllZero(out)) throw new ProtocolError('CRYPTO_DH');
  return out;
}

/**
 * ExtractAndExpand's info for Encap / Decap (one recipient key, no sender key), the fixed head
 * written once: `enc` and pkR are written into it per call. The backend keeps no reference to an
 * info array (backend.ts), and these bytes are public; a fresh 91-byte array would be allocated
 * off the V8 heap for every seal and open.
 */
const BASE_KEM_INFO = new Uint8Array(SHARED_SECRET_INFO.length + 2 * N_SECRET);
BASE_KEM_INFO.set(SHARED_SECRET_INFO, 0);

/**
 * ExtractAndExpand (§4.1) with kem_context = enc ‖ pkR (‖ pkS for auth) and dh = dh1 (‖ dh2 for
 * auth), each written once into the labelled input it ends up in.
 */
function extractAndExpand(
  backend: CryptoBackend,
  dh1: Uint8Array,
  dh2: Uint8Array,
  enc: Uint8Array,
  pkR: Uint8Array,
  pkS: Uint8Array,
): Uint8Array {
  const ikm = join(L.eaePrk, dh1, dh2);
  const prk = backend.hkdfExtract(EMPTY, ikm);
  ikm.fill(0); // the DH output is as secret as the shared secret
  let info: Uint8Array;
  if (pkS.length === 0) {
    info = BASE_KEM_INFO;
    info.set(enc, SHARED_SECRET_INFO.length);
    info.set(pkR, SHARED_SECRET_INFO.length + N_SECRET);
  } else {
    info = join(SHARED_SECRET_INFO, enc, pkR, pkS);
  }
  return backend.hkdfExpand(prk, info, N_SECRET);
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
  const pair = ephemeral instanceof EphemeralPool ? ephemeral.take() : undefined;
  const skE =
    pair !== undefined ? pair.secret : fresh ? ephemeral(N_SECRET) : (ephemeral as Ephemeral).secret;
  expectLength('HPKE ephemeral secret', skE, N_SECRET);
  try {
    const enc = pair !== undefined ? pair.publicKey : backend.x25519PublicKey(skE);
    const dh1 = dh(backend, skE, recipientPublicKey);
    if (senderSecret === undefined) {
      return { sharedSecret: extractAndExpand(backend, dh1, EMPTY, enc, recipientPublicKey, EMPTY), enc };
    }
    expectLength('HPKE sender secret', senderSecret, N_SECRET);
    const dh2 = dh(backend, senderSecret, recipientPublicKey);
    const pkS = backend.x25519PublicKey(senderSecret);
    return { sharedSecret: extractAndExpand(backend, dh1, dh2, enc, recipientPublicKey, pkS), enc };
  } finally {
    if (fresh || pair !== undefined) skE.fill(0);
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
  const dh1 = dh(backend, recipientSecret, enc);
  const pkR = publicOfRecipient(backend, recipientSecret);
  if (senderPublicKey === undefined) return extractAndExpand(backend, dh1, EMPTY, enc, pkR, EMPTY);
  expectLength('HPKE sender public key', senderPublicKey, N_SECRET);
  const dh2 = dh(backend, recipientSecret, senderPublicKey);
  return extractAndExpand(backend, dh1, dh2, enc, pkR, senderPublicKey);
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

/**
 * What KeySchedule (§5.1) feeds to Extract and Expand apart from shared_secret: the labelled psk
 * for `secret`, and key_schedule_context inside the labelled infos of `key`, `base_nonce` and
 * `exp`. They depend only on mode, psk and info.
 */
interface ScheduleInputs {
  readonly mode: HpkeMode;
  /** A copy of info, to notice an info array changed in place after it was cached. */
  readonly info: Uint8Array;
  readonly context: Uint8Array;
  readonly secretIkm: Uint8Array;
  readonly keyInfo: Uint8Array;
  readonly nonceInfo: Uint8Array;
  readonly expInfo: Uint8Array;
}

function scheduleInputs(
  backend: CryptoBackend,
  mode: HpkeMode,
  info: Uint8Array,
  psk?: HpkePsk,
): ScheduleInputs {
  const pskIdHash = extractWith(backend, EMPTY, L.pskIdHash, psk?.pskId ?? EMPTY);
  const infoHash = extractWith(backend, EMPTY, L.infoHash, info);
  const context = join(Uint8Array.of(mode), pskIdHash, infoHash);
  return {
    mode,
    info: info.slice(),
    context,
    secretIkm: join(L.secret, psk?.psk ?? EMPTY),
    keyInfo: join(i2osp2(N_SECRET), L.key, context),
    nonceInfo: join(i2osp2(N_NONCE), L.baseNonce, context),
    expInfo: join(i2osp2(N_SECRET), L.exp, context),
  };
}

/**
 * Without a PSK the schedule inputs are public and the same for every message sealed with one
 * info (every envelope uses "clefnet/v1 seal"): kept per backend and info array, so psk_id_hash,
 * info_hash and the labelled strings are computed once, not twice per seal and open.
 */
const publicInputs = new WeakMap<CryptoBackend, WeakMap<Uint8Array, ScheduleInputs>>();

/** Variable-time equality: for public data only. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function inputsFor(backend: CryptoBackend, mode: HpkeMode, info: Uint8Array, psk?: HpkePsk): ScheduleInputs {
  if (psk !== undefined) return scheduleInputs(backend, mode, info, psk);
  let byInfo = publicInputs.get(backend);
  if (byInfo === undefined) {
    byInfo = new WeakMap();
    publicInputs.set(backend, byInfo);
  }
  const known = byInfo.get(info);
  if (known !== undefined && known.mode === mode && sameBytes(known.info, info)) return known;
  const inputs = scheduleInputs(backend, mode, info);
  byInfo.set(info, inputs);
  return inputs;
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
  const inputs = inputsFor(backend, mode, info, psk);
  const secret = backend.hkdfExtract(sharedSecret, inputs.secretIkm);
  return {
    keyScheduleContext: inputs.context.slice(), // the cached one stays unshared
    secret,
    key: backend.hkdfExpand(secret, inputs.keyInfo, N_SECRET),
    baseNonce: backend.hkdfExpand(secret, inputs.nonceInfo, N_NONCE),
    exporterSecret: backend.hkdfExpand(secret, inputs.expInfo, N_SECRET),
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

/**
 * The AEAD key and base_nonce of KeySchedule (§5.1), for the single-shot API: one message at
 * sequence number 0, whose nonce is base_nonce itself (§5.2 ComputeNonce), and no Export, so the
 * exporter secret is not derived.
 */
function singleShot(
  backend: CryptoBackend,
  mode: HpkeMode,
  sharedSecret: Uint8Array,
  info: Uint8Array,
  psk: HpkePsk | undefined,
): { readonly key: Uint8Array; readonly nonce: Uint8Array } {
  const inputs = inputsFor(backend, mode, info, psk);
  const secret = backend.hkdfExtract(sharedSecret, inputs.secretIkm);
  return {
    key: backend.hkdfExpand(secret, inputs.keyInfo, N_SECRET),
    nonce: backend.hkdfExpand(secret, inputs.nonceInfo, N_NONCE),
  };
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
  const mode = modeOf(options.psk, options.senderSecret !== undefined);
  expectBytes('HPKE info', info);
  const { sharedSecret, enc } = encap(backend, recipientPublicKey, ephemeral, options.senderSecret);
  const { key, nonce } = singleShot(backend, mode, sharedSecret, info, options.psk);
  return { enc, ciphertext: backend.aeadSeal(key, nonce, aad, plaintext) };
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
  const mode = modeOf(options.psk, options.senderPublicKey !== undefined);
  expectBytes('HPKE info', info);
  const sharedSecret = decap(backend, enc, recipientSecret, options.senderPublicKey);
  const { key, nonce } = singleShot(backend, mode, sharedSecret, info, options.psk);
  const out = backend.aeadOpen(key, nonce, aad, ciphertext);
  if (out === null) throw new ProtocolError('CRYPTO_OPEN');
  return out;
}
