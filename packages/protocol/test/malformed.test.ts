/**
 * Issue 2 point 7 / STYLE "a table of malformed inputs, each asserting an exact error code".
 *
 * Every case is built with the package's own encoders (encodeFields, encodeFrame, encodePayload,
 * sign, seal, sealEnvelope) and then corrupted in one precise place, so the case names exactly one
 * defect and the expected code is the one the decoder gives for that defect (codec.ts, frame.ts,
 * envelope.ts, messages.ts, rules/*, names.ts, identity.ts, profile.ts). The party-level cases run a
 * reference world (both profiles, node backend) and read the error from `outcome.error` and the
 * answer frame from `outcome.send`.
 */

import {
  type AccessPair,
  type AccessPairJson,
  type AuthorityTriple,
  accessPairFromJson,
  accessPairToJson,
  type Body,
  type Clef,
  createProfile,
  createWorld,
  decodeClef,
  decodeEnvelope,
  decodeFrame,
  decodeKey,
  decodePayload,
  decodeSignedBlock,
  type ErrorCode,
  encodeClef,
  encodeEnvelope,
  encodeFields,
  encodeFrame,
  encodePayload,
  encodeSignedBlock,
  type Frame,
  generateTriple,
  HARDENED,
  type Header,
  type Key,
  LIMITS,
  nobleBackend,
  nodeBackend,
  open,
  openEnvelope,
  PATENT,
  type Profile,
  type ProfileName,
  type ProfileOptions,
  ProtocolError,
  parseName,
  payload,
  type Rules,
  recover,
  seal,
  sealEnvelope,
  seededRandom,
  sign,
  TAGS,
  type TripleJson,
  toHex,
  tripleFromJson,
  tripleToJson,
  u64,
  utf8,
  verify,
  type World,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';

// ---------------------------------------------------------------------------------------------
// Helpers

/** What running `f` gives: the ProtocolError code, or a description of anything else. */
function codeOf(f: () => unknown): string {
  try {
    f();
    return 'no error (a value was returned)';
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    return `not a ProtocolError: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
  }
}

type Part = string | Uint8Array;
const bytesOf = (p: Part): Uint8Array => (typeof p === 'string' ? utf8(p) : p);
/** A TB-14 record of the given fields (strings are UTF-8). */
const rec = (...fields: Part[]): Uint8Array => encodeFields(fields.map(bytesOf));
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const filled = (length: number, byte = 0x5a): Uint8Array => new Uint8Array(length).fill(byte);
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
/** A 4-byte big-endian length prefix. */
const be32 = (n: number): Uint8Array => {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
};
/** Offset of the length prefix of field `i` of a well-formed record. */
function fieldOffset(record: Uint8Array, i: number): number {
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  let at = 0;
  for (let k = 0; k < i; k++) at += 4 + view.getUint32(at, false);
  return at;
}
/** `record` with the length prefix of field `i` replaced by `length` (the bytes are unchanged). */
function withPrefix(record: Uint8Array, i: number, length: number): Uint8Array {
  const out = record.slice();
  new DataView(out.buffer).setUint32(fieldOffset(record, i), length, false);
  return out;
}
/** A syntactically valid Name of exactly `length` characters: labels of 63, then the rest. */
function nameOfLength(length: number): string {
  const labels: string[] = [];
  let left = length;
  while (left > 63) {
    labels.push('a'.repeat(63));
    left -= 64;
  }
  if (left < 1) throw new Error(`nameOfLength(${length}): no room for a last label`);
  labels.push('b'.repeat(left));
  return labels.join('.');
}

// Invalid UTF-8: a lone continuation byte, an overlong "/", an encoded surrogate, a cut sequence.
const BAD_UTF8 = {
  lone: bytes(0x80),
  overlong: bytes(0xc0, 0xaf),
  surrogate: bytes(0xed, 0xa0, 0x80),
  cut: bytes(0x61, 0xe2, 0x82),
  ff: bytes(0xff),
};

const N = {
  ks1: 'ks1.clefnet.test',
  ar: 'ar.clefnet.test',
  ve: 've1.anc1.clefnet.test',
  secApp: 'billing.ar.clefnet.test',
  asd: 'asd.clefnet.test',
} as const;
const CLEF = filled(64, 0x11);
const KEY = filled(64, 0x22);
const NONCE = filled(16, 0x33);
const T0 = Date.UTC(2026, 0, 1);
const EMPTY = new Uint8Array(0);

// ---- frames: ("CLEFNET/1", kind, to, from, corr, body) ----

interface FrameParts {
  version: Part;
  kind: Part;
  to: Part;
  from: Part;
  corr: Part;
  body: Part;
}
const FRAME: FrameParts = {
  version: 'CLEFNET/1',
  kind: 'SEALED',
  to: N.ks1,
  from: N.ar,
  corr: '0011223344556677',
  body: filled(80, 0x42),
};
const frameRec = (over: Partial<FrameParts> = {}, extra: Part[] = []): Uint8Array => {
  const f = { ...FRAME, ...over };
  return rec(f.version, f.kind, f.to, f.from, f.corr, f.body, ...extra);
};
const VALID_FRAME = frameRec();

// ---- signed blocks and envelopes ----

const SIG = filled(64, 0x77);
const VALID_BLOCK = rec(rec('CLEF?', N.ve), SIG);
const VALID_ENVELOPE = rec(N.ar, VALID_BLOCK);

// ---- payloads: tag, header (rules in force), body ----

interface HardenedHeaderParts {
  sender: Part;
  receiver: Part;
  nonce: Part;
  issuedAt: Part;
  expiresAt: Part;
  inReplyTo: Part;
}
const H_HEADER: HardenedHeaderParts = {
  sender: N.ar,
  receiver: N.ks1,
  nonce: NONCE,
  issuedAt: u64(T0),
  expiresAt: u64(T0 + 30_000),
  inReplyTo: EMPTY,
};
/** A payload record under HARDENED (names, freshness and binding header fields). */
const hardened = (tag: Part, body: Part[], over: Partial<HardenedHeaderParts> = {}): Uint8Array => {
  const h = { ...H_HEADER, ...over };
  return rec(tag, h.sender, h.receiver, h.nonce, h.issuedAt, h.expiresAt, h.inReplyTo, ...body);
};
/** A payload record under PATENT (no header). */
const patent = (tag: Part, body: Part[]): Uint8Array => rec(tag, ...body);

const P = PATENT.rules;
const H = HARDENED.rules;
type Expected = readonly [Body['type'], ...Body['type'][]];
const CLEF_Q: Expected = ['clef-query'];
const CLEF_A: Expected = ['clef-answer', 'error'];
const PROG: Expected = ['program', 'handover'];
const TRIPLE: Expected = ['triple', 'error'];
const CHAN_FROM: Expected = ['channel-from'];
const CHAN_OPEN: Expected = ['channel-open'];
const ERR: Expected = ['error'];
const KS_ALL: Expected = ['clef-query', 'new-query', 'channel-open'];
const dp = (rules: Rules, b: Uint8Array, expected: Expected) => () => decodePayload(rules, b, expected);

// ---------------------------------------------------------------------------------------------
// The table

interface Case {
  readonly name: string;
  readonly run: () => unknown;
  readonly code: ErrorCode;
}
/** One row: what is wrong, the code it must give, how to produce it. */
const c = (name: string, code: ErrorCode, run: () => unknown): Case => ({ name, run, code });

const FRAME_CASES: Case[] = [
  // truncation
  c('frame: empty input', 'ENCODING_TRUNCATED', () => decodeFrame(EMPTY)),
  c('frame: a 3-byte length prefix', 'ENCODING_TRUNCATED', () => decodeFrame(bytes(0, 0, 0))),
  c('frame: cut inside the length prefix of the body', 'ENCODING_TRUNCATED', () =>
    decodeFrame(VALID_FRAME.subarray(0, fieldOffset(VALID_FRAME, 5) + 2)),
  ),
  c('frame: version field says 9 bytes, 5 present', 'ENCODING_TRUNCATED', () =>
    decodeFrame(VALID_FRAME.subarray(0, 4 + 5)),
  ),
  c('frame: body runs 1 byte past the end', 'ENCODING_TRUNCATED', () =>
    decodeFrame(VALID_FRAME.subarray(0, VALID_FRAME.length - 1)),
  ),
  c('frame: cut after 3 of the 16 corr bytes', 'ENCODING_TRUNCATED', () =>
    decodeFrame(VALID_FRAME.subarray(0, fieldOffset(VALID_FRAME, 4) + 4 + 3)),
  ),
  c('frame: corr length prefix 10000 (over the limit, checked before the end is)', 'ENCODING_TOO_LARGE', () =>
    decodeFrame(withPrefix(VALID_FRAME, 4, 10_000)),
  ),
  c('frame: 5 fields (no body)', 'ENCODING_TRUNCATED', () =>
    decodeFrame(rec('CLEFNET/1', 'SEALED', N.ks1, N.ar, 'c')),
  ),
  // trailing data
  c('frame: 1 trailing byte', 'ENCODING_TRAILING', () => decodeFrame(concat(VALID_FRAME, bytes(0)))),
  c('frame: 4 trailing zero bytes (an empty 7th field)', 'ENCODING_TRAILING', () =>
    decodeFrame(concat(VALID_FRAME, be32(0))),
  ),
  c('frame: a 7th field', 'ENCODING_TRAILING', () => decodeFrame(frameRec({}, ['x']))),
  c('frame: the same frame twice', 'ENCODING_TRAILING', () => decodeFrame(concat(VALID_FRAME, VALID_FRAME))),
  // version
  c('frame: version CLEFNET/2', 'FRAME_VERSION', () => decodeFrame(frameRec({ version: 'CLEFNET/2' }))),
  c('frame: version in lower case', 'FRAME_VERSION', () => decodeFrame(frameRec({ version: 'clefnet/1' }))),
  c('frame: empty version', 'FRAME_VERSION', () => decodeFrame(frameRec({ version: '' }))),
  c('frame: version with a leading BOM (kept, not stripped)', 'FRAME_VERSION', () =>
    decodeFrame(frameRec({ version: '\uFEFFCLEFNET/1' })),
  ),
  c('frame: version of 17 bytes (over its 16-byte limit)', 'ENCODING_TOO_LARGE', () =>
    decodeFrame(frameRec({ version: 'CLEFNET/1xxxxxxxx' })),
  ),
  c('frame: version length prefix 0xffffffff', 'ENCODING_TOO_LARGE', () =>
    decodeFrame(withPrefix(VALID_FRAME, 0, 0xffff_ffff)),
  ),
  // kind
  c('frame: unknown kind OPEN', 'FRAME_KIND', () => decodeFrame(frameRec({ kind: 'OPEN' }))),
  c('frame: kind in lower case', 'FRAME_KIND', () => decodeFrame(frameRec({ kind: 'sealed' }))),
  c('frame: empty kind', 'FRAME_KIND', () => decodeFrame(frameRec({ kind: '' }))),
  c('frame: kind of 9 bytes (over its 8-byte limit)', 'ENCODING_TOO_LARGE', () =>
    decodeFrame(frameRec({ kind: 'SEALEDXYZ' })),
  ),
  // routing Names
  c('frame: to with an upper-case letter', 'NAME_INVALID', () =>
    decodeFrame(frameRec({ to: 'Ks1.clefnet.test' })),
  ),
  c('frame: to with a double dot', 'NAME_INVALID', () => decodeFrame(frameRec({ to: 'ks1..clefnet.test' }))),
  c('frame: from with a leading hyphen', 'NAME_INVALID', () =>
    decodeFrame(frameRec({ from: '-ar.clefnet.test' })),
  ),
  c('frame: from with a non-ASCII letter', 'NAME_INVALID', () =>
    decodeFrame(frameRec({ from: 'är.clefnet.test' })),
  ),
  c('frame: to of 254 bytes (over the Name limit)', 'ENCODING_TOO_LARGE', () =>
    decodeFrame(frameRec({ to: nameOfLength(254) })),
  ),
  // correlation id
  c('frame: corr of 65 bytes (over its 64-byte limit)', 'ENCODING_TOO_LARGE', () =>
    decodeFrame(frameRec({ corr: 'c'.repeat(65) })),
  ),
  c('frame: corr of 1 MiB', 'ENCODING_TOO_LARGE', () =>
    decodeFrame(frameRec({ corr: filled(1 << 20, 0x63) })),
  ),
  // frame size
  c('frame: FRAME_MAX_BYTES + 1 bytes of zeros', 'ENCODING_TOO_LARGE', () =>
    decodeFrame(new Uint8Array(LIMITS.FRAME_MAX_BYTES + 1)),
  ),
  c('frame: a well-formed record of FRAME_MAX_BYTES + 1 bytes', 'ENCODING_TOO_LARGE', () => {
    const overhead = frameRec({ body: EMPTY }).length;
    const f = frameRec({ body: filled(LIMITS.FRAME_MAX_BYTES + 1 - overhead) });
    if (f.length !== LIMITS.FRAME_MAX_BYTES + 1) throw new Error('bad test arithmetic');
    return decodeFrame(f);
  }),
  c('frame: body length prefix FRAME_MAX_BYTES + 1 in a short frame', 'ENCODING_TOO_LARGE', () =>
    decodeFrame(withPrefix(VALID_FRAME, 5, LIMITS.FRAME_MAX_BYTES + 1)),
  ),
  // UTF-8
  c('frame: version is byte 0xff', 'ENCODING_BAD_UTF8', () =>
    decodeFrame(frameRec({ version: BAD_UTF8.ff })),
  ),
  c('frame: kind is an overlong encoding', 'ENCODING_BAD_UTF8', () =>
    decodeFrame(frameRec({ kind: BAD_UTF8.overlong })),
  ),
  c('frame: to is an encoded surrogate', 'ENCODING_BAD_UTF8', () =>
    decodeFrame(frameRec({ to: BAD_UTF8.surrogate })),
  ),
  c('frame: from is a lone continuation byte', 'ENCODING_BAD_UTF8', () =>
    decodeFrame(frameRec({ from: BAD_UTF8.lone })),
  ),
  c('frame: corr ends inside a multi-byte sequence', 'ENCODING_BAD_UTF8', () =>
    decodeFrame(frameRec({ corr: BAD_UTF8.cut })),
  ),
  // encoder side of the frame limit
  c('encodeFrame: a body that makes the frame FRAME_MAX_BYTES + 1', 'ENCODING_TOO_LARGE', () => {
    const overhead = frameRec({ body: EMPTY }).length;
    return encodeFrame({
      kind: 'SEALED',
      to: parseName(N.ks1),
      from: parseName(N.ar),
      corr: '0011223344556677',
      body: filled(LIMITS.FRAME_MAX_BYTES + 1 - overhead),
    });
  }),
];

const ENVELOPE_CASES: Case[] = [
  c('signed block: empty', 'ENCODING_TRUNCATED', () => decodeSignedBlock(EMPTY)),
  c('signed block: signature of 63 bytes', 'ENCODING_BAD_VALUE', () =>
    decodeSignedBlock(rec(rec('CLEF?', N.ve), filled(63))),
  ),
  c('signed block: empty signature', 'ENCODING_BAD_VALUE', () =>
    decodeSignedBlock(rec(rec('CLEF?', N.ve), EMPTY)),
  ),
  c('signed block: signature of 65 bytes (over its fixed size)', 'ENCODING_BAD_VALUE', () =>
    decodeSignedBlock(rec(rec('CLEF?', N.ve), filled(65))),
  ),
  c('signed block: no signature field', 'ENCODING_TRUNCATED', () =>
    decodeSignedBlock(rec(rec('CLEF?', N.ve))),
  ),
  c('signed block: a third field', 'ENCODING_TRAILING', () =>
    decodeSignedBlock(rec(rec('CLEF?', N.ve), SIG, 'x')),
  ),
  c('signed block: payload length prefix 0xffffffff', 'ENCODING_TOO_LARGE', () =>
    decodeSignedBlock(withPrefix(VALID_BLOCK, 0, 0xffff_ffff)),
  ),
  c('signed block: signature cut by one byte', 'ENCODING_TRUNCATED', () =>
    decodeSignedBlock(VALID_BLOCK.subarray(0, VALID_BLOCK.length - 1)),
  ),
  c('envelope: empty', 'ENCODING_TRUNCATED', () => decodeEnvelope(EMPTY)),
  c('envelope: empty sender Name', 'NAME_INVALID', () => decodeEnvelope(rec('', VALID_BLOCK))),
  c('envelope: sender Name in upper case', 'NAME_INVALID', () =>
    decodeEnvelope(rec('AR.clefnet.test', VALID_BLOCK)),
  ),
  c('envelope: sender Name of 254 bytes', 'ENCODING_TOO_LARGE', () =>
    decodeEnvelope(rec(nameOfLength(254), VALID_BLOCK)),
  ),
  c('envelope: sender is not UTF-8', 'ENCODING_BAD_UTF8', () =>
    decodeEnvelope(rec(BAD_UTF8.surrogate, VALID_BLOCK)),
  ),
  c('envelope: inner signature of 63 bytes', 'ENCODING_BAD_VALUE', () =>
    decodeEnvelope(rec(N.ar, rec(rec('CLEF?', N.ve), filled(63)))),
  ),
  c('envelope: no signed block', 'ENCODING_TRUNCATED', () => decodeEnvelope(rec(N.ar))),
  c('envelope: signed block is 3 loose bytes', 'ENCODING_TRUNCATED', () =>
    decodeEnvelope(rec(N.ar, bytes(1, 2, 3))),
  ),
  c('envelope: a third field', 'ENCODING_TRAILING', () => decodeEnvelope(concat(VALID_ENVELOPE, rec('x')))),
  c('envelope: trailing bytes inside the signed block', 'ENCODING_TRAILING', () =>
    decodeEnvelope(rec(N.ar, concat(VALID_BLOCK, bytes(0)))),
  ),
];

const PAYLOAD_CASES: Case[] = [
  // tags
  c('hardened: tag NEW? where CLEF? is expected', 'TYPE_MISMATCH', dp(H, hardened('NEW?', [N.ve]), CLEF_Q)),
  c('hardened: tag clef? (case differs)', 'TYPE_MISMATCH', dp(H, hardened('clef?', [N.ve]), CLEF_Q)),
  c('hardened: empty tag', 'TYPE_MISMATCH', dp(H, hardened('', [N.ve]), CLEF_Q)),
  c(
    'hardened: tag TRIPLE where CLEF or ERR is expected',
    'TYPE_MISMATCH',
    dp(H, hardened('TRIPLE', [N.ve, CLEF, KEY]), CLEF_A),
  ),
  c('hardened: tag PROG at a key server', 'TYPE_MISMATCH', dp(H, hardened('PROG', [N.ve]), KS_ALL)),
  c('patent: tag of 17 bytes', 'ENCODING_TOO_LARGE', dp(P, patent('CLEF?'.padEnd(17, '?'), [N.ve]), CLEF_Q)),
  c(
    'hardened: tag of 17 bytes',
    'ENCODING_TOO_LARGE',
    dp(H, hardened('CLEF?'.padEnd(17, '?'), [N.ve]), CLEF_Q),
  ),
  c('patent: tag is not UTF-8', 'ENCODING_BAD_UTF8', dp(P, patent(BAD_UTF8.ff, [N.ve]), CLEF_Q)),
  c('hardened: tag is not UTF-8', 'ENCODING_BAD_UTF8', dp(H, hardened(BAD_UTF8.overlong, [N.ve]), CLEF_Q)),
  // field count
  c('patent: empty payload', 'ENCODING_TRUNCATED', dp(P, EMPTY, CLEF_Q)),
  c('hardened: empty payload', 'ENCODING_TRUNCATED', dp(H, EMPTY, CLEF_Q)),
  c(
    'patent: CLEF? with one field too many',
    'ENCODING_TRAILING',
    dp(P, patent('CLEF?', [N.ve, N.ar]), CLEF_Q),
  ),
  c('patent: CLEF without its clef field', 'ENCODING_TRUNCATED', dp(P, patent('CLEF', [N.ve]), CLEF_A)),
  c(
    'patent: CLEF? read as the default CLEF (positional), clef field missing',
    'ENCODING_TRUNCATED',
    dp(P, patent('CLEF?', [N.ve]), ['clef-answer']),
  ),
  c(
    'hardened: CLEF? with one field too many',
    'ENCODING_TRAILING',
    dp(H, hardened('CLEF?', [N.ve, N.ar]), CLEF_Q),
  ),
  c(
    'hardened: TRIPLE without its key field',
    'ENCODING_TRUNCATED',
    dp(H, hardened('TRIPLE', [N.ve, CLEF]), TRIPLE),
  ),
  c(
    'patent: 17 fields: everything after the expected ones is trailing',
    'ENCODING_TRAILING',
    dp(
      P,
      patent(
        'CLEF?',
        Array.from({ length: 16 }, () => N.ve),
      ),
      CLEF_Q,
    ),
  ),
  c(
    'patent: a hardened payload (its header read as body fields)',
    'ENCODING_TRAILING',
    dp(P, hardened('CLEF?', [N.ve]), CLEF_Q),
  ),
  c(
    'hardened: a patent payload (subject read as header.sender, header.receiver missing)',
    'ENCODING_TRUNCATED',
    dp(H, patent('CLEF?', [N.ve]), CLEF_Q),
  ),
  // Clefs and Keys
  c('patent: Clef of 63 bytes', 'ENCODING_BAD_VALUE', dp(P, patent('CLEF', [N.ve, filled(63)]), CLEF_A)),
  c('hardened: Clef of 63 bytes', 'ENCODING_BAD_VALUE', dp(H, hardened('CLEF', [N.ve, filled(63)]), CLEF_A)),
  c('patent: empty Clef', 'ENCODING_BAD_VALUE', dp(P, patent('CLEF', [N.ve, EMPTY]), CLEF_A)),
  c('patent: Clef of 65 bytes', 'ENCODING_BAD_VALUE', dp(P, patent('CLEF', [N.ve, filled(65)]), CLEF_A)),
  c(
    'patent: FROM with a Clef of 63 bytes',
    'ENCODING_BAD_VALUE',
    dp(P, patent('FROM', [N.secApp, filled(63), 'req']), CHAN_FROM),
  ),
  c(
    'patent: TRIPLE with a Key of 63 bytes',
    'ENCODING_BAD_VALUE',
    dp(P, patent('TRIPLE', [N.secApp, CLEF, filled(63)]), TRIPLE),
  ),
  c(
    'hardened: HANDOVER with a Clef of 63 bytes',
    'ENCODING_BAD_VALUE',
    dp(H, hardened('HANDOVER', [N.secApp, filled(63), KEY, 'ks2.clefnet.test', 'ws://x']), PROG),
  ),
  // Names
  c(
    'patent: subject in upper case',
    'NAME_INVALID',
    dp(P, patent('CLEF?', ['VE1.anc1.clefnet.test']), CLEF_Q),
  ),
  c(
    'hardened: subject in upper case',
    'NAME_INVALID',
    dp(H, hardened('CLEF?', ['VE1.anc1.clefnet.test']), CLEF_Q),
  ),
  c('patent: empty subject', 'NAME_INVALID', dp(P, patent('CLEF?', ['']), CLEF_Q)),
  c(
    'patent: subject of 254 bytes',
    'ENCODING_TOO_LARGE',
    dp(P, patent('CLEF?', [nameOfLength(254)]), CLEF_Q),
  ),
  c('patent: subject is not UTF-8', 'ENCODING_BAD_UTF8', dp(P, patent('CLEF?', [BAD_UTF8.cut]), CLEF_Q)),
  c(
    'patent: TRIPLE Name with a trailing dot',
    'NAME_INVALID',
    dp(P, patent('TRIPLE', ['billing.ar.clefnet.test.', CLEF, KEY]), TRIPLE),
  ),
  c(
    'patent: HANDOVER key server with an underscore',
    'NAME_INVALID',
    dp(P, patent('HANDOVER', [N.secApp, CLEF, KEY, 'ks_2.clefnet.test', 'ws://x']), PROG),
  ),
  c(
    'patent: OPEN peer with a leading hyphen',
    'NAME_INVALID',
    dp(P, patent('OPEN', ['-asd.clefnet.test', 'req']), CHAN_OPEN),
  ),
  c(
    'patent: ERR subject with a space',
    'NAME_INVALID',
    dp(P, patent('ERR', ['UNKNOWN_NAME', 'detail', 'a b']), ERR),
  ),
  c(
    'hardened: header.sender in upper case',
    'NAME_INVALID',
    dp(H, hardened('CLEF?', [N.ve], { sender: 'AR.clefnet.test' }), CLEF_Q),
  ),
  c(
    'hardened: empty header.receiver',
    'NAME_INVALID',
    dp(H, hardened('CLEF?', [N.ve], { receiver: '' }), CLEF_Q),
  ),
  c(
    'hardened: header.sender of 254 bytes',
    'ENCODING_TOO_LARGE',
    dp(H, hardened('CLEF?', [N.ve], { sender: nameOfLength(254) }), CLEF_Q),
  ),
  // sizes of byte fields
  c(
    'patent: program of PROGRAM_MAX_BYTES + 1',
    'ENCODING_TOO_LARGE',
    dp(P, patent('PROG', [filled(LIMITS.PROGRAM_MAX_BYTES + 1)]), PROG),
  ),
  c(
    'hardened: program of PROGRAM_MAX_BYTES + 1',
    'ENCODING_TOO_LARGE',
    dp(H, hardened('PROG', [filled(LIMITS.PROGRAM_MAX_BYTES + 1)]), PROG),
  ),
  c(
    'patent: program length prefix 0xffffffff',
    'ENCODING_TOO_LARGE',
    dp(P, withPrefix(patent('PROG', ['x']), 1, 0xffff_ffff), PROG),
  ),
  c(
    'patent: OPEN data of CHANNEL_DATA_MAX_BYTES + 1',
    'ENCODING_TOO_LARGE',
    dp(P, patent('OPEN', [N.asd, filled(LIMITS.CHANNEL_DATA_MAX_BYTES + 1)]), CHAN_OPEN),
  ),
  c(
    'patent: FROM data of CHANNEL_DATA_MAX_BYTES + 1',
    'ENCODING_TOO_LARGE',
    dp(P, patent('FROM', [N.secApp, CLEF, filled(LIMITS.CHANNEL_DATA_MAX_BYTES + 1)]), CHAN_FROM),
  ),
  c(
    'patent: HANDOVER location of 257 bytes',
    'ENCODING_TOO_LARGE',
    dp(P, patent('HANDOVER', [N.secApp, CLEF, KEY, 'ks2.clefnet.test', 'w'.repeat(257)]), PROG),
  ),
  c(
    'patent: HANDOVER location is not UTF-8',
    'ENCODING_BAD_UTF8',
    dp(P, patent('HANDOVER', [N.secApp, CLEF, KEY, 'ks2.clefnet.test', BAD_UTF8.lone]), PROG),
  ),
  c(
    'patent: ERR code of 33 bytes',
    'ENCODING_TOO_LARGE',
    dp(P, patent('ERR', ['E'.repeat(33), 'detail', '']), ERR),
  ),
  c(
    'patent: ERR detail of 257 bytes',
    'ENCODING_TOO_LARGE',
    dp(P, patent('ERR', ['UNKNOWN_NAME', 'd'.repeat(257), '']), ERR),
  ),
  // freshness header
  c(
    'hardened: nonce of 15 bytes',
    'ENCODING_BAD_VALUE',
    dp(H, hardened('CLEF?', [N.ve], { nonce: filled(15) }), CLEF_Q),
  ),
  c(
    'hardened: empty nonce',
    'ENCODING_BAD_VALUE',
    dp(H, hardened('CLEF?', [N.ve], { nonce: EMPTY }), CLEF_Q),
  ),
  c(
    'hardened: nonce of 17 bytes',
    'ENCODING_BAD_VALUE',
    dp(H, hardened('CLEF?', [N.ve], { nonce: filled(17) }), CLEF_Q),
  ),
  c(
    'hardened: issuedAt = 2^53 (over 2^53 - 1)',
    'ENCODING_BAD_INTEGER',
    dp(H, hardened('CLEF?', [N.ve], { issuedAt: bytes(0, 0x20, 0, 0, 0, 0, 0, 0) }), CLEF_Q),
  ),
  c(
    'hardened: expiresAt = 2^64 - 1',
    'ENCODING_BAD_INTEGER',
    dp(H, hardened('CLEF?', [N.ve], { expiresAt: filled(8, 0xff) }), CLEF_Q),
  ),
  c(
    'hardened: issuedAt of 7 bytes',
    'ENCODING_BAD_VALUE',
    dp(H, hardened('CLEF?', [N.ve], { issuedAt: u64(T0).subarray(1) }), CLEF_Q),
  ),
  c(
    'hardened: issuedAt of 9 bytes',
    'ENCODING_BAD_VALUE',
    dp(H, hardened('CLEF?', [N.ve], { issuedAt: concat(bytes(0), u64(T0)) }), CLEF_Q),
  ),
  // binding header
  c(
    'hardened: inReplyTo of 5 bytes',
    'ENCODING_BAD_VALUE',
    dp(H, hardened('CLEF', [N.ve, CLEF], { inReplyTo: filled(5) }), CLEF_A),
  ),
  c(
    'hardened: inReplyTo of 15 bytes',
    'ENCODING_BAD_VALUE',
    dp(H, hardened('CLEF', [N.ve, CLEF], { inReplyTo: filled(15) }), CLEF_A),
  ),
  c(
    'hardened: inReplyTo of 17 bytes',
    'ENCODING_TOO_LARGE',
    dp(H, hardened('CLEF', [N.ve, CLEF], { inReplyTo: filled(17) }), CLEF_A),
  ),
  // encoders refuse what decoders refuse
  c('encodePayload: program of PROGRAM_MAX_BYTES + 1', 'ENCODING_TOO_LARGE', () =>
    encodePayload(P, payload({ type: 'program', program: filled(LIMITS.PROGRAM_MAX_BYTES + 1) })),
  ),
  c('encodePayload: channel data of CHANNEL_DATA_MAX_BYTES + 1', 'ENCODING_TOO_LARGE', () =>
    encodePayload(
      P,
      payload({
        type: 'channel-open',
        peer: parseName(N.asd),
        data: filled(LIMITS.CHANNEL_DATA_MAX_BYTES + 1),
      }),
    ),
  ),
  c('encodePayload: hardened payload without a header', 'CONFIG_INVALID', () =>
    encodePayload(H, payload({ type: 'clef-query', subject: parseName(N.ve) })),
  ),
  c('u64: 2^53', 'ENCODING_BAD_INTEGER', () => u64(2 ** 53)),
  c('u64: -1', 'ENCODING_BAD_INTEGER', () => u64(-1)),
  c('u64: 1.5', 'ENCODING_BAD_INTEGER', () => u64(1.5)),
];

const NAME_CASES: (readonly [string, string, string])[] = [
  // [case, input, reason (prefix)]
  ['empty', '', 'empty'],
  ['upper case', 'Ar.clefnet.test', 'label "Ar" must be lowercase'],
  ['leading hyphen', '-ar.clefnet.test', 'label "-ar" must be lowercase'],
  ['trailing hyphen in a label', 'ar-.clefnet.test', 'label "ar-" must be lowercase'],
  ['label of 64 characters', `${'a'.repeat(64)}.test`, 'label longer than 63'],
  ['254 characters in total', nameOfLength(254), 'longer than 253'],
  ['double dot', 'ar..clefnet.test', 'empty label'],
  ['leading dot', '.ar.clefnet.test', 'empty label'],
  ['trailing dot', 'ar.clefnet.test.', 'empty label'],
  ['a lone dot', '.', 'empty label'],
  ['underscore', 'ar_1.clefnet.test', 'label "ar_1" must be lowercase'],
  ['space', 'ar .clefnet.test', 'label "ar " must be lowercase'],
  ['non-ASCII letter', 'é.clefnet.test', 'label "é" must be lowercase'],
  ['wildcard', '*.clefnet.test', 'label "*" must be lowercase'],
  ['NUL byte', 'ar\u0000.test', 'label "ar\\u0000" must be lowercase'],
];

const NAME_TABLE: Case[] = NAME_CASES.map(([what, input]) => ({
  name: `parseName: ${what}`,
  run: () => parseName(input),
  code: 'NAME_INVALID' as const,
}));

// identity: Clefs, Keys, access pairs and triples
const TRIPLE_A = generateTriple(nodeBackend, seededRandom('malformed/a'), parseName(N.ar));
const TRIPLE_B = generateTriple(nodeBackend, seededRandom('malformed/b'), parseName(N.ve));
const PAIR_JSON = accessPairToJson(TRIPLE_A);
const TRIPLE_JSON = tripleToJson(TRIPLE_A);
const asPair = (x: unknown) => () => accessPairFromJson(x as AccessPairJson);
const asTriple = (x: unknown) => () => tripleFromJson(nodeBackend, x as TripleJson);

const IDENTITY_CASES: Case[] = [
  c('decodeClef: 63 bytes', 'KEY_INVALID', () => decodeClef(filled(63))),
  c('decodeClef: 65 bytes', 'KEY_INVALID', () => decodeClef(filled(65))),
  c('decodeClef: empty', 'KEY_INVALID', () => decodeClef(EMPTY)),
  c('decodeKey: 63 bytes', 'KEY_INVALID', () => decodeKey(filled(63))),
  c('decodeKey: 128 bytes', 'KEY_INVALID', () => decodeKey(filled(128))),
  c('accessPairFromJson: null', 'KEY_INVALID', asPair(null)),
  c('accessPairFromJson: a string', 'KEY_INVALID', asPair('ar.clefnet.test')),
  c('accessPairFromJson: numeric name', 'KEY_INVALID', asPair({ name: 1, clef: PAIR_JSON.clef })),
  c('accessPairFromJson: no clef', 'KEY_INVALID', asPair({ name: N.ar })),
  c('accessPairFromJson: invalid Name', 'NAME_INVALID', asPair({ ...PAIR_JSON, name: 'AR..test' })),
  c(
    'accessPairFromJson: odd-length hex clef',
    'ENCODING_BAD_VALUE',
    asPair({ ...PAIR_JSON, clef: PAIR_JSON.clef.slice(1) }),
  ),
  c(
    'accessPairFromJson: non-hex clef',
    'ENCODING_BAD_VALUE',
    asPair({ ...PAIR_JSON, clef: 'zz'.repeat(64) }),
  ),
  c(
    'accessPairFromJson: clef of 63 bytes',
    'KEY_INVALID',
    asPair({ ...PAIR_JSON, clef: PAIR_JSON.clef.slice(2) }),
  ),
  c(
    'tripleFromJson: key of another triple (mismatched)',
    'KEY_INVALID',
    asTriple({ ...TRIPLE_JSON, key: tripleToJson(TRIPLE_B).key }),
  ),
  c(
    'tripleFromJson: key with one bit flipped',
    'KEY_INVALID',
    asTriple({
      ...TRIPLE_JSON,
      key: (TRIPLE_JSON.key[0] === '0' ? '1' : '0') + TRIPLE_JSON.key.slice(1),
    }),
  ),
  c(
    'tripleFromJson: clef of another triple (mismatched)',
    'KEY_INVALID',
    asTriple({ ...TRIPLE_JSON, clef: tripleToJson(TRIPLE_B).clef }),
  ),
  c('tripleFromJson: no key', 'KEY_INVALID', asTriple({ ...PAIR_JSON })),
  c(
    'tripleFromJson: key of 63 bytes',
    'KEY_INVALID',
    asTriple({ ...TRIPLE_JSON, key: TRIPLE_JSON.key.slice(2) }),
  ),
  c(
    'tripleFromJson: odd-length hex key',
    'ENCODING_BAD_VALUE',
    asTriple({ ...TRIPLE_JSON, key: TRIPLE_JSON.key.slice(1) }),
  ),
];

const cp = (opts: unknown) => () => createProfile(opts as ProfileOptions);
const PROFILE_CASES: Case[] = [
  c(
    'createProfile: answerBinding without freshness',
    'CONFIG_INVALID',
    cp({ base: 'patent', rules: { answerBinding: true } }),
  ),
  c(
    'createProfile: hardened with freshness switched off',
    'CONFIG_INVALID',
    cp({ base: 'hardened', rules: { freshness: false } }),
  ),
  c('createProfile: unknown profile name', 'CONFIG_INVALID', () => createProfile('lenient' as ProfileName)),
  c('createProfile: unknown base', 'CONFIG_INVALID', cp({ base: 'lenient' })),
  c(
    'createProfile: unknown nameOwnership policy',
    'CONFIG_INVALID',
    cp({ rules: { nameOwnership: { policy: 'first-come' } } }),
  ),
  c('createProfile: negative clockSkewMs', 'CONFIG_INVALID', cp({ clockSkewMs: -1 })),
  c('createProfile: fractional messageValidityMs', 'CONFIG_INVALID', cp({ messageValidityMs: 1.5 })),
  c(
    'createProfile: messageValidityMs over maxValidityMs',
    'CONFIG_INVALID',
    cp({ messageValidityMs: 600_001 }),
  ),
  c(
    'createProfile: answerValidityMs over maxValidityMs',
    'CONFIG_INVALID',
    cp({ maxValidityMs: 1000, messageValidityMs: 1000 }),
  ),
];

// open(): a real seal to TRIPLE_A, then truncated or tampered
const PLAIN = rec('CLEF?', N.ve);
const SEALED = seal(nodeBackend, TRIPLE_A.clef, PLAIN, seededRandom('malformed/seal'));
const flip = (b: Uint8Array, at: number, mask = 0x01): Uint8Array => {
  const out = b.slice();
  out[at] = out[at]! ^ mask;
  return out;
};
const OPEN_CASES: Case[] = [nodeBackend, nobleBackend].flatMap((backend) => {
  const o =
    (sealed: Uint8Array, key: Key = TRIPLE_A.key) =>
    () =>
      open(backend, key, sealed);
  const b = backend.name;
  const cases: Case[] = [
    c(`open (${b}): empty`, 'CRYPTO_OPEN', o(EMPTY)),
    c(`open (${b}): 47 bytes (shorter than enc + tag)`, 'CRYPTO_OPEN', o(SEALED.subarray(0, 47))),
    c(`open (${b}): enc + tag only (48 bytes)`, 'CRYPTO_OPEN', o(SEALED.subarray(0, 48))),
    c(`open (${b}): truncated by one byte`, 'CRYPTO_OPEN', o(SEALED.subarray(0, SEALED.length - 1))),
    c(`open (${b}): one byte appended`, 'CRYPTO_OPEN', o(concat(SEALED, bytes(0)))),
    c(`open (${b}): bit flipped in enc`, 'CRYPTO_OPEN', o(flip(SEALED, 3))),
    c(`open (${b}): bit flipped in the ciphertext`, 'CRYPTO_OPEN', o(flip(SEALED, 40))),
    c(`open (${b}): bit flipped in the tag`, 'CRYPTO_OPEN', o(flip(SEALED, SEALED.length - 1, 0x80))),
    c(`open (${b}): wrong recipient Key`, 'CRYPTO_OPEN', o(SEALED, TRIPLE_B.key)),
    c(
      `open (${b}): enc is the all-zero low-order point`,
      'CRYPTO_OPEN',
      o(concat(new Uint8Array(32), SEALED.subarray(32))),
    ),
    c(
      `open (${b}): enc is 1 (low order)`,
      'CRYPTO_OPEN',
      o(concat(bytes(1), new Uint8Array(31), SEALED.subarray(32))),
    ),
    c(
      `openEnvelope (${b}): a seal whose plaintext starts with "CLEF?" where Name-S belongs`,
      'NAME_INVALID',
      () => openEnvelope(backend, TRIPLE_A.key, SEALED),
    ),
    c(`openEnvelope (${b}): a seal whose plaintext is 3 loose bytes`, 'ENCODING_TRUNCATED', () =>
      openEnvelope(
        backend,
        TRIPLE_A.key,
        seal(backend, TRIPLE_A.clef, bytes(1, 2, 3), { secret: filled(32, 9) }),
      ),
    ),
  ];
  return cases;
});
const SIGNED_BLOCK = sign(nodeBackend, TRIPLE_A.key, PLAIN);
const SIGNATURE_CASES: Case[] = [
  c('recover: signature checked with another Clef', 'CRYPTO_SIGNATURE', () =>
    recover(nodeBackend, TRIPLE_B.clef, SIGNED_BLOCK, parseName(N.ar)),
  ),
  c('recover: payload with one bit flipped', 'CRYPTO_SIGNATURE', () =>
    recover(
      nodeBackend,
      TRIPLE_A.clef,
      { payload: flip(PLAIN, PLAIN.length - 1), signature: SIGNED_BLOCK.signature },
      parseName(N.ar),
    ),
  ),
  c('recover: signature with one bit flipped', 'CRYPTO_SIGNATURE', () =>
    recover(
      nodeBackend,
      TRIPLE_A.clef,
      { payload: PLAIN, signature: flip(SIGNED_BLOCK.signature, 10) },
      parseName(N.ar),
    ),
  ),
  c('recover: signature of 63 bytes', 'CRYPTO_SIGNATURE', () =>
    recover(
      nodeBackend,
      TRIPLE_A.clef,
      { payload: PLAIN, signature: SIGNED_BLOCK.signature.subarray(1) },
      parseName(N.ar),
    ),
  ),
];

const TABLE: readonly Case[] = [
  ...FRAME_CASES,
  ...ENVELOPE_CASES,
  ...PAYLOAD_CASES,
  ...NAME_TABLE,
  ...IDENTITY_CASES,
  ...PROFILE_CASES,
  ...OPEN_CASES,
  ...SIGNATURE_CASES,
];

describe('malformed inputs: each yields exactly one ProtocolError code', () => {
  it('has uniquely named cases', () => {
    const names = TABLE.map((c) => c.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it.each(TABLE)('$name -> $code', ({ name, run, code }) => {
    expect(codeOf(run), name).toBe(code);
  });
});

// ---------------------------------------------------------------------------------------------
// The valid neighbours of the table: what the decoders accept, exactly

describe('the accepted neighbours of the malformed cases', () => {
  it('the hand-built frame record is byte for byte what encodeFrame writes', () => {
    const f = FRAME as { to: string; from: string; corr: string; body: Uint8Array };
    expect(
      toHex(
        encodeFrame({
          kind: 'SEALED',
          to: parseName(f.to),
          from: parseName(f.from),
          corr: f.corr,
          body: f.body,
        }),
      ),
    ).toBe(toHex(VALID_FRAME));
    expect(decodeFrame(VALID_FRAME)).toEqual({
      kind: 'SEALED',
      to: N.ks1,
      from: N.ar,
      corr: '0011223344556677',
      body: FRAME.body,
    });
  });

  it('the hand-built envelope and signed block are what the encoders write', () => {
    expect(toHex(encodeEnvelope(decodeEnvelope(VALID_ENVELOPE)))).toBe(toHex(VALID_ENVELOPE));
    expect(toHex(encodeSignedBlock(decodeSignedBlock(VALID_BLOCK)))).toBe(toHex(VALID_BLOCK));
    expect(decodeEnvelope(VALID_ENVELOPE).sender).toBe(N.ar);
  });

  it('frames at each limit decode', () => {
    const limitCases: [string, Partial<FrameParts>][] = [
      ['corr of 64 bytes', { corr: 'c'.repeat(64) }],
      ['to of 253 bytes', { to: nameOfLength(253) }],
      ['empty to, from and corr', { to: '', from: '', corr: '' }],
      ['empty body', { body: EMPTY }],
      ['kind SIGNED', { kind: 'SIGNED' }],
      ['kind ERROR', { kind: 'ERROR' }],
    ];
    for (const [what, over] of limitCases) {
      const b = frameRec(over);
      expect(
        codeOf(() => decodeFrame(b)),
        what,
      ).toBe('no error (a value was returned)');
      const f = decodeFrame(b);
      expect(toHex(encodeFrame(f)), `${what}: re-encoding`).toBe(toHex(b));
    }
    const overhead = frameRec({ body: EMPTY }).length;
    const biggest = frameRec({ body: filled(LIMITS.FRAME_MAX_BYTES - overhead) });
    expect(biggest.length).toBe(LIMITS.FRAME_MAX_BYTES);
    expect(decodeFrame(biggest).body.length).toBe(LIMITS.FRAME_MAX_BYTES - overhead);
  });

  it('patent reads a wrong tag positionally as the default type; hardened refuses it', () => {
    const b = patent('NEW?', [N.ve]);
    expect(decodePayload(P, b, CLEF_Q)).toEqual({
      tag: 'NEW?',
      header: {},
      body: { type: 'clef-query', subject: N.ve },
    });
    const prog = patent('PROG', [N.ve]);
    expect(decodePayload(P, prog, KS_ALL)).toEqual({
      tag: 'PROG',
      header: {},
      body: { type: 'clef-query', subject: N.ve },
    });
    expect(codeOf(() => decodePayload(H, hardened('PROG', [N.ve]), KS_ALL))).toBe('TYPE_MISMATCH');
    const triple = patent('TRIPLE', [N.ve, CLEF]);
    expect(decodePayload(P, triple, CLEF_A)).toEqual({
      tag: 'TRIPLE',
      header: {},
      body: { type: 'clef-answer', subject: N.ve, clef: { sign: CLEF.slice(0, 32), seal: CLEF.slice(32) } },
    });
    // A tag that names a non-default expected type picks it.
    expect(decodePayload(P, patent('ERR', ['UNKNOWN_NAME', 'no', N.ve]), CLEF_A).body).toEqual({
      type: 'error',
      code: 'UNKNOWN_NAME',
      detail: 'no',
      subject: N.ve,
    });
    // The tag is kept, so the payload re-encodes to the same bytes.
    expect(toHex(encodePayload(P, decodePayload(P, b, CLEF_Q)))).toBe(toHex(b));
  });

  it('payload fields at each limit decode', () => {
    const limitCases: [string, Rules, Uint8Array, Expected][] = [
      ['program of PROGRAM_MAX_BYTES', P, patent('PROG', [filled(LIMITS.PROGRAM_MAX_BYTES)]), PROG],
      ['empty program', P, patent('PROG', [EMPTY]), PROG],
      [
        'OPEN data of CHANNEL_DATA_MAX_BYTES',
        P,
        patent('OPEN', [N.asd, filled(LIMITS.CHANNEL_DATA_MAX_BYTES)]),
        CHAN_OPEN,
      ],
      [
        'location of 256 bytes',
        P,
        patent('HANDOVER', [N.secApp, CLEF, KEY, 'ks2.clefnet.test', 'w'.repeat(256)]),
        PROG,
      ],
      [
        'ERR code of 32 and detail of 256 bytes',
        P,
        patent('ERR', ['E'.repeat(32), 'd'.repeat(256), '']),
        ERR,
      ],
      ['subject of 253 bytes', P, patent('CLEF?', [nameOfLength(253)]), CLEF_Q],
      ['tag of 16 bytes (patent: read as the default)', P, patent('CLEF?'.padEnd(16, '?'), [N.ve]), CLEF_Q],
      [
        'issuedAt = expiresAt = 2^53 - 1',
        H,
        hardened('CLEF?', [N.ve], { issuedAt: u64(2 ** 53 - 1), expiresAt: u64(2 ** 53 - 1) }),
        CLEF_Q,
      ],
      ['inReplyTo of 16 bytes', H, hardened('CLEF', [N.ve, CLEF], { inReplyTo: NONCE }), CLEF_A],
    ];
    for (const [what, rules, b, expected] of limitCases) {
      expect(
        codeOf(() => decodePayload(rules, b, expected)),
        what,
      ).toBe('no error (a value was returned)');
      expect(toHex(encodePayload(rules, decodePayload(rules, b, expected))), `${what}: re-encoding`).toBe(
        toHex(b),
      );
    }
    expect(
      decodePayload(H, hardened('CLEF?', [N.ve], { issuedAt: u64(2 ** 53 - 1) }), CLEF_Q).header.issuedAt,
    ).toBe(2 ** 53 - 1);
  });

  it('parseName refuses each bad Name with the reason it gives, and accepts the limits', () => {
    for (const [what, input, reason] of NAME_CASES) {
      let caught: unknown;
      try {
        parseName(input);
      } catch (e) {
        caught = e;
      }
      expect(caught, what).toBeInstanceOf(ProtocolError);
      const e = caught as ProtocolError;
      expect(e.code, what).toBe('NAME_INVALID');
      expect(String(e.meta.reason).startsWith(reason), `${what}: reason ${String(e.meta.reason)}`).toBe(true);
    }
    for (const ok of ['a', 'a'.repeat(63), nameOfLength(253), 'x-1.y--2.z', '0.1.2']) {
      expect(parseName(ok), ok).toBe(ok);
    }
  });

  it('decodeClef and the JSON forms accept what their encoders write', () => {
    expect(encodeClef(decodeClef(CLEF))).toEqual(CLEF);
    expect(accessPairFromJson(PAIR_JSON)).toEqual({ name: TRIPLE_A.name, clef: TRIPLE_A.clef });
    expect(tripleFromJson(nodeBackend, TRIPLE_JSON)).toEqual(TRIPLE_A);
  });

  it('open() opens the untouched seal with both backends', () => {
    expect(toHex(open(nodeBackend, TRIPLE_A.key, SEALED))).toBe(toHex(PLAIN));
    expect(toHex(open(nobleBackend, TRIPLE_A.key, SEALED))).toBe(toHex(PLAIN));
    expect(verify(nodeBackend, TRIPLE_A.clef, SIGNED_BLOCK)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Party level: a reference world per case

const PROFILES = ['patent', 'hardened'] as const;
const MALLORY = parseName('mallory.clefnet.test');

function freshWorld(profile: ProfileName): World {
  return createWorld({ profile, backend: nodeBackend, seed: `malformed/${profile}` });
}

const pairOf = (t: AuthorityTriple): AccessPair => ({ name: t.name, clef: t.clef });

interface Craft {
  /** Name-S and, unless `signer` is given, the signing Key. */
  readonly sender: AuthorityTriple;
  readonly signer?: Key;
  /** Addressee (routing and header.receiver). */
  readonly to: AccessPair;
  /** The Clef the envelope is sealed to (default `to.clef`). */
  readonly sealTo?: Clef;
  readonly body: Body;
  readonly tag?: string;
  readonly header?: Header;
  readonly corr?: string;
}

/** `< Name-S ‖ <payload>Key-S >Clef-R` as an honest party of `w`'s profile would write it, unless told otherwise. */
function craft(
  w: World,
  c: Craft,
  random = seededRandom(`craft/${w.profile.name}/${c.sender.name}`),
): {
  bytes: Uint8Array;
  header: Header;
} {
  const rules = w.profile.rules;
  const now = w.clock();
  const header: Header = {
    ...(rules.namesInSignature ? { sender: c.sender.name, receiver: c.to.name } : {}),
    ...(rules.freshness ? { nonce: random(16), issuedAt: now, expiresAt: now + 30_000 } : {}),
    ...(rules.answerBinding ? { inReplyTo: EMPTY } : {}),
    ...c.header,
  };
  const p = { tag: c.tag ?? TAGS[c.body.type], header, body: c.body };
  const signed = sign(nodeBackend, c.signer ?? c.sender.key, encodePayload(rules, p));
  const sealed = sealEnvelope(nodeBackend, { sender: c.sender.name, signed }, c.sealTo ?? c.to.clef, random);
  const bytes = encodeFrame({
    kind: 'SEALED',
    to: c.to.name,
    from: c.sender.name,
    corr: c.corr ?? 'c-1',
    body: sealed,
  });
  return { bytes, header };
}

/** The kind of the answer frame and the error payload inside it, checked as its receiver would. */
function readErrorAnswer(
  w: World,
  bytes: Uint8Array,
  signer: AccessPair,
): { frame: Frame; code: string; header: Header } {
  const frame = decodeFrame(bytes);
  if (frame.kind === 'ERROR') {
    const p = decodePayload(PATENT.rules, frame.body, ['error']);
    return { frame, code: p.body.code, header: p.header };
  }
  if (frame.kind !== 'SIGNED') throw new Error(`an error answer came as a ${frame.kind} frame`);
  const env = decodeEnvelope(frame.body);
  expect(env.sender).toBe(signer.name);
  expect(verify(nodeBackend, signer.clef, env.signed)).toBe(true);
  const p = decodePayload(w.profile.rules, env.signed.payload, ['error']);
  return { frame, code: p.body.code, header: p.header };
}

/** Opens a SEALED answer with the requester's Key and reads the Clef answer in it, as the requester would. */
function readClefAnswer(w: World, bytes: Uint8Array, requester: AuthorityTriple, signer: AccessPair) {
  const frame = decodeFrame(bytes);
  expect(frame.kind).toBe('SEALED');
  const env = openEnvelope(nodeBackend, requester.key, frame.body);
  expect(env.sender).toBe(signer.name);
  expect(verify(nodeBackend, signer.clef, env.signed)).toBe(true);
  return decodePayload(w.profile.rules, env.signed.payload, ['clef-answer']).body;
}

const mallory = generateTriple(nodeBackend, seededRandom('malformed/mallory'), MALLORY);
const ANSWER_KIND: Record<(typeof PROFILES)[number], Frame['kind']> = { patent: 'ERROR', hardened: 'SIGNED' };

describe.each(PROFILES)('party level (%s)', (profile) => {
  it('a frame sealed to another receiver -> CRYPTO_OPEN, nothing sent', () => {
    const w = freshWorld(profile);
    const { bytes: f } = craft(w, {
      sender: w.triples.ar,
      to: pairOf(w.triples.ks1),
      sealTo: w.triples.ks2.clef,
      body: { type: 'clef-query', subject: w.names.machine },
    });
    const out = w.ks1.receive(f);
    expect(out.error?.code).toBe('CRYPTO_OPEN');
    expect(out.send).toEqual([]);
    expect(out.events.map((e) => [e.type, e.code])).toEqual([['rejected', 'CRYPTO_OPEN']]);
  });

  it('a payload signed by the wrong Key -> CRYPTO_SIGNATURE and a negative answer', () => {
    const w = freshWorld(profile);
    const { bytes: f, header } = craft(w, {
      sender: w.triples.ar,
      signer: w.triples.machine.key,
      to: pairOf(w.triples.ks1),
      body: { type: 'clef-query', subject: w.names.machine },
    });
    const out = w.ks1.receive(f);
    expect(out.error?.code).toBe('CRYPTO_SIGNATURE');
    expect(out.send.map((s) => [s.to, s.step])).toEqual([[w.names.ar, 'ERR']]);
    const answer = readErrorAnswer(w, out.send[0]!.bytes, pairOf(w.triples.ks1));
    expect(answer.frame.kind).toBe(ANSWER_KIND[profile]);
    expect(answer.frame.corr).toBe('c-1');
    expect(answer.code).toBe('CRYPTO_SIGNATURE');
    if (profile === 'hardened') expect(toHex(answer.header.inReplyTo!)).toBe(toHex(header.nonce!));
  });

  it('an unknown sender at KServ1 -> UNKNOWN_SENDER and a negative answer of the profile kind', () => {
    const w = freshWorld(profile);
    const { bytes: f, header } = craft(w, {
      sender: mallory,
      to: pairOf(w.triples.ks1),
      body: { type: 'clef-query', subject: w.names.machine },
    });
    const out = w.ks1.receive(f);
    expect(out.error?.code).toBe('UNKNOWN_SENDER');
    expect(out.send.map((s) => [s.to, s.step])).toEqual([[MALLORY, 'ERR']]);
    const answer = readErrorAnswer(w, out.send[0]!.bytes, pairOf(w.triples.ks1));
    expect(answer.frame.kind).toBe(ANSWER_KIND[profile]);
    expect(answer.frame.to).toBe(MALLORY);
    expect(answer.code).toBe('UNKNOWN_SENDER');
    if (profile === 'hardened') {
      expect(answer.header.sender).toBe(w.names.ks1);
      expect(answer.header.receiver).toBe(MALLORY);
      expect(toHex(answer.header.inReplyTo!)).toBe(toHex(header.nonce!));
    } else {
      expect(answer.header).toEqual({});
    }
  });

  it('bytes that are no frame -> the decoder code at every party, nothing sent', () => {
    const w = freshWorld(profile);
    const inputs: [string, Uint8Array, ErrorCode][] = [
      ['empty', EMPTY, 'ENCODING_TRUNCATED'],
      ['wrong version', frameRec({ version: 'CLEFNET/0' }), 'FRAME_VERSION'],
      ['unknown kind', frameRec({ kind: 'PUSH' }), 'FRAME_KIND'],
      ['trailing byte', concat(VALID_FRAME, bytes(0)), 'ENCODING_TRAILING'],
      ['oversized', new Uint8Array(LIMITS.FRAME_MAX_BYTES + 1), 'ENCODING_TOO_LARGE'],
      ['SEALED body too short to open', frameRec({ body: filled(47) }), 'CRYPTO_OPEN'],
      [
        'SIGNED body that is no envelope',
        frameRec({ kind: 'SIGNED', body: bytes(0, 0, 0) }),
        'ENCODING_TRUNCATED',
      ],
    ];
    for (const party of [w.ks1, w.ks2, w.ar, w.machine, w.asd]) {
      for (const [what, b, code] of inputs) {
        const out = party.receive(b);
        expect(out.error?.code, `${party.name}: ${what}`).toBe(code);
        expect(out.send, `${party.name}: ${what}`).toEqual([]);
      }
    }
  });

  it('an unsolicited unsigned ERROR frame: patent UNSOLICITED_ANSWER, hardened FRAME_KIND', () => {
    const w = freshWorld(profile);
    const body = encodePayload(
      PATENT.rules,
      payload({ type: 'error', code: 'UNKNOWN_NAME', detail: 'no', subject: '' }),
    );
    const f = encodeFrame({ kind: 'ERROR', to: w.names.ar, from: w.names.ks1, corr: '', body });
    const out = w.ar.receive(f);
    expect(out.error?.code).toBe(profile === 'patent' ? 'UNSOLICITED_ANSWER' : 'FRAME_KIND');
    expect(out.send).toEqual([]);
  });

  it('a recorded answer (M3) replayed to AR after the deployment -> UNSOLICITED_ANSWER', () => {
    const w = freshWorld(profile);
    w.issueVeKey();
    w.deploy(utf8('program'), false);
    const m3 = w.net.wire.find((f) => f.from === w.names.ks1 && f.to === w.names.ar);
    expect(m3?.step).toBe('CLEF-ANS');
    const out = w.ar.receive(m3!.bytes);
    expect(out.error?.code).toBe('UNSOLICITED_ANSWER');
    expect(out.send).toEqual([]);
  });

  it('a recorded request (M1) replayed to KServ1: patent answers again, hardened -> REPLAY', () => {
    const w = freshWorld(profile);
    w.issueVeKey();
    w.deploy(utf8('program'), false);
    const m1 = w.net.wire.find((f) => f.from === w.names.ar && f.to === w.names.ks1);
    expect(m1?.step).toBe('M1');
    const out = w.ks1.receive(m1!.bytes);
    if (profile === 'patent') {
      expect(out.error).toBeUndefined();
      expect(out.send.map((s) => s.to)).toEqual([w.names.ar]);
      const answer = readClefAnswer(w, out.send[0]!.bytes, w.triples.ar, pairOf(w.triples.ks1));
      expect(answer.subject).toBe(w.names.ve);
    } else {
      // Refused before any signature work, and not answered: a replay costs the server nothing (ATK-6).
      expect(out.error?.code).toBe('REPLAY');
      expect(out.send).toEqual([]);
    }
  });

  it('a request delivered after its validity period: patent answers, hardened -> STALE', () => {
    const w = freshWorld(profile);
    const { bytes: f } = craft(w, {
      sender: w.triples.ar,
      to: pairOf(w.triples.ks1),
      body: { type: 'clef-query', subject: w.names.machine },
    });
    w.advance(30_000);
    const out = w.ks1.receive(f);
    if (profile === 'patent') {
      expect(out.error).toBeUndefined();
      expect(out.send.map((s) => s.to)).toEqual([w.names.ar]);
      const answer = readClefAnswer(w, out.send[0]!.bytes, w.triples.ar, pairOf(w.triples.ks1));
      expect(answer).toEqual({ type: 'clef-answer', subject: w.names.machine, clef: w.triples.machine.clef });
    } else {
      expect(out.error?.code).toBe('STALE');
      expect(out.send).toEqual([]);
    }
  });

  it('a program tag sent to a key server: patent reads it as CLEF?, hardened -> TYPE_MISMATCH', () => {
    const w = freshWorld(profile);
    const { bytes: f } = craft(w, {
      sender: w.triples.ar,
      to: pairOf(w.triples.ks1),
      body: { type: 'program', program: utf8(w.names.machine) },
    });
    const out = w.ks1.receive(f);
    if (profile === 'patent') {
      // The program bytes are taken positionally as the subject of a Clef query (TB-14).
      expect(out.error).toBeUndefined();
      expect(out.send.map((s) => s.to)).toEqual([w.names.ar]);
      const answer = readClefAnswer(w, out.send[0]!.bytes, w.triples.ar, pairOf(w.triples.ks1));
      expect(answer).toEqual({ type: 'clef-answer', subject: w.names.machine, clef: w.triples.machine.clef });
    } else {
      expect(out.error?.code).toBe('TYPE_MISMATCH');
      const answer = readErrorAnswer(w, out.send[0]!.bytes, pairOf(w.triples.ks1));
      expect([answer.frame.kind, answer.code]).toEqual(['SIGNED', 'TYPE_MISMATCH']);
    }
  });

  it('a negative answer to a registered requester stays within the error-detail limit its receiver enforces', () => {
    // A registered requester (here AR, with its real Key) asks about an invalid, non-ASCII Name.
    // KServ1 refuses with NAME_INVALID; the error frame it sends must be one the requester can
    // decode (detail <= ERROR_DETAIL_MAX_BYTES), else the request can only time out.
    const w = freshWorld(profile);
    const rules = w.profile.rules;
    const now = w.clock();
    const header: Header = {
      ...(rules.namesInSignature ? { sender: w.names.ar, receiver: w.names.ks1 } : {}),
      ...(rules.freshness ? { nonce: NONCE, issuedAt: now, expiresAt: now + 30_000 } : {}),
      ...(rules.answerBinding ? { inReplyTo: EMPTY } : {}),
    };
    const fields: Uint8Array[] = [utf8('CLEF?')];
    if (rules.namesInSignature) fields.push(utf8(header.sender!), utf8(header.receiver!));
    if (rules.freshness) fields.push(NONCE, u64(now), u64(now + 30_000));
    if (rules.answerBinding) fields.push(EMPTY);
    fields.push(utf8('€'.repeat(60)));
    const signed = sign(nodeBackend, w.triples.ar.key, encodeFields(fields));
    const sealed = sealEnvelope(
      nodeBackend,
      { sender: w.names.ar, signed },
      w.triples.ks1.clef,
      seededRandom('x'),
    );
    const f = encodeFrame({ kind: 'SEALED', to: w.names.ks1, from: w.names.ar, corr: 'c-9', body: sealed });
    const out = w.ks1.receive(f);
    expect(out.error?.code).toBe('NAME_INVALID');
    expect(out.send.map((s) => s.step)).toEqual(['ERR']);
    expect(codeOf(() => readErrorAnswer(w, out.send[0]!.bytes, pairOf(w.triples.ks1)))).toBe(
      'no error (a value was returned)',
    );
    const answer = readErrorAnswer(w, out.send[0]!.bytes, pairOf(w.triples.ks1));
    expect([answer.frame.kind, answer.code]).toEqual([ANSWER_KIND[profile], 'NAME_INVALID']);
  });
});

describe('party level (hardened only)', () => {
  it('sender outside the signature differs from the one inside -> SENDER_MISMATCH', () => {
    const w = freshWorld('hardened');
    const { bytes: f } = craft(w, {
      sender: w.triples.ar,
      to: pairOf(w.triples.ks1),
      body: { type: 'clef-query', subject: w.names.machine },
      header: { sender: w.names.machine },
    });
    expect(w.ks1.receive(f).error?.code).toBe('SENDER_MISMATCH');
  });

  it('a request signed for another receiver -> WRONG_RECEIVER', () => {
    const w = freshWorld('hardened');
    const { bytes: f } = craft(w, {
      sender: w.triples.ar,
      to: pairOf(w.triples.ks1),
      body: { type: 'clef-query', subject: w.names.machine },
      header: { receiver: w.names.ks2 },
    });
    expect(w.ks1.receive(f).error?.code).toBe('WRONG_RECEIVER');
  });

  it('a program from a sender not on the VE list (closed model) -> SENDER_NOT_LISTED', () => {
    const w = freshWorld('hardened');
    w.issueVeKey();
    const ve = w.ve!;
    const { bytes: f } = craft(w, {
      sender: mallory,
      to: { name: ve.name, clef: ve.clef },
      body: { type: 'program', program: utf8('evil') },
    });
    const out = ve.receive(f);
    expect(out.error?.code).toBe('SENDER_NOT_LISTED');
    expect(out.send).toEqual([]);
    expect(ve.parkedMessages).toBe(0);
  });
});

describe('custom profiles decode with their own header layout', () => {
  it('freshness without names: nonce of 15 bytes -> ENCODING_BAD_VALUE', () => {
    const profile: Profile = createProfile({ base: 'patent', rules: { freshness: true } });
    const good = rec('CLEF?', NONCE, u64(T0), u64(T0 + 1), N.ve);
    expect(decodePayload(profile.rules, good, CLEF_Q).header).toEqual({
      nonce: NONCE,
      issuedAt: T0,
      expiresAt: T0 + 1,
    });
    const bad = rec('CLEF?', filled(15), u64(T0), u64(T0 + 1), N.ve);
    expect(codeOf(() => decodePayload(profile.rules, bad, CLEF_Q))).toBe('ENCODING_BAD_VALUE');
  });
});
