/**
 * Keys and Clefs (PROTO-5, TB-13) and the authority triple / access pair (PROTO-6).
 *
 * A Key is a pair of secrets: an Ed25519 seed for signing (`<y>Key-P`) and an X25519 secret for
 * opening seals; a Clef is the matching pair of public keys. One key is never used for both jobs.
 * On the wire a Clef is 64 bytes (signing key ‖ sealing key) and so is a Key.
 */
import { equalBytes, fromHex, toHex } from './codec.js';
import type { CryptoBackend, RandomSource } from './crypto/backend.js';
import { ProtocolError } from './errors.js';
import { type Name, parseName } from './names.js';

export const CLEF_BYTES = 64;
export const KEY_BYTES = 64;

/** Public half: known to the world. */
export interface Clef {
  /** Ed25519 public key (32 bytes). */
  readonly sign: Uint8Array;
  /** X25519 public key (32 bytes). */
  readonly seal: Uint8Array;
}

/** Secret half: known only to the entity instantiating the Name. Never logged. */
export interface Key {
  /** Ed25519 seed (32 bytes). */
  readonly sign: Uint8Array;
  /** X25519 secret (32 bytes). */
  readonly open: Uint8Array;
}

/** {Name, Clef} (PROTO-6). */
export interface AccessPair {
  readonly name: Name;
  readonly clef: Clef;
}

/** {Name, Clef, Key} (PROTO-6). */
export interface AuthorityTriple extends AccessPair {
  readonly key: Key;
}

/** Makes a fresh triple for `name` from the injected random source. */
export function generateTriple(backend: CryptoBackend, random: RandomSource, name: Name): AuthorityTriple {
  const key: Key = { sign: random(32), open: random(32) };
  return { name, key, clef: clefOf(backend, key) };
}

/** Derives the Clef of a Key. */
export function clefOf(backend: CryptoBackend, key: Key): Clef {
  return { sign: backend.ed25519PublicKey(key.sign), seal: backend.x25519PublicKey(key.open) };
}

/** Throws KEY_INVALID unless the triple's Clef belongs to its Key (a well-formed triple, PROTO-13). */
export function checkTriple(backend: CryptoBackend, t: AuthorityTriple): void {
  if (!clefEquals(clefOf(backend, t.key), t.clef)) {
    throw new ProtocolError('KEY_INVALID', `the Clef delivered for ${t.name} does not belong to its Key`);
  }
}

export function encodeClef(clef: Clef): Uint8Array {
  const out = new Uint8Array(CLEF_BYTES);
  out.set(clef.sign, 0);
  out.set(clef.seal, 32);
  return out;
}

export function decodeClef(bytes: Uint8Array): Clef {
  if (bytes.length !== CLEF_BYTES) {
    throw new ProtocolError('KEY_INVALID', `a Clef is ${CLEF_BYTES} bytes, got ${bytes.length}`);
  }
  return { sign: bytes.slice(0, 32), seal: bytes.slice(32, 64) };
}

export function encodeKey(key: Key): Uint8Array {
  const out = new Uint8Array(KEY_BYTES);
  out.set(key.sign, 0);
  out.set(key.open, 32);
  return out;
}

export function decodeKey(bytes: Uint8Array): Key {
  if (bytes.length !== KEY_BYTES) {
    throw new ProtocolError('KEY_INVALID', `a Key is ${KEY_BYTES} bytes, got ${bytes.length}`);
  }
  return { sign: bytes.slice(0, 32), open: bytes.slice(32, 64) };
}

export function clefEquals(a: Clef, b: Clef): boolean {
  return equalBytes(a.sign, b.sign) && equalBytes(a.seal, b.seal);
}

/** Short printable id of a Clef for logs and events (first 8 bytes of the signing key, hex). */
export function clefId(clef: Clef): string {
  return toHex(clef.sign.subarray(0, 8));
}

/** Text form of an access pair, as held in provisioning files and key-server admin requests. */
export interface AccessPairJson {
  name: string;
  clef: string;
}

/** Text form of a triple for provisioning files (KEY-12). Holds a secret: store it like one. */
export interface TripleJson extends AccessPairJson {
  key: string;
}

export function accessPairToJson(pair: AccessPair): AccessPairJson {
  return { name: pair.name, clef: toHex(encodeClef(pair.clef)) };
}

export function accessPairFromJson(json: AccessPairJson): AccessPair {
  if (
    typeof json !== 'object' ||
    json === null ||
    typeof json.name !== 'string' ||
    typeof json.clef !== 'string'
  ) {
    throw new ProtocolError('KEY_INVALID', 'an access pair is {name, clef} with a hex clef');
  }
  return { name: parseName(json.name), clef: decodeClef(fromHex(json.clef, 'clef')) };
}

export function tripleToJson(triple: AuthorityTriple): TripleJson {
  return { ...accessPairToJson(triple), key: toHex(encodeKey(triple.key)) };
}

/** Parses a triple and checks that its Clef belongs to its Key. */
export function tripleFromJson(backend: CryptoBackend, json: TripleJson): AuthorityTriple {
  const pair = accessPairFromJson(json);
  if (typeof json.key !== 'string') throw new ProtocolError('KEY_INVALID', 'a triple needs a hex key');
  const key = decodeKey(fromHex(json.key, 'key'));
  if (!clefEquals(clefOf(backend, key), pair.clef)) {
    throw new ProtocolError('KEY_INVALID', `the Clef of ${pair.name} does not belong to its Key`);
  }
  return { ...pair, key };
}
