/**
 * Golden vectors of the wire (test/vectors/protocol-vectors.json, made by test/vectors/generate.ts):
 * for each crypto backend and each vector, decode(bytes) == value and encode(value) == bytes at every
 * layer (payload, signed block, envelope, seal with the fixed ephemeral, frame). The file is read,
 * never rewritten; the last block regenerates it in memory and asserts the text is identical, so a
 * change to the wire fails here until the vectors are regenerated deliberately.
 */
import { readFileSync } from 'node:fs';
import {
  type AuthorityTriple,
  accessPairFromJson,
  type Body,
  type BodyType,
  type CryptoBackend,
  clefOf,
  createKeyServer,
  createMemoryKeyServerStore,
  createRepository,
  decodeClef,
  decodeEnvelope,
  decodeFrame,
  decodeHeader,
  decodeKey,
  decodePayload,
  decodeSignedBlock,
  encodeClef,
  encodeEnvelope,
  encodeFields,
  encodeFrame,
  encodeKey,
  encodePayload,
  encodeSignedBlock,
  fromHex,
  generateTriple,
  HARDENED,
  type Header,
  isProtocolError,
  nobleBackend,
  nodeBackend,
  openEnvelope,
  PATENT,
  type Payload,
  type Profile,
  parseName,
  type RandomSource,
  sealEnvelope,
  seededRandom,
  sign,
  TAGS,
  toHex,
  tripleFromJson,
  tripleToJson,
  utf8,
  verify,
} from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import {
  type BodyJson,
  buildVectors,
  type ErrorFrameVector,
  type HeaderJson,
  type MessageVector,
  type PayloadJson,
  type ProtocolVectors,
  renderVectors,
  VECTORS_FILE,
} from './vectors/generate.js';

const FILE_TEXT = readFileSync(VECTORS_FILE, 'utf8');
const V = JSON.parse(FILE_TEXT) as ProtocolVectors;
const BACKENDS: readonly CryptoBackend[] = [nobleBackend, nodeBackend];
const PROFILES: Record<string, Profile> = { patent: PATENT, hardened: HARDENED };

// ---- the value side, rebuilt from the JSON by this file alone (not by the generator) ----------

function tripleFrom(backend: CryptoBackend, name: string): AuthorityTriple {
  const t = V.triples.find((x) => x.json.name === name);
  if (t === undefined) throw new Error(`no triple for ${name} in the vectors`);
  return tripleFromJson(backend, t.json);
}

function headerFrom(h: HeaderJson): Header {
  return {
    ...(h.sender === undefined ? {} : { sender: parseName(h.sender) }),
    ...(h.receiver === undefined ? {} : { receiver: parseName(h.receiver) }),
    ...(h.nonce === undefined ? {} : { nonce: fromHex(h.nonce) }),
    ...(h.issuedAt === undefined ? {} : { issuedAt: h.issuedAt }),
    ...(h.expiresAt === undefined ? {} : { expiresAt: h.expiresAt }),
    ...(h.inReplyTo === undefined ? {} : { inReplyTo: fromHex(h.inReplyTo) }),
  };
}

function bodyFrom(backend: CryptoBackend, b: BodyJson): Body {
  switch (b.type) {
    case 'clef-query':
    case 'new-query':
      return { type: b.type, subject: parseName(b.subject) };
    case 'clef-answer':
      return { type: b.type, subject: parseName(b.subject), clef: decodeClef(fromHex(b.clef)) };
    case 'triple':
      return { type: b.type, triple: tripleFromJson(backend, b.triple) };
    case 'program':
      return { type: b.type, program: fromHex(b.program) };
    case 'handover':
      return {
        type: b.type,
        triple: tripleFromJson(backend, b.triple),
        keyServer: parseName(b.keyServer),
        location: b.location,
      };
    case 'channel-open':
    case 'channel-reply':
      return { type: b.type, peer: parseName(b.peer), data: fromHex(b.data) };
    case 'channel-from':
      return {
        type: b.type,
        peer: parseName(b.peer),
        clef: decodeClef(fromHex(b.clef)),
        data: fromHex(b.data),
      };
    case 'error':
      return {
        type: b.type,
        code: b.code,
        detail: b.detail,
        subject: b.subject === '' ? '' : parseName(b.subject),
      };
  }
}

function valueFrom(backend: CryptoBackend, p: PayloadJson): Payload {
  return { tag: p.tag, header: headerFrom(p.header), body: bodyFrom(backend, p.body) };
}

/** Every Uint8Array as hex, recursively, so decoded and expected values compare field by field. */
function plain(x: unknown): unknown {
  if (x instanceof Uint8Array) return toHex(x);
  if (Array.isArray(x)) return x.map(plain);
  if (x !== null && typeof x === 'object') {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  }
  return x;
}

function expectSameFields(actual: unknown, expected: unknown, what: string): void {
  const a = plain(actual) as Record<string, unknown>;
  const e = plain(expected) as Record<string, unknown>;
  expect(Object.keys(a).sort(), `${what}: field names`).toEqual(Object.keys(e).sort());
  for (const k of Object.keys(e)) expect(a[k], `${what}: field ${k}`).toEqual(e[k]);
}

function expectPayload(actual: Payload, expected: Payload, id: string): void {
  expect(actual.tag, `${id}: tag`).toBe(expected.tag);
  expectSameFields(actual.header, expected.header, `${id}: header`);
  expectSameFields(actual.body, expected.body, `${id}: body`);
}

// ---- checks ------------------------------------------------------------------------------------

describe('golden vectors: file', () => {
  it('covers every body type in both profiles, and both error frames', () => {
    for (const profile of ['patent', 'hardened']) {
      const types = V.messages.filter((m) => m.profile === profile).map((m) => m.type);
      expect(types.sort(), `${profile}: body types`).toEqual((Object.keys(TAGS) as BodyType[]).sort());
    }
    expect(V.errorFrames.map((f) => `${f.id} ${f.kind}`)).toEqual([
      'patent/error-frame ERROR',
      'hardened/error-frame SIGNED',
    ]);
    expect(new Set(V.messages.map((m) => m.id)).size, 'vector ids are unique').toBe(V.messages.length);
  });

  it('records the domain strings and wire version the code uses', () => {
    expect(Buffer.from(V.constants.signDomain, 'hex').toString('utf8')).toBe('clefnet/v1 sign');
    expect(Buffer.from(V.constants.sealInfo, 'hex').toString('utf8')).toBe('clefnet/v1 seal');
    expect(V.constants.wireVersion).toBe('CLEFNET/1');
  });
});

describe.each(BACKENDS)('golden vectors with the $name backend', (backend) => {
  it.each(V.triples.map((t) => [t.role, t] as const))('triple %s: seed, Clef/Key layout, JSON', (role, t) => {
    const made = generateTriple(backend, seededRandom(t.seed), parseName(t.json.name));
    expect(tripleToJson(made), `${role}: generateTriple from the seed`).toEqual(t.json);
    const parsed = tripleFromJson(backend, t.json);
    expect(toHex(encodeClef(clefOf(backend, parsed.key))), `${role}: Clef of Key`).toBe(t.json.clef);
    expect(toHex(parsed.clef.sign), `${role}: Clef bytes 0..31 (Ed25519)`).toBe(t.clef.sign);
    expect(toHex(parsed.clef.seal), `${role}: Clef bytes 32..63 (X25519)`).toBe(t.clef.seal);
    expect(toHex(parsed.key.sign), `${role}: Key bytes 0..31 (Ed25519 seed)`).toBe(t.key.sign);
    expect(toHex(parsed.key.open), `${role}: Key bytes 32..63 (X25519 secret)`).toBe(t.key.open);
    expect(toHex(encodeKey(decodeKey(fromHex(t.json.key)))), `${role}: Key round trip`).toBe(t.json.key);
    const pair = accessPairFromJson({ name: t.json.name, clef: t.json.clef });
    expect(toHex(encodeClef(pair.clef)), `${role}: access pair`).toBe(t.json.clef);
  });

  it.each(V.names.map((n) => [JSON.stringify(n.text), n] as const))('Name %s', (label, n) => {
    if (n.valid) {
      expect(toHex(encodeFields([utf8(parseName(n.text))])), `${label}: field`).toBe(n.field);
      return;
    }
    let error: unknown;
    try {
      parseName(n.text);
    } catch (e) {
      error = e;
    }
    expect(isProtocolError(error), `${label}: refused with a ProtocolError`).toBe(true);
    if (!isProtocolError(error)) return;
    expect(error.code, `${label}: code`).toBe(n.code);
    expect(error.meta.reason, `${label}: reason`).toBe(n.reason);
  });

  it.each(V.messages.map((m) => [m.id, m] as const))('message %s', (id, m: MessageVector) => {
    const rules = PROFILES[m.profile]!.rules;
    const sender = tripleFrom(backend, m.sender);
    const receiver = tripleFrom(backend, m.receiver);
    const value = valueFrom(backend, m.value);
    const payloadBytes = fromHex(m.payload);

    // payload: decode(bytes) == value, encode(value) == bytes
    const decoded = decodePayload(rules, payloadBytes, [m.type]);
    expectPayload(decoded, value, `${id} payload decode`);
    expect(toHex(encodePayload(rules, value)), `${id}: encodePayload(value)`).toBe(m.payload);
    expect(toHex(encodePayload(rules, decoded)), `${id}: encodePayload(decode(payload))`).toBe(m.payload);
    expectSameFields(decodeHeader(rules, payloadBytes), value.header, `${id} decodeHeader`);

    // signed block: Ed25519 is deterministic
    const signed = sign(backend, sender.key, payloadBytes);
    expect(toHex(encodeSignedBlock(signed)), `${id}: sign(payload)`).toBe(m.signed);
    const block = decodeSignedBlock(fromHex(m.signed));
    expect(toHex(block.payload), `${id}: signed block payload`).toBe(m.payload);
    expect(verify(backend, sender.clef, block), `${id}: verify under the sender's Clef`).toBe(true);
    expect(verify(backend, receiver.clef, block), `${id}: verify under another Clef`).toBe(false);

    // envelope: Name-S ‖ <payload>Key-S
    expect(toHex(encodeEnvelope({ sender: sender.name, signed })), `${id}: encodeEnvelope`).toBe(m.envelope);
    const env = decodeEnvelope(fromHex(m.envelope));
    expect(env.sender, `${id}: envelope sender`).toBe(m.sender);
    expect(toHex(encodeSignedBlock(env.signed)), `${id}: envelope signed block`).toBe(m.signed);
    expect(toHex(encodeEnvelope(env)), `${id}: envelope round trip`).toBe(m.envelope);

    // seal: HPKE with the fixed ephemeral reproduces the bytes; the receiver's Key opens them
    const ephemeral = { secret: fromHex(m.ephemeral.secret) };
    expect(toHex(sealEnvelope(backend, env, receiver.clef, ephemeral)), `${id}: sealEnvelope`).toBe(m.sealed);
    const opened = openEnvelope(backend, receiver.key, fromHex(m.sealed));
    expect(toHex(encodeEnvelope(opened)), `${id}: openEnvelope`).toBe(m.envelope);
    expect(opened.sender, `${id}: opened sender`).toBe(m.sender);

    // frame
    const frame = decodeFrame(fromHex(m.frame));
    expect(
      { kind: frame.kind, to: frame.to, from: frame.from, corr: frame.corr },
      `${id}: frame route`,
    ).toEqual(m.route);
    expect(toHex(frame.body), `${id}: frame body`).toBe(m.sealed);
    expect(toHex(encodeFrame(frame)), `${id}: frame round trip`).toBe(m.frame);
  });

  it.each(V.errorFrames.map((f) => [f.id, f] as const))('error frame %s', (id, f: ErrorFrameVector) => {
    const frame = decodeFrame(fromHex(f.frame));
    expect(
      { kind: frame.kind, to: frame.to, from: frame.from, corr: frame.corr },
      `${id}: frame route`,
    ).toEqual(f.route);
    expect(toHex(frame.body), `${id}: frame body`).toBe(f.body);
    expect(toHex(encodeFrame(frame)), `${id}: frame round trip`).toBe(f.frame);
    const value = valueFrom(backend, f.value);
    if (f.kind === 'ERROR') {
      // Unsigned error payloads carry no header in any profile: decoded with the patent rules.
      expectPayload(decodePayload(PATENT.rules, frame.body, ['error']), value, `${id} payload decode`);
      expect(toHex(encodePayload(PATENT.rules, value)), `${id}: encodePayload(value)`).toBe(f.payload);
      expect(f.body, `${id}: the body is the bare payload`).toBe(f.payload);
      return;
    }
    const rules = PROFILES[f.profile]!.rules;
    const sender = tripleFrom(backend, f.sender);
    const env = decodeEnvelope(frame.body);
    expect(env.sender, `${id}: envelope sender`).toBe(f.sender);
    expect(toHex(encodeEnvelope(env)), `${id}: envelope round trip`).toBe(f.envelope);
    expect(verify(backend, sender.clef, env.signed), `${id}: verify`).toBe(true);
    expectPayload(decodePayload(rules, env.signed.payload, ['error']), value, `${id} payload decode`);
    expect(toHex(encodePayload(rules, value)), `${id}: encodePayload(value)`).toBe(f.payload);
    const signed = sign(backend, sender.key, fromHex(f.payload));
    expect(toHex(encodeSignedBlock(signed)), `${id}: sign(payload)`).toBe(f.signed);
  });

  it('regenerating in memory gives the checked-in file byte for byte', () => {
    // If this fails after a deliberate wire change, rerun the generator (see vectors/README.md).
    expect(renderVectors(buildVectors(backend))).toBe(FILE_TEXT);
  });
});

describe.each(BACKENDS)('the parties take the vectors ($name backend)', (backend) => {
  it.each(['patent', 'hardened'] as const)(
    'KServ1 answers the %s clef-query vector (M1 -> M3)',
    (profile) => {
      const id = `${profile}/clef-query`;
      const m = V.messages.find((x) => x.id === id)!;
      const expected = V.messages.find((x) => x.id === `${profile}/clef-answer`)!;
      const ar = tripleFrom(backend, m.sender);
      const ks1 = createKeyServer({
        triple: tripleFrom(backend, m.receiver),
        backend,
        random: seededRandom('vectors.test/ks1'),
        clock: () => V.clock.t0 + 50,
        profile,
        store: createMemoryKeyServerStore(),
        serves: ['clef'],
      });
      // KEY-12: the requester and the subject are registered at KServ1.
      const subject = m.value.body.type === 'clef-query' ? m.value.body.subject : '';
      for (const name of [m.sender, subject]) ks1.register(tripleFrom(backend, name));
      const out = ks1.receive(fromHex(m.frame));
      expect(out.error, `${id}: accepted`).toBeUndefined();
      expect(
        out.send.map((o) => [o.to, o.step]),
        `${id}: one answer`,
      ).toEqual([[m.sender, 'CLEF-ANS']]);
      const frame = decodeFrame(out.send[0]!.bytes);
      expect(frame.corr, `${id}: the answer echoes the correlation id`).toBe(m.route.corr);
      const env = openEnvelope(backend, ar.key, frame.body);
      expect(
        verify(backend, tripleFrom(backend, m.receiver).clef, env.signed),
        `${id}: answer verifies`,
      ).toBe(true);
      const answer = decodePayload(PROFILES[profile]!.rules, env.signed.payload, ['clef-answer']);
      expectSameFields(answer.body, valueFrom(backend, expected.value).body, `${id}: answer body`);
      if (profile === 'hardened') {
        expect(toHex(answer.header.inReplyTo!), `${id}: answer bound to the request nonce`).toBe(
          m.value.header.nonce,
        );
        expect([answer.header.sender, answer.header.receiver], `${id}: names in signature`).toEqual([
          m.receiver,
          m.sender,
        ]);
      } else {
        expect(answer.header, `${id}: no header under patent`).toEqual({});
      }
    },
  );
});

/** A random source that hands out exactly these byte strings, in order (the vectors' randomness). */
function scripted(id: string, chunks: Uint8Array[]): RandomSource {
  return (length) => {
    const next = chunks.shift();
    if (next === undefined || next.length !== length) {
      throw new Error(`${id}: asked for ${length} random bytes, script has ${next?.length ?? 'nothing'}`);
    }
    return next;
  };
}

describe.each(BACKENDS)('the AR reproduces and takes the vectors ($name backend)', (backend) => {
  const message = (id: string) => V.messages.find((x) => x.id === id)!;

  function repository(profile: 'patent' | 'hardened', now: { t: number }, random: Uint8Array[]) {
    const ks1 = tripleFrom(backend, message(`${profile}/clef-query`).receiver);
    return createRepository({
      triple: tripleFrom(backend, message(`${profile}/clef-query`).sender),
      backend,
      random: scripted(profile, random),
      clock: () => now.t,
      profile,
      keyServers: [{ name: ks1.name, clef: ks1.clef, scopes: ['clef'] }],
    });
  }

  /** The random bytes the AR draws for one message: corr (requests only), nonce (hardened), ephemeral. */
  function draws(m: MessageVector): Uint8Array[] {
    return [
      ...(m.route.corr === '' ? [] : [fromHex(m.route.corr)]),
      ...(m.value.header.nonce === undefined ? [] : [fromHex(m.value.header.nonce)]),
      fromHex(m.ephemeral.secret),
    ];
  }

  it.each(['patent', 'hardened'] as const)('%s: M1 and M7 byte for byte, M3 accepted', (profile) => {
    const m1 = message(`${profile}/clef-query`);
    const m3 = message(`${profile}/clef-answer`);
    const m7 = message(`${profile}/program`);
    const now = { t: V.clock.t0 };
    const ar = repository(profile, now, [...draws(m1), ...draws(m7)]);
    const subject = m1.value.body.type === 'clef-query' ? m1.value.body.subject : '';
    const program = m7.value.body.type === 'program' ? fromHex(m7.value.body.program) : new Uint8Array(0);
    const started = ar.deploy({ anc: parseName(subject), program, id: 'd1' });
    expect(started.error, `${m1.id}: deploy`).toBeUndefined();
    expect(
      started.send.map((o) => toHex(o.bytes)),
      `${m1.id}: the AR's M1`,
    ).toEqual([m1.frame]);
    now.t = V.clock.t0 + 400;
    const answered = ar.receive(fromHex(m3.frame));
    expect(answered.error, `${m3.id}: accepted by the AR`).toBeUndefined();
    expect(
      answered.send.map((o) => toHex(o.bytes)),
      `${m7.id}: the AR's M7`,
    ).toEqual([m7.frame]);
    expect(ar.deployment('d1')?.state, `${m7.id}: deployment state`).toBe('sent');
  });

  it.each(['patent', 'hardened'] as const)('%s: the error-frame vector fails the deployment', (profile) => {
    const m1 = message(`${profile}/clef-query`);
    const err = V.errorFrames.find((f) => f.id === `${profile}/error-frame`)!;
    const now = { t: V.clock.t0 };
    const ar = repository(profile, now, draws(m1));
    const subject = m1.value.body.type === 'clef-query' ? m1.value.body.subject : '';
    ar.deploy({ anc: parseName(subject), program: new Uint8Array(1), id: 'd1' });
    now.t = V.clock.t0 + 200;
    const out = ar.receive(fromHex(err.frame));
    expect(out.error, `${err.id}: taken as an answer`).toBeUndefined();
    expect(ar.deployment('d1')?.state, `${err.id}: deployment state`).toBe('failed');
    expect(ar.deployment('d1')?.code, `${err.id}: failure code`).toBe('REMOTE_ERROR');
    expect(ar.pendingCount, `${err.id}: request consumed`).toBe(0);
  });

  it('hardened: the unsigned patent error frame is refused and the request stays outstanding', () => {
    const m1 = message('hardened/clef-query');
    const now = { t: V.clock.t0 };
    const ar = repository('hardened', now, draws(m1));
    const subject = m1.value.body.type === 'clef-query' ? m1.value.body.subject : '';
    ar.deploy({ anc: parseName(subject), program: new Uint8Array(1), id: 'd1' });
    const out = ar.receive(fromHex(V.errorFrames.find((f) => f.id === 'patent/error-frame')!.frame));
    expect(out.error?.code, 'patent/error-frame at a hardened AR').toBe('FRAME_KIND');
    expect(ar.deployment('d1')?.state, 'deployment still resolving').toBe('resolving');
    expect(ar.pendingCount, 'request still outstanding').toBe(1);
  });
});
