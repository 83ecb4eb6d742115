/**
 * Issue 2 point 7: random and mutated input to every decoder and every party. The only outcomes
 * allowed are a decoded value or a ProtocolError whose code is in ERROR_CODES; nothing else is
 * thrown, nothing hangs (each test has a timeout), and no party table grows past its bound.
 * Canonical codecs also round-trip: whatever decodes re-encodes to the same bytes.
 *
 * Every property has a fixed seed, so a run is deterministic and a failure replays.
 */

import {
  type AccessPairJson,
  type AuthorityTriple,
  accessPairFromJson,
  type Body,
  type BodyType,
  type Clef,
  clefEquals,
  clefOf,
  createAncVe,
  createKeyServer,
  createProfile,
  createWorld,
  decodeClef,
  decodeEnvelope,
  decodeFrame,
  decodeHeader,
  decodeKey,
  decodePayload,
  decodeSignedBlock,
  ERROR_CODES,
  type ErrorCode,
  encodeClef,
  encodeEnvelope,
  encodeFields,
  encodeFrame,
  encodePayload,
  encodeSignedBlock,
  FRAME_KINDS,
  type Frame,
  generateTriple,
  HARDENED,
  type Header,
  isName,
  type Key,
  LIMITS,
  type Name,
  nodeBackend,
  type Outcome,
  open,
  openEnvelope,
  PATENT,
  type Party,
  type Payload,
  type Profile,
  ProtocolError,
  parseName,
  ReplayCache,
  type Rules,
  seal,
  sealEnvelope,
  seededRandom,
  sign,
  TAGS,
  type TripleJson,
  toHex,
  tripleFromJson,
  tripleToJson,
  utf8,
  type World,
} from '@clefnet/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const SEED = 42;
const TIMEOUT = { timeout: 120_000 };

// ---------------------------------------------------------------------------------------------
// Outcome checks

const REGISTERED = new Set<string>(Object.keys(ERROR_CODES));
const ENCODING: ErrorCode[] = [
  'ENCODING_TRUNCATED',
  'ENCODING_TRAILING',
  'ENCODING_TOO_LARGE',
  'ENCODING_BAD_INTEGER',
  'ENCODING_BAD_UTF8',
  'ENCODING_BAD_VALUE',
];
/** The codes each decoder may give; anything else is a bug even if registered. */
const ALLOWED = {
  frame: new Set<ErrorCode>([...ENCODING, 'NAME_INVALID', 'FRAME_VERSION', 'FRAME_KIND']),
  envelope: new Set<ErrorCode>([...ENCODING, 'NAME_INVALID']),
  payload: new Set<ErrorCode>([...ENCODING, 'NAME_INVALID', 'TYPE_MISMATCH']),
  clef: new Set<ErrorCode>(['KEY_INVALID']),
  name: new Set<ErrorCode>(['NAME_INVALID']),
  open: new Set<ErrorCode>(['CRYPTO_OPEN']),
  openEnvelope: new Set<ErrorCode>(['CRYPTO_OPEN', ...ENCODING, 'NAME_INVALID']),
  json: new Set<ErrorCode>(['KEY_INVALID', 'NAME_INVALID', 'ENCODING_BAD_VALUE']),
} as const;

function describeThrown(e: unknown): string {
  if (e instanceof Error) return `${e.constructor.name}: ${e.stack ?? e.message}`;
  return `${typeof e}: ${String(e)}`;
}

function show(input: unknown): string {
  if (input instanceof Uint8Array) return `hex ${toHex(input).slice(0, 400)}`;
  try {
    return JSON.stringify(input) ?? String(input);
  } catch {
    return String(input);
  }
}

type Attempt<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: ErrorCode };

/**
 * Runs a decoder. A ProtocolError with a registered code from `allowed` is a legal outcome; any
 * other throw fails the property with the input in the message.
 */
function attempt<T>(what: string, input: unknown, allowed: ReadonlySet<ErrorCode>, f: () => T): Attempt<T> {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    const shown = show(input);
    if (!(e instanceof ProtocolError)) {
      throw new Error(`${what} threw something other than a ProtocolError on ${shown}: ${describeThrown(e)}`);
    }
    if (!REGISTERED.has(e.code)) throw new Error(`${what} threw unregistered code ${e.code} on ${shown}`);
    if (!allowed.has(e.code)) {
      throw new Error(`${what} threw ${e.code} (not a code allowed here) on ${shown}: ${e.message}`);
    }
    return { ok: false, code: e.code };
  }
}

const sameBytes = (what: string, actual: Uint8Array, expected: Uint8Array): void => {
  if (toHex(actual) !== toHex(expected)) {
    throw new Error(
      `${what}: re-encoding gives ${toHex(actual).slice(0, 200)}, input was ${toHex(expected).slice(0, 200)}`,
    );
  }
};

// ---------------------------------------------------------------------------------------------
// Byte helpers and mutations

const EMPTY = new Uint8Array(0);
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** Splits as many whole TB-14 fields as there are; `rest` is whatever does not parse. */
function splitRecord(b: Uint8Array): { fields: Uint8Array[]; offsets: number[]; rest: Uint8Array } {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const fields: Uint8Array[] = [];
  const offsets: number[] = [];
  let at = 0;
  while (at + 4 <= b.length) {
    const len = view.getUint32(at, false);
    if (at + 4 + len > b.length) break;
    offsets.push(at);
    fields.push(b.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return { fields, offsets, rest: b.subarray(at) };
}
const joinRecord = (fields: Uint8Array[], rest: Uint8Array): Uint8Array => concat(encodeFields(fields), rest);

type Mutation =
  | { readonly op: 'flip'; readonly at: number; readonly bit: number }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly op: 'delete'; readonly at: number; readonly count: number }
  | { readonly op: 'prefix'; readonly field: number; readonly value: number }
  | { readonly op: 'append'; readonly bytes: Uint8Array }
  | { readonly op: 'double' }
  | { readonly op: 'swap'; readonly a: number; readonly b: number }
  | { readonly op: 'drop'; readonly field: number }
  | { readonly op: 'replace'; readonly field: number; readonly bytes: Uint8Array }
  | { readonly op: 'inside'; readonly field: number; readonly inner: readonly Mutation[] };

function mutate(b: Uint8Array, m: Mutation): Uint8Array {
  switch (m.op) {
    case 'flip': {
      if (b.length === 0) return b;
      const out = b.slice();
      const at = m.at % b.length;
      out[at] = out[at]! ^ (1 << m.bit);
      return out;
    }
    case 'truncate':
      return b.length === 0 ? b : b.subarray(0, m.at % b.length);
    case 'insert': {
      const at = m.at % (b.length + 1);
      return concat(b.subarray(0, at), m.bytes, b.subarray(at));
    }
    case 'delete': {
      const at = m.at % (b.length + 1);
      return concat(b.subarray(0, at), b.subarray(at + m.count));
    }
    case 'prefix': {
      const { offsets } = splitRecord(b);
      if (offsets.length === 0) return b;
      const out = b.slice();
      new DataView(out.buffer).setUint32(offsets[m.field % offsets.length]!, m.value, false);
      return out;
    }
    case 'append':
      return concat(b, m.bytes);
    case 'double':
      return concat(b, b);
    default: {
      const { fields, rest } = splitRecord(b);
      if (fields.length === 0) return b;
      const next = [...fields];
      if (m.op === 'swap') {
        const i = m.a % next.length;
        const j = m.b % next.length;
        [next[i], next[j]] = [next[j]!, next[i]!];
      } else if (m.op === 'drop') {
        next.splice(m.field % next.length, 1);
      } else if (m.op === 'replace') {
        next[m.field % next.length] = m.bytes;
      } else {
        const i = m.field % next.length;
        next[i] = mutateAll(next[i]!, m.inner);
      }
      return joinRecord(next, rest);
    }
  }
}
const mutateAll = (b: Uint8Array, ms: readonly Mutation[]): Uint8Array => ms.reduce(mutate, b);

/** Length prefixes worth trying: every limit, one under and one over, and the extremes. */
const INTERESTING_LENGTHS = [
  0,
  1,
  3,
  4,
  8,
  15,
  16,
  17,
  31,
  32,
  33,
  47,
  48,
  63,
  64,
  65,
  253,
  254,
  256,
  257,
  65_536,
  65_537,
  LIMITS.PROGRAM_MAX_BYTES,
  LIMITS.PROGRAM_MAX_BYTES + 1,
  LIMITS.FRAME_MAX_BYTES,
  LIMITS.FRAME_MAX_BYTES + 1,
  0x7fff_ffff,
  0x8000_0000,
  0xffff_fffb,
  0xffff_ffff,
];
const indexArb = fc.nat({ max: 1 << 20 });
const leafMutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ at: indexArb, bit: fc.nat({ max: 7 }) }).map((r): Mutation => ({ op: 'flip', ...r })),
  indexArb.map((at): Mutation => ({ op: 'truncate', at })),
  fc
    .record({ at: indexArb, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) })
    .map((r): Mutation => ({ op: 'insert', ...r })),
  fc
    .record({ at: indexArb, count: fc.integer({ min: 1, max: 16 }) })
    .map((r): Mutation => ({ op: 'delete', ...r })),
  fc
    .record({
      field: fc.nat({ max: 15 }),
      value: fc.oneof(
        fc.constantFrom(...INTERESTING_LENGTHS),
        fc.nat({ max: 300 }),
        fc.nat({ max: 0xffff_ffff }),
      ),
    })
    .map((r): Mutation => ({ op: 'prefix', ...r })),
  fc.uint8Array({ minLength: 1, maxLength: 16 }).map((bytes): Mutation => ({ op: 'append', bytes })),
  fc.constant<Mutation>({ op: 'double' }),
  fc.record({ a: fc.nat({ max: 15 }), b: fc.nat({ max: 15 }) }).map((r): Mutation => ({ op: 'swap', ...r })),
  fc.nat({ max: 15 }).map((field): Mutation => ({ op: 'drop', field })),
  fc
    .record({ field: fc.nat({ max: 15 }), bytes: fc.uint8Array({ maxLength: 80 }) })
    .map((r): Mutation => ({ op: 'replace', ...r })),
);
/** Byte-level mutations only (for opaque data such as seals, where field structure means nothing). */
const byteMutationsArb = fc.array(
  leafMutationArb.filter((m) => ['flip', 'truncate', 'insert', 'delete', 'append', 'double'].includes(m.op)),
  { minLength: 1, maxLength: 3 },
);
const inside = (inner: fc.Arbitrary<Mutation>): fc.Arbitrary<Mutation> =>
  fc
    .record({ field: fc.nat({ max: 15 }), inner: fc.array(inner, { minLength: 1, maxLength: 3 }) })
    .map((r): Mutation => ({ op: 'inside', ...r }));
/** Mutations of a record, of a field of it, or of a field of a field (three levels: envelope, block, payload). */
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: leafMutationArb },
  { weight: 2, arbitrary: inside(leafMutationArb) },
  { weight: 1, arbitrary: inside(inside(leafMutationArb)) },
);
const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 4 });

// ---------------------------------------------------------------------------------------------
// Value generators

const labelArb = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/);
const nameArb: fc.Arbitrary<Name> = fc
  .array(labelArb, { minLength: 1, maxLength: 4 })
  .map((labels) => parseName(labels.join('.')));
const fixedBytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const clefArb: fc.Arbitrary<Clef> = fixedBytes(64).map(decodeClef);
const keyArb: fc.Arbitrary<Key> = fixedBytes(64).map(decodeKey);
const tripleArb: fc.Arbitrary<AuthorityTriple> = fc.record({ name: nameArb, clef: clefArb, key: keyArb });
/** Text whose UTF-8 form fits `maxBytes` and survives decode(encode(s)) (no lone surrogates). */
const textArb = (maxBytes: number) =>
  fc
    .oneof(
      fc.string({ maxLength: maxBytes }),
      fc.string({ unit: 'grapheme', maxLength: Math.floor(maxBytes / 8) }),
    )
    .filter((s) => utf8(s).length <= maxBytes);

const BODY_ARBS: { readonly [T in BodyType]: fc.Arbitrary<Body> } = {
  'clef-query': nameArb.map((subject): Body => ({ type: 'clef-query', subject })),
  'clef-answer': fc
    .record({ subject: nameArb, clef: clefArb })
    .map((r): Body => ({ type: 'clef-answer', ...r })),
  'new-query': nameArb.map((subject): Body => ({ type: 'new-query', subject })),
  triple: tripleArb.map((triple): Body => ({ type: 'triple', triple })),
  program: fc.uint8Array({ maxLength: 200 }).map((program): Body => ({ type: 'program', program })),
  handover: fc
    .record({ triple: tripleArb, keyServer: nameArb, location: textArb(LIMITS.LOCATION_MAX_BYTES) })
    .map((r): Body => ({ type: 'handover', ...r })),
  'channel-open': fc
    .record({ peer: nameArb, data: fc.uint8Array({ maxLength: 100 }) })
    .map((r): Body => ({ type: 'channel-open', ...r })),
  'channel-from': fc
    .record({ peer: nameArb, clef: clefArb, data: fc.uint8Array({ maxLength: 100 }) })
    .map((r): Body => ({ type: 'channel-from', ...r })),
  'channel-reply': fc
    .record({ peer: nameArb, data: fc.uint8Array({ maxLength: 100 }) })
    .map((r): Body => ({ type: 'channel-reply', ...r })),
  error: fc
    .record({
      code: textArb(LIMITS.ERROR_CODE_MAX_BYTES),
      detail: textArb(LIMITS.ERROR_DETAIL_MAX_BYTES),
      subject: fc.oneof(fc.constant<''>(''), nameArb),
    })
    .map((r): Body => ({ type: 'error', ...r })),
};
const ALL_TYPES = Object.keys(TAGS) as BodyType[];
const bodyOfArb = (types: readonly BodyType[]): fc.Arbitrary<Body> =>
  fc.oneof(...types.map((t) => BODY_ARBS[t]));

function headerArb(rules: Rules): fc.Arbitrary<Header> {
  return fc
    .record({
      sender: nameArb,
      receiver: nameArb,
      nonce: fixedBytes(16),
      issuedAt: fc.maxSafeNat(),
      expiresAt: fc.maxSafeNat(),
      inReplyTo: fc.oneof(fc.constant(EMPTY), fixedBytes(16)),
    })
    .map(
      (h): Header => ({
        ...(rules.namesInSignature ? { sender: h.sender, receiver: h.receiver } : {}),
        ...(rules.freshness ? { nonce: h.nonce, issuedAt: h.issuedAt, expiresAt: h.expiresAt } : {}),
        ...(rules.answerBinding ? { inReplyTo: h.inReplyTo } : {}),
      }),
    );
}

/** A payload of one of `types` with its regular tag, or (a third of the time) any short tag. */
function payloadArb(rules: Rules, types: readonly BodyType[] = ALL_TYPES): fc.Arbitrary<Payload> {
  return fc
    .record({
      body: bodyOfArb(types),
      header: headerArb(rules),
      tag: fc.option(fc.oneof(fc.constantFrom(...Object.values(TAGS)), textArb(LIMITS.TAG_MAX_BYTES)), {
        freq: 3,
      }),
    })
    .map(({ body, header, tag }): Payload => ({ tag: tag ?? TAGS[body.type], header, body }));
}

const frameArb: fc.Arbitrary<Frame> = fc.record({
  kind: fc.constantFrom(...FRAME_KINDS),
  to: fc.oneof(fc.constant<''>(''), nameArb),
  from: fc.oneof(fc.constant<''>(''), nameArb),
  corr: textArb(LIMITS.CORRELATION_MAX_BYTES),
  body: fc.uint8Array({ maxLength: 200 }),
});

const PROFILES: readonly Profile[] = [
  PATENT,
  HARDENED,
  createProfile({ base: 'patent', rules: { freshness: true } }),
  createProfile({ base: 'hardened', rules: { typeTags: false, namesInSignature: false } }),
];
const EXPECTS: readonly (readonly [BodyType, ...BodyType[]])[] = [
  ['clef-query'],
  ['clef-answer', 'error'],
  ['new-query'],
  ['triple', 'error'],
  ['program', 'handover'],
  ['channel-open'],
  ['channel-from', 'error'],
  ['channel-reply', 'error'],
  ['error'],
  ['clef-query', 'new-query', 'channel-open'],
];
const profileIndexArb = fc.nat({ max: PROFILES.length - 1 });
const expectIndexArb = fc.nat({ max: EXPECTS.length - 1 });

// ---------------------------------------------------------------------------------------------
// Reference worlds: every party exists, the wire holds one whole exchange

interface Fixture {
  readonly world: World;
  readonly parties: readonly Party[];
  /** Every frame recorded on the wire, plus a negative answer of the profile's kind. */
  readonly frames: readonly { readonly from: Name; readonly to: Name; readonly bytes: Uint8Array }[];
  /** Envelopes, signed blocks and payloads opened from the recorded frames. */
  readonly envelopes: readonly Uint8Array[];
  readonly blocks: readonly Uint8Array[];
  readonly payloads: readonly Uint8Array[];
}

const mallory = generateTriple(nodeBackend, seededRandom('fuzz/mallory'), parseName('mallory.clefnet.test'));

function fixture(profile: 'patent' | 'hardened', seed = `fuzz/${profile}`): Fixture {
  const world = createWorld({ profile, backend: nodeBackend, seed });
  world.issueVeKey();
  world.deploy(utf8('a program'), true);
  world.channel(utf8('a request'));
  if (world.ve === undefined || world.secApp === undefined)
    throw new Error('the reference run did not finish');
  const parties: Party[] = [world.ks1, world.ks2, world.ar, world.machine, world.ve, world.secApp, world.asd];
  const frames = world.net.wire.map((f) => ({ from: f.from, to: f.to, bytes: f.bytes }));
  // A negative answer (ERROR under patent, SIGNED under hardened): mallory is unknown at KServ1.
  const rules = world.profile.rules;
  const now = world.clock();
  const random = seededRandom('fuzz/craft');
  const header: Header = {
    ...(rules.namesInSignature ? { sender: mallory.name, receiver: world.names.ks1 } : {}),
    ...(rules.freshness ? { nonce: random(16), issuedAt: now, expiresAt: now + 30_000 } : {}),
    ...(rules.answerBinding ? { inReplyTo: EMPTY } : {}),
  };
  const signed = sign(
    nodeBackend,
    mallory.key,
    encodePayload(rules, { tag: 'CLEF?', header, body: { type: 'clef-query', subject: world.names.ve } }),
  );
  const request = encodeFrame({
    kind: 'SEALED',
    to: world.names.ks1,
    from: mallory.name,
    corr: 'c',
    body: sealEnvelope(nodeBackend, { sender: mallory.name, signed }, world.triples.ks1.clef, random),
  });
  const refused = world.ks1.receive(request);
  if (refused.error?.code !== 'UNKNOWN_SENDER') throw new Error('fixture: mallory was not refused');
  frames.push({ from: mallory.name, to: world.names.ks1, bytes: request });
  for (const s of refused.send) frames.push({ from: world.names.ks1, to: s.to, bytes: s.bytes });
  // Open what the known Keys open.
  const keys = [...Object.values(world.triples), world.veTriple!].map((t) => t.key);
  const envelopes: Uint8Array[] = [];
  for (const f of frames) {
    const frame = decodeFrame(f.bytes);
    if (frame.kind === 'SIGNED') envelopes.push(frame.body);
    if (frame.kind !== 'SEALED') continue;
    for (const key of keys) {
      try {
        envelopes.push(encodeEnvelope(openEnvelope(nodeBackend, key, frame.body)));
        break;
      } catch {
        // not this Key
      }
    }
  }
  const blocks = envelopes.map((e) => encodeSignedBlock(decodeEnvelope(e).signed));
  const payloads = envelopes.map((e) => decodeEnvelope(e).signed.payload);
  return { world, parties, frames, envelopes, blocks, payloads };
}

const FIX = { patent: fixture('patent'), hardened: fixture('hardened') };
const REAL_FRAMES = [...FIX.patent.frames, ...FIX.hardened.frames].map((f) => f.bytes);
const REAL_ENVELOPES = [...FIX.patent.envelopes, ...FIX.hardened.envelopes];
const REAL_BLOCKS = [...FIX.patent.blocks, ...FIX.hardened.blocks];

describe('the harness', () => {
  it('fails a property on anything but a ProtocolError, an unregistered code or an out-of-place code', () => {
    const boom = () => {
      throw new RangeError('boom');
    };
    expect(() => attempt('x', EMPTY, ALLOWED.frame, boom)).toThrow(/something other than a ProtocolError/);
    expect(() =>
      attempt('x', EMPTY, ALLOWED.frame, () => {
        throw new ProtocolError('NOT_A_CODE' as ErrorCode);
      }),
    ).toThrow(/unregistered code NOT_A_CODE/);
    expect(() =>
      attempt('x', EMPTY, ALLOWED.frame, () => {
        throw new ProtocolError('CRYPTO_OPEN');
      }),
    ).toThrow(/CRYPTO_OPEN \(not a code allowed here\)/);
    const throwing = { name: 'x.test', profile: PATENT, receive: boom, pendingCount: 0, parkedMessages: 0 };
    expect(() => feed('self-test', throwing as unknown as Party, EMPTY, DEFAULT_BOUNDS)).toThrow(
      /x\.test\.receive threw on hex : RangeError/,
    );
    const leaky = {
      ...throwing,
      receive: () => ({ send: [], events: [], deliver: [] }),
      parkedMessages: 257,
    };
    expect(() => feed('self-test', leaky as unknown as Party, EMPTY, DEFAULT_BOUNDS)).toThrow(
      /257 parked, bound 256/,
    );
  });
});

describe('the fixture', () => {
  it('holds a whole exchange in each profile: every party was sent real frames, and they opened', () => {
    for (const p of ['patent', 'hardened'] as const) {
      const f = FIX[p];
      expect(f.world.net.errors, p).toEqual([]);
      for (const party of f.parties) {
        expect(
          f.frames.some((x) => x.to === party.name),
          `${p}: a recorded frame addressed to ${party.name}`,
        ).toBe(true);
      }
      // Every SEALED frame of the exchange opened with one of the world's Keys (the SecApp's excepted).
      const sealedToKnown = f.frames.filter(
        (x) => x.to !== f.world.names.secApp && decodeFrame(x.bytes).kind === 'SEALED',
      );
      expect(f.envelopes.length, p).toBeGreaterThanOrEqual(sealedToKnown.length);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Decoders

/** Random bytes, or a mutation of a seed value's encoding. */
const inputArb = (seeds: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    { weight: 1, arbitrary: seeds },
    { weight: 4, arbitrary: fc.tuple(seeds, mutationsArb).map(([b, ms]) => mutateAll(b, ms)) },
    {
      weight: 1,
      arbitrary: fc.tuple(seeds, seeds, mutationsArb).map(([a, b, ms]) => mutateAll(concat(a, b), ms)),
    },
  );

describe('decoders on random and mutated input', () => {
  it('decodeFrame: a Frame or a frame error; whatever decodes re-encodes to the same bytes', TIMEOUT, () => {
    const seeds = fc.oneof(frameArb.map(encodeFrame), fc.constantFrom(...REAL_FRAMES));
    let decoded = 0;
    fc.assert(
      fc.property(inputArb(seeds), (b) => {
        const r = attempt('decodeFrame', b, ALLOWED.frame, () => decodeFrame(b));
        if (r.ok) {
          decoded++;
          sameBytes('decodeFrame', encodeFrame(r.value), b);
        }
      }),
      { seed: SEED, numRuns: 1500 },
    );
    expect(decoded).toBeGreaterThan(150); // the mutations reach past the first field
  });

  it('decodeEnvelope and decodeSignedBlock: a value or an encoding/Name error; canonical', TIMEOUT, () => {
    const envelopeArb = fc
      .record({ sender: nameArb, payload: fc.uint8Array({ maxLength: 200 }), signature: fixedBytes(64) })
      .map(({ sender, payload, signature }) => encodeEnvelope({ sender, signed: { payload, signature } }));
    const envSeeds = fc.oneof(envelopeArb, fc.constantFrom(...REAL_ENVELOPES));
    const blockSeeds = fc.oneof(
      fc
        .record({ payload: fc.uint8Array({ maxLength: 200 }), signature: fixedBytes(64) })
        .map(encodeSignedBlock),
      fc.constantFrom(...REAL_BLOCKS),
    );
    let decoded = 0;
    fc.assert(
      fc.property(inputArb(envSeeds), inputArb(blockSeeds), (e, s) => {
        const env = attempt('decodeEnvelope', e, ALLOWED.envelope, () => decodeEnvelope(e));
        if (env.ok) {
          decoded++;
          sameBytes('decodeEnvelope', encodeEnvelope(env.value), e);
        }
        const block = attempt('decodeSignedBlock', s, ALLOWED.envelope, () => decodeSignedBlock(s));
        if (block.ok) sameBytes('decodeSignedBlock', encodeSignedBlock(block.value), s);
      }),
      { seed: SEED, numRuns: 1200 },
    );
    expect(decoded).toBeGreaterThan(60);
  });

  it(
    'decodePayload (every profile x expected list): a value or an encoding/Name/type error; canonical',
    TIMEOUT,
    () => {
      let decoded = 0;
      const realPatent = fc.constantFrom(...FIX.patent.payloads);
      const realHardened = fc.constantFrom(...FIX.hardened.payloads);
      fc.assert(
        fc.property(
          fc.tuple(profileIndexArb, expectIndexArb).chain(([pi, ei]) => {
            const rules = PROFILES[pi]!.rules;
            const encode = (p: Payload) => encodePayload(rules, p);
            const seeds = fc.oneof(
              // Many seeds are of a type the receiver expects, so mutations reach into the body.
              { weight: 2, arbitrary: payloadArb(rules, EXPECTS[ei]!).map(encode) },
              { weight: 2, arbitrary: payloadArb(rules).map(encode) },
              { weight: 1, arbitrary: pi === 0 ? realPatent : realHardened },
            );
            return fc.tuple(fc.constant(pi), fc.constant(ei), inputArb(seeds));
          }),
          ([pi, ei, b]) => {
            const rules = PROFILES[pi]!.rules;
            const expected = EXPECTS[ei]!;
            const what = `decodePayload(${PROFILES[pi]!.name} #${pi}, [${expected.join(', ')}])`;
            const r = attempt(what, b, ALLOWED.payload, () => decodePayload(rules, b, expected));
            if (r.ok) {
              decoded++;
              expect(expected as readonly string[], what).toContain(r.value.body.type);
              sameBytes(what, encodePayload(rules, r.value), b);
            }
            attempt(`decodeHeader(${PROFILES[pi]!.name})`, b, ALLOWED.payload, () => decodeHeader(rules, b));
          },
        ),
        { seed: SEED, numRuns: 1200 },
      );
      expect(decoded).toBeGreaterThan(50);
    },
  );

  it('encodePayload then decodePayload gives the payload back (every profile, regular tags)', TIMEOUT, () => {
    fc.assert(
      fc.property(
        profileIndexArb.chain((pi) => fc.tuple(fc.constant(pi), payloadArb(PROFILES[pi]!.rules))),
        ([pi, p]) => {
          const rules = PROFILES[pi]!.rules;
          const regular: Payload = { ...p, tag: TAGS[p.body.type] };
          const back = decodePayload(rules, encodePayload(rules, regular), [p.body.type]);
          expect(back).toEqual(regular);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('decodeClef and decodeKey: a value or KEY_INVALID; canonical', TIMEOUT, () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 130 }), fixedBytes(64), fixedBytes(63), fixedBytes(65)),
        (b) => {
          const r = attempt('decodeClef', b, ALLOWED.clef, () => decodeClef(b));
          expect(r.ok, `decodeClef of ${b.length} bytes`).toBe(b.length === 64);
          if (r.ok) sameBytes('decodeClef', encodeClef(r.value), b);
          const k = attempt('decodeKey', b, ALLOWED.clef, () => decodeKey(b));
          expect(k.ok, `decodeKey of ${b.length} bytes`).toBe(b.length === 64);
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('parseName: accepts exactly the RFC 1123 lower-case Names of at most 253 characters', TIMEOUT, () => {
    // An independent statement of the grammar (names.ts), checked against parseName.
    const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
    const ORACLE = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
    const nameChars = fc.constantFrom(...'abcz09-.A_ *é\u0000\uFEFF'.split(''));
    const mutatedName = fc
      .tuple(
        nameArb,
        fc.array(fc.tuple(fc.nat(), nameChars, fc.constantFrom('insert', 'replace', 'delete')), {
          maxLength: 3,
        }),
      )
      .map(([name, edits]) => {
        let s: string = name;
        for (const [at, ch, op] of edits) {
          const i = at % (s.length + 1);
          if (op === 'insert') s = s.slice(0, i) + ch + s.slice(i);
          else if (op === 'replace') s = s.slice(0, i) + ch + s.slice(i + 1);
          else s = s.slice(0, i) + s.slice(i + 1);
        }
        return s;
      });
    const longName = fc
      .tuple(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 5 }))
      .map(([len, n]) => Array.from({ length: n }, () => 'a'.repeat(len)).join('.'));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.string({ unit: 'binary', maxLength: 20 }),
          mutatedName,
          longName,
        ),
        (s) => {
          const r = attempt('parseName', s, ALLOWED.name, () => parseName(s));
          const legal = s.length <= LIMITS.NAME_MAX_BYTES && ORACLE.test(s);
          expect(r.ok, `parseName(${JSON.stringify(s)})`).toBe(legal);
          expect(isName(s), `isName(${JSON.stringify(s)})`).toBe(legal);
          if (r.ok) expect(r.value).toBe(s);
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it(
    'open and openEnvelope: mutated seals give CRYPTO_OPEN (or, when untouched, the plaintext)',
    TIMEOUT,
    () => {
      const f = FIX.patent;
      const key = f.world.triples.ks1.key;
      const sealsToKs1 = f.frames
        .filter((x) => x.to === f.world.names.ks1 && decodeFrame(x.bytes).kind === 'SEALED')
        .map((x) => decodeFrame(x.bytes).body);
      const clean = sealsToKs1.map((s) => toHex(s));
      fc.assert(
        fc.property(fc.constantFrom(...sealsToKs1), byteMutationsArb, (sealed, ms) => {
          const b = mutateAll(sealed, ms);
          const r = attempt('open', b, ALLOWED.open, () => open(nodeBackend, key, b));
          if (r.ok) expect(clean, 'only an untouched seal opens').toContain(toHex(b));
          attempt('openEnvelope', b, ALLOWED.openEnvelope, () => openEnvelope(nodeBackend, key, b));
        }),
        { seed: SEED, numRuns: 300 },
      );
      // Well-formed seals of arbitrary plaintext: openEnvelope gives an envelope or a decoder code.
      const clef = f.world.triples.ks1.clef;
      fc.assert(
        fc.property(inputArb(fc.constantFrom(...REAL_ENVELOPES)), fixedBytes(32), (plain, secret) => {
          const sealed = seal(nodeBackend, clef, plain, { secret });
          attempt('openEnvelope', plain, ALLOWED.openEnvelope, () => openEnvelope(nodeBackend, key, sealed));
        }),
        { seed: SEED, numRuns: 200 },
      );
    },
  );

  it(
    'accessPairFromJson and tripleFromJson: a value or KEY_INVALID / NAME_INVALID / ENCODING_BAD_VALUE',
    TIMEOUT,
    () => {
      const base = tripleToJson(
        generateTriple(nodeBackend, seededRandom('fuzz/json'), parseName('json.clefnet.test')),
      );
      const other = tripleToJson(
        generateTriple(nodeBackend, seededRandom('fuzz/json2'), parseName('json.clefnet.test')),
      );
      const hexEdit = fc
        .tuple(
          fc.constantFrom(base.clef, base.key, other.clef, other.key),
          fc.nat(),
          fc.constantFrom('', '0', 'f', 'g', 'F0', ' '),
        )
        .map(([h, at, ins]) => {
          const i = at % (h.length + 1);
          return h.slice(0, i) + ins + h.slice(i + (ins === '' ? 1 : 0));
        });
      const field = fc.oneof(
        fc.string({ maxLength: 10 }),
        hexEdit,
        fc.constantFrom(base.clef, base.key, other.key),
        fc.constantFrom(base.name, 'Bad..Name'),
        fc.constant(undefined),
        fc.integer(),
      );
      fc.assert(
        fc.property(
          fc.record({ name: field, clef: field, key: field }, { requiredKeys: [] }),
          fc.option(fc.anything()),
          (json, junk) => {
            const input: unknown = junk ?? json;
            attempt('accessPairFromJson', input, ALLOWED.json, () =>
              accessPairFromJson(input as AccessPairJson),
            );
            const t = attempt('tripleFromJson', input, ALLOWED.json, () =>
              tripleFromJson(nodeBackend, input as TripleJson),
            );
            if (t.ok) {
              expect(
                clefEquals(clefOf(nodeBackend, t.value.key), t.value.clef),
                `an accepted triple's Clef belongs to its Key: ${JSON.stringify(input)}`,
              ).toBe(true);
            }
          },
        ),
        { seed: SEED, numRuns: 1000 },
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Parties

const DEFAULT_MAX_PENDING = 1024;
const DEFAULT_MAX_PARKED = 256;

interface Bounds {
  readonly maxPending: number;
  readonly maxParked: number;
}

/** A failed check inside a hot loop (cheaper than expect; the message names the case). */
function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

/** Every frame a party hands out must be one its peers can decode. */
function checkSent(where: string, profile: Profile, to: Name, bytes: Uint8Array): void {
  const none = new Set<ErrorCode>();
  const frame = attempt(`${where}: sent frame`, bytes, none, () => decodeFrame(bytes)) as { value: Frame };
  check(frame.value.to === to, `${where}: sent frame addressed to ${frame.value.to}, routed to ${to}`);
  const body = frame.value.body;
  if (frame.value.kind === 'ERROR') {
    attempt(`${where}: sent ERROR payload`, body, none, () => decodePayload(PATENT.rules, body, ['error']));
  } else if (frame.value.kind === 'SIGNED') {
    const env = attempt(`${where}: sent SIGNED envelope`, body, none, () => decodeEnvelope(body)) as {
      value: ReturnType<typeof decodeEnvelope>;
    };
    const payloadBytes = env.value.signed.payload;
    attempt(`${where}: sent SIGNED payload`, payloadBytes, none, () =>
      decodePayload(profile.rules, payloadBytes, ['error']),
    );
  }
}

/** Feeds one input; receive must return an Outcome whose error is a registered ProtocolError. */
function feed(where: string, party: Party, bytes: Uint8Array, bounds: Bounds): Outcome {
  let out: Outcome;
  try {
    out = party.receive(bytes);
  } catch (e) {
    throw new Error(
      `${where}: ${party.name}.receive threw on hex ${toHex(bytes).slice(0, 600)}: ${describeThrown(e)}`,
    );
  }
  checkOutcome(where, party, out, bounds);
  return out;
}

function checkOutcome(where: string, party: Party, out: Outcome, bounds: Bounds): void {
  check(
    Array.isArray(out.send) && Array.isArray(out.events) && Array.isArray(out.deliver),
    `${where}: not an Outcome`,
  );
  if (out.error !== undefined) {
    check(out.error instanceof ProtocolError, `${where}: outcome.error is ${describeThrown(out.error)}`);
    check(REGISTERED.has(out.error.code), `${where}: outcome.error code ${out.error.code} is not registered`);
  }
  for (const e of out.events) {
    check(e.code === undefined || REGISTERED.has(e.code), `${where}: event code ${e.code} is not registered`);
  }
  for (const s of out.send) checkSent(where, party.profile, s.to, s.bytes);
  check(
    party.pendingCount <= bounds.maxPending,
    `${where}: ${party.name} has ${party.pendingCount} pending, bound ${bounds.maxPending}`,
  );
  check(
    party.parkedMessages >= 0 && party.parkedMessages <= bounds.maxParked,
    `${where}: ${party.name} has ${party.parkedMessages} parked, bound ${bounds.maxParked}`,
  );
}

const DEFAULT_BOUNDS: Bounds = { maxPending: DEFAULT_MAX_PENDING, maxParked: DEFAULT_MAX_PARKED };

/** Rewrites the routing fields of a frame (never trusted: TB-15) and keeps its body. */
const rerouteArb = fc.record({
  kind: fc.option(fc.constantFrom(...FRAME_KINDS)),
  corr: fc.option(fc.oneof(fc.constant(''), textArb(LIMITS.CORRELATION_MAX_BYTES))),
  swapNames: fc.boolean(),
});
interface Reroute {
  readonly kind: Frame['kind'] | null;
  readonly corr: string | null;
  readonly swapNames: boolean;
}
function reroute(bytes: Uint8Array, r: Reroute): Uint8Array {
  const f = decodeFrame(bytes);
  return encodeFrame({
    kind: r.kind ?? f.kind,
    to: r.swapNames ? f.from : f.to,
    from: r.swapNames ? f.to : f.from,
    corr: r.corr ?? f.corr,
    body: f.body,
  });
}

/** A frame of the right shape around random body bytes (gets past decodeFrame to open/decode). */
const framedNoiseArb = (names: readonly Name[]) =>
  fc
    .record({
      kind: fc.constantFrom(...FRAME_KINDS),
      to: fc.constantFrom(...names),
      body: fc.uint8Array({ maxLength: 300 }),
    })
    .map((r) => encodeFrame({ kind: r.kind, to: r.to, from: '', corr: '', body: r.body }));

describe.each(['patent', 'hardened'] as const)(
  'every party (%s) on random and mutated frames',
  (profileName) => {
    const f = FIX[profileName];
    const names = f.parties.map((p) => p.name);
    const partyArb = fc.nat({ max: f.parties.length - 1 });
    const frameIndexArb = fc.nat({ max: f.frames.length - 1 });

    it(
      'random bytes and framed noise: receive returns an Outcome, errors are registered ProtocolErrors',
      TIMEOUT,
      () => {
        fc.assert(
          fc.property(
            partyArb,
            fc.oneof(fc.uint8Array({ maxLength: 400 }), framedNoiseArb(names)),
            (pi, b) => {
              feed(`random -> ${names[pi]}`, f.parties[pi]!, b, DEFAULT_BOUNDS);
            },
          ),
          { seed: SEED, numRuns: 400 },
        );
      },
    );

    it('mutated recorded frames, to their addressee or any party', TIMEOUT, () => {
      fc.assert(
        fc.property(frameIndexArb, mutationsArb, fc.option(partyArb, { freq: 2 }), (fi, ms, pi) => {
          const rec = f.frames[fi]!;
          const party =
            pi === null ? (f.parties.find((p) => p.name === rec.to) ?? f.parties[0]!) : f.parties[pi]!;
          feed(`frame #${fi} mutated -> ${party.name}`, party, mutateAll(rec.bytes, ms), DEFAULT_BOUNDS);
        }),
        { seed: SEED, numRuns: 500 },
      );
    });

    it('recorded frames with rewritten routing fields (kind, corr, to/from)', TIMEOUT, () => {
      fc.assert(
        fc.property(frameIndexArb, rerouteArb, fc.option(partyArb, { freq: 2 }), (fi, r, pi) => {
          const rec = f.frames[fi]!;
          const party =
            pi === null ? (f.parties.find((p) => p.name === rec.to) ?? f.parties[0]!) : f.parties[pi]!;
          feed(
            `frame #${fi} rerouted ${JSON.stringify(r)} -> ${party.name}`,
            party,
            reroute(rec.bytes, r),
            DEFAULT_BOUNDS,
          );
        }),
        { seed: SEED, numRuns: 300 },
      );
    });

    it(
      'recorded frames replayed in random order and numbers to random parties, answers routed on',
      TIMEOUT,
      () => {
        // A fresh world: its state evolves across runs (replays accumulate), deterministically from the seed.
        const g = fixture(profileName, `fuzz/replay/${profileName}`);
        const seen = { errors: 0 };
        g.world.net.tap = (inFlight) => {
          checkSent(
            `routed ${inFlight.from} -> ${inFlight.to}`,
            g.world.profile,
            inFlight.to,
            inFlight.bytes,
          );
          return 'pass';
        };
        const stepArb = fc.record({
          frame: fc.nat({ max: g.frames.length - 1 }),
          party: fc.option(fc.nat({ max: g.parties.length - 1 }), { freq: 2 }),
          advanceMs: fc.constantFrom(0, 0, 0, 0, 1_000, 31_000, 400_000),
          expire: fc.boolean(),
        });
        fc.assert(
          fc.property(fc.array(stepArb, { minLength: 1, maxLength: 12 }), (steps) => {
            for (const s of steps) {
              const rec = g.frames[s.frame]!;
              const party =
                s.party === null
                  ? (g.parties.find((p) => p.name === rec.to) ?? g.parties[0]!)
                  : g.parties[s.party]!;
              g.world.advance(s.advanceMs);
              const where = `replay #${s.frame} -> ${party.name}`;
              const out = feed(where, party, rec.bytes, DEFAULT_BOUNDS);
              g.world.net.post(party.name, out);
              if (s.expire) g.world.net.post(party.name, party.expire());
              try {
                g.world.net.run();
              } catch (e) {
                throw new Error(`${where}: routing the answers threw ${describeThrown(e)}`);
              }
              for (const e of g.world.net.errors.slice(seen.errors)) {
                expect(e.error, `${where}: error at ${e.party}`).toBeInstanceOf(ProtocolError);
                expect(REGISTERED.has(e.error.code), `${where}: ${e.error.code} registered`).toBe(true);
              }
              seen.errors = g.world.net.errors.length;
              for (const p of g.parties)
                checkOutcome(
                  `${where}: state of ${p.name}`,
                  p,
                  { send: [], events: [], deliver: [] },
                  DEFAULT_BOUNDS,
                );
            }
          }),
          { seed: SEED, numRuns: 50 },
        );
      },
    );
  },
);

// ---------------------------------------------------------------------------------------------
// Bounded memory

interface FeedReport {
  readonly codes: ReadonlyMap<string, number>;
  /** Highest pendingCount / parkedMessages seen after any input. */
  readonly maxPending: number;
  readonly maxParked: number;
}

/**
 * `count` inputs for `party`, drawn with a fixed seed: replays of the recorded frames addressed to
 * it (and of `extra`), mutated recorded frames, and random bytes, in the given proportions.
 */
function feedMany(
  where: string,
  f: Fixture,
  party: Party,
  count: number,
  bounds: Bounds,
  seed: number,
  weights: { readonly replay: number; readonly mutated: number; readonly random: number },
  extra: readonly Uint8Array[] = [],
): FeedReport {
  const own = [...f.frames.filter((x) => x.to === party.name).map((x) => x.bytes), ...extra];
  const inputs = fc.sample(
    fc.oneof(
      { weight: weights.replay, arbitrary: fc.constantFrom(...own) },
      {
        weight: weights.mutated,
        arbitrary: fc
          .tuple(fc.constantFrom(...f.frames.map((x) => x.bytes)), mutationsArb)
          .map(([b, ms]) => mutateAll(b, ms)),
      },
      { weight: weights.random, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    ),
    { seed, numRuns: count },
  );
  const codes = new Map<string, number>();
  let maxPending = 0;
  let maxParked = 0;
  inputs.forEach((b, i) => {
    const out = feed(`${where} input ${i}`, party, b, bounds);
    const code = out.error?.code ?? 'ok';
    codes.set(code, (codes.get(code) ?? 0) + 1);
    maxPending = Math.max(maxPending, party.pendingCount);
    maxParked = Math.max(maxParked, party.parkedMessages);
  });
  return { codes, maxPending, maxParked };
}

const replays = (
  where: string,
  party: Party,
  bytes: Uint8Array,
  n: number,
  bounds: Bounds,
): Map<string, number> => {
  const codes = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const code = feed(`${where} ${i}`, party, bytes, bounds).error?.code ?? 'ok';
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  return codes;
};

describe.each(['patent', 'hardened'] as const)('bounded memory (%s)', (profileName) => {
  it('KServ2 with default maxima: 5000 inputs never exceed 1024 pending / 256 parked', TIMEOUT, () => {
    const f = fixture(profileName, `fuzz/memory/${profileName}`);
    const w = f.world;
    const ks2 = w.ks2;
    const to = (from: Name) => f.frames.find((x) => x.to === w.names.ks2 && x.from === from)!.bytes;
    const m5 = to(w.names.ar);
    const openReq = to(w.names.secApp);
    // Patent: replayed M5s wait behind one Clef resolution at KServ1 (never answered here): 256 park,
    // the rest are refused. Hardened: refused as replays before any work, so nothing parks.
    const m5Codes = replays('M5 replay', ks2, m5, 300, DEFAULT_BOUNDS);
    if (profileName === 'patent') {
      expect([ks2.parkedMessages, m5Codes.get('LIMIT_EXCEEDED')]).toEqual([
        DEFAULT_MAX_PARKED,
        300 - DEFAULT_MAX_PARKED,
      ]);
    } else {
      expect([ks2.parkedMessages, m5Codes.get('REPLAY')]).toEqual([0, 300]);
    }
    // Replayed OPENs each start a relay under patent (1023 + the resolution = 1024); hardened refuses them as replays.
    const opens = profileName === 'patent' ? 1100 : 100;
    const openCodes = replays('OPEN replay', ks2, openReq, opens, DEFAULT_BOUNDS);
    if (profileName === 'patent') {
      expect([ks2.pendingCount, openCodes.get('LIMIT_EXCEEDED')]).toEqual([
        DEFAULT_MAX_PENDING,
        opens - 1023,
      ]);
    } else {
      // Nothing waits: the replayed M5s were refused before they could start a Clef resolution.
      expect([ks2.pendingCount, openCodes.get('REPLAY')]).toEqual([0, opens]);
    }
    // Then the rest of 5000: noise, with replays of every frame sent to KServ2 and mutated frames (5% each).
    const report = feedMany('KServ2', f, ks2, 5000 - 300 - opens, DEFAULT_BOUNDS, SEED, {
      replay: 1,
      mutated: 1,
      random: 18,
    });
    expect(report.maxPending).toBeLessThanOrEqual(DEFAULT_MAX_PENDING);
    expect(report.maxParked).toBeLessThanOrEqual(DEFAULT_MAX_PARKED);
    // Time passes: every request times out and what waited behind it is dropped.
    w.advance(30_000);
    checkOutcome('expire', ks2, ks2.expire(), DEFAULT_BOUNDS);
    expect([ks2.pendingCount, ks2.parkedMessages]).toEqual([0, 0]);
  });

  it('parties built with small maxima stay at or under them, and expire() frees everything', TIMEOUT, () => {
    const f = fixture(profileName, `fuzz/small/${profileName}`);
    const w = f.world;
    const small: Bounds = { maxPending: 4, maxParked: 8 };
    const ks1Pair = { name: w.triples.ks1.name, clef: w.triples.ks1.clef, scopes: ['clef'] as const };
    const common = { backend: nodeBackend, clock: w.clock, profile: w.profile, ...small };
    const ks2 = createKeyServer({
      ...common,
      triple: w.triples.ks2,
      random: seededRandom('fuzz/small/ks2'),
      store: w.ks2.store,
      serves: ['mint', 'relay'],
      keyServers: [ks1Pair],
    });
    const ve = createAncVe({
      ...common,
      triple: w.veTriple!,
      random: seededRandom('fuzz/small/ve'),
      keyServers: [ks1Pair],
      ...(profileName === 'hardened' ? { senders: [w.names.ar] } : {}),
    });
    const to = (party: Name, from: Name) => f.frames.find((x) => x.to === party && x.from === from)!.bytes;
    // KServ2: replayed M5s park behind one unanswered resolution; replayed OPENs (patent) start relays.
    const m5Codes = replays('small KServ2 M5 replay', ks2, to(w.names.ks2, w.names.ar), 12, small);
    expect([ks2.parkedMessages, m5Codes.get('LIMIT_EXCEEDED')]).toEqual([8, 4]);
    const openCodes = replays('small KServ2 OPEN replay', ks2, to(w.names.ks2, w.names.secApp), 8, small);
    if (profileName === 'patent') expect([ks2.pendingCount, openCodes.get('LIMIT_EXCEEDED')]).toEqual([4, 5]);
    // Hardened: this KServ2 has its own replay cache, so the first OPEN is new to it; the rest are replays.
    else expect([ks2.pendingCount, openCodes.get('REPLAY')]).toEqual([2, 7]);
    // VE: replayed programs (M7) park behind one unanswered M9a.
    const m7Codes = replays('small VE M7 replay', ve, to(w.veTriple!.name, w.names.ar), 12, small);
    expect([ve.parkedMessages, m7Codes.get('LIMIT_EXCEEDED')]).toEqual([8, 4]);
    // Then anything: replays of what each receives (answers included), mutated frames, noise.
    const weights = { replay: 6, mutated: 2, random: 2 };
    feedMany('small KServ2', f, ks2, 300, small, SEED, weights);
    feedMany('small VE', f, ve, 300, small, SEED + 1, weights);
    w.advance(30_000);
    for (const p of [ks2, ve]) {
      checkOutcome(`expire ${p.name}`, p, p.expire(), small);
      expect([p.pendingCount, p.parkedMessages], p.name).toEqual([0, 0]);
    }
  });
});

describe('ReplayCache', () => {
  const nonce = (i: number): Uint8Array => {
    const b = new Uint8Array(16);
    new DataView(b.buffer).setUint32(12, i, false);
    return b;
  };

  it('holds at most its capacity, refuses with REPLAY_CACHE_FULL, and sweep frees expired entries', () => {
    const cache = new ReplayCache(8);
    const t = 1_000_000;
    for (let i = 0; i < 8; i++)
      cache.admit(HARDENED, 'a.test', { nonce: nonce(i), issuedAt: t, expiresAt: t + 1000 }, t);
    expect(cache.size).toBe(8);
    const codeOf = (f: () => void): string => {
      try {
        f();
        return 'admitted';
      } catch (e) {
        return e instanceof ProtocolError ? e.code : `not a ProtocolError: ${describeThrown(e)}`;
      }
    };
    expect(
      codeOf(() => cache.admit(HARDENED, 'a.test', { nonce: nonce(8), issuedAt: t, expiresAt: t + 1000 }, t)),
    ).toBe('REPLAY_CACHE_FULL');
    expect(
      codeOf(() => cache.admit(HARDENED, 'a.test', { nonce: nonce(3), issuedAt: t, expiresAt: t + 1000 }, t)),
    ).toBe('REPLAY');
    expect(cache.size).toBe(8);
    cache.sweep(t + 999);
    expect(cache.size).toBe(8);
    cache.sweep(t + 1000);
    expect(cache.size).toBe(0);
    // A full cache of expired entries makes room by itself.
    for (let i = 0; i < 8; i++)
      cache.admit(HARDENED, 'b.test', { nonce: nonce(i), issuedAt: t, expiresAt: t + 10 }, t);
    expect(
      codeOf(() =>
        cache.admit(HARDENED, 'b.test', { nonce: nonce(99), issuedAt: t, expiresAt: t + 5000 }, t + 10),
      ),
    ).toBe('admitted');
    expect(cache.size).toBe(1);
    // Under patent the cache keeps nothing.
    const patent = new ReplayCache(1);
    for (let i = 0; i < 5; i++)
      patent.admit(PATENT, 'a.test', { nonce: nonce(i), issuedAt: t, expiresAt: t + 1 }, t);
    expect(patent.size).toBe(0);
  });

  it(
    'against a model: never over capacity; REPLAY iff a live duplicate; FULL iff capacity live entries',
    TIMEOUT,
    () => {
      const CAP = 6;
      const opArb = fc.record({
        sender: fc.constantFrom('a.test', 'b.test'),
        nonce: fc.nat({ max: 12 }),
        advanceMs: fc.constantFrom(0, 0, 1, 50, 400),
        validityMs: fc.integer({ min: 1, max: 1_000 }),
        sweep: fc.boolean(),
      });
      fc.assert(
        fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
          const cache = new ReplayCache(CAP);
          const model = new Map<string, number>();
          let now = 0;
          for (const [i, op] of ops.entries()) {
            now += op.advanceMs;
            const key = `${op.sender} ${op.nonce}`;
            const live = [...model.values()].filter((until) => until > now).length;
            const dup = (model.get(key) ?? 0) > now;
            let code = 'admitted';
            try {
              cache.admit(
                HARDENED,
                op.sender,
                { nonce: nonce(op.nonce), issuedAt: now, expiresAt: now + op.validityMs },
                now,
              );
            } catch (e) {
              if (!(e instanceof ProtocolError)) throw e;
              code = e.code;
            }
            const want = dup ? 'REPLAY' : live >= CAP ? 'REPLAY_CACHE_FULL' : 'admitted';
            expect(code, `op ${i} ${JSON.stringify(op)} at ${now}`).toBe(want);
            if (code === 'admitted') model.set(key, now + op.validityMs);
            expect(cache.size, `op ${i}: size`).toBeLessThanOrEqual(CAP);
            if (op.sweep) {
              cache.sweep(now);
              expect(cache.size, `op ${i}: size after sweep`).toBe(
                [...model.values()].filter((u) => u > now).length,
              );
            }
          }
        }),
        { seed: SEED, numRuns: 300 },
      );
    },
  );
});
