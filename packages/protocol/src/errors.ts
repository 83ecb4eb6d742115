/**
 * One error base class for the whole project, with typed codes (STYLE: one error registry).
 *
 * Every code is listed in {@link ERROR_CODES} with a one-line meaning; `docs/errors.md` is kept
 * equal to this table by a test. Errors never carry secret material in their message or metadata.
 */

export const ERROR_CODES = {
  // Encoding (TB-14 length-prefixed fields)
  ENCODING_TRUNCATED: 'A length prefix or field runs past the end of the input.',
  ENCODING_TRAILING: 'Bytes remain after the last expected field.',
  ENCODING_TOO_LARGE: 'A field or frame exceeds its documented size limit.',
  ENCODING_BAD_INTEGER: 'An integer is negative, not whole, or above 2^53 - 1.',
  ENCODING_BAD_UTF8: 'A text field is not well-formed UTF-8.',
  ENCODING_BAD_VALUE: 'A field holds a value outside the set its type allows.',
  // Identities
  NAME_INVALID: 'A Name is not a valid hierarchical (DNS-like) active-network Name.',
  KEY_INVALID: 'A Key or Clef has the wrong length or structure.',
  // Crypto
  CRYPTO_INPUT: 'A cryptographic primitive was given input of the wrong length or form.',
  CRYPTO_SIGNATURE: 'A signature does not verify under the Clef of the Name that claims it.',
  CRYPTO_OPEN: 'A sealed envelope cannot be opened with this Key (wrong recipient or tampered).',
  CRYPTO_DH: 'An X25519 exchange produced the all-zero shared secret (low-order public key).',
  // Frames and envelopes
  FRAME_VERSION: 'A frame names a wire version this implementation does not speak.',
  FRAME_KIND: 'A frame has a kind this receiver does not accept.',
  // Protocol checks
  TYPE_MISMATCH: 'A payload tag is not the one this step expects (type-tags rule).',
  UNKNOWN_SENDER: 'The sender Name has no Clef registered with or known to the receiver.',
  UNKNOWN_NAME: 'The queried Name is not registered at this key server.',
  NOT_AUTHORISED: 'The requester may not learn this Clef or create this Name (PROTO-7, TB-16).',
  NOT_KEY_SERVER: 'An answer came from a Name that is not a known key server (step 4).',
  WRONG_SERVER:
    'An answer came from a key server other than the one asked, or outside its scope (server-scope rule).',
  WRONG_RECEIVER: 'The receiver Name inside the signed part is not this party (names-in-signature rule).',
  SENDER_MISMATCH:
    'The sender Name inside the signed part differs from the Name outside it (names-in-signature rule).',
  UNSOLICITED_ANSWER: 'An answer matches no outstanding request (answer-binding rule).',
  SUBJECT_MISMATCH: 'An answer is about a different Name than the one asked (answer-binding rule).',
  STALE: 'A message is outside its validity period or too far from the receiver clock (freshness rule).',
  REPLAY: 'A message nonce was already seen within its validity period (freshness rule).',
  REPLAY_CACHE_FULL: 'The bounded replay cache is full of unexpired entries; the message is refused.',
  NAME_TAKEN: 'A key server refuses to mint a triple for a Name that already exists (name-ownership rule).',
  SENDER_NOT_LISTED: 'The ANC is in the closed model and the sender Name is not on its list (step 8).',
  REVOKED: 'The Name has been revoked at this key server or ASD.',
  NO_CHANNEL_PEER: 'The ASD channel names a data server KServ2 cannot reach.',
  BAD_STATE: 'A message arrived that the party cannot use in its current state.',
  REMOTE_ERROR: 'The peer answered with an error frame.',
  TIMEOUT: 'No answer arrived within the request timeout.',
  LIMIT_EXCEEDED: 'A bounded table (outstanding requests, messages waiting for a Clef, deployments) is full.',
  // Configuration (host errors, thrown at construction)
  CONFIG_INVALID: 'Options given to a factory are invalid.',
  // VM manager (host errors of the real environment; guest mistakes are faults, never errors)
  VMM_OUT_OF_MEMORY: 'The VM manager has no free physical page or portion left for a table or a VE.',
  VMM_HOLE_CONFLICT: 'A guest mapped the linear range the VM manager reserves for its shadow tables.',
  VMM_BAD_VE: 'No virtual environment has this id, or it was deleted.',
  // Data paths of the real environment (issue 5)
  SPOOL_FULL: 'The spool area has no room left for this record, even after compaction.',
  SPOOL_CORRUPT: 'The spool area is not a spool, or its header fails its checks.',
  DTM_BAD_HOLD: 'No held transfer has this id, or it was already approved, rejected or expired.',
  DISK_KEY_REFUSED: "A partition's data key cannot be unwrapped with this machine key or passphrase.",
  // Services (issue 6)
  STORE_CORRUPT:
    "A service's database holds a row that fails its checks, or a schema newer than the service.",
  INTERNAL: 'A service failed on its own side (a bug or a host error); the request had no effect.',
  DISK_CORRUPT: "The partition table or the real partition's file system directory fails its checks.",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export type ErrorMeta = Readonly<Record<string, string | number | boolean | undefined>>;

/** Base class of every error clefnet throws or returns on purpose. */
export class ClefnetError extends Error {
  readonly code: ErrorCode;
  readonly meta: ErrorMeta;

  constructor(code: ErrorCode, message?: string, meta: ErrorMeta = {}) {
    super(message ?? ERROR_CODES[code]);
    this.name = 'ClefnetError';
    this.code = code;
    this.meta = meta;
  }
}

/** Errors of the wire, the envelopes and the parties: the only thing a decoder or party may throw. */
export class ProtocolError extends ClefnetError {
  constructor(code: ErrorCode, message?: string, meta: ErrorMeta = {}) {
    super(code, message, meta);
    this.name = 'ProtocolError';
  }
}

export function isProtocolError(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError;
}
