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
import type { CryptoBackend, RandomSource } from './crypto/backend.js';
import { type Ephemeral, hpkeOpen, hpkeSeal } from './crypto/hpke.js';
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

function signedMessage(payload: Uint8Array): Uint8Array {
  return encodeFields([SIGN_DOMAIN, payload]);
}

export function sign(backend: CryptoBackend, key: Key, payload: Uint8Array): SignedBlock {
  return { payload, signature: backend.ed25519Sign(key.sign, signedMessage(payload)) };
}

export function verify(backend: CryptoBackend, clef: Clef, block: SignedBlock): boolean {
  return backend.ed25519Verify(clef.sign, signedMessage(block.payload), block.signature);
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

/** Seals `plaintext` to `clef`; the ephemeral key comes from `ephemeral` (random or fixed for vectors). */
export function seal(
  backend: CryptoBackend,
  clef: Clef,
  plaintext: Uint8Array,
  ephemeral: RandomSource | Ephemeral,
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

export function encodeEnvelope(env: Envelope): Uint8Array {
  return encodeFields([utf8Shared(env.sender), encodeSignedBlock(env.signed)]);
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
  ephemeral: RandomSource | Ephemeral,
): Uint8Array {
  return seal(backend, receiver, encodeEnvelope(env), ephemeral);
}

/** Opens with Key-R and reads Name-S; the signature is not yet checked (the receiver needs Clef-S). */
export function openEnvelope(backend: CryptoBackend, key: Key, sealed: Uint8Array): Envelope {
  return decodeEnvelope(open(backend, key, sealed));
}
