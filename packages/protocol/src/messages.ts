/**
 * Every payload of the exchange (PROTO-14..26, TB-12, TB-14, TB-17) as a type with an encoder and a
 * strict decoder. A payload is a TB-14 record: the tag, then the header fields the profile's rules
 * add (none under `patent`), then the body fields in the order the patent writes them.
 *
 * | body type      | tag      | body fields                           | used in                        |
 * |----------------|----------|---------------------------------------|--------------------------------|
 * | clef-query     | CLEF?    | subject                               | M1, M9a, KServ2 -> KServ1      |
 * | clef-answer    | CLEF     | subject, clef                         | M3, M9b                        |
 * | new-query      | NEW?     | subject                               | M5, VE key request (TB-12)     |
 * | triple         | TRIPLE   | name, clef, key                       | M6, VE key answer (TB-12)      |
 * | program        | PROG     | program                               | M7                             |
 * | handover       | HANDOVER | name, clef, key, key server, location | after step 9 (PROTO-23)        |
 * | channel-open   | OPEN     | data server, data                     | SecApp -> KServ2 (TB-17)       |
 * | channel-from   | FROM     | peer, peer clef, data                 | KServ2 -> ASD, KServ2 -> SecApp|
 * | channel-reply  | REPLY    | application, data                     | ASD -> KServ2                  |
 * | error          | ERR      | code, detail, subject (may be empty)  | negative answers (TB-15)       |
 */
import { encodeFields, FieldReader, utf8Shared } from './codec.js';
import type { RandomSource } from './crypto/backend.js';
import { ProtocolError } from './errors.js';
import {
  type AuthorityTriple,
  CLEF_BYTES,
  type Clef,
  decodeClef,
  decodeKey,
  encodeClef,
  encodeKey,
  KEY_BYTES,
} from './identity.js';
import { LIMITS } from './limits.js';
import { type Name, parseName } from './names.js';
import type { Profile, Rules } from './profile.js';
import { type BindingHeader, readBinding, replyHeader, writeBinding } from './rules/answer-binding.js';
import { type FreshnessHeader, freshHeader, readFreshness, writeFreshness } from './rules/freshness.js';
import { type NamesHeader, readNames, writeNames } from './rules/names-in-signature.js';
import { selectBodyType } from './rules/type-tags.js';
import { type BodyType, TAGS } from './tags.js';

export type Body =
  | { readonly type: 'clef-query'; readonly subject: Name }
  | { readonly type: 'clef-answer'; readonly subject: Name; readonly clef: Clef }
  | { readonly type: 'new-query'; readonly subject: Name }
  | { readonly type: 'triple'; readonly triple: AuthorityTriple }
  | { readonly type: 'program'; readonly program: Uint8Array }
  | {
      readonly type: 'handover';
      readonly triple: AuthorityTriple;
      readonly keyServer: Name;
      readonly location: string;
    }
  | { readonly type: 'channel-open'; readonly peer: Name; readonly data: Uint8Array }
  | { readonly type: 'channel-from'; readonly peer: Name; readonly clef: Clef; readonly data: Uint8Array }
  | { readonly type: 'channel-reply'; readonly peer: Name; readonly data: Uint8Array }
  | { readonly type: 'error'; readonly code: string; readonly detail: string; readonly subject: Name | '' };

export type { BodyType };
export { TAGS };
export type BodyOf<T extends BodyType> = Extract<Body, { type: T }>;

/** Header fields added by the rules in force; all absent under `patent`. */
export type Header = Partial<NamesHeader & FreshnessHeader & BindingHeader>;

export interface Payload<B extends Body = Body> {
  /** The tag as written on the wire (normally TAGS[body.type]; researchers may forge another). */
  readonly tag: string;
  readonly header: Header;
  readonly body: B;
}

/**
 * The header an honest sender writes under `profile` at time `now`: each rule in force adds its
 * fields (sender and receiver Names; nonce and validity period; the nonce of the request answered).
 */
export function buildHeader(
  profile: Profile,
  random: RandomSource,
  now: number,
  sender: Name,
  receiver: Name,
  opts: { readonly inReplyTo?: Uint8Array | undefined; readonly validityMs?: number } = {},
): Header {
  const rules = profile.rules;
  // Object.assign, not spreads: this runs for every message, and three spreads cost some 30 times
  // more here (the issue 2 overhead figure).
  const h: { -readonly [K in keyof Header]: Header[K] } = {};
  if (rules.namesInSignature) {
    h.sender = sender;
    h.receiver = receiver;
  }
  return Object.assign(
    h,
    freshHeader(profile, random, now, opts.validityMs ?? profile.messageValidityMs),
    replyHeader(rules, opts.inReplyTo),
  );
}

/** Builds a payload with its regular tag. */
export function payload<B extends Body>(body: B, header: Header = {}): Payload<B> {
  return { tag: TAGS[body.type], header, body };
}

export function encodePayload(rules: Rules, p: Payload): Uint8Array {
  const fields: Uint8Array[] = [limitedText(p.tag, LIMITS.TAG_MAX_BYTES, 'tag')];
  if (rules.namesInSignature) writeNames(p.header, fields);
  if (rules.freshness) writeFreshness(p.header, fields);
  if (rules.answerBinding) writeBinding(p.header, fields);
  writeBody(p.body, fields);
  return encodeFields(fields);
}

/**
 * Decodes a payload that the receiver expects to be one of `expected` (first = default). With
 * the typeTags rule the tag must name one of them; without it (patent) the tag only picks among
 * them and anything else is read as the default, field by field (TB-14).
 */
export function decodePayload<T extends BodyType>(
  rules: Rules,
  bytes: Uint8Array,
  expected: readonly [T, ...T[]],
): Payload<BodyOf<T>> {
  const r = new FieldReader(bytes, 'payload');
  const tag = r.text(LIMITS.TAG_MAX_BYTES, 'tag');
  const type = selectBodyType(rules, tag, expected);
  const header = readHeader(rules, r);
  const body = readBody(type, r) as BodyOf<T>;
  r.end();
  return { tag, header, body };
}

function readHeader(rules: Rules, r: FieldReader): Header {
  if (!rules.namesInSignature && !rules.freshness && !rules.answerBinding) return NO_HEADER;
  const h: { -readonly [K in keyof Header]: Header[K] } = {};
  if (rules.namesInSignature) {
    const n = readNames(r);
    h.sender = n.sender;
    h.receiver = n.receiver;
  }
  if (rules.freshness) {
    const f = readFreshness(r);
    h.nonce = f.nonce;
    h.issuedAt = f.issuedAt;
    h.expiresAt = f.expiresAt;
  }
  if (rules.answerBinding) h.inReplyTo = readBinding(r).inReplyTo;
  return h;
}

const NO_HEADER: Header = Object.freeze({});

/** Reads only the tag and header of a payload, without trusting them (to find the request an answer names). */
export function decodeHeader(rules: Rules, bytes: Uint8Array): Header {
  const r = new FieldReader(bytes, 'payload');
  r.text(LIMITS.TAG_MAX_BYTES, 'tag');
  return readHeader(rules, r);
}

function writeTriple(t: AuthorityTriple, out: Uint8Array[]): void {
  out.push(utf8Shared(t.name), encodeClef(t.clef), encodeKey(t.key));
}

function writeBody(b: Body, out: Uint8Array[]): void {
  switch (b.type) {
    case 'clef-query':
    case 'new-query':
      out.push(utf8Shared(b.subject));
      return;
    case 'clef-answer':
      out.push(utf8Shared(b.subject), encodeClef(b.clef));
      return;
    case 'triple':
      writeTriple(b.triple, out);
      return;
    case 'program':
      checkSize(b.program, LIMITS.PROGRAM_MAX_BYTES, 'program');
      out.push(b.program);
      return;
    case 'handover':
      writeTriple(b.triple, out);
      out.push(utf8Shared(b.keyServer), limitedText(b.location, LIMITS.LOCATION_MAX_BYTES, 'location'));
      return;
    case 'channel-open':
    case 'channel-reply':
      checkSize(b.data, LIMITS.CHANNEL_DATA_MAX_BYTES, 'data');
      out.push(utf8Shared(b.peer), b.data);
      return;
    case 'channel-from':
      checkSize(b.data, LIMITS.CHANNEL_DATA_MAX_BYTES, 'data');
      out.push(utf8Shared(b.peer), encodeClef(b.clef), b.data);
      return;
    case 'error':
      out.push(
        limitedText(b.code, LIMITS.ERROR_CODE_MAX_BYTES, 'code'),
        limitedText(b.detail, LIMITS.ERROR_DETAIL_MAX_BYTES, 'detail'),
        utf8Shared(b.subject),
      );
      return;
  }
}

/** UTF-8 of `text`, refused when longer than the limit its decoder enforces. */
function limitedText(text: string, max: number, field: string): Uint8Array {
  const b = utf8Shared(text);
  checkSize(b, max, field);
  return b;
}

function checkSize(b: Uint8Array, max: number, field: string): void {
  if (b.length > max) {
    throw new ProtocolError('ENCODING_TOO_LARGE', `${field} is ${b.length} bytes, limit ${max}`, {
      field,
      limit: max,
    });
  }
}

export function readName(r: FieldReader, field: string): Name {
  const text = r.text(LIMITS.NAME_MAX_BYTES, field);
  try {
    return parseName(text);
  } catch (e) {
    if (e instanceof ProtocolError)
      throw new ProtocolError('NAME_INVALID', `${field}: ${e.message}`, { field });
    throw e;
  }
}

function readClef(r: FieldReader, field: string): Clef {
  return decodeClef(r.fixed(CLEF_BYTES, field));
}

function readTriple(r: FieldReader): AuthorityTriple {
  const name = readName(r, 'name');
  const clef = readClef(r, 'clef');
  const key = decodeKey(r.fixed(KEY_BYTES, 'key'));
  return { name, clef, key };
}

function readBody(type: BodyType, r: FieldReader): Body {
  switch (type) {
    case 'clef-query':
    case 'new-query':
      return { type, subject: readName(r, 'subject') };
    case 'clef-answer':
      return { type, subject: readName(r, 'subject'), clef: readClef(r, 'clef') };
    case 'triple':
      return { type, triple: readTriple(r) };
    case 'program':
      return { type, program: r.bytesField(LIMITS.PROGRAM_MAX_BYTES, 'program').slice() };
    case 'handover': {
      const triple = readTriple(r);
      const keyServer = readName(r, 'keyServer');
      return { type, triple, keyServer, location: r.text(LIMITS.LOCATION_MAX_BYTES, 'location') };
    }
    case 'channel-open':
    case 'channel-reply':
      return {
        type,
        peer: readName(r, 'peer'),
        data: r.bytesField(LIMITS.CHANNEL_DATA_MAX_BYTES, 'data').slice(),
      };
    case 'channel-from':
      return {
        type,
        peer: readName(r, 'peer'),
        clef: readClef(r, 'clef'),
        data: r.bytesField(LIMITS.CHANNEL_DATA_MAX_BYTES, 'data').slice(),
      };
    case 'error': {
      const code = r.text(LIMITS.ERROR_CODE_MAX_BYTES, 'code');
      const detail = r.text(LIMITS.ERROR_DETAIL_MAX_BYTES, 'detail');
      const subjectText = r.text(LIMITS.NAME_MAX_BYTES, 'subject');
      const subject = subjectText === '' ? '' : parseName(subjectText);
      return { type, code, detail, subject };
    }
  }
}
