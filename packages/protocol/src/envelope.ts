/**
 * The two envelopes of PROTO-12 and their nesting, on TB-13's suite. This is the only module that
 * signs, verifies, seals or opens protocol data.
 *
 * - `<y>Key-P`  = y with P's Ed25519 signature over the domain-separated record ("clefnet/v1 sign", y):
 *   origin and integrity, no confidentiality.
 * - `<y>Clef-P` = HPKE base mode (RFC 9180; DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 *   ChaCha20-Poly1305) sealed to P's X25519 key with info "clefnet/v1 seal": enc (32) ‖ ciphertext.
 * - Every message: `< Name-S ‖ <payload>Key-S >Clef-R`, the sender's Name inside the seal but
 *   outside the signature, exactly as the patent writes it.
 */
import { encodeFields, FieldReader, utf8, utf8Shared } from './codec.js';
import type { CryptoBackend } from './crypto/backend.js';
import { type EphemeralSource, hpkeOpen, hpkeSeal } from './crypto/hpke.js';
import { ProtocolError } from './errors.js';
import type { Clef, Key } from './identity.js';
import { LIMITS } from './limits.js';
import type { Name } from './names.js';
import { parseName } from './names.js';

export const SIGN_DOMAIN = utf8('clefnet/v1 sign');
export const SEAL_INFO = utf8('clefnet/v1 seal');
const NO_AAD = new Uint8Array(0);
const ENC_BYTES = 32;
const TAG_BYTES = 16;
const SIGNATURE_BYTES = 64;

/** `<payload>Key-P`. */
export interface SignedBlock {
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

/** `Name-S ‖ <payload>Key-S`, the plaintext of a sealed envelope. */
export interface Envelope {
  readonly sender: Name;
  readonly signed: SignedBlock;
}

/** The TB-14 length prefix of one field, big-endian, written at `at`; returns where the field's bytes go. */
function putLength(out: Uint8Array, at: number, n: number): number {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
  return at + 4;
}

/** One TB-14 field (length ‖ bytes) written at `at`; returns the offset after it. */
function putField(out: Uint8Array, at: number, field: Uint8Array): number {
  const start = putLength(out, at, field.length);
  out.set(field, start);
  return start + field.length;
}

/** Inputs above this size get an array of their own, so that a scratch buffer stays small. */
const SCRATCH_MAX = 64 * 1024;

/**
 * Reusable space for bytes that one backend call reads and forgets: the record Ed25519 signs or
 * verifies, the envelope HPKE seals. A Uint8Array over 64 bytes is allocated outside the V8 heap,
 * which costs more than writing its bytes (about a microsecond, plus work for the collector), and
 * these are made for every message. Backend calls are synchronous and keep no reference to such
 * inputs (backend.ts), so one buffer per use serves every call. Never handed to a caller.
 */
class Scratch {
  #bytes = new Uint8Array(1024);

  take(length: number): Uint8Array {
    if (length > SCRATCH_MAX) return new Uint8Array(length);
    if (length > this.#bytes.length) {
      this.#bytes = new Uint8Array(Math.min(SCRATCH_MAX, Math.max(length, 2 * this.#bytes.length)));
    }
    return this.#bytes.subarray(0, length);
  }
}

const toSign = new Scratch();
const toSeal = new Scratch();

/** The first field of every signed record, encoded once. */
const SIGN_HEAD = encodeFields([SIGN_DOMAIN]);

/**
 * ("clefnet/v1 sign", payload) as a TB-14 record, the bytes Ed25519 signs, written into the
 * signing scratch: valid until the next call, wiped by the caller after use.
 */
function signedMessage(payload: Uint8Array): Uint8Array {
  const out = toSign.take(SIGN_HEAD.length + 4 + payload.length);
  out.set(SIGN_HEAD, 0);
  putField(out, SIGN_HEAD.length, payload);
  return out;
}

export function sign(backend: CryptoBackend, key: Key, payload: Uint8Array): SignedBlock {
  const message = signedMessage(payload);
  try {
    return { payload, signature: backend.ed25519Sign(key.sign, message) };
  } finally {
    message.fill(0); // payloads can hold keys (a triple handed over): nothing stays in the scratch
  }
}

export function verify(backend: CryptoBackend, clef: Clef, block: SignedBlock): boolean {
  const message = signedMessage(block.payload);
  try {
    return backend.ed25519Verify(clef.sign, message, block.signature);
  } finally {
    message.fill(0);
  }
}

/** Verifies and returns the payload, or throws CRYPTO_SIGNATURE. */
export function recover(backend: CryptoBackend, clef: Clef, block: SignedBlock, signer: Name): Uint8Array {
  if (!verify(backend, clef, block)) {
    throw new ProtocolError('CRYPTO_SIGNATURE', `signature does not verify under the Clef of ${signer}`, {
      signer,
    });
  }
  return block.payload;
}

export function encodeSignedBlock(b: SignedBlock): Uint8Array {
  return encodeFields([b.payload, b.signature]);
}

export function decodeSignedBlock(bytes: Uint8Array): SignedBlock {
  const r = new FieldReader(bytes, 'signed block');
  const payload = r.bytesField(LIMITS.FRAME_MAX_BYTES, 'payload');
  const signature = r.fixed(SIGNATURE_BYTES, 'signature');
  r.end();
  return { payload, signature };
}

/** Seals `plaintext` to `clef`; the ephemeral key comes from `ephemeral` (random, a pool, or fixed for vectors). */
export function seal(
  backend: CryptoBackend,
  clef: Clef,
  plaintext: Uint8Array,
  ephemeral: EphemeralSource,
): Uint8Array {
  const { enc, ciphertext } = hpkeSeal(backend, clef.seal, SEAL_INFO, NO_AAD, plaintext, ephemeral);
  const out = new Uint8Array(enc.length + ciphertext.length);
  out.set(enc, 0);
  out.set(ciphertext, enc.length);
  return out;
}

/** Opens a seal with `key`, or throws CRYPTO_OPEN (wrong recipient, tampered, truncated). */
export function open(backend: CryptoBackend, key: Key, sealed: Uint8Array): Uint8Array {
  if (sealed.length < ENC_BYTES + TAG_BYTES) {
    throw new ProtocolError('CRYPTO_OPEN', `sealed data of ${sealed.length} bytes is too short`);
  }
  try {
    return hpkeOpen(
      backend,
      key.open,
      sealed.subarray(0, ENC_BYTES),
      SEAL_INFO,
      NO_AAD,
      sealed.subarray(ENC_BYTES),
    );
  } catch (e) {
    if (e instanceof ProtocolError)
      throw new ProtocolError('CRYPTO_OPEN', 'cannot open the seal with this Key');
    throw e;
  }
}

/**
 * Name-S ‖ <payload>Key-S: the record (sender, encodeSignedBlock(signed)), written in one pass
 * rather than the signed block first and then copied into the envelope.
 */
export function encodeEnvelope(env: Envelope): Uint8Array {
  return writeEnvelope(env);
}

/** encodeEnvelope's bytes, in a new array or in `scratch`. */
function writeEnvelope(env: Envelope, scratch?: Scratch): Uint8Array {
  const sender = utf8Shared(env.sender);
  const { payload, signature } = env.signed;
  const block = 8 + payload.length + signature.length;
  const length = 8 + sender.length + block;
  const out = scratch === undefined ? new Uint8Array(length) : scratch.take(length);
  const at = putLength(out, putField(out, 0, sender), block);
  putField(out, putField(out, at, payload), signature);
  return out;
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const r = new FieldReader(bytes, 'envelope');
  const sender = parseName(r.text(LIMITS.NAME_MAX_BYTES, 'sender'));
  const signed = decodeSignedBlock(r.bytesField(LIMITS.FRAME_MAX_BYTES, 'signed'));
  r.end();
  return { sender, signed };
}

/** `< Name-S ‖ <payload>Key-S >Clef-R` from its parts. */
export function sealEnvelope(
  backend: CryptoBackend,
  env: Envelope,
  receiver: Clef,
  ephemeral: EphemeralSource,
): Uint8Array {
  // The plaintext only lives while it is sealed: in the sealing scratch, wiped afterwards.
  const plaintext = writeEnvelope(env, toSeal);
  try {
    return seal(backend, receiver, plaintext, ephemeral);
  } finally {
    plaintext.fill(0);
  }
}

/** Opens with Key-R and reads Name-S; the signature is not yet checked (the receiver needs Clef-S). */
export function openEnvelope(backend: CryptoBackend, key: Key, sealed: Uint8Array): Envelope {
  return decodeEnvelope(open(backend, key, sealed));
}
