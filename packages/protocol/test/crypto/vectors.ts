/**
 * Loads the external vectors from `<repo>/../shared/vectors` (CI clones shared/ beside the
 * checkout), typed by the Wycheproof schemas and RFC 9180's field names. Never edited here.
 */

import { readFileSync } from 'node:fs';
import { type CryptoBackend, nobleBackend, nodeBackend } from '../../src/crypto/index.js';
import { ProtocolError } from '../../src/errors.js';

/** `<repo root>/../shared/vectors/`, resolved from this file (packages/protocol/test/crypto/). */
export const VECTORS_DIR = new URL('../../../../../shared/vectors/', import.meta.url);

export function loadJson<T>(relative: string): T {
  return JSON.parse(readFileSync(new URL(relative, VECTORS_DIR), 'utf8')) as T;
}

export function hex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(s)) throw new Error(`bad hex: ${s}`);
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export type WycheproofResult = 'valid' | 'invalid' | 'acceptable';

export interface WycheproofFile<G> {
  readonly algorithm: string;
  readonly numberOfTests: number;
  readonly testGroups: readonly G[];
}

interface Case {
  readonly tcId: number;
  readonly comment: string;
  readonly flags: readonly string[];
  readonly result: WycheproofResult;
}

export interface EddsaGroup {
  readonly publicKey: { readonly pk: string };
  readonly tests: readonly (Case & { readonly msg: string; readonly sig: string })[];
}

export interface XdhGroup {
  readonly curve: string;
  readonly tests: readonly (Case & {
    readonly public: string;
    readonly private: string;
    readonly shared: string;
  })[];
}

export interface AeadGroup {
  readonly ivSize: number;
  readonly keySize: number;
  readonly tagSize: number;
  readonly tests: readonly (Case & {
    readonly key: string;
    readonly iv: string;
    readonly aad: string;
    readonly msg: string;
    readonly ct: string;
    readonly tag: string;
  })[];
}

export interface HkdfGroup {
  readonly keySize: number;
  readonly tests: readonly (Case & {
    readonly ikm: string;
    readonly salt: string;
    readonly info: string;
    readonly size: number;
    readonly okm: string;
  })[];
}

export interface HpkeVector {
  readonly mode: number;
  readonly kem_id: number;
  readonly kdf_id: number;
  readonly aead_id: number;
  readonly info: string;
  readonly ikmE: string;
  readonly pkEm: string;
  readonly skEm: string;
  readonly ikmR: string;
  readonly pkRm: string;
  readonly skRm: string;
  readonly ikmS?: string;
  readonly pkSm?: string;
  readonly skSm?: string;
  readonly psk?: string;
  readonly psk_id?: string;
  readonly enc: string;
  readonly shared_secret: string;
  readonly key_schedule_context: string;
  readonly secret: string;
  readonly key: string;
  readonly base_nonce: string;
  readonly exporter_secret: string;
  readonly encryptions: readonly {
    readonly sequence_number: number;
    readonly pt: string;
    readonly aad: string;
    readonly nonce: string;
    readonly ct: string;
  }[];
  readonly exports?: readonly {
    readonly exporter_context: string;
    readonly L: number;
    readonly exported_value: string;
  }[];
}

export const ed25519Vectors = () => loadJson<WycheproofFile<EddsaGroup>>('wycheproof/ed25519_test.json');
export const x25519Vectors = () => loadJson<WycheproofFile<XdhGroup>>('wycheproof/x25519_test.json');
export const chachaVectors = () =>
  loadJson<WycheproofFile<AeadGroup>>('wycheproof/chacha20_poly1305_test.json');
export const hkdfVectors = () => loadJson<WycheproofFile<HkdfGroup>>('wycheproof/hkdf_sha256_test.json');
export const hpkeVectors = () =>
  loadJson<{ readonly vectors: readonly HpkeVector[] }>('hpke/rfc9180-a2-x25519-sha256-chacha20poly1305.json')
    .vectors;

/** Tallies results per class, e.g. { valid: 88, invalid: 63 }. */
export function tally(results: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) out[r] = (out[r] ?? 0) + 1;
  return out;
}

/** Both backends as [name, backend] rows, for describe.each. */
export const BACKENDS: readonly (readonly [string, CryptoBackend])[] = [
  ['noble', nobleBackend],
  ['node', nodeBackend],
];

/** The ProtocolError code `fn` throws, 'none' when it returns, or a description of any other throw. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'none';
  } catch (e) {
    return e instanceof ProtocolError ? e.code : `not a ProtocolError: ${String(e)}`;
  }
}
